// The engine's kernels (kernels/ops.h: SIMD128 or relaxed SIMD in wasm builds, the reference
// natively) against the scalar reference they implement. Where the build's madd is fused the
// results must be bit-identical; otherwise within float rounding of the reference. Integer
// parts are checked bit for bit in every build with inputs whose float steps are all exact.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/half.h"
#include "kernels/ops.h"
#include "kernels/ops_ref.h"
#include "kernels/quant_blocks.h"
#include "kernels/quant_ref.h"
#include "rill/error.h"
#include "tests/test_random.h"
#include "src/thread_pool.h"

using namespace rill;

namespace {

using test::gaussian;

// Tolerance for float results when madd rounds twice: relative to the size of the terms.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, const std::vector<float>& magnitude,
                  const std::string& what) {
    ASSERT_EQ(got.size(), want.size());
    int bad = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        if (kern::madd_is_fused()) {
            if (got[i] != want[i] && !(std::isnan(got[i]) && std::isnan(want[i])) && ++bad <= 3)
                ADD_FAILURE() << what << " [" << i << "]: " << got[i] << " != " << want[i] << " (bit-identical expected)";
        } else {
            const double tol = 2e-5 * (double(magnitude[i]) + 1e-6);
            if (!(std::fabs(double(got[i]) - double(want[i])) <= tol) && ++bad <= 3)
                ADD_FAILURE() << what << " [" << i << "]: " << got[i] << " vs " << want[i] << " (tol " << tol << ")";
        }
    }
    EXPECT_EQ(bad, 0) << what;
}

// A weight matrix of the given type: quantised gaussian rows, or (random_bytes) arbitrary block
// bytes with sane scales, which reach corners quantisers avoid (-128 in Q8_0, every 6-bit scale).
std::vector<uint8_t> make_weights(TensorType t, int64_t rows, int64_t cols, uint32_t seed, bool random_bytes) {
    const uint64_t rb = row_bytes(t, uint64_t(cols));
    std::vector<uint8_t> w(static_cast<size_t>(rb * uint64_t(rows)));
    if (!random_bytes) {
        const auto f = gaussian(size_t(rows * cols), seed, 0.5f);
        for (int64_t r = 0; r < rows; ++r) quantize_row(t, f.data() + r * cols, w.data() + uint64_t(r) * rb, cols);
        return w;
    }
    std::mt19937 rng(seed);
    for (auto& b : w) b = uint8_t(rng());
    std::uniform_real_distribution<float> scale(-0.05f, 0.05f);
    const int64_t nblocks = int64_t(w.size() / traits(t).type_size);
    for (int64_t i = 0; i < nblocks; ++i) {
        uint8_t* blk = w.data() + uint64_t(i) * traits(t).type_size;
        auto put = [&](size_t off) { const uint16_t h = f32_to_fp16(scale(rng)); std::memcpy(blk + off, &h, 2); };
        switch (t) {
            case TensorType::Q4_0: case TensorType::Q8_0: case TensorType::Q5_0: case TensorType::IQ4_NL: case TensorType::IQ4_XS:
                put(0);
                break;
            case TensorType::Q3_K: put(offsetof(block_q3_K, d)); break;
            case TensorType::Q2_K: put(offsetof(block_q2_K, d)); put(offsetof(block_q2_K, dmin)); break;
            case TensorType::Q4_K: case TensorType::Q5_K: case TensorType::Q4_1: case TensorType::Q5_1: put(0); put(2); break;
            case TensorType::Q6_K: put(offsetof(block_q6_K, d)); break;
            case TensorType::F16: for (int64_t e = 0; e < cols; ++e) put(size_t(2 * e)); i = nblocks; break;
            default: break;
        }
    }
    if (t == TensorType::F16 || t == TensorType::BF16) {  // every element a sane half
        for (size_t e = 0; e < w.size() / 2; ++e) {
            const float v = scale(rng) * 20;
            const uint16_t h = t == TensorType::F16 ? f32_to_fp16(v) : uint16_t(f32_to_bits(v) >> 16);
            std::memcpy(&w[2 * e], &h, 2);
        }
    }
    return w;
}

// Sum of |w| |x| per output: the scale of the float rounding a result can carry.
std::vector<float> magnitudes(TensorType t, const std::vector<uint8_t>& w, int64_t rows, int64_t cols, const std::vector<float>& X,
                              int64_t n_tokens) {
    std::vector<float> m(static_cast<size_t>(rows * n_tokens)), row(static_cast<size_t>(cols));
    const uint64_t rb = row_bytes(t, uint64_t(cols));
    for (int64_t r = 0; r < rows; ++r) {
        dequantize_row(t, w.data() + uint64_t(r) * rb, row.data(), cols);
        for (int64_t tk = 0; tk < n_tokens; ++tk) {
            double s = 0;
            for (int64_t i = 0; i < cols; ++i) s += std::fabs(double(row[size_t(i)]) * X[size_t(tk * cols + i)]);
            m[size_t(tk * rows + r)] = float(s);
        }
    }
    return m;
}

