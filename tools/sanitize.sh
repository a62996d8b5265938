#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer run of the test suite (issue 12). Builds the addon, llama.cpp and
# ggml instrumented (-fsanitize=address,undefined, its own work dir .cache/cmake-cpu-san-*, output in
# build/sanitize/), then runs vitest with the sanitizer runtimes preloaded into node and LLAMA_DUET_ADDON
# pointing at that build. A second pass runs LeakSanitizer over the native tests (leaks inside node/V8 itself are
# suppressed by tools/lsan.supp; anything in llama_duet.node, libllama or ggml is reported).
# Usage: bash tools/sanitize.sh [vitest file filters...]     (not in CI: ~5 min build, the suite runs ~3× slower)
set -euo pipefail
cd "$(dirname "$0")/.."
out="$PWD/build/sanitize"
LLAMA_DUET_SANITIZE=address,undefined LLAMA_DUET_FORCE_BUILD=1 node native/tools/build.mjs "$out"
asan=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
export LLAMA_DUET_ADDON="$out/llama_duet.node"
export LD_PRELOAD="$asan $ubsan"
# recoverable UBSan checks halt on the first finding, except the upstream ones listed in tools/ubsan.supp
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$PWD/tools/ubsan.supp"
echo "== ASan + UBSan: the test suite =="
ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:halt_on_error=1:allocator_may_return_null=1" \
    npx vitest run --config test/vitest.config.ts "$@"
echo "== LeakSanitizer: native tests (load, generate every strategy, sequences, verifyForest, dispose) =="
ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:allocator_may_return_null=1" LSAN_OPTIONS="suppressions=$PWD/tools/lsan.supp:print_suppressions=0" \
    node tools/leak-check.mjs
