#include "testing/KernelCheck.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include <immintrin.h>

#include "ggml-backend.h"
#include "ggml.h"
#include "model/Backends.h"
#include "napi/args.h"
#include "napi/errors.h"
#include "sampling/Rng.h"

// ggml-base's reference quantizers (ggml-quants.h, GGML_API; the type traits leave q8_K's empty)
extern "C" void quantize_row_q8_0_ref(const float * x, void * y, int64_t k);
extern "C" void quantize_row_q8_K_ref(const float * x, void * y, int64_t k);

namespace duet::testing {

namespace {

struct CtxFree {
    void operator()(ggml_context * c) const { ggml_free(c); }
};
struct BufFree {
    void operator()(ggml_backend_buffer * b) const { ggml_backend_buffer_free(b); }
};
struct BackendFree {
    void operator()(ggml_backend * b) const { ggml_backend_free(b); }
};

double uniform(Rng & rng) { return (double) (rng.next_u64() >> 11) * 0x1.0p-53; }

// The CPU backend, `threads` threads (the backends are loaded first).
std::unique_ptr<ggml_backend, BackendFree> cpu_backend(int64_t threads) {
    backends::load();
    ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    if (cpu == nullptr) throw DuetError(code::NATIVE, "no CPU backend");
    std::unique_ptr<ggml_backend, BackendFree> backend(ggml_backend_dev_init(cpu, nullptr));
    if (!backend) throw DuetError(code::NATIVE, "kernel check: CPU backend init failed");
    auto set_threads = (ggml_backend_set_n_threads_t) ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(cpu), "ggml_backend_set_n_threads");
    if (set_threads) set_threads(backend.get(), (int) threads);
    return backend;
}

// The weights as a tensor in a buffer of type buft (set through the buffer, i.e. repacked by CPU_REPACK).
struct Weights {
    std::unique_ptr<ggml_context, CtxFree>        ctx;
    std::unique_ptr<ggml_backend_buffer, BufFree> buf;
    ggml_tensor *                                 t = nullptr;
};

Weights place(ggml_type type, int64_t K, int64_t N, const std::vector<uint8_t> & data, ggml_backend_buffer_type_t buft) {
    Weights          w;
    ggml_init_params ip{ ggml_tensor_overhead() * 2, nullptr, true };
    w.ctx.reset(ggml_init(ip));
    w.t = ggml_new_tensor_2d(w.ctx.get(), type, K, N);
    const size_t align = ggml_backend_buft_get_alignment(buft);
    w.buf.reset(ggml_backend_buft_alloc_buffer(buft, ggml_backend_buft_get_alloc_size(buft, w.t) + align));
    if (!w.buf) throw DuetError(code::NATIVE, "kernel check: buffer allocation failed");
    char * base = (char *) ggml_backend_buffer_get_base(w.buf.get());
    base += (align - ((uintptr_t) base % align)) % align;
    if (ggml_backend_tensor_alloc(w.buf.get(), w.t, base) != GGML_STATUS_SUCCESS) throw DuetError(code::NATIVE, "kernel check: tensor_alloc failed");
    ggml_backend_tensor_set(w.t, data.data(), 0, data.size());
    return w;
}

// y = W · x for rows [r0, r0 + m) of the activations, through the CPU backend.
std::vector<float> matmul(ggml_backend_t backend, ggml_tensor * W, const std::vector<float> & x, int64_t K, int64_t r0, int64_t m) {
    ggml_init_params ip{ ggml_tensor_overhead() * 8 + ggml_graph_overhead(), nullptr, true };
    std::unique_ptr<ggml_context, CtxFree> ctx(ggml_init(ip));
    ggml_tensor * X = ggml_new_tensor_2d(ctx.get(), GGML_TYPE_F32, K, m);
    ggml_tensor * Y = ggml_mul_mat(ctx.get(), W, X);
    ggml_cgraph * g = ggml_new_graph(ctx.get());
    ggml_build_forward_expand(g, Y);
    std::unique_ptr<ggml_backend_buffer, BufFree> buf(ggml_backend_alloc_ctx_tensors(ctx.get(), backend));
    if (!buf) throw DuetError(code::NATIVE, "kernel check: activation buffer allocation failed");
    ggml_backend_tensor_set(X, x.data() + r0 * K, 0, (size_t) (m * K) * sizeof(float));
    if (ggml_backend_graph_compute(backend, g) != GGML_STATUS_SUCCESS) throw DuetError(code::NATIVE, "kernel check: compute failed");
    std::vector<float> y((size_t) (m * W->ne[1]));
    ggml_backend_tensor_get(Y, y.data(), 0, y.size() * sizeof(float));
    return y;
}

Napi::Float32Array f32(Napi::Env env, const std::vector<float> & v) {
    Napi::Float32Array a = Napi::Float32Array::New(env, v.size());
    std::memcpy(a.Data(), v.data(), v.size() * sizeof(float));
    return a;
}
Napi::Float64Array f64(Napi::Env env, const std::vector<double> & v) {
    Napi::Float64Array a = Napi::Float64Array::New(env, v.size());
    std::memcpy(a.Data(), v.data(), v.size() * sizeof(double));
    return a;
}

float h2f(const uint8_t * p) {
    ggml_fp16_t h;
    std::memcpy(&h, p, 2);
    return ggml_fp16_to_fp32(h);
}

// Stored weights of row n, block b: value q_e (signed, as multiplied) and the fp32 terms of the block.
struct Exact {
    double value = 0, magnitude = 0, elements = 0;  // Σ|block terms|, Σ|each weight × activation|
};

void exact_q8_0(const uint8_t * blk, const int32_t * k, double s, Exact & e) {
    int64_t isum = 0, iabs = 0;
    for (int i = 0; i < 32; ++i) {
        isum += (int64_t) (int8_t) blk[2 + i] * k[i];
        iabs += std::llabs((int64_t) (int8_t) blk[2 + i] * k[i]);
    }
    const double t = (double) h2f(blk) * s * (double) isum;
    e.value += t;
    e.magnitude += std::fabs(t);
    e.elements += std::fabs((double) h2f(blk) * s) * (double) iabs;
}

void exact_q4_K(const uint8_t * blk, const int32_t * k, double s, Exact & e) {
    const double    d = h2f(blk), dmin = h2f(blk + 2);
    const uint8_t * sc = blk + 4;
    const uint8_t * qs = blk + 16;
    int64_t         dot = 0, mins = 0, dabs = 0, mabs = 0;
    for (int j = 0; j < 8; ++j) {
        int scale, mn;
        if (j < 4) {
            scale = sc[j] & 63;
            mn    = sc[j + 4] & 63;
        } else {
            scale = (sc[j + 4] & 0xF) | ((sc[j - 4] >> 6) << 4);
            mn    = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4);
        }
        int64_t sub = 0, ksum = 0, subabs = 0, kabs = 0;
        for (int l = 0; l < 32; ++l) {
            const int     eidx = 32 * j + l;
            const uint8_t byte = qs[32 * (j / 2) + l];
            const int     q    = (j % 2 == 0) ? (byte & 0xF) : (byte >> 4);
            sub += (int64_t) q * k[eidx];
            subabs += std::llabs((int64_t) q * k[eidx]);
            ksum += k[eidx];
            kabs += std::llabs(k[eidx]);
        }
        dot += scale * sub;
        mins += mn * ksum;
        dabs += scale * subabs;
        mabs += mn * kabs;
    }
    const double t1 = d * s * (double) dot, t2 = dmin * s * (double) mins;
    e.value += t1 - t2;
    e.magnitude += std::fabs(t1) + std::fabs(t2);
    e.elements += std::fabs(d * s) * (double) dabs + std::fabs(dmin * s) * (double) mabs;
}

