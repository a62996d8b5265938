// Plain decoding with the expert only: greedy = argmax of the raw logits; sample = one draw from the
// warped distribution (temperature → top-k → top-p → min-p). The token picked in step k is decoded
// lazily at the start of step k+1, so the final token is never evaluated for nothing.
#include "model/Evaluator.h"
#include "strategies/Strategy.h"

namespace duet {

namespace {

class Plain final : public Strategy {
  public:
    Plain(Evaluator & expert, const GenerateConfig & cfg, Rng & rng) : expert_(expert), cfg_(cfg), rng_(rng) {}

    void begin(const std::vector<llama_token> & prompt) override {
        expert_.prefill(prompt.data(), (int32_t) prompt.size(), true, logits_);
    }

    void step(std::vector<llama_token> & out, int32_t /*max_new*/) override {
        if (pending_ >= 0) expert_.decode(&pending_, 1, Evaluator::Rows::LAST, logits_);
        const int32_t n_vocab = expert_.n_vocab();
        llama_token   t;
        if (cfg_.greedy) {
            t = distribution::argmax(logits_.data(), n_vocab);
        } else {
            distribution::warp(logits_.data(), n_vocab, cfg_.sampling, probs_);
            t = distribution::sample(probs_.data(), n_vocab, rng_.uniform());
        }
        pending_ = t;
        out.push_back(t);
    }

    int32_t room() const override { return pending_ >= 0 ? 1 : 0; }
    void    stats(StrategyStats & s) const override { s.expert_passes = expert_.passes; }

  private:
    Evaluator &            expert_;
    const GenerateConfig & cfg_;
    Rng &                  rng_;
    std::vector<float>     logits_;  // [n_vocab] logits after the last decoded token
    std::vector<float>     probs_;   // [n_vocab] scratch
    llama_token            pending_ = -1;
};

}  // namespace

std::unique_ptr<Strategy> make_plain(Evaluator & expert, const GenerateConfig & cfg, Rng & rng) {
    return std::make_unique<Plain>(expert, cfg, rng);
}

}  // namespace duet
