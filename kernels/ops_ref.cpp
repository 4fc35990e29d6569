#include "kernels/ops_ref.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/half.h"
#include "kernels/quant_blocks.h"
#include "kernels/quant_ref.h"
#include "rill/error.h"

namespace rill {
namespace {

// The float dot products, natively on x86-64, also as an FMA-instruction clone picked at load
// time (the same fused operation as std::fma's library call, which costs a call per product).
#if defined(__x86_64__) && !defined(__EMSCRIPTEN__) && defined(__GNUC__) && !defined(__clang__)
#define RILL_FMA_CLONES __attribute__((target_clones("fma", "default")))
#else
#define RILL_FMA_CLONES
#endif

// llama.cpp's vector width for these ops in its haswell (AVX2) CPU variant, the one the golden
// pins on every host (tests/oracle/llama_oracle.mjs).
constexpr int64_t kBlock = 8;

// Sum of 8 float lanes as ggml's hsum_float_8 and llamafile's hsum do it (256-bit halves added,
// then movehl + movehdup): (l + l+4), then (0+2)+(1+3).
float tree_sum8(const float* v) {
    float r[4];
    for (int i = 0; i < 4; ++i) r[i] = v[i + 4] + v[i];
    return (r[0] + r[2]) + (r[1] + r[3]);
}

// Sum of 8 float lanes as GGML_F32x8_REDUCE does it (halves added, then two horizontal adds):
// (l + l+4), then (0+1)+(2+3).
float hadd_sum8(const float* v) {
    float r[4];
    for (int i = 0; i < 4; ++i) r[i] = v[i + 4] + v[i];
    return (r[0] + r[1]) + (r[2] + r[3]);
}

// Q8_0 / Q8_1 activations the way llama.cpp's x86 CPU code makes them.
template <typename Block>
void quantize_q8_acts(const float* x, Block* y, int64_t n, bool with_sum) {
    for (int64_t i = 0; i < n / 32; ++i, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        y[i].d = f32_to_fp16(d);
        int sum = 0;
        for (int j = 0; j < 32; ++j) {
            y[i].qs[j] = int8_t(std::nearbyint(x[j] * id));
            sum += y[i].qs[j];
        }
        if constexpr (sizeof(Block) == sizeof(block_q8_1)) {
            if (with_sum) y[i].s = f32_to_fp16(float(sum) * d);
        }
    }
}

// Nibble e (0..31) of a 32-element block's 16 bytes: low nibbles hold elements 0..15, high 16..31.
inline int nibble32(const uint8_t qs[16], int e) { return e < 16 ? (qs[e] & 0x0f) : (qs[e - 16] >> 4); }

inline int q4_0_value(const block_q4_0& b, int e) { return nibble32(b.qs, e) - 8; }

// s4[j] = w[4j] y[4j] + ... + w[4j+3] y[4j+3] over N values: the integer part of the lane kernels
// below, computed apart from their float steps (integer sums are exact in any order, so the
// compiler may vectorise this freely; the FMAs that follow keep llama.cpp's order).
template <int N>
inline void sums_of_4(const int8_t* w, const int8_t* y, int32_t* s4) {
    int16_t p[N];
    for (int e = 0; e < N; ++e) p[e] = int16_t(w[e] * y[e]);
    for (int j = 0; j < N / 4; ++j) s4[j] = (int32_t(p[4 * j]) + p[4 * j + 1]) + (int32_t(p[4 * j + 2]) + p[4 * j + 3]);
}

// The 32 values of a block, w[e] = value(b, e).
template <typename Block, typename Value>
inline void values32(const Block& b, Value value, int8_t w[32]) {
    for (int e = 0; e < 32; ++e) w[e] = int8_t(value(b, e));
}

// llama.cpp's repacked kernels for blocks of 32 against Q8_0 (Q4_0, IQ4_NL): one FMA per block
// of the exact integer dot with the product of the scales.
template <typename Block, typename Value>
float dot_rows_order_32(const Block* x, const block_q8_0* y, int64_t nb, Value value) {
    float acc = 0.0f;
    for (int64_t i = 0; i < nb; ++i) {
        int8_t w[32];
        int32_t s4[8];
        values32(x[i], value, w);
        sums_of_4<32>(w, y[i].qs, s4);
        const int32_t s = ((s4[0] + s4[1]) + (s4[2] + s4[3])) + ((s4[4] + s4[5]) + (s4[6] + s4[7]));
        acc = std::fma(float(s), fp16_to_f32(x[i].d) * fp16_to_f32(y[i].d), acc);
    }
    return acc;
}

int q5_value(const uint8_t qs[16], const uint8_t qh[4], int j) {
    uint32_t h;
    std::memcpy(&h, qh, 4);
    return nibble32(qs, j) | int((h >> j) & 1u) << 4;
}

template <typename Block>
constexpr bool kHasMin = sizeof(Block) == sizeof(block_q4_1) || sizeof(Block) == sizeof(block_q5_1);

// llama.cpp's AVX2 kernels for blocks of 32 against Q8_0 / Q8_1 (Q4_0 and IQ4_NL unrepacked,
// Q4_1, Q5_0, Q5_1, Q8_0): per block 8 lanes of 4-element integer sums, each FMA'd with
// d_x d_y into its lane, the 8-lane tree; Q4_1 / Q5_1 add their offsets m_x s_y beside, one FMA
// per block (GCC contracts `summs += m * s`), after the tree.
template <typename Block, typename YBlock, typename Value>
float dot_lanes_order_32(const Block* x, const YBlock* y, int64_t nb, Value value) {
    float acc[8] = {}, summs = 0.0f;
    for (int64_t i = 0; i < nb; ++i) {
        if constexpr (kHasMin<Block>) summs = std::fma(fp16_to_f32(x[i].m), fp16_to_f32(y[i].s), summs);
        const float d = fp16_to_f32(x[i].d) * fp16_to_f32(y[i].d);
        int8_t w[32];
        int32_t s4[8];
        values32(x[i], value, w);
        sums_of_4<32>(w, y[i].qs, s4);
        for (int l = 0; l < 8; ++l) acc[l] = std::fma(d, float(s4[l]), acc[l]);
    }
    if constexpr (kHasMin<Block>) return tree_sum8(acc) + summs;
    return tree_sum8(acc);
}

// Q4_0 x Q8_0: dot_rows_order_32 or dot_lanes_order_32.
float dot_q4_0_q8_0(const block_q4_0* x, const block_q8_0* y, int64_t nb, SumOrder order) {
    return order == SumOrder::Rows ? dot_rows_order_32(x, y, nb, q4_0_value) : dot_lanes_order_32(x, y, nb, q4_0_value);
}

float dot_q4_1_q8_1(const block_q4_1* x, const block_q8_1* y, int64_t nb) {
    return dot_lanes_order_32(x, y, nb, [](const block_q4_1& b, int e) { return nibble32(b.qs, e); });
}

float dot_q5_0_q8_0(const block_q5_0* x, const block_q8_0* y, int64_t nb) {
    return dot_lanes_order_32(x, y, nb, [](const block_q5_0& b, int e) { return q5_value(b.qs, b.qh, e) - 16; });
}

float dot_q5_1_q8_1(const block_q5_1* x, const block_q8_1* y, int64_t nb) {
    return dot_lanes_order_32(x, y, nb, [](const block_q5_1& b, int e) { return q5_value(b.qs, b.qh, e); });
}

// Q8_0 x Q8_0: dot_lanes_order_32.
float dot_q8_0_q8_0(const block_q8_0* x, const block_q8_0* y, int64_t nb) {
    return dot_lanes_order_32(x, y, nb, [](const block_q8_0& b, int e) { return int(b.qs[e]); });
}

// Q2_K and Q3_K in the order of llama.cpp's AVX2 kernels: 8 integer lanes, lane l holding for
// every 32-element chunk c the scale of its 16-group 2c + l / 4 times the sum of the products at
// 32c + 4l .. 32c + 4l + 3; an FMA per block. Q2_K first FMAs its mins term into the same lanes
// (lane l: the mins of groups 2l and 2l + 1 times their Q8_K sums).
template <typename Value, typename Scale>
void k_small_lanes(const block_q8_K& y, Value value, Scale scale, int32_t lane[8]) {
    int8_t w[256];
    int32_t s4[64];
    for (int e = 0; e < 256; ++e) w[e] = int8_t(value(e));
    sums_of_4<256>(w, y.qs, s4);
    for (int c = 0; c < 8; ++c)
        for (int l = 0; l < 8; ++l) lane[l] += scale(2 * c + l / 4) * s4[8 * c + l];
}

float dot_q2_K_q8_K(const block_q2_K* x, const block_q8_K* y, int64_t nb) {
    float acc[8] = {};
    for (int64_t i = 0; i < nb; ++i) {
        const float d = y[i].d * fp16_to_f32(x[i].d);
        const float dmin = -y[i].d * fp16_to_f32(x[i].dmin);
        const uint8_t* sc = x[i].scales;
        for (int l = 0; l < 8; ++l) {
            const int32_t prod = (sc[2 * l] >> 4) * y[i].bsums[2 * l] + (sc[2 * l + 1] >> 4) * y[i].bsums[2 * l + 1];
            acc[l] = std::fma(dmin, float(prod), acc[l]);
        }
        int32_t lane[8] = {};
        const uint8_t* qs = x[i].qs;
        k_small_lanes(
            y[i], [&](int e) { return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3; },
            [&](int g) { return sc[g] & 0x0f; }, lane);
        for (int l = 0; l < 8; ++l) acc[l] = std::fma(d, float(lane[l]), acc[l]);
    }
    return tree_sum8(acc);
}

float dot_q3_K_q8_K(const block_q3_K* x, const block_q8_K* y, int64_t nb) {
    float acc[8] = {};
    for (int64_t i = 0; i < nb; ++i) {
        const float d = y[i].d * fp16_to_f32(x[i].d);
        int scales[16];
        q3_K_scales(x[i].scales, scales);
        int32_t lane[8] = {};
        const block_q3_K& b = x[i];
        k_small_lanes(
            y[i],
            [&](int e) {
                const int half = e / 128, plane = (e % 128) / 32, k = e % 32;
                return ((b.qs[32 * half + k] >> (2 * plane)) & 3) - ((b.hmask[k] >> (4 * half + plane)) & 1 ? 0 : 4);
            },
            [&](int g) { return scales[g]; }, lane);
        for (int l = 0; l < 8; ++l) acc[l] = std::fma(d, float(lane[l]), acc[l]);
    }
    return tree_sum8(acc);
}

// All 256 values of a Q4_K / Q5_K block (qh null for Q4_K): element 32 g + l is nibble g % 2 of
// qs[32 (g / 2) + l], plus bit g of qh[l] as 16 for Q5_K.
void k_affine_values(const uint8_t* qs, const uint8_t* qh, int8_t w[256]) {
    for (int g = 0; g < 8; g += 2)
        for (int l = 0; l < 32; ++l) {
            const uint8_t q = qs[16 * g + l];
            w[32 * g + l] = int8_t((q & 0x0f) | (qh ? ((qh[l] >> g) & 1) << 4 : 0));
            w[32 * g + 32 + l] = int8_t((q >> 4) | (qh ? ((qh[l] >> (g + 1)) & 1) << 4 : 0));
        }
}

// Q4_K. Rows (llama.cpp's repacked kernel): per block, one FMA of the exact integer dot
// (scales applied) and one of the mins term, subtracted at the end. Lanes (its AVX2 kernel):
// 8 lanes as for Q5_K, the mins in 4 lanes of pairs of groups, each summed as a tree.
float dot_q4_K_q8_K(const block_q4_K* x, const block_q8_K* y, int64_t nb, SumOrder order) {
    if (order == SumOrder::Lanes) {
        float acc[8] = {}, acc_m[4] = {};
        for (int64_t i = 0; i < nb; ++i) {
            const float d = y[i].d * fp16_to_f32(x[i].d);
            const float dmin = -y[i].d * fp16_to_f32(x[i].dmin);
            int32_t lane[8] = {};
            uint8_t sc[8], m[8];
            for (int g = 0; g < 8; ++g) k4_scale_min(g, x[i].scales, sc[g], m[g]);
            for (int p = 0; p < 4; ++p) {
                const int32_t prod = m[2 * p] * (y[i].bsums[4 * p] + y[i].bsums[4 * p + 1]) +
                                     m[2 * p + 1] * (y[i].bsums[4 * p + 2] + y[i].bsums[4 * p + 3]);
                acc_m[p] = std::fma(dmin, float(prod), acc_m[p]);
            }
            int8_t w[256];
            int32_t s4[64];
            k_affine_values(x[i].qs, nullptr, w);
            sums_of_4<256>(w, y[i].qs, s4);
            for (int g = 0; g < 8; ++g)
                for (int l = 0; l < 8; ++l) lane[l] += sc[g] * s4[8 * g + l];
            for (int l = 0; l < 8; ++l) acc[l] = std::fma(d, float(lane[l]), acc[l]);
        }
        return tree_sum8(acc) + ((acc_m[0] + acc_m[2]) + (acc_m[1] + acc_m[3]));
    }
    float acc = 0.0f, acc_min = 0.0f;
    for (int64_t i = 0; i < nb; ++i) {
        int32_t isum = 0, imin = 0;
        int8_t w[256];
        int32_t s4[64];
        k_affine_values(x[i].qs, nullptr, w);
        sums_of_4<256>(w, y[i].qs, s4);
        for (int g = 0; g < 8; ++g) {
            uint8_t sc, m;
            k4_scale_min(g, x[i].scales, sc, m);
            int32_t s = 0;
            for (int j = 0; j < 8; ++j) s += s4[8 * g + j];
            isum += sc * s;
            imin += m * (y[i].bsums[2 * g] + y[i].bsums[2 * g + 1]);
        }
        acc = std::fma(float(isum), fp16_to_f32(x[i].d) * y[i].d, acc);
        acc_min = std::fma(float(imin), fp16_to_f32(x[i].dmin) * y[i].d, acc_min);
    }
    return acc - acc_min;
}

// Q5_K in the order of llama.cpp's x86 AVX2 kernel: 8 integer lanes (lane l holds, for every
// group, the scaled sum of the products at positions 4l..4l+3), an FMA per block, the 8-lane
// tree, plus the mins term accumulated separately.
float dot_q5_K_q8_K(const block_q5_K* x, const block_q8_K* y, int64_t nb) {
    float acc[8] = {}, summs = 0.0f;
    for (int64_t i = 0; i < nb; ++i) {
        const float d = y[i].d * fp16_to_f32(x[i].d);
        const float dmin = -y[i].d * fp16_to_f32(x[i].dmin);
        int32_t lane[8] = {}, imin = 0;
        int8_t w[256];
        int32_t s4[64];
        k_affine_values(x[i].qs, x[i].qh, w);
        sums_of_4<256>(w, y[i].qs, s4);
        for (int g = 0; g < 8; ++g) {
            uint8_t sc, m;
            k4_scale_min(g, x[i].scales, sc, m);
            imin += m * (y[i].bsums[2 * g] + y[i].bsums[2 * g + 1]);
            for (int l = 0; l < 8; ++l) lane[l] += sc * s4[8 * g + l];
        }
        summs = std::fma(dmin, float(imin), summs);
        for (int l = 0; l < 8; ++l) acc[l] = std::fma(d, float(lane[l]), acc[l]);
    }
    return tree_sum8(acc) + summs;
}

// Q6_K in the order of llama.cpp's x86 AVX2 kernel: unsigned 6-bit values times Q8_K in 8
// integer lanes (lane l: positions 4l..4l+3 of every 32-element quarter, with that 16-group's
// scale), minus 32 * scale * group sums (lane l: groups 2l and 2l+1), an FMA per block, the tree.
// All 256 unsigned values of a Q6_K block, element e = q6_K_value(b, e).
void q6_K_values(const block_q6_K& b, int8_t w[256]) {
    for (int half = 0; half < 2; ++half)
        for (int l = 0; l < 32; ++l) {
            const uint8_t lo = b.ql[64 * half + l], hi = b.ql[64 * half + 32 + l], h = b.qh[32 * half + l];
            int8_t* o = w + 128 * half + l;
            o[0] = int8_t((lo & 0x0f) | (h & 3) << 4);
            o[32] = int8_t((hi & 0x0f) | ((h >> 2) & 3) << 4);
            o[64] = int8_t((lo >> 4) | ((h >> 4) & 3) << 4);
            o[96] = int8_t((hi >> 4) | ((h >> 6) & 3) << 4);
        }
}

float dot_q6_K_q8_K(const block_q6_K* x, const block_q8_K* y, int64_t nb) {
    float acc[8] = {};
    for (int64_t i = 0; i < nb; ++i) {
        const float d = y[i].d * fp16_to_f32(x[i].d);
        int8_t w[256];
        q6_K_values(x[i], w);
        int32_t s4[64];
        sums_of_4<256>(w, y[i].qs, s4);
        int32_t lane[8] = {};
        for (int quarter = 0; quarter < 8; ++quarter)  // 32-element chunks; lanes 0-3 take group 2 quarter, 4-7 the next
            for (int l = 0; l < 8; ++l) lane[l] += x[i].scales[2 * quarter + (l >= 4 ? 1 : 0)] * s4[8 * quarter + l];
        for (int l = 0; l < 8; ++l) {
            lane[l] -= 32 * (y[i].bsums[2 * l] * x[i].scales[2 * l] + y[i].bsums[2 * l + 1] * x[i].scales[2 * l + 1]);
            acc[l] = std::fma(d, float(lane[l]), acc[l]);
        }
    }
    return tree_sum8(acc);
}

// IQ4_NL x Q8_0. Rows: dot_rows_order_32 (llama.cpp repacks IQ4_NL as Q4_0). Lanes (its AVX2 kernel): 8 lanes of 4-element sums in two accumulators,
// even and odd blocks, added lane by lane and summed as a tree; an odd last block is added
// with one FMA (GCC contracts the scalar tail).
float dot_iq4_nl_q8_0(const block_iq4_nl* x, const block_q8_0* y, int64_t nb, SumOrder order) {
    const auto value = [](const block_iq4_nl& b, int e) {
        return int(kIQ4Values[nibble32(b.qs, e)]);
    };
    if (order == SumOrder::Rows) return dot_rows_order_32(x, y, nb, value);
    float acc[2][8] = {};
    int64_t i = 0;
    for (; i + 1 < nb; i += 2)
        for (int k = 0; k < 2; ++k) {
            const float d = fp16_to_f32(y[i + k].d) * fp16_to_f32(x[i + k].d);
            int8_t w[32];
            int32_t s4[8];
            values32(x[i + k], value, w);
            sums_of_4<32>(w, y[i + k].qs, s4);
            for (int l = 0; l < 8; ++l) acc[k][l] = std::fma(d, float(s4[l]), acc[k][l]);
        }
    for (int l = 0; l < 8; ++l) acc[0][l] += acc[1][l];
    float sum = tree_sum8(acc[0]);
    for (; i < nb; ++i) {
        int32_t s = 0;
        for (int e = 0; e < 32; ++e) s += value(x[i], e) * y[i].qs[e];
        sum = std::fma(fp16_to_f32(y[i].d) * fp16_to_f32(x[i].d), float(s), sum);
    }
    return sum;
}

// IQ4_XS x Q8_K in the order of llama.cpp's AVX2 kernel: 8 integer lanes (lane l: for every
// group, its signed scale times the sum of the products at 4l..4l+3), an FMA per block, the tree.
float dot_iq4_xs_q8_K(const block_iq4_xs* x, const block_q8_K* y, int64_t nb) {
    float acc[8] = {};
    for (int64_t i = 0; i < nb; ++i) {
        int32_t lane[8] = {};
        int8_t w[256];
        int32_t s4[64];
        for (int g = 0; g < 8; ++g)
            for (int e = 0; e < 32; ++e) w[32 * g + e] = kIQ4Values[nibble32(x[i].qs + 16 * g, e)];
        sums_of_4<256>(w, y[i].qs, s4);
        for (int g = 0; g < 8; ++g) {
            const int ls = iq4_xs_scale(x[i], g);
            for (int l = 0; l < 8; ++l) lane[l] += ls * s4[8 * g + l];
        }
        const float d = fp16_to_f32(x[i].d) * y[i].d;
        for (int l = 0; l < 8; ++l) acc[l] = std::fma(d, float(lane[l]), acc[l]);
    }
    return tree_sum8(acc);
}

}  // namespace

TensorType activation_type(TensorType w) {
    switch (w) {
        case TensorType::Q4_0: case TensorType::Q5_0: case TensorType::Q8_0: case TensorType::IQ4_NL: return TensorType::Q8_0;
        case TensorType::Q4_1: case TensorType::Q5_1: return TensorType::Q8_1;
        case TensorType::Q2_K: case TensorType::Q3_K: case TensorType::Q4_K: case TensorType::Q5_K:
        case TensorType::Q6_K: case TensorType::IQ4_XS: return TensorType::Q8_K;
        case TensorType::F16: return TensorType::F16;
        case TensorType::BF16: return TensorType::BF16;
        default: return TensorType::F32;
    }
}

bool weight_type_supported(TensorType w) {
    switch (w) {
        case TensorType::F32: case TensorType::F16: case TensorType::BF16: case TensorType::Q4_0: case TensorType::Q4_1:
        case TensorType::Q5_0: case TensorType::Q5_1: case TensorType::Q8_0: case TensorType::Q2_K: case TensorType::Q3_K:
        case TensorType::Q4_K: case TensorType::Q5_K: case TensorType::Q6_K: case TensorType::IQ4_NL:
        case TensorType::IQ4_XS: return true;
        default: return false;
    }
}

void quantize_activations(TensorType weight, const float* x, int64_t n, std::vector<uint8_t>& out) {
    const TensorType at = activation_type(weight);
    out.resize(size_t(row_bytes(at, uint64_t(n))));
    switch (at) {
        case TensorType::Q8_0: return quantize_q8_acts(x, reinterpret_cast<block_q8_0*>(out.data()), n, false);
        case TensorType::Q8_1: return quantize_q8_acts(x, reinterpret_cast<block_q8_1*>(out.data()), n, true);
        default: return quantize_row(at, x, out.data(), n);
    }
}

SumOrder llama_cpp_sum_order(TensorType w, int64_t rows) {
    const bool repacked = (w == TensorType::Q4_0 || w == TensorType::Q4_K || w == TensorType::IQ4_NL) && rows % 8 == 0;
    return repacked ? SumOrder::Rows : SumOrder::Lanes;
}

float dot_row(TensorType w, const void* row, const void* acts, int64_t n, SumOrder order) {
    const int64_t nb = n / traits(w).block_size;
    switch (w) {
        case TensorType::F32: return dot_f32_lanes8(static_cast<const float*>(row), static_cast<const float*>(acts), n);
        case TensorType::F16:
        case TensorType::BF16: {
            const auto* a = static_cast<const uint16_t*>(row);
            const auto* b = static_cast<const uint16_t*>(acts);
            const auto cvt = w == TensorType::F16 ? fp16_to_f32 : bf16_to_f32;
            std::vector<float> fa(static_cast<size_t>(n)), fb(static_cast<size_t>(n));
            for (int64_t i = 0; i < n; ++i) { fa[size_t(i)] = cvt(a[i]); fb[size_t(i)] = cvt(b[i]); }
            return dot_f32_lanes8(fa.data(), fb.data(), n);
        }
        case TensorType::Q4_0: return dot_q4_0_q8_0(static_cast<const block_q4_0*>(row), static_cast<const block_q8_0*>(acts), nb, order);
        case TensorType::Q4_1: return dot_q4_1_q8_1(static_cast<const block_q4_1*>(row), static_cast<const block_q8_1*>(acts), nb);
        case TensorType::Q5_0: return dot_q5_0_q8_0(static_cast<const block_q5_0*>(row), static_cast<const block_q8_0*>(acts), nb);
        case TensorType::Q5_1: return dot_q5_1_q8_1(static_cast<const block_q5_1*>(row), static_cast<const block_q8_1*>(acts), nb);
        case TensorType::Q8_0: return dot_q8_0_q8_0(static_cast<const block_q8_0*>(row), static_cast<const block_q8_0*>(acts), nb);
        case TensorType::Q2_K: return dot_q2_K_q8_K(static_cast<const block_q2_K*>(row), static_cast<const block_q8_K*>(acts), nb);
        case TensorType::Q3_K: return dot_q3_K_q8_K(static_cast<const block_q3_K*>(row), static_cast<const block_q8_K*>(acts), nb);
        case TensorType::Q4_K: return dot_q4_K_q8_K(static_cast<const block_q4_K*>(row), static_cast<const block_q8_K*>(acts), nb, order);
        case TensorType::Q5_K: return dot_q5_K_q8_K(static_cast<const block_q5_K*>(row), static_cast<const block_q8_K*>(acts), nb);
        case TensorType::Q6_K: return dot_q6_K_q8_K(static_cast<const block_q6_K*>(row), static_cast<const block_q8_K*>(acts), nb);
        case TensorType::IQ4_NL:
            return dot_iq4_nl_q8_0(static_cast<const block_iq4_nl*>(row), static_cast<const block_q8_0*>(acts), nb, order);
        case TensorType::IQ4_XS: return dot_iq4_xs_q8_K(static_cast<const block_iq4_xs*>(row), static_cast<const block_q8_K*>(acts), nb);
        default: RILL_FAIL("no dot product for weight type %s", std::string(type_name(w)).c_str());
    }
}

void matvec(TensorType w, const void* W, int64_t rows, int64_t cols, const float* x, float* y, SumOrder order) {
    matmul(w, W, rows, cols, x, y, 1, order);
}

void matmul(TensorType w, const void* W, int64_t rows, int64_t cols, const float* X, float* Y, int64_t n_tokens, SumOrder order) {
    std::vector<uint8_t> acts;
    const uint64_t rb = row_bytes(w, uint64_t(cols));
    const auto* base = static_cast<const uint8_t*>(W);
    // Half-precision rows and activations are widened to float (exactly) once, not per dot product.
    const bool half = w == TensorType::F16 || w == TensorType::BF16;
    const bool blocks = float_matmul_sums_in_blocks(w, rows, cols, n_tokens);
    std::vector<float> wf, xf;
    if (half) {
        wf.resize(size_t(cols));
        xf.resize(size_t(cols));
    }
    for (int64_t t = 0; t < n_tokens; ++t) {
        const float* x = X + t * cols;
        float* y = Y + t * rows;
        if (w == TensorType::F32) {
            for (int64_t r = 0; r < rows; ++r) {
                const auto* row = reinterpret_cast<const float*>(base + uint64_t(r) * rb);
                y[r] = blocks ? dot_f32_blocks32(row, x, cols) : dot_f32_lanes8(row, x, cols);
            }
            continue;
        }
        if (half) {  // activations rounded to the weight's format, then both summed as floats
            quantize_activations(w, x, cols, acts);
            dequantize_row(w, acts.data(), xf.data(), cols);
            for (int64_t r = 0; r < rows; ++r) {
                dequantize_row(w, base + uint64_t(r) * rb, wf.data(), cols);
                y[r] = !blocks ? dot_f32_lanes8(wf.data(), xf.data(), cols)
                       : w == TensorType::BF16 ? dot_bf16_blocks32(wf.data(), xf.data(), cols) : dot_f32_blocks32(wf.data(), xf.data(), cols);
            }
            continue;
        }
        const void* a = x;
        if (activation_type(w) != TensorType::F32) {
            quantize_activations(w, x, cols, acts);
            a = acts.data();
        }
        for (int64_t r = 0; r < rows; ++r) y[r] = dot_row(w, base + uint64_t(r) * rb, a, cols, order);
    }
}

bool float_matmul_sums_in_blocks(TensorType w, int64_t rows, int64_t cols, int64_t n_tokens) {
    if (w != TensorType::F32 && w != TensorType::F16 && w != TensorType::BF16) return false;
    const bool llamafile = n_tokens >= 2 && cols % 8 == 0 && rows % 4 == 0;
    return !llamafile;
}

RILL_FMA_CLONES float dot_f32_lanes8(const float* a, const float* b, int64_t n) {
    float lane[8] = {};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; ++l) lane[l] = std::fma(a[i + l], b[i + l], lane[l]);
    float s = tree_sum8(lane);
    for (; i < n; ++i) s = std::fma(a[i], b[i], s);  // llama.cpp needs n % 8 == 0 here (see matmul); kept for completeness
    return s;
}

