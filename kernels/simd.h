// The wasm SIMD layer: the few vector primitives the SIMD kernels are written in, each with
// its strict SIMD128 form and, where relaxed SIMD is enabled, its relaxed form.
#pragma once

#if !defined(__wasm_simd128__)
#error "kernels/simd.h is for wasm builds with -msimd128"
#endif

#include <wasm_simd128.h>

#include <cstdint>

namespace rill::simd {

using v128 = v128_t;

inline v128 load(const void* p) { return wasm_v128_load(p); }

// v as a value the optimiser cannot see into. V8 does not hoist a v128.const out of a loop: it
// builds the constant again at every use (a move, a vmovq and a shuffle on x86). A constant
// passed through opaque() before a loop is an ordinary value there, kept in a register.
inline v128 opaque(v128 v) {
    volatile v128 t = v;
    return t;
}

// a * b + c with one rounding, as the scalar reference's std::fma. Relaxed SIMD: the engine's
// FMA where the hardware has one (madd_is_fused() tells). Strict SIMD128 has no FMA, and two
// roundings measurably move logits once activations are re-quantised (up to 0.6 on the golden
// models), so it computes in double: the product of two floats is exact there, the sum is
// rounded to double and then to float, which equals the fused result except when the double
// lands exactly on a float rounding midpoint (about 1 in 2^29).
inline v128 madd(v128 a, v128 b, v128 c) {
#if defined(__wasm_relaxed_simd__)
    return wasm_f32x4_relaxed_madd(a, b, c);
#else
    auto half = [](v128 x, v128 y, v128 z) {
        return wasm_f32x4_demote_f64x2_zero(wasm_f64x2_add(
            wasm_f64x2_mul(wasm_f64x2_promote_low_f32x4(x), wasm_f64x2_promote_low_f32x4(y)), wasm_f64x2_promote_low_f32x4(z)));
    };
    const v128 lo = half(a, b, c);
    const v128 hi = half(wasm_i32x4_shuffle(a, a, 2, 3, 0, 1), wasm_i32x4_shuffle(b, b, 2, 3, 0, 1), wasm_i32x4_shuffle(c, c, 2, 3, 0, 1));
    return wasm_i32x4_shuffle(lo, hi, 0, 1, 4, 5);
#endif
}

// Four float lanes accumulating d x i (d: a block's float scale, i: exact i32 lane sums, |i| < 2^24)
// with one rounding per step, exactly as acc = madd(d, float(i), acc). Strict SIMD128 computes
// madd's double form without its float conversion of i and with d made double once per block
// (13 operations per 4 lanes instead of 17).
struct ScaleSplat {  // d for IntFmaAcc, made once per block
    v128 v;
#if defined(__wasm_relaxed_simd__)
    explicit ScaleSplat(float d) : v(wasm_f32x4_splat(d)) {}
#else
    explicit ScaleSplat(float d) : v(wasm_f64x2_splat(double(d))) {}
#endif
};
struct IntFmaAcc {
    v128 acc = wasm_f32x4_splat(0);
#if defined(__wasm_relaxed_simd__)
    void add(const ScaleSplat& d, v128 i) { acc = madd(d.v, wasm_f32x4_convert_i32x4(i), acc); }
#else
    void add(const ScaleSplat& d, v128 i) {
        const auto half = [&](v128 i2, v128 acc2) {  // lanes 0, 1 of i2 and acc2
            return wasm_f32x4_demote_f64x2_zero(
                wasm_f64x2_add(wasm_f64x2_mul(d.v, wasm_f64x2_convert_low_i32x4(i2)), wasm_f64x2_promote_low_f32x4(acc2)));
        };
        acc = wasm_i32x4_shuffle(half(i, acc), half(wasm_i32x4_shuffle(i, i, 2, 3, 2, 3), wasm_i32x4_shuffle(acc, acc, 2, 3, 2, 3)), 0, 1, 4, 5);
    }
#endif
    v128 value() const { return acc; }
};

// acc + [p01 + p23, p45 + p67, p89 + pab, pcd + pef] from pair sums lo = [p01, p23, p45, p67] and
// hi = [p89, ...]: i16x8 dot products regrouped into sums of 4 consecutive products.
inline v128 sum4_i16(v128 lo, v128 hi, v128 acc) {
    return wasm_i32x4_add(acc, wasm_i32x4_add(wasm_i32x4_shuffle(lo, hi, 0, 2, 4, 6), wasm_i32x4_shuffle(lo, hi, 1, 3, 5, 7)));
}

// ---- sums of four byte products: the forms --------------------------------------------------
//
// Each form computes acc + [a[4i] b[4i] + ... + a[4i+3] b[4i+3]] in i32 lane i, exactly, for signed
// bytes a and unsigned bytes b in 0..127, and is built once before a kernel's loops (it may hold
// constants, see opaque()). Relaxed SIMD has two, and which is faster depends on the CPU, so the
// kernels are instantiated for both and the engine times them once (kern::GroupDotForm):
//  - Dot4Fused: i32x4.relaxed_dot_i8x16_i7x16_add, one instruction where x86 has AVX-VNNI
//    (vpdpbusd) or Arm has SDOT; without VNNI V8 spends five on it (pmaddubsw, a ones vector
//    built in two, pmaddwd, an add).
//  - Dot4Pairs: the i16 pair sums (pmaddubsw) and the pairs of pairs by a multiply-add with a ones
//    vector kept in a register (pmaddwd), then the add: three instructions on every x86.
// Strict SIMD128 has one, Dot4Wide: bytes widened to i16, i32x4.dot_i16x8, regrouped.
#if defined(__wasm_relaxed_simd__)
struct Dot4Fused {
    v128 operator()(v128 a, v128 b, v128 acc) const { return wasm_i32x4_relaxed_dot_i8x16_i7x16_add(a, b, acc); }
    v128 sum(v128 a, v128 b) const { return wasm_i32x4_relaxed_dot_i8x16_i7x16_add(a, b, wasm_i32x4_splat(0)); }
};
struct Dot4Pairs {
    v128 ones = opaque(wasm_i16x8_splat(1));
    v128 operator()(v128 a, v128 b, v128 acc) const { return wasm_i32x4_add(acc, sum(a, b)); }
    v128 sum(v128 a, v128 b) const { return wasm_i32x4_dot_i16x8(wasm_i16x8_relaxed_dot_i8x16_i7x16(a, b), ones); }
};
#else
struct Dot4Wide {
    v128 operator()(v128 a, v128 b, v128 acc) const {
        return sum4_i16(wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(a), wasm_u16x8_extend_low_u8x16(b)),
                        wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(a), wasm_u16x8_extend_high_u8x16(b)), acc);
    }
};
#endif

