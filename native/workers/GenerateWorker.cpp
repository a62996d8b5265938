#include "workers/GenerateWorker.h"

#include <atomic>
#include <chrono>
#include <memory>

#include "model/Context.h"
#include "model/Evaluator.h"
#include "model/SharedBatch.h"
#include "napi/args.h"
#include "napi/errors.h"
#include "strategies/Strategy.h"
#include "workers/TextAssembler.h"
#include "workers/ThreadWorker.h"

namespace duet {

namespace {

struct Chunk {
    std::string              text;
    std::vector<llama_token> tokens;
};

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

GenerateConfig parse_config(const Napi::Object & o, int32_t n_vocab) {
    GenerateConfig cfg;
    const std::string kind = args::string(o.Get("strategy"), "strategy");
    if (kind == "greedy") cfg.kind = StrategyKind::GREEDY;
    else if (kind == "sample") cfg.kind = StrategyKind::SAMPLE;
    else if (kind == "speculative") cfg.kind = StrategyKind::SPECULATIVE;
    else if (kind == "contrastive") cfg.kind = StrategyKind::CONTRASTIVE;
    else if (kind == "scd") cfg.kind = StrategyKind::SCD;
    else if (kind == "beam") cfg.kind = StrategyKind::BEAM;
    else if (kind == "dsbd") cfg.kind = StrategyKind::DSBD;
    else throw DuetError(code::INVALID_ARGUMENT, "unknown strategy '" + kind + "'");
    cfg.prompt = args::tokens(o.Get("prompt"), "prompt", n_vocab);
    if (cfg.prompt.empty()) throw DuetError(code::INVALID_ARGUMENT, "Expected a non-empty prompt");
    cfg.max_tokens           = (int32_t) args::integer(o.Get("maxTokens"), "maxTokens", 0, 1 << 24);
    cfg.sampling.temperature = (float) args::opt_number(o, "temperature", 1.0, 0.0, 1e6);
    cfg.sampling.top_k       = (int32_t) args::opt_integer(o, "topK", 0, 0, 1 << 30);
    cfg.sampling.top_p       = (float) args::opt_number(o, "topP", 1.0, 0.0, 1.0);
    cfg.sampling.min_p       = (float) args::opt_number(o, "minP", 0.0, 0.0, 1.0);
    cfg.seed                 = (uint64_t) args::opt_integer(o, "seed", 0, 0, (int64_t) 1 << 53);
    if (!o.Get("stop").IsUndefined()) cfg.stop = args::strings(o.Get("stop"), "stop");
    cfg.draft_tokens         = (int32_t) args::opt_integer(o, "draftTokens", 4, 1, 64);
    cfg.draft_confidence     = (float) args::opt_number(o, "draftConfidence", 0.0, 0.0, 1.0);
    cfg.adaptive_draft       = args::opt_boolean(o, "adaptiveDraft", false);
    if (o.Get("speculateUpTo").IsString()) {
        if (args::string(o.Get("speculateUpTo"), "speculateUpTo") != "auto") throw DuetError(code::INVALID_ARGUMENT, "speculateUpTo must be 'auto' or an integer");
        cfg.speculate_auto = true;
    } else {
        cfg.speculate_up_to = (int32_t) args::opt_integer(o, "speculateUpTo", 1 << 30, 1, 1 << 30);
    }
    cfg.alpha                = (float) args::opt_number(o, "alpha", 0.1, 0.0, 1.0);
    cfg.beta                 = (float) args::opt_number(o, "beta", 0.5, 0.0, 1e6);
    cfg.amateur_temperature  = (float) args::opt_number(o, "amateurTemperature", 1.0, 1e-6, 1e6);
    cfg.amateur_sees_prompt  = args::opt_boolean(o, "amateurSeesPrompt", true);
    cfg.bonus                = args::opt_boolean(o, "bonus", true);
    cfg.beams                = (int32_t) args::opt_integer(o, "beams", 4, 1, kMaxSequences);
    cfg.beam_sample          = args::opt_boolean(o, "sample", false);
    cfg.length_penalty       = (float) args::opt_number(o, "lengthPenalty", 1.0, -1e6, 1e6);
    const std::string early  = o.Get("earlyStopping").IsUndefined() ? "false" : args::string(o.Get("earlyStopping"), "earlyStopping");
    if (early == "false") cfg.early_stopping = EarlyStopping::NO;
    else if (early == "true") cfg.early_stopping = EarlyStopping::YES;
    else if (early == "never") cfg.early_stopping = EarlyStopping::NEVER;
    else throw DuetError(code::INVALID_ARGUMENT, "earlyStopping must be 'false', 'true' or 'never'");
    cfg.draft_beams          = (int32_t) args::opt_integer(o, "draftBeams", 4, 1, 64);
    cfg.width_threshold      = args::opt_number(o, "widthThreshold", 0.7, 1e-9, 1.0);
    cfg.min_width            = (int32_t) args::opt_integer(o, "minWidth", 1, 1, 64);
    cfg.single_beam          = args::opt_boolean(o, "singleBeam", false);
    if (!o.Get("select").IsUndefined()) {
        const std::string sel = args::string(o.Get("select"), "select");
        if (sel != "sample" && sel != "best") throw DuetError(code::INVALID_ARGUMENT, "select must be 'sample' or 'best'");
        cfg.select_best = sel == "best";
    }
    if (cfg.kind == StrategyKind::DSBD) {
        if (cfg.min_width > cfg.draft_beams) throw DuetError(code::INVALID_ARGUMENT, "minWidth must not exceed draftBeams");
        cfg.amateur_sees_prompt = true;  // the amateur drafts: it needs the prompt
    }
    if (cfg.kind == StrategyKind::BEAM && cfg.beam_sample && cfg.sampling.temperature <= 0.0f) {
        throw DuetError(code::INVALID_ARGUMENT, "beam sampling needs a temperature > 0");
    }
    cfg.greedy               = cfg.kind == StrategyKind::GREEDY || cfg.sampling.temperature <= 0.0f;
    if (cfg.kind != StrategyKind::SAMPLE && o.Get("temperature").IsUndefined()) cfg.greedy = true;
    return cfg;
}

// strategies whose generations run concurrently, each on its own sequence, batched through the SharedBatch;
// beam and dsbd lend many sequences and decode multi-sequence batches themselves: they run alone
bool is_shared(StrategyKind k) { return k != StrategyKind::BEAM && k != StrategyKind::DSBD; }

// strategies that run the amateur (the others never touch its context)
bool uses_amateur(StrategyKind k) {
    return k == StrategyKind::SPECULATIVE || k == StrategyKind::CONTRASTIVE || k == StrategyKind::SCD || k == StrategyKind::DSBD;
}

// Claims a context for one generation and returns the sequence; nothing stays claimed if it throws.
// Shared: beside others, on a sequence of its own (where a parked prompt prefix matches: that entry's, or
// one that is to share its cells, `share_from`; `cached` then holds what its cells hold or will share).
// Exclusive: alone on sequence 0 and as many lent ones as it needs, so the parked prefixes go.
// unclaim() undoes it.
llama_seq_id claim(Context * c, bool shared, const std::vector<llama_token> & prompt, std::vector<llama_token> & cached,
                   llama_seq_id & share_from) {
    share_from = -1;
    if (!shared) {
        c->acquire();
        c->clear_prefix_cache();
        return 0;
    }
    c->acquire_shared();
    try {
        return c->take_generation_seq(prompt, cached, share_from);
    } catch (...) {
        c->release();
        throw;
    }
}

// `kept`: the tokens the sequence's cells still hold (a shared generation that ended normally), else empty;
// `share_from`: a parked entry still pinned for this generation (it never started), else −1
void unclaim(Context * c, bool shared, llama_seq_id seq, std::vector<llama_token> kept, llama_seq_id share_from) {
    if (share_from >= 0) {
        c->prefix_cache()->unpin(share_from);
        kept.clear();  // its cells were never shared into `seq`
    }
    if (shared) c->put_generation_seq(seq, std::move(kept));
    c->release();
}

bool abort_callback(void * data) { return ((std::atomic_bool *) data)->load(std::memory_order_relaxed); }

class GenerateWorker : public ThreadWorker<Chunk> {
  public:
    GenerateWorker(Napi::Env env, Context * expert, Napi::Object expert_obj, Context * amateur, Napi::Object amateur_obj,
                   GenerateConfig cfg, std::shared_ptr<std::atomic_bool> cancel, Napi::Function on_chunk, llama_seq_id expert_seq,
                   llama_seq_id amateur_seq, std::vector<llama_token> expert_cached, std::vector<llama_token> amateur_cached,
                   llama_seq_id expert_share, llama_seq_id amateur_share)
        : ThreadWorker<Chunk>(env, "llama-duet:generate"),
          deferred_(Napi::Promise::Deferred::New(env)),
          expert_(expert),
          amateur_(amateur),
          cfg_(std::move(cfg)),
          cancel_(std::move(cancel)),
          shared_(is_shared(cfg_.kind)),
          expert_seq_(expert_seq),
          amateur_seq_(amateur_seq),
          expert_cells_(std::move(expert_cached)),
          amateur_cells_(std::move(amateur_cached)),
          expert_share_(expert_share),
          amateur_share_(amateur_share) {
        expert_ref_ = Napi::Persistent(expert_obj);
        if (amateur_) amateur_ref_ = Napi::Persistent(amateur_obj);
        if (!on_chunk.IsEmpty()) on_chunk_ = Napi::Persistent(on_chunk);
    }

