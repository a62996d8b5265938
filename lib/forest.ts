/**
 * KV sequences and `verifyForest()`: the low-level primitive for custom schedulers (issue 3,
 * ALGORITHMS.md §2 and §D "forest layout"). A `Sequence` is a token prefix held in a context's unified
 * KV cache; a forest is a set of draft trees hanging on sequences, scored by the expert in one batched
 * forward pass with tree attention; `commit()` keeps exactly one accepted path per sequence.
 */
import { DisposedError, fromNative, InvalidArgumentError } from './errors.js';
import type { Decoder } from './Decoder.js';
import type { NativeContext, NativeForestResult } from './native.js';
import * as is from './validation/is.js';

/** Which context of a pair a sequence lives in. */
export type SequenceModel = 'expert' | 'amateur';

/**
 * A token prefix in a context's KV cache. Create one with `createSequence()`; several sequences
 * share one context (its `sequences` load option bounds how many, draft branches included).
 * Every operation is queued behind the model's running generations and other operations.
 */
export class Sequence {
    readonly #decoder: Decoder;
    readonly #native: NativeContext;
    readonly #id: number;
    /** Which model's context holds this sequence. */
    readonly model: SequenceModel;
    #tokens: number[];
    #disposed = false;

    /** @internal use createSequence() */
    constructor(decoder: Decoder, native: NativeContext, model: SequenceModel, id: number, tokens: number[]) {
        this.#decoder = decoder;
        this.#native = native;
        this.model = model;
        this.#id = id;
        this.#tokens = tokens;
    }

    /** Tokens in the sequence (committed and appended). */
    get length(): number {
        return this.#tokens.length;
    }

    /** A copy of the sequence's tokens. */
    get tokens(): number[] {
        return this.#tokens.slice();
    }

    get disposed(): boolean {
        return this.#disposed || this.#decoder.disposed;
    }

    /** Appends tokens (one batched decode; the expert's logits after the last token are kept natively). */
    async append(tokens: readonly number[] | Int32Array): Promise<void> {
        const toks = this.#decoder.checkTokens('tokens', tokens);
        if (this.#tokens.length + toks.length > this.#decoder.contextSize) {
            throw new InvalidArgumentError(
                `Expected at most ${this.#decoder.contextSize - this.#tokens.length} tokens for append (contextSize ${this.#decoder.contextSize}) but received ${toks.length}`,
            );
        }
        const stack = new Error().stack;
        await this.#op(async () => {
            await this.#native.seqAppend(this.#id, toks);
            for (const t of toks) this.#tokens.push(t);
        }, stack);
    }

    /** A new sequence with the same tokens; the KV cells of the prefix are shared, not copied. */
    async fork(): Promise<Sequence> {
        const stack = new Error().stack;
        return this.#op(() => new Sequence(this.#decoder, this.#native, this.model, this.#native.seqFork(this.#id), this.#tokens.slice()), stack);
    }

    /** Keeps the first `length` tokens. The new last token is re-scored on the next verification. */
    async trim(length: number): Promise<void> {
        is.integer('length', length, 0, this.#tokens.length);
        const stack = new Error().stack;
        await this.#op(() => {
            this.#native.seqTrim(this.#id, length);
            this.#tokens.length = length;
        }, stack);
    }

    /** Frees the sequence's KV cells (those not shared with a fork) and its slot. Idempotent. */
    async dispose(): Promise<void> {
        if (this.#disposed || this.#decoder.disposed) {
            this.#disposed = true;
            return;
        }
        this.#disposed = true;
        await this.#decoder.enqueue(() => {
            if (!this.#decoder.disposed) this.#native.seqDispose(this.#id);
        });
    }

    [Symbol.asyncDispose](): Promise<void> {
        return this.dispose();
    }

    /** @internal */
    get _id(): number {
        return this.#id;
    }

    /** @internal */
    _belongsTo(native: NativeContext): boolean {
        return this.#native === native;
    }

    /** @internal the tokens a commit added */
    _committed(tokens: readonly number[]): void {
        for (const t of tokens) this.#tokens.push(t);
    }

    #assertAlive(): void {
        this.#decoder.assertAlive();
        if (this.#disposed) throw new DisposedError('sequence');
    }

    async #op<T>(job: () => Promise<T> | T, stack: string | undefined): Promise<T> {
        this.#assertAlive();
        return this.#decoder.enqueue(async () => {
            this.#assertAlive();
            try {
                return await job();
            } catch (e) {
                throw fromNative(e, stack);
            }
        });
    }
}

