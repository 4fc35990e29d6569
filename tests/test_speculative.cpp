// Speculative decoding with Qwen 3.5's MTP head: greedy output identical to plain decoding
// (every layout that carries MTP, any draft count, drafts right, wrong and mixed, so rollback is
// exercised at every position), the sampled distribution unchanged (the acceptance rule alone
// and through the whole generator), and the rollback and MTP bookkeeping around it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "rill/error.h"
#include "src/context.h"
#include "src/generator.h"
#include "src/model.h"
#include "src/synth.h"
#include "test_paths.h"

using namespace rill;

namespace {

std::string temp_path(const std::string& name) {
    const char* dir = std::getenv("TMPDIR");
    return std::string(dir && *dir ? dir : "/tmp") + "/rill_spec_" + name + ".gguf";
}

// qwen35 with the MTP block: 4 layers (2 DeltaNet, 2 attention) 64 wide, or 2 layers 256 wide (K-quants),
// and the SPM vocabulary cut to its first 2,048 tokens, so that the head costs little.
std::shared_ptr<const Model> mtp_model(const std::string& layout, int width = 64) {
    static std::map<std::string, std::shared_ptr<const Model>> cache;
    const std::string key = layout + std::to_string(width);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
    SynthOptions o;
    o.arch = "qwen35";
    o.vocab_path = vocab_dir() + "/ggml-vocab-llama-spm.gguf";
    o.out_path = temp_path(key);
    o.seed = 11;
    o.mtp = true;
    o.vocab_size = 2048;
    if (layout == "f32") o.type = TensorType::F32;
    else if (layout == "q8_0") o.type = TensorType::Q8_0;
    else o.layout = layout;
    o.set = {{"full_attention_interval", "2"}};
    if (width == 256) o.set.insert({{"block_count", "2"}, {"feed_forward_length", "256"}});
    else
        o.set.insert({{"embedding_length", std::to_string(width)}, {"feed_forward_length", std::to_string(2 * width)},
                      {"ssm.inner_size", std::to_string(width)}, {"attention.key_length", "32"}, {"attention.value_length", "32"},
                      {"ssm.state_size", std::to_string(width / 4)}});
    synth_model(o);
    auto m = Model::load_file(o.out_path);
    std::remove(o.out_path.c_str());
    return cache[key] = m;
}

const std::vector<TokenId> kPrompt = {1, 450, 1996, 1354, 1701, 432, 1204, 975};

// Greedy tokens after kPrompt; src (if set) replaces the MTP drafts.
std::vector<TokenId> greedy(const std::shared_ptr<const Model>& m, int n, SpeculativeParams sp, DraftSource src = {},
                            GenerationStats* stats = nullptr) {
    Context ctx(m, 320);
    Sampler s({});
    Generator g(ctx, s, sp);
    if (src) g.set_draft_source(src);
    g.feed(kPrompt);
    std::vector<TokenId> out;
    for (int i = 0; i < n; ++i) out.push_back(g.next());
    if (stats) *stats = g.stats();
    return out;
}

SpeculativeParams fixed(int k) {
    SpeculativeParams sp;
    sp.draft_tokens = k;
    sp.adaptive = false;
    return sp;
}

SpeculativeParams off() {
    SpeculativeParams sp;
    sp.enabled = false;
    return sp;
}

// Drafts from a known continuation (the plain run's), each replaced by a wrong token when
// wrong(position) says so.
DraftSource replay(const std::vector<TokenId>& truth, int offset, std::function<bool(int)> wrong) {
    return [=](int pos, TokenId, int k) {
        std::vector<TokenId> d;
        for (int i = 1; i <= k; ++i) {
            const int j = pos + i - offset;  // index in truth of the token at position pos + i
            TokenId t = j >= 0 && j < int(truth.size()) ? truth[size_t(j)] : 0;
            if (wrong(pos + i)) t = (t + 1 + pos % 7) % 2048;
            d.push_back(t);
        }
        return d;
    };
}

}  // namespace

