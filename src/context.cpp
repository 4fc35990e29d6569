// The forward pass every architecture shares (each one's card, src/models/<arch>.cpp, says which
// variants it takes through ModelConfig and the tensors present):
//   x = embed(tokens) [* embd_scale]
//   for each layer: x += [post_norm](mixer(rms_norm(x))); x += [post_norm](ffn(rms_norm(x)))
//   logits = [soft-cap](output(rms_norm(x)))
// where the mixer is softmax attention (GQA, fused or separate projections, q/k norms, biases,
// output gate, rope variants, a sliding window), a Gated DeltaNet (Qwen 3.5) or a gated short
// convolution (LFM2), and the FFN SwiGLU or GEGLU.
#include "src/context.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <stdexcept>

#include "kernels/ops.h"
#include "kernels/quant_ref.h"
#include "rill/error.h"
#include "rill/mutation.h"
#include "src/thread_pool.h"

namespace rill {

namespace {
using Clock = std::chrono::steady_clock;
double since_ms(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }
}  // namespace


namespace {


// The first layer of a kind (attention when recurrent is false), where a mutation applies.
bool first_of_kind(const ModelConfig& c, int il) {
    if (il >= c.n_layer) return false;  // the MTP block
    for (int i = 0; i < il; ++i)
        if (c.recurrent[size_t(i)] == c.recurrent[size_t(il)]) return false;
    return true;
}

void add_bias(const Tensor& b, float* y, int n_tokens) {
    if (!b.present()) return;
    for (int t = 0; t < n_tokens; ++t)
        for (int64_t i = 0; i < b.ne[0]; ++i) y[t * b.ne[0] + i] += b.f32()[i];
}

}  // namespace

Context::Context(std::shared_ptr<const Model> model, int n_ctx, ThreadPool* pool)
    : model_(std::move(model)), n_ctx_(n_ctx), pool_(pool) {
    const ModelConfig& c = model_->config();
    if (n_ctx <= 0 || n_ctx > (1 << 26)) RILL_FAIL("context size %d must be from 1 to %d tokens", n_ctx, 1 << 26);
    n_ctx_padded_ = (n_ctx + 63) / 64 * 64;  // attention rows are processed in blocks of 64
    const size_t L = size_t(c.n_layer);
    // What the caches take, said in the error if the memory (wasm32: 4 GB with the model) cannot hold them.
    double need = 0;
    for (size_t il = 0; il < L + size_t(c.n_layer_mtp); ++il)
        need += il < L && c.recurrent[il]
                    ? double(c.conv_kernel() - 1) * c.conv_channels() + double(c.ssm_n_v_heads) * c.ssm_v_dim * c.ssm_k_dim
                    : c.kv_layer(int(il)) != int(il) ? 0.0  // reads an earlier layer's cache
                                                       : double(n_ctx + n_ctx_padded_) * c.kv_heads(int(il)) * c.head_dim(int(il));
    need *= sizeof(float);
    const auto too_big = [&] {
        RILL_FAIL("a context of %d tokens needs %.0f MB for its caches, more than the memory left next to the model (wasm32: 4 GB in all); "
                  "ask for a smaller contextSize", n_ctx, need / 1048576.0);
    };
    if (need >= double(SIZE_MAX) / 2) too_big();  // sizes would not even be representable (wasm32: 32-bit size_t)
    try {
        allocate_caches();
    } catch (const std::exception& e) {
        if (!dynamic_cast<const std::bad_alloc*>(&e) && !dynamic_cast<const std::length_error*>(&e)) throw;
        too_big();
    }
}

void Context::allocate_caches() {
    const ModelConfig& c = model_->config();
    const int n_ctx = n_ctx_;
    const size_t L = size_t(c.n_layer);
    k_cache_.resize(L + size_t(c.n_layer_mtp));
    v_cache_.resize(L + size_t(c.n_layer_mtp));
    conv_state_.resize(L);
    ssm_state_.resize(L);
    conv_ckpt_.resize(L);
    ssm_ckpt_.resize(L);
    for (size_t il = 0; il < L + size_t(c.n_layer_mtp); ++il) {
        if (il < L && c.recurrent[il]) {
            conv_state_[il].assign(size_t(c.conv_kernel() - 1) * size_t(c.conv_channels()), 0.0f);
            ssm_state_[il].assign(size_t(c.ssm_n_v_heads) * size_t(c.ssm_v_dim) * size_t(c.ssm_k_dim), 0.0f);
        } else if (c.kv_layer(int(il)) == int(il)) {
            const size_t kv_row = size_t(c.kv_heads(int(il))) * size_t(c.head_dim(int(il)));
            k_cache_[il].assign(size_t(n_ctx) * kv_row, 0.0f);
            // + 64: a packed sequence's rows are read from its first slot on, a block of 64 past n_ctx at most.
            v_cache_[il].assign(size_t(n_ctx_padded_) * kv_row + 64, 0.0f);
        }
    }
}

// Y[t] = W x[t] for every token of the batch.
void Context::matmul(const Tensor& W, const float* x, float* y, int n_tokens, const char* what) {
    const auto t0 = Clock::now();
    if (as_single_ && n_tokens > 1 && float_matmul_sums_in_blocks(W.type, W.ne[1], W.ne[0], 1) !=
                                          float_matmul_sums_in_blocks(W.type, W.ne[1], W.ne[0], n_tokens)) {
        for (int t = 0; t < n_tokens; ++t)  // this shape's one-token order differs from its batch order
            kern::matmul(W.type, W.data, W.ne[1], W.ne[0], x + t * W.ne[0], y + t * W.ne[1], 1, W.order, pool_, W.layout);
    } else {
        kern::matmul(W.type, W.data, W.ne[1], W.ne[0], x, y, n_tokens, W.order, pool_, W.layout);
    }
    profile_.ms[std::string(what) + " " + std::string(type_name(W.type))] += since_ms(t0);
}

const LayerWeights& Context::layer(int il) const {
    return il < model_->config().n_layer ? model_->layers()[size_t(il)] : model_->mtp()->block;
}

void Context::reset() {
    n_past_ = 0;
    n_logits_ = n_hidden_ = 0;
    ckpt_pos0_ = -1;
    mtp_n_ = 0;
    for (auto& s : conv_state_) std::fill(s.begin(), s.end(), 0.0f);
    for (auto& s : ssm_state_) std::fill(s.begin(), s.end(), 0.0f);
}

uint64_t Context::state_bytes() const {
    uint64_t n = 0;
    for (const auto* v : {&k_cache_, &v_cache_, &conv_state_, &ssm_state_})
        for (const auto& s : *v) n += s.size() * sizeof(float);
    return n;
}

const float* Context::logits(int i) const {
    if (n_logits_ == 0) RILL_FAIL("no logits: the last eval kept none (or nothing was evaluated since the last reset)");
    if (i < 0) i = n_logits_ - 1;
    if (i >= n_logits_) RILL_FAIL("logits of token %d requested, %d available", i, n_logits_);
    return logits_.data() + size_t(i) * size_t(n_vocab());
}

Context::Recurrent Context::save_recurrent() const {
    Recurrent r;
    r.n_past = n_past_;
    for (size_t il = 0; il < conv_state_.size(); ++il) {
        r.conv.insert(r.conv.end(), conv_state_[il].begin(), conv_state_[il].end());
        r.ssm.insert(r.ssm.end(), ssm_state_[il].begin(), ssm_state_[il].end());
    }
    return r;
}

void Context::restore_recurrent(const Recurrent& r) {
    size_t conv = 0, ssm = 0;
    for (size_t il = 0; il < conv_state_.size(); ++il) conv += conv_state_[il].size(), ssm += ssm_state_[il].size();
    if (r.conv.size() != conv || r.ssm.size() != ssm || r.n_past < 0 || r.n_past > n_ctx_)
        RILL_FAIL("a saved state of another shape (%zu + %zu values at position %d) for this context (%zu + %zu)", r.conv.size(), r.ssm.size(),
                  r.n_past, conv, ssm);
    conv = ssm = 0;
    for (size_t il = 0; il < conv_state_.size(); ++il) {
        std::copy(r.conv.begin() + long(conv), r.conv.begin() + long(conv + conv_state_[il].size()), conv_state_[il].begin());
        std::copy(r.ssm.begin() + long(ssm), r.ssm.begin() + long(ssm + ssm_state_[il].size()), ssm_state_[il].begin());
        conv += conv_state_[il].size();
        ssm += ssm_state_[il].size();
    }
    n_past_ = r.n_past;
    n_logits_ = n_hidden_ = 0;
    ckpt_pos0_ = -1;
    mtp_n_ = 0;
}

namespace {
template <typename T>
void put(std::vector<uint8_t>& out, const T* p, size_t n) {
    const auto* b = reinterpret_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n * sizeof(T));
}
// Reads n values of T, or fails naming what was cut short.
template <typename T>
void get(const uint8_t*& p, const uint8_t* end, T* dst, size_t n) {
    if (size_t(end - p) < n * sizeof(T)) RILL_FAIL("the saved state is truncated");
    std::memcpy(dst, p, n * sizeof(T));
    p += n * sizeof(T);
}
}  // namespace

