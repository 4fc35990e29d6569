// An inference context: the per-sequence state of one model (KV cache for attention
// layers, conv window and delta-rule state for DeltaNet layers), sized from n_ctx,
// and the forward pass that advances it.
#pragma once

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "src/model.h"

namespace rill {

class ThreadPool;

// Where evaluation time goes, accumulated since the last clear (milliseconds per category:
// "matmul q4_0", ..., "lm_head q6_K", "deltanet", "attention", "total"). Each entry costs two
// clock reads, a few hundred per token.
struct Profile {
    std::map<std::string, double> ms;
    int tokens = 0;
    void clear() { ms.clear(); tokens = 0; }
};

// Which logits an eval keeps: none (prompt chunks before the last), the last token's, or every token's.
enum class Logits { None, Last, All };

struct EvalOptions {
    Logits keep = Logits::Last;
    // Keep every token's final hidden state after the output norm (hidden(i)): the input of
    // Qwen 3.5's multi-token-prediction head. The kept logits are unchanged by it.
    bool hidden = false;
    // Sum every token of the batch as a one-token eval sums it, so that each row is bit-identical
    // to evaluating the tokens one at a time (speculative verification; only float weights and the
    // attention read-out have batch-dependent orders).
    bool as_single = false;
    // Keep the recurrent state after each token, so that rollback() can drop the batch's tail.
    bool checkpoints = false;
    // The batch is several independent texts of these lengths (summing to its size), packed:
    // each starts at position 0 and attends only to itself (embeddings of many texts in one
    // batch). Attention-only models, from an empty context, which is empty again after it;
    // the kept logits and hidden rows are those of the batch's tokens in order.
    std::vector<int> sequences;
};

class Context {
public:
    // pool: threads for the matrix products (null: the calling thread only); must outlive the context.
    Context(std::shared_ptr<const Model> model, int n_ctx, ThreadPool* pool = nullptr);

    // Runs the tokens at positions n_past() .. n_past() + n - 1 as one batch and keeps the
    // logits asked for. Throws rill::Error (leaving the state unchanged) if the tokens do not
    // fit the context or an id is out of range.
    void eval(const std::vector<TokenId>& tokens, Logits keep = Logits::Last) {
        EvalOptions o;
        o.keep = keep;
        eval(tokens, o);
    }
    void eval(const std::vector<TokenId>& tokens, const EvalOptions& options);
    // Logits of the i-th token of the last eval (i = -1: the last one).
    const float* logits(int i = -1) const;
    // Output-normed final hidden state of the i-th token of the last eval (EvalOptions::hidden).
    const float* hidden(int i) const;
    // Keeps only the first n_keep tokens of the last eval (made with checkpoints): the position,
    // the recurrent state and the kept logits and hidden rows become those after token n_keep - 1.
    // Attention entries past it are overwritten by later evals.
    void rollback(int n_keep);

    // The recurrent part of the state after the first n_past tokens (DeltaNet conv windows and
    // delta-rule states). With the attention caches' entries below n_past, which evals at later
    // positions never rewrite, it is enough to come back to this point of the same text.
    struct Recurrent {
        int n_past = 0;
        std::vector<float> conv, ssm;  // every DeltaNet layer's, one after another
        uint64_t bytes() const { return (conv.size() + ssm.size()) * sizeof(float); }
    };
    Recurrent save_recurrent() const;
    bool has_recurrent() const { return std::any_of(conv_state_.begin(), conv_state_.end(), [](const auto& v) { return !v.empty(); }); }
    // Attention-only models: back to position n_past (later entries are overwritten by later evals).
    void truncate(int n_past);
    // Back to a saved point: the position and recurrent states; logits and hidden rows are dropped.
    // The caller vouches that the text below r.n_past is the one it was saved on.
    void restore_recurrent(const Recurrent& r);

