// Scalar reference kernels against naive double-precision formulations of the same math.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/half.h"
#include "kernels/ops_ref.h"
#include "kernels/quant_ref.h"
#include "tests/test_random.h"

using namespace rill;

namespace {

using test::gaussian;

double ulp_distance(float a, float b) { return std::fabs(double(a) - double(b)) / double(std::nextafter(std::fabs(b), INFINITY) - std::fabs(b)); }

}  // namespace

TEST(Ops, ExpPolyIsWithinTwoUlpOfExp) {
    EXPECT_EQ(exp_poly(0.0f), 1.0f);
    EXPECT_EQ(exp_poly(-INFINITY), 0.0f);
    EXPECT_EQ(exp_poly(-200.0f), 0.0f);
    EXPECT_TRUE(std::isinf(exp_poly(200.0f)));
    for (float x = -80.0f; x < 80.0f; x += 0.0137f) ASSERT_LE(ulp_distance(exp_poly(x), std::exp(x)), 2.0) << x;
    // |n| > 126: 2^n in two factors (subnormal results below -87.3, up to the largest float above 87.3).
    for (float x = -103.0f; x < -87.0f; x += 0.0071f) ASSERT_LE(ulp_distance(exp_poly(x), std::exp(x)), 2.0) << x;
    for (float x = 87.0f; x < 88.7f; x += 0.0013f) ASSERT_LE(ulp_distance(exp_poly(x), std::exp(x)), 2.0) << x;
    EXPECT_TRUE(std::isinf(exp_poly(88.8f)));
    EXPECT_TRUE(std::isnan(exp_poly(NAN)));
}

TEST(Ops, SoftmaxSiluSwiglu) {
    for (int64_t n : {1, 7, 16, 33, 64, 100}) {
        auto x = gaussian(size_t(n), uint32_t(n), 3.0f);
        std::vector<float> y = x;
        softmax(y.data(), n);
        double mx = -1e30, sum = 0;
        for (float v : x) mx = std::max(mx, double(v));
        for (float v : x) sum += std::exp(double(v) - mx);
        for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y[size_t(i)], std::exp(double(x[size_t(i)]) - mx) / sum, 1e-6);
        auto g = gaussian(size_t(n), 99, 2.0f), u = gaussian(size_t(n), 98);
        std::vector<float> s = g, w(static_cast<size_t>(n));
        silu_inplace(s.data(), n);
        swiglu(g.data(), u.data(), w.data(), n);
        for (int64_t i = 0; i < n; ++i) {
            const double ref = double(g[size_t(i)]) / (1.0 + std::exp(-double(g[size_t(i)])));
            EXPECT_NEAR(s[size_t(i)], ref, 1e-6 * (1 + std::fabs(ref)));
            EXPECT_NEAR(w[size_t(i)], ref * u[size_t(i)], 1e-6 * (1 + std::fabs(ref * u[size_t(i)])));
        }
    }
}

TEST(Ops, NormsMatchTheirDefinitions) {
    auto x = gaussian(256, 5, 2.0f), w = gaussian(256, 6);
    std::vector<float> y(256);
    rms_norm(x.data(), w.data(), y.data(), 256, 1e-6f);
    double ss = 0;
    for (float v : x) ss += double(v) * v;
    const double scale = 1.0 / std::sqrt(ss / 256 + 1e-6);
    for (int i = 0; i < 256; ++i) EXPECT_NEAR(y[size_t(i)], x[size_t(i)] * scale * w[size_t(i)], 1e-5);
    std::vector<float> z = x;
    l2_norm(z.data(), 256, 1e-6f);
    for (int i = 0; i < 256; ++i) EXPECT_NEAR(z[size_t(i)], x[size_t(i)] / std::sqrt(ss + 1e-6), 1e-6);
}

TEST(Ops, F32DotOrdersAreBothTheSum) {
    for (int64_t n : {16, 64, 128, 256, 80}) {
        auto a = gaussian(size_t(n), 1), b = gaussian(size_t(n), 2);
        double ref = 0;
        for (int64_t i = 0; i < n; ++i) ref += double(a[size_t(i)]) * b[size_t(i)];
        EXPECT_NEAR(dot_f32_lanes8(a.data(), b.data(), n), ref, 1e-5);
        EXPECT_NEAR(dot_f32_blocks32(a.data(), b.data(), n), ref, 1e-5);
    }
}

// Every weight format's dot product equals the dot of the dequantised weights with the
// dequantised (quantised) activations, up to float rounding.
class DotFormats : public ::testing::TestWithParam<TensorType> {};

