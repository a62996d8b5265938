#include "model/GgufInfo.h"

#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "ggml.h"
#include "gguf.h"
#include "model/GgufCheck.h"
#include "napi/args.h"
#include "napi/errors.h"

namespace duet {

namespace {

int64_t find_int(const gguf_context * g, const std::string & key) {
    const int64_t k = gguf_find_key(g, key.c_str());
    if (k < 0) return -1;
    switch (gguf_get_kv_type(g, k)) {
        case GGUF_TYPE_UINT8: return gguf_get_val_u8(g, k);
        case GGUF_TYPE_INT8: return gguf_get_val_i8(g, k);
        case GGUF_TYPE_UINT16: return gguf_get_val_u16(g, k);
        case GGUF_TYPE_INT16: return gguf_get_val_i16(g, k);
        case GGUF_TYPE_UINT32: return gguf_get_val_u32(g, k);
        case GGUF_TYPE_INT32: return gguf_get_val_i32(g, k);
        case GGUF_TYPE_UINT64: return (int64_t) gguf_get_val_u64(g, k);
        case GGUF_TYPE_INT64: return gguf_get_val_i64(g, k);
        case GGUF_TYPE_ARRAY: return (int64_t) gguf_get_arr_n(g, k);  // per-layer arrays: their length
        default: return -1;
    }
}

std::string find_str(const gguf_context * g, const std::string & key) {
    const int64_t k = gguf_find_key(g, key.c_str());
    if (k < 0 || gguf_get_kv_type(g, k) != GGUF_TYPE_STRING) return "";
    return gguf_get_val_str(g, k);
}

}  // namespace

Napi::Value ReadGguf(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        const std::string path = args::string(info[0], "path");
        gguf_check::precheck(path);
        gguf_init_params ip{ true, nullptr };
        std::unique_ptr<gguf_context, void (*)(gguf_context *)> g(gguf_init_from_file(path.c_str(), ip), gguf_free);
        if (!g) throw DuetError(code::CORRUPT_GGUF, "cannot read the GGUF header of " + path);
        const gguf_context * c    = g.get();
        const std::string    arch = find_str(c, "general.architecture");
        Napi::Env            env  = info.Env();
        Napi::Object         o    = Napi::Object::New(env);
        o.Set("architecture", arch);
        o.Set("name", find_str(c, "general.name"));
        o.Set("fileType", (double) find_int(c, "general.file_type"));
        o.Set("contextLength", (double) find_int(c, arch + ".context_length"));
        o.Set("embeddingLength", (double) find_int(c, arch + ".embedding_length"));
        o.Set("blockCount", (double) find_int(c, arch + ".block_count"));
        o.Set("headCount", (double) find_int(c, arch + ".attention.head_count"));
        o.Set("headCountKv", (double) find_int(c, arch + ".attention.head_count_kv"));
        o.Set("feedForwardLength", (double) find_int(c, arch + ".feed_forward_length"));
        o.Set("vocabSize", (double) find_int(c, "tokenizer.ggml.tokens"));
        o.Set("tokenizerModel", find_str(c, "tokenizer.ggml.model"));
        o.Set("chatTemplate", gguf_find_key(c, "tokenizer.chat_template") >= 0);
        const int64_t n_tensors = gguf_get_n_tensors(c);
        struct Acc {
            int64_t tensors = 0, params = 0, bytes = 0;
        };
        std::map<std::string, Acc> types;
        int64_t                    params = 0, bytes = 0;
        for (int64_t i = 0; i < n_tensors; i++) {
            const ggml_type t = gguf_get_tensor_type(c, i);
            const size_t    b = gguf_get_tensor_size(c, i);
            const int64_t   n = (int64_t) (b / ggml_type_size(t)) * ggml_blck_size(t);
            Acc &           a = types[ggml_type_name(t)];
            a.tensors++;
            a.params += n;
            a.bytes += (int64_t) b;
            params += n;
            bytes += (int64_t) b;
        }
        o.Set("tensors", (double) n_tensors);
        o.Set("parameters", (double) params);
        o.Set("tensorBytes", (double) bytes);
        if (FILE * f = std::fopen(path.c_str(), "rb")) {
            std::fseek(f, 0, SEEK_END);
            o.Set("fileBytes", (double) std::ftell(f));
            std::fclose(f);
        }
        Napi::Object ty = Napi::Object::New(env);
        for (auto & [name, a] : types) {
            Napi::Object e = Napi::Object::New(env);
            e.Set("tensors", (double) a.tensors);
            e.Set("parameters", (double) a.params);
            e.Set("bytes", (double) a.bytes);
            ty.Set(name, e);
        }
        o.Set("types", ty);
        return o;
    });
}

}  // namespace duet
