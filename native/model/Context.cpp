#include "model/Context.h"

#include <algorithm>
#include <cstring>
#include <thread>

#include "model/Backends.h"
#include "model/PassCosts.h"
#include "napi/args.h"
#include "napi/errors.h"
#include "napi/log_bridge.h"
#include "napi/wrap.h"
#include "workers/GenerateWorker.h"

namespace duet {

Napi::Function Context::Init(Napi::Env env) {
    return DefineClass(env, "Context",
                       {
                           InstanceMethod("generate", &Context::Generate),
                           InstanceMethod("info", &Context::Info),
                           InstanceMethod("dispose", &Context::Dispose),
                           InstanceMethod("_evalLogits", &Context::EvalLogits),
                           InstanceMethod("seqCreate", &Context::SeqCreate),
                           InstanceMethod("seqAppend", &Context::SeqAppend),
                           InstanceMethod("seqFork", &Context::SeqFork),
                           InstanceMethod("seqTrim", &Context::SeqTrim),
                           InstanceMethod("seqDispose", &Context::SeqDispose),
                           InstanceMethod("seqTokens", &Context::SeqTokens),
                           InstanceMethod("verifyForest", &Context::VerifyForest),
                           InstanceMethod("commitTree", &Context::CommitTree),
                           InstanceMethod("releaseForest", &Context::ReleaseForest),
                           InstanceMethod("_kvCells", &Context::KvCells),
                       });
}

Context::Context(const Napi::CallbackInfo & info) : Napi::ObjectWrap<Context>(info) {
    try {
        info.This().As<Napi::Object>().TypeTag(&kContextTag);
        Napi::Object mobj = args::object(info[0], "model");
        model_            = unwrap<Model>(mobj, kModelTag, "Model for model");
        llama_model * m   = model_->get();
        // count and hold the model first: free_context() gives both back, whatever fails below
        model_ref_ = Napi::Persistent(mobj);
        model_->contexts++;
        Napi::Object  o = args::object(info[1], "options");

        llama_context_params cp = llama_context_default_params();
        cp.n_ctx                = (uint32_t) args::opt_integer(o, "contextSize", 2048, 16, 1 << 24);
        cp.n_batch              = (uint32_t) args::opt_integer(o, "batchSize", 512, 1, 1 << 16);
        cp.n_ubatch             = std::min<uint32_t>(cp.n_batch, 512);
        cp.n_seq_max            = (uint32_t) args::opt_integer(o, "sequences", 16, 1, kMaxSequences);
        const int32_t threads   = (int32_t) args::opt_integer(o, "threads", 0, 0, 1024);
        cp.n_threads            = threads > 0 ? threads : (int32_t) std::max(1u, std::thread::hardware_concurrency());
        cp.n_threads_batch      = cp.n_threads;
        const int64_t fa        = args::opt_integer(o, "flashAttention", -1, -1, 1);
        cp.flash_attn_type      = fa < 0 ? LLAMA_FLASH_ATTN_TYPE_AUTO : (fa ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED);
        cp.kv_unified           = true;  // forests and beams share prefix cells across sequences
        cp.no_perf              = true;

        log_bridge::take_last_error();
        ctx_ = llama_init_from_model(m, cp);
        if (!ctx_) {
            std::string why = log_bridge::take_last_error();
            throw DuetError(code::CONTEXT_CREATE_FAILED, "llama.cpp could not create the context" + (why.empty() ? "" : ": " + why));
        }
        // A persistent ggml threadpool (not OpenMP, not a pool per decode): decode calls come from
        // different libuv threads, and per-caller thread teams left spinning threads fighting the running
        // ones for the cores (5× slower on 2 cores). A pair's two contexts share one pool (`shareThreadsWith`):
        // they never decode at the same time, and two pools would spin against each other between the
        // amateur's and the expert's passes.
        Napi::Value share = o.Get("shareThreadsWith");
        if (share.IsObject()) {
            Context * other = unwrap<Context>(share, kContextTag, "Context for shareThreadsWith");
            if (!other->pool_) throw DuetError(code::INVALID_ARGUMENT, "Expected a live Context for shareThreadsWith");
            pool_       = other->pool_;
            pool_mutex_ = other->pool_mutex_;
            batch_      = other->batch_;
        } else {
            ggml_threadpool_t raw = backends::threadpool_new(cp.n_threads);
            if (!raw) throw DuetError(code::CONTEXT_CREATE_FAILED, "could not create the CPU threadpool");
            pool_       = std::shared_ptr<ggml_threadpool>(raw, backends::threadpool_free);
            pool_mutex_ = std::make_shared<std::mutex>();
            batch_      = std::make_shared<SharedBatch>();
        }
        llama_attach_threadpool(ctx_, pool_.get(), pool_.get());
        // prompt-prefix reuse needs sequences that can be cut at any position with every earlier cell intact
        const bool cuttable = !llama_model_is_recurrent(m) && !llama_model_is_hybrid(m) && llama_model_n_swa(m) == 0;
        prefix_ = std::make_unique<PrefixCache>(ctx_, pool_mutex_.get(), cuttable && args::opt_boolean(o, "promptCache", true));
        seqs_   = std::make_unique<Sequences>(ctx_, m, pool_mutex_.get(), prefix_.get());
    } catch (...) {
        free_context();  // the wrapped object survives a throwing constructor: leave it disposed, not half-built
        error_from_current(info.Env()).ThrowAsJavaScriptException();
    }
}

Context::~Context() { free_context(); }

void Context::free_context() {
    if (ctx_) {
        seqs_.reset();
        prefix_.reset();
        PassCosts::instance().forget(ctx_);
        if (batch_) batch_->forget(ctx_);
        llama_detach_threadpool(ctx_);
        llama_free(ctx_);
        ctx_ = nullptr;
    }
    pool_.reset();
    if (model_) {
        model_->contexts--;
        model_ = nullptr;
    }
    if (!model_ref_.IsEmpty()) model_ref_.Reset();
}

llama_context * Context::get() const {
    if (!ctx_) throw DuetError(code::DISPOSED, "the context has been disposed");
    return ctx_;
}

void Context::acquire() {
    get();
    int expected = 0;
    if (!holders_.compare_exchange_strong(expected, -1)) {
        throw DuetError(code::BUSY, "the context is already running a generation (calls are queued in JS; this is a native re-check)");
    }
}

void Context::acquire_shared() {
    get();
    int n = holders_.load();
    do {
        if (n < 0) throw DuetError(code::BUSY, "the context is running an exclusive operation (calls are queued in JS; this is a native re-check)");
    } while (!holders_.compare_exchange_weak(n, n + 1));
}

llama_seq_id Context::take_generation_seq(const std::vector<llama_token> & prompt, std::vector<llama_token> & cached, llama_seq_id & share_from) {
    cached.clear();
    share_from = -1;
    const bool         id_free = !seq0_taken_ || sequences().unused_ids() > 0;
    PrefixCache::Entry e;
    const auto         m = prefix_->match(prompt, id_free, e);
    if (m == PrefixCache::Match::WHOLE) {
        cached = std::move(e.tokens);
        return e.seq;
    }
    if (m == PrefixCache::Match::SHARE) {
        share_from = e.seq;
        cached     = std::move(e.tokens);
    }
    if (!seq0_taken_) {
        seq0_taken_ = true;
        return 0;
    }
    if (sequences().unused_ids() > 0) return sequences().borrow(1)[0];
    // the worker clears what the prompt does not share (not here: other generations may be decoding)
    if (prefix_->take_lru(e, true)) {
        cached = std::move(e.tokens);
        return e.seq;
    }
    return sequences().borrow(1)[0];  // throws, naming `sequences`
}

void Context::put_generation_seq(llama_seq_id id, std::vector<llama_token> tokens) {
    if (prefix_->park(id, std::move(tokens))) return;
    if (id == 0) seq0_taken_ = false;
    else sequences().give_back({ id });
}

void Context::clear_prefix_cache() {
    for (llama_seq_id id : prefix_->clear()) put_generation_seq(id, {});
}

void Context::release() {
    int n = holders_.load();
    while (!holders_.compare_exchange_weak(n, n < 0 ? 0 : std::max(0, n - 1))) {}
}

Napi::Value Context::Info(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        llama_context * c = get();
        Napi::Object    o = Napi::Object::New(info.Env());
        o.Set("contextSize", llama_n_ctx(c));
        o.Set("batchSize", llama_n_batch(c));
        o.Set("sequences", llama_n_seq_max(c));
        o.Set("busy", holders_.load() != 0);
        return o;
    });
}