void Context::write_state(std::vector<uint8_t>& out) const {
    const ModelConfig& c = model_->config();
    const uint32_t head[4] = {uint32_t(n_past_), uint32_t(k_cache_.size()), uint32_t(n_logits_ > 0 ? c.n_vocab : 0), 0};
    put(out, head, 4);
    for (size_t il = 0; il < k_cache_.size(); ++il) {
        if (k_cache_[il].empty()) continue;
        const size_t stride = k_cache_[il].size() / size_t(n_ctx_);
        put(out, k_cache_[il].data(), size_t(n_past_) * stride);
        for (size_t i = 0; i < stride; ++i) put(out, &v_cache_[il][i * size_t(n_ctx_padded_)], size_t(n_past_));
    }
    const Recurrent r = save_recurrent();
    put(out, r.conv.data(), r.conv.size());
    put(out, r.ssm.data(), r.ssm.size());
    if (n_logits_ > 0) put(out, logits(-1), size_t(c.n_vocab));
}

void Context::read_state(const uint8_t* p, size_t n) {
    const uint8_t* end = p + n;
    const ModelConfig& c = model_->config();
    uint32_t head[4];
    get(p, end, head, 4);
    const int past = int(head[0]);
    if (head[1] != k_cache_.size()) RILL_FAIL("the saved state has %u attention caches, this model %zu", head[1], k_cache_.size());
    if (past > n_ctx_) RILL_FAIL("the saved state holds %d tokens, more than the context of %d", past, n_ctx_);
    if (head[2] != 0 && head[2] != uint32_t(c.n_vocab)) RILL_FAIL("the saved state's logits have %u values, the vocabulary %d", head[2], c.n_vocab);
    // Everything is read into new buffers first: a bad state leaves this one as it was.
    std::vector<std::vector<float>> k(k_cache_.size()), v(k_cache_.size());
    for (size_t il = 0; il < k_cache_.size(); ++il) {
        if (k_cache_[il].empty()) continue;
        const size_t stride = k_cache_[il].size() / size_t(n_ctx_);
        k[il].resize(size_t(past) * stride);
        v[il].resize(size_t(past) * stride);
        get(p, end, k[il].data(), k[il].size());
        get(p, end, v[il].data(), v[il].size());
    }
    Recurrent r = save_recurrent();
    get(p, end, r.conv.data(), r.conv.size());
    get(p, end, r.ssm.data(), r.ssm.size());
    std::vector<float> last(head[2]);
    get(p, end, last.data(), last.size());
    if (p != end) RILL_FAIL("the saved state has %zu bytes too many", size_t(end - p));
    r.n_past = past;
    restore_recurrent(r);
    for (size_t il = 0; il < k_cache_.size(); ++il) {
        if (k_cache_[il].empty()) continue;
        const size_t stride = k_cache_[il].size() / size_t(n_ctx_);
        std::copy(k[il].begin(), k[il].end(), k_cache_[il].begin());
        for (size_t i = 0; i < stride; ++i)
            std::copy(v[il].begin() + long(i * size_t(past)), v[il].begin() + long((i + 1) * size_t(past)), &v_cache_[il][i * size_t(n_ctx_padded_)]);
    }
    if (!last.empty()) {
        logits_ = std::move(last);
        n_logits_ = 1;
        logits_all_ = false;
    }
}

