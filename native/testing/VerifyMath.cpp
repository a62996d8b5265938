#include "testing/VerifyMath.h"

#include "sampling/Distribution.h"

#include <algorithm>
#include <cmath>

#include "forest/Verify.h"
#include "model/DraftLength.h"
#include "sampling/Contrastive.h"
#include "napi/args.h"
#include "napi/errors.h"

namespace duet::testing {

namespace {

std::vector<float> table(const Napi::Value & v, const char * name, int32_t V) {
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) args::fail(name, "a Float32Array");
    Napi::Float32Array a = v.As<Napi::Float32Array>();
    if ((int64_t) a.ElementLength() != (int64_t) (V + 1) * V) args::fail(name, "(V + 1) · V entries");
    return std::vector<float>(a.Data(), a.Data() + a.ElementLength());
}

}  // namespace

Napi::Value SimulateVerify(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        Napi::Object      o    = args::object(info[0], "options");
        const int32_t     V    = (int32_t) args::integer(o.Get("vocab"), "vocab", 2, 64);
        const std::string rule = args::string(o.Get("rule"), "rule");
        const auto        p    = table(o.Get("p"), "p", V);
        const auto        q    = table(o.Get("q"), "q", V);
        const auto        qd   = o.Get("qDraw").IsUndefined() ? q : table(o.Get("qDraw"), "qDraw", V);
        if (!o.Get("branching").IsArray()) args::fail("branching", "an array");
        Napi::Array          ba = o.Get("branching").As<Napi::Array>();
        std::vector<int32_t> branching;
        for (uint32_t i = 0; i < ba.Length(); i++) branching.push_back((int32_t) args::integer(ba.Get(i), "branching", 1, 8));
        const std::string draft  = args::string(o.Get("draft"), "draft");
        const int64_t     trials = args::integer(o.Get("trials"), "trials", 1, 10000000);
        Rng               rng((uint64_t) args::integer(o.Get("seed"), "seed", 0, (int64_t) 1 << 53));
        const bool        faulty = args::string(o.Get("fault"), "fault") == "residual-p";
        forest::Rule      r      = rule == "sample" ? forest::Rule::SAMPLE : rule == "target-only" ? forest::Rule::TARGET_ONLY : forest::Rule::GREEDY;

        // p and q rows are laws; the verifier takes logits, so pass log p
        std::vector<float> logp(p.size());
        for (size_t i = 0; i < p.size(); i++) logp[i] = p[i] > 0 ? std::log(p[i]) : -INFINITY;
        distribution::SamplingParams params;  // temperature 1, no truncation: the rows already are the laws

        std::vector<int32_t> joint((size_t) V * V, 0);
        int64_t              rounds = 0, accepted = 0;
        std::vector<int32_t> parent, tokens, emitted;
        std::vector<float>   w;
        for (int64_t trial = 0; trial < trials; trial++) {
            emitted.clear();
            while (emitted.size() < 2) {
                const int32_t last = emitted.empty() ? V : emitted.back();
                // draft the tree level by level: every node of a level gets branching[d] children
                parent.clear();
                tokens.clear();
                std::vector<int32_t> level{ -1 };
                for (int32_t b : branching) {
                    std::vector<int32_t> next_level;
                    for (int32_t u : level) {
                        const int32_t ctx = u < 0 ? last : tokens[u];
                        const float * qr  = qd.data() + (size_t) ctx * V;
                        w.assign(qr, qr + V);
                        for (int32_t c = 0; c < b; c++) {
                            int32_t x;
                            if (draft == "top") {
                                x = distribution::argmax(w.data(), V);
                                w[x] = -1.0f;
                            } else {
                                double s = 0;
                                for (float f : w) s += std::max(f, 0.0f);
                                double uu = rng.uniform() * s, acc = 0;
                                x = V - 1;
                                for (int32_t k = 0; k < V; k++) {
                                    acc += std::max(w[k], 0.0f);
                                    if (uu < acc && w[k] > 0) {
                                        x = k;
                                        break;
                                    }
                                }
                                if (draft == "without-replacement") w[x] = 0.0f;
                            }
                            parent.push_back(u);
                            tokens.push_back(x);
                            next_level.push_back((int32_t) tokens.size() - 1);
                        }
                    }
                    level.swap(next_level);
                }
                forest::TreeShape shape{ parent.data(), tokens.data(), (int32_t) tokens.size() };
                auto row = [&](int32_t u) { return logp.data() + (size_t) (u < 0 ? last : tokens[u]) * V; };
                auto qfn = [&](int32_t u) { return q.data() + (size_t) (parent[u] < 0 ? last : tokens[parent[u]]) * V; };
                const forest::Verdict v =
                    forest::verify(shape, V, row, qfn, r, params, rng, faulty ? forest::Fault::RESIDUAL_IS_P : forest::Fault::NONE);
                rounds++;
                accepted += (int64_t) v.path.size();
                for (int32_t n : v.path) emitted.push_back(tokens[n]);
                emitted.push_back(v.next);
            }
            joint[(size_t) emitted[0] * V + emitted[1]]++;
        }
        Napi::Object out = Napi::Object::New(info.Env());
        out.Set("joint", args::to_int32_array(info.Env(), joint));
        out.Set("rounds", (double) rounds);
        out.Set("accepted", (double) accepted);
        return out;
    });
}

