/** Contrastive decoding and SCD: the pure functions, greedy SCD ≡ greedy CD, and sampled SCD follows the contrastive law exactly. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, loadModel, loadPair, type ModelPair } from '../../lib/index.js';
import { addon } from '../../lib/native.js';
import { syntheticPair, tinyPair, NEAR_TIE } from '../helpers/pairs.js';
import { exactJointOfTwo, markovTable, rng, softmax, tv, twoTokenCells, cdRef } from '../helpers/stats.js';

let pair: ModelPair;

beforeAll(async () => {
    pair = await loadPair({ ...(await tinyPair()), contextSize: 1024, threads: 2 });
});

afterAll(async () => {
    await pair?.dispose();
});

/** float64 reference of ALGORITHMS.md §3: mask on raw expert logits, then (1+β)s_e − βs_a/τ_a. */
describe('contrastive logits (pure functions vs a float64 reference)', () => {
    const rand = rng(11);
    const row = (n: number, scale: number) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
    const cases = [
        [0.1, 0.5, 1],
        [0.5, 1, 0.5],
        [0.01, 2, 1],
        [1, 0.5, 1],
        [0, 0.5, 1],
    ] as const;

    it('matches the reference; the mask always holds argmax s_e; α = 1 keeps only the argmax', () => {
        for (const [alpha, beta, tauA] of cases) {
            for (let k = 0; k < 5; k++) {
                const se = row(1000, 8);
                const sa = row(1000, 8);
                const got = addon()._contrastiveLogits(se, sa, alpha, beta, tauA);
                const want = cdRef(se, sa, alpha, beta, tauA);
                let top = 0;
                for (let i = 1; i < se.length; i++) if (se[i]! > se[top]!) top = i;
                expect(Number.isFinite(got[top]!)).toBe(true);
                let kept = 0;
                for (let i = 0; i < got.length; i++) {
                    expect(Number.isFinite(got[i]!)).toBe(Number.isFinite(want[i]!));
                    if (Number.isFinite(want[i]!)) {
                        // f32 evaluation of (1+β)s_e − β·s_a/τ_a: three roundings of values ≲ 50 (≤ 3·2⁻²⁴·50 ≈ 1e-5)
                        expect(Math.abs(got[i]! - want[i]!)).toBeLessThan(1e-4);
                        kept++;
                    }
                }
                if (alpha === 1) expect(kept).toBe(1);
                if (alpha === 0) expect(kept).toBe(1000);
            }
        }
    });

    it('is invariant to adding a constant to either row; β = 0 is the masked, renormalised expert', () => {
        for (const [alpha, beta, tauA] of cases) {
            const se = row(500, 6);
            const sa = row(500, 6);
            const base = softmax(addon()._contrastiveLogits(se, sa, alpha, beta, tauA));
            const shifted = softmax(
                addon()._contrastiveLogits(
                    se.map((v) => v + 3.25),
                    sa.map((v) => v - 7.5),
                    alpha,
                    beta,
                    tauA,
                ),
            );
            // the shifts are exact in f32 only up to one rounding of each logit (≤ 2⁻²⁴·|s| ≈ 1e-6 relative): TV ≪ 1e-5
            expect(tv(base, shifted)).toBeLessThan(1e-5);
            const b0 = softmax(addon()._contrastiveLogits(se, sa, alpha, 0, tauA));
            const pe = softmax(se);
            const pmax = Math.max(...pe);
            const masked = pe.map((p) => (p >= alpha * pmax * (1 - 1e-6) ? p : 0));
            const z = masked.reduce((a, b) => a + b, 0);
            expect(tv(b0, masked.map((p) => p / z))).toBeLessThan(1e-5);
        }
    });
});

