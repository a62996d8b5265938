/**
 * `loadModel()` → LlamaModel (one GGUF, greedy/sample) and `loadPair()` → ModelPair (expert +
 * amateur of the same vocabulary). Loading runs off the JS thread (mmap), reports progress and
 * honours an AbortSignal; every failure is a typed error.
 */
import { DisposedError, ErrorCode, fromNative, IncompatibleModelsError, InvalidArgumentError, NativeError } from './errors.js';
import { Decoder, type ChatMessage, type GenerationResult, type GenerationStream, type Prompt } from './Decoder.js';
import { addon, type NativeContext, type NativeModel, type NativeModelInfo } from './native.js';
import { resolveLoadOptions, type GenerateOptions, type LoadOptions, type ResolvedLoadOptions } from './options.js';
import * as is from './validation/is.js';
import { commit, createSequence, verifyForest } from './forest.js';
import type { DraftTree, ForestVerification, Sequence, SequenceModel, VerifiedTree, VerifyOptions } from './forest.js';

/** Facts about a loaded model. */
export interface ModelInfo extends Omit<NativeModelInfo, 'addBos' | 'vocabType'> {
    path: string;
}

function toInfo(path: string, n: NativeModelInfo): ModelInfo {
    const { addBos: _addBos, vocabType: _vocabType, ...info } = n;
    return { path, ...info };
}

async function loadNative(path: string, opts: ResolvedLoadOptions, onProgress?: (f: number) => void): Promise<NativeModel> {
    const stack = new Error().stack;
    if (opts.signal?.aborted) throw new NativeError(ErrorCode.ABORTED, 'model load aborted');
    let handle: ReturnType<ReturnType<typeof addon>['loadModel']>;
    try {
        handle = addon().loadModel(path, { gpuLayers: opts.gpuLayers, useMmap: opts.useMmap }, onProgress);
    } catch (e) {
        throw fromNative(e, stack, path);
    }
    const onAbort = () => handle.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
        return await handle.promise;
    } catch (e) {
        throw fromNative(e, stack, path);
    } finally {
        opts.signal?.removeEventListener('abort', onAbort);
    }
}

function createContext(model: NativeModel, opts: ResolvedLoadOptions, shareThreadsWith?: NativeContext): NativeContext {
    try {
        return new (addon().Context)(model, {
            ...(shareThreadsWith ? { shareThreadsWith } : {}),
            contextSize: opts.contextSize,
            batchSize: opts.batchSize,
            sequences: opts.sequences,
            threads: opts.threads,
            flashAttention: opts.flashAttention === 'auto' ? -1 : opts.flashAttention === 'on' ? 1 : 0,
            promptCache: opts.promptCache,
        });
    } catch (e) {
        throw fromNative(e);
    }
}

/** What LlamaModel and ModelPair share: a Decoder behind tokenize/generate/stream/dispose. */
abstract class DecoderHandle {
    readonly #decoder: Decoder;

    protected constructor(decoder: Decoder) {
        this.#decoder = decoder;
    }

    get disposed(): boolean {
        return this.#decoder.disposed;
    }

    /** The context window in tokens as allocated (llama.cpp may pad the requested `contextSize`). */
    get contextSize(): number {
        return this.#decoder.contextSize;
    }

    /** Text → token ids (BOS added when the model asks for it, unless `addSpecial` is false). */
    tokenize(text: string, options: { addSpecial?: boolean; parseSpecial?: boolean } = {}): number[] {
        return this.#decoder.tokenize(text, options.addSpecial ?? true, options.parseSpecial ?? false);
    }

    /** Token ids → text. */
    detokenize(tokens: readonly number[] | Int32Array, options: { renderSpecial?: boolean } = {}): string {
        return this.#decoder.detokenize(tokens, options.renderSpecial ?? false);
    }

    /**
     * Chat messages → the prompt text, with the GGUF's `tokenizer.chat_template` as llama.cpp's
     * `llama_chat_apply_template` knows it (llama-2, chatml, llama-3, gemma, phi-3, ... by pattern). Without a
     * template, or with one llama.cpp does not recognise, the fallback is one `role: content` line per message
     * and, with `addAssistant` (the default), a final `assistant:`.
     */
    applyChatTemplate(messages: readonly ChatMessage[], options: { addAssistant?: boolean } = {}): string {
        return this.#decoder.applyChatTemplate(messages, options.addAssistant ?? true);
    }

    /**
     * Generates a continuation of `prompt` (text, or token ids). Concurrent calls share the forward passes
     * (up to `maxConcurrent` at once, see LoadOptions); each gets exactly what it would get alone.
     */
    generate(prompt: Prompt, options?: GenerateOptions): Promise<GenerationResult> {
        return this.#decoder.generate(prompt, options);
    }

    /** Like generate(), as an async iterator of `{ text, tokens }` chunks; `.result` gives the final result. */
    stream(prompt: Prompt, options?: GenerateOptions): GenerationStream {
        return this.#decoder.stream(prompt, options);
    }

