// Strategy interface (style anchor: llama.cpp common/speculative.cpp begin/draft/accept).
//
// A strategy owns the decoding math; the GenerateWorker owns everything user-facing around it:
// EOS, stop strings, maxTokens, streaming, cancellation and timing. Per round:
//   begin(prompt)  once: prefill the expert (and the amateur where the strategy uses one)
//   step(out)      append ≥ 1 new tokens; a strategy may commit several per step (speculative)
//   room()         KV cells a step may use beyond the committed length (the worker stops with
//                  finishReason "context" instead of overflowing)
// Tokens past an EOS / stop string / maxTokens inside one step are discarded by the worker; the
// KV state after the final step is never reused (each generation starts from a reset sequence).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "llama.h"
#include "sampling/Distribution.h"
#include "sampling/Rng.h"

namespace duet {

class Evaluator;

enum class StrategyKind { GREEDY, SAMPLE };

struct GenerateConfig {
    StrategyKind                    kind = StrategyKind::GREEDY;
    std::vector<llama_token>        prompt;
    int32_t                         max_tokens = 128;
    distribution::SamplingParams    sampling;
    uint64_t                        seed = 0;
    std::vector<std::string>        stop;
};

// Counters a strategy fills; the worker adds timing and token counts.
struct StrategyStats {
    int64_t expert_passes  = 0;
    int64_t amateur_passes = 0;
};

class Strategy {
  public:
    virtual ~Strategy() = default;
    virtual void    begin(const std::vector<llama_token> & prompt) = 0;
    virtual void    step(std::vector<llama_token> & out)           = 0;
    virtual int32_t room() const                                   = 0;
    virtual int32_t committed() const                              = 0;  // tokens in the expert's sequence after step
    virtual void    stats(StrategyStats & s) const                 = 0;
};

// greedy / sample: the expert alone, one token per step.
std::unique_ptr<Strategy> make_plain(Evaluator & expert, const GenerateConfig & cfg, Rng & rng);

}  // namespace duet
