#!/usr/bin/env node
// Before `npm pack` / `npm publish`: put the files the package needs at run time but git does not hold into
// the package folder: the llama SPM vocabulary (llama.cpp's models/ggml-vocab-llama-spm.gguf, MIT, 0.7 MB)
// that makePair() uses by default, so a prebuilt install (which never extracts llama.cpp) can make pairs.
// Warns when no prebuilt binary is there (such a package builds from source on install).
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readManifest } from './llama-source.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tree = process.env.LLAMA_CPP_DIR || join(root, '.cache', 'llama.cpp', readManifest(root).upstreamCommit);
const vocab = join(tree, 'models', 'ggml-vocab-llama-spm.gguf');
if (!existsSync(vocab)) {
    console.error(`[llama-duet] prepack: ${vocab} is missing: run \`npm ci\` (it extracts llama.cpp) before packing`);
    process.exit(1);
}
mkdirSync(join(root, 'vocab'), { recursive: true });
copyFileSync(vocab, join(root, 'vocab', 'llama-spm.gguf'));
if (!existsSync(join(root, 'dist', 'index.js'))) {
    console.error('[llama-duet] prepack: dist/ is missing: run `npm run build:ts` first');
    process.exit(1);
}
const pre = join(root, 'prebuilds');
const dirs = existsSync(pre) ? readdirSync(pre) : [];
if (dirs.length === 0) console.warn('[llama-duet] prepack: no prebuilds/ (run `npm run prebuild`): this package will build from source on install');
else console.log(`[llama-duet] prepack: prebuilds for ${dirs.join(', ')}; vocab/llama-spm.gguf`);
