#include "model/Model.h"

#include <cstring>
#include <memory>

#include "gguf.h"
#include "model/Backends.h"
#include "model/GgufCheck.h"
#include "napi/args.h"
#include "napi/errors.h"
#include "napi/log_bridge.h"
#include "napi/wrap.h"

namespace duet {

std::atomic<int64_t> reported_external{ 0 };

Napi::Function Model::Init(Napi::Env env) {
    Napi::Function fn = DefineClass(env, "Model",
                                    {
                                        InstanceMethod("tokenize", &Model::Tokenize),
                                        InstanceMethod("detokenize", &Model::Detokenize),
                                        InstanceMethod("applyChatTemplate", &Model::ApplyChatTemplate),
                                        InstanceMethod("info", &Model::Info),
                                        InstanceMethod("dispose", &Model::Dispose),
                                    });
    return fn;
}

// Constructed only by LoadModelWorker::OnOK with an External<llama_model>.
Model::Model(const Napi::CallbackInfo & info) : Napi::ObjectWrap<Model>(info) {
    if (info.Length() < 1 || !info[0].IsExternal()) {
        Napi::TypeError::New(info.Env(), "Model cannot be constructed directly; use loadModel()")
            .ThrowAsJavaScriptException();
        return;
    }
    info.This().As<Napi::Object>().TypeTag(&kModelTag);
    model_   = info[0].As<Napi::External<llama_model>>().Data();
    mapped_  = info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
    vocab_   = llama_model_get_vocab(model_);
    n_vocab_ = llama_vocab_n_tokens(vocab_);
    // V8 learns about the weights (capped at 1 GiB: a hint for GC pressure, not an account), and gets it back on
    // dispose or finalisation
    external_ = (int64_t) std::min<uint64_t>(llama_model_size(model_), 1ull << 30);
    Napi::MemoryManagement::AdjustExternalMemory(info.Env(), external_);
    reported_external += external_;
}

Model::~Model() { free_model(Env()); }

void Model::free_model(Napi::Env env) {
    if (model_) {
        llama_model_free(model_);
        model_ = nullptr;
    }
    if (external_ != 0) {
        Napi::MemoryManagement::AdjustExternalMemory(env, -external_);
        reported_external -= external_;
        external_ = 0;
    }
}

llama_model * Model::get() const {
    if (!model_) throw DuetError(code::DISPOSED, "the model has been disposed");
    return model_;
}

const llama_vocab * Model::vocab() const {
    get();
    return vocab_;
}

std::string Model::piece(llama_token token) const {
    char    buf[256];
    int32_t n = llama_token_to_piece(vocab_, token, buf, sizeof(buf), 0, false);
    if (n >= 0) return std::string(buf, n);
    std::string big((size_t) -n, '\0');
    n = llama_token_to_piece(vocab_, token, big.data(), (int32_t) big.size(), 0, false);
    return n >= 0 ? big.substr(0, n) : std::string();
}

// tokenize(text, addSpecial, parseSpecial) → Int32Array
Napi::Value Model::Tokenize(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        const std::string text          = args::string(info[0], "text");
        const bool        add_special   = args::boolean(info[1], "addSpecial");
        const bool        parse_special = args::boolean(info[2], "parseSpecial");
        const llama_vocab * v           = vocab();
        if (text.size() > (size_t) INT32_MAX / 2) throw DuetError(code::INVALID_ARGUMENT, "text is too long to tokenize");
        std::vector<llama_token> out(text.size() + 8);
        int32_t n = llama_tokenize(v, text.data(), (int32_t) text.size(), out.data(), (int32_t) out.size(), add_special, parse_special);
        if (n == INT32_MIN) throw DuetError(code::INVALID_ARGUMENT, "tokenization overflow");
        if (n < 0) {
            out.resize((size_t) -n);
            n = llama_tokenize(v, text.data(), (int32_t) text.size(), out.data(), (int32_t) out.size(), add_special, parse_special);
            if (n < 0) throw DuetError(code::NATIVE, "tokenization failed");
        }
        out.resize(n);
        return args::to_int32_array(info.Env(), out);
    });
}

// detokenize(Int32Array, renderSpecial) → string
Napi::Value Model::Detokenize(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        const llama_vocab * v      = vocab();
        const auto          toks   = args::tokens(info[0], "tokens", n_vocab_);
        const bool          render = args::boolean(info[1], "renderSpecial");
        std::string         text(toks.size() * 8 + 16, '\0');
        int32_t n = llama_detokenize(v, toks.data(), (int32_t) toks.size(), text.data(), (int32_t) text.size(), false, render);
        if (n < 0) {
            text.resize((size_t) -n);
            n = llama_detokenize(v, toks.data(), (int32_t) toks.size(), text.data(), (int32_t) text.size(), false, render);
            if (n < 0) throw DuetError(code::NATIVE, "detokenization failed");
        }
        text.resize(n);
        return Napi::String::New(info.Env(), text);
    });
}

