// The load-aware draft length (issue 15: speculation must not lose under load). With n generations in one
// shared batch, a speculative round at draft length γ costs one expert pass over about n·(γ + 1) tokens plus
// γ amateur passes over n tokens (scd: γ + 1, its contrast needs the amateur at every position) and yields
// E(γ) = 1 + α + … + α^γ tokens per request, α the per-draft acceptance rate (Leviathan et al. 2023, §3.1),
// and γ + 1 (scd: γ + 2) flushes of the batch, each followed by the requests' own work on the rows it
// returned (logits copies, sampling, acceptance; many requests on few cores make it large), measured as the
// gap before the next flush.
// The γ in [0, γmax] with the most expected tokens per unit of measured pass time is the draft length of
// the round. On a CPU a pass over many tokens becomes compute-bound, so under load γ shrinks, to 0 (plain
// decoding) where a verified draft costs more than it saves; alone, passes over a few tokens cost about one,
// and γ stays at γmax.
//
// One γ for the whole batch (LoadAwareDraft): requests that draft different lengths wait for the longest
// one's drafts before the shared verification pass (model/SharedBatch.h phases), so per-request choices would
// pay the maximum and gain the mean. The rate α is pooled over the batch's recent rounds, and the round's
// choice is made once, by the first request to ask between two flushes, for all.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <mutex>

#include "llama.h"

namespace duet {

// expert_ms(rows) / amateur_ms(rows): estimated pass times (PassCosts; negative = not measured yet, then
// γmax: the passes it makes get measured); expert_gap(rows) / amateur_gap(rows): the gap after such a flush
// (SharedBatch::flush_gap_ms; negative = not measured: 0)
template <typename ExpertMs, typename AmateurMs, typename ExpertGap, typename AmateurGap>
int32_t draft_length_for_load(double alpha, int32_t n, int32_t gamma_max, bool amateur_every_round, ExpertMs && expert_ms, AmateurMs && amateur_ms,
                              ExpertGap && expert_gap, AmateurGap && amateur_gap) {
    n     = std::max(n, 1);
    alpha = std::clamp(alpha, 0.0, 1.0);
    const double ta = amateur_ms(n);
    if (ta < 0 || expert_ms(n) < 0) return gamma_max;
    const double ga        = std::max(amateur_gap(n), 0.0);
    int32_t      best      = gamma_max;
    double       best_rate = -1.0;
    double       tokens    = 0.0, term = 1.0;  // E(γ) = Σ_{i ≤ γ} α^i
    for (int32_t g = 0; g <= gamma_max; g++) {
        tokens += term;
        term *= alpha;
        const double te = expert_ms(n * (g + 1));
        if (te < 0) return gamma_max;
        const int32_t amateur_passes = g + (amateur_every_round ? 1 : 0);
        const double  cost           = te + std::max(expert_gap(n * (g + 1)), 0.0) + (ta + ga) * amateur_passes;
        const double  rate           = cost > 0 ? tokens / cost : tokens * 1e300;
        if (rate > best_rate * (1.0 + 1e-9)) {  // ties: the shorter draft
            best_rate = rate;
            best      = g;
        }
    }
    return best;
}

// One per SharedBatch (a model's or pair's): its requests' pooled acceptance and the round's choice.
class LoadAwareDraft {
  public:

    // a speculative round's outcome: drafts the expert reached (the first rejection included) and accepted
    void observe(int64_t reached, int64_t accepted) {
        std::lock_guard<std::mutex> lock(mu_);
        reached_  = 0.97 * reached_ + (double) reached;  // about the last 30 rounds of the batch
        accepted_ = 0.97 * accepted_ + (double) accepted;
    }

    // The draft length of the round that starts after flush `epoch` of the shared batch, for n generations;
    // every request asking with the same key gets the same answer.
    template <typename ExpertMs, typename AmateurMs, typename ExpertGap, typename AmateurGap>
    int32_t gamma(uint64_t epoch, int32_t n, int32_t gamma_max, bool scd, const llama_context * expert, ExpertMs && expert_ms, AmateurMs && amateur_ms,
                  ExpertGap && expert_gap, AmateurGap && amateur_gap) {
        std::lock_guard<std::mutex> lock(mu_);
        if (memo_ok_ && epoch == m_epoch_ && n == m_n_ && gamma_max == m_max_ && scd == m_scd_ && expert == m_expert_) return m_gamma_;
        const double alpha = (accepted_ + 0.7 * 4) / (reached_ + 4.0);  // prior 0.7, worth 4 drafts
        m_gamma_  = draft_length_for_load(alpha, n, gamma_max, scd, expert_ms, amateur_ms, expert_gap, amateur_gap);
        memo_ok_  = true;
        m_epoch_  = epoch;
        m_n_      = n;
        m_max_    = gamma_max;
        m_scd_    = scd;
        m_expert_ = expert;
        return m_gamma_;
    }

  private:
    std::mutex                mu_;
    double                    reached_ = 0, accepted_ = 0;
    bool                      memo_ok_ = false, m_scd_ = false;
    uint64_t                  m_epoch_ = 0;
    int32_t                   m_n_ = 0, m_max_ = 0, m_gamma_ = 0;
    const llama_context *     m_expert_ = nullptr;
};

}  // namespace duet
