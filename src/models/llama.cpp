// Llama (1, 2, 3.x) and the many files that share its graph (llama.cpp: src/models/llama.cpp).
//
//   x = embed(tokens)
//   per layer:  x += attention(rms_norm(x))     GQA; rotary positions on pairs (2i, 2i+1);
//                                               rope_freqs divisors where the file has them (Llama 3.1+)
//               x += swiglu_ffn(rms_norm(x))    down(silu(gate(h)) * up(h))
//   logits = output(rms_norm(x))                output: token_embd when tied
#include "src/arch.h"

namespace rill {

extern const ArchCard kLlama = {
    "llama",
    [](const MetaKeys&, ModelConfig& c) { c.rope_neox = false; },
    [](const ModelConfig& c, int, LayerWeights& L, std::vector<TensorSpec>& out) { card::llama_block(c, L, {}, out); },
    nullptr,
    {{"attention.layer_norm_rms_epsilon", "1e-5"}},
};

}  // namespace rill
