// LFM2 / LFM2.5 dense models (Liquid AI; llama.cpp: src/models/lfm2.cpp): gated short
// convolutions and grouped-query attention, 10 of 16 layers convolutions in the 1.2B model.
//
//   x = embed(tokens)
//   per layer:  x += mixer(rms_norm(x))          (attn_norm, the "operator norm")
//                 conv layers (head_count_kv 0): [b | c | x] = in_proj(h);
//                                                out_proj(c * conv1d(b * x)), kernel shortconv.l_cache,
//                                                its state the last l_cache - 1 values of b * x
//                 attention layers:              q, k rms-normed per head; neox rope; optional
//                                                sliding window (attention.sliding_window)
//               x += swiglu_ffn(rms_norm(x))
//   logits = output(rms_norm(x))                 the output norm is named token_embd_norm
//
// Refused: the MoE variant (lfm2moe is another architecture), ColBERT's dense_2 head.
#include "src/arch.h"

#include "rill/error.h"

namespace rill {

namespace {

void configure(const MetaKeys& k, ModelConfig& c) {
    if (k.f.find_tensor("dense_2.weight")) RILL_FAIL("lfm2: the dense_2 projection (LFM2-ColBERT) is not supported");
    c.rope_neox = true;
    c.shortconv_kernel = int(k.positive("shortconv.l_cache"));
    if (c.shortconv_kernel < 2) RILL_FAIL("%sshortconv.l_cache = %d must be at least 2", k.prefix.c_str(), c.shortconv_kernel);
    for (int il = 0; il < c.n_layer; ++il) c.recurrent[size_t(il)] = c.n_head_kv_layer[size_t(il)] == 0;
    c.swa_window = int(k.integer("attention.sliding_window", 0));
    if (c.swa_window < 0) RILL_FAIL("%sattention.sliding_window = %d must not be negative", k.prefix.c_str(), c.swa_window);
    if (c.swa_window > 0) {
        c.rope_base_swa = c.rope_base;  // llama.cpp's LFM2 graph rotates every attention layer with the global base and scale
        c.rope_freq_scale_swa = c.rope_freq_scale;
        for (int il = 0; il < c.n_layer; ++il) c.swa_layer[size_t(il)] = !c.recurrent[size_t(il)];
    }
}

void block(const ModelConfig& c, int il, LayerWeights& L, std::vector<TensorSpec>& out) {
    const int64_t E = c.n_embd;
    out.push_back(card::norm("attn_norm.weight", E, L.attn_norm));
    out.push_back(card::norm("ffn_norm.weight", E, L.post_norm));
    if (c.recurrent[size_t(il)]) {
        out.push_back({"shortconv.conv.weight", {c.shortconv_kernel, E}, &L.sc_conv, false, true, Init::Conv});
        out.push_back({"shortconv.in_proj.weight", {E, 3 * E}, &L.sc_in});
        out.push_back({"shortconv.out_proj.weight", {E, E}, &L.sc_out, true, true, Init::Linear, 0.5});
    } else {
        card::attention_tensors(c, L, {.qk_norm = true}, out);
    }
    card::swiglu_tensors(c, L, out);
}

}  // namespace

extern const ArchCard kLfm2 = {
    "lfm2",
    configure,
    block,
    nullptr,
    // 6 layers: conv, conv, attention, conv, conv, attention (as the public files alternate).
    {{"attention.head_count_kv", "0,0,2,0,0,2"}, {"block_count", "6"}, {"shortconv.l_cache", "3"}, {"rope.freq_base", "1000000"}},
    "token_embd_norm.weight",
};

}  // namespace rill
