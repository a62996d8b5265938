/**
 * Issue 15, §1: concurrent generations on one pair join a shared batch (continuous batching) and each gets
 * exactly what it would get alone: the same tokens for greedy, the same tokens for a seeded sample (each
 * request keeps its own RNG stream), the same per-request stats. The shared pass computes the same products
 * but may sum them in another order (other requests' cells sit between a request's own in the unified KV
 * cache), so a greedy argmax may flip at an f32 near-tie (NEAR_TIE, helpers/pairs.ts), as between greedy and
 * greedy speculative alone; anywhere else a difference is a bug. Plus the limits: maxConcurrent, a bounded
 * queue (QueueFullError), abort and dispose of one request among many, beam running alone beside them.
 * Then prompt-prefix reuse (the `promptCache` load option): a prompt that starts like an earlier request's
 * tokens decodes only the rest, gives what it gives without the cache, and cached cells give way to whatever
 * needs the room. And speculation under load (`speculateUpTo: 'auto'`, the default): the draft length rule
 * against brute force, and what it may and may not change end to end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DisposedError, GenerationAbortedError, InvalidArgumentError, loadPair, QueueFullError, type GenerateOptions, type ModelPair } from '../../lib/index.js';
import { addon } from '../../lib/native.js';
import { expectSameUpToNearTies, tinyPair } from '../helpers/pairs.js';

let pair: ModelPair;

beforeAll(async () => {
    // no prompt cache and fixed draft lengths: a cache hit skips prefill passes, and the default
    // speculateUpTo 'auto' shortens a greedy request's drafts under load; either would make the per-request
    // pass counts compared below depend on what else ran (both get their own tests at the end)
    pair = await loadPair({ ...(await tinyPair()), contextSize: 4096, threads: 2, promptCache: false, speculateUpTo: Infinity });
});

afterAll(async () => {
    await pair?.dispose();
});

const prompts = ['The quick brown fox', 'Once upon a time there was', 'x', 'In the beginning the', 'A long time ago', 'My name is'];

// one request of each batchable strategy, greedy and seeded
const mix: [string, GenerateOptions][] = [
    ['greedy', { strategy: 'greedy', maxTokens: 24 }],
    ['sample', { strategy: 'sample', maxTokens: 24, temperature: 0.9, seed: 11 }],
    ['speculative greedy', { strategy: 'speculative', maxTokens: 24, draftTokens: 3 }],
    ['speculative sampled', { strategy: 'speculative', maxTokens: 24, draftTokens: 4, temperature: 1, seed: 5 }],
    ['contrastive', { strategy: 'contrastive', maxTokens: 24 }],
    ['scd sampled', { strategy: 'scd', maxTokens: 24, temperature: 0.8, seed: 3 }],
];

/** The per-request stats that must not depend on who else was in the batch. */
const counts = (r: Awaited<ReturnType<ModelPair['generate']>>) => ({
    tokens: r.tokens,
    finishReason: r.finishReason,
    expertPasses: r.stats.expertPasses,
    amateurPasses: r.stats.amateurPasses,
    draftedTokens: r.stats.draftedTokens,
    acceptedTokens: r.stats.acceptedTokens,
});

