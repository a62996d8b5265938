// Test exports for the DSBD layer and width functions (sampling/Dsbd.h): Monte-Carlo of one layer on a small
// joint, and the width rule, so test/model/13-dsbd-math.test.ts checks ALGORITHMS.md §7.7 at N = 1e5.
#pragma once
#include <napi.h>

namespace duet::testing {

// _dsbdLayer({ p: Float64Array [n], q: Float64Array [n], draftBeams W_S, need, width, drafts: 'iid'|'without-replacement',
//              trials, seed })
//   each trial draws W_S drafts from q (i.i.d., or without replacement, verified as if i.i.d.: the official
//   code's bias) and runs dsbd::verify_layer
// returns { pair: Float64Array [n·n] counts of (slot 1, slot 2) (width ≥ 2), first: Float64Array [n] counts of
//           slot 1, accepted: Float64Array [W_S + 1] counts of the number of accepted drafts, passed }
Napi::Value DsbdLayer(const Napi::CallbackInfo & info);

// _dsbdWidth({ p, q, m, t, minWidth }) → { alpha: Float64Array [m], counts: Float64Array [m + 1] = P(m, ·), width }
Napi::Value DsbdWidth(const Napi::CallbackInfo & info);

}  // namespace duet::testing
