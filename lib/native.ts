/**
 * The typed contract of the native addon (style anchor: node-llama-cpp AddonTypes.ts). Nothing
 * else imports the raw addon; wrappers import these types and `addon` from here.
 * @internal
 */
import { loadAddon } from './binding.js';
import type { GenerationStats } from './Decoder.js';
import type { ResolvedGenerateOptions } from './options.js';

/** A token id of a model's vocabulary. */
export type Token = number & { readonly __token: never };

export interface NativeModelInfo {
    description: string;
    architecture: string;
    nVocab: number;
    nCtxTrain: number;
    nEmbd: number;
    nLayer: number;
    nHead: number;
    nHeadKv: number;
    sizeBytes: number;
    nParams: number;
    bos: number;
    eos: number;
    addBos: boolean;
    vocabType: number;
    /** Whether the file was memory-mapped (the `useMmap` load option, resolved). */
    mmap: boolean;
    /**
     * The CPU kernels in use (process-wide): `'native'` (a source build, compiled for the build machine),
     * `'generic'` (a source build without GGML_NATIVE, one baseline level), or the prebuild's CPU variant
     * chosen at load for this CPU (`'haswell'`, `'skylakex'`, `'icelake'`, `'zen4'`, `'sapphirerapids'`, ...).
     */
    cpuVariant: string;
}

export interface NativeModel {
    tokenize(text: string, addSpecial: boolean, parseSpecial: boolean): Int32Array;
    detokenize(tokens: Int32Array, renderSpecial: boolean): string;
    applyChatTemplate(messages: { role: string; content: string }[], addAssistant: boolean): string | null;
    info(): NativeModelInfo;
    dispose(): void;
}

export interface NativeContextOptions {
    contextSize: number;
    batchSize: number;
    sequences: number;
    threads: number;
    /** -1 auto, 0 off, 1 on */
    flashAttention: number;
    /** keep finished generations' cells for prompt-prefix reuse */
    promptCache: boolean;
    /** a pair's amateur context uses the expert context's CPU threadpool */
    shareThreadsWith?: NativeContext;
}

/** The resolved generate() options as they cross the boundary; options of other strategies are left out. */
export type NativeGenerateOptions = Pick<ResolvedGenerateOptions, 'strategy' | 'maxTokens' | 'seed'> &
    Partial<Omit<ResolvedGenerateOptions, 'strategy' | 'maxTokens' | 'seed' | 'signal' | 'earlyStopping'>> & {
        prompt: Int32Array;
        earlyStopping?: 'true' | 'false' | 'never';
    };

/** Stats cross the boundary exactly as the public GenerationStats documents them. */
export type NativeStats = GenerationStats;

export interface NativeGenerateResult {
    tokens: Int32Array;
    text: string;
    finishReason: 'eos' | 'length' | 'stop' | 'context';
    stats: NativeStats;
    beams?: { tokens: Int32Array; text: string; logProb: number; score: number; finished: boolean }[];
}

export interface NativeContext {
    generate(
        options: NativeGenerateOptions,
        amateur: NativeContext | null,
        onChunk: ((text: string, tokens: Int32Array) => void) | null,
    ): { promise: Promise<NativeGenerateResult>; cancel(): void };
    info(): { contextSize: number; batchSize: number; sequences: number; busy: boolean };
    dispose(): void;
    _evalLogits(tokens: Int32Array, keep: boolean): Float32Array;
    seqCreate(): number;
    seqAppend(seq: number, tokens: Int32Array): Promise<void>;
    seqFork(seq: number): number;
    seqTrim(seq: number, length: number): void;
    seqDispose(seq: number): void;
    seqTokens(seq: number): Int32Array;
    verifyForest(trees: NativeForestTree[], options: NativeVerifyOptions): Promise<NativeForestResult>;
    commitTree(forest: number, tree: number, path: Int32Array, next: number): void;
    releaseForest(forest: number): void;
    _kvCells(): { total: number; generation: number };
}

export interface NativeForestTree {
    seq: number;
    tokens: Int32Array;
    parents: Int32Array;
    /** per node, rule 'sample' only: the dense draft distribution (siblings may share one array) */
    q?: (Float32Array | null)[];
}

export interface NativeVerifyOptions {
    rule: 'greedy' | 'sample' | 'target-only' | 'none';
    temperature: number;
    topK: number;
    topP: number;
    minP: number;
    seed: number;
    topLogprobs: number;
}

export interface NativeTop {
    tokens: Int32Array;
    logprobs: Float32Array;
}

export interface NativeForestResult {
    id: number;
    batchTokens: number;
    ms: number;
    trees: {
        rootArgmax: number;
        rootTop: NativeTop;
        logprobs: Float32Array;
        argmax: Int32Array;
        top: NativeTop[];
        path: Int32Array;
        next: number;
    }[];
}

export interface NativeSimulateOptions {
    vocab: number;
    rule: 'sample' | 'target-only' | 'greedy';
    p: Float32Array;
    q: Float32Array;
    qDraw?: Float32Array;
    branching: number[];
    draft: 'iid' | 'without-replacement' | 'top';
    trials: number;
    seed: number;
    fault: 'none' | 'residual-p';
}

export interface NativeMakePairOptions {
    outDir: string;
    nLayer: number;
    nEmbd: number;
    nFf: number;
    nHead: number;
    nHeadKv: number;
    nCtxTrain: number;
    amateurLayers: number;
    epsilon: number;
    outScale: number;
    seed: number;
    weightType: 'f32' | 'f16' | 'q8_0' | 'q4_k' | 'q4_k_m';
    vocabPath?: string;
    tinyNormalTokens?: number;
    expertVocabPad?: number;
    amateurVocabPad?: number;
    eosLike?: number;
}