const TensorType kWeightTypes[] = {TensorType::F32,  TensorType::F16,  TensorType::Q4_0,   TensorType::Q8_0,
                                   TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K,   TensorType::Q5_0,
                                   TensorType::Q3_K, TensorType::IQ4_NL, TensorType::IQ4_XS, TensorType::Q4_1,
                                   TensorType::Q5_1, TensorType::BF16, TensorType::Q2_K};

}  // namespace

TEST(Kernels, ReportWhichSetRuns) {
    std::printf("[ kernels  ] %s, madd %s\n", kern::kernel_set(), kern::madd_is_fused() ? "fused" : "rounded twice");
    SUCCEED();
}

// Every form of the byte dots the build has (relaxed SIMD: the fused relaxed dot and the i16 pair
// sums, kern::GroupDotForm), each against the reference.
#if defined(__wasm_relaxed_simd__)
const kern::GroupDotForm kDotForms[] = {kern::GroupDotForm::I32, kern::GroupDotForm::I16};
#else
const kern::GroupDotForm kDotForms[] = {kern::GroupDotForm::I32};
#endif

TEST(Kernels, MatmulMatchesReferenceForEveryFormatOrderBatchAndThreadCount) {
    ThreadPool pool2(2);
    const int64_t rows = 36, cols = 512;  // 36 rows: the 4-row kernels get a short final group per thread
    for (kern::GroupDotForm form : kDotForms)
    for (TensorType t : kWeightTypes) {
        kern::set_group_dot_form(form);
        for (bool random_bytes : {false, true}) {
            if (random_bytes && t == TensorType::F32) continue;
            const auto w = make_weights(t, rows, cols, 7u + uint32_t(t), random_bytes);
            for (int64_t n_tokens : {1, 3, 19}) {  // 19: past a Rows4 tile (16) and two 8-token row passes
                const auto X = gaussian(size_t(n_tokens * cols), 99u + uint32_t(n_tokens));
                const auto mag = magnitudes(t, w, rows, cols, X, n_tokens);
                for (SumOrder order : {SumOrder::Lanes, SumOrder::Rows}) {
                    std::vector<float> want(static_cast<size_t>(rows * n_tokens)), got(want.size()), got2(want.size());
                    matmul(t, w.data(), rows, cols, X.data(), want.data(), n_tokens, order);
                    kern::matmul(t, w.data(), rows, cols, X.data(), got.data(), n_tokens, order, nullptr);
                    kern::matmul(t, w.data(), rows, cols, X.data(), got2.data(), n_tokens, order, &pool2);
                    const std::string what = std::string(type_name(t)) + (random_bytes ? " random bytes" : " quantised") +
                                             " n=" + std::to_string(n_tokens) + (order == SumOrder::Rows ? " rows" : " lanes") +
                                             " dots " + kern::group_dot_form();
                    expect_close(got, want, mag, what + " 1 thread");
                    EXPECT_EQ(got, got2) << what << ": 2 threads differ from 1";
                }
            }
        }
    }
    kern::set_group_dot_form(kern::GroupDotForm::Auto);
}

