// ggml backends of the process: which CPU kernels run, and the CPU threadpool entry points.
//
// Native builds (`npm ci` from source) link ggml's CPU backend into the addon, compiled for the build
// machine: nothing to load. Portable prebuilds (LLAMA_DUET_CPU_VARIANTS) ship ggml's CPU backend once per
// x86-64 level as modules beside the addon (libggml-cpu-<variant>.so); load() scores each against this CPU
// with the module's own ggml_backend_score() (the check ggml's loader uses: 0 = an instruction it needs is
// missing) and loads the best, so the kernels match the CPU they land on. A CUDA module
// (libggml-cuda.so) beside them is loaded too.
//
// Environment (read once, at the first load):
//   LLAMA_DUET_CPU_VARIANT=<name>  load that variant (e.g. haswell); refused if this CPU cannot run it
//   LLAMA_DUET_AMX=0               skip variants that use AMX tiles (sapphirerapids)
#pragma once
#include <string>

#include "ggml-backend.h"
#include "ggml.h"

namespace duet::backends {

// Loads the backends once per process (every Node environment calls it; later calls return at once).
// throws DuetError(NATIVE) when no usable CPU backend exists (missing modules, an unknown or unsupported
// LLAMA_DUET_CPU_VARIANT).
void load();

// "native" (compiled for the build machine), "generic" (GGML_NATIVE off, one portable level), or the loaded
// variant's name (x64, haswell, skylakex, icelake, zen4, alderlake, sapphirerapids, ...).
const std::string & cpu_variant();

// Where the variant came from: "built-in", or the module's path.
const std::string & cpu_module();

// llama-duet's multi-row kernels in the loaded CPU module (native/ggml/small-batch.inc): "avx512-vnni",
// "avx-vnni" or "avx2" when they take Q8_0/Q4_K/Q6_K weights at the next model load, "off"
// (LLAMA_DUET_KERNELS=0), "none" (a CPU level without AVX2) or "unavailable" (built without them).
std::string cpu_kernels();

// Whether cpu_kernels() names an ISA, i.e. the kernels take Q8_0/Q4_K/Q6_K weights at the next load.
bool cpu_kernels_run();

// The CPU device's extra buffer type of that name ("CPU_REPACK", "AMX", ...), or nullptr.
ggml_backend_buffer_type_t cpu_extra_buffer_type(const char * name);

// ggml-cpu's threadpool API (a module's functions in variant builds, reached through the CPU backend's
// registry; direct calls otherwise).
ggml_threadpool * threadpool_new(int n_threads);
void              threadpool_free(ggml_threadpool * pool);

}  // namespace duet::backends
