#include "model/PrefixCache.h"

#include <algorithm>

namespace duet {

size_t common_prefix(const std::vector<llama_token> & a, const llama_token * b, size_t n) {
    const size_t m = std::min(a.size(), n);
    size_t       i = 0;
    while (i < m && a[i] == b[i]) i++;
    return i;
}

int32_t decode_reclaiming(llama_context * ctx, const llama_batch & batch, std::mutex & decode_lock, PrefixCache * cache) {
    for (;;) {
        int32_t rc;
        {
            std::lock_guard<std::mutex> lock(decode_lock);
            rc = llama_decode(ctx, batch);
        }
        if (rc != 1 || !cache || !cache->evict_cells()) return rc;
    }
}

PrefixCache::PrefixCache(llama_context * ctx, std::mutex * decode_lock, bool enabled)
    : ctx_(ctx), decode_lock_(decode_lock), enabled_(enabled) {}

bool PrefixCache::park(llama_seq_id seq, std::vector<llama_token> tokens) {
    if (!enabled_ || tokens.empty()) return false;
    std::lock_guard<std::mutex> lock(mu_);
    entries_.push_back(Entry{ seq, std::move(tokens), ++clock_ });
    return true;
}

PrefixCache::Match PrefixCache::match(const std::vector<llama_token> & prompt, bool id_free, Entry & out) {
    std::lock_guard<std::mutex> lock(mu_);
    // the best entry, and the best one that may be taken whole (unpinned)
    size_t best = entries_.size(), whole = entries_.size(), best_n = 0, whole_n = 0;
    for (size_t i = 0; i < entries_.size(); i++) {
        const Entry & e = entries_[i];
        const size_t  n = common_prefix(e.tokens, prompt.data(), prompt.size());
        if (n == 0) continue;
        if (n > best_n || (n == best_n && e.used > entries_[best].used)) {
            best   = i;
            best_n = n;
        }
        if (e.pins == 0 && (n > whole_n || (n == whole_n && e.used > entries_[whole].used))) {
            whole   = i;
            whole_n = n;
        }
    }
    if (best_n == 0) return Match::NONE;
    Entry & b = entries_[best];
    if (id_free && best_n < b.tokens.size()) {
        b.pins++;
        b.used = ++clock_;
        out.seq = b.seq;
        out.tokens.assign(b.tokens.begin(), b.tokens.begin() + (ptrdiff_t) best_n);
        return Match::SHARE;
    }
    if (whole_n == 0) return Match::NONE;
    out = std::move(entries_[whole]);
    entries_.erase(entries_.begin() + (ptrdiff_t) whole);
    return Match::WHOLE;
}

void PrefixCache::unpin(llama_seq_id seq) {
    std::lock_guard<std::mutex> lock(mu_);
    for (Entry & e : entries_) {
        if (e.seq == seq && e.pins > 0) {
            e.pins--;
            return;
        }
    }
}

bool PrefixCache::take_lru(Entry & out, bool allow_seq0) {
    std::lock_guard<std::mutex> lock(mu_);
    size_t best = entries_.size();
    for (size_t i = 0; i < entries_.size(); i++) {
        const Entry & e = entries_[i];
        if ((e.seq == 0 && !allow_seq0) || e.pins > 0) continue;
        if (best == entries_.size()) {
            best = i;
            continue;
        }
        const Entry & b = entries_[best];
        // emptied entries first, then the oldest
        if (e.tokens.empty() != b.tokens.empty() ? e.tokens.empty() : e.used < b.used) best = i;
    }
    if (best == entries_.size()) return false;
    out = std::move(entries_[best]);
    entries_.erase(entries_.begin() + (ptrdiff_t) best);
    return true;
}

bool PrefixCache::evict_cells() {
    std::lock_guard<std::mutex> lock(mu_);
    Entry * victim = nullptr;
    for (Entry & e : entries_) {
        if (!e.tokens.empty() && e.pins == 0 && (!victim || e.used < victim->used)) victim = &e;
    }
    if (!victim) return false;
    {
        std::lock_guard<std::mutex> dl(*decode_lock_);
        llama_memory_seq_rm(llama_get_memory(ctx_), victim->seq, -1, -1);  // whole-sequence removal never fails
    }
    victim->tokens.clear();
    return true;
}

std::vector<llama_seq_id> PrefixCache::clear() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<llama_seq_id>   ids;
    {
        std::lock_guard<std::mutex> dl(*decode_lock_);
        for (const Entry & e : entries_) {
            llama_memory_seq_rm(llama_get_memory(ctx_), e.seq, -1, -1);
            ids.push_back(e.seq);
        }
    }
    entries_.clear();
    return ids;
}

int32_t PrefixCache::lendable() const {
    std::lock_guard<std::mutex> lock(mu_);
    return (int32_t) std::count_if(entries_.begin(), entries_.end(), [](const Entry & e) { return e.seq != 0 && e.pins == 0; });
}

}  // namespace duet
