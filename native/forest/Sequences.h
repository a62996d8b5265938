// KV sequences of one llama_context and the forest engine over them (issue 3; ALGORITHMS.md §D
// "forest layout"). Sequence ids come from a pool; id 0 is reserved for generate().
//
// Sequence state: tokens[0 .. n_kv) are in the KV cache; at most one more token (the last) may be
// pending — accepted but not decoded yet (commit's next token, or trim's new last token). The logits
// row after tokens[n_kv − 1] is cached in C++ whenever nothing is pending, so a tree's roots are scored
// without re-decoding the prefix and no pass is spent on a commit.
//
// Forest layout (unified KV cache): every leaf of every tree takes a temporary sequence id that first
// shares the prefix cells of its tree's sequence (seq_cp, metadata only); each node's cell carries the
// ids of all leaves below it; a node's position is its parent's + 1, a root's the sequence's length.
// One llama_decode scores all nodes (split into n_batch chunks only when the forest is larger).
// commit() copies the accepted path's cells into the sequence (seq_cp over its positions) and removes
// every temporary id, which frees the cells of the rejected branches.
//
// Threading: every method runs with the context acquired (busy flag): on the JS thread for the
// metadata operations, on a worker thread for append() and verify().
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "forest/Verify.h"
#include "llama.h"

namespace duet {

struct ForestNodeIn {
    int32_t token  = 0;
    int32_t parent = -1;
    std::shared_ptr<const std::vector<float>> q;  // dense draft distribution (SAMPLE), may be shared by siblings
};

struct ForestTreeIn {
    llama_seq_id              seq = -1;
    std::vector<ForestNodeIn> nodes;
};

struct ForestOptions {
    forest::Rule                   rule = forest::Rule::GREEDY;
    distribution::SamplingParams   sampling;
    uint64_t                       seed  = 0;
    int32_t                        top_k = 0;  // top-k log-probs per node (0 = none)
};

struct TopK {
    std::vector<int32_t> tokens;
    std::vector<float>   logprobs;
};

struct ForestNodeOut {
    float   logprob = 0.0f;  // log p(token | parent path), raw expert (temperature 1)
    int32_t argmax  = -1;    // the expert's greedy next token after this node
    TopK    top;             // top-k of the next-token distribution after this node
};

struct ForestTreeOut {
    int32_t                    root_argmax = -1;  // greedy next token after the sequence itself
    TopK                       root_top;
    std::vector<ForestNodeOut> nodes;
    forest::Verdict            verdict;
};

struct ForestOut {
    uint64_t                   id = 0;  // handle for commit()/release()
    std::vector<ForestTreeOut> trees;
    int32_t                    batch_tokens = 0;
    double                     decode_ms    = 0;
};

class PrefixCache;

class Sequences {
  public:
    // decode_lock: held around every llama_decode (see Context::decode_mutex). cache (may be null): the
    // context's parked prompt prefixes, which give up their ids when none is free and their cells when a
    // decode finds no KV slot.
    Sequences(llama_context * ctx, const llama_model * model, std::mutex * decode_lock, PrefixCache * cache);
    ~Sequences();

    llama_seq_id create();
    void         dispose(llama_seq_id seq);
    llama_seq_id fork(llama_seq_id seq);
    void         trim(llama_seq_id seq, int32_t n);
    void         append(llama_seq_id seq, const std::vector<llama_token> & tokens);  // worker thread
    int32_t      length(llama_seq_id seq) const;
    const std::vector<llama_token> & tokens(llama_seq_id seq) const;

    // Scores every tree in one batched decode and applies the rule. Supersedes earlier uncommitted
    // trees on the same sequences. Worker thread.
    ForestOut verify(const std::vector<ForestTreeIn> & trees, const ForestOptions & opt);

    // Leaves exactly `path` (a root-to-node chain of the tree) in the tree's sequence, then `next`
    // (if ≥ 0) as its pending token; drops every other uncommitted tree on that sequence.
    void commit(uint64_t forest, int32_t tree, const std::vector<int32_t> & path, int32_t next);
    // Drops the forest's uncommitted trees (frees their cells). Unknown / finished forests: no-op.
    void release(uint64_t forest);

    // KV cells holding `seq` (−1: cells in use by any sequence): llama.cpp's own count, read from
    // the header of its sequence state (copies the KV rows: for tests and diagnostics only).
    int64_t kv_cells(llama_seq_id seq = -1) const;
    int32_t free_ids() const;    // ids take_id can give: unused ones and those parked prefixes hold
    int32_t unused_ids() const;  // ids no one holds

    // generate()'s beam strategies borrow n free ids for one generation (the context stays claimed meanwhile)
    // and give them back emptied. Throws INVALID_ARGUMENT (naming `sequences`) when fewer are free.
    std::vector<llama_seq_id> borrow(int32_t n);
    void                      give_back(const std::vector<llama_seq_id> & ids);

  private:
    struct Seq {
        std::vector<llama_token> tokens;
        int32_t                  n_kv = 0;
        std::vector<float>       row;  // logits after tokens[n_kv − 1], valid iff n_kv == tokens.size()
    };
    struct PendingTree {
        llama_seq_id              seq  = -1;
        int32_t                   base = 0;  // position of the roots
        std::vector<int32_t>      parent, tokens;
        std::vector<llama_seq_id> node_leaf;  // a leaf id below each node
        std::vector<llama_seq_id> leaves;
        // the forest's logits rows, shared by its trees (not copied per tree); this tree's nodes start at row0
        std::shared_ptr<const std::vector<float>> rows;
        size_t                                    row0 = 0;
        bool                      live = true;
    };

    Seq &        get(llama_seq_id seq);
    const Seq &  get(llama_seq_id seq) const;
    llama_seq_id take_id();
    void         put_id(llama_seq_id id);
    void         drop_trees(llama_seq_id seq);
    void         drop_tree(PendingTree & t);
    void         decode_pending(Seq & s, llama_seq_id id);

    llama_context *             ctx_;
    llama_memory_t              mem_;
    int32_t                     n_vocab_, n_ctx_, n_batch_, n_seq_max_;
    std::vector<bool>           id_used_;
    std::map<llama_seq_id, Seq> seqs_;
    std::map<uint64_t, std::vector<PendingTree>> forests_;
    uint64_t                    next_forest_ = 1;
    llama_batch                 batch_;
    std::mutex *                decode_lock_;
    PrefixCache *               cache_;
    uint64_t                    verify_calls_ = 0;  // mixed into a fixed seed: every call draws fresh uniforms

    int32_t decode_locked();
};

}  // namespace duet
