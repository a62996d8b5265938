#!/usr/bin/env node
// Builds the native addon: fetch the pinned llama.cpp (unless LLAMA_CPP_DIR is set), configure and
// compile with cmake-js in a persistent work dir (.cache/cmake-<variant>, so a second `npm ci` does not
// recompile llama.cpp), then copy the addon to build/Release where node-gyp-build finds it.
//
// Usage: node native/tools/build.mjs [OUT_DIR]
// Environment:
//   LLAMA_CPP_DIR=/path/to/llama.cpp   use a local llama.cpp tree (offline builds)
//   LLAMA_DUET_CUDA=1                  build ggml's CUDA backend (GGML_CUDA=ON)
//   LLAMA_DUET_PORTABLE=1              GGML_NATIVE=OFF (prebuilds; runs on any x86-64 CPU)
//   LLAMA_DUET_BENCH_TOOLS=1           also build llama.cpp's llama-bench and llama-speculative-simple
//   LLAMA_DUET_JOBS=N                  parallel compile jobs (default: available cores)
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { ensureLlamaCpp } from './llama-source.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(join(root, 'package.json'));
const outDir = resolve(process.argv[2] ?? join(root, 'build', 'Release'));

const flag = (name) => process.env[name] === '1' || process.env[name] === 'ON' || process.env[name] === 'true';
const cuda = flag('LLAMA_DUET_CUDA');
const portable = flag('LLAMA_DUET_PORTABLE');
const benchTools = flag('LLAMA_DUET_BENCH_TOOLS');
const jobs = Number(process.env.LLAMA_DUET_JOBS) || availableParallelism();

const llamaDir = process.env.LLAMA_CPP_DIR ? resolve(process.env.LLAMA_CPP_DIR) : ensureLlamaCpp(root);
const variant = `${cuda ? 'cuda' : 'cpu'}${portable ? '-portable' : ''}`;
const workDir = join(root, '.cache', `cmake-${variant}`);

const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
const args = [
  cmakeJs, 'compile', '--out', workDir, '--config', 'Release', '--parallel', String(jobs),
  `--CDLLAMA_CPP_DIR=${llamaDir}`,
  `--CDLLAMA_DUET_NATIVE=${portable ? 'OFF' : 'ON'}`,
  `--CDLLAMA_DUET_CUDA=${cuda ? 'ON' : 'OFF'}`,
  `--CDLLAMA_DUET_BENCH_TOOLS=${benchTools ? 'ON' : 'OFF'}`,
];
console.log(`[llama-duet] building the addon (${variant}) against ${llamaDir} in ${workDir}`);
execFileSync(process.execPath, args, { cwd: root, stdio: 'inherit' });

const built = join(workDir, 'Release', 'llama_duet.node');
if (!existsSync(built)) throw new Error(`cmake-js finished but ${built} is missing`);
mkdirSync(outDir, { recursive: true });
copyFileSync(built, join(outDir, 'llama_duet.node'));
const manifest = JSON.parse(readFileSync(join(root, 'native', 'llama.cpp.json'), 'utf8'));
console.log(`[llama-duet] addon ready: ${join(outDir, 'llama_duet.node')} (llama.cpp ${manifest.upstreamTag} @ ${manifest.upstreamCommit.slice(0, 8)})`);
