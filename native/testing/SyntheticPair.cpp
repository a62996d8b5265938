#include "testing/SyntheticPair.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <sys/stat.h>
#include <vector>

#include "gguf.h"
#include "napi/errors.h"
#include "sampling/Rng.h"

namespace duet::synthetic {

namespace {

using GgufPtr = std::unique_ptr<gguf_context, void (*)(gguf_context *)>;

uint64_t fnv1a(const std::string & s) {
    uint64_t h = 1469598103934665603ULL;
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ULL;
    }
    return h;
}

enum class Init { NORMAL, ONES };

struct TensorPlan {
    std::string name;
    int64_t     ne0, ne1;  // ne0 = row length (input dim), ne1 = rows
    ggml_type   type;
    Init        init;
    double      std;
};

// Tokenizer metadata: copied from a vocab GGUF, or a tiny SPM vocabulary that llama.cpp can run:
// <unk> <s> </s>, N NORMAL tokens, then the 256 BYTE tokens (without them llama.cpp's SPM newline /
// byte lookup throws std::out_of_range at generation time).
int32_t set_tokenizer_unpadded(gguf_context * out, const PairSpec & spec) {
    if (!spec.vocab_path.empty()) {
        gguf_init_params gp = { true, nullptr };
        GgufPtr          src(gguf_init_from_file(spec.vocab_path.c_str(), gp), gguf_free);
        if (!src) throw DuetError(code::CORRUPT_GGUF, "cannot read the vocabulary GGUF " + spec.vocab_path);
        GgufPtr tmp(gguf_init_empty(), gguf_free);
        gguf_set_kv(tmp.get(), src.get());
        for (int64_t i = gguf_get_n_kv(tmp.get()) - 1; i >= 0; i--) {
            const std::string key = gguf_get_key(tmp.get(), i);
            if (key.rfind("tokenizer.", 0) != 0) gguf_remove_key(tmp.get(), key.c_str());
        }
        const int64_t kid = gguf_find_key(tmp.get(), "tokenizer.ggml.tokens");
        if (kid < 0) throw DuetError(code::CORRUPT_GGUF, "no tokenizer.ggml.tokens in " + spec.vocab_path);
        gguf_set_kv(out, tmp.get());
        return (int32_t) gguf_get_arr_n(tmp.get(), kid);
    }
    std::vector<std::string> toks   = { "<unk>", "<s>", "</s>" };
    std::vector<float>       scores = { 0.0f, 0.0f, 0.0f };
    std::vector<int32_t>     types  = { 2, 3, 3 };  // UNKNOWN, CONTROL, CONTROL
    for (int32_t i = 0; i < spec.tiny_normal_tokens; i++) {
        std::string t = "\xE2\x96\x81";  // ▁ (SPM word start)
        int32_t     k = i;
        do {
            t += (char) ('a' + k % 26);
            k /= 26;
        } while (k > 0);
        toks.push_back(t);
        scores.push_back(-1.0f - (float) i);
        types.push_back(1);  // NORMAL
    }
    for (int b = 0; b < 256; b++) {
        char buf[8];
        snprintf(buf, sizeof(buf), "<0x%02X>", b);
        toks.push_back(buf);
        scores.push_back(0.0f);
        types.push_back(6);  // BYTE
    }
    std::vector<const char *> ptrs;
    for (auto & t : toks) ptrs.push_back(t.c_str());
    gguf_set_val_str(out, "tokenizer.ggml.model", "llama");
    gguf_set_val_str(out, "tokenizer.ggml.pre", "default");
    gguf_set_arr_str(out, "tokenizer.ggml.tokens", ptrs.data(), ptrs.size());
    gguf_set_arr_data(out, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores.data(), scores.size());
    gguf_set_arr_data(out, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types.data(), types.size());
    gguf_set_val_u32(out, "tokenizer.ggml.bos_token_id", 1);
    gguf_set_val_u32(out, "tokenizer.ggml.eos_token_id", 2);
    gguf_set_val_u32(out, "tokenizer.ggml.unknown_token_id", 0);
    gguf_set_val_bool(out, "tokenizer.ggml.add_bos_token", true);
    gguf_set_val_bool(out, "tokenizer.ggml.add_eos_token", false);
    return (int32_t) toks.size();
}

// The tokenizer plus `pad` "[PAD<i>]" tokens (UNUSED, score 0) at the end; returns the vocabulary size.
int32_t set_tokenizer(gguf_context * out, const PairSpec & spec, int32_t pad) {
    const int32_t n = set_tokenizer_unpadded(out, spec);
    if (pad <= 0) return n;
    const int64_t kt = gguf_find_key(out, "tokenizer.ggml.tokens");
    const int64_t ks = gguf_find_key(out, "tokenizer.ggml.scores");
    const int64_t ky = gguf_find_key(out, "tokenizer.ggml.token_type");
    if (kt < 0 || ks < 0 || ky < 0) throw DuetError(code::INVALID_ARGUMENT, "vocabulary padding needs tokens, scores and token types");
    std::vector<std::string> toks;
    for (int32_t i = 0; i < n; i++) toks.push_back(gguf_get_arr_str(out, kt, i));
    std::vector<float>   scores((const float *) gguf_get_arr_data(out, ks), (const float *) gguf_get_arr_data(out, ks) + n);
    std::vector<int32_t> types((const int32_t *) gguf_get_arr_data(out, ky), (const int32_t *) gguf_get_arr_data(out, ky) + n);
    for (int32_t i = 0; i < pad; i++) {
        toks.push_back("[PAD" + std::to_string(n + i) + "]");
        scores.push_back(0.0f);
        types.push_back(5);  // UNUSED
    }
    std::vector<const char *> ptrs;
    for (auto & t : toks) ptrs.push_back(t.c_str());
    gguf_set_arr_str(out, "tokenizer.ggml.tokens", ptrs.data(), ptrs.size());
    gguf_set_arr_data(out, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores.data(), scores.size());
    gguf_set_arr_data(out, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types.data(), types.size());
    return (int32_t) toks.size();
}

std::vector<TensorPlan> plan(const PairSpec & s, int32_t n_layers, int32_t n_vocab) {
    const int64_t d     = s.n_embd;
    const int64_t d_kv  = (int64_t) s.n_embd / s.n_head * s.n_head_kv;
    const double  sd_in = 1.0 / std::sqrt((double) d);
    std::vector<TensorPlan> p;
    // Q4_K_M: llama.cpp keeps the output head and, in about half the layers, attn_v and ffn_down at Q6_K
    auto more_bits = [&](int32_t l) { return s.q4_k_m && l % 2 == 0 ? GGML_TYPE_Q6_K : s.wtype; };
    p.push_back({ "token_embd.weight", d, n_vocab, s.wtype, Init::NORMAL, 1.0 });
    for (int32_t l = 0; l < n_layers; l++) {
        const std::string b = "blk." + std::to_string(l) + ".";
        p.push_back({ b + "attn_norm.weight", d, 1, GGML_TYPE_F32, Init::ONES, 0 });
        p.push_back({ b + "attn_q.weight", d, d, s.wtype, Init::NORMAL, sd_in });
        p.push_back({ b + "attn_k.weight", d, d_kv, s.wtype, Init::NORMAL, sd_in });
        p.push_back({ b + "attn_v.weight", d, d_kv, more_bits(l), Init::NORMAL, sd_in });
        p.push_back({ b + "attn_output.weight", d, d, s.wtype, Init::NORMAL, s.epsilon / std::sqrt((double) d) });
        p.push_back({ b + "ffn_norm.weight", d, 1, GGML_TYPE_F32, Init::ONES, 0 });
        p.push_back({ b + "ffn_gate.weight", d, s.n_ff, s.wtype, Init::NORMAL, sd_in });
        p.push_back({ b + "ffn_up.weight", d, s.n_ff, s.wtype, Init::NORMAL, sd_in });
        p.push_back({ b + "ffn_down.weight", s.n_ff, d, more_bits(l), Init::NORMAL, s.epsilon / std::sqrt((double) s.n_ff) });
    }
    p.push_back({ "output_norm.weight", d, 1, GGML_TYPE_F32, Init::ONES, 0 });
    p.push_back({ "output.weight", d, n_vocab, s.q4_k_m ? GGML_TYPE_Q6_K : s.wtype, Init::NORMAL, s.out_scale * sd_in });
    return p;
}

void write_all(FILE * f, const void * data, size_t n, const std::string & path) {
    if (n && fwrite(data, 1, n, f) != n) throw DuetError(code::IO, "write failed: " + path);
}

uint64_t write_model(const std::string & path, const PairSpec & s, int32_t n_layers, int32_t vocab_pad, const char * name) {
    GgufPtr g(gguf_init_empty(), gguf_free);
    const int32_t n_vocab = set_tokenizer(g.get(), s, vocab_pad);
    gguf_set_val_str(g.get(), "general.architecture", "llama");
    gguf_set_val_str(g.get(), "general.name", name);
    // llama_ftype: 7 MOSTLY_Q8_0, 14 MOSTLY_Q4_K_S, 15 MOSTLY_Q4_K_M, 1 MOSTLY_F16, 0 ALL_F32
    gguf_set_val_u32(g.get(), "general.file_type",
                     s.wtype == GGML_TYPE_Q8_0 ? 7 : s.wtype == GGML_TYPE_Q4_K ? (s.q4_k_m ? 15 : 14) : s.wtype == GGML_TYPE_F16 ? 1 : 0);
    gguf_set_val_u32(g.get(), "llama.context_length", (uint32_t) s.n_ctx_train);
    gguf_set_val_u32(g.get(), "llama.embedding_length", (uint32_t) s.n_embd);
    gguf_set_val_u32(g.get(), "llama.block_count", (uint32_t) n_layers);
    gguf_set_val_u32(g.get(), "llama.feed_forward_length", (uint32_t) s.n_ff);
    gguf_set_val_u32(g.get(), "llama.attention.head_count", (uint32_t) s.n_head);
    gguf_set_val_u32(g.get(), "llama.attention.head_count_kv", (uint32_t) s.n_head_kv);
    gguf_set_val_u32(g.get(), "llama.rope.dimension_count", (uint32_t) (s.n_embd / s.n_head));
    gguf_set_val_f32(g.get(), "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gguf_set_val_f32(g.get(), "llama.rope.freq_base", 10000.0f);
    gguf_set_val_u32(g.get(), "llama.vocab_size", (uint32_t) n_vocab);
    gguf_set_val_u64(g.get(), "llama_duet.synthetic.seed", s.seed);
    gguf_set_val_f32(g.get(), "llama_duet.synthetic.epsilon", (float) s.epsilon);

    const auto plans = plan(s, n_layers, n_vocab);
    ggml_init_params ip = { ggml_tensor_overhead() * (plans.size() + 4), nullptr, true };
    std::unique_ptr<ggml_context, void (*)(ggml_context *)> meta(ggml_init(ip), ggml_free);
    for (const auto & tp : plans) {
        ggml_tensor * t = tp.ne1 == 1 ? ggml_new_tensor_1d(meta.get(), tp.type, tp.ne0)
                                      : ggml_new_tensor_2d(meta.get(), tp.type, tp.ne0, tp.ne1);
        ggml_set_name(t, tp.name.c_str());
        gguf_add_tensor(g.get(), t);
    }

    const std::string tmp_path = path + ".tmp";
    std::unique_ptr<FILE, int (*)(FILE *)> f(fopen(tmp_path.c_str(), "wb"), fclose);
    if (!f) throw DuetError(code::IO, "cannot write " + tmp_path);
    std::vector<uint8_t> header(gguf_get_meta_size(g.get()));
    gguf_get_meta_data(g.get(), header.data());
    write_all(f.get(), header.data(), header.size(), path);
    uint64_t total = header.size();

    const size_t         align = gguf_get_alignment(g.get());
    std::vector<float>   rowsf;
    std::vector<uint8_t> q;
    for (const auto & tp : plans) {
        Rng           rng(s.seed ^ fnv1a(tp.name));
        const int64_t chunk_rows = std::max<int64_t>(1, (1 << 20) / tp.ne0);
        size_t        written    = 0;
        for (int64_t r0 = 0; r0 < tp.ne1; r0 += chunk_rows) {
            const int64_t nr = std::min(chunk_rows, tp.ne1 - r0);
            rowsf.resize((size_t) (nr * tp.ne0));
            for (auto & v : rowsf) v = tp.init == Init::ONES ? 1.0f : (float) (rng.normal() * tp.std);
            if (s.eos_like >= 0 && tp.name == "output.weight") {
                if (r0 != 0 || nr != tp.ne1 || s.eos_like >= tp.ne1) throw DuetError(code::INVALID_ARGUMENT, "eosLike needs a small vocabulary and a token inside it");
                for (int64_t i = 0; i < tp.ne0; i++) rowsf[2 * tp.ne0 + i] = rowsf[s.eos_like * tp.ne0 + i] + (float) (rng.normal() * 0.1 * tp.std);
            }
            const size_t nbytes = ggml_row_size(tp.type, tp.ne0) * (size_t) nr;
            if (tp.type == GGML_TYPE_F32) {
                write_all(f.get(), rowsf.data(), nbytes, path);
            } else {
                q.resize(nbytes);
                ggml_quantize_chunk(tp.type, rowsf.data(), q.data(), 0, nr, tp.ne0, nullptr);
                write_all(f.get(), q.data(), nbytes, path);
            }
            written += nbytes;
        }
        const size_t padded = GGML_PAD(written, align);
        static const uint8_t zeros[64] = { 0 };
        write_all(f.get(), zeros, padded - written, path);
        total += padded;
    }
    if (fflush(f.get()) != 0) throw DuetError(code::IO, "flush failed: " + tmp_path);
    f.reset();
    if (rename(tmp_path.c_str(), path.c_str()) != 0) throw DuetError(code::IO, "cannot rename " + tmp_path + " to " + path);
    return total;
}

}  // namespace

PairFiles make_pair(const PairSpec & s) {
    if (s.n_embd % s.n_head != 0 || s.n_head % s.n_head_kv != 0) {
        throw DuetError(code::INVALID_ARGUMENT, "nEmbd must be divisible by nHead, and nHead by nHeadKv");
    }
    const int64_t block = ggml_blck_size(s.wtype);  // 32 for Q8_0, 256 for Q4_K, 1 for f32/f16
    if (s.n_embd % block != 0 || s.n_ff % block != 0) {
        throw DuetError(code::INVALID_ARGUMENT, std::string(ggml_type_name(s.wtype)) + " needs nEmbd and nFf divisible by " + std::to_string(block));
    }
    if (s.amateur_layers < 1 || s.amateur_layers > s.n_layer) {
        throw DuetError(code::INVALID_ARGUMENT, "amateurLayers must be between 1 and nLayer");
    }
    struct stat st;
    if (stat(s.out_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) throw DuetError(code::IO, "not a directory: " + s.out_dir);
    PairFiles out;
    out.expert_path   = s.out_dir + "/expert.gguf";
    out.amateur_path  = s.out_dir + "/amateur.gguf";
    out.expert_bytes  = write_model(out.expert_path, s, s.n_layer, s.expert_vocab_pad, "llama-duet synthetic expert");
    out.amateur_bytes = write_model(out.amateur_path, s, s.amateur_layers, s.amateur_vocab_pad, "llama-duet synthetic amateur");
    GgufPtr g(gguf_init_empty(), gguf_free);
    out.n_vocab = set_tokenizer(g.get(), s, s.expert_vocab_pad);
    return out;
}

}  // namespace duet::synthetic