TEST(Speculative, GreedyIsPlainGreedyOnEveryLayoutAndDraftCount) {
    const int n = slow_build() ? 48 : 256;
    for (const std::string layout : {"f32", "q8_0", "q4_0", "q4_k_m"}) {
        SCOPED_TRACE(layout);
        const auto m = mtp_model(layout, layout == "q4_k_m" ? 256 : 64);
        ASSERT_NE(m->mtp(), nullptr);
        const auto plain = greedy(m, n, off());
        // The plain run's token at position p is plain[p - offset].
        const int offset = int(kPrompt.size());
        for (int k = 1; k <= SpeculativeParams::kMaxDraftTokens; ++k) {
            SCOPED_TRACE("MTP drafts, k = " + std::to_string(k));
            GenerationStats st;
            EXPECT_EQ(greedy(m, n, fixed(k), {}, &st), plain);
            EXPECT_GT(st.drafted, 0);
        }
        {
            SCOPED_TRACE("every draft wrong (rollback at every position), k = 2");
            GenerationStats st;
            EXPECT_EQ(greedy(m, n, fixed(2), replay(plain, offset, [](int) { return true; }), &st), plain);
            EXPECT_EQ(st.accepted, 0);
            EXPECT_GT(st.drafted, n);
        }
        {
            SCOPED_TRACE("every draft right, k = 3");
            GenerationStats st;
            EXPECT_EQ(greedy(m, n, fixed(3), replay(plain, offset, [](int) { return false; }), &st), plain);
            EXPECT_GE(st.accepted, st.drafted - 3);  // the last step's drafts may run past n
            EXPECT_LT(st.steps, n / 3);
        }
        {
            SCOPED_TRACE("one draft in three wrong, k = 3");
            EXPECT_EQ(greedy(m, n, fixed(3), replay(plain, offset, [](int p) { return p % 3 == 0; })), plain);
        }
        if (layout == "q4_k_m") {
            SCOPED_TRACE("adaptive draft count");
            EXPECT_EQ(greedy(m, n, SpeculativeParams{}), plain);
        }
    }
}

// Stopping part-way through a verify batch's tokens and feeding more text must leave exactly
// what plain decoding leaves: the context, the MTP cache and the sampler's recent tokens.
TEST(Speculative, FeedAfterPartOfAnAcceptedRunMatchesPlainDecoding) {
    const auto m = mtp_model("q8_0");
    const auto run = [&](SpeculativeParams sp, DraftSource src) {
        Context ctx(m, 320);
        SamplerParams p;
        p.repeat_penalty = 1.3f;  // the penalties read the recent tokens: a dropped draft must not linger there
        Sampler s(p);
        Generator g(ctx, s, sp);
        if (src) g.set_draft_source(src);
        std::vector<TokenId> out;
        g.feed(kPrompt);
        for (int turn = 0; turn < 6; ++turn) {
            for (int i = 0; i < 5 + turn; ++i) out.push_back(g.next());
            g.feed({TokenId(300 + turn), TokenId(400 + turn)});
        }
        for (int i = 0; i < 20; ++i) out.push_back(g.next());
        return out;
    };
    const auto plain = run(off(), {});
    EXPECT_EQ(run(fixed(3), {}), plain);
    // Right drafts: every step accepts all three, so stops fall inside accepted runs.
    std::vector<TokenId> truth;  // the plain run's text, position by position
    {
        truth = kPrompt;
        size_t o = 0;
        for (int turn = 0; turn < 6; ++turn) {
            for (int i = 0; i < 5 + turn; ++i) truth.push_back(plain[o++]);
            truth.push_back(TokenId(300 + turn));
            truth.push_back(TokenId(400 + turn));
        }
        while (o < plain.size()) truth.push_back(plain[o++]);
    }
    EXPECT_EQ(run(fixed(3), replay(truth, 0, [](int) { return false; })), plain);
}