// Lane sums of 4 consecutive products accumulated over many add()s: relaxed
// SIMD sums into the lanes directly; strict SIMD128 keeps the i16x8 pair sums of bytes 0-7 and
// 8-15 apart and regroups them into lane sums only in total(), not after every product.
struct Dot4Sum {
#if defined(__wasm_relaxed_simd__)
    v128 lanes;
    explicit Dot4Sum(v128 init) : lanes(init) {}
    void add(v128 a, v128 b) { lanes = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(a, b, lanes); }
    v128 total() const { return lanes; }
#else
    v128 init = wasm_i32x4_splat(0), lo = init, hi = init;
    Dot4Sum() = default;
    explicit Dot4Sum(v128 start) : init(start) {}
    void add(v128 a, v128 b) {
        lo = wasm_i32x4_add(lo, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(a), wasm_u16x8_extend_low_u8x16(b)));
        hi = wasm_i32x4_add(hi, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(a), wasm_u16x8_extend_high_u8x16(b)));
    }
    v128 total() const { return sum4_i16(lo, hi, init); }
    // add() for a = four activations already widened to i16, twice over ([a0..a3, a0..a3]), as the
    // Rows4 kernels broadcast them, and b widened too: its bytes 0..7 as b_lo, 8..15 as b_hi.
    void add_wide4(v128 a16, v128 b_lo, v128 b_hi) {
        lo = wasm_i32x4_add(lo, wasm_i32x4_dot_i16x8(a16, b_lo));
        hi = wasm_i32x4_add(hi, wasm_i32x4_dot_i16x8(a16, b_hi));
    }
#endif
};

