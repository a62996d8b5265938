// N-API surface of Context's KV sequences and verifyForest. Metadata operations (create, fork, trim,
// dispose, commit, release) run on the JS thread; append and verifyForest decode on a worker thread.
// Every entry point claims the context's busy flag, so none of them can race a running generation.
#include <functional>
#include <map>

#include "model/Context.h"
#include "napi/args.h"
#include "napi/errors.h"

namespace duet {

namespace {

// Runs `work` on a worker thread with the context claimed; resolves with `done(env)` on the JS thread.
class ContextTask : public Napi::AsyncWorker {
  public:
    ContextTask(Napi::Env env, Context * ctx, Napi::Object self, std::function<void()> work, std::function<Napi::Value(Napi::Env)> done)
        : Napi::AsyncWorker(env, "llama-duet:sequence"),
          deferred_(Napi::Promise::Deferred::New(env)),
          ctx_(ctx),
          work_(std::move(work)),
          done_(std::move(done)) {
        self_ = Napi::Persistent(self);
    }

    Napi::Promise Promise() { return deferred_.Promise(); }

    void Execute() override {
        try {
            work_();
        } catch (const DuetError & e) {
            code_ = e.code();
            SetError(e.what());
        } catch (const std::exception & e) {
            SetError(std::string("native error: ") + e.what());
        } catch (...) {
            SetError("unknown native error");
        }
    }

    void OnOK() override {
        ctx_->release();
        try {
            deferred_.Resolve(done_(Env()));
        } catch (...) {
            deferred_.Reject(error_from_current(Env()).Value());
        }
    }

    void OnError(const Napi::Error & e) override {
        ctx_->release();
        deferred_.Reject(make_error(Env(), code_, e.Message()).Value());
    }

  private:
    Napi::Promise::Deferred                 deferred_;
    Context *                               ctx_;
    Napi::ObjectReference                   self_;
    std::function<void()>                   work_;
    std::function<Napi::Value(Napi::Env)>   done_;
    const char *                            code_ = code::NATIVE;
};

// Claims the context, then runs `work` on a worker thread; the promise resolves with `done(env)`.
Napi::Promise queue_task(const Napi::CallbackInfo & info, Context * ctx, std::function<void()> work, std::function<Napi::Value(Napi::Env)> done) {
    ctx->acquire();
    auto *        task = new ContextTask(info.Env(), ctx, info.This().As<Napi::Object>(), std::move(work), std::move(done));
    Napi::Promise p    = task->Promise();
    task->Queue();
    return p;
}

llama_seq_id seq_arg(const Napi::Value & v) { return (llama_seq_id) args::integer(v, "sequence", 0, kMaxSequences - 1); }

forest::Rule parse_rule(const std::string & r) {
    if (r == "greedy") return forest::Rule::GREEDY;
    if (r == "sample") return forest::Rule::SAMPLE;
    if (r == "target-only") return forest::Rule::TARGET_ONLY;
    if (r == "none") return forest::Rule::NONE;
    throw DuetError(code::INVALID_ARGUMENT, "Expected 'greedy', 'sample', 'target-only' or 'none' for rule but received '" + r + "'");
}

Napi::Object top_to_js(Napi::Env env, const TopK & t) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("tokens", args::to_int32_array(env, t.tokens));
    Napi::Float32Array lp = Napi::Float32Array::New(env, t.logprobs.size());
    std::copy(t.logprobs.begin(), t.logprobs.end(), lp.Data());
    o.Set("logprobs", lp);
    return o;
}

}  // namespace

Sequences & Context::sequences() {
    get();
    return *seqs_;
}

Napi::Value Context::SeqCreate(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        Claim c(this);
        return Napi::Number::New(info.Env(), sequences().create());
    });
}

// seqAppend(seq, tokens) → Promise<void>
Napi::Value Context::SeqAppend(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        const llama_seq_id seq  = seq_arg(info[0]);
        auto               toks = args::tokens(info[1], "tokens", model()->n_vocab());
        Sequences &        s    = sequences();
        return queue_task(info, this, [&s, seq, toks]() { s.append(seq, toks); }, [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
    });
}

