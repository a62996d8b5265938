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
    /** KV sequence slots of the context (concurrent generations hold one each; beams, forests). Defaults to `16`, at most 256. */
    sequences?: number;
    /** CPU threads. Defaults to `os.availableParallelism()`. */
    threads?: number;
    /** Layers to offload to the GPU (CUDA builds; `-1` = all). Defaults to `0`. */
    gpuLayers?: number;
    /**
     * Flash attention. Defaults to `'auto'` (on wherever the backend has it). On x86-64 CPUs with AVX2 it runs
     * llama-duet's attention kernel for F16 caches (README, CPU attention) unless `LLAMA_DUET_KERNELS=0`.
     */
    flashAttention?: 'auto' | 'on' | 'off';
    /**
     * Memory-map the file instead of reading it. Defaults to mapping, except where the CPU backend repacks
     * weights at load: llama-duet's multi-row kernels (any x86-64 CPU with AVX2 unless `LLAMA_DUET_KERNELS=0`;
     * the choice is made for the CPU, whatever the file's weight types) and ggml's AMX kernels. There the
     * mapped pages would stay resident beside the repacked copy (about twice the weights in RSS), so the file
     * is read instead.
     */
    useMmap?: boolean;
    /** Aborts the load: the promise rejects with a `NativeError` of code `ERR_LLAMA_DUET_ABORTED`. */
    signal?: AbortSignal;
    /** Called with the load progress in [0, 1]. */
    onProgress?: (fraction: number) => void;
    /**
     * Generations that run at once (greedy, sample, speculative, contrastive, scd): they share the forward
     * passes (continuous batching), each on its own KV sequence, so no more than `sequences` (minus the ones
     * you hold) can run. `'beam'`/`'dsbd'` and sequence operations run alone. Defaults to `min(8, sequences)`.
     */
    maxConcurrent?: number;
    /** Generations that may wait beyond `maxConcurrent` before calls fail with `QueueFullError`. Defaults to `256`. */
    maxQueued?: number;
    /**
     * How `'speculative'` / `'scd'` requests draft while other generations share the forward passes. Under
     * load a γ-token verification can cost more than it saves on a CPU (a pass over many tokens becomes
     * compute-bound; the README's serving section has the numbers).
     * - `'auto'` (the default): a greedy (temperature 0) request running beside others drafts, each round,
     *   the length up to its `draftTokens` with the most expected tokens per unit of pass time, from its own
     *   acceptance rate and the pass times measured on this pair so far: fewer drafts as the batch grows, none
     *   where drafting no longer pays. Its output is the same for any length; its pass counts depend on the
     *   load. Alone, and for sampled requests (so that a seeded one repeats its tokens from a run alone),
     *   `draftTokens` as given.
     * - a number N: every such request drafts only while at most N generations run and decodes plainly
     *   above (vLLM's `disable_by_batch_size`); sampled output keeps its law, but a seeded request then no
     *   longer repeats a run alone.
     * - `Infinity`: always `draftTokens`.
     */
    speculateUpTo?: number | 'auto';
    /**
     * Prompt-prefix reuse: a generation that ends normally leaves its KV cells in the cache, and a later
     * one whose prompt starts with the same tokens (a conversation's next turn, a shared system prompt)
     * decodes only the rest (`stats.cachedPromptTokens`). Cached cells give way, least recently used first,
     * whenever a generation, a beam search or a sequence needs the room or the slot. Off for models whose
     * cache cannot be cut at any position (recurrent, hybrid, sliding-window attention). Defaults to `true`.
     */
    promptCache?: boolean;
}

export interface ResolvedLoadOptions {
    contextSize: number;
    batchSize: number;
    sequences: number;
    threads: number;
    gpuLayers: number;
    flashAttention: 'auto' | 'on' | 'off';
    /** `undefined`: decided at load (see LoadOptions.useMmap) */
    useMmap: boolean | undefined;
    signal: AbortSignal | undefined;
    onProgress: ((fraction: number) => void) | undefined;
    maxConcurrent: number;
    maxQueued: number;
    /** `Infinity`: no limit */
    speculateUpTo: number | 'auto';
    promptCache: boolean;
}

export const loadDefaults = {
    contextSize: 2048,
    batchSize: 512,
    sequences: 16,
    gpuLayers: 0,
    flashAttention: 'auto',
} as const;

