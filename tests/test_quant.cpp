// Weight formats: known-answer blocks (expected values worked out from the block
// layout with index arithmetic written independently of the dequantisers), and
// quantise/dequantise error bounds.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/half.h"
#include "kernels/quant_ref.h"

using namespace rill;

namespace {

// Deterministic bytes for a block, with fp16 fields overwritten by sane scales.
template <typename B>
B random_block(uint32_t seed) {
    B b;
    std::mt19937 rng(seed);
    auto* p = reinterpret_cast<uint8_t*>(&b);
    for (size_t i = 0; i < sizeof(B); ++i) p[i] = uint8_t(rng());
    return b;
}

uint16_t h(float f) { return f32_to_fp16(f); }

std::vector<float> deq(TensorType t, const void* b, int n) {
    std::vector<float> y(static_cast<size_t>(n));
    dequantize_row(t, b, y.data(), n);
    return y;
}

int bit(const uint8_t* bytes, int i) { return (bytes[i / 8] >> (i % 8)) & 1; }

}  // namespace

TEST(KnownAnswer, Q4_0) {
    block_q4_0 b{};
    b.d = h(0.5f);
    for (int j = 0; j < 16; ++j) b.qs[j] = uint8_t(j | ((15 - j) << 4));
    const auto y = deq(TensorType::Q4_0, &b, 32);
    for (int j = 0; j < 16; ++j) {
        EXPECT_EQ(y[j], (j - 8) * 0.5f);
        EXPECT_EQ(y[j + 16], (7 - j) * 0.5f);
    }
}

TEST(KnownAnswer, Q4_1) {
    block_q4_1 b{};
    b.d = h(0.25f);
    b.m = h(-1.0f);
    for (int j = 0; j < 16; ++j) b.qs[j] = uint8_t(j | (3 << 4));
    const auto y = deq(TensorType::Q4_1, &b, 32);
    for (int j = 0; j < 16; ++j) {
        EXPECT_EQ(y[j], j * 0.25f - 1.0f);
        EXPECT_EQ(y[j + 16], 3 * 0.25f - 1.0f);
    }
}

TEST(KnownAnswer, Q5_0AndQ5_1) {
    auto b0 = random_block<block_q5_0>(1);
    b0.d = h(0.125f);
    auto b1 = random_block<block_q5_1>(2);
    b1.d = h(0.5f);
    b1.m = h(2.0f);
    const auto y0 = deq(TensorType::Q5_0, &b0, 32);
    const auto y1 = deq(TensorType::Q5_1, &b1, 32);
    for (int e = 0; e < 32; ++e) {
        // element e: nibble from qs[e % 16] (low half for e < 16), fifth bit = bit e of qh
        const int q0 = ((e < 16 ? b0.qs[e] & 15 : b0.qs[e - 16] >> 4)) + 16 * bit(b0.qh, e);
        const int q1 = ((e < 16 ? b1.qs[e] & 15 : b1.qs[e - 16] >> 4)) + 16 * bit(b1.qh, e);
        EXPECT_EQ(y0[e], (q0 - 16) * 0.125f) << e;
        EXPECT_EQ(y1[e], q1 * 0.5f + 2.0f) << e;
    }
}

TEST(KnownAnswer, Q8_0AndQ8_1) {
    block_q8_0 b{};
    block_q8_1 c{};
    b.d = c.d = h(0.5f);
    for (int j = 0; j < 32; ++j) b.qs[j] = c.qs[j] = int8_t(j * 8 - 128);
    const auto y = deq(TensorType::Q8_0, &b, 32);
    const auto z = deq(TensorType::Q8_1, &c, 32);
    for (int j = 0; j < 32; ++j) {
        EXPECT_EQ(y[j], (j * 8 - 128) * 0.5f);
        EXPECT_EQ(z[j], y[j]);
    }
}

TEST(KnownAnswer, Q2_K) {
    auto b = random_block<block_q2_K>(3);
    b.d = h(0.5f);
    b.dmin = h(0.25f);
    const auto y = deq(TensorType::Q2_K, &b, 256);
    for (int e = 0; e < 256; ++e) {
        // 2 halves of 128; each half has 4 bit-planes (shift 0,2,4,6) of 32 bytes, split in two groups of 16.
        const int half = e / 128, r = e % 128, plane = r / 32, l = r % 32;
        const int q = (b.qs[32 * half + l] >> (2 * plane)) & 3;
        const int sc = b.scales[e / 16];
        EXPECT_EQ(y[e], 0.5f * float(sc & 15) * float(q) - 0.25f * float(sc >> 4)) << e;
    }
}

