// kern:: in wasm SIMD128 / relaxed SIMD. Each kernel follows its scalar reference in
// ops_ref.cpp step for step: the same integer lanes (exact), the same float accumulation
// order, a madd wherever the reference has an std::fma.
#if defined(__wasm_simd128__)

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/half.h"
#include "kernels/ops.h"
#include "kernels/quant_blocks.h"
#include "kernels/quant_ref.h"
#include "kernels/simd.h"
#include "rill/error.h"
#include "src/thread_pool.h"



namespace rill::kern {

using namespace rill::simd;

const char* kernel_set() {
#if defined(__wasm_relaxed_simd__)
    return "relaxed-simd";
#else
    return "simd128";
#endif
}

bool madd_is_fused() {
    // (1 + 2^-23)^2 - (1 + 2^-22) is 2^-46 with one rounding and 0 with two.
    volatile float a = 1.0f + 0x1p-23f, c = -(1.0f + 0x1p-22f);
    const v128 r = madd(wasm_f32x4_splat(a), wasm_f32x4_splat(a), wasm_f32x4_splat(c));
    return wasm_f32x4_extract_lane(r, 0) != 0.0f;
}

namespace {

#if defined(__wasm_relaxed_simd__)
constexpr bool kRelaxed = true;
#else
constexpr bool kRelaxed = false;
#endif

const v128 kLowNibbles = wasm_i8x16_splat(0x0f);

// Every half as a float: the per-block scales of the row kernels are looked up, not converted.
const float* half_table() {
    static const float* table = [] {
        auto* t = new float[65536];
        for (uint32_t h = 0; h < 65536; ++h) t[h] = fp16_to_f32(uint16_t(h));
        return t;
    }();
    return table;
}

// ---- float dot products ---------------------------------------------------------------------

inline float tree8(v128 lo, v128 hi) {  // ops_ref's tree_sum8 of lanes lo|hi
    return hsum_f32x4_tree(wasm_f32x4_add(hi, lo));
}
inline float hadd8(v128 lo, v128 hi) {  // ops_ref's hadd_sum8 of lanes lo|hi
    return hsum_f32x4_pairs(wasm_f32x4_add(hi, lo));
}

// Finishes a scalar tail with madd on lane 0 (an FMA exactly where the reference has one).
inline float madd1(float a, float b, float c) {
    return wasm_f32x4_extract_lane(madd(wasm_f32x4_splat(a), wasm_f32x4_splat(b), wasm_f32x4_splat(c)), 0);
}

float dot_lanes8(const float* a, const float* b, int64_t n) {
    v128 acc[2] = {wasm_f32x4_splat(0), wasm_f32x4_splat(0)};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 2; ++j) acc[j] = madd(load(a + i + 4 * j), load(b + i + 4 * j), acc[j]);
    float s = tree8(acc[0], acc[1]);
    for (; i < n; ++i) s = madd1(a[i], b[i], s);
    return s;
}

// The 4 x 8 lanes of ops_ref's blocks32 sums (acc[2 * block + half]) folded: blocks 0+2 and 1+3, then 0+1.
inline void blocks32_fold(v128 acc[8], v128& lo, v128& hi) {
    for (int h = 0; h < 2; ++h) {
        acc[h] = wasm_f32x4_add(acc[h], acc[4 + h]);
        acc[2 + h] = wasm_f32x4_add(acc[2 + h], acc[6 + h]);
    }
    lo = wasm_f32x4_add(acc[0], acc[2]);
    hi = wasm_f32x4_add(acc[1], acc[3]);
}

void blocks32_lanes(const float* a, const float* b, int64_t n, v128& lo, v128& hi) {
    v128 acc[8];
    for (auto& v : acc) v = wasm_f32x4_splat(0);
    for (int64_t i = 0; i + 32 <= n; i += 32)
        for (int j = 0; j < 8; ++j) acc[j] = madd(load(a + i + 4 * j), load(b + i + 4 * j), acc[j]);
    blocks32_fold(acc, lo, hi);
}

// dot_blocks32 from its folded lanes: the hadd tree, then the n % 32 tail one multiply-add at a time.
inline float blocks32_total(v128 lo, v128 hi, const float* a, const float* b, int64_t n) {
    float s = hadd8(lo, hi);
    for (int64_t i = n - n % 32; i < n; ++i) s = madd1(a[i], b[i], s);
    return s;
}

float dot_blocks32(const float* a, const float* b, int64_t n) {
    v128 lo, hi;
    blocks32_lanes(a, b, n, lo, hi);
    return blocks32_total(lo, hi, a, b, n);
}

float dot_bf16_blocks(const float* a, const float* b, int64_t n) {  // ops_ref's dot_bf16_blocks32
    v128 lo, hi;
    blocks32_lanes(a, b, n, lo, hi);
    double sum = double(tree8(lo, hi));
    for (int64_t i = n - n % 32; i < n; ++i) sum += double(a[i] * b[i]);
    return float(sum);
}

// ---- activations ----------------------------------------------------------------------------

// Activations of every token, converted once for a weight type and shared by all row kernels.
struct Acts {
    TensorType type = TensorType::F32;
    int64_t n_tokens = 0, cols = 0;
    std::vector<uint8_t> q;      // quantised rows (Q8_0 / Q8_1 / Q8_K), row_bytes apart
    uint64_t q_stride = 0;
    std::vector<float> f;        // float rows (F32 copies, or F16/BF16 rounded and widened)
    std::vector<float> d;        // Q8_0 / Q8_1: each block's scale as float
    std::vector<int32_t> lane_offset;  // Q8_0: -offset x the sum of each 4 consecutive values (Q4_0: 8, Q5_0: 16), lane order
    std::vector<int32_t> neg_bsum;  // Q8_0: -8 x each block's sum (Q4_0's offset, row order)
    // Q8_0 weights (relaxed SIMD): each block's |y|, y's signs and scale (see q8_0_tokens)
    struct Q8Signed { int8_t abs[32], neg[32]; float d; };
    std::vector<Q8Signed> abs_sign;
    // Strict SIMD128: every quantised activation widened to i16 (token t's from t * cols on; in
    // order or paired, see wide_acts), so that the byte dots, i16 multiply-adds there, widen only
    // the weights.
    std::vector<int16_t> wide;
};

// The values of nb Q8_K blocks as i16 (Acts::wide), each group of 16 in order or paired (see
// simd.h's ScaledBytes: elements 0,1, 4,5, 8,9, 12,13, then 2,3, 6,7, 10,11, 14,15).
void widen_q8_K(const block_q8_K* y, int64_t nb, bool paired, int16_t* out) {
    for (int64_t b = 0; b < nb; ++b)
        for (int i = 0; i < QK_K; i += 16) {
            const v128 v = load(y[b].qs + i), lo = wasm_i16x8_extend_low_i8x16(v), hi = wasm_i16x8_extend_high_i8x16(v);
            wasm_v128_store(out + b * QK_K + i, paired ? wasm_i32x4_shuffle(lo, hi, 0, 2, 4, 6) : lo);
            wasm_v128_store(out + b * QK_K + i + 8, paired ? wasm_i32x4_shuffle(lo, hi, 1, 3, 5, 7) : hi);
        }
}

// The values of nb Q8_0 or Q8_1 blocks as i16 (Acts::wide), in order or paired.
template <typename Block>
void widen_q8_32(const Block* y, int64_t nb, bool paired, int16_t* out) {
    for (int64_t b = 0; b < nb; ++b)
        for (int i = 0; i < 32; i += 16) {
            const v128 v = load(y[b].qs + i), lo = wasm_i16x8_extend_low_i8x16(v), hi = wasm_i16x8_extend_high_i8x16(v);
            wasm_v128_store(out + b * 32 + i, paired ? wasm_i32x4_shuffle(lo, hi, 0, 2, 4, 6) : lo);
            wasm_v128_store(out + b * 32 + i + 8, paired ? wasm_i32x4_shuffle(lo, hi, 1, 3, 5, 7) : hi);
        }
}

// Strict SIMD128: how a matmul's kernels read the widened activations (Acts::wide): in element
// order (the Rows4 kernels, Q4_K's), paired (Q6_K, Q5_K and IQ4_XS, and the lane-order Q8_0,
// Q5_0 and Q5_1 kernels of the Paired16 / Q5Bits layouts, whose values are stored in pair order),
// or not at all (the relaxed build's byte dots read the bytes).
enum class WideActs { None, InOrder, Paired };
WideActs wide_acts(TensorType w, WeightLayout layout) {
    if (kRelaxed) return WideActs::None;
    switch (w) {
        case TensorType::Q6_K: case TensorType::Q5_K: case TensorType::IQ4_XS: return WideActs::Paired;
        case TensorType::Q8_0: return layout == WeightLayout::Paired16 ? WideActs::Paired : WideActs::None;
        case TensorType::Q5_0: case TensorType::Q5_1: return layout == WeightLayout::Q5Bits ? WideActs::Paired : WideActs::None;
        case TensorType::Q4_0: case TensorType::IQ4_NL: return WideActs::InOrder;
        default: return activation_type(w) == TensorType::Q8_K ? WideActs::InOrder : WideActs::None;
    }
}

// Quantises (or widens) every token's activations, tokens split across the pool's threads.
void prepare_acts(TensorType w, WideActs wide_form, const float* X, int64_t n_tokens, int64_t cols, Acts& a, ThreadPool* pool) {
    a.type = activation_type(w);
    a.n_tokens = n_tokens;
    a.cols = cols;
    if (w == TensorType::F32) return;  // read X directly
    const bool widen = w == TensorType::F16 || w == TensorType::BF16;
    const bool wide = wide_form != WideActs::None, paired = wide_form == WideActs::Paired;
    const int64_t nb = cols / QK8_0;
    if (widen) {
        a.f.resize(size_t(n_tokens * cols));
    } else {
        a.q_stride = row_bytes(a.type, uint64_t(cols));
        a.q.resize(size_t(a.q_stride * uint64_t(n_tokens)));
        if (a.type == TensorType::Q8_0 || a.type == TensorType::Q8_1) a.d.resize(size_t(n_tokens * nb));
        if (a.type == TensorType::Q8_0) {
            a.lane_offset.resize(size_t(n_tokens * nb * 8));
            a.neg_bsum.resize(size_t(n_tokens * nb));
#if defined(__wasm_relaxed_simd__)
            a.abs_sign.resize(w == TensorType::Q8_0 ? size_t(n_tokens * nb) : 0);
#endif
        }
        a.wide.resize(wide ? size_t(n_tokens * cols) : 0);
    }
    const auto tokens = [&](int64_t t0, int64_t t1) {
        std::vector<uint8_t> tmp;
        for (int64_t t = t0; t < t1; ++t) {
            quantize_activations(w, X + t * cols, cols, tmp);
            if (widen) {
                dequantize_row(w, tmp.data(), a.f.data() + t * cols, cols);
                continue;
            }
            std::memcpy(a.q.data() + uint64_t(t) * a.q_stride, tmp.data(), tmp.size());
            int16_t* wide_row = a.wide.data() + t * cols;
            if (wide && a.type == TensorType::Q8_K) widen_q8_K(reinterpret_cast<const block_q8_K*>(tmp.data()), cols / QK_K, paired, wide_row);
            if (wide && a.type == TensorType::Q8_0) widen_q8_32(reinterpret_cast<const block_q8_0*>(tmp.data()), nb, paired, wide_row);
            if (wide && a.type == TensorType::Q8_1) widen_q8_32(reinterpret_cast<const block_q8_1*>(tmp.data()), nb, paired, wide_row);
            if (a.type == TensorType::Q8_1) {
                const auto* y = reinterpret_cast<const block_q8_1*>(tmp.data());
                for (int64_t b = 0; b < nb; ++b) a.d[size_t(t * nb + b)] = fp16_to_f32(y[b].d);
            }
            if (a.type != TensorType::Q8_0) continue;
            const auto* y = reinterpret_cast<const block_q8_0*>(tmp.data());
            for (int64_t b = 0; b < nb; ++b) {
                a.d[size_t(t * nb + b)] = fp16_to_f32(y[b].d);
                int32_t total = 0;
                for (int l = 0; l < 8; ++l) {
                    int32_t s = 0;
                    for (int k = 0; k < 4; ++k) s += y[b].qs[4 * l + k];
                    a.lane_offset[size_t((t * nb + b) * 8 + l)] = (w == TensorType::Q5_0 ? -16 : -8) * s;
                    total += s;
                }
                a.neg_bsum[size_t(t * nb + b)] = -8 * total;
                if (!a.abs_sign.empty()) {
                    Acts::Q8Signed& as = a.abs_sign[size_t(t * nb + b)];
                    for (int i = 0; i < 32; ++i) {  // Q8_0 activations are -127..127
                        as.abs[i] = int8_t(y[b].qs[i] < 0 ? -y[b].qs[i] : y[b].qs[i]);
                        as.neg[i] = int8_t(y[b].qs[i] < 0 ? -1 : 0);
                    }
                    as.d = a.d[size_t(t * nb + b)];
                }
            }
        }
    };
    if (pool && pool->size() > 1 && n_tokens >= 4)
        pool->run([&](int ith, int n) { tokens(n_tokens * ith / n, n_tokens * (ith + 1) / n); });
    else
        tokens(0, n_tokens);
}

// ---- row kernels: rows [r0, r1) for every token, Y[t * ldy + r] ----------------------------

struct RowJob {
    const uint8_t* W;
    uint64_t rb;
    int64_t cols;
    const Acts* a;
    const float* X;
    float* Y;
    int64_t ldy;
    SumOrder order;
    WeightLayout layout = WeightLayout::Plain;
};

template <typename Block>
const Block* qrow(const Acts& a, int64_t t) { return reinterpret_cast<const Block*>(a.q.data() + uint64_t(t) * a.q_stride); }

// Token t's activations (Q8_K, or Q8_0 for Q4_0 and IQ4_NL weights) as the byte dots read them (simd.h's
// Act): the qs bytes of its first block (relaxed), or the i16 copies of its values (strict); each
// next block's kActBlockStride further.
template <typename Block = block_q8_K>
inline const Act* act_row(const Acts& a, int64_t t) {
#if defined(__wasm_relaxed_simd__)
    return qrow<Block>(a, t)->qs;
#else
    return a.wide.data() + t * a.cols;
#endif
}
template <typename Block = block_q8_K>
constexpr int64_t kActBlockStride = kRelaxed ? int64_t(sizeof(Block)) : int64_t(sizeof(Block::qs));

// IQ4 codebook values of nibbles as |value| (0..127: the unsigned operand of the byte dots)
// and a mask of the negative ones (see with_sign).
const v128 kIQ4Abs = wasm_i8x16_make(127, 104, 83, 65, 49, 35, 22, 10, 1, 13, 25, 38, 53, 69, 89, 113);
const v128 kIQ4Neg = wasm_i8x16_make(-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0);

// The vector constants of the row kernels, made once per call of rows() and passed down:
// inside a loop V8 would build each v128.const again at every use (see opaque()).
struct Consts {
    v128 zero = opaque(wasm_i32x4_splat(0));
    v128 ones16 = opaque(wasm_i16x8_splat(1));
    v128 low_nibbles = opaque(kLowNibbles);
    v128 bits45 = opaque(wasm_i8x16_splat(0x30));    // bits 4 and 5 of each byte
    v128 fifth = opaque(wasm_i8x16_splat(0x10));     // a fifth bit in place
    v128 min8 = opaque(wasm_i8x16_splat(-128));
    v128 iq4_abs = opaque(kIQ4Abs), iq4_neg = opaque(kIQ4Neg);
    v128 iq4_values = opaque(load(kIQ4Values));  // signed, for the strict build's i16 dots
    // Q5_0 / Q5_1: byte e of a vector holds bit e % 8 (bit) of qh byte e / 8 (qh_byte_lo: elements
    // 0..15, qh_byte_hi: 16..31) once the block's 4 qh bytes are broadcast.
    v128 bit = opaque(wasm_i8x16_make(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128));
    v128 qh_byte_lo = opaque(wasm_i8x16_make(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
    v128 qh_byte_hi = opaque(wasm_i8x16_make(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    // The Q5Bits layout (see q5_block_regroup): the five low bits, the three above them, the
    // two top bits after the multiply, and the multipliers that move bits 2k, 2k + 1 of the bytes
    // of i32 lane k to bits 6, 7.
    v128 low5 = opaque(wasm_i8x16_splat(0x1f)), low3 = opaque(wasm_i8x16_splat(0x07)), top2 = opaque(wasm_i8x16_splat(-0x40));
    v128 low6 = opaque(wasm_i8x16_splat(0x3f));  // the Q6Bytes layout's whole values (top2: the fourth's bits)
    v128 q5_mul = opaque(wasm_i16x8_make(64, 64, 16, 16, 4, 4, 1, 1));
    // half4_to_f32x4's masks and scale
    v128 sign32 = opaque(wasm_i32x4_splat(INT32_MIN)), half_mag = opaque(wasm_i32x4_splat(0x7fff0000));
    v128 half_scale = opaque(wasm_f32x4_splat(0x1p112f)), half_special = opaque(wasm_i32x4_splat(0x70000000));
    v128 half_inf = opaque(wasm_i32x4_splat(0x0f800000));
    // IQ4_XS scales (iq4_xs_scales)
    v128 xs_low_mul = opaque(wasm_i16x8_make(16, 1, 16, 1, 16, 1, 16, 1)), xs_high_mul = opaque(wasm_i16x8_make(16384, 4096, 1024, 256, 64, 16, 4, 1));
    v128 low_nibbles16 = opaque(wasm_i16x8_splat(0x0f)), bits45_16 = opaque(wasm_i16x8_splat(0x30)), thirty_two16 = opaque(wasm_i16x8_splat(32));
};

// i16 lane L of v in every lane.
template <int L>
inline v128 lane16(v128 v) { return wasm_i16x8_shuffle(v, v, L, L, L, L, L, L, L, L); }

// Group G's scale from a block's group scales in i16 lanes, as scaled_bytes takes it for T tokens:
// in every i16 lane, or (kScaleSums) in every i32 lane.
template <int T, int G>
inline v128 group_scale(v128 scales) {
    if constexpr (kScaleSums<T>) return lane32<G % 4>(G < 4 ? wasm_i32x4_extend_low_i16x8(scales) : wasm_i32x4_extend_high_i16x8(scales));
    return lane16<G>(scales);
}

#if defined(__wasm_relaxed_simd__)
// Four bytes at p in every lane: the relaxed Rows4 kernels' activations, one 4-byte group against
// the same group of four rows. A load that broadcasts (x86: vbroadcastss) rather than a shuffle of
// a loaded vector: it takes a load port, leaving the shuffle ports to the byte dots' neighbours.
// (Strict SIMD128 broadcasts the widened activations: add4_nibbles, GroupDotI32::add4.)
inline v128 bcast4(const int8_t* p) { return wasm_v128_load32_splat(p); }
#endif

// Rows [r0, r1) one at a time, the tokens in groups of up to kMax (4 or 8): tokens(T, r, t0)
// computes row r for tokens t0 .. t0 + T - 1 (T an integral constant), unpacking each block once
// for all of them.
template <int kMax = 4, typename Tokens>
void each_row_token_groups(const RowJob& j, int64_t r0, int64_t r1, Tokens tokens) {
    static_assert(kMax == 4 || kMax == 8);
    const int64_t n = j.a->n_tokens;
    for (int64_t r = r0; r < r1; ++r) {
        int64_t t = 0;
        if constexpr (kMax == 8)
            for (; t + 8 <= n; t += 8) tokens(std::integral_constant<int, 8>(), r, t);
        for (; t + 4 <= n; t += 4) tokens(std::integral_constant<int, 4>(), r, t);
        switch (n - t) {
            case 3: tokens(std::integral_constant<int, 3>(), r, t); break;
            case 2: tokens(std::integral_constant<int, 2>(), r, t); break;
            case 1: tokens(std::integral_constant<int, 1>(), r, t); break;
            default: break;
        }
    }
}

// Rows [r0, r1) for every token with a one-row kernel: Y[t][r] = dot(row r, t).
template <typename Block, typename Dot>
void each_row(const RowJob& j, int64_t r0, int64_t r1, Dot dot) {
    for (int64_t r = r0; r < r1; ++r) {
        const auto* x = reinterpret_cast<const Block*>(j.W + uint64_t(r) * j.rb);
        for (int64_t t = 0; t < j.a->n_tokens; ++t) j.Y[t * j.ldy + r] = dot(x, t);
    }
}

// The same with a four-row kernel (dot4(rows, t) -> one result per lane); a short final group
// repeats its last row and drops the extra results.
template <typename Block, typename Dot4>
void each_four_rows(const RowJob& j, int64_t r0, int64_t r1, Dot4 dot4) {
    for (int64_t r = r0; r < r1; r += 4) {
        const Block* x[4];
        for (int k = 0; k < 4; ++k) x[k] = reinterpret_cast<const Block*>(j.W + uint64_t(std::min(r + k, r1 - 1)) * j.rb);
        for (int64_t t = 0; t < j.a->n_tokens; ++t) {
            float out[4];
            wasm_v128_store(out, dot4(x, t));
            for (int k = 0; k < 4 && r + k < r1; ++k) j.Y[t * j.ldy + r + k] = out[k];
        }
    }
}

// Q4_0 x Q8_0, lane order: lane l of a block = 4-element sums (unsigned nibbles, offset 8
// taken off through the activation sums), an FMA per block, the 8-lane tree.
template <class Dot>
float dot_q4_0_lanes(const Dot& dot, const Consts& k, const block_q4_0* x, const block_q8_0* y, const float* yd, const int32_t* offset,
                     int64_t nb) {
    const float* h = half_table();  // block scales, looked up
    IntFmaAcc acc_lo, acc_hi;
    for (int64_t b = 0; b < nb; ++b) {
        const v128 q = load(x[b].qs);
        const v128 lo = dot(load(y[b].qs), wasm_v128_and(q, k.low_nibbles), load(offset + 8 * b));
        const v128 hi = dot(load(y[b].qs + 16), wasm_v128_and(wasm_u16x8_shr(q, 4), k.low_nibbles), load(offset + 8 * b + 4));
        const ScaleSplat d(h[x[b].d] * yd[b]);
        acc_lo.add(d, lo);
        acc_hi.add(d, hi);
    }
    return hsum_f32x4_tree(wasm_f32x4_add(acc_hi.value(), acc_lo.value()));
}

// Q4_0 or IQ4_NL x Q8_0, row order (llama.cpp's repacked kernel), four rows of the plain layout at
// once: lane k of the accumulator is row k, one FMA per block of its exact integer dot (Q4_0's offset
// through -8 x the activations' sum; IQ4_NL's values looked up, their signs moved onto the activations).
template <typename Block, class Dot>
v128 dot_4bit_rows4(const Dot& dot, const Consts& c, const Block* const x[4], const block_q8_0* y, const float* yd,
                    const int32_t* neg_bsum, int64_t nb) {
    constexpr bool kIQ4 = std::is_same_v<Block, block_iq4_nl>;
    const float* h = half_table();  // block scales, looked up
    v128 acc = wasm_f32x4_splat(0);
    for (int64_t b = 0; b < nb; ++b) {
        const v128 a_lo = load(y[b].qs), a_hi = load(y[b].qs + 16);
        v128 s[4];
        for (int k = 0; k < 4; ++k) {
            const v128 q = load(x[k][b].qs), nlo = wasm_v128_and(q, c.low_nibbles), nhi = wasm_v128_and(wasm_u16x8_shr(q, 4), c.low_nibbles);
            if constexpr (kIQ4)
                s[k] = dot(with_sign(a_hi, lookup16(c.iq4_neg, nhi)), lookup16(c.iq4_abs, nhi),
                           dot(with_sign(a_lo, lookup16(c.iq4_neg, nlo)), lookup16(c.iq4_abs, nlo), c.zero));
            else
                s[k] = dot(a_hi, nhi, dot(a_lo, nlo, c.zero));
        }
        v128 isum = hsum4_i32(s[0], s[1], s[2], s[3]);
        if constexpr (!kIQ4) isum = wasm_i32x4_add(isum, wasm_i32x4_splat(neg_bsum[b]));
        const v128 d = wasm_f32x4_mul(wasm_f32x4_make(h[x[0][b].d], h[x[1][b].d], h[x[2][b].d], h[x[3][b].d]), wasm_f32x4_splat(yd[b]));
        acc = madd(wasm_f32x4_convert_i32x4(isum), d, acc);
    }
    return acc;
}

// ---- Q4_0 in the Rows4 layout (ops_ref.h) ------------------------------------------------

constexpr uint64_t kRows4Block = 72;  // one block of four rows: 4 fp16 scales, 4 x 16 nibble bytes

// Rearranges a matrix four rows at a time: write(group, plain) fills the group's bytes from a
// copy of its four plain rows.
template <typename Write>
void repack_groups_of_4(uint8_t* W, int64_t rows, uint64_t rb, Write write) {
    std::vector<uint8_t> plain(size_t(4 * rb));
    for (int64_t r = 0; r < rows; r += 4) {
        uint8_t* group = W + uint64_t(r) * rb;
        std::memcpy(plain.data(), group, plain.size());
        write(group, plain.data());
    }
}

void repack_q4_0_rows4(uint8_t* W, int64_t rows, int64_t cols) {
    const int64_t nb = cols / QK4_0;
    const uint64_t rb = row_bytes(TensorType::Q4_0, uint64_t(cols));
    repack_groups_of_4(W, rows, rb, [&](uint8_t* group, const uint8_t* plain) {
        for (int64_t b = 0; b < nb; ++b) {
            uint8_t* out = group + uint64_t(b) * kRows4Block;
            for (int k = 0; k < 4; ++k) {
                const block_q4_0& x = reinterpret_cast<const block_q4_0*>(plain + uint64_t(k) * rb)[b];
                std::memcpy(out + 2 * k, &x.d, 2);
                // byte i of qs holds element i (low nibble) and element 16 + i (high nibble)
                for (int j = 0; j < 4; ++j) std::memcpy(out + 8 + 16 * j + 4 * k, x.qs + 4 * j, 4);
            }
        }
    });
}

// The types each load-time layout holds (ops_ref.h).
bool has_rows4(TensorType w) { return w == TensorType::Q4_0 || w == TensorType::IQ4_NL || w == TensorType::Q4_K; }
bool has_q5_bits(TensorType w) { return w == TensorType::Q5_0 || w == TensorType::Q5_1; }
bool has_q6_bytes(TensorType w) { return w == TensorType::Q6_K; }
bool has_paired16(TensorType w) { return w == TensorType::Q5_K || w == TensorType::IQ4_XS || w == TensorType::Q8_0; }

// ---- Q5_0 / Q5_1 in the Q5Bits layout (ops_ref.h) ------------------------------------------

// Byte p of a vector in pair order holds byte kPairOrder[p] of the vector in element order (the
// order of strict SIMD128's paired activations, see simd.h's ScaledBytes).
constexpr int kPairOrder[16] = {0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15};

// One block's 32 five-bit values as the Q5Bits layout holds them, in the same 20 bytes, as u(0..31):
// qs byte e (e < 16) holds u(e) in bits 0..4 and the three low bits of u(16 + e) in bits 5..7;
// the two top bits of u(16 + e) are bits 2k, 2k + 1 of qh byte e % 4, where k = e / 4. Once qh
// is broadcast, byte e of the vector holds them, and an i16 multiply by 4^(3 - k) moves them to
// bits 6, 7 of every byte of i32 lane k at once. u is the values v in element order, or in strict
// SIMD128 (kValuesPaired) in pair order within each half, u(e) = v(kPairOrder[e]) and
// u(16 + e) = v(16 + kPairOrder[e]), so that they widen straight into its activations' order.
constexpr bool kValuesPaired = !kRelaxed;

// A Q5_0 / Q5_1 block's 32 values, and the block's bytes made of them, in the file's layout or Q5Bits.
void q5_values(const uint8_t qs[16], const uint8_t qh[4], bool regrouped, uint8_t v[32]) {
    uint32_t h;
    std::memcpy(&h, qh, 4);
    uint8_t u[32];
    for (int e = 0; e < 16; ++e) {
        u[e] = regrouped ? uint8_t(qs[e] & 31) : uint8_t((qs[e] & 0x0f) | ((h >> e) & 1u) << 4);
        u[16 + e] = regrouped ? uint8_t(qs[e] >> 5 | ((h >> (8 * (e % 4) + 2 * (e / 4))) & 3u) << 3)
                              : uint8_t((qs[e] >> 4) | ((h >> (16 + e)) & 1u) << 4);
    }
    for (int e = 0; e < 16; ++e) {  // back in element order
        const int from = regrouped && kValuesPaired ? kPairOrder[e] : e;
        v[from] = u[e];
        v[16 + from] = u[16 + e];
    }
}
void q5_bytes(const uint8_t v[32], bool regrouped, uint8_t qs[16], uint8_t qh[4]) {
    uint32_t out = 0;
    for (int e = 0; e < 16; ++e) {
        const int from = regrouped && kValuesPaired ? kPairOrder[e] : e;
        const uint8_t lo = v[from], hi = v[16 + from];
        if (regrouped) {
            qs[e] = uint8_t(lo | (hi & 7) << 5);
            out |= uint32_t(hi >> 3) << (8 * (e % 4) + 2 * (e / 4));
        } else {
            qs[e] = uint8_t((lo & 15) | (hi & 15) << 4);
            out |= uint32_t(lo >> 4) << e | uint32_t(hi >> 4) << (16 + e);
        }
    }
    std::memcpy(qh, &out, 4);
}

// A block from the file's layout into Q5Bits, or back (to_plain).
void q5_block_regroup(uint8_t qs[16], uint8_t qh[4], bool to_plain) {
    uint8_t v[32];
    q5_values(qs, qh, to_plain, v);
    q5_bytes(v, !to_plain, qs, qh);
}

// ---- Q6_K in the Q6Bytes layout (ops_ref.h) ------------------------------------------------

// A Q6_K block's 256 values (0..63) are 16 vectors of 16: vector (h, q, l) holds elements
// 128 h + 32 q + 16 l .. + 15 (h: half, q: quarter of the half, l: lanes 0-3 or 4-7 of the
// kernels' sums). Q6Bytes stores, in the 192 bytes of ql and qh, group g = 2 h + l as three
// vectors k = 0, 1, 2 of 16 bytes: byte e of vector k holds value e of vector (h, k, l) in bits
// 0..5 and bits 2k, 2k + 1 of value e of vector (h, 3, l) in bits 6, 7. The kernels take three
// values whole with a mask each, and the fourth with three masks, three shifts and two ors
// (17 operations per 64 values in the file's layout, 11 here). Strict SIMD128 (kValuesPaired)
// stores each vector's values in pair order, as its Q5Bits does: byte e holds value kPairOrder[e].
// Both functions walk the block's bytes: i = 128 h + 32 q + 16 l + e, e the byte in its vector.
void q6_values(const uint8_t* block, bool regrouped, uint8_t v[256]) {
    const auto* x = reinterpret_cast<const block_q6_K*>(block);
    for (int i = 0; i < 256; ++i) {
        const int h = i / 128, q = i % 128 / 32, l = i % 32 / 16, e = i % 16;
        if (!regrouped) {
            const uint8_t ql = x->ql[64 * h + 32 * (q % 2) + 16 * l + e], qh = x->qh[32 * h + 16 * l + e];
            v[i] = uint8_t((q < 2 ? ql & 15 : ql >> 4) | ((qh >> (2 * q)) & 3) << 4);
            continue;
        }
        const uint8_t* g = block + 48 * (2 * h + l);
        uint8_t& value = v[i - e + (kValuesPaired ? kPairOrder[e] : e)];
        if (q < 3) {
            value = g[16 * q + e] & 63;
        } else {
            value = 0;
            for (int k = 0; k < 3; ++k) value = uint8_t(value | (g[16 * k + e] >> 6) << (2 * k));
        }
    }
}
void q6_write(const uint8_t v[256], bool regrouped, uint8_t* block) {
    auto* x = reinterpret_cast<block_q6_K*>(block);
    uint8_t out[192] = {};
    for (int i = 0; i < 256; ++i) {
        const int h = i / 128, q = i % 128 / 32, l = i % 32 / 16, e = i % 16;
        if (!regrouped) {
            uint8_t& ql = out[64 * h + 32 * (q % 2) + 16 * l + e];
            ql = uint8_t(ql | (v[i] & 15) << (q < 2 ? 0 : 4));
            out[128 + 32 * h + 16 * l + e] = uint8_t(out[128 + 32 * h + 16 * l + e] | (v[i] >> 4) << (2 * q));
            continue;
        }
        uint8_t* g = out + 48 * (2 * h + l);
        const uint8_t value = v[i - e + (kValuesPaired ? kPairOrder[e] : e)];
        if (q < 3) {
            g[16 * q + e] = uint8_t(g[16 * q + e] | value);
        } else {
            for (int k = 0; k < 3; ++k) g[16 * k + e] = uint8_t(g[16 * k + e] | ((value >> (2 * k)) & 3) << 6);
        }
    }
    static_assert(offsetof(block_q6_K, qh) == offsetof(block_q6_K, ql) + 128, "ql, then qh");
    std::memcpy(x->ql, out, 192);
}

// A block from the file's layout into Q6Bytes, or back (to_plain).
void q6_block_regroup(uint8_t* block, bool to_plain) {
    uint8_t v[256];
    q6_values(block, to_plain, v);
    q6_write(v, !to_plain, block);
}

// ---- Q5_K, IQ4_XS and Q8_0 in the Paired16 layout (strict SIMD128; ops_ref.h) -------------

// The 16-byte vectors of quants of one block (Q5_K: qs, qh; IQ4_XS, Q8_0: qs) put in pair order,
// or back in element order (to_plain).
void pair_block(TensorType w, uint8_t* block, bool to_plain) {
    const auto permute = [&](uint8_t* v) {
        uint8_t in[16];
        std::memcpy(in, v, 16);
        for (int p = 0; p < 16; ++p) to_plain ? v[kPairOrder[p]] = in[p] : v[p] = in[kPairOrder[p]];
    };
    if (w == TensorType::IQ4_XS) {
        auto* x = reinterpret_cast<block_iq4_xs*>(block);
        for (int i = 0; i < 128; i += 16) permute(x->qs + i);
    } else if (w == TensorType::Q5_K) {
        auto* x = reinterpret_cast<block_q5_K*>(block);
        for (int i = 0; i < 128; i += 16) permute(x->qs + i);
        for (int i = 0; i < 32; i += 16) permute(x->qh + i);
    } else if (w == TensorType::Q8_0) {
        uint8_t* qs = block + offsetof(block_q8_0, qs);
        permute(qs);
        permute(qs + 16);
    } else {
        RILL_FAIL("the Paired16 layout is for Q5_K, IQ4_XS and Q8_0 matrices, not %s", std::string(type_name(w)).c_str());
    }
}

// n blocks put from the file's layout into a layout that rearranges each block on its own
// (Q5Bits, Q6Bytes, Paired16), or back (to_plain): what repack does to a matrix and plain_row to a row.
void rearrange_blocks(WeightLayout layout, TensorType w, uint8_t* blocks, int64_t n, bool to_plain) {
    if (layout == WeightLayout::Q5Bits && !has_q5_bits(w))
        RILL_FAIL("the Q5Bits layout is for Q5_0 and Q5_1 matrices, not %s", std::string(type_name(w)).c_str());
    if (layout == WeightLayout::Q6Bytes && !has_q6_bytes(w))
        RILL_FAIL("the Q6Bytes layout is for Q6_K matrices, not %s", std::string(type_name(w)).c_str());
    const uint64_t bb = traits(w).type_size;
    for (int64_t b = 0; b < n; ++b) {
        uint8_t* x = blocks + uint64_t(b) * bb;
        if (layout == WeightLayout::Paired16) pair_block(w, x, to_plain);
        else if (layout == WeightLayout::Q6Bytes) q6_block_regroup(x, to_plain);
        else if (w == TensorType::Q5_0) q5_block_regroup(reinterpret_cast<block_q5_0*>(x)->qs, reinterpret_cast<block_q5_0*>(x)->qh, to_plain);
        else q5_block_regroup(reinterpret_cast<block_q5_1*>(x)->qs, reinterpret_cast<block_q5_1*>(x)->qh, to_plain);
    }
}

// Four fp16 values (8 bytes) as floats, exactly for every half: the magnitude bits moved into
// float position read as value x 2^-112 (normals and subnormals alike), scaled back by a
// multiply; inf and nan keep their mantissa under an all-ones exponent.
inline v128 half4_to_f32x4(const Consts& c, const void* p) {
    const v128 x = wasm_i16x8_shuffle(c.zero, wasm_v128_load64_zero(p), 0, 8, 1, 9, 2, 10, 3, 11);  // h << 16
    const v128 sign = wasm_v128_and(x, c.sign32);
    const v128 mag = wasm_u32x4_shr(wasm_v128_and(x, c.half_mag), 3);
    const v128 finite = wasm_f32x4_mul(mag, c.half_scale);
    const v128 special = wasm_v128_or(mag, c.half_special);
    return wasm_v128_or(wasm_v128_bitselect(special, finite, wasm_u32x4_ge(mag, c.half_inf)), sign);
}


// The Rows4 kernels' outer loops: every group of four rows, the tokens in tiles of kRows4Tile;
// tile(group bytes, Y + r, first token, tokens in the tile). 16 tokens: each unpacked block serves
// twice as many as with 8 (relaxed Q4_K 1.05-1.07x, Q4_0 1.02-1.06x, IQ4_NL 1.04x; strict 0.98-1.04x).
constexpr int64_t kRows4Tile = 16;
template <typename Tile>
void rows4_tiles(const RowJob& j, int64_t r0, int64_t r1, Tile tile) {
    for (int64_t r = r0; r < r1; r += 4)
        for (int64_t t0 = 0; t0 < j.a->n_tokens; t0 += kRows4Tile)
            tile(j.W + uint64_t(r) * j.rb, j.Y + r, t0, std::min(kRows4Tile, j.a->n_tokens - t0));
}

// Q4_0 or IQ4_NL x Q8_0 in row order from the Rows4 layout: lane k of a token's accumulator is
// row k. Per block, the nibbles are unpacked once and serve up to kTile tokens; each 4-element
// group of activations is broadcast and multiplied with the same elements of the four rows.
// Q4_0's integer sum starts at the block's offset (-8 x its activation sum); IQ4_NL's values
// are looked up, their signs moved onto the activations. Then one FMA per block.
// The same sums for a single token (decode): blocks walked by pointer, the sum in registers.
template <bool kIQ4, typename GroupDot>
void rows_4bit_rows4_one(const RowJob& j, const Consts& c, int64_t r0, int64_t r1) {
    const Acts& a = *j.a;
    const int64_t nb = j.cols / QK4_0;
    const block_q8_0* y0 = qrow<block_q8_0>(a, 0);
    for (int64_t r = r0; r < r1; r += 4) {
        const uint8_t* blk = j.W + uint64_t(r) * j.rb;
        const float* yd = a.d.data();
        const int32_t* neg_bsum = a.neg_bsum.data();
        v128 acc = c.zero;
        const Act* ya = act_row<block_q8_0>(a, 0);
        for (const block_q8_0* y = y0; y != y0 + nb; ++y, ++yd, ++neg_bsum, ya += kActBlockStride<block_q8_0>, blk += kRows4Block) {
            GroupDot s(c.zero, c.ones16);
            if constexpr (kIQ4) {  // element i in the low nibble of byte i, 16 + i in the high one
                for (int i = 0; i < 4; ++i) {
                    const v128 q = load(blk + 8 + 16 * i), lo = wasm_v128_and(q, c.low_nibbles), hi = wasm_v128_and(wasm_u16x8_shr(q, 4), c.low_nibbles);
#if defined(__wasm_relaxed_simd__)  // |value| as the unsigned operand, its sign moved onto the activations
                    s.add(with_sign(bcast4(ya + 4 * i), lookup16(c.iq4_neg, lo)), lookup16(c.iq4_abs, lo));
                    s.add(with_sign(bcast4(ya + 16 + 4 * i), lookup16(c.iq4_neg, hi)), lookup16(c.iq4_abs, hi));
#else  // the signed values widened against the widened activations
                    s.add4_signed(ya + 4 * i, lookup16(c.iq4_values, lo));
                    s.add4_signed(ya + 16 + 4 * i, lookup16(c.iq4_values, hi));
#endif
                }
            } else {
                for (int i = 0; i < 4; ++i) add4_nibbles(s, s, ya + 4 * i, ya + 16 + 4 * i, load(blk + 8 + 16 * i), c.low_nibbles);
            }
            v128 isum = s.total();
            if constexpr (!kIQ4) isum = wasm_i32x4_add(isum, wasm_v128_load32_splat(neg_bsum));
            acc = madd(wasm_f32x4_convert_i32x4(isum), wasm_f32x4_mul(half4_to_f32x4(c, blk), wasm_v128_load32_splat(yd)), acc);
        }
        wasm_v128_store(j.Y + r, acc);
    }
}

template <bool kIQ4, typename GroupDot>
void rows_4bit_rows4(const RowJob& j, const Consts& c, int64_t r0, int64_t r1) {
    const Acts& a = *j.a;
    const int64_t nb = j.cols / QK4_0;
    if (a.n_tokens == 1) return rows_4bit_rows4_one<kIQ4, GroupDot>(j, c, r0, r1);
    rows4_tiles(j, r0, r1, [&](const uint8_t* group, float* out, int64_t t0, int64_t nt) {
        v128 acc[kRows4Tile];
        for (int64_t t = 0; t < nt; ++t) acc[t] = c.zero;
        for (int64_t b = 0; b < nb; ++b) {
            const uint8_t* blk = group + uint64_t(b) * kRows4Block;
            const v128 d = half4_to_f32x4(c, blk);
#if defined(__wasm_relaxed_simd__)
            v128 lo[4], hi[4], lo_neg[4], hi_neg[4];
            for (int i = 0; i < 4; ++i) {
                const v128 q = load(blk + 8 + 16 * i);
                lo[i] = wasm_v128_and(q, c.low_nibbles);
                hi[i] = wasm_v128_and(wasm_u16x8_shr(q, 4), c.low_nibbles);
                if constexpr (kIQ4) {
                    lo_neg[i] = lookup16(c.iq4_neg, lo[i]);
                    hi_neg[i] = lookup16(c.iq4_neg, hi[i]);
                    lo[i] = lookup16(c.iq4_abs, lo[i]);
                    hi[i] = lookup16(c.iq4_abs, hi[i]);
                }
            }
            for (int64_t t = 0; t < nt; ++t) {
                const int64_t tb = (t0 + t) * nb + b;
                const int8_t* y = qrow<block_q8_0>(a, t0 + t)[b].qs;
                v128 ys_lo[4], ys_hi[4];  // each 4-byte group of activations in every lane
                for (int i = 0; i < 4; ++i) {
                    ys_lo[i] = bcast4(y + 4 * i);
                    ys_hi[i] = bcast4(y + 16 + 4 * i);
                }
                if constexpr (kIQ4)
                    for (int i = 0; i < 4; ++i) {
                        ys_lo[i] = with_sign(ys_lo[i], lo_neg[i]);
                        ys_hi[i] = with_sign(ys_hi[i], hi_neg[i]);
                    }
                GroupDot s(c.zero, c.ones16);
                for (int i = 0; i < 4; ++i) {
                    s.add(ys_lo[i], lo[i]);
                    s.add(ys_hi[i], hi[i]);
                }
                v128 isum = s.total();
                if constexpr (!kIQ4) isum = wasm_i32x4_add(isum, wasm_v128_load32_splat(&a.neg_bsum[size_t(tb)]));
                acc[t] = madd(wasm_f32x4_convert_i32x4(isum), wasm_f32x4_mul(d, wasm_f32x4_splat(a.d[size_t(tb)])), acc[t]);
            }
#else  // the values (Q4_0's nibbles, IQ4_NL's signed values) widened once for all tokens, the
       // activations read widened (Acts::wide)
            v128 wide[8][2];  // [2i]: elements 4i.., [2i + 1]: elements 16 + 4i.., of the four rows
            for (int i = 0; i < 4; ++i) {
                const v128 q = load(blk + 8 + 16 * i);
                v128 lo = wasm_v128_and(q, c.low_nibbles), hi = wasm_v128_and(wasm_u16x8_shr(q, 4), c.low_nibbles);
                if constexpr (kIQ4) lo = lookup16(c.iq4_values, lo), hi = lookup16(c.iq4_values, hi);
                wide[2 * i][0] = wasm_i16x8_extend_low_i8x16(lo), wide[2 * i][1] = wasm_i16x8_extend_high_i8x16(lo);
                wide[2 * i + 1][0] = wasm_i16x8_extend_low_i8x16(hi), wide[2 * i + 1][1] = wasm_i16x8_extend_high_i8x16(hi);
            }
            for (int64_t t = 0; t < nt; ++t) {
                const int64_t tb = (t0 + t) * nb + b;
                const Act* y = act_row<block_q8_0>(a, t0 + t) + b * kActBlockStride<block_q8_0>;
                GroupDot s(c.zero, c.ones16);
                for (int i = 0; i < 4; ++i) {
                    s.add4(y + 4 * i, wide[2 * i][0], wide[2 * i][1]);
                    s.add4(y + 16 + 4 * i, wide[2 * i + 1][0], wide[2 * i + 1][1]);
                }
                v128 isum = s.total();
                if constexpr (!kIQ4) isum = wasm_i32x4_add(isum, wasm_v128_load32_splat(&a.neg_bsum[size_t(tb)]));
                acc[t] = madd(wasm_f32x4_convert_i32x4(isum), wasm_f32x4_mul(d, wasm_f32x4_splat(a.d[size_t(tb)])), acc[t]);
            }
#endif
        }
        for (int64_t t = 0; t < nt; ++t) wasm_v128_store(out + (t0 + t) * j.ldy, acc[t]);
    });
}

// IQ4_NL x Q8_0, lane order: 8 lanes of 4-element sums, even and odd blocks in two
// accumulators, added lane by lane, the tree; an odd last block with one madd.
template <class Dot>
float dot_iq4_nl_lanes(const Dot& dot, const Consts& c, const block_iq4_nl* x, const block_q8_0* y, const float* yd, int64_t nb) {
    const float* h = half_table();  // block scales, looked up
    IntFmaAcc acc[2][2];
    const auto block = [&](int64_t b, v128& lo, v128& hi) {
        const v128 q = load(x[b].qs), nlo = wasm_v128_and(q, c.low_nibbles), nhi = wasm_v128_and(wasm_u16x8_shr(q, 4), c.low_nibbles);
        lo = dot(with_sign(load(y[b].qs), lookup16(c.iq4_neg, nlo)), lookup16(c.iq4_abs, nlo), c.zero);
        hi = dot(with_sign(load(y[b].qs + 16), lookup16(c.iq4_neg, nhi)), lookup16(c.iq4_abs, nhi), c.zero);
    };
    int64_t b = 0;
    for (; b + 1 < nb; b += 2)
        for (int k = 0; k < 2; ++k) {
            v128 lo, hi;
            block(b + k, lo, hi);
            const ScaleSplat d(yd[b + k] * h[x[b + k].d]);
            acc[k][0].add(d, lo);
            acc[k][1].add(d, hi);
        }
    float sum = tree8(wasm_f32x4_add(acc[0][0].value(), acc[1][0].value()), wasm_f32x4_add(acc[0][1].value(), acc[1][1].value()));
    for (; b < nb; ++b) {
        v128 lo, hi;
        block(b, lo, hi);
        const v128 t = wasm_i32x4_add(lo, hi);
        const int32_t s = wasm_i32x4_extract_lane(t, 0) + wasm_i32x4_extract_lane(t, 1) + wasm_i32x4_extract_lane(t, 2) +
                          wasm_i32x4_extract_lane(t, 3);
        sum = madd1(yd[b] * h[x[b].d], float(s), sum);
    }
    return sum;
}

// Q4_0 or IQ4_NL rows of the plain layout, in the matrix's sum order.
template <typename Block, class Dot>
void rows_4bit(const RowJob& j, const Dot& dot, const Consts& c, int64_t r0, int64_t r1) {
    const Acts& a = *j.a;
    const int64_t nb = j.cols / QK4_0;
    if (j.order == SumOrder::Lanes)
        return each_row<Block>(j, r0, r1, [&](const Block* x, int64_t t) {
            if constexpr (std::is_same_v<Block, block_iq4_nl>)
                return dot_iq4_nl_lanes(dot, c, x, qrow<block_q8_0>(a, t), &a.d[size_t(t * nb)], nb);
            else
                return dot_q4_0_lanes(dot, c, x, qrow<block_q8_0>(a, t), &a.d[size_t(t * nb)], &a.lane_offset[size_t(t * nb * 8)], nb);
        });
    each_four_rows<Block>(j, r0, r1, [&](const Block* const* x, int64_t t) {
        return dot_4bit_rows4(dot, c, x, qrow<block_q8_0>(a, t), &a.d[size_t(t * nb)], &a.neg_bsum[size_t(t * nb)], nb);
    });
}

// The 8 signed group scales of an IQ4_XS block in i16 lanes (iq4_xs_scale): lane g takes byte
// g / 2 of scales_l, multiplied by 16 or 1 so that a shift by 4 leaves nibble g % 2 in the low
// bits, and bits 2g, 2g + 1 of scales_h, multiplied by 2^(14 - 2g) to bits 14, 15, then shifted to 4, 5.
inline v128 iq4_xs_scales(const Consts& c, const block_iq4_xs& x) {
    const v128 l = wasm_i8x16_shuffle(wasm_v128_load32_zero(x.scales_l), c.zero, 0, 16, 0, 16, 1, 16, 1, 16, 2, 16, 2, 16, 3, 16, 3, 16);
    const v128 low = wasm_v128_and(wasm_u16x8_shr(wasm_i16x8_mul(l, c.xs_low_mul), 4), c.low_nibbles16);
    const v128 high = wasm_v128_and(wasm_u16x8_shr(wasm_i16x8_mul(wasm_i16x8_splat(int16_t(x.scales_h)), c.xs_high_mul), 10), c.bits45_16);
    return wasm_i16x8_sub(wasm_v128_or(low, high), c.thirty_two16);
}

// IQ4_XS x Q8_K: 8 integer lanes (each group's 4-element sums times its signed scale), an FMA
// per block, the tree. One row for T tokens: each group's values looked up once (kPaired: from
// the Paired16 layout, see simd.h's ScaledBytes).
template <int T, bool kPaired>
void iq4_xs_tokens(const RowJob& j, const Consts& c, int64_t r, int64_t t0) {
    const float* h = half_table();  // block scales, looked up
    const int64_t nb = j.cols / QK_K;
    const auto* x = reinterpret_cast<const block_iq4_xs*>(j.W + uint64_t(r) * j.rb);
    const block_q8_K* y[T];
    IntFmaAcc acc_lo[T], acc_hi[T];
    for (int t = 0; t < T; ++t) y[t] = qrow<block_q8_K>(*j.a, t0 + t);
    for (int64_t i = 0; i < nb; ++i) {
        v128 lane_lo[T], lane_hi[T];
        for (int t = 0; t < T; ++t) lane_lo[t] = lane_hi[t] = c.zero;
        const v128 scales = iq4_xs_scales(c, x[i]);
        const auto group = [&](auto g, v128 ls) {
            const v128 q = load(x[i].qs + 16 * g), nlo = wasm_v128_and(q, c.low_nibbles), nhi = wasm_v128_and(wasm_u16x8_shr(q, 4), c.low_nibbles);
#if defined(__wasm_relaxed_simd__)  // |value| as the unsigned operand, its sign moved onto the activations
            const v128 neg_lo = lookup16(c.iq4_neg, nlo), abs_lo = lookup16(c.iq4_abs, nlo);
            const v128 neg_hi = lookup16(c.iq4_neg, nhi), abs_hi = lookup16(c.iq4_abs, nhi);
            for (int t = 0; t < T; ++t) {
                const int8_t* a = y[t][i].qs + 32 * g;
                lane_lo[t] = dot4_scaled_s8_u7(with_sign(load(a), neg_lo), abs_lo, ls, lane_lo[t]);
                lane_hi[t] = dot4_scaled_s8_u7(with_sign(load(a + 16), neg_hi), abs_hi, ls, lane_hi[t]);
            }
#else  // the signed values scaled and widened once, against the tokens' paired activations (Acts::wide)
            const auto v_lo = scaled_bytes<kPaired, kScaleSums<T>, true>(lookup16(c.iq4_values, nlo), ls);
            const auto v_hi = scaled_bytes<kPaired, kScaleSums<T>, true>(lookup16(c.iq4_values, nhi), ls);
            for (int t = 0; t < T; ++t) {
                const Act* a = act_row(*j.a, t0 + t) + i * kActBlockStride<> + 32 * g;
                ScaledDot4 lo{lane_lo[t]}, hi{lane_hi[t]};
                lo.add(a, v_lo);
                hi.add(a + 16, v_hi);
                lane_lo[t] = lo.total();
                lane_hi[t] = hi.total();
            }
#endif
        };
        [&]<int... G>(std::integer_sequence<int, G...>) { (group(G, group_scale<T, G>(scales)), ...); }(std::make_integer_sequence<int, 8>{});
        const float dx = h[x[i].d];
        for (int t = 0; t < T; ++t) {
            const ScaleSplat d(dx * y[t][i].d);
            acc_lo[t].add(d, lane_lo[t]);
            acc_hi[t].add(d, lane_hi[t]);
        }
    }
    for (int t = 0; t < T; ++t) j.Y[(t0 + t) * j.ldy + r] = tree8(acc_lo[t].value(), acc_hi[t].value());
}

void rows_iq4_xs(const RowJob& j, const Consts& c, int64_t r0, int64_t r1) {
#if !defined(__wasm_relaxed_simd__)
    if (j.layout == WeightLayout::Paired16)
        return each_row_token_groups(j, r0, r1, [&](auto T, int64_t r, int64_t t0) { iq4_xs_tokens<T(), true>(j, c, r, t0); });
#endif
    each_row_token_groups(j, r0, r1, [&](auto T, int64_t r, int64_t t0) { iq4_xs_tokens<T(), false>(j, c, r, t0); });
}

// ---- Q4_K in the Rows4 layout (ops_ref.h) ------------------------------------------------
//
// One super-block of four rows is 576 bytes, as four plain blocks: the four d (fp16), the four
// dmin, 48 bytes of 6-bit scales and mins, then 32 vectors of nibbles. The 32 scales (and the 32
// mins) of a super-block are numbered i = 8 (g / 2) + 2 k + g % 2 for group g of row k, so that
// the mins of a pair of groups widen straight into i16 pairs; bytes 16..31 hold the low 4 bits
// of scale i (low nibble) and scale i + 16 (high nibble), bytes 32..47 the same for the mins,
// bytes 48..63 the high 2 bits: scale i, scale i + 16, min i, min i + 16 from bit 0 up. Vector
// 8p + v (p: pair of groups 2p, 2p + 1) holds, for row k at bytes 4k..4k+3, the plain qs bytes
// 32p + 4v .. 32p + 4v + 3: group 2p's elements 4v.. in the low nibbles, group 2p + 1's in the high.

constexpr uint64_t kK4Rows4Block = 4 * sizeof(block_q4_K);

inline int k4_index(int g, int k) { return 8 * (g / 2) + 2 * k + g % 2; }

void repack_q4_K_rows4(uint8_t* W, int64_t rows, int64_t cols) {
    const int64_t nb = cols / QK_K;
    const uint64_t rb = row_bytes(TensorType::Q4_K, uint64_t(cols));
    repack_groups_of_4(W, rows, rb, [&](uint8_t* group, const uint8_t* plain) {
        for (int64_t b = 0; b < nb; ++b) {
            uint8_t* out = group + uint64_t(b) * kK4Rows4Block;
            uint8_t sc[32], mn[32];
            for (int k = 0; k < 4; ++k) {
                const block_q4_K& x = reinterpret_cast<const block_q4_K*>(plain + uint64_t(k) * rb)[b];
                std::memcpy(out + 2 * k, &x.d, 2);
                std::memcpy(out + 8 + 2 * k, &x.dmin, 2);
                for (int g = 0; g < 8; ++g) k4_scale_min(g, x.scales, sc[k4_index(g, k)], mn[k4_index(g, k)]);
                for (int p = 0; p < 4; ++p)
                    for (int v = 0; v < 8; ++v) std::memcpy(out + 64 + 128 * p + 16 * v + 4 * k, x.qs + 32 * p + 4 * v, 4);
            }
            for (int i = 0; i < 16; ++i) {
                out[16 + i] = uint8_t((sc[i] & 15) | (sc[i + 16] & 15) << 4);
                out[32 + i] = uint8_t((mn[i] & 15) | (mn[i + 16] & 15) << 4);
                out[48 + i] = uint8_t(sc[i] >> 4 | (sc[i + 16] >> 4) << 2 | (mn[i] >> 4) << 4 | (mn[i + 16] >> 4) << 6);
            }
        }
    });
}

// The unpacked scales and mins of a Rows4 super-block: bytes i of lo (i < 16) and hi (i + 16).
struct K4Scales {
    v128 sc_lo, sc_hi, mn_lo, mn_hi;
    K4Scales(const Consts& c, const uint8_t* p) {
        const v128 a = load(p), b = load(p + 16), h = load(p + 32);
        sc_lo = wasm_v128_or(wasm_v128_and(a, c.low_nibbles), wasm_v128_and(wasm_i16x8_shl(h, 4), c.bits45));
        sc_hi = wasm_v128_or(wasm_v128_and(wasm_u16x8_shr(a, 4), c.low_nibbles), wasm_v128_and(wasm_i16x8_shl(h, 2), c.bits45));
        mn_lo = wasm_v128_or(wasm_v128_and(b, c.low_nibbles), wasm_v128_and(h, c.bits45));
        mn_hi = wasm_v128_or(wasm_v128_and(wasm_u16x8_shr(b, 4), c.low_nibbles), wasm_v128_and(wasm_u16x8_shr(h, 2), c.bits45));
    }
    // Group g's four scales in the form GroupDot::scaled takes: bytes i0 + 2k of the unpacked
    // scales swizzled into lane k (its first byte, or both i16 halves), the other bytes zero.
    v128 scales(const v128 idx[8], int g) const { return lookup16(g < 4 ? sc_lo : sc_hi, idx[g]); }
    // Lane k: the row's mins term, sum over groups of min x (the group's two Q8_K 16-sums).
    v128 mins(const Consts& c, const int16_t* bsums) const {
        const v128 pair = wasm_i16x8_narrow_i32x4(wasm_i32x4_dot_i16x8(load(bsums), c.ones16), wasm_i32x4_dot_i16x8(load(bsums + 8), c.ones16));
        v128 m = wasm_i32x4_dot_i16x8(wasm_u16x8_extend_low_u8x16(mn_lo), lane32<0>(pair));
        m = wasm_i32x4_add(m, wasm_i32x4_dot_i16x8(wasm_u16x8_extend_high_u8x16(mn_lo), lane32<1>(pair)));
        m = wasm_i32x4_add(m, wasm_i32x4_dot_i16x8(wasm_u16x8_extend_low_u8x16(mn_hi), lane32<2>(pair)));
        return wasm_i32x4_add(m, wasm_i32x4_dot_i16x8(wasm_u16x8_extend_high_u8x16(mn_hi), lane32<3>(pair)));
    }
};

// The swizzle indices of K4Scales::scales for each group g, per form (i32 lanes; i16 pairs): the
// group's first scale k4_index(g, 0) % 16 plus 2k for lane k, and -128 (the swizzle reads 0) in
// the bytes that stay zero.
template <typename GroupDot>
void k4_scale_indices(v128 idx[8]) {
    const v128 offsets = GroupDot::kPairScales ? wasm_i8x16_make(0, -128, 0, -128, 2, -128, 2, -128, 4, -128, 4, -128, 6, -128, 6, -128)
                                               : wasm_i8x16_make(0, -128, -128, -128, 2, -128, -128, -128, 4, -128, -128, -128, 6, -128, -128, -128);
    for (int g = 0; g < 8; ++g) idx[g] = opaque(wasm_i8x16_add(offsets, wasm_v128_and(wasm_i8x16_splat(int8_t(k4_index(g, 0) % 16)),
                                                                                    wasm_i8x16_gt(offsets, wasm_i8x16_splat(-1)))));
}

// One pair of groups (2P, 2P + 1) of a Rows4 super-block for one token: each nibble vector
// loaded once for both groups, each 4-byte group of activations broadcast by a load (bcast4).
template <typename GroupDot, int P>
inline v128 q4_K_rows4_pair(const Consts& c, const K4Scales& sc, const v128 idx[8], const uint8_t* blk, const Act* y, v128 isum) {
    const uint8_t* q = blk + 64 + 128 * P;
    GroupDot lo(c.zero, c.ones16), hi(c.zero, c.ones16);
    for (int v = 0; v < 8; ++v) {
        add4_nibbles(lo, hi, y + 64 * P + 4 * v, y + 64 * P + 32 + 4 * v, load(q + 16 * v), c.low_nibbles);
    }
    return wasm_i32x4_add(isum, wasm_i32x4_add(lo.scaled(sc.scales(idx, 2 * P)), hi.scaled(sc.scales(idx, 2 * P + 1))));
}

// The same sums for a single token (decode): the super-blocks walked by pointer, the groups
// unrolled, the integer sum in a register.
template <typename GroupDot>
void rows_q4_K_rows4_one(const RowJob& j, const Consts& c, const v128 idx[8], int64_t r0, int64_t r1) {
    const int64_t nb = j.cols / QK_K;
    const block_q8_K* y0 = qrow<block_q8_K>(*j.a, 0);
    for (int64_t r = r0; r < r1; r += 4) {
        const uint8_t* blk = j.W + uint64_t(r) * j.rb;
        v128 acc = c.zero, acc_min = c.zero;
        const Act* ya = act_row(*j.a, 0);
        for (const block_q8_K* y = y0; y != y0 + nb; ++y, ya += kActBlockStride<>, blk += kK4Rows4Block) {
            const K4Scales sc(c, blk + 16);
            v128 isum = q4_K_rows4_pair<GroupDot, 0>(c, sc, idx, blk, ya, c.zero);
            isum = q4_K_rows4_pair<GroupDot, 1>(c, sc, idx, blk, ya, isum);
            isum = q4_K_rows4_pair<GroupDot, 2>(c, sc, idx, blk, ya, isum);
            isum = q4_K_rows4_pair<GroupDot, 3>(c, sc, idx, blk, ya, isum);
            const v128 yd = wasm_f32x4_splat(y->d);
            acc = madd(wasm_f32x4_convert_i32x4(isum), wasm_f32x4_mul(half4_to_f32x4(c, blk), yd), acc);
            acc_min = madd(wasm_f32x4_convert_i32x4(sc.mins(c, y->bsums)), wasm_f32x4_mul(half4_to_f32x4(c, blk + 8), yd), acc_min);
        }
        wasm_v128_store(j.Y + r, wasm_f32x4_sub(acc, acc_min));
    }
}

// Q4_K x Q8_K in row order (dot_q4_K_rows4's sums) from the Rows4 layout: lane k of a token's
// accumulators is row k. A group's 8 nibble vectors are unpacked once and serve up to kTile
// tokens; per super-block one FMA of the scaled integer dot and one of the mins term.
template <typename GroupDot>
void rows_q4_K_rows4(const RowJob& j, const Consts& c, int64_t r0, int64_t r1) {
    const Acts& a = *j.a;
    const int64_t nb = j.cols / QK_K;
    v128 idx[8];
    k4_scale_indices<GroupDot>(idx);
    if (a.n_tokens == 1) return rows_q4_K_rows4_one<GroupDot>(j, c, idx, r0, r1);
    rows4_tiles(j, r0, r1, [&](const uint8_t* group, float* out, int64_t t0, int64_t nt) {
        v128 acc[kRows4Tile], acc_min[kRows4Tile], isum[kRows4Tile];
        for (int64_t t = 0; t < nt; ++t) acc[t] = acc_min[t] = c.zero;
        for (int64_t b = 0; b < nb; ++b) {
            const uint8_t* blk = group + uint64_t(b) * kK4Rows4Block;
            const K4Scales sc(c, blk + 16);
            for (int64_t t = 0; t < nt; ++t) isum[t] = c.zero;
#if !defined(__wasm_relaxed_simd__)
            Dot4Sum pairs[kRows4Tile];
#endif
            for (int g = 0; g < 8; ++g) {
                const uint8_t* q = blk + 64 + 128 * (g / 2);
                v128 vals[8];
                for (int v = 0; v < 8; ++v)
                    vals[v] = g % 2 == 0 ? wasm_v128_and(load(q + 16 * v), c.low_nibbles)
                                         : wasm_v128_and(wasm_u16x8_shr(load(q + 16 * v), 4), c.low_nibbles);
                const v128 scale = sc.scales(idx, g);
#if defined(__wasm_relaxed_simd__)
                for (int64_t t = 0; t < nt; ++t) {
                    const int8_t* y = qrow<block_q8_K>(a, t0 + t)[b].qs + 32 * g;
                    const v128 y0 = load(y), y1 = load(y + 16);  // here shuffles beat broadcast loads (measured)
                    GroupDot s(c.zero, c.ones16);
                    s.add(lane32<0>(y0), vals[0]);
                    s.add(lane32<1>(y0), vals[1]);
                    s.add(lane32<2>(y0), vals[2]);
                    s.add(lane32<3>(y0), vals[3]);
                    s.add(lane32<0>(y1), vals[4]);
                    s.add(lane32<1>(y1), vals[5]);
                    s.add(lane32<2>(y1), vals[6]);
                    s.add(lane32<3>(y1), vals[7]);
                    isum[t] = wasm_i32x4_add(isum[t], s.scaled(scale));
                }
#else  // the values widened and scaled once for all tokens (at most 15 x 63), the tokens' activations
       // read widened (Acts::wide), the pair sums regrouped once per super-block
                const v128 scale_lo = wasm_i16x8_shuffle(scale, scale, 0, 0, 0, 0, 2, 2, 2, 2);  // rows 0, 1
                const v128 scale_hi = wasm_i16x8_shuffle(scale, scale, 4, 4, 4, 4, 6, 6, 6, 6);  // rows 2, 3
                v128 wide_lo[8], wide_hi[8];
                for (int v = 0; v < 8; ++v) {
                    wide_lo[v] = wasm_i16x8_mul(wasm_u16x8_extend_low_u8x16(vals[v]), scale_lo);
                    wide_hi[v] = wasm_i16x8_mul(wasm_u16x8_extend_high_u8x16(vals[v]), scale_hi);
                }
                for (int64_t t = 0; t < nt; ++t) {
                    const Act* y = act_row(a, t0 + t) + b * kActBlockStride<> + 32 * g;
                    for (int v = 0; v < 8; ++v) pairs[t].add_wide4(wasm_v128_load64_splat(y + 4 * v), wide_lo[v], wide_hi[v]);
                }
#endif
            }
            const v128 d = half4_to_f32x4(c, blk), dmin = half4_to_f32x4(c, blk + 8);
            for (int64_t t = 0; t < nt; ++t) {
#if !defined(__wasm_relaxed_simd__)
                isum[t] = pairs[t].total();
#endif
                const block_q8_K& y = qrow<block_q8_K>(a, t0 + t)[b];
                const v128 yd = wasm_f32x4_splat(y.d);
                acc[t] = madd(wasm_f32x4_convert_i32x4(isum[t]), wasm_f32x4_mul(d, yd), acc[t]);
                acc_min[t] = madd(wasm_f32x4_convert_i32x4(sc.mins(c, y.bsums)), wasm_f32x4_mul(dmin, yd), acc_min[t]);
            }
        }
        for (int64_t t = 0; t < nt; ++t) wasm_v128_store(out + (t0 + t) * j.ldy, wasm_f32x4_sub(acc[t], acc_min[t]));
    });
}

// Q8_0 x Q8_0: 8 lanes of signed 4-element sums, an FMA per block, the tree. One row for T tokens.
// Relaxed SIMD: |y| as the unsigned operand of the byte dots (made once per matmul with y's signs
// and scale: Acts::abs_sign) and w with y's signs as the signed one (with_sign); w . y is unchanged.
// That holds for every w but -128, which llama.cpp's quantiser never writes but a file may hold:
// a block with one is summed widened to i16 instead, as strict SIMD128 sums every block. In the
// Q8Abs7 layout (kNoMin) the matrix is known to have none and the blocks are not checked.
#if defined(__wasm_relaxed_simd__)
// Whether any byte of v is -128 (min8: -128 in every byte), the one Q8_0 value whose |w| needs 8 bits.
inline bool any_min8(v128 v, v128 min8) { return wasm_i8x16_bitmask(wasm_i8x16_eq(v, min8)) != 0; }
#endif

template <int T, bool kNoMin, bool kPaired, class Dot>
void q8_0_tokens(const RowJob& j, const Dot& dot, const Consts& c, int64_t r, int64_t t0) {
    const float* h = half_table();  // block scales, looked up
    const int64_t nb = j.cols / QK8_0;
    const auto* x = reinterpret_cast<const block_q8_0*>(j.W + uint64_t(r) * j.rb);
    IntFmaAcc acc_lo[T], acc_hi[T];
    // The widened sums, and the only sums of strict SIMD128.
    const auto widened = [&](v128 w0, v128 w1, const block_q8_0& yb, v128& lo, v128& hi) {
        const v128 a0 = load(yb.qs), a1 = load(yb.qs + 16);
        lo = sum4_i16(wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(w0), wasm_i16x8_extend_low_i8x16(a0)),
                      wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(w0), wasm_i16x8_extend_high_i8x16(a0)), c.zero);
        hi = sum4_i16(wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(w1), wasm_i16x8_extend_low_i8x16(a1)),
                      wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(w1), wasm_i16x8_extend_high_i8x16(a1)), c.zero);
    };
#if defined(__wasm_relaxed_simd__)
    const v128 min8 = c.min8;
    const Acts::Q8Signed* ys[T];
    for (int t = 0; t < T; ++t) ys[t] = &j.a->abs_sign[size_t((t0 + t) * nb)];
    // Pointers moved on block by block (indices times block sizes cost V8 a multiply each); with
    // several tokens, an index into theirs (fewer registers: measured faster).
    int64_t b = 0;
    for (const block_q8_0* xb = x; xb != x + nb; ++xb, ++b) {
        const v128 w0 = load(xb->qs), w1 = load(xb->qs + 16);
        const float dx = h[xb->d];
        if (kNoMin || !any_min8(wasm_i8x16_min(w0, w1), min8)) {
            for (int t = 0; t < T; ++t) {
                const Acts::Q8Signed& yb = T == 1 ? *ys[t]++ : ys[t][b];
                const v128 lo = dot.sum(with_sign(w0, load(yb.neg)), load(yb.abs));
                const v128 hi = dot.sum(with_sign(w1, load(yb.neg + 16)), load(yb.abs + 16));
                const ScaleSplat d(dx * yb.d);
                acc_lo[t].add(d, lo);
                acc_hi[t].add(d, hi);
            }
            continue;
        }
        for (int t = 0; t < T; ++t) {  // a -128 among the weights (rare)
            v128 lo, hi;
            widened(w0, w1, qrow<block_q8_0>(*j.a, t0 + t)[b], lo, hi);
            const ScaleSplat d(dx * (T == 1 ? ys[t]++->d : ys[t][b].d));
            acc_lo[t].add(d, lo);
            acc_hi[t].add(d, hi);
        }
    }
#else
    (void)dot;
    const block_q8_0* y[T];
    const float* yd[T];
    for (int t = 0; t < T; ++t) {
        y[t] = qrow<block_q8_0>(*j.a, t0 + t);
        yd[t] = &j.a->d[size_t((t0 + t) * nb)];
    }
    if constexpr (kPaired) {  // the Paired16 layout: the weights widened once, against the paired activations
        const Act* ya[T];
        for (int t = 0; t < T; ++t) ya[t] = act_row<block_q8_0>(*j.a, t0 + t);
        for (int64_t b = 0; b < nb; ++b) {
            const v128 w0 = load(x[b].qs), w1 = load(x[b].qs + 16);
            const v128 w0_lo = wasm_i16x8_extend_low_i8x16(w0), w0_hi = wasm_i16x8_extend_high_i8x16(w0);
            const v128 w1_lo = wasm_i16x8_extend_low_i8x16(w1), w1_hi = wasm_i16x8_extend_high_i8x16(w1);
            const float dx = h[x[b].d];
            for (int t = 0; t < T; ++t) {
                const Act* a = ya[t] + b * kActBlockStride<block_q8_0>;
                const ScaleSplat d(dx * yd[t][b]);
                acc_lo[t].add(d, dot4_paired(a, w0_lo, w0_hi));
                acc_hi[t].add(d, dot4_paired(a + 16, w1_lo, w1_hi));
            }
        }
    } else {
        for (int64_t b = 0; b < nb; ++b) {
            const v128 w0 = load(x[b].qs), w1 = load(x[b].qs + 16);
            const float dx = h[x[b].d];
            for (int t = 0; t < T; ++t) {
                v128 lo, hi;
                widened(w0, w1, y[t][b], lo, hi);
                const ScaleSplat d(dx * yd[t][b]);
                acc_lo[t].add(d, lo);
                acc_hi[t].add(d, hi);
            }
        }
    }
#endif
    for (int t = 0; t < T; ++t) j.Y[(t0 + t) * j.ldy + r] = hsum_f32x4_tree(wasm_f32x4_add(acc_hi[t].value(), acc_lo[t].value()));
}

template <class Dot>
void rows_q8_0(const RowJob& j, const Dot& dot, const Consts& c, int64_t r0, int64_t r1) {
#if defined(__wasm_relaxed_simd__)
    if (j.layout == WeightLayout::Q8Abs7)
        return each_row_token_groups(j, r0, r1, [&](auto T, int64_t r, int64_t t0) { q8_0_tokens<T(), true, false>(j, dot, c, r, t0); });
#else
    if (j.layout == WeightLayout::Paired16)
        return each_row_token_groups(j, r0, r1, [&](auto T, int64_t r, int64_t t0) { q8_0_tokens<T(), false, true>(j, dot, c, r, t0); });
#endif
    each_row_token_groups(j, r0, r1, [&](auto T, int64_t r, int64_t t0) { q8_0_tokens<T(), false, false>(j, dot, c, r, t0); });
}

// ---- Q4_1, Q5_0, Q5_1: lane order (dot_lanes_order_32) ------------------------------------

// Blocks of 32 with unsigned 4- or 5-bit values: 8 lanes of 4-element sums, an FMA per block,
// the tree, plus the mins term of Q4_1 / Q5_1 one FMA per block. Q5_0's offset 16 comes off
// through the activations' 4-element sums (Acts::lane_offset, computed once per matmul). One row
// for T tokens: each block is unpacked once for all T, and every token's sums keep the one-token
// order. The fifth bits in the plain layout, the block's 32 qh bits broadcast: byte e of a vector
// picks the qh byte holding element e's bit (a byte shuffle) and tests it against a mask. The
// Q5Bits layout (kRegrouped) holds values 0..15 whole in the qs bytes, and values 16..31 as three
// bits there and two in qh (q5_block_regroup): a mask, and two shifts, a multiply and three masks.
template <typename Block, typename YBlock, int T, bool kRegrouped, class Dot>
void lanes_32_tokens(const RowJob& j, const Dot& dot, const Consts& k, int64_t r, int64_t t0) {
    constexpr bool kFifth = sizeof(Block) == sizeof(block_q5_0) || sizeof(Block) == sizeof(block_q5_1);
    constexpr bool kMin = sizeof(Block) == sizeof(block_q4_1) || sizeof(Block) == sizeof(block_q5_1);
    constexpr bool kOffset = sizeof(Block) == sizeof(block_q5_0);
    const int64_t nb = j.cols / 32;
    const float* h = half_table();  // block scales, looked up
    const v128 low_nibbles = k.low_nibbles, fifth = k.fifth, zero = k.zero, bit = k.bit, qh_byte_lo = k.qh_byte_lo,
               qh_byte_hi = k.qh_byte_hi, low5 = k.low5, low3 = k.low3, top2 = k.top2, q5_mul = k.q5_mul;
    const auto* x = reinterpret_cast<const Block*>(j.W + uint64_t(r) * j.rb);
    const YBlock* y[T];
    const float* yd[T];
    const int32_t* off[T];
    IntFmaAcc acc_lo[T], acc_hi[T];
    float summs[T];
    [[maybe_unused]] const Act* ya[T];  // (strict SIMD128, Q5Bits)
    for (int t = 0; t < T; ++t) {
        y[t] = qrow<YBlock>(*j.a, t0 + t);
        yd[t] = &j.a->d[size_t((t0 + t) * nb)];
        if constexpr (kOffset) off[t] = &j.a->lane_offset[size_t((t0 + t) * nb * 8)];
        if constexpr (kFifth && kRegrouped && !kRelaxed) ya[t] = act_row<YBlock>(*j.a, t0 + t);
        summs[t] = 0.0f;
    }
    // Pointers moved on block by block (indices times block sizes cost V8 a multiply each).
    for (const Block* xb = x; xb != x + nb; ++xb) {
        const v128 q = load(xb->qs);
        v128 v_lo, v_hi;
        if constexpr (kFifth && kRegrouped) {
            const v128 top = wasm_v128_and(wasm_i16x8_mul(wasm_v128_load32_splat(xb->qh), q5_mul), top2);  // bits 6, 7
            v_lo = wasm_v128_and(q, low5);
            v_hi = wasm_v128_or(wasm_v128_and(wasm_u16x8_shr(q, 5), low3), wasm_u16x8_shr(top, 3));
        } else {
            v_lo = wasm_v128_and(q, low_nibbles);
            v_hi = wasm_v128_and(wasm_u16x8_shr(q, 4), low_nibbles);
        }
        if constexpr (kFifth && !kRegrouped) {
            const v128 qh = wasm_v128_load32_splat(xb->qh);
            v_lo = wasm_v128_or(v_lo, wasm_v128_and(fifth, wasm_i8x16_eq(wasm_v128_and(lookup16(qh, qh_byte_lo), bit), bit)));
            v_hi = wasm_v128_or(v_hi, wasm_v128_and(fifth, wasm_i8x16_eq(wasm_v128_and(lookup16(qh, qh_byte_hi), bit), bit)));
        }
        const float dx = h[xb->d];
#if !defined(__wasm_relaxed_simd__)
        // Q5Bits holds the values in pair order here (kValuesPaired): widened once, they meet the
        // paired activations (Acts::wide) without regrouping.
        const v128 w_lo0 = wasm_u16x8_extend_low_u8x16(v_lo), w_lo1 = wasm_u16x8_extend_high_u8x16(v_lo);
        const v128 w_hi0 = wasm_u16x8_extend_low_u8x16(v_hi), w_hi1 = wasm_u16x8_extend_high_u8x16(v_hi);
#endif
        for (int t = 0; t < T; ++t) {
            const YBlock& yb = *y[t]++;
            if constexpr (kMin) summs[t] = madd1(h[xb->m], h[yb.s], summs[t]);
            v128 init_lo = zero, init_hi = zero;
            if constexpr (kOffset) {
                init_lo = load(off[t]);
                init_hi = load(off[t] + 4);
                off[t] += 8;
            }
            v128 lo, hi;
#if !defined(__wasm_relaxed_simd__)
            if constexpr (kFifth && kRegrouped) {
                lo = wasm_i32x4_add(init_lo, dot4_paired(ya[t], w_lo0, w_lo1));
                hi = wasm_i32x4_add(init_hi, dot4_paired(ya[t] + 16, w_hi0, w_hi1));
                ya[t] += kActBlockStride<YBlock>;
            } else
#endif
            {
                lo = dot(load(yb.qs), v_lo, init_lo);
                hi = dot(load(yb.qs + 16), v_hi, init_hi);
            }
            const ScaleSplat d(dx * *yd[t]++);
            acc_lo[t].add(d, lo);
            acc_hi[t].add(d, hi);
        }
    }
    for (int t = 0; t < T; ++t) {
        float v = tree8(acc_lo[t].value(), acc_hi[t].value());
        if constexpr (kMin) v += summs[t];
        j.Y[(t0 + t) * j.ldy + r] = v;
    }
}

template <typename Block, typename YBlock, class Dot>
void rows_lanes_32(const RowJob& j, const Dot& dot, const Consts& k, int64_t r0, int64_t r1) {
    if (j.layout == WeightLayout::Q5Bits)
        return each_row_token_groups(j, r0, r1, [&](auto T, int64_t r, int64_t t0) { lanes_32_tokens<Block, YBlock, T(), true>(j, dot, k, r, t0); });
    each_row_token_groups(j, r0, r1, [&](auto T, int64_t r, int64_t t0) { lanes_32_tokens<Block, YBlock, T(), false>(j, dot, k, r, t0); });
}

// The 32 4- or 5-bit values of group g (0..7) of a Q4_K/Q5_K block as two vectors (elements
// 0..15, 16..31), with Q5_K's fifth bit from qh when given: bit g of each qh byte moved to bit 4
// by a 16-bit shift (the mask keeps exactly the bits that stay within their byte).
inline void k_group_values(const Consts& c, const uint8_t* qs, const uint8_t* qh, int g, v128& lo, v128& hi) {
    const uint8_t* p = qs + 32 * (g / 2);
    if (g % 2 == 0) {
        lo = wasm_v128_and(load(p), c.low_nibbles);
        hi = wasm_v128_and(load(p + 16), c.low_nibbles);
    } else {
        lo = wasm_v128_and(wasm_u16x8_shr(load(p), 4), c.low_nibbles);
        hi = wasm_v128_and(wasm_u16x8_shr(load(p + 16), 4), c.low_nibbles);
    }
    if (qh) {
        const auto fifth = [&](v128 h) {
            return wasm_v128_and(g < 4 ? wasm_i16x8_shl(h, 4 - g) : wasm_u16x8_shr(h, g - 4), c.fifth);
        };
        lo = wasm_v128_or(lo, fifth(load(qh)));
        hi = wasm_v128_or(hi, fifth(load(qh + 16)));
    }
}

// The 6-bit scales and mins of a Q4_K / Q5_K block (k4_scale_min) in i16 lanes: scales[g] in
// lane g of `scales`, mins[g] in lane g of `mins`. Bytes 0..7 of the unpacked vector are the
// scales, 8..15 the mins: groups 0..3 take 6 bits of bytes 0..3 / 4..7, groups 4..7 a nibble of
// bytes 8..11 and the top 2 bits of bytes 0..3 / 4..7.
struct K4ScaleConsts {
    v128 low_src = opaque(wasm_i8x16_make(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
    v128 high_src = opaque(wasm_i8x16_make(-128, -128, -128, -128, 0, 1, 2, 3, -128, -128, -128, -128, 4, 5, 6, 7));
    v128 high_nibble = opaque(wasm_i8x16_make(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1));
    v128 low_mask = opaque(wasm_i8x16_make(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15));
    v128 high_mask = opaque(wasm_i8x16_make(0, 0, 0, 0, 0x30, 0x30, 0x30, 0x30, 0, 0, 0, 0, 0x30, 0x30, 0x30, 0x30));
};
inline void k4_scales_mins(const K4ScaleConsts& k, const uint8_t packed[12], v128& scales, v128& mins) {
    const v128 v = wasm_v128_load64_zero(packed);
    const v128 w = wasm_i32x4_replace_lane(v, 2, *reinterpret_cast<const int32_t*>(packed + 8));  // bytes 0..11
    const v128 a = lookup16(w, k.low_src), b = lookup16(w, k.high_src);
    const v128 low = wasm_v128_and(wasm_v128_bitselect(wasm_u16x8_shr(a, 4), a, k.high_nibble), k.low_mask);
    const v128 u = wasm_v128_or(low, wasm_v128_and(wasm_u16x8_shr(b, 2), k.high_mask));
    scales = wasm_u16x8_extend_low_u8x16(u);
    mins = wasm_u16x8_extend_high_u8x16(u);
}

// Sum over groups g of mins[g] x (the group's two Q8_K 16-sums), exactly.
inline int32_t k4_mins_term(const Consts& c, v128 mins, const int16_t* bsums) {
    const v128 pair = wasm_i16x8_narrow_i32x4(wasm_i32x4_dot_i16x8(load(bsums), c.ones16), wasm_i32x4_dot_i16x8(load(bsums + 8), c.ones16));
    const v128 m = wasm_i32x4_dot_i16x8(mins, pair);
    return wasm_i32x4_extract_lane(m, 0) + wasm_i32x4_extract_lane(m, 1) + wasm_i32x4_extract_lane(m, 2) + wasm_i32x4_extract_lane(m, 3);
}

// Integer lanes of a Q4_K/Q5_K block in the reference's lane order: lane l of lo (l < 4) / hi
// holds sum over groups of scale[g] * (4-element sum at 32g + 4l / 32g + 16 + 4l).
template <int G>
inline void k_block_group(const Consts& c, const uint8_t* qs, const uint8_t* qh, v128 scales, const int8_t* a, v128& lo, v128& hi) {
    v128 vlo, vhi;
    k_group_values(c, qs, qh, G, vlo, vhi);
    const v128 s = lane16<G>(scales);
    lo = dot4_scaled_s8_u7(load(a + 32 * G), vlo, s, lo);
    hi = dot4_scaled_s8_u7(load(a + 32 * G + 16), vhi, s, hi);
}
inline void k_block_lanes(const Consts& c, const uint8_t* qs, const uint8_t* qh, v128 scales, const int8_t* a, v128& lo, v128& hi) {
    lo = hi = c.zero;
    k_block_group<0>(c, qs, qh, scales, a, lo, hi);
    k_block_group<1>(c, qs, qh, scales, a, lo, hi);
    k_block_group<2>(c, qs, qh, scales, a, lo, hi);
    k_block_group<3>(c, qs, qh, scales, a, lo, hi);
    k_block_group<4>(c, qs, qh, scales, a, lo, hi);
    k_block_group<5>(c, qs, qh, scales, a, lo, hi);
    k_block_group<6>(c, qs, qh, scales, a, lo, hi);
    k_block_group<7>(c, qs, qh, scales, a, lo, hi);
}

float dot_q4_K_lanes(const Consts& c, const K4ScaleConsts& k, const block_q4_K* x, const block_q8_K* y, int64_t nb) {
    const float* h = half_table();  // block scales, looked up
    IntFmaAcc acc_lo, acc_hi, acc_m;
    for (int64_t i = 0; i < nb; ++i) {
        v128 scales, mins;
        k4_scales_mins(k, x[i].scales, scales, mins);
        // the mins in 4 lanes: lane p holds the pair of groups 2p, 2p + 1
        const v128 pair = wasm_i16x8_narrow_i32x4(wasm_i32x4_dot_i16x8(load(y[i].bsums), c.ones16),
                                                  wasm_i32x4_dot_i16x8(load(y[i].bsums + 8), c.ones16));
        const v128 prod = wasm_i32x4_dot_i16x8(mins, pair);
        acc_m.add(ScaleSplat(-y[i].d * h[x[i].dmin]), prod);
        v128 lo, hi;
        k_block_lanes(c, x[i].qs, nullptr, scales, y[i].qs, lo, hi);
        const ScaleSplat d(y[i].d * h[x[i].d]);
        acc_lo.add(d, lo);
        acc_hi.add(d, hi);
    }
    return hsum_f32x4_tree(wasm_f32x4_add(acc_hi.value(), acc_lo.value())) + hsum_f32x4_tree(acc_m.value());
}

// Q4_K row order (llama.cpp's repacked kernel), four rows of the plain layout at once: per block
// one FMA of the exact scaled integer dot and one of the mins term, subtracted at the end.
v128 dot_q4_K_rows4(const Consts& c, const K4ScaleConsts& k, const block_q4_K* const x[4], const block_q8_K* y, int64_t nb) {
    const float* h = half_table();  // block scales, looked up
    v128 acc = wasm_f32x4_splat(0), acc_min = wasm_f32x4_splat(0);
    for (int64_t i = 0; i < nb; ++i) {
        v128 tot[4];
        int32_t imin[4];
        for (int r = 0; r < 4; ++r) {
            v128 scales, mins;
            k4_scales_mins(k, x[r][i].scales, scales, mins);
            imin[r] = k4_mins_term(c, mins, y[i].bsums);
            v128 lo, hi;
            k_block_lanes(c, x[r][i].qs, nullptr, scales, y[i].qs, lo, hi);
            tot[r] = wasm_i32x4_add(lo, hi);
        }
        const v128 yd = wasm_f32x4_splat(y[i].d);
        const v128 d = wasm_f32x4_mul(wasm_f32x4_make(h[x[0][i].d], h[x[1][i].d], h[x[2][i].d], h[x[3][i].d]), yd);
        const v128 dmin = wasm_f32x4_mul(wasm_f32x4_make(h[x[0][i].dmin], h[x[1][i].dmin], h[x[2][i].dmin], h[x[3][i].dmin]), yd);
        acc = madd(wasm_f32x4_convert_i32x4(hsum4_i32(tot[0], tot[1], tot[2], tot[3])), d, acc);
        acc_min = madd(wasm_f32x4_convert_i32x4(wasm_i32x4_make(imin[0], imin[1], imin[2], imin[3])), dmin, acc_min);
    }
    return wasm_f32x4_sub(acc, acc_min);
}

void rows_q4_K(const RowJob& j, const Consts& c, int64_t r0, int64_t r1) {
    const K4ScaleConsts k;
    const int64_t nb = j.cols / QK_K;
    if (j.order == SumOrder::Lanes)
        return each_row<block_q4_K>(j, r0, r1, [&](const block_q4_K* x, int64_t t) { return dot_q4_K_lanes(c, k, x, qrow<block_q8_K>(*j.a, t), nb); });
    each_four_rows<block_q4_K>(j, r0, r1, [&](const block_q4_K* const* x, int64_t t) {
        return dot_q4_K_rows4(c, k, x, qrow<block_q8_K>(*j.a, t), nb);
    });
}

// Q5_K: as Q4_K's lane order with the fifth bit; the mins accumulated in one lane. One row for
// T tokens: each group's values unpacked (strict SIMD128: and scaled, see simd.h's ScaledBytes;
// kPaired: from the Paired16 layout) once, one half of the lanes at a time (H = 0: elements 0..15
// of each group, lanes 0-3; H = 1: elements 16..31, lanes 4-7), which keeps T sums live rather
// than 2T, as Q6_K's kernel does. ya[t]: token t's activations of the block.
template <int T, bool kPaired, int H, int G>
__attribute__((always_inline)) inline void q5_K_group(const Consts& c, const block_q5_K& x, const Act* const ya[T], v128 scales,
                                                      v128 sums[T]) {
    v128 values[2];
    k_group_values(c, x.qs, x.qh, G, values[0], values[1]);
    const auto w = scaled_bytes<kPaired, kScaleSums<T>>(values[H], group_scale<T, G>(scales));
    for (int t = 0; t < T; ++t) {
        ScaledDot4 d{sums[t]};
        d.add(ya[t] + 32 * G + 16 * H, w);
        sums[t] = d.total();
    }
}

template <int T, bool kPaired, int H>
__attribute__((always_inline)) inline void q5_K_half(const Consts& c, const block_q5_K& x, const block_q8_K* const y[T],
                                                     const Act* const ya[T], int64_t i, v128 scales, float dx, IntFmaAcc acc[T]) {
    v128 sums[T];
    for (int t = 0; t < T; ++t) sums[t] = c.zero;
    [&]<int... G>(std::integer_sequence<int, G...>) {
        (q5_K_group<T, kPaired, H, G>(c, x, ya, scales, sums), ...);
    }(std::make_integer_sequence<int, 8>{});
    for (int t = 0; t < T; ++t) acc[t].add(ScaleSplat(y[t][i].d * dx), sums[t]);
}

template <int T, bool kPaired>
void q5_K_tokens(const RowJob& j, const Consts& c, const K4ScaleConsts& k, int64_t r, int64_t t0) {
    const float* h = half_table();  // block scales, looked up
    const int64_t nb = j.cols / QK_K;
    const auto* x = reinterpret_cast<const block_q5_K*>(j.W + uint64_t(r) * j.rb);
    const block_q8_K* y[T];
    IntFmaAcc acc_lo[T], acc_hi[T];
    v128 summs[T];
    const Act* ya[T];
    for (int t = 0; t < T; ++t) {
        y[t] = qrow<block_q8_K>(*j.a, t0 + t);
        ya[t] = act_row(*j.a, t0 + t);
        summs[t] = wasm_f32x4_splat(0);
    }
    for (int64_t i = 0; i < nb; ++i) {
        v128 scales, mins;
        k4_scales_mins(k, x[i].scales, scales, mins);
        const float dx = h[x[i].d], dmin = h[x[i].dmin];
        for (int t = 0; t < T; ++t)
            summs[t] = madd(wasm_f32x4_splat(-y[t][i].d * dmin), wasm_f32x4_splat(float(k4_mins_term(c, mins, y[t][i].bsums))), summs[t]);
        q5_K_half<T, kPaired, 0>(c, x[i], y, ya, i, scales, dx, acc_lo);
        q5_K_half<T, kPaired, 1>(c, x[i], y, ya, i, scales, dx, acc_hi);
        for (int t = 0; t < T; ++t) ya[t] += kActBlockStride<>;
    }
    for (int t = 0; t < T; ++t)
        j.Y[(t0 + t) * j.ldy + r] = hsum_f32x4_tree(wasm_f32x4_add(acc_hi[t].value(), acc_lo[t].value())) + wasm_f32x4_extract_lane(summs[t], 0);
}

void rows_q5_K(const RowJob& j, const Consts& c, int64_t r0, int64_t r1) {
    const K4ScaleConsts k;
#if !defined(__wasm_relaxed_simd__)
    if (j.layout == WeightLayout::Paired16)
        return each_row_token_groups(j, r0, r1, [&](auto T, int64_t r, int64_t t0) { q5_K_tokens<T(), true>(j, c, k, r, t0); });
#endif
    each_row_token_groups(j, r0, r1, [&](auto T, int64_t r, int64_t t0) { q5_K_tokens<T(), false>(j, c, k, r, t0); });
}

// Q6_K: unsigned 6-bit values in 8 integer lanes (lane l: positions 4l..4l+3 of each 32-element
// quarter, scaled by that 16-group's scale), minus 32 x scale x group sums, an FMA per block.
// Byte-wise shifts are done as 16-bit shifts and a mask (x86 has no 8-bit shift): the mask drops
// exactly the bits that crossed from the neighbouring byte.
template <int Q>
inline v128 q6_K_values(const Consts& c, v128 ql, v128 qh) {
    const v128 low4 = wasm_v128_and(Q < 2 ? ql : wasm_u16x8_shr(ql, 4), c.low_nibbles);
    const v128 high2 = wasm_v128_and(Q < 2 ? wasm_i16x8_shl(qh, 4 - 2 * Q) : Q == 2 ? qh : wasm_u16x8_shr(qh, 2), c.bits45);  // bits 2Q, 2Q+1 to 4, 5
    return wasm_v128_or(low4, high2);
}

// Lanes L (0: elements 0..15 of each 32, lanes 0-3; 1: elements 16..31, lanes 4-7) of quarter Q
// of half Half of a Q6_K block in the file's layout for T tokens: the 16 values unpacked and
// scaled once (see simd.h's ScaledBytes), each token's lane sums added up. The scale comes from
// `pairs` (each scale as an i16 pair, or an i32 where kScaleSums) by a broadcast load, which
// takes a load port instead of two shuffles. y[t]: token t's activations of the block.
// (Forced inline: as a call, the sums would pass through memory.)
template <int T, int L, int Half, int Q>
__attribute__((always_inline)) inline void q6_K_quarter(const Consts& c, const block_q6_K& x, const Act* const y[T], const int16_t* pairs,
                                                        ScaledDot4 sums[T]) {
    constexpr int quarter = 4 * Half + Q;  // scales 2 quarter (L = 0), 2 quarter + 1 (L = 1)
    const uint8_t* ql = x.ql + 64 * Half + (Q % 2 == 0 ? 0 : 32) + 16 * L;
    const auto v = scaled_bytes<false, kScaleSums<T>>(q6_K_values<Q>(c, load(ql), load(x.qh + 32 * Half + 16 * L)),
                                                        wasm_v128_load32_splat(pairs + 4 * quarter + 2 * L));
    for (int t = 0; t < T; ++t) sums[t].add(y[t] + 32 * quarter + 16 * L, v);
}

// The four quarters of lanes L of half Half from the Q6Bytes layout (q6_values): three vectors
// loaded, four vectors of values made of them, each scaled and summed as q6_K_quarter does.
template <int T, int L, int Half>
__attribute__((always_inline)) inline void q6_K_bytes_half(const Consts& c, const block_q6_K& x, const Act* const y[T], const int16_t* pairs,
                                                           ScaledDot4 sums[T]) {
    const uint8_t* g = x.ql + 48 * (2 * Half + L);
    const v128 a = load(g), b = load(g + 16), d = load(g + 32);
    const v128 values[4] = {wasm_v128_and(a, c.low6), wasm_v128_and(b, c.low6), wasm_v128_and(d, c.low6),
                            wasm_v128_or(wasm_v128_or(wasm_u16x8_shr(wasm_v128_and(a, c.top2), 6), wasm_u16x8_shr(wasm_v128_and(b, c.top2), 4)),
                                         wasm_u16x8_shr(wasm_v128_and(d, c.top2), 2))};
    for (int q = 0; q < 4; ++q) {
        const int quarter = 4 * Half + q;
        const auto v = scaled_bytes<kValuesPaired, kScaleSums<T>>(values[q], wasm_v128_load32_splat(pairs + 4 * quarter + 2 * L));
        for (int t = 0; t < T; ++t) sums[t].add(y[t] + 32 * quarter + 16 * L, v);
    }
}

// Lanes L of block i of a Q6_K row for T tokens: the 8 quarters' sums, minus 32 x scale x the
// groups' Q8_K sums (sc: the block's scales of these lanes as i16), then the block's FMA into acc.
// One set of lanes at a time keeps T integer sums live rather than 2T (measured faster in both
// builds: 4 tokens 1.1x relaxed, 1.3x strict). kBytes: from the Q6Bytes layout.
template <int T, bool kBytes, int L>
__attribute__((always_inline)) inline void q6_K_lanes(const Consts& c, const block_q6_K* x, const block_q8_K* const y[T],
                                                      const Act* const ya[T], int64_t i, const int16_t* pairs, v128 sc, float dx,
                                                      IntFmaAcc acc[T]) {
    ScaledDot4 sums[T];
    if constexpr (kBytes) {
        q6_K_bytes_half<T, L, 0>(c, x[i], ya, pairs, sums);
        q6_K_bytes_half<T, L, 1>(c, x[i], ya, pairs, sums);
    } else {
        q6_K_quarter<T, L, 0, 0>(c, x[i], ya, pairs, sums);
        q6_K_quarter<T, L, 0, 1>(c, x[i], ya, pairs, sums);
        q6_K_quarter<T, L, 0, 2>(c, x[i], ya, pairs, sums);
        q6_K_quarter<T, L, 0, 3>(c, x[i], ya, pairs, sums);
        q6_K_quarter<T, L, 1, 0>(c, x[i], ya, pairs, sums);
        q6_K_quarter<T, L, 1, 1>(c, x[i], ya, pairs, sums);
        q6_K_quarter<T, L, 1, 2>(c, x[i], ya, pairs, sums);
        q6_K_quarter<T, L, 1, 3>(c, x[i], ya, pairs, sums);
    }
    for (int t = 0; t < T; ++t) {
        const v128 off = wasm_i32x4_dot_i16x8(load(y[t][i].bsums + 8 * L), sc);
        acc[t].add(ScaleSplat(y[t][i].d * dx), wasm_i32x4_sub(sums[t].total(), wasm_i32x4_shl(off, 5)));
    }
}

// Q6_K, one row for T tokens; every token's sums in the one-token order.
template <int T, bool kBytes>
void q6_K_tokens(const RowJob& j, const Consts& c, int64_t r, int64_t t0) {
    const float* h = half_table();  // block scales, looked up
    const int64_t nb = j.cols / QK_K;
    const auto* x = reinterpret_cast<const block_q6_K*>(j.W + uint64_t(r) * j.rb);
    const block_q8_K* y[T];
    const Act* ya[T];
    IntFmaAcc acc_lo[T], acc_hi[T];
    for (int t = 0; t < T; ++t) {
        y[t] = qrow<block_q8_K>(*j.a, t0 + t);
        ya[t] = act_row(*j.a, t0 + t);
    }
    for (int64_t i = 0; i < nb; ++i) {
        const v128 s8 = load(x[i].scales);
        const v128 sc_lo = wasm_i16x8_extend_low_i8x16(s8), sc_hi = wasm_i16x8_extend_high_i8x16(s8);
        alignas(16) int16_t pairs[32];  // scale k in 4 bytes: an i16 pair (kScaleSums: an i32)
        if constexpr (kScaleSums<T>) {
            wasm_v128_store(pairs, wasm_i32x4_extend_low_i16x8(sc_lo));
            wasm_v128_store(pairs + 8, wasm_i32x4_extend_high_i16x8(sc_lo));
            wasm_v128_store(pairs + 16, wasm_i32x4_extend_low_i16x8(sc_hi));
            wasm_v128_store(pairs + 24, wasm_i32x4_extend_high_i16x8(sc_hi));
        } else {
            wasm_v128_store(pairs, wasm_i16x8_shuffle(sc_lo, sc_lo, 0, 0, 1, 1, 2, 2, 3, 3));
            wasm_v128_store(pairs + 8, wasm_i16x8_shuffle(sc_lo, sc_lo, 4, 4, 5, 5, 6, 6, 7, 7));
            wasm_v128_store(pairs + 16, wasm_i16x8_shuffle(sc_hi, sc_hi, 0, 0, 1, 1, 2, 2, 3, 3));
            wasm_v128_store(pairs + 24, wasm_i16x8_shuffle(sc_hi, sc_hi, 4, 4, 5, 5, 6, 6, 7, 7));
        }
        const float dx = h[x[i].d];
        q6_K_lanes<T, kBytes, 0>(c, x, y, ya, i, pairs, sc_lo, dx, acc_lo);
        q6_K_lanes<T, kBytes, 1>(c, x, y, ya, i, pairs, sc_hi, dx, acc_hi);
        for (int t = 0; t < T; ++t) ya[t] += kActBlockStride<>;
    }
    for (int t = 0; t < T; ++t) j.Y[(t0 + t) * j.ldy + r] = hsum_f32x4_tree(wasm_f32x4_add(acc_hi[t].value(), acc_lo[t].value()));
}

// Relaxed SIMD takes up to 8 tokens per pass over a row (measured 1.04-1.11x over 4 at 8 to 64 tokens).
void rows_q6_K(const RowJob& j, const Consts& c, int64_t r0, int64_t r1) {
    constexpr int kMaxTokens = kRelaxed ? 8 : 4;
    if (j.layout == WeightLayout::Q6Bytes)
        return each_row_token_groups<kMaxTokens>(j, r0, r1, [&](auto T, int64_t r, int64_t t0) { q6_K_tokens<T(), true>(j, c, r, t0); });
    each_row_token_groups<kMaxTokens>(j, r0, r1, [&](auto T, int64_t r, int64_t t0) { q6_K_tokens<T(), false>(j, c, r, t0); });
}

// F32 / F16 / BF16 weights: rows widened to float, summed in llama.cpp's order for the batch size.
void rows_float(const RowJob& j, int64_t r0, int64_t r1, TensorType w) {
    const bool blocks = float_matmul_sums_in_blocks(w, j.ldy, j.cols, j.a->n_tokens);
    const float* X = w == TensorType::F32 ? j.X : j.a->f.data();
    std::vector<float> wide(w == TensorType::F32 ? 0 : size_t(j.cols));
    for (int64_t r = r0; r < r1; ++r) {
        const uint8_t* src = j.W + uint64_t(r) * j.rb;
        const float* row = reinterpret_cast<const float*>(src);
        if (w == TensorType::F16) {
            const auto* h = reinterpret_cast<const uint16_t*>(src);
            int64_t i = 0;
            for (; i + 8 <= j.cols; i += 8) {
                const v128 v = load(h + i);
                wasm_v128_store(&wide[size_t(i)], f16x4_to_f32x4(wasm_u32x4_extend_low_u16x8(v)));
                wasm_v128_store(&wide[size_t(i + 4)], f16x4_to_f32x4(wasm_u32x4_extend_high_u16x8(v)));
            }
            for (; i < j.cols; ++i) wide[size_t(i)] = fp16_to_f32(h[i]);
            row = wide.data();
        } else if (w == TensorType::BF16) {  // a bfloat16 is the top half of its float
            const auto* h = reinterpret_cast<const uint16_t*>(src);
            int64_t i = 0;
            for (; i + 8 <= j.cols; i += 8) {
                const v128 v = load(h + i);
                wasm_v128_store(&wide[size_t(i)], wasm_i32x4_shl(wasm_u32x4_extend_low_u16x8(v), 16));
                wasm_v128_store(&wide[size_t(i + 4)], wasm_i32x4_shl(wasm_u32x4_extend_high_u16x8(v), 16));
            }
            for (; i < j.cols; ++i) wide[size_t(i)] = bf16_to_f32(h[i]);
            row = wide.data();
        }
        for (int64_t t = 0; t < j.a->n_tokens; ++t)
            j.Y[t * j.ldy + r] = !blocks ? dot_lanes8(row, X + t * j.cols, j.cols)
                                 : w == TensorType::BF16 ? dot_bf16_blocks(row, X + t * j.cols, j.cols)
                                                         : dot_blocks32(row, X + t * j.cols, j.cols);
    }
}

// Formats without a SIMD kernel (Q2_K, Q3_K): the reference dot per row.
void rows_reference(const RowJob& j, int64_t r0, int64_t r1, TensorType w) {
    each_row<uint8_t>(j, r0, r1, [&](const uint8_t* x, int64_t t) {
        return dot_row(w, x, j.a->q.data() + uint64_t(t) * j.a->q_stride, j.cols, j.order);
    });
}

template <class Dot>
void rows_with(const RowJob& j, TensorType w, int64_t r0, int64_t r1) {
    const Dot dot;
    const Consts c;
    switch (w) {
        case TensorType::Q4_0: return rows_4bit<block_q4_0>(j, dot, c, r0, r1);
        case TensorType::Q8_0: return rows_q8_0(j, dot, c, r0, r1);
        case TensorType::Q4_1: return rows_lanes_32<block_q4_1, block_q8_1>(j, dot, c, r0, r1);
        case TensorType::Q5_0: return rows_lanes_32<block_q5_0, block_q8_0>(j, dot, c, r0, r1);
        case TensorType::Q5_1: return rows_lanes_32<block_q5_1, block_q8_1>(j, dot, c, r0, r1);
        case TensorType::Q4_K: return rows_q4_K(j, c, r0, r1);
        case TensorType::Q5_K: return rows_q5_K(j, c, r0, r1);
        case TensorType::Q6_K: return rows_q6_K(j, c, r0, r1);
        case TensorType::IQ4_NL: return rows_4bit<block_iq4_nl>(j, dot, c, r0, r1);
        case TensorType::IQ4_XS: return rows_iq4_xs(j, c, r0, r1);
        case TensorType::F32: case TensorType::F16: case TensorType::BF16: return rows_float(j, r0, r1, w);
        default: return rows_reference(j, r0, r1, w);
    }
}

// ---- exp and friends ------------------------------------------------------------------------

// exp_poly of ops_ref on four lanes: 2^n built in the exponent bits, 2^n + 2^n (p - 1) in one
// madd; beyond |n| > 126 the power in two factors, beyond 192 saturated to 0 or inf. Its
// constants made once per call of the kernel that loops over it (see opaque()).
struct ExpConsts {
    v128 shift = opaque(wasm_f32x4_splat(0x1.8p23f)), log2e = opaque(wasm_f32x4_splat(0x1.715476p+0f));
    v128 ln2_lo = opaque(wasm_f32x4_splat(0x1.7f7d1cp-20f)), ln2_hi = opaque(wasm_f32x4_splat(0x1.62e4p-1f));
    v128 one_bits = opaque(wasm_i32x4_splat(0x3f800000));
    v128 c0 = opaque(wasm_f32x4_splat(0x1.0e4020p-7f)), c1 = opaque(wasm_f32x4_splat(0x1.573e2ep-5f));
    v128 c2 = opaque(wasm_f32x4_splat(0x1.555e66p-3f)), c3 = opaque(wasm_f32x4_splat(0x1.fffdb6p-2f));
    v128 c4 = opaque(wasm_f32x4_splat(0x1.ffffecp-1f)), limit = opaque(wasm_f32x4_splat(126.0f));
    v128 one = opaque(wasm_f32x4_splat(1.0f)), zero = opaque(wasm_f32x4_splat(0.0f));
};

v128 exp_poly4(const ExpConsts& k, v128 x) {
    const v128 z = madd(x, k.log2e, k.shift);
    const v128 n = wasm_f32x4_sub(z, k.shift);
    const v128 neg_n = wasm_f32x4_neg(n);
    const v128 b = madd(neg_n, k.ln2_lo, madd(neg_n, k.ln2_hi, x));
    const v128 e = wasm_i32x4_shl(z, 23);
    const v128 kk = wasm_i32x4_add(e, k.one_bits);
    const v128 u = wasm_f32x4_mul(b, b);
    const v128 j = madd(madd(madd(k.c0, b, k.c1), u, madd(k.c2, b, k.c3)), u, wasm_f32x4_mul(k.c4, b));
    const v128 normal = madd(j, kk, kk);
    const v128 abs_n = wasm_f32x4_abs(n);
    const v128 c = wasm_f32x4_gt(abs_n, k.limit);
    if (!wasm_v128_any_true(c)) return normal;
    const v128 g = wasm_v128_and(wasm_f32x4_le(n, wasm_f32x4_splat(0.0f)), wasm_i32x4_splat(int32_t(0x82000000u)));
    const v128 s1 = wasm_i32x4_add(g, wasm_i32x4_splat(0x7f000000));
    const v128 s2 = wasm_i32x4_sub(e, g);
    const v128 scaled = wasm_f32x4_mul(madd(s2, j, s2), s1);
    const v128 d = wasm_f32x4_gt(abs_n, wasm_f32x4_splat(192.0f));
    return wasm_v128_bitselect(wasm_f32x4_mul(s1, s1), wasm_v128_bitselect(scaled, normal, c), d);
}

inline v128 silu4(const ExpConsts& k, v128 x) { return wasm_f32x4_div(x, wasm_f32x4_add(k.one, exp_poly4(k, wasm_f32x4_sub(k.zero, x)))); }
inline float silu_libm(float x) { return x / (1.0f + std::exp(-x)); }

constexpr int64_t kBlock = 8;  // the reference's vector blocks (llama.cpp's AVX2 width)

// ---- the group-dot form (simd.h): chosen once by timing both -----------------------------

GroupDotForm g_form = GroupDotForm::Auto;

#if defined(__wasm_relaxed_simd__)
bool i16_group_dots_faster() {
    static const bool faster = [] {
        // A Q4_K matrix in the Rows4 layout (zeros: the time does not depend on the values),
        // one token, the best of a few interleaved runs of each form.
        const int64_t rows = 256, cols = 4096;
        std::vector<uint8_t> w(size_t(row_bytes(TensorType::Q4_K, uint64_t(cols)) * uint64_t(rows)));
        std::vector<float> x(size_t(cols), 0.5f), y(static_cast<size_t>(rows));
        Acts acts;
        prepare_acts(TensorType::Q4_K, WideActs::None, x.data(), 1, cols, acts, nullptr);
        const RowJob job{w.data(), row_bytes(TensorType::Q4_K, uint64_t(cols)), cols, &acts, x.data(), y.data(), rows, SumOrder::Rows};
        const Consts c;
        const auto time = [&](auto kernel) {
            const auto t0 = std::chrono::steady_clock::now();
            for (int i = 0; i < 4; ++i) kernel(job, c, 0, rows);
            return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        };
        double best32 = 1e30, best16 = 1e30;
        for (int round = 0; round < 5; ++round) {
            best32 = std::min(best32, time(rows_q4_K_rows4<GroupDotI32>));
            best16 = std::min(best16, time(rows_q4_K_rows4<GroupDotI16>));
        }
        return best16 < best32;
    }();
    return faster;
}
#endif

bool use_i16_group_dots() {
#if defined(__wasm_relaxed_simd__)
    return g_form == GroupDotForm::I16 || (g_form == GroupDotForm::Auto && i16_group_dots_faster());
#else
    return false;
#endif
}

// Rows of a plain matrix, in the dot form the CPU runs faster.
void rows(const RowJob& j, TensorType w, int64_t r0, int64_t r1) {
#if defined(__wasm_relaxed_simd__)
    if (use_i16_group_dots()) return rows_with<Dot4Pairs>(j, w, r0, r1);
    return rows_with<Dot4Fused>(j, w, r0, r1);
#else
    return rows_with<Dot4Wide>(j, w, r0, r1);
#endif
}

// Rows of a matrix in the Rows4 layout.
void rows_rows4(const RowJob& j, TensorType w, int64_t r0, int64_t r1) {
    const Consts c;
#if defined(__wasm_relaxed_simd__)
    if (use_i16_group_dots()) {
        if (w == TensorType::Q4_0) return rows_4bit_rows4<false, GroupDotI16>(j, c, r0, r1);
        if (w == TensorType::Q4_K) return rows_q4_K_rows4<GroupDotI16>(j, c, r0, r1);
    }
#endif
    switch (w) {
        case TensorType::Q4_0: return rows_4bit_rows4<false, GroupDotI32>(j, c, r0, r1);
        case TensorType::IQ4_NL: return rows_4bit_rows4<true, GroupDotI32>(j, c, r0, r1);
        case TensorType::Q4_K: return rows_q4_K_rows4<GroupDotI32>(j, c, r0, r1);
        default: RILL_FAIL("matmul: no Rows4 kernel for %s", std::string(type_name(w)).c_str());
    }
}

}  // namespace

// ---- public kernels -------------------------------------------------------------------------

void set_group_dot_form(GroupDotForm form) { g_form = form; }

const char* group_dot_form() { return use_i16_group_dots() ? "i16" : "i32"; }

WeightLayout preferred_layout(TensorType w, int64_t rows, int64_t cols, SumOrder order) {
    const bool rows4 = has_rows4(w) && order == SumOrder::Rows && rows % 4 == 0 && cols % traits(w).block_size == 0;
    if (rows4) return WeightLayout::Rows4;
    if (has_q6_bytes(w)) return WeightLayout::Q6Bytes;
    if (!kRelaxed && has_paired16(w)) return WeightLayout::Paired16;
    return has_q5_bits(w) ? WeightLayout::Q5Bits : WeightLayout::Plain;
}

void repack(WeightLayout layout, TensorType w, void* W, int64_t rows, int64_t cols) {
    if (layout == WeightLayout::Plain || layout == WeightLayout::Q8Abs7) return;  // nothing to rearrange
    if (layout == WeightLayout::Paired16 || layout == WeightLayout::Q5Bits || layout == WeightLayout::Q6Bytes)
        return rearrange_blocks(layout, w, static_cast<uint8_t*>(W), rows * (cols / traits(w).block_size), false);
    if (!has_rows4(w) || rows % 4 != 0 || cols % traits(w).block_size != 0)
        RILL_FAIL("the Rows4 layout is for Q4_0, IQ4_NL and Q4_K matrices with a multiple of 4 rows");
    if (w == TensorType::Q4_K) return repack_q4_K_rows4(static_cast<uint8_t*>(W), rows, cols);
    repack_q4_0_rows4(static_cast<uint8_t*>(W), rows, cols);  // IQ4_NL blocks have Q4_0's shape
}

void plain_row(WeightLayout layout, TensorType w, const void* row, int64_t cols, void* out) {
    std::memcpy(out, row, size_t(row_bytes(w, uint64_t(cols))));
    switch (layout) {
        case WeightLayout::Plain:
        case WeightLayout::Q8Abs7: return;
        case WeightLayout::Paired16:
        case WeightLayout::Q5Bits:
        case WeightLayout::Q6Bytes: return rearrange_blocks(layout, w, static_cast<uint8_t*>(out), cols / traits(w).block_size, true);
        case WeightLayout::Rows4: break;
    }
    RILL_FAIL("a row of a Rows4 matrix cannot be read alone: the layout interleaves four rows");
}

WeightLayout checked_layout(WeightLayout layout, TensorType w, const void* W, int64_t rows, int64_t cols) {
#if defined(__wasm_relaxed_simd__)
    if (layout != WeightLayout::Plain || w != TensorType::Q8_0) return layout;
    const auto* x = static_cast<const block_q8_0*>(W);
    const v128 min8 = wasm_i8x16_splat(-128);
    v128 least = wasm_i8x16_splat(0);
    for (int64_t b = 0; b < rows * (cols / QK8_0); ++b) least = wasm_i8x16_min(least, wasm_i8x16_min(load(x[b].qs), load(x[b].qs + 16)));
    return any_min8(least, min8) ? layout : WeightLayout::Q8Abs7;
#else
    (void)w, (void)W, (void)rows, (void)cols;
    return layout;
#endif
}

void matmul(TensorType w, const void* W, int64_t rows_n, int64_t cols, const float* X, float* Y, int64_t n_tokens,
            SumOrder order, ThreadPool* pool, WeightLayout layout) {
    thread_local Acts acts;
    prepare_acts(w, wide_acts(w, layout), X, n_tokens, cols, acts, pool);
    const RowJob job{static_cast<const uint8_t*>(W), row_bytes(w, uint64_t(cols)), cols, &acts, X, Y, rows_n, order, layout};
    const bool rows4 = layout == WeightLayout::Rows4;
    if (rows4 && (!has_rows4(w) || order != SumOrder::Rows || rows_n % 4 != 0))
        RILL_FAIL("matmul: the Rows4 layout holds row-order Q4_0, IQ4_NL or Q4_K matrices with a multiple of 4 rows");
    if (layout == WeightLayout::Q5Bits && !has_q5_bits(w)) RILL_FAIL("matmul: the Q5Bits layout holds Q5_0 or Q5_1 matrices");
    if (layout == WeightLayout::Q6Bytes && !has_q6_bytes(w)) RILL_FAIL("matmul: the Q6Bytes layout holds Q6_K matrices");
    if (layout == WeightLayout::Q8Abs7 && w != TensorType::Q8_0) RILL_FAIL("matmul: the Q8Abs7 layout holds Q8_0 matrices");
    if (layout == WeightLayout::Paired16 && (kRelaxed || !has_paired16(w)))
        RILL_FAIL("matmul: the Paired16 layout holds Q5_K, IQ4_XS or Q8_0 matrices for the strict SIMD128 kernels");
    use_i16_group_dots();  // decided (timed) before the threads start
    const auto part = [&](int64_t r0, int64_t r1) { rows4 ? rows_rows4(job, w, r0, r1) : rows(job, w, r0, r1); };
    const int nth = pool ? pool->size() : 1;
    if (nth == 1 || rows_n < 16) return part(0, rows_n);
    pool->run([&](int ith, int n) {
        // Chunks of whole 4-row groups, so that the row-order kernels see full groups.
        const int64_t groups = (rows_n + 3) / 4;
        const int64_t r0 = std::min(rows_n, groups * ith / n * 4), r1 = std::min(rows_n, groups * (ith + 1) / n * 4);
        if (r0 < r1) part(r0, r1);
    });
}

float dot_f32_lanes8(const float* a, const float* b, int64_t n) { return dot_lanes8(a, b, n); }
float dot_f32_blocks32(const float* a, const float* b, int64_t n) { return dot_blocks32(a, b, n); }

void silu_inplace(float* x, int64_t n) {
    const ExpConsts k;
    const int64_t vec_end = n - n % kBlock;
    for (int64_t i = 0; i < vec_end; i += 4) wasm_v128_store(x + i, silu4(k, load(x + i)));
    for (int64_t i = vec_end; i < n; ++i) x[i] = silu_libm(x[i]);
}

// ggml's fp16 GELU table (gelu_fp16_table), its entries widened to float once.
const float* gelu_table_f32() {
    static const float* table = [] {
        const uint16_t* fp16 = gelu_fp16_table();
        auto* t = new float[65536];
        for (uint32_t h = 0; h < 65536; ++h) t[h] = fp16_to_f32(fp16[h]);
        return t;
    }();
    return table;
}

// Four lanes of the reference's gelu(x) (times up): x rounded to fp16 as f32_to_fp16 does it (normals:
// exponent rebiased and rounded to nearest even in the integer unit; subnormals: by the float adder,
// with 0.5 added), looked up one lane at a time (SIMD128 has no gather), then x <= -10 gives 0 and
// x >= 10 gives x. A lane holding a NaN leaves the four to the reference. True when done.
inline bool gelu4(const float* table, const float* x, const float* up, float* out) {
    const v128 v = load(x);
    if (!wasm_i32x4_all_true(wasm_f32x4_eq(v, v))) return false;
    const v128 ax = wasm_v128_and(v, wasm_i32x4_splat(0x7fffffff));
    const v128 sign = wasm_v128_and(wasm_u32x4_shr(v, 16), wasm_i32x4_splat(0x8000));
    const v128 odd = wasm_v128_and(wasm_u32x4_shr(ax, 13), wasm_i32x4_splat(1));
    const v128 normal = wasm_u32x4_shr(wasm_i32x4_add(wasm_i32x4_add(ax, wasm_i32x4_splat(0xfff - (112 << 23))), odd), 13);
    const v128 sub = wasm_i32x4_sub(wasm_f32x4_add(ax, wasm_f32x4_splat(0.5f)), wasm_i32x4_splat(0x3f000000));
    // (lanes of 65520 and above, whose results are not taken, kept inside the table by the mask)
    const v128 h = wasm_v128_and(wasm_v128_or(sign, wasm_v128_bitselect(sub, normal, wasm_i32x4_lt(ax, wasm_i32x4_splat(0x38800000)))),
                                 wasm_i32x4_splat(0xffff));
    const v128 g = wasm_f32x4_make(table[wasm_i32x4_extract_lane(h, 0)], table[wasm_i32x4_extract_lane(h, 1)],
                                   table[wasm_i32x4_extract_lane(h, 2)], table[wasm_i32x4_extract_lane(h, 3)]);
    v128 y = wasm_v128_bitselect(v, g, wasm_f32x4_ge(v, wasm_f32x4_splat(10.0f)));
    if (up) y = wasm_f32x4_mul(y, load(up));
    wasm_v128_store(out, wasm_v128_andnot(y, wasm_f32x4_le(v, wasm_f32x4_splat(-10.0f))));  // 0, whatever up holds
    return true;
}

void geglu(const float* gate, const float* up, float* out, int64_t n) {
    const float* table = gelu_table_f32();
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        if (!gelu4(table, gate + i, up + i, out + i)) rill::geglu(gate + i, up + i, out + i, 4);
    rill::geglu(gate + i, up + i, out + i, n - i);
}

void gelu(const float* x, float* y, int64_t n) {
    const float* table = gelu_table_f32();
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        if (!gelu4(table, x + i, nullptr, y + i)) rill::gelu(x + i, y + i, 4);
    rill::gelu(x + i, y + i, n - i);
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
    const ExpConsts k;
    const int64_t vec_end = n - n % kBlock;
    for (int64_t i = 0; i < vec_end; i += 4) wasm_v128_store(out + i, wasm_f32x4_mul(silu4(k, load(gate + i)), load(up + i)));
    for (int64_t i = vec_end; i < n; ++i) out[i] = silu_libm(gate[i]) * up[i];
}

void softmax(float* x, int64_t n) {
    const ExpConsts k;
    v128 mv = wasm_f32x4_splat(-INFINITY);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) mv = wasm_f32x4_pmax(mv, load(x + i));
    float mx = std::max(std::max(wasm_f32x4_extract_lane(mv, 0), wasm_f32x4_extract_lane(mv, 1)),
                        std::max(wasm_f32x4_extract_lane(mv, 2), wasm_f32x4_extract_lane(mv, 3)));
    for (; i < n; ++i) mx = std::max(mx, x[i]);
    const v128 vmx = wasm_f32x4_splat(mx);
    double sum = 0.0;
    const int64_t vec_end = n - n % kBlock;
    for (i = 0; i < vec_end; i += kBlock) {
        v128 e[2];
        for (int j = 0; j < 2; ++j) {
            e[j] = exp_poly4(k, wasm_f32x4_sub(load(x + i + 4 * j), vmx));
            wasm_v128_store(x + i + 4 * j, e[j]);
        }
        sum += double(tree8(e[0], e[1]));
    }
    for (i = vec_end; i < n; ++i) {
        x[i] = std::exp(x[i] - mx);
        sum += double(x[i]);
    }
    const float inv = float(1.0 / sum);
    const v128 vinv = wasm_f32x4_splat(inv);
    for (i = 0; i + 4 <= n; i += 4) wasm_v128_store(x + i, wasm_f32x4_mul(load(x + i), vinv));
    for (; i < n; ++i) x[i] *= inv;
}

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
    // The sum of squares stays sequential in double (as ggml): a different order could change
    // the float it rounds to. The scaling is element-wise and exact in any width.
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += double(x[i] * x[i]);
    const float scale = 1.0f / std::sqrt(float(sum / double(n)) + eps);
    const v128 s = wasm_f32x4_splat(scale);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const v128 v = wasm_f32x4_mul(load(x + i), s);
        wasm_v128_store(y + i, w ? wasm_f32x4_mul(v, load(w + i)) : v);
    }
    for (; i < n; ++i) y[i] = w ? (x[i] * scale) * w[i] : x[i] * scale;
}