// applyChatTemplate([{ role, content }], addAssistant) → string | null (null: the GGUF has no
// tokenizer.chat_template, or llama.cpp does not recognise it; the caller falls back)
Napi::Value Model::ApplyChatTemplate(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        const char * tmpl = llama_model_chat_template(get(), nullptr);
        if (!tmpl) return info.Env().Null();
        if (!info[0].IsArray()) throw DuetError(code::INVALID_ARGUMENT, "Expected an array of messages");
        Napi::Array              a = info[0].As<Napi::Array>();
        std::vector<std::string> roles, contents;
        for (uint32_t i = 0; i < a.Length(); i++) {
            if (!a.Get(i).IsObject()) throw DuetError(code::INVALID_ARGUMENT, "Expected messages of { role, content }");
            Napi::Object m = a.Get(i).As<Napi::Object>();
            roles.push_back(args::string(m.Get("role"), "role"));
            contents.push_back(args::string(m.Get("content"), "content"));
        }
        std::vector<llama_chat_message> msgs;
        size_t                          total = 0;
        for (size_t i = 0; i < roles.size(); i++) {
            msgs.push_back({ roles[i].c_str(), contents[i].c_str() });
            total += roles[i].size() + contents[i].size();
        }
        const bool  add_ass = args::boolean(info[1], "addAssistant");
        std::string out(total * 2 + 256, '\0');
        int32_t     n = llama_chat_apply_template(tmpl, msgs.data(), msgs.size(), add_ass, out.data(), (int32_t) out.size());
        if (n < 0) return info.Env().Null();  // a template llama.cpp does not know
        if ((size_t) n > out.size()) {
            out.resize(n);
            n = llama_chat_apply_template(tmpl, msgs.data(), msgs.size(), add_ass, out.data(), (int32_t) out.size());
            if (n < 0) return info.Env().Null();
        }
        out.resize(n);
        return Napi::String::New(info.Env(), out);
    });
}

Napi::Value Model::Info(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        llama_model * m   = get();
        Napi::Env     env = info.Env();
        Napi::Object  o   = Napi::Object::New(env);
        char          desc[256];
        llama_model_desc(m, desc, sizeof(desc));
        char arch[128] = { 0 };
        llama_model_meta_val_str(m, "general.architecture", arch, sizeof(arch));
        o.Set("description", desc);
        o.Set("architecture", arch);
        o.Set("nVocab", n_vocab_);
        o.Set("nCtxTrain", llama_model_n_ctx_train(m));
        o.Set("nEmbd", llama_model_n_embd(m));
        o.Set("nLayer", llama_model_n_layer(m));
        o.Set("nHead", llama_model_n_head(m));
        o.Set("nHeadKv", llama_model_n_head_kv(m));
        o.Set("sizeBytes", (double) llama_model_size(m));
        o.Set("nParams", (double) llama_model_n_params(m));
        o.Set("bos", llama_vocab_bos(vocab_));
        o.Set("eos", llama_vocab_eos(vocab_));
        o.Set("addBos", llama_vocab_get_add_bos(vocab_));
        o.Set("vocabType", (int) llama_vocab_type(vocab_));
        o.Set("mmap", mapped_);
        o.Set("cpuVariant", backends::cpu_variant());
        return o;
    });
}

Napi::Value Model::Dispose(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        if (contexts.load() > 0) throw DuetError(code::BUSY, "dispose the model's contexts first");
        free_model(info.Env());
        return info.Env().Undefined();
    });
}

// ---------------------------------------------------------------------------------------------
// LoadModelWorker: mmap load off the JS thread, progress through a queue worker, abort flag.

