// One llama_decode over cells that may belong to several sequences at once (beams, forests): each cell is a
// token at a position, tagged with a set of sequence ids (unified KV cache: a cell shared by the sequences
// whose paths run through it). Split into n_batch chunks; logits rows copied out before the next decode.
// Used by the sequence API's forests (forest/Sequences) and the beam strategies (strategies/Beam).
#pragma once
#include <cstdint>
#include <mutex>
#include <vector>

#include "llama.h"

namespace duet {
class PrefixCache;
}

namespace duet::batch {

struct Cell {
    llama_token token = 0;
    llama_pos   pos   = 0;
    int32_t     first = 0;  // its sequence ids are ids[first .. first + count)
    int32_t     count = 1;
    bool        logits = true;
};

// Decodes `cells` (in order) and writes one logits row of `width` floats per cell with logits set, in cell
// order, to rows: the model's n_vocab logits, cut or padded with −inf to `width` (an amateur aligned to its
// expert's vocabulary, see Evaluator::align_to). Throws DuetError: CONTEXT_OVERFLOW when no KV slot is left (rc 1), ABORTED (rc 2),
// DECODE_FAILED otherwise; `what` names the batch in those messages. A failed call may leave earlier chunks in
// the cache: callers remove the cells past their committed positions.
// `cache` (may be null): the context's parked prefixes, which give up their cells before a chunk fails for room.
// requires: batch allocated with n_batch tokens and n_seq_max ids per token; decode_lock guards the context
void decode(llama_context * ctx, llama_batch & batch, std::mutex & decode_lock, const std::vector<Cell> & cells,
            const std::vector<llama_seq_id> & ids, int32_t n_vocab, int32_t width, std::vector<float> & rows, const char * what,
            PrefixCache * cache = nullptr);

}  // namespace duet::batch
