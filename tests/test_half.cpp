#include <gtest/gtest.h>

#include <cmath>

#include "kernels/half.h"

using namespace rill;

TEST(Half, KnownValues) {
    EXPECT_EQ(f32_to_fp16(1.0f), 0x3c00);
    EXPECT_EQ(f32_to_fp16(-2.0f), 0xc000);
    EXPECT_EQ(f32_to_fp16(0.5f), 0x3800);
    EXPECT_EQ(f32_to_fp16(65504.0f), 0x7bff);
    EXPECT_EQ(f32_to_fp16(65520.0f), 0x7c00);          // rounds to infinity
    EXPECT_EQ(f32_to_fp16(5.9604645e-8f), 0x0001);     // smallest subnormal
    EXPECT_EQ(f32_to_fp16(1.0f + 1.0f / 2048), 0x3c00);  // tie, even stays
    EXPECT_EQ(f32_to_fp16(1.0f + 3.0f / 2048), 0x3c02);  // tie, rounds to even
    EXPECT_EQ(fp16_to_f32(0x3555), 0.333251953125f);
    EXPECT_EQ(fp16_to_f32(0x0001), 5.9604645e-8f);
    EXPECT_TRUE(std::isnan(fp16_to_f32(f32_to_fp16(NAN))));
}

TEST(Half, EveryHalfRoundTrips) {
    for (uint32_t h = 0; h < 65536; ++h) {
        const float f = fp16_to_f32(uint16_t(h));
        if (std::isnan(f)) continue;
        ASSERT_EQ(f32_to_fp16(f), h) << "half 0x" << std::hex << h;
    }
}

TEST(Half, RoundsToNearest) {
    // Between neighbouring halves, a float rounds to the closer one.
    for (uint32_t h = 0x0001; h < 0x7bff; h += 37) {
        const float lo = fp16_to_f32(uint16_t(h)), hi = fp16_to_f32(uint16_t(h + 1));
        EXPECT_EQ(f32_to_fp16(lo + (hi - lo) * 0.49f), h);
        EXPECT_EQ(f32_to_fp16(lo + (hi - lo) * 0.51f), h + 1);
    }
}

TEST(BFloat16, KnownValues) {
    EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
    EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
    EXPECT_EQ(f32_to_bf16(bits_to_f32(0x3f808000u)), 0x3f80);  // tie to even
    EXPECT_EQ(f32_to_bf16(bits_to_f32(0x3f818000u)), 0x3f82);
    EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}
