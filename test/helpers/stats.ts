/** Shared pieces of the statistical tests: a seeded PRNG, Markov mock tables, softmax, TV, and the
 *  merged-cell comparison of a sampled two-token joint law against an exact one. */

// @ts-expect-error plain ESM (shared with the fuzzer and the soak script)
import { rng } from './prng.mjs';

export { rng };

/** An order-1 Markov mock: row r (r < V: after token r; r = V: at the start) is a law over V tokens. */
export function markovTable(V: number, sharpness: number, rand: () => number): Float32Array {
    const t = new Float32Array((V + 1) * V);
    for (let r = 0; r <= V; r++) {
        const e = Array.from({ length: V }, () => Math.exp(sharpness * (rand() * 2 - 1)));
        const s = e.reduce((a, b) => a + b, 0);
        e.forEach((x, i) => (t[r * V + i] = x / s));
    }
    return t;
}

/** softmax(l / t) in float64; −∞ entries get probability 0. */
export function softmax(l: ArrayLike<number>, t = 1): Float64Array {
    let m = -Infinity;
    for (let i = 0; i < l.length; i++) m = Math.max(m, l[i]!);
    const e = Float64Array.from({ length: l.length }, (_, i) => (Number.isFinite(l[i]!) ? Math.exp((l[i]! - m) / t) : 0));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
}

/** Total variation distance of two laws on the same cells. */
export function tv(a: ArrayLike<number>, b: ArrayLike<number>): number {
    let s = 0;
    for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
    return s / 2;
}

/** Exact joint law of the first two tokens, `"a,b"` → P, from a next-token law function. */
export function exactJointOfTwo(prompt: number[], law: (context: number[]) => ArrayLike<number>): Map<string, number> {
    const p1 = law(prompt);
    const joint = new Map<string, number>();
    for (let a = 0; a < p1.length; a++) {
        if (p1[a]! < 1e-4) continue;
        const p2 = law([...prompt, a]);
        for (let b = 0; b < p2.length; b++) if (p2[b]! > 0) joint.set(`${a},${b}`, p1[a]! * p2[b]!);
    }
    return joint;
}

/** Merges cells below 0.01 of `exact` into "other" and measures sampled counts against laws (ALGORITHMS.md §7.2). */
export function mergedCells(exact: Map<string, number>) {
    const kept = new Set([...exact].filter(([, v]) => v >= 0.01).map(([k]) => k));
    const cellOf = (k: string) => (kept.has(k) ? k : 'other');
    const merge = (l: Map<string, number>) => {
        const o = new Map<string, number>();
        for (const [k, v] of l) o.set(cellOf(k), (o.get(cellOf(k)) ?? 0) + v);
        return o;
    };
    const expected = merge(exact);
    return {
        cellOf,
        merge,
        expected,
        /** 2.5 × the expected TV of N draws from a law on these cells: ½·√(2(K−1)/(πN)) */
        bound: (N: number) => 2.5 * 0.5 * Math.sqrt((2 * (expected.size - 1)) / (Math.PI * N)),
        tvTo: (counts: Map<string, number>, N: number, l: Map<string, number>) => {
            let d = 0;
            for (const k of new Set([...l.keys(), ...counts.keys()])) d += Math.abs((counts.get(k) ?? 0) / N - (l.get(k) ?? 0));
            return d / 2;
        },
    };
}

/** mergedCells over two-token outcomes keyed `"a,b"` (ALGORITHMS.md §10). */
export function twoTokenCells(exact: Map<string, number>) {
    const cells = mergedCells(exact);
    return { ...cells, cellOf: (a: number, b: number) => cells.cellOf(`${a},${b}`) };
}

/**
 * Contrastive logits in float64 (O'Brien & Lewis; ALGORITHMS.md §3): (1+β)·s_e − β·s_a/τ_a on the α-mask of the
 * raw expert logits. Ids past the amateur's row (a padded expert vocabulary) are masked: probability 0, and the
 * mask's max is taken over the shared ids.
 */
export function cdRef(se: ArrayLike<number>, sa: ArrayLike<number>, alpha: number, beta: number, tauA: number): Float64Array {
    let max = -Infinity;
    for (let i = 0; i < Math.min(se.length, sa.length); i++) max = Math.max(max, se[i]!);
    const cutoff = alpha > 0 ? Math.log(alpha) + max : -Infinity;
    return Float64Array.from({ length: se.length }, (_, i) => (se[i]! >= cutoff && i < sa.length ? (1 + beta) * se[i]! - (beta * sa[i]!) / tauA : -Infinity));
}
