// Peer runner for the benchmark (spawned by lib/bench.ts in its own process, so two llama.cpp builds
// never share one): node-llama-cpp 3.22.1 (its prebuilt CPU binary) generating greedily with the
// expert alone and with DraftSequenceTokenPredictor at the same γ. Prints one JSON object on stdout.
// usage: node bench/node-llama-cpp.mjs '{"expert","amateur","maxTokens","threads","gamma","prompts","repeats"}'
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

// installed by `npm run bench:peers` into .cache/peers (not a dependency: its optional platform packages
// are not all on the registry, which breaks `npm ci`)
const peers = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', '.cache', 'peers');
const entry = createRequire(join(peers, 'package.json')).resolve('node-llama-cpp');
const { DraftSequenceTokenPredictor, getLlama, LlamaCompletion, LlamaLogLevel } = await import(pathToFileURL(entry).href);

const o = JSON.parse(process.argv[2]);
const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: o.expert });
const draftModel = await llama.loadModel({ modelPath: o.amateur });
const pkg = entry.replace(/dist[\\/]index\.js$/, 'package.json');
const out = { version: JSON.parse(readFileSync(pkg, 'utf8')).version, runs: {} };
// a mode that throws is reported as { error } and the other still runs
async function measure(mode) {
    const tps = [];
    const tokens = [];
    let validated = 0;
    let refuted = 0;
    for (let rep = 0; rep < o.repeats; rep++) {
        for (const prompt of o.prompts) {
            const context = await model.createContext({ contextSize: 2048, threads: o.threads });
            const draftContext = mode === 'draft' ? await draftModel.createContext({ contextSize: 2048, threads: o.threads }) : null;
            try {
                const sequence = draftContext
                    ? context.getSequence({ tokenPredictor: new DraftSequenceTokenPredictor(draftContext.getSequence(), { maxTokens: o.gamma }) })
                    : context.getSequence();
                const completion = new LlamaCompletion({ contextSequence: sequence });
                let generated = 0;
                const t0 = performance.now();
                await completion.generateCompletion(prompt, { maxTokens: o.maxTokens, temperature: 0, onToken: (t) => (generated += t.length) });
                const ms = performance.now() - t0;
                tps.push((generated * 1000) / ms);
                tokens.push(generated);
                const p = sequence.tokenPredictions;
                validated += p.validated;
                refuted += p.refuted;
            } finally {
                // outside the timed region: with a token predictor, node-llama-cpp can still have a batch of
                // predicted tokens in flight after generateCompletion() resolves; disposing under it throws an
                // uncaught DisposedError from its sampler (seen on the tiny pair). Let it settle first.
                await new Promise((resolve) => setTimeout(resolve, 100));
                await context.dispose();
                await draftContext?.dispose();
            }
        }
    }
    return { tps, tokens, validated, refuted };
}
for (const mode of ['alone', 'draft']) {
    try {
        out.runs[mode] = await measure(mode);
    } catch (err) {
        out.runs[mode] = { error: `${err?.name ?? 'Error'}: ${err?.message ?? err}` };
    }
}
process.stdout.write(JSON.stringify(out) + '\n');
await model.dispose();
await draftModel.dispose();
await llama.dispose();
