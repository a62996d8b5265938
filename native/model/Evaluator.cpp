#include "model/Evaluator.h"

#include <chrono>
#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

#include "napi/errors.h"

namespace duet {

Evaluator::Evaluator(llama_context * ctx, const llama_model * model, llama_seq_id seq, std::mutex & decode_lock)
    : ctx_(ctx),
      seq_(seq),
      n_vocab_(llama_vocab_n_tokens(llama_model_get_vocab(model))),
      width_(n_vocab_),
      n_ctx_((int32_t) llama_n_ctx(ctx)),
      n_batch_((int32_t) llama_n_batch(ctx)),
      batch_(llama_batch_init((int32_t) llama_n_batch(ctx), 0, 1)),
      decode_lock_(decode_lock) {}

Evaluator::~Evaluator() { llama_batch_free(batch_); }

void Evaluator::align_to(int32_t width) {
    width_   = width;
    aligned_ = width != n_vocab_;
    if (!aligned_) return;
    // the unknown token (llama.h has no getter for it: the first id with the UNKNOWN attribute), else id 0
    const llama_vocab * v = llama_model_get_vocab(llama_get_model(ctx_));
    substitute_           = 0;
    for (llama_token t = 0; t < std::min(n_vocab_, 4096); t++) {
        if (llama_vocab_get_attr(v, t) & LLAMA_TOKEN_ATTR_UNKNOWN) {
            substitute_ = t;
            break;
        }
    }
}

void Evaluator::reset() {
    llama_memory_seq_rm(llama_get_memory(ctx_), seq_, -1, -1);  // whole-sequence removal never fails
    n_past_ = 0;
}

void Evaluator::truncate(int32_t n_keep) {
    if (n_keep < 0 || n_keep > n_past_) {
        throw DuetError(code::KV_FAILED, "truncate(" + std::to_string(n_keep) + ") outside [0, " + std::to_string(n_past_) + "]");
    }
    if (n_keep == n_past_) return;
    if (!llama_memory_seq_rm(llama_get_memory(ctx_), seq_, n_keep, -1)) {
        throw DuetError(code::KV_FAILED, "this model's KV cache cannot remove a partial sequence");
    }
    n_past_ = n_keep;
}

void Evaluator::decode(const llama_token * tokens, int32_t n, Rows rows, std::vector<float> & logits) {
    if (n <= 0) throw DuetError(code::INVALID_ARGUMENT, "decode of an empty token list");
    if (n_past_ + n > n_ctx_) {
        throw DuetError(code::CONTEXT_OVERFLOW, "context full: " + std::to_string(n_past_) + " + " + std::to_string(n) +
                                                    " tokens exceed contextSize " + std::to_string(n_ctx_));
    }
    const auto t0     = std::chrono::steady_clock::now();
    const int32_t n_rows = rows == Rows::ALL ? n : 1;
    logits.resize((size_t) n_rows * width_);
    const int32_t n_copy = std::min(n_vocab_, width_);
    int32_t row = 0;
    for (int32_t start = 0; start < n; start += n_batch_) {
        const int32_t m = std::min(n_batch_, n - start);
        batch_.n_tokens = m;
        for (int32_t i = 0; i < m; i++) {
            const llama_token t = tokens[start + i];
            batch_.token[i]     = aligned_ && (t < 0 || t >= n_vocab_) ? substitute_ : t;  // llama_decode refuses bad ids otherwise
            batch_.pos[i]       = n_past_ + start + i;
            batch_.n_seq_id[i]  = 1;
            batch_.seq_id[i][0] = seq_;
            batch_.logits[i]    = rows == Rows::ALL || (start + i == n - 1);
        }
        int32_t rc;
        {
            std::lock_guard<std::mutex> lock(decode_lock_);
            rc = llama_decode(ctx_, batch_);
        }
        passes++;
        if (rc != 0) {
            // rc 2 (aborted) and < -1 may leave processed ubatches in memory: drop everything past n_past
            llama_memory_seq_rm(llama_get_memory(ctx_), seq_, n_past_, -1);
            if (rc == 2) throw DuetError(code::ABORTED, "generation aborted");
            if (rc == 1) throw DuetError(code::CONTEXT_OVERFLOW, "no KV slot for the batch (context full)");
            throw DuetError(code::DECODE_FAILED, "llama_decode failed with code " + std::to_string(rc));
        }
        for (int32_t i = 0; i < m; i++) {
            if (!batch_.logits[i]) continue;
            const float * src = llama_get_logits_ith(ctx_, i);
            if (!src) throw DuetError(code::DECODE_FAILED, "llama.cpp returned no logits for row " + std::to_string(i));
            float * dst = logits.data() + (size_t) row * width_;
            std::memcpy(dst, src, sizeof(float) * n_copy);
            std::fill(dst + n_copy, dst + width_, -std::numeric_limits<float>::infinity());
            row++;
        }
    }
    n_past_ += n;
    decode_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace duet
