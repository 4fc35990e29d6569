// An architecture's card (src/models/<name>.cpp): the hyperparameters its GGUF files carry, read
// into the shared ModelConfig as plain data (the recipe flags the shared forward pass follows);
// the tensors of each block with their shapes, which the loader binds and checks and `rill synth`
// draws; and small default shapes for synth. The runtime (src/context.cpp: caches, recurrent
// state, batching, threads) and the blocks it is built from are shared by every architecture.
// Adding an architecture is adding one such file and its line in src/arch.cpp.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"
#include "src/model.h"

namespace rill {

// Reads `<arch>.<key>` metadata with errors that name the key.
struct MetaKeys {
    const gguf::File& f;
    std::string prefix;
    const gguf::Value* find(const std::string& key) const { return f.find(prefix + key); }
    int64_t integer(const std::string& key) const;
    int64_t integer(const std::string& key, int64_t def) const { return find(key) ? integer(key) : def; }
    double number(const std::string& key, double def) const;
    // Fails naming the key unless 0 < v <= 2^24.
    int64_t positive(const std::string& key) const;
};

// How `rill synth` draws a tensor's values (the loader ignores it).
enum class Init {
    Linear,  // N(0, gain / sqrt(fan-in))
    Norm,    // 1 + N(0, 0.1)
    Bias,    // N(0, 0.1)
    Conv,    // N(0, 0.5): DeltaNet's and the short convolutions' kernels
    DtBias,  // N(0, 0.5)
    DecayA,  // -exp(U(-1.5, 0.5)): DeltaNet's A as stored
    RopeFactor,  // exp(U(0, 2)): LongRoPE's per-pair frequency divisors
    Absent,  // not written: an optional tensor the architecture's files may lack
};

// One tensor of a block ("attn_q.weight" is bound as "blk.<il>.attn_q.weight") or of the model.
struct TensorSpec {
    std::string name;
    std::vector<int64_t> shape;  // ne[0] first: the row length of a matrix
    Tensor* slot = nullptr;      // where the loader binds it
    bool matrix = true;          // a weight matrix (any supported type) or a vector (f32)
    bool required = true;
    Init init = Init::Linear;
    double gain = 1.0;
    bool lookup = false;         // rows are read one by one (embeddings): kept in the file's layout
};

struct SynthKey { std::string name, value; };  // a value with ',' is an i32 array, with '.' or 'e' a float

struct ArchCard {
    std::string_view name;
    // Reads the architecture's own keys into c, after the common ones (model.cpp), and sets its recipe.
    void (*configure)(const MetaKeys& k, ModelConfig& c);
    // The tensors of block il, bound into L (il = n_layer: the multi-token-prediction block, where there is one).
    void (*block)(const ModelConfig& c, int il, LayerWeights& L, std::vector<TensorSpec>& out);
    // Model tensors beyond token_embd, output_norm, output and rope_freqs (null: none).
    void (*model_tensors)(const ModelConfig& c, ModelTensors& m, std::vector<TensorSpec>& out) = nullptr;
    // Shapes for `rill synth` beyond the common small ones, without the architecture prefix.
    std::vector<SynthKey> synth_keys;
    // The final norm's tensor (LFM2's files name it token_embd_norm).
    std::string_view output_norm = "output_norm.weight";
};

// The card of an architecture name as GGUF spells it (general.architecture), or null.
const ArchCard* find_arch(std::string_view name);
// "llama, qwen2, ..." for messages.
std::string arch_names();

// Shared pieces of cards.
namespace card {
struct Attention {
    bool biases = false;   // attn_q/k/v.bias (Qwen2)
    bool qk_norm = false;  // attn_q_norm, attn_k_norm over each head (Qwen3, Qwen 3.5)
    bool fused = false;    // one attn_qkv.weight (Phi-3's files), else attn_q, attn_k, attn_v
};
// The attention projections (attn_q rows doubled where c.attn_output_gate) and attn_output.
void attention_tensors(const ModelConfig& c, LayerWeights& L, Attention a, std::vector<TensorSpec>& out);
// ffn_gate, ffn_up, ffn_down: SwiGLU with separate gate and up projections.
void swiglu_tensors(const ModelConfig& c, LayerWeights& L, std::vector<TensorSpec>& out);
// Llama's block: attn_norm, attention, ffn_norm, SwiGLU.
void llama_block(const ModelConfig& c, LayerWeights& L, Attention a, std::vector<TensorSpec>& out);
inline TensorSpec norm(std::string name, int64_t n, Tensor& slot, bool required = true) {
    return {std::move(name), {n}, &slot, false, required, Init::Norm};
}
}  // namespace card

}  // namespace rill
