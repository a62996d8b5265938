/**
 * Synthetic random-weight llama pairs (expert + an amateur made of its first k layers) for tests,
 * benchmarks and the demo. Deterministic for a seed; written by the addon with the gguf API.
 * See native/testing/SyntheticPair.h for the weight recipe.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { fromNative, InvalidArgumentError } from './errors.js';
import { addon, type NativeMakePairOptions } from './native.js';
import { defaultVocabPath } from './paths.js';
import * as is from './validation/is.js';

/**
 * Named shapes: `tiny` (seconds; tests and demo), `tiny-q8` (the same in Q8_0: runs ggml's quantized
 * matmuls, AMX where the CPU has it), `tiny-q4k` (Q4_K, 256 wide: K-quant blocks are 256),
 * `tinyllama` (TinyLlama-1.1B geometry, Q8_0; benchmarks) and `tinyllama-q4k` (the same in Q4_K);
 * `tiny-q4km` / `tinyllama-q4km`: Q4_K with Q6_K output, attn_v and ffn_down (even layers), as llama.cpp's Q4_K_M.
 */
export const shapes = {
    tiny: { nLayer: 4, nEmbd: 128, nFf: 384, nHead: 4, nHeadKv: 2, nCtxTrain: 2048, amateurLayers: 1, weightType: 'f32' },
    'tiny-q8': { nLayer: 4, nEmbd: 128, nFf: 384, nHead: 4, nHeadKv: 2, nCtxTrain: 2048, amateurLayers: 1, weightType: 'q8_0' },
    tinyllama: { nLayer: 22, nEmbd: 2048, nFf: 5632, nHead: 32, nHeadKv: 4, nCtxTrain: 2048, amateurLayers: 2, weightType: 'q8_0' },
    'tiny-q4k': { nLayer: 4, nEmbd: 256, nFf: 512, nHead: 4, nHeadKv: 2, nCtxTrain: 2048, amateurLayers: 1, weightType: 'q4_k' },
    'tinyllama-q4k': { nLayer: 22, nEmbd: 2048, nFf: 5632, nHead: 32, nHeadKv: 4, nCtxTrain: 2048, amateurLayers: 2, weightType: 'q4_k' },
    'tiny-q4km': { nLayer: 4, nEmbd: 256, nFf: 512, nHead: 4, nHeadKv: 2, nCtxTrain: 2048, amateurLayers: 1, weightType: 'q4_k_m' },
    'tinyllama-q4km': { nLayer: 22, nEmbd: 2048, nFf: 5632, nHead: 32, nHeadKv: 4, nCtxTrain: 2048, amateurLayers: 2, weightType: 'q4_k_m' },
} as const;

export type ShapeName = keyof typeof shapes;

export interface MakePairOptions {
    /** Output folder (created if missing); receives expert.gguf and amateur.gguf. */
    out: string;
    /** Defaults to `'tiny'`. */
    shape?: ShapeName;
    /** Residual scale ε: smaller → the amateur agrees more often with the expert. Defaults to `0.015`. */
    epsilon?: number;
    /** Layers of the amateur (the expert's first k). Defaults to the shape's (1 for tiny, 2 for tinyllama). */
    amateurLayers?: number;
    /** Std of the output head in units of 1/√d. Defaults to `6`. */
    outScale?: number;
    /** Defaults to `1`. */
    seed?: number;
    /**
     * Tokenizer: a GGUF to copy `tokenizer.*` from (defaults to llama.cpp's `models/ggml-vocab-llama-spm.gguf`
     * from the extracted build tree), or `{ tiny: N }` for a tiny SPM vocabulary of N normal tokens
     * (+ `<unk> <s> </s>` and the 256 byte tokens) for statistical tests.
     */
    vocab?: string | { tiny: number };
    /**
     * Pads one model's vocabulary with extra `[PAD<i>]` tokens (0–128) at the end, as real pairs of one family
     * have (Qwen2.5-7B has 152064 tokens, Qwen2.5-0.5B 151936): `{ expert: 128 }` or `{ amateur: 64 }`. The padded
     * ids get embedding and output rows like the others. Defaults to no padding.
     */
    vocabPad?: { expert?: number; amateur?: number };
    /**
     * Makes end-of-generation (id 2) about as likely as token `eosLike` everywhere: its output row becomes
     * that token's plus a little noise (tiny vocabularies only; for tests of finished beams). Defaults to off.
     */
    eosLike?: number;
    /** Skip generation when both files already exist. Defaults to `false`. */
    reuse?: boolean;
}

