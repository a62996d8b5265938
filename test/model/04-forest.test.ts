/** Sequences and verifyForest(): tree attention equals sequential decoding, commit leaves exactly the accepted path. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
    DisposedError,
    ErrorCode,
    InvalidArgumentError,
    loadModel,
    loadPair,
    type DraftNode,
    type DraftTree,
    type ModelPair,
    type Sequence,
} from '../../lib/index.js';
import { addon } from '../../lib/native.js';
import { argmax, logSoftmax, tinyPair } from '../helpers/pairs.js';
import { markovTable, rng } from '../helpers/stats.js';

let pair: ModelPair;
/** KV cells held by sequences (generate() and the evalLogits test hook use sequence 0: not counted). */
const kvCells = () => {
    const c = pair._decoder.context('expert')!._kvCells();
    return c.total - c.generation;
};

function pathTo(nodes: readonly DraftNode[], i: number): number[] {
    const out: number[] = [];
    for (let u = i; u >= 0; u = nodes[u]!.parent) out.unshift(nodes[u]!.token);
    return out;
}

function randomTree(rand: () => number, n: number, maxDepth: number, vocab: number[]): DraftNode[] {
    const nodes: DraftNode[] = [];
    const depth: number[] = [];
    for (let i = 0; i < n; i++) {
        let parent = -1;
        if (i > 0 && rand() < 0.8) {
            parent = Math.floor(rand() * i);
            if (depth[parent]! >= maxDepth) parent = -1;
        }
        depth.push(parent < 0 ? 1 : depth[parent]! + 1);
        nodes.push({ token: vocab[Math.floor(rand() * vocab.length)]!, parent });
    }
    return nodes;
}

beforeAll(async () => {
    pair = await loadPair({ ...(await tinyPair()), contextSize: 1024, threads: 2, sequences: 64 });
});

afterAll(async () => {
    await pair?.dispose();
});

describe('sequences', () => {
    it('append, fork, trim, length and dispose keep the KV cell count exact', async () => {
        const base = kvCells();
        const a = await pair.createSequence(pair.tokenize('Hello there, general'));
        expect(kvCells() - base).toBe(a.length);
        await a.append(pair.tokenize(' Kenobi', { addSpecial: false }));
        expect(kvCells() - base).toBe(a.length);
        const b = await a.fork();
        expect(b.tokens).toEqual(a.tokens);
        expect(kvCells() - base).toBe(a.length); // the prefix is shared, not copied
        await b.append([100, 200]);
        expect(kvCells() - base).toBe(a.length + 2);
        await b.trim(3);
        expect(b.length).toBe(3);
        await a.dispose();
        expect(kvCells() - base).toBe(2); // b's first 2 tokens; its 3rd is pending (re-scored on the next pass)
        await b.dispose();
        expect(kvCells()).toBe(base);
        await expect(b.append([1])).rejects.toBeInstanceOf(DisposedError);
    });

    it('runs queued behind generations on the same pair', async () => {
        const gen = pair.generate('queued', { maxTokens: 8 });
        const s = await pair.createSequence(pair.tokenize('queued'));
        const r = await pair.verifyForest([{ sequence: s, nodes: [] }]);
        expect((await gen).tokens[0]).toBe(r.trees[0]!.root.argmax);
        await s.dispose();
    });
});

