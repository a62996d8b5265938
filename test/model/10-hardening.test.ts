/**
 * Deployment patterns that took the process down or lost work (issue 12): worker_threads, native objects of
 * the wrong class, the KV budget shared by generate() and sequences, stale q conversions, fixed verify seeds,
 * tiny temperatures, V8's external-memory hint, a disposed context, and a pair's shared CPU threadpool.
 */
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, loadModel, loadPair, type ModelPair } from '../../lib/index.js';
import { addon } from '../../lib/native.js';
import { tinyPair, type PairPaths } from '../helpers/pairs.js';

let paths: PairPaths;
let pair: ModelPair;

beforeAll(async () => {
    paths = await tinyPair();
    pair = await loadPair({ ...paths, contextSize: 512, threads: 2, sequences: 8 });
});

afterAll(async () => {
    await pair?.dispose();
});

function runWorker(dispose: boolean): Promise<{ greedy: number[]; spec: number[] }> {
    return new Promise((resolve, reject) => {
        const w = new Worker(new URL('../fixtures/worker-generate.mjs', import.meta.url), { workerData: { ...paths, dispose } });
        let message: { greedy: number[]; spec: number[] } | undefined;
        w.once('message', (m) => (message = m));
        w.once('error', reject);
        w.once('exit', (code) => (code === 0 && message ? resolve(message) : reject(new Error(`worker exited with ${code}`))));
    });
}

