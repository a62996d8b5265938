// Speculative decoding (Leviathan, Kalman, Matias 2023, Alg. 1; Chen et al. 2023, Alg. 2).
// p = expert (target) distribution, q = amateur (draft) distribution, γ = draft length.
//
// Invariant between rounds: both KV caches hold prefix[0 .. n) except the pending token y (the
// correction/bonus of the previous round, or the prompt's last token), which neither has seen yet;
// the amateur may also still owe its last accepted draft x̃_γ (fed together with y).
//
// One round:
//   1. draft   — the amateur decodes [owed.., y] then x̃_1..x̃_{γ−1}; x̃_i ~ q_i (greedy: argmax);
//                drafting stops early at an end-of-generation token or the token budget
//   2. verify  — ONE expert llama_decode over [y, x̃_1..x̃_γ] with logits for all γ+1 rows → p_1..p_{γ+1}
//                (a forest of one chain; acceptance runs through forest::verify, the rules verifyForest uses)
//   3. accept  — greedy: x̃_i == argmax p_i; sampling: U_i < p_i(x̃_i)/q_i(x̃_i), on rejection
//                y' ~ norm((p_i − q_i)+) (Σ ≈ 0 → y' ~ p_i); all accepted → bonus y' ~ p_{γ+1}
//   4. rollback — expert keeps [y, x̃_1..x̃_k]; the amateur keeps what it has of it (x̃_k may be owed)
// Every emitted token is distributed exactly as p(·|prefix); greedy output equals greedy expert output.
//
// SCD (Yuan et al. 2023; ALGORITHMS.md §5.2–5.3) is the same loop with target p^c: the acceptance rows
// are the contrastive logits built from the expert's verify rows and the amateur rows already computed
// while drafting (no extra amateur pass). When every draft is accepted the bonus comes from p^c at γ+1
// after one delayed amateur step on x̃_γ (which it needs anyway); `bonus: false` emits no bonus instead
// (x̃_γ becomes the pending token). Never the plain expert (a mixture, not CD).
// RNG order per round (fixed): γ draft draws, then the acceptance uniforms, then one residual/bonus draw.
#include <algorithm>
#include <chrono>
#include <cmath>

#include "model/Evaluator.h"
#include "model/PassCosts.h"
#include "model/SharedBatch.h"
#include "forest/Verify.h"
#include "sampling/Contrastive.h"
#include "strategies/Strategy.h"

namespace duet {

namespace {

using Clock = std::chrono::steady_clock;

class Speculative final : public Strategy {
  public:
    Speculative(Evaluator & expert, Evaluator & amateur, const GenerateConfig & cfg, Rng & rng)
        : expert_(expert),
          amateur_(amateur),
          cfg_(cfg),
          rng_(rng),
          n_vocab_(expert.n_vocab()),
          scd_(cfg.kind == StrategyKind::SCD),
          cd_params_(cfg.contrast(amateur.n_vocab())) {
        stats_.drafted_by_depth.assign(cfg.max_draft_tokens(), 0);
        stats_.accepted_by_depth.assign(cfg.max_draft_tokens(), 0);
        gamma_ = cfg.draft_tokens;
    }

    // prefill all but the last prompt token; the last one becomes the first pending y
    void begin(const std::vector<llama_token> & prompt) override { pending_ = prefill_pair(expert_, amateur_, prompt, cfg_); }

    int32_t room() const override { return 1; }  // γ shrinks to fit; y needs one cell

