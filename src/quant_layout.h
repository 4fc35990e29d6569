// The per-tensor types of the GGUF files people download: llama.cpp's quantisation rules
// (src/llama-quant.cpp, llama_tensor_get_type) for the file types Q8_0, Q4_0, Q4_K_S, Q4_K_M,
// IQ4_NL and IQ4_XS, so that `rill synth --layout NAME` writes what `llama-quantize` would.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "gguf/types.h"

namespace rill {

struct QuantLayout {
    std::string name;        // q8_0, q4_0, q4_k_s, q4_k_m, iq4_nl, iq4_xs
    TensorType base;         // the file type's default tensor type
    bool imatrix = false;    // as if quantised with an importance matrix (changes the ffn_down rules)
};

// The preset of that name (case-insensitive), or nullopt.
std::optional<QuantLayout> quant_layout(const std::string& name);
// "q8_0, q4_0, q4_k_s, q4_k_m, iq4_nl, iq4_xs"
const char* quant_layout_names();

struct TensorRole {
    std::string name;        // GGUF tensor name ("blk.3.ffn_down.weight")
    int64_t ne0 = 0;         // row length
    int n_layer = 0;         // block_count (an MTP block included)
    int n_gqa = 1;           // attention.head_count / head_count_kv
    bool tied = false;       // token_embd is also the output head
};

// The type llama.cpp gives a 2-D weight of that role in a file of the layout, including its
// fallback when the row length does not fit the type's blocks (Q4_K -> Q5_0, Q6_K -> Q8_0,
// IQ4_XS -> IQ4_NL). Tensors that llama.cpp never quantises (norms, ssm_conv1d, 1-D) are F32.
TensorType quant_layout_type(const QuantLayout& layout, const TensorRole& t);

}  // namespace rill