describe('concurrent generations equal the same requests alone', () => {
    it('a mix of strategies, started together', async () => {
        const alone = [];
        for (const [i, [, o]] of mix.entries()) alone.push(await pair.generate(prompts[i]!, o));
        for (const r of alone) expect(r.stats.sharedPasses).toBe(0);
        const together = await Promise.all(mix.map(([, o], i) => pair.generate(prompts[i]!, o)));
        for (const [i, [name, o]] of mix.entries()) {
            const a = alone[i]!;
            const t = together[i]!;
            if (o.strategy === 'greedy' || (o.strategy === 'speculative' && o.temperature === undefined)) {
                expectSameUpToNearTies(pair, prompts[i]!, t.tokens, a.tokens);
                if (t.tokens.join() !== a.tokens.join()) continue; // a near-tie flip: the rest legitimately differs
            }
            expect(counts(t), name).toEqual(counts(a));
            expect(t.text, name).toBe(a.text);
        }
        // they did share passes: every request's decodes rode with others' at least once
        for (const r of together) expect(r.stats.sharedPasses).toBeGreaterThan(0);
    });

    it('requests joining a running batch at different times (continuous batching)', async () => {
        const opts: GenerateOptions = { strategy: 'greedy', maxTokens: 40 };
        const alone = [];
        for (const p of prompts) alone.push(await pair.generate(p, { ...opts, maxTokens: 10 + p.length }));
        const running: Promise<Awaited<ReturnType<ModelPair['generate']>>>[] = [];
        for (const p of prompts) {
            running.push(pair.generate(p, { ...opts, maxTokens: 10 + p.length }));
            await new Promise((r) => setTimeout(r, 15)); // the next one joins mid-flight
        }
        const got = await Promise.all(running);
        for (const [i, r] of got.entries()) expectSameUpToNearTies(pair, prompts[i]!, r.tokens, alone[i]!.tokens);
    });

    it('streams: each stream gets its own request’s chunks', async () => {
        const o: GenerateOptions = { strategy: 'speculative', maxTokens: 20 };
        const alone = [];
        for (const p of prompts.slice(0, 3)) alone.push(await pair.generate(p, o));
        const streams = prompts.slice(0, 3).map((p) => pair.stream(p, o));
        const got = await Promise.all(
            streams.map(async (s) => {
                const tokens: number[] = [];
                let text = '';
                for await (const c of s) {
                    tokens.push(...c.tokens);
                    text += c.text;
                }
                return { tokens, text, result: await s.result };
            }),
        );
        for (const [i, g] of got.entries()) {
            expect(g.tokens).toEqual(g.result.tokens); // each stream carries its own request's tokens
            expect(g.text).toBe(g.result.text);
            expectSameUpToNearTies(pair, prompts[i]!, g.tokens, alone[i]!.tokens);
        }
    });
});