void Context::truncate(int n_past) {
    if (has_recurrent()) RILL_FAIL("truncate: a model with recurrent layers comes back through a saved state only");
    if (n_past < 0 || n_past > n_past_) RILL_FAIL("truncate to %d of %d tokens", n_past, n_past_);
    n_past_ = n_past;
    n_logits_ = n_hidden_ = 0;
    ckpt_pos0_ = -1;
    mtp_n_ = 0;
}

const float* Context::hidden(int i) const {
    if (i < 0 || i >= n_hidden_) RILL_FAIL("hidden state of token %d requested, %d kept by the last eval", i, n_hidden_);
    return hidden_.data() + size_t(i) * size_t(model_->config().n_embd);
}

void Context::rollback(int n_keep) {
    if (ckpt_pos0_ < 0 || ckpt_pos0_ + ckpt_n_ != n_past_)
        RILL_FAIL("rollback needs the last eval to have kept checkpoints");
    if (n_keep < 1 || n_keep > ckpt_n_) RILL_FAIL("rollback to %d of the last eval's %d tokens", n_keep, ckpt_n_);
    if (n_keep == ckpt_n_) return;
    const ModelConfig& c = model_->config();
    for (int il = 0; il < c.n_layer; ++il) {
        if (!c.recurrent[size_t(il)]) continue;
        for (auto [state, ckpt] : {std::pair{&conv_state_[size_t(il)], &conv_ckpt_[size_t(il)]}, std::pair{&ssm_state_[size_t(il)], &ssm_ckpt_[size_t(il)]}}) {
            const size_t n = state->size();
            std::copy(ckpt->begin() + long(size_t(n_keep - 1) * n), ckpt->begin() + long(size_t(n_keep) * n), state->begin());
        }
    }
    n_past_ = ckpt_pos0_ + n_keep;
    ckpt_n_ = n_keep;
    n_logits_ = logits_all_ ? n_keep : 0;  // a Last row belonged to a dropped token
    n_hidden_ = std::min(n_hidden_, n_keep);
}