// The layout a build prefers (Rows4 for row-order Q4_0, IQ4_NL and Q4_K, Q5Bits for Q5_0 and Q5_1, Q6Bytes for Q6_K in the
// SIMD builds, Paired16 for Q5_K, IQ4_XS and Q8_0 in the strict SIMD128 build) gives exactly what the plain layout gives: every format and
// order, batches across the kernel's token tile, 1 and 2 threads, both group-dot forms, and block scales of every kind
// (zero, subnormal, inf, nan) in the random bytes.
TEST(Kernels, RepackedLayoutGivesThePlainLayoutsResults) {
#if defined(__wasm_simd128__)
    for (TensorType t : {TensorType::Q4_0, TensorType::IQ4_NL, TensorType::Q4_K})
        ASSERT_EQ(kern::preferred_layout(t, 40, 512, SumOrder::Rows), WeightLayout::Rows4) << type_name(t);
    for (TensorType t : {TensorType::Q5_0, TensorType::Q5_1})
        ASSERT_EQ(kern::preferred_layout(t, 40, 512, SumOrder::Lanes), WeightLayout::Q5Bits) << type_name(t);
    ASSERT_EQ(kern::preferred_layout(TensorType::Q6_K, 40, 512, SumOrder::Lanes), WeightLayout::Q6Bytes);
#endif
#if defined(__wasm_simd128__) && !defined(__wasm_relaxed_simd__)
    for (TensorType t : {TensorType::Q5_K, TensorType::IQ4_XS, TensorType::Q8_0})
        ASSERT_EQ(kern::preferred_layout(t, 40, 512, SumOrder::Lanes), WeightLayout::Paired16) << type_name(t);
#endif
    const auto& forms = kDotForms;
    ThreadPool pool2(2);
    const int64_t rows = 40, cols = 512;
    int repacked = 0;
    const uint16_t special[] = {0x0000, 0x8000, 0x0001, 0x83ff, 0x0400, 0x7bff, 0x7c00, 0xfc00, 0x7e01, 0xfd55};
    for (TensorType t : kWeightTypes) {
        for (bool random_bytes : {false, true}) {
            if (random_bytes && t == TensorType::F32) continue;
            auto w = make_weights(t, rows, cols, 17u + uint32_t(t), random_bytes);
            if (random_bytes && (t == TensorType::Q4_0 || t == TensorType::IQ4_NL || t == TensorType::Q4_K)) {
                const size_t bs = traits(t).type_size;  // a special d (and dmin) in every 7th block
                for (size_t b = 3, i = 0; b < w.size() / bs; b += 7, ++i) {
                    std::memcpy(w.data() + b * bs, &special[i % 10], 2);
                    if (t == TensorType::Q4_K) std::memcpy(w.data() + b * bs + 2, &special[(i + 3) % 10], 2);
                }
            }
            for (SumOrder order : {SumOrder::Lanes, SumOrder::Rows}) {
                const WeightLayout layout = kern::preferred_layout(t, rows, cols, order);
                auto packed = w;
                kern::repack(layout, t, packed.data(), rows, cols);
                repacked += layout != WeightLayout::Plain;
                EXPECT_EQ(packed != w, layout != WeightLayout::Plain) << type_name(t);
                for (int64_t n_tokens : {1, 3, 19})
                for (kern::GroupDotForm form : forms) {
                    kern::set_group_dot_form(form);
                    const auto X = gaussian(size_t(n_tokens * cols), 5u + uint32_t(n_tokens));
                    std::vector<float> plain(static_cast<size_t>(rows * n_tokens)), got(plain.size()), got2(plain.size());
                    kern::matmul(t, w.data(), rows, cols, X.data(), plain.data(), n_tokens, order, nullptr);
                    kern::matmul(t, packed.data(), rows, cols, X.data(), got.data(), n_tokens, order, nullptr, layout);
                    kern::matmul(t, packed.data(), rows, cols, X.data(), got2.data(), n_tokens, order, &pool2, layout);
                    int differ = 0;
                    for (size_t i = 0; i < plain.size(); ++i) {
                        const bool same = std::isnan(plain[i]) ? std::isnan(got[i]) && std::isnan(got2[i])
                                                               : f32_to_bits(plain[i]) == f32_to_bits(got[i]) &&
                                                                     f32_to_bits(plain[i]) == f32_to_bits(got2[i]);
                        differ += !same;
                    }
                    EXPECT_EQ(differ, 0) << type_name(t) << (random_bytes ? " random bytes" : " quantised") << " n=" << n_tokens
                                         << " group dots " << kern::group_dot_form();
                }
            }
        }
    }
    kern::set_group_dot_form(kern::GroupDotForm::Auto);
#if defined(__wasm_relaxed_simd__)
    // Q4_0, IQ4_NL and Q4_K in row order, Q5_0, Q5_1 and Q6_K in both orders; quantised and random bytes
    EXPECT_EQ(repacked, 18);
#elif defined(__wasm_simd128__)
    EXPECT_EQ(repacked, 30);  // and Q5_K, IQ4_XS and Q8_0 in both orders
#else
    EXPECT_EQ(repacked, 0);
#endif
}

// plain_row gives back each row's bytes as the file held them from every layout that keeps rows
// apart (what embedding lookups read), and refuses Rows4, which interleaves them.
TEST(Kernels, PlainRowUndoesEveryRowKeepingLayout) {
    const int64_t rows = 8, cols = 512;
    int undone = 0;
    for (TensorType t : kWeightTypes) {
        for (SumOrder order : {SumOrder::Lanes, SumOrder::Rows}) {
            const WeightLayout layout = kern::preferred_layout(t, rows, cols, order);
            const auto w = make_weights(t, rows, cols, 29u + uint32_t(t), /*random_bytes=*/t != TensorType::F32);
            auto packed = w;
            kern::repack(layout, t, packed.data(), rows, cols);
            const uint64_t rb = row_bytes(t, uint64_t(cols));
            std::vector<uint8_t> row(static_cast<size_t>(rb));
            if (layout == WeightLayout::Rows4) {
                EXPECT_THROW(kern::plain_row(layout, t, packed.data(), cols, row.data()), Error) << type_name(t);
                continue;
            }
            undone += layout != WeightLayout::Plain;
            for (int64_t r = 0; r < rows; ++r) {
                kern::plain_row(layout, t, packed.data() + uint64_t(r) * rb, cols, row.data());
                EXPECT_TRUE(std::equal(row.begin(), row.end(), w.begin() + std::ptrdiff_t(uint64_t(r) * rb))) << type_name(t) << " row " << r;
            }
        }
    }
#if defined(__wasm_relaxed_simd__)
    EXPECT_EQ(undone, 6);  // Q5_0, Q5_1, Q6_K in both orders
#elif defined(__wasm_simd128__)
    EXPECT_EQ(undone, 12);  // and Q5_K, IQ4_XS, Q8_0
#else
    EXPECT_EQ(undone, 0);
#endif
}

