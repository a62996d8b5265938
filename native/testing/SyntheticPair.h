// Random-weight llama GGUF pairs for tests, benchmarks and the demo (issue #2 §4).
//
// Recipe (d = n_embd): token_embd N(0,1); attn_q/k/v, ffn_gate/up N(0, 1/d); attn_output N(0, ε²/d);
// ffn_down N(0, ε²/n_ff); output N(0, (out_scale/√d)²); norms 1. The amateur is the expert's first
// k layers: identical embeddings, head and first layers (every tensor is drawn from an RNG seeded by
// (seed, tensor name), so the same name gives the same values in both files). ε scales the residual
// updates and so tunes how often the pair agrees. Tensors are generated and quantized row-chunk by
// row-chunk straight into the file, so a 1.1B-parameter expert never sits whole in memory.
#pragma once
#include <cstdint>
#include <string>

#include "ggml.h"

namespace duet::synthetic {

struct PairSpec {
    std::string out_dir;
    int32_t     n_layer        = 4;
    int32_t     n_embd         = 128;
    int32_t     n_ff           = 384;
    int32_t     n_head         = 4;
    int32_t     n_head_kv      = 2;
    int32_t     n_ctx_train    = 2048;
    int32_t     amateur_layers = 1;
    double      epsilon        = 0.015;
    double      out_scale      = 6.0;
    uint64_t    seed           = 1;
    ggml_type   wtype          = GGML_TYPE_F32;
    bool        q4_k_m         = false;  // wtype Q4_K, with Q6_K output, attn_v and ffn_down (even layers), as llama.cpp's Q4_K_M
    std::string vocab_path;          // copy tokenizer.* from this GGUF; empty → tiny vocab
    int32_t     tiny_normal_tokens = 5;
    // Padding, as real pairs of one family have (Qwen2.5-7B 152064 vs 0.5B 151936 tokens): extra tokens
    // "[PAD<i>]" (type UNUSED) at the end of one model's vocabulary, with embedding and output rows drawn
    // like the others (so the expert gives them real probability). The shared ids are identical.
    int32_t     expert_vocab_pad  = 0;
    int32_t     amateur_vocab_pad = 0;
    // ≥ 0: the output row of end-of-generation (id 2) becomes this token's row plus N(0, (0.1·σ)²) noise, so the
    // model ends about as often as it emits that token (beam tests need finished candidates); −1: random like the rest
    int32_t     eos_like = -1;
};

struct PairFiles {
    std::string expert_path;
    std::string amateur_path;
    int32_t     n_vocab       = 0;  // the expert's
    uint64_t    expert_bytes  = 0;
    uint64_t    amateur_bytes = 0;
};

// throws DuetError (INVALID_ARGUMENT, IO, CORRUPT_GGUF)
PairFiles make_pair(const PairSpec & spec);

}  // namespace duet::synthetic
