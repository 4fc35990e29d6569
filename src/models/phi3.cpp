// Phi-3 / Phi-3.5 / Phi-4-mini (llama.cpp: src/models/phi3.cpp).
//
//   x = embed(tokens)
//   per layer:  x += attention(rms_norm(x))     one fused attn_qkv projection (or q, k, v); neox rope
//                                               with LongRoPE divisors and cos/sin scaled by the file's
//                                               rope.scaling.attn_factor; q * 1/sqrt(head_dim) before
//                                               the scores, which are not scaled again
//               x += ffn(rms_norm(x))           ffn_up gives [g | u]: down(silu(g) * u)
//   logits = output(rms_norm(x))
//
// LongRoPE: rope_factors_short for contexts up to rope.scaling.original_context_length, else
// rope_factors_long (llama.cpp chooses by its context size as Rill does). Sliding-window keys
// are ignored, as llama.cpp ignores them for Phi-3. Refused: the MoE variant (expert_count).
#include "src/arch.h"

#include "rill/error.h"

namespace rill {

extern const ArchCard kPhi3 = {
    "phi3",
    [](const MetaKeys& k, ModelConfig& c) {
        if (k.integer("expert_count", 0) > 0)
            RILL_FAIL("%sexpert_count = %lld: the mixture-of-experts Phi-3 variant is not supported", k.prefix.c_str(),
                      (long long)k.integer("expert_count"));
        if (c.n_head * c.head_dim_k != c.n_embd)
            RILL_FAIL("phi3: attention.head_count x head size (%d x %d) must equal embedding_length %d", c.n_head, c.head_dim_k, c.n_embd);
        c.rope_neox = true;
        c.q_prescaled = true;
        c.ffn_fused_up = true;
        c.rope_mscale = float(k.number("rope.scaling.attn_factor", 1.0));
        c.n_ctx_orig = int(k.integer("rope.scaling.original_context_length", c.n_ctx_train));
        // Phi-3 files carry one fused attn_qkv; a file with separate projections (and rill synth,
        // whose draft has no tensors yet: the fused one) says which by its first block.
        c.fused_qkv = k.f.find_tensor("blk.0.attn_q.weight") == nullptr;
    },
    [](const ModelConfig& c, int, LayerWeights& L, std::vector<TensorSpec>& out) {
        out.push_back(card::norm("attn_norm.weight", c.n_embd, L.attn_norm));
        out.push_back(card::norm("ffn_norm.weight", c.n_embd, L.post_norm));
        card::attention_tensors(c, L, {.fused = c.fused_qkv}, out);
        out.push_back({"ffn_up.weight", {c.n_embd, 2 * int64_t(c.n_ff)}, &L.ffn_up});
        out.push_back({"ffn_down.weight", {c.n_ff, c.n_embd}, &L.ffn_down, true, true, Init::Linear, 0.5});
    },
    [](const ModelConfig& c, ModelTensors& m, std::vector<TensorSpec>& out) {
        out.push_back({"rope_factors_long.weight", {c.n_rot / 2}, &m.rope_long, false, false, Init::RopeFactor});
        out.push_back({"rope_factors_short.weight", {c.n_rot / 2}, &m.rope_short, false, false, Init::RopeFactor});
    },
    {{"rope.scaling.attn_factor", "1.19"}, {"rope.scaling.original_context_length", "512"}},
};

}  // namespace rill
