/** Locations inside the installed package. @internal */
import { existsSync, readFileSync } from 'node:fs';
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

/**
 * The llama SPM vocabulary used by synthetic pairs: the copy inside the npm package (vocab/, written by
 * `npm pack`), else the one in the llama.cpp tree a source build extracted.
 */
export function defaultVocabPath(): string {
    const packaged = join(packageRoot(), 'vocab', 'llama-spm.gguf');
    return existsSync(packaged) ? packaged : join(llamaCppDir(), 'models', 'ggml-vocab-llama-spm.gguf');
}

/**
 * The demo pair shipped in the package (models/demo: two small llama models trained on Jane Austen's novels,
 * see models/demo/PROVENANCE.md): the paths for loadPair().
 */
export function demoPair(): { expert: string; amateur: string } {
    const dir = join(packageRoot(), 'models', 'demo');
    return { expert: join(dir, 'expert.gguf'), amateur: join(dir, 'amateur.gguf') };
}