describe('worker_threads', () => {
    it('a Worker loads and uses the library and exits (with and without dispose); the main thread loads and generates after', async () => {
        const want = (await pair.generate('The quick brown fox', { strategy: 'greedy', maxTokens: 12 })).tokens;
        for (const dispose of [true, false]) {
            const got = await runWorker(dispose);
            expect(got.greedy).toEqual(want);
            expect(got.spec).toEqual(want);
            // the main thread's environment is intact: a new load and generation work
            await using m = await loadModel(paths.expert, { contextSize: 128, threads: 2 });
            expect((await m.generate('The quick brown fox', { maxTokens: 12 })).tokens).toEqual(want);
        }
        // two Workers at once
        const both = await Promise.all([runWorker(true), runWorker(false)]);
        for (const b of both) expect(b.greedy).toEqual(want);
    });

    it('a native object of the wrong class is an InvalidArgumentError, not a wild cast', async () => {
        const ctx = pair._decoder.context('expert')!;
        const Context = addon().Context as unknown as new (...a: unknown[]) => unknown;
        for (const bad of [ctx, {}, new Uint8Array(4)]) {
            expect(() => new Context(bad, { contextSize: 64 })).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
            expect(() => addon().checkCompatibility(bad as never, bad as never)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
        }
        const generate = ctx.generate.bind(ctx) as (...a: unknown[]) => unknown;
        expect(() => generate({ strategy: 'greedy', prompt: new Int32Array([1]), maxTokens: 1 }, {}, null)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    });
});

describe('the KV budget', () => {
    it('a long generate() gives its cells back: a sequence of the remaining size fits afterwards', async () => {
        const r = await pair.generate('Fill most of the window', { maxTokens: 400 });
        expect(r.tokens).toHaveLength(400);
        const s = await pair.createSequence(Array.from({ length: 151 }, (_, i) => 300 + i));
        expect(s.length).toBe(151);
        await s.dispose();
    });

    it('with a live sequence holding cells, a long generate() ends with finishReason "context" and keeps its text', async () => {
        const s = await pair.createSequence(Array.from({ length: 151 }, (_, i) => 300 + i));
        for (const strategy of ['greedy', 'speculative', 'contrastive', 'scd'] as const) {
            const r = await pair.generate('Fill the rest of the window', { strategy, maxTokens: 400 });
            expect(r.finishReason, strategy).toBe('context');
            expect(r.tokens.length, strategy).toBeGreaterThan(300);
            expect(r.text.length, strategy).toBeGreaterThan(0);
        }
        await s.dispose();
        // and the sequence's cells came back as well
        expect((await pair.generate('x', { maxTokens: 400 })).finishReason).toBe('length');
    });
});

describe('verifyForest inputs and seeds', () => {
    it('a reused, changed q array is converted again (no stale cache across calls)', async () => {
        const s = await pair.createSequence(pair.tokenize('q reuse'));
        const n = pair.expert.nVocab;
        const q = new Float32Array(n).fill(1 / n);
        const r = await pair.verifyForest([{ sequence: s, nodes: [{ token: 500, parent: -1, q }] }], { rule: 'sample', seed: 1 });
        await r.release();
        q.fill(0);
        q[501] = 1; // now q gives the node's own token probability 0: must be refused
        await expect(pair.verifyForest([{ sequence: s, nodes: [{ token: 500, parent: -1, q }] }], { rule: 'sample', seed: 1 })).rejects.toThrow(/probability > 0/);
        await s.dispose();
    });

    it('a fixed seed draws fresh uniforms on every call, and the sequence of calls is reproducible', async () => {
        const verdicts = async (p: ModelPair) => {
            const s = await p.createSequence(p.tokenize('seeded'));
            const n = p.expert.nVocab;
            const out: string[] = [];
            for (let i = 0; i < 24; i++) {
                // a draft the expert accepts with probability strictly between 0 and 1
                const row = await p.verifyForest([{ sequence: s, nodes: [] }], { rule: 'none', topLogprobs: 1 });
                const top = row.trees[0]!.root.top![0]!;
                const q = new Float32Array(n);
                q[top.token] = 1;
                const r = await p.verifyForest([{ sequence: s, nodes: [{ token: top.token, parent: -1, q }] }], { rule: 'sample', seed: 42, temperature: 1 });
                out.push(`${r.trees[0]!.accepted.length}:${r.trees[0]!.next}`);
                await r.release();
            }
            await s.dispose();
            return out;
        };
        await using a = await loadPair({ ...paths, contextSize: 256, threads: 2 });
        const first = await verdicts(a);
        expect(new Set(first).size).toBeGreaterThan(1); // the same uniforms every call would give one verdict
        await using b = await loadPair({ ...paths, contextSize: 256, threads: 2 });
        expect(await verdicts(b)).toEqual(first);
    });
});

describe('numerics and memory', () => {
    it('a temperature of 1e-40 (1/T would overflow to ∞) samples the argmax instead of NaN', async () => {
        const greedy = await pair.generate('Tiny temperature', { strategy: 'greedy', maxTokens: 16 });
        for (const strategy of ['sample', 'speculative', 'contrastive'] as const) {
            const r = await pair.generate('Tiny temperature', { strategy, temperature: 1e-40, maxTokens: 16, seed: 3 });
            if (strategy !== 'contrastive') expect(r.tokens, strategy).toEqual(greedy.tokens);
            else expect(r.tokens).toEqual((await pair.generate('Tiny temperature', { strategy, maxTokens: 16 })).tokens);
        }
    });

    it("V8's external-memory hint is given back on dispose", async () => {
        const external = () => addon()._externalMemory();
        const before = external();
        const m = await loadModel(paths.expert, { contextSize: 64, threads: 1 });
        expect(external() - before).toBe(m.info.sizeBytes); // the weights (under the 1 GiB cap)
        await m.dispose();
        expect(external()).toBe(before);
    });

    it('a disposed context refuses every native call with DISPOSED (no read of a freed model)', async () => {
        const m = await loadModel(paths.expert, { contextSize: 64, threads: 1 });
        const ctx = m._decoder.context('expert')!;
        await m.dispose();
        const disposed = expect.objectContaining({ code: ErrorCode.DISPOSED });
        expect(() => ctx.generate({ strategy: 'greedy', prompt: new Int32Array([1, 2]), maxTokens: 2 } as never, null, null)).toThrow(disposed);
        expect(() => ctx.seqAppend(1, new Int32Array([1]))).toThrow(disposed);
        expect(() => ctx._evalLogits(new Int32Array([1]), false)).toThrow(disposed);
        expect(() => ctx.verifyForest([], { rule: 'none', temperature: 1, topK: 0, topP: 1, minP: 0, seed: 0, topLogprobs: 0 })).toThrow(disposed);
    });

    it("a pair's shared threadpool never runs two graphs at once (a verification on the expert and a one-token pass on the amateur)", async () => {
        const ctx = pair.tokenize('Shared pool');
        const want = pair._decoder.evalLogits(ctx, false, 'amateur');
        const s = await pair.createSequence(pair.tokenize('a forest on the expert '.repeat(8)));
        // four chains of 100 nodes: a pass long enough to overlap the one-token passes below
        const nodes = Array.from({ length: 400 }, (_, i) => ({ token: 300 + ((i * 37) % 500), parent: i % 100 === 0 ? -1 : i - 1 }));
        for (let round = 0; round < 3; round++) {
            const v = pair.verifyForest([{ sequence: s, nodes }], { rule: 'none' }); // decodes on a worker thread
            await new Promise((r) => setImmediate(r)); // the worker has been queued
            for (let k = 0; k < 4; k++) expect(Array.from(pair._decoder.evalLogits(ctx, false, 'amateur'))).toEqual(Array.from(want)); // JS thread, meanwhile
            await (await v).release();
        }
        await s.dispose();
    });
});
