/**
 * The benchmark harness behind `npm run bench` and `llama-duet bench` (bench/README.md documents the
 * output schema). Every strategy of the library runs side by side in one process on one pair,
 * alternating round-robin after a warm-up, so the ratios compare like with like. Peers (llama.cpp's
 * native tools, node-llama-cpp) run when they are available and are reported as skipped otherwise.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { kvBytesPerCell, type GenerationResult } from './Decoder.js';
import type { DraftNode } from './forest.js';
import { loadPair, type ModelPair } from './models.js';
import { addon } from './native.js';
import type { GenerateOptions } from './options.js';
import { demoPair, packageRoot } from './paths.js';
import { distinct, repeatedNgrams } from './textStats.js';
import { makePair, type ShapeName } from './synthetic.js';
import { cpuFacts, systemInfo } from './system.js';

export interface Workload {
    name: string;
    /** synthetic shape made on first use (cached under models/), or user files */
    shape?: ShapeName;
    expert?: string;
    amateur?: string;
    maxTokens: number;
    prompts: string[];
    threads: number;
    repeats: number;
}

const benchPrompts = ['The quick brown fox', 'Once upon a time there was', 'In a hole in the ground'];
export type WorkloadName = 'w0' | 'w1' | 'w1q4k' | 'w1q4km';
export const workloads: Record<WorkloadName, Workload> = {
    w0: { name: 'w0', shape: 'tiny', maxTokens: 64, prompts: benchPrompts, threads: 2, repeats: 3 },
    w1: { name: 'w1', shape: 'tinyllama', maxTokens: 128, prompts: benchPrompts, threads: 2, repeats: 2 },
    /** w1 on the Q4_K pair */
    w1q4k: { name: 'w1q4k', shape: 'tinyllama-q4k', maxTokens: 128, prompts: benchPrompts, threads: 2, repeats: 2 },
    /** w1 on the Q4_K_M pair (Q4_K + Q6_K, what most users download) */
    w1q4km: { name: 'w1q4km', shape: 'tinyllama-q4km', maxTokens: 128, prompts: benchPrompts, threads: 2, repeats: 2 },
};

/** One llama-duet configuration: adding a strategy to the benchmark is one line here. */
interface DuetRun {
    key: string;
    options?: GenerateOptions;
    /** a JS-driven run through verifyForest() instead of generate() */
    custom?: (pair: ModelPair, prompt: string, maxTokens: number) => Promise<GenerationResult>;
}

const gamma = 4;
const duetRuns: DuetRun[] = [
    { key: 'greedy', options: { strategy: 'greedy' } },
    { key: 'sample', options: { strategy: 'sample', temperature: 0.8, seed: 1 } },
    { key: 'speculative', options: { strategy: 'speculative', draftTokens: gamma } },
    { key: 'speculative-fixed-gamma', options: { strategy: 'speculative', draftTokens: gamma, draftConfidence: 0 } },
    { key: 'speculative-gamma8', options: { strategy: 'speculative', draftTokens: 2 * gamma } },
    { key: 'speculative-sampled', options: { strategy: 'speculative', draftTokens: gamma, temperature: 0.8, seed: 1 } },
    { key: 'contrastive', options: { strategy: 'contrastive' } },
    { key: 'scd', options: { strategy: 'scd', draftTokens: gamma } },
    { key: 'verifyForest-ngram', custom: ngramScheduler },
    // beam strategies (issue 14): W = 4; DSBD with W_L = W_S = 4, γ = 3 (the paper's setting), temperature 1
    { key: 'beam-search', options: { strategy: 'beam', beams: 4 } },
    { key: 'beam-sampling', options: { strategy: 'beam', beams: 4, sample: true, seed: 1 } },
    { key: 'dsbd', options: { strategy: 'dsbd', beams: 4, draftBeams: 4, draftTokens: 3, seed: 1 } },
    { key: 'dsbd-single-beam', options: { strategy: 'dsbd', beams: 4, draftBeams: 4, draftTokens: 3, singleBeam: true, seed: 1 } },
    { key: 'dsbd-greedy', options: { strategy: 'dsbd', beams: 4, draftBeams: 4, draftTokens: 3, temperature: 0 } },
];

/** The README's custom scheduler: an n-gram drafter in JS, two branches per pass, greedy rule. */
async function ngramScheduler(pair: ModelPair, prompt: string, maxTokens: number): Promise<GenerationResult> {
    const t0 = performance.now();
    const seq = await pair.createSequence(pair.tokenize(prompt));
    const t1 = performance.now();
    const out: number[] = [];
    let passes = 0;
    let drafted = 0;
    let accepted = 0;
    try {
        while (out.length < maxTokens) {
            const history = seq.tokens;
            const nodes: DraftNode[] = [];
            for (let i = history.length - 2, branches = 0; i >= 0 && branches < 2; i--) {
                if (history[i] !== history.at(-1)) continue;
                history.slice(i + 1, i + 1 + gamma).forEach((token, d) => nodes.push({ token, parent: d === 0 ? -1 : nodes.length - 1 }));
                branches++;
            }
            const { trees } = await pair.verifyForest([{ sequence: seq, nodes }], { rule: 'greedy' });
            const t = trees[0]!;
            out.push(...t.acceptedTokens, t.next!);
            drafted += nodes.length;
            accepted += t.accepted.length;
            passes++;
            await pair.commit(t);
        }
    } finally {
        await seq.dispose();
    }
    const tokens = out.slice(0, maxTokens);
    const ms = performance.now() - t1;
    return {
        text: pair.detokenize(tokens),
        tokens,
        finishReason: 'length',
        stats: {
            promptTokens: seq.length,
            cachedPromptTokens: 0,
            generatedTokens: tokens.length,
            expertPasses: passes + 1,
            amateurPasses: 0,
            promptMs: t1 - t0,
            generationMs: ms,
            wallMs: performance.now() - t0,
            tokensPerSecond: (tokens.length * 1000) / ms,
            seed: 0,
            draftedTokens: drafted,
            acceptedTokens: accepted,
            acceptanceRate: drafted > 0 ? accepted / drafted : 0,
            verifyPasses: passes,
            meanAcceptedLength: out.length / passes,
        },
    };
}

export interface BenchRun {
    system: string;
    strategy: string;
    options: Record<string, unknown>;
    tokensPerSecond: number;
    tokensPerSecondRange: [number, number];
    samples: number;
    acceptanceRate: number | null;
    meanAcceptedLength: number | null;
    acceptanceByDepth: number[] | null;
    expertPasses: number;
    amateurPasses: number;
    draftMs: number | null;
    verifyMs: number | null;
    /** Leviathan bound from the measured acceptance and costs, tokens/s; efficiency = measured / bound */
    theoreticalTokensPerSecond: number | null;
    efficiency: number | null;
    peakRssBytes: number;
    /** KV cache bytes at the run's peak: the expert's cells (stats.peakKvCells where reported, else prompt + text + γ + 1) and as many for the amateur when it is used */
    kvBytes: number;
    /** beam strategies: the most KV cells of the expert at once (stats.peakKvCells), max over the runs */
    peakKvCells?: number | null;
    /** dsbd: verified layers by the number of acceptances they needed (summed over the runs) */
    widthHistogram?: number[] | null;
    /** dsbd: tokens per forest verification pass */
    meanForestNodes?: number | null;
}

