// Module init only: llama backend, log bridge, class and function registration.
#include <napi.h>

#include <mutex>

#include "llama.h"
#include "model/Backends.h"
#include "model/Context.h"
#include "model/GgufInfo.h"
#include "model/Model.h"
#include "napi/args.h"
#include "napi/errors.h"
#include "napi/log_bridge.h"
#include "napi/wrap.h"
#include "testing/SyntheticPair.h"
#include "testing/DsbdMath.h"
#include "testing/KernelCheck.h"
#include "testing/VerifyMath.h"

namespace duet {
namespace {

class MakePairWorker : public Napi::AsyncWorker {
  public:
    MakePairWorker(Napi::Env env, synthetic::PairSpec spec)
        : Napi::AsyncWorker(env, "llama-duet:makePair"), deferred_(Napi::Promise::Deferred::New(env)), spec_(std::move(spec)) {}

    Napi::Promise Promise() { return deferred_.Promise(); }

    void Execute() override {
        try {
            files_ = synthetic::make_pair(spec_);
        } catch (const DuetError & e) {
            code_ = e.code();
            SetError(e.what());
        } catch (const std::exception & e) {
            SetError(e.what());
        }
    }

    void OnOK() override {
        Napi::Object o = Napi::Object::New(Env());
        o.Set("expert", files_.expert_path);
        o.Set("amateur", files_.amateur_path);
        o.Set("nVocab", files_.n_vocab);
        o.Set("expertBytes", (double) files_.expert_bytes);
        o.Set("amateurBytes", (double) files_.amateur_bytes);
        deferred_.Resolve(o);
    }

    void OnError(const Napi::Error & e) override { deferred_.Reject(make_error(Env(), code_, e.Message()).Value()); }

  private:
    Napi::Promise::Deferred deferred_;
    synthetic::PairSpec     spec_;
    synthetic::PairFiles    files_;
    const char *            code_ = code::NATIVE;
};

// makePair({ outDir, nLayer, nEmbd, nFf, nHead, nHeadKv, nCtxTrain, amateurLayers, epsilon, outScale,
//            seed, weightType: 'f32'|'f16'|'q8_0'|'q4_k'|'q4_k_m', vocabPath?, tinyNormalTokens, expertVocabPad, amateurVocabPad }) → Promise<files>
Napi::Value MakePair(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        Napi::Object        o = args::object(info[0], "options");
        synthetic::PairSpec s;
        s.out_dir        = args::string(o.Get("outDir"), "outDir");
        s.n_layer        = (int32_t) args::integer(o.Get("nLayer"), "nLayer", 1, 512);
        s.n_embd         = (int32_t) args::integer(o.Get("nEmbd"), "nEmbd", 8, 65536);
        s.n_ff           = (int32_t) args::integer(o.Get("nFf"), "nFf", 8, 262144);
        s.n_head         = (int32_t) args::integer(o.Get("nHead"), "nHead", 1, 1024);
        s.n_head_kv      = (int32_t) args::integer(o.Get("nHeadKv"), "nHeadKv", 1, 1024);
        s.n_ctx_train    = (int32_t) args::integer(o.Get("nCtxTrain"), "nCtxTrain", 16, 1 << 20);
        s.amateur_layers = (int32_t) args::integer(o.Get("amateurLayers"), "amateurLayers", 1, 512);
        s.epsilon        = args::number(o.Get("epsilon"), "epsilon", 0.0, 100.0);
        s.out_scale      = args::number(o.Get("outScale"), "outScale", 0.0, 1000.0);
        s.seed           = (uint64_t) args::integer(o.Get("seed"), "seed", 0, (int64_t) 1 << 53);
        const std::string wt = args::string(o.Get("weightType"), "weightType");
        if (wt == "f32") s.wtype = GGML_TYPE_F32;
        else if (wt == "f16") s.wtype = GGML_TYPE_F16;
        else if (wt == "q8_0") s.wtype = GGML_TYPE_Q8_0;
        else if (wt == "q4_k") s.wtype = GGML_TYPE_Q4_K;
        else if (wt == "q4_k_m") s.wtype = GGML_TYPE_Q4_K, s.q4_k_m = true;
        else throw DuetError(code::INVALID_ARGUMENT, "Expected 'f32', 'f16', 'q8_0', 'q4_k' or 'q4_k_m' for weightType");
        if (o.Has("vocabPath") && !o.Get("vocabPath").IsUndefined()) s.vocab_path = args::string(o.Get("vocabPath"), "vocabPath");
        s.tiny_normal_tokens = (int32_t) args::opt_integer(o, "tinyNormalTokens", 5, 1, 4096);
        s.expert_vocab_pad   = (int32_t) args::opt_integer(o, "expertVocabPad", 0, 0, 128);
        s.amateur_vocab_pad  = (int32_t) args::opt_integer(o, "amateurVocabPad", 0, 0, 128);
        s.eos_like           = (int32_t) args::opt_integer(o, "eosLike", -1, -1, 1 << 30);
        auto * w = new MakePairWorker(info.Env(), s);
        Napi::Promise p = w->Promise();
        w->Queue();
        return p;
    });
}

