// Split models (llama.cpp's gguf-split layout): names, rill's own splitter, loading every part
// from any part's path with the whole file's logits, and the refusals of a missing, misplaced,
// foreign or lone part.
#include <gtest/gtest.h>

#include <fstream>

#include "gguf/gguf.h"
#include "test_models.h"

using namespace rill;

namespace {

// Writes f split in n to PREFIX-0000k-of-0000n.gguf; returns the part paths.
std::vector<std::string> write_split(const gguf::File& f, uint32_t n, const std::string& prefix) {
    std::vector<std::string> paths;
    const auto parts = gguf::split_file(f, n);
    for (uint32_t k = 0; k < n; ++k) {
        paths.push_back(gguf::split_path(prefix, k, n));
        std::ofstream(paths.back(), std::ios::binary).write(reinterpret_cast<const char*>(parts[k].data()), std::streamsize(parts[k].size()));
    }
    return paths;
}

std::string join_error(std::vector<std::string> paths) {
    std::vector<gguf::File> parts;
    for (const auto& p : paths) parts.push_back(gguf::File::parse(gguf::bytes_from_path(p)));
    try {
        gguf::File::join(std::move(parts));
    } catch (const Error& e) {
        return e.what();
    }
    return "(joined)";
}

std::vector<float> logits_of(const std::string& path) {
    const auto m = Model::load_file(path);
    Context ctx(m, 64);
    ctx.eval(m->tokenizer().tokenize("A river runs through the old town", true, true));
    return last_logits(ctx);
}

}  // namespace

TEST(Split, PathsFollowLlamaCpp) {
    EXPECT_EQ(gguf::split_path("/m/qwen", 0, 3), "/m/qwen-00001-of-00003.gguf");
    std::string prefix;
    uint32_t no = 0, n = 0;
    ASSERT_TRUE(gguf::parse_split_path("/m/qwen-00002-of-00003.gguf", prefix, no, n));
    EXPECT_EQ(prefix, "/m/qwen");
    EXPECT_EQ(no, 1u);
    EXPECT_EQ(n, 3u);
    EXPECT_FALSE(gguf::parse_split_path("/m/qwen.gguf", prefix, no, n));
    EXPECT_FALSE(gguf::parse_split_path("/m/qwen-00004-of-00003.gguf", prefix, no, n));
    EXPECT_FALSE(gguf::parse_split_path("/m/qwen-0001-of-0003.gguf", prefix, no, n));
}

TEST(Split, AnyPartLoadsTheWholeModelWithTheSameLogits) {
    for (const char* arch : {"qwen35", "llama"}) {
        const std::string whole = small_model(arch);
        const auto f = gguf::File::open(whole);
        const auto paths = write_split(f, 3, temp_path(std::string("split3_") + arch));
        for (const auto& p : paths) EXPECT_LT(gguf::File::parse(gguf::bytes_from_path(p)).tensors().size(), f.tensors().size()) << p;
        const auto joined = gguf::File::open(paths[1]);
        EXPECT_EQ(joined.parts(), 3u);
        EXPECT_EQ(joined.split_count(), 3u);
        EXPECT_EQ(joined.tensors().size(), f.tensors().size());
        EXPECT_EQ(logits_of(paths[0]), logits_of(whole)) << arch;
        // One part is a split of one: loads as is.
        const auto single = write_split(f, 1, temp_path(std::string("split1_") + arch));
        EXPECT_EQ(logits_of(single[0]), logits_of(whole)) << arch;
    }
}

TEST(Split, MissingMisplacedForeignAndLonePartsAreRefused) {
    const auto f = gguf::File::open(small_model("qwen35"));
    const auto a = write_split(f, 3, temp_path("split_a"));
    EXPECT_NE(join_error({a[0], a[1]}).find("says the model has 3 part(s), 2 were given"), std::string::npos) << join_error({a[0], a[1]});
    EXPECT_NE(join_error({a[0], a[2], a[1]}).find("part 2 of 3 says it is part 3"), std::string::npos) << join_error({a[0], a[2], a[1]});
    const auto b = write_split(gguf::File::open(small_model("llama")), 3, temp_path("split_b"));
    EXPECT_NE(join_error({a[0], b[1], a[2]}).find("parts of different models?"), std::string::npos) << join_error({a[0], b[1], a[2]});
    EXPECT_NE(join_error({a[0], a[0], a[2]}).find("part 2 of 3 says it is part 1"), std::string::npos);
    std::string lone = "(loaded)";  // one part alone (as the wasm engine gets bytes, with no path to find the others)
    try {
        Model::load(gguf::File::parse(gguf::bytes_from_path(a[1])));
    } catch (const Error& e) {
        lone = e.what();
    }
    EXPECT_NE(lone.find("is part 2 of a model split in 3 parts"), std::string::npos) << lone;
    EXPECT_NE(load_error(gguf::split_path(temp_path("split_missing"), 0, 2)).find("cannot open"), std::string::npos);
    EXPECT_THROW(gguf::split_file(f, 0), Error);
    EXPECT_THROW(gguf::split_file(f, uint32_t(f.tensors().size() + 1)), Error);
}
