// Stable error codes shared with lib/errors.ts, and the one exception type the native layer throws.
// Every N-API entry point converts DuetError / std::exception / (...) into a JS Error carrying `code`.
#pragma once
#include <napi.h>

#include <stdexcept>
#include <string>

namespace duet {

namespace code {
inline constexpr const char * INVALID_ARGUMENT        = "ERR_LLAMA_DUET_INVALID_ARGUMENT";
inline constexpr const char * DISPOSED                = "ERR_LLAMA_DUET_DISPOSED";
inline constexpr const char * BUSY                    = "ERR_LLAMA_DUET_BUSY";
inline constexpr const char * MODEL_NOT_FOUND         = "ERR_LLAMA_DUET_MODEL_NOT_FOUND";
inline constexpr const char * NOT_GGUF                = "ERR_LLAMA_DUET_NOT_GGUF";
inline constexpr const char * CORRUPT_GGUF            = "ERR_LLAMA_DUET_CORRUPT_GGUF";
inline constexpr const char * UNSUPPORTED_ARCHITECTURE = "ERR_LLAMA_DUET_UNSUPPORTED_ARCHITECTURE";
inline constexpr const char * MODEL_LOAD_FAILED       = "ERR_LLAMA_DUET_MODEL_LOAD_FAILED";
inline constexpr const char * INCOMPATIBLE_MODELS     = "ERR_LLAMA_DUET_INCOMPATIBLE_MODELS";
inline constexpr const char * CONTEXT_CREATE_FAILED   = "ERR_LLAMA_DUET_CONTEXT_CREATE_FAILED";
inline constexpr const char * CONTEXT_OVERFLOW        = "ERR_LLAMA_DUET_CONTEXT_OVERFLOW";
inline constexpr const char * DECODE_FAILED           = "ERR_LLAMA_DUET_DECODE_FAILED";
inline constexpr const char * ABORTED                 = "ERR_LLAMA_DUET_ABORTED";
inline constexpr const char * KV_FAILED               = "ERR_LLAMA_DUET_KV_FAILED";
inline constexpr const char * IO                      = "ERR_LLAMA_DUET_IO";
inline constexpr const char * NATIVE                  = "ERR_LLAMA_DUET_NATIVE";
}  // namespace code

// The single exception type of the native layer: a stable code plus a readable message.
class DuetError : public std::runtime_error {
  public:
    DuetError(const char * code, const std::string & message) : std::runtime_error(message), code_(code) {}

    const char * code() const { return code_; }

  private:
    const char * code_;
};

inline Napi::Error make_error(Napi::Env env, const char * code, const std::string & message) {
    Napi::Error err = Napi::Error::New(env, message);
    err.Set("code", Napi::String::New(env, code));
    return err;
}

// Converts the current C++ exception into a JS error (call inside a catch block).
inline Napi::Error error_from_current(Napi::Env env) {
    try {
        throw;
    } catch (const Napi::Error & e) {
        return e;
    } catch (const DuetError & e) {
        return make_error(env, e.code(), e.what());
    } catch (const std::exception & e) {
        return make_error(env, code::NATIVE, std::string("native error: ") + e.what());
    } catch (...) {
        return make_error(env, code::NATIVE, "unknown native error");
    }
}

// Wraps a synchronous N-API handler so no C++ exception escapes into V8 untyped.
template <typename F> Napi::Value guarded(const Napi::CallbackInfo & info, F && fn) {
    try {
        return fn();
    } catch (...) {
        error_from_current(info.Env()).ThrowAsJavaScriptException();
        return info.Env().Undefined();
    }
}

}  // namespace duet