TEST_P(DotFormats, MatchesDequantisedProduct) {
    const TensorType t = GetParam();
    const int64_t n = 512;
    auto w = gaussian(size_t(n), 11, 0.1f), x = gaussian(size_t(n), 12);
    std::vector<uint8_t> wq(size_t(row_bytes(t, n)));
    if (t == TensorType::Q4_1 || t == TensorType::Q5_0 || t == TensorType::Q5_1 || t == TensorType::Q2_K || t == TensorType::Q3_K) {
        std::mt19937 rng(7);  // no quantiser for these: random blocks with sane scales
        for (auto& byte : wq) byte = uint8_t(rng());
        const auto& tr = traits(t);
        for (size_t blk = 0; blk < wq.size() / tr.type_size; ++blk) {
            uint8_t* p = wq.data() + blk * tr.type_size;
            const uint16_t h = f32_to_fp16(0.01f);
            const size_t d_at = (t == TensorType::Q2_K) ? 80 : (t == TensorType::Q3_K) ? 108 : 0;
            std::memcpy(p + d_at, &h, 2);
            if (t == TensorType::Q4_1 || t == TensorType::Q5_1 || t == TensorType::Q2_K) std::memcpy(p + d_at + 2, &h, 2);
        }
    } else {
        quantize_row(t, w.data(), wq.data(), n);
    }
    std::vector<float> wd(static_cast<size_t>(n)), xd(static_cast<size_t>(n));
    dequantize_row(t, wq.data(), wd.data(), n);
    std::vector<uint8_t> acts;
    quantize_activations(t, x.data(), n, acts);
    const TensorType at = activation_type(t);
    if (at == TensorType::F32) xd = x;
    else dequantize_row(at, acts.data(), xd.data(), n);
    double ref = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) { ref += double(wd[size_t(i)]) * xd[size_t(i)]; mag += std::fabs(double(wd[size_t(i)]) * xd[size_t(i)]); }
    const float got = dot_row(t, wq.data(), at == TensorType::F32 ? static_cast<const void*>(x.data()) : acts.data(), n);
    EXPECT_NEAR(got, ref, 1e-5 * mag + 1e-6) << type_name(t);
    // matvec and a batched matmul give the same rows.
    float y1 = 0, y2[2] = {};
    std::vector<float> xx(x);
    xx.insert(xx.end(), x.begin(), x.end());
    matvec(t, wq.data(), 1, n, x.data(), &y1);
    matmul(t, wq.data(), 1, n, xx.data(), y2, 2);
    EXPECT_NEAR(y1, ref, 1e-5 * mag + 1e-6);
    EXPECT_EQ(y2[0], y2[1]);
    if (t != TensorType::F32 && t != TensorType::F16) {
        EXPECT_EQ(y1, y2[0]) << "quantised formats have one order whatever the batch";
    }
}

INSTANTIATE_TEST_SUITE_P(Weights, DotFormats,
                         ::testing::Values(TensorType::F32, TensorType::F16, TensorType::BF16, TensorType::Q4_0, TensorType::Q4_1,
                                           TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0, TensorType::Q2_K, TensorType::Q3_K,
                                           TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::IQ4_NL, TensorType::IQ4_XS),
                         [](const auto& info) { return std::string(type_name(info.param)); });

TEST(Ops, ActivationQuantisationMatchesLlamaCppCpuPath) {
    // 127/amax and round-half-to-even (the reference C code rounds half away from zero).
    float x[32] = {};
    x[0] = 127.0f;
    x[1] = 2.5f;
    x[2] = -2.5f;
    x[3] = 3.5f;
    std::vector<uint8_t> out;
    quantize_activations(TensorType::Q8_0, x, 32, out);
    const auto* b = reinterpret_cast<const block_q8_0*>(out.data());
    EXPECT_EQ(b->qs[0], 127);
    EXPECT_EQ(b->qs[1], 2);
    EXPECT_EQ(b->qs[2], -2);
    EXPECT_EQ(b->qs[3], 4);
}

TEST(Ops, RopePreservesNormAndIsIdentityAtZero) {
    auto h = gaussian(64, 3);
    for (bool neox : {false, true}) {
        std::vector<float> r = h;
        rope(r.data(), 64, 0, 10000.0f, neox, nullptr);
        for (int i = 0; i < 64; ++i) EXPECT_EQ(r[size_t(i)], h[size_t(i)]);
        rope(r.data(), 32, 17, 10000.0f, neox, nullptr);  // partial: dims 32..63 untouched
        double n0 = 0, n1 = 0;
        for (int i = 0; i < 64; ++i) { n0 += double(h[size_t(i)]) * h[size_t(i)]; n1 += double(r[size_t(i)]) * r[size_t(i)]; }
        EXPECT_NEAR(n0, n1, 1e-4);
        for (int i = 32; i < 64; ++i) EXPECT_EQ(r[size_t(i)], h[size_t(i)]);
    }
    // Adjacent pairs vs halves: position 1 rotates pair (0,1) or (0,16) by 1 radian.
    std::vector<float> a(32, 0.0f), b(32, 0.0f);
    a[0] = b[0] = 1.0f;
    rope(a.data(), 32, 1, 10000.0f, false, nullptr);
    rope(b.data(), 32, 1, 10000.0f, true, nullptr);
    EXPECT_NEAR(a[1], std::sin(1.0), 1e-6);
    EXPECT_NEAR(b[16], std::sin(1.0), 1e-6);
}

