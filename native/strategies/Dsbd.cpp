// DSBD — Dynamic-Width Speculative Beam Decoding (Qin et al., AAAI 2025; ALGORITHMS.md §6 with the errata of
// §6.6 and the decisions of §D; issue 14 §2).
//
// Every iteration starts from the input beams (stems: distinct paths with a multiplicity, each with its last
// token pending, i.e. not decoded by either model) and:
//   1. draft   — the amateur grows a draft trie γ layers deep: layer l draws W_S children i.i.d. from its
//                own beam joint q^{(l)}(u, x) ∝ exp(A_u)·q_T(x | u) over the live layer-(l−1) nodes u (A_u: the
//                input beam's expert score plus the raw amateur log-probs since; identical drafts are one trie
//                node with a multiplicity), one amateur llama_decode per layer over all of that layer's nodes
//   2. verify  — ONE expert llama_decode over the whole forest (every stem's pending token and every live draft
//                node, tree attention through sequence-id sets in the unified KV cache)
//   3. accept  — layer by layer: p^{(l)}(u, x) ∝ m_u·exp(S_u)·p_T(x | u) over the surviving parents u (S_u raw
//                expert log-probs, m_u their multiplicity), warped on the joint; the width rule W_l of §6.3 sets
//                how many drafts the layer needs (sampling/Dsbd.h: width); verify_layer tests the drafts in draw
//                order with p'/q, resetting p' after each acceptance. A layer that gets W_l acceptances passes:
//                its accepted drafts are the next layer's parents. The first layer that does not, and otherwise
//                layer γ+1 (drawn from p^{(γ+1)}), gives the iteration's W_L output beams.
//   4. commit  — each output beam's parent path stays in both caches (shared cells: seq_cp), its token becomes
//                pending; every other forest cell is freed.
// Output beams are i.i.d. p_beam slots at each layer, so the beam tuples follow with-replacement beam sampling
// (the `beam` strategy with sample: true) with a width schedule chosen layer by layer; end-of-generation and
// stop strings finish a beam as in `beam`. singleBeam keeps one output beam per iteration (select 'sample':
// the first output slot, itself p_beam-distributed; 'best': the best-scoring output beam): the cache then
// holds one path plus the transient forest, as speculative decoding does.
//
// Temperature 0 (documented deterministic rule): beam search of width W_L (the `beam` strategy with
// sample: false, HF rules) accelerated by the forest: the amateur drafts by beam search of width W_S, and
// the expert's beam-search step at each layer continues into the next layer while every new beam is a draft
// node it has already scored; the first layer where one is not ends the iteration with that step's beams.
// Its output equals `beam`'s (up to near-ties between batched and one-token passes).
//
// KV: each trie node has a slot (a sequence id of each context) whose sequence holds its path: the first child
// inherits its parent's slot, a further child takes a free slot sharing the parent's cells (seq_cp up to the
// child's position); in the expert's single forest pass a node's cell carries the ids of every slot in its
// subtree. Slots needed at once ≤ W_L + (W_S − 1)·γ: a layer's ≤ W_S new nodes take a new slot except the first
// child of each parent (sequence 0 and ones lent by each context's pool; singleBeam: 1 + (W_S − 1)·γ).
// RNG order per iteration (sampling): W_S uniforms per draft layer, then verify_layer's uniforms layer by
// layer, then the output draws.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>

#include "forest/Sequences.h"
#include "model/Batch.h"
#include "model/Evaluator.h"
#include "model/Model.h"
#include "napi/errors.h"
#include "sampling/Beam.h"
#include "sampling/Dsbd.h"
#include "strategies/BeamBook.h"
#include "strategies/Strategy.h"

namespace duet {

namespace {

using Clock = std::chrono::steady_clock;

struct Stem {
    BeamPath                 path;          // its pending token is the last of path.tokens (or the prompt's last)
    llama_token              pending = -1;
    int32_t                  mult    = 1;   // how many of the beam tuple's slots hold this path
    int32_t                  slot    = 0;
    std::vector<llama_token> owed;          // amateur: tokens before `pending` it has not decoded

