// Quantisation block layouts, defined once. These are the on-disk GGUF layouts
// (little-endian, packed); every kernel and the GGUF type table use them.
#pragma once

#include <cstdint>

namespace rill {

constexpr int QK4_0 = 32, QK4_1 = 32, QK5_0 = 32, QK5_1 = 32, QK8_0 = 32, QK8_1 = 32;
constexpr int QK_K = 256;          // super-block size of the K-quants
constexpr int K_SCALE_SIZE = 12;   // packed 6-bit scales and mins of Q4_K / Q5_K

// x = (q - 8) * d; q in 0..15. Low nibbles hold elements 0..15, high nibbles 16..31.
struct block_q4_0 { uint16_t d; uint8_t qs[QK4_0 / 2]; };
// x = q * d + m; q in 0..15, same nibble order as Q4_0.
struct block_q4_1 { uint16_t d; uint16_t m; uint8_t qs[QK4_1 / 2]; };
// x = (q - 16) * d; q = nibble | (bit j of qh) << 4, element j uses bit j of qh.
struct block_q5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; };
// x = q * d + m; 5-bit q as in Q5_0.
struct block_q5_1 { uint16_t d; uint16_t m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; };
// x = q * d.
struct block_q8_0 { uint16_t d; int8_t qs[QK8_0]; };
// x = q * d; s = d * sum(q), for the offset of Q4_1 / Q5_1 dot products.
struct block_q8_1 { uint16_t d; uint16_t s; int8_t qs[QK8_1]; };

// 16 groups of 16: x = d * (scale & 15) * q - dmin * (scale >> 4); q in 0..3.
struct block_q2_K { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; uint16_t d; uint16_t dmin; };
// 16 groups of 16: x = d * (scale6 - 32) * (q2 - (hmask bit ? 0 : 4)).
struct block_q3_K { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; uint16_t d; };
// 8 groups of 32: x = d * scale6 * q - dmin * min6; q in 0..15.
struct block_q4_K { uint16_t d; uint16_t dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; };
// 8 groups of 32: as Q4_K with a fifth bit from qh; q in 0..31.
struct block_q5_K { uint16_t d; uint16_t dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; };
// 16 groups of 16: x = d * scale8 * (q - 32); q in 0..63 from 4 low bits (ql) and 2 high (qh).
struct block_q6_K { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; };
// Non-linear 4-bit: x = d * kIQ4Values[q]; the same nibble order as Q4_0.
struct block_iq4_nl { uint16_t d; uint8_t qs[QK4_0 / 2]; };
// 8 groups of 32 with 6-bit scales: x = d * (scale6 - 32) * kIQ4Values[q]; scale6 of group g =
// nibble g % 2 of scales_l[g / 2] | bits 2g, 2g+1 of scales_h << 4; group g's nibbles in
// qs[16g .. 16g + 15] (low: elements 0..15, high: 16..31).
struct block_iq4_xs { uint16_t d; uint16_t scales_h; uint8_t scales_l[QK_K / 64]; uint8_t qs[QK_K / 2]; };
// The 16 values of the IQ4 codebook (ascending; -127 and 113 at the ends).
constexpr int8_t kIQ4Values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// Activations for K-quant dot products: x = d * q; bsums = sums of q per group of 16.
struct block_q8_K { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; };

static_assert(sizeof(block_q4_0) == 18, "block_q4_0 layout");
static_assert(sizeof(block_q4_1) == 20, "block_q4_1 layout");
static_assert(sizeof(block_q5_0) == 22, "block_q5_0 layout");
static_assert(sizeof(block_q5_1) == 24, "block_q5_1 layout");
static_assert(sizeof(block_q8_0) == 34, "block_q8_0 layout");
static_assert(sizeof(block_q8_1) == 36, "block_q8_1 layout");
static_assert(sizeof(block_q2_K) == 84, "block_q2_K layout");
static_assert(sizeof(block_q3_K) == 110, "block_q3_K layout");
static_assert(sizeof(block_q4_K) == 144, "block_q4_K layout");
static_assert(sizeof(block_q5_K) == 176, "block_q5_K layout");
static_assert(sizeof(block_q6_K) == 210, "block_q6_K layout");
static_assert(sizeof(block_iq4_nl) == 18, "block_iq4_nl layout");
static_assert(sizeof(block_iq4_xs) == 136, "block_iq4_xs layout");
static_assert(sizeof(block_q8_K) == 292, "block_q8_K layout");

}  // namespace rill
