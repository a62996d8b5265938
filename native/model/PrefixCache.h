// Prompt-prefix reuse (issue 15): the KV cells of finished generations stay in the cache, parked under
// their sequence id with the tokens they hold, so that a later request whose prompt starts the same way (a
// conversation's next turn, a shared system prompt, the same prompt again) decodes only the rest.
//
// A generation whose prompt shares a prefix with a parked entry either takes the entry whole (it continues
// that conversation: nothing else in the entry is worth keeping, or no other sequence id is free; its worker
// then trims the cells past the common prefix, Evaluator::prefill), or, when the entry holds more than the
// prompt shares and an id is free, shares the prefix cells with it (llama_memory_seq_cp in the unified KV
// cache: metadata only, no copy), so the parked conversation stays whole for its own next turn. A generation
// parks its own sequence when it ends normally. Entries give way least recently used first: their cells when
// a decode finds no KV slot (evict_cells, then the decode is retried), their ids when the context runs out of
// sequence ids.
//
// Threading: take/park run on the JS thread; evict_cells on a worker (a decode that failed for room).
// The entry list has its own lock, always taken before the decode lock, never after it.
#pragma once
#include <cstdint>
#include <mutex>
#include <vector>

#include "llama.h"

namespace duet {

class PrefixCache {
  public:
    struct Entry {
        llama_seq_id             seq = -1;
        std::vector<llama_token> tokens;  // what the sequence's cells hold at positions 0 .. n − 1
        uint64_t                 used = 0;
        int32_t                  pins = 0;  // generations copying its prefix now: not taken, trimmed or evicted meanwhile
    };

    // enabled: false keeps nothing (park() then refuses every entry); models whose KV cells cannot be cut at
    // any position (recurrent, hybrid, sliding-window attention) are never enabled.
    PrefixCache(llama_context * ctx, std::mutex * decode_lock, bool enabled);

    bool enabled() const { return enabled_; }

    // Keeps a finished generation's sequence, cells intact. Returns false (nothing kept: the caller empties
    // and frees the id) when disabled or `tokens` is empty.
    bool park(llama_seq_id seq, std::vector<llama_token> tokens);

    enum class Match { NONE, WHOLE, SHARE };
    // The entry sharing the longest prefix (≥ 1 token) with `prompt`, the most recent among equals:
    // WHOLE: taken out of the cache (`out` is the entry); SHARE (only when `id_free`: the caller has another
    // sequence id to give the generation): pinned, `out` names it and the shared prefix (out.tokens), which the
    // caller copies into its own sequence and then unpin()s; NONE: no entry shares a token.
    Match match(const std::vector<llama_token> & prompt, bool id_free, Entry & out);
    void  unpin(llama_seq_id seq);

    // The least recently used unpinned entry (emptied ones first) for a caller that needs a sequence id; seq 0
    // only when allow_seq0. Its cells (if any) are the taker's to clear.
    bool take_lru(Entry & out, bool allow_seq0);

    // Frees the cells of the least recently used unpinned entry that has any (its id stays parked, empty). False when
    // no entry holds a cell. Takes the decode lock: never call it with the lock held.
    bool evict_cells();

    // Takes every entry out (cells cleared under the decode lock) and returns their ids. requires: no pins
    // (an exclusive claim: no shared generation is starting).
    std::vector<llama_seq_id> clear();

    // Ids take_lru(out, false) could give now: unpinned entries other than sequence 0's.
    int32_t lendable() const;

  private:
    llama_context *    ctx_;
    std::mutex *       decode_lock_;
    bool               enabled_;
    mutable std::mutex mu_;
    std::vector<Entry> entries_;
    uint64_t           clock_ = 0;
};

// Tokens two sequences share from the start.
size_t common_prefix(const std::vector<llama_token> & a, const llama_token * b, size_t n);

// llama_decode under `decode_lock`; when the KV cache has no slot for the batch (rc 1: nothing was written),
// parked prefixes give up their cells (least recently used first) and the decode is retried.
int32_t decode_reclaiming(llama_context * ctx, const llama_batch & batch, std::mutex & decode_lock, PrefixCache * cache);

}  // namespace duet
