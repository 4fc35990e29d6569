// Tokenizer: llama.cpp's own test vectors (models/ggml-vocab-*.gguf with .inp/.out)
// for every vocabulary Rill claims, plus behaviour a streaming user relies on.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "gguf/gguf.h"
#include "rill/error.h"
#include "test_paths.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

using namespace rill;

namespace {

// The vocabularies Rill claims: their llama.cpp test vectors must pass 100%.
const char* kClaimed[] = {"qwen35", "qwen2", "llama-bpe", "gpt-2", "llama-spm", "phi-3", "mpt", "gemma-4"};

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path + " (run scripts/setup.sh)");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Parses a .inp/.out pair the way llama.cpp's test-tokenizer-0 does.
std::map<std::string, std::vector<TokenId>> read_vectors(const std::string& base) {
    const std::string inp = slurp(base + ".inp"), outp = slurp(base + ".out");
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<std::string> texts;
    for (size_t pos = 0; pos < inp.size();) {
        const size_t next = inp.find(sep, pos);
        if (next == std::string::npos) { texts.push_back(inp.substr(pos)); break; }
        texts.push_back(inp.substr(pos, next - pos));
        pos = next + sep.size();
    }
    std::vector<std::string> lines;
    std::istringstream ls(outp);
    for (std::string l; std::getline(ls, l);) lines.push_back(l);
    if (texts.size() != lines.size()) throw std::runtime_error(base + ": input and output counts differ");
    std::map<std::string, std::vector<TokenId>> tests;
    for (size_t i = 0; i < texts.size(); ++i) {
        std::istringstream ids(lines[i]);
        std::vector<TokenId> v;
        for (long id; ids >> id;) v.push_back(TokenId(id));
        tests[texts[i]] = v;
    }
    return tests;
}

Tokenizer load(const std::string& name) {
    return Tokenizer::from_gguf(gguf::File::open(vocab_dir() + "/ggml-vocab-" + name + ".gguf"));
}

std::string ids_str(const std::vector<TokenId>& v) {
    std::string s;
    for (auto id : v) s += std::to_string(id) + " ";
    return s;
}

}  // namespace

class VocabVectors : public ::testing::TestWithParam<const char*> {};

TEST_P(VocabVectors, AllLlamaCppVectorsPass) {
    const std::string name = GetParam();
    const Tokenizer tok = load(name);
    const auto tests = read_vectors(vocab_dir() + "/ggml-vocab-" + name + ".gguf");
    ASSERT_GT(tests.size(), 30u);
    size_t pass = 0;
    for (const auto& [text, expected] : tests) {
        const auto got = tok.tokenize(text, /*add_special=*/false, /*parse_special=*/false);
        if (got == expected) ++pass;
        else ADD_FAILURE() << name << ": '" << text << "'\n expected " << ids_str(expected) << "\n got      " << ids_str(got);
    }
    std::cout << "[ vectors  ] " << name << ": " << pass << "/" << tests.size() << " pass\n";
}

INSTANTIATE_TEST_SUITE_P(Claimed, VocabVectors, ::testing::ValuesIn(kClaimed), [](const auto& info) {
    std::string s = info.param;
    for (auto& c : s) if (!isalnum(static_cast<unsigned char>(c))) c = '_';
    return s;
});

TEST(Tokenizer, SpecialTokensOnlyWhenAsked) {
    const Tokenizer tok = load("qwen35");
    const TokenId im_start = tok.find("<|im_start|>");
    ASSERT_NE(im_start, kNoToken);
    const auto with = tok.tokenize("<|im_start|>user", false, true);
    ASSERT_GE(with.size(), 2u);
    EXPECT_EQ(with[0], im_start);
    const auto without = tok.tokenize("<|im_start|>user", false, false);
    EXPECT_NE(without[0], im_start);
    EXPECT_GT(without.size(), with.size());
    EXPECT_EQ(tok.detokenize(with, true), "<|im_start|>user");
    EXPECT_EQ(tok.detokenize(with, false), "user");  // control tokens hidden unless asked
}

TEST(Tokenizer, BosRules) {
    const Tokenizer spm = load("llama-spm");
    EXPECT_TRUE(spm.add_bos());
    const auto ids = spm.tokenize("Hello", true, false);
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids[0], spm.bos());
    EXPECT_NE(spm.tokenize("Hello", false, false)[0], spm.bos());
    const Tokenizer llama3 = load("llama-bpe");
    EXPECT_TRUE(llama3.add_bos());
    EXPECT_EQ(llama3.tokenize("Hi", true, false)[0], llama3.bos());
    const Tokenizer qwen = load("qwen35");
    EXPECT_EQ(qwen.tokenize("Hi", true, false), qwen.tokenize("Hi", false, false));  // qwen adds no BOS
}

TEST(Tokenizer, RoundTripsText) {
    for (const char* name : {"qwen35", "qwen2", "llama-bpe", "gpt-2", "llama-spm"}) {
        const Tokenizer tok = load(name);
        for (const std::string s : {"Hello world", "  leading and   inner   spaces", "emoji 🦙🦙 and CJK 你好世界",
                                    "code: for (int i = 0; i < n; ++i) {\n\treturn x;\n}", "Ünïcödé ½ 3.14159"}) {
            EXPECT_EQ(tok.detokenize(tok.tokenize(s, false, false), false), s) << name;
        }
    }
}

TEST(Tokenizer, StreamingNeverSplitsACharacter) {
    const Tokenizer tok = load("qwen35");
    const std::string text = "a🦙b ½ 你好 🏳️‍🌈 end";
    const auto ids = tok.tokenize(text, false, false);
    StreamDecoder dec(tok);
    std::string joined;
    for (TokenId id : ids) {
        const std::string piece = dec.push(id);
        EXPECT_TRUE(unicode::is_valid_utf8(piece)) << "piece for token " << id;
        joined += piece;
    }
    joined += dec.flush();
    EXPECT_EQ(joined, text);
    // A lone byte token of a multi-byte character yields nothing until the rest arrives.
    const TokenId lead = tok.find("\xc3\xb0");  // byte-level encoding of 0xF0 (a 4-byte lead)
    ASSERT_NE(lead, kNoToken);
    StreamDecoder d2(tok);
    EXPECT_EQ(d2.push(lead), "");
    EXPECT_EQ(d2.flush(), "\xf0");
}

TEST(Tokenizer, ErrorsNameTheProblem) {
    gguf::Writer w;
    w.set_str("tokenizer.ggml.model", "bert");
    w.set_array_str("tokenizer.ggml.tokens", std::vector<std::string>{"a"});
    try {
        Tokenizer::from_gguf(gguf::File::parse(gguf::bytes_from_vector(w.finish())));
        FAIL() << "accepted an unsupported model";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("unsupported tokenizer model 'bert'"), std::string::npos) << e.what();
    }
    gguf::Writer w2;
    w2.set_str("tokenizer.ggml.model", "gpt2");
    w2.set_array_str("tokenizer.ggml.tokens", std::vector<std::string>{"a"});
    try {
        Tokenizer::from_gguf(gguf::File::parse(gguf::bytes_from_vector(w2.finish())));
        FAIL() << "accepted a BPE vocabulary without merges";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("tokenizer.ggml.merges"), std::string::npos) << e.what();
    }
    const Tokenizer tok = load("gpt-2");
    EXPECT_THROW(tok.token_to_piece(-1, false), Error);
    EXPECT_THROW(tok.token_to_piece(TokenId(tok.n_tokens()), false), Error);
}
