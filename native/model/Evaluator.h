// The decode path of generate(): one llama_context, one sequence (slot 0), a reusable batch, logits rows
// copied out before the next decode (pitfall: pointers die on the next decode), KV truncation through
// llama_memory_seq_rm with its return value checked. (The other caller of llama_decode is
// forest/Sequences: the sequence API and verifyForest.)
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "llama.h"

namespace duet {

class PrefixCache;
class SharedBatch;

class Evaluator {
  public:
    // requires: ctx (and decode_lock, held around each llama_decode) outlive the evaluator; seq < llama_n_seq_max(ctx)
    Evaluator(llama_context * ctx, const llama_model * model, llama_seq_id seq, std::mutex & decode_lock);
    ~Evaluator();
    Evaluator(const Evaluator &)             = delete;
    Evaluator & operator=(const Evaluator &) = delete;

    // Empties this evaluator's sequence in the KV cache.
    void reset();

    // Takes over a sequence whose cells already hold `cached` (positions 0 .. n − 1; a parked prefix, see
    // model/PrefixCache.h), or, with share_from ≥ 0, an empty one that first shares the cells of `cached`
    // with that parked sequence (then unpinned); prefill() then keeps what the prompt shares with it.
    // `cache` gives up parked cells when a decode finds no KV slot.
    void resume(std::vector<llama_token> cached, PrefixCache * cache, llama_seq_id share_from);

    // Brings the sequence to exactly `tokens`: keeps the longest prefix already in it (at most n − 1 when
    // `logits` must hold the row after the last token), removes the rest, decodes the remainder.
    // cached_tokens says how many tokens came from the cache. A model whose cache cannot cut a sequence
    // mid-way starts from empty instead. n may be 0 (empties the sequence).
    void prefill(const llama_token * tokens, int32_t n, bool need_logits, std::vector<float> & logits);

    // The tokens in this evaluator's cells, in order (what a finished generation parks).
    const std::vector<llama_token> & history() const { return history_; }

    // Aligns this (amateur) model to another vocabulary of `width` ids (the expert's; a pair's sizes may
    // differ by padding, e.g. Qwen2.5-7B 152064 vs 0.5B 151936 ids): every logits row decode() writes is then
    // `width` wide, ids this model lacks at −inf (probability 0: never drafted, masked in the contrast) and
    // ids past `width` dropped; a token this model lacks is fed as its unknown token (or id 0).
    void align_to(int32_t width);

    // Routes every decode through `batch`, the model's or pair's SharedBatch (model/SharedBatch.h): it then
    // rides in one llama_decode with every other joined generation's; `cancel` (may be null) marks it
    // cancelled there. priority: lower decodes first when jobs of both models wait (0: a pair's amateur, its
    // drafts; 1: the expert).
    // requires: the calling thread holds a SharedBatchMember of `batch` for the evaluator's whole use.
    void share(SharedBatch * batch, const std::atomic_bool * cancel, int32_t priority) {
        batch_    = batch;
        cancel_   = cancel;
        priority_ = priority;
    }
    SharedBatch * shared_batch() const { return batch_; }  // null unless shared

    // Decodes `tokens` after the current n_past (split into n_batch chunks).
    // rows: which batch rows need logits: LAST (only the final token) or ALL (every token, chain verify).
    // out logits [n_rows, width()] row-major, copied out of llama.cpp.
    enum class Rows { LAST, ALL };
    void decode(const llama_token * tokens, int32_t n, Rows rows, std::vector<float> & logits);

    // Keeps the first n_keep positions of the sequence, removes the rest.
    // requires: 0 ≤ n_keep ≤ n_past
    void truncate(int32_t n_keep);

    int32_t n_past() const { return n_past_; }
    int32_t n_ctx() const { return n_ctx_; }
    int32_t n_vocab() const { return n_vocab_; }  // this model's vocabulary
    int32_t width() const { return width_; }      // the rows decode() writes (align_to)
    // the id to feed for t: t itself, or the substitute for an id this (aligned) model lacks
    llama_token feedable(llama_token t) const { return aligned_ && (t < 0 || t >= n_vocab_) ? substitute_ : t; }
    std::mutex & decode_lock() const { return decode_lock_; }
    llama_context * ctx() const { return ctx_; }

    int64_t passes   = 0;    // llama_decode calls
    double  decode_ms = 0.0;  // wall time inside llama_decode + logits copy (shared: waiting for the batch included)
    int64_t shared_passes = 0;  // llama_decode calls that carried other generations' tokens too
    int32_t cached_tokens = 0;  // tokens the last prefill() kept from a parked prefix

  private:
    llama_context * ctx_;
    llama_seq_id    seq_;
    int32_t         n_vocab_;
    int32_t         width_;
    bool            aligned_    = false;  // align_to() gave another width: map ids this model lacks
    llama_token     substitute_ = 0;      // fed for ids ≥ n_vocab_ (aligned evaluators only)
    int32_t         n_ctx_;
    int32_t         n_batch_;
    int32_t         n_past_ = 0;
    std::mutex &    decode_lock_;
    SharedBatch *            batch_ = nullptr;
    const std::atomic_bool * cancel_ = nullptr;
    int32_t                  priority_ = 0;
    std::vector<llama_token> feed_;     // scratch: the ids decoded
    std::vector<llama_token> history_;  // the tokens at positions 0 .. n_past − 1 (as given, before feedable())
    PrefixCache *            cache_ = nullptr;
};

}  // namespace duet