// A matmul's result does not depend on the calls before it: the activations a matmul prepares are
// kept between calls (per thread) and resized for each, so a call after one of another type,
// width or batch (wider, narrower, widened for other kernels or not) must read only its own.
// Each case is computed alone first, then again inside a sequence that changes all three.
TEST(Kernels, MatmulDoesNotDependOnThePreviousCall) {
    struct Case {
        TensorType t;
        int64_t cols, n_tokens;
        SumOrder order;
        std::vector<uint8_t> w;
        std::vector<float> X, alone;
        WeightLayout layout = WeightLayout::Plain;
    };
    const int64_t rows = 24;
    std::vector<Case> cases;
    const std::pair<TensorType, SumOrder> kinds[] = {{TensorType::Q6_K, SumOrder::Lanes}, {TensorType::Q4_K, SumOrder::Rows},
                                                     {TensorType::Q4_0, SumOrder::Rows},  {TensorType::Q8_0, SumOrder::Lanes},
                                                     {TensorType::Q5_0, SumOrder::Lanes}, {TensorType::F16, SumOrder::Lanes},
                                                     {TensorType::IQ4_XS, SumOrder::Lanes}, {TensorType::Q4_1, SumOrder::Lanes}};
    uint32_t seed = 1;
    for (const auto& [t, order] : kinds)
        for (const auto& [cols, n] : {std::pair<int64_t, int64_t>{256, 1}, {2048, 9}, {768, 2}}) {
            Case c{t, cols, n, order, make_weights(t, rows, cols, seed, false), gaussian(size_t(n * cols), seed + 100), {}};
            c.layout = kern::preferred_layout(t, rows, cols, order);
            kern::repack(c.layout, t, c.w.data(), rows, cols);
            c.alone.resize(size_t(rows * n));
            ++seed;
            cases.push_back(std::move(c));
        }
    ThreadPool pool2(2);
    for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &pool2}) {
        const auto run = [&](const Case& c, float* out) {
            kern::matmul(c.t, c.w.data(), rows, c.cols, c.X.data(), out, c.n_tokens, c.order, pool, c.layout);
        };
        for (Case& c : cases) {
            run(cases[(&c - cases.data() + 7) % cases.size()], std::vector<float>(size_t(rows * 9)).data());  // some other call first
            run(c, c.alone.data());
        }
        std::mt19937 rng(11);
        for (int round = 0; round < 3; ++round) {
            std::vector<size_t> order(cases.size());
            for (size_t i = 0; i < order.size(); ++i) order[i] = i;
            std::shuffle(order.begin(), order.end(), rng);
            for (size_t i : order) {
                const Case& c = cases[i];
                std::vector<float> got(c.alone.size());
                run(c, got.data());
                int differ = 0;
                for (size_t k = 0; k < got.size(); ++k) differ += f32_to_bits(got[k]) != f32_to_bits(c.alone[k]);
                EXPECT_EQ(differ, 0) << type_name(c.t) << " cols " << c.cols << " n=" << c.n_tokens << (pool ? " 2 threads" : "");
            }
        }
    }
}