void exact_q6_K(const uint8_t * blk, const int32_t * k, double s, Exact & e) {
    const uint8_t * ql = blk;
    const uint8_t * qh = blk + 128;
    const int8_t *  sc = (const int8_t *) (blk + 192);
    const double    d  = h2f(blk + 208);
    int64_t         dot = 0, dabs = 0;
    for (int idx = 0; idx < 256; ++idx) {
        const int n = idx / 128, w = idx % 128, quarter = w / 32, l = w % 32;
        const uint8_t lb = ql[64 * n + l + ((quarter & 1) ? 32 : 0)];
        const int     lo = quarter < 2 ? (lb & 0xF) : (lb >> 4);
        const int     hi = (qh[32 * n + l] >> (2 * quarter)) & 3;
        const int64_t p = (int64_t) sc[idx / 16] * (int64_t) ((lo | (hi << 4)) - 32) * k[idx];
        dot += p;
        dabs += std::llabs(p);
    }
    const double t = d * s * (double) dot;
    e.value += t;
    e.magnitude += std::fabs(t);
    e.elements += std::fabs(d * s) * (double) dabs;
}

ggml_type parse_type(const std::string & tname, int & qblock) {
    if (tname == "q8_0") return qblock = 32, GGML_TYPE_Q8_0;
    if (tname == "q4_K") return qblock = 256, GGML_TYPE_Q4_K;
    if (tname == "q6_K") return qblock = 256, GGML_TYPE_Q6_K;
    args::fail("type", "'q8_0', 'q4_K' or 'q6_K'");
}