TEST(KnownAnswer, Q3_K) {
    auto b = random_block<block_q3_K>(4);
    b.d = h(0.5f);
    const auto y = deq(TensorType::Q3_K, &b, 256);
    for (int e = 0; e < 256; ++e) {
        const int half = e / 128, r = e % 128, plane = r / 32, l = r % 32;
        const int low = (b.qs[32 * half + l] >> (2 * plane)) & 3;
        const int hbit = (b.hmask[l] >> (4 * half + plane)) & 1;
        const int g = e / 16;
        // 6-bit scale: low 4 bits in bytes 0..7 (low nibble for g < 8, high nibble for g >= 8),
        // high 2 bits in bytes 8..11, byte 8 + g % 4, bit pair g / 4.
        const int s_lo = g < 8 ? (b.scales[g] & 15) : (b.scales[g - 8] >> 4);
        const int s_hi = (b.scales[8 + g % 4] >> (2 * (g / 4))) & 3;
        const int scale = (s_lo | (s_hi << 4)) - 32;
        EXPECT_EQ(y[e], 0.5f * float(scale) * float(low - (hbit ? 0 : 4))) << e;
    }
}

namespace {
// The 6-bit scale and min of group g of a Q4_K / Q5_K block, from the 12-byte layout:
// groups 0..3 in the low 6 bits of bytes 0..3 (scales) and 4..7 (mins); groups 4..7 keep
// their low 4 bits in bytes 8..11 (scale low nibble, min high nibble) and their top 2 bits
// in the top bits of bytes 0..3 (scales) and 4..7 (mins).
void scale_min(const uint8_t* s, int g, int& sc, int& mn) {
    if (g < 4) {
        sc = s[g] & 63;
        mn = s[g + 4] & 63;
    } else {
        sc = (s[g + 4] & 15) | ((s[g - 4] >> 6) << 4);
        mn = (s[g + 4] >> 4) | ((s[g] >> 6) << 4);
    }
}
}  // namespace

TEST(KnownAnswer, Q4_KAndQ5_K) {
    auto b4 = random_block<block_q4_K>(5);
    b4.d = h(0.5f);
    b4.dmin = h(0.25f);
    auto b5 = random_block<block_q5_K>(6);
    b5.d = h(0.25f);
    b5.dmin = h(0.125f);
    const auto y4 = deq(TensorType::Q4_K, &b4, 256);
    const auto y5 = deq(TensorType::Q5_K, &b5, 256);
    for (int e = 0; e < 256; ++e) {
        const int g = e / 32, chunk = e / 64, l = e % 32, high_nibble = g % 2;
        int sc, mn;
        scale_min(b4.scales, g, sc, mn);
        const int q4 = (b4.qs[32 * chunk + l] >> (4 * high_nibble)) & 15;
        EXPECT_EQ(y4[e], 0.5f * float(sc) * float(q4) - 0.25f * float(mn)) << e;
        scale_min(b5.scales, g, sc, mn);
        const int q5 = ((b5.qs[32 * chunk + l] >> (4 * high_nibble)) & 15) + 16 * ((b5.qh[l] >> g) & 1);
        EXPECT_EQ(y5[e], 0.25f * float(sc) * float(q5) - 0.125f * float(mn)) << e;
    }
}

TEST(KnownAnswer, Q6_K) {
    auto b = random_block<block_q6_K>(7);
    b.d = h(0.5f);
    const auto y = deq(TensorType::Q6_K, &b, 256);
    for (int e = 0; e < 256; ++e) {
        // Per half of 128: ql holds 64 bytes (low nibbles: elements 0..63, high nibbles: 64..127),
        // qh holds 32 bytes with 2 bits for each of the four 32-element quarters.
        const int half = e / 128, r = e % 128, quarter = r / 32, l = r % 32;
        const uint8_t ql = b.ql[64 * half + (r % 64)];
        const int low = r < 64 ? (ql & 15) : (ql >> 4);
        const int high = (b.qh[32 * half + l] >> (2 * quarter)) & 3;
        const int q = (low | (high << 4)) - 32;
        EXPECT_EQ(y[e], 0.5f * float(b.scales[e / 16]) * float(q)) << e;
    }
}