const loadKeys = ['contextSize', 'batchSize', 'sequences', 'threads', 'gpuLayers', 'flashAttention', 'useMmap', 'signal', 'onProgress', 'maxConcurrent', 'maxQueued', 'speculateUpTo', 'promptCache'] as const;

function resolveSpeculateUpTo(v: unknown): number | 'auto' {
    if (v === undefined || v === 'auto') return 'auto';
    if (v === Infinity) return Infinity;
    return is.integer('speculateUpTo', v, 1, 256);
}

export function resolveLoadOptions(what: string, raw: unknown, extraKeys: readonly string[] = []): ResolvedLoadOptions {
    const o = is.options(`${what} options`, raw);
    is.knownKeys(what, o, [...loadKeys, ...extraKeys]);
    const sequences = o['sequences'] === undefined ? loadDefaults.sequences : is.integer('sequences', o['sequences'], 1, 256);
    return {
        contextSize: o['contextSize'] === undefined ? loadDefaults.contextSize : is.integer('contextSize', o['contextSize'], 16, 16_777_216),
        batchSize: o['batchSize'] === undefined ? loadDefaults.batchSize : is.integer('batchSize', o['batchSize'], 1, 65_536),
        sequences,
        maxConcurrent: o['maxConcurrent'] === undefined ? Math.min(8, sequences) : is.integer('maxConcurrent', o['maxConcurrent'], 1, sequences),
        maxQueued: o['maxQueued'] === undefined ? 256 : is.integer('maxQueued', o['maxQueued'], 0, 1_000_000),
        speculateUpTo: resolveSpeculateUpTo(o['speculateUpTo']),
        promptCache: o['promptCache'] === undefined ? true : is.boolean('promptCache', o['promptCache']),
        threads: o['threads'] === undefined ? availableParallelism() : is.integer('threads', o['threads'], 1, 1024),
        gpuLayers: o['gpuLayers'] === undefined ? loadDefaults.gpuLayers : is.integer('gpuLayers', o['gpuLayers'], -1, 100_000),
        flashAttention: o['flashAttention'] === undefined ? loadDefaults.flashAttention : is.oneOf('flashAttention', o['flashAttention'], ['auto', 'on', 'off']),
        useMmap: o['useMmap'] === undefined ? undefined : is.boolean('useMmap', o['useMmap']),
        signal: o['signal'] === undefined ? undefined : is.abortSignal('signal', o['signal']),
        onProgress: o['onProgress'] === undefined ? undefined : is.func('onProgress', o['onProgress']),
    };
}

/** Decoding strategies: `greedy`, `sample` and `beam` use the expert alone; the others need a pair. */
export type Strategy = 'greedy' | 'sample' | 'speculative' | 'contrastive' | 'scd' | 'beam' | 'dsbd';
export const strategies: readonly Strategy[] = ['greedy', 'sample', 'speculative', 'contrastive', 'scd', 'beam', 'dsbd'];
/** Strategies that need the amateur (a ModelPair). */
export const pairStrategies: readonly Strategy[] = ['speculative', 'contrastive', 'scd', 'dsbd'];
/** Strategies where the amateur drafts chains and the expert verifies them. */
const draftStrategies: readonly Strategy[] = ['speculative', 'scd'];
/** Strategies over beams (bookkeeping of candidates: width, length penalty, early stopping). */
const beamStrategies: readonly Strategy[] = ['beam', 'dsbd'];
/** Strategies that sample from the contrastive distribution. */
const contrastStrategies: readonly Strategy[] = ['contrastive', 'scd'];

