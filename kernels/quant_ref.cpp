#include "kernels/quant_ref.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "kernels/half.h"
#include "rill/error.h"

namespace rill {
namespace {

// Round half to even (the default FP rounding mode), as llama.cpp's nearest_int.
inline int nearest_int(float v) { return static_cast<int>(std::nearbyint(v)); }

template <typename Block>
const Block* blocks(const void* p) { return static_cast<const Block*>(p); }

void dequant_q4_0(const block_q4_0* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += QK4_0) {
        const float d = fp16_to_f32(b[i].d);
        for (int j = 0; j < QK4_0 / 2; ++j) {
            y[j] = float((b[i].qs[j] & 0x0f) - 8) * d;
            y[j + QK4_0 / 2] = float((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void dequant_q4_1(const block_q4_1* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += QK4_1) {
        const float d = fp16_to_f32(b[i].d), m = fp16_to_f32(b[i].m);
        for (int j = 0; j < QK4_1 / 2; ++j) {
            y[j] = float(b[i].qs[j] & 0x0f) * d + m;
            y[j + QK4_1 / 2] = float(b[i].qs[j] >> 4) * d + m;
        }
    }
}

// Fifth bit of element j of a Q5_0 / Q5_1 block.
inline int q5_high_bit(const uint8_t qh[4], int j) {
    uint32_t h;
    std::memcpy(&h, qh, 4);
    return int((h >> j) & 1u) << 4;
}

void dequant_q5_0(const block_q5_0* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += QK5_0) {
        const float d = fp16_to_f32(b[i].d);
        for (int j = 0; j < QK5_0 / 2; ++j) {
            y[j] = float(((b[i].qs[j] & 0x0f) | q5_high_bit(b[i].qh, j)) - 16) * d;
            y[j + 16] = float(((b[i].qs[j] >> 4) | q5_high_bit(b[i].qh, j + 16)) - 16) * d;
        }
    }
}

void dequant_q5_1(const block_q5_1* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += QK5_1) {
        const float d = fp16_to_f32(b[i].d), m = fp16_to_f32(b[i].m);
        for (int j = 0; j < QK5_1 / 2; ++j) {
            y[j] = float((b[i].qs[j] & 0x0f) | q5_high_bit(b[i].qh, j)) * d + m;
            y[j + 16] = float((b[i].qs[j] >> 4) | q5_high_bit(b[i].qh, j + 16)) * d + m;
        }
    }
}

void dequant_q8_0(const block_q8_0* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += QK8_0) {
        const float d = fp16_to_f32(b[i].d);
        for (int j = 0; j < QK8_0; ++j) y[j] = float(b[i].qs[j]) * d;
    }
}

void dequant_q8_1(const block_q8_1* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += QK8_1) {
        const float d = fp16_to_f32(b[i].d);
        for (int j = 0; j < QK8_1; ++j) y[j] = float(b[i].qs[j]) * d;
    }
}

void dequant_q2_K(const block_q2_K* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_f32(b[i].d), dmin = fp16_to_f32(b[i].dmin);
        int group = 0;
        for (int half = 0; half < 2; ++half) {
            const uint8_t* q = b[i].qs + 32 * half;
            for (int shift = 0; shift < 8; shift += 2) {
                for (int part = 0; part < 2; ++part, ++group) {
                    const uint8_t sc = b[i].scales[group];
                    const float dl = d * float(sc & 0x0f), ml = dmin * float(sc >> 4);
                    for (int l = 0; l < 16; ++l) *y++ = dl * float((q[l + 16 * part] >> shift) & 3) - ml;
                }
            }
        }
    }
}

void dequant_q3_K(const block_q3_K* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_f32(b[i].d);
        int scales[16];
        q3_K_scales(b[i].scales, scales);
        int group = 0;
        uint8_t mask = 1;
        for (int half = 0; half < 2; ++half) {
            const uint8_t* q = b[i].qs + 32 * half;
            for (int shift = 0; shift < 8; shift += 2, mask <<= 1) {
                for (int part = 0; part < 2; ++part, ++group) {
                    const float dl = d * float(scales[group]);
                    for (int l = 0; l < 16; ++l) {
                        const int k = l + 16 * part;
                        const int v = ((q[k] >> shift) & 3) - ((b[i].hmask[k] & mask) ? 0 : 4);
                        *y++ = dl * float(v);
                    }
                }
            }
        }
    }
}

