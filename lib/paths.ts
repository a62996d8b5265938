/** Locations inside the installed package. @internal */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (the folder holding package.json): dist/ and lib/ both sit one level below it. */
export function packageRoot(): string {
    return resolve(dirname(fileURLToPath(import.meta.url)), '..');
}

interface LlamaManifest {
    package: string;
    version: string;
    upstreamTag: string;
    upstreamCommit: string;
}

export function llamaManifest(): LlamaManifest {
    return JSON.parse(readFileSync(join(packageRoot(), 'native', 'llama.cpp.json'), 'utf8')) as LlamaManifest;
}

/** The llama.cpp tree the build extracted (or LLAMA_CPP_DIR). */
export function llamaCppDir(): string {
    return process.env['LLAMA_CPP_DIR'] ?? join(packageRoot(), '.cache', 'llama.cpp', llamaManifest().upstreamCommit);
}

/** The llama SPM vocabulary shipped in the llama.cpp tree (used by synthetic pairs). */
export function defaultVocabPath(): string {
    return join(llamaCppDir(), 'models', 'ggml-vocab-llama-spm.gguf');
}
