/**
 * The float exp behind every softmax and log-sum-exp over a vocabulary row (native/sampling/Distribution.cpp:
 * a vectorisable Cephes polynomial instead of float64 libm exp) against a float64 reference.
 */
import { describe, expect, it } from 'vitest';
import { addon } from '../../lib/native.js';
import { rng } from '../helpers/stats.js';

function reference(logits: Float32Array, temperature: number): { probs: Float64Array; lse: number } {
    let m = -Infinity;
    for (const v of logits) m = Math.max(m, v);
    let s = 0;
    for (const v of logits) s += Math.exp((v - m) / temperature);
    let s1 = 0;
    for (const v of logits) s1 += Math.exp(v - m);
    return { probs: Float64Array.from(logits, (v) => Math.exp((v - m) / temperature) / s), lse: m + Math.log(s1) };
}

describe('softmax and log-sum-exp over vocabulary rows', () => {
    it('match float64 within 1e-6 (log-sum-exp, absolute) and 1e-5 relative (probabilities ≥ 1e-30), -inf gives exactly 0', () => {
        const rand = rng(3);
        for (const n of [1, 7, 255, 256, 257, 32000, 152064]) {
            for (const [spread, temperature] of [[1, 1], [8, 0.7], [30, 1], [4, 2.5]] as const) {
                const logits = Float32Array.from({ length: n }, () => (rand() - 0.5) * 2 * spread + 100);
                if (n > 2) logits[1] = -Infinity;
                const got = addon()._softmax(logits, temperature);
                const want = reference(logits, temperature);
                expect(Math.abs(got.logsumexp - want.lse)).toBeLessThanOrEqual(1e-6);
                let worst = 0;
                let sum = 0;
                for (let i = 0; i < n; i++) {
                    sum += got.probs[i]!;
                    if (want.probs[i]! >= 1e-30) worst = Math.max(worst, Math.abs(got.probs[i]! - want.probs[i]!) / want.probs[i]!);
                }
                // the exponent (x − max)/T is formed in float: |y| ≤ 60 here, so ~60 · 6e-8 relative
                expect(worst).toBeLessThanOrEqual(1e-5);
                expect(Math.abs(sum - 1)).toBeLessThanOrEqual(1e-5);
                if (n > 2) expect(got.probs[1]).toBe(0);
            }
        }
    });

    it('a row of one finite logit among -inf is a point mass', () => {
        const logits = new Float32Array(1000).fill(-Infinity);
        logits[417] = -3;
        const got = addon()._softmax(logits, 1);
        expect(got.probs[417]).toBe(1);
        expect(got.logsumexp).toBeCloseTo(-3, 12);
    });
});