// Q4_K and Q5_K: 8 groups of 32, x = d * scale * q - dmin * min; Q5_K's fifth bit
// of element l of group g is bit g of qh[l] (qh is null for Q4_K).
void dequant_k_affine(uint16_t d16, uint16_t dmin16, const uint8_t* scales, const uint8_t* qs, const uint8_t* qh, float* y) {
    const float d = fp16_to_f32(d16), dmin = fp16_to_f32(dmin16);
    for (int g = 0; g < 8; ++g) {
        uint8_t sc, m;
        k4_scale_min(g, scales, sc, m);
        const float dl = d * sc, ml = dmin * m;
        const uint8_t* q = qs + 32 * (g / 2);
        const int shift = 4 * (g % 2);
        for (int l = 0; l < 32; ++l) {
            const int high = qh ? ((qh[l] >> g) & 1) << 4 : 0;
            *y++ = dl * float(((q[l] >> shift) & 0x0f) + high) - ml;
        }
    }
}

void dequant_q4_K(const block_q4_K* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += QK_K) dequant_k_affine(b[i].d, b[i].dmin, b[i].scales, b[i].qs, nullptr, y);
}

void dequant_q5_K(const block_q5_K* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += QK_K) dequant_k_affine(b[i].d, b[i].dmin, b[i].scales, b[i].qs, b[i].qh, y);
}

void dequant_q6_K(const block_q6_K* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_f32(b[i].d);
        for (int e = 0; e < QK_K; ++e) {
            const int group = 8 * (e / 128) + (e % 128) / 16;
            *y++ = d * float(b[i].scales[group]) * float(q6_K_value(b[i], e) - 32);
        }
    }
}

void dequant_q8_K(const block_q8_K* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i)
        for (int j = 0; j < QK_K; ++j) *y++ = b[i].d * float(b[i].qs[j]);
}

void dequant_iq4_nl(const block_iq4_nl* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += QK4_0) {
        const float d = fp16_to_f32(b[i].d);
        for (int j = 0; j < QK4_0 / 2; ++j) {
            y[j] = d * float(kIQ4Values[b[i].qs[j] & 0x0f]);
            y[j + QK4_0 / 2] = d * float(kIQ4Values[b[i].qs[j] >> 4]);
        }
    }
}

void dequant_iq4_xs(const block_iq4_xs* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_f32(b[i].d);
        for (int g = 0; g < QK_K / 32; ++g, y += 32) {
            const float dl = d * float(iq4_xs_scale(b[i], g));
            for (int j = 0; j < 16; ++j) {
                y[j] = dl * float(kIQ4Values[b[i].qs[16 * g + j] & 0x0f]);
                y[j + 16] = dl * float(kIQ4Values[b[i].qs[16 * g + j] >> 4]);
            }
        }
    }
}

// Index of the codebook value nearest to v (ties to the lower): the count of midpoints below v.
int iq4_nearest(float v) {
    static const auto mids = [] {
        std::array<float, 15> m{};
        for (int k = 0; k < 15; ++k) m[size_t(k)] = 0.5f * (float(kIQ4Values[k]) + float(kIQ4Values[k + 1]));
        return m;
    }();
    return int(std::lower_bound(mids.begin(), mids.end(), v) - mids.begin());
}

// The scale of a group of 32 values on the IQ4 codebook with the least squared error, from
// candidates around the one that maps the value of largest magnitude to -127.
float iq4_group_scale(const float* x) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; ++j)
        if (std::fabs(x[j]) > amax) { amax = std::fabs(x[j]); max = x[j]; }
    if (amax == 0.0f) return 0.0f;
    float best_d = max / -127.0f, best_err = INFINITY;
    for (int k = -8; k <= 8; ++k) {
        const float d = max / (-127.0f + 2.0f * float(k));
        float err = 0.0f;
        for (int j = 0; j < 32; ++j) {
            const float e = x[j] - d * float(kIQ4Values[iq4_nearest(x[j] / d)]);
            err += e * e;
        }
        if (err < best_err) { best_err = err; best_d = d; }
    }
    return best_d;
}

