#include "model/Evaluator.h"

#include <chrono>
#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

#include "model/PrefixCache.h"
#include "model/SharedBatch.h"
#include "napi/errors.h"

namespace duet {

Evaluator::Evaluator(llama_context * ctx, const llama_model * model, llama_seq_id seq, std::mutex & decode_lock)
    : ctx_(ctx),
      seq_(seq),
      n_vocab_(llama_vocab_n_tokens(llama_model_get_vocab(model))),
      width_(n_vocab_),
      n_ctx_((int32_t) llama_n_ctx(ctx)),
      n_batch_((int32_t) llama_n_batch(ctx)),
      decode_lock_(decode_lock) {}

Evaluator::~Evaluator() = default;

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
    std::lock_guard<std::mutex> lock(decode_lock_);  // other generations may be decoding on this context
    llama_memory_seq_rm(llama_get_memory(ctx_), seq_, -1, -1);  // whole-sequence removal never fails
    n_past_ = 0;
    history_.clear();
}

void Evaluator::resume(std::vector<llama_token> cached, PrefixCache * cache, llama_seq_id share_from) {
    cache_ = cache;
    if ((int64_t) cached.size() > n_ctx_) cached.clear();  // cannot happen: cells are bounded by the context
    history_ = std::move(cached);
    n_past_  = (int32_t) history_.size();
    if (share_from >= 0) {
        {
            std::lock_guard<std::mutex> lock(decode_lock_);
            llama_memory_t mem = llama_get_memory(ctx_);
            llama_memory_seq_rm(mem, seq_, -1, -1);
            llama_memory_seq_cp(mem, share_from, seq_, 0, n_past_);  // unified KV: the cells gain this id, no copy
        }
        cache_->unpin(share_from);
    } else if (n_past_ == 0) {
        reset();  // an id nothing was parked under: empty it (sequence 0 may hold a test hook's cells)
    }
}

void Evaluator::prefill(const llama_token * tokens, int32_t n, bool need_logits, std::vector<float> & logits) {
    int32_t keep = (int32_t) common_prefix(history_, tokens, (size_t) n);
    if (need_logits) keep = std::min(keep, n - 1);
    keep = std::max(keep, 0);
    if (keep < n_past_) {
        std::lock_guard<std::mutex> lock(decode_lock_);
        if (!llama_memory_seq_rm(llama_get_memory(ctx_), seq_, keep, -1)) {
            llama_memory_seq_rm(llama_get_memory(ctx_), seq_, -1, -1);  // cannot cut mid-way: start over
            keep = 0;
        }
        n_past_ = keep;
        history_.resize(keep);
    }
    if (keep < n) decode(tokens + keep, n - keep, Rows::LAST, logits);
    cached_tokens = keep;
}

void Evaluator::truncate(int32_t n_keep) {
    if (n_keep < 0 || n_keep > n_past_) {
        throw DuetError(code::KV_FAILED, "truncate(" + std::to_string(n_keep) + ") outside [0, " + std::to_string(n_past_) + "]");
    }
    if (n_keep == n_past_) return;
    std::lock_guard<std::mutex> lock(decode_lock_);
    if (!llama_memory_seq_rm(llama_get_memory(ctx_), seq_, n_keep, -1)) {
        throw DuetError(code::KV_FAILED, "this model's KV cache cannot remove a partial sequence");
    }
    n_past_ = n_keep;
    history_.resize(n_keep);
}

void Evaluator::decode(const llama_token * tokens, int32_t n, Rows rows, std::vector<float> & logits) {
    if (n <= 0) throw DuetError(code::INVALID_ARGUMENT, "decode of an empty token list");
    if (n_past_ + n > n_ctx_) {
        throw DuetError(code::CONTEXT_OVERFLOW, "context full: " + std::to_string(n_past_) + " + " + std::to_string(n) +
                                                    " tokens exceed contextSize " + std::to_string(n_ctx_));
    }
    const auto t0 = std::chrono::steady_clock::now();
    feed_.resize(n);
    for (int32_t i = 0; i < n; i++) feed_[i] = feedable(tokens[i]);  // llama_decode refuses bad ids otherwise
    DecodeJob job;
    job.ctx         = ctx_;
    job.decode_lock = &decode_lock_;
    job.cancel      = cancel_;
    job.seq         = seq_;
    job.pos0        = n_past_;
    job.tokens      = feed_.data();
    job.n           = n;
    job.all_rows    = rows == Rows::ALL;
    job.logits      = &logits;
    job.width       = width_;
    job.n_copy      = std::min(n_vocab_, width_);
    job.cache       = cache_;
    job.priority    = priority_;
    if (batch_) {
        batch_->decode(job);
    } else {
        std::vector<DecodeJob *> one{ &job };
        SharedBatch::run(one);
    }
    passes += (n + n_batch_ - 1) / n_batch_;
    if (job.batch_rows > n) shared_passes++;
    const int32_t rc = job.rc;
    if (rc != 0) {
        if (rc == 2) throw DuetError(code::ABORTED, "generation aborted");
        if (rc == 1) throw DuetError(code::CONTEXT_OVERFLOW, "no KV slot for the batch (context full)");
        if (rc == -100) throw DuetError(code::DECODE_FAILED, "llama.cpp returned no logits for a row");
        throw DuetError(code::DECODE_FAILED, "llama_decode failed with code " + std::to_string(rc));
    }
    n_past_ += n;
    history_.insert(history_.end(), tokens, tokens + n);
    decode_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace duet