// weights: rows of varied magnitude, quantized by ggml
std::vector<uint8_t> random_weights(ggml_type type, int64_t N, int64_t K, Rng & rng) {
    std::vector<float> wf((size_t) (N * K));
    for (int64_t n = 0; n < N; ++n) {
        const double scale = 0.02 + 0.2 * uniform(rng);
        for (int64_t i = 0; i < K; ++i) wf[(size_t) (n * K + i)] = (float) ((uniform(rng) * 2 - 1) * scale);
    }
    std::vector<uint8_t> wq(ggml_row_size(type, K) * (size_t) N);
    ggml_quantize_chunk(type, wf.data(), wq.data(), 0, N, K, nullptr);
    return wq;
}


// Sums a buffer 64 bytes at a time: the streaming read the one-token pass does with the weights.
__attribute__((target("avx2"))) uint64_t read_avx2(const uint8_t * p, size_t n) {
    __m256i a = _mm256_setzero_si256(), b = _mm256_setzero_si256();
    for (size_t i = 0; i + 64 <= n; i += 64) {
        a = _mm256_add_epi64(a, _mm256_load_si256((const __m256i *) (p + i)));
        b = _mm256_add_epi64(b, _mm256_load_si256((const __m256i *) (p + i + 32)));
    }
    a = _mm256_add_epi64(a, b);
    return (uint64_t) _mm256_extract_epi64(a, 0) + (uint64_t) _mm256_extract_epi64(a, 3);
}
uint64_t read_sse2(const uint8_t * p, size_t n) {
    __m128i a = _mm_setzero_si128(), b = _mm_setzero_si128(), c = _mm_setzero_si128(), d = _mm_setzero_si128();
    for (size_t i = 0; i + 64 <= n; i += 64) {
        a = _mm_add_epi64(a, _mm_load_si128((const __m128i *) (p + i)));
        b = _mm_add_epi64(b, _mm_load_si128((const __m128i *) (p + i + 16)));
        c = _mm_add_epi64(c, _mm_load_si128((const __m128i *) (p + i + 32)));
        d = _mm_add_epi64(d, _mm_load_si128((const __m128i *) (p + i + 48)));
    }
    a = _mm_add_epi64(_mm_add_epi64(a, b), _mm_add_epi64(c, d));
    return (uint64_t) _mm_cvtsi128_si64(a);
}

}  // namespace

namespace {

// fp32 FMA throughput of one thread: 10 independent chains of 8-lane fma for `ms` milliseconds (the
// chains hide the fma latency, so this measures the core's FMA pipes). Returns G fma instructions per s.
__attribute__((target("avx2,fma"))) double fma_rate(double ms) {
    __m256       acc[10];
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 10; ++i) acc[i] = _mm256_set1_ps((float) i);
    int64_t    n  = 0;
    const auto t0 = std::chrono::steady_clock::now();
    double     s  = 0;
    do {
        for (int r = 0; r < 1000; ++r)
            for (int i = 0; i < 10; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
        n += 10000;
        s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } while (s * 1000 < ms);
    float sink = 0;
    for (int i = 0; i < 10; ++i) sink += _mm256_cvtss_f32(acc[i]);
    volatile float keep = sink;
    (void) keep;
    return (double) n / s / 1e9;
}

}  // namespace

Napi::Value ComputeRate(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        Napi::Env     env     = info.Env();
        Napi::Object  o       = args::object(info[0], "options");
        const int64_t threads = args::integer(o.Get("threads"), "threads", 1, 64);
        const double  ms      = (double) args::integer(o.Get("ms"), "ms", 10, 5000);
        if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return env.Null();
        const double        alone = fma_rate(ms);
        std::vector<double> rates((size_t) threads);
        std::vector<std::thread> pool;
        for (int64_t t = 0; t < threads; ++t) pool.emplace_back([&, t] { rates[(size_t) t] = fma_rate(ms); });
        for (auto & th : pool) th.join();
        double sum = 0, lo = rates[0];
        for (double r : rates) {
            sum += r;
            lo = std::min(lo, r);
        }
        Napi::Object out = Napi::Object::New(env);
        out.Set("alone", alone);
        out.Set("together", sum / (double) threads);
        out.Set("slowest", lo);
        return out;
    });
}

