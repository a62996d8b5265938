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
           std::vector<float> & out, std::vector<double> * lse) {
    const int32_t w   = (int32_t) scores.size();
    const double  top = *std::max_element(scores.begin(), scores.end());
    const float   inv_t = 1.0f / std::max(params.temperature, 1e-30f);
    const size_t  n     = (size_t) w * n_vocab;
    // per beam: e^{(row − max)/T} and its sum (log p_T(x | u) = (row − max)/T − log sum)
    out.resize(n);
    std::vector<double> sum(w, 0.0);
    if (lse) lse->assign(w, -INFINITY);
    for (int32_t u = 0; u < w; u++) {
        const float * row = rows + (size_t) u * n_vocab;
        float *       dst = out.data() + (size_t) u * n_vocab;
        if (!std::isfinite(scores[u])) {
            std::fill(dst, dst + n_vocab, 0.0f);
            continue;
        }
        const float mx = distribution::max_of(row, n_vocab);
        sum[u]         = distribution::exp_shifted(row, n_vocab, mx, inv_t, dst);
        if (lse && inv_t == 1.0f) (*lse)[u] = (double) mx + std::log(sum[u]);
    }
    const bool truncated = (params.top_k > 0 && (size_t) params.top_k < n) || params.top_p < 1.0f || params.min_p > 0.0f;
    if (!truncated) {
        // p_beam(u, x) = e^{S_u − top} p_T(x | u) / Σ_v e^{S_v − top}: one scale per row
        double z = 0.0;
        for (int32_t u = 0; u < w; u++) z += std::isfinite(scores[u]) ? std::exp(scores[u] - top) : 0.0;
        for (int32_t u = 0; u < w; u++) {
            if (!std::isfinite(scores[u])) continue;
            const float k   = (float) (std::exp(scores[u] - top) / (sum[u] * z));
            float *     dst = out.data() + (size_t) u * n_vocab;
            for (int32_t x = 0; x < n_vocab; x++) dst[x] *= k;
        }
        return;
    }
    // top-k / top-p / min-p on the whole joint: its logits (S_u − top) + log p_T(x | u), warped at temperature 1
    std::vector<float> logits(n);
    for (int32_t u = 0; u < w; u++) {
        const float * row = rows + (size_t) u * n_vocab;
        float *       dst = logits.data() + (size_t) u * n_vocab;
        const float   mx  = distribution::max_of(row, n_vocab);
        const float   off = std::isfinite(scores[u]) ? (float) (scores[u] - top - std::log(sum[u])) : -INFINITY;
        for (int32_t x = 0; x < n_vocab; x++) dst[x] = std::isfinite(row[x]) && std::isfinite(off) ? (row[x] - mx) * inv_t + off : -std::numeric_limits<float>::infinity();
    }
    distribution::SamplingParams on_joint = params;
    on_joint.temperature                  = 1.0f;  // already applied per beam
    distribution::warp(logits.data(), (int32_t) logits.size(), on_joint, out);
}

}  // namespace duet::beam