Napi::Value SystemInfo(const Napi::CallbackInfo & info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("llamaSystemInfo", llama_print_system_info());
    o.Set("maxSequences", (double) kMaxSequences);
    o.Set("supportsGpuOffload", llama_supports_gpu_offload());
    o.Set("cpuVariant", backends::cpu_variant());
    o.Set("cpuModule", backends::cpu_module());
    o.Set("kernels", backends::cpu_kernels());
    return o;
}

// llama_backend_init/free are process-wide: once for the first environment, freed with the last one (a
// Worker that loads the library and exits must not tear down ggml under the main thread).
std::mutex g_backend_mutex;
int        g_backend_users = 0;

void backend_acquire() {
    std::lock_guard<std::mutex> lock(g_backend_mutex);
    if (g_backend_users++ == 0) llama_backend_init();
}

void backend_release() {
    std::lock_guard<std::mutex> lock(g_backend_mutex);
    if (--g_backend_users == 0) llama_backend_free();
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
    log_bridge::install();  // first: ggml logs while loading its backend modules
    try {
        backends::load();  // the addon does not load when no CPU backend fits this CPU
    } catch (const DuetError & e) {
        throw make_error(env, e.code(), std::string("llama-duet: ") + e.what());
    } catch (...) {
        throw error_from_current(env);
    }
    backend_acquire();
    env.AddCleanupHook([]() { backend_release(); });
    auto *         data    = new AddonData();
    Napi::Function model   = Model::Init(env);
    Napi::Function context = Context::Init(env);
    data->model_ctor       = Napi::Persistent(model);
    env.SetInstanceData<AddonData>(data);  // deleted with the environment
    exports.Set("Model", model);
    exports.Set("Context", context);
    exports.Set("loadModel", Napi::Function::New(env, LoadModel));
    exports.Set("checkCompatibility", Napi::Function::New(env, CheckCompatibility));
    exports.Set("readGguf", Napi::Function::New(env, ReadGguf));
    exports.Set("makePair", Napi::Function::New(env, MakePair));
    exports.Set("systemInfo", Napi::Function::New(env, SystemInfo));
    exports.Set("_simulateVerify", Napi::Function::New(env, testing::SimulateVerify));
    exports.Set("_simulateScd", Napi::Function::New(env, testing::SimulateScd));
    exports.Set("_contrastiveLogits", Napi::Function::New(env, testing::ContrastiveLogits));
    exports.Set("_softmax", Napi::Function::New(env, testing::Softmax));
    exports.Set("_draftLength", Napi::Function::New(env, testing::DraftLength));
    exports.Set("_kernelCheck", Napi::Function::New(env, testing::KernelCheck));
    exports.Set("_dsbdLayer", Napi::Function::New(env, testing::DsbdLayer));
    exports.Set("_dsbdWidth", Napi::Function::New(env, testing::DsbdWidth));
    exports.Set("_kernelBench", Napi::Function::New(env, testing::KernelBench));
    exports.Set("_attnCheck", Napi::Function::New(env, testing::AttnCheck));
    exports.Set("_memoryBandwidth", Napi::Function::New(env, testing::MemoryBandwidth));
    exports.Set("_computeRate", Napi::Function::New(env, testing::ComputeRate));
    // test export: the external memory the live models have reported to V8 (and not yet given back)
    exports.Set("_externalMemory", Napi::Function::New(env, [](const Napi::CallbackInfo & i) -> Napi::Value {
                    return Napi::Number::New(i.Env(), (double) reported_external.load());
                }));
    return exports;
}

}  // namespace duet

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return duet::Init(env, exports); }
NODE_API_MODULE(llama_duet, InitModule)