// A verify batch's rows are bit-identical to one-token evals (F32 weights have a batch order
// of their own, which as_single avoids), and rollback leaves the state of the kept token.
TEST(Speculative, VerifyRowsAreOneTokenEvalsAndRollbackKeepsTheirState) {
    for (const std::string layout : {"f32", "q8_0"}) {
        SCOPED_TRACE(layout);
        const auto m = mtp_model(layout);
        const int V = m->config().n_vocab;
        const auto row = [V](const float* l) { return std::vector<float>(l, l + V); };
        const std::vector<TokenId> next = {5, 6, 7, 8};
        Context single(m, 64);
        single.eval(kPrompt);
        std::vector<std::vector<float>> want;
        for (TokenId t : next) {
            single.eval({t});
            want.push_back(row(single.logits()));
        }
        for (bool as_single : {true, false}) {
            Context a(m, 64);
            a.eval(kPrompt);
            EvalOptions o;
            o.keep = Logits::All;
            o.checkpoints = true;
            o.as_single = as_single;
            a.eval(next, o);
            bool same = true;
            for (int i = 0; i < 4; ++i) same = same && row(a.logits(i)) == want[size_t(i)];
            if (as_single) EXPECT_TRUE(same);
            else if (layout == "f32") EXPECT_FALSE(same) << "the F32 batch order should differ (else this test shows nothing)";
            if (!as_single) continue;
            a.rollback(2);
            EXPECT_EQ(a.n_past(), int(kPrompt.size()) + 2);
            EXPECT_EQ(row(a.logits()), want[1]);
            Context b(m, 64);
            b.eval(kPrompt);
            b.eval({5});
            b.eval({6});
            a.eval({9});
            b.eval({9});
            EXPECT_EQ(row(a.logits()), row(b.logits()));
            EXPECT_THROW(a.rollback(1), Error);  // the last eval kept no checkpoints
        }
    }
}

TEST(Speculative, MtpChecksItsInputs) {
    const auto m = mtp_model("q8_0");
    Context ctx(m, 16);
    std::vector<float> h(size_t(m->config().n_embd), 0.0f);
    const TokenId bad = 1 << 20, ok = 5;
    EXPECT_THROW(ctx.mtp_eval(&bad, h.data(), 1, 0, Logits::Last), Error);
    EXPECT_THROW(ctx.mtp_eval(&ok, h.data(), 1, 16, Logits::Last), Error);
    EXPECT_THROW(ctx.mtp_logits(), Error);
    ctx.mtp_eval(&ok, h.data(), 1, 0, Logits::Last);
    const float* l = ctx.mtp_logits();
    for (int i = 0; i < m->config().n_vocab; ++i) ASSERT_TRUE(std::isfinite(l[i]));
    SpeculativeParams sp;
    sp.draft_tokens = 4;
    Sampler s({});
    EXPECT_THROW(Generator(ctx, s, sp), Error);
}

namespace {

// Pearson's chi-square of observed counts against probabilities (cells with p > 0).
double chi_square(const std::map<TokenId, int>& seen, const std::map<TokenId, double>& p, int n) {
    double x2 = 0;
    for (const auto& [t, q] : p) {
        const double e = q * n, o = seen.count(t) ? seen.at(t) : 0;
        x2 += (o - e) * (o - e) / e;
    }
    for (const auto& [t, c] : seen)
        if (!p.count(t)) return INFINITY;  // a token outside the support
    return x2;
}

}  // namespace

// The acceptance rule alone: whatever the draft (the most likely token, an unlikely one, one
// outside the top-k), the result is distributed as a plain draw. 200,000 draws per case: a 1%
// shift in a cell of p = 0.2 adds about 100 to the chi-square, whose 1e-6 quantile at 4 degrees
// of freedom is about 33.
TEST(Speculative, AcceptanceRuleKeepsTheDistribution) {
    const std::vector<float> logits = {1.0f, 0.2f, 2.0f, -1.0f, 0.7f, 1.5f, -3.0f, 0.0f};
    SamplerParams p;
    p.temperature = 0.8f;
    p.top_k = 5;
    p.seed = 7;
    // Exact: softmax(l / T) over the 5 largest logits (ids 2, 5, 0, 4, 1).
    std::map<TokenId, double> exact;
    double z = 0;
    for (TokenId t : {2, 5, 0, 4, 1}) z += exact[t] = std::exp(double(logits[size_t(t)]) / 0.8);
    for (auto& [t, q] : exact) q /= z;
    const int n = 200000;
    for (TokenId draft : {2, 1, 6}) {
        Sampler s(p);
        std::map<TokenId, int> seen;
        int accepted = 0;
        for (int i = 0; i < n; ++i) {
            bool acc = false;
            ++seen[s.sample_after_draft(logits.data(), 8, draft, &acc)];
            accepted += acc;
        }
        EXPECT_LT(chi_square(seen, exact, n), 33.0) << "draft " << draft;
        const double pd = exact.count(draft) ? exact[draft] : 0.0;
        EXPECT_NEAR(double(accepted) / n, pd, 5 * std::sqrt(pd * (1 - pd) / n) + 1e-9) << "draft " << draft;
    }
    // The detector detects: a rule that accepted the draft one time in a hundred more often fails.
    Sampler s(p);
    std::map<TokenId, int> seen;
    for (int i = 0; i < n; ++i) {
        bool acc = false;
        TokenId t = s.sample_after_draft(logits.data(), 8, 1, &acc);
        if (!acc && i % 100 == 0) t = 1;
        ++seen[t];
    }
    EXPECT_GT(chi_square(seen, exact, n), 33.0);
}

