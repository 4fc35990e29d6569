// Gemma 4 text decoders, the small dense ones (E2B, E4B; llama.cpp: src/models/gemma4.cpp).
//
//   x = embed(tokens) * sqrt(n_embd)
//   per-layer inputs (E2B/E4B): p[il] = (rms_norm(per_layer_model_proj(x) / sqrt(n_embd)) per layer
//                                         + per_layer_token_embd(tokens)[il] * sqrt(n_pe)) / sqrt(2)
//   per layer:  x += rms_norm(attention(rms_norm(x)))   attn_post_norm on the output
//                 q, k rms-normed per head (weights), v too (no weight; v = k's projection where the
//                 file has no attn_v); neox rope; scores not scaled (1.0)
//                 sliding-window layers (attention.sliding_window_pattern): their own head size
//                 (key_length_swa), rotated dims and rope.freq_base_swa; the global ones rotate with
//                 rope.freq_base divided by rope_freqs (proportional rope)
//                 the last shared_kv_layers layers compute only q and read the cache of the last
//                 earlier layer of their kind
//               x += rms_norm(ffn(rms_norm(x)))         down(gelu(gate(h)) * up(h)), per-layer widths
//               x += rms_norm(proj(gelu(inp_gate(x)) * p[il]))   (per-layer inputs, post_norm)
//               x *= layer_output_scale                 where present
//   logits = output(rms_norm(x))                        cap tanh(logits / cap) if final_logit_softcapping
//
// Refused: the mixture-of-experts model (26B-A4B: ffn_gate_inp) and bidirectional (vision) attention.
#include "src/arch.h"

#include <cmath>

#include "rill/error.h"