void attention_head(const float* q, const float* k, const float* v, int64_t n_kv, int64_t head_dim, int64_t k_stride,
                    int64_t v_stride, float scale, bool batched, float* scores, float* out, int64_t first) {
    for (int64_t t = 0; t < first; ++t) scores[t] = -INFINITY;
    for (int64_t t = first; t < n_kv; ++t) scores[t] = dot_blocks32(k + t * k_stride, q, head_dim) * scale;
    const int64_t padded = (n_kv + 63) / 64 * 64;
    for (int64_t t = n_kv; t < padded; ++t) scores[t] = -INFINITY;
    softmax(scores, padded);
    for (int64_t i = 0; i < head_dim; ++i) {
        const float* vi = v + i * v_stride;
        out[i] = batched ? dot_lanes8(vi, scores, padded) : dot_blocks32(vi, scores, padded);
    }
}

// The queries' scores key by key, then their read-outs value row by value row: each key row and
// value row is read once for all the queries (from the caches, not once per query and head), and
// every query's sums are attention_head's.
void attention_queries(const AttentionQuery* queries, int64_t n_queries, const float* k, const float* v, int64_t head_dim, int64_t k_stride,
                       int64_t v_stride, float scale, bool batched, float* scores) {
    const int64_t max_kv = attention_max_kv(queries, n_queries), stride = attention_scores_stride(max_kv);
    for (int64_t t = 0; t < max_kv; ++t) {
        const float* kt = k + t * k_stride;
        for (int64_t i = 0; i < n_queries; ++i) {
            const AttentionQuery& a = queries[i];
            if (t < a.n_kv) scores[i * stride + t] = t < a.first ? -INFINITY : dot_blocks32(kt, a.q, head_dim) * scale;
        }
    }
    for (int64_t i = 0; i < n_queries; ++i) {
        float* row = scores + i * stride;
        const int64_t padded = attention_scores_stride(queries[i].n_kv);
        for (int64_t t = queries[i].n_kv; t < padded; ++t) row[t] = -INFINITY;
        softmax(row, padded);
    }
    for (int64_t d = 0; d < head_dim; ++d) {
        const float* vd = v + d * v_stride;
        for (int64_t i = 0; i < n_queries; ++i) {
            const int64_t padded = attention_scores_stride(queries[i].n_kv);
            queries[i].out[d] = batched ? dot_lanes8(vd, scores + i * stride, padded) : dot_blocks32(vd, scores + i * stride, padded);
        }
    }
}

