// Strategy interface (style anchor: llama.cpp common/speculative.cpp begin/draft/accept).
//
// A strategy owns the decoding math; the GenerateWorker owns everything user-facing around it:
// EOS, stop strings, maxTokens, streaming, cancellation and timing. Per round:
//   begin(prompt)  once: prefill the expert (and the amateur where the strategy uses one)
//   step(out, max) append 1..max new tokens; a strategy may commit several per step (speculative)
//   room()         KV cells a step may use beyond the committed length (the worker stops with
//                  finishReason "context" instead of overflowing)
// Tokens past an EOS / stop string / maxTokens inside one step are discarded by the worker. begin()
// prefills through Evaluator::prefill: a shared generation may start on a parked sequence whose cells
// already hold part of the prompt (model/PrefixCache.h), and only the rest is decoded.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "llama.h"
#include "sampling/Contrastive.h"
#include "sampling/Distribution.h"
#include "sampling/Rng.h"

namespace duet {

class Evaluator;
class Model;
class Sequences;

enum class StrategyKind { GREEDY, SAMPLE, SPECULATIVE, CONTRASTIVE, SCD, BEAM, DSBD };

// beam search's stopping rule (HF generate(early_stopping=…)): see strategies/Beam.cpp
enum class EarlyStopping { NO, YES, NEVER };

struct GenerateConfig {
    StrategyKind                    kind = StrategyKind::GREEDY;
    std::vector<llama_token>        prompt;
    int32_t                         max_tokens = 128;
    distribution::SamplingParams    sampling;
    uint64_t                        seed = 0;
    std::vector<std::string>        stop;
    bool                            greedy       = true;  // temperature 0: exact-match paths
    int32_t                         draft_tokens = 4;     // γ (speculative, scd)
    float                           draft_confidence = 0.0f;  // stop drafting after a draft whose amateur top probability is below this
    bool                            adaptive_draft   = false; // HF schedule: all accepted → γ += 2, else γ −= 1 (1 ≤ γ ≤ 3·draft_tokens)
    int32_t                         speculate_up_to  = 1 << 30; // draft only while ≤ this many generations share the batch (else γ = 0)
    bool                            speculate_auto   = false;   // greedy requests sharing the batch: γ per round from measured pass costs (DraftLength.h)
    // contrastive family (ALGORITHMS.md §3, §5, §D)
    float alpha               = 0.1f;  // plausibility: keep s_e ≥ log α + max s_e (raw expert logits)
    float beta                = 0.5f;  // contrast weight: cd = (1+β)·s_e − β·s_a/τ_a
    float amateur_temperature = 1.0f;  // τ_a
    bool  amateur_sees_prompt = true;  // false: the amateur sees only the generated text (Li et al.)
    bool  bonus               = true;  // scd: delayed-drafting bonus token when every draft is accepted
    // beam
    int32_t       beams          = 4;      // W
    bool          beam_sample    = false;  // false: beam search (top-W); true: beam sampling (W i.i.d. draws from p_beam)
    float         length_penalty = 1.0f;   // score = logProb / length^lengthPenalty
    EarlyStopping early_stopping = EarlyStopping::NO;
    // dsbd (beams = W_L, draft_tokens = γ)
    int32_t draft_beams     = 4;      // W_S
    double  width_threshold = 0.7;    // t
    int32_t min_width       = 1;      // W_min
    bool    single_beam     = false;  // keep one beam between iterations
    bool    select_best     = false;  // singleBeam: the best-scoring output beam instead of the first (sampled) slot

    // n_amateur: the amateur's vocabulary size (ids past it are masked in the contrast)
    contrastive::Params contrast(int32_t n_amateur) const { return { alpha, beta, amateur_temperature, n_amateur }; }