export interface PairFiles {
    expert: string;
    amateur: string;
    nVocab: number;
    expertBytes: number;
    amateurBytes: number;
}

export async function makePair(options: MakePairOptions): Promise<PairFiles> {
    const o = is.options('makePair() options', options);
    is.knownKeys('makePair()', o, ['out', 'shape', 'epsilon', 'amateurLayers', 'outScale', 'seed', 'vocab', 'vocabPad', 'eosLike', 'reuse']);
    const out = resolve(is.string('out', o['out'], { nonEmpty: true }));
    const shapeName = o['shape'] === undefined ? 'tiny' : is.oneOf('shape', o['shape'], Object.keys(shapes) as ShapeName[]);
    const shape = shapes[shapeName];
    const spec: NativeMakePairOptions = {
        outDir: out,
        ...shape,
        amateurLayers: o['amateurLayers'] === undefined ? shape.amateurLayers : is.integer('amateurLayers', o['amateurLayers'], 1, shape.nLayer),
        epsilon: o['epsilon'] === undefined ? 0.015 : is.number('epsilon', o['epsilon'], 0, 100),
        outScale: o['outScale'] === undefined ? 6 : is.number('outScale', o['outScale'], 0, 1000),
        seed: o['seed'] === undefined ? 1 : is.integer('seed', o['seed'], 0, Number.MAX_SAFE_INTEGER),
    };
    if (o['vocabPad'] !== undefined) {
        const pad = is.options('vocabPad', o['vocabPad']);
        is.knownKeys('vocabPad', pad, ['expert', 'amateur']);
        if (pad['expert'] !== undefined) spec.expertVocabPad = is.integer('vocabPad.expert', pad['expert'], 0, 128);
        if (pad['amateur'] !== undefined) spec.amateurVocabPad = is.integer('vocabPad.amateur', pad['amateur'], 0, 128);
    }
    if (o['eosLike'] !== undefined) spec.eosLike = is.integer('eosLike', o['eosLike'], 0, 1 << 30);
    const vocab = o['vocab'];
    if (vocab === undefined || typeof vocab === 'string') {
        const path = vocab === undefined ? defaultVocabPath() : vocab;
        if (!existsSync(path)) {
            throw new InvalidArgumentError(
                `The vocabulary GGUF ${path} does not exist. Build from source (npm ci) to extract llama.cpp's models/, ` +
                    `pass vocab: '/path/to/vocab.gguf', or use vocab: { tiny: N }`,
            );
        }
        spec.vocabPath = path;
    } else if (is.isPlainObject(vocab) && Object.keys(vocab).length === 1 && 'tiny' in vocab) {
        spec.tinyNormalTokens = is.integer('vocab.tiny', vocab['tiny'], 1, 4096);
    } else {
        throw is.invalid('vocab', "a GGUF path or { tiny: N }", vocab);
    }
    const expert = resolve(out, 'expert.gguf');
    const amateur = resolve(out, 'amateur.gguf');
    if (o['reuse'] === true && existsSync(expert) && existsSync(amateur)) {
        return { expert, amateur, nVocab: -1, expertBytes: -1, amateurBytes: -1 };
    }
    mkdirSync(out, { recursive: true });
    try {
        return await addon().makePair(spec);
    } catch (e) {
        throw fromNative(e);
    }
}