export interface NativeGgufSummary {
    architecture: string;
    name: string;
    fileType: number;
    contextLength: number;
    embeddingLength: number;
    blockCount: number;
    headCount: number;
    headCountKv: number;
    feedForwardLength: number;
    vocabSize: number;
    tokenizerModel: string;
    chatTemplate: boolean;
    tensors: number;
    parameters: number;
    tensorBytes: number;
    fileBytes: number;
    types: Record<string, { tensors: number; parameters: number; bytes: number }>;
}

export interface NativeAddon {
    Model: new (...args: never[]) => NativeModel;
    Context: new (model: NativeModel, options: NativeContextOptions) => NativeContext;
    loadModel(
        path: string,
        options: { gpuLayers?: number; useMmap?: boolean; vocabOnly?: boolean },
        onProgress?: (fraction: number) => void,
    ): { promise: Promise<NativeModel>; abort(): void };
    checkCompatibility(expert: NativeModel, amateur: NativeModel): string | null;
    readGguf(path: string): NativeGgufSummary;
    makePair(options: NativeMakePairOptions): Promise<{ expert: string; amateur: string; nVocab: number; expertBytes: number; amateurBytes: number }>;
    systemInfo(): {
        llamaSystemInfo: string;
        maxSequences: number;
        supportsGpuOffload: boolean;
        kernels: string;
        /** see NativeModelInfo.cpuVariant */
        cpuVariant: string;
        /** 'built-in' or the path of the loaded ggml CPU module */
        cpuModule: string;
    };
    /** test export: Monte-Carlo of the forest acceptance rules on a Markov mock */
    _simulateVerify(options: NativeSimulateOptions): { joint: Int32Array; rounds: number; accepted: number };
    /** test export: Monte-Carlo of SCD rounds on Markov mocks */
    _simulateScd(options: {
        vocab: number;
        pe: Float32Array;
        pa: Float32Array;
        alpha: number;
        beta: number;
        tauA: number;
        gamma: number;
        bonus: 'delayed' | 'none' | 'expert';
        trials: number;
        seed: number;
    }): { joint: Int32Array; outsideDrafted: number; outsideAccepted: number; rounds: number; accepted: number };
    /** test export: the native contrastive logits */
    _contrastiveLogits(se: Float32Array, sa: Float32Array, alpha: number, beta: number, tauA: number): Float32Array;
    _softmax(logits: Float32Array, temperature: number): { probs: Float32Array; logsumexp: number };
    /** test export: one quantized matmul through llama-duet's kernels and ggml's path (native/testing/KernelCheck.h) */
    _kernelCheck(o: { type: 'q8_0' | 'q4_K' | 'q6_K'; rows: number; cols: number; m: number; seed: number; threads: number; activations?: 'exact' | 'random' }): {
        kernels: string;
        ours: Float32Array | null;
        oursAlone: Float32Array | null;
        stock: Float32Array;
        stockAlone: Float32Array;
        exact: Float64Array;
        magnitude: Float64Array;
        elementMagnitude: Float64Array;
        ops: number;
    };
    /** test export: one flash-attention op through llama-duet's attention and ggml's (native/testing/KernelCheck.h) */
    _attnCheck(o: { dim: number; tokens: number; kvHeads: number; group: number; kv: number; mask: 'none' | 'causal' | 'random'; seed: number; threads: number }): {
        ours: Float32Array;
        alone: Float32Array;
        stock: Float32Array;
        exact: Float64Array;
        valueMagnitude: Float64Array;
        scoreMagnitude: Float64Array;
    };
    /** test export: ms per matmul of llama-duet's kernels (ours) or ggml's path (bench/kernels.mjs) */
    _kernelBench(o: { type: 'q8_0' | 'q4_K' | 'q6_K'; rows: number; cols: number; m: number; threads: number; iterations: number; ours: boolean }): { msPerMatmul: number; weightBytes: number };
    /** test export: Monte-Carlo of one DSBD layer (native/testing/DsbdMath.h) */
    _dsbdLayer(o: { p: Float64Array; q: Float64Array; draftBeams: number; need: number; width: number; drafts: 'iid' | 'without-replacement'; trials: number; seed: number }): {
        pair: Float64Array;
        first: Float64Array;
        accepted: Float64Array;
        passed: number;
    };
    /** test export: the DSBD acceptance-count recursion and width rule */
    _draftLength(o: {
        alpha: number;
        n: number;
        gammaMax: number;
        scd: boolean;
        expertMs: Float64Array;
        amateurMs: Float64Array;
        expertGapMs: Float64Array;
        amateurGapMs: Float64Array;
    }): number;
    _dsbdWidth(o: { p: Float64Array; q: Float64Array; m: number; t: number; minWidth: number }): { alpha: Float64Array; counts: Float64Array; width: number };
    /** streaming read bandwidth, GB/s (best of `passes`; the benchmark's reference for the one-token pass) */
    _memoryBandwidth(o: { mib: number; threads: number; passes: number }): number;
    /** test export: fp32 FMA rate per thread, alone and with `threads` at once (native/testing/KernelCheck.h) */
    _computeRate(o: { threads: number; ms: number }): { alone: number; together: number; slowest: number } | null;
    /** test export: bytes the live models reported to V8 with napi_adjust_external_memory and have not given back */
    _externalMemory(): number;
}

let cached: NativeAddon | undefined;

/** The loaded addon (loaded on first use). */
export function addon(): NativeAddon {
    cached ??= loadAddon() as NativeAddon;
    return cached;
}
