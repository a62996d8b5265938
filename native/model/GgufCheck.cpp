#include "model/GgufCheck.h"

#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <unordered_set>
#include <vector>

#include "ggml.h"
#include "gguf.h"
#include "napi/errors.h"
#include "napi/log_bridge.h"

namespace duet::gguf_check {

namespace {

constexpr int64_t kMaxLayers  = 512;   // LLAMA_MAX_LAYERS (src/llama-hparams.h)
constexpr int64_t kMaxExperts = 1024;  // LLAMA_MAX_EXPERTS
constexpr uint64_t kMaxTensors = 32768;
constexpr uint64_t kMaxKeys    = 4096;

using GgufPtr = std::unique_ptr<gguf_context, void (*)(gguf_context *)>;

bool file_size(const std::string & path, uint64_t & size, bool & is_dir) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) return false;
    size   = (uint64_t) st.st_size;
    is_dir = S_ISDIR(st.st_mode);
    return true;
}

// Typed reads that never reach gguf.h's type asserts: every accessor checks the stored type first.
class Meta {
  public:
    Meta(const gguf_context * g, std::string path) : g_(g), path_(std::move(path)) {}

    [[noreturn]] void fail(const std::string & key, const std::string & why) const {
        throw DuetError(code::CORRUPT_GGUF, "invalid " + key + ": " + why + " (" + path_ + ")");
    }

    int64_t id(const std::string & key) const { return gguf_find_key(g_, key.c_str()); }
    bool    has(const std::string & key) const { return id(key) >= 0; }

    static bool is_int(gguf_type t) {
        return t == GGUF_TYPE_UINT8 || t == GGUF_TYPE_INT8 || t == GGUF_TYPE_UINT16 || t == GGUF_TYPE_INT16 || t == GGUF_TYPE_UINT32 ||
               t == GGUF_TYPE_INT32 || t == GGUF_TYPE_UINT64 || t == GGUF_TYPE_INT64;
    }

    // An integer scalar (any width), or `fallback` when absent. bool counts as 0/1.
    int64_t integer(const std::string & key, int64_t fallback) const {
        const int64_t k = id(key);
        if (k < 0) return fallback;
        switch (gguf_get_kv_type(g_, k)) {
            case GGUF_TYPE_UINT8: return gguf_get_val_u8(g_, k);
            case GGUF_TYPE_INT8: return gguf_get_val_i8(g_, k);
            case GGUF_TYPE_UINT16: return gguf_get_val_u16(g_, k);
            case GGUF_TYPE_INT16: return gguf_get_val_i16(g_, k);
            case GGUF_TYPE_UINT32: return gguf_get_val_u32(g_, k);
            case GGUF_TYPE_INT32: return gguf_get_val_i32(g_, k);
            case GGUF_TYPE_UINT64: {
                const uint64_t v = gguf_get_val_u64(g_, k);
                return v > (uint64_t) INT64_MAX ? INT64_MAX : (int64_t) v;
            }
            case GGUF_TYPE_INT64: return gguf_get_val_i64(g_, k);
            case GGUF_TYPE_BOOL: return gguf_get_val_bool(g_, k) ? 1 : 0;
            default: fail(key, std::string("expected an integer, found ") + gguf_type_name(gguf_get_kv_type(g_, k)));
        }
    }

    double real(const std::string & key, double fallback) const {
        const int64_t k = id(key);
        if (k < 0) return fallback;
        const gguf_type t = gguf_get_kv_type(g_, k);
        if (t == GGUF_TYPE_FLOAT32) return gguf_get_val_f32(g_, k);
        if (t == GGUF_TYPE_FLOAT64) return gguf_get_val_f64(g_, k);
        if (is_int(t)) return (double) integer(key, 0);
        fail(key, std::string("expected a number, found ") + gguf_type_name(t));
    }

    std::string str(const std::string & key, const std::string & fallback) const {
        const int64_t k = id(key);
        if (k < 0) return fallback;
        if (gguf_get_kv_type(g_, k) != GGUF_TYPE_STRING) fail(key, std::string("expected a string, found ") + gguf_type_name(gguf_get_kv_type(g_, k)));
        return gguf_get_val_str(g_, k);
    }