describe('limits', () => {
    it('aborting one request leaves the others exact', async () => {
        const o: GenerateOptions = { strategy: 'greedy', maxTokens: 32 };
        const alone = await pair.generate(prompts[0]!, o);
        const ac = new AbortController();
        const a = pair.generate(prompts[1]!, { ...o, maxTokens: 400, signal: ac.signal });
        const b = pair.generate(prompts[0]!, o);
        setTimeout(() => ac.abort(), 30);
        await expect(a).rejects.toBeInstanceOf(GenerationAbortedError);
        expectSameUpToNearTies(pair, prompts[0]!, (await b).tokens, alone.tokens);
    });

    it('maxConcurrent runs at most that many; the rest wait in order; maxQueued bounds the wait', async () => {
        await using p = await loadPair({ ...(await tinyPair()), contextSize: 1024, threads: 2, maxConcurrent: 2, maxQueued: 1 });
        const o: GenerateOptions = { strategy: 'greedy', maxTokens: 8 };
        const first = [p.generate('a', o), p.generate('b', o)]; // running
        const third = p.generate('c', o); // waiting
        await expect(p.generate('d', o)).rejects.toBeInstanceOf(QueueFullError);
        const done = await Promise.all([...first, third]);
        expect(done.every((r) => r.tokens.length === 8)).toBe(true);
        // the two that ran together shared passes; nothing else ran beside the third... once the first two finished
        expect(done[0]!.stats.sharedPasses).toBeGreaterThan(0);
    });

    it('speculateUpTo: speculative requests decode plainly while more generations run, with the same greedy output', async () => {
        await using p = await loadPair({ ...(await tinyPair()), contextSize: 4096, threads: 2, speculateUpTo: 1 });
        const o: GenerateOptions = { strategy: 'speculative', maxTokens: 24, draftTokens: 3 };
        const alone = await p.generate(prompts[0]!, o); // alone: 1 running ≤ 1, it drafts as usual
        const plain = await pair.generate(prompts[0]!, o);
        expect(alone.stats.draftedTokens).toBe(plain.stats.draftedTokens);
        const rs = await Promise.all(prompts.slice(0, 3).map((q) => p.generate(q, o)));
        expectSameUpToNearTies(p, prompts[0]!, rs[0]!.tokens, alone.tokens);
        // while the three overlap no request drafts: fewer drafts than alone, more expert passes
        expect(rs[0]!.stats.draftedTokens!).toBeLessThan(alone.stats.draftedTokens!);
        expect(rs[0]!.stats.expertPasses).toBeGreaterThan(alone.stats.expertPasses);
        for (const [i, r] of rs.entries()) {
            const greedy = await p.generate(prompts[i]!, { strategy: 'greedy', maxTokens: 24 });
            expectSameUpToNearTies(p, prompts[i]!, r.tokens, greedy.tokens);
        }
        await expect(loadPair({ ...(await tinyPair()), speculateUpTo: 0 })).rejects.toThrow(/speculateUpTo/);
    });

    it('generations on another model or pair neither join this batch nor count as its load', async () => {
        await using p = await loadPair({ ...(await tinyPair()), contextSize: 4096, threads: 2, speculateUpTo: 1 });
        const o: GenerateOptions = { strategy: 'speculative', maxTokens: 24, draftTokens: 3 };
        const alone = await p.generate(prompts[0]!, o);
        // `pair` is another pair: its long generation runs meanwhile, and p's request still drafts as alone
        let otherDone = false;
        const other = pair.generate(prompts[1]!, { strategy: 'greedy', maxTokens: 400 }).then(() => (otherDone = true));
        const beside = await p.generate(prompts[0]!, o);
        expect(otherDone).toBe(false); // they did overlap
        await other;
        expect(beside.stats.draftedTokens).toBe(alone.stats.draftedTokens);
        expect(beside.stats.sharedPasses).toBe(0);
    });

    it('validates maxConcurrent and maxQueued', async () => {
        const paths = await tinyPair();
        await expect(loadPair({ ...paths, sequences: 4, maxConcurrent: 5 })).rejects.toThrow(InvalidArgumentError);
        await expect(loadPair({ ...paths, maxConcurrent: 0 })).rejects.toThrow(/maxConcurrent/);
        await expect(loadPair({ ...paths, maxQueued: -1 })).rejects.toThrow(/maxQueued/);
    });

    it('beam runs alone, between concurrent generations, and both stay exact', async () => {
        const g: GenerateOptions = { strategy: 'greedy', maxTokens: 16 };
        const bo: GenerateOptions = { strategy: 'beam', beams: 3, maxTokens: 8 };
        const aloneG = await pair.generate(prompts[2]!, g);
        const aloneB = await pair.generate(prompts[3]!, bo);
        const [r1, rb, r2] = await Promise.all([pair.generate(prompts[2]!, g), pair.generate(prompts[3]!, bo), pair.generate(prompts[2]!, g)]);
        expectSameUpToNearTies(pair, prompts[2]!, r1.tokens, aloneG.tokens);
        expectSameUpToNearTies(pair, prompts[2]!, r2.tokens, aloneG.tokens);
        expect(rb.beams).toEqual(aloneB.beams);
    });

    it('a full KV cache ends only the requests that do not fit, with finishReason "context"', async () => {
        await using p = await loadPair({ ...(await tinyPair()), contextSize: 256, threads: 2 });
        const rs = await Promise.all(prompts.map((q) => p.generate(q, { strategy: 'greedy', maxTokens: 120 })));
        const reasons = rs.map((r) => r.finishReason);
        expect(reasons).toContain('context');
        for (const r of rs) expect(['length', 'context', 'eos']).toContain(r.finishReason);
        // the cache is free again afterwards: a request alone runs to its length
        expect((await p.generate(prompts[0]!, { strategy: 'greedy', maxTokens: 100 })).finishReason).toBe('length');
    });

    it('dispose ends every running and waiting request with DisposedError', async () => {
        const p = await loadPair({ ...(await tinyPair()), contextSize: 2048, threads: 2, maxConcurrent: 2 });
        const rs = prompts.slice(0, 4).map((q) => p.generate(q, { strategy: 'greedy', maxTokens: 500 }));
        for (const r of rs) r.catch(() => {});
        await new Promise((r) => setTimeout(r, 40));
        await p.dispose();
        for (const r of rs) await expect(r).rejects.toBeInstanceOf(DisposedError);
    });
});

