// Per-environment addon state and type-checked unwrapping of native objects.
//
// Every Node environment (the main thread and each worker_threads Worker) loads its own copy of the addon's
// JS bindings: constructors are per environment (napi instance data), never process-wide statics, which a
// Worker that loads the library and exits would leave dangling (an abort in v8::HandleScope on the next
// load in the main thread). Each wrapped object carries a napi type tag of its class, checked before any
// unwrap: a Model passed where a Context is expected is an InvalidArgumentError, not a wild cast.
#pragma once
#include <napi.h>

#include "napi/errors.h"

namespace duet {

struct AddonData {
    Napi::FunctionReference model_ctor;  // LoadModelWorker creates Models (Contexts are constructed from JS)
};

// requires: the addon's Init ran in this environment
inline AddonData & addon_data(Napi::Env env) {
    AddonData * d = env.GetInstanceData<AddonData>();
    if (!d) throw DuetError(code::NATIVE, "llama-duet is not initialised in this environment");
    return *d;
}

// One tag per wrapped class (values are arbitrary, fixed 128-bit ids).
inline constexpr napi_type_tag kModelTag   = { 0x6c6c616d61647565ULL, 0x4d6f64656c000001ULL };
inline constexpr napi_type_tag kContextTag = { 0x6c6c616d61647565ULL, 0x436f6e7465780002ULL };

// The wrapped T behind `v`, after checking its type tag; throws INVALID_ARGUMENT naming `what` otherwise.
template <typename T> T * unwrap(const Napi::Value & v, const napi_type_tag & tag, const char * what) {
    if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&tag)) {
        throw DuetError(code::INVALID_ARGUMENT, std::string("Expected a ") + what + " (a native object of llama-duet)");
    }
    T * p = Napi::ObjectWrap<T>::Unwrap(v.As<Napi::Object>());
    if (!p) throw DuetError(code::INVALID_ARGUMENT, std::string("Expected a live ") + what);
    return p;
}

}  // namespace duet
