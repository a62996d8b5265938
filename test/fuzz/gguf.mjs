// A small GGUF (v2/v3) reader and writer for the mutation fuzzer: the header, every KV pair (typed), the tensor
// infos and the data section as raw bytes. write(parse(x)) reproduces a valid file byte for byte up to the
// data's alignment padding, so mutations can change one field and keep everything else intact.
export const T = { U8: 0, I8: 1, U16: 2, I16: 3, U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9, U64: 10, I64: 11, F64: 12 };
const SIZE = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

class Reader {
    constructor(buf) {
        this.b = buf;
        this.o = 0;
    }
    u32() {
        const v = this.b.readUInt32LE(this.o);
        this.o += 4;
        return v;
    }
    u64() {
        const v = this.b.readBigUInt64LE(this.o);
        this.o += 8;
        return v;
    }
    str() {
        const n = Number(this.u64());
        const s = this.b.subarray(this.o, this.o + n).toString('utf8');
        this.o += n;
        return s;
    }
    scalar(type) {
        const b = this.b;
        const o = this.o;
        this.o += SIZE[type];
        switch (type) {
            case T.U8: return b.readUInt8(o);
            case T.I8: return b.readInt8(o);
            case T.U16: return b.readUInt16LE(o);
            case T.I16: return b.readInt16LE(o);
            case T.U32: return b.readUInt32LE(o);
            case T.I32: return b.readInt32LE(o);
            case T.F32: return b.readFloatLE(o);
            case T.BOOL: return b.readUInt8(o) !== 0;
            case T.U64: return b.readBigUInt64LE(o);
            case T.I64: return b.readBigInt64LE(o);
            case T.F64: return b.readDoubleLE(o);
        }
        throw new Error(`bad scalar type ${type}`);
    }
    value(type) {
        if (type === T.STRING) return this.str();
        if (type === T.ARRAY) {
            const elem = this.u32();
            const n = Number(this.u64());
            const items = [];
            for (let i = 0; i < n; i++) items.push(this.value(elem));
            return { elem, items };
        }
        return this.scalar(type);
    }
}

/** → { version, kv: [{ key, type, value }], tensors: [{ name, dims: bigint[], type, offset: bigint }], alignment, data: Buffer } */
export function parse(buf) {
    const r = new Reader(buf);
    if (buf.subarray(0, 4).toString('latin1') !== 'GGUF') throw new Error('not GGUF');
    r.o = 4;
    const version = r.u32();
    const nTensors = Number(r.u64());
    const nKv = Number(r.u64());
    const kv = [];
    for (let i = 0; i < nKv; i++) {
        const key = r.str();
        const type = r.u32();
        kv.push({ key, type, value: r.value(type) });
    }
    const tensors = [];
    for (let i = 0; i < nTensors; i++) {
        const name = r.str();
        const nd = r.u32();
        const dims = [];
        for (let d = 0; d < nd; d++) dims.push(r.u64());
        tensors.push({ name, dims, type: r.u32(), offset: r.u64() });
    }
    const alignKv = kv.find((e) => e.key === 'general.alignment');
    const alignment = alignKv ? Number(alignKv.value) : 32;
    const dataStart = Math.ceil(r.o / alignment) * alignment;
    return { version, kv, tensors, alignment, data: buf.subarray(dataStart) };
}

class Writer {
    constructor() {
        this.parts = [];
    }
    u32(v) {
        const b = Buffer.alloc(4);
        b.writeUInt32LE(v >>> 0);
        this.parts.push(b);
    }
    u64(v) {
        const b = Buffer.alloc(8);
        b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)));
        this.parts.push(b);
    }
    str(s) {
        const b = Buffer.from(s, 'utf8');
        this.u64(b.length);
        this.parts.push(b);
    }
    scalar(type, v) {
        const b = Buffer.alloc(SIZE[type]);
        switch (type) {
            case T.U8: b.writeUInt8(Number(v) & 0xff); break;
            case T.I8: b.writeInt8(((Number(v) + 128) & 0xff) - 128); break;
            case T.U16: b.writeUInt16LE(Number(v) & 0xffff); break;
            case T.I16: b.writeInt16LE(((Number(v) + 32768) & 0xffff) - 32768); break;
            case T.U32: b.writeUInt32LE(Number(BigInt.asUintN(32, BigInt(Math.trunc(Number(v)))))); break;
            case T.I32: b.writeInt32LE(Number(BigInt.asIntN(32, BigInt(Math.trunc(Number(v)))))); break;
            case T.F32: b.writeFloatLE(Number(v)); break;
            case T.BOOL: b.writeUInt8(v ? 1 : 0); break;
            case T.U64: b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v))); break;
            case T.I64: b.writeBigInt64LE(BigInt.asIntN(64, BigInt(v))); break;
            case T.F64: b.writeDoubleLE(Number(v)); break;
            default: throw new Error(`bad scalar type ${type}`);
        }
        this.parts.push(b);
    }
    value(type, v) {
        if (type === T.STRING) return this.str(String(v));
        if (type === T.ARRAY) {
            this.u32(v.elem);
            this.u64(v.items.length);
            for (const it of v.items) this.value(v.elem, it);
            return;
        }
        this.scalar(type, v);
    }
    size() {
        return this.parts.reduce((n, p) => n + p.length, 0);
    }
}

/** Serialises a parsed file. counts: override the header's tensor / KV counts (header mutations). */
export function write(g, counts = {}) {
    const w = new Writer();
    w.parts.push(Buffer.from('GGUF', 'latin1'));
    w.u32(g.version);
    w.u64(counts.nTensors ?? g.tensors.length);
    w.u64(counts.nKv ?? g.kv.length);
    for (const e of g.kv) {
        w.str(e.key);
        w.u32(e.type);
        w.value(e.type, e.value);
    }
    for (const t of g.tensors) {
        w.str(t.name);
        w.u32(t.dims.length);
        for (const d of t.dims) w.u64(d);
        w.u32(t.type);
        w.u64(t.offset);
    }
    const pad = (g.alignment - (w.size() % g.alignment)) % g.alignment;
    w.parts.push(Buffer.alloc(pad));
    w.parts.push(g.data);
    return Buffer.concat(w.parts);
}
