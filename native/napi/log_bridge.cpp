#include "napi/log_bridge.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "ggml.h"
#include "llama.h"

namespace duet::log_bridge {

namespace {
thread_local std::string last_error;
int                      threshold = 99;  // nothing printed by default

void callback(ggml_log_level level, const char * text, void *) {
    if (level == GGML_LOG_LEVEL_ERROR || level == GGML_LOG_LEVEL_WARN) {
        std::string line(text);
        while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
        if (!line.empty() && last_error.size() < 4096) last_error += (last_error.empty() ? "" : "; ") + line;
    }
    if ((int) level >= threshold || (level == GGML_LOG_LEVEL_CONT && threshold <= GGML_LOG_LEVEL_INFO)) {
        fputs(text, stderr);
    }
}
}  // namespace

void install() {
    static std::once_flag once;  // process-wide (every Node environment's Init calls it)
    std::call_once(once, []() {
    if (const char * env = std::getenv("LLAMA_DUET_LOG")) {
        if (!strcmp(env, "debug")) threshold = GGML_LOG_LEVEL_DEBUG;
        else if (!strcmp(env, "info")) threshold = GGML_LOG_LEVEL_INFO;
        else if (!strcmp(env, "warn")) threshold = GGML_LOG_LEVEL_WARN;
        else if (!strcmp(env, "error")) threshold = GGML_LOG_LEVEL_ERROR;
    }
    llama_log_set(callback, nullptr);
    });
}

std::string take_last_error() {
    std::string s;
    s.swap(last_error);
    return s;
}

}  // namespace duet::log_bridge
