// Contrastive decoding (Li et al. 2022; O'Brien & Lewis 2023; ALGORITHMS.md §3, §D): every step takes
// the expert's and the amateur's logits at the same prefix (both contexts advance together) and emits
// one token from cd = (1+β)·s_e − β·s_a/τ_a over V_α = {s_e ≥ log α + max s_e}: argmax when greedy,
// otherwise a draw from warp(cd) (temperature T, then top-k → top-p → min-p on the contrastive law).
// The pending token (the prompt's last, then each emitted token) is decoded by both at the next step.
#include "model/Evaluator.h"
#include "sampling/Contrastive.h"
#include "strategies/Strategy.h"

namespace duet {

llama_token prefill_pair(Evaluator & expert, Evaluator & amateur, const std::vector<llama_token> & prompt, const GenerateConfig & cfg) {
    std::vector<float> scratch;
    const int32_t      n = (int32_t) prompt.size();
    expert.prefill(prompt.data(), n - 1, false, scratch);  // n − 1 ≥ 0 tokens: what a parked prefix lacks
    const llama_vocab * vocab = llama_model_get_vocab(llama_get_model(amateur.ctx()));
    std::vector<llama_token> seen;
    if (cfg.amateur_sees_prompt) seen.assign(prompt.begin(), prompt.end() - 1);
    else if (n > 1 && llama_vocab_get_add_bos(vocab) && llama_vocab_bos(vocab) >= 0) seen.assign(1, llama_vocab_bos(vocab));
    amateur.prefill(seen.data(), (int32_t) seen.size(), false, scratch);
    return prompt.back();
}

namespace {

class Contrastive final : public Strategy {
  public:
    Contrastive(Evaluator & expert, Evaluator & amateur, const GenerateConfig & cfg, Rng & rng)
        : expert_(expert), amateur_(amateur), cfg_(cfg), rng_(rng), params_(cfg.contrast(amateur.n_vocab())) {}

    void begin(const std::vector<llama_token> & prompt) override { pending_ = prefill_pair(expert_, amateur_, prompt, cfg_); }

    int32_t room() const override { return 1; }

    void step(std::vector<llama_token> & out, int32_t) override {
        expert_.decode(&pending_, 1, Evaluator::Rows::LAST, se_);
        amateur_.decode(&pending_, 1, Evaluator::Rows::LAST, sa_);
        contrastive::logits(se_.data(), sa_.data(), expert_.n_vocab(), params_, cd_);
        if (cfg_.greedy) {
            pending_ = distribution::argmax(cd_.data(), expert_.n_vocab());
        } else {
            distribution::warp(cd_.data(), expert_.n_vocab(), cfg_.sampling, probs_);
            pending_ = distribution::sample(probs_.data(), expert_.n_vocab(), rng_.uniform());
        }
        out.push_back(pending_);
    }

    void stats(StrategyStats & s) const override {
        s.expert_passes  = expert_.passes;
        s.amateur_passes = amateur_.passes;
    }

  private:
    Evaluator &                expert_;
    Evaluator &                amateur_;
    const GenerateConfig &     cfg_;
    Rng &                      rng_;
    const contrastive::Params  params_;
    llama_token                pending_ = -1;
    std::vector<float>         se_, sa_, cd_, probs_;
};

}  // namespace

std::unique_ptr<Strategy> make_contrastive(Evaluator & expert, Evaluator & amateur, const GenerateConfig & cfg, Rng & rng) {
    return std::make_unique<Contrastive>(expert, amateur, cfg, rng);
}

}  // namespace duet