    // A per-layer hyper-parameter: a scalar, or an array of integers (llama.cpp requires block_count entries).
    // Returns the values (empty when absent).
    std::vector<int64_t> per_layer(const std::string & key, int64_t n_layer) const {
        const int64_t k = id(key);
        if (k < 0) return {};
        if (gguf_get_kv_type(g_, k) != GGUF_TYPE_ARRAY) return { integer(key, 0) };
        const gguf_type et = gguf_get_arr_type(g_, k);
        if (!is_int(et)) fail(key, std::string("expected an array of integers, found one of ") + gguf_type_name(et));
        const size_t n = gguf_get_arr_n(g_, k);
        if ((int64_t) n != n_layer) fail(key, "has " + std::to_string(n) + " entries for " + std::to_string(n_layer) + " layers");
        std::vector<int64_t> out(n);
        const void *         d = gguf_get_arr_data(g_, k);
        for (size_t i = 0; i < n; i++) {
            switch (et) {
                case GGUF_TYPE_UINT8: out[i] = ((const uint8_t *) d)[i]; break;
                case GGUF_TYPE_INT8: out[i] = ((const int8_t *) d)[i]; break;
                case GGUF_TYPE_UINT16: out[i] = ((const uint16_t *) d)[i]; break;
                case GGUF_TYPE_INT16: out[i] = ((const int16_t *) d)[i]; break;
                case GGUF_TYPE_UINT32: out[i] = ((const uint32_t *) d)[i]; break;
                case GGUF_TYPE_INT32: out[i] = ((const int32_t *) d)[i]; break;
                case GGUF_TYPE_UINT64: out[i] = (int64_t) std::min<uint64_t>(((const uint64_t *) d)[i], INT64_MAX); break;
                default: out[i] = ((const int64_t *) d)[i]; break;
            }
        }
        return out;
    }

    // One value for every layer (llama.cpp's llama graph and KV cache assume layer-uniform shapes).
    int64_t uniform(const std::string & key, int64_t n_layer, int64_t fallback) const {
        const auto v = per_layer(key, n_layer);
        if (v.empty()) return fallback;
        for (int64_t x : v) {
            if (x != v[0]) fail(key, "differs between layers (" + std::to_string(v[0]) + " and " + std::to_string(x) + "); llama-architecture layers must agree");
        }
        return v[0];
    }

    const gguf_context * g() const { return g_; }

  private:
    const gguf_context * g_;
    std::string          path_;
};

void check_header(const std::string & path, uint64_t size) {
    FILE * f = fopen(path.c_str(), "rb");
    if (!f) throw DuetError(code::MODEL_NOT_FOUND, "model file cannot be opened: " + path);
    unsigned char hdr[24] = { 0 };
    const size_t  got     = fread(hdr, 1, sizeof(hdr), f);
    fclose(f);
    if (got < 4 || memcmp(hdr, "GGUF", 4) != 0) {
        throw DuetError(code::NOT_GGUF, "not a GGUF file (bad magic" + std::string(size == 0 ? ", file is empty" : "") + "): " + path);
    }
    if (got < 24) throw DuetError(code::CORRUPT_GGUF, "truncated GGUF header: " + path);
    uint32_t version;
    uint64_t n_tensors, n_kv;
    memcpy(&version, hdr + 4, 4);
    memcpy(&n_tensors, hdr + 8, 8);
    memcpy(&n_kv, hdr + 16, 8);
    if (version < 2 || version > 3) {
        throw DuetError(code::CORRUPT_GGUF, "unsupported GGUF version " + std::to_string(version) + " (expected 2 or 3): " + path);
    }
    if (n_tensors > kMaxTensors) throw DuetError(code::CORRUPT_GGUF, "GGUF header claims " + std::to_string(n_tensors) + " tensors (at most " + std::to_string(kMaxTensors) + "): " + path);
    if (n_kv > kMaxKeys) throw DuetError(code::CORRUPT_GGUF, "GGUF header claims " + std::to_string(n_kv) + " metadata keys (at most " + std::to_string(kMaxKeys) + "): " + path);
}

