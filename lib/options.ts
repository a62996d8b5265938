/**
 * Public option types, every default in one place, and their validation (style anchors: sharp
 * lib/constructor.mjs for one fully populated options object; sharp lib/is.mjs for messages).
 */
import { availableParallelism } from 'node:os';
import { InvalidArgumentError } from './errors.js';
import * as is from './validation/is.js';

/** Options for loading a model (or each model of a pair) and creating its context. */
export interface LoadOptions {
    /** Context window in tokens (prompt + generation). Defaults to `2048`. */
    contextSize?: number;
    /** Maximum tokens per `llama_decode` call. Defaults to `512`. */
    batchSize?: number;
    /** KV sequence slots of the context (beams, forests). Defaults to `16`, at most 256. */
    sequences?: number;
    /** CPU threads. Defaults to `os.availableParallelism()`. */
    threads?: number;
    /** Layers to offload to the GPU (CUDA builds; `-1` = all). Defaults to `0`. */
    gpuLayers?: number;
    /** Flash attention. Defaults to `'auto'`. */
    flashAttention?: 'auto' | 'on' | 'off';
    /** Memory-map the file instead of reading it. Defaults to `true`. */
    useMmap?: boolean;
    /** Aborts the load: the promise rejects with a `NativeError` of code `ERR_LLAMA_DUET_ABORTED`. */
    signal?: AbortSignal;
    /** Called with the load progress in [0, 1]. */
    onProgress?: (fraction: number) => void;
}

export interface ResolvedLoadOptions {
    contextSize: number;
    batchSize: number;
    sequences: number;
    threads: number;
    gpuLayers: number;
    flashAttention: 'auto' | 'on' | 'off';
    useMmap: boolean;
    signal: AbortSignal | undefined;
    onProgress: ((fraction: number) => void) | undefined;
}

export const loadDefaults = {
    contextSize: 2048,
    batchSize: 512,
    sequences: 16,
    gpuLayers: 0,
    flashAttention: 'auto',
    useMmap: true,
} as const;

const loadKeys = ['contextSize', 'batchSize', 'sequences', 'threads', 'gpuLayers', 'flashAttention', 'useMmap', 'signal', 'onProgress'] as const;

export function resolveLoadOptions(what: string, raw: unknown, extraKeys: readonly string[] = []): ResolvedLoadOptions {
    const o = is.options(`${what} options`, raw);
    is.knownKeys(what, o, [...loadKeys, ...extraKeys]);
    return {
        contextSize: o['contextSize'] === undefined ? loadDefaults.contextSize : is.integer('contextSize', o['contextSize'], 16, 16_777_216),
        batchSize: o['batchSize'] === undefined ? loadDefaults.batchSize : is.integer('batchSize', o['batchSize'], 1, 65_536),
        sequences: o['sequences'] === undefined ? loadDefaults.sequences : is.integer('sequences', o['sequences'], 1, 256),
        threads: o['threads'] === undefined ? availableParallelism() : is.integer('threads', o['threads'], 1, 1024),
        gpuLayers: o['gpuLayers'] === undefined ? loadDefaults.gpuLayers : is.integer('gpuLayers', o['gpuLayers'], -1, 100_000),
        flashAttention: o['flashAttention'] === undefined ? loadDefaults.flashAttention : is.oneOf('flashAttention', o['flashAttention'], ['auto', 'on', 'off']),
        useMmap: o['useMmap'] === undefined ? loadDefaults.useMmap : is.boolean('useMmap', o['useMmap']),
        signal: o['signal'] === undefined ? undefined : is.abortSignal('signal', o['signal']),
        onProgress: o['onProgress'] === undefined ? undefined : is.func('onProgress', o['onProgress']),
    };
}

/** Decoding strategies: `greedy` and `sample` use the expert alone; `speculative` needs a pair. */
export type Strategy = 'greedy' | 'sample' | 'speculative';
export const strategies: readonly Strategy[] = ['greedy', 'sample', 'speculative'];
/** Strategies that need the amateur (a ModelPair). */
export const pairStrategies: readonly Strategy[] = ['speculative'];

