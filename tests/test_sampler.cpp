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