    explicit Stem(const std::vector<std::string> & stops) : path(stops) {}
};

struct Node {
    int32_t     parent = -1;  // trie index (−1: a root, i.e. a stem's pending token)
    int32_t     stem   = -1;  // roots: the stem
    llama_token token  = -1;
    int32_t     depth  = 0;
    int32_t     slot   = -1;
    bool        slot_given = false;  // a child took over this node's slot
    BeamPath    path;                // log_prob set from the expert rows after verification
    double      A     = 0;           // proposal score
    int32_t     row_e = -1;          // its row in the verify pass (the next-token distribution after it)
    int32_t     row_a = -1;          // its row in the amateur pass of the next layer
    std::map<llama_token, int32_t> children;

    explicit Node(const std::vector<std::string> & stops) : path(stops) {}
    bool dead() const { return path.finished(); }
};

class Dsbd final : public Strategy {
  public:
    Dsbd(Evaluator & expert, Evaluator & amateur, Sequences & expert_pool, Sequences & amateur_pool, const Model & model,
         const GenerateConfig & cfg, Rng & rng)
        : expert_(expert),
          amateur_(amateur),
          epool_(expert_pool),
          apool_(amateur_pool),
          model_(model),
          cfg_(cfg),
          rng_(rng),
          V_(expert.n_vocab()),
          WL_(cfg.beams),
          WS_(cfg.draft_beams),
          book_(cfg, cfg.beams),
          n_slots_((cfg.single_beam ? 1 : cfg.beams) + (cfg.draft_beams - 1) * cfg.draft_tokens),
          ebatch_(llama_batch_init(std::max<int32_t>(64, llama_n_batch(expert.ctx())), 0, n_slots_)),
          abatch_(llama_batch_init(std::max<int32_t>(64, llama_n_batch(amateur.ctx())), 0, n_slots_)) {
        eborrowed_ = epool_.borrow(n_slots_ - 1);
        try {
            aborrowed_ = apool_.borrow(n_slots_ - 1);
        } catch (...) {
            epool_.give_back(eborrowed_);
            llama_batch_free(ebatch_);
            llama_batch_free(abatch_);
            throw;
        }
        eid_.push_back(0);
        aid_.push_back(0);
        eid_.insert(eid_.end(), eborrowed_.begin(), eborrowed_.end());
        aid_.insert(aid_.end(), aborrowed_.begin(), aborrowed_.end());
        for (int32_t s = n_slots_ - 1; s >= 1; s--) free_.push_back(s);
        stats_.drafted_by_depth.assign(cfg.draft_tokens, 0);
        stats_.accepted_by_depth.assign(cfg.draft_tokens, 0);
    }

    ~Dsbd() override {
        epool_.give_back(eborrowed_);  // emptied there; sequence 0 is emptied by the worker
        apool_.give_back(aborrowed_);
        llama_batch_free(ebatch_);
        llama_batch_free(abatch_);
    }

    void begin(const std::vector<llama_token> & prompt) override {
        const llama_token last = prefill_pair(expert_, amateur_, prompt, cfg_);
        n_prompt_ = (int32_t) prompt.size();
        Stem s(cfg_.stop);
        s.pending = last;
        s.slot    = 0;
        stems_.push_back(std::move(s));
        stats_.peak_kv_cells = n_prompt_;
    }

    int32_t room() const override { return 0; }  // ends itself on a full context ("context")

    const char * ended() const override { return book_.ended(); }

