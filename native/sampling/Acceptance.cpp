#include "sampling/Acceptance.h"

namespace duet::acceptance {

bool residual(const float * p, const float * q, int32_t n, std::vector<float> & out) {
    out.resize(n);
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        const double d = (double) p[i] - (double) q[i];
        out[i]         = d > 0.0 ? (float) d : 0.0f;
        sum += out[i];
    }
    if (!(sum > 1e-9)) return false;
    const double inv = 1.0 / sum;
    for (int32_t i = 0; i < n; i++) out[i] = (float) (out[i] * inv);
    return true;
}

}  // namespace duet::acceptance
