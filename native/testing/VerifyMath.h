// Test export `_simulateVerify`: Monte-Carlo of the forest acceptance rules (forest/Verify.h) on an
// order-1 Markov mock language model, so the statistical tests of ALGORITHMS.md §7 run the exact C++
// code verifyForest uses, N = 1e5 rounds in milliseconds.
#pragma once
#include <napi.h>

namespace duet::testing {

// _simulateVerify({ rule, p, q, qDraw?, branching, draft, trials, seed, fault? })
//   p, q, qDraw: Float32Array [(V + 1) · V] — row r is the next-token law after token r (row V = start)
//   branching: children per depth, e.g. [1,1,1,1] = a γ=4 chain, [3] = 3 roots, [3,2] = a tree
//   draft: 'iid' (with replacement from qDraw) | 'without-replacement' | 'top' (deterministic top-k of qDraw)
//   fault: 'none' | 'residual-p'
// returns: { joint: Int32Array [V · V] counts of the first two emitted tokens, rounds, accepted }
Napi::Value SimulateVerify(const Napi::CallbackInfo & info);

// _simulateScd({ vocab, pe, pa, alpha, beta, tauA, gamma, bonus: 'delayed'|'none'|'expert', trials, seed })
//   SCD rounds on Markov mocks: drafts x̃_i ~ pa, target p^c = softmax(cd(log pe, log pa)) (temperature 1),
//   bonus 'expert' is the deliberate bug of the negative control (bonus from the plain expert).
// returns: { joint: Int32Array [V · V], outsideDrafted, outsideAccepted, rounds, accepted }
Napi::Value SimulateScd(const Napi::CallbackInfo & info);

// _contrastiveLogits(se: Float32Array, sa: Float32Array, alpha, beta, tauA) → Float32Array cd
Napi::Value ContrastiveLogits(const Napi::CallbackInfo & info);

// _softmax(logits: Float32Array, temperature) → { probs: Float32Array (distribution::warp, no truncation),
//                                                 logsumexp: number (of the raw logits) }
Napi::Value Softmax(const Napi::CallbackInfo & info);

// _draftLength({ alpha, n, gammaMax, scd, expertMs, amateurMs, expertGapMs, amateurGapMs }) → γ
//   model/DraftLength.h over Float64Array tables indexed by rows (entry r: ms of a pass over r tokens, or of
//   the gap after a flush of r; past the end: the last entry; negative: not measured)
Napi::Value DraftLength(const Napi::CallbackInfo & info);

}  // namespace duet::testing
