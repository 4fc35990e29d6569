// Deterministic random inputs shared by the kernel tests.
#pragma once

#include <random>
#include <vector>

namespace rill::test {

// n samples of N(0, scale^2) from a seeded generator.
inline std::vector<float> gaussian(size_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

}  // namespace rill::test
