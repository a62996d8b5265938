/**
 * `bench --workload concurrency` (issue 15 §3): serving many requests at once on the `tinyllama` pair.
 *
 * 1. The library: N = 1, 2, 4, 8, 16 concurrent generate() calls (distinct prompts), greedy and speculative
 *    (γ 4), aggregate tokens/s = Σ generated tokens / wall time, the median of the repeats, and the ratio to
 *    N = 1 of the same mode.
 * 2. Over HTTP, with one closed-loop load driver (fetch; every client sends its next request when the
 *    previous one is answered, so it counts completion tokens, which autocannon and wrk cannot): our
 *    `serve()` and llama.cpp's llama-server from the same pinned release (`--parallel 8`, plain and with the
 *    amateur as its draft model `-md`; stock ggml kernels, as every llama.cpp row of the bench), at 1, 8 and
 *    32 clients: tokens/s, requests/s, p50/p99 latency.
 * 3. llama-batched-bench's raw batched-decode curve of the expert beside it.
 * 4. Prompt-prefix reuse, the same requests with `promptCache` on and off: a multi-turn conversation (each
 *    prompt is the previous one, its reply and a new user line) and 8 concurrent requests behind one long
 *    shared system prompt (after one request has warmed it): prompt time and cached prompt tokens.
 * Peers are skipped with the reason when `npm run bench:peers` has not built them.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { benchToolsDir, fmt, gitCommit, median, progress, stockGgmlEnv, writeResults } from './bench.js';
import { loadPair, type ModelPair } from './models.js';
import type { GenerateOptions } from './options.js';
import { packageRoot } from './paths.js';
import { serve } from './serve/server.js';
import { makePair } from './synthetic.js';
import { cpuFacts, systemInfo } from './system.js';

const prompts = [
    'The quick brown fox',
    'Once upon a time there was',
    'In a hole in the ground',
    'It was a bright cold day in April',
    'Call me Ishmael.',
    'The sky above the port was',
    'All happy families are alike;',
    'It is a truth universally acknowledged',
    'Far out in the uncharted backwaters',
    'The man in black fled across the desert',
    'Mr and Mrs Dursley, of number four',
    'It was the best of times,',
    'Happy families are all alike',
    'In my younger and more vulnerable years',
    'Last night I dreamt I went to',
    'The story so far: in the beginning',
];

export interface LibraryPoint {
    mode: 'greedy' | 'speculative' | 'greedy (beside fixed γ)' | 'speculative, fixed γ 4';
    concurrent: number;
    /** aggregate generated tokens per second, one per repeat */
    samples: number[];
    tokensPerSecond: number;
    /** tokensPerSecond / the same mode's at 1 */
    ratioToOne: number;
    /** mean per-request expert passes shared with other requests / all its passes */
    sharedPassShare: number;
}

export interface HttpPoint {
    system: string;
    clients: number;
    requests: number;
    tokensPerSecond: number;
    requestsPerSecond: number;
    p50Ms: number;
    p99Ms: number;
    errors: number;
}

export interface BatchedBenchRow {
    pp: number;
    tg: number;
    parallel: number;
    /** token-generation tokens/s over all sequences */
    tgTokensPerSecond: number;
}

export interface PromptCacheRow {
    scenario: 'conversation' | 'shared system prompt ×8';
    promptCache: boolean;
    requests: number;
    promptTokens: number;
    cachedPromptTokens: number;
    /** Σ stats.promptMs over the requests (conversation), or the median request's (shared system prompt) */
    promptMs: number;
    /** wall time of the whole scenario */
    wallMs: number;
}

export interface ConcurrencyReport {
    schema: 1;
    date: string;
    machine: { cpu: string; flags: string; cores: number; node: string; kernels: string };
    commit: string | null;
    pair: { expert: string; amateur: string };
    maxTokens: number;
    threads: number;
    library: LibraryPoint[];
    http: HttpPoint[];
    batchedBench: BatchedBenchRow[];
    promptCache: PromptCacheRow[];
    skipped: { what: string; reason: string }[];
}

const percentile = (v: number[], p: number) => {
    const s = [...v].sort((a, b) => a - b);
    return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};