describe('greedy scd ≡ greedy contrastive', () => {
    it('token for token for several α, β, γ (divergence only at a contrastive near-tie)', async () => {
        for (const prompt of ['The quick brown fox', 'Once upon a time']) {
            const ptoks = pair.tokenize(prompt);
            for (const [alpha, beta] of [
                [0.1, 0.5],
                [0.5, 1],
                [0.01, 0.25],
            ] as const) {
                const want = (await pair.generate(ptoks, { strategy: 'contrastive', alpha, beta, maxTokens: 40 })).tokens;
                for (const draftTokens of [1, 4, 8]) {
                    for (const bonus of [true, false]) {
                        const r = await pair.generate(ptoks, { strategy: 'scd', alpha, beta, draftTokens, bonus, maxTokens: 40 });
                        let i = 0;
                        while (i < 40 && r.tokens[i] === want[i]) i++;
                        if (i < 40) {
                            const ctx = [...ptoks, ...want.slice(0, i)];
                            const cd = cdRef(pair._decoder.evalLogits(ctx, false), pair._decoder.evalLogits(ctx, false, 'amateur'), alpha, beta, 1);
                            const sorted = Array.from(cd).sort((a, b) => b - a);
                            expect(sorted[0]! - sorted[1]!, `divergence at ${i} (α ${alpha}, β ${beta}, γ ${draftTokens}) is not a near-tie`).toBeLessThan(NEAR_TIE);
                        }
                        expect(r.tokens).toHaveLength(40);
                        expect(r.stats.draftedTokens).toBeGreaterThan(0);
                        expect(r.stats.meanEntropyAccepted).toBeGreaterThanOrEqual(0);
                    }
                }
            }
        }
    });

    it('β = 0, α = 0: scd ≡ speculative and contrastive ≡ expert sampling (same seed, same tokens)', async () => {
        const o = { temperature: 0.9, seed: 21, maxTokens: 40 } as const;
        const scd = await pair.generate('equal laws', { ...o, strategy: 'scd', alpha: 0, beta: 0 });
        const spec = await pair.generate('equal laws', { ...o, strategy: 'speculative' });
        expect(scd.tokens).toEqual(spec.tokens);
        const cd = await pair.generate('equal laws', { ...o, strategy: 'contrastive', alpha: 0, beta: 0 });
        const sample = await pair.generate('equal laws', { ...o, strategy: 'sample' });
        expect(cd.tokens).toEqual(sample.tokens);
    });

    it('validates its options', async () => {
        await expect(pair.generate('x', { strategy: 'contrastive', alpha: 1.5 })).rejects.toBeInstanceOf(InvalidArgumentError);
        await expect(pair.generate('x', { strategy: 'contrastive', beta: -1 })).rejects.toThrow(/beta/);
        await expect(pair.generate('x', { strategy: 'contrastive', amateurTemperature: 0 })).rejects.toThrow(/amateurTemperature/);
        await expect(pair.generate('x', { strategy: 'speculative', bonus: false })).rejects.toThrow(/does not apply/);
        await expect(pair.generate('x', { strategy: 'contrastive', draftTokens: 3 })).rejects.toThrow(/does not apply/);
        await expect(pair.generate('x', { strategy: 'sample', alpha: 0.2 })).rejects.toThrow(/does not apply/);
        await using m = await loadModel((await tinyPair()).expert, { contextSize: 64 });
        await expect(m.generate('x', { strategy: 'scd' })).rejects.toThrow(/needs an expert\/amateur pair/);
    });
});

