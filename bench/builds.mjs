#!/usr/bin/env node
// The prebuilt binary against the native (source, GGML_NATIVE) build, side by side in one run: greedy and
// speculative tokens/s on the `tinyllama` pair (issue 11's requirement: the prebuild ≥ 90% of native).
// Each build runs in its own child process (LLAMA_DUET_ADDON selects the addon file), alternating, after a
// warm-up; medians per build. Writes bench/results/builds-<date>.{json,md}.
//
// Usage: node bench/builds.mjs [--rounds N] [--tokens N] [--shape tinyllama|tinyllama-q4k] [--out FILE]
//        (node bench/builds.mjs --child <addon>  is the per-build runner)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
    options: {
        child: { type: 'string' },
        rounds: { type: 'string', default: '3' },
        tokens: { type: 'string', default: '128' },
        shape: { type: 'string', default: 'tinyllama' },
        out: { type: 'string' },
        expert: { type: 'string' },
        amateur: { type: 'string' },
    },
});
const prompts = ['The quick brown fox', 'Once upon a time there was a', 'In a hole in the ground there lived'];
const maxTokens = Number(values.tokens);

if (values.child) {
    // one build: load the pair, warm up, then greedy and speculative on every prompt
    const { loadPair, systemInfo } = await import(join(root, 'dist', 'index.js'));
    const pair = await loadPair({ expert: values.expert, amateur: values.amateur, contextSize: 1024, threads: 2 });
    await pair.generate(prompts[0], { strategy: 'speculative', maxTokens: 16 });
    const out = { cpuVariant: systemInfo().cpuVariant, greedy: [], speculative: [], acceptance: [] };
    for (const p of prompts) {
        out.greedy.push((await pair.generate(p, { strategy: 'greedy', maxTokens })).stats.tokensPerSecond);
        const s = await pair.generate(p, { strategy: 'speculative', maxTokens });
        out.speculative.push(s.stats.tokensPerSecond);
        out.acceptance.push(s.stats.acceptanceRate);
    }
    await pair.dispose();
    process.stdout.write(JSON.stringify(out) + '\n');
    process.exit(0);
}

const { makePair } = await import(join(root, 'dist', 'index.js'));
const { cpuFacts } = await import(join(root, 'dist', 'system.js'));
const files = values.expert
    ? { expert: values.expert, amateur: values.amateur }
    : await makePair({ out: join(root, 'models', values.shape), shape: values.shape, reuse: true });
const nativeAddon = join(root, 'build', 'Release', 'llama_duet.node');
const preDir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
const preAddon = existsSync(preDir) ? readdirSync(preDir).find((f) => f.endsWith('.node')) : undefined;
if (!existsSync(nativeAddon) || !preAddon) {
    console.error(`needs both builds: ${nativeAddon} (npm ci) and ${preDir}/*.node (npm run prebuild)`);
    process.exit(1);
}
const builds = { native: nativeAddon, prebuild: join(preDir, preAddon) };
const samples = { native: { greedy: [], speculative: [], acceptance: [] }, prebuild: { greedy: [], speculative: [], acceptance: [] } };
const variants = {};
for (let r = 0; r < Number(values.rounds); r++) {
    for (const name of r % 2 === 0 ? ['native', 'prebuild'] : ['prebuild', 'native']) {
        const line = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--child', builds[name], '--expert', files.expert, '--amateur', files.amateur, '--tokens', String(maxTokens)], {
            env: { ...process.env, LLAMA_DUET_ADDON: builds[name] },
            stdio: ['ignore', 'pipe', 'inherit'],
        })
            .toString()
            .trim()
            .split('\n')
            .pop();
        const o = JSON.parse(line);
        variants[name] = o.cpuVariant;
        for (const k of ['greedy', 'speculative', 'acceptance']) samples[name][k].push(...o[k]);
        process.stderr.write(`[builds] round ${r + 1} ${name} (${o.cpuVariant}): greedy ${o.greedy.map((v) => v.toFixed(1)).join('/')}, speculative ${o.speculative.map((v) => v.toFixed(1)).join('/')}\n`);
    }
}
const median = (v) => {
    const s = [...v].sort((a, b) => a - b);
    return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const cpu = cpuFacts();
const rows = ['native', 'prebuild'].map((b) => ({ build: b, cpuVariant: variants[b], greedy: median(samples[b].greedy), speculative: median(samples[b].speculative), acceptance: median(samples[b].acceptance) }));
const report = {
    schema: 1,
    date: new Date().toISOString(),
    cpu: cpu.model,
    flags: cpu.summary,
    shape: values.shape,
    maxTokens,
    prompts,
    rounds: Number(values.rounds),
    rows,
    samples,
    ratios: { greedy: rows[1].greedy / rows[0].greedy, speculative: rows[1].speculative / rows[0].speculative },
};
const md = [
    `## prebuild vs native — ${report.date.slice(0, 10)}`,
    '',
    `${cpu.model} (${cpu.summary}); \`${values.shape}\` pair, 2 threads, ${maxTokens} new tokens, ${prompts.length} prompts × ${report.rounds} alternating rounds, one child process per build and round (medians).`,
    '',
    '| build | CPU kernels | greedy tokens/s | speculative tokens/s | acceptance |',
    '|---|---|---|---|---|',
    ...rows.map((x) => `| ${x.build} | ${x.cpuVariant} | ${x.greedy.toFixed(2)} | ${x.speculative.toFixed(2)} | ${x.acceptance.toFixed(3)} |`),
    '',
    `prebuild / native: greedy **${report.ratios.greedy.toFixed(3)}**, speculative **${report.ratios.speculative.toFixed(3)}**`,
    '',
].join('\n');
const out = values.out ?? join(root, 'bench', 'results', `builds-${report.date.slice(0, 10)}`);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(`${out}.json`, JSON.stringify(report, null, 2) + '\n');
writeFileSync(`${out}.md`, md);
process.stdout.write(md);
