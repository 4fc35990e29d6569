// An inference context: the per-sequence state of one model (KV cache for attention
// layers, conv window and delta-rule state for DeltaNet layers), sized from n_ctx,
// and the forward pass that advances it.
#pragma once

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

class Context {
public:
    // pool: threads for the matrix products (null: the calling thread only); must outlive the context.
    Context(std::shared_ptr<const Model> model, int n_ctx, ThreadPool* pool = nullptr);

    // Runs the tokens at positions n_past() .. n_past() + n - 1 as one batch and keeps the
    // logits asked for. Throws rill::Error (leaving the state unchanged) if the tokens do not
    // fit the context or an id is out of range.
    void eval(const std::vector<TokenId>& tokens, Logits keep = Logits::Last);
    // Logits of the i-th token of the last eval (i = -1: the last one).
    const float* logits(int i = -1) const;
    int n_vocab() const { return model_->config().n_vocab; }
    int n_past() const { return n_past_; }
    int n_ctx() const { return n_ctx_; }
    void reset();
    const Model& model() const { return *model_; }
    uint64_t state_bytes() const;
    Profile& profile() { return profile_; }

private:
    struct Batch;
    void matmul(const Tensor& W, const float* x, float* y, int n_tokens);
    void attention_block(int il, Batch& b);
    void deltanet_block(int il, Batch& b);
    void ffn_block(int il, Batch& b);

    std::shared_ptr<const Model> model_;
    int n_ctx_;
    ThreadPool* pool_;
    int n_past_ = 0;
    // Per attention layer: keys [n_ctx][n_head_kv * head_dim], and values transposed,
    // [n_head_kv * head_dim][n_ctx_padded], so that each output element is one dot product.
    std::vector<std::vector<float>> k_cache_, v_cache_;
    int n_ctx_padded_ = 0;
    // Per DeltaNet layer: last (K-1) conv inputs, and the [n_v_heads][dv][dk] state.
    std::vector<std::vector<float>> conv_state_, ssm_state_;
    Profile profile_;
    std::vector<float> logits_;
    int n_logits_ = 0;
};

}  // namespace rill
