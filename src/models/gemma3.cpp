// Gemma 3 text models: 270M, 1B, 4B and up (llama.cpp: src/models/gemma3.cpp).
//
//   x = embed(tokens) * sqrt(n_embd)
//   per layer:  x += rms_norm(attention(rms_norm(x)))   post-norm on the output (attn_post_norm)
//                 q, k rms-normed per head, neox rope; q * 1/sqrt(head_dim) before the scores;
//                 sliding-window layers (5 of every 6 by default) see the last sliding_window
//                 positions and rotate with rope.freq_base_swa, unscaled; the global ones with
//                 rope.freq_base and the file's linear rope scaling
//               x += rms_norm(ffn(rms_norm(x)))         down(gelu(gate(h)) * up(h)), GELU's tanh form
//   logits = output(rms_norm(x))                        cap tanh(logits / cap) if final_logit_softcapping
//
// The norms' weights are stored as 1 + w by the converter. Refused: EmbeddingGemma's dense layers.
#include "src/arch.h"

#include <cmath>

#include "rill/error.h"

namespace rill {

namespace {

void configure(const MetaKeys& k, ModelConfig& c) {
    if (k.f.find_tensor("dense_2.weight") || k.f.find_tensor("dense_3.weight"))
        RILL_FAIL("gemma3: dense_2 / dense_3 projections (EmbeddingGemma) are not supported");
    c.rope_neox = true;
    c.embd_scale = std::sqrt(float(c.n_embd));
    c.q_prescaled = true;
    // llama.cpp: the 27B model (62 layers) scales by 1/sqrt(n_embd / n_head), the others by 1/sqrt(head_dim).
    c.q_scale = c.n_layer == 62 ? 1.0f / std::sqrt(float(c.n_embd / c.n_head)) : 1.0f / std::sqrt(float(c.head_dim_k));
    c.ffn_gelu = true;
    c.logit_softcap = float(k.number("final_logit_softcapping", 0.0));
    if (!(c.logit_softcap >= 0)) RILL_FAIL("%sfinal_logit_softcapping = %g must be positive", k.prefix.c_str(), double(c.logit_softcap));
    c.swa_window = int(k.integer("attention.sliding_window", 0));
    if (c.swa_window < 0) RILL_FAIL("%sattention.sliding_window = %d must not be negative", k.prefix.c_str(), c.swa_window);
    if (c.swa_window == 0) return;
    c.rope_base_swa = float(k.number("rope.freq_base_swa", 10000.0));
    const gguf::Value* p = k.find("attention.sliding_window_pattern");
    if (p && p->type == gguf::ValueType::ARRAY) {  // one flag per layer
        if (p->count != uint64_t(c.n_layer))
            RILL_FAIL("metadata key '%sattention.sliding_window_pattern' must hold %d values", k.prefix.c_str(), c.n_layer);
        for (int il = 0; il < c.n_layer; ++il) c.swa_layer[size_t(il)] = p->int_at(uint64_t(il)) != 0;
    } else {  // every n-th layer global (llama.cpp's default for Gemma 3: 6)
        const int64_t n = p ? k.integer("attention.sliding_window_pattern") : 6;
        if (n < 0 || n > (1 << 24)) RILL_FAIL("%sattention.sliding_window_pattern = %lld is out of range", k.prefix.c_str(), (long long)n);
        for (int il = 0; il < c.n_layer; ++il) c.swa_layer[size_t(il)] = n == 0 || il % n < n - 1;
    }
}

void block(const ModelConfig& c, int, LayerWeights& L, std::vector<TensorSpec>& out) {
    const int64_t E = c.n_embd;
    out.push_back(card::norm("attn_norm.weight", E, L.attn_norm));
    card::attention_tensors(c, L, {.qk_norm = true}, out);
    out.push_back(card::norm("post_attention_norm.weight", E, L.attn_post_norm));
    out.push_back(card::norm("ffn_norm.weight", E, L.post_norm));
    card::swiglu_tensors(c, L, out);  // the same three projections; gelu instead of silu (c.ffn_gelu)
    out.push_back(card::norm("post_ffw_norm.weight", E, L.ffn_post_norm));
}

}  // namespace

extern const ArchCard kGemma3 = {
    "gemma3",
    configure,
    block,
    nullptr,
    {{"attention.key_length", "64"},
     {"attention.value_length", "64"},
     {"rope.freq_base", "1000000"},
     {"rope.freq_base_swa", "10000.0"},
     {"attention.sliding_window", "256"},
     {"block_count", "6"}},
};

}  // namespace rill
