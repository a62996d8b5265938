#!/usr/bin/env node
// Soak: N generate calls cycling every strategy on the tiny pair, with sequences + verifyForest rounds, aborts at
// random points, streams abandoned early, and the pair disposed and reloaded at random points (also while a
// generation runs). RSS is sampled every `--every` calls; after the warm-up the curve must stay flat (the last
// sample within `--slack-mib` of the median of the samples after warm-up). Writes the curve as JSON.
//
// Usage: node test/soak/soak.mjs [--calls 10000] [--every 250] [--warmup 1000] [--slack-mib 48] [--seed 1] [--no-reload] [--out FILE]
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { rng } from '../helpers/prng.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { loadPair, makePair, GenerationAbortedError, DisposedError } = await import(join(root, 'dist', 'index.js'));
const { values } = parseArgs({
    options: {
        calls: { type: 'string', default: '10000' },
        every: { type: 'string', default: '250' },
        warmup: { type: 'string', default: '1000' },
        'slack-mib': { type: 'string', default: '48' },
        seed: { type: 'string', default: '1' },
        out: { type: 'string' },
        'no-reload': { type: 'boolean', default: false },
    },
});
const reloads = !values['no-reload'];
const calls = Number(values.calls);
const every = Number(values.every);
const warmup = Number(values.warmup);
const rand = rng(Number(values.seed));
const files = await makePair({ out: join(tmpdir(), 'llama-duet-soak'), shape: 'tiny', reuse: true });
const load = () => loadPair({ expert: files.expert, amateur: files.amateur, contextSize: 512, threads: 2, sequences: 8 });
const strategies = [
    { strategy: 'greedy' },
    { strategy: 'sample', temperature: 0.9, topP: 0.95 },
    { strategy: 'speculative' },
    { strategy: 'speculative', temperature: 0.8 },
    { strategy: 'contrastive' },
    { strategy: 'scd', temperature: 0.7 },
    { strategy: 'beam', beams: 3 },
    { strategy: 'beam', beams: 4, sample: true, temperature: 1 },
];
const prompts = ['The quick brown fox', 'Once upon a time', 'In a hole in the ground there lived', 'x'];
const counts = { generate: 0, aborted: 0, streamsAbandoned: 0, forests: 0, reloads: 0, disposedMidRun: 0 };
const curve = [];
const rssMib = () => process.memoryUsage().rss / 2 ** 20;
let pair = await load();
const t0 = Date.now();

async function forestRound(p) {
    const s = await p.createSequence(p.tokenize(prompts[Math.floor(rand() * prompts.length)]));
    const nodes = Array.from({ length: 6 }, (_, i) => ({ token: 300 + Math.floor(rand() * 2000), parent: i === 0 || rand() < 0.3 ? -1 : i - 1 }));
    const r = await p.verifyForest([{ sequence: s, nodes }], { rule: 'greedy' });
    if (rand() < 0.5) await p.commit(r.trees[0]);
    else await r.release();
    const f = await s.fork();
    await f.append([400, 401]);
    await f.trim(1);
    await f.dispose();
    await s.dispose();
    counts.forests++;
}

for (let i = 0; i < calls; i++) {
    const base = strategies[i % strategies.length];
    const seeded = base.strategy === 'sample' || base.temperature !== undefined; // greedy runs take no seed
    const opts = { ...base, maxTokens: 8 + Math.floor(rand() * 24), ...(seeded ? { seed: i } : {}) };
    const prompt = prompts[i % prompts.length];
    const roll = rand();
    try {
        if (roll < 0.05) {
            // abort at a random point
            const ac = new AbortController();
            setTimeout(() => ac.abort(), Math.floor(rand() * 3));
            await pair.generate(prompt, { ...opts, signal: ac.signal, maxTokens: 200 }).catch((e) => {
                if (!(e instanceof GenerationAbortedError)) throw e;
                counts.aborted++;
            });
        } else if (roll < 0.08) {
            // a stream abandoned after its first chunk
            for await (const _ of pair.stream(prompt, { ...opts, maxTokens: 100 })) break;
            counts.streamsAbandoned++;
        } else if (roll < 0.12) {
            await forestRound(pair);
        } else if (roll < 0.125 && reloads) {
            // dispose while a generation runs, then reload
            const g = pair.generate(prompt, { ...opts, maxTokens: 300 }).catch((e) => {
                if (!(e instanceof DisposedError)) throw e;
                counts.disposedMidRun++;
            });
            await new Promise((r) => setTimeout(r, Math.floor(rand() * 5)));
            await pair.dispose();
            await g;
            pair = await load();
            counts.reloads++;
        } else {
            await pair.generate(prompt, opts);
        }
        counts.generate++;
    } catch (e) {
        console.error(`[soak] call ${i} (${JSON.stringify(opts)}) failed: ${e?.stack ?? e}`);
        process.exit(1);
    }
    if ((i + 1) % every === 0) {
        const mu = process.memoryUsage();
        curve.push({ calls: i + 1, rssMib: Math.round(rssMib() * 10) / 10, heapUsedMib: Math.round((mu.heapUsed / 2 ** 20) * 10) / 10, seconds: Math.round((Date.now() - t0) / 100) / 10 });
        process.stderr.write(`[soak] ${i + 1}/${calls} rss ${curve.at(-1).rssMib} MiB, JS heap ${curve.at(-1).heapUsedMib} MiB\n`);
    }
}
await pair.dispose();
const after = curve.filter((c) => c.calls > warmup).map((c) => c.rssMib);
const sorted = [...after].sort((x, y) => x - y);
const median = sorted[sorted.length >> 1] ?? 0;
const last = after.at(-1) ?? 0;
const growth = last - median;
const report = { calls, counts, warmup, medianAfterWarmupMib: median, lastMib: last, growthMib: Math.round(growth * 10) / 10, maxAfterWarmupMib: Math.max(...after), curve, seconds: Math.round((Date.now() - t0) / 1000) };
const out = values.out ?? join(root, 'bench', 'results', `soak-${new Date().toISOString().slice(0, 10)}.json`);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
console.log(JSON.stringify({ ...report, curve: undefined }));
if (growth > Number(values['slack-mib'])) {
    console.error(`[soak] RSS grew by ${growth.toFixed(1)} MiB after warm-up (allowed ${values['slack-mib']})`);
    process.exit(1);
}
