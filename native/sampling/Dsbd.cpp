#include "sampling/Dsbd.h"

#include <algorithm>

namespace duet::dsbd {

namespace {

// p ← norm((p − q)+); false when the residual vanishes (p unchanged then)
bool residual(std::vector<double> & p, const std::vector<double> & q) {
    double z = 0;
    for (size_t x = 0; x < p.size(); ++x) z += std::max(0.0, p[x] - q[x]);
    if (!(z > 1e-300)) return false;
    for (size_t x = 0; x < p.size(); ++x) p[x] = std::max(0.0, p[x] - q[x]) / z;
    return true;
}

}  // namespace

int32_t draw(const std::vector<double> & p, Rng & rng) {
    const double u   = rng.uniform();
    double       acc = 0;
    int32_t      last = -1;
    for (size_t x = 0; x < p.size(); ++x) {
        if (p[x] <= 0) continue;
        acc += p[x];
        last = (int32_t) x;
        if (u < acc) return (int32_t) x;
    }
    return last;  // u beyond the rounded total: the last entry with mass
}

std::vector<double> acceptance_sequence(const std::vector<double> & p, const std::vector<double> & q, int32_t m) {
    std::vector<double> alpha;
    std::vector<double> pj   = p;
    bool                live = true;
    for (int32_t j = 0; j < m; ++j) {
        double a = 0;
        if (live) {
            for (size_t x = 0; x < pj.size(); ++x) a += std::min(pj[x], q[x]);
        }
        alpha.push_back(std::min(1.0, a));
        if (live) live = residual(pj, q);
    }
    return alpha;
}

std::vector<std::vector<double>> acceptance_counts(const std::vector<double> & alpha) {
    const int32_t                    m = (int32_t) alpha.size();
    std::vector<std::vector<double>> P((size_t) m + 1);
    for (int32_t mm = 0; mm <= m; ++mm) {
        P[(size_t) mm].assign((size_t) mm + 1, 0.0);
        double none = 1;
        for (int32_t j = 0; j < mm; ++j) none *= 1 - alpha[(size_t) j];
        P[(size_t) mm][0] = none;
        for (int32_t k = 1; k <= mm; ++k) {
            double s = 0, before = 1;  // before = Π_{j < i} (1 − α_j)
            for (int32_t i = 1; i <= mm; ++i) {
                const int32_t rest = mm - i;
                if (k - 1 <= rest) s += alpha[(size_t) i - 1] * before * P[(size_t) rest][(size_t) k - 1];
                before *= 1 - alpha[(size_t) i - 1];
            }
            P[(size_t) mm][(size_t) k] = s;
        }
    }
    return P;
}

int32_t width(const std::vector<double> & counts, double t, int32_t w_min) {
    int32_t best = 0;
    double  tail = 0;  // P(≥ K) accumulated from the top
    for (int32_t K = (int32_t) counts.size() - 1; K >= 1; --K) {
        tail += counts[(size_t) K];
        if (tail >= t) {
            best = K;
            break;
        }
    }
    return std::max(w_min, best);
}

LayerOut verify_layer(const std::vector<double> & p, const std::vector<double> & q, const std::vector<int32_t> & drafts, int32_t need,
                      int32_t width, Rng & rng) {
    LayerOut            r{ {}, 0, false };
    std::vector<double> pp = p;
    for (int32_t d : drafts) {
        if (r.accepted == need) break;
        const double u = rng.uniform();
        if (u * q[(size_t) d] < pp[(size_t) d]) {
            r.beams.push_back(d);
            r.accepted++;
            pp = p;  // reset after an acceptance
        } else if (!residual(pp, q)) {
            pp = p;  // the residual vanished: sample p (spec §D)
        }
    }
    if (r.accepted == need) {
        r.passed = true;
        return r;
    }
    r.beams.push_back(draw(pp, rng));
    while ((int32_t) r.beams.size() < width) r.beams.push_back(draw(p, rng));
    return r;
}

}  // namespace duet::dsbd