void Context::eval(const std::vector<TokenId>& tokens, const EvalOptions& opt) {
    const Logits keep = opt.keep;
    const ModelConfig& c = model_->config();
    const int n = int(tokens.size());
    if (n == 0) RILL_FAIL("eval needs at least one token");
    if (n_past_ + n > n_ctx_)
        RILL_FAIL("%d tokens at position %d do not fit the context of %d tokens", n, n_past_, n_ctx_);
    for (TokenId t : tokens)
        if (t < 0 || t >= c.n_vocab) RILL_FAIL("token id %d is out of range (vocabulary has %d tokens)", t, c.n_vocab);
    const bool packed = !opt.sequences.empty();
    if (packed) {
        if (n_past_ != 0) RILL_FAIL("packed sequences are evaluated from an empty context (this one holds %d tokens)", n_past_);
        if (has_recurrent()) RILL_FAIL("packed sequences need an attention-only model (this one carries recurrent state)");
        if (opt.checkpoints) RILL_FAIL("packed sequences take no checkpoints");
        long total = 0;
        for (int len : opt.sequences) {
            if (len <= 0) RILL_FAIL("a packed sequence of %d tokens", len);
            total += len;
        }
        if (total != n) RILL_FAIL("packed sequences of %ld tokens in all, for a batch of %d", total, n);
    }

    const auto t_eval = Clock::now();
    profile_.tokens += n;
    as_single_ = opt.as_single;
    struct Reset {  // this eval's summing mode ends with it, however it ends
        bool& flag;
        ~Reset() { flag = false; }
    } reset_as_single{as_single_};
    ckpt_pos0_ = opt.checkpoints ? n_past_ : -1;
    ckpt_n_ = n;
    if (opt.checkpoints)
        for (int il = 0; il < c.n_layer; ++il)
            if (c.recurrent[size_t(il)]) {
                conv_ckpt_[size_t(il)].resize(conv_state_[size_t(il)].size() * size_t(n - 1));
                ssm_ckpt_[size_t(il)].resize(ssm_state_[size_t(il)].size() * size_t(n - 1));
            }
    Batch b;
    b.n = n;
    b.pos0 = n_past_;
    for (size_t i = 0, start = 0; packed && i < opt.sequences.size(); start += size_t(opt.sequences[i++]))
        b.seq_first.insert(b.seq_first.end(), size_t(opt.sequences[i]), int(start));
    const int64_t E = c.n_embd;
    b.x.resize(size_t(n * E));
    b.h.resize(size_t(n * E));
    const Tensor& emb = model_->token_embd();
    for (int t = 0; t < n; ++t)
        emb.dequantize_row(tokens[size_t(t)], b.x.data() + t * E);
    if (c.embd_scale > 0)
        for (float& v : b.x) v *= c.embd_scale;
    if (c.n_embd_per_layer) per_layer_inputs(tokens, b);

    const auto norm_rows = [&](const float* x, const Tensor& w, float* y, int rows) {
        for (int t = 0; t < rows; ++t) kern::rms_norm(x + t * E, w.f32(), y + t * E, E, c.rms_eps);
    };
    const auto ffn_part = [&](int il, Batch& bb) {
        norm_rows(bb.x.data(), layer(il).post_norm, bb.h.data(), bb.n);
        ffn_block(il, bb);
        if (c.n_embd_per_layer) per_layer_block(il, bb);
        if (const Tensor& s = layer(il).out_scale; s.present())
            for (float& v : bb.x) v *= s.f32()[0];
    };
    const size_t pe_row = size_t(c.n_layer) * size_t(c.n_embd_per_layer);  // per-layer inputs per token (Gemma 4)
    n_hidden_ = 0;
    for (int il = 0; il < c.n_layer; ++il) {
        norm_rows(b.x.data(), layer(il).attn_norm, b.h.data(), b.n);
        if (c.recurrent[size_t(il)]) c.shortconv_kernel ? shortconv_block(il, b) : deltanet_block(il, b);
        else attention_block(il, b);
        if (il == c.n_layer - 1 && keep != Logits::All) {
            // Past the last mixer only output tokens matter (the state that later tokens read
            // is already written): keep the last row, or none (as llama.cpp does). The hidden
            // states of the others, if asked for, go through the last FFN as a batch of their own,
            // so that the kept row is summed as it is without them.
            const int n_out = keep == Logits::Last ? 1 : 0, n_rest = b.n - n_out;
            if (opt.hidden && n_rest > 0) {
                Batch rest;
                rest.n = n_rest;
                rest.pos0 = b.pos0;
                rest.x.assign(b.x.begin(), b.x.begin() + n_rest * E);
                rest.pe.assign(b.pe.begin(), b.pe.begin() + long(size_t(n_rest) * pe_row));
                rest.h.resize(rest.x.size());
                ffn_part(il, rest);
                hidden_.resize(size_t(n * E));
                norm_rows(rest.x.data(), model_->output_norm(), hidden_.data(), n_rest);
                n_hidden_ = n_rest;
            }
            if (n_out && b.n > 1) {
                std::copy(b.x.begin() + (b.n - 1) * E, b.x.begin() + b.n * E, b.x.begin());
                std::copy(b.pe.begin() + long(size_t(b.n - 1) * pe_row), b.pe.begin() + long(size_t(b.n) * pe_row), b.pe.begin());
            }
            b.n = n_out;
            if (b.n == 0) break;
        }
        ffn_part(il, b);
    }

    logits_all_ = keep == Logits::All;
    n_logits_ = keep == Logits::None ? 0 : b.n;
    n_past_ = packed ? 0 : n_past_ + n;  // packed texts leave nothing a later eval could continue
    if (n_logits_ == 0) {
        profile_.ms["total"] += since_ms(t_eval);
        return;
    }
    logits_.resize(size_t(n_logits_) * size_t(c.n_vocab));
    std::vector<float> normed(static_cast<size_t>(b.n) * size_t(E));
    norm_rows(b.x.data(), model_->output_norm(), normed.data(), b.n);
    if (opt.hidden) {  // the output rows' hidden states follow the others'
        hidden_.resize(size_t(n * E));
        std::copy(normed.begin(), normed.end(), hidden_.begin() + long(size_t(n_hidden_) * size_t(E)));
        n_hidden_ += b.n;
    }
    matmul(model_->output(), normed.data(), logits_.data(), b.n, "lm_head");
    if (c.logit_softcap > 0)  // ggml: scale by 1/cap, tanhf (glibc's), scale by cap
        for (size_t i = 0; i < size_t(b.n) * size_t(c.n_vocab); ++i)
            logits_[i] = tanhf_libm(logits_[i] * (1.0f / c.logit_softcap)) * c.logit_softcap;
    profile_.ms["total"] += since_ms(t_eval);
}