void conv1d_causal_step(float* state, const float* x, const float* w, int64_t channels, int K, float* out) {
    const int unfused = conv1d_unfused_terms(K);
    int64_t c = 0;
    if (K == 4)  // Qwen 3.5's kernel: four channels' taps loaded as four vectors and transposed
        for (; c + 4 <= channels; c += 4) {
            const v128 r0 = load(w + c * 4), r1 = load(w + c * 4 + 4), r2 = load(w + c * 4 + 8), r3 = load(w + c * 4 + 12);
            const v128 t0 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5);
            const v128 t2 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7), t3 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
            const v128 wk[4] = {wasm_i32x4_shuffle(t0, t1, 0, 1, 4, 5), wasm_i32x4_shuffle(t0, t1, 2, 3, 6, 7),
                                wasm_i32x4_shuffle(t2, t3, 0, 1, 4, 5), wasm_i32x4_shuffle(t2, t3, 2, 3, 6, 7)};
            v128 s = wasm_f32x4_splat(0.0f);  // K = 4: every term rounded on its own (conv1d_unfused_terms)
            for (int k = 0; k < 4; ++k) s = wasm_f32x4_add(s, wasm_f32x4_mul(load(k < 3 ? state + int64_t(k) * channels + c : x + c), wk[k]));
            wasm_v128_store(out + c, s);
        }
    for (; c + 4 <= channels; c += 4) {
        v128 s = wasm_f32x4_splat(0.0f);
        for (int k = 0; k < K; ++k) {
            const v128 a = load(k < K - 1 ? state + int64_t(k) * channels + c : x + c);
            const v128 wk = wasm_f32x4_make(w[c * K + k], w[(c + 1) * K + k], w[(c + 2) * K + k], w[(c + 3) * K + k]);
            s = k < unfused ? wasm_f32x4_add(s, wasm_f32x4_mul(a, wk)) : madd(a, wk, s);
        }
        wasm_v128_store(out + c, s);
    }
    for (; c < channels; ++c) {
        float s = 0.0f;
        for (int k = 0; k < K; ++k) {
            const float a = k < K - 1 ? state[int64_t(k) * channels + c] : x[c];
            s = k < unfused ? s + a * w[c * K + k] : madd1(a, w[c * K + k], s);
        }
        out[c] = s;
    }
    conv1d_push_state(state, x, channels, K);
}

