// Argument readers for N-API handlers: type and range checks that throw DuetError(INVALID_ARGUMENT).
// TypeScript validates everything first with user-facing messages; these are the cheap native re-checks
// (style: better-sqlite3 REQUIRE_ARGUMENT_*). They never coerce.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "napi/errors.h"

namespace duet::args {

[[noreturn]] inline void fail(const std::string & name, const std::string & expected) {
    throw DuetError(code::INVALID_ARGUMENT, "Expected " + expected + " for " + name);
}

inline Napi::Object object(const Napi::Value & v, const char * name) {
    if (!v.IsObject()) fail(name, "an object");
    return v.As<Napi::Object>();
}

inline std::string string(const Napi::Value & v, const char * name) {
    if (!v.IsString()) fail(name, "a string");
    return v.As<Napi::String>().Utf8Value();
}

inline double number(const Napi::Value & v, const char * name, double lo, double hi) {
    if (!v.IsNumber()) fail(name, "a number");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || d < lo || d > hi) {
        fail(name, "a number between " + std::to_string(lo) + " and " + std::to_string(hi));
    }
    return d;
}

inline int64_t integer(const Napi::Value & v, const char * name, int64_t lo, int64_t hi) {
    const double d = number(v, name, (double) lo, (double) hi);
    if (std::floor(d) != d) fail(name, "an integer");
    return (int64_t) d;
}

inline bool boolean(const Napi::Value & v, const char * name) {
    if (!v.IsBoolean()) fail(name, "a boolean");
    return v.As<Napi::Boolean>().Value();
}

// Optional field readers: `undefined` → fallback.
inline double opt_number(const Napi::Object & o, const char * key, double fallback, double lo, double hi) {
    Napi::Value v = o.Get(key);
    return v.IsUndefined() ? fallback : number(v, key, lo, hi);
}

inline int64_t opt_integer(const Napi::Object & o, const char * key, int64_t fallback, int64_t lo, int64_t hi) {
    Napi::Value v = o.Get(key);
    return v.IsUndefined() ? fallback : integer(v, key, lo, hi);
}

inline bool opt_boolean(const Napi::Object & o, const char * key, bool fallback) {
    Napi::Value v = o.Get(key);
    return v.IsUndefined() ? fallback : boolean(v, key);
}

// Int32Array of token ids, each checked against [0, n_vocab).
inline std::vector<int32_t> tokens(const Napi::Value & v, const char * name, int32_t n_vocab) {
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
        fail(name, "an Int32Array of token ids");
    }
    Napi::Int32Array arr = v.As<Napi::Int32Array>();
    std::vector<int32_t> out(arr.Data(), arr.Data() + arr.ElementLength());
    for (int32_t t : out) {
        if (t < 0 || t >= n_vocab) {
            fail(name, "token ids in [0, " + std::to_string(n_vocab) + ") (got " + std::to_string(t) + ")");
        }
    }
    return out;
}

inline std::vector<std::string> strings(const Napi::Value & v, const char * name) {
    if (!v.IsArray()) fail(name, "an array of strings");
    Napi::Array a = v.As<Napi::Array>();
    std::vector<std::string> out;
    out.reserve(a.Length());
    for (uint32_t i = 0; i < a.Length(); i++) out.push_back(string(a.Get(i), name));
    return out;
}

inline Napi::Int32Array to_int32_array(Napi::Env env, const std::vector<int32_t> & v) {
    Napi::Int32Array arr = Napi::Int32Array::New(env, v.size());
    std::copy(v.begin(), v.end(), arr.Data());
    return arr;
}

}  // namespace duet::args