// IQ4: nibbles index the codebook {-127, -104, ..., 89, 113}; IQ4_XS adds 6-bit group scales.
TEST(KnownAnswer, IQ4_NL) {
    auto b = random_block<block_iq4_nl>(11);
    b.d = h(0.25f);
    const auto y = deq(TensorType::IQ4_NL, &b, 32);
    const int book[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
    for (int e = 0; e < 32; ++e) {
        const int q = e < 16 ? (b.qs[e] & 15) : (b.qs[e - 16] >> 4);
        EXPECT_EQ(y[e], 0.25f * float(book[q])) << e;
    }
}

TEST(KnownAnswer, IQ4_XS) {
    auto b = random_block<block_iq4_xs>(12);
    b.d = h(0.5f);
    const auto y = deq(TensorType::IQ4_XS, &b, 256);
    const int book[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
    for (int e = 0; e < 256; ++e) {
        const int g = e / 32, l = e % 32;
        const int ls = (((b.scales_l[g / 2] >> (4 * (g % 2))) & 15) | (((b.scales_h >> (2 * g)) & 3) << 4)) - 32;
        const int q = l < 16 ? (b.qs[16 * g + l] & 15) : (b.qs[16 * g + l - 16] >> 4);
        EXPECT_EQ(y[e], 0.5f * float(ls) * float(book[q])) << e;
    }
}

TEST(KnownAnswer, Q8_K) {
    auto b = random_block<block_q8_K>(8);
    b.d = 0.03125f;
    const auto y = deq(TensorType::Q8_K, &b, 256);
    for (int e = 0; e < 256; ++e) EXPECT_EQ(y[e], 0.03125f * float(b.qs[e]));
}

TEST(KnownAnswer, FloatFormats) {
    const float x[4] = {1.0f, -0.5f, 3.140625f, 0.0f};
    uint16_t f16[4], bf[4];
    quantize_row(TensorType::F16, x, f16, 4);
    quantize_row(TensorType::BF16, x, bf, 4);
    EXPECT_EQ(f16[0], 0x3c00);
    EXPECT_EQ(bf[1], 0xbf00);
    const auto y = deq(TensorType::F16, f16, 4), z = deq(TensorType::BF16, bf, 4);
    for (int i = 0; i < 4; ++i) { EXPECT_EQ(y[i], x[i]); EXPECT_EQ(z[i], x[i]); }
}

// Activation quantisers round exactly as llama.cpp's reference code.
TEST(ActivationQuant, Q8_0RoundsHalfAwayFromZero) {
    float x[32] = {};
    x[0] = 127.0f;  // amax 127: d = 1, so q = round(x)
    x[1] = 2.5f;
    x[2] = -2.5f;
    x[3] = 0.49f;
    block_q8_0 b;
    quantize_row_q8_0(x, &b, 32);
    EXPECT_EQ(fp16_to_f32(b.d), 1.0f);
    EXPECT_EQ(b.qs[0], 127);
    EXPECT_EQ(b.qs[1], 3);
    EXPECT_EQ(b.qs[2], -3);
    EXPECT_EQ(b.qs[3], 0);
    block_q8_1 c;
    quantize_row_q8_1(x, &c, 32);
    EXPECT_EQ(fp16_to_f32(c.s), 127.0f);  // d * (127 + 3 - 3)
}

TEST(ActivationQuant, Q8_0UsesUnroundedScale) {
    float x[32];
    for (int j = 0; j < 32; ++j) x[j] = 0.1f * float(j) - 1.7f;
    block_q8_0 b;
    quantize_row_q8_0(x, &b, 32);
    const float d = 1.7f / 127.0f;  // the unrounded scale, not fp16(d)
    for (int j = 0; j < 32; ++j) EXPECT_EQ(b.qs[j], int8_t(std::round(x[j] * (1.0f / d))));
    EXPECT_EQ(b.d, f32_to_fp16(d));
}

TEST(ActivationQuant, Q8_KRoundsHalfToEvenAgainstSignedMax) {
    float x[256] = {};
    x[0] = 127.0f;  // largest magnitude, positive: iscale = -1, so q = nearest(-x)
    x[1] = 2.5f;
    x[2] = 3.5f;
    x[3] = -1.5f;
    block_q8_K b;
    quantize_row_q8_K(x, &b, 256);
    EXPECT_EQ(b.d, -1.0f);
    EXPECT_EQ(b.qs[0], -127);
    EXPECT_EQ(b.qs[1], -2);
    EXPECT_EQ(b.qs[2], -4);
    EXPECT_EQ(b.qs[3], 2);
    EXPECT_EQ(b.bsums[0], -127 - 2 - 4 + 2);
    for (int g = 1; g < 16; ++g) EXPECT_EQ(b.bsums[g], 0);
}

TEST(WeightQuant, Q4_0MatchesReferenceRounding) {
    float x[32];
    for (int j = 0; j < 32; ++j) x[j] = float(j) - 16.0f;  // max magnitude -16: d = 2
    block_q4_0 b;
    quantize_row_q4_0(x, &b, 32);
    EXPECT_EQ(fp16_to_f32(b.d), 2.0f);
    const auto y = deq(TensorType::Q4_0, &b, 32);
    for (int j = 0; j < 32; ++j) EXPECT_NEAR(y[j], x[j], 1.0f + 1e-6f) << j;
}

// Round trips of Gaussian data: relative RMS error within what each format's bits allow.
struct Bound { TensorType type; double max_rel_rmse; };
class RoundTrip : public ::testing::TestWithParam<Bound> {};

TEST_P(RoundTrip, ErrorWithinBound) {
    const auto [type, bound] = GetParam();
    const int n = 256 * 16;
    std::mt19937 rng(42);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
    for (auto& v : x) v = dist(rng) * 0.05f;
    x[7] = 0.4f;  // an outlier, as real weights have
    std::vector<uint8_t> buf(size_t(row_bytes(type, uint64_t(n))));
    quantize_row(type, x.data(), buf.data(), n);
    dequantize_row(type, buf.data(), y.data(), n);
    double err = 0, ref = 0;
    for (int i = 0; i < n; ++i) { err += double(y[i] - x[i]) * (y[i] - x[i]); ref += double(x[i]) * x[i]; }
    const double rel = std::sqrt(err / ref);
    EXPECT_LT(rel, bound) << type_name(type);
    RecordProperty("rel_rmse", std::to_string(rel));
}

INSTANTIATE_TEST_SUITE_P(Formats, RoundTrip,
                         ::testing::Values(Bound{TensorType::F16, 5e-4}, Bound{TensorType::BF16, 4e-3},
                                           Bound{TensorType::Q8_0, 1e-2}, Bound{TensorType::Q8_1, 1e-2},
                                           Bound{TensorType::Q8_K, 1e-2}, Bound{TensorType::Q6_K, 4e-2},
                                           Bound{TensorType::Q5_K, 8e-2}, Bound{TensorType::Q4_K, 0.15},
                                           Bound{TensorType::Q4_0, 0.15}, Bound{TensorType::IQ4_NL, 0.12},
                                           Bound{TensorType::IQ4_XS, 0.12}, Bound{TensorType::Q4_1, 0.15},
                                           Bound{TensorType::Q5_0, 8e-2}, Bound{TensorType::Q5_1, 8e-2},
                                           Bound{TensorType::Q3_K, 0.3}, Bound{TensorType::Q2_K, 0.5}),
                         [](const auto& info) { return std::string(type_name(info.param.type)); });

TEST(WeightQuant, ZeroBlocksStayZero) {
    std::vector<float> x(256, 0.0f), y(256, 1.0f);
    for (TensorType t : {TensorType::Q4_0, TensorType::Q8_0, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::Q8_K,
                         TensorType::IQ4_NL, TensorType::IQ4_XS}) {
        std::vector<uint8_t> buf(size_t(row_bytes(t, 256)));
        quantize_row(t, x.data(), buf.data(), 256);
        dequantize_row(t, buf.data(), y.data(), 256);
        for (float v : y) ASSERT_EQ(v, 0.0f) << type_name(t);
    }
}

TEST(WeightQuant, UnsupportedTypesAreErrors) {
    float x[256] = {};
    uint8_t buf[512];
    EXPECT_THROW(quantize_row(TensorType::IQ2_XXS, x, buf, 256), std::runtime_error);
    EXPECT_THROW(dequantize_row(TensorType::IQ2_XXS, buf, x, 256), std::runtime_error);
}
