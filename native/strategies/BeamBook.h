// The bookkeeping shared by the beam strategies (`beam`, `dsbd`): a beam's path with its raw expert
// log-prob and its text (stop strings), the W best finished candidates, HF's stopping rules, streaming of
// the common prefix and the final answer. The decoding (which children, which KV cells) is each strategy's.
#pragma once
#include <string>
#include <vector>

#include "llama.h"
#include "strategies/Strategy.h"
#include "workers/TextAssembler.h"

namespace duet {

class Model;

struct BeamPath {
    std::vector<llama_token> tokens;            // generated (the end-of-generation token excluded)
    double                   log_prob = 0;      // Σ raw expert log p of every generated token, end-of-generation included
    int32_t                  length   = 0;      // tokens scored (end-of-generation included)
    TextAssembler            text;              // the path's text with the stop strings applied
    llama_token              eog    = -1;       // finished by an end-of-generation token: that token
    const char *             reason = nullptr;  // "eos" | "stop" once finished; "length" | "context" for a live path at the end

    explicit BeamPath(const std::vector<std::string> & stops) : text(stops) {}

    // Appends x (raw expert log-prob logp). returns: true when the path finished: x ends generation (not
    // appended to tokens) or the text completed a stop string.
    bool extend(llama_token x, double logp, const Model & model);
    bool finished() const { return reason != nullptr; }
};

class BeamBook {
  public:
    BeamBook(const GenerateConfig & cfg, int32_t width) : cfg_(cfg), width_(width) {}

    // logProb / length^lengthPenalty
    double score(const BeamPath & p) const;

    // keeps the W best finished candidates
    void add_finished(const BeamPath & p);
    int32_t n_finished() const { return (int32_t) finished_.size(); }

    // HF BeamHypotheses.is_done, with W finished: earlyStopping true → over; false → no live beam (best
    // live logProb at `generated` tokens) can beat the worst finished; 'never' → not even at maxTokens
    bool search_is_over(double best_live_log_prob, int32_t generated) const;

    // Emits the growth of the common prefix of the live paths and the finished candidates.
    void emit_common_prefix(const std::vector<const BeamPath *> & live, std::vector<llama_token> & out);

    // Ends the search (end: "finished", "length" or "context"): the candidates are the finished ones, plus
    // the live paths when the search was cut (length, context) or nothing finished. Emits the rest of the
    // best one (and its end-of-generation token) and keeps the W best as the results.
    void finish(const std::vector<const BeamPath *> & live, const char * end, std::vector<llama_token> & out);

    const char *                    ended() const { return ended_; }
    const std::vector<BeamResult> & results() const { return results_; }

  private:
    const GenerateConfig &  cfg_;
    const int32_t           width_;
    std::vector<BeamPath>   finished_;  // best first
    std::vector<BeamResult> results_;
    size_t                  committed_ = 0;
    const char *            ended_     = nullptr;
};

// KV cells the generated tokens of `paths` occupy: the nodes of their prefix trie (each path's first
// `drop_last` tokens counted, when not every token is decoded)
int64_t distinct_cells(const std::vector<const std::vector<llama_token> *> & paths, size_t drop_last = 0);

}  // namespace duet