    Napi::Promise Promise() { return deferred_.Promise(); }

  protected:
    void Execute(const ExecutionProgress & progress) override {
        llama_context * ectx = expert_->get();
        llama_context * actx = amateur_ ? amateur_->get() : nullptr;
        // shared generations: the SharedBatch sets the abort callback around each shared decode
        if (!shared_) {
            llama_set_abort_callback(ectx, abort_callback, cancel_.get());
            if (actx) llama_set_abort_callback(actx, abort_callback, cancel_.get());
        }
        bool ok = false;
        try {
            std::unique_ptr<SharedBatchMember> member;
            if (shared_) member = std::make_unique<SharedBatchMember>(expert_->shared_batch());
            run(progress);
            ok = true;
        } catch (const DuetError & e) {
            code_ = e.code();
            SetError(e.what());
        } catch (const std::exception & e) {
            code_ = code::NATIVE;
            SetError(std::string("native error during generation: ") + e.what());
        } catch (...) {
            code_ = code::NATIVE;
            SetError("unknown native error during generation");
        }
        // a shared generation that ended normally leaves its cells for the next prompt that shares a prefix
        const bool keep = ok && shared_;
        release_cells(keep && expert_->prefix_cache()->enabled() ? nullptr : ectx,
                      keep && actx && amateur_->prefix_cache()->enabled() ? nullptr : actx);
        if (!shared_) {
            llama_set_abort_callback(ectx, nullptr, nullptr);
            if (actx) llama_set_abort_callback(actx, nullptr, nullptr);
        }
    }