namespace {

struct LoadParams {
    std::string path;
    int32_t     gpu_layers = 0;
    int         use_mmap   = -1;  // -1: auto (mmap unless the CPU backend repacks the weights)
    bool        vocab_only = false;  // the vocabulary and metadata only, no weights (inspect, compatibility checks)
};

// ggml's AMX buffer type and llama-duet's kernels (CPU_REPACK) copy (repack) every weight they take at load. With the file memory-mapped as
// well, the mapped pages stay resident beside that copy: measured 2.69 GB RSS instead of 1.63 GB for the
// 1.4 GB tinyllama pair. Reading costs load time (0.9 s instead of 0.5 s from a warm page cache), which a
// server pays once. The buffer type exists only where ggml was built with AMX and the kernel granted the
// tile permission; our kernels run wherever the CPU module has AVX2 and LLAMA_DUET_KERNELS is not 0.
bool cpu_repacks_weights() { return backends::cpu_kernels_run() || backends::cpu_extra_buffer_type("AMX") != nullptr; }

class LoadModelWorker : public Napi::AsyncProgressQueueWorker<float> {
  public:
    LoadModelWorker(Napi::Env env, LoadParams params, std::shared_ptr<std::atomic_bool> abort, Napi::Function on_progress)
        : Napi::AsyncProgressQueueWorker<float>(env, "llama-duet:loadModel"),
          deferred_(Napi::Promise::Deferred::New(env)),
          params_(std::move(params)),
          abort_(std::move(abort)) {
        if (!on_progress.IsEmpty()) on_progress_ = Napi::Persistent(on_progress);
    }

    Napi::Promise Promise() { return deferred_.Promise(); }

  protected:
    void Execute(const ExecutionProgress & progress) override {
        try {
            gguf_check::precheck(params_.path);  // nothing llama.cpp would abort on gets past this
            llama_model_params mp          = llama_model_default_params();
            mp.n_gpu_layers                = params_.gpu_layers;
            mp.use_extra_bufts             = true;
            mp.vocab_only                  = params_.vocab_only;
            struct Cb {
                const ExecutionProgress * progress;
                std::atomic_bool *        abort;
                float                     last;
            } cb{ &progress, abort_.get(), -1.0f };
            mp.progress_callback = [](float p, void * ud) -> bool {
                auto * c = (Cb *) ud;
                if (p - c->last >= 0.01f || p >= 1.0f) {
                    c->last = p;
                    c->progress->Send(&p, 1);
                }
                return !c->abort->load();
            };
            mp.progress_callback_user_data = &cb;
            const bool use_mmap = params_.use_mmap < 0 ? !cpu_repacks_weights() : params_.use_mmap != 0;
            if (!use_mmap) mp.load_mode = LLAMA_LOAD_MODE_NONE;
            mapped_ = use_mmap;
            log_bridge::take_last_error();
            model_ = llama_model_load_from_file(params_.path.c_str(), mp);
            if (!model_) {
                if (abort_->load()) throw DuetError(code::ABORTED, "model load aborted");
                std::string why = log_bridge::take_last_error();
                if (why.find("unknown model architecture") != std::string::npos) {
                    throw DuetError(code::UNSUPPORTED_ARCHITECTURE, "unsupported model architecture: " + why);
                }
                throw DuetError(code::MODEL_LOAD_FAILED, "llama.cpp could not load " + params_.path + (why.empty() ? "" : ": " + why));
            }
            {
                // a special token the vocabulary adds but does not have: llama.cpp asserts at the first tokenize
                const llama_vocab * v = llama_model_get_vocab(model_);
                const char *        missing = llama_vocab_get_add_bos(v) && llama_vocab_bos(v) == LLAMA_TOKEN_NULL   ? "tokenizer.ggml.bos_token_id"
                                              : llama_vocab_get_add_eos(v) && llama_vocab_eos(v) == LLAMA_TOKEN_NULL ? "tokenizer.ggml.eos_token_id"
                                                                                                                      : nullptr;
                if (missing) {
                    llama_model_free(model_);
                    model_ = nullptr;
                    throw DuetError(code::CORRUPT_GGUF, std::string("invalid ") + missing + ": the vocabulary adds this token but has no valid id for it (" + params_.path + ")");
                }
            }
            if (llama_model_is_recurrent(model_) || llama_model_is_hybrid(model_)) {
                char arch[128] = { 0 };
                llama_model_meta_val_str(model_, "general.architecture", arch, sizeof(arch));
                llama_model_free(model_);
                model_ = nullptr;
                throw DuetError(code::UNSUPPORTED_ARCHITECTURE,
                                std::string("recurrent/hybrid architecture '") + arch +
                                    "' is not supported: its KV state cannot be rolled back for speculative decoding");
            }
            if (!llama_model_has_decoder(model_) || llama_model_has_encoder(model_)) {
                llama_model_free(model_);
                model_ = nullptr;
                throw DuetError(code::UNSUPPORTED_ARCHITECTURE, "only decoder-only models are supported");
            }
        } catch (const DuetError & e) {
            code_ = e.code();
            SetError(e.what());
        } catch (const std::exception & e) {
            code_ = code::MODEL_LOAD_FAILED;
            SetError(std::string("model load failed: ") + e.what());
        } catch (...) {
            code_ = code::MODEL_LOAD_FAILED;
            SetError("model load failed");
        }
    }

