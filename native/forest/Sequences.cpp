#include "forest/Sequences.h"
#include "model/Batch.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>

#include "model/PrefixCache.h"
#include "napi/errors.h"

namespace duet {

namespace {

std::string str(int64_t v) { return std::to_string(v); }

// One token of a batch: its sequence ids are seq_ids[first .. first + count).
TopK top_k_of(const float * row, int32_t n, double lse, int32_t k) {
    TopK out;
    if (k <= 0) return out;
    k = std::min(k, n);
    std::vector<int32_t> idx(n);
    for (int32_t i = 0; i < n; i++) idx[i] = i;
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    for (int32_t i = 0; i < k; i++) {
        out.tokens.push_back(idx[i]);
        out.logprobs.push_back((float) ((double) row[idx[i]] - lse));
    }
    return out;
}

}  // namespace

Sequences::Sequences(llama_context * ctx, const llama_model * model, std::mutex * decode_lock, PrefixCache * cache)
    : ctx_(ctx),
      mem_(llama_get_memory(ctx)),
      n_vocab_(llama_vocab_n_tokens(llama_model_get_vocab(model))),
      n_ctx_((int32_t) llama_n_ctx(ctx)),
      n_batch_((int32_t) llama_n_batch(ctx)),
      n_seq_max_((int32_t) llama_n_seq_max(ctx)),
      id_used_(llama_n_seq_max(ctx), false),
      batch_(llama_batch_init((int32_t) llama_n_batch(ctx), 0, (int32_t) llama_n_seq_max(ctx))),
      decode_lock_(decode_lock),
      cache_(cache) {
    id_used_[0] = true;  // generate()'s sequence
}

Sequences::~Sequences() { llama_batch_free(batch_); }

int32_t Sequences::decode_locked() { return decode_reclaiming(ctx_, batch_, *decode_lock_, cache_); }

llama_seq_id Sequences::take_id() {
    for (int32_t i = 1; i < n_seq_max_; i++) {
        if (!id_used_[i]) {
            id_used_[i] = true;
            llama_memory_seq_rm(mem_, i, -1, -1);
            return i;
        }
    }
    // a parked prompt prefix gives its id up (the least recently used)
    PrefixCache::Entry parked;
    if (cache_ && cache_->take_lru(parked, false)) {
        std::lock_guard<std::mutex> lock(*decode_lock_);
        llama_memory_seq_rm(mem_, parked.seq, -1, -1);
        return parked.seq;
    }
    throw DuetError(code::INVALID_ARGUMENT, "all " + str(n_seq_max_ - 1) +
                                                " sequence slots of this context are in use (dispose sequences, or load with a larger `sequences`)");
}

void Sequences::put_id(llama_seq_id id) {
    llama_memory_seq_rm(mem_, id, -1, -1);
    id_used_[id] = false;
}

std::vector<llama_seq_id> Sequences::borrow(int32_t n) {
    if (n > free_ids()) {
        throw DuetError(code::INVALID_ARGUMENT, "this strategy needs " + str(n) + " more sequence slots but " + str(free_ids()) +
                                                    " of the context's are free (dispose sequences, or load with a larger `sequences`)");
    }
    std::vector<llama_seq_id> ids;
    for (int32_t i = 0; i < n; i++) ids.push_back(take_id());
    return ids;
}

void Sequences::give_back(const std::vector<llama_seq_id> & ids) {
    for (llama_seq_id id : ids) put_id(id);
}

int32_t Sequences::unused_ids() const { return (int32_t) std::count(id_used_.begin(), id_used_.end(), false); }

// parked prompt prefixes give their ids up on demand (take_id)
int32_t Sequences::free_ids() const { return unused_ids() + (cache_ ? cache_->lendable() : 0); }

Sequences::Seq & Sequences::get(llama_seq_id seq) {
    auto it = seqs_.find(seq);
    if (it == seqs_.end()) throw DuetError(code::DISPOSED, "sequence " + str(seq) + " has been disposed");
    return it->second;
}

const Sequences::Seq & Sequences::get(llama_seq_id seq) const {
    auto it = seqs_.find(seq);
    if (it == seqs_.end()) throw DuetError(code::DISPOSED, "sequence " + str(seq) + " has been disposed");
    return it->second;
}

llama_seq_id Sequences::create() {
    const llama_seq_id id = take_id();
    seqs_[id]             = Seq{};
    return id;
}

void Sequences::dispose(llama_seq_id seq) {
    get(seq);
    drop_trees(seq);
    seqs_.erase(seq);
    put_id(seq);
}

llama_seq_id Sequences::fork(llama_seq_id seq) {
    const Seq &        src = get(seq);
    const llama_seq_id id  = take_id();
    llama_memory_seq_cp(mem_, seq, id, -1, -1);  // unified KV: adds the id to the shared cells, no data copy
    seqs_[id] = src;
    return id;
}

int32_t Sequences::length(llama_seq_id seq) const { return (int32_t) get(seq).tokens.size(); }

const std::vector<llama_token> & Sequences::tokens(llama_seq_id seq) const { return get(seq).tokens; }

void Sequences::trim(llama_seq_id seq, int32_t n) {
    Seq & s = get(seq);
    if (n < 0 || n > (int32_t) s.tokens.size()) {
        throw DuetError(code::INVALID_ARGUMENT, "Expected a length between 0 and " + str(s.tokens.size()) + " for trim but received " + str(n));
    }
    if (n == (int32_t) s.tokens.size()) return;
    drop_trees(seq);
    // keep [0, n − 1) in the KV; tokens[n − 1] becomes pending (its logits row is gone with its cell)
    const int32_t keep = std::max(0, n - 1);
    if (!llama_memory_seq_rm(mem_, seq, keep, -1)) throw DuetError(code::KV_FAILED, "this model's KV cache cannot remove a partial sequence");
    s.tokens.resize(n);
    s.n_kv = keep;
    s.row.clear();
}

void Sequences::append(llama_seq_id seq, const std::vector<llama_token> & toks) {
    Seq & s = get(seq);
    if (toks.empty()) return;
    if (s.tokens.size() + toks.size() > (size_t) n_ctx_) {
        throw DuetError(code::CONTEXT_OVERFLOW, "sequence of " + str(s.tokens.size()) + " tokens + " + str(toks.size()) +
                                                    " appended would pass contextSize " + str(n_ctx_));
    }
    drop_trees(seq);
    for (llama_token t : toks) {
        if (t < 0 || t >= n_vocab_) throw DuetError(code::INVALID_ARGUMENT, "token id " + str(t) + " outside the vocabulary");
    }
    std::vector<llama_token> feed(s.tokens.begin() + s.n_kv, s.tokens.end());
    feed.insert(feed.end(), toks.begin(), toks.end());
    const int32_t n = (int32_t) feed.size();
    for (int32_t start = 0; start < n; start += n_batch_) {
        const int32_t m = std::min(n_batch_, n - start);
        batch_.n_tokens = m;
        for (int32_t i = 0; i < m; i++) {
            batch_.token[i]     = feed[start + i];
            batch_.pos[i]       = s.n_kv + start + i;
            batch_.n_seq_id[i]  = 1;
            batch_.seq_id[i][0] = seq;
            batch_.logits[i]    = start + i == n - 1;
        }
        const int32_t rc = decode_locked();
        if (rc != 0) {
            llama_memory_seq_rm(mem_, seq, s.n_kv, -1);
            if (rc == 1) throw DuetError(code::CONTEXT_OVERFLOW, "no KV slot for the appended tokens (context full)");
            if (rc == 2) throw DuetError(code::ABORTED, "append aborted");
            throw DuetError(code::DECODE_FAILED, "llama_decode failed with code " + str(rc));
        }
    }
    const float * row = llama_get_logits_ith(ctx_, -1);
    if (!row) throw DuetError(code::DECODE_FAILED, "llama.cpp returned no logits");
    s.row.assign(row, row + n_vocab_);
    s.tokens.insert(s.tokens.end(), toks.begin(), toks.end());
    s.n_kv = (int32_t) s.tokens.size();
}

void Sequences::drop_tree(PendingTree & t) {
    for (llama_seq_id leaf : t.leaves) put_id(leaf);
    t.leaves.clear();
    t.rows.reset();  // the forest's rows go when its last tree does
    t.live = false;
}

void Sequences::drop_trees(llama_seq_id seq) {
    for (auto it = forests_.begin(); it != forests_.end();) {
        bool any_live = false;
        for (auto & t : it->second) {
            if (t.live && t.seq == seq) drop_tree(t);
            any_live = any_live || t.live;
        }
        it = any_live ? std::next(it) : forests_.erase(it);
    }
}

void Sequences::release(uint64_t forest) {
    auto it = forests_.find(forest);
    if (it == forests_.end()) return;
    for (auto & t : it->second) {
        if (t.live) drop_tree(t);
    }
    forests_.erase(it);
}

ForestOut Sequences::verify(const std::vector<ForestTreeIn> & trees, const ForestOptions & opt) {
    const auto t0 = std::chrono::steady_clock::now();
    // ---- native re-checks (TypeScript validated first, with user-facing messages)
    int32_t total_leaves = 0;
    std::vector<std::vector<std::vector<int32_t>>> children(trees.size());
    for (size_t ti = 0; ti < trees.size(); ti++) {
        const ForestTreeIn & t = trees[ti];
        const Seq &          s = get(t.seq);
        if (s.tokens.empty()) throw DuetError(code::INVALID_ARGUMENT, "tree " + str(ti) + ": its sequence is empty (roots need a preceding token)");
        const int32_t n = (int32_t) t.nodes.size();
        std::vector<int32_t> depth(n, 0);
        for (int32_t i = 0; i < n; i++) {
            const ForestNodeIn & nd = t.nodes[i];
            const std::string    at = "tree " + str(ti) + " node " + str(i);
            if (nd.token < 0 || nd.token >= n_vocab_) throw DuetError(code::INVALID_ARGUMENT, at + ": token " + str(nd.token) + " outside the vocabulary");
            if (nd.parent < -1 || nd.parent >= i) throw DuetError(code::INVALID_ARGUMENT, at + ": parent " + str(nd.parent) + " is not -1 or an earlier node");
            depth[i] = nd.parent < 0 ? 1 : depth[nd.parent] + 1;
            if ((int64_t) s.tokens.size() + depth[i] > n_ctx_) {
                throw DuetError(code::CONTEXT_OVERFLOW, at + ": position " + str(s.tokens.size() + depth[i] - 1) + " is past contextSize " + str(n_ctx_));
            }
            if (opt.rule == forest::Rule::SAMPLE) {
                if (!nd.q || (int32_t) nd.q->size() != n_vocab_) throw DuetError(code::INVALID_ARGUMENT, at + ": rule 'sample' needs the draft distribution q");
                if (!((*nd.q)[nd.token] > 0.0f)) throw DuetError(code::INVALID_ARGUMENT, at + ": q gives its own token probability 0");
            }
        }
        forest::TreeShape shape{ nullptr, nullptr, n };
        std::vector<int32_t> parent(n);
        for (int32_t i = 0; i < n; i++) parent[i] = t.nodes[i].parent;
        shape.parent = parent.data();
        children[ti] = forest::children_of(shape);
        for (int32_t i = 0; i < n; i++) total_leaves += children[ti][i + 1].empty() ? 1 : 0;
    }
    std::vector<llama_seq_id> involved;
    for (const auto & t : trees) {
        if (std::find(involved.begin(), involved.end(), t.seq) == involved.end()) involved.push_back(t.seq);
    }
    for (llama_seq_id seq : involved) drop_trees(seq);  // a new verification supersedes uncommitted trees
    if (total_leaves > free_ids()) {
        throw DuetError(code::INVALID_ARGUMENT, "the forest has " + str(total_leaves) + " branches (leaves) but only " + str(free_ids()) +
                                                    " sequence slots are free (load with a larger `sequences`)");
    }
    int32_t n_items = 0;
    for (llama_seq_id seq : involved) n_items += get(seq).n_kv < (int32_t) get(seq).tokens.size() ? 1 : 0;
    for (const auto & t : trees) n_items += (int32_t) t.nodes.size();

    // ---- layout: leaf ids, each node's id set, positions
    std::vector<PendingTree>   pend(trees.size());
    std::vector<batch::Cell>   items;
    std::vector<llama_seq_id>  ids;
    std::vector<int32_t>       pending_item(involved.size(), -1);
    // below[ti][i]: the leaf ids whose root path passes through node i of tree ti (its cell's id set)
    std::vector<std::vector<std::vector<llama_seq_id>>> below(trees.size());
    items.reserve(n_items);
    for (size_t ti = 0; ti < trees.size(); ti++) {
        const auto & t = trees[ti];
        auto &       p = pend[ti];
        const int32_t n = (int32_t) t.nodes.size();
        p.seq  = t.seq;
        p.base = (int32_t) get(t.seq).tokens.size();
        p.parent.resize(n);
        p.tokens.resize(n);
        p.node_leaf.resize(n);
        below[ti].resize(n);
        for (int32_t i = 0; i < n; i++) {
            p.parent[i] = t.nodes[i].parent;
            p.tokens[i] = t.nodes[i].token;
        }
        for (int32_t i = 0; i < n; i++) {
            if (!children[ti][i + 1].empty()) continue;
            const llama_seq_id leaf = take_id();
            p.leaves.push_back(leaf);
            for (int32_t u = i; u >= 0; u = p.parent[u]) below[ti][u].push_back(leaf);
        }
        for (int32_t i = 0; i < n; i++) p.node_leaf[i] = below[ti][i].front();  // every node has a leaf below it
    }
    auto cleanup = [&]() {
        for (auto & p : pend) {
            for (llama_seq_id leaf : p.leaves) put_id(leaf);
            p.leaves.clear();
        }
        for (llama_seq_id seq : involved) llama_memory_seq_rm(mem_, seq, get(seq).n_kv, -1);
    };
    try {
        for (auto & p : pend) {
            for (llama_seq_id leaf : p.leaves) llama_memory_seq_cp(mem_, p.seq, leaf, -1, -1);
        }
        // pending tokens first: they carry their sequence and every leaf of every tree on it
        for (size_t k = 0; k < involved.size(); k++) {
            Seq & s = get(involved[k]);
            if (s.n_kv == (int32_t) s.tokens.size()) continue;
            batch::Cell it{ s.tokens.back(), s.n_kv, (int32_t) ids.size(), 0, true };
            ids.push_back(involved[k]);
            for (auto & p : pend) {
                if (p.seq != involved[k]) continue;
                ids.insert(ids.end(), p.leaves.begin(), p.leaves.end());
            }
            it.count        = (int32_t) ids.size() - it.first;
            pending_item[k] = (int32_t) items.size();
            items.push_back(it);
        }
        std::vector<int32_t> first_node_item(trees.size());
        for (size_t ti = 0; ti < trees.size(); ti++) {
            auto &        p = pend[ti];
            const int32_t n = (int32_t) p.tokens.size();
            first_node_item[ti] = (int32_t) items.size();
            std::vector<llama_pos> pos(n);
            for (int32_t i = 0; i < n; i++) {
                pos[i]           = p.parent[i] < 0 ? p.base : pos[p.parent[i]] + 1;
                const auto & set = below[ti][i];
                items.push_back(batch::Cell{ p.tokens[i], pos[i], (int32_t) ids.size(), (int32_t) set.size(), true });
                ids.insert(ids.end(), set.begin(), set.end());
            }
        }

        // ---- one batched decode (n_batch chunks only when the forest is larger)
        auto                 rows_owner = std::make_shared<std::vector<float>>();
        std::vector<float> & rows       = *rows_owner;
        const int32_t        total      = (int32_t) items.size();
        batch::decode(ctx_, batch_, *decode_lock_, items, ids, n_vocab_, n_vocab_, rows, "forest", cache_);

        // ---- the pending tokens are now in the KV: their rows become the sequences' rows
        for (size_t k = 0; k < involved.size(); k++) {
            if (pending_item[k] < 0) continue;
            Seq &         s   = get(involved[k]);
            const float * row = rows.data() + (size_t) pending_item[k] * n_vocab_;
            s.row.assign(row, row + n_vocab_);
            s.n_kv++;
        }

        // ---- per-node scores and the rule
        ForestOut out;
        out.batch_tokens = total;
        out.trees.resize(trees.size());
        // the i-th verify call of this context draws from seed + i·φ (splitmix-seeded): a fixed seed makes a run
        // of calls reproducible without re-using the same uniforms every round
        Rng rng(opt.seed + 0x9E3779B97F4A7C15ULL * verify_calls_++);
        for (size_t ti = 0; ti < trees.size(); ti++) {
            auto &        p   = pend[ti];
            auto &        o   = out.trees[ti];
            const int32_t n   = (int32_t) p.tokens.size();
            const Seq &   s   = get(p.seq);
            const float * r0  = s.row.data();
            const float * rn  = rows.data() + (size_t) first_node_item[ti] * n_vocab_;
            auto          row = [&](int32_t u) -> const float * { return u < 0 ? r0 : rn + (size_t) u * n_vocab_; };
            std::vector<double> lse(n + 1);
            for (int32_t u = -1; u < n; u++) lse[u + 1] = distribution::logsumexp(row(u), n_vocab_);
            o.root_argmax = distribution::argmax(r0, n_vocab_);
            o.root_top    = top_k_of(r0, n_vocab_, lse[0], opt.top_k);
            o.nodes.resize(n);
            for (int32_t i = 0; i < n; i++) {
                const float * pr   = row(p.parent[i]);
                o.nodes[i].logprob = (float) ((double) pr[p.tokens[i]] - lse[p.parent[i] + 1]);
                o.nodes[i].argmax  = distribution::argmax(row(i), n_vocab_);
                o.nodes[i].top     = top_k_of(row(i), n_vocab_, lse[i + 1], opt.top_k);
            }
            forest::TreeShape shape{ p.parent.data(), p.tokens.data(), n };
            const auto &      nodes = trees[ti].nodes;
            o.verdict = forest::verify(shape, n_vocab_, row, [&](int32_t u) { return nodes[u].q->data(); }, opt.rule, opt.sampling, rng);
            p.rows = rows_owner;
            p.row0 = (size_t) first_node_item[ti];
        }
        out.id = next_forest_++;
        forests_[out.id] = std::move(pend);
        out.decode_ms    = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        return out;
    } catch (...) {
        cleanup();
        throw;
    }
}

void Sequences::commit(uint64_t forest, int32_t tree, const std::vector<int32_t> & path, int32_t next) {
    auto it = forests_.find(forest);
    if (it == forests_.end() || tree < 0 || tree >= (int32_t) it->second.size() || !it->second[tree].live) {
        throw DuetError(code::INVALID_ARGUMENT,
                        "this tree is no longer pending: it was committed, released, or superseded by another operation on its sequence");
    }
    PendingTree & t = it->second[tree];
    const int32_t k = (int32_t) path.size();
    for (int32_t i = 0; i < k; i++) {
        const int32_t node = path[i];
        const int32_t want = i == 0 ? -1 : path[i - 1];
        if (node < 0 || node >= (int32_t) t.tokens.size() || t.parent[node] != want) {
            throw DuetError(code::INVALID_ARGUMENT, "path[" + str(i) + "] = " + str(node) + " is not a child of " +
                                                        (i == 0 ? std::string("the root") : "node " + str(want)));
        }
    }
    if (next < -1 || next >= n_vocab_) throw DuetError(code::INVALID_ARGUMENT, "next token " + str(next) + " outside the vocabulary");
    if (t.base + k + (next >= 0 ? 1 : 0) > n_ctx_) throw DuetError(code::CONTEXT_OVERFLOW, "committing past contextSize " + str(n_ctx_));
    const llama_seq_id seq = t.seq;
    Seq &              s   = get(seq);
    std::vector<float> row;
    if (k > 0) {
        llama_memory_seq_cp(mem_, t.node_leaf[path.back()], seq, t.base, t.base + k);
        const float * r = t.rows->data() + (t.row0 + (size_t) path.back()) * n_vocab_;
        row.assign(r, r + n_vocab_);
        for (int32_t node : path) s.tokens.push_back(t.tokens[node]);
        s.n_kv += k;
        s.row.swap(row);
    }
    drop_trees(seq);  // frees every temporary id (the rejected branches' cells go with them); invalidates t
    if (next >= 0) {
        s.tokens.push_back(next);
        s.row.clear();
    }
}

int64_t Sequences::kv_cells(llama_seq_id seq) const {
    // llama_state_seq_get_data writes: magic u32, seq id i32, n_stream u32, then stream 0's cell count u32
    const size_t size = llama_state_seq_get_size(ctx_, seq);
    if (size < 16) throw DuetError(code::KV_FAILED, "could not read the KV state size");
    std::vector<uint8_t> buf(size);
    if (llama_state_seq_get_data(ctx_, buf.data(), size, seq) < 16) throw DuetError(code::KV_FAILED, "could not read the KV state");
    uint32_t n_stream = 0, cells = 0;
    std::memcpy(&n_stream, buf.data() + 8, 4);
    if (n_stream != 1) throw DuetError(code::KV_FAILED, "expected a unified KV cache (one stream)");
    std::memcpy(&cells, buf.data() + 12, 4);
    return cells;
}

}  // namespace duet