describe('prompt-prefix reuse', () => {
    const greedy: GenerateOptions = { strategy: 'greedy', maxTokens: 16 };

    it('the same prompt again, and a conversation’s next turn, decode only what is new; the output is what it is without the cache', async () => {
        await using p = await loadPair({ ...(await tinyPair()), contextSize: 4096, threads: 2 });
        const prompt = p.tokenize(prompts[0]!);
        const first = await p.generate(prompt, greedy);
        expect(first.stats.cachedPromptTokens).toBe(0);
        const again = await p.generate(prompt, greedy);
        expect(again.stats.cachedPromptTokens).toBe(prompt.length - 1); // the last prompt token is decoded for its logits
        expect(again.tokens).toEqual(first.tokens);
        // next turn: the first prompt, the reply, then new text; the reply's last token was never decoded
        const turn = [...prompt, ...again.tokens, ...p.tokenize(' and then the', { addSpecial: false })];
        const next = await p.generate(turn, greedy);
        expect(next.stats.cachedPromptTokens).toBe(prompt.length + again.tokens.length - 1);
        expectSameUpToNearTies(p, turn, next.tokens, (await pair.generate(turn, greedy)).tokens);
        // a prompt sharing only the first few tokens keeps those and drops the rest of the cells
        const fork = [...prompt.slice(0, 3), ...p.tokenize(' zebra crossing', { addSpecial: false })];
        const forked = await p.generate(fork, greedy);
        expect(forked.stats.cachedPromptTokens).toBe(3);
        expectSameUpToNearTies(p, fork, forked.tokens, (await pair.generate(fork, greedy)).tokens);
    });

    it('speculative and scd reuse both models’ cells (one prefill pass fewer on each); a seeded sample repeats itself', async () => {
        await using p = await loadPair({ ...(await tinyPair()), contextSize: 4096, threads: 2 });
        for (const o of [
            { strategy: 'speculative', maxTokens: 20, draftTokens: 3 },
            { strategy: 'scd', maxTokens: 20, temperature: 0.8, seed: 4 },
            { strategy: 'sample', maxTokens: 20, temperature: 1, seed: 8 },
        ] as GenerateOptions[]) {
            const prompt = `${o.strategy}: ${prompts[1]}`;
            const cold = await p.generate(prompt, o);
            const warm = await p.generate(prompt, o);
            expect(warm.stats.cachedPromptTokens, o.strategy).toBe(warm.stats.promptTokens - 1);
            expect(warm.tokens, o.strategy).toEqual(cold.tokens);
            if (o.strategy === 'sample') continue; // expert alone: its one prompt pass still decodes the last token
            expect(warm.stats.expertPasses, o.strategy).toBe(cold.stats.expertPasses - 1);
            expect(warm.stats.amateurPasses, o.strategy).toBe(cold.stats.amateurPasses - 1);
        }
    });

    it('concurrent requests with a shared system prompt each take a cached prefix', async () => {
        await using p = await loadPair({ ...(await tinyPair()), contextSize: 4096, threads: 2 });
        const system = 'You are a helpful assistant who answers briefly and well. ';
        await p.generate(system + 'Hello', greedy);
        const qs = ['What is a fox?', 'Name a colour.', 'Count to three.'];
        const rs = await Promise.all(qs.map((q) => p.generate(system + q, greedy)));
        const common = p.tokenize(system).length - 1; // the system prompt's last piece may merge with what follows
        // one request takes the finished one's cells; the others start empty or on another's (none finished yet)
        expect(Math.max(...rs.map((r) => r.stats.cachedPromptTokens))).toBeGreaterThanOrEqual(common);
        const later = await Promise.all(qs.map((q) => p.generate(system + q + ' Again.', greedy)));
        for (const r of later) expect(r.stats.cachedPromptTokens).toBeGreaterThanOrEqual(common);
        for (const [i, r] of later.entries()) expectSameUpToNearTies(p, system + qs[i] + ' Again.', r.tokens, (await pair.generate(system + qs[i] + ' Again.', greedy)).tokens);
    });

    it('cached cells give way: to a generation that needs the room, to sequences and forests that need the ids, to beam search', async () => {
        await using p = await loadPair({ ...(await tinyPair()), contextSize: 256, sequences: 4, maxConcurrent: 2, threads: 2 });
        // three finished generations park ~100 cells each in a 256-cell cache (each ran alone, so each fit)
        for (const q of prompts.slice(0, 3)) expect((await p.generate(q, { strategy: 'greedy', maxTokens: 90 })).finishReason).toBe('length');
        // a new one needs 200 cells: the least recently used cached ones are freed, it runs to its length
        expect((await p.generate(prompts[4]!, { strategy: 'greedy', maxTokens: 200 })).finishReason).toBe('length');
        // all four ids are parked now: sequences and forest branches take parked ids
        const a = await p.createSequence(p.tokenize('one two three'));
        const b = await p.createSequence(p.tokenize('four five'));
        const v = await p.verifyForest([{ sequence: a, nodes: [{ token: 3, parent: -1 }] }]);
        expect(v.trees).toHaveLength(1);
        await a.dispose();
        await b.dispose();
        await p.generate(prompts[0]!, { strategy: 'speculative', maxTokens: 30 });
        // beam search drops every cached prefix first, and leaves the cache empty
        const beam = await p.generate(prompts[3]!, { strategy: 'beam', beams: 3, maxTokens: 8 });
        expect(beam.beams).toHaveLength(3);
        expect(p._decoder.context('expert')!._kvCells().total).toBe(0);
    });

    it('promptCache: false keeps nothing', async () => {
        const again = await pair.generate(prompts[0]!, greedy);
        expect((await pair.generate(prompts[0]!, greedy)).stats.cachedPromptTokens).toBe(0);
        expect(again.stats.cachedPromptTokens).toBe(0);
        expect(pair._decoder.context('expert')!._kvCells().total).toBe(0);
        await expect(loadPair({ ...(await tinyPair()), promptCache: 1 as unknown as boolean })).rejects.toThrow(/promptCache/);
    });
});