describe('verifyForest ≡ sequential decoding', () => {
    // |Δ log-prob| ≤ 1e-3 between the forest pass and one-token-per-pass decoding of each path (f32 weights):
    // both compute the same products in another summation order (relative error ≤ n·2⁻²⁴ per dot product,
    // n ≤ 384 ⇒ ≈ 2e-5), and an element of the f16 KV cache that sits within that of a rounding boundary
    // rounds one f16 step (2⁻¹¹ relative) away; either moves a log-prob by ≲ 1e-4 through these ε-scaled
    // layers. A node attending without one of its ancestors moves it by ≈ 3.5e-3 (test 07's negative control
    // measures the same on the quantized pairs).
    it('random forests: several trees on several sequences, branching, depth ≤ 8 (f32, |Δ log-prob| ≤ 1e-3)', async () => {
        const rand = rng(42);
        const vocab = Array.from({ length: 40 }, (_, i) => 300 + i * 97);
        const prompts = ['The quick brown fox', 'Once upon a time', 'x'];
        const seqs: Sequence[] = [];
        for (const p of prompts) seqs.push(await pair.createSequence(pair.tokenize(p)));
        const base = kvCells();
        for (let round = 0; round < 3; round++) {
            const trees: DraftTree[] = [];
            for (let t = 0; t < 5; t++) trees.push({ sequence: seqs[t % seqs.length]!, nodes: randomTree(rand, 3 + Math.floor(rand() * 10), 8, vocab) });
            const r = await pair.verifyForest(trees, { rule: 'none', topLogprobs: 3 });
            expect(r.batchTokens).toBe(trees.reduce((n, t) => n + t.nodes.length, 0));
            let maxDelta = 0;
            for (const [ti, t] of r.trees.entries()) {
                const prefix = trees[ti]!.sequence.tokens;
                const rootRow = logSoftmax(pair._decoder.evalLogits(prefix, false));
                expect(t.root.argmax).toBe(argmax(pair._decoder.evalLogits(prefix, false)));
                expect(Math.abs(t.root.top![0]!.logprob - rootRow[t.root.top![0]!.token]!)).toBeLessThan(1e-3);
                for (const [i, node] of t.nodes.entries()) {
                    const path = pathTo(trees[ti]!.nodes, i);
                    const before = logSoftmax(pair._decoder.evalLogits([...prefix, ...path.slice(0, -1)], false));
                    const after = logSoftmax(pair._decoder.evalLogits([...prefix, ...path], false));
                    maxDelta = Math.max(maxDelta, Math.abs(node.logprob - before[node.token]!));
                    for (const top of node.top!) maxDelta = Math.max(maxDelta, Math.abs(top.logprob - after[top.token]!));
                    expect(node.argmax).toBe(node.top![0]!.token);
                }
            }
            expect(maxDelta).toBeLessThanOrEqual(1e-3);
            await r.release();
            expect(kvCells()).toBe(base); // rejected branches leave no cell behind
        }
        for (const s of seqs) await s.dispose();
    });
});

describe('commit', () => {
    it('leaves exactly the accepted path: next-token logits equal a fresh prefill, cells equal the length', async () => {
        const base = kvCells();
        const s = await pair.createSequence(pair.tokenize('Commit me'));
        const other = await pair.createSequence(pair.tokenize('A bystander'));
        const rand = rng(7);
        const vocab = Array.from({ length: 30 }, (_, i) => 500 + i * 31);
        for (let round = 0; round < 4; round++) {
            const a = randomTree(rand, 12, 6, vocab);
            const b = randomTree(rand, 6, 4, vocab);
            const r = await pair.verifyForest(
                [
                    { sequence: s, nodes: a },
                    { sequence: s, nodes: b },
                    { sequence: other, nodes: b },
                ],
                { rule: 'none' },
            );
            // commit the deepest path of tree a, with or without a next token
            let deepest = 0;
            for (let i = 0; i < a.length; i++) if (pathTo(a, i).length > pathTo(a, deepest).length) deepest = i;
            const path: number[] = [];
            for (let u = deepest; u >= 0; u = a[u]!.parent) path.unshift(u);
            const next = round % 2 === 0 ? 4242 : null;
            const before = s.length;
            await pair.commit(r.trees[0]!, path, next);
            expect(s.length).toBe(before + path.length + (next === null ? 0 : 1));
            expect(s.tokens.slice(before, before + path.length)).toEqual(path.map((i) => a[i]!.token));
            // the other trees on s were superseded; the tree on `other` is still pending
            await expect(pair.commit(r.trees[1]!, [])).rejects.toThrow(/no longer pending/);
            await r.release();
            const pending = next === null ? 0 : 1;
            expect(kvCells() - base).toBe(s.length - pending + other.length);
            // next-token distribution after the commit == fresh prefill of the committed text
            const check = await pair.verifyForest([{ sequence: s, nodes: [] }], { rule: 'none', topLogprobs: 5 });
            const fresh = logSoftmax(pair._decoder.evalLogits(s.tokens, false));
            for (const t of check.trees[0]!.root.top!) expect(Math.abs(t.logprob - fresh[t.token]!)).toBeLessThan(1e-3);
            expect(kvCells() - base).toBe(s.length + other.length);
        }
        await s.dispose();
        await other.dispose();
        expect(kvCells()).toBe(base);
    });

    it('greedy rule: a JS scheduler with a two-branch n-gram drafter reproduces greedy generation', async () => {
        const prompt = pair.tokenize('The quick brown fox');
        const want = (await pair.generate(prompt, { maxTokens: 40 })).tokens;
        const seq = await pair.createSequence(prompt);
        const out: number[] = [];
        let passes = 0;
        let accepted = 0;
        while (out.length < 40) {
            // draft: what followed the two most recent earlier occurrences of the last token
            const history = seq.tokens;
            const last = history.at(-1)!;
            const nodes: DraftNode[] = [];
            let branches = 0;
            for (let i = history.length - 2; i >= 0 && branches < 2; i--) {
                if (history[i] !== last) continue;
                const follow = history.slice(i + 1, i + 5);
                follow.forEach((token, d) => nodes.push({ token, parent: d === 0 ? -1 : nodes.length - 1 }));
                branches++;
            }
            const r = await pair.verifyForest([{ sequence: seq, nodes }], { rule: 'greedy' });
            const t = r.trees[0]!;
            passes++;
            accepted += t.accepted.length;
            out.push(...t.acceptedTokens, t.next!);
            await pair.commit(t);
        }
        expect(out.slice(0, 40)).toEqual(want);
        expect(passes + accepted).toBe(out.length);
        await seq.dispose();
    });
});