/** A draft node: its token and its parent (−1 for a root, else the index of an earlier node of the same tree). */
export interface DraftNode {
    token: number;
    parent: number;
    /**
     * The distribution the token was drawn from (required by rule `'sample'`): a dense array over the
     * vocabulary, or sparse `{ tokens, probs }` (mass 0 elsewhere). i.i.d. siblings should pass the
     * same object: it is converted once.
     */
    q?: Float32Array | readonly number[] | { tokens: readonly number[]; probs: readonly number[] };
}

/** A draft tree hanging on a sequence: its roots continue that sequence. */
export interface DraftTree {
    sequence: Sequence;
    nodes: readonly DraftNode[];
}

/** How each tree's accepted path and next token are chosen. */
export type VerifyRule = 'greedy' | 'sample' | 'target-only' | 'none';

export interface VerifyOptions {
    /**
     * `'greedy'` (default): descend while a child equals the expert's argmax; next = that argmax.
     * `'sample'`: SpecInfer multi-step speculative sampling, lossless when every node's children are
     * independent draws from their `q`. `'target-only'`: for deterministic drafts (top-k, greedy
     * chains): exact sibling walk that never looks at q. `'none'`: scores only.
     */
    rule?: VerifyRule;
    /** The target's warp for `'sample'` / `'target-only'` (temperature → top-k → top-p → min-p). */
    temperature?: number;
    topK?: number;
    topP?: number;
    minP?: number;
    /**
     * RNG seed of the acceptance uniforms (random when omitted). With a fixed seed the i-th `verifyForest()` call
     * on a model/pair draws from a stream derived from (seed, i): a sequence of calls is reproducible from a fresh
     * load, and successive calls never re-use the same uniforms.
     */
    seed?: number;
    /** Return the k most likely next tokens (with log-probs) after each node and after the sequence. */
    topLogprobs?: number;
}

export interface TopLogprob {
    token: number;
    logprob: number;
}

export interface VerifiedNode {
    token: number;
    parent: number;
    /** The expert's log-probability of `token` after its parent path (temperature 1, no warp). */
    logprob: number;
    /** The expert's greedy next token after this node. */
    argmax: number;
    /** `topLogprobs` most likely next tokens after this node. */
    top?: TopLogprob[];
}

export interface VerifiedTree {
    sequence: Sequence;
    nodes: VerifiedNode[];
    /** The expert's greedy next token after the sequence itself (and its top log-probs). */
    root: { argmax: number; top?: TopLogprob[] };
    /** Node indices of the accepted path, root first (empty for rule `'none'`). */
    accepted: number[];
    /** The tokens of the accepted path. */
    acceptedTokens: number[];
    /** The correction / bonus token drawn by the rule (`null` for `'none'`). */
    next: number | null;
}

export interface ForestVerification {
    trees: VerifiedTree[];
    /** Tokens decoded in the batched pass (nodes + tokens a sequence still had pending). */
    batchTokens: number;
    /** Wall time of the pass and the rules. */
    ms: number;
    /** Frees the draft cells of every tree not committed yet (commit and sequence operations do it too). */
    release(): Promise<void>;
}

interface TreeHandle {
    forest: number;
    index: number;
    native: NativeContext;
}
const handles = new WeakMap<VerifiedTree, TreeHandle>();