    void step(std::vector<llama_token> & out, int32_t /*max_new*/) override {
        if (book_.ended()) return;
        const int32_t pos0  = n_prompt_ - 1 + generated_;  // position of the pending tokens
        const int32_t room  = std::min(expert_.n_ctx(), amateur_.n_ctx()) - 1 - pos0;
        if (room < 0) {
            book_.finish(stem_paths(), "context", out);
            return;
        }
        // γ for this iteration: the iteration emits ≤ γ + 1 layers; decoded positions reach pos0 + γ
        const int32_t gamma = std::max(0, std::min({ cfg_.draft_tokens, cfg_.max_tokens - generated_ - 1, room }));

        build_roots();
        const auto t0      = Clock::now();
        int32_t    drafted = 0;
        try {
            drafted = draft(pos0, gamma);
        } catch (const DuetError & e) {
            if (std::string(e.code()) != code::CONTEXT_OVERFLOW) throw;
            book_.finish(stem_paths(), "context", out);  // no KV cell left for the forest
            return;
        }
        const auto t1 = Clock::now();
        try {
            verify_forest(pos0, drafted);
        } catch (const DuetError & e) {
            if (std::string(e.code()) != code::CONTEXT_OVERFLOW) throw;
            book_.finish(stem_paths(), "context", out);
            return;
        }
        const auto t2 = Clock::now();
        stats_.draft_ms += std::chrono::duration<double, std::milli>(t1 - t0).count();
        stats_.verify_ms += std::chrono::duration<double, std::milli>(t2 - t1).count();

        std::vector<Out> outs;
        int32_t          layers = 0;
        const char *     end    = nullptr;
        if (cfg_.greedy) end = accept_greedy(drafted, outs, layers);
        else end = accept_sampled(drafted, outs, layers);
        generated_ += layers;
        stats_.rounds++;

        // the output beams: finished ones become candidates, the others the next stems
        std::vector<Stem> next;
        std::vector<int32_t> next_parent;
        for (const Out & o : outs) {
            const Node & u = nodes_[o.parent];
            BeamPath     p = u.path;
            if (p.extend(o.token, expert_logp(o.parent, o.token), model_)) {
                book_.add_finished(p);
                continue;
            }
            bool merged = false;
            for (size_t i = 0; i < next.size(); i++) {
                if (next_parent[i] == o.parent && next[i].pending == o.token) {
                    next[i].mult++;
                    merged = true;
                    break;
                }
            }
            if (merged) continue;
            Stem s(cfg_.stop);
            s.path    = std::move(p);
            s.pending = o.token;
            next.push_back(std::move(s));
            next_parent.push_back(o.parent);
        }
        if (cfg_.single_beam && next.size() > 1) collapse(next, next_parent);

        double best = -INFINITY;
        for (const Stem & s : next) best = std::max(best, s.path.log_prob);
        if (!end) {
            if (next.empty()) end = "finished";
            else if (generated_ >= cfg_.max_tokens) end = "length";
            else if (book_.search_is_over(best, generated_)) end = "finished";
        }
        if (end) {
            std::vector<const BeamPath *> live;
            for (const Stem & s : next) {
                for (int32_t k = 0; k < s.mult; k++) live.push_back(&s.path);  // the tuple's slots, duplicates included
            }
            book_.finish(live, end, out);
            return;
        }
        commit(next, next_parent, pos0, drafted);
        stems_ = std::move(next);
        book_.emit_common_prefix(stem_paths(), out);
    }

    void stats(StrategyStats & s) const override {
        s                = stats_;
        s.expert_passes  = expert_.passes + passes_e_;
        s.amateur_passes = amateur_.passes + passes_a_;
        s.beams          = book_.results();
    }

  private:
    struct Out {
        int32_t     parent;  // trie node
        llama_token token;
    };

    std::vector<const BeamPath *> stem_paths() const {
        std::vector<const BeamPath *> v;
        for (const Stem & s : stems_) {
            for (int32_t k = 0; k < s.mult; k++) v.push_back(&s.path);
        }
        return v;
    }

    void build_roots() {
        nodes_.clear();
        layer_drafts_.assign(1, {});
        layer_parents_.assign(1, {});
        layer_q_.assign(1, {});
        for (size_t i = 0; i < stems_.size(); i++) {
            Node r(cfg_.stop);
            r.stem  = (int32_t) i;
            r.token = stems_[i].pending;
            r.slot  = stems_[i].slot;
            r.path  = stems_[i].path;
            r.A     = stems_[i].path.log_prob;
            nodes_.push_back(std::move(r));
            for (int32_t k = 0; k < stems_[i].mult; k++) layer_drafts_[0].push_back((int32_t) i);  // layer 0: the input tuple
        }
    }

