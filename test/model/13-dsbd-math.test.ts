/**
 * DSBD's layer verification and width rule (native/sampling/Dsbd.h; ALGORITHMS.md §6.2, §6.3, §7.7), alone,
 * on small joints over (parent beam, token), with fixed seeds.
 *
 * Statistical tolerance: TV between an empirical law of c cells from N draws and the true law has mean about
 * 0.4·(Σ√π)²/√N (each cell's error ~ N(0, π/N), E|·| = √(2/π)·σ); for the 3-token joints below that is 0.004
 * at N = 1e5, and 0.01 is 2.5 of those. The negative control's bias (0.147 simulated, §7.9) is 15× that.
 */
import { describe, expect, it } from 'vitest';
import { addon } from '../../lib/native.js';

const P3 = Float64Array.from([0.55, 0.3, 0.15]);
const Q3 = Float64Array.from([0.2, 0.5, 0.3]);

function tv(counts: Float64Array, law: (i: number) => number): number {
    let n = 0;
    for (const c of counts) n += c;
    let s = 0;
    for (let i = 0; i < counts.length; i++) s += Math.abs(counts[i]! / n - law(i));
    return s / 2;
}

function random(n: number, seed: number, zeros = 0): Float64Array {
    let x = seed;
    const r = () => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648);
    const v = Float64Array.from({ length: n }, (_, i) => (i < zeros ? 0 : 0.05 + r()));
    const z = v.reduce((a, b) => a + b, 0);
    return v.map((e) => e / z);
}

describe('DSBD layer verification (i.i.d. draft beams)', () => {
    it('every output slot follows p_beam and the slots are independent (TV of the slot pair ≤ 0.01, N = 1e5)', () => {
        const r = addon()._dsbdLayer({ p: P3, q: Q3, draftBeams: 3, need: 2, width: 2, drafts: 'iid', trials: 100_000, seed: 1 });
        expect(tv(r.first, (i) => P3[i]!)).toBeLessThan(0.01);
        expect(tv(r.pair, (i) => P3[Math.floor(i / 3)]! * P3[i % 3]!)).toBeLessThan(0.01);
        // the layer passes (2 of 3 drafts accepted) often enough to matter, and fails often enough too
        expect(r.passed / 100_000).toBeGreaterThan(0.2);
        expect(r.passed / 100_000).toBeLessThan(0.8);
    });

    it('holds on a wider joint with more draft beams (6 entries, W_S = 5, need 3, N = 4e5)', () => {
        const p = random(6, 7);
        const q = random(6, 11);
        const r = addon()._dsbdLayer({ p, q, draftBeams: 5, need: 3, width: 3, drafts: 'iid', trials: 400_000, seed: 2 });
        expect(tv(r.first, (i) => p[i]!)).toBeLessThan(0.01);
        expect(tv(r.pair, (i) => p[Math.floor(i / 6)]! * p[i % 6]!)).toBeLessThan(0.01);
    });

    it('negative control: drafts without replacement, verified with the naive q, bias the second slot', () => {
        const r = addon()._dsbdLayer({ p: P3, q: Q3, draftBeams: 3, need: 2, width: 2, drafts: 'without-replacement', trials: 100_000, seed: 1 });
        expect(tv(r.first, (i) => P3[i]!)).toBeLessThan(0.01); // slot 1 stays exact
        expect(tv(r.pair, (i) => P3[Math.floor(i / 3)]! * P3[i % 3]!)).toBeGreaterThan(0.05); // §7.9: 0.147
    });

    it('a draft with p_beam = 0 (its parent beam was rejected) is never accepted, and the output still follows p_beam', () => {
        // entries 0..2 have p = 0 and all of q's mass: every draft lands there
        const p = Float64Array.from([0, 0, 0, 0.5, 0.3, 0.2]);
        const q = Float64Array.from([0.3, 0.3, 0.4, 0, 0, 0]);
        const r = addon()._dsbdLayer({ p, q, draftBeams: 4, need: 2, width: 2, drafts: 'iid', trials: 50_000, seed: 3 });
        expect(r.accepted[0]).toBe(50_000);
        expect(r.passed).toBe(0);
        expect(tv(r.pair, (i) => p[Math.floor(i / 6)]! * p[i % 6]!)).toBeLessThan(0.01);
    });
});

describe('DSBD width', () => {
    it('P(m, k) matches Monte-Carlo of the acceptance process within 0.01 (V = 6, m = 4)', () => {
        const p = random(6, 5);
        const q = random(6, 9);
        const w = addon()._dsbdWidth({ p, q, m: 4, t: 0.7, minWidth: 1 });
        expect(w.counts.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
        let a1 = 0;
        for (let i = 0; i < 6; i++) a1 += Math.min(p[i]!, q[i]!);
        expect(w.alpha[0]).toBeCloseTo(a1, 12);
        // the process never capped: need = width = m
        const mc = addon()._dsbdLayer({ p, q, draftBeams: 4, need: 4, width: 4, drafts: 'iid', trials: 200_000, seed: 4 });
        for (let k = 0; k <= 4; k++) expect(Math.abs(mc.accepted[k]! / 200_000 - w.counts[k]!)).toBeLessThan(0.01);
    });

    it('the width is the largest K with P(≥ K accepted) ≥ t, at least minWidth (brute-force scan)', () => {
        for (const seed of [1, 2, 3]) {
            const p = random(8, 100 + seed);
            const q = random(8, 200 + seed);
            for (const t of [0.1, 0.5, 0.7, 0.9, 0.99]) {
                for (const minWidth of [1, 2, 3]) {
                    const w = addon()._dsbdWidth({ p, q, m: 6, t, minWidth });
                    let want = 0;
                    for (let K = 1; K <= 6; K++) {
                        let tail = 0;
                        for (let k = K; k <= 6; k++) tail += w.counts[k]!;
                        if (tail >= t) want = K;
                    }
                    expect(w.width).toBe(Math.max(minWidth, want));
                }
            }
        }
    });

    it('identical draft and target laws accept every draft: width = m', () => {
        const w = addon()._dsbdWidth({ p: P3, q: P3, m: 5, t: 0.9, minWidth: 1 });
        expect(w.counts[5]).toBeCloseTo(1, 12);
        expect(w.width).toBe(5);
    });
});
