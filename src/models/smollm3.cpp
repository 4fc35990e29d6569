// SmolLM3 (llama.cpp: src/models/smollm3.cpp): Llama's blocks, but every 4th layer has no
// rotary positions (NoPE: layers 3, 7, 11, ...).
//
//   x = embed(tokens)
//   per layer:  x += attention(rms_norm(x))     rope on pairs (2i, 2i+1) unless (il + 1) % 4 == 0
//               x += swiglu_ffn(rms_norm(x))
//   logits = output(rms_norm(x))                tied to token_embd in the public files
#include "src/arch.h"

#include "rill/error.h"

namespace rill {

extern const ArchCard kSmolLM3 = {
    "smollm3",
    [](const MetaKeys& k, ModelConfig& c) {
        if (c.n_rot != c.head_dim_k)  // llama.cpp asserts it
            RILL_FAIL("smollm3: %srope.dimension_count %d must equal the head size %d", k.prefix.c_str(), c.n_rot, c.head_dim_k);
        c.rope_neox = false;
        for (int il = 0; il < c.n_layer; ++il) c.rope_layer[size_t(il)] = (il + 1) % 4 != 0;  // llama.cpp: n_no_rope_layer_step = 4
    },
    [](const ModelConfig& c, int, LayerWeights& L, std::vector<TensorSpec>& out) { card::llama_block(c, L, {}, out); },
    nullptr,
    {{"rope.freq_base", "5000000"}, {"block_count", "8"}},
};

}  // namespace rill
