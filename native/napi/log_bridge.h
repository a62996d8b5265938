// llama.cpp / ggml log callback. Logs go to stderr only when LLAMA_DUET_LOG=debug|info|warn|error is set;
// the errors/warnings logged on each thread since the last take are kept so load failures can carry llama.cpp's own reason.
#pragma once
#include <string>

namespace duet::log_bridge {

void install();
// returns: the error/warning lines llama.cpp logged on this thread since the last call ('; '-joined), then clears them
std::string take_last_error();

}  // namespace duet::log_bridge