void iq4_pack_group(const float* x, float d, uint8_t qs[16]) {
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 16; ++j) qs[j] = uint8_t(iq4_nearest(x[j] * id) | (iq4_nearest(x[j + 16] * id) << 4));
}

// Packs the 6-bit scales and mins of 8 groups into the 12-byte Q4_K / Q5_K layout
// (the inverse of k4_scale_min).
void pack_k4_scales(const uint8_t sc[8], const uint8_t mn[8], uint8_t out[K_SCALE_SIZE]) {
    std::memset(out, 0, K_SCALE_SIZE);
    for (int j = 0; j < 8; ++j) {
        if (j < 4) {
            out[j] |= sc[j] & 63;
            out[j + 4] |= mn[j] & 63;
        } else {
            out[j + 4] = uint8_t((sc[j] & 0x0f) | ((mn[j] & 0x0f) << 4));
            out[j - 4] |= uint8_t((sc[j] >> 4) << 6);
            out[j] |= uint8_t((mn[j] >> 4) << 6);
        }
    }
}

// Shared by Q4_K and Q5_K: per group of 32, an affine map x ~ d*sc*q - dmin*m with
// q in 0..qmax; scales and mins quantised to 6 bits against the super-block d, dmin.
// Writes the quantised values (0..qmax) to q[256].
void quantize_k_affine(const float* x, int qmax, uint16_t& d_out, uint16_t& dmin_out,
                       uint8_t packed[K_SCALE_SIZE], uint8_t q[QK_K]) {
    float scale[8], minv[8];
    for (int g = 0; g < 8; ++g) {
        const float* xg = x + 32 * g;
        float lo = xg[0], hi = xg[0];
        for (int l = 1; l < 32; ++l) { lo = std::min(lo, xg[l]); hi = std::max(hi, xg[l]); }
        lo = std::min(lo, 0.0f);  // the min is stored as a non-negative offset
        scale[g] = (hi - lo) / float(qmax);
        minv[g] = -lo;
    }
    const float max_scale = *std::max_element(scale, scale + 8);
    const float max_min = *std::max_element(minv, minv + 8);
    const float d = max_scale / 63.0f, dmin = max_min / 63.0f;
    d_out = f32_to_fp16(d);
    dmin_out = f32_to_fp16(dmin);
    const float dq = fp16_to_f32(d_out), dminq = fp16_to_f32(dmin_out);
    uint8_t sc[8], mn[8];
    for (int g = 0; g < 8; ++g) {
        // Round the scale up so the quantised range still covers the group.
        sc[g] = uint8_t(dq > 0 ? std::min(63, int(std::ceil(scale[g] / dq - 1e-4f))) : 0);
        mn[g] = uint8_t(dminq > 0 ? std::min(63, nearest_int(minv[g] / dminq)) : 0);
    }
    pack_k4_scales(sc, mn, packed);
    for (int g = 0; g < 8; ++g) {
        const float step = dq * sc[g], offset = dminq * mn[g];
        for (int l = 0; l < 32; ++l) {
            const int v = step > 0 ? nearest_int((x[32 * g + l] + offset) / step) : 0;
            q[32 * g + l] = uint8_t(std::clamp(v, 0, qmax));
        }
    }
}

}  // namespace

// One block of 32 as llama.cpp's reference code makes Q8_0 / Q8_1: d = amax / 127,
// q = round-half-away(x / d); returns d and the sum of q.
static float quantize_q8_block_ref(const float* x, int8_t* qs, uint16_t& d16, int& sum) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    d16 = f32_to_fp16(d);
    sum = 0;
    for (int j = 0; j < 32; ++j) sum += qs[j] = int8_t(std::round(x[j] * id));
    return d;
}

void q3_K_scales(const uint8_t s[12], int out[16]) {
    for (int g = 0; g < 16; ++g) {
        const int low = g < 8 ? (s[g] & 0x0f) : (s[g - 8] >> 4);
        const int high = (s[8 + g % 4] >> (2 * (g / 4))) & 3;
        out[g] = (low | (high << 4)) - 32;
    }
}

void quantize_row_q8_0(const float* x, block_q8_0* y, int64_t n) {
    int sum;
    for (int64_t i = 0; i < n / QK8_0; ++i, x += QK8_0) quantize_q8_block_ref(x, y[i].qs, y[i].d, sum);
}

