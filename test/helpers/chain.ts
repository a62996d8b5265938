/** A chain scored two ways, for the batch-vs-one-token checks of 07-quantized and 12-kernels. */
import type { ModelPair } from '../../lib/index.js';
import type { VerifiedNode } from '../../lib/forest.js';

export const CHAIN_PROMPT = 'Once upon a time there was a fox who lived in the forest '.repeat(4);

/**
 * Scores a chain of `length` tokens after CHAIN_PROMPT with one verifyForest() pass, and the same chain on
 * a second copy of the prefilled prompt one token per pass (append, then a one-node verification: the
 * one-row matmul throughout). Returns the nodes of both, node i against node i.
 */
export async function scoreChainBothWays(
    p: ModelPair,
    length: number,
    top: { batched: number; alone: number },
): Promise<{ prompt: number[]; batched: VerifiedNode[]; alone: VerifiedNode[] }> {
    const prompt = p.tokenize(CHAIN_PROMPT);
    const chain = Array.from({ length }, (_, i) => 400 + i * 113);
    const seq = await p.createSequence(prompt);
    const r = await p.verifyForest([{ sequence: seq, nodes: chain.map((token, i) => ({ token, parent: i - 1 })) }], { rule: 'none', topLogprobs: top.batched });
    await r.release();
    await seq.dispose();
    const ref = await p.createSequence(prompt);
    const alone: VerifiedNode[] = [];
    for (const token of chain) {
        const one = await p.verifyForest([{ sequence: ref, nodes: [{ token, parent: -1 }] }], { rule: 'none', topLogprobs: top.alone });
        alone.push(one.trees[0]!.nodes[0]!);
        await one.release();
        await ref.append([token]);
    }
    await ref.dispose();
    return { prompt, batched: r.trees[0]!.nodes, alone };
}
