// One fuzz case, in its own process (a GGML_ASSERT would abort it, not the runner): loads `file` as the
// expert of a pair with a valid amateur (the compatibility check, then greedy and speculative generation) and
// prints one JSON line: { outcome: 'ok' } or { outcome: 'error', code, message, stage }.
// Usage: node test/fuzz/run-one.mjs <mutant.gguf> <valid amateur.gguf> <dist/index.js>
const [file, amateur, index] = process.argv.slice(2);
const { loadModel, loadPair } = await import(index);
let stage = 'load';
const report = (o) => process.stdout.write(JSON.stringify(o) + '\n');
try {
    // the file alone (a model), then as a pair's expert
    const m = await loadModel(file, { contextSize: 64, threads: 1 });
    stage = 'generate';
    await m.generate('The quick brown fox', { maxTokens: 3 });
    m.tokenize('héllo wörld 123 <s> </s>');
    await m.dispose();
    stage = 'pair';
    const p = await loadPair({ expert: file, amateur, contextSize: 64, threads: 1 });
    stage = 'speculative';
    await p.generate('The quick brown fox', { strategy: 'speculative', maxTokens: 3, draftTokens: 2 });
    await p.dispose();
    report({ outcome: 'ok' });
} catch (e) {
    report({ outcome: 'error', stage, code: e?.code ?? null, name: e?.name ?? null, message: String(e?.message ?? e).slice(0, 300) });
}
