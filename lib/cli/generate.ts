/** `llama-duet generate`: one generation, streamed to stdout; stats to stderr (or everything as JSON). */
import { pairStrategies, resolveGenerateOptions, strategies, type GenerateOptions } from '../options.js';
import { InvalidArgumentError } from '../errors.js';
import { loadFlags, loadOptions, loadTarget, loadUsage, num, parse, targetFiles, targetFlags, UsageError } from './common.js';

export const usage = `llama-duet generate [--expert A.gguf [--amateur B.gguf]] --prompt TEXT [--strategy ${strategies.join('|')}]
                      [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--seed S] [--stop STR]...
                      [--draft-tokens N] [--draft-confidence P] [--adaptive-draft]             (speculative, scd, dsbd)
                      [--alpha A] [--beta B] [--amateur-temperature T] [--amateur-hides-prompt] (contrastive, scd)
                      [--no-bonus]                                                              (scd)
                      [--beams W] [--beam-sample] [--length-penalty L] [--early-stopping true|false|never] (beam, dsbd)
                      [--draft-beams W] [--width-threshold T] [--min-width W] [--single-beam] [--select sample|best] (dsbd)
                      ${loadUsage}
                      [--json] [--verbose]
    Streams the text to stdout and prints the stats to stderr; --json prints one JSON object (text, tokens,
    finishReason, stats, beams) instead. Without --expert it uses the demo pair shipped in the package
    (models/demo). speculative, contrastive, scd and dsbd need a pair (--amateur, or the demo pair).`;

const flags = {
    ...targetFlags,
    prompt: { type: 'string' },
    strategy: { type: 'string' },
    'max-tokens': { type: 'string' },
    temperature: { type: 'string' },
    'top-k': { type: 'string' },
    'top-p': { type: 'string' },
    'min-p': { type: 'string' },
    seed: { type: 'string' },
    stop: { type: 'string', multiple: true },
    'draft-tokens': { type: 'string' },
    'draft-confidence': { type: 'string' },
    'adaptive-draft': { type: 'boolean' },
    alpha: { type: 'string' },
    beta: { type: 'string' },
    'amateur-temperature': { type: 'string' },
    'amateur-hides-prompt': { type: 'boolean' },
    'no-bonus': { type: 'boolean' },
    beams: { type: 'string' },
    'beam-sample': { type: 'boolean' },
    'length-penalty': { type: 'string' },
    'early-stopping': { type: 'string' },
    'draft-beams': { type: 'string' },
    'width-threshold': { type: 'string' },
    'min-width': { type: 'string' },
    'single-beam': { type: 'boolean' },
    select: { type: 'string' },
    json: { type: 'boolean' },
    verbose: { type: 'boolean' },
    ...loadFlags,
} as const;

/** The generate() options a command line asks for (flags a strategy does not take are refused by the library). */
export function generateOptions(v: Record<string, unknown>): GenerateOptions {
    const opts: Record<string, unknown> = {};
    const numbers: [string, string][] = [
        ['maxTokens', 'max-tokens'], ['temperature', 'temperature'], ['topK', 'top-k'], ['topP', 'top-p'], ['minP', 'min-p'], ['seed', 'seed'],
        ['draftTokens', 'draft-tokens'], ['draftConfidence', 'draft-confidence'], ['alpha', 'alpha'], ['beta', 'beta'],
        ['amateurTemperature', 'amateur-temperature'], ['beams', 'beams'], ['lengthPenalty', 'length-penalty'], ['draftBeams', 'draft-beams'],
        ['widthThreshold', 'width-threshold'], ['minWidth', 'min-width'],
    ];
    if (v['strategy'] !== undefined) {
        if (!strategies.includes(v['strategy'] as never)) throw new UsageError(`--strategy must be one of ${strategies.join(', ')}, got '${String(v['strategy'])}'`);
        opts['strategy'] = v['strategy'];
    }
    for (const [k, flag] of numbers) {
        const n = num(v[flag] as string | undefined, flag);
        if (n !== undefined) opts[k] = n;
    }
    if (v['adaptive-draft']) opts['adaptiveDraft'] = true;
    if (v['amateur-hides-prompt']) opts['amateurSeesPrompt'] = false;
    if (v['no-bonus']) opts['bonus'] = false;
    if (v['beam-sample']) opts['sample'] = true;
    if (v['single-beam']) opts['singleBeam'] = true;
    if (v['select'] !== undefined) opts['select'] = v['select'];
    const early = v['early-stopping'] as string | undefined;
    if (early !== undefined) {
        if (!['true', 'false', 'never'].includes(early)) throw new UsageError(`--early-stopping expects true, false or never, got '${early}'`);
        opts['earlyStopping'] = early === 'never' ? 'never' : early === 'true';
    }
    if (v['stop']) opts['stop'] = v['stop'];
    return opts as GenerateOptions;
}

export async function generate(args: string[]): Promise<void> {
    const { values: v } = parse(args, flags, usage);
    if (v.help) {
        process.stdout.write(usage + '\n');
        return;
    }
    if (v.prompt === undefined) throw new UsageError('generate needs --prompt TEXT', usage);
    const files = targetFiles(v, usage);
    const opts = generateOptions(v);
    try {
        resolveGenerateOptions(opts); // the library's own checks, before any load: a bad combination is a usage error
    } catch (e) {
        if (e instanceof InvalidArgumentError) throw new UsageError(e.message, usage);
        throw e;
    }
    const load = loadOptions(v);
    const needsPair = pairStrategies.includes((opts.strategy ?? 'greedy') as never);
    if (needsPair && !files.amateur) throw new UsageError(`--strategy ${opts.strategy} needs --amateur B.gguf (a pair)`, usage);
    const target = await loadTarget(files, load);
    try {
        const ac = new AbortController();
        const onSigint = () => ac.abort();
        process.once('SIGINT', onSigint);
        try {
            if (v.json) {
                const r = await target.generate(v.prompt, { ...opts, signal: ac.signal });
                process.stdout.write(JSON.stringify({ text: r.text, tokens: r.tokens, finishReason: r.finishReason, stats: r.stats, ...(r.beams ? { beams: r.beams } : {}) }) + '\n');
                return;
            }
            const s = target.stream(v.prompt, { ...opts, signal: ac.signal });
            for await (const chunk of s) process.stdout.write(chunk.text);
            const r = await s.result;
            process.stdout.write('\n');
            process.stderr.write(`finishReason: ${r.finishReason}\n${JSON.stringify(r.stats, null, 2)}\n`);
            for (const [i, b] of (r.beams ?? []).entries()) {
                process.stderr.write(`beam ${i}: score ${b.score.toFixed(4)} logProb ${b.logProb.toFixed(4)}${b.finished ? ' (finished)' : ''}: ${JSON.stringify(b.text)}\n`);
            }
        } finally {
            process.off('SIGINT', onSigint);
        }
    } finally {
        await target.dispose();
    }
}