/** Wall time of one expert pass over k tokens (the verify cost of a γ = k − 1 draft), by source. */
export interface VerifyCostPoint {
    tokens: number;
    /** llama.cpp's llama-bench pp<k> (-n 0), ms per pass; null when the tool is not built */
    llamaBenchMs: number | null;
    /** llama-duet verifyForest() over a k-node chain (rule 'none'), median ms per call, queue included */
    verifyForestMs: number;
    /**
     * The same with llama-duet's CPU kernels off (LLAMA_DUET_KERNELS=0: ggml's own matmuls), same process,
     * rounds alternating with verifyForestMs; null where the kernels do not run anyway
     */
    stockMs: number | null;
}

/** The one-token expert pass against the machine's streaming read bandwidth, measured in the same run. */
export interface OnePass {
    /** the expert's tensor bytes (llama_model_size) */
    weightBytes: number;
    /** verify cost at k = 1, ms */
    ms: number;
    /** weightBytes / ms */
    gbPerSecond: number;
    /** streaming read bandwidth, GB/s (`threads` threads, best of 5 reads of 1 GiB) */
    readBandwidthGBs: number;
    fractionOfBandwidth: number;
    /**
     * fp32 FMA rate per thread (G 8-lane fma/s), one thread alone and with all the run's threads at once,
     * measured beside the bandwidth: on a VM sharing physical cores, together/alone is the compute the
     * batched passes had (they are compute-bound from about 8 tokens on Q4_K)
     */
    compute?: { alone: number; together: number; slowest: number } | null;
}

export interface QualityRow {
    strategy: string;
    samples: number;
    repetition4: number;
    distinct1: number;
    distinct2: number;
    meanExpertLogLikelihood: number;
}

export interface BenchReport {
    schema: 1;
    date: string;
    machine: { cpu: string; cores: number; memoryBytes: number; node: string; platform: string; flags: string; cpuVariant: string; kernels: string };
    commit: string | null;
    workload: Omit<Workload, 'shape'> & { expert: string; amateur: string };
    runs: BenchRun[];
    ratios: Record<string, number | null>;
    skipped: { system: string; reason: string }[];
    quality: QualityRow[];
    verifyCost: VerifyCostPoint[];
    /** the same curve (no llama-bench) behind a longer context, where attention is part of the pass */
    verifyCostLong?: { context: number; points: VerifyCostPoint[] };
    onePass: OnePass | null;
}

