/**
 * Quantized pairs (Q8_0, Q4_K): ggml's quantized matmuls run different kernels for one token and for a
 * batch (AVX-512 VNNI / AVX2 for one row; AMX tiles, llamafile's tinyBLAS, ggml's repacked 4-row gemm or our
 * small-batch kernel for several, depending on the CPU and the build). A batch of more than one token is
 * also where a miscompiled AMX tile config crashed the process (CMakeLists.txt explains the GCC
 * workaround). Every check here compares batched with one-token evaluation of the same text.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, loadPair, type ModelPair } from '../../lib/index.js';
import { CHAIN_PROMPT, scoreChainBothWays } from '../helpers/chain.js';
import { syntheticPair } from '../helpers/pairs.js';

let pair: ModelPair;
let files: { expert: string; amateur: string };

beforeAll(async () => {
    files = await syntheticPair('tiny-q8', { shape: 'tiny-q8', seed: 1 });
    pair = await loadPair({ ...files, contextSize: 1024, threads: 2, sequences: 8 });
});

afterAll(async () => {
    await pair?.dispose();
});

/**
 * Tolerance of the batched-vs-one-token comparison below (|Δ log-prob|), and why.
 *
 * Both sides score the same prefix cells (one prefilled sequence), so they differ only in how each chain
 * row's matmuls are computed: ggml (or our small-batch kernel) for a batch of k rows against the one-row
 * kernel. Where both use the same per-row code the results are bit-identical (Δ = 0: ours, and ggml's
 * one-row fallbacks for small batches). Where they do not (AMX tiles, tinyBLAS, ggml's 4-row K-quant gemm),
 * they sum the same exact integer block products in another order: f32 re-association, relative error
 * ≤ n·2⁻²⁴ per dot product over its n ≤ 256 float terms (≈ 1.5e-5), and the synthetic layers add only
 * ε-scaled residuals (ε = 0.015), so a log-prob moves by ~1e-5. One more effect can make it larger: a value
 * that the next matmul re-quantises to 8 bits (Q8_0 / Q8_K activations) and that sits within that 1e-5 of a
 * rounding boundary lands one step away. Such a flip is rare (the chance is that relative error over the
 * 1/127 step, ≈ 1e-3 per row and matmul input) and its effect is damped by the later layers, except in the
 * output head. TOLERANCE = 1e-3 allows that margin while keeping the check's power: a node that misses one
 * ancestor (a tree-attention bug) moves log-probs here by 5e-2 (Q8_0) and 1e-1 (Q4_K), measured by the
 * negative control at the end of this file.
 */
const TOLERANCE = 1e-3;

/**
 * Scores a chain after a 40+-token prompt with one verifyForest() pass, and the same chain on a second
 * copy of the prefilled prompt one token per pass (append, then a one-node verification): every node's
 * log-prob, its top-3 next-token log-probs and its argmax (except at a near-tie) must agree.
 */
async function checkChainAgainstOneTokenPasses(p: ModelPair, length: number): Promise<number> {
    const { prompt, batched, alone } = await scoreChainBothWays(p, length, { batched: 3, alone: 8 });
    expect(prompt.length).toBeGreaterThan(40); // a prefill batch large enough for 2×16-row tiles
    let maxDelta = 0;
    for (const [i, node] of batched.entries()) {
        const want = alone[i]!;
        maxDelta = Math.max(maxDelta, Math.abs(node.logprob - want.logprob));
        for (const top of node.top!) {
            const match = want.top!.find((t) => t.token === top.token);
            expect(match, `top token ${top.token} of node ${i} is not among the reference's top 8`).toBeDefined();
            maxDelta = Math.max(maxDelta, Math.abs(top.logprob - match!.logprob));
        }
        const margin = want.top![0]!.logprob - want.top![1]!.logprob;
        if (margin > 2 * TOLERANCE) expect(node.argmax).toBe(want.argmax);
    }
    expect(maxDelta).toBeLessThanOrEqual(TOLERANCE);
    return maxDelta;
}