// Softmax attention with grouped KV heads, optional q/k RMS norms and biases, rotary
// positions on the first n_rot dims, and (Qwen 3.5) a sigmoid gate per output element.
void Context::attention_block(int il, Batch& b) {
    const ModelConfig& c = model_->config();
    const LayerWeights& L = layer(il);
    const int n = b.n, H = c.n_head, HKV = c.kv_heads(il), D = c.head_dim(il), n_rot = c.rot_dims(il);
    const int src = c.kv_layer(il);  // whose cache it reads: its own, or (Gemma 4) an earlier layer's
    const bool own_kv = src == il;
    const int64_t E = c.n_embd, q_stride = int64_t(H) * D * (c.attn_output_gate ? 2 : 1), kv_stride = int64_t(HKV) * D;
    const size_t kv_values = own_kv ? size_t(n * kv_stride) : 0;  // a layer reading another's cache has no k or v
    std::vector<float> q(static_cast<size_t>(n * q_stride)), k(kv_values), v(kv_values);
    if (!own_kv) {
        matmul(L.wq, b.h.data(), q.data(), n);
    } else if (L.wqkv.present()) {  // one fused projection: each token's row is [q | k | v]
        const int64_t rows = q_stride + 2 * kv_stride;
        std::vector<float> qkv(static_cast<size_t>(n * rows));
        matmul(L.wqkv, b.h.data(), qkv.data(), n);
        for (int t = 0; t < n; ++t) {
            const float* r = &qkv[size_t(t * rows)];
            std::copy(r, r + q_stride, &q[size_t(t * q_stride)]);
            std::copy(r + q_stride, r + q_stride + kv_stride, &k[size_t(t * kv_stride)]);
            std::copy(r + q_stride + kv_stride, r + rows, &v[size_t(t * kv_stride)]);
        }
    } else {
        matmul(L.wq, b.h.data(), q.data(), n);
        matmul(L.wk, b.h.data(), k.data(), n);
        if (L.wv.present()) matmul(L.wv, b.h.data(), v.data(), n);
        else v = k;  // Gemma 4 without attn_v: the values are the keys' projection (normed apart)
    }
    add_bias(L.bq, q.data(), n);
    add_bias(L.bk, k.data(), n);
    add_bias(L.bv, v.data(), n);

    const bool rotate = c.rope_layer[size_t(il)], swa = c.swa_layer[size_t(il)];
    const float* freq_factors = swa && !c.rope_factors_swa ? nullptr : model_->rope_factors(n_ctx_);
    const float rope_base = swa ? c.rope_base_swa : c.rope_base, rope_scale = swa ? c.rope_freq_scale_swa : c.rope_freq_scale;
    const float scale = c.q_scale > 0 ? c.q_scale : 1.0f / std::sqrt(float(D));
    // With an output gate each head's q projection is [q (D) | gate (D)].
    const int q_head_stride = c.attn_output_gate ? 2 * D : D;
    // The token's rotation, computed once for all its heads (sin and cos are most of rope's cost).
    std::vector<float> rope_cos(size_t(n_rot / 2)), rope_sin(size_t(n_rot / 2));
    for (int t = 0; t < n; ++t) {
        const int slot = b.pos0 + t, pos = b.seq_first.empty() ? slot : slot - b.seq_first[size_t(t)];
        if (rotate) rope_angles(n_rot, pos, rope_base, freq_factors, c.rope_mscale, rope_scale, rope_cos.data(), rope_sin.data());
        for (int h = 0; h < H; ++h) {
            float* qh = &q[size_t(t * q_stride + h * q_head_stride)];
            if (L.q_norm.present()) kern::rms_norm(qh, L.q_norm.f32(), qh, D, c.rms_eps);
            if (rotate) rope_rotate(qh, n_rot, c.rope_neox, rope_cos.data(), rope_sin.data());
            if (c.q_prescaled)
                for (int i = 0; i < D; ++i) qh[i] *= scale;
            if (mutation::on("rope-angle") && first_of_kind(c, il)) {  // pair 1's angle 0.01 rad off
                const int a = c.rope_neox ? 1 : 2, bb = c.rope_neox ? 1 + n_rot / 2 : 3;
                const float x0 = qh[a], x1 = qh[bb], cs = std::cos(0.01f), sn = std::sin(0.01f);
                qh[a] = x0 * cs - x1 * sn;
                qh[bb] = x0 * sn + x1 * cs;
            }
        }
        if (!own_kv) continue;
        for (int h = 0; h < HKV; ++h) {
            float* kh = &k[size_t(t * kv_stride + h * D)];
            if (L.k_norm.present()) kern::rms_norm(kh, L.k_norm.f32(), kh, D, c.rms_eps);
            if (rotate) rope_rotate(kh, n_rot, c.rope_neox, rope_cos.data(), rope_sin.data());
            if (c.v_norm) kern::rms_norm(&v[size_t(t * kv_stride + h * D)], nullptr, &v[size_t(t * kv_stride + h * D)], D, c.rms_eps);
        }
        std::memcpy(&k_cache_[size_t(il)][size_t(slot) * size_t(kv_stride)], &k[size_t(t * kv_stride)], sizeof(float) * size_t(kv_stride));
        for (int64_t i = 0; i < kv_stride; ++i) v_cache_[size_t(il)][size_t(i) * size_t(n_ctx_padded_) + size_t(slot)] = v[size_t(t * kv_stride + i)];
    }

    const auto t_core = Clock::now();
    const float score_scale = c.q_prescaled ? 1.0f : scale;
    std::vector<float> attn(static_cast<size_t>(n) * size_t(H) * size_t(D));
    // Work items: the query heads of one KV head for a tile of up to kTile tokens of one sequence,
    // which read that head's keys and values once (a long context's caches do not fit the caches of
    // the CPU: read once per query, they made prefill memory-bound). With too few items for the
    // threads (decode), the heads of a group are split between them.
    constexpr int kTile = 4;
    const int group = H / HKV;
    struct Item { int t0, t1, hkv, h0, h1; };
    std::vector<Item> items;
    const int nth = pool_ ? pool_->size() : 1;
    for (int t0 = 0; t0 < n;) {
        int t1 = t0 + 1;
        const int start0 = b.seq_first.empty() ? 0 : b.seq_first[size_t(t0)];
        while (t1 < n && t1 - t0 < kTile && (b.seq_first.empty() || b.seq_first[size_t(t1)] == start0)) ++t1;
        for (int hkv = 0; hkv < HKV; ++hkv) items.push_back({t0, t1, hkv, hkv * group, (hkv + 1) * group});
        t0 = t1;
    }
    if (int(items.size()) < nth && group > 1) {  // split each group's heads into parts
        const int parts = std::min(group, (nth + int(items.size()) - 1) / int(items.size()));
        std::vector<Item> split;
        for (const Item& it : items)
            for (int p = 0; p < parts; ++p) split.push_back({it.t0, it.t1, it.hkv, it.h0 + group * p / parts, it.h0 + group * (p + 1) / parts});
        items.swap(split);
    }
    auto heads = [&](int ith, int nth_run) {
        std::vector<AttentionQuery> queries;
        std::vector<float> scores;
        for (size_t w = items.size() * size_t(ith) / size_t(nth_run); w < items.size() * size_t(ith + 1) / size_t(nth_run); ++w) {
            const Item& it = items[w];
            // Causal: each token sees itself and every earlier one of its sequence, whose slots are read
            // as if they began at 0 (a packed text sums in the order it sums alone).
            const int start = b.seq_first.empty() ? 0 : b.seq_first[size_t(it.t0)];
            queries.clear();
            int max_kv = 0;
            for (int t = it.t0; t < it.t1; ++t) {
                const int n_kv = b.pos0 + t + 1 - start;
                const int first = swa ? std::max(0, n_kv - c.swa_window) : 0;  // a sliding window: the last swa_window of them
                max_kv = std::max(max_kv, n_kv);
                for (int h = it.h0; h < it.h1; ++h)
                    queries.push_back({&q[size_t(t * q_stride + h * q_head_stride)], n_kv, first, &attn[size_t((t * H + h) * D)]});
            }
            scores.resize(queries.size() * size_t(attention_scores_stride(max_kv)));
            kern::attention_queries(queries.data(), int64_t(queries.size()), &k_cache_[size_t(src)][size_t(start) * size_t(kv_stride) + size_t(it.hkv * D)],
                                    &v_cache_[size_t(src)][size_t(it.hkv * D) * size_t(n_ctx_padded_) + size_t(start)], D, kv_stride, n_ctx_padded_,
                                    score_scale, n > 1 && !as_single_, scores.data());
            if (c.attn_output_gate)
                for (int t = it.t0; t < it.t1; ++t)
                    for (int h = it.h0; h < it.h1; ++h) {
                        float* out = &attn[size_t((t * H + h) * D)];
                        const float* gate = &q[size_t(t * q_stride + h * q_head_stride + D)];
                        for (int i = 0; i < D; ++i) out[i] *= sigmoid(gate[i]);
                    }
        }
    };
    if (pool_) pool_->run(heads);
    else heads(0, 1);
    profile_.ms["attention (scores, softmax, values)"] += since_ms(t_core);
    std::vector<float> o(static_cast<size_t>(n * E));
    matmul(L.wo, attn.data(), o.data(), n);
    if (L.attn_post_norm.present())
        for (int t = 0; t < n; ++t) kern::rms_norm(&o[size_t(t * E)], L.attn_post_norm.f32(), &o[size_t(t * E)], E, c.rms_eps);
    for (size_t i = 0; i < o.size(); ++i) b.x[i] += o[i];
}

