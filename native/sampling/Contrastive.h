// Contrastive decoding scores (O'Brien & Lewis 2023; ALGORITHMS.md §3 and §D), dense over the vocabulary:
//
//   cd[x] = (1 + β)·s_e[x] − β·s_a[x]/τ_a   if s_e[x] ≥ log α + max s_e   (mask on RAW expert logits)
//   cd[x] = −∞                              otherwise, and for ids the amateur's vocabulary lacks
//
// With padded vocabularies (n_amateur < n) the contrast is defined on the shared ids: the max in the mask
// is taken over them, so V_α always holds the best shared id and is never empty.
//
// The target distribution is warp(cd) (temperature T, then top-k → top-p → min-p on the contrastive
// distribution); greedy is argmax cd. Shifting s_e or s_a by a constant shifts cd by a constant (the
// distribution is unchanged); β = 0 gives the expert restricted to V_α; the mask always holds argmax s_e.
#pragma once
#include <climits>
#include <cstdint>
#include <vector>

namespace duet::contrastive {

struct Params {
    float   alpha     = 0.1f;       // plausibility threshold in (0, 1]; 0 disables the mask
    float   beta      = 0.5f;       // contrast weight ≥ 0
    float   tau_a     = 1.0f;       // amateur temperature > 0
    int32_t n_amateur = INT32_MAX;  // ids ≥ this are ones the amateur's vocabulary lacks (padding): masked
};

// requires: se, sa [n] finite or −inf logits; at least one finite se among the shared ids
// out cd [n]
void logits(const float * se, const float * sa, int32_t n, const Params & params, std::vector<float> & cd);

// Shannon entropy (nats) of softmax(logits [n])
double entropy(const float * logits, int32_t n);

}  // namespace duet::contrastive