    // A generation that failed, an exclusive one, or one on a context without prompt cache empties its
    // sequence there (ectx / actx; null: left for the cache): the cells go back to the context's budget and
    // nothing is parked. Under the decode lock: other generations may be decoding.
    void release_cells(llama_context * ectx, llama_context * actx) {
        if (ectx) {
            expert_cells_.clear();
            std::lock_guard<std::mutex> lock(expert_->decode_mutex());
            llama_memory_seq_rm(llama_get_memory(ectx), expert_seq_, -1, -1);  // whole-sequence removal never fails
        }
        if (actx) {
            amateur_cells_.clear();
            std::lock_guard<std::mutex> lock(amateur_->decode_mutex());
            llama_memory_seq_rm(llama_get_memory(actx), amateur_seq_, -1, -1);
        }
    }

    void run(const ExecutionProgress & progress) {
        const auto t0 = Clock::now();
        Model *    em = expert_->model();
        Evaluator  expert(expert_->get(), em->get(), expert_seq_, expert_->decode_mutex());
        // a shared generation takes over what its sequence's cells hold (a parked prefix); begin() keeps what the prompt shares
        if (shared_) {
            expert.share(&expert_->shared_batch(), cancel_.get(), 1);
            expert.resume(std::move(expert_cells_), expert_->prefix_cache(), expert_share_);
            expert_share_ = -1;  // unpinned there
        } else {
            expert.reset();
        }
        if ((int64_t) cfg_.prompt.size() >= expert.n_ctx()) {
            throw DuetError(code::CONTEXT_OVERFLOW, "prompt of " + std::to_string(cfg_.prompt.size()) +
                                                        " tokens does not fit contextSize " + std::to_string(expert.n_ctx()));
        }
        Rng                        rng(cfg_.seed);
        std::unique_ptr<Evaluator> amateur;
        std::unique_ptr<Strategy>  strategy;
        if (uses_amateur(cfg_.kind)) {
            if (!amateur_) throw DuetError(code::INVALID_ARGUMENT, "this strategy needs an amateur (use a ModelPair)");
            amateur = std::make_unique<Evaluator>(amateur_->get(), amateur_->model()->get(), amateur_seq_, amateur_->decode_mutex());
            amateur->align_to(expert.n_vocab());  // padded vocabularies: rows over the expert's ids
            if (shared_) {
                amateur->share(&amateur_->shared_batch(), cancel_.get(), 0);  // drafts before verification: requests stay in phase
                amateur->resume(std::move(amateur_cells_), amateur_->prefix_cache(), amateur_share_);
                amateur_share_ = -1;
            } else {
                amateur->reset();
            }
            if ((int64_t) cfg_.prompt.size() >= amateur->n_ctx()) throw DuetError(code::CONTEXT_OVERFLOW, "prompt does not fit the amateur's context");
            if (cfg_.kind == StrategyKind::CONTRASTIVE) strategy = make_contrastive(expert, *amateur, cfg_, rng);
            else if (cfg_.kind == StrategyKind::DSBD)
                strategy = make_dsbd(expert, *amateur, expert_->sequences(), amateur_->sequences(), *em, cfg_, rng);
            else strategy = make_speculative(expert, *amateur, cfg_, rng);
        } else if (cfg_.kind == StrategyKind::BEAM) {
            strategy = make_beam(expert, expert_->sequences(), expert_->decode_mutex(), *em, cfg_, rng);
        } else {
            strategy = make_plain(expert, cfg_, rng);
        }

        strategy->begin(cfg_.prompt);
        cached_prompt_       = expert.cached_tokens;
        prompt_ms_           = ms_since(t0);
        const auto t_gen     = Clock::now();
        const llama_vocab * vocab = em->vocab();
        TextAssembler       text(cfg_.stop);
        std::vector<llama_token> step_tokens;
        finish_ = "length";
        bool done = (int32_t) tokens_.size() >= cfg_.max_tokens;
        while (!done) {
            if (cancel_->load()) throw DuetError(code::ABORTED, "generation aborted");
            if (expert.n_past() + strategy->room() > expert.n_ctx()) {
                finish_ = "context";
                break;
            }
            step_tokens.clear();
            try {
                strategy->step(step_tokens, cfg_.max_tokens - (int32_t) tokens_.size());
            } catch (const DuetError & e) {
                // the KV cache had no room for this step (cells held by other sequences count too): end the
                // generation with what it has, as when the window itself is full
                if (std::string(e.code()) != code::CONTEXT_OVERFLOW) throw;
                finish_ = "context";
                break;
            }
            Chunk chunk;
            for (llama_token t : step_tokens) {
                if (llama_vocab_is_eog(vocab, t)) {
                    finish_ = "eos";
                    done    = true;
                    break;
                }
                tokens_.push_back(t);
                chunk.tokens.push_back(t);
                std::string out;
                const bool  stopped = text.push(em->piece(t), out);
                chunk.text += out;
                if (stopped) {
                    finish_ = "stop";
                    done    = true;
                    break;
                }
                if ((int32_t) tokens_.size() >= cfg_.max_tokens) {
                    finish_ = "length";
                    done    = true;
                    break;
                }
            }
            if (!chunk.tokens.empty() || !chunk.text.empty()) progress.Send(&chunk, 1);
            if (!done && strategy->ended()) {
                finish_ = strategy->ended();
                done    = true;
            }
        }
        if (finish_ != "stop") {
            Chunk tail;
            tail.text = text.flush();
            if (!tail.text.empty()) progress.Send(&tail, 1);
        }
        text_   = text.text();
        gen_ms_ = ms_since(t_gen);
        wall_ms_ = ms_since(t0);
        strategy->stats(stats_);
        shared_passes_ = expert.shared_passes;
        expert_cells_  = expert.history();  // what stays in the cells for the next prompt (Execute empties them on failure)
        if (amateur) amateur_cells_ = amateur->history();
        for (const BeamResult & b : stats_.beams) {
            TextAssembler t(cfg_.stop);
            std::string   ignored;
            bool          stopped = false;
            for (llama_token tok : b.tokens) {
                if ((stopped = t.push(em->piece(tok), ignored))) break;
            }
            if (!stopped) t.flush();
            beam_texts_.push_back(t.text());
        }
    }

