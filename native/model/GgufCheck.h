// Checks a GGUF file before llama.cpp sees it, so that no file reaches a GGML_ASSERT / GGML_ABORT (which
// abort the whole Node process: ggml_abort cannot be caught) or a division by zero during the load, the
// context creation (llama.cpp builds worst-case graphs there) or the first decode.
//
// What is checked, each with the key it names in the error (ERR_LLAMA_DUET_CORRUPT_GGUF):
//   - the header (magic, version 2/3, at most 32768 tensors and 4096 keys: larger counts only cost time or an
//     allocation failure that aborts), the metadata and tensor data against the file size;
//   - generic keys: general.architecture, general.alignment (a power of two ≥ 32: smaller ones abort the mmap
//     buffer setup), split.count ≤ 1;
//   - for the llama architecture, the hyper-parameters llama.cpp asserts on or divides by (the table of
//     abort paths this was drawn from is in the issue-12 note): block_count in 1..512 (LLAMA_MAX_LAYERS), no
//     nextn layers, positive sizes, per-layer head counts uniform, head_count_kv ≥ 1 dividing head_count, an
//     even head size in 2..1024 with rope.dimension_count / value_length equal to it, the expert counts
//     consistent, rms ε finite and > 0, rope scaling of a known type, finite rope factors, causal attention;
//   - the vocabulary (any architecture): tokenizer model not one that aborts on use (none / no_vocab / test),
//     tokens non-empty and unique (llama.cpp asserts on duplicates), scores / token types at least as long,
//     and for SPM the 256 byte tokens (without them the tokenizer throws on ordinary text); BOS / EOS that
//     the vocabulary adds must exist, checked after the load on the values llama.cpp resolved;
//   - tensor types: norms, biases, scales and rope factors F32 (other types abort in the CPU kernels); matmul
//     weights of a type with a CPU dot product (never Q8_1, Q8_K, I8..F64).
#pragma once
#include <string>

namespace duet::gguf_check {

// throws DuetError (MODEL_NOT_FOUND, NOT_GGUF, CORRUPT_GGUF) naming the file and the key
void precheck(const std::string & path);

}  // namespace duet::gguf_check
