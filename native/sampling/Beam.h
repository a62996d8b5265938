// The per-step math of beam search and beam sampling (ALGORITHMS.md §4 and §D "beam sampling reference"),
// on the logits rows of the live beams; pure functions, shared by the `beam` strategy and DSBD's p_beam.
//
// A beam u has a cumulative score S_u = Σ log p(x_t | prefix) of its generated tokens (raw expert log-probs,
// temperature 1). Its children (u, x) have S_u + log p(x | u).
//   search:   the top n children by S_u + log p(x | u) (deterministic; ties: lower beam, then lower token)
//   sampling: the joint p_beam(u, x) ∝ exp(S_u) · p_T(x | u), where the temperature T tempers the per-step
//             conditional only and top-k / top-p / min-p act on the whole joint (W·V entries), not per beam
#pragma once
#include <cstdint>
#include <vector>

#include "llama.h"
#include "sampling/Distribution.h"

namespace duet::beam {

struct Child {
    int32_t     beam  = 0;
    llama_token token = 0;
    double      logp  = 0;  // log p(token | beam), raw (temperature 1)
    double      total = 0;  // S_beam + logp
};

// log Σ exp(row): the normaliser of each beam's row (so log p(x | u) = row_u[x] − lse[u])
std::vector<double> normalisers(const float * rows, int32_t n_beams, int32_t n_vocab);

// The n best children over all (beam, token), best first.
// requires: rows [scores.size(), n_vocab]; lse = normalisers(rows); n ≥ 1
std::vector<Child> top(const std::vector<double> & scores, const float * rows, const std::vector<double> & lse, int32_t n_vocab, int32_t n);

// The warped beam joint p_beam over (u, x), flattened u·n_vocab + x, summing to 1. A beam whose score is −inf
// gets probability 0. lse (optional, temperature 1 only): each row's log Σ exp (as normalisers() gives).
// requires: params.temperature > 0; some score finite
void joint(const std::vector<double> & scores, const float * rows, int32_t n_vocab, const distribution::SamplingParams & params,
           std::vector<float> & out, std::vector<double> * lse = nullptr);

// The child at flat index i of the joint.
inline Child child_at(int32_t i, const std::vector<double> & scores, const float * rows, const std::vector<double> & lse, int32_t n_vocab) {
    Child c;
    c.beam  = i / n_vocab;
    c.token = i % n_vocab;
    c.logp  = (double) rows[(size_t) i] - lse[c.beam];
    c.total = scores[c.beam] + c.logp;
    return c;
}

}  // namespace duet::beam
