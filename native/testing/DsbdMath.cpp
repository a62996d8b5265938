#include "testing/DsbdMath.h"

#include <cmath>

#include "napi/args.h"
#include "napi/errors.h"
#include "sampling/Dsbd.h"

namespace duet::testing {

namespace {

std::vector<double> dist(const Napi::Value & v, const char * name) {
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) args::fail(name, "a Float64Array");
    Napi::Float64Array a = v.As<Napi::Float64Array>();
    if (a.ElementLength() < 1 || a.ElementLength() > 4096) args::fail(name, "1..4096 entries");
    std::vector<double> out(a.Data(), a.Data() + a.ElementLength());
    double              z = 0;
    for (double x : out) {
        if (!(x >= 0) || !std::isfinite(x)) args::fail(name, "non-negative finite entries");
        z += x;
    }
    if (std::fabs(z - 1) > 1e-9) args::fail(name, "entries summing to 1");
    return out;
}

Napi::Float64Array f64(Napi::Env env, const std::vector<double> & v) {
    Napi::Float64Array a = Napi::Float64Array::New(env, v.size());
    for (size_t i = 0; i < v.size(); ++i) a[i] = v[i];
    return a;
}

}  // namespace

Napi::Value DsbdLayer(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        Napi::Object        o     = args::object(info[0], "options");
        const auto          p     = dist(o.Get("p"), "p");
        const auto          q     = dist(o.Get("q"), "q");
        const int32_t       n     = (int32_t) p.size();
        if ((int32_t) q.size() != n) args::fail("q", "as many entries as p");
        const int32_t       ws     = (int32_t) args::integer(o.Get("draftBeams"), "draftBeams", 1, 64);
        const int32_t       width  = (int32_t) args::integer(o.Get("width"), "width", 1, 64);
        const int32_t       need   = (int32_t) args::integer(o.Get("need"), "need", 1, width);
        const std::string   drafts = args::string(o.Get("drafts"), "drafts");
        if (drafts != "iid" && drafts != "without-replacement") args::fail("drafts", "'iid' or 'without-replacement'");
        const int64_t       trials = args::integer(o.Get("trials"), "trials", 1, 10000000);
        Rng                 rng((uint64_t) args::integer(o.Get("seed"), "seed", 0, (int64_t) 1 << 53));
        std::vector<double> pair((size_t) n * n), first((size_t) n), accepted((size_t) ws + 1);
        double              passed = 0;
        std::vector<int32_t> d;
        for (int64_t t = 0; t < trials; ++t) {
            d.clear();
            if (drafts == "iid") {
                for (int32_t i = 0; i < ws; ++i) d.push_back(dsbd::draw(q, rng));
            } else {
                std::vector<double> left = q;
                for (int32_t i = 0; i < ws; ++i) {
                    double z = 0;
                    for (double x : left) z += x;
                    if (!(z > 0)) break;
                    for (double & x : left) x /= z;
                    const int32_t x = dsbd::draw(left, rng);
                    d.push_back(x);
                    left[(size_t) x] = 0;
                }
            }
            const dsbd::LayerOut r = dsbd::verify_layer(p, q, d, need, width, rng);
            first[(size_t) r.beams[0]] += 1;
            if (r.beams.size() >= 2) pair[(size_t) r.beams[0] * n + r.beams[1]] += 1;
            accepted[(size_t) r.accepted] += 1;
            passed += r.passed ? 1 : 0;
        }
        Napi::Object out = Napi::Object::New(info.Env());
        out.Set("pair", f64(info.Env(), pair));
        out.Set("first", f64(info.Env(), first));
        out.Set("accepted", f64(info.Env(), accepted));
        out.Set("passed", passed);
        return out;
    });
}

Napi::Value DsbdWidth(const Napi::CallbackInfo & info) {
    return guarded(info, [&]() -> Napi::Value {
        Napi::Object  o     = args::object(info[0], "options");
        const auto    p     = dist(o.Get("p"), "p");
        const auto    q     = dist(o.Get("q"), "q");
        if (q.size() != p.size()) args::fail("q", "as many entries as p");
        const int32_t m     = (int32_t) args::integer(o.Get("m"), "m", 1, 64);
        const double  t     = args::number(o.Get("t"), "t", 1e-9, 1.0);
        const int32_t w_min = (int32_t) args::integer(o.Get("minWidth"), "minWidth", 1, 64);
        const auto    alpha = dsbd::acceptance_sequence(p, q, m);
        const auto    table = dsbd::acceptance_counts(alpha);
        Napi::Object  out   = Napi::Object::New(info.Env());
        out.Set("alpha", f64(info.Env(), alpha));
        out.Set("counts", f64(info.Env(), table[(size_t) m]));
        out.Set("width", dsbd::width(table[(size_t) m], t, w_min));
        return out;
    });
}

}  // namespace duet::testing
