// Qwen3 dense models (llama.cpp: src/models/qwen3.cpp): Qwen2 without the biases, with an RMS norm
// over each query and key head before the rotation.
//
//   x = embed(tokens)
//   per layer:  x += attention(rms_norm(x))     q, k: rms_norm per head, then neox rope
//               x += swiglu_ffn(rms_norm(x))
//   logits = output(rms_norm(x))
#include "src/arch.h"

namespace rill {

extern const ArchCard kQwen3 = {
    "qwen3",
    [](const MetaKeys&, ModelConfig& c) { c.rope_neox = true; },
    [](const ModelConfig& c, int, LayerWeights& L, std::vector<TensorSpec>& out) { card::llama_block(c, L, {.qk_norm = true}, out); },
    nullptr,
    {{"rope.freq_base", "1000000"}, {"attention.key_length", "64"}, {"attention.value_length", "64"}},
};

}  // namespace rill