void check_generic(const Meta & m) {
    if (!m.has("general.architecture")) m.fail("general.architecture", "missing");
    m.str("general.architecture", "");
    if (m.has("general.alignment")) {
        const int64_t a = m.integer("general.alignment", 32);
        if (a < 32 || a > (1 << 20) || (a & (a - 1)) != 0) m.fail("general.alignment", std::to_string(a) + " is not a power of two in 32..2^20");
    }
    if (m.integer("split.count", 0) > 1) m.fail("split.count", "split (multi-file) models are not supported");
}

void check_llama_hparams(const Meta & m, const std::string & arch) {
    const std::string p = arch + ".";
    if (!m.has(p + "block_count")) m.fail(p + "block_count", "missing");
    const int64_t n_layer = m.integer(p + "block_count", 0);
    if (n_layer < 1 || n_layer > kMaxLayers) m.fail(p + "block_count", std::to_string(n_layer) + " is outside 1.." + std::to_string(kMaxLayers));
    if (m.integer(p + "nextn_predict_layers", 0) != 0) m.fail(p + "nextn_predict_layers", "next-n prediction layers are not supported");
    const int64_t n_embd = m.integer(p + "embedding_length", 0);
    if (n_embd < 1 || n_embd > (1 << 20)) m.fail(p + "embedding_length", std::to_string(n_embd) + " is outside 1..2^20");
    if (m.has(p + "context_length")) {
        const int64_t n_ctx = m.integer(p + "context_length", 0);
        if (n_ctx < 1 || n_ctx > (1ll << 30)) m.fail(p + "context_length", std::to_string(n_ctx) + " is outside 1..2^30");
    }
    const auto ff = m.per_layer(p + "feed_forward_length", n_layer);
    for (int64_t x : ff) {
        if (x < 0 || x > (1ll << 24)) m.fail(p + "feed_forward_length", std::to_string(x) + " is outside 0..2^24");
    }
    // heads
    const int64_t n_head = m.uniform(p + "attention.head_count", n_layer, 0);
    if (n_head < 1 || n_head > 4096) m.fail(p + "attention.head_count", std::to_string(n_head) + " is outside 1..4096");
    const int64_t n_head_kv = m.uniform(p + "attention.head_count_kv", n_layer, n_head);
    if (n_head_kv < 1 || n_head_kv > n_head || n_head % n_head_kv != 0) {
        m.fail(p + "attention.head_count_kv", std::to_string(n_head_kv) + " must be ≥ 1 and divide attention.head_count (" + std::to_string(n_head) + ")");
    }
    int64_t head_dim = m.integer(p + "attention.key_length", -1);
    if (head_dim < 0) {
        if (n_embd % n_head != 0) m.fail(p + "embedding_length", std::to_string(n_embd) + " is not divisible by attention.head_count (" + std::to_string(n_head) + ")");
        head_dim = n_embd / n_head;
    }
    if (head_dim < 2 || head_dim > 1024 || head_dim % 2 != 0) m.fail(p + "attention.key_length", "the head size " + std::to_string(head_dim) + " is not even in 2..1024");
    if (m.integer(p + "attention.value_length", head_dim) != head_dim) m.fail(p + "attention.value_length", "differs from the key head size " + std::to_string(head_dim));
    if (m.has(p + "rope.dimension_count")) {
        const int64_t n_rot = m.integer(p + "rope.dimension_count", head_dim);
        if (n_rot != head_dim) m.fail(p + "rope.dimension_count", std::to_string(n_rot) + " differs from the head size " + std::to_string(head_dim));
    }
    if (head_dim * n_head >= (1ll << 31)) m.fail(p + "attention.head_count", "head_count × head size overflows");
    // experts (Mixtral-style llama files)
    const int64_t n_expert = m.integer(p + "expert_count", 0);
    const auto    used     = m.per_layer(p + "expert_used_count", n_layer);
    int64_t       used_max = 0;
    for (int64_t u : used) used_max = std::max(used_max, u);
    if (n_expert < 0 || n_expert > kMaxExperts) m.fail(p + "expert_count", std::to_string(n_expert) + " is outside 0.." + std::to_string(kMaxExperts));
    if (n_expert == 0) {
        if (used_max != 0) m.fail(p + "expert_used_count", "set without expert_count");
        if (m.integer(p + "expert_group_count", 0) != 0) m.fail(p + "expert_group_count", "set without expert_count");
    } else {
        const int64_t u = m.uniform(p + "expert_used_count", n_layer, 0);
        if (u < 1 || u > n_expert) m.fail(p + "expert_used_count", std::to_string(u) + " is outside 1..expert_count (" + std::to_string(n_expert) + ")");
        const int64_t groups = m.integer(p + "expert_group_count", 0);
        if (groups != 0) {
            const int64_t gu = m.integer(p + "expert_group_used_count", 0);
            if (groups >= n_expert || (groups > 1 && (n_expert % groups != 0 || gu < 1 || gu >= groups))) {
                m.fail(p + "expert_group_count", "inconsistent with expert_count / expert_group_used_count");
            }
        }
    }
    // norms, rope, attention
    const std::string eps_key = p + "attention.layer_norm_rms_epsilon";
    if (!m.has(eps_key)) m.fail(eps_key, "missing");
    const double eps = m.real(eps_key, 0);
    if (!std::isfinite(eps) || eps <= 0 || eps > 1) m.fail(eps_key, std::to_string(eps) + " is not a finite number in (0, 1]");
    for (const char * k : { "rope.freq_base", "rope.scaling.attn_factor" }) {
        if (!m.has(p + k)) continue;
        const double v = m.real(p + k, 1);
        if (!std::isfinite(v) || v <= 0) m.fail(p + k, std::to_string(v) + " is not a finite number > 0");
    }
    for (const char * k : { "rope.scaling.factor", "rope.scale_linear" }) {  // 0 = no scaling (llama.cpp)
        if (!m.has(p + k)) continue;
        const double v = m.real(p + k, 0);
        if (!std::isfinite(v) || v < 0) m.fail(p + k, std::to_string(v) + " is not a finite number ≥ 0");
    }
    const std::string scaling = m.str(p + "rope.scaling.type", "none");
    if (scaling != "none" && scaling != "linear" && scaling != "yarn" && scaling != "longrope") m.fail(p + "rope.scaling.type", "unknown type '" + scaling + "'");
    if (m.integer(p + "attention.causal", 1) == 0) m.fail(p + "attention.causal", "non-causal attention is not supported");
}