async function libraryCurve(pair: ModelPair, maxTokens: number, repeats: number, modes: [LibraryPoint['mode'], GenerateOptions][]): Promise<LibraryPoint[]> {
    const levels = [1, 2, 4, 8, 16];
    const out: LibraryPoint[] = [];
    await pair.generate(prompts[0]!, { strategy: 'speculative', maxTokens: 16 }); // warm-up
    let done = 0;
    // modes alternate within every level and repeat: the machine drifts by tens of percent over minutes
    for (const n of levels) {
        const samples = modes.map((): number[] => []);
        const shares = modes.map((): number[] => []);
        for (let r = 0; r < repeats; r++) {
            for (const [m, [mode, opts]] of modes.entries()) {
                progress(done++, modes.length * levels.length * repeats, `library ${mode} ×${n}`);
                const t0 = performance.now();
                const rs = await Promise.all(Array.from({ length: n }, (_, i) => pair.generate(prompts[(i + r) % prompts.length]!, opts)));
                const wall = performance.now() - t0;
                samples[m]!.push((rs.reduce((a, x) => a + x.tokens.length, 0) * 1000) / wall);
                for (const x of rs) shares[m]!.push((x.stats.sharedPasses ?? 0) / Math.max(1, x.stats.expertPasses));
            }
        }
        for (const [m, [mode]] of modes.entries()) {
            const tps = median(samples[m]!);
            const one = n === 1 ? tps : out.find((p) => p.mode === mode && p.concurrent === 1)!.tokensPerSecond;
            out.push({ mode, concurrent: n, samples: samples[m]!, tokensPerSecond: tps, ratioToOne: tps / one, sharedPassShare: shares[m]!.reduce((a, b) => a + b, 0) / shares[m]!.length });
        }
    }
    progress(1, 1, 'library curve');
    return out;
}

/** A closed loop of `clients` clients, `perClient` requests each, against an OpenAI /v1/completions. */
async function drive(system: string, url: string, clients: number, perClient: number, body: Record<string, unknown>): Promise<HttpPoint> {
    const latencies: number[] = [];
    let tokens = 0;
    let errors = 0;
    const t0 = performance.now();
    await Promise.all(
        Array.from({ length: clients }, async (_, c) => {
            for (let k = 0; k < perClient; k++) {
                const s = performance.now();
                try {
                    const res = await fetch(`${url}/v1/completions`, {
                        method: 'POST',
                        headers: { 'content-type': 'application/json' },
                        body: JSON.stringify({ ...body, prompt: prompts[(c * perClient + k) % prompts.length] }),
                    });
                    const j = (await res.json()) as { usage?: { completion_tokens?: number } };
                    if (!res.ok) errors++;
                    tokens += j.usage?.completion_tokens ?? 0;
                } catch {
                    errors++;
                }
                latencies.push(performance.now() - s);
            }
        }),
    );
    const wall = (performance.now() - t0) / 1000;
    return { system, clients, requests: latencies.length, tokensPerSecond: tokens / wall, requestsPerSecond: latencies.length / wall, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), errors };
}

async function startLlamaServer(args: string[]): Promise<{ proc: ChildProcess; url: string }> {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const proc = spawn(join(benchToolsDir(), 'llama-server'), [...args, '--host', '127.0.0.1', '--port', String(port)], { stdio: ['ignore', 'ignore', 'pipe'], env: stockGgmlEnv() });
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 600; i++) {
        if (proc.exitCode !== null) throw new Error(`llama-server exited ${proc.exitCode}: ${err.split('\n').slice(-5).join(' ')}`);
        try {
            const r = await fetch(`${url}/health`);
            if (r.ok) return { proc, url };
        } catch {
            // not listening yet
        }
        await new Promise((r) => setTimeout(r, 100));
    }
    proc.kill('SIGKILL');
    throw new Error('llama-server did not become healthy in 60 s');
}

function batchedBench(expert: string, threads: number, maxTokens: number): BatchedBenchRow[] | string {
    const bin = join(benchToolsDir(), 'llama-batched-bench');
    if (!existsSync(bin)) return `${bin} not built: run npm run bench:peers`;
    const r = spawnSync(bin, ['-m', expert, '-c', '8192', '-b', '512', '-ub', '512', '-npp', '8', '-ntg', String(maxTokens), '-npl', '1,2,4,8,16', '-t', String(threads)], { encoding: 'utf8', timeout: 600_000, env: stockGgmlEnv() });
    if (r.status !== 0) return `llama-batched-bench failed (exit ${r.status}): ${(r.stderr ?? '').split('\n').slice(-3).join(' ')}`;
    // |    PP |     TG |    B |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |      T s |    S t/s |
    const rows: BatchedBenchRow[] = [];
    for (const line of (r.stdout + r.stderr).split('\n')) {
        const c = line.split('|').map((x) => x.trim()).filter(Boolean);
        if (c.length >= 8 && /^\d+$/.test(c[0]!) && /^\d+$/.test(c[2]!)) rows.push({ pp: Number(c[0]), tg: Number(c[1]), parallel: Number(c[2]), tgTokensPerSecond: Number(c[7]) });
    }
    return rows.length ? rows : 'llama-batched-bench printed no table';
}

