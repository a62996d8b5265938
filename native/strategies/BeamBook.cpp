#include "strategies/BeamBook.h"

#include <algorithm>
#include <cmath>

#include "model/Model.h"

namespace duet {

bool BeamPath::extend(llama_token x, double logp, const Model & model) {
    log_prob += logp;
    length++;
    if (llama_vocab_is_eog(model.vocab(), x)) {
        eog    = x;
        reason = "eos";
        return true;
    }
    tokens.push_back(x);
    std::string ignored;
    if (text.push(model.piece(x), ignored)) {
        reason = "stop";
        return true;
    }
    return false;
}

double BeamBook::score(const BeamPath & p) const {
    return p.length > 0 ? p.log_prob / std::pow((double) p.length, (double) cfg_.length_penalty) : p.log_prob;
}

void BeamBook::add_finished(const BeamPath & p) {
    finished_.push_back(p);
    std::stable_sort(finished_.begin(), finished_.end(), [&](const BeamPath & a, const BeamPath & b) { return score(a) > score(b); });
    if ((int32_t) finished_.size() > width_) finished_.pop_back();
}

bool BeamBook::search_is_over(double best_live_log_prob, int32_t generated) const {
    if ((int32_t) finished_.size() < width_) return false;
    if (cfg_.early_stopping == EarlyStopping::YES) return true;
    const float  lp  = cfg_.length_penalty;
    const double len = cfg_.early_stopping == EarlyStopping::NEVER && lp > 0 ? (double) cfg_.max_tokens : (double) generated;
    return score(finished_.back()) >= best_live_log_prob / std::pow(len, (double) lp);
}

void BeamBook::emit_common_prefix(const std::vector<const BeamPath *> & live, std::vector<llama_token> & out) {
    if (live.empty()) return;
    const std::vector<llama_token> & ref = live[0]->tokens;
    size_t                           n   = ref.size();
    auto                             clip = [&](const std::vector<llama_token> & t) {
        size_t i = 0;
        while (i < n && i < t.size() && t[i] == ref[i]) i++;
        n = i;
    };
    for (const BeamPath * p : live) clip(p->tokens);
    for (const BeamPath & p : finished_) clip(p.tokens);
    for (size_t i = committed_; i < n; i++) out.push_back(ref[i]);
    committed_ = std::max(committed_, n);
}

void BeamBook::finish(const std::vector<const BeamPath *> & live, const char * end, std::vector<llama_token> & out) {
    const std::string why = end;
    std::vector<BeamPath> all = finished_;
    if (why == "length" || why == "context" || all.empty()) {
        for (const BeamPath * p : live) {
            all.push_back(*p);
            all.back().reason = why == "context" ? "context" : "length";
        }
    }
    std::stable_sort(all.begin(), all.end(), [&](const BeamPath & a, const BeamPath & b) { return score(a) > score(b); });
    if ((int32_t) all.size() > width_) all.erase(all.begin() + width_, all.end());
    for (const BeamPath & p : all) {
        BeamResult r;
        r.tokens   = p.tokens;
        r.log_prob = p.log_prob;
        r.score    = score(p);
        r.finished = p.eog >= 0 || std::string(p.reason ? p.reason : "") == "stop";
        results_.push_back(std::move(r));
    }
    if (all.empty()) {  // nothing at all (cannot happen with a live beam or a candidate): end as cut
        ended_ = "length";
        return;
    }
    const BeamPath & best = all.front();
    for (size_t i = committed_; i < best.tokens.size(); i++) out.push_back(best.tokens[i]);
    if (best.eog >= 0) out.push_back(best.eog);
    committed_ = best.tokens.size();
    ended_     = best.reason ? best.reason : "length";
}

int64_t distinct_cells(const std::vector<const std::vector<llama_token> *> & paths, size_t drop_last) {
    std::vector<const std::vector<llama_token> *> v = paths;
    std::sort(v.begin(), v.end(), [](auto * a, auto * b) { return *a < *b; });
    int64_t n = 0;
    for (size_t i = 0; i < v.size(); i++) {
        const size_t len = v[i]->size() > drop_last ? v[i]->size() - drop_last : 0;
        size_t       lcp = 0;
        if (i > 0) {
            const size_t prev = v[i - 1]->size() > drop_last ? v[i - 1]->size() - drop_last : 0;
            while (lcp < len && lcp < prev && (*v[i])[lcp] == (*v[i - 1])[lcp]) lcp++;
        }
        n += (int64_t) (len - lcp);
    }
    return n;
}

}  // namespace duet
