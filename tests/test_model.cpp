// Model loading (errors name the problem) and context behaviour (batching, reset, limits),
// on small synthetic models made with rill's own generator.
#include <map>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "gguf/gguf.h"
#include "rill/error.h"
#include "src/context.h"
#include "src/model.h"
#include "src/synth.h"
#include "test_models.h"

using namespace rill;

namespace {

// Rewrites a GGUF through `edit(name, type, shape, bytes)` for every tensor.
template <typename Edit>
std::string rewrite(const std::string& src, const std::string& name, Edit edit) {
    const auto f = gguf::File::open(src);
    gguf::Writer w;
    for (const auto& [k, v] : f.metadata()) w.set_value(k, v);
    for (const auto& t : f.tensors()) {
        TensorType type = t.type;
        std::vector<int64_t> shape(t.ne, t.ne + t.n_dims);
        std::vector<uint8_t> bytes(t.data, t.data + t.n_bytes);
        edit(t.name, type, shape, bytes);
        w.add_tensor(t.name, type, shape, bytes.data(), bytes.size());
    }
    const std::string out = temp_path(name);
    w.write_file(out);
    return out;
}

}  // namespace

TEST(Model, LoadsEveryArchitecture) {
    for (const char* arch : {"llama", "qwen2", "qwen3", "qwen35", "phi3", "smollm3", "gemma3", "gemma4", "lfm2"}) {
        const auto m = Model::load_file(small_model(arch));
        EXPECT_EQ(m->config().arch, arch);
        EXPECT_EQ(m->config().n_embd, 64);
        Context ctx(m, 64);
        ctx.eval(m->tokenizer().tokenize("Hello there", true, true));
        for (int i = 0; i < ctx.n_vocab(); ++i) ASSERT_TRUE(std::isfinite(ctx.logits()[i]));
    }
    const auto q = Model::load_file(small_model("qwen35"));
    EXPECT_EQ(q->config().recurrent, (std::vector<bool>{true, true, true, false}));
}

// A file with Qwen 3.5's multi-token-prediction block: the block is bound (for speculative
// decoding), the main model is the file's first block_count - 1 layers, and its logits are those
// of the same file without the block.
TEST(Model, KeepsTheMtpBlockAndLeavesTheMainModelAlone) {
    SynthOptions o;
    o.arch = "qwen35";
    o.vocab_path = vocab_dir() + "/ggml-vocab-qwen35.gguf";
    o.type = TensorType::Q8_0;
    o.tied = true;
    o.set = {{"embedding_length", "64"}, {"feed_forward_length", "128"}, {"attention.head_count", "2"},
             {"attention.head_count_kv", "1"}, {"attention.key_length", "32"}, {"attention.value_length", "32"},
             {"rope.dimension_count", "16"}, {"ssm.state_size", "32"}, {"ssm.group_count", "1"}, {"ssm.time_step_rank", "2"},
             {"ssm.inner_size", "64"}};
    o.out_path = temp_path("qwen35_nomtp");
    synth_model(o);
    o.mtp = true;
    o.out_path = temp_path("qwen35_mtp");
    synth_model(o);
    const auto plain = Model::load_file(temp_path("qwen35_nomtp")), with = Model::load_file(temp_path("qwen35_mtp"));
    EXPECT_EQ(plain->mtp(), nullptr);
    ASSERT_NE(with->mtp(), nullptr);
    EXPECT_EQ(with->config().n_layer, 4);
    EXPECT_EQ(with->config().n_layer_mtp, 1);
    EXPECT_EQ(with->mtp()->eh_proj.ne[0], 128);
    EXPECT_TRUE(with->mtp()->block.wq.present() && with->mtp()->enorm.present() && with->mtp()->hnorm.present());
    EXPECT_FALSE(with->mtp()->embed_tokens.present());  // shared with the main model
    const auto tokens = plain->tokenizer().tokenize("Hello there, MTP", true, true);
    Context a(plain, 64), b(with, 64);
    a.eval(tokens);
    b.eval(tokens);
    for (int i = 0; i < a.n_vocab(); ++i) ASSERT_EQ(a.logits()[i], b.logits()[i]) << i;

    const std::string two = temp_path("qwen35_mtp2");
    {
        const auto f = gguf::File::open(temp_path("qwen35_mtp"));
        gguf::Writer w;
        for (const auto& [k, v] : f.metadata()) w.set_value(k, v);
        w.set_u32("qwen35.nextn_predict_layers", 2);
        for (const auto& t : f.tensors()) w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims), t.data, t.n_bytes);
        w.write_file(two);
    }
    EXPECT_NE(load_error(two).find("nextn_predict_layers = 2"), std::string::npos) << load_error(two);
}

