// Pure acceptance math on dense distributions (Leviathan et al. 2023, Alg. 1; Chen et al. 2023, Alg. 2).
// Names follow the papers: p = target (expert) distribution, q = draft (amateur) distribution, x̃ = draft.
// Every function works on full-vocabulary arrays; p and q must come from identical warps (the q passed
// here must be exactly the distribution the draft was drawn from).
#pragma once
#include <cstdint>
#include <vector>

namespace duet::acceptance {

// Ratio test of one sampled draft token.
// requires: p [n] and q [n] distributions (sum 1); q[x] > 0 (x was drawn from q); u ~ U[0, 1)
// returns: true iff u < p[x] / q[x]  (a ratio ≥ 1 always accepts)
inline bool ratio_test(const float * p, const float * q, int32_t x, double u) {
    return u * (double) q[x] < (double) p[x];
}

// Residual ("correction") distribution after a rejection: norm(max(0, p − q)).
// out [n]. returns: false when Σ(p − q)+ underflows (≈ 0): then the caller samples p itself (spec §D).
bool residual(const float * p, const float * q, int32_t n, std::vector<float> & out);

}  // namespace duet::acceptance
