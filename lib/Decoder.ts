/**
 * The engine behind `LlamaModel` and `ModelPair`: one native expert context (plus the amateur's for
 * a pair), a FIFO queue so two generations never run on one llama_context at once, AbortSignal →
 * native cancel, streaming chunks, and dispose that ends an in-flight generation safely.
 * @internal
 */
import { DisposedError, fromNative, GenerationAbortedError, InvalidArgumentError, LlamaDuetError, ErrorCode, QueueFullError } from './errors.js';
import type { NativeContext, NativeGenerateResult, NativeModel } from './native.js';
import type { GenerateOptions, ResolvedGenerateOptions } from './options.js';
import { pairStrategies, resolveGenerateOptions } from './options.js';

/** Why a generation ended. */
export type FinishReason = 'eos' | 'length' | 'stop' | 'context';

/** Measurements of one generation. */
export interface GenerationStats {
    /** Tokens in the prompt (after tokenization, BOS included). */
    promptTokens: number;
    /** New tokens in `tokens`. */
    generatedTokens: number;
    /**
     * Prompt tokens the expert did not decode because its KV cache still held them from an earlier
     * generation (prompt-prefix reuse; the `promptCache` load option). At most `promptTokens − 1`: the last
     * prompt token is always decoded. 0 for `'beam'`/`'dsbd'`, which start from an empty cache.
     */
    cachedPromptTokens: number;
    /** Forward passes (`llama_decode` calls) of the expert, prompt included. */
    expertPasses: number;
    /** Forward passes of the amateur (0 for expert-only strategies). */
    amateurPasses: number;
    /** Prompt processing time. */
    promptMs: number;
    /** Generation time after the prompt. */
    generationMs: number;
    /** Total wall time of the native call. */
    wallMs: number;
    /** generatedTokens / generationMs. */
    tokensPerSecond: number;
    /** The RNG seed used (random when not given; 0 for greedy runs). */
    seed: number;
    /**
     * Expert passes this generation shared with other concurrent generations on the same model/pair
     * (continuous batching: one `llama_decode` carried their tokens too). 0 when it ran alone; absent for
     * `'beam'`/`'dsbd'`, which always run alone.
     */
    sharedPasses?: number;
    /** `'speculative'` / `'scd'`: draft tokens proposed by the amateur. */
    draftedTokens?: number;
    /** `'speculative'` / `'scd'`: draft tokens the expert accepted. */
    acceptedTokens?: number;
    /** `'speculative'` / `'scd'`: acceptedTokens / draftedTokens. */
    acceptanceRate?: number;
    /** `'speculative'` / `'scd'`: expert verification passes (rounds). */
    verifyPasses?: number;
    /** `'speculative'` / `'scd'`: generated tokens per verification pass (accepted drafts + the correction/bonus). */
    meanAcceptedLength?: number;
    /** `'speculative'` / `'scd'`: acceptance rate of the drafts at depth 1..γ. */
    acceptanceByDepth?: number[];
    /** `'speculative'` / `'scd'`: time the amateur spent drafting. */
    draftMs?: number;
    /** `'speculative'` / `'scd'`: time the expert spent verifying. */
    verifyMs?: number;
    /** `'scd'`: mean entropy (nats) of the amateur's distribution at accepted drafts (the SCD paper's analysis). */
    meanEntropyAccepted?: number;
    /** `'scd'`: mean entropy (nats) of the amateur's distribution at rejected drafts. */
    meanEntropyRejected?: number;
    /** `'beam'`, `'dsbd'`: tokens decoded by the expert's generation passes (`'beam'`: one per distinct beam and step; `'dsbd'`: the forests; the prompt excluded). */
    batchTokens?: number;
    /** `'beam'`, `'dsbd'`, `'speculative'`, `'scd'`: the most KV cells of the expert the generation held at once (prompt included; beams share their common prefix). */
    peakKvCells?: number;
    /**
     * With `peakKvCells`: the KV bytes at that peak (f16 cache): the expert's cells, and as many of the amateur's
     * when it took part (an upper bound: it never holds more).
     */
    peakKvBytes?: number;
    /** `'dsbd'`: `widthHistogram[w]` = verified layers that needed w accepted drafts (the dynamic width W_l). */
    widthHistogram?: number[];
    /** `'dsbd'`: the most tokens one forest verification pass held. */
    forestNodesMax?: number;
    /** `'dsbd'`: mean tokens per forest verification pass. */
    meanForestNodes?: number;
}