    int32_t take_slot() {
        if (free_.empty()) throw DuetError(code::NATIVE, "dsbd: out of KV slots");  // bounded by construction
        const int32_t s = free_.back();
        free_.pop_back();
        return s;
    }

    // distinct live nodes of a layer's draft list, with how many of its entries each holds
    std::vector<std::pair<int32_t, int32_t>> live_counts(const std::vector<int32_t> & list) const {
        std::vector<std::pair<int32_t, int32_t>> v;
        for (int32_t n : list) {
            if (nodes_[n].dead()) continue;
            auto it = std::find_if(v.begin(), v.end(), [&](auto & e) { return e.first == n; });
            if (it == v.end()) v.push_back({ n, 1 });
            else it->second++;
        }
        return v;
    }

    // 1. the amateur's draft trie; returns the layers drafted
    int32_t draft(int32_t pos0, int32_t gamma) {
        for (int32_t l = 1; l <= gamma; l++) {
            const auto parents = live_counts(layer_drafts_[l - 1]);
            if (parents.empty()) return l - 1;
            // the parents' amateur rows: one pass over every node of layer l − 1 (layer 1: each stem's owed + pending)
            cells_.clear();
            ids_.clear();
            int32_t rows = 0;
            for (const auto & [n, m] : parents) {
                Node & u = nodes_[n];
                if (l == 1) {
                    const Stem & s = stems_[u.stem];
                    for (size_t j = 0; j < s.owed.size(); j++) {
                        cells_.push_back({ amateur_.feedable(s.owed[j]), pos0 - (int32_t) (s.owed.size() - j), (int32_t) ids_.size(), 1, false });
                        ids_.push_back(aid_[u.slot]);
                    }
                }
                u.row_a = rows++;
                cells_.push_back({ amateur_.feedable(u.token), pos0 + l - 1, (int32_t) ids_.size(), 1, true });
                ids_.push_back(aid_[u.slot]);
            }
            batch::decode(amateur_.ctx(), abatch_, amateur_.decode_lock(), cells_, ids_, amateur_.n_vocab(), V_, rows_a_, "draft layer");
            passes_a_++;

            std::vector<int32_t> parent_ids;
            std::vector<double>  scores;
            for (const auto & [n, m] : parents) {
                parent_ids.push_back(n);
                scores.push_back(nodes_[n].A + std::log((double) m));
            }
            gather(parent_ids, rows_a_, &Node::row_a);
            std::vector<double>      lse;
            std::vector<beam::Child> kids;
            std::vector<double>      q;
            if (cfg_.greedy) {
                lse  = beam::normalisers(rowbuf_.data(), (int32_t) parents.size(), V_);
                kids = beam::top(scores, rowbuf_.data(), lse, V_, WS_);  // deterministic drafts (beam search)
            } else {
                beam::joint(scores, rowbuf_.data(), V_, cfg_.sampling, jointf_, &lse);
                if (cfg_.sampling.temperature != 1.0f) lse = beam::normalisers(rowbuf_.data(), (int32_t) parents.size(), V_);
                q.assign(jointf_.begin(), jointf_.end());
                for (int32_t i = 0; i < WS_; i++) {
                    kids.push_back(beam::child_at(distribution::sample(jointf_.data(), (int32_t) jointf_.size(), rng_.uniform()), scores, rowbuf_.data(), lse, V_));
                }
            }
            std::vector<int32_t> drafts;
            for (const beam::Child & c : kids) drafts.push_back(child_node(parent_ids[c.beam], c.token, c.logp, pos0 + l));
            layer_drafts_.push_back(std::move(drafts));
            layer_parents_.push_back(std::move(parent_ids));
            layer_q_.push_back(std::move(q));
        }
        return gamma;
    }

