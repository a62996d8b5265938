// ObjectWrap over llama_model: async load (LoadModelWorker), vocabulary, tokenize / detokenize.
#pragma once
#include <napi.h>

#include <atomic>
#include <string>
#include <vector>

#include "llama.h"

namespace duet {

// Bytes the live models have reported to V8 through AdjustExternalMemory (all environments); a test export.
extern std::atomic<int64_t> reported_external;

class Model : public Napi::ObjectWrap<Model> {
  public:
    static Napi::Function Init(Napi::Env env);  // the class; its constructor is kept in the env's AddonData

    explicit Model(const Napi::CallbackInfo & info);
    ~Model() override;

    // requires: not disposed (throws DuetError DISPOSED)
    llama_model *       get() const;
    const llama_vocab * vocab() const;
    int32_t             n_vocab() const { return n_vocab_; }

    // detokenize helper used by workers: the piece of one token (special tokens not rendered)
    std::string piece(llama_token token) const;

    std::atomic<int> contexts{ 0 };  // live contexts created from this model

  private:
    Napi::Value Tokenize(const Napi::CallbackInfo & info);
    Napi::Value Detokenize(const Napi::CallbackInfo & info);
    Napi::Value ApplyChatTemplate(const Napi::CallbackInfo & info);
    Napi::Value Info(const Napi::CallbackInfo & info);
    Napi::Value Dispose(const Napi::CallbackInfo & info);

    void free_model(Napi::Env env);  // frees the weights and gives V8 back the external-memory hint

    llama_model *       model_ = nullptr;
    int64_t             external_ = 0;  // bytes reported with AdjustExternalMemory
    bool                mapped_ = false;  // loaded through mmap (see LoadParams::use_mmap)
    const llama_vocab * vocab_ = nullptr;
    int32_t             n_vocab_ = 0;
};

// loadModel(path, { gpuLayers, useMmap }, onProgress(fraction)) → { promise: Promise<Model>, abort() }
Napi::Value LoadModel(const Napi::CallbackInfo & info);

// checkCompatibility(expert, amateur) → null | reason (llama.cpp's speculative vocab rules)
Napi::Value CheckCompatibility(const Napi::CallbackInfo & info);

}  // namespace duet