/** One candidate of a `'beam'` generation. */
export interface BeamCandidate {
    /** Its text (stop strings applied as for `text`). */
    text: string;
    /** Its generated tokens (the end-of-generation token excluded). */
    tokens: number[];
    /** Σ log p(token | prefix) of the expert (temperature 1) over its generated tokens, end-of-generation included. */
    logProb: number;
    /** logProb / length^lengthPenalty: the ranking score. */
    score: number;
    /** Ended by an end-of-generation token or a stop string (false: cut by maxTokens or the context). */
    finished: boolean;
}

export interface GenerationResult {
    text: string;
    tokens: number[];
    finishReason: FinishReason;
    stats: GenerationStats;
    /** `'beam'`, `'dsbd'`: up to W candidates, best first; `text`/`tokens` are the first one's. */
    beams?: BeamCandidate[];
}

/** One streamed step: the text that became final and the tokens it came from (either may be empty). */
export interface GenerationChunk {
    text: string;
    tokens: number[];
}

/** An async iterator of chunks; `result` settles with the full result once the stream ends. */
export interface GenerationStream extends AsyncIterable<GenerationChunk> {
    readonly result: Promise<GenerationResult>;
}

export type Prompt = string | readonly number[] | Int32Array;

/** One chat message (`applyChatTemplate`, the server's /v1/chat/completions). */
export interface ChatMessage {
    role: string;
    content: string;
}

/** Bytes one KV cell takes in a model's cache: f16 K and V rows of every layer (llama.cpp's default cache types). */
export function kvBytesPerCell(info: { nLayer: number; nEmbd: number; nHead: number; nHeadKv: number }): number {
    return info.nLayer * 2 * ((info.nEmbd / info.nHead) * info.nHeadKv) * 2;
}

export class Decoder {
    readonly #kvBytesPerCell: [number, number];
    readonly #expertModel: NativeModel;
    readonly #expert: NativeContext;
    readonly #amateur: NativeContext | null;
    readonly #nVocab: number;
    readonly #contextSize: number;
    readonly #what: string;
    readonly #lanes: Lanes;
    readonly #speculateUpTo: number | 'auto';
    readonly #active = new Set<{ cancel(): void; settled: Promise<unknown> }>();
    #disposed = false;

    constructor(
        what: string,
        expertModel: NativeModel,
        expert: NativeContext,
        amateur: NativeContext | null,
        amateurModel: NativeModel | null = null,
        limits: { maxConcurrent: number; maxQueued: number; speculateUpTo: number | 'auto' } = { maxConcurrent: 8, maxQueued: 256, speculateUpTo: 'auto' },
    ) {
        this.#lanes = new Lanes(limits.maxConcurrent, limits.maxQueued);
        this.#speculateUpTo = limits.speculateUpTo;
        this.#what = what;
        this.#expertModel = expertModel;
        this.#kvBytesPerCell = [kvBytesPerCell(expertModel.info()), amateurModel ? kvBytesPerCell(amateurModel.info()) : 0];
        this.#expert = expert;
        this.#amateur = amateur;
        this.#nVocab = expertModel.info().nVocab;
        this.#contextSize = expert.info().contextSize;
    }

    get disposed(): boolean {
        return this.#disposed;
    }

    /** The context window in tokens, as llama.cpp allocated it (it may pad the requested size). */
    get contextSize(): number {
        return this.#contextSize;
    }