// The reference's four passes over a state column in two: decay while summing col . k, then the
// update while summing col . q, each sum in dot_blocks32's lanes and order.
void delta_rule_step(const float* S_in, float* S, const float* q, const float* k, const float* v, float g, float beta, float scale,
                     int64_t dk, int64_t dv, float* out) {
    const float decay = std::exp(g);
    const v128 vdecay = wasm_f32x4_splat(decay);
    const int64_t n32 = dk - dk % 32;
    const auto folded = [&](v128 acc[8], const float* a, const float* b) {  // dot_blocks32(a, b, dk) from its lanes
        v128 lo, hi;
        blocks32_fold(acc, lo, hi);
        return blocks32_total(lo, hi, a, b, dk);
    };
    for (int64_t j = 0; j < dv; ++j) {
        float* col = S + j * dk;
        const float* col_in = S_in + j * dk;
        v128 acc[8];
        for (auto& a : acc) a = wasm_f32x4_splat(0);
        for (int64_t i = 0; i < n32; i += 32)
            for (int l = 0; l < 8; ++l) {
                const v128 c = wasm_f32x4_mul(load(col_in + i + 4 * l), vdecay);
                wasm_v128_store(col + i + 4 * l, c);
                acc[l] = madd(c, load(k + i + 4 * l), acc[l]);
            }
        for (int64_t i = n32; i < dk; ++i) col[i] = col_in[i] * decay;
        const float d = (v[j] - folded(acc, col, k)) * beta;
        const v128 vd = wasm_f32x4_splat(d);
        for (auto& a : acc) a = wasm_f32x4_splat(0);
        for (int64_t i = 0; i < n32; i += 32)
            for (int l = 0; l < 8; ++l) {
                const v128 c = madd(load(k + i + 4 * l), vd, load(col + i + 4 * l));
                wasm_v128_store(col + i + 4 * l, c);
                acc[l] = madd(c, load(q + i + 4 * l), acc[l]);
            }
        for (int64_t i = n32; i < dk; ++i) col[i] = madd1(k[i], d, col[i]);
        out[j] = folded(acc, col, q) * scale;
    }
}

}  // namespace rill::kern

#endif