Napi::Value Context::SeqFork(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        Claim c(this);
        return Napi::Number::New(info.Env(), sequences().fork(seq_arg(info[0])));
    });
}

Napi::Value Context::SeqTrim(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        Claim c(this);
        sequences().trim(seq_arg(info[0]), (int32_t) args::integer(info[1], "length", 0, 1 << 30));
        return info.Env().Undefined();
    });
}

Napi::Value Context::SeqDispose(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        Claim c(this);
        sequences().dispose(seq_arg(info[0]));
        return info.Env().Undefined();
    });
}

Napi::Value Context::SeqTokens(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        Claim c(this);
        return args::to_int32_array(info.Env(), sequences().tokens(seq_arg(info[0])));
    });
}

// verifyForest(trees: [{ seq, tokens: Int32Array, parents: Int32Array, q?: (Float32Array|null)[] }],
//              { rule, temperature, topK, topP, minP, seed, topLogprobs }) → Promise<result>
Napi::Value Context::VerifyForest(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        if (!info[0].IsArray()) throw DuetError(code::INVALID_ARGUMENT, "Expected an array of trees");
        Napi::Array   arr     = info[0].As<Napi::Array>();
        Napi::Object  o       = args::object(info[1], "options");
        const int32_t n_vocab = model()->n_vocab();
        ForestOptions opt;
        opt.rule                 = parse_rule(args::string(o.Get("rule"), "rule"));
        opt.sampling.temperature = (float) args::opt_number(o, "temperature", 1.0, 0.0, 1e6);
        opt.sampling.top_k       = (int32_t) args::opt_integer(o, "topK", 0, 0, 1 << 30);
        opt.sampling.top_p       = (float) args::opt_number(o, "topP", 1.0, 0.0, 1.0);
        opt.sampling.min_p       = (float) args::opt_number(o, "minP", 0.0, 0.0, 1.0);
        opt.seed                 = (uint64_t) args::opt_integer(o, "seed", 0, 0, (int64_t) 1 << 53);
        opt.top_k                = (int32_t) args::opt_integer(o, "topLogprobs", 0, 0, 1024);
        if (opt.rule != forest::Rule::GREEDY && opt.rule != forest::Rule::NONE && !(opt.sampling.temperature > 0.0f)) {
            throw DuetError(code::INVALID_ARGUMENT, "rules 'sample' and 'target-only' need temperature > 0 (use rule 'greedy')");
        }
        std::vector<ForestTreeIn>                                                trees(arr.Length());
        std::map<const float *, std::shared_ptr<const std::vector<float>>>       shared;  // siblings share one q
        for (uint32_t ti = 0; ti < arr.Length(); ti++) {
            Napi::Object t   = args::object(arr.Get(ti), "tree");
            trees[ti].seq    = seq_arg(t.Get("seq"));
            auto toks        = args::tokens(t.Get("tokens"), "tokens", n_vocab);
            Napi::Value pv   = t.Get("parents");
            if (!pv.IsTypedArray() || pv.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
                throw DuetError(code::INVALID_ARGUMENT, "Expected an Int32Array for parents");
            }
            Napi::Int32Array parents = pv.As<Napi::Int32Array>();
            if (parents.ElementLength() != toks.size()) throw DuetError(code::INVALID_ARGUMENT, "tokens and parents differ in length");
            Napi::Value qv = t.Get("q");
            Napi::Array qa;
            if (!qv.IsUndefined() && !qv.IsNull()) {
                if (!qv.IsArray() || qv.As<Napi::Array>().Length() != toks.size()) throw DuetError(code::INVALID_ARGUMENT, "Expected one q entry per node");
                qa = qv.As<Napi::Array>();
            }
            trees[ti].nodes.resize(toks.size());
            for (size_t i = 0; i < toks.size(); i++) {
                auto & nd  = trees[ti].nodes[i];
                nd.token   = toks[i];
                nd.parent  = parents[i];
                if (qa.IsEmpty()) continue;
                Napi::Value e = qa.Get((uint32_t) i);
                if (e.IsUndefined() || e.IsNull()) continue;
                if (!e.IsTypedArray() || e.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
                    throw DuetError(code::INVALID_ARGUMENT, "Expected a Float32Array for q");
                }
                Napi::Float32Array f = e.As<Napi::Float32Array>();
                if ((int32_t) f.ElementLength() != n_vocab) throw DuetError(code::INVALID_ARGUMENT, "Expected q of length n_vocab");
                auto & slot = shared[f.Data()];
                if (!slot) {
                    for (size_t j = 0; j < f.ElementLength(); j++) {
                        if (!(f[j] >= 0.0f) || !std::isfinite(f[j])) throw DuetError(code::INVALID_ARGUMENT, "q holds a negative or non-finite probability");
                    }
                    slot = std::make_shared<const std::vector<float>>(f.Data(), f.Data() + f.ElementLength());
                }
                nd.q = slot;
            }
        }
        Sequences & s   = sequences();
        auto        out = std::make_shared<ForestOut>();
        return queue_task(
            info, this, [&s, trees = std::move(trees), opt, out]() { *out = s.verify(trees, opt); },
            [out](Napi::Env env) -> Napi::Value {
                Napi::Object r = Napi::Object::New(env);
                r.Set("id", Napi::Number::New(env, (double) out->id));
                r.Set("batchTokens", out->batch_tokens);
                r.Set("ms", out->decode_ms);
                Napi::Array ts = Napi::Array::New(env, out->trees.size());
                for (size_t ti = 0; ti < out->trees.size(); ti++) {
                    const ForestTreeOut & t = out->trees[ti];
                    const size_t          n = t.nodes.size();
                    Napi::Object          o = Napi::Object::New(env);
                    o.Set("rootArgmax", t.root_argmax);
                    o.Set("rootTop", top_to_js(env, t.root_top));
                    Napi::Float32Array lp = Napi::Float32Array::New(env, n);
                    Napi::Int32Array   am = Napi::Int32Array::New(env, n);
                    Napi::Array        tp = Napi::Array::New(env, n);
                    for (size_t i = 0; i < n; i++) {
                        lp[i] = t.nodes[i].logprob;
                        am[i] = t.nodes[i].argmax;
                        tp.Set((uint32_t) i, top_to_js(env, t.nodes[i].top));
                    }
                    o.Set("logprobs", lp);
                    o.Set("argmax", am);
                    o.Set("top", tp);
                    o.Set("path", args::to_int32_array(env, t.verdict.path));
                    o.Set("next", t.verdict.next);
                    ts.Set((uint32_t) ti, o);
                }
                r.Set("trees", ts);
                return r;
            });
    });
}

