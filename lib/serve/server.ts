/**
 * `llama-duet serve`: an OpenAI-compatible HTTP server (node:http) over the public API only, as a user's
 * own code would write it. Concurrent requests run concurrently: the model/pair batches them natively
 * (continuous batching), up to its `maxConcurrent`, queueing up to `maxQueued` beyond (then 429).
 *
 *   GET  /health                 { status, running, queued }
 *   GET  /v1/models              the loaded model
 *   POST /v1/completions         { prompt, max_tokens, temperature, top_p, seed, stop, stream, ...extensions }
 *   POST /v1/chat/completions    { messages, ... } through the GGUF's chat template (applyChatTemplate)
 *
 * Extensions (snake_case of the library's GenerateOptions): strategy, draft_tokens, draft_confidence,
 * adaptive_draft, alpha, beta, amateur_temperature, amateur_sees_prompt, bonus, top_k, min_p, beams, sample,
 * length_penalty, early_stopping, draft_beams, width_threshold, min_width, single_beam, select. The default
 * strategy is `speculative` on a pair (the expert's own output law, faster), else greedy at temperature 0 and
 * sample otherwise. Responses carry `usage` and our `llama_duet` stats.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { DisposedError, ErrorCode, InvalidArgumentError, LlamaDuetError, QueueFullError } from '../errors.js';
import type { ChatMessage, GenerationResult } from '../Decoder.js';
import type { LlamaModel, ModelPair } from '../models.js';
import type { GenerateOptions } from '../options.js';

export interface ServeOptions {
    /** Defaults to `127.0.0.1` (loopback only). */
    host?: string;
    /** Defaults to `8080`; `0` picks a free port. */
    port?: number;
    /** The id /v1/models reports and responses echo. Defaults to the expert's file name. */
    modelName?: string;
    /** Largest request body in bytes (413 beyond). Defaults to 1 MiB. */
    maxBodyBytes?: number;
}

export interface DuetServer {
    /** `http://host:port` */
    readonly url: string;
    readonly port: number;
    /** Stops accepting connections, lets the requests in flight finish, then resolves. */
    close(): Promise<void>;
}

const extensions: Record<string, keyof GenerateOptions> = {
    strategy: 'strategy',
    draft_tokens: 'draftTokens',
    draft_confidence: 'draftConfidence',
    adaptive_draft: 'adaptiveDraft',
    alpha: 'alpha',
    beta: 'beta',
    amateur_temperature: 'amateurTemperature',
    amateur_sees_prompt: 'amateurSeesPrompt',
    bonus: 'bonus',
    top_k: 'topK',
    min_p: 'minP',
    beams: 'beams',
    sample: 'sample',
    length_penalty: 'lengthPenalty',
    early_stopping: 'earlyStopping',
    draft_beams: 'draftBeams',
    width_threshold: 'widthThreshold',
    min_width: 'minWidth',
    single_beam: 'singleBeam',
    select: 'select',
};

class HttpError extends Error {
    constructor(
        readonly status: number,
        message: string,
        readonly type = 'invalid_request_error',
    ) {
        super(message);
    }
}

/** An OpenAI request body → the library's options (the library validates the values themselves). */
export function requestOptions(body: Record<string, unknown>, isPair: boolean): GenerateOptions {
    const o: Record<string, unknown> = {};
    if (body['n'] !== undefined && body['n'] !== 1) throw new HttpError(400, 'only n = 1 is supported');
    if (body['max_tokens'] !== undefined) o['maxTokens'] = body['max_tokens'];
    else if (body['max_completion_tokens'] !== undefined) o['maxTokens'] = body['max_completion_tokens'];
    if (body['top_p'] !== undefined) o['topP'] = body['top_p'];
    if (body['seed'] !== undefined && body['seed'] !== null) o['seed'] = body['seed'];
    if (body['stop'] !== undefined && body['stop'] !== null) o['stop'] = typeof body['stop'] === 'string' ? [body['stop']] : body['stop'];
    for (const [k, v] of Object.entries(extensions)) if (body[k] !== undefined) o[v] = body[k];
    const temperature = body['temperature'] === undefined || body['temperature'] === null ? 1 : body['temperature'];
    if (o['strategy'] === undefined) o['strategy'] = isPair ? 'speculative' : temperature === 0 ? 'greedy' : 'sample';
    if (o['strategy'] !== 'greedy') o['temperature'] = temperature;
    return o as GenerateOptions;
}

const finishReason = (r: GenerationResult['finishReason']): string => (r === 'eos' || r === 'stop' ? 'stop' : 'length');

function send(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
}

function errorStatus(e: unknown): HttpError {
    if (e instanceof HttpError) return e;
    if (e instanceof QueueFullError) return new HttpError(429, e.message, 'rate_limit_error');
    if (e instanceof InvalidArgumentError) return new HttpError(400, e.message);
    if (e instanceof DisposedError) return new HttpError(503, e.message, 'server_error');
    if (e instanceof LlamaDuetError && e.code === ErrorCode.CONTEXT_OVERFLOW) return new HttpError(400, e.message);
    return new HttpError(500, e instanceof Error ? e.message : String(e), 'server_error');
}

async function readBody(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of req) {
        n += (c as Buffer).length;
        if (n > limit) throw new HttpError(413, `request body over ${limit} bytes`);
        chunks.push(c as Buffer);
    }
    let body: unknown;
    try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch (e) {
        throw new HttpError(400, `invalid JSON: ${(e as Error).message}`);
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'the request body must be a JSON object');
    return body as Record<string, unknown>;
}