describe("speculation under load: speculateUpTo 'auto' (the default)", () => {
    /** DraftLength.h's rule, written out: the γ with the most expected tokens per ms, the shorter among ties. */
    type Curve = (r: number) => number;
    const bruteForce = (alpha: number, n: number, gammaMax: number, scd: boolean, te: Curve, ta: Curve, ge: Curve, ga: Curve) => {
        let best = gammaMax;
        let bestRate = -1;
        for (let g = 0; g <= gammaMax; g++) {
            let tokens = 0;
            for (let i = 0; i <= g; i++) tokens += alpha ** i;
            const amateurPasses = g + (scd ? 1 : 0);
            const rate = tokens / (te(n * (g + 1)) + ge(n * (g + 1)) + (ta(n) + ga(n)) * amateurPasses);
            if (rate > bestRate * (1 + 1e-9)) [best, bestRate] = [g, rate];
        }
        return best;
    };
    const table = (f: Curve) => Float64Array.from({ length: 513 }, (_, r) => (r === 0 ? 0 : f(r)));
    const none = table(() => 0);

    it('drafts fully where a pass costs the same at any size, not at all where it costs per token, and matches brute force', () => {
        const flat = table(() => 20);
        const linear = table((r) => 4 * r);
        const small = table((r) => 2 + 0.1 * r);
        const rule = (o: { alpha: number; n: number; gammaMax: number; expertMs: Float64Array; amateurMs: Float64Array; expertGapMs?: Float64Array; amateurGapMs?: Float64Array }) =>
            addon()._draftLength({ scd: false, expertGapMs: none, amateurGapMs: none, ...o });
        for (const n of [1, 2, 8, 16]) expect(rule({ alpha: 0.7, n, gammaMax: 4, expertMs: flat, amateurMs: table(() => 0.01) })).toBe(4);
        // compute-bound: every verified draft costs a token's pass, and a rejected one is lost
        for (const n of [1, 8]) expect(rule({ alpha: 0.8, n, gammaMax: 4, expertMs: linear, amateurMs: small })).toBe(0);
        // the requests' own work on each returned row (the gap after a flush) dwarfing the passes: no drafts
        expect(rule({ alpha: 0.8, n: 4, gammaMax: 4, expertMs: flat, amateurMs: table(() => 0.01), expertGapMs: table((r) => 30 * r), amateurGapMs: table((r) => 30 * r) })).toBe(0);
        // nothing measured yet: the full draft, so that its passes get measured
        expect(rule({ alpha: 0.8, n: 8, gammaMax: 6, expertMs: table(() => -1), amateurMs: small })).toBe(6);
        // the measured shape of this CPU's verify curve (bench w1: k=16 ≈ 1.7× k=1) over random loads, rates and gaps
        let seed = 7;
        const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
        for (let i = 0; i < 300; i++) {
            const [a, b, c, d] = [5 + 40 * rnd(), 2 * rnd(), 20 * rnd(), rnd()];
            const te = (r: number) => a + b * r + (r > 16 ? c * (r - 16) * 0.1 : 0);
            const ta = (r: number) => a / 6 + (b / 6) * r;
            const gap = (r: number) => d + 0.05 * d * r;
            const o = { alpha: rnd(), n: 1 + Math.floor(16 * rnd()), gammaMax: Math.floor(9 * rnd()), scd: rnd() < 0.5 };
            const cap = (f: Curve) => (r: number) => f(Math.min(r, 512));
            const want = bruteForce(o.alpha, o.n, o.gammaMax, o.scd, cap(te), ta, cap(gap), gap);
            expect(addon()._draftLength({ ...o, expertMs: table(te), amateurMs: table(ta), expertGapMs: table(gap), amateurGapMs: table(gap) }), JSON.stringify(o)).toBe(want);
        }
    });

    it('greedy requests keep greedy output; sampled ones keep their draft length and repeat a run alone', async () => {
        await using p = await loadPair({ ...(await tinyPair()), contextSize: 4096, threads: 2, promptCache: false });
        const g: GenerateOptions = { strategy: 'speculative', maxTokens: 24, draftTokens: 4 };
        const sampled: GenerateOptions = { strategy: 'speculative', maxTokens: 24, draftTokens: 4, temperature: 1, seed: 12 };
        const aloneSampled = await p.generate(prompts[1]!, sampled);
        const [rs, rsSampled] = await Promise.all([Promise.all(prompts.slice(2, 6).map((q) => p.generate(q, g))), p.generate(prompts[1]!, sampled)]);
        for (const [i, r] of rs.entries()) expectSameUpToNearTies(p, prompts[i + 2]!, r.tokens, (await p.generate(prompts[i + 2]!, { strategy: 'greedy', maxTokens: 24 })).tokens);
        expect(counts(rsSampled)).toEqual(counts(aloneSampled));
        expect(rsSampled.stats.sharedPasses).toBeGreaterThan(0);
        await expect(loadPair({ ...(await tinyPair()), speculateUpTo: 'sometimes' as 'auto' })).rejects.toThrow(/speculateUpTo/);
    });
});
