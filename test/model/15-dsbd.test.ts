/**
 * Strategy 'dsbd' end to end (issue 14 §2–3; ALGORITHMS.md §6, §7.7): the law of the beam tuple equals
 * with-replacement beam sampling's (fixed width), temperature 0 is beam search, one expert forest pass per
 * iteration, singleBeam holds no more KV than speculative decoding plus the transient forest, bad options.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, loadModel, loadPair, type ModelPair } from '../../lib/index.js';
import { beamPairKey, beamPairLaw, referenceBeamSearch } from '../helpers/beam.js';
import { logSoftmax, syntheticPair, tinyPair, NEAR_TIE } from '../helpers/pairs.js';
import { mergedCells, rng as makeRng } from '../helpers/stats.js';

let tiny: ModelPair;
let eosy: ModelPair; // tiny vocabulary, end-of-generation about as likely as token 56

beforeAll(async () => {
    tiny = await loadPair({ ...(await tinyPair()), contextSize: 1024, threads: 2 });
    const p = await syntheticPair('tinyvocab-5-eos56', { shape: 'tiny', vocab: { tiny: 5 }, seed: 5, outScale: 10, epsilon: 0.3, eosLike: 56 });
    eosy = await loadPair({ ...p, contextSize: 512, threads: 2 });
});

afterAll(async () => {
    await tiny?.dispose();
    await eosy?.dispose();
});

describe('dsbd', () => {
    it('the law of the beam pair after 3 layers equals with-replacement beam sampling (fixed width 2; control: without replacement)', async () => {
        // widthThreshold 1 with minWidth 2 fixes every layer's width at 2 = beams (ALGORITHMS.md §7.7); γ = 2 and
        // maxTokens 3 put iteration boundaries at every layer position across runs (layers fail at random)
        const paths = await syntheticPair('tinyvocab-5', { shape: 'tiny', vocab: { tiny: 5 }, seed: 5, outScale: 10, epsilon: 0.3 });
        await using pair = await loadPair({ ...paths, contextSize: 64, threads: 2 });
        const prompt = pair.tokenize(' a b');
        const probs = (ctx: number[]) => logSoftmax(pair._decoder.evalLogits([...prompt, ...ctx], false)).map(Math.exp);
        const { law: exact, eosMass } = beamPairLaw(probs, 3, true);
        expect(eosMass).toBeLessThan(1e-3);
        const { cellOf, merge, expected, bound: boundFor, tvTo } = mergedCells(exact);
        expect(expected.size).toBeGreaterThan(5);
        const N = 6000;
        const counts = new Map<string, number>();
        let accepted = 0;
        let drafted = 0;
        for (let i = 0; i < N; i++) {
            const r = await pair.generate(prompt, {
                strategy: 'dsbd',
                beams: 2,
                draftBeams: 3,
                draftTokens: 2,
                widthThreshold: 1,
                minWidth: 2,
                maxTokens: 3,
                seed: 7000 + i,
            });
            expect(r.beams).toHaveLength(2);
            const k = cellOf(beamPairKey(r.beams![0]!.tokens, r.beams![1]!.tokens));
            counts.set(k, (counts.get(k) ?? 0) + 1);
            accepted += r.stats.acceptedTokens!;
            drafted += r.stats.draftedTokens!;
        }
        const bound = boundFor(N);
        if (process.env['LLAMA_DUET_TEST_VERBOSE']) console.log({ tv: tvTo(counts, N, expected), control: tvTo(counts, N, merge(beamPairLaw(probs, 3, false).law)), bound, cells: expected.size, acceptance: accepted / drafted });
        expect(tvTo(counts, N, expected)).toBeLessThan(bound);
        expect(tvTo(counts, N, merge(beamPairLaw(probs, 3, false).law))).toBeGreaterThan(bound);
        // the drafts did real work: a good share of them was accepted, so the law is not just the fills'
        expect(accepted / drafted).toBeGreaterThan(0.2);
    });

    it('at temperature 0 is beam search of width beams (the documented deterministic rule)', async () => {
        const r = makeRng(15);
        let checked = 0;
        const configs = [
            { beams: 3, draftBeams: 3, draftTokens: 2, maxTokens: 7, lengthPenalty: 1, earlyStopping: false },
            { beams: 2, draftBeams: 4, draftTokens: 3, maxTokens: 9, lengthPenalty: 0.5, earlyStopping: true },
            { beams: 4, draftBeams: 2, draftTokens: 3, maxTokens: 6, lengthPenalty: 0, earlyStopping: 'never' },
        ] as const;
        for (let trial = 0; trial < 18 && checked < 8; trial++) {
            const cfg = configs[trial % configs.length]!;
            const prompt = [1, ...Array.from({ length: 1 + Math.floor(r() * 4) }, () => 3 + Math.floor(r() * 261))];
            const ref = referenceBeamSearch(eosy, prompt, cfg.beams, cfg.maxTokens, cfg.lengthPenalty, cfg.earlyStopping);
            if (ref.margin < NEAR_TIE) continue;
            const got = await eosy.generate(prompt, { strategy: 'dsbd', temperature: 0, ...cfg });
            expect(got.beams!.map((b) => b.tokens)).toEqual(ref.beams.map((b) => b.tokens));
            expect(got.tokens).toEqual(ref.beams[0]!.tokens);
            got.beams!.forEach((b, i) => expect(Math.abs(b.logProb - ref.beams[i]!.logProb)).toBeLessThan(2 * NEAR_TIE * ref.beams[i]!.length));
            // and the same as the beam strategy
            const beam = await eosy.generate(prompt, { strategy: 'beam', beams: cfg.beams, maxTokens: cfg.maxTokens, lengthPenalty: cfg.lengthPenalty, earlyStopping: cfg.earlyStopping });
            expect(got.tokens).toEqual(beam.tokens);
            checked++;
        }
        expect(checked).toBeGreaterThanOrEqual(5);
        // on the 32000-token pair too, with fewer expert passes than beam search
        const beam = await tiny.generate('Once upon a time', { strategy: 'beam', beams: 4, maxTokens: 32 });
        const fast = await tiny.generate('Once upon a time', { strategy: 'dsbd', temperature: 0, beams: 4, maxTokens: 32 });
        expect(fast.tokens).toEqual(beam.tokens);
        expect(fast.stats.expertPasses).toBeLessThan(beam.stats.expertPasses);
    });

    it('verifies each iteration in one expert pass and reports its widths', async () => {
        const r = await tiny.generate('The quick brown fox', { strategy: 'dsbd', maxTokens: 40, seed: 3 });
        expect(r.tokens.length).toBe(r.stats.generatedTokens);
        expect(r.stats.expertPasses).toBe(1 + r.stats.verifyPasses!); // the prompt, then one forest pass per iteration
        expect(r.stats.amateurPasses).toBeLessThanOrEqual(1 + 3 * r.stats.verifyPasses!);
        const hist = r.stats.widthHistogram!;
        expect(hist.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
        expect(hist.length).toBeLessThanOrEqual(4 + 1); // widths ≤ draftBeams
        expect(r.stats.forestNodesMax).toBeLessThanOrEqual(4 + 4 * 3); // roots + W_S per layer
        expect(r.stats.meanAcceptedLength).toBeGreaterThan(1);
        expect(r.beams!.length).toBeGreaterThan(0);
        expect(r.tokens).toEqual(r.beams![0]!.tokens);
        // the same seed, the same output; the caches are empty afterwards
        const again = await tiny.generate('The quick brown fox', { strategy: 'dsbd', maxTokens: 40, seed: 3 });
        expect(again.tokens).toEqual(r.tokens);
        expect(tiny._decoder.context('expert')!._kvCells().total).toBe(0);
        expect(tiny._decoder.context('amateur')!._kvCells().total).toBe(0);
        // a threshold of 1 asks every layer for exactly minWidth acceptances
        const fixed = await tiny.generate('The quick brown fox', { strategy: 'dsbd', maxTokens: 24, seed: 3, widthThreshold: 1, minWidth: 2 });
        expect(fixed.stats.widthHistogram!.filter((n, w) => n > 0 && w !== 2)).toEqual([]);
    });

    it('singleBeam holds no more KV cells than speculative decoding plus the transient forest', async () => {
        const prompt = 'Once upon a time there was a fox who lived in the forest '.repeat(4);
        const spec = await tiny.generate(prompt, { strategy: 'speculative', draftTokens: 3, temperature: 1, seed: 2, maxTokens: 64 });
        for (const select of ['sample', 'best'] as const) {
            const one = await tiny.generate(prompt, { strategy: 'dsbd', singleBeam: true, select, draftTokens: 3, seed: 2, maxTokens: 64 });
            expect(one.tokens).toHaveLength(64);
            // speculative's peak: the prompt, the text and its γ + 1 verify tokens; singleBeam: one path and the forest
            const specPath = spec.stats.peakKvCells! - (3 + 1);
            expect(one.stats.peakKvCells!).toBeLessThanOrEqual(specPath + one.stats.forestNodesMax!);
            const multi = await tiny.generate(prompt, { strategy: 'dsbd', draftTokens: 3, seed: 2, maxTokens: 64 });
            expect(one.stats.peakKvCells!).toBeLessThanOrEqual(multi.stats.peakKvCells!);
        }
    });

    it('honours maxTokens, stop strings and streaming like every strategy', async () => {
        for (const maxTokens of [1, 2, 5, 17]) {
            const r = await tiny.generate('x', { strategy: 'dsbd', maxTokens, seed: 1 });
            expect(r.tokens).toHaveLength(maxTokens);
            expect(r.finishReason).toBe('length');
        }
        const free = await tiny.generate('Once upon a time', { strategy: 'dsbd', temperature: 0, maxTokens: 16 });
        const stop = free.text.slice(6, 9);
        const cut = await tiny.generate('Once upon a time', { strategy: 'dsbd', temperature: 0, maxTokens: 16, stop });
        for (const b of cut.beams!) expect(b.text.includes(stop)).toBe(false);
        const chunks: string[] = [];
        const s = tiny.stream('The quick brown fox', { strategy: 'dsbd', maxTokens: 30, seed: 4 });
        for await (const c of s) chunks.push(c.text);
        const res = await s.result;
        expect(chunks.join('')).toBe(res.text);
        const direct = await tiny.generate('The quick brown fox', { strategy: 'dsbd', maxTokens: 30, seed: 4 });
        expect(direct.tokens).toEqual(res.tokens);
    });

    it('rejects bad options clearly', async () => {
        await expect(tiny.generate('x', { strategy: 'dsbd', minWidth: 5, draftBeams: 4 })).rejects.toThrow(/minWidth/);
        await expect(tiny.generate('x', { strategy: 'dsbd', select: 'best' })).rejects.toThrow(/singleBeam/);
        await expect(tiny.generate('x', { strategy: 'dsbd', widthThreshold: 0 })).rejects.toThrow(InvalidArgumentError);
        await expect(tiny.generate('x', { strategy: 'dsbd', sample: true } as never)).rejects.toThrow(/does not apply/);
        await expect(tiny.generate('x', { strategy: 'beam', draftBeams: 2 })).rejects.toThrow(/does not apply/);
        // more slots than the context has: W_L + (W_S − 1)·γ = 4 + 7·4 > 16
        await expect(tiny.generate('x', { strategy: 'dsbd', draftBeams: 8, draftTokens: 4 })).rejects.toThrow(/sequence slots/);
        expect((await tiny.generate('x', { strategy: 'dsbd', maxTokens: 3, seed: 1 })).tokens).toHaveLength(3);
        const expertOnly = await loadModel((await tinyPair()).expert, { contextSize: 256 });
        await expect(expertOnly.generate('x', { strategy: 'dsbd' })).rejects.toThrow(/needs an expert\/amateur pair/);
        await expertOnly.dispose();
    });
});
