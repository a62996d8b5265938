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
//   3. accept  — greedy: x̃_i == argmax p_i; sampling: U_i < p_i(x̃_i)/q_i(x̃_i), on rejection
//                y' ~ norm((p_i − q_i)+) (Σ ≈ 0 → y' ~ p_i); all accepted → bonus y' ~ p_{γ+1}
//   4. rollback — expert keeps [y, x̃_1..x̃_k]; the amateur keeps what it has of it (x̃_k may be owed)
// Every emitted token is distributed exactly as p(·|prefix); greedy output equals greedy expert output.
// RNG order per round (fixed): γ draft draws, then the acceptance uniforms, then one residual/bonus draw.
#include <algorithm>
#include <chrono>

#include "model/Evaluator.h"
#include "sampling/Acceptance.h"
#include "strategies/Strategy.h"

namespace duet {

namespace {

using Clock = std::chrono::steady_clock;

class Speculative final : public Strategy {
  public:
    Speculative(Evaluator & expert, Evaluator & amateur, const GenerateConfig & cfg, Rng & rng)
        : expert_(expert), amateur_(amateur), cfg_(cfg), rng_(rng), n_vocab_(expert.n_vocab()) {
        stats_.drafted_by_depth.assign(cfg.draft_tokens, 0);
        stats_.accepted_by_depth.assign(cfg.draft_tokens, 0);
    }

    void begin(const std::vector<llama_token> & prompt) override {
        // prefill all but the last prompt token; the last one becomes the first pending y
        const int32_t n = (int32_t) prompt.size();
        if (n > 1) {
            expert_.decode(prompt.data(), n - 1, Evaluator::Rows::LAST, scratch_);
            amateur_.decode(prompt.data(), n - 1, Evaluator::Rows::LAST, scratch_);
        }
        pending_ = prompt.back();
    }

    int32_t room() const override { return 1; }  // γ shrinks to fit; y needs one cell

    void step(std::vector<llama_token> & out, int32_t max_new) override {
        // γ for this round: bounded by the budget (the round emits ≤ γ+1 tokens) and by both contexts
        int32_t gamma = std::min(cfg_.draft_tokens, std::max(0, max_new - 1));
        gamma = std::min(gamma, expert_.n_ctx() - expert_.n_past() - 1);
        gamma = std::min(gamma, amateur_.n_ctx() - amateur_.n_past() - (int32_t) owed_.size() - 1);
        gamma = std::max(gamma, 0);

        // 1. draft
        const auto t0 = Clock::now();
        std::vector<llama_token> feed = owed_;
        feed.push_back(pending_);
        owed_.clear();
        drafts_.clear();
        q_.resize((size_t) std::max(gamma, 1) * n_vocab_);
        for (int32_t i = 0; i < gamma; i++) {
            amateur_.decode(feed.data(), (int32_t) feed.size(), Evaluator::Rows::LAST, logits_a_);
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
        stats_.verify_ms += std::chrono::duration<double, std::milli>(Clock::now() - t1).count();

        // 3. accept
        int32_t     k = 0;
        llama_token next;
        for (;;) {
            const float * row = logits_e_.data() + (size_t) k * n_vocab_;  // p_{k+1}
            if (k == n_draft) {  // all drafts accepted (or none drafted): bonus from p_{n+1}
                next = pick_from(row);
                break;
            }
            const llama_token x = drafts_[k];
            stats_.drafted_by_depth[k]++;
            if (cfg_.greedy) {
                const llama_token best = distribution::argmax(row, n_vocab_);
                if (x != best) {
                    next = best;
                    break;
                }
            } else {
                distribution::warp(row, n_vocab_, cfg_.sampling, probs_);
                const float * qi = q_.data() + (size_t) k * n_vocab_;
                if (!acceptance::ratio_test(probs_.data(), qi, x, rng_.uniform())) {
                    next = acceptance::residual(probs_.data(), qi, n_vocab_, residual_)
                               ? distribution::sample(residual_.data(), n_vocab_, rng_.uniform())
                               : distribution::sample(probs_.data(), n_vocab_, rng_.uniform());
                    break;
                }
            }
            stats_.accepted_by_depth[k]++;
            k++;
        }
        stats_.drafted += n_draft;
        stats_.accepted += k;

        // 4. rollback: expert keeps [y, x̃_1..x̃_k]; amateur has [y, x̃_1..x̃_{n−1}] (minus what it never saw)
        expert_.truncate(n0 + 1 + k);
        const int32_t a0 = amateur_.n_past() - n_draft;  // position of y: this round fed y + x̃_1..x̃_{n−1}
        if (n_draft == 0) {
            owed_ = feed;  // nothing was decoded: y is still owed
        } else if (k < n_draft) {
            amateur_.truncate(a0 + 1 + k);
        } else {
            owed_.assign(1, drafts_[n_draft - 1]);  // x̃_n accepted but never fed to the amateur
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
    const llama_vocab * vocab() const { return llama_model_get_vocab(llama_get_model(expert_.ctx())); }

    llama_token pick_from(const float * row) {
        if (cfg_.greedy) return distribution::argmax(row, n_vocab_);
        distribution::warp(row, n_vocab_, cfg_.sampling, probs_);
        return distribution::sample(probs_.data(), n_vocab_, rng_.uniform());
    }

    Evaluator &            expert_;
    Evaluator &            amateur_;
    const GenerateConfig & cfg_;
    Rng &                  rng_;
    const int32_t          n_vocab_;
    StrategyStats          stats_;

    llama_token              pending_ = -1;
    std::vector<llama_token> owed_;      // tokens the amateur must decode before drafting
    std::vector<llama_token> drafts_;    // [n_draft]
    std::vector<llama_token> verify_;    // [n_draft + 1]
    std::vector<float>       q_;         // [γ, n_vocab] draft distributions, sum 1 per row (sampling only)
    std::vector<float>       logits_a_;  // [n_vocab]
    std::vector<float>       logits_e_;  // [n_draft + 1, n_vocab] expert verify logits
    std::vector<float>       probs_;     // [n_vocab] scratch: warped p_i
    std::vector<float>       residual_;  // [n_vocab] scratch
    std::vector<float>       scratch_;
};

}  // namespace

std::unique_ptr<Strategy> make_speculative(Evaluator & expert, Evaluator & amateur, const GenerateConfig & cfg, Rng & rng) {
    return std::make_unique<Speculative>(expert, amateur, cfg, rng);
}

}  // namespace duet
