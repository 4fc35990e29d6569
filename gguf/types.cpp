#include "gguf/types.h"

#include <array>
#include <cctype>

#include "kernels/quant_blocks.h"

namespace rill {
namespace {

struct Entry { uint32_t id; TypeTraits traits; };

// Sizes of the formats Rill computes with come from the block structs; the others
// (recognised so that any GGUF can be inspected) are the published GGML sizes.
constexpr std::array<Entry, 36> kTypes = {{
    {0, {"f32", 1, 4, true}},
    {1, {"f16", 1, 2, true}},
    {2, {"q4_0", QK4_0, sizeof(block_q4_0), true}},
    {3, {"q4_1", QK4_1, sizeof(block_q4_1), true}},
    {6, {"q5_0", QK5_0, sizeof(block_q5_0), true}},
    {7, {"q5_1", QK5_1, sizeof(block_q5_1), true}},
    {8, {"q8_0", QK8_0, sizeof(block_q8_0), true}},
    {9, {"q8_1", QK8_1, sizeof(block_q8_1), true}},
    {10, {"q2_K", QK_K, sizeof(block_q2_K), true}},
    {11, {"q3_K", QK_K, sizeof(block_q3_K), true}},
    {12, {"q4_K", QK_K, sizeof(block_q4_K), true}},
    {13, {"q5_K", QK_K, sizeof(block_q5_K), true}},
    {14, {"q6_K", QK_K, sizeof(block_q6_K), true}},
    {15, {"q8_K", QK_K, sizeof(block_q8_K), true}},
    {16, {"iq2_xxs", QK_K, 66, false}},
    {17, {"iq2_xs", QK_K, 74, false}},
    {18, {"iq3_xxs", QK_K, 98, false}},
    {19, {"iq1_s", QK_K, 50, false}},
    {20, {"iq4_nl", 32, sizeof(block_iq4_nl), true}},
    {21, {"iq3_s", QK_K, 110, false}},
    {22, {"iq2_s", QK_K, 82, false}},
    {23, {"iq4_xs", QK_K, sizeof(block_iq4_xs), true}},
    {24, {"i8", 1, 1, false}},
    {25, {"i16", 1, 2, false}},
    {26, {"i32", 1, 4, false}},
    {27, {"i64", 1, 8, false}},
    {28, {"f64", 1, 8, false}},
    {29, {"iq1_m", QK_K, 56, false}},
    {30, {"bf16", 1, 2, true}},
    {34, {"tq1_0", QK_K, 54, false}},
    {35, {"tq2_0", QK_K, 66, false}},
    {39, {"mxfp4", 32, 17, false}},
    {40, {"nvfp4", 64, 36, false}},
    {41, {"q1_0", 128, 18, false}},
    {42, {"q2_0", 64, 18, false}},
    {~0u, {"", 0, 0, false}},  // sentinel, never matched
}};

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
    return true;
}

}  // namespace

std::optional<TypeTraits> type_traits(uint32_t type_id) {
    for (const auto& e : kTypes)
        if (e.id == type_id && e.traits.block_size) return e.traits;
    return std::nullopt;
}

const TypeTraits& traits(TensorType t) {
    for (const auto& e : kTypes)
        if (e.id == static_cast<uint32_t>(t)) return e.traits;
    return kTypes.back().traits;
}

std::string_view type_name(TensorType t) { return traits(t).name; }

std::optional<TensorType> type_from_name(std::string_view name) {
    for (const auto& e : kTypes)
        if (e.traits.block_size && iequals(e.traits.name, name)) return static_cast<TensorType>(e.id);
    return std::nullopt;
}

}  // namespace rill