Napi::Value Context::Dispose(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        if (holders_.load() != 0) throw DuetError(code::BUSY, "cannot dispose a context while a generation runs on it");
        free_context();
        return info.Env().Undefined();
    });
}

// generate(options, amateur: Context | null, onChunk(text, tokens)) → { promise, cancel() }
Napi::Value Context::Generate(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        Context * amateur = nullptr;
        if (info.Length() > 1 && !info[1].IsNull() && !info[1].IsUndefined()) amateur = unwrap<Context>(info[1], kContextTag, "Context for amateur");
        Napi::Function on_chunk;
        if (info.Length() > 2 && info[2].IsFunction()) on_chunk = info[2].As<Napi::Function>();
        return start_generate(info.Env(), this, info.This().As<Napi::Object>(), amateur,
                              amateur ? info[1].As<Napi::Object>() : Napi::Object(), args::object(info[0], "options"), on_chunk);
    });
}

// Test export: logits after evaluating `tokens` one token per llama_decode on sequence 0, through
// llama_batch_get_one: a path independent of Evaluator. keep=false empties the sequence first.
Napi::Value Context::EvalLogits(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        Claim           claim(this);
        llama_context * c    = get();
        clear_prefix_cache();  // it drives sequence 0 itself
        const auto      toks = args::tokens(info[0], "tokens", model()->n_vocab());
        const bool      keep = args::boolean(info[1], "keep");
        if (toks.empty()) throw DuetError(code::INVALID_ARGUMENT, "Expected at least one token");
        llama_memory_t mem = llama_get_memory(c);
        if (!keep) llama_memory_seq_rm(mem, 0, -1, -1);
        const llama_pos n_past = llama_memory_seq_pos_max(mem, 0) + 1;
        if (n_past + (int64_t) toks.size() > (int64_t) llama_n_ctx(c)) throw DuetError(code::CONTEXT_OVERFLOW, "context full");
        std::lock_guard<std::mutex> lock(decode_mutex());
        for (llama_token t : toks) {
            llama_token tok = t;
            if (llama_decode(c, llama_batch_get_one(&tok, 1)) != 0) throw DuetError(code::DECODE_FAILED, "llama_decode failed");
        }
        const float * row = llama_get_logits_ith(c, -1);
        if (!row) throw DuetError(code::DECODE_FAILED, "no logits");
        const int32_t     n   = model()->n_vocab();
        Napi::Float32Array out = Napi::Float32Array::New(info.Env(), n);
        std::memcpy(out.Data(), row, sizeof(float) * n);
        return out;
    });
}

}  // namespace duet