// The 4 x 8 lanes of both block sums, folded (0 + 2) + (1 + 3).
RILL_FMA_CLONES static void blocks32_lanes(const float* a, const float* b, int64_t n, float lanes[8]) {
    float acc[4][8] = {};
    for (int64_t i = 0; i + 32 <= n; i += 32)
        for (int j = 0; j < 4; ++j)
            for (int l = 0; l < 8; ++l) acc[j][l] = std::fma(a[i + 8 * j + l], b[i + 8 * j + l], acc[j][l]);
    for (int l = 0; l < 8; ++l) lanes[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
}

float dot_bf16_blocks32(const float* a, const float* b, int64_t n) {
    float lanes[8];
    blocks32_lanes(a, b, n, lanes);
    double sum = double(tree_sum8(lanes));
    for (int64_t i = n - n % 32; i < n; ++i) sum += double(a[i] * b[i]);
    return float(sum);
}

float dot_f32_blocks32(const float* a, const float* b, int64_t n) {
    float lanes[8];
    blocks32_lanes(a, b, n, lanes);
    float s = hadd_sum8(lanes);
    for (int64_t i = n - n % 32; i < n; ++i) s = std::fma(a[i], b[i], s);  // the compiler contracts llama.cpp's tail loop to FMA
    return s;
}

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += double(x[i] * x[i]);
    const float mean = float(sum / double(n));
    const float scale = 1.0f / std::sqrt(mean + eps);
    for (int64_t i = 0; i < n; ++i) y[i] = w ? (x[i] * scale) * w[i] : x[i] * scale;
}

