/**
 * Issue 15, §2: `llama-duet serve` as a spawned process, driven over real HTTP (fetch): the OpenAI routes,
 * SSE streaming, concurrency (results equal the library's), bad input → 400, queue full → 429, a client
 * that disconnects frees its slot, SIGTERM drains the requests in flight then exits 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPair, type ModelPair } from '../../lib/index.js';
import { packageRoot } from '../../lib/paths.js';
import { tinyPair } from '../helpers/pairs.js';

const cli = join(packageRoot(), 'dist', 'cli.js');

async function startServer(...extra: string[]): Promise<{ proc: ChildProcess; url: string; stderr: () => string }> {
    const paths = await tinyPair();
    const proc = spawn(process.execPath, [cli, 'serve', '--expert', paths.expert, '--amateur', paths.amateur, '--port', '0', '--threads', '2', '--context-size', '4096', ...extra], {
        stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    const url = await new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no listening line: ${err}`)), 60_000);
        proc.stderr!.on('data', (d: Buffer) => {
            err += d.toString();
            const m = /listening on (http:\/\/\S+)/.exec(err);
            if (m) {
                clearTimeout(t);
                resolve(m[1]!);
            }
        });
        proc.once('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
    });
    return { proc, url, stderr: () => err };
}

const exited = (p: ChildProcess) => new Promise<number | null>((r) => (p.exitCode !== null ? r(p.exitCode) : p.once('exit', (c) => r(c))));

const post = (url: string, body: unknown, init: RequestInit = {}) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body), ...init });

/** The text of an SSE stream of completion chunks, and whether it ended with [DONE]. */
async function readSse(res: Response, chat: boolean): Promise<{ text: string; done: boolean; last: Record<string, unknown> | null }> {
    const raw = await res.text();
    let text = '';
    let done = false;
    let last: Record<string, unknown> | null = null;
    for (const block of raw.split('\n\n')) {
        if (!block.startsWith('data: ')) continue;
        const data = block.slice(6);
        if (data === '[DONE]') {
            done = true;
            continue;
        }
        const o = JSON.parse(data) as { choices: { text?: string; delta?: { content?: string } }[] };
        text += chat ? (o.choices[0]!.delta?.content ?? '') : (o.choices[0]!.text ?? '');
        last = o as unknown as Record<string, unknown>;
    }
    return { text, done, last };
}

let server: Awaited<ReturnType<typeof startServer>>;
let pair: ModelPair;

beforeAll(async () => {
    server = await startServer();
    pair = await loadPair({ ...(await tinyPair()), contextSize: 4096, threads: 2 });
}, 120_000);

afterAll(async () => {
    server?.proc.kill('SIGKILL');
    await pair?.dispose();
});