/** Options of `generate()` / `stream()`. */
export interface GenerateOptions {
    /**
     * `'greedy'` (argmax of the expert), `'sample'` (one draw from the warped expert distribution) or
     * `'speculative'` (pairs only: the amateur drafts `draftTokens`, the expert verifies them in one pass;
     * lossless: greedy output equals `'greedy'`, sampled output follows `'sample'`'s distribution).
     * Defaults to `'greedy'`.
     */
    strategy?: Strategy;
    /** Draft length γ of `'speculative'` and `'scd'` (1–64; defaults to `4`) and of `'dsbd'` (draft layers; defaults to `3`). */
    draftTokens?: number;
    /**
     * `'speculative'` / `'scd'`: stop drafting after a draft whose amateur top probability is below this
     * (0–1; 0 = off). Defaults to `0`.
     */
    draftConfidence?: number;
    /**
     * `'speculative'` / `'scd'`: adapt γ each round (HF-style: all drafts accepted → γ + 2, else γ − 1,
     * within 1..3·draftTokens). Defaults to `false`.
     */
    adaptiveDraft?: boolean;
    /** `'contrastive'` / `'scd'`: plausibility threshold α: keep tokens with p_expert ≥ α·max p_expert (0–1; 0 = no mask). Defaults to `0.1`. */
    alpha?: number;
    /** `'contrastive'` / `'scd'`: contrast weight β in (1+β)·s_expert − β·s_amateur/τ_a (≥ 0). Defaults to `0.5`. */
    beta?: number;
    /** `'contrastive'` / `'scd'`: τ_a, the amateur temperature inside the contrast (> 0). Defaults to `1`. */
    amateurTemperature?: number;
    /**
     * `'contrastive'` / `'scd'`: whether the amateur sees the prompt. `false` (Li et al.): it sees only BOS,
     * the prompt's last token and the generated text. Defaults to `true`.
     */
    amateurSeesPrompt?: boolean;
    /**
     * `'scd'`: when every draft is accepted, draw a bonus token from the contrastive distribution after one
     * extra amateur step (delayed drafting). `false` emits no bonus. Both are exact. Defaults to `true`.
     */
    bonus?: boolean;
    /**
     * `'beam'`: the number of beams W (1–256; no more than the context's free sequence slots: `sequences`
     * at load, 16 by default, minus one for generate() and any sequences you hold). `'dsbd'`: W_L, the beams
     * each iteration outputs. Defaults to `4`.
     */
    beams?: number;
    /** `'dsbd'`: W_S, the amateur's draft beams per layer (1–64). Defaults to `4`. */
    draftBeams?: number;
    /**
     * `'dsbd'`: t in (0, 1]: a layer needs the largest number K of accepted drafts whose probability
     * P(≥ K accepted of W_S) is at least t (at least `minWidth`). Defaults to `0.7`.
     */
    widthThreshold?: number;
    /** `'dsbd'`: W_min, the fewest acceptances a layer needs (1–draftBeams). Defaults to `1`. */
    minWidth?: number;
    /**
     * `'dsbd'`: keep one beam between iterations (the cache then holds one path and the transient forest, as
     * speculative decoding does). Defaults to `false`.
     */
    singleBeam?: boolean;
    /**
     * `'dsbd'` with `singleBeam`: which output beam to keep: `'sample'` (the first output slot, distributed as
     * beam sampling's) or `'best'` (the highest-scoring one). Defaults to `'sample'`.
     */
    select?: 'sample' | 'best';
    /**
     * `'beam'`: `false` = beam search (each step keeps the W best children by cumulative log-prob, as
     * HF `generate(num_beams=W)`); `true` = beam sampling (each step draws W children with replacement from
     * the joint over (beam, token), ∝ p(beam)·p_T(token | beam), with topK / topP / minP applied to that
     * joint). Defaults to `false`.
     */
    sample?: boolean;
    /**
     * `'beam'`, `'dsbd'`: candidates are ranked by logProb / length^lengthPenalty (length = generated tokens, the
     * end-of-generation token included): > 0 favours longer outputs, 0 ranks by logProb. Defaults to `1`.
     */
    lengthPenalty?: number;
    /**
     * `'beam'`, `'dsbd'`: when the search ends once W candidates have finished: `true` at once; `false` when no live
     * beam can beat them at its current length (HF's heuristic); `'never'` when none can even at maxTokens.
     * Defaults to `false`.
     */
    earlyStopping?: boolean | 'never';
    /** Maximum number of new tokens. Defaults to `128`. */
    maxTokens?: number;
    /**
     * Sampling temperature: > 0 for `'sample'` (defaults to `0.8`) and beam sampling (`'beam'` with
     * `sample: true`; defaults to `1`; it tempers each step's conditional, never the cumulative scores), and
     * `'dsbd'` (defaults to `1`; `0` gives beam search, see the README);
     * ≥ 0 for the pair strategies (defaults to `0`, greedy). For `'contrastive'` / `'scd'` it divides the
     * contrastive logits (after the α mask).
     * Values below 1e-30 act as 1e-30: the distribution is then uniform over the largest logits.
     */
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
    draftConfidence: number;
    adaptiveDraft: boolean;
    alpha: number;
    beta: number;
    amateurTemperature: number;
    amateurSeesPrompt: boolean;
    bonus: boolean;
    beams: number;
    draftBeams: number;
    widthThreshold: number;
    minWidth: number;
    singleBeam: boolean;
    select: 'sample' | 'best';
    sample: boolean;
    lengthPenalty: number;
    earlyStopping: boolean | 'never';
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
    draftConfidence: 0.3,
    adaptiveDraft: false,
    alpha: 0.1,
    beta: 0.5,
    amateurTemperature: 1,
    amateurSeesPrompt: true,
    bonus: true,
    beams: 4,
    draftBeams: 4,
    dsbdDraftTokens: 3,
    widthThreshold: 0.7,
    minWidth: 1,
    singleBeam: false,
    select: 'sample',
    sample: false,
    lengthPenalty: 1,
    earlyStopping: false,
    temperature: 0.8,
    topK: 0,
    topP: 1,
    minP: 0,
} as const;

