// Checks, before a source build starts, that the tools it needs are on this machine, and names what is
// missing with how to get it, instead of failing later with a stack trace from deep inside cmake-js.
import { execFileSync } from 'node:child_process';

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
    if (cuda && !version('nvcc') && !version(`${process.env.CUDA_PATH ?? '/usr/local/cuda'}/bin/nvcc`)) {
        problems.push('LLAMA_DUET_CUDA=1 needs the CUDA toolkit: nvcc is not on PATH (install CUDA, or set CUDA_PATH)');
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
