#include "src/arch.h"

#include "rill/error.h"

namespace rill {

extern const ArchCard kLlama, kQwen2, kQwen3, kQwen35, kPhi3, kSmolLM3, kGemma3, kGemma4, kLfm2;
namespace {
const ArchCard* const kCards[] = {&kLlama, &kQwen2, &kQwen3, &kQwen35, &kPhi3, &kSmolLM3, &kGemma3, &kGemma4, &kLfm2};
}  // namespace

const ArchCard* find_arch(std::string_view name) {
    for (const ArchCard* c : kCards)
        if (c->name == name) return c;
    return nullptr;
}

std::string arch_names() {
    std::string s;
    for (const ArchCard* c : kCards) s += (s.empty() ? "" : ", ") + std::string(c->name);
    return s;
}

int64_t MetaKeys::integer(const std::string& key) const {
    const gguf::Value* v = find(key);
    if (!v) RILL_FAIL("missing metadata key '%s%s'", prefix.c_str(), key.c_str());
    try {
        return v->as_int();
    } catch (const Error& e) {
        RILL_FAIL("metadata key '%s%s': %s", prefix.c_str(), key.c_str(), e.what());
    }
}

double MetaKeys::number(const std::string& key, double def) const {
    const gguf::Value* v = find(key);
    if (!v) return def;
    try {
        return v->as_float();
    } catch (const Error& e) {
        RILL_FAIL("metadata key '%s%s': %s", prefix.c_str(), key.c_str(), e.what());
    }
}

int64_t MetaKeys::positive(const std::string& key) const {
    const int64_t v = integer(key);
    if (v <= 0 || v > (1 << 24)) RILL_FAIL("hyperparameter %s%s = %lld is out of range", prefix.c_str(), key.c_str(), (long long)v);
    return v;
}

namespace card {

void attention_tensors(const ModelConfig& c, LayerWeights& L, Attention a, std::vector<TensorSpec>& out) {
    const int64_t E = c.n_embd, H = c.n_head, HKV = c.n_head_kv, D = c.head_dim_k;
    const int64_t q_rows = H * D * (c.attn_output_gate ? 2 : 1);
    if (a.fused) {
        out.push_back({"attn_qkv.weight", {E, q_rows + 2 * HKV * D}, &L.wqkv});
    } else {
        out.push_back({"attn_q.weight", {E, q_rows}, &L.wq});
        out.push_back({"attn_k.weight", {E, HKV * D}, &L.wk});
        out.push_back({"attn_v.weight", {E, HKV * D}, &L.wv});
    }
    out.push_back({"attn_output.weight", {H * D, E}, &L.wo, true, true, Init::Linear, 0.5});
    if (a.biases) {
        out.push_back({"attn_q.bias", {q_rows}, &L.bq, false, true, Init::Bias});
        out.push_back({"attn_k.bias", {HKV * D}, &L.bk, false, true, Init::Bias});
        out.push_back({"attn_v.bias", {HKV * D}, &L.bv, false, true, Init::Bias});
    }
    if (a.qk_norm) {
        out.push_back(norm("attn_q_norm.weight", D, L.q_norm));
        out.push_back(norm("attn_k_norm.weight", D, L.k_norm));
    }
}

void swiglu_tensors(const ModelConfig& c, LayerWeights& L, std::vector<TensorSpec>& out) {
    out.push_back({"ffn_gate.weight", {c.n_embd, c.n_ff}, &L.ffn_gate});
    out.push_back({"ffn_up.weight", {c.n_embd, c.n_ff}, &L.ffn_up});
    out.push_back({"ffn_down.weight", {c.n_ff, c.n_embd}, &L.ffn_down, true, true, Init::Linear, 0.5});
}

void llama_block(const ModelConfig& c, LayerWeights& L, Attention a, std::vector<TensorSpec>& out) {
    out.push_back(norm("attn_norm.weight", c.n_embd, L.attn_norm));
    out.push_back(norm("ffn_norm.weight", c.n_embd, L.post_norm));
    attention_tensors(c, L, a, out);
    swiglu_tensors(c, L, out);
}

}  // namespace card
}  // namespace rill
