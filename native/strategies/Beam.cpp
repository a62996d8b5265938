// Beam search and beam sampling over W KV sequences of the expert's context (issue 14 §1; ALGORITHMS.md §4, §D).
//
// Beams are sequences of the unified KV cache: a child that keeps its parent's prefix shares its cells
// (llama_memory_seq_cp: metadata, never a copy of K/V), a parent without children is removed, and every
// step decodes each live beam's newest token in ONE llama_decode over all the beams' sequences. Identical
// children (beam sampling draws with replacement) share one cell tagged with all their sequence ids.
//
// Per step, from the logits rows after each live beam's last token (S_u = its cumulative raw log-prob):
//   search   (sample: false) the 2W best children (u, x) by S_u + log p(x | u), in order; an end-of-generation
//            child ranked < W becomes a finished candidate, the others fill the W new beams (HF
//            generate(num_beams) rules: transformers' BeamSearchScorer)
//   sampling (sample: true)  W i.i.d. draws (with replacement) from p_beam(u, x) ∝ exp(S_u)·p_T(x | u), warped on
//            the joint (sampling/Beam.h); an end-of-generation draw becomes a finished candidate
// A child whose text completes a stop string is finished too (its text cut before the stop string).
// Finished candidates: the W best by score = logProb / length^lengthPenalty (length = generated tokens, the
// end-of-generation token included). The search ends when no beam is live, at maxTokens, when the context has
// no room, or by earlyStopping: true → as soon as W candidates are finished; false → when no live beam's
// score at its current length can beat the worst of W finished (HF's heuristic); 'never' → when none can at
// maxTokens (lengthPenalty > 0) or at its current length (≤ 0). At maxTokens and on a full context the live
// beams join the candidates; the answer is the best candidate.
//
// Streaming: step() emits the growth of the common prefix of every beam that can still be the answer (the
// live beams and the finished candidates), so streamed text is always a prefix of the final text; the
// last step emits the answer's remaining tokens (and its end-of-generation token, which the worker consumes).
// RNG order (sampling): W uniforms per step, in draw order.
#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>

#include "forest/Sequences.h"
#include "model/Batch.h"
#include "model/Evaluator.h"
#include "model/Model.h"
#include "napi/errors.h"
#include "sampling/Beam.h"
#include "strategies/BeamBook.h"
#include "strategies/Strategy.h"

namespace duet {

namespace {

struct Hyp {
    BeamPath     path;
    llama_seq_id seq    = -1;  // live: its KV sequence
    int32_t      row    = 0;   // live: its logits row after the last decode
    int32_t      parent = -1;  // during a step: the beam it extends

    explicit Hyp(const std::vector<std::string> & stops) : path(stops) {}
};

class Beam final : public Strategy {
  public:
    Beam(Evaluator & expert, Sequences & pool, std::mutex & decode_lock, const Model & model, const GenerateConfig & cfg, Rng & rng)
        : expert_(expert),
          pool_(pool),
          lock_(decode_lock),
          model_(model),
          cfg_(cfg),
          rng_(rng),
          n_vocab_(expert.n_vocab()),
          width_(cfg.beams),
          book_(cfg, cfg.beams),
          batch_(llama_batch_init(std::max(cfg.beams, 1), 0, std::max(cfg.beams, 1))) {
        borrowed_ = pool_.borrow(width_ - 1);
        free_.assign(borrowed_.begin(), borrowed_.end());
    }

    ~Beam() override {
        pool_.give_back(borrowed_);  // emptied there; sequence 0 is emptied by the worker
        llama_batch_free(batch_);
    }

    void begin(const std::vector<llama_token> & prompt) override {
        expert_.decode(prompt.data(), (int32_t) prompt.size(), Evaluator::Rows::LAST, rows_);
        pos_ = (int32_t) prompt.size();
        live_.emplace_back(cfg_.stop);
        live_[0].seq = 0;
        peak_cells_  = pos_;
    }

    int32_t room() const override { return 0; }  // the strategy ends itself on a full context ("context")

    const char * ended() const override { return book_.ended(); }

    void step(std::vector<llama_token> & out, int32_t /*max_new*/) override {
        if (book_.ended()) return;
        const int32_t       n_live = (int32_t) live_.size();
        std::vector<double> S(n_live);
        for (int32_t u = 0; u < n_live; u++) S[u] = live_[u].path.log_prob;
        // each live beam's row (identical beams share one decoded row)
        beam_rows_.resize((size_t) n_live * n_vocab_);
        for (int32_t u = 0; u < n_live; u++) {
            std::copy_n(rows_.data() + (size_t) live_[u].row * n_vocab_, n_vocab_, beam_rows_.data() + (size_t) u * n_vocab_);
        }
        const float *       rows = beam_rows_.data();
        std::vector<double> lse;

        std::vector<beam::Child> children;
        if (cfg_.beam_sample) {
            beam::joint(S, rows, n_vocab_, cfg_.sampling, joint_, &lse);
            if (cfg_.sampling.temperature != 1.0f) lse = beam::normalisers(rows, n_live, n_vocab_);
            for (int32_t i = 0; i < width_; i++) {
                const int32_t idx = distribution::sample(joint_.data(), (int32_t) joint_.size(), rng_.uniform());
                children.push_back(beam::child_at(idx, S, rows, lse, n_vocab_));
            }
        } else {
            lse      = beam::normalisers(rows, n_live, n_vocab_);
            children = beam::top(S, rows, lse, n_vocab_, 2 * width_);
        }

        // the new beams, and the candidates that finish at this step
        std::vector<Hyp> next;
        for (size_t rank = 0; rank < children.size(); rank++) {
            const beam::Child & c = children[rank];
            if (!cfg_.beam_sample && (int32_t) next.size() == width_) break;
            Hyp h    = live_[c.beam];
            h.parent = c.beam;
            if (h.path.extend(c.token, c.logp, model_)) {
                // beam search keeps an end-of-generation child only among the W best (HF); a stop string always ends it
                if (cfg_.beam_sample || (int32_t) rank < width_ || h.path.eog < 0) book_.add_finished(h.path);
                continue;
            }
            next.push_back(std::move(h));
        }

        const int32_t generated = (int32_t) live_[0].path.tokens.size() + 1;  // every live beam has this length now
        double        best      = -INFINITY;
        for (const Hyp & h : next) best = std::max(best, h.path.log_prob);
        const char * end = nullptr;
        if (next.empty()) end = "finished";
        else if (generated >= cfg_.max_tokens) end = "length";
        else if (book_.search_is_over(best, generated)) end = "finished";
        else if (pos_ + 1 > expert_.n_ctx()) end = "context";
        if (!end) {
            try {
                advance(next);
            } catch (const DuetError & e) {
                if (std::string(e.code()) != code::CONTEXT_OVERFLOW) throw;
                end = "context";  // no KV cell left for this step's tokens: the chosen tokens stay (never decoded)
            }
        }
        if (end) {
            book_.finish(paths(next), end, out);
            live_.clear();  // every sequence is emptied when the ids go back (destructor) and by the worker (0)
            return;
        }
        live_ = std::move(next);
        book_.emit_common_prefix(paths(live_), out);
    }