const userLines = [
    ' Tell me more about that, and keep it short please.',
    ' Why did that happen, in your view?',
    ' What would you do differently next time?',
    ' Summarise everything so far in one sentence.',
    ' And what comes after that?',
    ' Thank you. One last question: what is the moral?',
];

/** Section 4: the same requests on a pair loaded with promptCache on, then off. */
export async function promptCacheRows(expert: string, amateur: string, threads: number): Promise<PromptCacheRow[]> {
    const rows: PromptCacheRow[] = [];
    const system = `You are a careful assistant. ${'Answer in plain words, cite no sources, and keep every reply brief and to the point. '.repeat(12)}`;
    const questions = prompts.slice(0, 8).map((p) => ` Question: continue "${p}".`);
    for (const promptCache of [true, false]) {
        const pair = await loadPair({ expert, amateur, contextSize: 16 * 256, threads, sequences: 16, maxConcurrent: 8, promptCache });
        try {
            progress(0, 1, `prompt cache ${promptCache ? 'on' : 'off'}: conversation`);
            await pair.generate(prompts[5]!, { strategy: 'greedy', maxTokens: 4 }); // warm-up
            let prompt = pair.tokenize('A conversation. User: Tell me a story about a fox.');
            const conv: PromptCacheRow = { scenario: 'conversation', promptCache, requests: 0, promptTokens: 0, cachedPromptTokens: 0, promptMs: 0, wallMs: 0 };
            const t0 = performance.now();
            for (const line of userLines) {
                const r = await pair.generate(prompt, { strategy: 'speculative', maxTokens: 32 });
                conv.requests++;
                conv.promptTokens += r.stats.promptTokens;
                conv.cachedPromptTokens += r.stats.cachedPromptTokens;
                conv.promptMs += r.stats.promptMs;
                prompt = [...prompt, ...r.tokens, ...pair.tokenize(line, { addSpecial: false })];
            }
            conv.wallMs = performance.now() - t0;
            rows.push(conv);
            progress(0, 1, `prompt cache ${promptCache ? 'on' : 'off'}: shared system prompt`);
            await pair.generate(system + ' Question: hello.', { strategy: 'greedy', maxTokens: 8 });
            const t1 = performance.now();
            const rs = await Promise.all(questions.map((q) => pair.generate(system + q, { strategy: 'greedy', maxTokens: 32 })));
            rows.push({
                scenario: 'shared system prompt ×8',
                promptCache,
                requests: rs.length,
                promptTokens: rs.reduce((a, r) => a + r.stats.promptTokens, 0),
                cachedPromptTokens: rs.reduce((a, r) => a + r.stats.cachedPromptTokens, 0),
                promptMs: median(rs.map((r) => r.stats.promptMs)),
                wallMs: performance.now() - t1,
            });
        } finally {
            await pair.dispose();
        }
    }
    return rows;
}

