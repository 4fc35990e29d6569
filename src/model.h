// A loaded model: hyperparameters from GGUF metadata (a plain config struct), weights
// bound by name with their shapes and types checked, and the tokenizer. Weights are
// views into the file bytes; nothing is copied. When the bytes are owned (not a read-only
// map), matrices the kernels read faster in another layout are rearranged in place, once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "kernels/ops_ref.h"
#include "tokenizer/tokenizer.h"

namespace rill {

struct ArchCard;

// A weight tensor as stored: type, shape (ne[0] = input/row length) and bytes.
struct Tensor {
    TensorType type = TensorType::F32;
    int64_t ne[4] = {1, 1, 1, 1};
    const uint8_t* data = nullptr;
    SumOrder order = SumOrder::Lanes;  // how dot products with it are summed (see ops_ref.h)
    WeightLayout layout = WeightLayout::Plain;  // how its bytes are arranged (repacked at load)
    bool present() const { return data != nullptr; }
    const float* f32() const { return reinterpret_cast<const float*>(data); }
    uint64_t row_bytes() const;
    // Row r (ne[0] elements) as floats, whatever the layout (but Rows4, which interleaves rows).
    void dequantize_row(int64_t r, float* out) const;
};

struct ModelConfig {
    std::string arch;  // general.architecture
    int n_vocab = 0, n_ctx_train = 0, n_embd = 0, n_layer = 0, n_ff = 0;
    int n_head = 0, n_head_kv = 0, head_dim_k = 0, head_dim_v = 0;
    float rms_eps = 1e-5f;
    float rope_base = 10000.0f;
    int n_rot = 0;               // rotated dims per head
    bool rope_neox = false;      // pairs (i, i + n_rot/2) rather than (2i, 2i+1)
    bool attn_output_gate = false;  // Qwen 3.5: q projection carries a per-head sigmoid gate
    // The layer recipe beyond the tensors present (set by the architecture's card, src/models/):
    std::vector<bool> rope_layer;   // per layer: rotary positions applied (SmolLM3: not on every 4th)
    bool q_prescaled = false;       // Phi-3: q * 1/sqrt(head_dim) before the scores, which are not scaled again
    bool ffn_fused_up = false;      // Phi-3: ffn_up holds [gate | up], no ffn_gate
    bool fused_qkv = false;         // Phi-3: one attn_qkv projection for q | k | v
    float rope_mscale = 1.0f;       // Phi-3's LongRoPE: rope.scaling.attn_factor, a factor on cos and sin
    int n_ctx_orig = 0;             // rope.scaling.original_context_length: longer contexts take the long factors
    float rope_freq_scale = 1.0f;   // linear rope scaling: 1 / rope.scaling.factor
    // Sliding-window attention (Gemma 3): layers where swa_layer[il] see only the last swa_window
    // positions, with their own rope base and no rope scaling.
    int swa_window = 0;
    std::vector<bool> swa_layer;
    float rope_base_swa = 10000.0f, rope_freq_scale_swa = 1.0f;
    float embd_scale = 0.0f;        // Gemma: the embedding rows times sqrt(n_embd) (0: none)
    float q_scale = 0.0f;           // with q_prescaled: the factor (0: 1/sqrt(head_dim))
    bool ffn_gelu = false;          // Gemma: gelu(gate) * up (tanh form) instead of silu(gate) * up
    float logit_softcap = 0.0f;     // final_logit_softcapping: logits = cap tanh(logits / cap) (0: none)
    std::vector<int> n_head_kv_layer;  // attention.head_count_kv per block (LFM2: 0 on its convolution layers)
    // Attention geometry per layer where it varies (Gemma 4: the sliding-window layers have their
    // own head size and rotated dims; empty: head_dim_k and n_rot everywhere).
    std::vector<int> head_dim_layer, n_rot_layer;
    std::vector<int> n_ff_layer;    // feed_forward_length per block (Gemma 4's wider FFNs; empty: n_ff)
    // Per layer, the layer whose KV cache it reads (Gemma 4's last layers share an earlier one's and
    // compute no K or V of their own; empty: its own).
    std::vector<int> kv_source;
    bool v_norm = false;            // Gemma 4: V rms-normed per head (no weight); V = K where attn_v is absent
    bool rope_factors_swa = true;   // Gemma 4: rope_freqs divide the global layers' frequencies only
    int n_embd_per_layer = 0;       // Gemma 4 E2B/E4B: per-layer token embeddings of this width (0: none)
    int kv_heads(int il) const { return size_t(il) < n_head_kv_layer.size() ? n_head_kv_layer[size_t(il)] : n_head_kv; }
    int head_dim(int il) const { return size_t(il) < head_dim_layer.size() ? head_dim_layer[size_t(il)] : head_dim_k; }
    int rot_dims(int il) const { return size_t(il) < n_rot_layer.size() ? n_rot_layer[size_t(il)] : n_rot; }
    int ff(int il) const { return size_t(il) < n_ff_layer.size() ? n_ff_layer[size_t(il)] : n_ff; }
    int kv_layer(int il) const { return size_t(il) < kv_source.size() ? kv_source[size_t(il)] : il; }
    // LFM2's short convolutions on its recurrent layers (0: the recurrent layers are DeltaNet's)
    int shortconv_kernel = 0;
    // Gated DeltaNet (Qwen 3.5)
    int ssm_conv_kernel = 0, ssm_k_dim = 0, ssm_v_dim = 0, ssm_n_k_heads = 0, ssm_n_v_heads = 0;
    std::vector<bool> recurrent;  // per layer: DeltaNet (true) or attention (false)
    int n_layer_mtp = 0;          // multi-token-prediction blocks after the n_layer main ones (Qwen 3.5: 0 or 1)
    int conv_channels() const { return shortconv_kernel ? n_embd : 2 * ssm_n_k_heads * ssm_k_dim + ssm_n_v_heads * ssm_v_dim; }
    int conv_kernel() const { return shortconv_kernel ? shortconv_kernel : ssm_conv_kernel; }
};

// Model tensors that only some architectures carry.
struct ModelTensors {
    Tensor rope_long, rope_short;  // Phi-3's LongRoPE frequency divisors (rope_factors_long/short)
    Tensor rope_freqs;             // Gemma 4's proportional rope (also Model::rope_freqs())
    // Gemma 4's per-layer embeddings: rows of n_layer x n_embd_per_layer looked up per token, and
    // the projection of the scaled token embedding to the same shape, rms-normed per layer.
    Tensor per_layer_token_embd, per_layer_model_proj, per_layer_proj_norm;
};

struct LayerWeights {
    Tensor attn_norm, post_norm;  // post_norm: ffn_norm (Llama family) or post_attention_norm (Qwen 3.5)
    Tensor attn_post_norm, ffn_post_norm;  // Gemma: on the attention and FFN outputs, before the residual adds
    // attention
    Tensor wq, wk, wv, wo, bq, bk, bv, q_norm, k_norm;
    // LFM2's short convolution: in_proj gives [b | c | x]; out_proj(c * conv(b * x))
    Tensor sc_in, sc_conv, sc_out;
    // Gated DeltaNet (wqkv also a fused attention projection, Phi-3)
    Tensor wqkv, wgate, conv1d, dt_bias, ssm_a, wbeta, walpha, ssm_norm, ssm_out;
    // SwiGLU feed-forward
    Tensor ffn_gate, ffn_up, ffn_down;
    // Gemma 4: the per-layer embedding's gate [n_embd -> n_embd_per_layer], projection back and its
    // norm; and a scalar on the layer's output.
    Tensor pe_gate, pe_proj, pe_post_norm, out_scale;
};

// Qwen 3.5's multi-token-prediction block (GGUF block n_layer, `nextn_predict_layers` = 1): a
// gated full-attention block and FFN (as a main layer) fed by eh_proj [2 n_embd -> n_embd] of the
// normed embedding of the token just chosen (enorm) and the normed last hidden state (hnorm).
// embed_tokens, shared_head_head and shared_head_norm are optional (absent: the main model's
// embedding, head and output norm). Loaded and kept for speculative decoding; the main forward
// pass does not run it, so its presence leaves the main logits unchanged.
struct MtpWeights {
    LayerWeights block;
    Tensor eh_proj, enorm, hnorm, embed_tokens, shared_head_head, shared_head_norm;
};

class Model {
public:
    // The hyperparameters of a file (its metadata only), as load() reads them: rill synth draws
    // its tensors from them.
    static ModelConfig read_config(const gguf::File& file, const ArchCard** card = nullptr);
    // Throws rill::Error naming the problem: unsupported architecture, missing or
    // inconsistent key, missing tensor, wrong shape or type for its role.
    static std::shared_ptr<const Model> load(const gguf::File& file);
    static std::shared_ptr<const Model> load_file(const std::string& path) { return load(gguf::File::open(path)); }

