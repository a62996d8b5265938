// Measured cost of a forward pass by its size, per llama_context: the input of the load-aware draft length
// (model/DraftLength.h). Every llama_decode of a generation (model/SharedBatch) records its wall time
// under the number of tokens it carried; an estimate interpolates between the row counts measured so far.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "llama.h"

namespace duet {

class PassCosts {
  public:
    static constexpr int32_t kMaxRows = 512;  // larger passes are recorded under this count

    // The pass times of every context; a SharedBatch keeps its own table of the gaps after its flushes.
    static PassCosts & instance();

    void record(const llama_context * ctx, int32_t rows, double ms);

    // Estimated ms of a pass over `rows` tokens: linear between the nearest measured counts around it;
    // above the largest measured count, that count's (optimistic: a larger batch is then tried, and
    // measured); below the smallest, the smallest's. Negative when nothing was measured on ctx.
    double estimate(const llama_context * ctx, int32_t rows) const;

    // A freed context's measurements go (its address may be reused).
    void forget(const llama_context * ctx);

  private:
    mutable std::mutex                                    mu_;
    std::map<const llama_context *, std::vector<double>> ms_;  // [rows] running mean, < 0: not measured
};

}  // namespace duet
