// Qwen 3.5 (llama.cpp: src/models/qwen35.cpp): a hybrid of Gated DeltaNet linear attention and
// gated full attention, 3 DeltaNet layers to 1 attention layer.
//
//   x = embed(tokens)
//   per layer:  x += mixer(rms_norm(x))
//                 DeltaNet layers:  q|k|v = conv1d(attn_qkv h) -> SiLU; q, k L2-normed per head; a
//                                   decaying state per value head updated by the delta rule (decay
//                                   from ssm_a, ssm_alpha, ssm_dt; step size sigmoid(ssm_beta h));
//                                   read-out rms_norm(ssm_norm) * silu(attn_gate h), then ssm_out
//                 attention layers: q (with a per-element sigmoid output gate), k q/k-normed; neox
//                                   rope on the first rope.dimension_count dims
//               x += swiglu_ffn(rms_norm(x))   (post_attention_norm)
//   logits = output(rms_norm(x))
//
// Files from the current converter may add the multi-token-prediction block (nextn_predict_layers
// = 1) as block n_layer: a full-attention block and FFN fed by eh_proj of the normed embedding and
// normed hidden state (src/mtp.cpp), kept for speculative decoding.
#include "src/arch.h"

#include "rill/error.h"

namespace rill {

namespace {

void configure(const MetaKeys& k, ModelConfig& c) {
    c.rope_neox = true;
    c.attn_output_gate = true;
    c.ssm_conv_kernel = int(k.positive("ssm.conv_kernel"));
    c.ssm_k_dim = int(k.positive("ssm.state_size"));
    c.ssm_n_k_heads = int(k.positive("ssm.group_count"));
    c.ssm_n_v_heads = int(k.positive("ssm.time_step_rank"));
    const int64_t inner = k.integer("ssm.inner_size");
    if (inner % c.ssm_n_v_heads != 0) RILL_FAIL("ssm.inner_size (%lld) is not a multiple of ssm.time_step_rank (%d)", (long long)inner, c.ssm_n_v_heads);
    c.ssm_v_dim = int(inner / c.ssm_n_v_heads);
    if (c.ssm_n_v_heads % c.ssm_n_k_heads != 0)
        RILL_FAIL("ssm.time_step_rank (%d value heads) is not a multiple of ssm.group_count (%d key heads)", c.ssm_n_v_heads, c.ssm_n_k_heads);
    if (c.ssm_v_dim != c.ssm_k_dim)
        RILL_FAIL("DeltaNet value head size %d (ssm.inner_size / ssm.time_step_rank) differs from key head size %d (ssm.state_size)",
                  c.ssm_v_dim, c.ssm_k_dim);
    const int block_count = c.n_layer + c.n_layer_mtp;
    if (const gguf::Value* rl = k.find("attention.recurrent_layers")) {
        if (rl->type != gguf::ValueType::ARRAY || rl->count != uint64_t(block_count))
            RILL_FAIL("metadata key '%sattention.recurrent_layers' must be an array of %d values", k.prefix.c_str(), block_count);
        for (int i = 0; i < c.n_layer; ++i) c.recurrent[size_t(i)] = rl->int_at(uint64_t(i)) != 0;
    } else {
        const int64_t interval = k.integer("full_attention_interval", 4);
        if (interval <= 0 || interval > (1 << 24)) RILL_FAIL("hyperparameter full_attention_interval = %lld is out of range", (long long)interval);
        for (int i = 0; i < c.n_layer; ++i) c.recurrent[size_t(i)] = (i + 1) % interval != 0;
    }
}

void block(const ModelConfig& c, int il, LayerWeights& L, std::vector<TensorSpec>& out) {
    const int64_t E = c.n_embd;
    out.push_back(card::norm("attn_norm.weight", E, L.attn_norm));
    out.push_back(card::norm("post_attention_norm.weight", E, L.post_norm));
    if (il < c.n_layer && c.recurrent[size_t(il)]) {
        const int64_t nv = c.ssm_n_v_heads, value_dim = nv * c.ssm_v_dim, C = c.conv_channels();
        out.push_back({"attn_qkv.weight", {E, C}, &L.wqkv});
        out.push_back({"attn_gate.weight", {E, value_dim}, &L.wgate});
        out.push_back({"ssm_conv1d.weight", {c.ssm_conv_kernel, C}, &L.conv1d, false, true, Init::Conv});
        out.push_back({"ssm_dt.bias", {nv}, &L.dt_bias, false, true, Init::DtBias});
        out.push_back({"ssm_a", {nv}, &L.ssm_a, false, true, Init::DecayA});
        out.push_back({"ssm_beta.weight", {E, nv}, &L.wbeta});
        out.push_back({"ssm_alpha.weight", {E, nv}, &L.walpha});
        out.push_back(card::norm("ssm_norm.weight", c.ssm_v_dim, L.ssm_norm));
        out.push_back({"ssm_out.weight", {value_dim, E}, &L.ssm_out, true, true, Init::Linear, 0.5});
    } else {
        card::attention_tensors(c, L, {.qk_norm = true}, out);
    }
    card::swiglu_tensors(c, L, out);
}

}  // namespace

extern const ArchCard kQwen35 = {
    "qwen35",
    configure,
    block,
    nullptr,
    {{"rope.freq_base", "10000000"},
     {"attention.key_length", "64"},
     {"attention.value_length", "64"},
     {"rope.dimension_count", "16"},
     {"rope.dimension_sections", "3,3,2,0"},
     {"full_attention_interval", "4"},
     {"ssm.conv_kernel", "4"},
     {"ssm.state_size", "64"},
     {"ssm.group_count", "2"},
     {"ssm.time_step_rank", "4"},
     {"ssm.inner_size", "256"}},
};

}  // namespace rill
