/** The README's custom-scheduler example runs as written and reproduces greedy generation. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { packageRoot } from '../../lib/paths.js';

it('README custom-scheduler example', () => {
    const root = packageRoot();
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const match = /<!-- example: custom-scheduler -->\s*```js\n([\s\S]*?)```/.exec(readme);
    expect(match, 'the README example block').not.toBeNull();
    // inside the package, so `import 'llama-duet'` resolves to this package (self-reference through "exports")
    const dir = join(root, '.cache');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'readme-custom-scheduler.mjs');
    writeFileSync(file, match![1]!);
    const out = execFileSync(process.execPath, [file], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    expect(out).toMatch(/identical to greedy: true/);
    const [, tokens, passes] = /(\d+) tokens in (\d+) expert passes/.exec(out)!;
    expect(Number(passes)).toBeLessThanOrEqual(Number(tokens));
});