TEST(Model, ErrorsNameTheProblem) {
    gguf::Writer w;
    w.set_str("general.architecture", "mamba");
    w.write_file(temp_path("mamba"));
    EXPECT_NE(load_error(temp_path("mamba")).find("unsupported architecture 'mamba'"), std::string::npos);

    gguf::Writer w2;
    w2.set_str("general.architecture", "llama");
    w2.write_file(temp_path("nokeys"));
    EXPECT_NE(load_error(temp_path("nokeys")).find("missing metadata key 'llama.context_length'"), std::string::npos);

    const std::string base = small_model("llama");
    const std::string wrong_shape = rewrite(base, "wrong_shape", [](const std::string& n, TensorType&, std::vector<int64_t>& shape, auto&) {
        if (n == "blk.1.ffn_gate.weight") std::swap(shape[0], shape[1]);
    });
    EXPECT_NE(load_error(wrong_shape).find("tensor 'blk.1.ffn_gate.weight' has shape [128, 64], expected [64, 128]"), std::string::npos)
        << load_error(wrong_shape);

    const std::string wrong_type = rewrite(base, "wrong_type", [](const std::string& n, TensorType& t, auto&, std::vector<uint8_t>& bytes) {
        if (n == "blk.0.attn_norm.weight") { t = TensorType::F16; bytes.resize(bytes.size() / 2); }
    });
    EXPECT_NE(load_error(wrong_type).find("tensor 'blk.0.attn_norm.weight' has type f16"), std::string::npos) << load_error(wrong_type);

    const std::string missing = rewrite(base, "missing", [](const std::string& n, TensorType& t, std::vector<int64_t>& shape, auto& bytes) {
        if (n == "blk.2.attn_k.weight") { t = TensorType::F32; shape = {1}; bytes.assign(4, 0); }
    });
    EXPECT_NE(load_error(missing).find("tensor 'blk.2.attn_k.weight' has shape [1]"), std::string::npos) << load_error(missing);
}

TEST(Context, PromptLongerThanContextIsAnErrorAndChangesNothing) {
    const auto m = Model::load_file(small_model("qwen35"));
    Context ctx(m, 8);
    const std::vector<TokenId> nine(9, 100);
    try {
        ctx.eval(nine);
        FAIL() << "accepted 9 tokens in a context of 8";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("do not fit the context of 8 tokens"), std::string::npos) << e.what();
    }
    EXPECT_EQ(ctx.n_past(), 0);
    EXPECT_THROW(ctx.eval({-1}), Error);
    EXPECT_THROW(ctx.eval({TokenId(ctx.n_vocab())}), Error);
    EXPECT_THROW(ctx.logits(), Error);  // nothing evaluated yet
    ctx.eval({1, 2, 3, 4}, Logits::None);
    EXPECT_EQ(ctx.n_past(), 4);
    EXPECT_THROW(ctx.logits(), Error);  // that eval kept no logits
    ctx.eval({5});
    EXPECT_EQ(ctx.n_past(), 5);
}

TEST(Context, BatchSplitAndResetGiveIdenticalLogits) {
    for (const char* arch : {"qwen35", "llama"}) {
        const auto m = Model::load_file(small_model(arch));
        const auto ids = m->tokenizer().tokenize("The quick brown fox jumps over the lazy dog again", true, true);
        ASSERT_GE(ids.size(), 10u);
        Context one(m, 64), split(m, 64);
        one.eval(ids);
        for (size_t i = 0; i < ids.size(); i += 5) {
            const size_t end = std::min(ids.size(), i + 5);
            split.eval(std::vector<TokenId>(ids.begin() + long(i), ids.begin() + long(end)), end == ids.size() ? Logits::Last : Logits::None);
        }
        EXPECT_EQ(last_logits(one), last_logits(split)) << arch;

        Context reused(m, 64);
        reused.eval(m->tokenizer().tokenize("Something else entirely, to leave state behind.", true, true));
        reused.eval({5, 6, 7});
        reused.reset();
        EXPECT_EQ(reused.n_past(), 0);
        reused.eval(ids);
        EXPECT_EQ(last_logits(one), last_logits(reused)) << arch;

        Context all(m, 64);
        all.eval(ids, Logits::All);
        const float* last = all.logits(int(ids.size()) - 1);
        EXPECT_EQ(std::vector<float>(last, last + all.n_vocab()), last_logits(one)) << arch;
    }
}

// Gemma 4 variants Rill does not run are refused by name, before any tensor is read.
TEST(Model, Gemma4RefusesWhatItDoesNotRun) {
    const auto error_with = [](std::map<std::string, std::string> keys) -> std::string {
        SynthOptions o;
        o.arch = "gemma4";
        o.vocab_path = vocab_dir() + "/ggml-vocab-gemma-4.gguf";
        o.out_path = temp_path("gemma4_refused");
        o.type = TensorType::Q8_0;
        o.tied = true;
        o.set = std::move(keys);
        try {
            synth_model(o);
        } catch (const Error& e) {
            return e.what();
        }
        return "(made)";
    };
    EXPECT_NE(error_with({{"expert_count", "4"}}).find("mixture-of-experts"), std::string::npos);
    EXPECT_NE(error_with({{"attention.sliding_window_pattern", "1,1,0"}}).find("one flag per layer (7)"), std::string::npos);
    // With 3 shared layers the first shared sliding layer would read a global layer's cache.
    EXPECT_NE(error_with({{"attention.shared_kv_layers", "3"}}).find("of the other attention kind"), std::string::npos);
    EXPECT_EQ(error_with({}), "(made)");
}
