/** Every bad file gives its typed error and the process lives on (the last test still generates). */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, truncateSync, copyFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, IncompatibleModelsError, loadModel, loadPair, ModelLoadError, NativeError } from '../../lib/index.js';
import { syntheticPair, tinyPair, type PairPaths } from '../helpers/pairs.js';

const dir = join(tmpdir(), 'llama-duet-test', `bad-files-${process.pid}`);
let pair: PairPaths;

function badFile(name: string, bytes: Uint8Array): string {
    const p = join(dir, name);
    writeFileSync(p, bytes);
    return p;
}

async function expectLoadError(path: string, code: string): Promise<ModelLoadError> {
    const err = await loadModel(path).then(
        () => undefined,
        (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ModelLoadError);
    expect((err as ModelLoadError).code).toBe(code);
    expect((err as ModelLoadError).path).toBe(path);
    return err as ModelLoadError;
}

beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    pair = await tinyPair();
});

describe('model files that must be refused with a typed error', () => {
    it('missing file', async () => {
        await expectLoadError(join(dir, 'nope.gguf'), ErrorCode.MODEL_NOT_FOUND);
    });

    it('a directory', async () => {
        await expectLoadError(dir, ErrorCode.MODEL_NOT_FOUND);
    });

    it('empty file', async () => {
        const e = await expectLoadError(badFile('empty.gguf', new Uint8Array()), ErrorCode.NOT_GGUF);
        expect(e.message).toMatch(/empty/);
    });

    it('random bytes', async () => {
        await expectLoadError(badFile('random.gguf', randomBytes(4096)), ErrorCode.NOT_GGUF);
    });

    it('wrong magic on an otherwise valid file', async () => {
        const bytes = readFileSync(pair.expert);
        bytes.write('GGML', 0, 'latin1');
        await expectLoadError(badFile('magic.gguf', bytes), ErrorCode.NOT_GGUF);
    });

    it('unsupported GGUF versions (0, 1, future)', async () => {
        for (const version of [0, 1, 99]) {
            const bytes = Buffer.from(readFileSync(pair.expert).subarray(0, 65536));
            bytes.writeUInt32LE(version, 4);
            const e = await expectLoadError(badFile(`version-${version}.gguf`, bytes), ErrorCode.CORRUPT_GGUF);
            expect(e.message).toMatch(new RegExp(`version ${version}`));
        }
    });

    it('header only (truncated right after the magic)', async () => {
        await expectLoadError(badFile('magic-only.gguf', Buffer.from('GGUF')), ErrorCode.CORRUPT_GGUF);
    });

    it('truncated inside the metadata', async () => {
        const bytes = readFileSync(pair.expert).subarray(0, 3000);
        await expectLoadError(badFile('trunc-meta.gguf', bytes), ErrorCode.CORRUPT_GGUF);
    });

    it('truncated inside the tensor data', async () => {
        const p = join(dir, 'trunc-data.gguf');
        copyFileSync(pair.expert, p);
        truncateSync(p, Math.floor(statSync(p).size * 0.6));
        const e = await expectLoadError(p, ErrorCode.CORRUPT_GGUF);
        expect(e.message).toMatch(/truncated/);
    });

    it('corrupt metadata (absurd key count)', async () => {
        const bytes = Buffer.from(readFileSync(pair.expert));
        bytes.writeBigUInt64LE(0xffff_ffff_ffffn, 16); // n_kv
        await expectLoadError(badFile('nkv.gguf', bytes), ErrorCode.CORRUPT_GGUF);
    });

    it('an architecture llama.cpp does not know', async () => {
        const bytes = Buffer.from(readFileSync(pair.expert));
        const key = Buffer.from('general.architecture');
        const at = bytes.indexOf(key);
        expect(at).toBeGreaterThan(0);
        const valueAt = at + key.length + 4 + 8; // type u32 + string length u64
        expect(bytes.toString('latin1', valueAt, valueAt + 5)).toBe('llama');
        bytes.write('xyzzy', valueAt, 'latin1');
        const e = await expectLoadError(badFile('arch.gguf', bytes), ErrorCode.UNSUPPORTED_ARCHITECTURE);
        expect(e.message).toMatch(/xyzzy/);
    });

    it('an aborted load', async () => {
        const ac = new AbortController();
        ac.abort();
        const err = await loadModel(pair.expert, { signal: ac.signal }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(NativeError);
        expect((err as NativeError).code).toBe(ErrorCode.ABORTED);
    });
});

describe('pairs', () => {
    it('refuses an amateur with another vocabulary', async () => {
        const other = await syntheticPair('tiny-vocab-8', { shape: 'tiny', vocab: { tiny: 8 }, seed: 3 });
        const err = await loadPair({ expert: pair.expert, amateur: other.amateur }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(IncompatibleModelsError);
        expect((err as IncompatibleModelsError).code).toBe(ErrorCode.INCOMPATIBLE_MODELS);
        expect((err as Error).message).toMatch(/vocabulary sizes differ|differs/);
    });

    it('reports progress, loads a compatible pair and still generates after all the failures above', async () => {
        const seen: number[] = [];
        await using p = await loadPair({ ...pair, contextSize: 256, onProgress: (f) => seen.push(f) });
        expect(seen.length).toBeGreaterThan(0);
        expect(Math.max(...seen)).toBeCloseTo(1, 5);
        expect(p.expert.nLayer).toBe(4);
        expect(p.amateur.nLayer).toBe(1);
        const r = await p.generate('Hello', { maxTokens: 4 });
        expect(r.tokens).toHaveLength(4);
    });
});
