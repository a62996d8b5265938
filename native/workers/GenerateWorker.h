// One generation on a worker thread: the strategy loop, EOS / stop strings / maxTokens, streaming of
// { text, tokens } chunks to the JS thread in order (never drops one; workers/ThreadWorker.h: its own thread,
// not libuv's pool), cancellation by
// an atomic flag polled at step boundaries and inside llama_decode (abort callback).
#pragma once
#include <napi.h>

namespace duet {

class Context;

// returns { promise: Promise<result>, cancel(): void }
Napi::Value start_generate(Napi::Env env, Context * expert, Napi::Object expert_obj, Context * amateur, Napi::Object amateur_obj,
                           Napi::Object options, Napi::Function on_chunk);

}  // namespace duet
