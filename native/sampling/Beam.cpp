#include "sampling/Beam.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace duet::beam {

std::vector<double> normalisers(const float * rows, int32_t n_beams, int32_t n_vocab) {
    std::vector<double> lse(n_beams);
    for (int32_t u = 0; u < n_beams; u++) lse[u] = distribution::logsumexp(rows + (size_t) u * n_vocab, n_vocab);
    return lse;
}

std::vector<Child> top(const std::vector<double> & scores, const float * rows, const std::vector<double> & lse, int32_t n_vocab, int32_t n) {
    // better(a, b): higher total, then lower beam, then lower token (a fixed order, so ties are reproducible)
    auto better = [](const Child & a, const Child & b) {
        if (a.total != b.total) return a.total > b.total;
        if (a.beam != b.beam) return a.beam < b.beam;
        return a.token < b.token;
    };
    std::vector<Child> best;  // sorted best first, at most n
    best.reserve((size_t) n + 1);
    for (int32_t u = 0; u < (int32_t) scores.size(); u++) {
        const float * row = rows + (size_t) u * n_vocab;
        // a child beats the current n-th only if its logit clears this threshold (cheap pre-filter)
        for (llama_token x = 0; x < n_vocab; x++) {
            if (!std::isfinite(row[x])) continue;
            if ((int32_t) best.size() == n) {
                const double t = scores[u] + ((double) row[x] - lse[u]);
                if (t < best.back().total) continue;
            }
            Child c{ u, x, (double) row[x] - lse[u], 0 };
            c.total = scores[u] + c.logp;
            if ((int32_t) best.size() == n && !better(c, best.back())) continue;
            best.insert(std::upper_bound(best.begin(), best.end(), c, better), c);
            if ((int32_t) best.size() > n) best.pop_back();
        }
    }
    return best;
}

void joint(const std::vector<double> & scores, const float * rows, int32_t n_vocab, const distribution::SamplingParams & params,
           std::vector<float> & out) {
    const int32_t w   = (int32_t) scores.size();
    const double  top = *std::max_element(scores.begin(), scores.end());
    // joint logits: (S_u − max S) + log p_T(x | u), with log p_T(x | u) = row/T − log Σ exp(row/T)
    std::vector<float> logits((size_t) w * n_vocab);
    const float        inv_t = 1.0f / std::max(params.temperature, 1e-30f);
    for (int32_t u = 0; u < w; u++) {
        const float * row = rows + (size_t) u * n_vocab;
        float *       dst = logits.data() + (size_t) u * n_vocab;
        const float   mx  = distribution::max_of(row, n_vocab);
        const double  sum = distribution::exp_shifted(row, n_vocab, mx, inv_t, nullptr);
        const float   off = (float) (scores[u] - top - std::log(sum));
        for (int32_t x = 0; x < n_vocab; x++) dst[x] = std::isfinite(row[x]) ? (row[x] - mx) * inv_t + off : -std::numeric_limits<float>::infinity();
    }
    distribution::SamplingParams on_joint = params;
    on_joint.temperature                  = 1.0f;  // already applied per beam
    distribution::warp(logits.data(), (int32_t) logits.size(), on_joint, out);
}

}  // namespace duet::beam
