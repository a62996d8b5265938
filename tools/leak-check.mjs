// Exercises the native layer once end to end, then exits normally so LeakSanitizer reports what the addon
// (or llama.cpp / ggml under it) never freed. Run by tools/sanitize.sh with the instrumented addon.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, loadPair, makePair } from '../dist/index.js';

const files = await makePair({ out: mkdtempSync(join(tmpdir(), 'llama-duet-lsan-')), shape: 'tiny' });
for (let round = 0; round < 2; round++) {
    const pair = await loadPair({ expert: files.expert, amateur: files.amateur, contextSize: 256, threads: 2 });
    for (const strategy of ['greedy', 'speculative', 'contrastive', 'scd']) await pair.generate('The quick brown fox', { strategy, maxTokens: 12 });
    await pair.generate('x', { strategy: 'sample', temperature: 0.8, maxTokens: 8, seed: 1 });
    const s = await pair.createSequence(pair.tokenize('a sequence'));
    const r = await pair.verifyForest([{ sequence: s, nodes: [{ token: 400, parent: -1 }, { token: 401, parent: 0 }] }]);
    await pair.commit(r.trees[0]);
    const f = await s.fork();
    await f.dispose();
    await s.dispose();
    const ac = new AbortController();
    const g = pair.generate('abort me', { maxTokens: 500, signal: ac.signal }).catch(() => {});
    setTimeout(() => ac.abort(), 2);
    await g;
    await pair.dispose();
    const m = await loadModel(files.expert, { contextSize: 64, threads: 1 });
    await m.generate('x', { maxTokens: 4 });
    await m.dispose();
    await loadModel(join(files.expert, 'nope')).catch(() => {});
}
console.log('leak-check: done');