export const median = (v: number[]) => {
    const s = [...v].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
export const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / Math.max(1, v.length);

export function progress(done: number, total: number, label: string): void {
    if (!process.stderr.isTTY) {
        if (done === total || done % 5 === 0) process.stderr.write(`[bench] ${done}/${total} ${label}\n`);
        return;
    }
    const w = 30;
    const f = Math.round((done / total) * w);
    process.stderr.write(`\r[${'#'.repeat(f)}${'.'.repeat(w - f)}] ${done}/${total} ${label.padEnd(40).slice(0, 40)}`);
    if (done === total) process.stderr.write('\n');
}

/**
 * Peak RSS per strategy: Linux resets the process high-water mark (VmHWM) when "5" is written to
 * /proc/self/clear_refs, so each run's peak is read after it, with the mark reset before it. Elsewhere
 * this falls back to the process peak (getrusage), which only grows.
 */
const peakRss = {
    linux: existsSync('/proc/self/clear_refs'),
    reset(): void {
        if (!this.linux) return;
        try {
            writeFileSync('/proc/self/clear_refs', '5');
        } catch {
            this.linux = false;
        }
    },
    read(): number {
        if (this.linux) {
            const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
            if (m) return Number(m[1]) * 1024;
        }
        return process.resourceUsage().maxRSS * 1024;
    },
};


export interface BenchOptions {
    workload: WorkloadName;
    expert?: string;
    amateur?: string;
    out?: string;
    repeats?: number;
    quality?: boolean;
}

export async function runBench(o: BenchOptions): Promise<{ report: BenchReport; files: string[] }> {
    const wl = { ...workloads[o.workload], ...(o.repeats ? { repeats: o.repeats } : {}) };
    let expert = o.expert;
    let amateur = o.amateur;
    if (!expert || !amateur) {
        const dir = join(packageRoot(), 'models', wl.shape!);
        if (!existsSync(join(dir, 'expert.gguf')) || !existsSync(join(dir, 'amateur.gguf'))) {
            process.stderr.write(`[bench] making the synthetic '${wl.shape}' pair in ${dir} (once)\n`);
            await makePair({ out: dir, shape: wl.shape! });
        }
        expert = join(dir, 'expert.gguf');
        amateur = join(dir, 'amateur.gguf');
    }
    const pair = await loadPair({ expert, amateur, contextSize: 2048, threads: wl.threads });
    try {
        const perTokenE = kvBytesPerCell(pair.expert);
        const perTokenA = kvBytesPerCell(pair.amateur);
        // warm-up: one short run of each
        for (const r of duetRuns) await execute(pair, r, wl.prompts[0]!, 8);
        const results = new Map<string, GenerationResult[]>(duetRuns.map((r) => [r.key, []]));
        const rss = new Map<string, number>(duetRuns.map((r) => [r.key, 0]));
        const total = wl.repeats * wl.prompts.length * duetRuns.length;
        let done = 0;
        for (let rep = 0; rep < wl.repeats; rep++) {
            for (const prompt of wl.prompts) {
                for (const r of duetRuns) {
                    progress(done, total, `${r.key} (repeat ${rep + 1})`);
                    peakRss.reset();
                    results.get(r.key)!.push(await execute(pair, r, prompt, wl.maxTokens));
                    rss.set(r.key, Math.max(rss.get(r.key)!, peakRss.read()));
                    done++;
                }
            }
        }
        progress(total, total, 'done');
        const runs: BenchRun[] = duetRuns.map((r) => {
            const res = results.get(r.key)!;
            const tps = res.map((x) => x.stats.tokensPerSecond);
            const s = res.map((x) => x.stats);
            const spec = s[0]!.draftedTokens !== undefined;
            const acc = spec ? s.reduce((a, x) => a + x.acceptedTokens!, 0) / Math.max(1, s.reduce((a, x) => a + x.draftedTokens!, 0)) : null;
            let bound: number | null = null;
            const usesAmateur = s[0]!.amateurPasses > 0;
            const g = r.options?.draftTokens ?? gamma;
            if (spec && usesAmateur && acc !== null && acc < 1) {
                // Leviathan: E = (1 − α^{γ+1}) / (1 − α) tokens per round, cost = γ·t_amateur + t_verify(γ+1)
                const tA = mean(s.map((x) => x.draftMs! / Math.max(1, x.amateurPasses)));
                const tV = mean(s.map((x) => x.verifyMs! / Math.max(1, x.verifyPasses!)));
                const E = (1 - acc ** (g + 1)) / (1 - acc);
                bound = (E * 1000) / (g * tA + tV);
            }
            const byDepth = spec && s[0]!.acceptanceByDepth ? s[0]!.acceptanceByDepth.map((_, d) => mean(s.map((x) => x.acceptanceByDepth![d] ?? 0))) : null;
            const reported = s.every((x) => x.peakKvCells !== undefined);
            const cells = reported ? Math.max(...s.map((x) => x.peakKvCells!)) : Math.max(...s.map((x) => x.promptTokens + x.generatedTokens)) + (spec ? g + 1 : 0);
            const hist = s[0]!.widthHistogram ? s.reduce<number[]>((h, x) => x.widthHistogram!.map((v, w) => v + (h[w] ?? 0)), []) : null;
            return {
                system: 'llama-duet',
                strategy: r.key,
                options: (r.options ?? { scheduler: 'n-gram, 2 branches, rule greedy' }) as Record<string, unknown>,
                tokensPerSecond: median(tps),
                tokensPerSecondRange: [Math.min(...tps), Math.max(...tps)],
                samples: tps.length,
                acceptanceRate: acc,
                meanAcceptedLength: spec ? mean(s.map((x) => x.meanAcceptedLength!)) : null,
                acceptanceByDepth: byDepth,
                expertPasses: mean(s.map((x) => x.expertPasses)),
                amateurPasses: mean(s.map((x) => x.amateurPasses)),
                draftMs: spec && usesAmateur ? mean(s.map((x) => x.draftMs!)) : null,
                verifyMs: spec && usesAmateur ? mean(s.map((x) => x.verifyMs!)) : null,
                theoreticalTokensPerSecond: bound,
                efficiency: bound ? median(tps) / bound : null,
                peakRssBytes: rss.get(r.key)!,
                kvBytes: cells * perTokenE + (usesAmateur ? cells * perTokenA : 0),
                peakKvCells: reported ? cells : null,
                widthHistogram: hist,
                meanForestNodes: s[0]!.meanForestNodes !== undefined ? mean(s.map((x) => x.meanForestNodes!)) : null,
            };
        });
        const tpsOf = (k: string) => runs.find((r) => r.strategy === k)?.tokensPerSecond ?? null;
        const ratio = (a: number | null, b: number | null) => (a !== null && b !== null && b > 0 ? a / b : null);
        const skipped: BenchReport['skipped'] = [];
        const nlc = nodeLlamaCppPeer(wl, expert, amateur);
        if ('reason' in nlc) skipped.push({ system: 'node-llama-cpp-draft', reason: nlc.reason });
        else {
            runs.push(...nlc.runs);
            skipped.push(...nlc.skipped);
        }
        const peer = llamaCppPeer(wl, expert, amateur);
        if ('reason' in peer) skipped.push({ system: 'llama.cpp-speculative-simple', reason: peer.reason });
        else runs.push(...peer.runs);
        let verifyCost: VerifyCostPoint[] = [];
        try {
            verifyCost = await verifyCostCurve(pair, wl, expert, amateur);
        } catch (e) {
            skipped.push({ system: 'verify-cost curve', reason: e instanceof Error ? e.message : String(e) });
        }
        let verifyCostLong: BenchReport['verifyCostLong'];
        try {
            const context = 512;
            verifyCostLong = { context, points: await verifyCostCurve(pair, wl, expert, amateur, { context, ks: [1, 4, 8, 16] }) };
        } catch (e) {
            skipped.push({ system: 'verify-cost curve at a 512-token context', reason: e instanceof Error ? e.message : String(e) });
        }
        let onePass: OnePass | null = null;
        if (verifyCost.length) {
            progress(0, 1, 'streaming read bandwidth');
            const readBandwidthGBs = addon()._memoryBandwidth({ mib: 1024, threads: wl.threads, passes: 5 });
            const ms = verifyCost[0]!.verifyForestMs;
            const gbPerSecond = pair.expert.sizeBytes / (ms / 1000) / 1e9;
            progress(0, 1, 'compute rate');
            const compute = addon()._computeRate({ threads: wl.threads, ms: 300 });
            onePass = { weightBytes: pair.expert.sizeBytes, ms, gbPerSecond, readBandwidthGBs, fractionOfBandwidth: gbPerSecond / readBandwidthGBs, compute };
        }
        const cost = (k: number, stock = false, curve = verifyCost) => {
            const one = curve.find((p) => p.tokens === 1);
            const at = curve.find((p) => p.tokens === k);
            if (!one || !at) return null;
            return stock ? (at.stockMs !== null && one.stockMs !== null ? at.stockMs / one.stockMs : null) : at.verifyForestMs / one.verifyForestMs;
        };
        const cpu = cpuFacts();
        const report: BenchReport = {
            schema: 1,
            date: new Date().toISOString(),
            machine: { cpu: cpu.model, flags: cpu.summary, cpuVariant: systemInfo().cpuVariant, kernels: systemInfo().kernels, cores: cpus().length, memoryBytes: totalmem(), node: process.version, platform: `${process.platform}-${process.arch}` },
            commit: gitCommit(),
            workload: { name: wl.name, maxTokens: wl.maxTokens, prompts: wl.prompts, threads: wl.threads, repeats: wl.repeats, expert, amateur },
            runs,
            ratios: {
                'speculative/greedy': ratio(tpsOf('speculative'), tpsOf('greedy')),
                'speculative/llama.cpp-speculative-simple': ratio(tpsOf('speculative'), runs.find((x) => x.system === 'llama.cpp' && x.strategy === 'speculative-simple')?.tokensPerSecond ?? null),
                'speculative/node-llama-cpp-draft': ratio(tpsOf('speculative'), runs.find((x) => x.system === 'node-llama-cpp' && x.strategy === 'draft')?.tokensPerSecond ?? null),
                'scd/contrastive': ratio(tpsOf('scd'), tpsOf('contrastive')),
                'dsbd/beam-sampling': ratio(tpsOf('dsbd'), tpsOf('beam-sampling')),
                'dsbd-single-beam/beam-sampling': ratio(tpsOf('dsbd-single-beam'), tpsOf('beam-sampling')),
                'dsbd-greedy/beam-search': ratio(tpsOf('dsbd-greedy'), tpsOf('beam-search')),
                'dsbd-single-beam KV / speculative-sampled KV': ratio(
                    runs.find((x) => x.strategy === 'dsbd-single-beam')?.kvBytes ?? null,
                    runs.find((x) => x.strategy === 'speculative-sampled')?.kvBytes ?? null,
                ),
                'verify k=4 / k=1': cost(4),
                'verify k=8 / k=1': cost(8),
                'verify k=16 / k=1': cost(16),
                'verify k=4 / k=1 (kernels off)': cost(4, true),
                'verify k=8 / k=1 (kernels off)': cost(8, true),
                'verify k=16 / k=1 (kernels off)': cost(16, true),
                'verify k=8 / k=1, 512-token context': cost(8, false, verifyCostLong?.points),
                'verify k=16 / k=1, 512-token context': cost(16, false, verifyCostLong?.points),
                'verify k=8 / k=1, 512-token context (kernels off)': cost(8, true, verifyCostLong?.points),
                'verify k=16 / k=1, 512-token context (kernels off)': cost(16, true, verifyCostLong?.points),
            },
            skipped,
            quality: o.quality === false ? [] : await quality(pair, wl),
            verifyCost,
            ...(verifyCostLong ? { verifyCostLong } : {}),
            onePass,
        };
        const files = writeReport(report, o.out);
        return { report, files };
    } finally {
        await pair.dispose();
    }
}

/** A peer's run: tokens/s samples, and null/0 for what a peer does not report. */
function peerRun(system: string, strategy: string, options: Record<string, unknown>, tps: number[]): BenchRun {
    return {
        system,
        strategy,
        options,
        tokensPerSecond: median(tps),
        tokensPerSecondRange: [Math.min(...tps), Math.max(...tps)],
        samples: tps.length,
        acceptanceRate: null,
        meanAcceptedLength: null,
        acceptanceByDepth: null,
        expertPasses: 0,
        amateurPasses: 0,
        draftMs: null,
        verifyMs: null,
        theoreticalTokensPerSecond: null,
        efficiency: null,
        peakRssBytes: 0,
        kvBytes: 0,
    };
}

/** llama.cpp's own tools from the same extracted release (LLAMA_DUET_BENCH_TOOLS=1 npm run build:native). */
function llamaCppPeer(wl: Workload, expert: string, amateur: string): { runs: BenchRun[] } | { reason: string } {
    const bin = benchToolsDir();
    const spec = join(bin, 'llama-speculative-simple');
    const bench = join(bin, 'llama-bench');
    if (!existsSync(spec) || !existsSync(bench)) return { reason: `${bin}/llama-speculative-simple, llama-bench not built: run npm run bench:peers` };
    const runs: BenchRun[] = [];
    // speculative-simple, same γ, prompts, threads and token budget (its other settings at their defaults)
    const tps: number[] = [];
    let drafted = 0;
    let accepted = 0;
    let rss = 0;
    for (let rep = 0; rep < wl.repeats; rep++) {
        for (const prompt of wl.prompts) {
            progress(0, 1, 'llama.cpp speculative-simple');
            const args = ['-m', expert, '-md', amateur, '-p', prompt, '-n', String(wl.maxTokens), '-t', String(wl.threads), '-td', String(wl.threads),
                '-c', '2048', '--temp', '0', '--spec-type', 'draft-simple', '--spec-draft-n-max', String(gamma), '--seed', '1'];
            const r = spawnSync('/usr/bin/time', ['-f', 'MAXRSS %M', spec, ...args], { encoding: 'utf8', maxBuffer: 1 << 26, env: stockGgmlEnv() });
            const text = `${r.stdout}\n${r.stderr}`;
            const m = /decoded\s+(\d+) tokens in\s+([\d.]+) seconds, speed:\s+([\d.]+) t\/s/.exec(text);
            if (r.status !== 0 || !m) return { reason: `llama-speculative-simple failed (exit ${r.status}): ${errorLines(text)}` };
            tps.push(Number(m[3]));
            drafted += Number(/n_drafted\s*=\s*(\d+)/.exec(text)?.[1] ?? 0);
            accepted += Number(/n_accept\s*=\s*(\d+)/.exec(text)?.[1] ?? 0);
            rss = Math.max(rss, Number(/MAXRSS (\d+)/.exec(text)?.[1] ?? 0) * 1024);
        }
    }
    runs.push({ ...peerRun('llama.cpp', 'speculative-simple', { draftMax: gamma, specType: 'draft-simple', temperature: 0 }, tps), acceptanceRate: drafted ? accepted / drafted : null, peakRssBytes: rss });
    // llama-bench: token generation of the expert and of the amateur alone
    for (const [who, model] of [['expert', expert], ['amateur', amateur]] as const) {
        const r = spawnSync(bench, ['-m', model, '-p', '0', '-n', String(wl.maxTokens), '-t', String(wl.threads), '-r', String(Math.max(2, wl.repeats)), '-o', 'json'], {
            encoding: 'utf8',
            maxBuffer: 1 << 26,
            env: stockGgmlEnv(),
        });
        try {
            const rows = JSON.parse(r.stdout) as { avg_ts: number; samples_ts?: number[] }[];
            runs.push(peerRun('llama.cpp', `greedy-${who} (llama-bench tg${wl.maxTokens})`, { threads: wl.threads }, rows[0]!.samples_ts ?? [rows[0]!.avg_ts]));
        } catch {
            return { reason: `llama-bench failed (exit ${r.status}): ${errorLines(r.stderr)}` };
        }
    }
    return { runs };
}

/** node-llama-cpp 3.22.1 (its prebuilt CPU binary, installed by `npm run bench:peers`) in a child process: bench/node-llama-cpp.mjs. */
function nodeLlamaCppPeer(wl: Workload, expert: string, amateur: string): { runs: BenchRun[]; skipped: BenchReport['skipped'] } | { reason: string } {
    const script = join(packageRoot(), 'bench', 'node-llama-cpp.mjs');
    if (!existsSync(script) || !existsSync(join(packageRoot(), '.cache', 'peers', 'node_modules', 'node-llama-cpp'))) {
        return { reason: 'node-llama-cpp is not installed in .cache/peers: run npm run bench:peers' };
    }
    progress(0, 1, 'node-llama-cpp');
    const args = { expert, amateur, maxTokens: wl.maxTokens, threads: wl.threads, gamma, prompts: wl.prompts, repeats: wl.repeats };
    const r = spawnSync('/usr/bin/time', ['-f', 'MAXRSS %M', process.execPath, script, JSON.stringify(args)], { encoding: 'utf8', maxBuffer: 1 << 26, cwd: packageRoot() });
    const line = r.stdout.trim().split('\n').at(-1) ?? '';
    type ModeResult = { tps: number[]; tokens: number[]; validated: number; refuted: number } | { error: string };
    let parsed: { version: string; runs: Record<'alone' | 'draft', ModeResult> };
    try {
        parsed = JSON.parse(line);
    } catch {
        return { reason: `node-llama-cpp runner failed (exit ${r.status}): ${errorLines(r.stderr)}` };
    }
    const rss = Number(/MAXRSS (\d+)/.exec(r.stderr)?.[1] ?? 0) * 1024;
    const runs: BenchRun[] = [];
    const skipped: BenchReport['skipped'] = [];
    for (const mode of ['alone', 'draft'] as const) {
        const x = parsed.runs[mode];
        if ('error' in x) {
            skipped.push({ system: `node-llama-cpp-${mode}`, reason: x.error });
            continue;
        }
        const options = { version: parsed.version, temperature: 0, ...(mode === 'draft' ? { predictor: 'DraftSequenceTokenPredictor', maxTokens: gamma } : {}) };
        const acceptanceRate = mode === 'draft' && x.validated + x.refuted > 0 ? x.validated / (x.validated + x.refuted) : null;
        runs.push({ ...peerRun('node-llama-cpp', mode, options, x.tps), acceptanceRate, peakRssBytes: rss });
    }
    return { runs, skipped };
}

/** The lines of a child's stderr that say what failed (stack frames dropped). */
function errorLines(stderr: string): string {
    return stderr
        .split('\n')
        .filter((l) => l.trim() && !/^\s+at /.test(l) && !/^MAXRSS /.test(l) && !/Command exited/.test(l))
        .slice(-4)
        .join(' | ');
}

/** Where `npm run bench:peers` builds llama.cpp's tools (native/tools/build.mjs, LLAMA_DUET_BENCH_TOOLS=1). */
export const benchToolsDir = (): string => join(packageRoot(), '.cache', 'cmake-cpu', 'bin');

/**
 * llama.cpp's own tools link the same ggml-cpu as the addon, which carries llama-duet's kernels (the AMX
 * build's small-batch Q8_0 kernel, native/ggml/amx-small-m.inc, and the multi-row kernels of
 * native/ggml/small-batch.inc); run them with both off, so they measure stock ggml.
 */
export const stockGgmlEnv = (): NodeJS.ProcessEnv => ({ ...process.env, LLAMA_DUET_AMX_SMALL_M_MAX: '0', LLAMA_DUET_KERNELS: '0' });

/**
 * The verify-cost curve: how long one expert pass over k = 1..16 tokens takes, from llama.cpp's llama-bench
 * (pp<k>, when built), from our verifyForest() on a k-node chain, and from the same with our CPU kernels off
 * (a second load of the pair with LLAMA_DUET_KERNELS=0, in rounds alternating with ours). Speculative
 * decoding pays off only while t_verify(γ+1) stays near t_verify(1).
 */
async function verifyCostCurve(pair: ModelPair, wl: Workload, expert: string, amateur: string, long?: { context: number; ks: number[] }): Promise<VerifyCostPoint[]> {
    const ks = long?.ks ?? [1, 2, 3, 4, 5, 6, 8, 12, 16];
    const fromBench = new Map<number, number>();
    const bench = join(benchToolsDir(), 'llama-bench');
    if (!long && existsSync(bench)) {
        progress(0, 1, 'llama-bench verify-cost curve');
        const r = spawnSync(bench, ['-m', expert, '-p', ks.join(','), '-n', '0', '-t', String(wl.threads), '-r', '5', '-o', 'json'], { encoding: 'utf8', maxBuffer: 1 << 26, env: stockGgmlEnv() });
        try {
            for (const row of JSON.parse(r.stdout) as { n_prompt: number; avg_ts: number }[]) fromBench.set(row.n_prompt, (row.n_prompt * 1000) / row.avg_ts);
        } catch {
            /* reported as null */
        }
    }
    const curve = async (p: ModelPair, label: string): Promise<Map<number, number>> => {
        const base = p.tokenize(wl.prompts.join(' '));
        // a longer context: the prompts' tokens repeated (what they say does not change the pass's cost)
        const prompt = long ? Array.from({ length: long.context }, (_, i) => base[i % base.length]!) : p.tokenize(wl.prompts[0]!);
        const seq = await p.createSequence(prompt);
        const out = new Map<number, number>();
        // the k values interleave within every repetition, so a drift of the machine's speed (tens of
        // percent over minutes on a shared VM) falls on every k alike instead of on the later ones
        const ms = new Map<number, number[]>(ks.map((k) => [k, []]));
        try {
            for (let rep = 0; rep < 7; rep++) {
                progress(rep, 7, `verify cost k=${ks.join(',')}${long ? ` at a ${long.context}-token context` : ''} (${label})`);
                for (const k of ks) {
                    const nodes: DraftNode[] = Array.from({ length: k }, (_, i) => ({ token: prompt[i % prompt.length]!, parent: i - 1 }));
                    const t0 = performance.now();
                    const { release } = await p.verifyForest([{ sequence: seq, nodes }], { rule: 'none' });
                    const t = performance.now() - t0;
                    await release();
                    if (rep > 0) ms.get(k)!.push(t); // the first repetition warms up
                }
            }
            for (const k of ks) out.set(k, median(ms.get(k)!));
        } finally {
            await seq.dispose();
        }
        return out;
    };
    const kernels = ['avx512-vnni', 'avx-vnni', 'avx2'].includes(systemInfo().kernels);
    const ours: Map<number, number>[] = [];
    const stock: Map<number, number>[] = [];
    for (let round = 0; round < 2; round++) {
        ours.push(await curve(pair, 'llama-duet kernels'));
        if (!kernels) continue;
        // read by the CPU backend when the weights load (matmuls) and at every attention op, so it stays set
        // while the stock curve runs
        const saved = process.env.LLAMA_DUET_KERNELS;
        process.env.LLAMA_DUET_KERNELS = '0';
        try {
            const off = await loadPair({ expert, amateur, contextSize: 2048, threads: wl.threads });
            try {
                stock.push(await curve(off, 'kernels off'));
            } finally {
                await off.dispose();
            }
        } finally {
            if (saved === undefined) delete process.env.LLAMA_DUET_KERNELS;
            else process.env.LLAMA_DUET_KERNELS = saved;
        }
    }
    return ks.map((k) => ({
        tokens: k,
        llamaBenchMs: fromBench.get(k) ?? null,
        verifyForestMs: median(ours.map((m) => m.get(k)!)),
        stockMs: stock.length ? median(stock.map((m) => m.get(k)!)) : null,
    }));
}

async function execute(pair: ModelPair, r: DuetRun, prompt: string, maxTokens: number): Promise<GenerationResult> {
    if (r.custom) return r.custom(pair, prompt, maxTokens);
    return pair.generate(prompt, { ...r.options, maxTokens });
}

/** Repetition, diversity and the expert's log-likelihood of sampled outputs (T = 1), per strategy. */
async function quality(pair: ModelPair, wl: Workload): Promise<QualityRow[]> {
    const kinds: [string, GenerateOptions][] = [
        ['sample', { strategy: 'sample', temperature: 1 }],
        ['speculative', { strategy: 'speculative', temperature: 1, draftTokens: gamma }],
        ['contrastive', { strategy: 'contrastive', temperature: 1 }],
        ['scd', { strategy: 'scd', temperature: 1, draftTokens: gamma }],
        ['beam-search', { strategy: 'beam', beams: 4 }],
        ['beam-sampling', { strategy: 'beam', beams: 4, sample: true, temperature: 1 }],
        ['dsbd', { strategy: 'dsbd', beams: 4, draftBeams: 4, draftTokens: 3, temperature: 1 }],
        ['dsbd-single-beam', { strategy: 'dsbd', beams: 4, draftBeams: 4, draftTokens: 3, singleBeam: true, temperature: 1 }],
    ];
    const seeds = [1, 2, 3];
    const rows: QualityRow[] = [];
    let done = 0;
    const total = kinds.length * seeds.length * wl.prompts.length;
    for (const [name, options] of kinds) {
        const rep: number[] = [];
        const d1: number[] = [];
        const d2: number[] = [];
        const ll: number[] = [];
        for (const seed of seeds) {
            for (const prompt of wl.prompts) {
                progress(done++, total, `quality ${name}`);
                const r = await pair.generate(prompt, { ...options, ...(options.strategy === 'beam' && !options.sample ? {} : { seed }), maxTokens: wl.maxTokens });
                const t = r.tokens;
                rep.push(repeatedNgrams(t, 4));
                d1.push(distinct(t, 1));
                d2.push(distinct(t, 2));
                ll.push(await expertLogLikelihood(pair, pair.tokenize(prompt), t));
            }
        }
        rows.push({ strategy: name, samples: rep.length, repetition4: mean(rep), distinct1: mean(d1), distinct2: mean(d2), meanExpertLogLikelihood: mean(ll) });
    }
    progress(total, total, 'quality done');
    return rows;
}


/** Mean per-token log-likelihood of `tokens` after `prompt` under the expert: one verifyForest pass over the chain. */
async function expertLogLikelihood(pair: ModelPair, prompt: number[], tokens: readonly number[]): Promise<number> {
    if (tokens.length === 0) return 0;
    const seq = await pair.createSequence(prompt);
    try {
        const { trees, release } = await pair.verifyForest([{ sequence: seq, nodes: tokens.map((token, i) => ({ token, parent: i - 1 })) }], { rule: 'none' });
        await release();
        return mean(trees[0]!.nodes.map((n) => n.logprob));
    } finally {
        await seq.dispose();
    }
}

export function gitCommit(): string | null {
    try {
        // "-dirty" when the working tree differs from the commit
        return execFileSync('git', ['describe', '--always', '--dirty', '--abbrev=7', '--exclude', '*'], { cwd: packageRoot(), encoding: 'utf8' }).trim();
    } catch {
        return null;
    }
}

export const fmt = (v: number | null | undefined, d = 2) => (v === null || v === undefined ? '–' : v.toFixed(d));

export function markdown(r: BenchReport): string {
    const lines = [
        `## ${r.workload.name} — ${r.date.slice(0, 10)}, commit ${r.commit ?? '?'}`,
        '',
        `${r.machine.cpu} (${r.machine.flags ?? 'flags not recorded'}; CPU kernels: ${r.machine.cpuVariant ?? '?'}), ${r.machine.cores} cores, Node ${r.machine.node}; ${r.workload.threads} threads, ${r.workload.maxTokens} new tokens, ${r.workload.prompts.length} prompts × ${r.workload.repeats} repeats (median, [min–max]).`,
        '',
        '| system | strategy | tokens/s | range | acceptance | mean accepted length | expert passes | amateur passes | bound tokens/s | efficiency | peak RSS MiB | KV bytes |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|',
        ...r.runs.map(
            (x) =>
                `| ${x.system} | ${x.strategy} | ${fmt(x.tokensPerSecond)} | ${fmt(x.tokensPerSecondRange[0])}–${fmt(x.tokensPerSecondRange[1])} | ${fmt(x.acceptanceRate, 3)} | ${fmt(x.meanAcceptedLength)} | ${fmt(x.expertPasses, 1)} | ${fmt(x.amateurPasses, 1)} | ${fmt(x.theoreticalTokensPerSecond)} | ${fmt(x.efficiency)} | ${x.peakRssBytes ? fmt(x.peakRssBytes / 2 ** 20, 0) : '–'} | ${x.kvBytes} |`,
        ),
        '',
        '| ratio | value |',
        '|---|---|',
        ...Object.entries(r.ratios).map(([k, v]) => `| ${k} | ${v === null ? '– (not measured)' : `${v.toFixed(2)}×`} |`),
    ];
    const beamRuns = r.runs.filter((x) => x.peakKvCells != null && (x.strategy.startsWith('beam') || x.strategy.startsWith('dsbd') || x.strategy.startsWith('speculative')));
    if (beamRuns.length) {
        lines.push(
            '',
            'Beam strategies (W = 4; DSBD W_L = W_S = 4, γ = 3, width threshold 0.7): expert passes per run, tokens per forest pass, how many acceptances the verified layers needed (width W_l: count), and the KV cells held at the peak.',
            '',
            '| strategy | tokens/s | expert passes | tokens per pass | forest tokens per pass | width histogram | peak KV cells | KV bytes |',
            '|---|---|---|---|---|---|---|---|',
            ...beamRuns.map(
                (x) =>
                    `| ${x.strategy} | ${fmt(x.tokensPerSecond)} | ${fmt(x.expertPasses, 1)} | ${fmt(x.meanAcceptedLength ?? (r.workload.maxTokens / Math.max(1, x.expertPasses - 1)))} | ${fmt(x.meanForestNodes, 1)} | ${x.widthHistogram ? x.widthHistogram.map((n, w) => (n ? `${w}: ${n}` : '')).filter(Boolean).join(', ') : '–'} | ${x.peakKvCells ?? '–'} | ${x.kvBytes} |`,
            ),
        );
    }
    if (r.verifyCost?.length) {
        const one = r.verifyCost[0]!;
        const cell = (v: number | null | undefined, base: number | null | undefined) => (v == null || base == null ? '–' : `${fmt(v, 1)} (${fmt(v / base)}×)`);
        lines.push(
            '',
            `Verify cost: one expert pass over k tokens, ms (and relative to k = 1). Speculative decoding at γ pays t(γ+1) per round. llama-duet's CPU kernels: ${r.machine.kernels ?? '?'}; "kernels off" = LLAMA_DUET_KERNELS=0 (ggml's own matmuls), same process, alternating rounds.`,
            '',
            '| k | llama-duet verifyForest chain | the same, kernels off (stock ggml) | llama-bench pp<k> (stock ggml) |',
            '|---|---|---|---|',
            ...r.verifyCost.map((p) => `| ${p.tokens} | ${cell(p.verifyForestMs, one.verifyForestMs)} | ${cell(p.stockMs, one.stockMs)} | ${cell(p.llamaBenchMs, one.llamaBenchMs)} |`),
        );
        const long = r.verifyCostLong;
        if (long?.points.length) {
            const first = long.points[0]!;
            lines.push(
                '',
                `The same behind a ${long.context}-token context (attention reads ${long.context} cached keys per query row; llama-duet's attention kernel on, or off with the matmul kernels):`,
                '',
                '| k | llama-duet verifyForest chain | the same, kernels off (stock ggml) |',
                '|---|---|---|',
                ...long.points.map((p) => `| ${p.tokens} | ${cell(p.verifyForestMs, first.verifyForestMs)} | ${cell(p.stockMs, first.stockMs)} |`),
            );
        }
    }
    if (r.onePass) {
        const o = r.onePass;
        lines.push(
            '',
            `One-token expert pass: ${fmt(o.weightBytes / 2 ** 30, 2)} GiB of weights in ${fmt(o.ms, 1)} ms = ${fmt(o.gbPerSecond, 1)} GB/s, ${fmt(100 * o.fractionOfBandwidth, 0)}% of the ${fmt(o.readBandwidthGBs, 1)} GB/s streaming read bandwidth measured in this run (${r.workload.threads} threads).` +
                (o.compute
                    ? ` Compute in this run: ${fmt(o.compute.together, 2)} G fp32 fma/s per thread with ${r.workload.threads} threads at once (slowest ${fmt(o.compute.slowest, 2)}), against ${fmt(o.compute.alone, 2)} for one thread alone (${fmt((100 * o.compute.together) / o.compute.alone, 0)}%): the batched passes are compute-bound, so their ratios move with it.`
                    : ''),
        );
    }
    if (r.skipped.length) lines.push('', ...r.skipped.map((s) => `- skipped **${s.system}**: ${s.reason}`));
    if (r.quality.length) {
        lines.push(
            '',
            `Quality (temperature 1, ${r.quality[0]!.samples} samples each): repetition = fraction of repeated 4-grams; log-likelihood = the expert's mean per-token log-prob of the output.`,
            '',
            '| strategy | repetition (4-gram) | distinct-1 | distinct-2 | expert log-likelihood |',
            '|---|---|---|---|---|',
            ...r.quality.map((q) => `| ${q.strategy} | ${fmt(q.repetition4, 3)} | ${fmt(q.distinct1, 3)} | ${fmt(q.distinct2, 3)} | ${fmt(q.meanExpertLogLikelihood, 3)} |`),
        );
    }
    return lines.join('\n') + '\n';
}

/** The run each system's speed-ups are measured against: its own plain (greedy, expert-only) decoding. */
function baselineOf(r: BenchReport, system: string): BenchRun | undefined {
    return r.runs.find(
        (x) => x.system === system && (x.strategy === 'greedy' || x.strategy === 'alone' || x.strategy.startsWith('greedy-expert')),
    );
}

export function svg(r: BenchReport): string {
    const barH = 20;
    // speed-up over the same system's plain decoding, grouped by system; the amateur's own speed stays in the table
    const shown = r.runs.filter((x) => !x.strategy.includes('amateur'));
    const label = (x: BenchRun) => x.strategy;  // under its system's heading
    const left = 16 + Math.ceil(Math.max(...shown.map((x) => label(x).length), 20) * 6.6);
    const w = left + 460;
    const ratioOf = (x: BenchRun) => {
        const base = baselineOf(r, x.system);
        return base && base.tokensPerSecond > 0 ? x.tokensPerSecond / base.tokensPerSecond : null;
    };
    const maxR = Math.max(1.2, ...shown.map((x) => ratioOf(x) ?? 0));
    const span = w - left - 150;
    const systems = [...new Set(shown.map((x) => x.system))];
    let y = 58;
    const rows: string[] = [];
    for (const sys of systems) {
        rows.push(`<text x="10" y="${y + 14}" font-size="13" font-weight="bold">${sys}</text>`);
        y += 22;
        for (const x of shown.filter((q) => q.system === sys)) {
            const q = ratioOf(x);
            const len = q === null ? 0 : (span * q) / maxR;
            const text = q === null ? `${x.tokensPerSecond.toFixed(1)} tokens/s (no baseline)` : `${q.toFixed(2)}× · ${x.tokensPerSecond.toFixed(1)} tokens/s`;
            rows.push(
                `<text x="${left - 8}" y="${y + 14}" text-anchor="end" font-size="12">${label(x)}</text><rect x="${left}" y="${y}" width="${len.toFixed(1)}" height="${barH}" fill="${q !== null && q >= 1 ? '#4a7bd0' : '#c46a5a'}"/><text x="${(left + len + 6).toFixed(1)}" y="${y + 14}" font-size="12">${text}</text>`,
            );
            y += barH + 6;
        }
        y += 8;
    }
    const one = left + span / maxR;
    rows.push(`<line x1="${one.toFixed(1)}" y1="56" x2="${one.toFixed(1)}" y2="${y}" stroke="#333" stroke-dasharray="3,3"/><text x="${one.toFixed(1)}" y="52" text-anchor="middle" font-size="11">1× = the system's greedy</text>`);
    const top = y + 30;
    const depthRuns = r.runs.filter((x) => x.acceptanceByDepth);
    const depth = depthRuns.flatMap((x, i) => {
        const y = top + 30 + i * 26;
        return [
            `<text x="${left - 8}" y="${y + 14}" text-anchor="end" font-size="12">${x.strategy}</text>`,
            ...x.acceptanceByDepth!.map(
                (a, d) => `<rect x="${left + d * 52}" y="${y}" width="48" height="20" fill="rgb(${Math.round(255 * (1 - a))},${Math.round(120 + 100 * a)},90)"/><text x="${left + d * 52 + 24}" y="${y + 14}" text-anchor="middle" font-size="11">${a.toFixed(2)}</text>`,
            ),
        ];
    });
    // verify cost: ms per expert pass over k tokens, one pair of bars (llama-bench, verifyForest) per k
    const vTop = top + 40 + depthRuns.length * 26 + 20;
    const vc = r.verifyCost ?? [];
    const maxMs = Math.max(1e-9, ...vc.flatMap((p) => [p.verifyForestMs, p.llamaBenchMs ?? 0, p.stockMs ?? 0]));
    const vRows = vc.flatMap((p, i) => {
        const y = vTop + 20 + i * 34;
        const bar = (ms: number | null, dy: number, fill: string) =>
            ms === null ? '' : `<rect x="${left}" y="${y + dy}" width="${(((w - left - 80) * ms) / maxMs).toFixed(1)}" height="14" fill="${fill}"/><text x="${(left + ((w - left - 80) * ms) / maxMs + 6).toFixed(1)}" y="${y + dy + 11}" font-size="11">${ms.toFixed(1)} ms</text>`;
        return [`<text x="${left - 8}" y="${y + 18}" text-anchor="end" font-size="12">k = ${p.tokens}</text>`, bar(p.stockMs ?? p.llamaBenchMs, 0, '#9a9a9a'), bar(p.verifyForestMs, 15, '#4a7bd0')];
    });
    const h = vTop + (vc.length ? 30 + vc.length * 34 : 0) + 10;
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif">
<text x="10" y="22" font-size="15">${r.workload.name}: speed-up over each system's own greedy decoding (median tokens/s)</text>
<text x="10" y="38" font-size="11">${r.date.slice(0, 10)} · ${r.commit ?? ''} · ${r.machine.cpu} (${r.machine.flags ?? ''})</text>
${rows.join('\n')}
<text x="10" y="${top + 10}" font-size="15">acceptance by draft depth (1 → γ)</text>
${depth.join('\n')}
${vc.length ? `<text x="10" y="${vTop + 10}" font-size="15">expert pass over k tokens: kernels off / stock ggml (grey), llama-duet (blue)</text>` : ''}
${vRows.join('\n')}
</svg>
`;
}

function writeReport(r: BenchReport, out?: string): string[] {
    return writeResults(r.workload.name, r, out, { md: markdown(r), svg: svg(r) });
}

/**
 * Writes a report as `out` or bench/results/<name>-<date>.json, and each view (`{ md: text, svg: text }`)
 * beside it with that extension; returns the paths written.
 */
export function writeResults(name: string, r: { date: string }, out: string | undefined, views: Record<string, string>): string[] {
    const json = out ?? join(packageRoot(), 'bench', 'results', `${name}-${r.date.slice(0, 10)}.json`);
    mkdirSync(join(json, '..'), { recursive: true });
    writeFileSync(json, JSON.stringify(r, null, 2) + '\n');
    const base = json.replace(/\.json$/, '');
    const files = [json];
    for (const [ext, text] of Object.entries(views)) {
        writeFileSync(`${base}.${ext}`, text);
        files.push(`${base}.${ext}`);
    }
    return files;
}

/** One row of the demo pair's quality table. */
export interface DemoQualityRow {
    strategy: string;
    mode: 'greedy' | 'T=1';
    samples: number;
    repetition4: number;
    distinct1: number;
    distinct2: number;
    /** exp(−mean expert log-prob) of the generated tokens: how likely the expert finds the text */
    expertPerplexity: number;
    tokensPerSecond: number;
}

export interface DemoQualityReport {
    schema: 1;
    date: string;
    machine: { cpu: string; flags: string; cores: number; node: string };
    commit: string | null;
    pair: { expert: string; amateur: string };
    prompts: number;
    maxTokens: number;
    rows: DemoQualityRow[];
}

/**
 * Quality on the shipped demo pair (issue 16 §3): every strategy over the 20 held-out prompts of
 * models/demo/prompts.json, greedy and at temperature 1: 4-gram repetition, distinct-1/2, the expert's
 * perplexity of the generated text. Writes bench/results/demo-quality-<date>.json and .md.
 */
export async function runDemoQuality(o: { out?: string; maxTokens?: number } = {}): Promise<{ report: DemoQualityReport; files: string[] }> {
    const files = demoPair();
    const prompts = JSON.parse(readFileSync(join(packageRoot(), 'models', 'demo', 'prompts.json'), 'utf8')) as string[];
    const maxTokens = o.maxTokens ?? 128;
    const kinds: [string, DemoQualityRow['mode'], GenerateOptions][] = [
        ['greedy', 'greedy', { strategy: 'greedy' }],
        ['speculative', 'greedy', { strategy: 'speculative' }],
        ['contrastive', 'greedy', { strategy: 'contrastive' }],
        ['scd', 'greedy', { strategy: 'scd' }],
        ['beam search (W 4)', 'greedy', { strategy: 'beam', beams: 4 }],
        ['dsbd (W 4, T 0)', 'greedy', { strategy: 'dsbd', beams: 4, temperature: 0 }],
        ['sample', 'T=1', { strategy: 'sample', temperature: 1 }],
        ['speculative', 'T=1', { strategy: 'speculative', temperature: 1 }],
        ['contrastive', 'T=1', { strategy: 'contrastive', temperature: 1 }],
        ['scd', 'T=1', { strategy: 'scd', temperature: 1 }],
        ['beam sampling (W 4)', 'T=1', { strategy: 'beam', beams: 4, sample: true, temperature: 1 }],
        ['dsbd (W 4)', 'T=1', { strategy: 'dsbd', beams: 4, temperature: 1 }],
        ['dsbd singleBeam', 'T=1', { strategy: 'dsbd', beams: 4, singleBeam: true, temperature: 1 }],
    ];
    const pair = await loadPair({ ...files, contextSize: 1024, threads: 2 });
    const rows: DemoQualityRow[] = [];
    try {
        let done = 0;
        for (const [name, mode, options] of kinds) {
            const rep: number[] = [];
            const d1: number[] = [];
            const d2: number[] = [];
            const ll: number[] = [];
            const tps: number[] = [];
            for (const [i, prompt] of prompts.entries()) {
                progress(done++, kinds.length * prompts.length, `${name} ${mode}`);
                const seeded = mode === 'T=1' ? { seed: 100 + i } : {};
                const r = await pair.generate(prompt, { ...options, ...seeded, maxTokens });
                rep.push(repeatedNgrams(r.tokens, 4));
                d1.push(distinct(r.tokens, 1));
                d2.push(distinct(r.tokens, 2));
                ll.push(await expertLogLikelihood(pair, pair.tokenize(prompt), r.tokens));
                tps.push(r.stats.tokensPerSecond);
            }
            rows.push({ strategy: name, mode, samples: prompts.length, repetition4: mean(rep), distinct1: mean(d1), distinct2: mean(d2), expertPerplexity: Math.exp(-mean(ll)), tokensPerSecond: median(tps) });
        }
        progress(1, 1, 'done');
    } finally {
        await pair.dispose();
    }
    const cpu = cpuFacts();
    const report: DemoQualityReport = {
        schema: 1,
        date: new Date().toISOString(),
        machine: { cpu: cpu.model, flags: cpu.summary, cores: cpus().length, node: process.version },
        commit: gitCommit(),
        pair: files,
        prompts: prompts.length,
        maxTokens,
        rows,
    };
    return { report, files: writeResults('demo-quality', report, o.out, { md: demoQualityMarkdown(report) }) };
}

export function demoQualityMarkdown(r: DemoQualityReport): string {
    return [
        `## Demo pair quality — ${r.date.slice(0, 10)}, commit ${r.commit ?? '?'}`,
        '',
        `${r.machine.cpu} (${r.machine.flags}), ${r.machine.cores} cores, Node ${r.machine.node}. ${r.prompts} prompts from the held-out text (models/demo/prompts.json), ${r.maxTokens} new tokens each; T=1 rows seeded 100 + prompt index. Repetition = share of 4-grams already seen in the output; perplexity = exp(−mean log p) of the generated tokens under the expert.`,
        '',
        '| strategy | mode | 4-gram repetition | distinct-1 | distinct-2 | expert perplexity | tokens/s (median) |',
        '|---|---|---|---|---|---|---|',
        ...r.rows.map((x) => `| ${x.strategy} | ${x.mode} | ${fmt(x.repetition4, 3)} | ${fmt(x.distinct1, 3)} | ${fmt(x.distinct2, 3)} | ${fmt(x.expertPerplexity, 2)} | ${fmt(x.tokensPerSecond, 0)} |`),
    ].join('\n') + '\n';
}