/** Serves `target` over HTTP until close(). */
export async function serve(target: LlamaModel | ModelPair, options: ServeOptions = {}): Promise<DuetServer> {
    const isPair = 'amateur' in target;
    const info = isPair ? (target as ModelPair).expert : (target as LlamaModel).info;
    const modelName = options.modelName ?? info.path.split(/[\\/]/).pop()!;
    const limit = options.maxBodyBytes ?? 1 << 20;
    const created = Math.floor(Date.now() / 1000);
    const inFlight = new Set<Promise<void>>();
    let draining = false;

    async function complete(req: IncomingMessage, res: ServerResponse, chat: boolean): Promise<void> {
        const body = await readBody(req, limit);
        let prompt: string;
        if (chat) {
            // applyChatTemplate validates the messages (InvalidArgumentError → 400 with its message)
            prompt = target.applyChatTemplate(body['messages'] as ChatMessage[]);
        } else {
            if (typeof body['prompt'] !== 'string') throw new HttpError(400, "'prompt' must be a string");
            prompt = body['prompt'];
        }
        const opts = requestOptions(body, isPair);
        // a client that goes away cancels its request (and frees its slot)
        const ac = new AbortController();
        res.on('close', () => {
            if (!res.writableFinished) ac.abort();
        });
        const id = (chat ? 'chatcmpl-' : 'cmpl-') + randomUUID();
        const object = chat ? 'chat.completion' : 'text_completion';
        const usage = (r: GenerationResult) => ({
            prompt_tokens: r.stats.promptTokens,
            completion_tokens: r.stats.generatedTokens,
            total_tokens: r.stats.promptTokens + r.stats.generatedTokens,
            prompt_tokens_details: { cached_tokens: r.stats.cachedPromptTokens },
        });
        if (body['stream'] !== true) {
            const r = await target.generate(prompt, { ...opts, signal: ac.signal });
            const choice = chat
                ? { index: 0, message: { role: 'assistant', content: r.text }, finish_reason: finishReason(r.finishReason) }
                : { index: 0, text: r.text, finish_reason: finishReason(r.finishReason) };
            send(res, 200, { id, object, created: Math.floor(Date.now() / 1000), model: modelName, choices: [choice], usage: usage(r), llama_duet: { finish_reason: r.finishReason, stats: r.stats } });
            return;
        }
        const s = target.stream(prompt, { ...opts, signal: ac.signal });
        const chunkObject = chat ? 'chat.completion.chunk' : 'text_completion';
        const event = (choice: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
            `data: ${JSON.stringify({ id, object: chunkObject, created: Math.floor(Date.now() / 1000), model: modelName, choices: [choice], ...extra })}\n\n`;
        let headers = false;
        const start = () => {
            if (headers) return;
            headers = true;
            res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
            if (chat) res.write(event({ index: 0, delta: { role: 'assistant' }, finish_reason: null }));
        };
        try {
            for await (const c of s) {
                if (c.text === '') continue;
                start();
                res.write(event(chat ? { index: 0, delta: { content: c.text }, finish_reason: null } : { index: 0, text: c.text, finish_reason: null }));
            }
            const r = await s.result;
            start();
            res.write(event(chat ? { index: 0, delta: {}, finish_reason: finishReason(r.finishReason) } : { index: 0, text: '', finish_reason: finishReason(r.finishReason) }, { usage: usage(r), llama_duet: { finish_reason: r.finishReason, stats: r.stats } }));
            res.end('data: [DONE]\n\n');
        } catch (e) {
            if (ac.signal.aborted) return; // the client left
            if (!headers) throw e; // nothing sent yet: an ordinary error response
            const err = errorStatus(e);
            res.end(`data: ${JSON.stringify({ error: { message: err.message, type: err.type } })}\n\n`);
        }
    }

    async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
        const url = (req.url ?? '/').split('?')[0];
        try {
            if (req.method === 'GET' && url === '/health') {
                const load = target._decoder.load;
                return send(res, draining ? 503 : 200, { status: draining ? 'draining' : 'ok', ...load });
            }
            if (req.method === 'GET' && url === '/v1/models') {
                return send(res, 200, { object: 'list', data: [{ id: modelName, object: 'model', created, owned_by: 'llama-duet' }] });
            }
            if (url === '/v1/completions' || url === '/v1/chat/completions') {
                if (req.method !== 'POST') throw new HttpError(405, `${url} takes POST`);
                if (draining) throw new HttpError(503, 'the server is shutting down', 'server_error');
                return await complete(req, res, url === '/v1/chat/completions');
            }
            throw new HttpError(404, `no route ${req.method} ${url}`);
        } catch (e) {
            const err = errorStatus(e);
            if (!res.headersSent) send(res, err.status, { error: { message: err.message, type: err.type, code: e instanceof LlamaDuetError ? e.code : null } });
            else res.end();
        }
    }

    const server: Server = createServer((req, res) => {
        const p = handle(req, res).finally(() => inFlight.delete(p));
        inFlight.add(p);
    });
    await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port ?? 8080, options.host ?? '127.0.0.1', () => {
            server.off('error', reject);
            resolve();
        });
    });
    const address = server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return {
        url: `http://${host}:${address.port}`,
        port: address.port,
        async close() {
            draining = true;
            const closed = new Promise<void>((r) => server.close(() => r()));
            server.closeIdleConnections();
            await Promise.allSettled([...inFlight]);
            server.closeAllConnections();
            await closed;
        },
    };
}
