#include "model/Backends.h"

#include <dirent.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "napi/errors.h"

#ifndef GGML_BACKEND_DL
#    include "ggml-cpu.h"
#endif

namespace duet::backends {

namespace {

std::once_flag g_once;
std::string    g_error;  // set when load() failed (rethrown by every later call)
std::string    g_variant = LLAMA_DUET_CPU_BUILD;
std::string    g_module  = "built-in";

using threadpool_new_fn  = ggml_threadpool * (*) (ggml_threadpool_params *);
using threadpool_free_fn = void (*)(ggml_threadpool *);
threadpool_new_fn  g_tp_new  = nullptr;
threadpool_free_fn g_tp_free = nullptr;

#ifdef GGML_BACKEND_DL
// The folder holding this addon (its modules sit beside it).
std::string addon_dir() {
    Dl_info info{};
    if (dladdr((void *) &addon_dir, &info) == 0 || info.dli_fname == nullptr) return ".";
    std::string path = info.dli_fname;
    const size_t slash = path.rfind('/');
    return slash == std::string::npos ? "." : path.substr(0, slash);
}

// ggml_backend_score() of a module: 0 when this CPU lacks an instruction set it was compiled for.
int module_score(const std::string & path) {
    void * h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) return -1;
    int  score = -1;
    auto fn    = (int (*)()) dlsym(h, "ggml_backend_score");
    if (fn) score = fn();
    dlclose(h);
    return score;
}

bool uses_amx(const std::string & variant) { return variant.find("sapphirerapids") != std::string::npos; }

void load_modules() {
    const std::string dir    = addon_dir();
    const char *      forced = std::getenv("LLAMA_DUET_CPU_VARIANT");
    const char *      amx    = std::getenv("LLAMA_DUET_AMX");
    const bool        no_amx = amx && (std::strcmp(amx, "0") == 0 || std::strcmp(amx, "OFF") == 0 || std::strcmp(amx, "false") == 0);
    const std::string prefix = "libggml-cpu-", suffix = ".so";
    struct Candidate {
        std::string variant, path;
        int         score;
    };
    std::vector<Candidate> found;
    bool                   has_cuda = false;
    if (DIR * d = opendir(dir.c_str())) {
        while (dirent * e = readdir(d)) {
            const std::string name = e->d_name;
            if (name == "libggml-cuda.so") has_cuda = true;
            if (name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
                name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
                continue;
            }
            const std::string variant = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
            found.push_back({ variant, dir + "/" + name, 0 });
        }
        closedir(d);
    }
    if (found.empty()) throw DuetError(code::NATIVE, "no ggml CPU backend module (libggml-cpu-*.so) found beside the addon in " + dir);
    std::sort(found.begin(), found.end(), [](const Candidate & a, const Candidate & b) { return a.variant < b.variant; });
    const Candidate * best = nullptr;
    std::string       names;
    for (Candidate & c : found) {
        names += (names.empty() ? "" : ", ") + c.variant;
        if (forced && c.variant != forced) continue;
        if (!forced && no_amx && uses_amx(c.variant)) continue;
        c.score = module_score(c.path);
        if (c.score > 0 && (!best || c.score > best->score)) best = &c;
    }
    if (!best) {
        if (forced) {
            throw DuetError(code::NATIVE, std::string("LLAMA_DUET_CPU_VARIANT=") + forced +
                                              (std::any_of(found.begin(), found.end(), [&](const Candidate & c) { return c.variant == forced; })
                                                   ? " needs instructions this CPU does not have"
                                                   : " is not one of the shipped variants (" + names + ")"));
        }
        throw DuetError(code::NATIVE, "none of the shipped CPU backends (" + names + ") runs on this CPU");
    }
    if (!ggml_backend_load(best->path.c_str())) throw DuetError(code::NATIVE, "ggml could not load " + best->path);
    g_variant = best->variant;
    g_module  = best->path;
    if (has_cuda) ggml_backend_load((dir + "/libggml-cuda.so").c_str());  // optional: no GPU, no driver → not registered
    ggml_backend_reg_t cpu = ggml_backend_reg_by_name("CPU");
    if (!cpu) throw DuetError(code::NATIVE, "the CPU backend did not register");
    g_tp_new  = (threadpool_new_fn) ggml_backend_reg_get_proc_address(cpu, "ggml_threadpool_new");
    g_tp_free = (threadpool_free_fn) ggml_backend_reg_get_proc_address(cpu, "ggml_threadpool_free");
    if (!g_tp_new || !g_tp_free) throw DuetError(code::NATIVE, "the CPU backend module exports no threadpool API");
}
#endif

}  // namespace

void load() {
    std::call_once(g_once, []() {
#ifdef GGML_BACKEND_DL
        try {
            load_modules();
        } catch (const std::exception & e) {
            g_error = e.what();
        }
#else
        g_tp_new  = &ggml_threadpool_new;
        g_tp_free = &ggml_threadpool_free;
#endif
    });
    if (!g_error.empty()) throw DuetError(code::NATIVE, g_error);
}

const std::string & cpu_variant() { return g_variant; }

const std::string & cpu_module() { return g_module; }

std::string cpu_kernels() {
    load();
    ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    if (cpu == nullptr) return "unavailable";
    auto describe = (const char * (*) ()) ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(cpu), "llama_duet_kernels");
    return describe != nullptr ? describe() : "unavailable";
}

bool cpu_kernels_run() {
    const std::string k = cpu_kernels();
    return k != "off" && k != "none" && k != "unavailable";
}

ggml_backend_buffer_type_t cpu_extra_buffer_type(const char * name) {
    load();
    ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    if (cpu == nullptr) return nullptr;
    auto get_extra = (ggml_backend_dev_get_extra_bufts_t) ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(cpu), "ggml_backend_dev_get_extra_bufts");
    if (get_extra == nullptr) return nullptr;
    for (ggml_backend_buffer_type_t * b = get_extra(cpu); b != nullptr && *b != nullptr; ++b) {
        if (std::strcmp(ggml_backend_buft_name(*b), name) == 0) return *b;
    }
    return nullptr;
}

ggml_threadpool * threadpool_new(int n_threads) {
    load();
    ggml_threadpool_params p = ggml_threadpool_params_default(n_threads);
    return g_tp_new(&p);
}

void threadpool_free(ggml_threadpool * pool) {
    if (pool && g_tp_free) g_tp_free(pool);
}

}  // namespace duet::backends