void check_vocab(const Meta & m) {
    const gguf_context * g     = m.g();
    const std::string    model = m.str("tokenizer.ggml.model", "");
    if (model == "none" || model == "no_vocab" || model == "test") m.fail("tokenizer.ggml.model", "'" + model + "' has no usable tokenizer");
    const int64_t kt = m.id("tokenizer.ggml.tokens");
    if (kt < 0) return;  // llama.cpp refuses it with a thrown error
    if (gguf_get_kv_type(g, kt) != GGUF_TYPE_ARRAY || gguf_get_arr_type(g, kt) != GGUF_TYPE_STRING) m.fail("tokenizer.ggml.tokens", "expected an array of strings");
    const size_t n = gguf_get_arr_n(g, kt);
    if (n < 1 || n >= (1u << 24)) m.fail("tokenizer.ggml.tokens", std::to_string(n) + " tokens (expected 1..2^24)");
    std::unordered_set<std::string> seen;
    seen.reserve(n * 2);
    for (size_t i = 0; i < n; i++) {
        const char * t   = gguf_get_arr_str(g, kt, i);
        const size_t len = t ? strlen(t) : 0;
        // llama.cpp renames an empty token to "[EMPTY_<i>]"; a collision (or any duplicate) is an abort there
        const std::string text = len == 0 ? "[EMPTY_" + std::to_string(i) + "]" : std::string(t, len);
        if (text.size() > 16384) m.fail("tokenizer.ggml.tokens", "token " + std::to_string(i) + " is " + std::to_string(text.size()) + " bytes long (at most 16384)");
        if (!seen.insert(text).second) m.fail("tokenizer.ggml.tokens", "token " + std::to_string(i) + " ('" + text.substr(0, 40) + "') appears twice");
    }
    for (const char * k : { "tokenizer.ggml.scores", "tokenizer.ggml.token_type" }) {
        const int64_t ka = m.id(k);
        if (ka < 0) continue;
        if (gguf_get_kv_type(g, ka) != GGUF_TYPE_ARRAY || gguf_get_arr_type(g, ka) == GGUF_TYPE_STRING) m.fail(k, "expected a numeric array");
        if (gguf_get_arr_n(g, ka) < n) m.fail(k, "has " + std::to_string(gguf_get_arr_n(g, ka)) + " entries for " + std::to_string(n) + " tokens");
    }
    // (BOS / EOS that the vocabulary adds but does not have are refused after the load, from the values
    // llama.cpp resolved: Model.cpp, check_special_tokens)
    const bool spm = model == "llama";
    if (spm) {
        // SentencePiece byte fallback: without <0x00>..<0xFF> llama.cpp's tokenizer throws on ordinary text (any
        // character the pieces do not cover); such a vocabulary loads in llama.cpp, but a server would fail on
        // its users' input, so it is refused at load, naming the missing token
        char buf[8];
        for (int b = 0; b < 256; b++) {
            snprintf(buf, sizeof(buf), "<0x%02X>", b);
            if (!seen.count(buf)) m.fail("tokenizer.ggml.tokens", std::string("the SentencePiece byte token ") + buf + " is missing (the vocabulary cannot tokenize arbitrary text)");
        }
    }
}