export async function runConcurrency(o: { out?: string; repeats?: number } = {}): Promise<{ report: ConcurrencyReport; files: string[] }> {
    const dir = join(packageRoot(), 'models', 'tinyllama');
    const expert = join(dir, 'expert.gguf');
    const amateur = join(dir, 'amateur.gguf');
    if (!existsSync(expert) || !existsSync(amateur)) await makePair({ out: dir, shape: 'tinyllama', seed: 1 });
    const threads = 2;
    const maxTokens = 64;
    const skipped: ConcurrencyReport['skipped'] = [];
    const pair = await loadPair({ expert, amateur, contextSize: 16 * 160, threads, sequences: 16, maxConcurrent: 16 });
    let library: LibraryPoint[];
    const http: HttpPoint[] = [];
    const clientsLevels = [1, 8, 32];
    const perClient = (c: number) => (c === 1 ? 4 : c === 8 ? 2 : 1);
    try {
        library = await libraryCurve(pair, maxTokens, o.repeats ?? 3, [
            ['greedy', { strategy: 'greedy', maxTokens }],
            ['speculative', { strategy: 'speculative', draftTokens: 4, maxTokens }],
        ]);
        // ours over HTTP: the same pair behind serve(), greedy and speculative (extension field)
        const server = await serve(pair, { port: 0 });
        try {
            for (const [label, strategy] of [['llama-duet serve · greedy', 'greedy'], ['llama-duet serve · speculative', 'speculative']] as const) {
                for (const c of clientsLevels) {
                    progress(0, 1, `${label} ×${c}`);
                    http.push(await drive(label, server.url, c, perClient(c), { max_tokens: maxTokens, temperature: 0, strategy }));
                }
            }
        } finally {
            await server.close();
        }
    } finally {
        await pair.dispose();
    }
    // the load-aware draft length (speculateUpTo 'auto', the default) against drafting γ 4 at any load
    {
        const fixed = await loadPair({ expert, amateur, contextSize: 16 * 160, threads, sequences: 16, maxConcurrent: 16, speculateUpTo: Infinity });
        try {
            library.push(
                ...(await libraryCurve(fixed, maxTokens, o.repeats ?? 3, [
                    ['greedy (beside fixed γ)', { strategy: 'greedy', maxTokens }],
                    ['speculative, fixed γ 4', { strategy: 'speculative', draftTokens: 4, maxTokens }],
                ])),
            );
        } finally {
            await fixed.dispose();
        }
    }
    if (!existsSync(join(benchToolsDir(), 'llama-server'))) {
        skipped.push({ what: 'llama-server', reason: `${benchToolsDir()}/llama-server not built: run npm run bench:peers` });
    } else {
        const common = ['-m', expert, '-c', String(8 * 320), '-np', '8', '-t', String(threads), '-tb', String(threads), '--no-webui'];
        for (const [label, extra] of [
            ['llama-server --parallel 8 · plain', []],
            ['llama-server --parallel 8 · -md amateur', ['-md', amateur, '--spec-draft-n-max', '4', '-td', String(threads), '-tbd', String(threads)]],
        ] as const) {
            let s: { proc: ChildProcess; url: string } | undefined;
            try {
                s = await startLlamaServer([...common, ...extra]);
                await drive(label, s.url, 1, 1, { max_tokens: 16, temperature: 0 }); // warm-up
                for (const c of clientsLevels) {
                    progress(0, 1, `${label} ×${c}`);
                    http.push(await drive(label, s.url, c, perClient(c), { max_tokens: maxTokens, temperature: 0 }));
                }
            } catch (e) {
                skipped.push({ what: label, reason: (e as Error).message });
            } finally {
                s?.proc.kill('SIGTERM');
                if (s) await new Promise((r) => (s!.proc.exitCode !== null ? r(null) : s!.proc.once('exit', r)));
            }
        }
    }
    const promptCache = await promptCacheRows(expert, amateur, threads);
    const bb = batchedBench(expert, threads, maxTokens);
    if (typeof bb === 'string') skipped.push({ what: 'llama-batched-bench', reason: bb });
    const cpu = cpuFacts();
    const report: ConcurrencyReport = {
        schema: 1,
        date: new Date().toISOString(),
        machine: { cpu: cpu.model, flags: cpu.summary, cores: cpus().length, node: process.version, kernels: systemInfo().kernels },
        commit: gitCommit(),
        pair: { expert, amateur },
        maxTokens,
        threads,
        library,
        http,
        batchedBench: typeof bb === 'string' ? [] : bb,
        promptCache,
        skipped,
    };
    return { report, files: writeResults('concurrency', report, o.out, { md: concurrencyMarkdown(report) }) };
}