// Gated DeltaNet (Qwen 3.5): q|k|v projection through a causal conv1d and SiLU; q, k
// L2-normalised per head; per value head a decaying state updated by the delta rule;
// the read-out RMS-normalised, gated by silu(z), and projected back.
void Context::deltanet_block(int il, Batch& b) {
    const ModelConfig& c = model_->config();
    const LayerWeights& L = layer(il);
    const int n = b.n, nk = c.ssm_n_k_heads, nv = c.ssm_n_v_heads, dk = c.ssm_k_dim, dv = c.ssm_v_dim;
    const int64_t E = c.n_embd, C = c.conv_channels(), value_dim = int64_t(nv) * dv;
    std::vector<float> qkv(static_cast<size_t>(n * C)), z(static_cast<size_t>(n * value_dim)), beta(static_cast<size_t>(n * nv)), alpha(static_cast<size_t>(n * nv));
    matmul(L.wqkv, b.h.data(), qkv.data(), n);
    matmul(L.wgate, b.h.data(), z.data(), n);
    matmul(L.wbeta, b.h.data(), beta.data(), n);
    matmul(L.walpha, b.h.data(), alpha.data(), n);

    const auto t_core = Clock::now();
    // The conv1d token by token (sequential through its window), then SiLU and the q/k L2 norms,
    // independent per token, the tokens split between the threads.
    std::vector<float> mixed(static_cast<size_t>(n * C)), out(static_cast<size_t>(n * E)), mixed_out(static_cast<size_t>(n * value_dim));
    for (int t = 0; t < n; ++t) {
        std::vector<float>& conv = conv_state_[size_t(il)];
        kern::conv1d_causal_step(conv.data(), &qkv[size_t(t * C)], L.conv1d.f32(), C, c.ssm_conv_kernel, &mixed[size_t(t * C)]);
        if (ckpt_pos0_ >= 0 && t + 1 < n) std::copy(conv.begin(), conv.end(), conv_ckpt_[size_t(il)].begin() + long(size_t(t) * conv.size()));
    }
    const auto activate = [&](int ith, int nth) {
        for (int t = n * ith / nth; t < n * (ith + 1) / nth; ++t) {
            float* m = &mixed[size_t(t * C)];
            kern::silu_inplace(m, C);
            l2_norm_rows(m, 2 * int64_t(nk), dk, c.rms_eps);  // the q heads, then the k heads
        }
    };
    if (pool_ && n > 1) pool_->run(activate);
    else activate(0, 1);
    // Value heads are independent: each thread runs its heads through every token in turn.
    const float q_scale = 1.0f / std::sqrt(float(dk));
    auto heads = [&](int ith, int nth) {
        for (int h = nv * ith / nth; h < nv * (ith + 1) / nth; ++h) {
            const int hk = h % nk;  // value heads tile the key heads
            float* S = &ssm_state_[size_t(il)][size_t(h) * size_t(dv) * size_t(dk)];
            for (int t = 0; t < n; ++t) {
                const float* q = &mixed[size_t(t * C)];
                const float* k = q + int64_t(nk) * dk;
                const float* v = k + int64_t(nk) * dk;
                float g = softplus(alpha[size_t(t * nv + h)] + L.dt_bias.f32()[h]) * L.ssm_a.f32()[h];
                if (mutation::on("decay-position") && first_of_kind(c, il)) {  // the previous token's decay
                    static std::vector<float> previous(4096, 0.0f);
                    std::swap(g, previous[size_t(h)]);
                }
                const float bt = sigmoid(beta[size_t(t * nv + h)]);
                float* o = &mixed_out[size_t(t * value_dim + h * dv)];
                // With checkpoints, the state after each token but the last is written straight into
                // its checkpoint and read from there by the next token: no copies.
                const bool keep = ckpt_pos0_ >= 0;
                const size_t head = size_t(dv) * size_t(dk);
                const auto ckpt = [&](int i) { return &ssm_ckpt_[size_t(il)][(size_t(i) * size_t(nv) + size_t(h)) * head]; };
                const float* S_in = keep && t > 0 ? ckpt(t - 1) : S;
                float* S_out = keep && t + 1 < n ? ckpt(t) : S;
                kern::delta_rule_step(S_in, S_out, q + hk * dk, k + hk * dk, v + h * dv, g, bt, q_scale, dk, dv, o);
                kern::rms_norm(o, L.ssm_norm.f32(), o, dv, c.rms_eps);
                float* zh = &z[size_t(t * value_dim + h * dv)];
                kern::silu_inplace(zh, dv);  // llama.cpp applies SiLU to z one head (row) at a time
                for (int i = 0; i < dv; ++i) o[i] *= zh[i];
            }
        }
    };
    if (pool_) pool_->run(heads);
    else heads(0, 1);
    profile_.ms["deltanet (conv, delta rule, norms)"] += since_ms(t_core);
    matmul(L.ssm_out, mixed_out.data(), out.data(), n);
    for (size_t i = 0; i < out.size(); ++i) b.x[i] += out[i];
}