void l2_norm(float* x, int64_t n, float eps) {
    // As llama.cpp: an RMS norm with eps/n, then scaled by 1/sqrt(n).
    rms_norm(x, nullptr, x, n, eps / float(n));
    const float s = 1.0f / std::sqrt(float(n));
    for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

void l2_norm_rows(float* x, int64_t rows, int64_t n, float eps) {
    // As l2_norm row by row: rms_norm's sum of squares in double, its scale with eps / n, then 1/sqrt(n).
    const float eps_n = eps / float(n), s = 1.0f / std::sqrt(float(n));
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        float* row[4] = {x + r * n, x + (r + 1) * n, x + (r + 2) * n, x + (r + 3) * n};
        double sum[4] = {0.0, 0.0, 0.0, 0.0};
        for (int64_t i = 0; i < n; ++i)
            for (int j = 0; j < 4; ++j) sum[j] += double(row[j][i] * row[j][i]);
        for (int j = 0; j < 4; ++j) {
            const float scale = 1.0f / std::sqrt(float(sum[j] / double(n)) + eps_n);
            for (int64_t i = 0; i < n; ++i) row[j][i] = (row[j][i] * scale) * s;
        }
    }
    for (; r < rows; ++r) l2_norm(x + r * n, n, eps);
}

float softplus(float x) { return x > 20.0f ? x : std::log(1.0f + std::exp(x)); }