// checked_layout: a Q8_0 matrix as llama.cpp quantises it (no -128) is Q8Abs7 in the relaxed
// build, and multiplies exactly as in the plain layout; one -128 anywhere keeps it Plain. Other
// types and builds keep the layout they are given.
TEST(Kernels, CheckedLayoutOfQ8_0KnowsItsBytes) {
    const int64_t rows = 40, cols = 512;
    auto w = make_weights(TensorType::Q8_0, rows, cols, 23u, false);
#if defined(__wasm_relaxed_simd__)
    const WeightLayout want = WeightLayout::Q8Abs7;
#else
    const WeightLayout want = WeightLayout::Plain;
#endif
    ASSERT_EQ(kern::checked_layout(WeightLayout::Plain, TensorType::Q8_0, w.data(), rows, cols), want);
    ThreadPool pool2(2);
    for (int64_t n_tokens : {1, 3, 11}) {
        const auto X = gaussian(size_t(n_tokens * cols), 9u + uint32_t(n_tokens));
        std::vector<float> plain(size_t(rows * n_tokens)), got(plain.size());
        kern::matmul(TensorType::Q8_0, w.data(), rows, cols, X.data(), plain.data(), n_tokens, SumOrder::Lanes, nullptr);
        kern::matmul(TensorType::Q8_0, w.data(), rows, cols, X.data(), got.data(), n_tokens, SumOrder::Lanes, &pool2, want);
        for (size_t i = 0; i < plain.size(); ++i) ASSERT_EQ(f32_to_bits(plain[i]), f32_to_bits(got[i])) << "n=" << n_tokens << " i=" << i;
    }
    // One -128 in the last block of the last row.
    w[w.size() - 1] = 0x80;
    EXPECT_EQ(kern::checked_layout(WeightLayout::Plain, TensorType::Q8_0, w.data(), rows, cols), WeightLayout::Plain);
    auto q4 = make_weights(TensorType::Q4_0, rows, cols, 29u, false);
    EXPECT_EQ(kern::checked_layout(WeightLayout::Plain, TensorType::Q4_0, q4.data(), rows, cols), WeightLayout::Plain);
}

// Every float step exact: unit scales, small integer activations with 127 somewhere in each
// block (so the activation scale is exactly 1). Any difference is then an integer-part bug.
// Batches of 3 and 9 tokens reach the kernels' token groups and tiles, plain and repacked.
TEST(Kernels, IntegerPartsAreBitIdenticalInEveryBuild) {
    const int64_t rows = 8, cols = 512, max_tokens = 9;
    std::mt19937 rng(5);
    std::vector<float> X(static_cast<size_t>(cols * max_tokens));
    for (int64_t i = 0; i < cols * max_tokens; ++i) X[size_t(i)] = float(int(rng() % 7) - 3);
    for (int64_t b = 0; b < cols * max_tokens; b += 32) X[size_t(b + int64_t(rng() % 32))] = 127.0f;
    const uint16_t one = f32_to_fp16(1.0f);
    for (TensorType t : {TensorType::Q4_0, TensorType::Q8_0, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K,
                         TensorType::IQ4_NL, TensorType::IQ4_XS, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1}) {
        auto w = make_weights(t, rows, cols, 3u + uint32_t(t), true);
        const size_t bs = traits(t).type_size;
        for (size_t off = 0; off < w.size(); off += bs) {
            switch (t) {
                case TensorType::Q4_0: case TensorType::Q8_0: case TensorType::IQ4_NL: case TensorType::IQ4_XS:
                case TensorType::Q5_0:
                    std::memcpy(&w[off], &one, 2);
                    break;
                case TensorType::Q4_1: case TensorType::Q5_1:  // d = 1, m = 0: the offsets' float step stays exact
                    std::memcpy(&w[off], &one, 2);
                    std::memset(&w[off + 2], 0, 2);
                    break;
                case TensorType::Q4_K: case TensorType::Q5_K: std::memcpy(&w[off], &one, 2); std::memcpy(&w[off + 2], &one, 2); break;
                case TensorType::Q6_K:
                    std::memcpy(&w[off + offsetof(block_q6_K, d)], &one, 2);
                    for (int s = 0; s < 16; ++s) w[off + offsetof(block_q6_K, scales) + size_t(s)] = uint8_t(int8_t(int(rng() % 41) - 20));
                    break;
                default: break;
            }
        }
        for (SumOrder order : {SumOrder::Lanes, SumOrder::Rows})
        for (int64_t n_tokens : {1, 3, 9}) {
            std::vector<float> want(static_cast<size_t>(rows * n_tokens)), got(want.size()), got_packed(want.size());
            matmul(t, w.data(), rows, cols, X.data(), want.data(), n_tokens, order);
            kern::matmul(t, w.data(), rows, cols, X.data(), got.data(), n_tokens, order, nullptr);
            const WeightLayout layout = kern::preferred_layout(t, rows, cols, order);
            auto packed = w;
            kern::repack(layout, t, packed.data(), rows, cols);
            kern::matmul(t, packed.data(), rows, cols, X.data(), got_packed.data(), n_tokens, order, nullptr, layout);
            for (size_t i = 0; i < want.size(); ++i) {
                ASSERT_LT(std::fabs(want[i]), 16777216.0f) << "test inputs must keep sums exact";
                EXPECT_EQ(got[i], want[i]) << type_name(t) << " n=" << n_tokens << " [" << i << "]";
                EXPECT_EQ(got_packed[i], want[i]) << type_name(t) << " n=" << n_tokens << " [" << i << "], " << int(layout);
            }
        }
    }
}