    void OnProgress(const Chunk * data, size_t count) override {
        if (on_chunk_.IsEmpty()) return;
        Napi::HandleScope scope(Env());
        for (size_t i = 0; i < count; i++) {
            try {
                on_chunk_.Call({ Napi::String::New(Env(), data[i].text), args::to_int32_array(Env(), data[i].tokens) });
            } catch (...) {
                // a throwing consumer must not take the worker down; the error surfaces in JS
            }
        }
    }

    void OnOK() override {
        release();
        Napi::Env    env = Env();
        Napi::Object r   = Napi::Object::New(env);
        r.Set("tokens", args::to_int32_array(env, tokens_));
        r.Set("text", Napi::String::New(env, text_));
        r.Set("finishReason", finish_);
        Napi::Object s = Napi::Object::New(env);
        s.Set("promptTokens", (double) cfg_.prompt.size());
        s.Set("cachedPromptTokens", (double) cached_prompt_);
        s.Set("generatedTokens", (double) tokens_.size());
        s.Set("expertPasses", (double) stats_.expert_passes);
        s.Set("amateurPasses", (double) stats_.amateur_passes);
        s.Set("promptMs", prompt_ms_);
        s.Set("generationMs", gen_ms_);
        s.Set("wallMs", wall_ms_);
        s.Set("tokensPerSecond", gen_ms_ > 0 ? tokens_.size() * 1000.0 / gen_ms_ : 0.0);
        s.Set("seed", (double) cfg_.seed);
        if (shared_) s.Set("sharedPasses", (double) shared_passes_);
        if (cfg_.kind == StrategyKind::SCD) {
            s.Set("meanEntropyAccepted", stats_.n_entropy_accepted > 0 ? stats_.entropy_accepted / stats_.n_entropy_accepted : 0.0);
            s.Set("meanEntropyRejected", stats_.n_entropy_rejected > 0 ? stats_.entropy_rejected / stats_.n_entropy_rejected : 0.0);
        }
        if (cfg_.kind == StrategyKind::SPECULATIVE || cfg_.kind == StrategyKind::SCD || cfg_.kind == StrategyKind::DSBD) {
            s.Set("draftedTokens", (double) stats_.drafted);
            s.Set("acceptedTokens", (double) stats_.accepted);
            s.Set("acceptanceRate", stats_.drafted > 0 ? (double) stats_.accepted / stats_.drafted : 0.0);
            s.Set("verifyPasses", (double) stats_.rounds);
            s.Set("meanAcceptedLength", stats_.rounds > 0 ? (double) tokens_.size() / stats_.rounds : 0.0);
            Napi::Array by_depth = Napi::Array::New(env, stats_.drafted_by_depth.size());
            for (size_t d = 0; d < stats_.drafted_by_depth.size(); d++) {
                by_depth.Set(d, stats_.drafted_by_depth[d] > 0 ? (double) stats_.accepted_by_depth[d] / stats_.drafted_by_depth[d] : 0.0);
            }
            s.Set("acceptanceByDepth", by_depth);
            s.Set("draftMs", stats_.draft_ms);
            s.Set("verifyMs", stats_.verify_ms);
            if (cfg_.kind != StrategyKind::DSBD) s.Set("peakKvCells", (double) stats_.peak_kv_cells);
        }
        if (cfg_.kind == StrategyKind::DSBD) {
            Napi::Array hist = Napi::Array::New(env, stats_.width_histogram.size());
            for (size_t w = 0; w < stats_.width_histogram.size(); w++) hist.Set(w, (double) stats_.width_histogram[w]);
            s.Set("widthHistogram", hist);
            s.Set("forestNodesMax", (double) stats_.forest_nodes_max);
            s.Set("meanForestNodes", stats_.rounds > 0 ? (double) stats_.batch_tokens / stats_.rounds : 0.0);
        }
        if (cfg_.kind == StrategyKind::BEAM || cfg_.kind == StrategyKind::DSBD) {
            s.Set("batchTokens", (double) stats_.batch_tokens);
            s.Set("peakKvCells", (double) stats_.peak_kv_cells);
            Napi::Array beams = Napi::Array::New(env, stats_.beams.size());
            for (size_t i = 0; i < stats_.beams.size(); i++) {
                const BeamResult & b = stats_.beams[i];
                Napi::Object       o = Napi::Object::New(env);
                o.Set("tokens", args::to_int32_array(env, b.tokens));
                o.Set("text", Napi::String::New(env, beam_texts_[i]));
                o.Set("logProb", b.log_prob);
                o.Set("score", b.score);
                o.Set("finished", b.finished);
                beams.Set(i, o);
            }
            r.Set("beams", beams);
        }
        r.Set("stats", s);
        deferred_.Resolve(r);
    }

