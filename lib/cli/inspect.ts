/** `llama-duet inspect A.gguf [B.gguf]`: what the files hold, from their headers, and whether two form a pair. */
import { inspect as inspectFiles, type GgufSummary } from '../inspect.js';
import { parse, UsageError } from './common.js';

export const usage = `llama-duet inspect A.gguf [B.gguf] [--json]
    Architecture, sizes, quantisation, vocabulary and chat template of each file (read from the GGUF header:
    no weights are loaded), and with two files whether they form a compatible expert/amateur pair (and if
    not, why). Exit code 0 also for an incompatible pair; 1 for a file that cannot be read.`;

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

function describe(label: string, s: GgufSummary): string {
    const params = s.parameters >= 1e9 ? `${(s.parameters / 1e9).toFixed(2)} B` : `${(s.parameters / 1e6).toFixed(2)} M`;
    const types = Object.entries(s.types)
        .sort((a, b) => b[1].bytes - a[1].bytes)
        .map(([t, x]) => `${t} ${x.tensors} tensors ${mib(x.bytes)}`)
        .join(', ');
    return [
        `${label}: ${s.path}`,
        `  name          ${s.name || '–'}`,
        `  architecture  ${s.architecture}, ${s.blockCount} layers, embedding ${s.embeddingLength}, feed-forward ${s.feedForwardLength}, heads ${s.headCount} (kv ${s.headCountKv}), context ${s.contextLength}`,
        `  size          ${params} parameters, ${mib(s.fileBytes)} on disk, ${s.tensors} tensors`,
        `  quantisation  ${s.quantization} (${types})`,
        `  vocabulary    ${s.vocabSize} tokens, tokenizer '${s.tokenizerModel}', chat template: ${s.chatTemplate ? 'yes' : 'no'}`,
    ].join('\n');
}

export async function inspect(args: string[]): Promise<void> {
    const { values, positionals } = parse(args, { json: { type: 'boolean' } }, usage, true);
    if (values.help) {
        process.stdout.write(usage + '\n');
        return;
    }
    if (positionals.length < 1 || positionals.length > 2) throw new UsageError('inspect takes one or two GGUF files', usage);
    const r = await inspectFiles(positionals[0]!, positionals[1]);
    if (values.json) {
        process.stdout.write(JSON.stringify(r) + '\n');
        return;
    }
    const out = [describe(r.amateur ? 'expert' : 'model', r.expert)];
    if (r.amateur) {
        out.push(describe('amateur', r.amateur));
        out.push(r.compatible ? 'pair: compatible (the pair strategies can use these two together)' : `pair: NOT compatible: ${r.reason}`);
    }
    process.stdout.write(out.join('\n') + '\n');
}