namespace rill {

namespace {

void configure(const MetaKeys& k, ModelConfig& c) {
    if (k.integer("expert_count", 0) > 0 || k.f.find_tensor("blk.0.ffn_gate_inp.weight"))
        RILL_FAIL("gemma4: the mixture-of-experts model (expert_count > 0, 26B-A4B) is not supported");
    c.rope_neox = true;
    c.embd_scale = std::sqrt(float(c.n_embd));
    c.q_scale = 1.0f;  // Gemma 4 does not scale the scores (its q and k are normed)
    c.ffn_gelu = true;
    c.v_norm = true;
    c.rope_factors_swa = false;
    c.logit_softcap = float(k.number("final_logit_softcapping", 0.0));
    if (!(c.logit_softcap >= 0)) RILL_FAIL("%sfinal_logit_softcapping = %g must be positive", k.prefix.c_str(), double(c.logit_softcap));
    c.swa_window = int(k.positive("attention.sliding_window"));
    c.rope_base_swa = float(k.number("rope.freq_base_swa", 10000.0));
    const gguf::Value* p = k.find("attention.sliding_window_pattern");
    if (!p || p->type != gguf::ValueType::ARRAY || p->count != uint64_t(c.n_layer))
        RILL_FAIL("metadata key '%sattention.sliding_window_pattern' must hold one flag per layer (%d)", k.prefix.c_str(), c.n_layer);
    for (int il = 0; il < c.n_layer; ++il) c.swa_layer[size_t(il)] = p->int_at(uint64_t(il)) != 0;

    // The sliding-window layers' own head size and rotated dims.
    const int d_swa = int(k.find("attention.key_length_swa") ? k.positive("attention.key_length_swa") : c.head_dim_k);
    if (k.integer("attention.value_length_swa", d_swa) != d_swa)
        RILL_FAIL("gemma4: %sattention.value_length_swa must equal attention.key_length_swa (%d)", k.prefix.c_str(), d_swa);
    const int rot_swa = int(k.integer("rope.dimension_count_swa", d_swa));
    if (rot_swa <= 0 || rot_swa > d_swa || rot_swa % 2)
        RILL_FAIL("gemma4: %srope.dimension_count_swa %d must be even and at most the head size %d", k.prefix.c_str(), rot_swa, d_swa);
    for (int il = 0; il < c.n_layer; ++il) {
        c.head_dim_layer.push_back(c.swa_layer[size_t(il)] ? d_swa : c.head_dim_k);
        c.n_rot_layer.push_back(c.swa_layer[size_t(il)] ? rot_swa : c.n_rot);
    }

    // Shared KV: the last n layers read the cache of the last earlier layer of their kind.
    const int64_t shared = k.integer("attention.shared_kv_layers", 0);
    if (shared < 0 || shared > c.n_layer - 2)
        RILL_FAIL("gemma4: %sattention.shared_kv_layers = %lld must be from 0 to block_count - 2", k.prefix.c_str(), (long long)shared);
    const int first_shared = c.n_layer - int(shared);
    for (int il = 0; il < c.n_layer; ++il) {
        // As llama.cpp: the source is first_shared - 2 for a sliding layer, first_shared - 1 for a global one.
        const int src = il < first_shared ? il : first_shared - (c.swa_layer[size_t(il)] ? 2 : 1);
        if (c.swa_layer[size_t(src)] != c.swa_layer[size_t(il)])
            RILL_FAIL("gemma4: layer %d would share the cache of layer %d, of the other attention kind", il, src);
        c.kv_source.push_back(src);
    }
    c.n_embd_per_layer = int(k.integer("embedding_length_per_layer_input", 0));
    if (c.n_embd_per_layer < 0 || c.n_embd_per_layer > (1 << 16))
        RILL_FAIL("gemma4: %sembedding_length_per_layer_input = %d is out of range", k.prefix.c_str(), c.n_embd_per_layer);
}

void block(const ModelConfig& c, int il, LayerWeights& L, std::vector<TensorSpec>& out) {
    const int64_t E = c.n_embd, H = c.n_head, HKV = c.kv_heads(il), D = c.head_dim(il), F = c.ff(il);
    const bool own_kv = c.kv_layer(il) == il;
    out.push_back(card::norm("attn_norm.weight", E, L.attn_norm));
    out.push_back({"attn_q.weight", {E, H * D}, &L.wq});
    // Layers that share an earlier layer's cache need no k (nor v); rill synth leaves them out, and
    // attn_v on the global layers (v is then k's projection, as in files made that way).
    const Init kv_init = own_kv ? Init::Linear : Init::Absent;
    out.push_back({"attn_k.weight", {E, HKV * D}, &L.wk, true, own_kv, kv_init});
    out.push_back({"attn_v.weight", {E, HKV * D}, &L.wv, true, false, own_kv && c.swa_layer[size_t(il)] ? Init::Linear : Init::Absent});
    out.push_back({"attn_output.weight", {H * D, E}, &L.wo, true, true, Init::Linear, 0.5});
    out.push_back(card::norm("attn_q_norm.weight", D, L.q_norm));
    out.push_back({"attn_k_norm.weight", {D}, &L.k_norm, false, own_kv, own_kv ? Init::Norm : Init::Absent});
    out.push_back(card::norm("post_attention_norm.weight", E, L.attn_post_norm));
    out.push_back(card::norm("ffn_norm.weight", E, L.post_norm));
    out.push_back({"ffn_gate.weight", {E, F}, &L.ffn_gate});
    out.push_back({"ffn_up.weight", {E, F}, &L.ffn_up});
    out.push_back({"ffn_down.weight", {F, E}, &L.ffn_down, true, true, Init::Linear, 0.5});
    out.push_back(card::norm("post_ffw_norm.weight", E, L.ffn_post_norm));
    if (c.n_embd_per_layer) {
        out.push_back({"inp_gate.weight", {E, c.n_embd_per_layer}, &L.pe_gate});
        out.push_back({"proj.weight", {c.n_embd_per_layer, E}, &L.pe_proj, true, true, Init::Linear, 0.5});
        out.push_back(card::norm("post_norm.weight", E, L.pe_post_norm));
    }
    out.push_back({"layer_output_scale.weight", {1}, &L.out_scale, false, false, Init::Norm});
}

void model_tensors(const ModelConfig& c, ModelTensors& m, std::vector<TensorSpec>& out) {
    out.push_back({"rope_freqs.weight", {c.n_rot / 2}, &m.rope_freqs, false, true, Init::RopeFactor});
    if (!c.n_embd_per_layer) return;
    const int64_t P = int64_t(c.n_embd_per_layer) * c.n_layer;
    out.push_back({"per_layer_token_embd.weight", {P, c.n_vocab}, &m.per_layer_token_embd, true, true, Init::Linear, 1.0, true});
    out.push_back({"per_layer_model_proj.weight", {c.n_embd, P}, &m.per_layer_model_proj});
    out.push_back(card::norm("per_layer_proj_norm.weight", c.n_embd_per_layer, m.per_layer_proj_norm));
}

}  // namespace

extern const ArchCard kGemma4 = {
    "gemma4",
    configure,
    block,
    model_tensors,
    {{"attention.key_length", "64"},
     {"attention.value_length", "64"},
     {"attention.key_length_swa", "32"},
     {"attention.value_length_swa", "32"},
     {"rope.dimension_count", "64"},
     {"rope.dimension_count_swa", "32"},
     {"rope.freq_base", "1000000"},
     {"rope.freq_base_swa", "10000.0"},
     {"attention.sliding_window", "256"},
     {"attention.sliding_window_pattern", "1,1,0,1,0,1,0"},
     {"attention.shared_kv_layers", "2"},
     {"embedding_length_per_layer_input", "32"},
     {"final_logit_softcapping", "30.0"},
     {"feed_forward_length", "512,512,512,512,512,1024,1024"},  // E2B's wider FFNs on the shared-KV layers
     {"attention.head_count_kv", "2,2,1,2,1,2,1"},              // fewer KV heads on the global layers (as the large ones)
     {"block_count", "7"}},
};

}  // namespace rill