/** Negative control: the same comparison against a reference that lacks one ancestor of each node (a tree-attention bug). */
async function missingAncestorDelta(p: ModelPair): Promise<number> {
    const prompt = p.tokenize(CHAIN_PROMPT);
    const chain = Array.from({ length: 6 }, (_, i) => 400 + i * 113);
    const seq = await p.createSequence(prompt);
    const r = await p.verifyForest([{ sequence: seq, nodes: chain.map((token, i) => ({ token, parent: i - 1 })) }], { rule: 'none' });
    await r.release();
    await seq.dispose();
    let delta = 0;
    for (let i = 2; i < chain.length; i++) {
        const ref = await p.createSequence([...prompt, ...chain.slice(0, i - 2), chain[i - 1]!]);
        const one = await p.verifyForest([{ sequence: ref, nodes: [{ token: chain[i]!, parent: -1 }] }], { rule: 'none' });
        delta = Math.max(delta, Math.abs(one.trees[0]!.nodes[0]!.logprob - r.trees[0]!.nodes[i]!.logprob));
        await one.release();
        await ref.dispose();
    }
    return delta;
}

describe('Q8_0 pair', () => {
    // 2..8 tokens run llama-duet's small-batch VNNI kernel (native/ggml/amx-small-m.inc), 12 run
    // ggml's AMX tiles; the prompt's prefill is a 40+ row AMX batch either way.
    it.each([2, 5, 8, 12, 16])('a batched chain of %i scores every token as one-token-at-a-time decoding does (|Δ log-prob| ≤ 1e-3)', async (length) => {
        await checkChainAgainstOneTokenPasses(pair, length);
    });

    it('negative control: a node missing one ancestor is caught at this tolerance', async () => {
        expect(await missingAncestorDelta(pair)).toBeGreaterThan(10 * TOLERANCE);
    });

    it('greedy speculative (batched verification) reproduces greedy decoding token for token, γ ∈ {1, 4, 8}', async () => {
        for (const text of ['The quick brown fox', 'In a hole in the ground there lived a hobbit. '.repeat(3)]) {
            const greedy = await pair.generate(text, { strategy: 'greedy', maxTokens: 48 });
            for (const draftTokens of [1, 4, 8]) {
                const spec = await pair.generate(text, { strategy: 'speculative', maxTokens: 48, draftTokens });
                expect(spec.tokens).toEqual(greedy.tokens);
                expect(spec.stats.expertPasses).toBeLessThan(greedy.stats.expertPasses);
            }
        }
    });

    it('useMmap: mapped, read and the default load the same weights (ggml repacks them for AMX either way)', async () => {
        const text = 'The quick brown fox';
        const reference = await pair.generate(text, { strategy: 'greedy', maxTokens: 16 });
        for (const useMmap of [true, false, undefined]) {
            await using model = await loadModel(files.expert, { contextSize: 256, threads: 2, ...(useMmap === undefined ? {} : { useMmap }) });
            if (useMmap !== undefined) expect(model.info.mmap).toBe(useMmap);
            else expect(typeof model.info.mmap).toBe('boolean'); // false where ggml has its AMX buffer type
            expect((await model.generate(text, { strategy: 'greedy', maxTokens: 16 })).tokens).toEqual(reference.tokens);
        }
    });
});

describe('Q4_K pair', () => {
    let q4: ModelPair;
    beforeAll(async () => {
        q4 = await loadPair({ ...(await syntheticPair('tiny-q4k', { shape: 'tiny-q4k', seed: 1 })), contextSize: 1024, threads: 2, sequences: 8 });
    });
    afterAll(async () => {
        await q4?.dispose();
    });

    // ggml's K-quant kernels: AMX tiles for a batch, AVX-512 VNNI for one token, on CPUs with AMX
    it.each([2, 3, 4, 6, 8, 16])('a batched chain of %i scores every token as one-token-at-a-time decoding does (|Δ log-prob| ≤ 1e-3)', async (length) => {
        await checkChainAgainstOneTokenPasses(q4, length);
    });

    it('negative control: a node missing one ancestor is caught at this tolerance', async () => {
        expect(await missingAncestorDelta(q4)).toBeGreaterThan(10 * TOLERANCE);
    });

    it('greedy speculative reproduces greedy decoding token for token, γ ∈ {1, 2, 4}', async () => {
        const text = 'The quick brown fox';
        const greedy = await q4.generate(text, { strategy: 'greedy', maxTokens: 40 });
        for (const draftTokens of [1, 2, 4]) {
            const spec = await q4.generate(text, { strategy: 'speculative', maxTokens: 40, draftTokens });
            expect(spec.tokens).toEqual(greedy.tokens);
        }
    });
});