    // the trie node for (parent, token), created with its slot on first use
    int32_t child_node(int32_t parent, llama_token x, double amateur_logp, int32_t pos) {
        auto it = nodes_[parent].children.find(x);
        if (it != nodes_[parent].children.end()) return it->second;
        Node c(cfg_.stop);
        c.parent = parent;
        c.token  = x;
        c.depth  = nodes_[parent].depth + 1;
        c.path   = nodes_[parent].path;
        c.path.extend(x, 0.0, model_);  // text and end-of-generation now; the expert log-prob after verification
        c.A = nodes_[parent].A + amateur_logp;
        if (!nodes_[parent].slot_given) {
            nodes_[parent].slot_given = true;
            c.slot                    = nodes_[parent].slot;
        } else {
            c.slot = take_slot();
            // the amateur has decoded the parent: share its path (positions < pos) under the new slot's id
            llama_memory_seq_cp(llama_get_memory(amateur_.ctx()), aid_[nodes_[parent].slot], aid_[c.slot], -1, pos);
        }
        const int32_t id = (int32_t) nodes_.size();
        nodes_.push_back(std::move(c));
        nodes_[parent].children[x] = id;
        return id;
    }

    // rowbuf_ = the rows (of `rows`, at each node's index `which`) of the listed nodes, contiguous
    void gather(const std::vector<int32_t> & nodes, const std::vector<float> & rows, int32_t Node::*which) {
        rowbuf_.resize(nodes.size() * (size_t) V_);
        for (size_t j = 0; j < nodes.size(); j++) std::copy_n(rows.data() + (size_t) (nodes_[nodes[j]].*which) * V_, V_, rowbuf_.data() + j * V_);
    }

    // 2. one expert pass over every stem's pending token and every live draft node
    void verify_forest(int32_t pos0, int32_t drafted) {
        const int32_t n = (int32_t) nodes_.size();
        // the slots of each node's subtree (children come after parents in nodes_)
        std::vector<std::vector<int32_t>> below(n);
        for (int32_t i = n - 1; i >= 0; i--) {
            const Node & u = nodes_[i];
            if (u.dead() || u.depth > drafted) continue;
            if (std::find(below[i].begin(), below[i].end(), u.slot) == below[i].end()) below[i].push_back(u.slot);
            if (u.parent >= 0) {
                for (int32_t s : below[i]) {
                    auto & b = below[u.parent];
                    if (std::find(b.begin(), b.end(), s) == b.end()) b.push_back(s);
                }
            }
        }
        llama_memory_t mem = llama_get_memory(expert_.ctx());
        cells_.clear();
        ids_.clear();
        int32_t rows = 0;
        for (int32_t i = 0; i < n; i++) {
            Node & u = nodes_[i];
            if (u.dead() || u.depth > drafted) continue;
            if (u.parent < 0) {
                for (int32_t s : below[i]) {
                    if (s != u.slot) llama_memory_seq_cp(mem, eid_[u.slot], eid_[s], -1, pos0);  // the stem's path, shared
                }
            }
            cells_.push_back({ u.token, pos0 + u.depth, (int32_t) ids_.size(), (int32_t) below[i].size(), true });
            for (int32_t s : below[i]) ids_.push_back(eid_[s]);
            u.row_e = rows++;
        }
        batch::decode(expert_.ctx(), ebatch_, expert_.decode_lock(), cells_, ids_, V_, V_, rows_e_, "dsbd forest");
        passes_e_++;
        stats_.batch_tokens += (int64_t) cells_.size();
        stats_.forest_nodes_max = std::max<int64_t>(stats_.forest_nodes_max, (int64_t) cells_.size());
        lse_e_.assign(n, 0.0);
        for (int32_t i = 0; i < n; i++) {
            if (nodes_[i].row_e >= 0) lse_e_[i] = distribution::logsumexp(rows_e_.data() + (size_t) nodes_[i].row_e * V_, V_);
        }
        // the drafts' expert log-probs (their parents are scored)
        for (int32_t i = 0; i < n; i++) {
            Node & u = nodes_[i];
            if (u.parent >= 0) u.path.log_prob = nodes_[u.parent].path.log_prob + expert_logp(u.parent, u.token);
        }
        // cells held now: the prompt, the stems' committed paths and this forest
        std::vector<const std::vector<llama_token> *> paths;
        for (const Stem & s : stems_) paths.push_back(&s.path.tokens);
        const int64_t committed = generated_ == 0 ? n_prompt_ - 1 : n_prompt_ + distinct_cells(paths, 1);
        stats_.peak_kv_cells    = std::max(stats_.peak_kv_cells, committed + (int64_t) cells_.size());
    }

