// IEEE binary16 and bfloat16 conversions, exact and portable (no F16C needed).
// Rounding is to nearest, ties to even, as hardware converters do.
#pragma once

#include <cstdint>
#include <cstring>

namespace rill {

inline float bits_to_f32(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline uint32_t f32_to_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

inline float fp16_to_f32(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | (mant << 13));  // inf / nan
    if (exp != 0) return bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13));
    if (mant == 0) return bits_to_f32(sign);
    // subnormal: value = mant * 2^-24
    int e = -1;
    do { mant <<= 1; ++e; } while ((mant & 0x400) == 0);
    return bits_to_f32(sign | uint32_t(112 - e) << 23 | ((mant & 0x3ff) << 13));
}

inline uint16_t f32_to_fp16(float f) {
    const uint32_t x = f32_to_bits(f);
    const uint16_t sign = uint16_t((x >> 16) & 0x8000);
    const uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return uint16_t(sign | 0x7e00 | ((ax >> 13) & 0x3ff));  // nan, keep payload bits
    if (ax >= 0x477ff000u) return uint16_t(sign | 0x7c00);  // rounds to >= 65520: inf
    if (ax < 0x38800000u) {                                 // below the smallest normal: subnormal or zero
        // Adding 0.5 (2^-1) aligns the fp16 subnormal ulp (2^-24) with the float's last bit,
        // so the float adder performs the round-to-nearest-even for us.
        const float r = bits_to_f32(ax) + 0.5f;
        return uint16_t(sign | (f32_to_bits(r) - 0x3f000000u));
    }
    const uint32_t mant_odd = (ax >> 13) & 1;
    const uint32_t biased = ax - (112u << 23) + 0xfff + mant_odd;  // rebias exponent and round
    return uint16_t(sign | (biased >> 13));
}

inline float bf16_to_f32(uint16_t h) { return bits_to_f32(uint32_t(h) << 16); }

inline uint16_t f32_to_bf16(float f) {
    const uint32_t x = f32_to_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 64);  // quiet nan
    return uint16_t((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

}  // namespace rill