TEST(Ops, AttentionMatchesNaive) {
    const int64_t D = 64, n_kv = 37, stride = 2 * D, vstride = 128;
    auto q = gaussian(size_t(D), 1), k = gaussian(size_t(n_kv * stride), 2), v = gaussian(size_t(D * vstride), 3);
    std::vector<float> scores(128), out(static_cast<size_t>(D));
    for (bool batched : {false, true}) {
        attention_head(q.data(), k.data(), v.data(), n_kv, D, stride, vstride, 0.125f, batched, scores.data(), out.data());
        std::vector<double> p(static_cast<size_t>(n_kv));
        double mx = -1e30, sum = 0;
        for (int64_t t = 0; t < n_kv; ++t) {
            double s = 0;
            for (int64_t i = 0; i < D; ++i) s += double(q[size_t(i)]) * k[size_t(t * stride + i)];
            p[size_t(t)] = s * 0.125;
            mx = std::max(mx, p[size_t(t)]);
        }
        for (auto& x : p) sum += (x = std::exp(x - mx));
        for (int64_t i = 0; i < D; ++i) {
            double o = 0;
            for (int64_t t = 0; t < n_kv; ++t) o += p[size_t(t)] / sum * v[size_t(i * vstride + t)];
            EXPECT_NEAR(out[size_t(i)], o, 1e-5);
        }
    }
}

TEST(Ops, ConvStepIsACausalConvolution) {
    const int64_t C = 24;
    const int K = 4, T = 9;
    auto w = gaussian(size_t(C * K), 4), xs = gaussian(size_t(C * T), 5);
    std::vector<float> state(size_t(C * (K - 1)), 0.0f), out(static_cast<size_t>(C));
    for (int t = 0; t < T; ++t) {
        conv1d_causal_step(state.data(), &xs[size_t(t * C)], w.data(), C, K, out.data());
        for (int64_t c = 0; c < C; ++c) {
            double ref = 0;
            for (int k = 0; k < K; ++k) {
                const int src = t - (K - 1) + k;  // the last tap multiplies the current token
                if (src >= 0) ref += double(xs[size_t(src * C + c)]) * w[size_t(c * K + k)];
            }
            EXPECT_NEAR(out[size_t(c)], ref, 1e-5) << "t=" << t << " c=" << c;
        }
    }
}

TEST(Ops, DeltaRuleMatchesMatrixForm) {
    const int64_t dk = 64, dv = 64;
    std::vector<float> S(size_t(dk * dv), 0.0f), out(static_cast<size_t>(dv));
    std::vector<double> Sd(size_t(dk * dv), 0.0);  // Sd[i][j] = S[i][j] (k index i, v index j)
    for (int t = 0; t < 6; ++t) {
        auto q = gaussian(size_t(dk), 10 + t, 0.2f), k = gaussian(size_t(dk), 20 + t, 0.2f), v = gaussian(size_t(dv), 30 + t);
        const float g = -0.1f * float(t + 1), beta = 0.3f + 0.1f * float(t), scale = 0.125f;
        delta_rule_step(S.data(), S.data(), q.data(), k.data(), v.data(), g, beta, scale, dk, dv, out.data());
        for (auto& s : Sd) s *= std::exp(double(g));
        for (int64_t j = 0; j < dv; ++j) {
            double sk = 0;
            for (int64_t i = 0; i < dk; ++i) sk += Sd[size_t(i * dv + j)] * k[size_t(i)];
            const double d = (v[size_t(j)] - sk) * beta;
            for (int64_t i = 0; i < dk; ++i) Sd[size_t(i * dv + j)] += k[size_t(i)] * d;
        }
        for (int64_t j = 0; j < dv; ++j) {
            double o = 0;
            for (int64_t i = 0; i < dk; ++i) o += Sd[size_t(i * dv + j)] * q[size_t(i)];
            EXPECT_NEAR(out[size_t(j)], o * scale, 1e-5) << "t=" << t << " j=" << j;
        }
    }
}