    double expert_logp(int32_t parent, llama_token x) const {
        return (double) rows_e_[(size_t) nodes_[parent].row_e * V_ + x] - lse_e_[parent];
    }

    // p^{(l)} over `parents` (the layer's q parents, or the valid set), with weight m·exp(S) for valid parents
    void expert_joint(const std::vector<int32_t> & parents, const std::map<int32_t, int32_t> & valid, std::vector<double> & p) {
        std::vector<double> scores(parents.size());
        for (size_t j = 0; j < parents.size(); j++) {
            auto it   = valid.find(parents[j]);
            scores[j] = it == valid.end() ? -INFINITY : nodes_[parents[j]].path.log_prob + std::log((double) it->second);
        }
        gather(parents, rows_e_, &Node::row_e);
        beam::joint(scores, rowbuf_.data(), V_, cfg_.sampling, jointf_);
        p.assign(jointf_.begin(), jointf_.end());
    }

    // 3 (sampling). returns an end reason when the search ended inside the iteration
    const char * accept_sampled(int32_t drafted, std::vector<Out> & outs, int32_t & layers) {
        std::map<int32_t, int32_t> valid;  // surviving parent node → multiplicity
        for (int32_t r : layer_drafts_[0]) valid[r]++;
        std::vector<double> p;
        for (int32_t l = 1; l <= drafted; l++) {
            const std::vector<int32_t> & parents = layer_parents_[l];
            expert_joint(parents, valid, p);
            const std::vector<double> & q = layer_q_[l];
            int32_t need = cfg_.min_width;
            {
                const auto alpha  = dsbd::acceptance_sequence(p, q, WS_);
                const auto counts = dsbd::acceptance_counts(alpha);
                need              = dsbd::width(counts[WS_], cfg_.width_threshold, cfg_.min_width);
            }
            need = std::min(need, WS_);
            if ((int32_t) stats_.width_histogram.size() <= need) stats_.width_histogram.resize(need + 1, 0);
            stats_.width_histogram[need]++;
            std::vector<int32_t> idx;
            for (int32_t d : layer_drafts_[l]) {
                const int32_t j = (int32_t) (std::find(parents.begin(), parents.end(), nodes_[d].parent) - parents.begin());
                idx.push_back(j * V_ + nodes_[d].token);
            }
            const dsbd::LayerOut r = dsbd::verify_layer(p, q, idx, need, WL_, rng_);
            stats_.drafted += WS_;
            stats_.accepted += r.accepted;
            stats_.drafted_by_depth[l - 1] += WS_;
            stats_.accepted_by_depth[l - 1] += r.accepted;
            layers = l;
            if (!r.passed) {
                for (size_t k = 0; k < r.beams.size() && (int32_t) k < WL_; k++) outs.push_back({ parents[r.beams[k] / V_], r.beams[k] % V_ });
                return nullptr;
            }
            // the accepted drafts are the next parents; finished ones become candidates
            valid.clear();
            double best = -INFINITY;
            for (int32_t b : r.beams) {
                const int32_t node = nodes_[parents[b / V_]].children.at(b % V_);
                if (nodes_[node].dead()) {
                    book_.add_finished(nodes_[node].path);
                    continue;
                }
                valid[node]++;
                best = std::max(best, nodes_[node].path.log_prob);
            }
            if (valid.empty()) return "finished";
            if (book_.search_is_over(best, generated_ + l)) return "finished";  // HF: the finished candidates only
        }
        // every drafted layer passed: W_L draws from p^{(drafted + 1)} over the valid parents
        std::vector<int32_t> parents;
        for (auto & [node, m] : valid) parents.push_back(node);
        expert_joint(parents, valid, p);
        for (int32_t k = 0; k < WL_; k++) {
            const int32_t i = dsbd::draw(p, rng_);
            outs.push_back({ parents[i / V_], i % V_ });
        }
        layers = drafted + 1;
        return nullptr;
    }

