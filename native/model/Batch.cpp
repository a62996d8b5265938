#include "model/Batch.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

#include "model/PrefixCache.h"
#include "napi/errors.h"

namespace duet::batch {

void decode(llama_context * ctx, llama_batch & batch, std::mutex & decode_lock, const std::vector<Cell> & cells,
            const std::vector<llama_seq_id> & ids, int32_t n_vocab, int32_t width, std::vector<float> & rows, const char * what,
            PrefixCache * cache) {
    const int32_t n_batch = (int32_t) llama_n_batch(ctx);
    const int32_t total   = (int32_t) cells.size();
    size_t        n_rows  = 0;
    for (const Cell & c : cells) n_rows += c.logits ? 1 : 0;
    rows.resize(n_rows * (size_t) width);
    const int32_t n_copy = std::min(n_vocab, width);
    size_t row = 0;
    for (int32_t start = 0; start < total; start += n_batch) {
        const int32_t m = std::min(n_batch, total - start);
        batch.n_tokens  = m;
        for (int32_t i = 0; i < m; i++) {
            const Cell & c    = cells[start + i];
            batch.token[i]    = c.token;
            batch.pos[i]      = c.pos;
            batch.n_seq_id[i] = c.count;
            for (int32_t j = 0; j < c.count; j++) batch.seq_id[i][j] = ids[c.first + j];
            batch.logits[i] = c.logits;
        }
        const int32_t rc = decode_reclaiming(ctx, batch, decode_lock, cache);
        if (rc == 1) throw DuetError(code::CONTEXT_OVERFLOW, std::string("no KV slots for the ") + what + "'s " + std::to_string(total) + " tokens (context full)");
        if (rc == 2) throw DuetError(code::ABORTED, std::string(what) + " aborted");
        if (rc != 0) throw DuetError(code::DECODE_FAILED, "llama_decode failed with code " + std::to_string(rc));
        for (int32_t i = 0; i < m; i++) {
            if (!batch.logits[i]) continue;
            const float * src = llama_get_logits_ith(ctx, i);
            if (!src) throw DuetError(code::DECODE_FAILED, "llama.cpp returned no logits for row " + std::to_string(i));
            float * dst = rows.data() + row * width;
            std::memcpy(dst, src, sizeof(float) * n_copy);
            std::fill(dst + n_copy, dst + width, -std::numeric_limits<float>::infinity());
            row++;
        }
    }
}

}  // namespace duet::batch
