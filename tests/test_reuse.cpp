// Prefix reuse across chat turns: a conversation whose every turn is the whole text rendered
// again (earlier replies changed as templates change them, a message edited, a reply
// regenerated) gives, turn after turn, the logits and tokens of evaluating each text from
// scratch, on a hybrid model (DeltaNet states restored from checkpoints) and an attention-only one
// (caches truncated), while evaluating only what is new.
#include <gtest/gtest.h>

#include <functional>
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

std::shared_ptr<const Model> model(const std::string& arch, bool mtp = false) {
    SynthOptions o;
    o.arch = arch;
    o.vocab_path = vocab_dir() + "/ggml-vocab-llama-spm.gguf";
    const char* dir = std::getenv("TMPDIR");
    o.out_path = std::string(dir && *dir ? dir : "/tmp") + "/rill_reuse_" + arch + (mtp ? "_mtp" : "") + ".gguf";
    o.seed = 21;
    o.type = TensorType::Q8_0;
    o.vocab_size = 2048;
    o.mtp = mtp;
    o.set = {{"embedding_length", "64"}, {"feed_forward_length", "128"}, {"attention.head_count", "2"},
             {"attention.head_count_kv", "1"}, {"block_count", "4"}};
    if (arch == "qwen35")
        o.set.insert({{"attention.key_length", "32"}, {"attention.value_length", "32"}, {"rope.dimension_count", "16"},
                      {"ssm.state_size", "16"}, {"ssm.group_count", "2"}, {"ssm.time_step_rank", "4"}, {"ssm.inner_size", "64"},
                      {"full_attention_interval", "2"}});
    synth_model(o);
    auto m = Model::load_file(o.out_path);
    std::remove(o.out_path.c_str());
    return m;
}

std::vector<TokenId> span(int from, int n) {
    std::vector<TokenId> v;
    for (int i = 0; i < n; ++i) v.push_back(TokenId(3 + (from * 37 + i * 11) % 2000));
    return v;
}

std::vector<float> row(const Context& c) { return std::vector<float>(c.logits(), c.logits() + c.n_vocab()); }

// One conversation, turn by turn: `reuse` (prefix reuse with checkpoints at the message boundary
// and the end of each prompt and reply) against a fresh context per turn.
void converse(const std::shared_ptr<const Model>& m, SpeculativeParams sp) {
    Context reused(m, 1024), fresh(m, 1024);
    Sampler s_reused({}), s_fresh({});
    Generator g(reused, s_reused, sp), f(fresh, s_fresh, sp);
    std::vector<TokenId> history = span(0, 20);  // the system prompt
    std::vector<std::vector<TokenId>> replies;
    int evaluated = 0, total = 0;
    for (int turn = 0; turn < 6; ++turn) {
        SCOPED_TRACE("turn " + std::to_string(turn));
        // The rendered text: the history, the new user message, then a generation prompt of 2
        // tokens. Earlier replies come back as templates render them: without their first 3
        // tokens (a thinking block dropped: the text diverges after the generation prompt), or
        // without the generation prompt's tokens (an empty thinking block the generation prompt
        // added: it diverges at the message boundary).
        std::vector<TokenId> text = span(0, 20);
        for (size_t i = 0; i < replies.size(); ++i) {
            const auto user = span(100 + int(i), 15);
            text.insert(text.end(), user.begin(), user.end());
            if (i % 2 == 0) {
                text.push_back(1999);
                text.push_back(1998);
                text.insert(text.end(), replies[i].begin() + 3, replies[i].end());
            } else {
                text.insert(text.end(), replies[i].begin(), replies[i].end());
            }
        }
        if (turn >= 4) text[30] = 7;  // an earlier message edited at turn 4: back to an older checkpoint
        const auto user = span(100 + turn, 15);
        text.insert(text.end(), user.begin(), user.end());
        const int boundary = int(text.size());
        text.push_back(1999);
        text.push_back(1998);

        const int kept = g.reuse(text);
        std::vector<TokenId> rest(text.begin() + kept, text.end());
        std::vector<int> marks;
        if (boundary - kept > 0 && boundary - kept < int(rest.size())) marks.push_back(boundary - kept);
        marks.push_back(int(rest.size()));
        g.feed(rest, marks);
        if (turn != 4) {  // the edit sends turn 4 back before every checkpoint
            evaluated += int(rest.size());
            total += int(text.size());
        }
        f.reset();
        f.feed(text);
        // The same logits: each chunk of >= 2 tokens sums as the whole batch does (quantised
        // products do not depend on the batch, nor does the recurrent scan).
        ASSERT_EQ(row(reused), row(fresh)) << "kept " << kept << " of " << text.size();
        std::vector<TokenId> a, b;
        for (int i = 0; i < 12; ++i) a.push_back(g.next()), b.push_back(f.next());
        ASSERT_EQ(a, b);
        g.checkpoint();  // the end of the reply
        if (turn == 5) {  // regenerate the last reply: back to the end of the prompt, or just before it
            const int again = g.reuse(text);
            EXPECT_GE(again, int(text.size()) - 2);
            g.feed(std::vector<TokenId>(text.begin() + again, text.end()));
            std::vector<TokenId> c;
            for (int i = 0; i < 12; ++i) c.push_back(g.next());
            EXPECT_EQ(c, a);
        }
        replies.push_back(a);
    }
    EXPECT_LT(evaluated, total / 2) << "prefix reuse should evaluate a fraction of the conversation";
}

}  // namespace