TEST(Kernels, ElementwiseAndNormsMatchReference) {
    for (int64_t n : {16, 37, 1024}) {
        const auto x = gaussian(size_t(n), uint32_t(n), 4.0f), w = gaussian(size_t(n), 2);
        auto a = x, b = x;
        silu_inplace(a.data(), n);
        kern::silu_inplace(b.data(), n);
        std::vector<float> mag(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) mag[size_t(i)] = std::fabs(a[size_t(i)]) * 4;
        expect_close(b, a, mag, "silu");
        std::vector<float> s1(static_cast<size_t>(n)), s2(static_cast<size_t>(n));
        swiglu(x.data(), w.data(), s1.data(), n);
        kern::swiglu(x.data(), w.data(), s2.data(), n);
        for (int64_t i = 0; i < n; ++i) mag[size_t(i)] = std::fabs(s1[size_t(i)]) * 4;
        expect_close(s2, s1, mag, "swiglu");
        a = x, b = x;
        softmax(a.data(), n);
        kern::softmax(b.data(), n);
        for (int64_t i = 0; i < n; ++i) mag[size_t(i)] = a[size_t(i)] * 4;
        expect_close(b, a, mag, "softmax");
        rms_norm(x.data(), w.data(), a.data(), n, 1e-6f);
        kern::rms_norm(x.data(), w.data(), b.data(), n, 1e-6f);
        EXPECT_EQ(a, b) << "rms_norm (element-wise scaling is exact)";
        const float d1 = dot_f32_lanes8(x.data(), w.data(), n), d2 = kern::dot_f32_lanes8(x.data(), w.data(), n);
        const float e1 = dot_f32_blocks32(x.data(), w.data(), n), e2 = kern::dot_f32_blocks32(x.data(), w.data(), n);
        double m = 0;
        for (int64_t i = 0; i < n; ++i) m += std::fabs(double(x[size_t(i)]) * w[size_t(i)]);
        expect_close({d2, e2}, {d1, e1}, {float(m), float(m)}, "f32 dots");
    }
    // exp over the whole range the softmax can see, including under- and overflow
    std::vector<float> big;
    for (float v = -200.0f; v <= 100.0f; v += 0.37f) big.push_back(v);
    big.resize(big.size() - big.size() % 16);
    auto a = big, b = big;
    for (auto& v : a) v = v - 100.0f;
    b = a;
    // silu(x) = x / (1 + exp(-x)) runs the exp kernel on every block of 16.
    kern::silu_inplace(b.data(), int64_t(b.size()));
    silu_inplace(a.data(), int64_t(a.size()));
    std::vector<float> mag(a.size());
    for (size_t i = 0; i < a.size(); ++i) mag[i] = std::fabs(a[i]) * 4;
    expect_close(b, a, mag, "silu over exp's range");
}

