/** `llama-duet bench`: every strategy side by side on a pair, against the peers (bench/README.md). */
import { num, parse, UsageError } from './common.js';

export const usage = `llama-duet bench --workload w0|w1|w1q4k|w1q4km|demo|concurrency [--expert A.gguf --amateur B.gguf] [--out FILE.json]
                 [--repeats N] [--no-quality]
    Runs every strategy side by side on a pair (w0: the tiny pair, 64 tokens; w1: the tinyllama pair
    (Q8_0), w1q4k: the same in Q4_K, w1q4km: in Q4_K_M, 128 tokens; all 3 prompts, 2 threads), the
    verify-cost curve k = 1..16 with llama-duet's CPU kernels on and off, and the one-token pass against
    the streaming read bandwidth measured in the same run; writes bench/results/<workload>-<date>.json,
    .md and .svg (schema: bench/README.md). Same as \`npm run bench -- --workload w0\`. The peers
    (llama.cpp's llama-speculative-simple and llama-bench, node-llama-cpp) run once
    \`npm run bench:peers\` built them. --workload demo instead writes the quality table of the shipped demo pair
    (every strategy, greedy and T = 1, over 20 held-out prompts): bench/results/demo-quality-<date>.json, .md.
    --workload concurrency: 1/2/4/8/16 concurrent generate() calls (greedy, speculative) on the tinyllama pair,
    then closed-loop HTTP clients (1, 8, 32) against our serve() and llama-server --parallel 8 (plain and -md),
    and llama-batched-bench: bench/results/concurrency-<date>.json, .md.`;

export async function bench(args: string[]): Promise<void> {
    const { values } = parse(
        args,
        {
            workload: { type: 'string' },
            expert: { type: 'string' },
            amateur: { type: 'string' },
            out: { type: 'string' },
            repeats: { type: 'string' },
            'no-quality': { type: 'boolean' },
        },
        usage,
    );
    if (values.help) {
        process.stdout.write(usage + '\n');
        return;
    }
    const { runBench, markdown, workloads, runDemoQuality, demoQualityMarkdown } = await import('../bench.js');
    const workload = values.workload ?? 'w0';
    if (workload === 'demo') {
        const { report, files } = await runDemoQuality(values.out ? { out: values.out } : {});
        process.stdout.write(demoQualityMarkdown(report));
        console.log(`\nwrote ${files.join(', ')}`);
        return;
    }
    if (workload === 'concurrency') {
        const { runConcurrency, concurrencyMarkdown } = await import('../benchConcurrency.js');
        const repeats = num(values.repeats, 'repeats');
        const { report, files } = await runConcurrency({ ...(values.out ? { out: values.out } : {}), ...(repeats ? { repeats } : {}) });
        process.stdout.write(concurrencyMarkdown(report));
        console.log(`\nwrote ${files.join(', ')}`);
        return;
    }
    if (!Object.hasOwn(workloads, workload)) throw new UsageError(`--workload must be one of ${Object.keys(workloads).join(', ')}`, usage);
    if ((values.expert === undefined) !== (values.amateur === undefined)) throw new UsageError('--expert and --amateur go together', usage);
    const repeats = num(values.repeats, 'repeats');
    const { report, files } = await runBench({
        workload: workload as keyof typeof workloads,
        ...(values.expert ? { expert: values.expert, amateur: values.amateur! } : {}),
        ...(values.out ? { out: values.out } : {}),
        ...(repeats !== undefined ? { repeats } : {}),
        quality: !values['no-quality'],
    });
    process.stdout.write(markdown(report));
    console.log(`\nwrote ${files.join(', ')}`);
}