// commitTree(forestId, treeIndex, path: Int32Array, next: number (−1 = none))
Napi::Value Context::CommitTree(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        Claim         c(this);
        const auto    forest = (uint64_t) args::integer(info[0], "forest", 0, (int64_t) 1 << 53);
        const auto    tree   = (int32_t) args::integer(info[1], "tree", 0, 1 << 30);
        auto          path   = args::tokens(info[2], "path", 1 << 30);
        const int32_t next   = (int32_t) args::integer(info[3], "next", -1, model()->n_vocab() - 1);
        sequences().commit(forest, tree, path, next);
        return info.Env().Undefined();
    });
}

Napi::Value Context::ReleaseForest(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        if (!ctx_) return info.Env().Undefined();  // released after dispose: nothing left to free
        Claim c(this);
        sequences().release((uint64_t) args::integer(info[0], "forest", 0, (int64_t) 1 << 53));
        return info.Env().Undefined();
    });
}

// Test export: { total, generation } — KV cells in use by any sequence, and by generate()'s sequence 0.
Napi::Value Context::KvCells(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        Claim        c(this);
        Napi::Object o = Napi::Object::New(info.Env());
        o.Set("total", (double) sequences().kv_cells(-1));
        o.Set("generation", (double) sequences().kv_cells(0));
        return o;
    });
}

}  // namespace duet