void quantize_row_q8_1(const float* x, block_q8_1* y, int64_t n) {
    for (int64_t i = 0; i < n / QK8_1; ++i, x += QK8_1) {
        int sum;
        const float d = quantize_q8_block_ref(x, y[i].qs, y[i].d, sum);
        y[i].s = f32_to_fp16(float(sum) * d);
    }
}

void quantize_row_q8_K(const float* x, block_q8_K* y, int64_t n) {
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK_K; ++j) {
            if (std::fabs(x[j]) > amax) { amax = std::fabs(x[j]); max = x[j]; }
        }
        if (amax == 0.0f) {
            std::memset(&y[i], 0, sizeof(block_q8_K));
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < QK_K; ++j) y[i].qs[j] = int8_t(std::min(127, nearest_int(iscale * x[j])));
        for (int g = 0; g < QK_K / 16; ++g) {
            int sum = 0;
            for (int l = 0; l < 16; ++l) sum += y[i].qs[16 * g + l];
            y[i].bsums[g] = int16_t(sum);
        }
        y[i].d = 1.0f / iscale;
    }
}

void quantize_row_q4_0(const float* x, block_q4_0* y, int64_t n) {
    for (int64_t i = 0; i < n / QK4_0; ++i, x += QK4_0) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK4_0; ++j) {
            if (amax < std::fabs(x[j])) { amax = std::fabs(x[j]); max = x[j]; }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = f32_to_fp16(d);
        for (int j = 0; j < QK4_0 / 2; ++j) {
            const uint8_t lo = uint8_t(std::min(15, int(int8_t(x[j] * id + 8.5f))));
            const uint8_t hi = uint8_t(std::min(15, int(int8_t(x[j + QK4_0 / 2] * id + 8.5f))));
            y[i].qs[j] = uint8_t(lo | (hi << 4));
        }
    }
}

// Q4_1 / Q5_1: an affine map over the block's range, as llama.cpp's reference quantisers.
template <typename Block, int kLevels>
void quantize_affine_32(const float* x, Block* y, int64_t n) {
    for (int64_t i = 0; i < n / 32; ++i, x += 32) {
        float lo = x[0], hi = x[0];
        for (int j = 1; j < 32; ++j) { lo = std::min(lo, x[j]); hi = std::max(hi, x[j]); }
        const float d = (hi - lo) / float(kLevels - 1);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = f32_to_fp16(d);
        y[i].m = f32_to_fp16(lo);
        uint32_t qh = 0;
        for (int j = 0; j < 16; ++j) {
            const int a = std::min(kLevels - 1, int((x[j] - lo) * id + 0.5f));
            const int b = std::min(kLevels - 1, int((x[j + 16] - lo) * id + 0.5f));
            y[i].qs[j] = uint8_t((a & 0x0f) | (b & 0x0f) << 4);
            qh |= uint32_t(a >> 4) << j | uint32_t(b >> 4) << (j + 16);
        }
        if constexpr (kLevels == 32) std::memcpy(y[i].qh, &qh, 4);
    }
}

void quantize_row_q4_1(const float* x, block_q4_1* y, int64_t n) { quantize_affine_32<block_q4_1, 16>(x, y, n); }
void quantize_row_q5_1(const float* x, block_q5_1* y, int64_t n) { quantize_affine_32<block_q5_1, 32>(x, y, n); }

// Q5_0: the value of largest magnitude maps to -16, as llama.cpp's reference quantiser.
void quantize_row_q5_0(const float* x, block_q5_0* y, int64_t n) {
    for (int64_t i = 0; i < n / 32; ++i, x += 32) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; ++j)
            if (amax < std::fabs(x[j])) { amax = std::fabs(x[j]); max = x[j]; }
        const float d = max / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = f32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < 16; ++j) {
            const int a = std::min(31, int(int8_t(x[j] * id + 16.5f)));
            const int b = std::min(31, int(int8_t(x[j + 16] * id + 16.5f)));
            y[i].qs[j] = uint8_t((a & 0x0f) | (b & 0x0f) << 4);
            qh |= uint32_t(a >> 4) << j | uint32_t(b >> 4) << (j + 16);
        }
        std::memcpy(y[i].qh, &qh, 4);
    }
}

