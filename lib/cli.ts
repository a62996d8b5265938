#!/usr/bin/env node
/** The `llama-duet` command line: demo, make-pair, generate. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LlamaDuetError } from './errors.js';
import { loadModel, loadPair } from './models.js';
import { strategies, type GenerateOptions } from './options.js';
import { packageRoot } from './paths.js';
import { makePair, shapes, type ShapeName } from './synthetic.js';

const help = `llama-duet — expert/amateur GGUF decoding for Node.js

Usage:
  llama-duet demo [--out DIR] [--max-tokens N]
      Makes the small synthetic pair (models/tiny) if absent, then prints a generation with its stats
      for every strategy: greedy, speculative, sample, speculative sampled, contrastive, scd, beam search,
      beam sampling, dsbd.
  llama-duet make-pair --shape tiny|tiny-q8|tiny-q4k|tiny-q4km|tinyllama|tinyllama-q4k|tinyllama-q4km --out DIR [--epsilon E] [--amateur-layers K]
                       [--seed S] [--vocab PATH | --tiny-vocab N]
      Writes DIR/expert.gguf and DIR/amateur.gguf: a random-weight llama expert and an amateur made
      of its first K layers (same embeddings and head). Deterministic for a seed.
  llama-duet generate --expert A.gguf [--amateur B.gguf] --prompt TEXT [--strategy ${strategies.join('|')}]
                      [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--seed S]
                      [--stop STR] [--threads N] [--context-size N]
                      [--draft-tokens N] [--draft-confidence P] [--adaptive-draft]          (speculative, scd)
                      [--alpha A] [--beta B] [--amateur-temperature T] [--amateur-hides-prompt] (contrastive, scd)
                      [--no-bonus]                                                            (scd)
                      [--beams W] [--beam-sample] [--length-penalty L] [--early-stopping true|false|never] (beam, dsbd)
                      [--draft-beams W] [--width-threshold T] [--min-width W] [--single-beam] [--select sample|best] (dsbd)
      Streams a generation to stdout and prints its stats to stderr (speculative, contrastive and
      scd, dsbd need --amateur); beam and dsbd also print every candidate with its score.
  llama-duet bench --workload w0|w1|w1q4k|w1q4km [--expert A.gguf --amateur B.gguf] [--out FILE.json]
                   [--repeats N] [--no-quality]
      Runs every strategy side by side on a pair (w0: the tiny pair, 64 tokens; w1: the tinyllama pair
      (Q8_0), w1q4k: the same in Q4_K, w1q4km: in Q4_K_M, 128 tokens; all 3 prompts, 2 threads), the
      verify-cost curve k = 1..16 with llama-duet's CPU kernels on and off, and the one-token pass against
      the streaming read bandwidth measured in the same run; writes bench/results/<workload>-<date>.json,
      .md and .svg (schema: bench/README.md). Same as \`npm run bench -- --workload w0\`. The peers
      (llama.cpp's llama-speculative-simple and llama-bench, node-llama-cpp) run once
      \`npm run bench:peers\` built them.
  llama-duet --help

Environment: LLAMA_DUET_LOG=debug|info|warn|error prints llama.cpp's log to stderr.
  LLAMA_DUET_CPU_VARIANT=<name> (prebuilt binary) loads that CPU variant instead of the best one for this
  CPU; LLAMA_DUET_AMX=0 skips the AMX variant; LLAMA_DUET_ADDON=<file.node> loads a given build;
  LLAMA_DUET_KERNELS=0 leaves Q8_0/Q4_K/Q6_K weights to ggml's own matmuls instead of llama-duet's
  multi-row kernels (read when a model loads).
`;

function num(v: string | undefined, name: string): number | undefined {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`--${name} expects a number, got ${v}`);
    return n;
}

function printStats(stats: object): void {
    const rows = Object.entries(stats).map(([k, v]) => `  ${k.padEnd(16)} ${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(2) : String(v)}`);
    console.log(rows.join('\n'));
}

async function demo(args: string[]): Promise<void> {
    const { values } = parseArgs({ args, options: { out: { type: 'string' }, 'max-tokens': { type: 'string' } } });
    const dir = values.out ?? join(packageRoot(), 'models', 'tiny');
    const maxTokens = num(values['max-tokens'], 'max-tokens') ?? 48;
    if (!existsSync(join(dir, 'expert.gguf')) || !existsSync(join(dir, 'amateur.gguf'))) {
        console.log(`Making the synthetic 'tiny' pair in ${dir} ...`);
        const t0 = performance.now();
        await makePair({ out: dir, shape: 'tiny' });
        console.log(`  done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    await using pair = await loadPair({ expert: join(dir, 'expert.gguf'), amateur: join(dir, 'amateur.gguf'), contextSize: 1024 });
    console.log(`expert:  ${pair.expert.description} (${pair.expert.nLayer} layers, vocab ${pair.expert.nVocab})`);
    console.log(`amateur: ${pair.amateur.description} (${pair.amateur.nLayer} layers)`);
    const prompt = 'The quick brown fox';
    console.log('(random weights: the text is noise; the numbers are the point)');
    const runs: GenerateOptions[] = [
        { strategy: 'greedy' },
        { strategy: 'speculative', draftTokens: 4 },
        { strategy: 'sample', temperature: 0.8, topP: 0.95, seed: 42 },
        { strategy: 'speculative', draftTokens: 4, temperature: 0.8, topP: 0.95, seed: 42 },
        { strategy: 'contrastive', alpha: 0.1, beta: 0.5 },
        { strategy: 'scd', alpha: 0.1, beta: 0.5, draftTokens: 4 },
        { strategy: 'beam', beams: 4 },
        { strategy: 'beam', beams: 4, sample: true, seed: 42 },
        { strategy: 'dsbd', beams: 4, draftBeams: 4, draftTokens: 3, seed: 42 },
    ];
    for (const options of runs) {
        console.log(`\n=== ${JSON.stringify(options)} ===`);
        process.stdout.write(prompt);
        const s = pair.stream(prompt, { ...options, maxTokens });
        for await (const chunk of s) process.stdout.write(chunk.text);
        const r = await s.result;
        console.log(`\n-- finishReason: ${r.finishReason}`);
        printStats(r.stats);
    }
}

async function makePairCmd(args: string[]): Promise<void> {
    const { values } = parseArgs({
        args,
        options: {
            shape: { type: 'string', default: 'tiny' },
            out: { type: 'string' },
            epsilon: { type: 'string' },
            'amateur-layers': { type: 'string' },
            seed: { type: 'string' },
            vocab: { type: 'string' },
            'tiny-vocab': { type: 'string' },
        },
    });
    if (!values.out) throw new Error('make-pair needs --out DIR');
    if (!(values.shape! in shapes)) throw new Error(`--shape must be one of ${Object.keys(shapes).join(', ')}`);
    const t0 = performance.now();
    const tinyVocab = num(values['tiny-vocab'], 'tiny-vocab');
    const files = await makePair({
        out: values.out,
        shape: values.shape as ShapeName,
        ...(values.epsilon !== undefined ? { epsilon: num(values.epsilon, 'epsilon')! } : {}),
        ...(values['amateur-layers'] !== undefined ? { amateurLayers: num(values['amateur-layers'], 'amateur-layers')! } : {}),
        ...(values.seed !== undefined ? { seed: num(values.seed, 'seed')! } : {}),
        ...(tinyVocab !== undefined ? { vocab: { tiny: tinyVocab } } : values.vocab !== undefined ? { vocab: values.vocab } : {}),
    });
    console.log(`expert:  ${files.expert} (${(files.expertBytes / 2 ** 20).toFixed(1)} MiB)`);
    console.log(`amateur: ${files.amateur} (${(files.amateurBytes / 2 ** 20).toFixed(1)} MiB)`);
    console.log(`vocab:   ${files.nVocab} tokens; ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

async function generateCmd(args: string[]): Promise<void> {
    const { values } = parseArgs({
        args,
        options: {
            expert: { type: 'string' },
            amateur: { type: 'string' },
            prompt: { type: 'string' },
            strategy: { type: 'string', default: 'greedy' },
            'max-tokens': { type: 'string' },
            'draft-tokens': { type: 'string' },
            'draft-confidence': { type: 'string' },
            'adaptive-draft': { type: 'boolean' },
            alpha: { type: 'string' },
            beta: { type: 'string' },
            'amateur-temperature': { type: 'string' },
            'amateur-hides-prompt': { type: 'boolean' },
            'no-bonus': { type: 'boolean' },
            beams: { type: 'string' },
            'beam-sample': { type: 'boolean' },
            'length-penalty': { type: 'string' },
            'early-stopping': { type: 'string' },
            'draft-beams': { type: 'string' },
            'width-threshold': { type: 'string' },
            'min-width': { type: 'string' },
            'single-beam': { type: 'boolean' },
            select: { type: 'string' },
            temperature: { type: 'string' },
            'top-k': { type: 'string' },
            'top-p': { type: 'string' },
            'min-p': { type: 'string' },
            seed: { type: 'string' },
            stop: { type: 'string', multiple: true },
            threads: { type: 'string' },
            'context-size': { type: 'string' },
        },
    });
    if (!values.expert || values.prompt === undefined) throw new Error('generate needs --expert and --prompt');
    const load = {
        ...(values.threads !== undefined ? { threads: num(values.threads, 'threads')! } : {}),
        ...(values['context-size'] !== undefined ? { contextSize: num(values['context-size'], 'context-size')! } : {}),
    };
    const target = values.amateur ? await loadPair({ expert: values.expert, amateur: values.amateur, ...load }) : await loadModel(values.expert, load);
    try {
        const opts: Record<string, unknown> = { strategy: values.strategy };
        const set = (k: string, v: string | undefined) => v !== undefined && (opts[k] = num(v, k));
        set('maxTokens', values['max-tokens']);
        set('draftTokens', values['draft-tokens']);
        set('draftConfidence', values['draft-confidence']);
        set('alpha', values.alpha);
        set('beta', values.beta);
        set('amateurTemperature', values['amateur-temperature']);
        if (values['adaptive-draft']) opts['adaptiveDraft'] = true;
        if (values['amateur-hides-prompt']) opts['amateurSeesPrompt'] = false;
        if (values['no-bonus']) opts['bonus'] = false;
        set('beams', values.beams);
        if (values['beam-sample']) opts['sample'] = true;
        set('lengthPenalty', values['length-penalty']);
        set('draftBeams', values['draft-beams']);
        set('widthThreshold', values['width-threshold']);
        set('minWidth', values['min-width']);
        if (values['single-beam']) opts['singleBeam'] = true;
        if (values.select !== undefined) opts['select'] = values.select;
        const early = values['early-stopping'];
        if (early !== undefined) {
            if (!['true', 'false', 'never'].includes(early)) throw new Error(`--early-stopping expects true, false or never, got ${early}`);
            opts['earlyStopping'] = early === 'never' ? 'never' : early === 'true';
        }
        set('temperature', values.temperature);
        set('topK', values['top-k']);
        set('topP', values['top-p']);
        set('minP', values['min-p']);
        set('seed', values.seed);
        if (values.stop) opts['stop'] = values.stop;
        const ac = new AbortController();
        process.once('SIGINT', () => ac.abort());
        const s = target.stream(values.prompt, { ...(opts as GenerateOptions), signal: ac.signal });
        for await (const chunk of s) process.stdout.write(chunk.text);
        const r = await s.result;
        process.stdout.write('\n');
        console.error(`finishReason: ${r.finishReason}`);
        console.error(JSON.stringify(r.stats, null, 2));
        for (const [i, b] of (r.beams ?? []).entries()) {
            console.error(`beam ${i}: score ${b.score.toFixed(4)} logProb ${b.logProb.toFixed(4)}${b.finished ? ' (finished)' : ''}: ${JSON.stringify(b.text)}`);
        }
    } finally {
        await target.dispose();
    }
}

async function benchCmd(args: string[]): Promise<void> {
    const { values } = parseArgs({
        args,
        options: {
            workload: { type: 'string', default: 'w0' },
            expert: { type: 'string' },
            amateur: { type: 'string' },
            out: { type: 'string' },
            repeats: { type: 'string' },
            'no-quality': { type: 'boolean' },
        },
    });
    const { runBench, markdown, workloads } = await import('./bench.js');
    if (!Object.hasOwn(workloads, values.workload)) throw new Error(`--workload must be one of ${Object.keys(workloads).join(', ')}`);
    if ((values.expert === undefined) !== (values.amateur === undefined)) throw new Error('--expert and --amateur go together');
    const { report, files } = await runBench({
        workload: values.workload as keyof typeof workloads,
        ...(values.expert ? { expert: values.expert, amateur: values.amateur! } : {}),
        ...(values.out ? { out: values.out } : {}),
        ...(values.repeats ? { repeats: num(values.repeats, 'repeats')! } : {}),
        quality: !values['no-quality'],
    });
    process.stdout.write(markdown(report));
    console.log(`\nwrote ${files.join(', ')}`);
}

async function main(argv: string[]): Promise<number> {
    const [cmd, ...rest] = argv;
    switch (cmd) {
        case 'demo':
            await demo(rest);
            return 0;
        case 'make-pair':
            await makePairCmd(rest);
            return 0;
        case 'generate':
            await generateCmd(rest);
            return 0;
        case 'bench':
            await benchCmd(rest);
            return 0;
        case undefined:
        case '-h':
        case '--help':
        case 'help':
            process.stdout.write(help);
            return 0;
        default:
            process.stderr.write(`Unknown command '${cmd}'.\n\n${help}`);
            return 2;
    }
}

main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err: unknown) => {
        if (err instanceof LlamaDuetError) console.error(`${err.name} [${err.code}]: ${err.message}`);
        else console.error(err instanceof Error ? err.message : err);
        process.exitCode = 1;
    },
);