float exp_poly(float x) {
    const float shift = 0x1.8p23f;  // adding it rounds to an integer in the low mantissa bits
    const float z = std::fma(x, 0x1.715476p+0f, shift);  // x / ln2 + shift
    const float n = z - shift;
    // b = x - n ln2, with ln2 split in two parts for accuracy.
    const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
    const uint32_t e = f32_to_bits(z) << 23;        // n in the exponent field
    const float k = bits_to_f32(e + 0x3f800000u);   // 2^n while |n| <= 126
    const float u = b * b;
    // p(b) - 1, so that the result k + k (p - 1) rounds once.
    const float j = std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                             u, 0x1.ffffecp-1f * b);
    if (!(std::fabs(n) > 126.0f)) return std::fma(j, k, k);  // nan goes this way too
    // 2^n split into two factors that are each representable: s1 (2^127 or 2^-125) and s2.
    const uint32_t g = n <= 0.0f ? 0x82000000u : 0u;
    const float s1 = bits_to_f32(g + 0x7f000000u);
    if (std::fabs(n) > 192.0f) return s1 * s1;  // inf or 0
    const float s2 = bits_to_f32(e - g);
    return std::fma(s2, j, s2) * s1;
}

namespace {
inline float silu_poly(float x) { return x / (1.0f + exp_poly(0.0f - x)); }
inline float silu_libm(float x) { return x / (1.0f + std::exp(-x)); }
}  // namespace

