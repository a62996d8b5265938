/** Plain generation on the expert: exactness, reproducibility, streaming, abort, dispose, concurrency. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DisposedError, GenerationAbortedError, InvalidArgumentError, loadModel, loadPair, type LlamaModel, type ModelPair } from '../../lib/index.js';
import { argmax, tinyPair } from '../helpers/pairs.js';

let model: LlamaModel;
let pair: ModelPair;

beforeAll(async () => {
    const paths = await tinyPair();
    model = await loadModel(paths.expert, { contextSize: 4096, threads: 2 });
    pair = await loadPair({ ...paths, contextSize: 4096, threads: 2 });
});

afterAll(async () => {
    await model?.dispose();
    await pair?.dispose();
});

describe('greedy', () => {
    it('equals an argmax loop over logits from a separate evaluation path', async () => {
        for (const prompt of ['The quick brown fox', 'Once upon a time', '1, 2, 3,']) {
            const r = await model.generate(prompt, { maxTokens: 40 });
            const tokens = model.tokenize(prompt);
            const decoder = model._decoder;
            let logits = decoder.evalLogits(tokens, false);
            const expected: number[] = [];
            for (let i = 0; i < r.tokens.length; i++) {
                const t = argmax(logits);
                expected.push(t);
                logits = decoder.evalLogits([t], true);
            }
            expect(r.tokens).toEqual(expected);
            expect(r.finishReason).toBe('length');
            expect(r.text.trimStart()).toBe(model.detokenize(r.tokens).trimStart()); // SPM detokenize strips the leading space
        }
    });

    it('is the same on a pair (expert only) and on the model alone', async () => {
        const a = await model.generate('Hello world', { maxTokens: 24 });
        const b = await pair.generate('Hello world', { maxTokens: 24 });
        expect(b.tokens).toEqual(a.tokens);
        expect(b.stats.amateurPasses).toBe(0);
        expect(b.stats.expertPasses).toBe(24); // prompt (1 pass) + 23 tokens; the last token is never decoded
    });

    it('accepts token ids as the prompt', async () => {
        const ids = model.tokenize('Hello world');
        expect((await model.generate(ids, { maxTokens: 8 })).tokens).toEqual((await model.generate('Hello world', { maxTokens: 8 })).tokens);
    });

    it('reports stats', async () => {
        const r = await model.generate('Stats please', { maxTokens: 16 });
        expect(r.stats.promptTokens).toBe(model.tokenize('Stats please').length);
        expect(r.stats.generatedTokens).toBe(16);
        expect(r.stats.tokensPerSecond).toBeGreaterThan(0);
        expect(r.stats.wallMs).toBeGreaterThanOrEqual(r.stats.generationMs);
    });
});

describe('sampling', () => {
    const opts = { strategy: 'sample', temperature: 0.9, topK: 50, topP: 0.95, minP: 0.01, maxTokens: 32 } as const;

    it('is reproducible for a seed and differs across seeds', async () => {
        const a = await model.generate('Tell me', { ...opts, seed: 1234 });
        const b = await model.generate('Tell me', { ...opts, seed: 1234 });
        const c = await model.generate('Tell me', { ...opts, seed: 4321 });
        expect(b.tokens).toEqual(a.tokens);
        expect(b.text).toBe(a.text);
        expect(c.tokens).not.toEqual(a.tokens);
        expect(a.stats.seed).toBe(1234);
    });

    it('topK = 1 is greedy', async () => {
        const g = await model.generate('Topk', { maxTokens: 20 });
        const s = await model.generate('Topk', { strategy: 'sample', topK: 1, seed: 9, maxTokens: 20 });
        expect(s.tokens).toEqual(g.tokens);
    });
});

describe('streaming', () => {
    it('chunks concatenate to the final text and tokens', async () => {
        const s = model.stream('Streaming test', { strategy: 'sample', seed: 5, maxTokens: 64 });
        let text = '';
        const tokens: number[] = [];
        for await (const c of s) {
            text += c.text;
            tokens.push(...c.tokens);
        }
        const r = await s.result;
        expect(text).toBe(r.text);
        expect(tokens).toEqual(r.tokens);
        expect(r.tokens).toHaveLength(64);
    });

    it('breaking out of the loop ends the generation', async () => {
        const s = model.stream('Break', { maxTokens: 2000 });
        let n = 0;
        for await (const c of s) {
            n += c.tokens.length;
            if (n >= 3) break;
        }
        await expect(s.result).rejects.toBeInstanceOf(GenerationAbortedError);
    });
});

describe('stop strings and limits', () => {
    it('ends before the first stop string, never emitting past it', async () => {
        const full = await model.generate('Stop here', { maxTokens: 60 });
        const stop = full.text.slice(20, 24);
        expect(stop.length).toBe(4);
        const cut = full.text.indexOf(stop);
        let streamed = '';
        const s = model.stream('Stop here', { maxTokens: 60, stop: [stop, 'never-seen-string'] });
        for await (const c of s) streamed += c.text;
        const r = await s.result;
        expect(r.finishReason).toBe('stop');
        expect(r.text).toBe(full.text.slice(0, cut));
        expect(streamed).toBe(r.text);
        expect(r.tokens).toEqual(full.tokens.slice(0, r.tokens.length));
        expect(full.text.trimStart().startsWith(model.detokenize(r.tokens))).toBe(true);
        expect(model.detokenize(r.tokens)).toContain(stop);
        expect(model.detokenize(r.tokens.slice(0, -1))).not.toContain(stop);
    });

    it('honours maxTokens exactly, including 0', async () => {
        expect((await model.generate('x', { maxTokens: 7 })).tokens).toHaveLength(7);
        const zero = await model.generate('x', { maxTokens: 0 });
        expect(zero.tokens).toEqual([]);
        expect(zero.text).toBe('');
    });

    it('stops with finishReason "context" when the context is full', async () => {
        const paths = await tinyPair();
        await using small = await loadModel(paths.expert, { contextSize: 32 });
        expect(small.contextSize).toBeGreaterThanOrEqual(32); // llama.cpp may pad it
        const r = await small.generate('Fill the context', { maxTokens: 5000 });
        expect(r.finishReason).toBe('context');
        expect(r.stats.promptTokens + r.tokens.length).toBe(small.contextSize + 1); // the last token needs no KV cell
    });
});

describe('abort, dispose, concurrency', () => {
    it('an AbortSignal stops within one step', async () => {
        const ac = new AbortController();
        let seen = 0;
        const s = model.stream('Abort me', { maxTokens: 3000, signal: ac.signal });
        const err = await (async () => {
            for await (const c of s) {
                seen += c.tokens.length;
                if (seen >= 5) ac.abort();
            }
        })().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(GenerationAbortedError);
        const partial = (err as GenerationAbortedError).partial;
        expect(partial.tokens.length).toBeGreaterThanOrEqual(5);
        expect(partial.tokens.length).toBeLessThanOrEqual(seen + 1);
        // a pre-aborted signal never starts
        await expect(model.generate('x', { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(GenerationAbortedError);
        // and the model is still usable
        expect((await model.generate('after abort', { maxTokens: 3 })).tokens).toHaveLength(3);
    });

    it('keeps the event loop responsive during a long generation', async () => {
        let ticks = 0;
        const timer = setInterval(() => ticks++, 5);
        const r = await model.generate('A long one', { maxTokens: 1500 });
        clearInterval(timer);
        const expected = r.stats.wallMs / 5;
        expect(ticks).toBeGreaterThan(Math.min(20, expected / 4));
    });

    it('concurrent calls on one model run together (shared batch) and each equals its run alone', async () => {
        const a = model.generate('first', { maxTokens: 30 });
        const b = model.generate('second', { maxTokens: 30 });
        const c = model.generate('first', { maxTokens: 30 });
        const [ra, rb, rc] = await Promise.all([a, b, c]);
        expect(rc.tokens).toEqual(ra.tokens);
        expect(rb.tokens).toHaveLength(30);
        expect((await model.generate('second', { maxTokens: 30 })).tokens).toEqual(rb.tokens);
    });

    it('disposing during a generation ends it safely; later calls throw DisposedError', async () => {
        const paths = await tinyPair();
        // maxConcurrent 1: the second call really waits (with the default it would run beside the first)
        const m = await loadModel(paths.expert, { contextSize: 4096, maxConcurrent: 1 });
        const running = m.generate('dispose me', { maxTokens: 3000 });
        const queued = m.generate('queued', { maxTokens: 10 });
        await new Promise((r) => setTimeout(r, 30));
        const ended = Promise.all([expect(running).rejects.toBeInstanceOf(DisposedError), expect(queued).rejects.toBeInstanceOf(DisposedError)]);
        await m.dispose();
        await ended;
        await expect(m.generate('x')).rejects.toBeInstanceOf(DisposedError);
        expect(() => m.tokenize('x')).toThrow(DisposedError);
        expect(m.disposed).toBe(true);
        await m.dispose(); // idempotent
    });

    it('await using disposes', async () => {
        const paths = await tinyPair();
        let ref: LlamaModel | undefined;
        {
            await using m = await loadModel(paths.expert, { contextSize: 128 });
            ref = m;
            expect(m.disposed).toBe(false);
        }
        expect(ref.disposed).toBe(true);
    });
});

describe('bad inputs never reach llama.cpp', () => {
    it('rejects invalid prompts and options with typed errors', async () => {
        await expect(model.generate([], {})).rejects.toBeInstanceOf(InvalidArgumentError);
        await expect(model.generate([1, 2, 99999999], {})).rejects.toThrow(/token ids between 0 and 31999/);
        await expect(model.generate([1, -1], {})).rejects.toBeInstanceOf(InvalidArgumentError);
        await expect(model.generate([1, 2.5], {})).rejects.toBeInstanceOf(InvalidArgumentError);
        await expect(model.generate(Array(5000).fill(1), {})).rejects.toThrow(/shorter than contextSize/);
        await expect(model.generate('x', { strategy: 'sample', topP: 1.5 })).rejects.toThrow(
            'Expected a number between 0 and 1 for topP but received 1.5 of type number',
        );
        await expect(model.generate(42 as unknown as string)).rejects.toBeInstanceOf(InvalidArgumentError);
        expect(() => model.detokenize([1e9])).toThrow(InvalidArgumentError);
        expect((await model.generate('still alive', { maxTokens: 2 })).tokens).toHaveLength(2);
    });

    it('handles text with multi-byte characters and special-token text', async () => {
        const prompt = 'héllo wörld 😀 日本語 <s></s>';
        const ids = model.tokenize(prompt, { addSpecial: false });
        expect(model.detokenize(ids)).toContain('😀');
        const r = await model.generate(prompt, { maxTokens: 10 });
        expect(r.tokens).toHaveLength(10);
    });
});