    /**
     * Opens a KV sequence holding `tokens` (decoded in one batch) in the expert's context, or the
     * amateur's with `{ model: 'amateur' }` (pairs only). Sequences are what `verifyForest()` drafts on.
     */
    createSequence(tokens: readonly number[] | Int32Array, options: { model?: SequenceModel } = {}): Promise<Sequence> {
        const model = options.model === undefined ? 'expert' : is.oneOf('model', options.model, ['expert', 'amateur'] as const);
        return createSequence(this.#decoder, model, tokens);
    }

    /**
     * Scores every node of every draft tree with the expert in one batched forward pass (tree
     * attention in the unified KV cache) and applies `options.rule` per tree. The draft cells stay in
     * the KV until `commit()` keeps one path per sequence (or `release()` drops them).
     */
    verifyForest(trees: readonly DraftTree[], options?: VerifyOptions): Promise<ForestVerification> {
        return verifyForest(this.#decoder, trees, options);
    }

    /**
     * Keeps exactly `path` (default: the rule's accepted path) of a verified tree in its sequence, then
     * `next` (default: the rule's next token; `null` for none) as its next token, and frees every other
     * draft cell on that sequence.
     */
    commit(tree: VerifiedTree, path?: readonly number[], next?: number | null): Promise<void> {
        return commit(this.#decoder, tree, path, next);
    }

    /** Ends any running generation (it rejects with DisposedError) and frees native memory. */
    dispose(): Promise<void> {
        return this.#decoder.dispose(() => this.freeNative());
    }

    [Symbol.asyncDispose](): Promise<void> {
        return this.dispose();
    }

    /** @internal */
    get _decoder(): Decoder {
        return this.#decoder;
    }

    protected abstract freeNative(): void;
}

/** A single GGUF model with its context: plain `greedy` / `sample` generation. */
export class LlamaModel extends DecoderHandle {
    readonly info: ModelInfo;
    readonly #native: NativeModel;

    /** @internal use loadModel() */
    constructor(info: ModelInfo, native: NativeModel, decoder: Decoder) {
        super(decoder);
        this.info = info;
        this.#native = native;
    }

    protected freeNative(): void {
        this.#native.dispose();
    }
}

/**
 * Loads a GGUF model and creates its context.
 * @throws {InvalidArgumentError} bad options
 * @throws {ModelLoadError} codes ERR_LLAMA_DUET_MODEL_NOT_FOUND, _NOT_GGUF, _CORRUPT_GGUF, _UNSUPPORTED_ARCHITECTURE, _MODEL_LOAD_FAILED
 */
export async function loadModel(path: string, options?: LoadOptions): Promise<LlamaModel> {
    is.string('path', path, { nonEmpty: true });
    const opts = resolveLoadOptions('loadModel()', options);
    const native = await loadNative(path, opts, opts.onProgress);
    try {
        const info = toInfo(path, native.info());
        const ctx = createContext(native, opts);
        return new LlamaModel(info, native, new Decoder('model', native, ctx, null, null, opts));
    } catch (e) {
        native.dispose();
        throw e;
    }
}

/** Options of `loadPair()`: the two paths plus the load options shared by both models. */
export interface PairOptions extends LoadOptions {
    /** Path of the expert (target, large) GGUF. */
    expert: string;
    /** Path of the amateur (draft, small) GGUF; same vocabulary as the expert. */
    amateur: string;
}

/** An expert/amateur pair with one context each: every strategy, including `'speculative'`. */
export class ModelPair extends DecoderHandle {
    readonly expert: ModelInfo;
    readonly amateur: ModelInfo;
    readonly #natives: [NativeModel, NativeModel];

    /** @internal use loadPair() */
    constructor(expert: ModelInfo, amateur: ModelInfo, natives: [NativeModel, NativeModel], decoder: Decoder) {
        super(decoder);
        this.expert = expert;
        this.amateur = amateur;
        this.#natives = natives;
    }

    protected freeNative(): void {
        this.#natives[0].dispose();
        this.#natives[1].dispose();
    }
}

/**
 * Loads an expert/amateur pair (both off the JS thread, in parallel) and checks that their
 * vocabularies are compatible: same type, same BOS/EOS, sizes within 128, identical token text.
 * @throws {IncompatibleModelsError} vocabularies differ
 */
export async function loadPair(options: PairOptions): Promise<ModelPair> {
    const o = is.options('loadPair() options', options);
    const expertPath = is.string('expert', o['expert'], { nonEmpty: true });
    const amateurPath = is.string('amateur', o['amateur'], { nonEmpty: true });
    const opts = resolveLoadOptions('loadPair()', o, ['expert', 'amateur']);
    const progress = [0, 0];
    const report = (i: number) => (f: number) => {
        progress[i] = f;
        opts.onProgress?.((progress[0]! + progress[1]!) / 2);
    };
    const settled = await Promise.allSettled([loadNative(expertPath, opts, report(0)), loadNative(amateurPath, opts, report(1))]);
    const loaded = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
        for (const m of loaded) m.dispose();
        throw failed.reason;
    }
    const [expert, amateur] = loaded as [NativeModel, NativeModel];
    const contexts: NativeContext[] = [];
    try {
        const reason = addon().checkCompatibility(expert, amateur);
        if (reason !== null) throw new IncompatibleModelsError(reason);
        contexts.push(createContext(expert, opts));
        contexts.push(createContext(amateur, opts, contexts[0]));
        return new ModelPair(
            toInfo(expertPath, expert.info()),
            toInfo(amateurPath, amateur.info()),
            [expert, amateur],
            new Decoder('model pair', expert, contexts[0]!, contexts[1]!, amateur, opts),
        );
    } catch (e) {
        for (const c of contexts) c.dispose();
        expert.dispose();
        amateur.dispose();
        throw e instanceof IncompatibleModelsError || e instanceof InvalidArgumentError || e instanceof DisposedError ? e : fromNative(e);
    }
}