Napi::Value MemoryBandwidth(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        Napi::Object  o       = args::object(info[0], "options");
        const int64_t mib     = args::integer(o.Get("mib"), "mib", 16, 8192);
        const int64_t threads = args::integer(o.Get("threads"), "threads", 1, 64);
        const int64_t passes  = args::integer(o.Get("passes"), "passes", 1, 100);
        const size_t  bytes   = (size_t) mib << 20;
        std::unique_ptr<uint8_t, void (*)(void *)> buf((uint8_t *) std::aligned_alloc(64, bytes), std::free);
        if (!buf) throw DuetError(code::NATIVE, "bandwidth: allocation failed");
        for (size_t i = 0; i < bytes; i += 4096) buf.get()[i] = (uint8_t) i;  // fault every page in
        std::memset(buf.get(), 1, bytes);
        const bool       avx2 = __builtin_cpu_supports("avx2");
        double           best = 0;
        volatile uint64_t sink = 0;
        for (int64_t pass = 0; pass < passes; ++pass) {
            std::vector<std::thread> pool;
            std::vector<uint64_t>    sums((size_t) threads);
            const size_t             slice = bytes / (size_t) threads / 64 * 64;
            const auto               t0    = std::chrono::steady_clock::now();
            for (int64_t t = 0; t < threads; ++t) {
                pool.emplace_back([&, t] {
                    const uint8_t * p = buf.get() + (size_t) t * slice;
                    sums[(size_t) t]  = avx2 ? read_avx2(p, slice) : read_sse2(p, slice);
                });
            }
            for (auto & th : pool) th.join();
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            for (uint64_t v : sums) sink = sink + v;
            best = std::max(best, (double) (slice * (size_t) threads) / s / 1e9);
        }
        (void) sink;
        return Napi::Number::New(info.Env(), best);
    });
}

Napi::Value KernelBench(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        Napi::Env         env     = info.Env();
        Napi::Object      o       = args::object(info[0], "options");
        int               qblock  = 0;
        const ggml_type   type    = parse_type(args::string(o.Get("type"), "type"), qblock);
        const int64_t     N       = args::integer(o.Get("rows"), "rows", 16, 1 << 17);
        const int64_t     K       = args::integer(o.Get("cols"), "cols", 256, 1 << 16);
        const int64_t     M       = args::integer(o.Get("m"), "m", 1, 512);
        const int64_t     threads = args::integer(o.Get("threads"), "threads", 1, 64);
        const int64_t     iters   = args::integer(o.Get("iterations"), "iterations", 1, 100000);
        const bool        ours    = args::boolean(o.Get("ours"), "ours");
        if (K % 256 != 0) args::fail("cols", "a multiple of 256");
        auto backend = cpu_backend(threads);
        if (ours && (!backends::cpu_kernels_run() || N % 16 != 0)) throw DuetError(code::INVALID_ARGUMENT, "the kernels do not run here");
        Rng                  rng(1);
        std::vector<uint8_t> wq = random_weights(type, N, K, rng);
        std::vector<float>   x((size_t) (M * K));
        for (auto & v : x) v = (float) (uniform(rng) * 2 - 1);
        Weights w = place(type, K, N, wq, ours ? backends::cpu_extra_buffer_type("CPU_REPACK") : ggml_backend_cpu_buffer_type());
        // one graph, computed `iterations` times
        ggml_init_params ip{ ggml_tensor_overhead() * 8 + ggml_graph_overhead(), nullptr, true };
        std::unique_ptr<ggml_context, CtxFree> ctx(ggml_init(ip));
        ggml_tensor * X = ggml_new_tensor_2d(ctx.get(), GGML_TYPE_F32, K, M);
        ggml_tensor * Y = ggml_mul_mat(ctx.get(), w.t, X);
        ggml_cgraph * g = ggml_new_graph(ctx.get());
        ggml_build_forward_expand(g, Y);
        std::unique_ptr<ggml_backend_buffer, BufFree> buf(ggml_backend_alloc_ctx_tensors(ctx.get(), backend.get()));
        ggml_backend_tensor_set(X, x.data(), 0, x.size() * sizeof(float));
        ggml_backend_graph_compute(backend.get(), g);  // warm-up
        const int64_t t0 = ggml_time_us();
        for (int64_t i = 0; i < iters; ++i) ggml_backend_graph_compute(backend.get(), g);
        const double us = (double) (ggml_time_us() - t0) / (double) iters;
        Napi::Object out = Napi::Object::New(env);
        out.Set("msPerMatmul", us / 1000.0);
        out.Set("weightBytes", (double) wq.size());
        return out;
    });
}