    void OnError(const Napi::Error & e) override {
        release();
        deferred_.Reject(make_error(Env(), code_, e.Message()).Value());
    }

  private:
    // on the JS thread: the claims, and the sequence ids a shared generation borrowed (emptied by Execute)
    void release() {
        unclaim(expert_, shared_, expert_seq_, std::move(expert_cells_), expert_share_);
        if (amateur_) unclaim(amateur_, shared_, amateur_seq_, std::move(amateur_cells_), amateur_share_);
    }

    Napi::Promise::Deferred           deferred_;
    Context *                         expert_;
    Context *                         amateur_;
    Napi::ObjectReference             expert_ref_;
    Napi::ObjectReference             amateur_ref_;
    Napi::FunctionReference           on_chunk_;
    GenerateConfig                    cfg_;
    std::shared_ptr<std::atomic_bool> cancel_;
    const char *                      code_ = code::NATIVE;
    bool                              shared_;
    llama_seq_id                      expert_seq_, amateur_seq_;  // 0 for beam / dsbd (they borrow the rest themselves)
    // the tokens each sequence's cells hold: a parked prefix at the start, the generation's own at the end
    std::vector<llama_token>          expert_cells_, amateur_cells_;
    llama_seq_id                      expert_share_, amateur_share_;  // parked entries pinned until run() shares their cells
    int32_t                           cached_prompt_ = 0;

