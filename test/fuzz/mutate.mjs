// Seeded GGUF mutations: each returns { kind, what, bytes } for one mutant of a valid file. The kinds cover what a
// corrupt or hostile file can do to a loader: metadata values set to 0 / −1 / huge / NaN / ±inf, hyper-parameters
// that contradict each other or the tensors (head counts 0, n_embd not divisible by n_head, rope dims past the
// head, block_count 0 / 4096 / 2³¹−1, context_length 0, ε NaN), vocabulary arrays of different lengths, special
// token ids out of range, a key of the wrong type or missing, header counts, tensor dims / types / offsets /
// names, truncation and bit flips.
import { rng } from '../helpers/prng.mjs';
import { parse, T, write } from './gguf.mjs';

export { rng };

const pick = (rand, xs) => xs[Math.floor(rand() * xs.length)];
const clone = (g) => ({ ...g, kv: g.kv.map((e) => ({ ...e, value: e.type === T.ARRAY ? { elem: e.value.elem, items: [...e.value.items] } : e.value })), tensors: g.tensors.map((t) => ({ ...t, dims: [...t.dims] })) });
const isInt = (t) => [T.U8, T.I8, T.U16, T.I16, T.U32, T.I32, T.U64, T.I64].includes(t);
const isFloat = (t) => t === T.F32 || t === T.F64;

const INT_VALUES = [0, -1, 1, 2, 3, 7, 255, 256, 4096, 65535, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2n ** 63n - 1n, 2n ** 64n - 1n];
const FLOAT_VALUES = [0, -1, NaN, Infinity, -Infinity, 1e-45, 1e38, -1e-5, 1e30];

function setScalar(e, rand) {
    if (isInt(e.type)) e.value = typeof e.value === 'bigint' ? BigInt(pick(rand, INT_VALUES)) : pick(rand, INT_VALUES);
    else if (isFloat(e.type)) e.value = pick(rand, FLOAT_VALUES);
    else if (e.type === T.BOOL) e.value = !e.value;
    else if (e.type === T.STRING) e.value = pick(rand, ['', 'x'.repeat(300), 'unknown-arch', '\u0000', 'llama\u0000']);
    if (typeof e.value === 'bigint' && e.type !== T.U64 && e.type !== T.I64) e.value = Number(BigInt.asIntN(32, e.value));
}

const HPARAMS = {
    // key suffix → values that contradict the model or llama.cpp's bounds
    block_count: [0, 1, 3, 5, 4096, 2 ** 31 - 1, 2 ** 32 - 1],
    embedding_length: [0, 1, 3, 100, 129, 2 ** 31 - 1],
    feed_forward_length: [0, 1, 2 ** 31 - 1],
    'attention.head_count': [0, 3, 5, 7, 129, 2 ** 31 - 1],
    'attention.head_count_kv': [0, 3, 5, 128, 2 ** 31 - 1],
    'rope.dimension_count': [0, 1, 3, 33, 64, 256, 4096],
    context_length: [0, 1, 2 ** 31 - 1],
    'attention.layer_norm_rms_epsilon': [NaN, -1, Infinity, -Infinity, 0],
    'rope.freq_base': [0, NaN, -1, Infinity],
    vocab_size: [0, 1, 5, 2 ** 31 - 1],
    'attention.key_length': [0, 1, 4096],
    'attention.value_length': [0, 1, 4096],
};
const SPECIAL = ['bos_token_id', 'eos_token_id', 'unknown_token_id', 'padding_token_id', 'eot_token_id', 'seperator_token_id'];