    // The whole state after the first n_past tokens (attention caches up to n_past, the MTP
    // block's too, the recurrent states, the last logits row if kept), appended to out; read_state
    // takes such bytes back (checked against this context's shapes, state unchanged on error).
    void write_state(std::vector<uint8_t>& out) const;
    void read_state(const uint8_t* p, size_t n);
    bool has_logits() const { return n_logits_ > 0; }

    // Qwen 3.5's multi-token-prediction head (src/mtp.cpp), with its own attention cache. Runs the
    // MTP block on n pairs (tokens[i], h_prev[i]) at positions pos0.., where h_prev[i] is the main
    // model's hidden() of the token before tokens[i] (zeros before the first). The kept rows' draft
    // logits (of the token after tokens[i]) and output-normed states (the h_prev of a chained draft)
    // are mtp_logits(i), mtp_hidden(i) (i = -1: the last).
    void mtp_eval(const TokenId* tokens, const float* h_prev, int n, int pos0, Logits keep);
    const float* mtp_logits(int i = -1) const;
    const float* mtp_hidden(int i = -1) const;
    bool has_mtp() const { return model_->mtp() != nullptr; }
    int n_vocab() const { return model_->config().n_vocab; }
    int n_past() const { return n_past_; }
    int n_ctx() const { return n_ctx_; }
    void reset();
    const Model& model() const { return *model_; }
    uint64_t state_bytes() const;
    Profile& profile() { return profile_; }

private:
    // Activations of one batch, token-major: x[t * n_embd + i].
    struct Batch {
        int n = 0;       // tokens
        int pos0 = 0;    // cache slot of the first token (its position, but in packed sequences)
        // Packed sequences (EvalOptions::sequences): per token, the cache slot where its sequence
        // starts, which is its position 0 and its first key. Empty: one sequence from slot 0.
        std::vector<int> seq_first;
        std::vector<float> pe;  // Gemma 4's per-layer inputs: [token][layer][n_embd_per_layer]
        std::vector<float> x, h;  // residual stream, normalised input of the current block
    };
    void matmul(const Tensor& W, const float* x, float* y, int n_tokens, const char* what = "matmul");
    void allocate_caches();
    // Block il's weights: a main layer, or the MTP block (il = n_layer).
    const LayerWeights& layer(int il) const;
    void attention_block(int il, Batch& b);
    void deltanet_block(int il, Batch& b);
    void shortconv_block(int il, Batch& b);
    void ffn_block(int il, Batch& b);
    void per_layer_inputs(const std::vector<TokenId>& tokens, Batch& b);
    void per_layer_block(int il, Batch& b);

    std::shared_ptr<const Model> model_;
    int n_ctx_;
    ThreadPool* pool_;
    int n_past_ = 0;
    bool as_single_ = false;  // the running eval's EvalOptions::as_single
    // Per attention layer (and the MTP block, after the main layers): keys [n_ctx][n_head_kv * head_dim], and values transposed,
    // [n_head_kv * head_dim][n_ctx_padded], so that each output element is one dot product.
    std::vector<std::vector<float>> k_cache_, v_cache_;
    int n_ctx_padded_ = 0;
    // Per DeltaNet layer: last (K-1) conv inputs, and the [n_v_heads][dv][dk] state.
    std::vector<std::vector<float>> conv_state_, ssm_state_;
    // With checkpoints: per DeltaNet layer, the states after each token of the last eval but its last.
    std::vector<std::vector<float>> conv_ckpt_, ssm_ckpt_;
    int ckpt_pos0_ = -1, ckpt_n_ = 0;  // the eval they belong to (-1: none)
    Profile profile_;
    std::vector<float> logits_, hidden_;
    int n_logits_ = 0, n_hidden_ = 0;
    bool logits_all_ = false;  // the last eval kept every token's logits
    std::vector<float> mtp_logits_, mtp_hidden_;
    int mtp_n_ = 0;  // rows the last mtp_eval kept
};

}  // namespace rill