void silu_inplace(float* x, int64_t n) {
    const int64_t vec_end = n - n % kBlock;
    for (int64_t i = 0; i < vec_end; ++i) x[i] = silu_poly(x[i]);
    for (int64_t i = vec_end; i < n; ++i) x[i] = silu_libm(x[i]);
}

// ggml_table_gelu_f16: for every fp16 x, fp16(0.5 x (1 + tanh(sqrt(2/pi) x (1 + 0.044715 x^2)))) in
// float steps (GCC contracts 1 + a x x into one FMA).
const uint16_t* gelu_fp16_table() {
    static const std::vector<uint16_t> table = [] {
        std::vector<uint16_t> t(65536);
        const float a = 0.044715f, s = 0.79788456080286535587989211986876f;
        for (size_t i = 0; i < t.size(); ++i) {
            const float x = fp16_to_f32(uint16_t(i));
            const float th = float(std::tanh(double(s * x * std::fma(a * x, x, 1.0f))));
            t[i] = f32_to_fp16(0.5f * x * (1.0f + th));
        }
        return t;
    }();
    return table.data();
}

void geglu(const float* gate, const float* up, float* out, int64_t n) {
    const uint16_t* table = gelu_fp16_table();
    for (int64_t i = 0; i < n; ++i) {
        const float x = gate[i];
        out[i] = x <= -10.0f ? 0.0f : x >= 10.0f ? x * up[i] : fp16_to_f32(table[f32_to_fp16(x)]) * up[i];
    }
}

