// Qwen2 / Qwen2.5 (llama.cpp: src/models/qwen2.cpp): Llama's blocks with biases on the q, k, v
// projections and rotary positions on pairs (i, i + n_rot/2).
//
//   x = embed(tokens)
//   per layer:  x += attention(rms_norm(x))     q, k, v = W h + b; neox rope
//               x += swiglu_ffn(rms_norm(x))
//   logits = output(rms_norm(x))
#include "src/arch.h"

namespace rill {

extern const ArchCard kQwen2 = {
    "qwen2",
    [](const MetaKeys&, ModelConfig& c) { c.rope_neox = true; },
    [](const ModelConfig& c, int, LayerWeights& L, std::vector<TensorSpec>& out) { card::llama_block(c, L, {.biases = true}, out); },
    nullptr,
    {{"rope.freq_base", "1000000"}},
};

}  // namespace rill
