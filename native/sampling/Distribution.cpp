#include "sampling/Distribution.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

namespace duet::distribution {

int32_t argmax(const float * logits, int32_t n) {
    int32_t best = 0;
    float   bv   = logits[0];
    for (int32_t i = 1; i < n; i++) {
        if (logits[i] > bv) {
            bv   = logits[i];
            best = i;
        }
    }
    return best;
}

float max_of(const float * x, int32_t n) {
    // eight independent lanes: no loop-carried dependency on one register
    float m[8];
    std::fill(m, m + 8, -std::numeric_limits<float>::infinity());
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int j = 0; j < 8; j++) m[j] = x[i + j] > m[j] ? x[i + j] : m[j];
    }
    for (; i < n; i++) m[0] = x[i] > m[0] ? x[i] : m[0];
    return *std::max_element(m, m + 8);
}

namespace {

// e^y for y ≤ 0 (Cephes expf): y = k·ln2 + r with |r| ≤ ln2/2, e^r by a degree-6 polynomial, 2^k by
// building the exponent bits. y < −87.3 (and −inf) flush to 0. Only float arithmetic and selects.
inline float exp_nonpositive(float y) {
    const bool  under = !(y >= -87.33654f);  // also catches -inf and NaN
    y                 = under ? -87.33654f : (y > 0.0f ? 0.0f : y);  // the contract is y ≤ 0: clamp, never overflow the exponent
    const float kf    = (float) (int32_t) (y * 1.44269504088896341f - 0.5f);  // round to nearest (y ≤ 0)
    const float r     = (y - kf * 0.693359375f) + kf * 2.12194440e-4f;
    float       p     = 1.9875691500e-4f;
    p                 = p * r + 1.3981999507e-3f;
    p                 = p * r + 8.3334519073e-3f;
    p                 = p * r + 4.1665795894e-2f;
    p                 = p * r + 1.6666665459e-1f;
    p                 = p * r + 5.0000001201e-1f;
    p                 = p * r * r + r + 1.0f;
    const int32_t bits = ((int32_t) kf + 127) << 23;
    float         two_k;
    std::memcpy(&two_k, &bits, sizeof two_k);
    return under ? 0.0f : p * two_k;
}

}  // namespace

double exp_shifted(const float * x, int32_t n, float shift, float scale, float * out) {
    constexpr int32_t kBlock = 256;
    double            total  = 0.0;
    for (int32_t b = 0; b < n; b += kBlock) {
        const int32_t e   = std::min(n, b + kBlock);
        float         sum = 0.0f;
        if (out) {
            for (int32_t i = b; i < e; i++) {
                const float v = exp_nonpositive((x[i] - shift) * scale);
                out[i]        = v;
                sum += v;
            }
        } else {
            for (int32_t i = b; i < e; i++) sum += exp_nonpositive((x[i] - shift) * scale);
        }
        total += sum;
    }
    return total;
}

double logsumexp(const float * logits, int32_t n) {
    const float mx = max_of(logits, n);
    if (!std::isfinite(mx)) return mx;
    return mx + std::log(exp_shifted(logits, n, mx, 1.0f, nullptr));
}

namespace {

// Indices of the kept entries sorted by probability, descending (ties: lower index first), grown by
// doubling partial sorts until `enough(prefix)` holds, so a 150k vocabulary is rarely sorted whole.
template <typename Enough>
std::vector<int32_t> top_sorted(const std::vector<float> & p, const std::vector<int32_t> & kept, Enough enough) {
    std::vector<int32_t> idx = kept;
    auto cmp = [&](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); };
    size_t m = std::min<size_t>(64, idx.size());
    for (;;) {
        std::partial_sort(idx.begin(), idx.begin() + m, idx.end(), cmp);
        if (m == idx.size() || enough(idx, m)) {
            idx.resize(m);
            return idx;
        }
        m = std::min(idx.size(), m * 4);
    }
}

}  // namespace

void warp(const float * logits, int32_t n, const SamplingParams & params, std::vector<float> & probs) {
    probs.assign(n, 0.0f);
    // 1. temperature + softmax (float64 accumulation; -inf logits stay at probability 0)
    // 1/T capped at 1e30: below T = 1e-30 (a float near 1e-39 makes 1/T infinite, and 0·∞ a NaN at the max) the
    // law is the T → 0 limit, uniform over the maximal logits
    const float  mx    = max_of(logits, n);
    const double scale = std::min(1.0 / (double) params.temperature, 1e30);
    const double sum   = exp_shifted(logits, n, mx, (float) scale, probs.data());
    const float  inv = (float) (1.0 / sum);
    for (int32_t i = 0; i < n; i++) probs[i] *= inv;

    const bool use_k = params.top_k > 0 && params.top_k < n;
    const bool use_p = params.top_p < 1.0f;
    const bool use_m = params.min_p > 0.0f;
    if (!use_k && !use_p && !use_m) return;

    std::vector<int32_t> kept;
    kept.reserve(n);
    for (int32_t i = 0; i < n; i++) {
        if (probs[i] > 0.0f) kept.push_back(i);
    }
    // 2. top-k
    if (use_k && (int32_t) kept.size() > params.top_k) {
        const size_t k = (size_t) params.top_k;
        kept = top_sorted(probs, kept, [&](const std::vector<int32_t> &, size_t m) { return m >= k; });
        kept.resize(k);
    }
    // 3. top-p (nucleus over the renormalised survivors of top-k)
    if (use_p) {
        double total = 0.0;
        for (int32_t i : kept) total += probs[i];
        const double target = params.top_p * total;
        size_t       cut    = kept.size();
        auto         sorted = top_sorted(probs, kept, [&](const std::vector<int32_t> & idx, size_t m) {
            double c = 0.0;
            for (size_t j = 0; j < m; j++) {
                c += probs[idx[j]];
                if (c >= target) return true;
            }
            return false;
        });
        double c = 0.0;
        for (size_t j = 0; j < sorted.size(); j++) {
            c += probs[sorted[j]];
            if (c >= target) {
                cut = j + 1;
                break;
            }
        }
        sorted.resize(std::min(cut, sorted.size()));
        kept = std::move(sorted);
    }
    // 4. min-p relative to the most probable survivor
    if (use_m) {
        float pmax = 0.0f;
        for (int32_t i : kept) pmax = std::max(pmax, probs[i]);
        const float thr = params.min_p * pmax;
        std::vector<int32_t> k2;
        for (int32_t i : kept) {
            if (probs[i] >= thr) k2.push_back(i);
        }
        kept = std::move(k2);
    }
    std::vector<float> out(n, 0.0f);
    double             s = 0.0;
    for (int32_t i : kept) s += probs[i];
    for (int32_t i : kept) out[i] = (float) (probs[i] / s);
    probs.swap(out);
}

int32_t sample(const float * probs, int32_t n, double u) {
    double  c    = 0.0;
    int32_t last = -1;
    for (int32_t i = 0; i < n; i++) {
        if (probs[i] <= 0.0f) continue;
        last = i;
        c += probs[i];
        if (u < c) return i;
    }
    return last >= 0 ? last : argmax(probs, n);  // rounding: u beyond the accumulated float sum
}

}  // namespace duet::distribution
