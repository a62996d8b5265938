/**
 * `inspect(expert, amateur?)`: what one or two GGUF files hold (from their headers: no weights are read) and
 * whether two of them form a pair the pair strategies accept (llama.cpp's speculative-decoding vocabulary
 * rules, checked on vocabulary-only loads).
 */
import { fromNative } from './errors.js';
import { addon, type NativeGgufSummary } from './native.js';
import * as is from './validation/is.js';

/** llama.cpp's `llama_ftype` names (general.file_type). */
const fileTypes: Record<number, string> = {
    0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 7: 'Q8_0', 8: 'Q5_0', 9: 'Q5_1', 10: 'Q2_K', 11: 'Q3_K_S', 12: 'Q3_K_M', 13: 'Q3_K_L',
    14: 'Q4_K_S', 15: 'Q4_K_M', 16: 'Q5_K_S', 17: 'Q5_K_M', 18: 'Q6_K', 19: 'IQ2_XXS', 20: 'IQ2_XS', 21: 'Q2_K_S', 22: 'IQ3_XS',
    23: 'IQ3_XXS', 24: 'IQ1_S', 25: 'IQ4_NL', 26: 'IQ3_S', 27: 'IQ3_M', 28: 'IQ2_S', 29: 'IQ2_M', 30: 'IQ4_XS', 31: 'IQ1_M', 32: 'BF16',
    36: 'TQ1_0', 37: 'TQ2_0', 38: 'MXFP4_MOE',
};

export interface GgufSummary extends NativeGgufSummary {
    path: string;
    /** general.file_type as llama.cpp names it ('Q4_K_M', 'F16', …), or 'unknown' */
    quantization: string;
}

export interface InspectReport {
    expert: GgufSummary;
    amateur?: GgufSummary;
    /** With two files: whether they form a pair (same vocabulary by llama.cpp's rules), and if not why. */
    compatible?: boolean;
    reason?: string;
}

/** Reads one file's header and metadata. Throws the typed errors of loadModel() for missing or broken files. */
export function summarize(path: string): GgufSummary {
    is.string('path', path, { nonEmpty: true });
    let s: NativeGgufSummary;
    try {
        s = addon().readGguf(path);
    } catch (e) {
        throw fromNative(e, new Error().stack, path);
    }
    return { path, ...s, quantization: s.fileType >= 0 ? (fileTypes[s.fileType] ?? `unknown (${s.fileType})`) : 'unknown' };
}

async function vocabulary(path: string) {
    const h = addon().loadModel(path, { vocabOnly: true, useMmap: true });
    try {
        return await h.promise;
    } catch (e) {
        throw fromNative(e, new Error().stack, path);
    }
}

export async function inspect(expert: string, amateur?: string): Promise<InspectReport> {
    const report: InspectReport = { expert: summarize(expert) };
    if (amateur === undefined) return report;
    report.amateur = summarize(amateur);
    const [e, a] = [await vocabulary(expert), await vocabulary(amateur)];
    try {
        const reason = addon().checkCompatibility(e, a);
        report.compatible = reason === null;
        if (reason !== null) report.reason = reason;
    } finally {
        e.dispose();
        a.dispose();
    }
    return report;
}