// Rope's sine and cosine must round exactly as llama.cpp's libm (glibc's x86-64 FMA build) does.
// Where the tests run on that libm, compare with it bit for bit; everywhere, within 1 ulp of exact.
TEST(Ops, SinCosMatchGlibcOnRopeAnglesAndEverywhere) {
    std::vector<float> xs;
    for (float base : {10000.0f, 1000000.0f, 10000000.0f})
        for (int nrot : {16, 64, 128}) {
            const float ts = std::pow(base, -2.0f / float(nrot));
            for (int pos = 0; pos < 2048; pos += 3) {
                float th = float(pos);
                for (int i = 0; i < nrot / 2; ++i, th *= ts) xs.push_back(th);
            }
        }
    std::mt19937 rng(3);
    for (int i = 0; i < 200000; ++i) {
        uint32_t u = rng();
        float f;
        std::memcpy(&f, &u, 4);
        if (std::isfinite(f)) xs.push_back(f);
    }
#if defined(__GLIBC__) && defined(__x86_64__)
    const bool same_libm = __builtin_cpu_supports("fma") && __builtin_cpu_supports("avx2");
#else
    const bool same_libm = false;
#endif
    int bad = 0;
    for (float x : xs) {
        const float s = sinf_libm(x), c = cosf_libm(x);
        if (same_libm) {
            if ((s != std::sin(x) || c != std::cos(x)) && ++bad <= 3) ADD_FAILURE() << "x = " << x << ": differs from glibc";
        } else {
            const double es = std::sin(double(x)), ec = std::cos(double(x));
            if ((std::fabs(s - es) > 1.0 * std::fabs(std::nextafter(float(es), INFINITY) - float(es)) + 1e-45 ||
                 std::fabs(c - ec) > 1.0 * std::fabs(std::nextafter(float(ec), INFINITY) - float(ec)) + 1e-45) && ++bad <= 3)
                ADD_FAILURE() << "x = " << x << ": more than 1 ulp from exact";
        }
    }
    EXPECT_EQ(bad, 0) << xs.size() << " inputs, compared " << (same_libm ? "with glibc" : "with exact values");
    EXPECT_TRUE(std::isnan(sinf_libm(NAN)) && std::isnan(cosf_libm(INFINITY)));
}

// The soft-cap's tanh as Debian 12's glibc (2.36, fdlibm) computes it, which llama.cpp's tanhf is:
// inputs where that differs from the correctly rounded value give glibc's result; everywhere
// within 2 ulps of exact (fdlibm's bound); odd; the limits. (Checked once against glibc on all 2^32 floats.)
TEST(Ops, TanhfAsGlibc236) {
    const std::pair<float, float> glibc[] = {
        {0x1.0c34b8p-7f, 0x1.0c332ep-7f}, {0x1.4321f4p-7f, 0x1.431f44p-7f}, {0x1.67c01cp-7f, 0x1.67bc6ap-7f},
        {0x1.8c34b8p-4f, 0x1.8af98cp-4f}, {0x1.a7ab56p-4f, 0x1.a62a32p-4f}, {0x1.c321f4p-4f, 0x1.c15134p-4f},
        {0x1.18697p+0f, 0x1.98ffbp-1f}, {0x1.2190fap+0f, 0x1.9f700cp-1f}, {0x1.8f6b72p+0f, 0x1.d4b6fp-1f},
        {0x1.d59a94p+0f, 0x1.e687a8p-1f}};
    for (const auto& [x, y] : glibc) {
        EXPECT_EQ(tanhf_libm(x), y) << std::hexfloat << x;
        EXPECT_NE(y, float(std::tanh(double(x)))) << "not a point where glibc differs from exact";
        EXPECT_EQ(tanhf_libm(-x), -y);
    }
    int bad = 0;
    for (float x = -25.0f; x < 25.0f; x += 0.000731f) {
        const double e = std::tanh(double(x));
        const float ulp = std::fabs(std::nextafter(float(e), INFINITY) - float(e));
        if (std::fabs(tanhf_libm(x) - e) > 2 * ulp && ++bad <= 3) ADD_FAILURE() << "x = " << x << ": more than 2 ulps from exact";
    }
    EXPECT_EQ(bad, 0);
    EXPECT_EQ(tanhf_libm(0.0f), 0.0f);
    EXPECT_EQ(tanhf_libm(1e-30f), 1e-30f);
    EXPECT_EQ(tanhf_libm(30.0f), 1.0f);
    EXPECT_EQ(tanhf_libm(-INFINITY), -1.0f);
    EXPECT_TRUE(std::isnan(tanhf_libm(NAN)));
    EXPECT_EQ(expm1f_libm(-100.0f), -1.0f);
    EXPECT_EQ(expm1f_libm(100.0f), INFINITY);
}
