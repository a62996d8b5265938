#!/usr/bin/env node
// After `npm run prebuild`: prebuildify moved the portable addon from build/Release into
// prebuilds/<platform>-<arch> and copied the ggml libraries there. node-gyp-build prefers build/Release over
// prebuilds, so put the native (source) build back there if one exists, and drop the copies of the portable
// build's libraries, so a development checkout keeps testing what `npm ci` built.
import { copyFileSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const release = join(root, 'build', 'Release');
if (existsSync(release)) for (const f of readdirSync(release)) if (/^libggml.*\.so$/.test(f)) rmSync(join(release, f));
const native = join(root, '.cache', 'cmake-cpu', 'Release', 'llama_duet.node');
if (existsSync(native)) {
    copyFileSync(native, join(release, 'llama_duet.node'));
    console.log('[llama-duet] build/Release holds the native build again; the portable one is in prebuilds/');
}
const dir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
if (existsSync(dir)) console.log(`[llama-duet] ${dir}: ${readdirSync(dir).join(', ')}`);
