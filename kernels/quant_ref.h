// Scalar reference (de)quantisation: the specification every faster kernel must match.
#pragma once

#include <cstdint>

#include "gguf/types.h"
#include "kernels/quant_blocks.h"
#include "rill/mutation.h"

namespace rill {

// Dequantises n elements (a multiple of the type's block size) of type t.
// Throws rill::Error for a type Rill cannot dequantise.
void dequantize_row(TensorType t, const void* src, float* dst, int64_t n);

// Quantises n elements into type t. Supported: F32, F16, BF16, Q4_0, Q8_0, Q8_1,
// Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, IQ4_NL, IQ4_XS. Throws rill::Error for other types.
void quantize_row(TensorType t, const float* src, void* dst, int64_t n);

// Activation formats, rounding exactly as llama.cpp's reference quantisers:
// Q8_0 / Q8_1: d = amax / 127, q = round-half-away(x / d), fp16(d) stored.
void quantize_row_q8_0(const float* x, block_q8_0* y, int64_t n);
void quantize_row_q8_1(const float* x, block_q8_1* y, int64_t n);
// Q8_K: iscale = -127 / (signed value of largest magnitude), q = round-half-even(x * iscale).
void quantize_row_q8_K(const float* x, block_q8_K* y, int64_t n);

// Weight formats.
void quantize_row_q4_0(const float* x, block_q4_0* y, int64_t n);  // as llama.cpp's reference
void quantize_row_q4_1(const float* x, block_q4_1* y, int64_t n);  // as llama.cpp's references
void quantize_row_q5_0(const float* x, block_q5_0* y, int64_t n);
void quantize_row_q5_1(const float* x, block_q5_1* y, int64_t n);
void quantize_row_q2_K(const float* x, block_q2_K* y, int64_t n);  // Rill's own (any valid block reads the same)
void quantize_row_q3_K(const float* x, block_q3_K* y, int64_t n);
void quantize_row_q4_K(const float* x, block_q4_K* y, int64_t n);
void quantize_row_q5_K(const float* x, block_q5_K* y, int64_t n);
void quantize_row_q6_K(const float* x, block_q6_K* y, int64_t n);
void quantize_row_iq4_nl(const float* x, block_iq4_nl* y, int64_t n);  // Rill's own search (any valid block reads the same)
void quantize_row_iq4_xs(const float* x, block_iq4_xs* y, int64_t n);

// The signed scale (-32..31) of group g (0..7) of an IQ4_XS block.
inline int iq4_xs_scale(const block_iq4_xs& b, int g) {
    return (((b.scales_l[g / 2] >> (4 * (g % 2))) & 0x0f) | (((b.scales_h >> (2 * g)) & 3) << 4)) - 32;
}

// Unpacks the j-th (0..7) 6-bit scale and min of a Q4_K / Q5_K block.
inline void k4_scale_min(int j, const uint8_t* s, uint8_t& scale, uint8_t& min) {
    if (j < 4) {
        scale = s[j] & 63;
        min = s[j + 4] & 63;
    } else {
        scale = uint8_t((s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4));
        min = uint8_t((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
        if (mutation::on("q4k-scale-nibble") && j == 4) {  // the golden's mutation test: scale and min trade low nibbles
            const uint8_t low_scale = scale & 0x0f, low_min = min & 0x0f;
            scale = uint8_t((scale & 0x30) | low_min);
            min = uint8_t((min & 0x30) | low_scale);
        }
    }
}

// The 16 six-bit scales of a Q3_K block, minus their offset 32.
void q3_K_scales(const uint8_t packed[12], int out[16]);

// Element e (0..255) of a Q6_K block as its unsigned 6-bit value 0..63 (before the -32 offset).
inline int q6_K_value(const block_q6_K& b, int e) {
    const int half = e / 128, i = e % 128, l = i % 32, quarter = i / 32;
    const uint8_t ql = b.ql[64 * half + l + 32 * (quarter & 1)];
    const int low = (quarter < 2) ? (ql & 0x0f) : (ql >> 4);
    const int high = (b.qh[32 * half + l] >> (2 * quarter)) & 3;
    return low | (high << 4);
}

}  // namespace rill
