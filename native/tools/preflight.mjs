// Checks, before a source build starts, that the tools it needs are on this machine, and names what is
// missing with how to get it, instead of failing later with a stack trace from deep inside cmake-js.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

function version(cmd, args = ['--version']) {
    try {
        return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString().split('\n')[0].trim();
    } catch {
        return null;
    }
}

function firstOf(candidates) {
    for (const c of candidates) {
        if (!c) continue;
        const [cmd, ...rest] = c.split(' ');
        const v = version(cmd, [...rest, '--version']);
        if (v) return { cmd: c, version: v };
    }
    return null;
}

/**
 * Returns the list of problems (empty when the build can start). cuda: nvcc is needed too.
 * @param {{ cuda?: boolean, needGit?: boolean }} opts
 */
export function preflight({ cuda = false, needGit = true } = {}) {
    const problems = [];
    const cmake = version('cmake');
    if (!cmake) {
        problems.push('cmake (3.18 or newer) is not on PATH: install it (Debian/Ubuntu: apt-get install cmake; macOS: brew install cmake; or pip install cmake)');
    } else {
        const m = /(\d+)\.(\d+)/.exec(cmake);
        if (m && (Number(m[1]) < 3 || (Number(m[1]) === 3 && Number(m[2]) < 18))) problems.push(`cmake 3.18 or newer is needed, found ${cmake}`);
    }
    if (!firstOf([process.env.CXX, 'c++', 'g++', 'clang++'])) {
        problems.push('no C++17 compiler found (CXX, c++, g++ or clang++): install one (Debian/Ubuntu: apt-get install g++; macOS: xcode-select --install)');
    }
    if (!firstOf([process.env.CC, 'cc', 'gcc', 'clang'])) problems.push('no C compiler found (CC, cc, gcc or clang): install one (Debian/Ubuntu: apt-get install gcc)');
    if (!version('make') && !version('ninja')) problems.push('neither make nor ninja is on PATH: install one (Debian/Ubuntu: apt-get install make)');
    if (needGit && !version('git')) problems.push('git is not on PATH: it unpacks the pinned llama.cpp release (Debian/Ubuntu: apt-get install git)');
    if (needGit && !version('tar')) problems.push('tar is not on PATH');
    if (cuda) {
        const cudaRoot = process.env.CUDA_PATH ?? '/usr/local/cuda';
        if (!version('nvcc') && !version(`${cudaRoot}/bin/nvcc`)) problems.push('LLAMA_DUET_CUDA=1 needs the CUDA toolkit: nvcc is not on PATH (install CUDA, or set CUDA_PATH)');
        // ggml's CUDA backend links cuBLAS; some toolkit installs (e.g. a compiler-only one) leave it out
        const include = [`${cudaRoot}/include`, `${cudaRoot}/targets/x86_64-linux/include`, '/usr/include'];
        const lib = [`${cudaRoot}/lib64`, `${cudaRoot}/targets/x86_64-linux/lib`, '/usr/lib/x86_64-linux-gnu'];
        if (!include.some((d) => existsSync(join(d, 'cublas_v2.h'))) || !lib.some((d) => existsSync(join(d, 'libcublas.so')) || existsSync(join(d, 'libcublas_static.a')))) {
            problems.push(`LLAMA_DUET_CUDA=1 needs cuBLAS (cublas_v2.h and libcublas) from the CUDA toolkit: not found under ${cudaRoot} (install the toolkit's cuBLAS, or set CUDA_PATH)`);
        }
    }
    return problems;
}

/** Throws one readable error listing every missing tool. */
export function assertBuildTools(opts) {
    const problems = preflight(opts);
    if (problems.length === 0) return;
    const err = new Error(
        [
            'llama-duet cannot build its native addon from source on this machine:',
            ...problems.map((p) => `  - ${p}`),
            'A prebuilt binary ships for linux-x64; this build runs only without a matching prebuild or with LLAMA_DUET_FORCE_BUILD=1.',
        ].join('\n'),
    );
    err.code = 'ERR_LLAMA_DUET_BUILD_TOOLS';
    throw err;
}
