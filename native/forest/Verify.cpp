#include "forest/Verify.h"

#include "sampling/Acceptance.h"

namespace duet::forest {

std::vector<std::vector<int32_t>> children_of(const TreeShape & shape) {
    std::vector<std::vector<int32_t>> ch(shape.n_nodes + 1);
    for (int32_t i = 0; i < shape.n_nodes; i++) ch[shape.parent[i] + 1].push_back(i);
    return ch;
}

namespace {

Verdict greedy(const TreeShape & shape, int32_t n_vocab, const RowFn & row, const std::vector<std::vector<int32_t>> & ch) {
    Verdict v;
    int32_t u = -1;
    for (;;) {
        const int32_t best = distribution::argmax(row(u), n_vocab);
        int32_t       next = -1;
        for (int32_t c : ch[u + 1]) {
            if (shape.tokens[c] == best) {
                next = c;
                break;
            }
        }
        if (next < 0) {
            v.next = best;
            return v;
        }
        v.path.push_back(next);
        u = next;
    }
}

Verdict mss(const TreeShape & shape, int32_t n_vocab, const RowFn & row, const QFn & q, const std::vector<std::vector<int32_t>> & ch,
            const distribution::SamplingParams & params, Rng & rng, Fault fault) {
    Verdict            v;
    std::vector<float> p, res;
    int32_t            u = -1;
    for (;;) {
        distribution::warp(row(u), n_vocab, params, p);
        int32_t accepted = -1;
        for (int32_t c : ch[u + 1]) {
            const float * qc = q(c);
            const int32_t x  = shape.tokens[c];
            if (acceptance::ratio_test(p.data(), qc, x, rng.uniform())) {
                accepted = c;
                break;
            }
            if (fault == Fault::RESIDUAL_IS_P) continue;
            if (acceptance::residual(p.data(), qc, n_vocab, res)) p.swap(res);  // underflow: keep p' (§D)
        }
        if (accepted < 0) {
            v.next = distribution::sample(p.data(), n_vocab, rng.uniform());
            return v;
        }
        v.path.push_back(accepted);
        u = accepted;
    }
}

Verdict target_only(const TreeShape & shape, int32_t n_vocab, const RowFn & row, const std::vector<std::vector<int32_t>> & ch,
                    const distribution::SamplingParams & params, Rng & rng) {
    Verdict              v;
    std::vector<float>   p;
    std::vector<int32_t> seen;
    int32_t              u = -1;
    for (;;) {
        distribution::warp(row(u), n_vocab, params, p);
        seen.clear();
        double  rest     = 1.0;  // 1 − Σ p'(c_i) over the children already refused
        int32_t accepted = -1;
        for (int32_t c : ch[u + 1]) {
            const int32_t x = shape.tokens[c];
            bool          dup = false;
            for (int32_t s : seen) dup = dup || s == x;
            if (dup) continue;
            seen.push_back(x);
            const double px = p[x];
            if (rng.uniform() * rest < px) {
                accepted = c;
                break;
            }
            rest -= px;
        }
        if (accepted >= 0) {
            v.path.push_back(accepted);
            u = accepted;
            continue;
        }
        // none accepted: y ~ p' restricted to V∖{children}, renormalised (underflow → p' itself)
        std::vector<float> r = p;
        for (int32_t s : seen) r[s] = 0.0f;
        double sum = 0.0;
        for (float f : r) sum += f;
        if (sum > 1e-12) {
            for (float & f : r) f = (float) (f / sum);
            v.next = distribution::sample(r.data(), n_vocab, rng.uniform());
        } else {
            v.next = distribution::sample(p.data(), n_vocab, rng.uniform());
        }
        return v;
    }
}

}  // namespace

Verdict verify(const TreeShape & shape, int32_t n_vocab, const RowFn & row, const QFn & q, Rule rule,
               const distribution::SamplingParams & params, Rng & rng, Fault fault) {
    const auto ch = children_of(shape);
    switch (rule) {
        case Rule::NONE: return {};
        case Rule::GREEDY: return greedy(shape, n_vocab, row, ch);
        case Rule::SAMPLE: return mss(shape, n_vocab, row, q, ch, params, rng, fault);
        case Rule::TARGET_ONLY: return target_only(shape, n_vocab, row, ch, params, rng);
    }
    return {};
}

}  // namespace duet::forest
