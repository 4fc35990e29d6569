// Embeddings of many texts (src/embedding.h): texts packed into one batch of independent
// sequences give, bit for bit, the vectors each text gives alone; sliding windows and rope
// positions restart per text; recurrent models go one text at a time; bad input is refused
// before anything is evaluated, and the context is empty after.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "src/embedding.h"
#include "test_models.h"

namespace rill {
namespace {

std::vector<std::vector<TokenId>> texts_of(const Model& m, std::initializer_list<int> lengths) {
    std::vector<std::vector<TokenId>> texts;
    uint32_t seed = 7;
    for (int n : lengths) {
        std::vector<TokenId> t;
        for (int i = 0; i < n; ++i) t.push_back(TokenId(((seed = seed * 1103515245u + 12345u) >> 1) % uint32_t(m.config().n_vocab)));
        texts.push_back(t);
    }
    return texts;
}

// A tied model 64 wide with 2 heads sharing one KV head, and these keys besides.
std::string tiny_model(const std::string& name, const std::string& arch, const std::string& vocab, TensorType type, uint64_t seed,
                       const std::map<std::string, std::string>& keys) {
    SynthOptions o;
    o.arch = arch;
    o.vocab_path = vocab_dir() + "/ggml-vocab-" + vocab + ".gguf";
    o.out_path = temp_path(name);
    o.seed = seed;
    o.type = type;
    o.tied = true;
    o.set = {{"embedding_length", "64"}, {"feed_forward_length", "128"}, {"attention.head_count", "2"}, {"attention.head_count_kv", "1"}};
    for (const auto& [k, v] : keys) o.set[k] = v;
    synth_model(o);
    return o.out_path;
}

// Packed (every text in one batch, then in batches of about 24 tokens) against each text alone.
void expect_packing_exact(const std::string& path, Pooling pooling) {
    const auto model = Model::load_file(path);
    Context ctx(model, 128);
    const auto texts = texts_of(*model, {9, 1, 30, 17, 2, 40});
    std::vector<std::vector<float>> alone;
    for (const auto& t : texts) alone.push_back(embed(ctx, {t}, pooling, false).at(0));
    for (int max_batch : {512, 24}) {
        const auto packed = embed(ctx, texts, pooling, false, max_batch);
        ASSERT_EQ(packed.size(), texts.size());
        for (size_t i = 0; i < texts.size(); ++i) {
            ASSERT_EQ(packed[i].size(), size_t(model->config().n_embd));
            EXPECT_EQ(packed[i], alone[i]) << "text " << i << " of " << texts[i].size() << " tokens, batches of " << max_batch;
        }
    }
    EXPECT_NE(alone[0], alone[3]);  // the texts differ, so the comparison can fail
    EXPECT_EQ(ctx.n_past(), 0);
}

TEST(Embedding, PackedTextsEqualEachTextAlone) {
    for (const char* arch : {"llama", "qwen3", "phi3", "smollm3"}) {
        SCOPED_TRACE(arch);
        const std::string path = small_model(arch);
        expect_packing_exact(path, Pooling::Mean);
        expect_packing_exact(path, Pooling::Last);
    }
}

// F32 weights, where no activation quantisation hides a rounding. Against each text alone only
// nearly equal (float sums follow the batch's tiles), but a text of 20 tokens packed twice, at
// slots 0 and 20, gives the same vector twice: its rope positions restart at 0, and its attention
// sums run over its own slots as from 0 (rotations being relative and masked keys adding zeros,
// either mistake would move only roundings, which this sees).
TEST(Embedding, PackedF32TextsRestartTheirPositions) {
    const std::string path = tiny_model("embed_qwen3_f32", "qwen3", "qwen35", TensorType::F32, 9, {{"block_count", "2"}});
    const auto model = Model::load_file(path);
    Context ctx(model, 128);
    const auto texts = texts_of(*model, {20, 9, 30});
    const auto twice = embed(ctx, {texts[0], texts[0]}, Pooling::Mean, false);
    EXPECT_EQ(twice[0], twice[1]);
    const auto packed = embed(ctx, texts, Pooling::Mean, false);
    for (size_t i = 0; i < texts.size(); ++i) {
        const auto alone = embed(ctx, {texts[i]}, Pooling::Mean, false).at(0);
        for (size_t j = 0; j < alone.size(); ++j) EXPECT_NEAR(packed[i][j], alone[j], 1e-5f * (1 + std::fabs(alone[j]))) << "text " << i;
    }
}

TEST(Embedding, SlidingWindowRestartsPerText) {
    // Gemma 3 with a window of 8: texts of 30 and 40 tokens go past it inside one packed batch.
    const std::string path = tiny_model("embed_gemma3", "gemma3", "llama-spm", TensorType::Q8_0, 5,
                                        {{"block_count", "3"}, {"attention.sliding_window", "8"},
                                         {"attention.key_length", "32"}, {"attention.value_length", "32"}});
    expect_packing_exact(path, Pooling::Cls);
    expect_packing_exact(path, Pooling::Mean);
}

TEST(Embedding, RecurrentModelsOneTextAtATime) {
    for (const char* arch : {"qwen35", "lfm2"}) {
        SCOPED_TRACE(arch);
        const auto model = Model::load_file(small_model(arch));
        Context ctx(model, 64);
        const auto texts = texts_of(*model, {5, 12, 3});
        const auto all = embed(ctx, texts, Pooling::Mean, true);
        for (size_t i = 0; i < texts.size(); ++i) {
            EXPECT_EQ(all[i], embed(ctx, {texts[i]}, Pooling::Mean, true).at(0)) << "text " << i;
            double ss = 0;
            for (float x : all[i]) ss += double(x) * x;
            EXPECT_NEAR(std::sqrt(ss), 1.0, 1e-5);
        }
        // A packed batch is refused by the context itself, which stays usable.
        EvalOptions eo;
        eo.sequences = {5, 12};
        std::vector<TokenId> batch = texts[0];
        batch.insert(batch.end(), texts[1].begin(), texts[1].end());
        EXPECT_THROW(ctx.eval(batch, eo), Error);
        EXPECT_EQ(ctx.n_past(), 0);
    }
}

TEST(Embedding, RefusalsLeaveTheContextAsItWas) {
    const auto model = Model::load_file(small_model("qwen3"));
    Context ctx(model, 32);
    const auto texts = texts_of(*model, {4, 40});
    try {
        embed(ctx, texts, Pooling::Mean, true);
        ADD_FAILURE() << "a text longer than the context was embedded";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("text 1 (40 tokens) is longer than the context of 32 tokens"), std::string::npos) << e.what();
    }
    EXPECT_THROW(embed(ctx, {texts[0], {}}, Pooling::Mean, true), Error);
    EXPECT_THROW(pooling_for(*model, "max"), Error);
    EXPECT_EQ(pooling_for(*model, ""), Pooling::Mean);  // no pooling_type in the file

    // Packed evals: only from an empty context, with lengths that add up to the batch.
    ctx.eval(texts[0]);
    const std::vector<float> before = last_logits(ctx);
    EvalOptions eo;
    eo.sequences = {2, 2};
    EXPECT_THROW(ctx.eval(texts[0], eo), Error);
    EXPECT_EQ(ctx.n_past(), 4);
    EXPECT_EQ(last_logits(ctx), before);
    ctx.reset();
    eo.sequences = {2, 3};
    EXPECT_THROW(ctx.eval(texts[0], eo), Error);
    eo.sequences = {4, 0};
    EXPECT_THROW(ctx.eval(texts[0], eo), Error);

    // After embeddings the context is empty: a prompt evaluates as in a fresh one.
    embed(ctx, {texts[0], texts[0]}, Pooling::Last, true);
    EXPECT_EQ(ctx.n_past(), 0);
    ctx.eval(texts[0]);
    EXPECT_EQ(last_logits(ctx), before);
}

}  // namespace
}  // namespace rill