void gelu(const float* x, float* y, int64_t n) {
    const uint16_t* table = gelu_fp16_table();
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] <= -10.0f ? 0.0f : x[i] >= 10.0f ? x[i] : fp16_to_f32(table[f32_to_fp16(x[i])]);
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
    const int64_t vec_end = n - n % kBlock;
    for (int64_t i = 0; i < vec_end; ++i) out[i] = silu_poly(gate[i]) * up[i];
    for (int64_t i = vec_end; i < n; ++i) out[i] = silu_libm(gate[i]) * up[i];
}

void softmax(float* x, int64_t n) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
    double sum = 0.0;
    const int64_t vec_end = n - n % kBlock;
    for (int64_t i = 0; i < vec_end; i += kBlock) {
        for (int64_t j = i; j < i + kBlock; ++j) x[j] = exp_poly(x[j] - mx);
        sum += double(tree_sum8(x + i));
    }
    for (int64_t i = vec_end; i < n; ++i) {
        x[i] = std::exp(x[i] - mx);
        sum += double(x[i]);
    }
    const float inv = float(1.0 / sum);
    for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}


// ---- float sine and cosine as llama.cpp's libm computes them ------------------------------------
// glibc's sinf/cosf (its x86-64 FMA build, which llama.cpp's CPU backend calls for rope) are not
// correctly rounded (about 2% of rope angles differ in the last bit from the exact value), and
// other libms (musl in wasm) differ from them again. A last-bit difference in a rope angle
// later flips an activation's quantisation, so Rill computes these itself, in glibc's way:
// reduction by pi/2 (a multiply-subtract below 120, a 4/pi table above), an even or odd
// polynomial in double, fused multiply-adds where that build has them, one rounding to float.
namespace {

struct SinCosPoly { double sign[4], hpi_inv, hpi, c0, c1, c2, c3, c4, s1, s2, s3; };
// The cosine coefficients are negated in the second entry (quadrants 2 and 3).
constexpr SinCosPoly kSinCos[2] = {
    {{1.0, -1.0, -1.0, 1.0}, 0x1.45F306DC9C883p+23, 0x1.921FB54442D18p0, 0x1p0, -0x1.ffffffd0c621cp-2, 0x1.55553e1068f19p-5,
     -0x1.6c087e89a359dp-10, 0x1.99343027bf8c3p-16, -0x1.555545995a603p-3, 0x1.1107605230bc4p-7, -0x1.994eb3774cf24p-13},
    {{1.0, -1.0, -1.0, 1.0}, 0x1.45F306DC9C883p+23, 0x1.921FB54442D18p0, -0x1p0, 0x1.ffffffd0c621cp-2, -0x1.55553e1068f19p-5,
     0x1.6c087e89a359dp-10, -0x1.99343027bf8c3p-16, -0x1.555545995a603p-3, 0x1.1107605230bc4p-7, -0x1.994eb3774cf24p-13}};
// 4/pi in overlapping 32-bit windows, 8 new bits per entry.
constexpr uint32_t kInvPio4[24] = {
    0xa2, 0xa2f9, 0xa2f983, 0xa2f9836e, 0xf9836e4e, 0x836e4e44, 0x6e4e4415, 0x4e441529,
    0x441529fc, 0x1529fc27, 0x29fc2757, 0xfc2757d1, 0x2757d1f5, 0x57d1f534, 0xd1f534dd, 0xf534ddc0,
    0x34ddc0db, 0xddc0db62, 0xc0db6295, 0xdb629599, 0x6295993c, 0x95993c43, 0x993c4390, 0x3c439041};

inline uint32_t top12(float f) { return (f32_to_bits(f) >> 20) & 0x7ff; }

// Sine (even n) or cosine (odd n) polynomial of the reduced argument x, x2 = x * x.
float sincos_poly(double x, double x2, const SinCosPoly* p, int n) {
    if ((n & 1) == 0) {
        const double x3 = x * x2, s1 = std::fma(x2, p->s3, p->s2), x7 = x3 * x2, s = std::fma(x3, p->s1, x);
        return float(std::fma(x7, s1, s));
    }
    const double x4 = x2 * x2, c2 = std::fma(x2, p->c4, p->c3), c1 = std::fma(x2, p->c1, p->c0), x6 = x4 * x2;
    return float(std::fma(x6, c2, std::fma(x4, p->c2, c1)));
}

// x modulo pi/2 for |x| < 120, quadrant in n (2/pi is pre-scaled by 2^24: the quadrant lands in bits 24..31).
double reduce_small(double x, const SinCosPoly* p, int& n) {
    n = (int32_t(x * p->hpi_inv) + 0x800000) >> 24;
    return std::fma(-double(n), p->hpi, x);
}

// |x| >= 120 (given as float bits): exact fixed-point product with 4/pi, 2.62 bits of it kept.
double reduce_large(uint32_t xi, int& n) {
    const uint32_t* a = &kInvPio4[(xi >> 26) & 15];
    const int shift = (xi >> 23) & 7;
    xi = ((xi & 0xffffff) | 0x800000) << shift;
    uint64_t r0 = uint32_t(xi * a[0]);
    const uint64_t r1 = uint64_t(xi) * a[4], r2 = uint64_t(xi) * a[8];
    r0 = ((r2 >> 32) | (r0 << 32)) + r1;
    const uint64_t q = (r0 + (uint64_t(1) << 61)) >> 62;
    r0 -= q << 62;
    n = int(q);
    return double(int64_t(r0)) * 0x1.921FB54442D18p-62;  // 2 pi / 2^64
}

float sin_or_cos(float y, bool cosine) {
    const SinCosPoly* p = &kSinCos[0];
    int n = 0;
    if (top12(y) < top12(0x1.921FB6p-1f)) {  // |y| < pi/4
        if (top12(y) < top12(0x1p-12f)) return cosine ? 1.0f : y;
        const double x = y;
        return sincos_poly(x, x * x, p, cosine ? 1 : 0);
    }
    double x;
    int quadrant;
    if (top12(y) < top12(120.0f)) {
        x = reduce_small(y, p, n);
        quadrant = n;
    } else if (std::isfinite(y)) {
        x = reduce_large(f32_to_bits(y), n);
        quadrant = n + int(f32_to_bits(y) >> 31);
    } else {
        return y - y;  // nan
    }
    const double s = p->sign[quadrant & 3];
    if (quadrant & 2) p = &kSinCos[1];
    return sincos_poly(x * s, x * x, p, cosine ? n ^ 1 : n);
}

}  // namespace

