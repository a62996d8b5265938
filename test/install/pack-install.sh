#!/usr/bin/env bash
# Tests the package the way a user installs it (called by .ci/run after `npm run prebuild`):
#   npm pack, then into fresh empty projects:
#     1. npm install <tarball> --ignore-scripts         the prebuilt binary, no install script at all
#     2. npm install <tarball>, scripts allowed          the install script finds and keeps the prebuild
#     3. LLAMA_DUET_FORCE_BUILD=1 npm install <tarball>  the source fallback from the registry tarball
#        (cmake-js and the pinned llama.cpp fetched through the npm registry, as a user without a prebuild)
#   and in each: import, makePair of the `tiny` shape, greedy == speculative, `npx llama-duet --help`.
# Set LLAMA_DUET_SKIP_SOURCE_INSTALL=1 to leave out step 3 (it compiles llama.cpp: ~3 min on 2 cores).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/llama-duet-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$root"
ls prebuilds/linux-x64/*.node >/dev/null 2>&1 || { echo "pack-install: no prebuilds/linux-x64 (run npm run prebuild first)" >&2; exit 1; }

echo "== npm pack =="
tarball="$work/$(npm pack --silent --pack-destination "$work" | tail -n 1)"
ls -l "$tarball"
size=$(stat -c %s "$tarball")
unpacked=$(tar -tvzf "$tarball" | awk '{ s += $3 } END { print s }')
echo "package: $(basename "$tarball") $((size / 1024)) KiB packed, $((unpacked / 1024)) KiB unpacked"
tar -tzf "$tarball" | grep -E 'prebuilds/|vocab/' | sed 's/^/  /'

run_project() { # name, install args..., (env comes from the caller)
    local name=$1; shift
    local dir="$work/$name"
    mkdir -p "$dir"
    cd "$dir"
    # npm 11 runs a dependency's install script only where the project allows it
    printf '{ "name": "smoke-%s", "version": "1.0.0", "private": true, "type": "module", "allowScripts": { "llama-duet": true } }\n' "$name" > package.json
    cp "$root/test/install/smoke.mjs" .
    echo "== $name: npm install $* =="
    local t0=$SECONDS
    npm install --no-audit --no-fund "$@" "$tarball"
    echo "$name: install took $((SECONDS - t0)) s"
    node smoke.mjs
    npx --no-install llama-duet --help | head -n 3
    cd "$root"
}

LLAMA_DUET_SMOKE_EXPECT=prebuild run_project ignore-scripts --ignore-scripts
test ! -e "$work/ignore-scripts/node_modules/llama-duet/build" || { echo "pack-install: --ignore-scripts ran a build" >&2; exit 1; }
LLAMA_DUET_SMOKE_EXPECT=prebuild run_project scripts
test ! -e "$work/scripts/node_modules/llama-duet/build/Release/llama_duet.node" || { echo "pack-install: the install script built although a prebuild loads" >&2; exit 1; }
if [ "${LLAMA_DUET_SKIP_SOURCE_INSTALL:-0}" != 1 ]; then
    LLAMA_DUET_FORCE_BUILD=1 LLAMA_DUET_SMOKE_EXPECT=native run_project source
    test -e "$work/source/node_modules/llama-duet/build/Release/llama_duet.node" || { echo "pack-install: the forced source build left no addon" >&2; exit 1; }
fi
echo "pack-install: ok"