describe('llama-duet serve', () => {
    it('GET /health and /v1/models', async () => {
        const h = await fetch(`${server.url}/health`);
        expect(h.status).toBe(200);
        expect(await h.json()).toMatchObject({ status: 'ok', running: 0, queued: 0 });
        const m = (await (await fetch(`${server.url}/v1/models`)).json()) as { data: { id: string; object: string }[] };
        expect(m.data).toHaveLength(1);
        expect(m.data[0]!.object).toBe('model');
        expect((await fetch(`${server.url}/nope`)).status).toBe(404);
    });

    it('POST /v1/completions equals the library, with usage and our stats; stream: true gives the same text as SSE', async () => {
        const prompt = 'The quick brown fox';
        const want = await pair.generate(prompt, { strategy: 'speculative', maxTokens: 12, temperature: 0 });
        const res = await post(`${server.url}/v1/completions`, { prompt, max_tokens: 12, temperature: 0 });
        expect(res.status).toBe(200);
        const body = (await res.json()) as { object: string; choices: { text: string; finish_reason: string }[]; usage: Record<string, number>; llama_duet: { stats: Record<string, number> } };
        expect(body.object).toBe('text_completion');
        expect(body.choices[0]!.text).toBe(want.text);
        expect(body.choices[0]!.finish_reason).toBe('length');
        const n = want.stats.promptTokens;
        expect(body.usage).toEqual({ prompt_tokens: n, completion_tokens: 12, total_tokens: n + 12, prompt_tokens_details: { cached_tokens: body.llama_duet.stats.cachedPromptTokens } });
        expect(body.llama_duet.stats.draftedTokens).toBeGreaterThan(0); // speculative by default on a pair
        const s = await post(`${server.url}/v1/completions`, { prompt, max_tokens: 12, temperature: 0, stream: true });
        expect(s.headers.get('content-type')).toMatch(/text\/event-stream/);
        const sse = await readSse(s, false);
        expect(sse.done).toBe(true);
        expect(sse.text).toBe(want.text);
        expect(sse.last).toHaveProperty('usage');
        // the same prompt again: all of it but the last token comes from the cells the first request left
        expect((sse.last as { usage: { prompt_tokens_details: { cached_tokens: number } } }).usage.prompt_tokens_details.cached_tokens).toBe(n - 1);
    });

    it('extension fields choose the strategy; seeded sampling is reproducible', async () => {
        const prompt = 'Once upon a time';
        const want = await pair.generate(prompt, { strategy: 'scd', maxTokens: 10, temperature: 0.7, seed: 9, alpha: 0.2, beta: 0.4 });
        const body = (await (await post(`${server.url}/v1/completions`, { prompt, max_tokens: 10, temperature: 0.7, seed: 9, strategy: 'scd', alpha: 0.2, beta: 0.4 })).json()) as {
            choices: { text: string }[];
        };
        expect(body.choices[0]!.text).toBe(want.text);
    });

    it('POST /v1/chat/completions (the documented fallback template without one in the GGUF), streamed and not', async () => {
        const messages = [{ role: 'user', content: 'Say something.' }];
        const prompt = pair.applyChatTemplate(messages);
        expect(prompt).toBe('user: Say something.\nassistant:');
        const want = await pair.generate(prompt, { strategy: 'greedy', maxTokens: 8 });
        const r = (await (await post(`${server.url}/v1/chat/completions`, { messages, max_tokens: 8, strategy: 'greedy' })).json()) as {
            object: string;
            choices: { message: { role: string; content: string } }[];
        };
        expect(r.object).toBe('chat.completion');
        expect(r.choices[0]!.message).toEqual({ role: 'assistant', content: want.text });
        const sse = await readSse(await post(`${server.url}/v1/chat/completions`, { messages, max_tokens: 8, strategy: 'greedy', stream: true }), true);
        expect(sse.text).toBe(want.text);
        expect(sse.done).toBe(true);
    });

    it('concurrent clients get what each would get alone', async () => {
        const prompts = ['a', 'In the beginning', 'My name is', 'The capital of', 'Hello', 'Numbers: 1, 2,'];
        const want = [];
        // seeded sampling: exact whatever the batch (a greedy argmax could flip at an f32 near-tie, 17-serving)
        for (const [i, p] of prompts.entries()) want.push((await pair.generate(p, { strategy: 'sample', temperature: 0.8, seed: 40 + i, maxTokens: 16 })).text);
        const got = await Promise.all(
            prompts.map(async (p, i) =>
                ((await (await post(`${server.url}/v1/completions`, { prompt: p, max_tokens: 16, strategy: 'sample', temperature: 0.8, seed: 40 + i })).json()) as { choices: { text: string }[] }).choices[0]!.text,
            ),
        );
        expect(got).toEqual(want);
    });

    it('bad input is a 400 with the library’s message', async () => {
        const bad = async (body: unknown, re: RegExp, path = '/v1/completions') => {
            const r = await post(`${server.url}${path}`, body);
            expect(r.status).toBe(400);
            const e = (await r.json()) as { error: { message: string; type: string } };
            expect(e.error.type).toBe('invalid_request_error');
            expect(e.error.message).toMatch(re);
        };
        await bad('{not json', /invalid JSON/);
        await bad([1, 2], /JSON object/);
        await bad({ prompt: 42 }, /'prompt' must be a string/);
        await bad({ prompt: 'x', temperature: -1 }, /temperature/);
        await bad({ prompt: 'x', strategy: 'nope' }, /strategy/);
        await bad({ prompt: 'x', n: 3 }, /n = 1/);
        await bad({ messages: [] }, /messages/, '/v1/chat/completions');
        await bad({ messages: [{ role: 'user' }] }, /messages\[0\]/, '/v1/chat/completions');
        expect((await fetch(`${server.url}/v1/completions`)).status).toBe(405);
    });

    it('a client that disconnects cancels its request and frees its slot', async () => {
        const ac = new AbortController();
        const res = await post(`${server.url}/v1/completions`, { prompt: 'x', max_tokens: 3000, strategy: 'greedy', stream: true }, { signal: ac.signal });
        const reader = res.body!.getReader();
        await reader.read(); // the first event
        ac.abort();
        let load = { running: 1 };
        for (let i = 0; i < 100 && load.running !== 0; i++) {
            await new Promise((r) => setTimeout(r, 50));
            load = (await (await fetch(`${server.url}/health`)).json()) as { running: number };
        }
        expect(load.running).toBe(0);
    });
});

describe('llama-duet serve limits', () => {
    it('queue full → 429; SIGTERM finishes the requests in flight, then exits 0', async () => {
        const s = await startServer('--max-concurrent', '1', '--max-queued', '1');
        try {
            const health = async () => (await (await fetch(`${s.url}/health`)).json()) as { running: number; queued: number };
            const until = async (ok: (h: { running: number; queued: number }) => boolean) => {
                for (let i = 0; i < 400 && !ok(await health()); i++) await new Promise((r) => setTimeout(r, 10));
            };
            const long = post(`${s.url}/v1/completions`, { prompt: 'x', max_tokens: 3000, strategy: 'greedy' });
            await until((h) => h.running === 1);
            const queued = post(`${s.url}/v1/completions`, { prompt: 'y', max_tokens: 4, strategy: 'greedy' });
            await until((h) => h.queued === 1);
            const refused = await post(`${s.url}/v1/completions`, { prompt: 'z', max_tokens: 4, strategy: 'greedy' });
            expect(refused.status).toBe(429);
            expect(((await refused.json()) as { error: { type: string } }).error.type).toBe('rate_limit_error');
            s.proc.kill('SIGTERM');
            const [a, b] = await Promise.all([long, queued]);
            expect(a.status).toBe(200);
            const done = (await a.json()) as { usage: { completion_tokens: number }; choices: { finish_reason: string }[] };
            expect(done.usage.completion_tokens).toBeGreaterThan(0); // finished after SIGTERM, not cut off
            expect(done.choices[0]!.finish_reason).toMatch(/stop|length/);
            expect(b.status).toBe(200);
            expect(await exited(s.proc)).toBe(0);
            expect(s.stderr()).toMatch(/draining[\s\S]*stopped/);
        } finally {
            s.proc.kill('SIGKILL');
        }
    });
});
