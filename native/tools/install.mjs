#!/usr/bin/env node
// The package's install script. A prebuilt binary for this platform (prebuilds/<platform>-<arch>, shipped in
// the npm package) is used when it loads here; otherwise, or when a build is forced, the addon is built from
// source (native/tools/build.mjs: cmake-js, the pinned llama.cpp through the npm registry).
//
// Forcing a source build: LLAMA_DUET_FORCE_BUILD=1 (`LLAMA_DUET_FORCE_BUILD=1 npm install llama-duet`, or
// `LLAMA_DUET_FORCE_BUILD=1 npm rebuild llama-duet`), or npm's own `--build-from-source`.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const truthy = (v) => v === '1' || v === 'true' || v === 'ON';
const forced = truthy(process.env.LLAMA_DUET_FORCE_BUILD) || truthy(process.env.npm_config_build_from_source);

/** Whether node-gyp-build finds an addon here that loads (in a child process: a crash must not stop us). */
function loadable() {
    const code = `require('node-gyp-build')(${JSON.stringify(root)});`; // resolved from the package folder
    const r = spawnSync(process.execPath, ['-e', code], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0 && process.env.npm_config_loglevel === 'verbose') process.stderr.write(r.stderr);
    return r.status === 0;
}

if (!forced && loadable()) {
    const prebuilt = existsSync(join(root, 'prebuilds', `${process.platform}-${process.arch}`));
    console.log(`[llama-duet] using the ${existsSync(join(root, 'build', 'Release', 'llama_duet.node')) ? 'local build' : prebuilt ? 'prebuilt binary' : 'addon'} (set LLAMA_DUET_FORCE_BUILD=1 to build from source)`);
    process.exit(0);
}
console.log(forced ? '[llama-duet] building from source (forced)' : `[llama-duet] no prebuilt binary loads on ${process.platform}-${process.arch}: building from source`);
try {
    execFileSync(process.execPath, [join(root, 'native', 'tools', 'build.mjs'), join(root, 'build', 'Release')], {
        cwd: root,
        stdio: 'inherit',
        env: { ...process.env, LLAMA_DUET_FORCE_BUILD: '1' },
    });
} catch (e) {
    process.exit(typeof e.status === 'number' && e.status !== 0 ? e.status : 1);
}