/** Opens a sequence holding `tokens` in the given context. @internal */
export async function createSequence(decoder: Decoder, model: SequenceModel, tokens: readonly number[] | Int32Array): Promise<Sequence> {
    decoder.assertAlive();
    const native = decoder.context(model);
    if (!native) throw new InvalidArgumentError(`This model has no ${model} context: amateur sequences need a pair`);
    const toks = decoder.checkTokens('tokens', tokens);
    if (toks.length > decoder.contextSize) {
        throw new InvalidArgumentError(`Expected at most ${decoder.contextSize} tokens (contextSize) but received ${toks.length}`);
    }
    const stack = new Error().stack;
    return decoder.enqueue(async () => {
        decoder.assertAlive();
        let id: number;
        try {
            id = native.seqCreate();
        } catch (e) {
            throw fromNative(e, stack);
        }
        try {
            if (toks.length > 0) await native.seqAppend(id, toks);
        } catch (e) {
            native.seqDispose(id);
            throw fromNative(e, stack);
        }
        return new Sequence(decoder, native, model, id, Array.from(toks));
    });
}

/**
 * The dense q of a node, converted and checked once per verifyForest() call for siblings that pass the same
 * object (`cache` lives for one call only: a caller that reuses and changes an array between calls gets its
 * new values, not a stale conversion).
 */
function denseQ(name: string, q: NonNullable<DraftNode['q']>, nVocab: number, cache: Map<object, Float32Array>, copy: boolean): Float32Array {
    const cached = cache.get(q);
    if (cached) return cached;
    let dense: Float32Array;
    if (q instanceof Float32Array || Array.isArray(q)) {
        const arr = q as ArrayLike<number>;
        if (arr.length !== nVocab) throw is.invalid(`${name}.q`, `${nVocab} probabilities (the vocabulary size)`, q);
        dense = q instanceof Float32Array && !copy ? q : Float32Array.from(arr); // 'sample' sends a copy: the values checked here are the ones the queued call sends
    } else if (is.isPlainObject(q) && Array.isArray(q.tokens) && Array.isArray(q.probs)) {
        if (q.tokens.length !== q.probs.length) throw new InvalidArgumentError(`Expected ${name}.q.tokens and ${name}.q.probs of the same length`);
        dense = new Float32Array(nVocab);
        q.tokens.forEach((t, i) => {
            is.integer(`${name}.q.tokens[${i}]`, t, 0, nVocab - 1);
            dense[t] = q.probs[i]!;
        });
    } else {
        throw is.invalid(`${name}.q`, 'a Float32Array, an array of probabilities or { tokens, probs }', q);
    }
    let sum = 0;
    for (let i = 0; i < dense.length; i++) {
        const v = dense[i]!;
        if (!Number.isFinite(v) || v < 0) throw is.invalid(`${name}.q[${i}]`, 'a finite probability ≥ 0', v);
        sum += v;
    }
    if (Math.abs(sum - 1) > 1e-3) throw new InvalidArgumentError(`Expected ${name}.q to sum to 1 (±1e-3) but it sums to ${sum}`);
    cache.set(q, dense);
    return dense;
}

const rules: readonly VerifyRule[] = ['greedy', 'sample', 'target-only', 'none'];
const verifyKeys = ['rule', 'temperature', 'topK', 'topP', 'minP', 'seed', 'topLogprobs'];

