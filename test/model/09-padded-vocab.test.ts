/**
 * Pairs whose vocabularies differ by padding (real pairs of one family do: Qwen2.5-7B has 152064 ids,
 * Qwen2.5-0.5B 151936; llama.cpp accepts sizes within 128). Every pair strategy works over the expert's ids:
 * ids only the expert has are probability 0 for the amateur (never drafted; masked in the contrast), ids only
 * the amateur has are dropped from its drafts. The laws must stay exact: speculative and scd follow the
 * expert's law and the contrastive law, including the padded ids the expert gives real probability to.
 */
import { describe, expect, it } from 'vitest';
import { loadPair, type ModelPair } from '../../lib/index.js';
import { syntheticPair } from '../helpers/pairs.js';
import { cdRef, exactJointOfTwo, softmax, twoTokenCells } from '../helpers/stats.js';

const PAD = 8;
// tiny vocabulary (3 + 5 normal + 256 byte tokens), sharp output head: the padded ids get real mass
const tinyPadded = (side: 'expert' | 'amateur') =>
    syntheticPair(`tinyvocab-5-pad-${side}-${PAD}`, { shape: 'tiny', vocab: { tiny: 5 }, seed: 5, outScale: 10, epsilon: 0.3, vocabPad: { [side]: PAD } });

async function lawOf(pair: ModelPair, strategy: 'speculative' | 'scd' | 'contrastive', N: number, seed: number, prompt: number[]) {
    const counts: [number, number][] = [];
    for (let i = 0; i < N; i++) {
        const r = await pair.generate(prompt, {
            strategy,
            temperature: 1,
            maxTokens: 2,
            seed: seed + i,
            ...(strategy !== 'contrastive' ? { draftTokens: 2 } : {}),
            ...(strategy !== 'speculative' ? { alpha: 0.05, beta: 0.5 } : {}),
        });
        // an end-of-generation token ends the generation: (eos, ·) is recorded as (eos, eos)
        const eos = pair.expert.eos;
        const a = r.tokens[0] ?? eos;
        counts.push([a, a === eos ? eos : (r.tokens[1] ?? eos)]);
    }
    return counts;
}

/** The exact joint law of two tokens, with everything after an end-of-generation token merged into (eos, eos). */
function jointOfTwo(prompt: number[], eos: number, law: (context: number[]) => ArrayLike<number>): Map<string, number> {
    const out = new Map<string, number>();
    for (const [k, v] of exactJointOfTwo(prompt, law)) {
        const key = Number(k.split(',')[0]) === eos ? `${eos},${eos}` : k;
        out.set(key, (out.get(key) ?? 0) + v);
    }
    return out;
}

function tvOfSamples(samples: [number, number][], exact: Map<string, number>) {
    const { cellOf, expected, bound, tvTo } = twoTokenCells(exact);
    const counts = new Map<string, number>();
    for (const [a, b] of samples) counts.set(cellOf(a, b), (counts.get(cellOf(a, b)) ?? 0) + 1);
    return { tv: tvTo(counts, samples.length, expected), bound: bound(samples.length), cells: expected.size };
}

describe.each(['expert', 'amateur'] as const)('vocabulary padded on the %s side', (side) => {
    it('the pair loads, the sizes differ by the padding, and greedy speculative / scd reproduce greedy / contrastive', async () => {
        await using pair = await loadPair({ ...(await tinyPadded(side)), contextSize: 128, threads: 2 });
        const [big, small] = side === 'expert' ? [pair.expert, pair.amateur] : [pair.amateur, pair.expert];
        expect(big.nVocab - small.nVocab).toBe(PAD);
        for (const text of [' a b', ' c a e b']) {
            const prompt = pair.tokenize(text);
            const greedy = await pair.generate(prompt, { strategy: 'greedy', maxTokens: 24 });
            for (const draftTokens of [1, 4]) {
                expect((await pair.generate(prompt, { strategy: 'speculative', maxTokens: 24, draftTokens })).tokens).toEqual(greedy.tokens);
            }
            const cd = await pair.generate(prompt, { strategy: 'contrastive', maxTokens: 24 });
            for (const bonus of [true, false]) expect((await pair.generate(prompt, { strategy: 'scd', maxTokens: 24, bonus })).tokens).toEqual(cd.tokens);
        }
    });

    it('sampled speculative follows the expert law and scd / contrastive the contrastive law, padded ids included (TV bound, fixed seeds)', async () => {
        await using pair = await loadPair({ ...(await tinyPadded(side)), contextSize: 128, threads: 2 });
        const nExpert = pair.expert.nVocab;
        const nAmateur = pair.amateur.nVocab;
        // the two-token prompt [BOS, t] where the expert puts the most mass on the ids only it has
        const padMass = (ctx: number[]) => softmax(pair._decoder.evalLogits(ctx, false)).slice(nAmateur).reduce((a, b) => a + b, 0); // 0 when the amateur is the padded one
        let prompt = pair.tokenize(' a b');
        if (side === 'expert') {
            let best = -1;
            for (let t = 3; t < nExpert; t++) {
                const m = padMass([pair.expert.bos, t]);
                if (m > best) [best, prompt] = [m, [pair.expert.bos, t]];
            }
        }
        const eos = pair.expert.eos;
        const expertRow = (ctx: number[]) => pair._decoder.evalLogits(ctx, false);
        // the amateur sees ids it lacks as its unknown token (id 0 here); the contrast masks them
        const amateurRow = (ctx: number[]) => Array.from(pair._decoder.evalLogits(ctx.map((t) => (t < nAmateur ? t : 0)), false, 'amateur')).slice(0, nExpert);
        const expertLawAt = (p: number[]) => jointOfTwo(p, eos, (ctx) => softmax(expertRow(ctx)));
        const cdLawAt = (p: number[]) => jointOfTwo(p, eos, (ctx) => softmax(cdRef(expertRow(ctx), amateurRow(ctx), 0.05, 0.5, 1)));
        const expertLaw = expertLawAt(prompt);
        const cdLaw = cdLawAt(prompt);
        if (side === 'expert') {
            // the padded ids matter: the expert gives them real probability, the contrast none
            let padded = 0;
            for (const [k, v] of expertLaw) if (k.split(',').some((t) => Number(t) >= nAmateur)) padded += v;
            expect(padded).toBeGreaterThan(0.02);
            for (const [k, v] of cdLaw) if (k.split(',').some((t) => Number(t) >= nAmateur)) expect(v).toBe(0);
        }
        const spec = tvOfSamples(await lawOf(pair, 'speculative', 3000, 100, prompt), expertLaw);
        expect(spec.cells).toBeGreaterThan(3);
        expect(spec.tv).toBeLessThan(spec.bound);
        const text = pair.tokenize(' a b');
        const cdText = cdLawAt(text);
        const expertText = expertLawAt(text);
        for (const strategy of ['scd', 'contrastive'] as const) {
            // where the expert favours its padded ids, the contrast still never emits one
            if (side === 'expert') for (const [a, b] of await lawOf(pair, strategy, 400, 5000, prompt)) expect(Math.max(a, b)).toBeLessThan(nAmateur);
            const samples = await lawOf(pair, strategy, 2500, 9000, text);
            const r = tvOfSamples(samples, cdText);
            expect(r.cells, strategy).toBeGreaterThan(3);
            expect(r.tv, strategy).toBeLessThan(r.bound);
            // power: far from the plain expert's law
            expect(tvOfSamples(samples, expertText).tv, strategy).toBeGreaterThan(r.bound);
        }
    });
});
