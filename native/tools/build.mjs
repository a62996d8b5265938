#!/usr/bin/env node
// Builds the native addon: check the build tools, fetch the pinned llama.cpp (unless LLAMA_CPP_DIR is
// set), configure and compile with cmake-js in a persistent work dir (.cache/cmake-<variant>, so a second
// `npm ci` does not recompile llama.cpp), then copy the addon (and, for portable builds, the ggml shared
// libraries and CPU backend modules it loads) to build/Release, where node-gyp-build finds it.
//
// Usage: node native/tools/build.mjs [OUT_DIR]
// Environment:
//   LLAMA_CPP_DIR=/path/to/llama.cpp   use a local llama.cpp tree (offline builds)
//   LLAMA_DUET_CUDA=1                  build ggml's CUDA backend (GGML_CUDA=ON; CMAKE_CUDA_ARCHITECTURES from
//                                      LLAMA_DUET_CUDA_ARCHS, default 90 = H100/H200)
//   LLAMA_DUET_PORTABLE=1              the prebuild layout: ggml's CPU backend for every x86-64 level as
//                                      modules chosen at run time (GGML_BACKEND_DL + GGML_CPU_ALL_VARIANTS)
//   LLAMA_DUET_AMX=0                   compile ggml's AMX matmuls out of a native build (default: kept)
//   LLAMA_DUET_BENCH_TOOLS=1           also build llama.cpp's llama-bench, llama-speculative-simple, llama-server, llama-batched-bench
//   LLAMA_DUET_JOBS=N                  parallel compile jobs (default: available cores)
//   LLAMA_DUET_FORCE_BUILD=1           build even when prebuilds/<platform>-<arch> has a binary
//   LLAMA_DUET_SANITIZE=address,undefined  a sanitizer build (own work dir; tools/sanitize.sh runs the tests on it)
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { ensureLlamaCpp } from './llama-source.mjs';
import { assertBuildTools } from './preflight.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(join(root, 'package.json'));
const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const outDir = resolve(positional[0] ?? join(root, 'build', 'Release'));
const fromGyp = process.argv.includes('--from-gyp');

const flag = (name) => process.env[name] === '1' || process.env[name] === 'ON' || process.env[name] === 'true';
const cuda = flag('LLAMA_DUET_CUDA');
const portable = flag('LLAMA_DUET_PORTABLE');
const benchTools = flag('LLAMA_DUET_BENCH_TOOLS');
const amx = !['0', 'OFF', 'false'].includes(process.env.LLAMA_DUET_AMX ?? '');
const jobs = Number(process.env.LLAMA_DUET_JOBS) || availableParallelism();

// Through node-gyp (npm install): a prebuild for this platform wins unless a build is forced.
const forced = flag('npm_config_force_build') || flag('LLAMA_DUET_FORCE_BUILD') || process.env.npm_lifecycle_event === 'prebuild';
const prebuildDir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
if (fromGyp && !forced && existsSync(prebuildDir) && readdirSync(prebuildDir).some((f) => f.endsWith('.node'))) {
  console.log(`[llama-duet] prebuild found in ${prebuildDir}; skipping the source build (set LLAMA_DUET_FORCE_BUILD=1 to build)`);
  process.exit(0);
}

try {
    assertBuildTools({ cuda, needGit: !process.env.LLAMA_CPP_DIR });
} catch (e) {
    console.error(`\n${e.message}\n`);
    process.exit(1);
}
const llamaDir = process.env.LLAMA_CPP_DIR ? resolve(process.env.LLAMA_CPP_DIR) : ensureLlamaCpp(root);
const sanitize = (process.env.LLAMA_DUET_SANITIZE ?? '').trim(); // e.g. address,undefined (tools/sanitize.sh)
const variant = `${cuda ? 'cuda' : 'cpu'}${portable ? '-variants' : ''}${sanitize ? `-san-${sanitize.replace(/[^a-z]+/g, '-')}` : ''}`;
const workDir = join(root, '.cache', `cmake-${variant}`);

const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
const args = [
  cmakeJs, 'compile', '--out', workDir, '--config', 'Release', '--parallel', String(jobs),
  `--CDLLAMA_CPP_DIR=${llamaDir}`,
  `--CDLLAMA_DUET_NATIVE=${portable ? 'OFF' : 'ON'}`,
  `--CDLLAMA_DUET_CPU_VARIANTS=${portable ? 'ON' : 'OFF'}`,
  `--CDLLAMA_DUET_SANITIZE=${sanitize}`,
  ...(cuda ? [`--CDCMAKE_CUDA_ARCHITECTURES=${process.env.LLAMA_DUET_CUDA_ARCHS ?? '90'}`] : []),
  `--CDLLAMA_DUET_CUDA=${cuda ? 'ON' : 'OFF'}`,
  `--CDLLAMA_DUET_BENCH_TOOLS=${benchTools ? 'ON' : 'OFF'}`,
  `--CDLLAMA_DUET_AMX=${amx ? 'ON' : 'OFF'}`,
];
// `cmake-js compile` passes -D only when it configures a new work dir: re-configure an existing one whose
// cached AMX switch differs.
const cache = join(workDir, 'CMakeCache.txt');
if (existsSync(cache)) {
  const cached = /^LLAMA_DUET_AMX:BOOL=(\w+)$/m.exec(readFileSync(cache, 'utf8'))?.[1];
  if (cached !== undefined && (cached === 'ON') !== amx) execFileSync('cmake', [`-DLLAMA_DUET_AMX=${amx ? 'ON' : 'OFF'}`, workDir], { cwd: root, stdio: 'inherit' });
}
console.log(`[llama-duet] building the addon (${variant}) against ${llamaDir} in ${workDir}`);
execFileSync(process.execPath, args, { cwd: root, stdio: 'inherit' });

if (benchTools) {
  // `cmake-js compile` does not reconfigure an existing work dir: switch the option on explicitly, then
  // build the tools target (bench/ runs them from .cache/cmake-<variant>/bin).
  execFileSync('cmake', ['-DLLAMA_DUET_BENCH_TOOLS=ON', workDir], { cwd: root, stdio: 'inherit' });
  execFileSync('cmake', ['--build', workDir, '--target', 'llama_duet_bench_tools', '--parallel', String(jobs)], { cwd: root, stdio: 'inherit' });
}

const built = join(workDir, 'Release', 'llama_duet.node');
if (!existsSync(built)) throw new Error(`cmake-js finished but ${built} is missing`);
mkdirSync(outDir, { recursive: true });
// A portable build's addon loads libggml*.so from its own folder ($ORIGIN): copy them beside it. A native
// build links everything in: remove libraries a previous portable build left there.
for (const f of readdirSync(outDir)) if (/^libggml.*\.so$/.test(f)) rmSync(join(outDir, f));
const libDir = join(workDir, 'ggml-libs');
const libs = portable && existsSync(libDir) ? readdirSync(libDir).filter((f) => /^libggml.*\.so$/.test(f)) : [];
for (const f of libs) copyFileSync(join(libDir, f), join(outDir, f));
copyFileSync(built, join(outDir, 'llama_duet.node'));
const manifest = JSON.parse(readFileSync(join(root, 'native', 'llama.cpp.json'), 'utf8'));
console.log(`[llama-duet] addon ready: ${join(outDir, 'llama_duet.node')}${libs.length ? ` + ${libs.length} ggml libraries` : ''} (llama.cpp ${manifest.upstreamTag} @ ${manifest.upstreamCommit.slice(0, 8)})`);