describe('verifyForest rejects bad input with typed errors (the process lives on)', () => {
    it('validates in TypeScript before any native call', async () => {
        const s = await pair.createSequence(pair.tokenize('bad input'));
        const v = pair.expert.nVocab;
        const bad: [string, DraftTree[], object?][] = [
            ['token out of vocab', [{ sequence: s, nodes: [{ token: v, parent: -1 }] }]],
            ['negative token', [{ sequence: s, nodes: [{ token: -1, parent: -1 }] }]],
            ['forward parent', [{ sequence: s, nodes: [{ token: 1, parent: 1 }, { token: 2, parent: -1 }] }]],
            ['cross-tree parent', [{ sequence: s, nodes: [{ token: 1, parent: -1 }] }, { sequence: s, nodes: [{ token: 1, parent: 3 }] }]],
            ['more nodes than the context holds', [{ sequence: s, nodes: Array.from({ length: 1100 }, () => ({ token: 5, parent: -1 })) }]],
            ['positions past the context', [{ sequence: s, nodes: Array.from({ length: 1030 }, (_, i) => ({ token: 5, parent: i - 1 })) }]],
            ['NaN draft probability', [{ sequence: s, nodes: [{ token: 5, parent: -1, q: { tokens: [5], probs: [NaN] } }] }], { rule: 'sample' }],
            ['negative draft probability', [{ sequence: s, nodes: [{ token: 5, parent: -1, q: { tokens: [5, 6], probs: [1.5, -0.5] } }] }], { rule: 'sample' }],
            ['sample without q', [{ sequence: s, nodes: [{ token: 5, parent: -1 }] }], { rule: 'sample' }],
            ['q of the wrong length', [{ sequence: s, nodes: [{ token: 5, parent: -1, q: [0.5, 0.5] }] }], { rule: 'sample' }],
            ['q gives its token 0', [{ sequence: s, nodes: [{ token: 5, parent: -1, q: { tokens: [6], probs: [1] } }] }], { rule: 'sample' }],
            ['unknown rule', [{ sequence: s, nodes: [] }], { rule: 'beam' }],
            ['sample at temperature 0', [{ sequence: s, nodes: [] }], { rule: 'sample', temperature: 0 }],
            ['misspelled option', [{ sequence: s, nodes: [] }], { topLogprob: 2 }],
        ];
        for (const [what, trees, opts] of bad) {
            await expect(pair.verifyForest(trees, opts), what).rejects.toBeInstanceOf(InvalidArgumentError);
        }
        const cells = kvCells();
        // a sequence of another context, an amateur sequence, a disposed one
        await using other = await loadModel((await tinyPair()).expert, { contextSize: 64 });
        const foreign = await other.createSequence([1, 2, 3]);
        await expect(pair.verifyForest([{ sequence: foreign, nodes: [] }])).rejects.toThrow(/another context/);
        const am = await pair.createSequence([1, 2, 3], { model: 'amateur' });
        await expect(pair.verifyForest([{ sequence: am, nodes: [] }])).rejects.toThrow(/another context/);
        const gone = await pair.createSequence([1, 2]);
        await gone.dispose();
        await expect(pair.verifyForest([{ sequence: gone, nodes: [] }])).rejects.toBeInstanceOf(DisposedError);
        await am.dispose();
        expect(kvCells()).toBe(cells);
        // still works afterwards
        const ok = await pair.verifyForest([{ sequence: s, nodes: [{ token: 5, parent: -1 }] }]);
        expect(ok.trees[0]!.nodes).toHaveLength(1);
        await ok.release();
        await s.dispose();
    });

    it('re-checks natively: a raw call with bad parents or too many branches is a typed error, not an abort', async () => {
        const s = await pair.createSequence([1, 2, 3]);
        const native = pair._decoder.context('expert')!;
        const opts = { rule: 'none', temperature: 1, topK: 0, topP: 1, minP: 0, seed: 1, topLogprobs: 0 } as const;
        const raw = async (parents: number[], tokens = parents.map(() => 7)) =>
            native.verifyForest([{ seq: s._id, tokens: Int32Array.from(tokens), parents: Int32Array.from(parents) }], opts);
        await expect(raw([0])).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
        await expect(raw([-1, 5])).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
        await expect(raw([-1], [1 << 30])).rejects.toThrow();
        // 70 leaves on a 64-slot context
        await expect(pair.verifyForest([{ sequence: s, nodes: Array.from({ length: 70 }, (_, i) => ({ token: i + 10, parent: -1 })) }])).rejects.toThrow(
            /sequence slots/,
        );
        await expect(native.verifyForest([{ seq: 63, tokens: new Int32Array(0), parents: new Int32Array(0) }], opts)).rejects.toMatchObject({
            code: ErrorCode.DISPOSED,
        });
        const r = await pair.verifyForest([{ sequence: s, nodes: [{ token: 9, parent: -1 }] }]);
        await expect(pair.commit(r.trees[0]!, [0, 0])).rejects.toBeInstanceOf(InvalidArgumentError);
        await pair.commit(r.trees[0]!);
        await expect(pair.commit(r.trees[0]!)).rejects.toThrow(/no longer pending/);
        await s.dispose();
    });
});