export function concurrencyMarkdown(r: ConcurrencyReport): string {
    const lib = (mode: string) => r.library.filter((p) => p.mode === mode);
    const at = (mode: string, n: number) => r.library.find((p) => p.mode === mode && p.concurrent === n);
    const httpAt = (prefix: string, c: number) => r.http.find((h) => h.system.startsWith(prefix) && h.clients === c);
    const ratio = (a?: number, b?: number) => (a !== undefined && b !== undefined && b > 0 ? `${(a / b).toFixed(2)}×` : '–');
    const levels = [...new Set(r.library.map((p) => p.concurrent))];
    const lines = [
        `## Concurrency — ${r.date.slice(0, 10)}, commit ${r.commit ?? '?'}`,
        '',
        `${r.machine.cpu} (${r.machine.flags}; llama-duet kernels: ${r.machine.kernels}), ${r.machine.cores} cores, ${r.threads} threads, Node ${r.machine.node}. The \`tinyllama\` pair (Q8_0), ${r.maxTokens} new tokens per request, distinct prompts, temperature 0. Medians of the repeats; every ratio from one run, the modes of one pair alternating within every level and repeat.`,
        '',
        '### The library: N concurrent generate() calls (aggregate tokens/s)',
        '',
        `| mode | ${levels.map((n) => `N=${n}`).join(' | ')} |`,
        `|---|${levels.map(() => '---').join('|')}|`,
        ...['greedy', 'speculative', 'greedy (beside fixed γ)', 'speculative, fixed γ 4'].map((m) => `| ${m} | ${lib(m).map((p) => `${fmt(p.tokensPerSecond, 1)} (${fmt(p.ratioToOne, 2)}×)`).join(' | ')} |`),
        '',
        `Targets: greedy at 8 ≥ 3× greedy at 1: **${fmt(at('greedy', 8)?.ratioToOne, 2)}×**; speculative at 8 ≥ 2× speculative at 1: **${fmt(at('speculative', 8)?.ratioToOne, 2)}×**; speculative at 8 ≥ greedy at 8: **${ratio(at('speculative', 8)?.tokensPerSecond, at('greedy', 8)?.tokensPerSecond)}** (speculative = the default \`speculateUpTo: 'auto'\`, the load-aware draft length; drafting γ 4 at any load, against greedy measured beside it: ${ratio(at('speculative, fixed γ 4', 8)?.tokensPerSecond, at('greedy (beside fixed γ)', 8)?.tokensPerSecond)}). Share of a request's expert passes shared with others at N=8: greedy ${fmt(at('greedy', 8)?.sharedPassShare, 2)}, speculative ${fmt(at('speculative', 8)?.sharedPassShare, 2)}.`,
        '',
        '### Over HTTP: closed-loop clients against /v1/completions',
        '',
        '| server | clients | requests | tokens/s | requests/s | p50 ms | p99 ms | errors |',
        '|---|---|---|---|---|---|---|---|',
        ...r.http.map((h) => `| ${h.system} | ${h.clients} | ${h.requests} | ${fmt(h.tokensPerSecond, 1)} | ${fmt(h.requestsPerSecond, 2)} | ${fmt(h.p50Ms, 0)} | ${fmt(h.p99Ms, 0)} | ${h.errors} |`),
        '',
        `At 8 clients: ours greedy / llama-server plain **${ratio(httpAt('llama-duet serve · greedy', 8)?.tokensPerSecond, httpAt('llama-server --parallel 8 · plain', 8)?.tokensPerSecond)}**; ours speculative / llama-server -md **${ratio(httpAt('llama-duet serve · speculative', 8)?.tokensPerSecond, httpAt('llama-server --parallel 8 · -md', 8)?.tokensPerSecond)}** (target ≥ 1.3× each).`,
    ];
    if (r.batchedBench.length) {
        lines.push('', '### llama-batched-bench (stock llama.cpp, the expert): token generation over B parallel sequences', '', '| B | TG tokens/s | vs B=1 |', '|---|---|---|');
        const one = r.batchedBench.find((b) => b.parallel === 1)?.tgTokensPerSecond;
        for (const b of r.batchedBench) lines.push(`| ${b.parallel} | ${fmt(b.tgTokensPerSecond, 1)} | ${ratio(b.tgTokensPerSecond, one)} |`);
    }
    if (r.promptCache?.length) {
        const row = (sc: string, on: boolean) => r.promptCache.find((x) => x.scenario === sc && x.promptCache === on);
        lines.push(
            '',
            '### Prompt-prefix reuse (`promptCache` on / off, the same requests)',
            '',
            'conversation: 6 turns of `speculative`, 32 tokens each, every prompt the previous one + its reply + a new user line; shared system prompt ×8: 8 concurrent greedy requests (32 tokens) behind one long system prompt, after one request has run with it.',
            '',
            '| scenario | promptCache | requests | prompt tokens | cached | prompt ms | wall ms |',
            '|---|---|---|---|---|---|---|',
            ...r.promptCache.map((x) => `| ${x.scenario} | ${x.promptCache ? 'on' : 'off'} | ${x.requests} | ${x.promptTokens} | ${x.cachedPromptTokens} | ${fmt(x.promptMs, 0)}${x.scenario === 'conversation' ? ' (Σ)' : ' (median)'} | ${fmt(x.wallMs, 0)} |`),
            '',
            ...['conversation', 'shared system prompt ×8'].map((sc) => `${sc}: prompt time with the cache **${ratio(row(sc, false)?.promptMs, row(sc, true)?.promptMs)}** faster, wall **${ratio(row(sc, false)?.wallMs, row(sc, true)?.wallMs)}**.`),
        );
    }
    if (r.skipped.length) lines.push('', 'Skipped: ' + r.skipped.map((s) => `${s.what} (${s.reason})`).join('; '));
    return lines.join('\n') + '\n';
}
