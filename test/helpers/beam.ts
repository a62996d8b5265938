/** A float64 reference of beam search (the rules of native/strategies/Beam.cpp), shared by the beam and DSBD tests. */
import { logSoftmax } from './pairs.js';

const EOS = 2;

/** Anything with one-token logits: a LlamaModel or a ModelPair (its expert). */
interface Scorer {
    _decoder: { evalLogits(tokens: number[], keep: boolean): Float32Array };
}

interface RefBeam {
    tokens: number[];
    logProb: number;
    length: number;
    finished: boolean;
}

/**
 * Beam search in float64 from one-token evaluations, with the rules strategies/Beam.cpp documents (HF
 * BeamSearchScorer): per step the 2W best children in order (ties: lower beam, lower token); an end-of-generation
 * child ranked < W is a finished candidate; the W best finished are kept; done at maxTokens, with no live
 * beam, or by earlyStopping. `margin` is the smallest gap between the totals it had to order (near-ties make
 * the comparison with the batched native passes meaningless).
 */
export function referenceBeamSearch(model: Scorer, prompt: number[], W: number, maxTokens: number, lengthPenalty: number, early: boolean | 'never') {
    const score = (b: RefBeam) => b.logProb / b.length ** lengthPenalty;
    let live: RefBeam[] = [{ tokens: [], logProb: 0, length: 0, finished: false }];
    let finished: RefBeam[] = [];
    let margin = Infinity;
    const addFinished = (b: RefBeam) => {
        finished.push(b);
        finished.sort((x, y) => score(y) - score(x));
        finished = finished.slice(0, W);
    };
    for (let t = 1; t <= maxTokens; t++) {
        const cands: { u: number; x: number; total: number }[] = [];
        live.forEach((b, u) => {
            const lp = logSoftmax(model._decoder.evalLogits([...prompt, ...b.tokens], false));
            lp.forEach((v, x) => cands.push({ u, x, total: b.logProb + v }));
        });
        cands.sort((a, b) => b.total - a.total || a.u - b.u || a.x - b.x);
        for (let i = 0; i + 1 < Math.min(cands.length, 2 * W + 1); i++) margin = Math.min(margin, cands[i]!.total - cands[i + 1]!.total);
        const next: RefBeam[] = [];
        for (let rank = 0; rank < Math.min(cands.length, 2 * W); rank++) {
            if (next.length === W) break;
            const c = cands[rank]!;
            const parent = live[c.u]!;
            if (c.x === EOS) {
                if (rank < W) addFinished({ tokens: parent.tokens, logProb: c.total, length: t, finished: true });
                continue;
            }
            next.push({ tokens: [...parent.tokens, c.x], logProb: c.total, length: t, finished: false });
        }
        let end: 'finished' | 'length' | null = null;
        if (next.length === 0) end = 'finished';
        else if (t >= maxTokens) end = 'length';
        else if (finished.length >= W) {
            if (early === true) end = 'finished';
            else {
                const best = Math.max(...next.map((b) => b.logProb));
                const len = early === 'never' && lengthPenalty > 0 ? maxTokens : t;
                if (score(finished[finished.length - 1]!) >= best / len ** lengthPenalty) end = 'finished';
            }
        }
        if (end) {
            const all = end === 'length' || finished.length === 0 ? [...finished, ...next] : finished;
            const sorted = [...all].sort((x, y) => score(y) - score(x)).slice(0, W);
            for (let i = 0; i + 1 < sorted.length; i++) margin = Math.min(margin, score(sorted[i]!) - score(sorted[i + 1]!));
            return { beams: sorted.map((b) => ({ ...b, score: score(b) })), margin };
        }
        live = next;
    }
    throw new Error('unreachable');
}


/**
 * Exact law of W = 2 beam sampling (ALGORITHMS.md §4, §D) over T steps from a prompt at temperature 1:
 * step 1 draws two tokens from p(·|prompt); each later step draws two children of the beam pair from
 * J(u, x) ∝ p(beam_u)·p(x | beam_u), with replacement (the reference) or without (the negative control).
 * Returns the law of the multiset of the two final sequences (key: `beamPairKey`), and the mass of draws
 * that ended generation (these laws assume it negligible). Cells below `prune` of a step's mass are dropped.
 */
export function beamPairLaw(probs: (ctx: number[]) => Float64Array, T: number, replacement: boolean, prune = 1e-7) {
    const law = new Map<string, number>();
    let eosMass = 0;
    const memo = new Map<string, Float64Array>();
    const p = (ctx: number[]) => {
        const k = ctx.join(',');
        if (!memo.has(k)) memo.set(k, probs(ctx));
        return memo.get(k)!;
    };
    // states: [beam a, beam b, P(a), P(b), probability of the state]
    let states: { a: number[]; b: number[]; pa: number; pb: number; w: number }[] = [{ a: [], b: [], pa: 1, pb: 0, w: 1 }];
    for (let t = 0; t < T; t++) {
        const next = new Map<string, { a: number[]; b: number[]; pa: number; pb: number; w: number }>();
        for (const s of states) {
            const beams = t === 0 ? [{ seq: s.a, P: 1 }] : [{ seq: s.a, P: s.pa }, { seq: s.b, P: s.pb }];
            const z = beams.reduce((acc, b) => acc + b.P, 0);
            const cells: { seq: number[]; P: number; w: number; eos: boolean }[] = [];
            for (const b of beams) {
                p(b.seq).forEach((q, x) => {
                    const w = (b.P * q) / z;
                    if (w > prune) cells.push({ seq: [...b.seq, x], P: b.P * q, w, eos: x === EOS });
                });
            }
            const zc = cells.reduce((acc, c) => acc + c.w, 0);
            for (const c1 of cells) {
                for (const c2 of cells) {
                    if (!replacement && c1 === c2) continue;
                    const w = s.w * (replacement ? (c1.w / zc) * (c2.w / zc) : (c1.w / zc) * (c2.w / (zc - c1.w)));
                    if (c1.eos || c2.eos) {
                        eosMass += w;
                        continue;
                    }
                    const key = `${c1.seq.join(',')}|${c2.seq.join(',')}`;
                    const e = next.get(key);
                    if (e) e.w += w;
                    else next.set(key, { a: c1.seq, b: c2.seq, pa: c1.P, pb: c2.P, w });
                }
            }
        }
        states = [...next.values()].filter((s) => s.w > prune * 1e-2);
    }
    for (const s of states) {
        const k = beamPairKey(s.a, s.b);
        law.set(k, (law.get(k) ?? 0) + s.w);
    }
    return { law, eosMass };
}

/** The multiset {a, b} of two token sequences as one key. */
export function beamPairKey(a: readonly number[], b: readonly number[]): string {
    return [a.join(','), b.join(',')].sort().join('|');
}

