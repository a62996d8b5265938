// Dense full-vocabulary distributions for one logits row: the same code warps the expert's and the
// amateur's rows, so both sides of every acceptance test see identically processed distributions.
//
// Warp order (documented in README "Sampling"): temperature → top-k → top-p → min-p, then renormalise.
// temperature == 0 is greedy and never reaches these functions (argmax path).
#pragma once
#include <cstdint>
#include <vector>

#include "sampling/Rng.h"

namespace duet::distribution {

struct SamplingParams {
    float   temperature = 1.0f;  // > 0 here; below 1e-30 it acts as 1e-30 (the argmax set)
    int32_t top_k       = 0;     // 0 = off
    float   top_p       = 1.0f;  // 1 = off
    float   min_p       = 0.0f;  // 0 = off
};

// requires: n > 0
// returns: index of the largest logit (lowest index on ties)
int32_t argmax(const float * logits, int32_t n);

// requires: logits [n] finite or -inf, at least one finite; params.temperature > 0
// out probs [n]: the warped distribution, sum 1, exact zeros outside the kept set
void warp(const float * logits, int32_t n, const SamplingParams & params, std::vector<float> & probs);

// requires: probs [n], sum ≈ 1, u in [0, 1)
// returns: inverse-CDF draw (skips zero-probability entries; never returns a zero-mass index)
int32_t sample(const float * probs, int32_t n, double u);

// returns: log-sum-exp of logits [n] (exp_shifted below; float64 across blocks)
double logsumexp(const float * logits, int32_t n);

// returns: the largest of x [n] (n > 0; -inf entries allowed)
float max_of(const float * x, int32_t n);

// e^{(x_i − shift)·scale} for every i, written to out [n] when out is not null, and their sum.
// requires: shift ≥ max x_i (so every exponent is ≤ 0), scale > 0; -inf entries give exactly 0.
// A float Cephes polynomial (relative error ≤ 2e-7 against float64 exp) without libm calls or branches,
// so the loop vectorises: a 32k–150k vocabulary row costs tens of microseconds instead of the ~1 ms of
// a scalar float64 exp per entry. Summed in float over 256-entry blocks, in float64 across blocks.
double exp_shifted(const float * x, int32_t n, float shift, float scale, float * out);

}  // namespace duet::distribution