// Through the whole generator (verify batch, rollback, MTP bookkeeping): with temperature
// sampling and drafts that are often right, the tokens after a prompt follow the model's own
// distribution, computed exactly from plain evals.
TEST(Speculative, SampledTokensKeepTheModelsDistribution) {
    const auto m = mtp_model("q8_0", 64);
    const int V = m->config().n_vocab;
    SamplerParams sp;
    sp.temperature = 1.5f;
    sp.top_k = 2;
    sp.seed = 3;
    const std::vector<TokenId> prompt = {1, 450};
    // Exact distribution of (t1, t2, t3): top-2 softmax at each step.
    const auto top2 = [&](const std::vector<TokenId>& text) {
        Context c(m, 16);
        c.eval(text);
        const float* l = c.logits();
        std::vector<std::pair<float, TokenId>> v;
        for (int i = 0; i < V; ++i) v.push_back({l[i], TokenId(i)});
        std::partial_sort(v.begin(), v.begin() + 2, v.end(), [](auto& a, auto& b) { return a.first > b.first; });
        const double w0 = 1.0, w1 = std::exp(double(v[1].first - v[0].first) / 1.5);
        return std::vector<std::pair<TokenId, double>>{{v[0].second, w0 / (w0 + w1)}, {v[1].second, w1 / (w0 + w1)}};
    };
    std::map<TokenId, double> exact;  // by cell
    std::map<std::vector<TokenId>, TokenId> cell;  // (t1, t2, t3) -> cell
    std::map<std::vector<TokenId>, std::vector<std::pair<TokenId, double>>> dist;
    dist[{}] = top2(prompt);
    for (auto [t1, p1] : dist[{}]) {
        auto text = prompt;
        text.push_back(t1);
        dist[{t1}] = top2(text);
        for (auto [t2, p2] : dist[{t1}]) {
            auto text2 = text;
            text2.push_back(t2);
            dist[{t1, t2}] = top2(text2);
            for (auto [t3, p3] : dist[{t1, t2}]) {
                const TokenId id = TokenId(cell.size());
                cell[{t1, t2, t3}] = id;
                exact[id] = p1 * p2 * p3;
            }
        }
    }
    // Drafts: after t1 a draft of t2 and t3, each one of the two candidates at random (its own
    // random stream: a drafter may use anything but the verifier's future draws).
    uint64_t r = 12345;
    const auto coin = [&r] { r = r * 6364136223846793005ULL + 1442695040888963407ULL; return (r >> 33) & 1; };
    DraftSource src = [&](int, TokenId pending, int k) {
        std::vector<TokenId> d;
        std::vector<TokenId> prefix = {pending};
        for (int i = 0; i < k; ++i) {
            const auto it = dist.find(prefix);
            const TokenId t = it == dist.end() ? 0 : it->second[coin()].first;
            d.push_back(t);
            prefix.push_back(t);
        }
        return d;
    };
    const char* heavy = std::getenv("RILL_HEAVY");
    const int n = heavy && *heavy == '1' ? 60000 : slow_build() ? 1500 : 6000;
    Context ctx(m, 16);
    Sampler s(sp);
    SpeculativeParams spec = fixed(2);
    Generator g(ctx, s, spec);
    g.set_draft_source(src);
    std::map<TokenId, int> seen;
    for (int i = 0; i < n; ++i) {
        g.reset();
        g.feed(prompt);
        std::vector<TokenId> t;
        for (int j = 0; j < 3; ++j) t.push_back(g.next());
        ASSERT_TRUE(cell.count(t));
        ++seen[cell[t]];
    }
    EXPECT_GT(g.stats().accepted, n / 4);
    // 8 cells, 7 degrees of freedom: the 1e-5 quantile is about 37.
    EXPECT_LT(chi_square(seen, exact, n), 37.0);
}
