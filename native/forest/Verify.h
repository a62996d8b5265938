// Acceptance rules for draft trees (ALGORITHMS.md §1, §2, §D). Pure functions over logits rows: the
// forest engine feeds them the expert's rows, the statistical tests feed them mock distributions.
//
// A tree is given as nodes {token, parent} in topological order (parent < index, −1 = root). Children
// of a node are visited in node order (the fixed draft order of §D, independent of the uniforms).
// row(u) is the expert's logits after node u (u = −1: after the sequence the roots continue).
//
//   GREEDY       target-only at temperature 0: descend into the child equal to argmax row(u);
//                otherwise emit that argmax.
//   SAMPLE       SpecInfer multi-step speculative sampling (MSS): with p' = warp(row(u)), for each child
//                s: accept iff U < p'(x_s)/q_s(x_s), else p' = norm((p' − q_s)+). No child accepted →
//                y ~ p'; accepted leaf → bonus y ~ warp(row(leaf)). Lossless when every child is an
//                independent draw from its q_s (chains: Leviathan/Chen).
//   TARGET_ONLY  deterministic drafts: sibling walk over the distinct children c_j, accept c_j with
//                probability p'(c_j) / (1 − Σ_{i<j} p'(c_i)); none → y ~ p' restricted to V∖{c}.
//   NONE         scores only (path empty, next = −1).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "sampling/Distribution.h"
#include "sampling/Rng.h"

namespace duet::forest {

enum class Rule { NONE, GREEDY, SAMPLE, TARGET_ONLY };

// Deliberate bugs for the negative controls of the statistical tests; never used outside them.
enum class Fault {
    NONE,
    RESIDUAL_IS_P,  // after a rejection keep p' instead of norm((p' − q)+)
};

struct TreeShape {
    const int32_t * parent;   // [n_nodes]
    const int32_t * tokens;   // [n_nodes]
    int32_t         n_nodes;
};

struct Verdict {
    std::vector<int32_t> path;       // accepted node indices, root first
    int32_t              next = -1;  // correction / bonus token (−1 for NONE)
};

using RowFn = std::function<const float *(int32_t node)>;  // node −1 = root row; logits [n_vocab]
using QFn   = std::function<const float *(int32_t node)>;  // SAMPLE: the dense q the node was drawn from

// requires: shape topological; for SAMPLE q(s)[token_s] > 0 for every node s; params.temperature > 0
//           unless rule is GREEDY
Verdict verify(const TreeShape & shape, int32_t n_vocab, const RowFn & row, const QFn & q, Rule rule,
               const distribution::SamplingParams & params, Rng & rng, Fault fault = Fault::NONE);

// children[u + 1] = the children of node u in node order (index 0 = the roots)
std::vector<std::vector<int32_t>> children_of(const TreeShape & shape);

}  // namespace duet::forest
