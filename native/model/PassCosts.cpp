#include "model/PassCosts.h"

#include <algorithm>

namespace duet {

PassCosts & PassCosts::instance() {
    static PassCosts p;
    return p;
}

void PassCosts::record(const llama_context * ctx, int32_t rows, double ms) {
    if (rows <= 0 || !(ms >= 0)) return;
    rows = std::min(rows, kMaxRows);
    std::lock_guard<std::mutex> lock(mu_);
    auto & v = ms_[ctx];
    if (v.empty()) v.assign(kMaxRows + 1, -1.0);
    // exponential moving average: machines drift (other load, frequency), and the cost of a pass grows with
    // the KV cells it attends to
    v[rows] = v[rows] < 0 ? ms : 0.8 * v[rows] + 0.2 * ms;
}

double PassCosts::estimate(const llama_context * ctx, int32_t rows) const {
    rows = std::clamp(rows, 1, kMaxRows);
    std::lock_guard<std::mutex> lock(mu_);
    auto it = ms_.find(ctx);
    if (it == ms_.end()) return -1.0;
    const auto & v = it->second;
    if (v[rows] >= 0) return v[rows];
    int32_t lo = rows - 1, hi = rows + 1;
    while (lo >= 1 && v[lo] < 0) lo--;
    while (hi <= kMaxRows && v[hi] < 0) hi++;
    if (lo < 1 && hi > kMaxRows) return -1.0;
    if (lo < 1) return v[hi];
    if (hi > kMaxRows) return v[lo];
    return v[lo] + (v[hi] - v[lo]) * (double) (rows - lo) / (double) (hi - lo);
}

void PassCosts::forget(const llama_context * ctx) {
    std::lock_guard<std::mutex> lock(mu_);
    ms_.erase(ctx);
}

}  // namespace duet
