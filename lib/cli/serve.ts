/** `llama-duet serve`: the OpenAI-compatible HTTP server (lib/serve/server.ts) on a model or a pair. */
import { serve as startServer } from '../serve/server.js';
import { loadFlags, loadOptions, loadTarget, loadUsage, num, parse, targetFiles, targetFlags, UsageError } from './common.js';

export const usage = `llama-duet serve [--expert A.gguf [--amateur B.gguf]] [--host H] [--port P] [--model-name NAME]
                      ${loadUsage}
    An OpenAI-compatible server: GET /health, GET /v1/models, POST /v1/completions, POST /v1/chat/completions
    (stream: true as server-sent events; our options as extension fields: strategy, draft_tokens, alpha, beta, ...).
    Loopback (127.0.0.1:8080) by default. Concurrent requests share forward passes (--max-concurrent, default 8);
    beyond --max-queued waiting requests (default 256) the answer is 429. SIGTERM / SIGINT: stop accepting, finish
    the requests in flight, exit. Without --expert it serves the demo pair shipped in the package.`;

const flags = {
    ...targetFlags,
    host: { type: 'string' },
    port: { type: 'string' },
    'model-name': { type: 'string' },
    ...loadFlags,
} as const;

export async function serve(args: string[]): Promise<void> {
    const { values: v } = parse(args, flags, usage);
    if (v.help) {
        process.stdout.write(usage + '\n');
        return;
    }
    const files = targetFiles(v, usage);
    const port = num(v.port, 'port');
    if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw new UsageError(`--port expects 0..65535, got '${v.port}'`, usage);
    const load = loadOptions(v);
    const target = await loadTarget(files, load);
    const server = await startServer(target, { ...(v.host ? { host: v.host } : {}), ...(port !== undefined ? { port } : {}), ...(v['model-name'] ? { modelName: v['model-name'] } : {}) });
    process.stderr.write(`llama-duet serve: listening on ${server.url} (${files.amateur ? 'pair' : 'model'} ${files.expert})\n`);
    await new Promise<void>((resolve) => {
        const stop = () => {
            process.off('SIGTERM', stop);
            process.off('SIGINT', stop);
            process.stderr.write('llama-duet serve: draining\n');
            resolve();
        };
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
    });
    await server.close();
    await target.dispose();
    process.stderr.write('llama-duet serve: stopped\n');
}
