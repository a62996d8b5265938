// ObjectWrap over llama_context: unified KV cache with n_seq_max sequence slots (beams, forests),
// a claim count so no two exclusive workers (or an exclusive one and shared generations) ever drive one context, and dispose guards.
#pragma once
#include <napi.h>

#include <atomic>
#include <memory>
#include <mutex>

#include "llama.h"
#include "model/Model.h"
#include "forest/Sequences.h"
#include "model/PrefixCache.h"
#include "model/SharedBatch.h"

namespace duet {

// llama.cpp's LLAMA_MAX_SEQ (src/llama-cparams.h, not exported by llama.h)
inline constexpr uint32_t kMaxSequences = 256;

class Context : public Napi::ObjectWrap<Context> {
  public:
    static Napi::Function Init(Napi::Env env);

    // new Context(model, { contextSize, batchSize, sequences, threads, flashAttention, shareThreadsWith? })
    explicit Context(const Napi::CallbackInfo & info);
    ~Context() override;

    // requires: not disposed (throws DISPOSED)
    llama_context * get() const;
    Model *         model() const {
        get();
        return model_;
    }

    // Held around every llama_decode on this context: a pair's two contexts share one ggml threadpool, which
    // must never run two graphs at once (a generation on one context and a test hook or sequence operation on
    // the other would otherwise both drive it).
    std::mutex & decode_mutex() const { return *pool_mutex_; }

    // The continuous batch of this context's model or pair (shared with the contexts that share its threadpool).
    SharedBatch & shared_batch() const { return *batch_; }

    // Claims the context for one worker; throws BUSY if another holds it. Released on the JS thread.
    void acquire();
    void release();
    // Claims it for one of several concurrent generations (each on its own KV sequence, decoding through
    // the SharedBatch); throws BUSY while an exclusive claim holds it. Released with release().
    void acquire_shared();

    // A sequence for one shared generation, on the JS thread while claimed. Where a parked prompt prefix
    // shares tokens with `prompt` (PrefixCache::match): that entry's own sequence, or a free one that is to
    // share its prefix cells (`share_from` ≥ 0 names the entry, pinned: the worker copies them and unpins it).
    // Else 0 (generate()'s own) when free, else one lent by sequences(), else the least recently used parked
    // one. `cached` gets the tokens its cells hold or will share; the worker keeps what the prompt shares and
    // removes the rest. Throws INVALID_ARGUMENT when none is free.
    llama_seq_id take_generation_seq(const std::vector<llama_token> & prompt, std::vector<llama_token> & cached, llama_seq_id & share_from);
    // Gives it back: parked with the tokens its cells hold (a generation that ended normally; prompt cache
    // on), or emptied by the worker (`tokens` empty) and freed.
    void put_generation_seq(llama_seq_id id, std::vector<llama_token> tokens);
    // An exclusive operation that drives sequence 0 itself (beam, dsbd, the test hook) or needs the whole
    // cache: every parked prefix is dropped and its id freed. While claimed exclusively.
    void clear_prefix_cache();
    PrefixCache * prefix_cache() const { return prefix_.get(); }

    // The context's KV sequences (created on first use); only while the context is claimed.
    Sequences & sequences();

    // RAII claim for a synchronous operation on the JS thread.
    struct Claim {
        Context * c;
        explicit Claim(Context * ctx) : c(ctx) { c->acquire(); }
        ~Claim() { c->release(); }
        Claim(const Claim &)             = delete;
        Claim & operator=(const Claim &) = delete;
    };

  private:
    Napi::Value Generate(const Napi::CallbackInfo & info);
    Napi::Value Info(const Napi::CallbackInfo & info);
    Napi::Value Dispose(const Napi::CallbackInfo & info);
    Napi::Value EvalLogits(const Napi::CallbackInfo & info);

    // KV sequences and verifyForest (implemented in forest/ContextSequences.cpp)
    Napi::Value SeqCreate(const Napi::CallbackInfo & info);
    Napi::Value SeqAppend(const Napi::CallbackInfo & info);
    Napi::Value SeqFork(const Napi::CallbackInfo & info);
    Napi::Value SeqTrim(const Napi::CallbackInfo & info);
    Napi::Value SeqDispose(const Napi::CallbackInfo & info);
    Napi::Value SeqTokens(const Napi::CallbackInfo & info);
    Napi::Value VerifyForest(const Napi::CallbackInfo & info);
    Napi::Value CommitTree(const Napi::CallbackInfo & info);
    Napi::Value ReleaseForest(const Napi::CallbackInfo & info);
    Napi::Value KvCells(const Napi::CallbackInfo & info);

    void free_context();

    llama_context *       ctx_   = nullptr;
    Model *               model_ = nullptr;
    Napi::ObjectReference model_ref_;
    std::atomic_int       holders_{ 0 };  // −1: one exclusive claim; n > 0: n shared claims
    std::unique_ptr<PrefixCache> prefix_;
    std::unique_ptr<Sequences>   seqs_;
    bool                       seq0_taken_ = false;  // a shared generation runs on sequence 0
    std::shared_ptr<ggml_threadpool> pool_;        // shared by a pair's two contexts
    std::shared_ptr<std::mutex>      pool_mutex_;  // ... and so is its lock
    std::shared_ptr<SharedBatch>     batch_;       // ... and the continuous batch of their generations
};

}  // namespace duet