TEST(PrefixReuse, HybridModelMatchesFreshEvaluationEveryTurn) { converse(model("qwen35"), SpeculativeParams{false}); }

TEST(PrefixReuse, WithSpeculativeDecodingToo) { converse(model("qwen35", true), SpeculativeParams{}); }

TEST(PrefixReuse, AttentionOnlyModelMatchesFreshEvaluationEveryTurn) { converse(model("llama"), SpeculativeParams{false}); }

TEST(PrefixReuse, CheckpointsStayWithinTheirBudget) {
    const auto m = model("qwen35");
    Context c(m, 256);
    Sampler s({});
    Generator g(c, s);
    for (int i = 0; i < 10; ++i) {
        g.feed(span(i, 4));
        g.checkpoint();
    }
    EXPECT_EQ(g.n_checkpoints(), 8);
    const uint64_t one = g.checkpoint_bytes() / 8;
    g.set_checkpoint_budget(8, 3 * one);
    EXPECT_EQ(g.n_checkpoints(), 3);
    // The three most recent remain (at 32, 36, 40): a text sharing 34 tokens resumes from 32.
    std::vector<TokenId> text;
    for (int i = 0; i < 10; ++i) {
        const auto t = span(i, 4);
        text.insert(text.end(), t.begin(), t.end());
    }
    text[34] = 5;
    EXPECT_EQ(g.reuse(text), 32);
    text[20] = 5;  // before every checkpoint left: from scratch
    EXPECT_EQ(g.reuse(text), 0);
    EXPECT_THROW(g.set_checkpoint_budget(-1, 0), Error);
}

namespace {
std::string error_of(const std::function<void()>& f) {
    try { f(); } catch (const Error& e) { return e.what(); }
    return "";
}
}  // namespace

// State snapshots: a saved state resumes exactly (in another context of the same model), and a
// state of another model, a corrupt, truncated or future-format one, or one too long for the
// context, is refused with a message saying so, leaving the context as it was.
TEST(StateSnapshot, RoundTripAndRefusals) {
    for (const bool mtp : {false, true}) {
        SCOPED_TRACE(mtp ? "with MTP" : "plain");
        const auto m = model("qwen35", mtp);
        Context a(m, 512), b(m, 512);
        Sampler sa({}), sb({});
        Generator ga(a, sa), gb(b, sb);
        ga.feed(span(1, 40));
        for (int i = 0; i < 5; ++i) ga.next();
        const std::vector<uint8_t> state = ga.save_state();
        std::vector<TokenId> want, got;
        for (int i = 0; i < 20; ++i) want.push_back(ga.next());
        gb.feed(span(9, 7));  // something else first: the load replaces it
        gb.load_state(state.data(), state.size());
        EXPECT_EQ(gb.n_past(), 44);
        for (int i = 0; i < 20; ++i) got.push_back(gb.next());
        EXPECT_EQ(got, want);
        // The saved text is reused whole: nothing is evaluated again.
        Context c(m, 512);
        Sampler sc({});
        Generator gc(c, sc);
        gc.load_state(state.data(), state.size());
        std::vector<TokenId> text = span(1, 40);
        std::vector<TokenId> first5;
        {
            Context d(m, 512);
            Sampler sd({});
            Generator gd(d, sd);
            gd.feed(text);
            for (int i = 0; i < 5; ++i) first5.push_back(gd.next());
        }
        text.insert(text.end(), first5.begin(), first5.end() - 1);  // the evaluated ones (the fifth was pending)
        EXPECT_EQ(gc.reuse(text), int(text.size()));

        // Refusals, each leaving gb where it was.
        const auto refused = [&](std::vector<uint8_t> bytes, const std::string& says) {
            const std::string e = error_of([&] { gb.load_state(bytes.data(), bytes.size()); });
            EXPECT_NE(e.find(says), std::string::npos) << "'" << e << "' should say '" << says << "'";
        };
        std::vector<uint8_t> bad = state;
        bad[bad.size() / 2] ^= 1;
        refused(bad, "corrupt");
        refused(std::vector<uint8_t>(state.begin(), state.begin() + long(state.size() / 3)), "corrupt");
        refused({1, 2, 3}, "not a saved Rill state");
        bad = state;
        bad[8] = 9;  // version 9, checksum left: the version is read first
        refused(bad, "format version 9");
        Context other_ctx(model("llama"), 512);
        Sampler so({});
        Generator other(other_ctx, so);
        const std::string e = error_of([&] { other.load_state(state.data(), state.size()); });
        EXPECT_NE(e.find("another model"), std::string::npos) << e;
        Context small(m, 16);
        Sampler ss({});
        Generator gs(small, ss);
        const std::string e2 = error_of([&] { gs.load_state(state.data(), state.size()); });
        EXPECT_NE(e2.find("more than the context of 16"), std::string::npos) << e2;
        std::vector<TokenId> after;
        for (int i = 0; i < 5; ++i) after.push_back(gb.next());
        std::vector<TokenId> ref;
        {
            Context d(m, 512);
            Sampler sd({});
            Generator gd(d, sd);
            gd.load_state(state.data(), state.size());
            for (int i = 0; i < 25; ++i) ref.push_back(gd.next());
        }
        EXPECT_EQ(after, std::vector<TokenId>(ref.begin() + 20, ref.end())) << "a refused load changed the state";
    }
}