// ---- SCD acceptance math on Markov mocks (ALGORITHMS.md §5.2, §7.5), V = 10, N = 1e5
describe('SCD math: exact in p^c; the plain-expert bonus is caught', () => {
    const V = 10;
    const N = 100_000;
    const defaultRand = rng(77);
    const table = (sharp: number, rand = defaultRand) => markovTable(V, sharp, rand);
    const pe0 = table(2.5);
    const pa0 = table(2.5);
    const lawOf = (alpha: number, beta: number, pe = pe0, pa = pa0) => {
        const rows: Float64Array[] = [];
        for (let r = 0; r <= V; r++) {
            const se = Array.from(pe.subarray(r * V, r * V + V), Math.log);
            const sa = Array.from(pa.subarray(r * V, r * V + V), Math.log);
            rows.push(softmax(cdRef(se, sa, alpha, beta, 1)));
        }
        const joint = new Float64Array(V * V);
        for (let a = 0; a < V; a++) for (let b = 0; b < V; b++) joint[a * V + b] = rows[V]![a]! * rows[a]![b]!;
        return joint;
    };
    const marginals = (j: ArrayLike<number>, n = 1) => {
        const m1 = new Float64Array(V);
        const m2 = new Float64Array(V);
        for (let a = 0; a < V; a++) for (let b = 0; b < V; b++) (m1[a] += j[a * V + b]! / n), (m2[b] += j[a * V + b]! / n);
        return [m1, m2] as const;
    };
    const distance = (counts: Int32Array, law: Float64Array) => {
        const [c1, c2] = marginals(counts, N);
        const [e1, e2] = marginals(law);
        return Math.max(tv(c1, e1), tv(c2, e2));
    };
    const sim = (alpha: number, beta: number, gamma: number, bonus: 'delayed' | 'none' | 'expert', pe = pe0, pa = pa0) =>
        addon()._simulateScd({ vocab: V, pe, pa, alpha, beta, tauA: 1, gamma, bonus, trials: N, seed: 5 });

    it('both bonus modes are exact for β ∈ {0, 0.5, 1}, α ∈ {0.1, 0.5}; drafts outside V_α are never accepted', () => {
        for (const alpha of [0.1, 0.5]) {
            for (const beta of [0, 0.5, 1]) {
                for (const bonus of ['delayed', 'none'] as const) {
                    const r = sim(alpha, beta, 3, bonus);
                    expect(distance(r.joint, lawOf(alpha, beta)), `α ${alpha} β ${beta} ${bonus}`).toBeLessThanOrEqual(0.01);
                    expect(r.outsideDrafted).toBeGreaterThan(1000);
                    expect(r.outsideAccepted).toBe(0);
                }
            }
        }
    });

    it('negative control: a bonus drawn from the plain expert is biased', () => {
        // §7.2: a flat amateur makes TV(p_e, p^c) ≥ 0.1 at the bonus position and the bias P(accept)·TV visible
        const r2 = rng(78);
        const pe = table(2.5, r2);
        const pa = table(0.3, r2);
        const law = lawOf(0.1, 1, pe, pa);
        expect(tv(marginals(law)[0], marginals(lawOf(0, 0, pe, pa))[0])).toBeGreaterThan(0.1);
        expect(distance(sim(0.1, 1, 1, 'delayed', pe, pa).joint, law)).toBeLessThanOrEqual(0.01);
        expect(distance(sim(0.1, 1, 1, 'expert', pe, pa).joint, law)).toBeGreaterThan(0.01);
    });

    it('β = 0, α = 0: SCD is plain speculative sampling (target p_e); SCD accepts less than SD as β grows', () => {
        expect(distance(sim(0, 0, 3, 'delayed').joint, lawOf(0, 0))).toBeLessThanOrEqual(0.01);
        const acc = [0, 0.5, 1].map((beta) => {
            const r = sim(0, beta, 3, 'delayed');
            return r.accepted / r.rounds;
        });
        expect(acc[1]!).toBeLessThan(acc[0]!);
        expect(acc[2]!).toBeLessThan(acc[1]!);
    });
});

describe('sampled scd and contrastive follow the contrastive law end to end', () => {
    it('joint law of the first two tokens on a tiny-vocab pair (TV bound, fixed seeds)', async () => {
        const paths = await syntheticPair('tinyvocab-5', { shape: 'tiny', vocab: { tiny: 5 }, seed: 5, outScale: 10, epsilon: 0.3 });
        await using p = await loadPair({ ...paths, contextSize: 64, threads: 2 });
        const prompt = p.tokenize(' a b');
        const alpha = 0.05;
        const beta = 0.5;
        const jointLaw = (cd: boolean) =>
            exactJointOfTwo(prompt, (ctx) => {
                const se = p._decoder.evalLogits(ctx, false);
                return softmax(cd ? cdRef(se, p._decoder.evalLogits(ctx, false, 'amateur'), alpha, beta, 1) : se);
            });
        const { cellOf, merge, expected, bound: boundFor, tvTo: tvOf } = twoTokenCells(jointLaw(true));
        const expertLaw = merge(jointLaw(false));
        expect(expected.size).toBeGreaterThan(3);
        for (const [strategy, N] of [
            ['scd', 4000],
            ['contrastive', 2500],
        ] as const) {
            const counts = new Map<string, number>();
            for (let i = 0; i < N; i++) {
                const r = await p.generate(prompt, { strategy, alpha, beta, temperature: 1, maxTokens: 2, seed: 7000 + i, ...(strategy === 'scd' ? { draftTokens: 2 } : {}) });
                const k = cellOf(r.tokens[0]!, r.tokens[1]!);
                counts.set(k, (counts.get(k) ?? 0) + 1);
            }
            const tvTo = (law: Map<string, number>) => tvOf(counts, N, law);
            const bound = boundFor(N);
            expect(tvTo(expected), strategy).toBeLessThan(bound);
            // power: the same samples are far from the plain expert's law
            expect(tvTo(expertLaw), strategy).toBeGreaterThan(bound);
        }
    });
});