Napi::Value KernelCheck(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        Napi::Env         env     = info.Env();
        Napi::Object      o       = args::object(info[0], "options");
        const std::string tname   = args::string(o.Get("type"), "type");
        const int64_t     N       = args::integer(o.Get("rows"), "rows", 1, 1 << 16);
        const int64_t     K       = args::integer(o.Get("cols"), "cols", 256, 1 << 16);
        const int64_t     M       = args::integer(o.Get("m"), "m", 1, 512);
        const int64_t     threads = args::integer(o.Get("threads"), "threads", 1, 64);
        Rng               rng((uint64_t) args::integer(o.Get("seed"), "seed", 0, (int64_t) 1 << 53));
        int               qblock  = 0;  // activation quantization block: 32 (q8_0) or 256 (q8_K)
        const ggml_type   type    = parse_type(tname, qblock);
        if (K % 256 != 0) args::fail("cols", "a multiple of 256");

        auto               backend  = cpu_backend(threads);
        const std::string  isa      = backends::cpu_kernels();
        const bool         ours_run = backends::cpu_kernels_run() && N % 16 == 0;
        std::vector<uint8_t> wq     = random_weights(type, N, K, rng);

        // activations: 'exact' = k·2^-e, exactly representable by q8_0 / q8_K (so the quantizer cannot
        // differ); 'random' = uniform floats in blocks of varied scale. Either way the reference multiplies
        // by ggml's reference quantization of them (quantize_row_q8_0_ref / quantize_row_q8_K_ref).
        const std::string acts = o.Get("activations").IsUndefined() ? "exact" : args::string(o.Get("activations"), "activations");
        if (acts != "exact" && acts != "random") args::fail("activations", "'exact' or 'random'");
        std::vector<float> x((size_t) (M * K));
        for (int64_t m = 0; m < M; ++m) {
            for (int64_t b = 0; b < K / qblock; ++b) {
                const double s = std::ldexp(1.0, -(int) (rng.next_u64() % 5) - 3);
                for (int i = 0; i < qblock; ++i) {
                    const size_t at = (size_t) (m * K + b * qblock + i);
                    if (acts == "exact") {
                        int32_t k = i == 0 ? 127 : (int32_t) (rng.next_u64() % 255) - 127;
                        if (i == 0 && (rng.next_u64() & 1)) k = -127;
                        x[at] = (float) (k * s);
                    } else {
                        // k + f, |f| ≤ 0.4: not representable, yet no quantizer's rounding is ambiguous
                        // (ggml's x86 q8_0 quantizer scales by 127/amax, its reference by 1/(amax/127))
                        const int32_t k = i == 0 ? 127 : (int32_t) (rng.next_u64() % 253) - 126;
                        x[at]           = (float) ((i == 0 ? k : k + (uniform(rng) * 0.8 - 0.4)) * s);
                    }
                }
            }
        }
        const ggml_type      qtype = qblock == 32 ? GGML_TYPE_Q8_0 : GGML_TYPE_Q8_K;
        const size_t         qrow  = ggml_row_size(qtype, K);
        std::vector<uint8_t> xq(qrow);
        std::vector<int32_t> kq((size_t) (M * K));
        std::vector<double>  sq((size_t) (M * K / qblock));
        for (int64_t m = 0; m < M; ++m) {
            if (qtype == GGML_TYPE_Q8_0) quantize_row_q8_0_ref(x.data() + m * K, xq.data(), K);
            else quantize_row_q8_K_ref(x.data() + m * K, xq.data(), K);
            for (int64_t b = 0; b < K / qblock; ++b) {
                const uint8_t * blk = xq.data() + b * ggml_type_size(qtype);
                float           d;
                const int8_t *  q;
                if (qtype == GGML_TYPE_Q8_0) {
                    d = h2f(blk);
                    q = (const int8_t *) (blk + 2);
                } else {
                    std::memcpy(&d, blk, 4);
                    q = (const int8_t *) (blk + 4);
                }
                sq[(size_t) (m * (K / qblock) + b)] = d;
                for (int i = 0; i < qblock; ++i) kq[(size_t) (m * K + b * qblock + i)] = q[i];
            }
        }

        Napi::Object out = Napi::Object::New(env);
        out.Set("kernels", isa);
        auto run_all = [&](ggml_tensor * W, std::vector<float> & together, std::vector<float> & alone) {
            together = matmul(backend.get(), W, x, K, 0, M);
            alone.resize(together.size());
            for (int64_t m = 0; m < M; ++m) {
                const auto y = matmul(backend.get(), W, x, K, m, 1);
                std::memcpy(alone.data() + m * N, y.data(), (size_t) N * sizeof(float));
            }
        };
        if (ours_run) {
            ggml_backend_buffer_type_t rb = backends::cpu_extra_buffer_type("CPU_REPACK");
            if (rb == nullptr) throw DuetError(code::NATIVE, "kernel check: no CPU_REPACK buffer type");
            Weights            w = place(type, K, N, wq, rb);
            std::vector<float> a, b;
            run_all(w.t, a, b);
            out.Set("ours", f32(env, a));
            out.Set("oursAlone", f32(env, b));
        } else {
            out.Set("ours", env.Null());
            out.Set("oursAlone", env.Null());
        }
        {
            Weights            w = place(type, K, N, wq, ggml_backend_cpu_buffer_type());
            std::vector<float> a, b;
            run_all(w.t, a, b);
            out.Set("stock", f32(env, a));
            out.Set("stockAlone", f32(env, b));
        }

        std::vector<double> exact((size_t) (M * N)), magnitude((size_t) (M * N)), elements((size_t) (M * N));
        const size_t        row_bytes = ggml_row_size(type, K);
        const size_t        blk_bytes = ggml_type_size(type);
        const int           wblock    = (int) ggml_blck_size(type);
        for (int64_t m = 0; m < M; ++m) {
            for (int64_t n = 0; n < N; ++n) {
                Exact e;
                for (int64_t b = 0; b < K / wblock; ++b) {
                    const uint8_t * blk = wq.data() + n * row_bytes + b * blk_bytes;
                    const int32_t * k   = kq.data() + m * K + b * wblock;
                    const double    s   = sq[(size_t) ((m * K + b * wblock) / qblock)];
                    if (type == GGML_TYPE_Q8_0) exact_q8_0(blk, k, s, e);
                    if (type == GGML_TYPE_Q4_K) exact_q4_K(blk, k, s, e);
                    if (type == GGML_TYPE_Q6_K) exact_q6_K(blk, k, s, e);
                }
                exact[(size_t) (m * N + n)]     = e.value;
                magnitude[(size_t) (m * N + n)] = e.magnitude;
                elements[(size_t) (m * N + n)]  = e.elements;
            }
        }
        out.Set("exact", f64(env, exact));
        out.Set("magnitude", f64(env, magnitude));
        out.Set("elementMagnitude", f64(env, elements));
        out.Set("ops", (double) (K / wblock) * (type == GGML_TYPE_Q4_K ? 2 : 1));
        return out;
    });
}

}  // namespace duet::testing