/** @internal DecoderHandle.verifyForest */
export async function verifyForest(decoder: Decoder, trees: readonly DraftTree[], options: VerifyOptions = {}): Promise<ForestVerification> {
    decoder.assertAlive();
    const native = decoder.context('expert')!;
    const nVocab = decoder.nVocab;
    const ctxSize = decoder.contextSize;
    const o = is.options('verifyForest() options', options);
    is.knownKeys('verifyForest()', o, verifyKeys);
    const rule = o['rule'] === undefined ? 'greedy' : is.oneOf('rule', o['rule'], rules);
    const temperature = o['temperature'] === undefined ? 1 : is.number('temperature', o['temperature'], 0, 1e6);
    if ((rule === 'sample' || rule === 'target-only') && temperature === 0) {
        throw new InvalidArgumentError(`Expected temperature > 0 for rule '${rule}' but received 0 (use rule 'greedy')`);
    }
    const topK = o['topK'] === undefined ? 0 : is.integer('topK', o['topK'], 0, 2 ** 30);
    const topP = o['topP'] === undefined ? 1 : is.number('topP', o['topP'], 0, 1);
    const minP = o['minP'] === undefined ? 0 : is.number('minP', o['minP'], 0, 1);
    const seed = o['seed'] === undefined ? Math.floor(Math.random() * 2 ** 53) : is.integer('seed', o['seed'], 0, Number.MAX_SAFE_INTEGER);
    const topLogprobs = o['topLogprobs'] === undefined ? 0 : is.integer('topLogprobs', o['topLogprobs'], 0, 1024);
    if (!Array.isArray(trees)) throw is.invalid('trees', 'an array of { sequence, nodes }', trees);

    let totalNodes = 0;
    const qCache = new Map<object, Float32Array>();
    const nativeTrees = trees.map((tree: unknown, ti) => {
        const where = `trees[${ti}]`;
        if (!is.isPlainObject(tree)) throw is.invalid(where, 'an object { sequence, nodes }', tree);
        const seq = tree['sequence'];
        if (!(seq instanceof Sequence)) throw is.invalid(`${where}.sequence`, 'a Sequence', seq);
        if (seq.disposed) throw new DisposedError('sequence');
        if (!seq._belongsTo(native)) {
            throw new InvalidArgumentError(`Expected ${where}.sequence to belong to this model's expert context but it belongs to another context`);
        }
        if (seq.length === 0) throw new InvalidArgumentError(`Expected ${where}.sequence to hold at least one token (roots need a preceding token)`);
        const nodes = tree['nodes'];
        if (!Array.isArray(nodes)) throw is.invalid(`${where}.nodes`, 'an array of { token, parent }', nodes);
        const tokens = new Int32Array(nodes.length);
        const parents = new Int32Array(nodes.length);
        const depth = new Int32Array(nodes.length);
        const q: (Float32Array | null)[] = [];
        nodes.forEach((node: unknown, i) => {
            const at = `${where}.nodes[${i}]`;
            if (!is.isPlainObject(node)) throw is.invalid(at, 'an object { token, parent }', node);
            tokens[i] = is.integer(`${at}.token`, node['token'], 0, nVocab - 1);
            const parent = node['parent'];
            if (typeof parent !== 'number' || !Number.isInteger(parent) || parent < -1 || parent >= i) {
                throw is.invalid(`${at}.parent`, i === 0 ? '-1 (a root)' : `-1 (a root) or the index of an earlier node of the same tree (0..${i - 1})`, parent);
            }
            parents[i] = parent;
            depth[i] = parent < 0 ? 1 : depth[parent]! + 1;
            if (seq.length + depth[i]! > ctxSize) {
                throw new InvalidArgumentError(`${at} would sit at position ${seq.length + depth[i]! - 1}, past contextSize ${ctxSize}`);
            }
            const nodeQ = node['q'];
            if (nodeQ === undefined) {
                if (rule === 'sample') throw new InvalidArgumentError(`Expected ${at}.q (the distribution the token was drawn from): rule 'sample' needs it`);
                q.push(null);
            } else {
                const dense = denseQ(at, nodeQ as NonNullable<DraftNode['q']>, nVocab, qCache, rule === 'sample');
                if (rule === 'sample' && !(dense[tokens[i]!]! > 0)) {
                    throw new InvalidArgumentError(`Expected ${at}.q to give its own token ${tokens[i]} a probability > 0 (it was drawn from q)`);
                }
                q.push(dense);
            }
        });
        totalNodes += nodes.length;
        return { seq: seq._id, tokens, parents, q: rule === 'sample' ? q : undefined };
    });
    if (totalNodes > ctxSize) {
        throw new InvalidArgumentError(`Expected at most ${ctxSize} draft nodes in all (contextSize) but received ${totalNodes}`);
    }

    const stack = new Error().stack;
    return decoder.enqueue(async () => {
        decoder.assertAlive();
        for (const t of trees) if (t.sequence.disposed) throw new DisposedError('sequence');
        let r: NativeForestResult;
        try {
            r = await native.verifyForest(nativeTrees, { rule, temperature, topK, topP, minP, seed, topLogprobs });
        } catch (e) {
            throw fromNative(e, stack);
        }
        const toTop = (t: { tokens: Int32Array; logprobs: Float32Array }) => Array.from(t.tokens, (token, i) => ({ token, logprob: t.logprobs[i]! }));
        const out: VerifiedTree[] = r.trees.map((t, ti) => {
            const src = trees[ti]!;
            const nodes: VerifiedNode[] = src.nodes.map((n: DraftNode, i: number) => ({
                token: n.token,
                parent: n.parent,
                logprob: t.logprobs[i]!,
                argmax: t.argmax[i]!,
                ...(topLogprobs > 0 ? { top: toTop(t.top[i]!) } : {}),
            }));
            const accepted = Array.from(t.path);
            const verified: VerifiedTree = {
                sequence: src.sequence,
                nodes,
                root: { argmax: t.rootArgmax, ...(topLogprobs > 0 ? { top: toTop(t.rootTop) } : {}) },
                accepted,
                acceptedTokens: accepted.map((i) => src.nodes[i]!.token),
                next: t.next < 0 ? null : t.next,
            };
            handles.set(verified, { forest: r.id, index: ti, native });
            return verified;
        });
        return {
            trees: out,
            batchTokens: r.batchTokens,
            ms: r.ms,
            release: () =>
                decoder.enqueue(() => {
                    if (!decoder.disposed) native.releaseForest(r.id);
                }),
        };
    });
}

