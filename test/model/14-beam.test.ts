/**
 * Strategy 'beam' (issue 14 §1; ALGORITHMS.md §4, §D): beam search against a float64 reference of HF's
 * rules and against exhaustive search, beam sampling's law over beam tuples against exact enumeration of
 * with-replacement beam sampling, one expert pass per step, streaming, KV sharing and bad options.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, loadModel, type LlamaModel } from '../../lib/index.js';
import { beamPairKey, beamPairLaw, referenceBeamSearch } from '../helpers/beam.js';
import { logSoftmax, syntheticPair, tinyPair, NEAR_TIE } from '../helpers/pairs.js';
import { mergedCells, rng as makeRng } from '../helpers/stats.js';

const EOS = 2;
let tiny: LlamaModel; // 32000-token llama vocabulary
let eosy: LlamaModel; // tiny vocabulary (264 ids) whose end-of-generation is about as likely as token 56

beforeAll(async () => {
    tiny = await loadModel((await tinyPair()).expert, { contextSize: 1024, threads: 2 });
    const p = await syntheticPair('tinyvocab-5-eos56', { shape: 'tiny', vocab: { tiny: 5 }, seed: 5, outScale: 10, epsilon: 0.3, eosLike: 56 });
    eosy = await loadModel(p.expert, { contextSize: 512, threads: 2 });
});

afterAll(async () => {
    await tiny?.dispose();
    await eosy?.dispose();
});

describe('beam search', () => {
    it('with one beam is greedy, token for token', async () => {
        for (const prompt of ['The quick brown fox', 'Once upon a time there was', 'x']) {
            const g = await tiny.generate(prompt, { maxTokens: 24 });
            const b = await tiny.generate(prompt, { strategy: 'beam', beams: 1, maxTokens: 24 });
            expect(b.tokens).toEqual(g.tokens);
            expect(b.text).toBe(g.text);
            expect(b.beams).toHaveLength(1);
        }
    });

    it("equals a float64 reference of HF's rules (end-of-generation candidates, length penalty, early stopping)", async () => {
        const r = makeRng(14);
        let checked = 0;
        let sawFinished = 0;
        const configs = [
            { W: 3, maxTokens: 6, lengthPenalty: 1, early: false },
            { W: 4, maxTokens: 8, lengthPenalty: 0.5, early: true },
            { W: 2, maxTokens: 8, lengthPenalty: 2, early: 'never' },
            { W: 5, maxTokens: 5, lengthPenalty: 0, early: false },
        ] as const;
        for (let trial = 0; trial < 24 && checked < 12; trial++) {
            const cfg = configs[trial % configs.length]!;
            const prompt = [1, ...Array.from({ length: 1 + Math.floor(r() * 4) }, () => 3 + Math.floor(r() * 261))];
            const ref = referenceBeamSearch(eosy, prompt, cfg.W, cfg.maxTokens, cfg.lengthPenalty, cfg.early);
            if (ref.margin < NEAR_TIE) continue; // a near-tie: the batched pass may order it either way
            const got = await eosy.generate(prompt, { strategy: 'beam', beams: cfg.W, maxTokens: cfg.maxTokens, lengthPenalty: cfg.lengthPenalty, earlyStopping: cfg.early });
            expect(got.beams!.map((b) => b.tokens)).toEqual(ref.beams.map((b) => b.tokens));
            got.beams!.forEach((b, i) => {
                // batched and one-token passes differ by ≲ NEAR_TIE per logit (see helpers/pairs.ts), so by ≲ 2·NEAR_TIE per
                // token's log-prob (its logit and the row's log-sum-exp)
                const tol = 2 * NEAR_TIE * ref.beams[i]!.length;
                expect(Math.abs(b.logProb - ref.beams[i]!.logProb)).toBeLessThan(tol);
                expect(Math.abs(b.score - ref.beams[i]!.score)).toBeLessThan(tol);
                expect(b.finished).toBe(ref.beams[i]!.finished);
            });
            expect(got.tokens).toEqual(ref.beams[0]!.tokens);
            expect(got.finishReason).toBe(ref.beams[0]!.finished ? 'eos' : 'length');
            checked++;
            if (ref.beams.some((b) => b.finished)) sawFinished++;
        }
        expect(checked).toBeGreaterThanOrEqual(8);
        expect(sawFinished).toBeGreaterThanOrEqual(2); // the end-of-generation rules were exercised
    });

    it('finds the exhaustive best sequence when the beam is wide enough to hold every prefix that could lead to it', async () => {
        // lengthPenalty 0 ranks by logProb, which only falls as a sequence grows: exhaustive search by branch and
        // bound is exact, and a beam of W keeps every prefix scoring ≥ the best complete sequence while at most W
        // such prefixes exist per depth (then it must return that sequence).
        const L = 3;
        const W = 8;
        const r = makeRng(41);
        let proved = 0;
        for (let trial = 0; trial < 12 && proved < 4; trial++) {
            const prompt = [1, ...Array.from({ length: 2 }, () => 3 + Math.floor(r() * 261))];
            const memo = new Map<string, Float64Array>();
            const lp = (ctx: number[]) => {
                const k = ctx.join(',');
                if (!memo.has(k)) memo.set(k, logSoftmax(eosy._decoder.evalLogits([...prompt, ...ctx], false)));
                return memo.get(k)!;
            };
            let best = { logProb: -Infinity, tokens: [] as number[] };
            // the greedy path gives a first bound
            const visit = (ctx: number[], s: number) => {
                if (s < best.logProb) return;
                const row = lp(ctx);
                const order = [...row.keys()].sort((a, b) => row[b]! - row[a]!);
                for (const x of order) {
                    const t = s + row[x]!;
                    if (t < best.logProb) break;
                    if (x === EOS || ctx.length + 1 === L) {
                        if (t > best.logProb) best = { logProb: t, tokens: x === EOS ? ctx : [...ctx, x] };
                    } else visit([...ctx, x], t);
                }
            };
            visit([], 0);
            // prefixes (not ended) at each depth scoring ≥ the best: all must fit in the beam
            const widest = [1, 2].map((d) => [...memo.keys()].filter((k) => k !== '' && k.split(',').length === d).filter((k) => {
                const ctx = k.split(',').map(Number);
                let s = 0;
                for (let i = 0; i < ctx.length; i++) s += lp(ctx.slice(0, i))[ctx[i]!]!;
                return s >= best.logProb;
            }).length);
            if (Math.max(...widest) > W - 1) continue; // (W − 1: an ended best must also rank < W among the children)
            const got = await eosy.generate(prompt, { strategy: 'beam', beams: W, maxTokens: L, lengthPenalty: 0, earlyStopping: 'never' });
            expect(got.tokens).toEqual(best.tokens);
            expect(Math.abs(got.beams![0]!.logProb - best.logProb)).toBeLessThan(2 * NEAR_TIE * L);
            proved++;
        }
        expect(proved).toBeGreaterThanOrEqual(3);
    });

    it('advances all W beams in one expert pass per step, sharing the prompt cells', async () => {
        const W = 6;
        const r = await tiny.generate('Once upon a time there was a fox who lived in the forest '.repeat(8), { strategy: 'beam', beams: W, maxTokens: 20 });
        expect(r.finishReason).toBe('length');
        const prompt = r.stats.promptTokens;
        expect(prompt).toBeGreaterThan(100);
        // the prompt is one pass; each of the 19 steps after the first choice decodes every beam's token in one pass
        expect(r.stats.expertPasses).toBe(1 + 19);
        expect(r.stats.batchTokens).toBeLessThanOrEqual(W * 19);
        expect(r.stats.batchTokens).toBeGreaterThan(19);
        // shared prefixes are shared cells: never W copies of the prompt
        expect(r.stats.peakKvCells).toBeLessThanOrEqual(prompt + W * 20);
        expect(r.stats.peakKvCells).toBeGreaterThanOrEqual(prompt + 19);
        expect(r.stats.peakKvCells).toBeLessThan(2 * prompt);
        // and every cell is free again afterwards
        expect(tiny._decoder.context('expert')!._kvCells().total).toBe(0);
    });

    it('streams only text every remaining candidate shares; the stream adds up to the result', async () => {
        const chunks: string[] = [];
        const tokens: number[] = [];
        const s = tiny.stream('The quick brown fox', { strategy: 'beam', beams: 4, maxTokens: 24 });
        for await (const c of s) {
            chunks.push(c.text);
            tokens.push(...c.tokens);
        }
        const r = await s.result;
        expect(tokens).toEqual(r.tokens);
        expect(chunks.join('')).toBe(r.text);
        expect(chunks.filter((c) => c.length > 0).length).toBeGreaterThan(1); // it streamed before the end
        const direct = await tiny.generate('The quick brown fox', { strategy: 'beam', beams: 4, maxTokens: 24 });
        expect(direct.tokens).toEqual(r.tokens);
    });

    it('cuts each candidate at a stop string (a candidate that reaches one is finished)', async () => {
        const free = await tiny.generate('Once upon a time', { maxTokens: 16 });
        const stop = free.text.slice(6, 9);
        expect(stop.length).toBe(3);
        // one beam: exactly greedy with the stop string
        const greedy = await tiny.generate('Once upon a time', { maxTokens: 16, stop });
        const one = await tiny.generate('Once upon a time', { strategy: 'beam', beams: 1, maxTokens: 16, stop });
        expect(one.text).toBe(greedy.text);
        expect(one.finishReason).toBe('stop');
        expect(one.beams![0]!.finished).toBe(true);
        // several: no candidate's text runs past a stop string
        const r = await tiny.generate('Once upon a time', { strategy: 'beam', beams: 3, maxTokens: 16, stop });
        for (const b of r.beams!) expect(b.text.includes(stop)).toBe(false);
        expect(r.text).toBe(r.beams![0]!.text);
        if (r.finishReason === 'stop') expect(r.beams![0]!.finished).toBe(true);
    });

    it('rejects bad options before any native work', async () => {
        await expect(tiny.generate('x', { strategy: 'beam', temperature: 0.5 })).rejects.toThrow(/does not apply to beam search/);
        await expect(tiny.generate('x', { strategy: 'beam', beams: 0 })).rejects.toThrow(InvalidArgumentError);
        await expect(tiny.generate('x', { strategy: 'beam', earlyStopping: 'sometimes' as never })).rejects.toThrow(/earlyStopping/);
        await expect(tiny.generate('x', { beams: 2 })).rejects.toThrow(/does not apply to strategy 'greedy'/);
        await expect(tiny.generate('x', { strategy: 'beam', sample: true, temperature: 0 })).rejects.toThrow(/temperature/);
        // more beams than free sequence slots: a clear error, and the model stays usable
        await expect(tiny.generate('x', { strategy: 'beam', beams: 40 })).rejects.toThrow(/sequence slots/);
        expect((await tiny.generate('x', { strategy: 'beam', beams: 2, maxTokens: 3 })).tokens).toHaveLength(3);
    });
});

describe('beam sampling', () => {
    // Exact law of with-replacement beam sampling (ALGORITHMS.md §4, §D) for W = 2 and two steps at T = 1:
    // step 1 draws a1, a2 i.i.d. from p(·|prompt); step 2 draws two children i.i.d. from
    // J(u, x) ∝ p(a_u)·p(x | a_u). The outcome is the multiset of the two final sequences.
    it('the law of the beam pair equals exact enumeration (negative control: without replacement)', async () => {
        const paths = await syntheticPair('tinyvocab-5', { shape: 'tiny', vocab: { tiny: 5 }, seed: 5, outScale: 10, epsilon: 0.3 });
        await using m = await loadModel(paths.expert, { contextSize: 64, threads: 2 });
        const prompt = m.tokenize(' a b');
        const probs = (ctx: number[]) => logSoftmax(m._decoder.evalLogits([...prompt, ...ctx], false)).map(Math.exp);
        const { law: exact, eosMass } = beamPairLaw(probs, 2, true);
        expect(eosMass).toBeLessThan(1e-4); // no candidate finishes early in this law
        const { cellOf, merge, expected, bound: boundFor, tvTo } = mergedCells(exact);
        expect(expected.size).toBeGreaterThan(4);
        const N = 6000;
        const counts = new Map<string, number>();
        for (let i = 0; i < N; i++) {
            const r = await m.generate(prompt, { strategy: 'beam', sample: true, beams: 2, maxTokens: 2, seed: 5000 + i });
            const k = cellOf(beamPairKey(r.beams![0]!.tokens, r.beams![1]!.tokens));
            counts.set(k, (counts.get(k) ?? 0) + 1);
        }
        const bound = boundFor(N);
        expect(tvTo(counts, N, expected)).toBeLessThan(bound);
        expect(tvTo(counts, N, merge(beamPairLaw(probs, 2, false).law))).toBeGreaterThan(bound);
    });

    it('is reproducible for a seed, and its candidates are sorted by score', async () => {
        const a = await tiny.generate('Once upon a time', { strategy: 'beam', sample: true, beams: 4, maxTokens: 16, seed: 9 });
        const b = await tiny.generate('Once upon a time', { strategy: 'beam', sample: true, beams: 4, maxTokens: 16, seed: 9 });
        expect(b.tokens).toEqual(a.tokens);
        expect(a.stats.seed).toBe(9);
        for (let i = 1; i < a.beams!.length; i++) expect(a.beams![i - 1]!.score).toBeGreaterThanOrEqual(a.beams![i]!.score);
        expect(a.tokens).toEqual(a.beams![0]!.tokens);
    });
});