namespace duet::testing {

namespace {

// One flash-attention op through the CPU backend: q [D, N, H], k/v [D, n_kv, Hkv] (F16), mask [n_kv, N_pad].
std::vector<float> attention(ggml_backend_t backend, int64_t D, int64_t N, int64_t H, int64_t Hkv, int64_t n_kv, const std::vector<float> & q,
                             const std::vector<ggml_fp16_t> & k, const std::vector<ggml_fp16_t> & v, const std::vector<ggml_fp16_t> * mask, float scale) {
    ggml_init_params ip{ ggml_tensor_overhead() * 8 + ggml_graph_overhead(), nullptr, true };
    std::unique_ptr<ggml_context, CtxFree> ctx(ggml_init(ip));
    const int64_t n_pad = N;
    ggml_tensor * Q = ggml_new_tensor_3d(ctx.get(), GGML_TYPE_F32, D, N, H);
    ggml_tensor * K = ggml_new_tensor_3d(ctx.get(), GGML_TYPE_F16, D, n_kv, Hkv);
    ggml_tensor * V = ggml_new_tensor_3d(ctx.get(), GGML_TYPE_F16, D, n_kv, Hkv);
    ggml_tensor * M = mask ? ggml_new_tensor_2d(ctx.get(), GGML_TYPE_F16, n_kv, n_pad) : nullptr;
    ggml_tensor * O = ggml_flash_attn_ext(ctx.get(), Q, K, V, M, scale, 0.0f, 0.0f);
    ggml_flash_attn_ext_set_prec(O, GGML_PREC_F32);
    ggml_cgraph * g = ggml_new_graph(ctx.get());
    ggml_build_forward_expand(g, O);
    std::unique_ptr<ggml_backend_buffer, BufFree> buf(ggml_backend_alloc_ctx_tensors(ctx.get(), backend));
    if (!buf) throw DuetError(code::NATIVE, "attention check: buffer allocation failed");
    ggml_backend_tensor_set(Q, q.data(), 0, q.size() * sizeof(float));
    ggml_backend_tensor_set(K, k.data(), 0, k.size() * sizeof(ggml_fp16_t));
    ggml_backend_tensor_set(V, v.data(), 0, v.size() * sizeof(ggml_fp16_t));
    if (M) ggml_backend_tensor_set(M, mask->data(), 0, mask->size() * sizeof(ggml_fp16_t));
    if (ggml_backend_graph_compute(backend, g) != GGML_STATUS_SUCCESS) throw DuetError(code::NATIVE, "attention check: compute failed");
    std::vector<float> o((size_t) (D * H * N));  // [N][H][D]
    ggml_backend_tensor_get(O, o.data(), 0, o.size() * sizeof(float));
    return o;
}

}  // namespace

Napi::Value AttnCheck(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        Napi::Env         env     = info.Env();
        Napi::Object      o       = args::object(info[0], "options");
        const int64_t     D       = args::integer(o.Get("dim"), "dim", 16, 256);
        const int64_t     N       = args::integer(o.Get("tokens"), "tokens", 1, 256);
        const int64_t     Hkv     = args::integer(o.Get("kvHeads"), "kvHeads", 1, 64);
        const int64_t     H       = Hkv * args::integer(o.Get("group"), "group", 1, 16);
        const int64_t     n_kv    = args::integer(o.Get("kv"), "kv", 1, 4096);
        const int64_t     threads = args::integer(o.Get("threads"), "threads", 1, 64);
        const std::string maskK   = args::string(o.Get("mask"), "mask");
        if (maskK != "none" && maskK != "causal" && maskK != "random") args::fail("mask", "'none', 'causal' or 'random'");
        Rng rng((uint64_t) args::integer(o.Get("seed"), "seed", 0, (int64_t) 1 << 53));
        const float scale = 1.0f / std::sqrt((float) D);

        std::vector<float>       q((size_t) (D * N * H));
        std::vector<ggml_fp16_t> k((size_t) (D * n_kv * Hkv)), v((size_t) (D * n_kv * Hkv));
        for (auto & x : q) x = (float) ((uniform(rng) * 2 - 1) * 3);
        for (auto & x : k) x = ggml_fp32_to_fp16((float) ((uniform(rng) * 2 - 1) * 3));
        for (auto & x : v) x = ggml_fp32_to_fp16((float) (uniform(rng) * 2 - 1));
        // mask: causal = token t sees keys [0, n_kv − N + t]; random = each key visible with p 0.6 (token 0
        // of the check sees none: an all-masked row)
        const int64_t            n_pad = N;
        std::vector<ggml_fp16_t> mask((size_t) (n_kv * n_pad), ggml_fp32_to_fp16(-INFINITY));
        for (int64_t t = 0; t < N; ++t)
            for (int64_t c = 0; c < n_kv; ++c) {
                bool see = true;
                if (maskK == "causal") see = c <= n_kv - N + t;
                if (maskK == "random") see = t != 0 && uniform(rng) < 0.6;
                if (see) mask[(size_t) (t * n_kv + c)] = ggml_fp32_to_fp16(maskK == "random" ? (float) -uniform(rng) : 0.0f);
            }
        const std::vector<ggml_fp16_t> * mp = maskK == "none" ? nullptr : &mask;

        auto backend = cpu_backend(threads);

        // ours (unless LLAMA_DUET_KERNELS=0 or no kernel for this CPU), each token alone, and ggml's
        const std::vector<float> ours = attention(backend.get(), D, N, H, Hkv, n_kv, q, k, v, mp, scale);
        std::vector<float>       alone(ours.size());
        for (int64_t t = 0; t < N; ++t) {
            std::vector<float> q1((size_t) (D * H));
            for (int64_t h = 0; h < H; ++h) std::memcpy(q1.data() + h * D, q.data() + (h * N + t) * D, sizeof(float) * D);
            std::vector<ggml_fp16_t> m1((size_t) n_kv, ggml_fp32_to_fp16(-INFINITY));
            std::memcpy(m1.data(), mask.data() + t * n_kv, sizeof(ggml_fp16_t) * n_kv);
            const std::vector<float> y = attention(backend.get(), D, 1, H, Hkv, n_kv, q1, k, v, mp ? &m1 : nullptr, scale);
            std::memcpy(alone.data() + t * H * D, y.data(), sizeof(float) * H * D);
        }
        const char *       saved = std::getenv("LLAMA_DUET_KERNELS");
        const std::string  keep  = saved ? saved : "";
        setenv("LLAMA_DUET_KERNELS", "0", 1);
        std::vector<float> stock;
        try {
            stock = attention(backend.get(), D, N, H, Hkv, n_kv, q, k, v, mp, scale);
        } catch (...) {
            if (saved) setenv("LLAMA_DUET_KERNELS", keep.c_str(), 1);
            else unsetenv("LLAMA_DUET_KERNELS");
            throw;
        }
        if (saved) setenv("LLAMA_DUET_KERNELS", keep.c_str(), 1);
        else unsetenv("LLAMA_DUET_KERNELS");

        // float64 reference, and per output the scales of the rounding errors: Σ_j p_j·|v_jd| / Σ_j p_j
        // (bounds |o_d| and every partial sum) and the largest Σ_d |q_d·k_jd|·scale over visible keys
        std::vector<double> exact(ours.size()), vmag(ours.size()), smag((size_t) (N * H));
        for (int64_t t = 0; t < N; ++t)
            for (int64_t h = 0; h < H; ++h) {
                const int64_t       kh = h / (H / Hkv);
                const float *       qr = q.data() + (h * N + t) * D;
                std::vector<double> s((size_t) n_kv, -INFINITY);
                double              mx = -INFINITY, sm = 0;
                for (int64_t c = 0; c < n_kv; ++c) {
                    const double mv = mp ? (double) ggml_fp16_to_fp32(mask[(size_t) (t * n_kv + c)]) : 0.0;
                    if (mv == -INFINITY) continue;
                    double dot = 0, mag = 0;
                    for (int64_t d = 0; d < D; ++d) {
                        const double kd = ggml_fp16_to_fp32(k[(size_t) ((kh * n_kv + c) * D + d)]);
                        dot += (double) qr[d] * kd;
                        mag += std::fabs((double) qr[d] * kd);
                    }
                    s[(size_t) c] = dot * scale + mv;
                    mx            = std::max(mx, s[(size_t) c]);
                    sm            = std::max(sm, mag * scale);
                }
                smag[(size_t) (t * H + h)] = sm;
                double S = 0;
                for (int64_t c = 0; c < n_kv; ++c) S += s[(size_t) c] == -INFINITY ? 0 : std::exp(s[(size_t) c] - mx);
                for (int64_t d = 0; d < D; ++d) {
                    double acc = 0, mag = 0;
                    for (int64_t c = 0; c < n_kv; ++c) {
                        if (s[(size_t) c] == -INFINITY) continue;
                        const double p  = std::exp(s[(size_t) c] - mx);
                        const double vd = ggml_fp16_to_fp32(v[(size_t) ((kh * n_kv + c) * D + d)]);
                        acc += p * vd;
                        mag += p * std::fabs(vd);
                    }
                    exact[(size_t) ((t * H + h) * D + d)] = S > 0 ? acc / S : 0;
                    vmag[(size_t) ((t * H + h) * D + d)]  = S > 0 ? mag / S : 0;
                }
            }
        Napi::Object out = Napi::Object::New(env);
        out.Set("ours", f32(env, ours));
        out.Set("alone", f32(env, alone));
        out.Set("stock", f32(env, stock));
        out.Set("exact", f64(env, exact));
        out.Set("valueMagnitude", f64(env, vmag));
        out.Set("scoreMagnitude", f64(env, smag));
        return out;
    });
}

}  // namespace duet::testing