// Q2_K: 16 groups of 16, x ~ d * sc * q - dmin * m with q in 0..3 and 4-bit sc, m (Rill's own
// search-free quantiser: any valid block reads the same in every engine).
void quantize_row_q2_K(const float* x, block_q2_K* y, int64_t n) {
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        float scale[16], minv[16];
        for (int g = 0; g < 16; ++g) {
            float lo = 0.0f, hi = x[16 * g];
            for (int l = 0; l < 16; ++l) { lo = std::min(lo, x[16 * g + l]); hi = std::max(hi, x[16 * g + l]); }
            scale[g] = (hi - lo) / 3.0f;
            minv[g] = -lo;
        }
        y[i].d = f32_to_fp16(*std::max_element(scale, scale + 16) / 15.0f);
        y[i].dmin = f32_to_fp16(*std::max_element(minv, minv + 16) / 15.0f);
        const float d = fp16_to_f32(y[i].d), dmin = fp16_to_f32(y[i].dmin);
        std::memset(y[i].qs, 0, sizeof(y[i].qs));
        for (int g = 0; g < 16; ++g) {
            const int sc = d > 0 ? std::min(15, int(std::ceil(scale[g] / d - 1e-4f))) : 0;
            const int m = dmin > 0 ? std::min(15, nearest_int(minv[g] / dmin)) : 0;
            y[i].scales[g] = uint8_t(sc | m << 4);
            const int half = g / 8, plane = (g % 8) / 2, part = g % 2;
            for (int l = 0; l < 16; ++l) {
                const float step = d * float(sc);
                const int q = step > 0 ? std::clamp(nearest_int((x[16 * g + l] + dmin * float(m)) / step), 0, 3) : 0;
                y[i].qs[32 * half + 16 * part + l] |= uint8_t(q << (2 * plane));
            }
        }
    }
}

// Q3_K: 16 groups of 16, x ~ d * (scale6 - 32) * q with q in -4..3 (2 low bits in qs, the third in hmask).
void quantize_row_q3_K(const float* x, block_q3_K* y, int64_t n) {
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        float s[16], max_abs = 0.0f;
        for (int g = 0; g < 16; ++g) {
            float amax = 0.0f, max = 0.0f;
            for (int l = 0; l < 16; ++l)
                if (std::fabs(x[16 * g + l]) > amax) { amax = std::fabs(x[16 * g + l]); max = x[16 * g + l]; }
            s[g] = max / -4.0f;
            max_abs = std::max(max_abs, std::fabs(s[g]));
        }
        y[i].d = f32_to_fp16(max_abs / 31.0f);
        const float d = fp16_to_f32(y[i].d);
        std::memset(y[i].scales, 0, sizeof(y[i].scales));
        std::memset(y[i].qs, 0, sizeof(y[i].qs));
        std::memset(y[i].hmask, 0, sizeof(y[i].hmask));
        for (int g = 0; g < 16; ++g) {
            const int sc = d > 0 ? std::clamp(nearest_int(s[g] / d), -32, 31) : 0;
            const int u = sc + 32;
            y[i].scales[g % 8] |= uint8_t((u & 15) << (4 * (g / 8)));
            y[i].scales[8 + g % 4] |= uint8_t((u >> 4) << (2 * (g / 4)));
            const int half = g / 8, plane = (g % 8) / 2, part = g % 2;
            for (int l = 0; l < 16; ++l) {
                const float step = d * float(sc);
                const int q = step != 0.0f ? std::clamp(nearest_int(x[16 * g + l] / step), -4, 3) + 4 : 4;
                const int k = 16 * part + l;
                y[i].qs[32 * half + k] |= uint8_t((q & 3) << (2 * plane));
                if (q & 4) y[i].hmask[k] |= uint8_t(1u << (4 * half + plane));
            }
        }
    }
}

void quantize_row_q4_K(const float* x, block_q4_K* y, int64_t n) {
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        uint8_t q[QK_K];
        quantize_k_affine(x, 15, y[i].d, y[i].dmin, y[i].scales, q);
        for (int pair = 0; pair < 4; ++pair)
            for (int l = 0; l < 32; ++l)
                y[i].qs[32 * pair + l] = uint8_t(q[64 * pair + l] | (q[64 * pair + 32 + l] << 4));
    }
}

