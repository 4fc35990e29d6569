// Qwen 3.5's multi-token-prediction (MTP) head: from the hidden state that predicted a token
// and that token, the logits of the token after it (llama.cpp: graph_mtp in src/models/qwen35.cpp).
//
//   e = enorm(embed(token))              embed: nextn.embed_tokens, else the main embedding
//   h = hnorm(h_prev)                    h_prev: the main model's output-normed final state at the
//                                        previous position (or the MTP's own h_out when chained)
//   x = eh_proj([e ; h])
//   x += gated_attention(attn_norm(x))   a full-attention block with its own KV cache
//   x += ffn(post_attention_norm(x))
//   h_out = head_norm(x)                 nextn.shared_head_norm, else output_norm
//   logits = head(h_out)                 nextn.shared_head_head, else the main head
//
// The cache holds, at each position p, the pair (token p, h_prev of p): a draft at the end of the
// evaluated text reads every earlier pair, as llama.cpp's draft context does.
#include <algorithm>

#include "kernels/ops.h"
#include "kernels/quant_ref.h"
#include "rill/error.h"
#include "src/context.h"

namespace rill {

void Context::mtp_eval(const TokenId* tokens, const float* h_prev, int n, int pos0, Logits keep) {
    const MtpWeights* mtp = model_->mtp();
    if (!mtp) RILL_FAIL("the model has no multi-token-prediction block");
    const ModelConfig& c = model_->config();
    if (n <= 0) RILL_FAIL("mtp_eval needs at least one token");
    if (pos0 < 0 || pos0 + n > n_ctx_)
        RILL_FAIL("MTP positions %d..%d do not fit the context of %d tokens", pos0, pos0 + n - 1, n_ctx_);
    const int64_t E = c.n_embd;
    const Tensor& emb = mtp->embed_tokens.present() ? mtp->embed_tokens : model_->token_embd();
    std::vector<float> eh(static_cast<size_t>(n) * size_t(2 * E)), row(static_cast<size_t>(E));
    for (int t = 0; t < n; ++t) {
        if (tokens[t] < 0 || tokens[t] >= c.n_vocab) RILL_FAIL("token id %d is out of range (vocabulary has %d tokens)", tokens[t], c.n_vocab);
        float* e = &eh[size_t(t) * size_t(2 * E)];
        emb.dequantize_row(tokens[t], row.data());
        kern::rms_norm(row.data(), mtp->enorm.f32(), e, E, c.rms_eps);
        kern::rms_norm(h_prev + t * E, mtp->hnorm.f32(), e + E, E, c.rms_eps);
    }
    Batch b;
    b.n = n;
    b.pos0 = pos0;
    b.x.resize(size_t(n * E));
    b.h.resize(size_t(n * E));
    matmul(mtp->eh_proj, eh.data(), b.x.data(), n, "mtp");

    const int il = c.n_layer;  // the MTP block's slot in the caches
    for (int t = 0; t < n; ++t) kern::rms_norm(&b.x[size_t(t * E)], mtp->block.attn_norm.f32(), &b.h[size_t(t * E)], E, c.rms_eps);
    attention_block(il, b);
    mtp_n_ = 0;
    if (keep == Logits::None) return;  // the FFN only feeds the head: a cache-filling pass stops at the attention
    if (keep == Logits::Last && n > 1) {  // only the last row goes on, as when a draft batch asks for one output
        std::copy(b.x.begin() + (n - 1) * E, b.x.end(), b.x.begin());
        b.n = 1;
    }
    for (int t = 0; t < b.n; ++t) kern::rms_norm(&b.x[size_t(t * E)], mtp->block.post_norm.f32(), &b.h[size_t(t * E)], E, c.rms_eps);
    ffn_block(il, b);
    const Tensor& norm = mtp->shared_head_norm.present() ? mtp->shared_head_norm : model_->output_norm();
    mtp_hidden_.resize(size_t(b.n) * size_t(E));
    for (int t = 0; t < b.n; ++t) kern::rms_norm(&b.x[size_t(t * E)], norm.f32(), &mtp_hidden_[size_t(t * E)], E, c.rms_eps);
    mtp_logits_.resize(size_t(b.n) * size_t(c.n_vocab));
    matmul(mtp->shared_head_head.present() ? mtp->shared_head_head : model_->output(), mtp_hidden_.data(), mtp_logits_.data(), b.n,
           "mtp head");
    mtp_n_ = b.n;
}

const float* Context::mtp_logits(int i) const {
    if (i < 0) i = mtp_n_ - 1;
    if (i < 0 || i >= mtp_n_) RILL_FAIL("MTP logits of row %d requested, the last MTP eval kept %d", i, mtp_n_);
    return mtp_logits_.data() + size_t(i) * size_t(model_->config().n_vocab);
}

const float* Context::mtp_hidden(int i) const {
    if (i < 0) i = mtp_n_ - 1;
    if (i < 0 || i >= mtp_n_) RILL_FAIL("MTP hidden state of row %d requested, the last MTP eval kept %d", i, mtp_n_);
    return mtp_hidden_.data() + size_t(i) * size_t(model_->config().n_embd);
}

}  // namespace rill