    int32_t max_draft_tokens() const { return adaptive_draft ? std::min(64, 3 * draft_tokens) : draft_tokens; }
};

// One candidate of a beam strategy's result.
struct BeamResult {
    std::vector<llama_token> tokens;  // generated, the end-of-generation token excluded
    double                   log_prob = 0;  // Σ raw expert log-probs of the generated tokens (end-of-generation included)
    double                   score    = 0;  // log_prob / length^lengthPenalty
    bool                     finished = false;  // ended by an end-of-generation token or a stop string
};

// Counters a strategy fills; the worker adds timing and token counts.
struct StrategyStats {
    int64_t expert_passes  = 0;
    int64_t amateur_passes = 0;
    // speculative family
    int64_t              rounds   = 0;  // verify passes of the expert
    int64_t              drafted  = 0;
    int64_t              accepted = 0;
    std::vector<int64_t> drafted_by_depth;   // [γ] drafts proposed at depth d+1
    std::vector<int64_t> accepted_by_depth;  // [γ] drafts accepted at depth d+1
    double               draft_ms  = 0;
    double               verify_ms = 0;
    // scd: amateur entropy (nats) at accepted / rejected drafts
    double  entropy_accepted = 0, entropy_rejected = 0;
    int64_t n_entropy_accepted = 0, n_entropy_rejected = 0;
    // beam
    int64_t                 batch_tokens  = 0;  // cells decoded by the generation passes (prompt excluded)
    int64_t                 peak_kv_cells = 0;  // most KV cells held at once (prompt included)
    // dsbd
    std::vector<int64_t>    width_histogram;      // [w] verified layers that needed w acceptances
    int64_t                 forest_nodes_max = 0;  // most tokens in one verify pass
    std::vector<BeamResult> beams;              // best first
};

class Strategy {
  public:
    virtual ~Strategy() = default;
    virtual void    begin(const std::vector<llama_token> & prompt) = 0;
    virtual void    step(std::vector<llama_token> & out, int32_t max_new) = 0;
    virtual int32_t room() const                                   = 0;
    virtual void    stats(StrategyStats & s) const                 = 0;
    // A strategy that decides itself when the generation is over (beam: once the search ends) returns the
    // finish reason from then on; the worker ends with it unless the emitted tokens ended it first.
    virtual const char * ended() const { return nullptr; }
};

// greedy / sample: the expert alone, one token per step.
std::unique_ptr<Strategy> make_plain(Evaluator & expert, const GenerateConfig & cfg, Rng & rng);

// speculative / scd: the amateur drafts γ tokens, the expert verifies them in one pass (Leviathan/Chen;
// scd verifies against the contrastive distribution).
std::unique_ptr<Strategy> make_speculative(Evaluator & expert, Evaluator & amateur, const GenerateConfig & cfg, Rng & rng);

// contrastive: both models advance together, one token per step from the contrastive distribution.
std::unique_ptr<Strategy> make_contrastive(Evaluator & expert, Evaluator & amateur, const GenerateConfig & cfg, Rng & rng);

// beam search / beam sampling: W beams of the expert as KV sequences (sequence 0 and W − 1 lent by `pool`),
// advanced together, one llama_decode per step.
std::unique_ptr<Strategy> make_beam(Evaluator & expert, Sequences & pool, std::mutex & decode_lock, const Model & model, const GenerateConfig & cfg,
                                    Rng & rng);

// dsbd: draft beams of the amateur, one expert forest pass per iteration, layer-wise acceptance with dynamic width;
// slots (sequence ids) lent by both contexts' pools.
std::unique_ptr<Strategy> make_dsbd(Evaluator & expert, Evaluator & amateur, Sequences & expert_pool, Sequences & amateur_pool, const Model & model,
                                    const GenerateConfig & cfg, Rng & rng);

// Prefills both models for the pair strategies and returns the first pending token (the prompt's last,
// which neither has decoded). The expert gets the rest of the prompt; the amateur gets all of it, or
// (amateurSeesPrompt false, Li et al.) only BOS when the vocabulary adds one.
llama_token prefill_pair(Evaluator & expert, Evaluator & amateur, const std::vector<llama_token> & prompt, const GenerateConfig & cfg);

}  // namespace duet
