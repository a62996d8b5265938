// Run from a fresh project that installed the llama-duet tarball: what a new user does first.
// Prints one JSON line; exits non-zero on any mismatch.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoPair, loadPair, makePair, systemInfo } from 'llama-duet';

const files = await makePair({ out: mkdtempSync(join(tmpdir(), 'llama-duet-smoke-')), shape: 'tiny' });
const pair = await loadPair({ expert: files.expert, amateur: files.amateur, contextSize: 512, threads: 2 });
const prompt = 'The quick brown fox';
const greedy = await pair.generate(prompt, { strategy: 'greedy', maxTokens: 24 });
const spec = await pair.generate(prompt, { strategy: 'speculative', maxTokens: 24 });
await pair.dispose();
// the demo pair ships inside the package and writes text
const demo = await loadPair({ ...demoPair(), contextSize: 256, threads: 2 });
const demoText = (await demo.generate('It is a truth universally acknowledged', { maxTokens: 16 })).text;
await demo.dispose();
if (!/[a-z]{3}/.test(demoText)) throw new Error(`the shipped demo pair wrote ${JSON.stringify(demoText)}`);
const same = greedy.tokens.length === 24 && greedy.tokens.every((t, i) => t === spec.tokens[i]) && spec.tokens.length === 24;
console.log(JSON.stringify({ same, cpuVariant: pair.expert.cpuVariant, cpuModule: systemInfo().cpuModule, acceptance: spec.stats.acceptanceRate }));
if (!same) process.exit(1);
// which binary loaded: the prebuild (a CPU variant module) or a source build ('native')
const expect = process.env.LLAMA_DUET_SMOKE_EXPECT;
if (expect === 'prebuild' && systemInfo().cpuVariant === 'native') throw new Error('expected the prebuilt binary, got a source build');
if (expect === 'native' && systemInfo().cpuVariant !== 'native') throw new Error(`expected a source build, got the prebuild (${systemInfo().cpuVariant})`);