float sinf_libm(float x) { return sin_or_cos(x, false); }
float cosf_libm(float x) { return sin_or_cos(x, true); }

namespace {
// y * 2^k by adding k to the exponent field (y normal and the result too).
inline float add_exponent(float y, int k) { return bits_to_f32(f32_to_bits(y) + uint32_t(k) * (1u << 23)); }
}  // namespace

// fdlibm's expm1f: k = round(x / ln2), r = x - k ln2 in two parts (hi, lo) with its rounding error c,
// expm1(r) from a rational approximation in r^2 / 2, then scaled by 2^k in the form that keeps the
// most bits for each range of k. Each float operation in the order glibc's C code has it.
float expm1f_libm(float x) {
    const float ln2_hi = 6.9313812256e-01f, ln2_lo = 9.0580006145e-06f, inv_ln2 = 1.4426950216e+00f;
    const float q1 = -3.3333335072e-02f, q2 = 1.5873016091e-03f, q3 = -7.9365076090e-05f, q4 = 4.0082177293e-06f, q5 = -2.0109921195e-07f;
    const bool neg = f32_to_bits(x) >> 31;
    const uint32_t ax = f32_to_bits(x) & 0x7fffffffu;
    if (ax >= 0x4195b844u) {
        if (ax > 0x7f800000u) return x + x;
        if (ax == 0x7f800000u) return neg ? -1.0f : x;
        if (!neg && ax >= 0x42b17218u && x > 8.8721679688e+01f) return INFINITY;
        if (neg) return -1.0f;
    }
    float c = 0.0f;
    int k = 0;
    if (ax > 0x3eb17218u) {
        float hi, lo;
        if (ax < 0x3f851592u) {
            k = neg ? -1 : 1;
            hi = neg ? x + ln2_hi : x - ln2_hi;
            lo = neg ? -ln2_lo : ln2_lo;
        } else {
            k = int(inv_ln2 * x + (neg ? -0.5f : 0.5f));
            const float t = float(k);
            hi = x - t * ln2_hi;
            lo = t * ln2_lo;
        }
        x = hi - lo;
        c = (hi - x) - lo;
    } else if (ax < 0x33000000u) {
        return x;
    }
    const float hfx = 0.5f * x, hxs = x * hfx;
    const float r1 = 1.0f + hxs * (q1 + hxs * (q2 + hxs * (q3 + hxs * (q4 + hxs * q5))));
    const float t = 3.0f - r1 * hfx;
    float e = hxs * ((r1 - t) / (6.0f - x * t));
    if (k == 0) return x - (x * e - hxs);
    e = x * (e - c) - c;
    e -= hxs;
    if (k == -1) return 0.5f * (x - e) - 0.5f;
    if (k == 1) return x < -0.25f ? -2.0f * (e - (x + 0.5f)) : 1.0f + 2.0f * (x - e);
    if (k <= -2 || k > 56) return add_exponent(1.0f - (e - x), k) - 1.0f;
    if (k < 23) return add_exponent(bits_to_f32(0x3f800000u - (0x1000000u >> k)) - (e - x), k);
    float y = x - (e + bits_to_f32(uint32_t(0x7f - k) << 23));
    y += 1.0f;
    return add_exponent(y, k);
}
// tanh(x) = expm1(2x) / (expm1(2x) + 2), in the two forms fdlibm uses below and above |x| = 1.
float tanhf_libm(float x) {
    const uint32_t ax = f32_to_bits(x) & 0x7fffffffu;
    const bool neg = f32_to_bits(x) >> 31;
    if (ax >= 0x7f800000u) return neg ? 1.0f / x - 1.0f : 1.0f / x + 1.0f;
    float z;
    if (ax < 0x41b00000u) {
        if (ax == 0) return x;
        if (ax < 0x24000000u) return x * (1.0f + x);
        if (ax >= 0x3f800000u) {
            const float t = expm1f_libm(2.0f * std::fabs(x));
            z = 1.0f - 2.0f / (t + 2.0f);
        } else {
            const float t = expm1f_libm(-2.0f * std::fabs(x));
            z = -t / (t + 2.0f);
        }
    } else {
        z = 1.0f;
    }
    return neg ? -z : z;
}