void quantize_row_q5_K(const float* x, block_q5_K* y, int64_t n) {
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        uint8_t q[QK_K];
        quantize_k_affine(x, 31, y[i].d, y[i].dmin, y[i].scales, q);
        std::memset(y[i].qh, 0, sizeof(y[i].qh));
        for (int pair = 0; pair < 4; ++pair) {
            for (int l = 0; l < 32; ++l) {
                const uint8_t a = q[64 * pair + l], b = q[64 * pair + 32 + l];
                y[i].qs[32 * pair + l] = uint8_t((a & 0x0f) | ((b & 0x0f) << 4));
                if (a & 16) y[i].qh[l] |= uint8_t(1u << (2 * pair));
                if (b & 16) y[i].qh[l] |= uint8_t(2u << (2 * pair));
            }
        }
    }
}

void quantize_row_q6_K(const float* x, block_q6_K* y, int64_t n) {
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        // Per group of 16: signed scale s so that the extreme value maps to -32.
        float s[16];
        float max_abs_s = 0.0f;
        for (int g = 0; g < 16; ++g) {
            float amax = 0.0f, max = 0.0f;
            for (int l = 0; l < 16; ++l) {
                const float v = x[16 * g + l];
                if (std::fabs(v) > amax) { amax = std::fabs(v); max = v; }
            }
            s[g] = max / -32.0f;
            max_abs_s = std::max(max_abs_s, std::fabs(s[g]));
        }
        const float d = max_abs_s / 127.0f;
        y[i].d = f32_to_fp16(d);
        const float dq = fp16_to_f32(y[i].d);
        std::memset(y[i].ql, 0, sizeof(y[i].ql));
        std::memset(y[i].qh, 0, sizeof(y[i].qh));
        for (int g = 0; g < 16; ++g) y[i].scales[g] = int8_t(dq > 0 ? std::clamp(nearest_int(s[g] / dq), -127, 127) : 0);
        for (int e = 0; e < QK_K; ++e) {
            const int group = 8 * (e / 128) + (e % 128) / 16;  // same order as dequant_q6_K
            const float step = dq * float(y[i].scales[group]);
            const int v = step != 0.0f ? std::clamp(nearest_int(x[e] / step), -32, 31) + 32 : 32;
            const int half = e / 128, r = e % 128, l = r % 32, quarter = r / 32;
            uint8_t& ql = y[i].ql[64 * half + l + 32 * (quarter & 1)];
            ql |= uint8_t(quarter < 2 ? (v & 0x0f) : ((v & 0x0f) << 4));
            y[i].qh[32 * half + l] |= uint8_t((v >> 4) << (2 * quarter));
        }
    }
}

void quantize_row_iq4_nl(const float* x, block_iq4_nl* y, int64_t n) {
    for (int64_t i = 0; i < n / QK4_0; ++i, x += QK4_0) {
        y[i].d = f32_to_fp16(iq4_group_scale(x));
        iq4_pack_group(x, fp16_to_f32(y[i].d), y[i].qs);
    }
}

void quantize_row_iq4_xs(const float* x, block_iq4_xs* y, int64_t n) {
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        float s[8], max = 0.0f;
        for (int g = 0; g < 8; ++g) {
            s[g] = iq4_group_scale(x + 32 * g);
            if (std::fabs(s[g]) > std::fabs(max)) max = s[g];
        }
        y[i].d = f32_to_fp16(max / -32.0f);  // the largest group scale becomes -32 (the 6-bit range is -32..31)
        const float d = fp16_to_f32(y[i].d);
        y[i].scales_h = 0;
        std::memset(y[i].scales_l, 0, sizeof(y[i].scales_l));
        for (int g = 0; g < 8; ++g) {
            const int l = d != 0.0f ? std::clamp(nearest_int(s[g] / d), -32, 31) : 0;
            const int u = l + 32;
            y[i].scales_l[g / 2] |= uint8_t((u & 0x0f) << (4 * (g % 2)));
            y[i].scales_h |= uint16_t((u >> 4) << (2 * g));
            iq4_pack_group(x + 32 * g, d * float(l), y[i].qs + 16 * g);
        }
    }
}

