// llama.cpp / ggml log callback. Logs go to stderr only when LLAMA_DUET_LOG=debug|info|warn|error is set;
// the last error/warning on each thread is kept so load failures can carry llama.cpp's own reason.
#pragma once
#include <string>

namespace duet::log_bridge {

void install();
// returns: the last error (or warning) line llama.cpp logged on this thread, then clears it
std::string take_last_error();

}  // namespace duet::log_bridge