Napi::Value SimulateScd(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        Napi::Object        o = args::object(info[0], "options");
        const int32_t       V = (int32_t) args::integer(o.Get("vocab"), "vocab", 2, 64);
        const auto          pe = table(o.Get("pe"), "pe", V);
        const auto          pa = table(o.Get("pa"), "pa", V);
        contrastive::Params cp{ (float) args::number(o.Get("alpha"), "alpha", 0, 1), (float) args::number(o.Get("beta"), "beta", 0, 100),
                                (float) args::number(o.Get("tauA"), "tauA", 1e-3, 100) };
        const int32_t     gamma  = (int32_t) args::integer(o.Get("gamma"), "gamma", 1, 16);
        const std::string bonus  = args::string(o.Get("bonus"), "bonus");
        const int64_t     trials = args::integer(o.Get("trials"), "trials", 1, 10000000);
        Rng               rng((uint64_t) args::integer(o.Get("seed"), "seed", 0, (int64_t) 1 << 53));
        std::vector<float> le(pe.size()), la(pa.size());
        for (size_t i = 0; i < pe.size(); i++) le[i] = std::log(pe[i]), la[i] = std::log(pa[i]);
        // cd rows per context, computed once
        std::vector<float> cd((size_t) (V + 1) * V), tmp;
        std::vector<bool>  outside((size_t) (V + 1) * V);
        for (int32_t r = 0; r <= V; r++) {
            contrastive::logits(le.data() + (size_t) r * V, la.data() + (size_t) r * V, V, cp, tmp);
            for (int32_t x = 0; x < V; x++) {
                cd[(size_t) r * V + x]      = tmp[x];
                outside[(size_t) r * V + x] = !std::isfinite(tmp[x]);
            }
        }
        distribution::SamplingParams params;
        std::vector<int32_t> joint((size_t) V * V, 0), parent(gamma), tokens(gamma), emitted;
        int64_t              out_drafted = 0, out_accepted = 0, rounds = 0, accepted = 0;
        for (int32_t i = 0; i < gamma; i++) parent[i] = i - 1;
        for (int64_t t = 0; t < trials; t++) {
            emitted.clear();
            while (emitted.size() < 2) {
                const int32_t last = emitted.empty() ? V : emitted.back();
                for (int32_t i = 0; i < gamma; i++) {
                    const int32_t ctx = i == 0 ? last : tokens[i - 1];
                    tokens[i]         = distribution::sample(pa.data() + (size_t) ctx * V, V, rng.uniform());
                }
                auto ctx_of = [&](int32_t u) { return u < 0 ? last : tokens[u]; };
                auto row    = [&](int32_t u) -> const float * {
                    const int32_t c = ctx_of(u);
                    if (u == gamma - 1 && bonus == "expert") return le.data() + (size_t) c * V;  // the bug under test
                    return cd.data() + (size_t) c * V;
                };
                auto qfn = [&](int32_t u) { return pa.data() + (size_t) ctx_of(parent[u]) * V; };
                forest::TreeShape     shape{ parent.data(), tokens.data(), gamma };
                const forest::Verdict v = forest::verify(shape, V, row, qfn, forest::Rule::SAMPLE, params, rng);
                const int32_t         k = (int32_t) v.path.size();
                for (int32_t i = 0; i < std::min(k + 1, gamma); i++) {
                    if (outside[(size_t) ctx_of(i - 1) * V + tokens[i]]) {
                        out_drafted++;
                        if (i < k) out_accepted++;
                    }
                }
                rounds++;
                accepted += k;
                for (int32_t i = 0; i < k; i++) emitted.push_back(tokens[i]);
                if (!(k == gamma && bonus == "none")) emitted.push_back(v.next);
            }
            joint[(size_t) emitted[0] * V + emitted[1]]++;
        }
        Napi::Object out = Napi::Object::New(info.Env());
        out.Set("joint", args::to_int32_array(info.Env(), joint));
        out.Set("outsideDrafted", (double) out_drafted);
        out.Set("outsideAccepted", (double) out_accepted);
        out.Set("rounds", (double) rounds);
        out.Set("accepted", (double) accepted);
        return out;
    });
}