    assertAlive(): void {
        if (this.#disposed) throw new DisposedError(this.#what);
    }

    tokenize(text: string, addSpecial = true, parseSpecial = false): number[] {
        this.assertAlive();
        if (typeof text !== 'string') throw new InvalidArgumentError(`Expected a string for text but received ${typeof text}`);
        return Array.from(this.#expertModel.tokenize(text, addSpecial, parseSpecial));
    }

    detokenize(tokens: readonly number[] | Int32Array, renderSpecial = false): string {
        this.assertAlive();
        return this.#expertModel.detokenize(this.checkTokens('tokens', tokens), renderSpecial);
    }

    applyChatTemplate(messages: readonly ChatMessage[], addAssistant: boolean): string {
        this.assertAlive();
        if (!Array.isArray(messages) || messages.length === 0) throw new InvalidArgumentError('Expected a non-empty array of chat messages');
        const clean = messages.map((m: unknown, i) => {
            const o = m as { role?: unknown; content?: unknown } | null;
            if (typeof o !== 'object' || o === null || typeof o.role !== 'string' || typeof o.content !== 'string') {
                throw new InvalidArgumentError(`Expected messages[${i}] to be { role: string, content: string }`);
            }
            return { role: o.role, content: o.content };
        });
        const templated = this.#expertModel.applyChatTemplate(clean, addAssistant);
        if (templated !== null) return templated;
        return clean.map((m) => `${m.role}: ${m.content}\n`).join('') + (addAssistant ? 'assistant:' : '');
    }

    /** Token ids checked against the vocabulary (InvalidArgumentError otherwise), as an Int32Array. */
    checkTokens(name: string, tokens: unknown): Int32Array {
        if (!(tokens instanceof Int32Array) && !Array.isArray(tokens)) {
            throw new InvalidArgumentError(`Expected a string, an array of token ids or an Int32Array for ${name} but received ${typeof tokens}`);
        }
        for (const t of tokens as ArrayLike<unknown>[] & number[]) {
            if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t >= this.#nVocab) {
                throw new InvalidArgumentError(`Expected token ids between 0 and ${this.#nVocab - 1} for ${name} but received ${String(t)}`);
            }
        }
        return tokens instanceof Int32Array ? tokens : Int32Array.from(tokens as number[]);
    }

    #promptTokens(prompt: Prompt): Int32Array {
        const tokens = typeof prompt === 'string' ? this.#expertModel.tokenize(prompt, true, false) : this.checkTokens('prompt', prompt);
        if (tokens.length === 0) throw new InvalidArgumentError('Expected a non-empty prompt but received one that tokenizes to no tokens');
        if (tokens.length >= this.#contextSize) {
            throw new InvalidArgumentError(
                `Expected a prompt shorter than contextSize (${this.#contextSize} tokens) but received one of ${tokens.length} tokens`,
            );
        }
        return tokens;
    }

    generate(prompt: Prompt, options?: GenerateOptions): Promise<GenerationResult> {
        return this.#run(prompt, options, undefined);
    }