/** Options of `generate()` / `stream()`. */
export interface GenerateOptions {
    /**
     * `'greedy'` (argmax of the expert), `'sample'` (one draw from the warped expert distribution) or
     * `'speculative'` (pairs only: the amateur drafts `draftTokens`, the expert verifies them in one pass;
     * lossless: greedy output equals `'greedy'`, sampled output follows `'sample'`'s distribution).
     * Defaults to `'greedy'`.
     */
    strategy?: Strategy;
    /** Draft length γ of `'speculative'` (1–64). Defaults to `4`. */
    draftTokens?: number;
    /** Maximum number of new tokens. Defaults to `128`. */
    maxTokens?: number;
    /** Sampling temperature: > 0 for `'sample'` (defaults to `0.8`); ≥ 0 for `'speculative'` (defaults to `0`, greedy). */
    temperature?: number;
    /** Keep the k most probable tokens (0 = off; `'sample'` only). Defaults to `0`. */
    topK?: number;
    /** Nucleus: keep the smallest set with mass ≥ topP (1 = off; `'sample'` only). Defaults to `1`. */
    topP?: number;
    /** Drop tokens below minP × the top probability (0 = off; `'sample'` only). Defaults to `0`. */
    minP?: number;
    /** RNG seed (integer ≥ 0): the same seed gives the same output. Defaults to a random seed, reported in `stats.seed`. */
    seed?: number;
    /** Stop strings: generation ends before the first occurrence, which is not included in `text`. */
    stop?: string | string[];
    /** Stops the generation within one step; the promise rejects with `GenerationAbortedError`. */
    signal?: AbortSignal;
}

export interface ResolvedGenerateOptions {
    strategy: Strategy;
    draftTokens: number;
    maxTokens: number;
    temperature: number;
    topK: number;
    topP: number;
    minP: number;
    seed: number;
    stop: string[];
    signal: AbortSignal | undefined;
}

export const generateDefaults = {
    strategy: 'greedy',
    maxTokens: 128,
    draftTokens: 4,
    temperature: 0.8,
    topK: 0,
    topP: 1,
    minP: 0,
} as const;

const samplingKeys = ['temperature', 'topK', 'topP', 'minP', 'seed'] as const;
const generateKeys = ['strategy', 'maxTokens', 'stop', 'signal', 'draftTokens', ...samplingKeys] as const;

export function resolveGenerateOptions(raw: unknown): ResolvedGenerateOptions {
    const o = is.options('generate options', raw);
    is.knownKeys('generate()', o, generateKeys);
    const strategy = o['strategy'] === undefined ? generateDefaults.strategy : is.oneOf('strategy', o['strategy'], strategies);
    if (strategy === 'greedy') {
        for (const k of samplingKeys) {
            if (o[k] !== undefined) throw new InvalidArgumentError(`Option "${k}" does not apply to strategy 'greedy' (use strategy 'sample')`);
        }
    }
    if (strategy !== 'speculative' && o['draftTokens'] !== undefined) {
        throw new InvalidArgumentError(`Option "draftTokens" does not apply to strategy '${strategy}' (use strategy 'speculative')`);
    }
    const temperature =
        o['temperature'] === undefined
            ? strategy === 'speculative' ? 0 : generateDefaults.temperature
            : strategy === 'speculative'
              ? is.number('temperature', o['temperature'], 0, 1e6)
              : is.number('temperature', o['temperature'], 0, 1e6, { exclusiveMin: true });
    let stop: string[] = [];
    if (o['stop'] !== undefined) {
        const s = o['stop'];
        const list = typeof s === 'string' ? [s] : Array.isArray(s) ? s : undefined;
        if (!list || list.some((x) => typeof x !== 'string' || x.length === 0)) throw is.invalid('stop', 'a non-empty string or an array of non-empty strings', s);
        stop = list as string[];
    }
    return {
        strategy,
        maxTokens: o['maxTokens'] === undefined ? generateDefaults.maxTokens : is.integer('maxTokens', o['maxTokens'], 0, 16_777_216),
        draftTokens: o['draftTokens'] === undefined ? generateDefaults.draftTokens : is.integer('draftTokens', o['draftTokens'], 1, 64),
        temperature,
        topK: o['topK'] === undefined ? generateDefaults.topK : is.integer('topK', o['topK'], 0, 1 << 30),
        topP: o['topP'] === undefined ? generateDefaults.topP : is.number('topP', o['topP'], 0, 1, { exclusiveMin: true }),
        minP: o['minP'] === undefined ? generateDefaults.minP : is.number('minP', o['minP'], 0, 1),
        seed: o['seed'] !== undefined ? is.integer('seed', o['seed'], 0, Number.MAX_SAFE_INTEGER) : strategy === 'greedy' || temperature === 0 ? 0 : Math.floor(Math.random() * 2 ** 32),
        stop,
        signal: o['signal'] === undefined ? undefined : is.abortSignal('signal', o['signal']),
    };
}