    void stats(StrategyStats & s) const override {
        s.expert_passes = expert_.passes + passes_;
        s.batch_tokens  = batch_tokens_;
        s.peak_kv_cells = peak_cells_;
        s.beams         = book_.results();
    }

  private:
    static std::vector<const BeamPath *> paths(const std::vector<Hyp> & hyps) {
        std::vector<const BeamPath *> v;
        for (const Hyp & h : hyps) v.push_back(&h.path);
        return v;
    }

    // KV: each new beam takes its parent's sequence (first child) or a free id sharing the parent's cells;
    // parents without children are removed; then one decode of every new token at position pos_
    void advance(std::vector<Hyp> & next) {
        llama_memory_t     mem = llama_get_memory(expert_.ctx());
        std::vector<int32_t> kids(live_.size(), 0);
        for (const Hyp & h : next) kids[h.parent]++;
        for (size_t u = 0; u < live_.size(); u++) {
            if (kids[u] > 0) continue;
            llama_memory_seq_rm(mem, live_[u].seq, -1, -1);
            if (live_[u].seq != 0) free_.push_back(live_[u].seq);
            else zero_free_ = true;
        }
        std::vector<bool> parent_taken(live_.size(), false);
        for (Hyp & h : next) {
            const llama_seq_id from = live_[h.parent].seq;
            if (!parent_taken[h.parent]) {
                parent_taken[h.parent] = true;
                h.seq                  = from;
                continue;
            }
            h.seq = take_free();
            llama_memory_seq_cp(mem, from, h.seq, -1, -1);
        }
        // one cell per distinct (parent, token)
        std::map<std::pair<int32_t, llama_token>, std::vector<size_t>> groups;
        for (size_t i = 0; i < next.size(); i++) groups[{ next[i].parent, next[i].path.tokens.back() }].push_back(i);
        std::vector<batch::Cell>  cells;
        std::vector<llama_seq_id> ids;
        for (auto & [key, members] : groups) {
            batch::Cell c{ key.second, pos_, (int32_t) ids.size(), (int32_t) members.size(), true };
            for (size_t i : members) {
                ids.push_back(next[i].seq);
                next[i].row = (int32_t) cells.size();
            }
            cells.push_back(c);
        }
        batch::decode(expert_.ctx(), batch_, lock_, cells, ids, n_vocab_, n_vocab_, rows_, "beam step");
        passes_++;
        batch_tokens_ += (int64_t) cells.size();
        pos_++;
        std::vector<const std::vector<llama_token> *> toks;
        for (const Hyp & h : next) toks.push_back(&h.path.tokens);
        peak_cells_ = std::max(peak_cells_, (int64_t) expert_.n_past() + distinct_cells(toks));
    }

    llama_seq_id take_free() {
        if (zero_free_) {
            zero_free_ = false;
            return 0;
        }
        const llama_seq_id id = free_.back();
        free_.pop_back();
        return id;
    }

    Evaluator &            expert_;
    Sequences &            pool_;
    std::mutex &           lock_;
    const Model &          model_;
    const GenerateConfig & cfg_;
    Rng &                  rng_;
    const int32_t          n_vocab_;
    const int32_t          width_;
    BeamBook               book_;
    llama_batch            batch_;
    std::vector<llama_seq_id> borrowed_;  // ids lent by the context's pool for this generation
    std::vector<llama_seq_id> free_;      // of those, the ones no live beam holds
    bool                      zero_free_ = false;  // sequence 0 (generate()'s own) holds no live beam

    std::vector<Hyp>        live_;
    std::vector<float>      rows_;      // [distinct cells of the last step, n_vocab] logits
    std::vector<float>      beam_rows_; // [n_live, n_vocab]: each live beam's row
    std::vector<float>      joint_;     // sampling: [n_live · n_vocab]
    int32_t                 pos_       = 0;  // position of the next decoded token (all live beams share it)
    int64_t                 passes_ = 0, batch_tokens_ = 0, peak_cells_ = 0;
};

}  // namespace

std::unique_ptr<Strategy> make_beam(Evaluator & expert, Sequences & pool, std::mutex & decode_lock, const Model & model, const GenerateConfig & cfg,
                                    Rng & rng) {
    return std::make_unique<Beam>(expert, pool, decode_lock, model, cfg, rng);
}

}  // namespace duet
