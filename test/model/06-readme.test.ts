/** The README's examples run as written: the custom scheduler reproduces greedy generation; beam search
 *  costs one expert pass per step and beats greedy's log-prob; DSBD needs fewer expert passes than beam
 *  sampling and equals beam search at temperature 0. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { packageRoot } from '../../lib/paths.js';

/** Runs the README block after `<!-- example: NAME -->` and returns its stdout. */
function runExample(name: string): string {
    const root = packageRoot();
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const match = new RegExp(`<!-- example: ${name} -->\\s*\`\`\`js\\n([\\s\\S]*?)\`\`\``).exec(readme);
    expect(match, `the README example block '${name}'`).not.toBeNull();
    // inside the package, so `import 'llama-duet'` resolves to this package (self-reference through "exports")
    const dir = join(root, '.cache');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `readme-${name}.mjs`);
    writeFileSync(file, match![1]!);
    return execFileSync(process.execPath, [file], { cwd: root, encoding: 'utf8', timeout: 120_000 });
}

it('README beam example', () => {
    const out = runExample('beam');
    const [, search, greedy] = /log-prob: beam search (-?[\d.]+), greedy (-?[\d.]+)/.exec(out)!;
    expect(Number(search)).toBeGreaterThanOrEqual(Number(greedy));
    const [, passes, tokens] = /(\d+) expert passes for (\d+) tokens × 4 beams/.exec(out)!;
    expect(Number(passes)).toBeLessThanOrEqual(Number(tokens));
});

it('README dsbd example', () => {
    const out = runExample('dsbd');
    const [, dsbd, beam] = /dsbd: (\d+) expert passes .*; beam sampling: (\d+)/.exec(out)!;
    expect(Number(dsbd)).toBeLessThan(Number(beam));
    expect(out).toMatch(/same as beam search: true/);
    expect(out).toMatch(/singleBeam peak KV cells: \d+/);
});

it('README custom-scheduler example', () => {
    const out = runExample('custom-scheduler');
    expect(out).toMatch(/identical to greedy: true/);
    const [, tokens, passes] = /(\d+) tokens in (\d+) expert passes/.exec(out)!;
    expect(Number(passes)).toBeLessThanOrEqual(Number(tokens));
});
