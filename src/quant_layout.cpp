#include "src/quant_layout.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace rill {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The layer of "blk.N.*", or -1.
int layer_of(const std::string& name) {
    int il = -1;
    return std::sscanf(name.c_str(), "blk.%d.", &il) == 1 ? il : -1;
}

// llama.cpp's use_more_bits: the first and last eighth of the layers and every third between.
bool more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// Row length not a multiple of the type's block: llama.cpp's tensor_type_fallback.
TensorType fallback(TensorType t, int64_t ne0) {
    if (ne0 % traits(t).block_size == 0) return t;
    switch (t) {
        case TensorType::IQ4_XS: t = TensorType::IQ4_NL; break;
        case TensorType::Q2_K: case TensorType::Q3_K: t = TensorType::Q4_0; break;
        case TensorType::Q4_K: t = TensorType::Q5_0; break;
        case TensorType::Q5_K: t = TensorType::Q5_1; break;
        case TensorType::Q6_K: t = TensorType::Q8_0; break;
        default: break;
    }
    return ne0 % traits(t).block_size == 0 ? t : TensorType::F16;
}

}  // namespace

std::optional<QuantLayout> quant_layout(const std::string& name) {
    std::string n = name;
    std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    if (n == "q8_0") return QuantLayout{n, TensorType::Q8_0};
    if (n == "q4_0") return QuantLayout{n, TensorType::Q4_0};
    if (n == "q4_k_s" || n == "q4_k_m") return QuantLayout{n, TensorType::Q4_K};
    if (n == "iq4_nl") return QuantLayout{n, TensorType::IQ4_NL};
    if (n == "iq4_xs") return QuantLayout{n, TensorType::IQ4_XS};
    return std::nullopt;
}

const char* quant_layout_names() { return "q8_0, q4_0, q4_k_s, q4_k_m, iq4_nl, iq4_xs"; }

TensorType quant_layout_type(const QuantLayout& L, const TensorRole& t) {
    const std::string& n = t.name;
    if (!ends_with(n, "weight") || n.find("_norm.weight") != std::string::npos || n.find("ssm_conv1d") != std::string::npos)
        return TensorType::F32;
    if (n == "per_layer_model_proj.weight") return TensorType::F16;  // Gemma 4: llama.cpp leaves it unquantised
    const bool iq4 = L.name == "iq4_nl" || L.name == "iq4_xs";
    const int il = layer_of(n);
    TensorType type = L.base;
    if (n == "output.weight" || (t.tied && n == "token_embd.weight")) {
        // The head: Q6_K, or Q8_0 where the default is Q8_0 or the row does not fit its blocks.
        type = (t.ne0 % traits(L.base).block_size != 0 || L.base == TensorType::Q8_0) ? TensorType::Q8_0 : TensorType::Q6_K;
    } else if (n == "token_embd.weight" || n == "per_layer_token_embd.weight") {  // the same category in llama.cpp
        type = L.base;
    } else if (ends_with(n, ".attn_v.weight") || ends_with(n, ".attn_qkv.weight")) {
        // One counter over attn_v and attn_qkv, one of them per layer in the models Rill runs.
        if (iq4 && t.n_gqa >= 4) type = TensorType::Q5_K;
        else if (L.name == "q4_k_m" && more_bits(il, t.n_layer)) type = TensorType::Q6_K;
        else if (L.name == "q4_k_s" && il < 4) type = TensorType::Q5_K;
    } else if (ends_with(n, ".ffn_down.weight")) {
        if (L.name == "q4_k_m" && more_bits(il, t.n_layer)) type = TensorType::Q6_K;
        else if (iq4 && il < t.n_layer / 8 && !L.imatrix) type = TensorType::Q5_K;
        else if (L.name == "q4_k_s" && il < t.n_layer / 8) type = TensorType::Q5_K;
        else if (L.name == "q4_0" && L.imatrix && il < t.n_layer / 8) type = TensorType::Q4_1;
    }
    return fallback(type, t.ne0);
}

}  // namespace rill
