// The two pure pieces of DSBD (Qin et al., "Dynamic-Width Speculative Beam Decoding", AAAI 2025;
// ALGORITHMS.md §6.2, §6.3 with the errata of §6.6): one layer's verification of i.i.d. draft beams against
// the expert's beam joint, and the width rule. Both work on dense joints over (parent beam, token), flattened,
// in float64. The `dsbd` strategy (issue 14) runs them on the forest verifyForest() scores; here they are
// tested alone (test/model/13-dsbd-math.test.ts) like forest/Verify against Monte-Carlo and enumeration.
#pragma once
#include <cstdint>
#include <vector>

#include "sampling/Rng.h"

namespace duet::dsbd {

// α_j = Σ_x min(p_j(x), q(x)) for j = 1..m, with p_1 = p and p_{j+1} = norm((p_j − q)+): the chance that the
// j-th draft is accepted after j − 1 straight rejections (§6.3). A residual that vanishes (p_j ≤ q
// everywhere) leaves α = 0 from there on.
// requires: p, q [n] distributions
std::vector<double> acceptance_sequence(const std::vector<double> & p, const std::vector<double> & q, int32_t m);

// P(m', k) for m' = 0..m, k = 0..m': the law of the number of accepted drafts among m' i.i.d. drafts when the
// residual restarts from p after each acceptance (the α sequence restarts too):
//   P(0, 0) = 1,  P(m', k) = 0 for k > m',  P(m', 0) = Π_{j ≤ m'} (1 − α_j),
//   P(m', k) = Σ_{i = 1..m'} α_i Π_{j < i}(1 − α_j) · P(m' − i, k − 1).
// returns table[m'][k] (row m' has m' + 1 entries)
std::vector<std::vector<double>> acceptance_counts(const std::vector<double> & alpha);

// The layer width: W̃(t) = max{K : P(≥ K accepted of m) ≥ t} (K = 0 always qualifies), W_l = max(w_min, W̃).
// requires: counts = P(m, ·) (m + 1 entries), 0 < t ≤ 1, w_min ≥ 1
int32_t width(const std::vector<double> & counts, double t, int32_t w_min);

struct LayerOut {
    std::vector<int32_t> beams;     // the layer's output, indices into the joint (parent beam · V + token)
    int32_t              accepted;  // drafts accepted (the first `accepted` entries of beams are drafts)
    bool                 passed;    // accepted == need: the next layer goes on from these beams
};

// One layer (§6.2): drafts in draft order, each i.i.d. from q; p' = p; a draft is accepted iff
// U < p'(d)/q(d) (p'/q: the paper's q/p' is an erratum), then p' = p again; a rejection (also of a draft
// whose parent was rejected: p(d) = 0) moves p' to norm((p' − q)+). At `need` acceptances the layer passes
// and the rest of the drafts are dropped. Otherwise the output is the accepted drafts, one draw from p'
// (from p when the residual vanished), then draws from p up to `width` beams.
// requires: p, q [n] distributions; q(d) > 0 for every draft; 1 ≤ need ≤ width
LayerOut verify_layer(const std::vector<double> & p, const std::vector<double> & q, const std::vector<int32_t> & drafts, int32_t need,
                      int32_t width, Rng & rng);

// A draw from a dense distribution (inverse CDF, float64).
int32_t draw(const std::vector<double> & p, Rng & rng);

}  // namespace duet::dsbd