const samplingKeys = ['temperature', 'topK', 'topP', 'minP', 'seed'] as const;
const draftKeys = ['draftTokens', 'draftConfidence', 'adaptiveDraft'] as const;
const dsbdKeys = ['draftBeams', 'widthThreshold', 'minWidth', 'singleBeam', 'select'] as const;
const contrastKeys = ['alpha', 'beta', 'amateurTemperature', 'amateurSeesPrompt'] as const;
const beamKeys = ['beams', 'lengthPenalty', 'earlyStopping'] as const;
const generateKeys = ['strategy', 'maxTokens', 'stop', 'signal', 'bonus', 'sample', ...draftKeys, ...contrastKeys, ...samplingKeys, ...beamKeys, ...dsbdKeys] as const;

export function resolveGenerateOptions(raw: unknown): ResolvedGenerateOptions {
    const o = is.options('generate options', raw);
    is.knownKeys('generate()', o, generateKeys);
    const strategy = o['strategy'] === undefined ? generateDefaults.strategy : is.oneOf('strategy', o['strategy'], strategies);
    if (strategy === 'greedy') {
        for (const k of samplingKeys) {
            if (o[k] !== undefined) throw new InvalidArgumentError(`Option "${k}" does not apply to strategy 'greedy' (use strategy 'sample')`);
        }
    }
    const notFor = (keys: readonly string[], allowed: readonly Strategy[]) => {
        if (allowed.includes(strategy)) return;
        for (const k of keys) {
            if (o[k] !== undefined) {
                throw new InvalidArgumentError(`Option "${k}" does not apply to strategy '${strategy}' (use strategy ${allowed.map((x) => `'${x}'`).join(' or ')})`);
            }
        }
    };
    notFor(['draftTokens'], [...draftStrategies, 'dsbd']);
    notFor(['draftConfidence', 'adaptiveDraft'], draftStrategies);
    notFor(contrastKeys, contrastStrategies);
    notFor(['bonus'], ['scd']);
    notFor(beamKeys, beamStrategies);
    notFor(['sample'], ['beam']);
    notFor(dsbdKeys, ['dsbd']);
    if (o['select'] !== undefined && o['singleBeam'] !== true) throw new InvalidArgumentError('Option "select" applies with singleBeam: true only');
    const sample = o['sample'] === undefined ? generateDefaults.sample : is.boolean('sample', o['sample']);
    if (strategy === 'beam' && !sample) {
        for (const k of samplingKeys) {
            if (o[k] !== undefined) throw new InvalidArgumentError(`Option "${k}" does not apply to beam search (use sample: true for beam sampling)`);
        }
    }
    const pairStrategy = pairStrategies.includes(strategy);
    const temperature =
        o['temperature'] === undefined
            ? strategy === 'dsbd' ? 1 : pairStrategy ? 0 : strategy === 'beam' ? (sample ? 1 : 0) : generateDefaults.temperature
            : pairStrategy
              ? is.number('temperature', o['temperature'], 0, 1e6)
              : is.number('temperature', o['temperature'], 0, 1e6, { exclusiveMin: true });
    let stop: string[] = [];
    if (o['stop'] !== undefined) {
        const s = o['stop'];
        const list = typeof s === 'string' ? [s] : Array.isArray(s) ? s : undefined;
        if (!list || list.some((x) => typeof x !== 'string' || x.length === 0)) throw is.invalid('stop', 'a non-empty string or an array of non-empty strings', s);
        stop = list as string[];
    }
    if (o['minWidth'] !== undefined && o['draftBeams'] !== undefined && (o['minWidth'] as number) > (o['draftBeams'] as number)) {
        throw new InvalidArgumentError(`Option "minWidth" (${String(o['minWidth'])}) must not exceed draftBeams (${String(o['draftBeams'])})`);
    }
    return {
        strategy,
        maxTokens: o['maxTokens'] === undefined ? generateDefaults.maxTokens : is.integer('maxTokens', o['maxTokens'], 0, 16_777_216),
        draftTokens:
            o['draftTokens'] === undefined
                ? strategy === 'dsbd' ? generateDefaults.dsbdDraftTokens : generateDefaults.draftTokens
                : is.integer('draftTokens', o['draftTokens'], 1, 64),
        draftConfidence: o['draftConfidence'] === undefined ? generateDefaults.draftConfidence : is.number('draftConfidence', o['draftConfidence'], 0, 1),
        adaptiveDraft: o['adaptiveDraft'] === undefined ? generateDefaults.adaptiveDraft : is.boolean('adaptiveDraft', o['adaptiveDraft']),
        alpha: o['alpha'] === undefined ? generateDefaults.alpha : is.number('alpha', o['alpha'], 0, 1),
        beta: o['beta'] === undefined ? generateDefaults.beta : is.number('beta', o['beta'], 0, 1e6),
        amateurTemperature:
            o['amateurTemperature'] === undefined
                ? generateDefaults.amateurTemperature
                : is.number('amateurTemperature', o['amateurTemperature'], 0, 1e6, { exclusiveMin: true }),
        amateurSeesPrompt: o['amateurSeesPrompt'] === undefined ? generateDefaults.amateurSeesPrompt : is.boolean('amateurSeesPrompt', o['amateurSeesPrompt']),
        bonus: o['bonus'] === undefined ? generateDefaults.bonus : is.boolean('bonus', o['bonus']),
        beams: o['beams'] === undefined ? generateDefaults.beams : is.integer('beams', o['beams'], 1, 256),
        draftBeams: o['draftBeams'] === undefined ? generateDefaults.draftBeams : is.integer('draftBeams', o['draftBeams'], 1, 64),
        widthThreshold:
            o['widthThreshold'] === undefined ? generateDefaults.widthThreshold : is.number('widthThreshold', o['widthThreshold'], 0, 1, { exclusiveMin: true }),
        minWidth: o['minWidth'] === undefined ? generateDefaults.minWidth : is.integer('minWidth', o['minWidth'], 1, 64),
        singleBeam: o['singleBeam'] === undefined ? generateDefaults.singleBeam : is.boolean('singleBeam', o['singleBeam']),
        select: o['select'] === undefined ? generateDefaults.select : is.oneOf('select', o['select'], ['sample', 'best'] as const),
        sample,
        lengthPenalty: o['lengthPenalty'] === undefined ? generateDefaults.lengthPenalty : is.number('lengthPenalty', o['lengthPenalty'], -1e6, 1e6),
        earlyStopping:
            o['earlyStopping'] === undefined
                ? generateDefaults.earlyStopping
                : o['earlyStopping'] === 'never'
                  ? 'never'
                  : typeof o['earlyStopping'] === 'boolean'
                    ? o['earlyStopping']
                    : (() => {
                          throw is.invalid('earlyStopping', "true, false or 'never'", o['earlyStopping']);
                      })(),
        temperature,
        topK: o['topK'] === undefined ? generateDefaults.topK : is.integer('topK', o['topK'], 0, 1 << 30),
        topP: o['topP'] === undefined ? generateDefaults.topP : is.number('topP', o['topP'], 0, 1, { exclusiveMin: true }),
        minP: o['minP'] === undefined ? generateDefaults.minP : is.number('minP', o['minP'], 0, 1),
        seed:
            o['seed'] !== undefined
                ? is.integer('seed', o['seed'], 0, Number.MAX_SAFE_INTEGER)
                : strategy === 'greedy' || temperature === 0 || (strategy === 'beam' && !sample)
                  ? 0
                  : Math.floor(Math.random() * 2 ** 32),
        stop,
        signal: o['signal'] === undefined ? undefined : is.abortSignal('signal', o['signal']),
    };
}