/** @internal DecoderHandle.commit */
export async function commit(decoder: Decoder, tree: VerifiedTree, path?: readonly number[], next?: number | null): Promise<void> {
    decoder.assertAlive();
    const h = handles.get(tree);
    if (!h || h.native !== decoder.context('expert')) throw is.invalid('tree', 'a tree returned by this model’s verifyForest()', tree);
    const p = path ?? tree.accepted;
    if (!Array.isArray(p)) throw is.invalid('path', 'an array of node indices', p);
    p.forEach((node, i) => {
        const want = i === 0 ? -1 : p[i - 1];
        if (typeof node !== 'number' || !Number.isInteger(node) || node < 0 || node >= tree.nodes.length || tree.nodes[node]!.parent !== want) {
            throw is.invalid(`path[${i}]`, `a child of ${i === 0 ? 'the root (a node with parent -1)' : `node ${want}`}`, node);
        }
    });
    const n = next === undefined ? tree.next : next;
    if (n !== null) is.integer('next', n, 0, decoder.nVocab - 1);
    if (tree.sequence.length + p.length + (n === null ? 0 : 1) > decoder.contextSize) {
        throw new InvalidArgumentError(`Committing ${p.length + (n === null ? 0 : 1)} tokens would pass contextSize ${decoder.contextSize}`);
    }
    const stack = new Error().stack;
    await decoder.enqueue(() => {
        decoder.assertAlive();
        if (tree.sequence.disposed) throw new DisposedError('sequence');
        try {
            h.native.commitTree(h.forest, h.index, Int32Array.from(p), n ?? -1);
        } catch (e) {
            throw fromNative(e, stack);
        }
        tree.sequence._committed([...p.map((i) => tree.nodes[i]!.token), ...(n === null ? [] : [n])]);
    });
}