const mutations = {
    'kv-value'(g, rand) {
        const scalars = g.kv.filter((e) => e.type !== T.ARRAY);
        const e = pick(rand, scalars);
        const before = String(e.value);
        setScalar(e, rand);
        return `${e.key}: ${before} → ${String(e.value)}`;
    },
    hparam(g, rand) {
        const arch = g.kv.find((e) => e.key === 'general.architecture')?.value ?? 'llama';
        const suffix = pick(rand, Object.keys(HPARAMS));
        const key = `${arch}.${suffix}`;
        const value = pick(rand, HPARAMS[suffix]);
        const e = g.kv.find((x) => x.key === key);
        const type = suffix.includes('epsilon') || suffix.includes('freq_base') ? T.F32 : T.U32;
        if (e) {
            e.value = type === T.F32 ? value : value;
            e.type = type;
        } else g.kv.push({ key, type, value });
        return `${key} = ${value}`;
    },
    'hparam-array'(g, rand) {
        // per-layer arrays (llama.cpp accepts head counts as arrays): wrong lengths, zeros
        const arch = g.kv.find((e) => e.key === 'general.architecture')?.value ?? 'llama';
        const key = `${arch}.${pick(rand, ['attention.head_count', 'attention.head_count_kv', 'feed_forward_length'])}`;
        const n = pick(rand, [0, 1, 2, 3, 4, 5, 600]);
        const items = Array.from({ length: n }, () => pick(rand, [0, 1, 2, 4, 3, 2 ** 31 - 1]));
        const e = g.kv.find((x) => x.key === key);
        if (e) {
            e.type = T.ARRAY;
            e.value = { elem: T.U32, items };
        } else g.kv.push({ key, type: T.ARRAY, value: { elem: T.U32, items } });
        return `${key} = [${items.slice(0, 6).join(',')}${n > 6 ? ',…' : ''}] (${n} entries)`;
    },
    'special-token'(g, rand) {
        const nTokens = g.kv.find((e) => e.key === 'tokenizer.ggml.tokens')?.value.items.length ?? 0;
        const key = `tokenizer.ggml.${pick(rand, SPECIAL)}`;
        const value = pick(rand, [nTokens, nTokens + 1, 2 ** 31 - 1, 2 ** 32 - 1, -1 >>> 0, 100000]);
        const e = g.kv.find((x) => x.key === key);
        if (e) {
            e.type = T.U32;
            e.value = value;
        } else g.kv.push({ key, type: T.U32, value });
        return `${key} = ${value} (${nTokens} tokens)`;
    },
    'vocab-arrays'(g, rand) {
        const key = pick(rand, ['tokenizer.ggml.tokens', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type', 'tokenizer.ggml.merges']);
        const e = g.kv.find((x) => x.key === key);
        if (!e) return `${key}: absent`;
        const how = pick(rand, ['truncate', 'extend', 'empty', 'wrong-elem', 'bad-type-values']);
        const items = e.value.items;
        if (how === 'truncate') e.value.items = items.slice(0, Math.max(0, items.length - 1 - Math.floor(rand() * 300)));
        else if (how === 'extend') e.value.items = [...items, ...items.slice(0, 1 + Math.floor(rand() * 10))];
        else if (how === 'empty') e.value.items = [];
        else if (how === 'wrong-elem') e.value = { elem: e.value.elem === T.STRING ? T.I32 : T.STRING, items: items.map((x) => (e.value.elem === T.STRING ? 1 : String(x))) };
        else if (key === 'tokenizer.ggml.token_type') e.value.items = items.map((x) => (rand() < 0.05 ? pick(rand, [0, 7, 99, -1]) : x));
        else if (key === 'tokenizer.ggml.scores') e.value.items = items.map((x) => (rand() < 0.05 ? pick(rand, [NaN, Infinity, -Infinity]) : x));
        else e.value.items = items.map((x) => (rand() < 0.01 ? '' : x));
        return `${key}: ${how} (${items.length} → ${e.value.items.length})`;
    },
    'kv-type'(g, rand) {
        const e = pick(rand, g.kv);
        const before = e.type;
        if (e.type === T.ARRAY) {
            e.type = T.U32;
            e.value = 7;
        } else if (e.type === T.STRING) {
            e.type = T.U32;
            e.value = 1;
        } else {
            e.type = pick(rand, [T.STRING, T.F32, T.U8, T.I64, T.BOOL]);
            e.value = e.type === T.STRING ? 'oops' : e.type === T.I64 ? -5n : e.type === T.BOOL ? true : 2;
        }
        return `${e.key}: type ${before} → ${e.type}`;
    },
    'kv-remove'(g, rand) {
        const i = Math.floor(rand() * g.kv.length);
        const [e] = g.kv.splice(i, 1);
        return `removed ${e.key}`;
    },
    'tensor-dims'(g, rand) {
        const t = pick(rand, g.tensors);
        const d = Math.floor(rand() * t.dims.length);
        const before = t.dims[d];
        t.dims[d] = BigInt(pick(rand, [0, 1, 2, 31, 33, 2 ** 31, 2 ** 40, Number(before) * 2, Number(before) - 1]));
        return `${t.name} dim ${d}: ${before} → ${t.dims[d]}`;
    },
    'tensor-ndims'(g, rand) {
        const t = pick(rand, g.tensors);
        const how = pick(rand, ['drop', 'add', 'many']);
        if (how === 'drop') t.dims = t.dims.slice(0, Math.max(0, t.dims.length - 1));
        else if (how === 'add') t.dims = [...t.dims, BigInt(pick(rand, [1, 2, 7]))];
        else t.dims = [...t.dims, 1n, 1n, 1n, 1n];
        return `${t.name}: n_dims → ${t.dims.length}`;
    },
    'tensor-type'(g, rand) {
        const t = pick(rand, g.tensors);
        const before = t.type;
        t.type = pick(rand, [0, 1, 2, 3, 8, 10, 12, 14, 16, 30, 39, 40, 99, 2 ** 31]);
        return `${t.name}: type ${before} → ${t.type}`;
    },
    'tensor-offset'(g, rand) {
        const t = pick(rand, g.tensors);
        const before = t.offset;
        t.offset = BigInt(pick(rand, [0, 1, 31, 2 ** 31, 2 ** 40, Number(before) + 32, Number(before) + g.data.length, 2 ** 63]));
        return `${t.name}: offset ${before} → ${t.offset}`;
    },
    'tensor-name'(g, rand) {
        const t = pick(rand, g.tensors);
        const before = t.name;
        const how = pick(rand, ['rename', 'duplicate', 'remove', 'empty']);
        if (how === 'rename') t.name = `${t.name}.x`;
        else if (how === 'duplicate') t.name = pick(rand, g.tensors).name;
        else if (how === 'empty') t.name = '';
        else g.tensors.splice(g.tensors.indexOf(t), 1);
        return `${before}: ${how}`;
    },
    'header-count'(g, rand) {
        const which = pick(rand, ['nTensors', 'nKv']);
        const base = which === 'nTensors' ? g.tensors.length : g.kv.length;
        const v = pick(rand, [0, base - 1, base + 1, 2 ** 31, 2n ** 63n]);
        return { what: `${which}: ${base} → ${v}`, counts: { [which]: v } };
    },
};

/**
 * The i-th mutant of `original` (a valid GGUF buffer) for `seed`: deterministic.
 * returns { kind, what, bytes }
 */
export function mutant(original, seed, i) {
    const rand = rng((seed * 1000003 + i * 7919) >>> 0);
    const roll = rand();
    if (roll < 0.06) {
        // truncation anywhere
        const cut = Math.floor(rand() * original.length);
        return { kind: 'truncate', what: `${original.length} → ${cut} bytes`, bytes: original.subarray(0, cut) };
    }
    if (roll < 0.14) {
        // bit flips in the metadata and tensor-info region (the data region is weights: flips there are just other weights)
        const g = parse(original);
        const meta = original.length - g.data.length;
        const b = Buffer.from(original);
        const n = 1 + Math.floor(rand() * 8);
        const at = [];
        for (let k = 0; k < n; k++) {
            const o = Math.floor(rand() * meta);
            b[o] ^= 1 << Math.floor(rand() * 8);
            at.push(o);
        }
        return { kind: 'bitflip', what: `${n} bits at ${at.join(',')}`, bytes: b };
    }
    const kinds = Object.keys(mutations);
    const kind = pick(rand, kinds);
    const g = clone(parse(original));
    const r = mutations[kind](g, rand);
    if (typeof r === 'string') return { kind, what: r, bytes: write(g) };
    return { kind, what: r.what, bytes: write(g, r.counts) };
}