// acc + s x (the lane sums of 4 products, as the Dot4 forms) for a group scale s given as an i16 splat (|s| <= 128):
// one scaled group of a K-quant block. a must be -127..127 (activations never reach -128), so
// that the i16 pair sums cannot saturate. Relaxed: the pair sums (x86: pmaddubsw) multiplied
// and added in pairs by the scale (pmaddwd), instead of an i32 multiply per group.
inline v128 dot4_scaled_s8_u7(v128 a, v128 b, v128 s16, v128 acc) {
#if defined(__wasm_relaxed_simd__)
    return wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(wasm_i16x8_relaxed_dot_i8x16_i7x16(a, b), s16));
#else
    Dot4Sum sum(wasm_i32x4_splat(0));
    sum.add(a, b);
    return wasm_i32x4_add(acc, wasm_i32x4_mul(sum.total(), wasm_i32x4_extend_low_i16x8(s16)));
#endif
}

// A token's quantised activations as the byte dots of the Rows4 and Q6_K kernels read them
// (element i at a + i): the bytes (relaxed), or i16 copies made once per matmul (strict SIMD128,
// whose byte dots are i16 multiply-adds: widening the same activations again for every row was
// about a third of its integer work).
#if defined(__wasm_relaxed_simd__)
using Act = int8_t;
#else
using Act = int16_t;
#endif

// A scaled group of 16 weight bytes (unsigned 0..127, or signed where said) ready for the byte
// dots of every token, and the lane sums of 4 products (lane i: elements 4i..4i+3 of the group)
// against a token's activations (ScaledDot4), accumulated exactly in i32 lanes.
// Relaxed SIMD keeps the bytes and the scale (an i16 splat, |s| <= 128) and multiplies per token
// (pmaddubsw, then pmaddwd by the scale). Strict SIMD128 widens the bytes to i16 in the pair order
// of Acts' paired activations: lo holds elements 0,1, 4,5, 8,9, 12,13 and hi 2,3, 6,7, 10,11, 14,15,
// so that one i16 multiply-add of each with the token's activations and an add give the lane
// sums. Bytes stored in that order already (WeightLayout::Paired16, kPaired) widen straight into
// it; bytes in element order are regrouped by two shuffles. Where several tokens share the
// weights (kScaleSums false) the scale multiplies the widened bytes once (|b x s| < 2^15 for the
// 6-bit values of the K-quants and IQ4_XS's signed ones); for one token it multiplies the lane
// sums instead, one i32 multiply per 16 weights instead of two i16 ones.
template <bool kScaleSums>
struct ScaledBytes {
#if defined(__wasm_relaxed_simd__)
    v128 b, s16;
#else
    v128 lo, hi;
    v128 s32;  // kScaleSums: the scale in every i32 lane (the bytes are left unscaled)
#endif
};

// Kernels for T tokens scale the lane sums (strict SIMD128, one token) or the bytes.
#if defined(__wasm_relaxed_simd__)
template <int T>
constexpr bool kScaleSums = false;
#else
template <int T>
constexpr bool kScaleSums = T == 1;
#endif

// scale: the group's scale in every i16 lane, or (strict SIMD128, kScaleSums) in every i32 lane.
template <bool kPaired, bool kScaleSums, bool kSigned = false>
inline ScaledBytes<kScaleSums> scaled_bytes(v128 bytes, v128 scale) {
#if defined(__wasm_relaxed_simd__)
    static_assert(!kPaired && !kSigned, "relaxed SIMD reads element-order unsigned bytes");
    return {bytes, scale};
#else
    const v128 w0 = kSigned ? wasm_i16x8_extend_low_i8x16(bytes) : wasm_u16x8_extend_low_u8x16(bytes);
    const v128 w1 = kSigned ? wasm_i16x8_extend_high_i8x16(bytes) : wasm_u16x8_extend_high_u8x16(bytes);
    const v128 s0 = kScaleSums ? w0 : wasm_i16x8_mul(w0, scale), s1 = kScaleSums ? w1 : wasm_i16x8_mul(w1, scale);
    if constexpr (kPaired) return {s0, s1, scale};
    return {wasm_i32x4_shuffle(s0, s1, 0, 2, 4, 6), wasm_i32x4_shuffle(s0, s1, 1, 3, 5, 7), scale};
#endif
}