    // 3 (temperature 0): beam search steps of width W_L over the forest's rows
    const char * accept_greedy(int32_t drafted, std::vector<Out> & outs, int32_t & layers) {
        std::vector<int32_t> live;  // the current beams (trie nodes with expert rows)
        for (size_t i = 0; i < stems_.size(); i++) live.push_back((int32_t) i);
        for (int32_t l = 1;; l++) {
            std::vector<double> S(live.size());
            for (size_t j = 0; j < live.size(); j++) S[j] = nodes_[live[j]].path.log_prob;
            gather(live, rows_e_, &Node::row_e);
            const std::vector<double> lse  = beam::normalisers(rowbuf_.data(), (int32_t) live.size(), V_);
            const std::vector<beam::Child> cands = beam::top(S, rowbuf_.data(), lse, V_, 2 * WL_);
            std::vector<Out> next;
            bool             all_drafted = l <= drafted;
            int32_t          matched     = 0;
            for (size_t rank = 0; rank < cands.size(); rank++) {
                if ((int32_t) next.size() == WL_) break;
                const beam::Child & c = cands[rank];
                const int32_t       u = live[c.beam];
                BeamPath            p = nodes_[u].path;
                if (p.extend(c.token, c.logp, model_)) {
                    if ((int32_t) rank < WL_ || p.eog < 0) book_.add_finished(p);
                    continue;
                }
                next.push_back({ u, c.token });
                auto it = nodes_[u].children.find(c.token);
                if (it == nodes_[u].children.end() || nodes_[it->second].row_e < 0) all_drafted = false;
                else matched++;
            }
            if (l <= drafted) {
                stats_.drafted += WS_;
                stats_.accepted += matched;
                stats_.drafted_by_depth[l - 1] += WS_;
                stats_.accepted_by_depth[l - 1] += matched;
            }
            layers = l;
            if (next.empty()) return "finished";
            double best = -INFINITY;
            for (const Out & o : next) best = std::max(best, nodes_[o.parent].path.log_prob + expert_logp(o.parent, o.token));
            if (!all_drafted || generated_ + l >= cfg_.max_tokens || book_.search_is_over(best, generated_ + l)) {
                outs = std::move(next);
                return nullptr;  // the caller applies the end checks to these beams
            }
            live.clear();
            for (const Out & o : next) live.push_back(nodes_[o.parent].children.at(o.token));
        }
    }

    // singleBeam: keep one output beam
    void collapse(std::vector<Stem> & next, std::vector<int32_t> & next_parent) {
        size_t keep = 0;  // 'sample': the first output slot (p_beam-distributed)
        if (cfg_.select_best) {
            for (size_t i = 1; i < next.size(); i++) {
                if (book_.score(next[i].path) > book_.score(next[keep].path)) keep = i;
            }
        }
        Stem    s = std::move(next[keep]);
        int32_t p = next_parent[keep];
        s.mult    = 1;
        next.clear();
        next_parent.clear();
        next.push_back(std::move(s));
        next_parent.push_back(p);
    }