    const ModelConfig& config() const { return config_; }
    const Tokenizer& tokenizer() const { return tokenizer_; }
    const std::vector<LayerWeights>& layers() const { return layers_; }
    const Tensor& token_embd() const { return token_embd_; }
    const Tensor& output_norm() const { return output_norm_; }
    const Tensor& output() const { return output_; }  // token_embd when tied
    const Tensor& rope_freqs() const { return rope_freqs_; }
    // The rotary frequency divisors a context of n_ctx tokens uses (null: none): rope_freqs, else
    // LongRoPE's long factors beyond the original context, its short ones within it.
    const float* rope_factors(int n_ctx) const;
    const ArchCard& card() const { return *card_; }
    const ModelTensors& extra() const { return extra_; }  // the tensors only some architectures carry
    const MtpWeights* mtp() const { return config_.n_layer_mtp ? &mtp_ : nullptr; }
    uint64_t weight_bytes() const;
    // Identifies the model a saved state belongs to: a hash of the metadata, the tensor directory
    // and bytes that loading never rearranges (the embedding's first rows, the small F32 tensors).
    uint64_t fingerprint() const { return fingerprint_; }
    const gguf::File& file() const { return file_; }

private:
    gguf::File file_;
    ModelConfig config_;
    Tokenizer tokenizer_;
    std::vector<LayerWeights> layers_;
    const ArchCard* card_ = nullptr;
    Tensor token_embd_, output_norm_, output_, rope_freqs_;
    ModelTensors extra_;
    MtpWeights mtp_;
    uint64_t fingerprint_ = 0;
};

}  // namespace rill
