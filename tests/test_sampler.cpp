#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "src/sampler.h"

using namespace rill;

TEST(Sampler, GreedyIsArgmaxWithLowestIdOnTies) {
    Sampler s({});
    const std::vector<float> l = {0.1f, 2.0f, -1.0f, 2.0f};
    EXPECT_EQ(s.sample(l.data(), 4), 1);
}

TEST(Sampler, SeededAndDeterministic) {
    std::vector<float> l(50);
    for (int i = 0; i < 50; ++i) l[size_t(i)] = std::sin(float(i));
    SamplerParams p;
    p.temperature = 1.0f;
    p.top_k = 0;
    p.seed = 42;
    Sampler a(p), b(p);
    std::vector<TokenId> ra, rb;
    for (int i = 0; i < 64; ++i) { ra.push_back(a.sample(l.data(), 50)); rb.push_back(b.sample(l.data(), 50)); }
    EXPECT_EQ(ra, rb);
    p.seed = 43;
    Sampler c(p);
    std::vector<TokenId> rc;
    for (int i = 0; i < 64; ++i) rc.push_back(c.sample(l.data(), 50));
    EXPECT_NE(ra, rc);
    a.reset();
    EXPECT_EQ(a.sample(l.data(), 50), ra[0]);
}

TEST(Sampler, TemperatureSamplingFollowsTheDistribution) {
    const std::vector<float> l = {0.0f, std::log(2.0f), std::log(5.0f)};  // probabilities 1:2:5
    SamplerParams p;
    p.temperature = 1.0f;
    p.top_k = 0;
    p.seed = 7;
    Sampler s(p);
    std::map<TokenId, int> counts;
    const int n = 40000;
    for (int i = 0; i < n; ++i) counts[s.sample(l.data(), 3)]++;
    EXPECT_NEAR(counts[0] / double(n), 1.0 / 8, 0.01);
    EXPECT_NEAR(counts[1] / double(n), 2.0 / 8, 0.01);
    EXPECT_NEAR(counts[2] / double(n), 5.0 / 8, 0.01);
}

TEST(Sampler, TruncationsKeepOnlyWhatTheyShould) {
    const std::vector<float> l = {3.0f, 2.9f, 0.0f, -5.0f};
    SamplerParams p;
    p.temperature = 1.5f;
    p.seed = 1;
    p.top_k = 1;
    Sampler k1(p);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(k1.sample(l.data(), 4), 0);
    p.top_k = 0;
    p.min_p = 0.5f;  // token 2 has e^-3 of the top probability
    Sampler mp(p);
    for (int i = 0; i < 200; ++i) EXPECT_LT(mp.sample(l.data(), 4), 2);
    p.min_p = 0.0f;
    p.top_p = 0.3f;  // the top token alone already covers 30%
    Sampler tp(p);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(tp.sample(l.data(), 4), 0);
}

TEST(Sampler, PenaltiesDiscourageRecentTokens) {
    const std::vector<float> l = {1.0f, 0.9f};
    SamplerParams p;
    p.repeat_penalty = 1.5f;
    Sampler s(p);
    EXPECT_EQ(s.sample(l.data(), 2), 0);
    s.accept(0);
    EXPECT_EQ(s.sample(l.data(), 2), 1);  // 1.0 / 1.5 < 0.9
    SamplerParams q;
    q.presence_penalty = 0.2f;
    Sampler t(q);
    t.accept(0);
    EXPECT_EQ(t.sample(l.data(), 2), 1);
    EXPECT_THROW(Sampler(SamplerParams{0, 40, 0.0f}), std::runtime_error);
}

// The whole distribution without top-k or top-p is drawn without sorting it: min-p then keeps
// the same tokens, and the draws follow the same distribution.
TEST(Sampler, MinPWithoutOrderKeepsWhatTheOrderedPathKeeps) {
    const std::vector<float> l = {0.0f, 3.0f, std::log(0.5f) + 3.0f, -4.0f, 2.9f};
    SamplerParams p;
    p.temperature = 1.0f;
    p.top_k = 0;
    p.min_p = 0.4f;  // keeps 1 (1.0), 4 (0.905), 2 (0.5); not 0 (0.05) or 3
    p.seed = 9;
    Sampler s(p);
    std::map<TokenId, int> counts;
    const int n = 40000;
    for (int i = 0; i < n; ++i) counts[s.sample(l.data(), 5)]++;
    EXPECT_EQ(counts[0] + counts[3], 0);
    const double z = 1.0 + std::exp(-0.1) + 0.5;
    EXPECT_NEAR(counts[1] / double(n), 1.0 / z, 0.01);
    EXPECT_NEAR(counts[4] / double(n), std::exp(-0.1) / z, 0.01);
    EXPECT_NEAR(counts[2] / double(n), 0.5 / z, 0.01);
}

TEST(Sampler, LogitBiasFrequencyPenaltyAndLogprobs) {
    const std::vector<float> l = {1.0f, 0.5f, 0.0f};
    SamplerParams p;
    p.logit_bias = {{2, 2.0f}};
    EXPECT_EQ(Sampler(p).sample(l.data(), 3), 2);
    p.logit_bias = {{0, -INFINITY}, {2, -INFINITY}};  // banned: only token 1 is left
    p.temperature = 1.0f;
    p.top_k = 0;
    Sampler banned(p);
    for (int i = 0; i < 50; ++i) EXPECT_EQ(banned.sample(l.data(), 3), 1);
    p.logit_bias = {{0, -INFINITY}, {1, -INFINITY}, {2, -INFINITY}};
    EXPECT_THROW(Sampler(p).sample(l.data(), 3), std::runtime_error);
    p.logit_bias = {{0, NAN}};
    EXPECT_THROW(Sampler{p}, std::runtime_error);

    SamplerParams f;
    f.frequency_penalty = 0.3f;  // once: 0.7 > 0.5; twice: 0.4 < 0.5
    Sampler fs(f);
    fs.accept(0);
    EXPECT_EQ(fs.sample(l.data(), 3), 0);
    fs.accept(0);
    EXPECT_EQ(fs.sample(l.data(), 3), 1);

    SamplerParams g;
    g.logprobs = 2;
    g.logit_bias = {{1, 0.25f}};  // in the recorded distribution too
    Sampler gs(g);
    EXPECT_EQ(gs.sample(l.data(), 3), 0);
    const double z = std::log(std::exp(1.0) + std::exp(0.75) + std::exp(0.0));
    const TokenLogprobs& lp = gs.last_logprobs();
    EXPECT_EQ(lp.token, 0);
    EXPECT_NEAR(lp.logprob, 1.0 - z, 1e-5);
    ASSERT_EQ(lp.top.size(), 2u);
    EXPECT_EQ(lp.top[0].first, 0);
    EXPECT_EQ(lp.top[1].first, 1);
    EXPECT_NEAR(lp.top[1].second, 0.75 - z, 1e-5);
}