void rope_angles(int n_rot, int pos, float freq_base, const float* freq_factors, float mscale, float freq_scale, float* cos,
                 float* sin) {
    // The angle of pair i is pos * base^(-2i/n_rot), built by repeated multiplication as ggml does.
    const float theta_scale = std::pow(freq_base, -2.0f / float(n_rot));
    float theta = float(pos);
    for (int i = 0; i < n_rot / 2; ++i, theta *= theta_scale) {
        const float t = freq_scale * (freq_factors ? theta / freq_factors[i] : theta);
        cos[i] = cosf_libm(t) * mscale;
        sin[i] = sinf_libm(t) * mscale;
    }
}

void rope_rotate(float* head, int n_rot, bool neox, const float* cos, const float* sin) {
    for (int i = 0; i < n_rot / 2; ++i) {
        const float c = cos[i], s = sin[i];
        const int a = neox ? i : 2 * i, b = neox ? i + n_rot / 2 : 2 * i + 1;
        const float x0 = head[a], x1 = head[b];
        // llama.cpp writes x0*c - x1*s and x0*s + x1*c; its compiler contracts each into one
        // FMA (GCC's default -ffp-contract=fast), and matching that rounding matters: a last-bit
        // difference here later flips an activation's quantisation (measured on qwen2/qwen3).
        head[a] = std::fma(x0, c, -(x1 * s));
        head[b] = std::fma(x0, s, x1 * c);
    }
}

void rope(float* head, int n_rot, int pos, float freq_base, bool neox, const float* freq_factors, float mscale, float freq_scale) {
    std::vector<float> cos(size_t(n_rot / 2)), sin(size_t(n_rot / 2));
    rope_angles(n_rot, pos, freq_base, freq_factors, mscale, freq_scale, cos.data(), sin.data());
    rope_rotate(head, n_rot, neox, cos.data(), sin.data());
}

void attention_head(const float* q, const float* k, const float* v, int64_t n_kv, int64_t head_dim, int64_t k_stride,
                    int64_t v_stride, float scale, bool batched, float* scores, float* out, int64_t first) {
    for (int64_t t = 0; t < first; ++t) scores[t] = -INFINITY;
    for (int64_t t = first; t < n_kv; ++t) scores[t] = dot_f32_blocks32(k + t * k_stride, q, head_dim) * scale;
    // llama.cpp's rows hold masked positions up to a padded length; they add exact zeros.
    const int64_t padded = (n_kv + 63) / 64 * 64;
    for (int64_t t = n_kv; t < padded; ++t) scores[t] = -INFINITY;
    softmax(scores, padded);
    for (int64_t i = 0; i < head_dim; ++i) {
        const float* vi = v + i * v_stride;  // positions beyond n_kv meet zero weights
        out[i] = batched ? dot_f32_lanes8(vi, scores, padded) : dot_f32_blocks32(vi, scores, padded);
    }
}

void attention_queries(const AttentionQuery* queries, int64_t n_queries, const float* k, const float* v, int64_t head_dim, int64_t k_stride,
                       int64_t v_stride, float scale, bool batched, float* scores) {
    const int64_t stride = attention_scores_stride(attention_max_kv(queries, n_queries));
    for (int64_t i = 0; i < n_queries; ++i) {
        const AttentionQuery& a = queries[i];
        attention_head(a.q, k, v, a.n_kv, head_dim, k_stride, v_stride, scale, batched, scores + i * stride, a.out, a.first);
    }
}

void conv1d_causal_step(float* state, const float* x, const float* w, int64_t channels, int K, float* out) {
    const int unfused = conv1d_unfused_terms(K);
    for (int64_t c = 0; c < channels; ++c) {
        float s = 0.0f;
        for (int k = 0; k < K; ++k) {
            const float a = k < K - 1 ? state[int64_t(k) * channels + c] : x[c];
            if (k < unfused) {
                const float p = a * w[c * K + k];
                s += p;
            } else {
                s = std::fma(a, w[c * K + k], s);
            }
        }
        out[c] = s;
    }
    conv1d_push_state(state, x, channels, K);
}

void conv1d_push_state(float* state, const float* x, int64_t channels, int K) {
    if (K < 2) return;
    std::memmove(state, state + channels, sizeof(float) * size_t(channels) * size_t(K - 2));
    std::memcpy(state + int64_t(K - 2) * channels, x, sizeof(float) * size_t(channels));
}

void delta_rule_step(const float* S_in, float* S, const float* q, const float* k, const float* v, float g, float beta, float scale,
                     int64_t dk, int64_t dv, float* out) {
    const float decay = std::exp(g);
    // Columns are independent, so each one goes through decay, delta, update and read-out in turn.
    for (int64_t j = 0; j < dv; ++j) {
        float* col = S + j * dk;
        const float* col_in = S_in + j * dk;
        for (int64_t i = 0; i < dk; ++i) col[i] = col_in[i] * decay;
        const float d = (v[j] - dot_f32_blocks32(col, k, dk)) * beta;
        for (int64_t i = 0; i < dk; ++i) col[i] = std::fma(k[i], d, col[i]);
        out[j] = dot_f32_blocks32(col, q, dk) * scale;
    }
}

}  // namespace rill
