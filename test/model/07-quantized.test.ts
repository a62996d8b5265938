/**
 * A Q8_0 pair: ggml's quantized matmuls, which on CPUs with AMX tiles run two different kernels (AVX-512
 * VNNI for one token and, in our build, for batches of up to 8; AMX tiles for larger batches). A batch of
 * more than one token is where a miscompiled tile
 * config crashed the process (CMakeLists.txt explains the GCC workaround), so every check here mixes
 * batched and one-token evaluation of the same text.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, loadPair, type ModelPair } from '../../lib/index.js';
import { argmax, logSoftmax, syntheticPair } from '../helpers/pairs.js';

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
 * Scores a chain after a 40+-token prompt with one verifyForest() pass and checks every node against the
 * same prefix evaluated one token per pass: the node's log-prob, its top-3 next-token log-probs
 * (|Δ| ≤ 1e-4) and its argmax.
 */
async function checkChainAgainstOneTokenPasses(p: ModelPair, length: number): Promise<void> {
    const prompt = p.tokenize('Once upon a time there was a fox who lived in the forest '.repeat(4));
    expect(prompt.length).toBeGreaterThan(40); // a prefill batch large enough for 2×16-row tiles
    const chain = Array.from({ length }, (_, i) => 400 + i * 113);
    const seq = await p.createSequence(prompt);
    const r = await p.verifyForest([{ sequence: seq, nodes: chain.map((token, i) => ({ token, parent: i - 1 })) }], { rule: 'none', topLogprobs: 3 });
    let maxDelta = 0;
    for (const [i, node] of r.trees[0]!.nodes.entries()) {
        // the reference: the prefix evaluated one token per pass (the M = 1 kernel)
        const before = logSoftmax(p._decoder.evalLogits([...prompt, ...chain.slice(0, i)], false));
        const after = logSoftmax(p._decoder.evalLogits([...prompt, ...chain.slice(0, i + 1)], false));
        maxDelta = Math.max(maxDelta, Math.abs(node.logprob - before[chain[i]!]!));
        for (const top of node.top!) maxDelta = Math.max(maxDelta, Math.abs(top.logprob - after[top.token]!));
        expect(node.argmax).toBe(argmax(Float32Array.from(after)));
    }
    expect(maxDelta).toBeLessThanOrEqual(1e-4);
    await r.release();
    await seq.dispose();
}

describe('Q8_0 pair', () => {
    // 2..8 tokens run llama-duet's small-batch VNNI kernel (native/ggml/amx-small-m.inc), 12 run
    // ggml's AMX tiles; the prompt's prefill is a 40+ row AMX batch either way.
    it.each([2, 5, 8, 12])('a batched chain of %i scores every token as one-token-at-a-time decoding does (|Δ log-prob| ≤ 1e-4)', async (length) => {
        await checkChainAgainstOneTokenPasses(pair, length);
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
    it.each([2, 3, 6])('a batched chain of %i scores every token as one-token-at-a-time decoding does (|Δ log-prob| ≤ 1e-4)', async (length) => {
        await checkChainAgainstOneTokenPasses(q4, length);
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