describe('rule sample on the model', () => {
    it('is reproducible for a seed: the same calls on a fresh load give the same verdicts', async () => {
        // (the i-th call of a context draws from (seed, i): test 10 checks that successive calls differ)
        const verdicts = async () => {
            await using p = await loadPair({ ...(await tinyPair()), contextSize: 256, threads: 2, sequences: 8 });
            const s = await p.createSequence(p.tokenize('seeded forest'));
            const q = new Float32Array(p.expert.nVocab);
            for (const t of [310, 311, 312, 313]) q[t] = 0.25;
            const nodes: DraftNode[] = [
                { token: 310, parent: -1, q },
                { token: 312, parent: -1, q },
                { token: 311, parent: 0, q },
            ];
            const out: string[] = [];
            for (let i = 0; i < 3; i++) {
                const r = await p.verifyForest([{ sequence: s, nodes }], { rule: 'sample', seed: 3, temperature: 1 });
                out.push(`${r.trees[0]!.accepted.join('.')}→${r.trees[0]!.next}`);
                await r.release();
            }
            return out;
        };
        expect(await verdicts()).toEqual(await verdicts());
    });
});

// ---- pure acceptance math (ALGORITHMS.md §7.2, §7.3, §7.6) on an order-1 Markov mock, V = 10, N = 1e5
describe('acceptance math: exact laws, and negative controls that must fail', () => {
    const V = 10;
    const N = 100_000;
    const rand = rng(2024);
    const table = (sharpness: number) => markovTable(V, sharpness, rand);
    const p = table(2.5);
    const q = table(2.5);
    // the top-2-warped q: what a draft sampled with topK 2 was really drawn from
    const qTop2 = Float32Array.from(q);
    for (let r = 0; r <= V; r++) {
        const row = Array.from(q.subarray(r * V, r * V + V));
        const order = row.map((x, i) => [x, i] as const).sort((a, b) => b[0] - a[0]);
        const s = order[0]![0] + order[1]![0];
        for (let i = 0; i < V; i++) qTop2[r * V + i] = 0;
        qTop2[r * V + order[0]![1]] = order[0]![0] / s;
        qTop2[r * V + order[1]![1]] = order[1]![0] / s;
    }
    // exact law of the first two tokens of the Markov chain p
    const exact = new Float64Array(V * V);
    for (let a = 0; a < V; a++) for (let b = 0; b < V; b++) exact[a * V + b] = p[V * V + a]! * p[a * V + b]!;

    const run = (o: { rule: 'sample' | 'target-only'; branching: number[]; draft: 'iid' | 'without-replacement' | 'top'; qDraw?: Float32Array; fault?: 'residual-p' }) =>
        addon()._simulateVerify({ vocab: V, p, q, trials: N, seed: 99, fault: 'none', ...o });
    /** TV of the first token's law, of the second token's law, and a χ² p-value of the 100-cell joint */
    const measure = (joint: Int32Array) => {
        let tv1 = 0;
        let tv2 = 0;
        for (let a = 0; a < V; a++) {
            let e1 = 0, c1 = 0, e2 = 0, c2 = 0;
            for (let b = 0; b < V; b++) {
                e1 += exact[a * V + b]!;
                c1 += joint[a * V + b]!;
                e2 += exact[b * V + a]!;
                c2 += joint[b * V + a]!;
            }
            tv1 += Math.abs(c1 / N - e1);
            tv2 += Math.abs(c2 / N - e2);
        }
        let chi2 = 0;
        let k = 0;
        for (let i = 0; i < V * V; i++) {
            const e = exact[i]! * N;
            if (e < 5) continue;
            chi2 += (joint[i]! - e) ** 2 / e;
            k++;
        }
        // Wilson–Hilferty survival of χ²(k − 1)
        const df = k - 1;
        const z = (Math.cbrt(chi2 / df) - (1 - 2 / (9 * df))) / Math.sqrt(2 / (9 * df));
        const pValue = 0.5 * erfc(z / Math.SQRT2);
        return { tv1: tv1 / 2, tv2: tv2 / 2, pValue };
    };
    const exactOk = (m: ReturnType<typeof measure>) => {
        expect(m.tv1).toBeLessThanOrEqual(0.01);
        expect(m.tv2).toBeLessThanOrEqual(0.01);
        expect(m.pValue).toBeGreaterThanOrEqual(1e-4);
    };
    const biased = (m: ReturnType<typeof measure>) => expect(Math.max(m.tv1, m.tv2)).toBeGreaterThan(0.01);

    it('chains (γ = 1, 4): Leviathan/Chen is exact; residual = p and a wrong q are caught', () => {
        for (const gamma of [1, 4]) {
            const branching = Array<number>(gamma).fill(1);
            const ok = run({ rule: 'sample', branching, draft: 'iid' });
            exactOk(measure(ok.joint));
            expect(ok.accepted / ok.rounds).toBeGreaterThan(0.1);
            biased(measure(run({ rule: 'sample', branching, draft: 'iid', fault: 'residual-p' }).joint));
            biased(measure(run({ rule: 'sample', branching, draft: 'iid', qDraw: qTop2 }).joint));
            exactOk(measure(addon()._simulateVerify({ vocab: V, p, q: qTop2, trials: N, seed: 5, fault: 'none', rule: 'sample', branching, draft: 'iid' }).joint));
        }
    });

    it('multi-draft trees (SpecInfer MSS): i.i.d. children are exact; without-replacement children are biased', () => {
        exactOk(measure(run({ rule: 'sample', branching: [3], draft: 'iid' }).joint));
        exactOk(measure(run({ rule: 'sample', branching: [3, 2], draft: 'iid' }).joint));
        biased(measure(run({ rule: 'sample', branching: [3], draft: 'without-replacement' }).joint));
        biased(measure(run({ rule: 'sample', branching: [3], draft: 'iid', fault: 'residual-p' }).joint));
    });

    it('deterministic top-k trees: target-only is exact, the q-ratio rule is biased', () => {
        exactOk(measure(run({ rule: 'target-only', branching: [3, 2], draft: 'top' }).joint));
        exactOk(measure(run({ rule: 'target-only', branching: [2, 1, 1], draft: 'top' }).joint));
        biased(measure(run({ rule: 'sample', branching: [3], draft: 'top' }).joint));
    });
});

function erfc(x: number): number {
    // Numerical Recipes erfcc, |error| < 1.2e-7
    const z = Math.abs(x);
    const t = 1 / (1 + 0.5 * z);
    const r =
        t *
        Math.exp(
            -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
        );
    return x >= 0 ? r : 2 - r;
}