    std::vector<llama_token> tokens_;
    std::string              text_;
    std::string              finish_ = "length";
    StrategyStats            stats_;
    std::vector<std::string> beam_texts_;  // beam: each candidate's text (stop strings applied)
    double                   prompt_ms_ = 0, gen_ms_ = 0, wall_ms_ = 0;
    int64_t                  shared_passes_ = 0;
};

}  // namespace

Napi::Value start_generate(Napi::Env env, Context * expert, Napi::Object expert_obj, Context * amateur, Napi::Object amateur_obj,
                           Napi::Object options, Napi::Function on_chunk) {
    GenerateConfig cfg = parse_config(options, expert->model()->n_vocab());
    if (amateur && amateur->model()->n_vocab() <= 0) throw DuetError(code::INVALID_ARGUMENT, "amateur has no vocabulary");
    const bool shared = is_shared(cfg.kind);
    if (!uses_amateur(cfg.kind)) amateur = nullptr;  // a pair's plain / beam request leaves the amateur alone
    std::vector<llama_token> ecached, acached;
    llama_seq_id             eshare = -1, ashare = -1;
    const llama_seq_id       eseq = claim(expert, shared, cfg.prompt, ecached, eshare);
    llama_seq_id             aseq = 0;
    if (amateur) {
        try {
            aseq = claim(amateur, shared, cfg.prompt, acached, ashare);
        } catch (...) {
            unclaim(expert, shared, eseq, std::move(ecached), eshare);
            throw;
        }
    }
    auto   cancel = std::make_shared<std::atomic_bool>(false);
    auto * worker = new GenerateWorker(env, expert, expert_obj, amateur, amateur_obj, std::move(cfg), cancel, on_chunk, eseq, aseq,
                                       std::move(ecached), std::move(acached), eshare, ashare);
    Napi::Object result = Napi::Object::New(env);
    result.Set("promise", worker->Promise());
    result.Set("cancel", Napi::Function::New(env, [cancel](const Napi::CallbackInfo & i) {
                   cancel->store(true);
                   return i.Env().Undefined();
               }));
    worker->Queue();
    return result;
}

}  // namespace duet