    stream(prompt: Prompt, options?: GenerateOptions): GenerationStream {
        const queue: GenerationChunk[] = [];
        let wake: (() => void) | undefined;
        let finished = false;
        let failure: unknown;
        const notify = () => {
            wake?.();
            wake = undefined;
        };
        const stopper = new AbortController();
        const userSignal = (options as { signal?: unknown } | undefined)?.signal;
        const signal = userSignal instanceof AbortSignal ? AbortSignal.any([userSignal, stopper.signal]) : stopper.signal;
        const result = this.#run(prompt, { ...options, signal } as GenerateOptions, (chunk) => {
            queue.push(chunk);
            notify();
        }).then(
            (r) => {
                finished = true;
                notify();
                return r;
            },
            (e: unknown) => {
                finished = true;
                failure = e;
                notify();
                throw e;
            },
        );
        result.catch(() => {});
        return {
            result,
            async *[Symbol.asyncIterator]() {
                try {
                    for (;;) {
                        if (queue.length > 0) {
                            yield queue.shift()!;
                            continue;
                        }
                        if (finished) {
                            if (failure !== undefined) throw failure;
                            return;
                        }
                        await new Promise<void>((resolve) => (wake = resolve));
                    }
                } finally {
                    if (!finished) stopper.abort();  // the consumer stopped early: end the generation
                }
            },
        };
    }

    async #run(prompt: Prompt, rawOptions: GenerateOptions | undefined, onChunk: ((c: GenerationChunk) => void) | undefined): Promise<GenerationResult> {
        const stack = new Error().stack;
        this.assertAlive();
        const opts: ResolvedGenerateOptions = resolveGenerateOptions(rawOptions);
        if (!this.#amateur && pairStrategies.includes(opts.strategy)) {
            throw new InvalidArgumentError(`Strategy '${opts.strategy}' needs an expert/amateur pair: load one with loadPair()`);
        }
        const tokens = this.#promptTokens(prompt);
        const partial = { text: '', tokens: [] as number[] };
        if (opts.signal?.aborted) throw new GenerationAbortedError(partial, opts.signal.reason);

        // beam / dsbd decode many sequences themselves and run alone; the rest run concurrently, batched natively
        const alone = opts.strategy === 'beam' || opts.strategy === 'dsbd';
        return this.#lanes.run(alone, async () => {
            this.assertAlive();
            if (opts.signal?.aborted) throw new GenerationAbortedError(partial, opts.signal.reason);
            let handle: ReturnType<NativeContext['generate']>;
            try {
                handle = this.#expert.generate(
                    {
                        strategy: opts.strategy,
                        prompt: tokens,
                        maxTokens: opts.maxTokens,
                        ...(opts.strategy !== 'greedy' ? { temperature: opts.temperature, topK: opts.topK, topP: opts.topP, minP: opts.minP } : {}),
                        ...(opts.strategy === 'speculative' || opts.strategy === 'scd'
                            ? {
                                  draftTokens: opts.draftTokens,
                                  draftConfidence: opts.draftConfidence,
                                  adaptiveDraft: opts.adaptiveDraft,
                                  ...(this.#speculateUpTo !== Infinity ? { speculateUpTo: this.#speculateUpTo } : {}),
                              }
                            : {}),
                        ...(opts.strategy === 'dsbd'
                            ? {
                                  draftTokens: opts.draftTokens,
                                  draftBeams: opts.draftBeams,
                                  widthThreshold: opts.widthThreshold,
                                  minWidth: opts.minWidth,
                                  singleBeam: opts.singleBeam,
                                  select: opts.select,
                              }
                            : {}),
                        ...(opts.strategy === 'contrastive' || opts.strategy === 'scd'
                            ? { alpha: opts.alpha, beta: opts.beta, amateurTemperature: opts.amateurTemperature, amateurSeesPrompt: opts.amateurSeesPrompt }
                            : {}),
                        ...(opts.strategy === 'scd' ? { bonus: opts.bonus } : {}),
                        ...(opts.strategy === 'beam' || opts.strategy === 'dsbd'
                            ? { beams: opts.beams, sample: opts.sample, lengthPenalty: opts.lengthPenalty, earlyStopping: opts.earlyStopping === 'never' ? 'never' : opts.earlyStopping ? 'true' : 'false' }
                            : {}),
                        seed: opts.seed,
                        stop: opts.stop,
                    },
                    this.#amateur,
                    (text, toks) => {
                        partial.text += text;
                        for (const t of toks) partial.tokens.push(t);
                        onChunk?.({ text, tokens: Array.from(toks) });
                    },
                );
            } catch (e) {
                throw fromNative(e, stack);
            }
            const onAbort = () => handle.cancel();
            opts.signal?.addEventListener('abort', onAbort, { once: true });
            const active = { cancel: () => handle.cancel(), settled: handle.promise.catch(() => {}) };
            this.#active.add(active);
            let r: NativeGenerateResult;
            try {
                r = await handle.promise;
            } catch (e) {
                const err = fromNative(e, stack);
                if (err.code === ErrorCode.ABORTED) {
                    if (this.#disposed) throw new DisposedError(this.#what);
                    throw new GenerationAbortedError(partial, opts.signal?.reason);
                }
                throw err;
            } finally {
                opts.signal?.removeEventListener('abort', onAbort);
                this.#active.delete(active);
            }
            const result: GenerationResult = { text: r.text, tokens: Array.from(r.tokens), finishReason: r.finishReason, stats: { ...r.stats } };
            if (r.stats.peakKvCells !== undefined) {
                // the amateur never holds more cells than the expert: its share is counted at the expert's count (an upper bound)
                result.stats.peakKvBytes = r.stats.peakKvCells * (this.#kvBytesPerCell[0] + (r.stats.amateurPasses > 0 ? this.#kvBytesPerCell[1] : 0));
            }
            if (r.beams) {
                result.beams = r.beams.map((b) => ({ text: b.text, tokens: Array.from(b.tokens), logProb: b.logProb, score: b.score, finished: b.finished }));
            }
            return result;
        });
    }

    /**
     * Runs `job` alone, after every earlier generation and sequence operation on this model/pair (FIFO),
     * so no other native operation drives the contexts meanwhile.
     */
    enqueue<T>(job: () => Promise<T> | T): Promise<T> {
        return this.#lanes.run(true, job);
    }

    /** Generations running and waiting (the scheduler's load). */
    get load(): { running: number; queued: number } {
        return this.#lanes.load;
    }

    /** The native expert and amateur contexts (sequences and forests live in them). */
    context(which: 'expert' | 'amateur'): NativeContext | null {
        return which === 'expert' ? this.#expert : this.#amateur;
    }

    get nVocab(): number {
        return this.#nVocab;
    }

    /** Ends any in-flight generation, waits for it, then frees the contexts. Idempotent. */
    async dispose(free: () => void): Promise<void> {
        if (this.#disposed) return;
        this.#disposed = true;
        const active = [...this.#active];
        for (const a of active) a.cancel();
        await Promise.all(active.map((a) => a.settled));
        await this.#lanes.idle();  // sequence operations in flight finish first
        try {
            this.#expert.dispose();
            this.#amateur?.dispose();
            free();
        } catch (e) {
            throw e instanceof LlamaDuetError ? e : fromNative(e);
        }
    }

    /** @internal test hook: logits after `tokens` via a separate single-token evaluation path. */
    evalLogits(tokens: readonly number[] | Int32Array, keep: boolean, which: 'expert' | 'amateur' = 'expert'): Float32Array {
        this.assertAlive();
        const ctx = which === 'expert' ? this.#expert : this.#amateur;
        if (!ctx) throw new InvalidArgumentError('no amateur context');
        return ctx._evalLogits(this.checkTokens('tokens', tokens), keep);
    }
}

/**
 * The JS half of the scheduler: jobs in FIFO order, each either alone (sequence operations, beam, dsbd)
 * or shared (generations batched natively, up to `maxConcurrent` at once). A job never overtakes an
 * earlier one, so nothing starves; more than `maxQueued` waiting jobs is a QueueFullError.
 * @internal
 */
export class Lanes {
    readonly #waiting: { alone: boolean; start: () => void }[] = [];
    #running = 0;
    #aloneRunning = false;
    #idle: (() => void)[] = [];

    constructor(
        readonly maxConcurrent: number,
        readonly maxQueued: number,
    ) {}

    get load(): { running: number; queued: number } {
        return { running: this.#running, queued: this.#waiting.length };
    }

    async run<T>(alone: boolean, job: () => Promise<T> | T): Promise<T> {
        if (this.#waiting.length >= this.maxQueued && !(this.#waiting.length === 0 && this.#fits(alone))) {
            throw new QueueFullError(this.maxQueued, this.#running);
        }
        await new Promise<void>((start) => {
            this.#waiting.push({ alone, start });
            this.#pump();
        });
        try {
            return await job();
        } finally {
            this.#running--;
            if (alone) this.#aloneRunning = false;
            this.#pump();
        }
    }

    /** Resolves once nothing runs or waits. */
    idle(): Promise<void> {
        if (this.#running === 0 && this.#waiting.length === 0) return Promise.resolve();
        return new Promise((r) => this.#idle.push(r));
    }

    /** Whether a job of this kind may start beside the running ones. */
    #fits(alone: boolean): boolean {
        return !this.#aloneRunning && (alone ? this.#running === 0 : this.#running < this.maxConcurrent);
    }

    #pump(): void {
        while (this.#waiting.length > 0) {
            const head = this.#waiting[0]!;
            if (!this.#fits(head.alone)) break;
            this.#waiting.shift();
            this.#running++;
            if (head.alone) this.#aloneRunning = true;
            head.start();
        }
        if (this.#running === 0 && this.#waiting.length === 0) {
            for (const r of this.#idle.splice(0)) r();
        }
    }
}