    void OnProgress(const float * data, size_t count) override {
        if (on_progress_.IsEmpty() || count == 0) return;
        Napi::HandleScope scope(Env());
        try {
            on_progress_.Call({ Napi::Number::New(Env(), data[count - 1]) });
        } catch (...) {
        }
    }

    void OnOK() override {
        Napi::HandleScope scope(Env());
        try {
            Napi::Object obj = addon_data(Env()).model_ctor.New({ Napi::External<llama_model>::New(Env(), model_), Napi::Boolean::New(Env(), mapped_) });
            model_           = nullptr;
            deferred_.Resolve(obj);
        } catch (...) {
            deferred_.Reject(error_from_current(Env()).Value());
        }
    }

    void OnError(const Napi::Error & e) override {
        Napi::HandleScope scope(Env());
        deferred_.Reject(make_error(Env(), code_, e.Message()).Value());
    }

    ~LoadModelWorker() override {
        if (model_) llama_model_free(model_);
    }

  private:
    Napi::Promise::Deferred           deferred_;
    LoadParams                        params_;
    std::shared_ptr<std::atomic_bool> abort_;
    Napi::FunctionReference           on_progress_;
    llama_model *                     model_ = nullptr;
    bool                              mapped_ = false;
    const char *                      code_  = code::MODEL_LOAD_FAILED;
};

}  // namespace

Napi::Value LoadModel(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        Napi::Env    env = info.Env();
        LoadParams   p;
        p.path                = args::string(info[0], "path");
        Napi::Object o        = args::object(info[1], "options");
        p.gpu_layers          = (int32_t) args::opt_integer(o, "gpuLayers", 0, -1, 100000);
        p.use_mmap            = o.Get("useMmap").IsUndefined() ? -1 : args::opt_boolean(o, "useMmap", true);
        p.vocab_only          = args::opt_boolean(o, "vocabOnly", false);
        Napi::Function on_progress;
        if (info.Length() > 2 && info[2].IsFunction()) on_progress = info[2].As<Napi::Function>();
        auto  abort  = std::make_shared<std::atomic_bool>(false);
        auto * worker = new LoadModelWorker(env, p, abort, on_progress);
        Napi::Object result = Napi::Object::New(env);
        result.Set("promise", worker->Promise());
        result.Set("abort", Napi::Function::New(env, [abort](const Napi::CallbackInfo & i) {
                       abort->store(true);
                       return i.Env().Undefined();
                   }));
        worker->Queue();
        return result;
    });
}

// Same rules as llama.cpp's common_speculative_are_compatible / node-llama-cpp's
// ensureDraftContextIsCompatibleForSpeculative: vocab type, BOS/EOS ids and add-flags,
// |n_vocab difference| ≤ 128, identical token text from id 5 on.
Napi::Value CheckCompatibility(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        Model * a = unwrap<Model>(info[0], kModelTag, "Model");
        Model * b = unwrap<Model>(info[1], kModelTag, "Model");
        const llama_vocab * va = a->vocab();
        const llama_vocab * vb = b->vocab();
        auto reason = [&](const std::string & s) -> Napi::Value { return Napi::String::New(info.Env(), s); };
        if (llama_vocab_type(va) != llama_vocab_type(vb)) {
            return reason("vocabulary types differ (" + std::to_string(llama_vocab_type(va)) + " vs " + std::to_string(llama_vocab_type(vb)) + ")");
        }
        if (llama_vocab_get_add_bos(va) != llama_vocab_get_add_bos(vb) || llama_vocab_get_add_eos(va) != llama_vocab_get_add_eos(vb) ||
            llama_vocab_bos(va) != llama_vocab_bos(vb) || llama_vocab_eos(va) != llama_vocab_eos(vb)) {
            return reason("special tokens differ (BOS " + std::to_string(llama_vocab_bos(va)) + "/" + std::to_string(llama_vocab_bos(vb)) +
                          ", EOS " + std::to_string(llama_vocab_eos(va)) + "/" + std::to_string(llama_vocab_eos(vb)) + ", or add-BOS/EOS flags)");
        }
        const int32_t na = a->n_vocab(), nb = b->n_vocab();
        if (std::abs(na - nb) > 128) {
            return reason("vocabulary sizes differ by more than 128 (" + std::to_string(na) + " vs " + std::to_string(nb) + ")");
        }
        for (int32_t i = 5; i < std::min(na, nb); i++) {
            if (strcmp(llama_vocab_get_text(va, i), llama_vocab_get_text(vb, i)) != 0) {
                return reason("token " + std::to_string(i) + " differs ('" + llama_vocab_get_text(va, i) + "' vs '" + llama_vocab_get_text(vb, i) + "')");
            }
        }
        return info.Env().Null();
    });
}

}  // namespace duet