Napi::Value ContrastiveLogits(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        auto f32 = [](const Napi::Value & v, const char * name) {
            if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) args::fail(name, "a Float32Array");
            return v.As<Napi::Float32Array>();
        };
        Napi::Float32Array se = f32(info[0], "se"), sa = f32(info[1], "sa");
        if (se.ElementLength() != sa.ElementLength() || se.ElementLength() == 0) args::fail("sa", "the length of se");
        contrastive::Params p{ (float) args::number(info[2], "alpha", 0, 1), (float) args::number(info[3], "beta", 0, 1e6),
                               (float) args::number(info[4], "tauA", 1e-6, 1e6) };
        std::vector<float> cd;
        contrastive::logits(se.Data(), sa.Data(), (int32_t) se.ElementLength(), p, cd);
        Napi::Float32Array out = Napi::Float32Array::New(info.Env(), cd.size());
        std::copy(cd.begin(), cd.end(), out.Data());
        return out;
    });
}

Napi::Value Softmax(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) args::fail("logits", "a Float32Array");
        Napi::Float32Array logits = info[0].As<Napi::Float32Array>();
        const int32_t      n      = (int32_t) logits.ElementLength();
        if (n == 0) args::fail("logits", "a non-empty Float32Array");
        distribution::SamplingParams sp;
        sp.temperature = (float) args::number(info[1], "temperature", 1e-3, 1e3);
        std::vector<float> probs;
        distribution::warp(logits.Data(), n, sp, probs);
        Napi::Object       out = Napi::Object::New(info.Env());
        Napi::Float32Array p   = Napi::Float32Array::New(info.Env(), probs.size());
        std::copy(probs.begin(), probs.end(), p.Data());
        out.Set("probs", p);
        out.Set("logsumexp", distribution::logsumexp(logits.Data(), n));
        return out;
    });
}

Napi::Value DraftLength(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        Napi::Object o  = args::object(info[0], "options");
        auto         ms = [&](const char * name) {
            const Napi::Value v = o.Get(name);
            if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) args::fail(name, "a Float64Array");
            Napi::Float64Array a = v.As<Napi::Float64Array>();
            if (a.ElementLength() < 2) args::fail(name, "at least 2 entries");
            return std::vector<double>(a.Data(), a.Data() + a.ElementLength());
        };
        const std::vector<double> te = ms("expertMs"), ta = ms("amateurMs"), ge = ms("expertGapMs"), ga = ms("amateurGapMs");
        auto at = [](const std::vector<double> & t, int32_t rows) { return t[(size_t) std::min<int64_t>(rows, (int64_t) t.size() - 1)]; };
        const int32_t g = draft_length_for_load(
            args::number(o.Get("alpha"), "alpha", 0, 1), (int32_t) args::integer(o.Get("n"), "n", 1, 256),
            (int32_t) args::integer(o.Get("gammaMax"), "gammaMax", 0, 64), args::boolean(o.Get("scd"), "scd"),
            [&](int32_t r) { return at(te, r); }, [&](int32_t r) { return at(ta, r); }, [&](int32_t r) { return at(ge, r); },
            [&](int32_t r) { return at(ga, r); });
        return Napi::Number::New(info.Env(), g);
    });
}

}  // namespace duet::testing