#if !defined(__wasm_relaxed_simd__)
// The lane sums of 4 products of 16 values widened in pair order (lo: the i16 values of elements
// 0,1, 4,5, 8,9, 12,13; hi: 2,3, 6,7, 10,11, 14,15) with 16 paired activations at a.
inline v128 dot4_paired(const Act* a, v128 lo, v128 hi) {
    return wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_v128_load(a), lo), wasm_i32x4_dot_i16x8(wasm_v128_load(a + 8), hi));
}
#endif

struct ScaledDot4 {
    v128 lanes = wasm_i32x4_splat(0);
    template <bool kScaleSums>
    void add(const Act* a, const ScaledBytes<kScaleSums>& w) {
#if defined(__wasm_relaxed_simd__)
        lanes = dot4_scaled_s8_u7(wasm_v128_load(a), w.b, w.s16, lanes);
#else
        const v128 sum = dot4_paired(a, w.lo, w.hi);
        lanes = wasm_i32x4_add(lanes, kScaleSums ? wasm_i32x4_mul(sum, w.s32) : sum);
#endif
    }
    v128 total() const { return lanes; }
};

// table[idx[i]] for indices 0..15 (one pshufb where relaxed SIMD is on).
inline v128 lookup16(v128 table, v128 idx) {
#if defined(__wasm_relaxed_simd__)
    return wasm_i8x16_relaxed_swizzle(table, idx);
#else
    return wasm_i8x16_swizzle(table, idx);
#endif
}

// y negated where neg is all ones (and kept where it is 0): with |w| as the unsigned operand,
// |w| . (y with w's sign) = w . y, so signed weights use the signed-by-unsigned byte dots.
inline v128 with_sign(v128 y, v128 neg) { return wasm_i8x16_sub(wasm_v128_xor(y, neg), neg); }

// Lane L of an i32x4 in every lane (4 bytes broadcast).
template <int L>
inline v128 lane32(v128 v) { return wasm_i32x4_shuffle(v, v, L, L, L, L); }

// Exact integer sums of a group of Rows4 vectors (lane k: row k; each add() contributes the
// products of 4 bytes), times a per-row integer scale. Two forms of the same integers:
// I32 sums into i32 lanes (relaxed: one vpdpbusd where the CPU has VNNI; pmaddubsw, pmaddwd
// and an add without), then an i32 multiply; I16 (relaxed only) keeps pair sums in i16 lanes
// (one pmaddubsw and an add per product vector) and applies the scale with one pmaddwd, which
// needs the group's sum of pairs to fit in i16 (8 adds of 4-bit x 7-bit values at most). Which
// is faster depends on the CPU; the kernels time both once (kern::GroupDotForm).
struct GroupDotI32 {
    static constexpr bool kPairScales = false;  // scale vector: the row's scale in byte 0 of its i32 lane
    Dot4Sum s;
    GroupDotI32(v128 zero, v128 /*ones16*/) : s(zero) {}
    void add(v128 a, v128 b) { s.add(a, b); }
#if !defined(__wasm_relaxed_simd__)
    // add() of the four activations at y (widened, see Act), broadcast, against four rows' bytes
    // already widened: bytes 0..7 as b_lo, 8..15 as b_hi.
    void add4(const Act* y, v128 b_lo, v128 b_hi) { s.add_wide4(wasm_v128_load64_splat(y), b_lo, b_hi); }
    // add4() of signed bytes b (-127..127), widened here: the activations' signs need no moving.
    void add4_signed(const Act* y, v128 b) { add4(y, wasm_i16x8_extend_low_i8x16(b), wasm_i16x8_extend_high_i8x16(b)); }
#endif
    v128 scaled(v128 scale) const { return wasm_i32x4_mul(s.total(), scale); }
    v128 total() const { return s.total(); }
};
#if defined(__wasm_relaxed_simd__)
struct GroupDotI16 {
    static constexpr bool kPairScales = true;  // scale vector: the row's scale in both i16 halves of its lane
    v128 s, ones;
    GroupDotI16(v128 zero, v128 ones16) : s(zero), ones(ones16) {}
    void add(v128 a, v128 b) { s = wasm_i16x8_add(s, wasm_i16x8_relaxed_dot_i8x16_i7x16(a, b)); }
    v128 scaled(v128 scale) const { return wasm_i32x4_dot_i16x8(s, scale); }
    v128 total() const { return wasm_i32x4_dot_i16x8(s, ones); }
};
#endif

