/** What the loaded native addon runs on: CPU kernels, GPU offload, the llama.cpp release. */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { addon } from './native.js';
import { llamaManifest } from './paths.js';

export interface SystemInfo {
    /**
     * The CPU kernels in use: `'native'` (a source build compiled for the build machine), `'generic'`, or the
     * prebuilt binary's CPU variant chosen at load for this CPU (`'x64'`, `'haswell'`, `'skylakex'`, `'icelake'`,
     * `'zen4'`, `'alderlake'`, `'sapphirerapids'` (AMX), ...). `LLAMA_DUET_CPU_VARIANT` forces one,
     * `LLAMA_DUET_AMX=0` skips the AMX variant.
     */
    cpuVariant: string;
    /**
     * llama-duet's multi-row Q8_0 / Q4_K / Q6_K kernels (speculative verification at about the cost of one
     * token): `'avx512-vnni'`, `'avx-vnni'` or `'avx2'` when they run (they take those weights at the next
     * model load), `'off'` (`LLAMA_DUET_KERNELS=0`), `'none'` (a CPU without AVX2) or `'unavailable'` (a build
     * without them). On AMX CPUs ggml's AMX path takes the weights first (`LLAMA_DUET_AMX=0` to use these).
     */
    kernels: string;
    /** `'built-in'` (source builds) or the path of the loaded ggml CPU module (prebuilds). */
    cpuModule: string;
    /** ggml's feature line of the loaded backends (`AVX2 = 1 | AVX512 = 1 | AMX_INT8 = 1 | ...`). */
    features: string;
    /** Whether a GPU backend is loaded (CUDA builds). */
    gpuOffload: boolean;
    /** The llama.cpp release the addon was built from. */
    llamaCpp: { tag: string; commit: string };
}

/** Facts about the native addon and the kernels it picked for this machine. */
export function systemInfo(): SystemInfo {
    const s = addon().systemInfo();
    const m = llamaManifest();
    return {
        cpuVariant: s.cpuVariant,
        cpuModule: s.cpuModule,
        kernels: s.kernels,
        features: s.llamaSystemInfo.trim(),
        gpuOffload: s.supportsGpuOffload,
        llamaCpp: { tag: m.upstreamTag, commit: m.upstreamCommit },
    };
}

/** The CPU's model name and the instruction sets that decide which kernels run (Linux: /proc/cpuinfo). */
export interface CpuFacts {
    model: string;
    amx: boolean;
    avx512vnni: boolean;
    avxvnni: boolean;
    avx512f: boolean;
    avx2: boolean;
    /** e.g. `AMX, AVX-512 VNNI, AVX2` */
    summary: string;
}

/** @internal benchmark headers name the CPU and its flags */
export function cpuFacts(): CpuFacts {
    let text = '';
    try {
        text = readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
        // not Linux: model from os.cpus(), flags unknown
    }
    const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(text)?.[1] ?? '').split(/\s+/));
    const model = /^model name\s*:\s*(.*)$/m.exec(text)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
    const f = {
        amx: flags.has('amx_int8') && flags.has('amx_tile'),
        avx512vnni: flags.has('avx512_vnni'),
        avxvnni: flags.has('avx_vnni'),
        avx512f: flags.has('avx512f'),
        avx2: flags.has('avx2'),
    };
    const names = [
        f.amx ? 'AMX' : 'no AMX',
        f.avx512vnni ? 'AVX-512 VNNI' : f.avx512f ? 'AVX-512 (no VNNI)' : '',
        f.avxvnni ? 'AVX-VNNI' : '',
        f.avx2 ? 'AVX2' : 'no AVX2',
    ].filter(Boolean);
    return { model, ...f, summary: names.join(', ') };
}