TEST(Kernels, AttentionConvAndDeltaRuleMatchReference) {
    const int64_t D = 64, n_kv = 70, stride = 2 * D, v_stride = 128;
    const auto q = gaussian(size_t(D), 1), k = gaussian(size_t(n_kv * stride), 2), v = gaussian(size_t(D * v_stride), 3);
    for (bool batched : {false, true}) {
        std::vector<float> sc1(128), sc2(128), o1(static_cast<size_t>(D)), o2(static_cast<size_t>(D));
        attention_head(q.data(), k.data(), v.data(), n_kv, D, stride, v_stride, 0.125f, batched, sc1.data(), o1.data());
        kern::attention_head(q.data(), k.data(), v.data(), n_kv, D, stride, v_stride, 0.125f, batched, sc2.data(), o2.data());
        expect_close(o2, o1, std::vector<float>(size_t(D), 4.0f), batched ? "attention batched" : "attention");
        // A sliding window: the first 30 positions masked, and the same as attending to the rest.
        attention_head(q.data(), k.data(), v.data(), n_kv, D, stride, v_stride, 0.125f, batched, sc1.data(), o1.data(), 30);
        kern::attention_head(q.data(), k.data(), v.data(), n_kv, D, stride, v_stride, 0.125f, batched, sc2.data(), o2.data(), 30);
        expect_close(o2, o1, std::vector<float>(size_t(D), 4.0f), "attention in a window");
        for (int t = 0; t < 30; ++t) ASSERT_EQ(sc1[size_t(t)], 0.0f) << "masked position " << t << " has weight";
        std::vector<float> sub(static_cast<size_t>(D * v_stride)), o3(static_cast<size_t>(D));
        for (int64_t i = 0; i < D; ++i)
            for (int64_t t = 30; t < n_kv; ++t) sub[size_t(i * v_stride + t - 30)] = v[size_t(i * v_stride + t)];
        attention_head(q.data(), k.data() + 30 * stride, sub.data(), n_kv - 30, D, stride, v_stride, 0.125f, batched, sc1.data(), o3.data());
        for (int64_t i = 0; i < D; ++i) ASSERT_NEAR(o3[size_t(i)], o1[size_t(i)], 1e-5f * (std::fabs(o1[size_t(i)]) + 1.0f)) << "window vs alone, " << i;
    }
    {  // Several queries over one set of keys and values (the prefill's tiles): each exactly as alone
        const int64_t nq = 7, max_kv = 150;
        const auto kk = gaussian(size_t(max_kv * stride), 11), vv = gaussian(size_t(D * 192), 12), qq = gaussian(size_t(nq * D), 13);
        for (bool batched : {false, true}) {
            std::vector<AttentionQuery> qs;
            std::vector<float> outs(size_t(nq * D)), alone(static_cast<size_t>(D)), sc(size_t(nq * attention_scores_stride(max_kv))), sc1(256);
            for (int64_t i = 0; i < nq; ++i)  // causal lengths, one of them windowed
                qs.push_back({&qq[size_t(i * D)], max_kv - 20 * i, i == 3 ? 40 : 0, &outs[size_t(i * D)]});
            kern::attention_queries(qs.data(), nq, kk.data(), vv.data(), D, stride, 192, 0.125f, batched, sc.data());
            for (int64_t i = 0; i < nq; ++i) {
                kern::attention_head(qs[size_t(i)].q, kk.data(), vv.data(), qs[size_t(i)].n_kv, D, stride, 192, 0.125f, batched, sc1.data(),
                                     alone.data(), qs[size_t(i)].first);
                for (int64_t d = 0; d < D; ++d)
                    ASSERT_EQ(f32_to_bits(outs[size_t(i * D + d)]), f32_to_bits(alone[size_t(d)])) << "query " << i << " dim " << d << (batched ? " batched" : "");
            }
        }
    }
    {  // GEGLU and GELU between fp16 values: the rounding to fp16 (ties to even, subnormals, the +-10 edges),
       // the multiply by up (0 below -10 whatever up holds), NaN lanes, tails; each as the reference, bit for bit
        std::vector<float> x, up;
        for (uint32_t h = 0; h < 0x7c00; ++h) {
            const uint32_t lo = f32_to_bits(fp16_to_f32(uint16_t(h))), hi = f32_to_bits(fp16_to_f32(uint16_t(h + 1)));
            const uint32_t mid = lo + (hi - lo) / 2;  // exactly halfway: rounds to the even neighbour
            for (uint32_t b : {lo, mid - 1, mid, mid + 1, hi - 1})
                for (uint32_t s : {0u, 0x80000000u}) x.push_back(bits_to_f32(b | s));
        }
        for (float e : {10.0f, -10.0f, 65519.0f, 65520.0f, 1e30f, -1e30f, INFINITY, -INFINITY, NAN, -NAN, 0.0f, -0.0f})
            for (float d : {0.0f, 1e-6f, -1e-6f}) x.push_back(e + d);
        x.push_back(std::nextafter(10.0f, 0.0f));
        x.push_back(std::nextafter(-10.0f, 0.0f));
        x.push_back(1.0f);  // a tail of n % 4
        for (size_t i = 0; i < x.size(); ++i) up.push_back(i % 97 == 5 ? NAN : i % 89 == 3 ? INFINITY : float(int(i % 7) - 3) * 0.37f);
        std::vector<float> y(x.size()), y2(x.size());
        geglu(x.data(), up.data(), y.data(), int64_t(x.size()));
        kern::geglu(x.data(), up.data(), y2.data(), int64_t(x.size()));
        for (size_t i = 0; i < x.size(); ++i)
            ASSERT_EQ(f32_to_bits(y2[i]), f32_to_bits(y[i])) << "geglu at x = " << x[i] << " (bits " << f32_to_bits(x[i]) << "), up = " << up[i];
        gelu(x.data(), y.data(), int64_t(x.size()));
        kern::gelu(x.data(), y2.data(), int64_t(x.size()));
        for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(f32_to_bits(y2[i]), f32_to_bits(y[i])) << "gelu at x = " << x[i];
    }
    {  // GEGLU: ggml's table of fp16 GELU results; built with a correctly rounded tanh, equal to glibc's tanhf table
        std::vector<float> x(65536), one(65536, 1.0f), y(65536), y2(65536);
        for (size_t i = 0; i < x.size(); ++i) x[i] = fp16_to_f32(uint16_t(i));
        geglu(x.data(), one.data(), y.data(), int64_t(x.size()));
        kern::geglu(x.data(), one.data(), y2.data(), int64_t(x.size()));
        for (size_t i = 0; i < x.size(); ++i) {
            if (!std::isfinite(x[i])) continue;
            ASSERT_EQ(y2[i], y[i]) << "geglu kernel at fp16 " << i;
            const float xi = x[i];
            const float expect = xi <= -10.0f ? 0.0f : xi >= 10.0f ? xi
                : fp16_to_f32(f32_to_fp16(0.5f * xi * (1.0f + ::tanhf(0.79788456080286535587989211986876f * xi * std::fma(0.044715f * xi, xi, 1.0f)))));
#if !defined(__EMSCRIPTEN__)  // glibc's tanhf (as llama.cpp's table is built) is the native build's
            ASSERT_EQ(y[i], expect) << "GELU table entry " << i << " (x = " << xi << ")";
#else  // the table is built as natively (a double tanh), but this libm's tanhf may differ in the last bit
            if (y[i] != expect) ASSERT_NEAR(y[i], expect, std::fabs(expect) * 1e-3f + 1e-6f) << "GELU table entry " << i;
#endif
        }
    }
    const int64_t C = 22;
    const int K = 4;
    auto st1 = gaussian(size_t(C * (K - 1)), 4), st2 = st1;
    const auto x = gaussian(size_t(C), 5), w = gaussian(size_t(C * K), 6);
    std::vector<float> c1(static_cast<size_t>(C)), c2(static_cast<size_t>(C));
    conv1d_causal_step(st1.data(), x.data(), w.data(), C, K, c1.data());
    kern::conv1d_causal_step(st2.data(), x.data(), w.data(), C, K, c2.data());
    expect_close(c2, c1, std::vector<float>(size_t(C), 16.0f), "conv1d");
    EXPECT_EQ(st1, st2) << "conv state shift";

    {  // the q/k heads' L2 norms, four at a time: each row exactly as alone
        auto rows = gaussian(size_t(7 * 128), 14), alone = rows;
        l2_norm_rows(rows.data(), 7, 128, 1e-6f);
        for (int r = 0; r < 7; ++r) l2_norm(alone.data() + r * 128, 128, 1e-6f);
        EXPECT_EQ(rows, alone);
    }
    for (const int64_t dk : {128, 40}) {  // whole 64-lane blocks, and a tail
        const int64_t dv = 96;
        auto S1 = gaussian(size_t(dk * dv), 7, 0.1f), S2 = S1;
        auto qv = gaussian(size_t(dk), 8), kv = gaussian(size_t(dk), 9);
        l2_norm(qv.data(), dk, 1e-6f);
        l2_norm(kv.data(), dk, 1e-6f);
        const auto vv = gaussian(size_t(dv), 10);
        std::vector<float> r1(static_cast<size_t>(dv)), r2(static_cast<size_t>(dv));
        for (int step = 0; step < 3; ++step) {
            delta_rule_step(S1.data(), S1.data(), qv.data(), kv.data(), vv.data(), -0.3f, 0.7f, 0.088f, dk, dv, r1.data());
            kern::delta_rule_step(S2.data(), S2.data(), qv.data(), kv.data(), vv.data(), -0.3f, 0.7f, 0.088f, dk, dv, r2.data());
        }
        const std::string what = "delta rule dk=" + std::to_string(dk);
        expect_close(r2, r1, std::vector<float>(size_t(dv), 4.0f), what + " read-out");
        expect_close(S2, S1, std::vector<float>(S1.size(), 4.0f), what + " state");
        // Out of place (the verify batch's checkpoints): the same state and read-out, the input untouched.
        const auto S_before = S2;
        std::vector<float> S3(S2.size(), -1.0f), r3(static_cast<size_t>(dv));
        kern::delta_rule_step(S2.data(), S3.data(), qv.data(), kv.data(), vv.data(), -0.3f, 0.7f, 0.088f, dk, dv, r3.data());
        kern::delta_rule_step(S2.data(), S2.data(), qv.data(), kv.data(), vv.data(), -0.3f, 0.7f, 0.088f, dk, dv, r2.data());
        EXPECT_EQ(S3, S2) << what << " out of place";
        EXPECT_EQ(r3, r2) << what << " out of place";
        EXPECT_NE(S_before, S2);
    }
}

TEST(ThreadPool, RunsEveryIndexOnceAndIsReusable) {
    for (int n : {1, 2, 3}) {
        ThreadPool pool(n);
        for (int round = 0; round < 200; ++round) {
            std::vector<int> hits(size_t(n), 0);
            pool.run([&](int i, int nth) {
                ASSERT_EQ(nth, n);
                hits[size_t(i)]++;
            });
            for (int h : hits) ASSERT_EQ(h, 1);
        }
    }
    EXPECT_THROW(ThreadPool(0), std::exception);
}
