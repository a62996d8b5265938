#!/usr/bin/env node
// The GGUF mutation fuzzer (issue 12): N seeded mutants of each of two small valid GGUF experts (the `tiny`
// synthetic model with llama.cpp's SPM vocabulary, and one with a tiny SPM vocabulary), each loaded, used for
// generation and as a pair's expert in its own child process (test/fuzz/run-one.mjs). Every mutant must end
// in one of: works, or a typed load error (ModelLoadError / IncompatibleModelsError codes). A signal, an abort,
// a hang (timeout), an untyped error or a failure after the load counts as a crash.
//
// Usage: node test/fuzz/run.mjs [--count N] [--seed S] [--jobs J] [--timeout-ms T] [--out FILE.json] [--keep DIR]
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { mutant } from './mutate.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const index = join(root, 'dist', 'index.js');
const { values } = parseArgs({
    options: {
        count: { type: 'string', default: '1000' },
        seed: { type: 'string', default: '1' },
        jobs: { type: 'string', default: '2' },
        'timeout-ms': { type: 'string', default: '60000' },
        out: { type: 'string' },
        keep: { type: 'string' },
        quiet: { type: 'boolean', default: false },
    },
});
const count = Number(values.count);
const seed = Number(values.seed);
const timeoutMs = Number(values['timeout-ms']);

/** Codes a corrupt file may end in: the load-error family (and the pair check). */
export const TYPED = new Set([
    'ERR_LLAMA_DUET_MODEL_NOT_FOUND',
    'ERR_LLAMA_DUET_NOT_GGUF',
    'ERR_LLAMA_DUET_CORRUPT_GGUF',
    'ERR_LLAMA_DUET_UNSUPPORTED_ARCHITECTURE',
    'ERR_LLAMA_DUET_MODEL_LOAD_FAILED',
    'ERR_LLAMA_DUET_INCOMPATIBLE_MODELS',
]);

export async function bases(dir) {
    const { makePair } = await import(index);
    const spm = await makePair({ out: join(dir, 'spm'), shape: 'tiny-q8', seed: 1 }); // llama.cpp's SPM vocabulary, Q8_0 weights
    const tiny = await makePair({ out: join(dir, 'tinyvocab'), shape: 'tiny', seed: 2, vocab: { tiny: 5 } });
    return [
        { name: 'spm', expert: spm.expert, amateur: spm.amateur },
        { name: 'tinyvocab', expert: tiny.expert, amateur: tiny.amateur },
    ];
}

function runOne(file, amateur) {
    return new Promise((done) => {
        const child = spawn(process.execPath, [join(root, 'test', 'fuzz', 'run-one.mjs'), file, amateur, index], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (err += d));
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        child.on('close', (code, signal) => {
            clearTimeout(timer);
            let json = null;
            try {
                json = JSON.parse(out.trim().split('\n').pop());
            } catch {}
            done({ code, signal, json, stderr: err.slice(-600), timedOut: signal === 'SIGKILL' });
        });
    });
}

/** Classifies one child result: ok | typed | crash (with why) */
export function classify(r) {
    if (r.timedOut) return { verdict: 'crash', why: 'hang (timeout)' };
    if (r.signal) return { verdict: 'crash', why: `signal ${r.signal}` };
    if (r.code !== 0 || !r.json) return { verdict: 'crash', why: `exit ${r.code} without a result` };
    if (r.json.outcome === 'ok') return { verdict: 'ok' };
    if (r.json.stage === 'load' || r.json.stage === 'pair') {
        return TYPED.has(r.json.code) ? { verdict: 'typed' } : { verdict: 'crash', why: `untyped error at ${r.json.stage}: ${r.json.code} ${r.json.message}` };
    }
    return { verdict: 'crash', why: `failed after loading (${r.json.stage}): ${r.json.code} ${r.json.message}` };
}

/** Runs `count` mutants of every base; returns the summary. */
export async function fuzz({ count, seed, jobs, dir, keep, onCase }) {
    const all = await bases(dir);
    const cases = [];
    for (const b of all) for (let i = 0; i < count; i++) cases.push({ base: b, i });
    const results = [];
    let next = 0;
    const work = async () => {
        while (next < cases.length) {
            const c = cases[next++];
            const m = mutant(readFileSync(c.base.expert), seed, c.i);
            const file = join(dir, `${c.base.name}-${c.i}.gguf`);
            writeFileSync(file, m.bytes);
            const r = runOne(file, c.base.amateur);
            const res = await r;
            const v = classify(res);
            const row = { base: c.base.name, i: c.i, kind: m.kind, what: m.what, ...v, code: res.json?.code ?? null, message: res.json?.message ?? null, stderr: v.verdict === 'crash' ? res.stderr : undefined };
            results.push(row);
            if (v.verdict === 'crash' && keep) {
                mkdirSync(keep, { recursive: true });
                writeFileSync(join(keep, `${c.base.name}-${seed}-${c.i}.gguf`), m.bytes);
            }
            rmSync(file, { force: true });
            onCase?.(row, results.length, cases.length);
        }
    };
    await Promise.all(Array.from({ length: jobs }, work));
    const by = (k) => results.filter((r) => r.verdict === k).length;
    const kinds = {};
    for (const r of results) {
        kinds[r.kind] ??= { ok: 0, typed: 0, crash: 0 };
        kinds[r.kind][r.verdict]++;
    }
    return { seed, count, total: results.length, ok: by('ok'), typed: by('typed'), crash: by('crash'), kinds, crashes: results.filter((r) => r.verdict === 'crash') };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
    const dir = mkdtempSync(join(tmpdir(), 'llama-duet-fuzz-'));
    const t0 = Date.now();
    try {
        const s = await fuzz({
            count,
            seed,
            jobs: Number(values.jobs),
            dir,
            keep: values.keep,
            onCase: (row, done, total) => {
                if (row.verdict === 'crash') process.stderr.write(`\n[fuzz] CRASH ${row.base}#${row.i} ${row.kind} (${row.what}): ${row.why}\n`);
                else if (!values.quiet && done % 50 === 0) process.stderr.write(`[fuzz] ${done}/${total}\n`);
            },
        });
        s.seconds = Math.round((Date.now() - t0) / 1000);
        const text = JSON.stringify(s, null, 2);
        if (values.out) writeFileSync(values.out, text + '\n');
        process.stdout.write(`${JSON.stringify({ seed: s.seed, total: s.total, ok: s.ok, typed: s.typed, crash: s.crash, seconds: s.seconds })}\n`);
        for (const [k, v] of Object.entries(s.kinds)) process.stdout.write(`  ${k}: ${JSON.stringify(v)}\n`);
        process.exit(s.crash === 0 ? 0 : 1);
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
}