    void step(std::vector<llama_token> & out, int32_t max_new) override {
        // γ for this round: bounded by the budget (the round emits ≤ γ+1 tokens) and by both contexts
        int32_t gamma = std::min(gamma_, std::max(0, max_new - 1));
        gamma = std::min(gamma, expert_.n_ctx() - expert_.n_past() - 1);
        gamma = std::min(gamma, amateur_.n_ctx() - amateur_.n_past() - (int32_t) owed_.size() - 1);
        gamma = std::max(gamma, 0);
        // under load verification rows may cost more than they save: above speculateUpTo generations in the
        // shared batch no drafts (the round decodes y alone: plain decoding; the amateur catches up on what it
        // owes when drafting resumes); with 'auto', a greedy request beside others drafts the γ with the most
        // expected tokens per unit of measured pass time (DraftLength.h). Greedy output is the same for any γ.
        if (gamma > 0) {
            SharedBatch * batch = expert_.shared_batch();
            const int32_t n     = batch ? batch->members() : 1;
            if (n > cfg_.speculate_up_to) gamma = 0;
            else if (cfg_.speculate_auto && cfg_.greedy && n > 1) gamma = std::min(gamma, load_aware_gamma(n, gamma_));  // one answer per round: keyed by the request's γ, not its budget
        }

        // 1. draft
        const auto t0 = Clock::now();
        std::vector<llama_token> feed = owed_;
        feed.push_back(pending_);
        owed_.clear();
        drafts_.clear();
        q_.resize((size_t) std::max(gamma, 1) * n_vocab_);
        if (scd_) sa_.resize((size_t) (gamma + 1) * n_vocab_);
        for (int32_t i = 0; i < gamma; i++) {
            amateur_.decode(feed.data(), (int32_t) feed.size(), Evaluator::Rows::LAST, logits_a_);
            if (scd_) std::copy(logits_a_.begin(), logits_a_.end(), sa_.begin() + (size_t) i * n_vocab_);
            float *     qi = q_.data() + (size_t) i * n_vocab_;
            llama_token x;
            if (cfg_.greedy) {
                x = distribution::argmax(logits_a_.data(), n_vocab_);
            } else {
                distribution::warp(logits_a_.data(), n_vocab_, cfg_.sampling, probs_);
                std::copy(probs_.begin(), probs_.end(), qi);
                x = distribution::sample(qi, n_vocab_, rng_.uniform());
            }
            drafts_.push_back(x);
            feed.assign(1, x);
            if (llama_vocab_is_eog(vocab(), x)) break;  // never draft past an end-of-generation token
            if (cfg_.draft_confidence > 0.0f && top_probability(cfg_.greedy ? nullptr : qi) < cfg_.draft_confidence) break;
        }
        const int32_t n_draft = (int32_t) drafts_.size();
        // the last draft has not been fed to the amateur; if it is accepted it is owed next round
        const auto t1 = Clock::now();
        stats_.draft_ms += std::chrono::duration<double, std::milli>(t1 - t0).count();

        // 2. verify: one expert pass over [y, x̃_1..x̃_n]
        const int32_t n0 = expert_.n_past();
        verify_.assign(1, pending_);
        verify_.insert(verify_.end(), drafts_.begin(), drafts_.end());
        expert_.decode(verify_.data(), (int32_t) verify_.size(), Evaluator::Rows::ALL, logits_e_);
        stats_.rounds++;
        stats_.peak_kv_cells = std::max(stats_.peak_kv_cells, (int64_t) expert_.n_past());
        stats_.verify_ms += std::chrono::duration<double, std::milli>(Clock::now() - t1).count();

        // 3. accept: the forest rules on a chain (greedy: exact match; sampling: MSS on one child per
        //    node = Leviathan/Chen ratio test, residual norm((p − q)+), bonus from p_{n+1})
        parents_.resize(n_draft);
        for (int32_t i = 0; i < n_draft; i++) parents_[i] = i - 1;
        const forest::TreeShape shape{ parents_.data(), drafts_.data(), n_draft };
        bool                    amateur_caught_up = false;  // scd bonus: the amateur decoded what it owed
        const bool              want_bonus        = !scd_ || cfg_.bonus || n_draft == 0;
        auto                    row               = [&](int32_t u) -> const float * {
            const int32_t i  = u + 1;  // verify row: p_{i+1}
            const float * se = logits_e_.data() + (size_t) i * n_vocab_;
            if (!scd_) return se;
            if (i == n_draft) {  // bonus position: delayed drafting (one amateur step on x̃_n, or on [owed.., y])
                if (!want_bonus) return se;  // its draw is discarded below
                if (n_draft == 0) amateur_.decode(feed.data(), (int32_t) feed.size(), Evaluator::Rows::LAST, logits_a_);
                else amateur_.decode(&drafts_[n_draft - 1], 1, Evaluator::Rows::LAST, logits_a_);
                amateur_caught_up = true;
                std::copy(logits_a_.begin(), logits_a_.end(), sa_.begin() + (size_t) i * n_vocab_);
            }
            contrastive::logits(se, sa_.data() + (size_t) i * n_vocab_, n_vocab_, cd_params_, cd_);
            return cd_.data();
        };
        const forest::Verdict v = forest::verify(
            shape, n_vocab_, row, [&](int32_t u) { return (const float *) q_.data() + (size_t) u * n_vocab_; },
            cfg_.greedy ? forest::Rule::GREEDY : forest::Rule::SAMPLE, cfg_.sampling, rng_);
        const int32_t k    = (int32_t) v.path.size();
        llama_token   next = v.next;
        for (int32_t i = 0; i < std::min(k + 1, n_draft); i++) stats_.drafted_by_depth[i]++;
        for (int32_t i = 0; i < k; i++) stats_.accepted_by_depth[i]++;
        if (scd_) {  // the SCD paper's analysis: amateur entropy at accepted vs rejected drafts
            for (int32_t i = 0; i < std::min(k + 1, n_draft); i++) {
                const double h = contrastive::entropy(sa_.data() + (size_t) i * n_vocab_, n_vocab_);
                if (i < k) stats_.entropy_accepted += h, stats_.n_entropy_accepted++;
                else stats_.entropy_rejected += h, stats_.n_entropy_rejected++;
            }
        }
        const bool no_bonus = k == n_draft && !want_bonus;
        stats_.drafted += n_draft;
        stats_.accepted += k;
        if (n_draft > 0 && expert_.shared_batch()) expert_.shared_batch()->draft().observe(std::min(k + 1, n_draft), k);

        // 4. rollback: expert keeps [y, x̃_1..x̃_k]; amateur has [y, x̃_1..x̃_{n−1}] (minus what it never saw)
        if (no_bonus) {
            // scd without bonus: emit x̃_1..x̃_n; x̃_n becomes the pending y (its expert cell is dropped and
            // re-fed next round inside the verify batch, at no extra pass)
            expert_.truncate(n0 + n_draft);
            for (int32_t i = 0; i < k; i++) out.push_back(drafts_[i]);
            pending_ = drafts_[n_draft - 1];
            return;
        }
        expert_.truncate(n0 + 1 + k);
        if (amateur_caught_up) {
            // the scd bonus step fed the amateur everything up to x̃_n: nothing owed
        } else if (n_draft == 0) {
            owed_ = feed;  // nothing was decoded: y is still owed
        } else if (k < n_draft) {
            const int32_t a0 = amateur_.n_past() - n_draft;  // position of y: this round fed y + x̃_1..x̃_{n−1}
            amateur_.truncate(a0 + 1 + k);
        } else {
            owed_.assign(1, drafts_[n_draft - 1]);  // x̃_n accepted but never fed to the amateur
        }
        if (cfg_.adaptive_draft && n_draft > 0) {
            gamma_ = k == n_draft ? std::min(gamma_ + 2, cfg_.max_draft_tokens()) : std::max(gamma_ - 1, 1);
        }
        for (int32_t i = 0; i < k; i++) out.push_back(drafts_[i]);
        out.push_back(next);
        pending_ = next;
    }

