// Test export `_kernelCheck`: one quantized matmul through ggml's CPU backend, the weights once in the
// CPU_REPACK buffer type (llama-duet's multi-row kernels, native/ggml/small-batch.inc, when they run) and
// once the way ggml itself would hold them, against an exact (float64) reference.
#pragma once
#include <napi.h>

namespace duet::testing {

// _kernelCheck({ type: 'q8_0'|'q4_K'|'q6_K', rows N, cols K, m M, seed, threads, activations? })
//   Random weights (quantized by ggml) and M activation rows: 'exact' (default) chosen so that the
//   activation quantization (q8_0 / q8_K) is exact: every block is k·2^-e with integer |k| ≤ 127 and one
//   |k| = 127; 'random': (k + f)·2^-e with |f| ≤ 0.4 (not representable, but never near a rounding tie),
//   quantized for the reference by ggml's reference quantizer.
// returns {
//   kernels: what the CPU module runs ('avx512-vnni' | 'avx-vnni' | 'avx2' | 'off' | 'none' | 'unavailable'),
//   ours:      Float32Array [M·N] (null unless kernels run), the M rows in one matmul
//   oursAlone: Float32Array [M·N] (null unless kernels run), each row in a matmul of its own
//   stock:     Float32Array [M·N], ggml's path (plain CPU buffer, or ggml's own repack for Q4_K with the
//              kernels off), M rows at once
//   stockAlone: Float32Array [M·N], ggml's one-row path
//   exact:     Float64Array [M·N], the product of the stored weights and activations in float64
//   magnitude: Float64Array [M·N], Σ over blocks of |each fp32 term| (the rounding-error scale)
//   elementMagnitude: Float64Array [M·N], Σ over the K products of |weight × activation| (bounds any
//              partial sum, whatever order a kernel adds them in)
//   ops:       fp32 fused operations per output (blocks, or 2 per Q4_K super-block)
// }
Napi::Value KernelCheck(const Napi::CallbackInfo & info);

// _kernelBench({ type, rows, cols, m, threads, iterations, ours }) → { msPerMatmul, weightBytes }
//   The same matmul computed `iterations` times (bench/kernels.mjs), weights in CPU_REPACK (ours) or in
//   ggml's plain CPU buffer (stock).
Napi::Value KernelBench(const Napi::CallbackInfo & info);

// _memoryBandwidth({ mib, threads, passes }) → GB/s: the best of `passes` streaming reads of a `mib` MiB
// buffer by `threads` threads (AVX2 loads where the CPU has them), for the benchmark's one-token pass.
Napi::Value MemoryBandwidth(const Napi::CallbackInfo & info);

// _computeRate({ threads, ms }) → { alone, together, slowest } | null (no AVX2/FMA): G 8-lane fp32 fma per s
//   of one thread alone, then per thread (mean and slowest) with `threads` threads running at once. On a VM
//   whose cores share their physical cores with other tenants, together < alone says how much compute the
//   run had; the benchmark reports it beside the bandwidth.
Napi::Value ComputeRate(const Napi::CallbackInfo & info);

}  // namespace duet::testing

namespace duet::testing {
// _attnCheck({ dim D, tokens N, kvHeads, group (query heads per KV head), kv (cells), mask: 'none' |
//   'causal' | 'random', seed, threads }) → one flash-attention op through the CPU backend (llama-duet's
//   attention, native/ggml/small-batch-attn.inc, where it runs): {
//   ours: Float32Array [N][H][D]; alone: the same with each token in an op of its own; stock: ggml's
//   (LLAMA_DUET_KERNELS=0 while it computes); exact: Float64Array, the float64 result of the same inputs;
//   valueMagnitude [N][H][D]: Σ_j p_j·|v_jd| / Σ_j p_j; scoreMagnitude [N][H]: max_j Σ_d |q_d·k_jd|·scale }
//   'random' masks: each key visible with p 0.6 and a bias in (−1, 0]; token 0 sees no key.
Napi::Value AttnCheck(const Napi::CallbackInfo & info);
}  // namespace duet::testing
