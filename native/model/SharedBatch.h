// Continuous batching across concurrent generations (issue 15): the point where every running
// request's decode on one model or pair joins one shared llama_decode.
//
// Each generation runs its strategy's ordinary loop on its own worker thread, over its own KV sequence.
// Every Evaluator::decode of a joined generation is a yield point: the job (its tokens, positions,
// sequence, which rows it needs) waits here until every joined generation is waiting too; then the last
// one to arrive decodes the waiting jobs (see Phases), per llama_context, in as few llama_decode calls as
// n_batch allows (one, at these sizes), copies each job's logits rows out, and wakes their owners. Plain
// requests' next tokens, speculative requests' verification chains and contrastive steps share the
// expert's pass; every request's drafts at the same draft position share the amateur's. With one
// generation joined, every job is decoded at once by its own thread: batch size 1 is the special case of
// the same path, not a second loop.
//
// Phases: a flush decodes only the waiting jobs of the lowest priority present (the amateur's drafts before
// the expert's verification chains); the others keep waiting. So requests that draft stay in step: every
// request's drafts of a round go first, then one expert pass verifies all of them. Flushing both models'
// jobs at once would let requests drift into opposite phases for good (half of them drafting while the other
// half verifies), and every round would pay two expert passes over half the rows.
//
// A failed shared decode (no KV slot for the whole batch) is retried job by job, so one request running
// out of cells ends only that request. Cancellation: the abort callback of a shared decode fires only
// when every job in it is cancelled; otherwise a cancelled request ends at its next step.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

#include "llama.h"
#include "model/DraftLength.h"
#include "model/PassCosts.h"

namespace duet {

class PrefixCache;

struct DecodeJob {
    llama_context *            ctx = nullptr;
    std::mutex *               decode_lock = nullptr;
    const std::atomic_bool *   cancel = nullptr;  // may be null
    llama_seq_id               seq = 0;
    llama_pos                  pos0 = 0;          // position of tokens[0]
    const llama_token *        tokens = nullptr;  // already feedable ids
    int32_t                    n = 0;
    bool                       all_rows = false;  // logits for every token, else for the last only
    // output: logits rows [n_rows, width] (ids ≥ n_copy at −inf)
    std::vector<float> *       logits = nullptr;
    int32_t                    width = 0, n_copy = 0;
    int32_t                    rc = 0;            // llama_decode's code for this job (0 ok)
    bool                       done = false;
    int32_t                    batch_rows = 0;    // tokens in the shared llama_decode this job rode in (stats)
    PrefixCache *              cache = nullptr;   // the context's parked prefixes: they give up cells when a decode finds no slot
    int32_t                    priority = 0;      // lower first: a flush decodes only the waiting jobs of the lowest priority
};

class SharedBatch {
  public:
    // One per model or pair: the contexts that share a threadpool and its decode lock (Context owns it,
    // a pair's amateur context shares the expert's). Generations on different models never wait for each
    // other. Jobs of its contexts are grouped per context.
    SharedBatch() = default;

    // A generation starts / stops taking part. Every joined generation must either be inside decode()
    // or be about to call it or leave(): a joined thread that blocks elsewhere stalls the others.
    void join();
    void leave();

    // Generations taking part now (the load the speculative strategies look at).
    int32_t members();

    // Flushes so far: requests that start a step between the same two flushes are in the same round.
    uint64_t flushes();

    // The gap between the end of a flush of `rows` tokens on ctx and the start of the next while generations
    // run (their own work on the rows it returned: logits copies, sampling, acceptance), ms, from the gaps
    // measured so far (PassCosts::estimate; negative: none yet).
    double flush_gap_ms(const llama_context * ctx, int32_t rows) const { return gaps_.estimate(ctx, rows); }
    void   forget(const llama_context * ctx) { gaps_.forget(ctx); }

    // The load-aware draft length of this batch's speculative requests (model/DraftLength.h).
    LoadAwareDraft & draft() { return draft_; }

    // Decodes `job` in the next shared batch; blocks until it is done (job.rc says how it went).
    void decode(DecodeJob & job);

    // Decodes the jobs of one context (grouped into n_batch-sized llama_decode calls); sets each job's rc.
    static void run(std::vector<DecodeJob *> & jobs);

  private:
    void flush_while_ready(std::unique_lock<std::mutex> & lock);

    std::mutex               mu_;
    std::condition_variable  cv_;
    int32_t                  joined_   = 0;
    int32_t                  waiting_  = 0;
    bool                     flushing_ = false;
    uint64_t                 flushes_  = 0;
    PassCosts                gaps_;               // by the context and rows of the flush before each gap
    const llama_context *    last_ctx_  = nullptr;
    int32_t                  last_rows_ = 0;
    std::chrono::steady_clock::time_point last_end_{};
    std::vector<DecodeJob *> pending_;
    LoadAwareDraft           draft_;
};

// RAII participation in a shared batch for one generation.
struct SharedBatchMember {
    SharedBatch & batch;
    explicit SharedBatchMember(SharedBatch & b) : batch(b) { batch.join(); }
    ~SharedBatchMember() { batch.leave(); }
    SharedBatchMember(const SharedBatchMember &)             = delete;
    SharedBatchMember & operator=(const SharedBatchMember &) = delete;
};

}  // namespace duet