// Four rows' nibble bytes w of the Rows4 layouts: lo += the low nibbles against the four
// activations at y, hi += the high nibbles against those at yhi, each group of four broadcast
// (lo and hi may be one sum). Strict SIMD128 widens w once and takes both nibbles from the u16
// lanes (the high one by a shift alone).
template <typename GroupDot>
inline void add4_nibbles(GroupDot& lo, GroupDot& hi, const Act* y, const Act* yhi, v128 w, v128 low_nibbles) {
#if defined(__wasm_relaxed_simd__)  // (a broadcasting load, as ops_simd.cpp's bcast4)
    const v128 w_lo = wasm_v128_and(w, low_nibbles), w_hi = wasm_v128_and(wasm_u16x8_shr(w, 4), low_nibbles);
    lo.add(wasm_v128_load32_splat(y), w_lo);
    hi.add(wasm_v128_load32_splat(yhi), w_hi);
#else
    const v128 w_lo = wasm_u16x8_extend_low_u8x16(w), w_hi = wasm_u16x8_extend_high_u8x16(w);
    lo.add4(y, wasm_v128_and(w_lo, low_nibbles), wasm_v128_and(w_hi, low_nibbles));
    hi.add4(yhi, wasm_u16x8_shr(w_lo, 4), wasm_u16x8_shr(w_hi, 4));
#endif
}

// [sum(a), sum(b), sum(c), sum(d)] of four i32x4 vectors (exact, order irrelevant).
inline v128 hsum4_i32(v128 a, v128 b, v128 c, v128 d) {
    const v128 ab = wasm_i32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), wasm_i32x4_shuffle(a, b, 2, 6, 3, 7));
    const v128 cd = wasm_i32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 1, 5), wasm_i32x4_shuffle(c, d, 2, 6, 3, 7));
    return wasm_i32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 1, 4, 5), wasm_i32x4_shuffle(ab, cd, 2, 3, 6, 7));
}

// Four IEEE halves to floats, exactly (normals, subnormals, zeros, inf/nan).
inline v128 f16x4_to_f32x4(v128 h /* u32 lanes holding the halves */) {
    const v128 sign = wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_splat(0x8000)), 16);
    v128 o = wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_splat(0x7fff)), 13);
    const v128 exp = wasm_v128_and(o, wasm_i32x4_splat(0x0f800000));
    o = wasm_i32x4_add(o, wasm_i32x4_splat((127 - 15) << 23));
    // inf / nan: move the exponent to the top
    o = wasm_v128_bitselect(wasm_i32x4_add(o, wasm_i32x4_splat((128 - 16) << 23)), o,
                            wasm_i32x4_eq(exp, wasm_i32x4_splat(0x0f800000)));
    // zero / subnormal: renormalise through the float unit (exact)
    const v128 sub = wasm_f32x4_sub(wasm_i32x4_add(o, wasm_i32x4_splat(1 << 23)), wasm_i32x4_splat(113 << 23));
    o = wasm_v128_bitselect(sub, o, wasm_i32x4_eq(exp, wasm_i32x4_splat(0)));
    return wasm_v128_or(o, sign);
}

inline v128 f16x4_to_f32x4(uint16_t a, uint16_t b, uint16_t c, uint16_t d) {
    return f16x4_to_f32x4(wasm_i32x4_make(a, b, c, d));
}

inline float hsum_f32x4_tree(v128 v) {  // (v0 + v2) + (v1 + v3): the last step of movehl-style 8-lane sums
    return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 2)) +
           (wasm_f32x4_extract_lane(v, 1) + wasm_f32x4_extract_lane(v, 3));
}

inline float hsum_f32x4_pairs(v128 v) {  // (v0 + v1) + (v2 + v3): the last step of hadd-style 8-lane sums
    return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
           (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

}  // namespace rill::simd
