/** Speculative decoding is lossless: greedy output equals greedy expert output; sampled output follows p. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, loadModel, loadPair, type ModelPair } from '../../lib/index.js';
import { expectSameUpToNearTies, syntheticPair, tinyPair } from '../helpers/pairs.js';
import { exactJointOfTwo, softmax, twoTokenCells } from '../helpers/stats.js';

const gammas = [1, 2, 4, 8];
const prompts = ['The quick brown fox', 'Once upon a time there was', 'x'];
let synthetic: ModelPair; // (a) the expert's first layer as the amateur
let self: ModelPair; // (b) the expert drafts for itself
let unrelated: ModelPair; // (c) a random model with the same vocabulary

beforeAll(async () => {
    const tiny = await tinyPair();
    const other = await syntheticPair('tiny-unrelated', { shape: 'tiny', seed: 777, epsilon: 0.5 });
    const load = { contextSize: 1024, threads: 2 };
    synthetic = await loadPair({ ...tiny, ...load });
    self = await loadPair({ expert: tiny.expert, amateur: tiny.expert, ...load });
    unrelated = await loadPair({ expert: tiny.expert, amateur: other.amateur, ...load });
});

afterAll(async () => {
    await synthetic?.dispose();
    await self?.dispose();
    await unrelated?.dispose();
});

describe('greedy speculative ≡ greedy expert', () => {
    for (const [name, get, minAcc, maxAcc] of [
        ['synthetic amateur', () => synthetic, 0.3, 1],
        ['the expert as its own drafter', () => self, 0.98, 1],
        ['an unrelated random amateur', () => unrelated, 0, 0.2],
    ] as const) {
        it(`with ${name}, γ ∈ {1, 2, 4, 8}`, async () => {
            const pair = get();
            for (const prompt of prompts) {
                const want = await pair.generate(prompt, { maxTokens: 48 });
                for (const draftTokens of gammas) {
                    const r = await pair.generate(prompt, { strategy: 'speculative', draftTokens, maxTokens: 48 });
                    expectSameUpToNearTies(pair, prompt, r.tokens, want.tokens);
                    expect(r.tokens).toHaveLength(48);
                    const s = r.stats;
                    expect(s.acceptanceRate).toBeGreaterThanOrEqual(minAcc);
                    expect(s.acceptanceRate).toBeLessThanOrEqual(maxAcc);
                    expect(s.acceptedTokens).toBeLessThanOrEqual(s.draftedTokens!);
                    expect(s.acceptanceByDepth).toHaveLength(draftTokens);
                    expect(s.verifyPasses! * (draftTokens + 1)).toBeGreaterThanOrEqual(48);
                    expect(s.meanAcceptedLength).toBeCloseTo(48 / s.verifyPasses!, 6);
                    expect(s.amateurPasses).toBeGreaterThan(0);
                }
            }
        });
    }
});

describe('speculative limits and options', () => {
    it('honours maxTokens and stop strings exactly (never emits accepted drafts past them)', async () => {
        for (const maxTokens of [1, 2, 3, 5, 9]) {
            const r = await synthetic.generate('limits', { strategy: 'speculative', draftTokens: 4, maxTokens });
            expect(r.tokens).toHaveLength(maxTokens);
        }
        const full = await synthetic.generate('Stop here', { maxTokens: 60 });
        const stop = full.text.slice(15, 18);
        const cut = full.text.indexOf(stop);
        const r = await synthetic.generate('Stop here', { strategy: 'speculative', draftTokens: 8, maxTokens: 60, stop });
        expect(r.finishReason).toBe('stop');
        expect(r.text).toBe(full.text.slice(0, cut));
        expect(r.tokens).toEqual(full.tokens.slice(0, r.tokens.length));
    });

    it('sampled speculative is reproducible for a seed', async () => {
        const o = { strategy: 'speculative', temperature: 0.9, topP: 0.95, seed: 11, maxTokens: 40 } as const;
        const a = await synthetic.generate('seeded', o);
        const b = await synthetic.generate('seeded', o);
        expect(b.tokens).toEqual(a.tokens);
        expect(a.stats.draftedTokens).toBeGreaterThan(0);
    });

    it('needs a pair', async () => {
        await using m = await loadModel((await tinyPair()).expert, { contextSize: 128 });
        await expect(m.generate('x', { strategy: 'speculative' })).rejects.toBeInstanceOf(InvalidArgumentError);
        await expect(synthetic.generate('x', { strategy: 'sample', draftTokens: 3 })).rejects.toThrow(/does not apply/);
        await expect(synthetic.generate('x', { strategy: 'speculative', draftTokens: 0 })).rejects.toThrow(/draftTokens/);
    });
});

describe('sampled speculative follows the expert distribution', () => {
    // Tiny vocabulary pair: the first two sampled tokens' joint law must equal the expert's exact
    // law computed from its logits. Cells with little mass are merged into one "other" cell.
    it('joint law of the first two tokens (TV bound, fixed seeds)', async () => {
        const paths = await syntheticPair('tinyvocab-5', { shape: 'tiny', vocab: { tiny: 5 }, seed: 5, outScale: 10, epsilon: 0.3 });
        await using pair = await loadPair({ ...paths, contextSize: 64, threads: 2 });
        const prompt = pair.tokenize(' a b');
        const jointLaw = (t: number) => exactJointOfTwo(prompt, (ctx) => softmax(pair._decoder.evalLogits(ctx, false), t));
        const { cellOf, merge, expected, bound: boundFor, tvTo: tvOf } = twoTokenCells(jointLaw(1));

        const N = 6000;
        const counts = new Map<string, number>();
        for (let i = 0; i < N; i++) {
            const r = await pair.generate(prompt, { strategy: 'speculative', temperature: 1, draftTokens: 2, maxTokens: 2, seed: 1000 + i });
            const k = cellOf(r.tokens[0]!, r.tokens[1]!);
            counts.set(k, (counts.get(k) ?? 0) + 1);
        }
        const tvTo = (law: Map<string, number>) => tvOf(counts, N, law);
        const bound = boundFor(N);
        expect(expected.size).toBeGreaterThan(3);
        expect(tvTo(expected)).toBeLessThan(bound);
        // negative control (power): the same samples are far from a slightly different law (T = 1.25)
        expect(tvTo(merge(jointLaw(1.25)))).toBeGreaterThan(bound);
    });
});
