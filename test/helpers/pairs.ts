/** Synthetic pairs for the model tests, written once per machine into the OS temp dir. */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { makePair, type MakePairOptions, type ModelPair } from '../../lib/index.js';

export interface PairPaths {
    expert: string;
    amateur: string;
}

export async function syntheticPair(name: string, options: Omit<MakePairOptions, 'out'> = {}): Promise<PairPaths> {
    const out = join(tmpdir(), 'llama-duet-test', `v1-${name}`);
    const expert = join(out, 'expert.gguf');
    const amateur = join(out, 'amateur.gguf');
    if (!existsSync(expert) || !existsSync(amateur)) await makePair({ out, ...options });
    return { expert, amateur };
}

/** The default test pair: tiny shape, llama SPM vocabulary (32000 tokens), f32. */
export const tinyPair = () => syntheticPair('tiny', { shape: 'tiny', seed: 1 });

export function argmax(row: Float32Array): number {
    let best = 0;
    for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
    return best;
}

/** log-softmax of a logits row in float64: the reference the native log-probs are checked against. */
export function logSoftmax(row: Float32Array): Float64Array {
    let m = -Infinity;
    for (const v of row) m = Math.max(m, v);
    let s = 0;
    for (const v of row) s += Math.exp(v - m);
    const lse = m + Math.log(s);
    return Float64Array.from(row, (v) => v - lse);
}

/**
 * Largest top-2 logit margin at which a batched pass and a one-token pass may legitimately pick different
 * argmaxes. The two paths compute the same products but sum them in another order (f32 re-association:
 * relative error ≤ n·2⁻²⁴ of Σ|terms| per dot product; n ≤ 256 terms in these models, |logit| ≲ 40 with the
 * synthetic output scale ⇒ ≲ 6e-4), so only a margin below ~1e-3 can flip. A divergence at a wider margin is a
 * real bug (greedy speculative must reproduce greedy token for token).
 */
export const NEAR_TIE = 1e-3;

/** Equal token for token, or diverging only where the expert's top-2 logit margin is a near-tie. */
export function expectSameUpToNearTies(pair: ModelPair, prompt: string, got: number[], want: number[]): void {
    const n = Math.min(got.length, want.length);
    let i = 0;
    while (i < n && got[i] === want[i]) i++;
    if (i === got.length && i === want.length) return;
    const logits = pair._decoder.evalLogits([...pair.tokenize(prompt), ...want.slice(0, i)], false);
    const top = argmax(logits);
    let second = -Infinity;
    for (let j = 0; j < logits.length; j++) if (j !== top && logits[j]! > second) second = logits[j]!;
    expect(logits[top]! - second, `divergence at token ${i} is not a near-tie`).toBeLessThan(NEAR_TIE);
}