// LFM2's gated short convolution: [b | c | x] = in_proj(h); y = c * conv1d(b * x) over the last
// shortconv_kernel positions (the conv state holds the previous b * x); out_proj(y).
void Context::shortconv_block(int il, Batch& b) {
    const ModelConfig& c = model_->config();
    const LayerWeights& L = layer(il);
    const int n = b.n;
    const int64_t E = c.n_embd;
    std::vector<float> bcx(static_cast<size_t>(n * 3 * E)), bx(static_cast<size_t>(E)), y(static_cast<size_t>(n * E)), out(static_cast<size_t>(n * E));
    matmul(L.sc_in, b.h.data(), bcx.data(), n);
    const auto t_core = Clock::now();
    std::vector<float>& conv = conv_state_[size_t(il)];
    for (int t = 0; t < n; ++t) {
        const float* r = &bcx[size_t(t * 3 * E)];
        for (int64_t i = 0; i < E; ++i) bx[size_t(i)] = r[i] * r[2 * E + i];
        float* yt = &y[size_t(t * E)];
        kern::conv1d_causal_step(conv.data(), bx.data(), L.sc_conv.f32(), E, c.shortconv_kernel, yt);
        if (ckpt_pos0_ >= 0 && t + 1 < n) std::copy(conv.begin(), conv.end(), conv_ckpt_[size_t(il)].begin() + long(size_t(t) * conv.size()));
        for (int64_t i = 0; i < E; ++i) yt[i] *= r[E + i];
    }
    profile_.ms["short conv"] += since_ms(t_core);
    matmul(L.sc_out, y.data(), out.data(), n);
    for (size_t i = 0; i < out.size(); ++i) b.x[i] += out[i];
}

