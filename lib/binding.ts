/**
 * Loads the addon with node-gyp-build (build/Release first, then prebuilds/<platform>-<arch>), or the
 * file named by LLAMA_DUET_ADDON (benchmarks and tests that compare a native build with the prebuild). On
 * failure the error lists every attempt and the remedies (style anchor: sharp lib/sharp.mjs).
 * @internal
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ErrorCode, LlamaDuetError } from './errors.js';
import { packageRoot } from './paths.js';

const require = createRequire(import.meta.url);

export function loadAddon(): unknown {
    const root = packageRoot();
    const attempts: string[] = [];
    const forced = process.env['LLAMA_DUET_ADDON'];
    if (forced) {
        try {
            return require(resolve(forced)) as unknown; // relative to the working directory
        } catch (err) {
            throw new LlamaDuetError(ErrorCode.ADDON_NOT_FOUND, `LLAMA_DUET_ADDON=${forced} could not be loaded: ${(err as Error).message.split('\n')[0]}`);
        }
    }
    try {
        const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
        return nodeGypBuild(root);
    } catch (err) {
        attempts.push(`node-gyp-build(${root}): ${(err as Error).message.split('\n')[0]}`);
    }
    const local = join(root, 'build', 'Release', 'llama_duet.node');
    attempts.push(`${local}: ${existsSync(local) ? 'exists but failed to load' : 'not built'}`);
    throw new LlamaDuetError(
        ErrorCode.ADDON_NOT_FOUND,
        [
            'The llama-duet native addon could not be loaded. Attempts:',
            ...attempts.map((a) => `  - ${a}`),
            'Remedies:',
            '  - reinstall to use the prebuilt binary, or build from source: `LLAMA_DUET_FORCE_BUILD=1 npm rebuild llama-duet`',
            '    (in a checkout: `npm ci` or `npm run build:native`)',
            '    (it fetches the pinned llama.cpp through the npm registry; set LLAMA_CPP_DIR to build offline from a local tree)',
            `  - check that a prebuild exists for ${process.platform}-${process.arch} under prebuilds/`,
        ].join('\n'),
    );
}