void dequantize_row(TensorType t, const void* src, float* dst, int64_t n) {
    const int64_t nb = n / traits(t).block_size;
    switch (t) {
        case TensorType::F32: std::memcpy(dst, src, size_t(n) * 4); return;
        case TensorType::F16: {
            const auto* h = static_cast<const uint16_t*>(src);
            for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_f32(h[i]);
            return;
        }
        case TensorType::BF16: {
            const auto* h = static_cast<const uint16_t*>(src);
            for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(h[i]);
            return;
        }
        case TensorType::Q4_0: return dequant_q4_0(blocks<block_q4_0>(src), dst, nb);
        case TensorType::Q4_1: return dequant_q4_1(blocks<block_q4_1>(src), dst, nb);
        case TensorType::Q5_0: return dequant_q5_0(blocks<block_q5_0>(src), dst, nb);
        case TensorType::Q5_1: return dequant_q5_1(blocks<block_q5_1>(src), dst, nb);
        case TensorType::Q8_0: return dequant_q8_0(blocks<block_q8_0>(src), dst, nb);
        case TensorType::Q8_1: return dequant_q8_1(blocks<block_q8_1>(src), dst, nb);
        case TensorType::Q2_K: return dequant_q2_K(blocks<block_q2_K>(src), dst, nb);
        case TensorType::Q3_K: return dequant_q3_K(blocks<block_q3_K>(src), dst, nb);
        case TensorType::Q4_K: return dequant_q4_K(blocks<block_q4_K>(src), dst, nb);
        case TensorType::Q5_K: return dequant_q5_K(blocks<block_q5_K>(src), dst, nb);
        case TensorType::Q6_K: return dequant_q6_K(blocks<block_q6_K>(src), dst, nb);
        case TensorType::Q8_K: return dequant_q8_K(blocks<block_q8_K>(src), dst, nb);
        case TensorType::IQ4_NL: return dequant_iq4_nl(blocks<block_iq4_nl>(src), dst, nb);
        case TensorType::IQ4_XS: return dequant_iq4_xs(blocks<block_iq4_xs>(src), dst, nb);
        default: RILL_FAIL("cannot dequantise tensor type %s", std::string(type_name(t)).c_str());
    }
}

void quantize_row(TensorType t, const float* src, void* dst, int64_t n) {
    switch (t) {
        case TensorType::F32: std::memcpy(dst, src, size_t(n) * 4); return;
        case TensorType::F16: {
            auto* h = static_cast<uint16_t*>(dst);
            for (int64_t i = 0; i < n; ++i) h[i] = f32_to_fp16(src[i]);
            return;
        }
        case TensorType::BF16: {
            auto* h = static_cast<uint16_t*>(dst);
            for (int64_t i = 0; i < n; ++i) h[i] = f32_to_bf16(src[i]);
            return;
        }
        case TensorType::Q4_0: return quantize_row_q4_0(src, static_cast<block_q4_0*>(dst), n);
        case TensorType::Q8_0: return quantize_row_q8_0(src, static_cast<block_q8_0*>(dst), n);
        case TensorType::Q4_1: return quantize_row_q4_1(src, static_cast<block_q4_1*>(dst), n);
        case TensorType::Q5_0: return quantize_row_q5_0(src, static_cast<block_q5_0*>(dst), n);
        case TensorType::Q5_1: return quantize_row_q5_1(src, static_cast<block_q5_1*>(dst), n);
        case TensorType::Q2_K: return quantize_row_q2_K(src, static_cast<block_q2_K*>(dst), n);
        case TensorType::Q3_K: return quantize_row_q3_K(src, static_cast<block_q3_K*>(dst), n);
        case TensorType::Q8_1: return quantize_row_q8_1(src, static_cast<block_q8_1*>(dst), n);
        case TensorType::Q4_K: return quantize_row_q4_K(src, static_cast<block_q4_K*>(dst), n);
        case TensorType::Q5_K: return quantize_row_q5_K(src, static_cast<block_q5_K*>(dst), n);
        case TensorType::Q6_K: return quantize_row_q6_K(src, static_cast<block_q6_K*>(dst), n);
        case TensorType::Q8_K: return quantize_row_q8_K(src, static_cast<block_q8_K*>(dst), n);
        case TensorType::IQ4_NL: return quantize_row_iq4_nl(src, static_cast<block_iq4_nl*>(dst), n);
        case TensorType::IQ4_XS: return quantize_row_iq4_xs(src, static_cast<block_iq4_xs*>(dst), n);
        default: RILL_FAIL("cannot quantise to tensor type %s", std::string(type_name(t)).c_str());
    }
}

}  // namespace rill