// SwiGLU: down(silu(gate(h)) * up(h)); with a fused up projection (Phi-3) [gate | up] = up(h).
void Context::ffn_block(int il, Batch& b) {
    const ModelConfig& c = model_->config();
    const LayerWeights& L = layer(il);
    const int n = b.n;
    const int64_t E = c.n_embd, F = c.ff(il);
    std::vector<float> gate(static_cast<size_t>(n * F)), down(static_cast<size_t>(n * E));
    if (c.ffn_fused_up) {
        std::vector<float> gu(static_cast<size_t>(n * 2 * F));
        matmul(L.ffn_up, b.h.data(), gu.data(), n);
        for (int t = 0; t < n; ++t) kern::swiglu(&gu[size_t(t * 2 * F)], &gu[size_t(t * 2 * F + F)], &gate[size_t(t * F)], F);
    } else {
        std::vector<float> up(static_cast<size_t>(n * F));
        matmul(L.ffn_gate, b.h.data(), gate.data(), n);
        matmul(L.ffn_up, b.h.data(), up.data(), n);
        for (int t = 0; t < n; ++t)
            (c.ffn_gelu ? kern::geglu : kern::swiglu)(&gate[size_t(t * F)], &up[size_t(t * F)], &gate[size_t(t * F)], F);
    }
    matmul(L.ffn_down, gate.data(), down.data(), n);
    if (mutation::on("weight-row") && il == 0)  // row 0 of ffn_down scaled by 1 + 1e-3
        for (int t = 0; t < n; ++t) down[size_t(t * E)] *= 1.001f;
    if (L.ffn_post_norm.present())
        for (int t = 0; t < n; ++t) kern::rms_norm(&down[size_t(t * E)], L.ffn_post_norm.f32(), &down[size_t(t * E)], E, c.rms_eps);
    for (size_t i = 0; i < down.size(); ++i) b.x[i] += down[i];
}

// Gemma 4's per-layer inputs, one row of n_embd_per_layer per token and layer:
// (rms_norm(per_layer_model_proj(x) / sqrt(n_embd)) + per_layer_token_embd(token) * sqrt(n_pe)) / sqrt(2),
// x being the scaled token embedding; each float step as llama.cpp's graph takes it.
void Context::per_layer_inputs(const std::vector<TokenId>& tokens, Batch& b) {
    const ModelConfig& c = model_->config();
    const ModelTensors& m = model_->extra();
    const int n = b.n, P = c.n_embd_per_layer;
    const int64_t row = int64_t(c.n_layer) * P;
    b.pe.resize(size_t(n) * size_t(row));
    matmul(m.per_layer_model_proj, b.x.data(), b.pe.data(), n, "per-layer");
    const float proj_scale = 1.0f / std::sqrt(float(c.n_embd)), tok_scale = std::sqrt(float(P)), input_scale = 1.0f / std::sqrt(2.0f);
    std::vector<float> tok(static_cast<size_t>(row));
    const Tensor& emb = m.per_layer_token_embd;
    for (int t = 0; t < n; ++t) {
        float* r = &b.pe[size_t(t) * size_t(row)];
        for (int64_t i = 0; i < row; ++i) r[i] *= proj_scale;
        for (int il = 0; il < c.n_layer; ++il) kern::rms_norm(r + il * P, m.per_layer_proj_norm.f32(), r + il * P, P, c.rms_eps);
        emb.dequantize_row(tokens[size_t(t)], tok.data());
        for (int64_t i = 0; i < row; ++i) r[i] = (r[i] + tok[size_t(i)] * tok_scale) * input_scale;
    }
}

// Gemma 4's per-layer embedding block: x += rms_norm(proj(gelu(inp_gate(x)) * p[il])).
void Context::per_layer_block(int il, Batch& b) {
    const ModelConfig& c = model_->config();
    const LayerWeights& L = layer(il);
    const int n = b.n, P = c.n_embd_per_layer;
    const int64_t E = c.n_embd, row = int64_t(c.n_layer) * P;
    std::vector<float> g(static_cast<size_t>(n) * size_t(P)), y(static_cast<size_t>(n * E));
    matmul(L.pe_gate, b.x.data(), g.data(), n);
    for (int t = 0; t < n; ++t) {
        float* gt = &g[size_t(t) * size_t(P)];
        kern::gelu(gt, gt, P);
        const float* p = &b.pe[size_t(t) * size_t(row) + size_t(il) * size_t(P)];
        for (int i = 0; i < P; ++i) gt[i] *= p[i];
    }
    matmul(L.pe_proj, g.data(), y.data(), n);
    for (int t = 0; t < n; ++t) kern::rms_norm(&y[size_t(t * E)], L.pe_post_norm.f32(), &y[size_t(t * E)], E, c.rms_eps);
    for (size_t i = 0; i < y.size(); ++i) b.x[i] += y[i];
}

}  // namespace rill
