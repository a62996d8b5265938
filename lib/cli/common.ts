/** What every `llama-duet` command shares: usage errors (exit code 2), number flags, load-option flags, a TTY progress bar. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadModel, loadPair, type LlamaModel, type ModelPair } from '../models.js';
import type { LoadOptions } from '../options.js';
import { demoPair } from '../paths.js';

/** A bad command line: the CLI prints the message and the command's usage, and exits with code 2. */
export class UsageError extends Error {
    constructor(message: string, readonly usage?: string) {
        super(message);
        this.name = 'UsageError';
    }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs in strict mode; unknown flags and missing values become UsageErrors; `--help` prints the usage. */
export function parse<O extends Options>(args: string[], options: O, usage: string, allowPositionals = false) {
    try {
        const r = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' }, verbose: { type: 'boolean' } }, allowPositionals, strict: true });
        return r as unknown as { values: { [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : O[K] extends { multiple: true } ? string[] : string } & { help?: boolean }; positionals: string[] };
    } catch (e) {
        throw new UsageError(e instanceof Error ? e.message.split('\n')[0]! : String(e), usage);
    }
}

export function num(v: string | undefined, flag: string): number | undefined {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${flag} expects a number, got '${v}'`);
    return n;
}

/** --expert / --amateur: the model or pair a command runs on (the shipped demo pair without them). */
export const targetFlags = {
    expert: { type: 'string' },
    amateur: { type: 'string' },
} as const;

/** The files --expert / --amateur name, or the demo pair; a lone --amateur is a usage error. */
export function targetFiles(v: { expert?: string; amateur?: string }, usage: string): { expert: string; amateur: string | undefined } {
    if (v.amateur !== undefined && v.expert === undefined) throw new UsageError('--amateur needs --expert', usage);
    return v.expert === undefined ? demoPair() : { expert: v.expert, amateur: v.amateur };
}

/** Loads the pair (with an amateur) or the model alone, with a progress bar on a terminal. */
export async function loadTarget(files: { expert: string; amateur: string | undefined }, load: LoadOptions): Promise<LlamaModel | ModelPair> {
    const onProgress = progressBar('loading');
    const o = { ...load, ...(onProgress ? { onProgress } : {}) };
    return files.amateur ? await loadPair({ expert: files.expert, amateur: files.amateur, ...o }) : await loadModel(files.expert, o);
}

/** Flags for loadModel()/loadPair() options, shared by generate and demo. */
export const loadFlags = {
    threads: { type: 'string' },
    'context-size': { type: 'string' },
    'batch-size': { type: 'string' },
    sequences: { type: 'string' },
    'gpu-layers': { type: 'string' },
    'flash-attention': { type: 'string' },
    mmap: { type: 'boolean' },
    'no-mmap': { type: 'boolean' },
    'max-concurrent': { type: 'string' },
    'max-queued': { type: 'string' },
    'speculate-up-to': { type: 'string' },
    'no-prompt-cache': { type: 'boolean' },
} as const;

export const loadUsage = `[--threads N] [--context-size N] [--batch-size N] [--sequences N] [--gpu-layers N]
                      [--flash-attention auto|on|off] [--mmap | --no-mmap] [--max-concurrent N] [--max-queued N]
                      [--speculate-up-to auto|always|N] [--no-prompt-cache]`;

export function loadOptions(v: Record<string, unknown>): LoadOptions {
    const o: Record<string, unknown> = {};
    const set = (k: string, flag: string) => {
        const n = num(v[flag] as string | undefined, flag);
        if (n !== undefined) o[k] = n;
    };
    set('threads', 'threads');
    set('contextSize', 'context-size');
    set('batchSize', 'batch-size');
    set('sequences', 'sequences');
    set('gpuLayers', 'gpu-layers');
    set('maxConcurrent', 'max-concurrent');
    set('maxQueued', 'max-queued');
    const spec = v['speculate-up-to'] as string | undefined;
    if (spec === 'auto' || spec === 'always') o['speculateUpTo'] = spec === 'auto' ? 'auto' : Infinity;
    else set('speculateUpTo', 'speculate-up-to');
    if (v['flash-attention'] !== undefined) o['flashAttention'] = v['flash-attention'];
    if (v['mmap'] && v['no-mmap']) throw new UsageError('--mmap and --no-mmap exclude each other');
    if (v['mmap']) o['useMmap'] = true;
    if (v['no-mmap']) o['useMmap'] = false;
    if (v['no-prompt-cache']) o['promptCache'] = false;
    return o as LoadOptions;
}

/** A load-progress bar on a terminal (nothing when stderr is not a TTY). */
export function progressBar(label: string): ((fraction: number) => void) | undefined {
    if (!process.stderr.isTTY) return undefined;
    return (f: number) => {
        const w = 24;
        const n = Math.round(f * w);
        process.stderr.write(`\r${label} [${'#'.repeat(n)}${'.'.repeat(w - n)}] ${(f * 100).toFixed(0).padStart(3)}%`);
        if (f >= 1) process.stderr.write('\r' + ' '.repeat(label.length + w + 8) + '\r');
    };
}
