// Fetches the pinned llama.cpp release: `npm pack` of the exact node-llama-cpp version recorded in
// native/llama.cpp.json (through the npm registry and its cache), an integrity check against the
// manifest, then only the git bundle and patches are extracted into .cache/llama.cpp/<commit>.
// node-llama-cpp is never installed or made a dependency.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function readManifest(root) {
  return JSON.parse(readFileSync(join(root, 'native', 'llama.cpp.json'), 'utf8'));
}

/** The extracted tree for the manifest's commit (it may not exist yet). */
export function llamaCppDir(root) {
  return process.env.LLAMA_CPP_DIR || join(root, '.cache', 'llama.cpp', readManifest(root).upstreamCommit);
}

function run(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], ...opts }).toString();
}

export function ensureLlamaCpp(root) {
  const m = readManifest(root);
  const dest = join(root, '.cache', 'llama.cpp', m.upstreamCommit);
  const ready = join(dest, '.llama-duet-ready');
  if (existsSync(ready)) return dest;

  const cache = join(root, '.cache', 'npm-pack');
  mkdirSync(cache, { recursive: true });
  const tarball = join(cache, `${m.package}-${m.version}.tgz`);
  if (!existsSync(tarball)) {
    console.log(`[llama-duet] fetching ${m.package}@${m.version} from the npm registry (llama.cpp ${m.upstreamTag})`);
    const npm = process.env.npm_execpath ? [process.execPath, [process.env.npm_execpath]] : ['npm', []];
    run(npm[0], [...npm[1], 'pack', `${m.package}@${m.version}`, '--pack-destination', cache, '--silent'], { cwd: cache });
  }
  const [algo, expected] = m.integrity.split('-');
  const actual = createHash(algo).update(readFileSync(tarball)).digest('base64');
  if (actual !== expected) {
    rmSync(tarball, { force: true });
    throw new Error(`integrity mismatch for ${m.package}@${m.version}: expected ${m.integrity}, got ${algo}-${actual}`);
  }

  const tmp = `${dest}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  run('tar', ['-xzf', tarball, '-C', tmp, m.bundle, m.patches]);
  const src = join(tmp, 'src');
  run('git', ['-c', 'advice.detachedHead=false', 'clone', '--quiet', join(tmp, m.bundle), src]);
  const head = run('git', ['-C', src, 'rev-parse', 'HEAD']).trim();
  if (head !== m.upstreamCommit) throw new Error(`bundle HEAD ${head} != manifest commit ${m.upstreamCommit}`);
  const patchDir = join(tmp, m.patches);
  for (const patch of readdirSync(patchDir).filter((f) => f.endsWith('.diff') || f.endsWith('.patch')).sort()) {
    run('git', ['-C', src, 'apply', join(patchDir, patch)]);
    console.log(`[llama-duet] applied ${patch}`);
  }
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(join(root, '.cache', 'llama.cpp'), { recursive: true });
  renameSync(src, dest);
  rmSync(tmp, { recursive: true, force: true });
  writeFileSync(ready, `${m.package}@${m.version} ${m.upstreamTag} ${m.upstreamCommit}\n`);
  return dest;
}