    // 4. the next stems' paths stay (each on one slot, in both contexts); every other slot is emptied
    void commit(std::vector<Stem> & next, const std::vector<int32_t> & next_parent, int32_t pos0, int32_t drafted) {
        llama_memory_t       emem = llama_get_memory(expert_.ctx());
        llama_memory_t       amem = llama_get_memory(amateur_.ctx());
        const size_t         k    = next.size();
        std::vector<int32_t> trim_e(k), trim_a(k), src(k);
        std::vector<bool>    fresh(k, false);
        std::vector<bool>    claimed(n_slots_, false);
        for (size_t i = 0; i < k; i++) {
            const Node & u = nodes_[next_parent[i]];
            trim_e[i]      = pos0 + u.depth + 1;  // the expert decoded every live node
            // the amateur decoded roots when it drafted at all, and draft nodes above the deepest layer
            const bool decoded = u.parent < 0 ? drafted >= 1 : u.depth < drafted;
            if (decoded) {
                trim_a[i] = trim_e[i];
            } else if (u.parent < 0) {  // nothing drafted: the stem's owed tokens and its pending stay owed
                next[i].owed = stems_[u.stem].owed;
                next[i].owed.push_back(u.token);
                trim_a[i] = pos0 - (int32_t) stems_[u.stem].owed.size();
            } else {  // a node of the deepest draft layer: its parent is decoded
                next[i].owed.assign(1, u.token);
                trim_a[i] = pos0 + u.depth;
            }
            src[i] = u.slot;
            if (!claimed[u.slot]) claimed[u.slot] = true;
            else fresh[i] = true;
        }
        // empty every slot no stem keeps (rejected branches, finished beams, old stems)
        std::vector<bool> in_use(n_slots_, false);
        for (const Node & u : nodes_) in_use[u.slot] = true;
        for (const Stem & s : stems_) in_use[s.slot] = true;
        for (int32_t s = 0; s < n_slots_; s++) {
            if (!in_use[s] || claimed[s]) continue;
            llama_memory_seq_rm(emem, eid_[s], -1, -1);
            llama_memory_seq_rm(amem, aid_[s], -1, -1);
            free_.push_back(s);
        }
        // a second stem on the same slot gets a free one holding its path; then each kept slot is cut to its path
        for (size_t i = 0; i < k; i++) {
            if (!fresh[i]) continue;
            const int32_t f = take_slot();
            llama_memory_seq_cp(emem, eid_[src[i]], eid_[f], -1, trim_e[i]);
            llama_memory_seq_cp(amem, aid_[src[i]], aid_[f], -1, trim_a[i]);
            next[i].slot = f;
        }
        for (size_t i = 0; i < k; i++) {
            if (fresh[i]) continue;
            next[i].slot = src[i];
            llama_memory_seq_rm(emem, eid_[src[i]], trim_e[i], -1);
            llama_memory_seq_rm(amem, aid_[src[i]], trim_a[i], -1);
        }
    }

    Evaluator &            expert_;
    Evaluator &            amateur_;
    Sequences &            epool_;
    Sequences &            apool_;
    const Model &          model_;
    const GenerateConfig & cfg_;
    Rng &                  rng_;
    const int32_t          V_;
    const int32_t          WL_;  // output beams per iteration (singleBeam then keeps one)
    const int32_t          WS_;  // draft beams per layer
    BeamBook               book_;
    const int32_t          n_slots_;
    llama_batch            ebatch_, abatch_;
    std::vector<llama_seq_id> eborrowed_, aborrowed_;
    std::vector<llama_seq_id> eid_, aid_;  // slot → sequence id in each context
    std::vector<int32_t>      free_;       // slots no node or stem holds

    int32_t                           n_prompt_  = 0;
    int32_t                           generated_ = 0;  // tokens every live beam has
    std::vector<Stem>                 stems_;
    std::vector<Node>                 nodes_;
    std::vector<std::vector<int32_t>> layer_drafts_;   // [l] the layer's drafts (trie nodes, draw order); [0] the input tuple
    std::vector<std::vector<int32_t>> layer_parents_;  // [l] the distinct live parents q^{(l)} is over
    std::vector<std::vector<double>>  layer_q_;        // [l] q^{(l)} flattened (parent index · V + token)
    std::vector<batch::Cell>          cells_;
    std::vector<llama_seq_id>         ids_;
    std::vector<float>                rows_a_, rows_e_, rowbuf_, jointf_;
    std::vector<double>               lse_e_;
    int64_t                           passes_e_ = 0, passes_a_ = 0;
    StrategyStats                     stats_;
};

}  // namespace

std::unique_ptr<Strategy> make_dsbd(Evaluator & expert, Evaluator & amateur, Sequences & expert_pool, Sequences & amateur_pool, const Model & model,
                                    const GenerateConfig & cfg, Rng & rng) {
    return std::make_unique<Dsbd>(expert, amateur, expert_pool, amateur_pool, model, cfg, rng);
}

}  // namespace duet
