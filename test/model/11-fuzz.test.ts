/**
 * A fast seeded slice of the GGUF mutation fuzzer (test/fuzz/run.mjs runs the full corpus): mutants of two
 * small valid GGUFs, each loaded, generated from and used as a pair's expert in its own child process. None may
 * end in a signal, an abort, a hang, an untyped error or a failure after loading: each works or is refused
 * at load with a typed ModelLoadError. Also: the validator's refusals name the key for the cases llama.cpp
 * would abort on (before: SIGABRT from a GGML_ASSERT, or SIGFPE).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCode, loadModel, ModelLoadError } from '../../lib/index.js';
import { tinyPair } from '../helpers/pairs.js';
// @ts-expect-error plain ESM helpers of the fuzzer (no types)
import { parse, T, write } from '../fuzz/gguf.mjs';
// @ts-expect-error plain ESM helpers of the fuzzer (no types)
import { fuzz } from '../fuzz/run.mjs';

const dir = mkdtempSync(join(tmpdir(), 'llama-duet-fuzz-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('GGUF mutation fuzzing (seeded slice)', () => {
    it('60 mutants of each base: no crash, no hang, no untyped error', async () => {
        const s = await fuzz({ count: 60, seed: 7, jobs: 2, dir });
        expect(s.total).toBe(120);
        expect(s.crashes, JSON.stringify(s.crashes.slice(0, 3), null, 1)).toEqual([]);
        expect(s.ok).toBeGreaterThan(5); // the harmless mutations still load and run
        expect(s.typed).toBeGreaterThan(60);
    }, 300_000);
});

describe('the validator names the key llama.cpp would abort on', () => {
    it('a BOS id out of range is not one: llama.cpp warns and keeps its default BOS (the load and generation work)', async () => {
        const g = parse(readFileSync((await tinyPair()).expert));
        const e = g.kv.find((x: { key: string }) => x.key === 'tokenizer.ggml.bos_token_id');
        Object.assign(e, { type: T.U32, value: 1 << 30 });
        const file = join(dir, 'bos-out-of-range.gguf');
        writeFileSync(file, write(g));
        await using m = await loadModel(file, { contextSize: 64, threads: 1 });
        expect(m.info.bos).toBe(1);
        expect((await m.generate('x', { maxTokens: 3 })).tokens).toHaveLength(3);
    });

    const cases: [string, (g: { kv: { key: string; type: number; value: unknown }[] }) => void, RegExp][] = [
        ['block_count 4096', (g) => set(g, 'llama.block_count', T.U32, 4096), /llama\.block_count/],
        ['block_count 0', (g) => set(g, 'llama.block_count', T.U32, 0), /llama\.block_count/],
        ['rms ε NaN', (g) => set(g, 'llama.attention.layer_norm_rms_epsilon', T.F32, NaN), /layer_norm_rms_epsilon/],
        ['rms ε < 0', (g) => set(g, 'llama.attention.layer_norm_rms_epsilon', T.F32, -1e-5), /layer_norm_rms_epsilon/],
        ['head_count 0', (g) => set(g, 'llama.attention.head_count', T.U32, 0), /head_count/],
        ['head_count_kv 0', (g) => set(g, 'llama.attention.head_count_kv', T.U32, 0), /head_count_kv/],
        ['head_count_kv per layer with zeros', (g) => set(g, 'llama.attention.head_count_kv', T.ARRAY, { elem: T.U32, items: [2, 0, 0, 0] }), /head_count_kv/],
        ['n_embd not divisible by n_head', (g) => set(g, 'llama.attention.head_count', T.U32, 6), /embedding_length.*divisible/],
        ['rope dims larger than the head', (g) => set(g, 'llama.rope.dimension_count', T.U32, 64), /rope\.dimension_count/],
        ['context_length 0', (g) => set(g, 'llama.context_length', T.U32, 0), /context_length/],
        ['alignment 8', (g) => set(g, 'general.alignment', T.U32, 8), /alignment/],
        ['a duplicate token', (g) => {
            const tokens = g.kv.find((e) => e.key === 'tokenizer.ggml.tokens')!.value as { items: string[] };
            tokens.items[10] = tokens.items[11]!;
        }, /tokenizer\.ggml\.tokens/],
    ];
    function set(g: { kv: { key: string; type: number; value: unknown }[] }, key: string, type: number, value: unknown) {
        const e = g.kv.find((x) => x.key === key);
        if (e) Object.assign(e, { type, value });
        else g.kv.push({ key, type, value });
    }
    it.each(cases)('%s → ModelLoadError naming the key', async (_name, mutate, key) => {
        const g = parse(readFileSync((await tinyPair()).expert));
        mutate(g);
        const file = join(dir, `case-${Math.random().toString(36).slice(2)}.gguf`);
        writeFileSync(file, write(g));
        const err = await loadModel(file, { contextSize: 64, threads: 1 }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ModelLoadError);
        expect((err as ModelLoadError).code).toBe(ErrorCode.CORRUPT_GGUF);
        expect((err as Error).message).toMatch(key);
    });
});
