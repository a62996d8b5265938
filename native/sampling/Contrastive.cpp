#include "sampling/Contrastive.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace duet::contrastive {

void logits(const float * se, const float * sa, int32_t n, const Params & params, std::vector<float> & cd) {
    cd.resize(n);
    float mx = -std::numeric_limits<float>::infinity();
    const int32_t n_shared = std::min(n, params.n_amateur);  // the contrast lives on the ids both models have
    for (int32_t i = 0; i < n_shared; i++) mx = std::max(mx, se[i]);
    const double cutoff = params.alpha > 0.0f ? std::log((double) params.alpha) + (double) mx : -std::numeric_limits<double>::infinity();
    const double wb = params.beta, wa = params.beta / params.tau_a;
    std::fill(cd.begin() + n_shared, cd.end(), -std::numeric_limits<float>::infinity());  // ids the amateur lacks
    for (int32_t i = 0; i < n_shared; i++) {
        if ((double) se[i] < cutoff || !std::isfinite(se[i])) {
            cd[i] = -std::numeric_limits<float>::infinity();
            continue;
        }
        // an amateur −inf (a token it rules out) would make the score +inf: clamp to the expert's own score
        const double a = std::isfinite(sa[i]) ? (double) sa[i] : std::numeric_limits<double>::quiet_NaN();
        cd[i]          = std::isnan(a) ? se[i] : (float) ((1.0 + wb) * se[i] - wa * a);
    }
}

double entropy(const float * logits, int32_t n) {
    float mx = -std::numeric_limits<float>::infinity();
    for (int32_t i = 0; i < n; i++) mx = std::max(mx, logits[i]);
    double z = 0.0, s = 0.0;
    for (int32_t i = 0; i < n; i++) {
        if (!std::isfinite(logits[i])) continue;
        const double d = (double) logits[i] - mx, e = std::exp(d);
        z += e;
        s += e * d;
    }
    return std::log(z) - s / z;
}

}  // namespace duet::contrastive