    void stats(StrategyStats & s) const override {
        s                = stats_;
        s.expert_passes  = expert_.passes;
        s.amateur_passes = amateur_.passes;
    }

  private:
    // DraftLength.h: the batch's draft length for this round, from the pooled acceptance rate and both
    // contexts' measured pass costs
    int32_t load_aware_gamma(int32_t n, int32_t gamma_max) const {
        const PassCosts & costs = PassCosts::instance();
        SharedBatch & batch = *expert_.shared_batch();  // n > 1: shared
        return batch.draft().gamma(
            batch.flushes(), n, gamma_max, scd_, expert_.ctx(), [&](int32_t rows) { return costs.estimate(expert_.ctx(), rows); },
            [&](int32_t rows) { return costs.estimate(amateur_.ctx(), rows); },
            [&](int32_t rows) { return batch.flush_gap_ms(expert_.ctx(), rows); },
            [&](int32_t rows) { return batch.flush_gap_ms(amateur_.ctx(), rows); });
    }

    // the amateur's top probability for the draft just made: max of q (sampling) or of softmax(logits) (greedy)
    float top_probability(const float * q) const {
        if (q) return *std::max_element(q, q + n_vocab_);
        const float mx = distribution::max_of(logits_a_.data(), n_vocab_);
        return (float) (1.0 / distribution::exp_shifted(logits_a_.data(), n_vocab_, mx, 1.0f, nullptr));
    }

    const llama_vocab * vocab() const { return llama_model_get_vocab(llama_get_model(expert_.ctx())); }

    Evaluator &            expert_;
    Evaluator &            amateur_;
    const GenerateConfig & cfg_;
    Rng &                  rng_;
    const int32_t          n_vocab_;
    const bool             scd_;
    const contrastive::Params cd_params_;
    StrategyStats          stats_;

    llama_token              pending_ = -1;
    int32_t                  gamma_   = 4;  // current draft length (adaptive schedule)
    std::vector<llama_token> owed_;      // tokens the amateur must decode before drafting
    std::vector<llama_token> drafts_;    // [n_draft]
    std::vector<llama_token> verify_;    // [n_draft + 1]
    std::vector<float>       q_;         // [γ, n_vocab] draft distributions, sum 1 per row (sampling only)
    std::vector<float>       logits_a_;  // [n_vocab]
    std::vector<float>       logits_e_;  // [n_draft + 1, n_vocab] expert verify logits
    std::vector<float>       probs_;     // [n_vocab] scratch: warped q_i
    std::vector<int32_t>     parents_;   // [n_draft] the chain's shape for forest::verify
    std::vector<float>       sa_;        // scd: [n_draft + 1, n_vocab] amateur logits at each draft position
    std::vector<float>       cd_;        // scd: [n_vocab] contrastive logits of the row being tested
};

}  // namespace

std::unique_ptr<Strategy> make_speculative(Evaluator & expert, Evaluator & amateur, const GenerateConfig & cfg, Rng & rng) {
    return std::make_unique<Speculative>(expert, amateur, cfg, rng);
}

}  // namespace duet
