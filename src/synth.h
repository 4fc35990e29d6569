// Synthetic models: GGUF files with deterministic random weights in any shape, for
// tests and benchmarks (random weights cost the same to run as real ones).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "gguf/types.h"

namespace rill {

struct SynthOptions {
    std::string arch;            // qwen35, llama, qwen2, qwen3
    std::string vocab_path;      // GGUF whose tokenizer.* metadata is copied
    std::string out_path;
    uint64_t seed = 1;
    std::map<std::string, std::string> set;  // metadata overrides, keys without the arch prefix
    TensorType type = TensorType::F32;       // default type of weight matrices
    std::string layout;                      // or llama.cpp's per-tensor rules of a file type (src/quant_layout.h)
    bool imatrix = false;                    // ... as when quantised with an importance matrix (its type rules only)
    std::vector<std::pair<std::string, TensorType>> tensor_types;  // name suffix -> type, later wins
    int64_t vocab_size = 0;      // pad the vocabulary to this many tokens (0: as the vocab file)
    bool tied = false;           // no output.weight: the head reuses token_embd
    bool mtp = false;            // qwen35: append the multi-token-prediction block (nextn_predict_layers = 1) after
                                 // the block_count main layers, as the current converter does (block_count counts it)
};

// Writes the model; throws rill::Error for an unknown architecture, a bad override or
// a tensor whose row length does not fit its type's block size.
void synth_model(const SynthOptions& o);

}  // namespace rill