bool ends_with(const std::string & s, const char * suffix) {
    const size_t n = strlen(suffix);
    return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

void check_tensor_types(const Meta & m) {
    const gguf_context * g = m.g();
    for (int64_t i = 0; i < gguf_get_n_tensors(g); i++) {
        const std::string name = gguf_get_tensor_name(g, i);
        const ggml_type   t    = gguf_get_tensor_type(g, i);
        const bool        f32_only = name.find("_norm") != std::string::npos || ends_with(name, ".bias") || ends_with(name, ".scale") ||
                              ends_with(name, ".input_scale") || name.rfind("rope_freqs", 0) == 0 || name.rfind("rope_factors", 0) == 0;
        if (f32_only && t != GGML_TYPE_F32) {
            m.fail("tensor " + name, std::string("must be F32, found ") + ggml_type_name(t));
        }
        // types without a CPU dot product (or to-float conversion): a matmul or row lookup on them aborts
        if (t == GGML_TYPE_Q8_1 || t == GGML_TYPE_Q8_K || (t >= GGML_TYPE_I8 && t <= GGML_TYPE_F64)) {
            m.fail("tensor " + name, std::string("type ") + ggml_type_name(t) + " cannot be a weight");
        }
    }
}

}  // namespace

void precheck(const std::string & path) {
    uint64_t size   = 0;
    bool     is_dir = false;
    if (!file_size(path, size, is_dir)) throw DuetError(code::MODEL_NOT_FOUND, "model file not found: " + path);
    if (is_dir) throw DuetError(code::MODEL_NOT_FOUND, "model path is a directory, not a file: " + path);
    check_header(path, size);
    gguf_init_params gp = { /*no_alloc =*/true, /*ctx =*/nullptr };
    gguf_context *   raw = nullptr;
    try {
        raw = gguf_init_from_file(path.c_str(), gp);
    } catch (const std::exception & e) {  // e.g. std::bad_alloc for absurd counts
        throw DuetError(code::CORRUPT_GGUF, "corrupt GGUF metadata: " + path + " (" + e.what() + ")");
    }
    if (!raw) {
        std::string why = log_bridge::take_last_error();
        throw DuetError(code::CORRUPT_GGUF, "corrupt or truncated GGUF metadata: " + path + (why.empty() ? "" : " (" + why + ")"));
    }
    GgufPtr        guard(raw, gguf_free);
    const uint64_t data_off = gguf_get_data_offset(raw);
    uint64_t       need     = data_off;
    for (int64_t i = 0; i < gguf_get_n_tensors(raw); i++) {
        need = std::max<uint64_t>(need, data_off + gguf_get_tensor_offset(raw, i) + gguf_get_tensor_size(raw, i));
    }
    if (need > size) {
        throw DuetError(code::CORRUPT_GGUF, "truncated GGUF: tensor data needs " + std::to_string(need) + " bytes but the file has " +
                                                std::to_string(size) + ": " + path);
    }
    const Meta m(raw, path);
    check_generic(m);
    const std::string arch = m.str("general.architecture", "");
    if (arch == "llama") check_llama_hparams(m, arch);
    check_vocab(m);
    check_tensor_types(m);
}

}  // namespace duet::gguf_check
