/** `llama-duet demo`: the shipped demo pair continues one prompt with every strategy, with speed and repetition. */
import { loadPair } from '../models.js';
import type { GenerateOptions } from '../options.js';
import { demoPair } from '../paths.js';
import { repeatedNgrams } from '../textStats.js';
import { num, parse, progressBar } from './common.js';

export const usage = `llama-duet demo [--max-tokens N] [--prompt TEXT] [--threads N]
    Loads the demo pair shipped in the package (models/demo: two small llama models trained on Jane Austen's
    novels; models/demo/PROVENANCE.md) and continues one prompt with greedy, sample, speculative (greedy and
    sampled), contrastive, scd, beam search, beam sampling and dsbd, printing each text with its tokens/s,
    expert passes, draft acceptance and 4-gram repetition (the share of 4-grams seen before in the output).`;

/** From the held-out part of Pride and Prejudice (its last 4%, never seen in training). */
export const demoPrompt = '"Now I am quite happy," said she, "for you will be as happy as myself. I always had a value for him.';

export const demoRuns: [string, GenerateOptions][] = [
    ['greedy', { strategy: 'greedy' }],
    ['sample (T 0.8)', { strategy: 'sample', temperature: 0.8, topP: 0.95, seed: 42 }],
    ['speculative (greedy: the same text as greedy)', { strategy: 'speculative', draftTokens: 4 }],
    ['speculative sampled (T 0.8)', { strategy: 'speculative', draftTokens: 4, temperature: 0.8, topP: 0.95, seed: 42 }],
    ['contrastive (α 0.1, β 0.5)', { strategy: 'contrastive', alpha: 0.1, beta: 0.5 }],
    ['scd (the same text as contrastive)', { strategy: 'scd', alpha: 0.1, beta: 0.5, draftTokens: 4 }],
    ['beam search (W 4)', { strategy: 'beam', beams: 4 }],
    ['beam sampling (W 4)', { strategy: 'beam', beams: 4, sample: true, seed: 42 }],
    ['dsbd (W 4, W_S 4, γ 3)', { strategy: 'dsbd', beams: 4, draftBeams: 4, draftTokens: 3, seed: 42 }],
];

export async function demo(args: string[]): Promise<void> {
    const { values } = parse(args, { 'max-tokens': { type: 'string' }, prompt: { type: 'string' }, threads: { type: 'string' } }, usage);
    if (values.help) {
        process.stdout.write(usage + '\n');
        return;
    }
    const maxTokens = num(values['max-tokens'], 'max-tokens') ?? 64;
    const threads = num(values.threads, 'threads');
    const prompt = values.prompt ?? demoPrompt;
    const onProgress = progressBar('loading the demo pair');
    await using pair = await loadPair({ ...demoPair(), contextSize: 1024, ...(threads ? { threads } : {}), ...(onProgress ? { onProgress } : {}) });
    const mp = (n: number) => `${(n / 1e6).toFixed(1)}M`;
    const about = (m: typeof pair.expert) => `${mp(m.nParams)} parameters, ${m.nLayer} layers × ${m.nEmbd}, vocabulary ${m.nVocab}`;
    console.log(`expert:  ${about(pair.expert)} (models/demo/expert.gguf)`);
    console.log(`amateur: ${about(pair.amateur)} (models/demo/amateur.gguf)`);
    console.log(`prompt:  ${JSON.stringify(prompt)}`);
    for (const [label, options] of demoRuns) {
        console.log(`\n=== ${label} ===`);
        process.stdout.write(prompt);
        const s = pair.stream(prompt, { ...options, maxTokens });
        for await (const chunk of s) process.stdout.write(chunk.text);
        const r = await s.result;
        const st = r.stats;
        const parts = [`${st.tokensPerSecond.toFixed(0)} tokens/s`, `${st.expertPasses} expert passes`];
        if (st.acceptanceRate !== undefined) parts.push(`acceptance ${(100 * st.acceptanceRate).toFixed(0)}%`);
        parts.push(`4-gram repetition ${(100 * repeatedNgrams(r.tokens, 4)).toFixed(0)}%`);
        console.log(`\n-- ${parts.join(' · ')} (${r.finishReason})`);
    }
}
