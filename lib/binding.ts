/**
 * Loads the addon with node-gyp-build (build/Release first, then prebuilds/<platform>-<arch>). On
 * failure the error lists every attempt and the remedies (style anchor: sharp lib/sharp.mjs).
 * @internal
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, LlamaDuetError } from './errors.js';
import { packageRoot } from './paths.js';

const require = createRequire(import.meta.url);

export function loadAddon(): unknown {
    const root = packageRoot();
    const attempts: string[] = [];
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
            '  - run `npm ci` (or `npm run build:native`) in the package directory to build it from source',
            '    (it fetches the pinned llama.cpp through the npm registry; set LLAMA_CPP_DIR to build offline from a local tree)',
            `  - check that a prebuild exists for ${process.platform}-${process.arch} under prebuilds/`,
        ].join('\n'),
    );
}
