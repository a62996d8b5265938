#include "model/SharedBatch.h"

#include "model/PassCosts.h"
#include "model/PrefixCache.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>

namespace duet {

namespace {

struct AbortGroup {
    const std::vector<DecodeJob *> * jobs;
};

// a shared decode stops only when every request in it is cancelled
bool all_cancelled(void * data) {
    const auto & jobs = *((AbortGroup *) data)->jobs;
    for (const DecodeJob * j : jobs) {
        if (!j->cancel || !j->cancel->load(std::memory_order_relaxed)) return false;
    }
    return true;
}

// One llama_decode over `jobs` (all of one context, Σ n ≤ n_batch, or a single job of any length, chunked).
// Returns llama_decode's code; on success every job's logits are copied out.
int32_t decode_group(llama_context * ctx, std::mutex & lock, std::vector<DecodeJob *> & jobs) {
    const int32_t n_batch = (int32_t) llama_n_batch(ctx);
    int32_t       total   = 0;
    for (const DecodeJob * j : jobs) total += j->n;
    const bool    abortable = std::any_of(jobs.begin(), jobs.end(), [](const DecodeJob * j) { return j->cancel != nullptr; });
    AbortGroup    group{ &jobs };
    PrefixCache * cache = jobs.front()->cache;
    llama_batch   batch = llama_batch_init(std::min(total, n_batch), 0, 1);
    struct Free {
        llama_batch & b;
        ~Free() { llama_batch_free(b); }
    } free_batch{ batch };
    for (DecodeJob * j : jobs) {
        j->logits->resize((size_t) (j->all_rows ? j->n : 1) * j->width);
        j->batch_rows = total;
    }
    // token k of the flattened jobs: job index and offset
    size_t  ji = 0;
    int32_t off = 0;
    std::vector<int32_t> row_of(jobs.size(), 0);  // next logits row per job
    for (int32_t start = 0; start < total; start += n_batch) {
        const int32_t m = std::min(n_batch, total - start);
        std::vector<std::pair<size_t, int32_t>> owners(m);  // (job, offset) of each batch row
        batch.n_tokens = m;
        for (int32_t i = 0; i < m; i++) {
            while (off >= jobs[ji]->n) {
                ji++;
                off = 0;
            }
            const DecodeJob * j = jobs[ji];
            batch.token[i]      = j->tokens[off];
            batch.pos[i]        = j->pos0 + off;
            batch.n_seq_id[i]   = 1;
            batch.seq_id[i][0]  = j->seq;
            batch.logits[i]     = j->all_rows || off == j->n - 1;
            owners[i]           = { ji, off };
            off++;
        }
        std::unique_lock<std::mutex> guard(lock);  // held while the logits are read, too
        for (;;) {
            if (abortable) llama_set_abort_callback(ctx, all_cancelled, &group);
            const auto    t0 = std::chrono::steady_clock::now();
            const int32_t rc = llama_decode(ctx, batch);
            if (abortable) llama_set_abort_callback(ctx, nullptr, nullptr);
            if (rc == 0) {
                // the cost of a pass by its size: the load-aware draft length reads it (model/DraftLength.h)
                PassCosts::instance().record(ctx, m, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
                break;
            }
            // no KV slot (nothing written): parked prefixes give up their cells, then try again
            if (rc != 1 || !cache) return rc;
            guard.unlock();
            const bool freed = cache->evict_cells();
            guard.lock();
            if (!freed) return rc;
        }
        for (int32_t i = 0; i < m; i++) {
            if (!batch.logits[i]) continue;
            DecodeJob *   j   = jobs[owners[i].first];
            const float * src = llama_get_logits_ith(ctx, i);
            if (!src) return -100;
            float * dst = j->logits->data() + (size_t) row_of[owners[i].first]++ * j->width;
            std::memcpy(dst, src, sizeof(float) * j->n_copy);
            std::fill(dst + j->n_copy, dst + j->width, -std::numeric_limits<float>::infinity());
        }
    }
    return 0;
}

// rc != 0 may leave processed ubatches in memory: drop each job's cells past its start
void undo(DecodeJob * j) {
    std::lock_guard<std::mutex> guard(*j->decode_lock);
    llama_memory_seq_rm(llama_get_memory(j->ctx), j->seq, j->pos0, -1);
}

}  // namespace

void SharedBatch::join() {
    std::lock_guard<std::mutex> lock(mu_);
    joined_++;
}

int32_t SharedBatch::members() {
    std::lock_guard<std::mutex> lock(mu_);
    return joined_;
}

uint64_t SharedBatch::flushes() {
    std::lock_guard<std::mutex> lock(mu_);
    return flushes_;
}

void SharedBatch::leave() {
    std::unique_lock<std::mutex> lock(mu_);
    joined_--;
    flush_while_ready(lock);  // the others may all be waiting for this one
}

void SharedBatch::decode(DecodeJob & job) {
    std::unique_lock<std::mutex> lock(mu_);
    job.done = false;
    pending_.push_back(&job);
    waiting_++;
    flush_while_ready(lock);
    cv_.wait(lock, [&] { return job.done; });
}

void SharedBatch::flush_while_ready(std::unique_lock<std::mutex> & lock) {
    while (!flushing_ && !pending_.empty() && waiting_ >= joined_) {
        flushing_ = true;
        // the lowest priority waiting goes now, in arrival order; the rest waits for the next flush
        int32_t first = pending_.front()->priority;
        for (const DecodeJob * j : pending_) first = std::min(first, j->priority);
        std::vector<DecodeJob *> jobs, later;
        for (DecodeJob * j : pending_) (j->priority == first ? jobs : later).push_back(j);
        pending_.swap(later);
        const auto start = std::chrono::steady_clock::now();
        if (last_ctx_ != nullptr) {
            const double gap = std::chrono::duration<double, std::milli>(start - last_end_).count();
            if (gap < 1000.0) gaps_.record(last_ctx_, last_rows_, gap);  // longer: the batch was idle
        }
        lock.unlock();
        run(jobs);
        lock.lock();
        for (DecodeJob * j : jobs) j->done = true;
        waiting_ -= (int32_t) jobs.size();
        flushes_++;
        last_end_  = std::chrono::steady_clock::now();
        last_ctx_  = jobs.front()->ctx;
        last_rows_ = 0;
        for (const DecodeJob * j : jobs) last_rows_ += j->n;
        flushing_ = false;
        cv_.notify_all();
    }
}

void SharedBatch::run(std::vector<DecodeJob *> & jobs) {
    // per context, in arrival order
    std::vector<DecodeJob *> rest = jobs;
    while (!rest.empty()) {
        llama_context *          ctx  = rest.front()->ctx;
        std::mutex &             lock = *rest.front()->decode_lock;
        const int32_t            n_batch = (int32_t) llama_n_batch(ctx);
        std::vector<DecodeJob *> mine, others;
        for (DecodeJob * j : rest) (j->ctx == ctx ? mine : others).push_back(j);
        rest.swap(others);
        // groups of whole jobs within n_batch; a longer job (a prompt) goes alone, chunked
        std::vector<DecodeJob *> group;
        int32_t                  in_group = 0;
        auto flush_group = [&]() {
            if (group.empty()) return;
            const int32_t rc = decode_group(ctx, lock, group);
            if (rc != 0) {
                for (DecodeJob * j : group) undo(j);
                if (group.size() == 1 || rc == 2) {
                    for (DecodeJob * j : group) j->rc = rc;
                } else {
                    // no room for the whole batch: each job on its own, so only the ones that do not fit fail
                    for (DecodeJob * j : group) {
                        std::vector<DecodeJob *> one{ j };
                        j->rc = decode_group(ctx, lock, one);
                        if (j->rc != 0) undo(j);
                    }
                }
            } else {
                for (DecodeJob * j : group) j->rc = 0;
            }
            group.clear();
            in_group = 0;
        };
        for (DecodeJob * j : mine) {
            if (in_group + j->n > n_batch) flush_group();
            group.push_back(j);
            in_group += j->n;
        }
        flush_group();
    }
}

}  // namespace duet
