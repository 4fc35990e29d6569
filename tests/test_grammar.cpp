// The GBNF grammar engine: parsing (every grammar of llama.cpp's grammars/ directory, and the
// errors), whole-text matching, and the token masks the sampler uses, checked token by token
// against the one-token question on real vocabularies.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "gguf/gguf.h"
#include "rill/error.h"
#include "src/grammar.h"
#include "src/sampler.h"
#include "tests/test_paths.h"

using namespace rill;

namespace {

std::string read_text(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::string grammar_file(const std::string& name) { return read_text(source_dir() + "/.cache/llama.cpp/grammars/" + name); }

const Tokenizer& vocab(const std::string& name) {
    static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
    auto& t = cache[name];
    if (!t) t = std::make_unique<Tokenizer>(Tokenizer::from_gguf(gguf::File::open(vocab_dir() + "/ggml-vocab-" + name + ".gguf")));
    return *t;
}

std::shared_ptr<const GrammarVocab> grammar_vocab(const std::string& name) {
    static std::map<std::string, std::shared_ptr<const GrammarVocab>> cache;
    auto& v = cache[name];
    if (!v) v = std::make_shared<GrammarVocab>(vocab(name));
    return v;
}

// A matcher for text checks only (no vocabulary needed beyond an empty one).
bool matches(const std::string& gbnf, const std::string& text) {
    static auto none = grammar_vocab("gpt-2");
    return GrammarMatcher(Grammar::parse(gbnf), none).matches(text);
}

std::string error_of(const std::string& gbnf) {
    try {
        Grammar::parse(gbnf);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

// The token of one byte in a byte-level BPE vocabulary, which spells bytes as characters: the
// printable ones as themselves, the others as U+0100 onwards in byte order (GPT-2's table).
TokenId byte_token(const Tokenizer& tok, unsigned byte) {
    unsigned cp = byte, next = 256;
    for (unsigned b = 0; b < 256; ++b) {
        const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (!printable && b == byte) cp = next;
        if (!printable) ++next;
    }
    std::string s;
    if (cp < 0x80) s += char(cp);
    else s += char(0xC0 | cp >> 6), s += char(0x80 | (cp & 0x3F));
    return tok.find(s);
}

std::string hex(const std::string& s) {
    std::string out;
    for (unsigned char c : s) out += strprintf(c >= 0x20 && c < 0x7F ? "%c" : "\\x%02X", c);
    return out;
}

}  // namespace

TEST(Grammar, EveryGrammarOfLlamaCppParses) {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(source_dir() + "/.cache/llama.cpp/grammars")) {
        if (e.path().extension() != ".gbnf") continue;
        SCOPED_TRACE(e.path().filename().string());
        const auto g = Grammar::parse(read_text(e.path().string()), &vocab("qwen35"));
        EXPECT_FALSE(g->rules().empty());
        // Written back and parsed again, it is the same grammar.
        const std::string again = Grammar::parse(g->to_gbnf(), &vocab("qwen35"))->to_gbnf();
        EXPECT_EQ(again, g->to_gbnf());
        ++n;
    }
    EXPECT_GE(n, 8);
}

TEST(Grammar, JsonGrammarAcceptsJsonAndRejectsTheRest) {
    const std::string g = grammar_file("json.gbnf");
    for (const char* ok : {"{}", "{\"a\": 1}", "{\"a\": [1, 2.5e3, \"x\", true, null], \"b\": {\"c\": \"\\u00e9\"}}",
                           "{\"k\": \"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\"}", "{\n  \"a\": -0.5\n}"})
        EXPECT_TRUE(matches(g, ok)) << ok;
    for (const char* bad : {"", "[]", "{", "{\"a\" 1}", "{\"a\": 01}", "{\"a\": tru}", "{\"a\": \"\x01\"}", "{} x", "{\"a\":1,}"})
        EXPECT_FALSE(matches(g, bad)) << bad;
}

TEST(Grammar, RepetitionsClassesAndEscapes) {
    EXPECT_TRUE(matches("root ::= [a-c]{2,3}", "ab"));
    EXPECT_TRUE(matches("root ::= [a-c]{2,3}", "abc"));
    EXPECT_FALSE(matches("root ::= [a-c]{2,3}", "a"));
    EXPECT_FALSE(matches("root ::= [a-c]{2,3}", "abca"));
    EXPECT_TRUE(matches("root ::= \"ab\"{2}", "abab"));
    EXPECT_FALSE(matches("root ::= \"ab\"{2}", "aba"));
    EXPECT_TRUE(matches("root ::= \"x\"{3,}", "xxxxx"));
    EXPECT_FALSE(matches("root ::= \"x\"{3,}", "xx"));
    EXPECT_TRUE(matches("root ::= (\"a\" | \"b\")+ \"!\"?", "abba!"));
    EXPECT_TRUE(matches("root ::= [^a-z]*", "AB12"));
    EXPECT_FALSE(matches("root ::= [^a-z]*", "AbC"));
    EXPECT_TRUE(matches("root ::= .+", "any \xe2\x82\xac thing"));
    EXPECT_TRUE(matches("root ::= [\\u3041-\\u309F]+", "\xe3\x81\x82\xe3\x82\x93"));  // hiragana
    EXPECT_FALSE(matches("root ::= [\\u3041-\\u309F]+", "\xe3\x82\xa2"));            // katakana
    EXPECT_TRUE(matches("root ::= \"\\x41\\u00e9\\U0001F600\\n\"", "A\xc3\xa9\xf0\x9f\x98\x80\n"));
    EXPECT_TRUE(matches("root ::= a b\na ::= \"x\" # comment\nb ::= | \"y\"", "x"));
    EXPECT_TRUE(matches("root ::= a |\n  \"z\"\na ::= \"x\"", "z"));
    EXPECT_TRUE(matches("root ::= item{0,3}\nitem ::= [0-9] \",\"", "1,2,"));
    EXPECT_FALSE(matches("root ::= item{0,3}\nitem ::= [0-9] \",\"", "1,2,3,4,"));
    // A group's generated rule does not take the name of a rule defined further down.
    EXPECT_TRUE(matches("root ::= (\"a\" | \"b\") root-1\nroot-1 ::= \"c\"", "bc"));
    // Only UTF-8 passes: no overlong spelling, surrogate or code point past U+10FFFF.
    EXPECT_TRUE(matches("root ::= [^x]", "\xf0\x9f\x98\x80"));
    EXPECT_FALSE(matches("root ::= [^x]", "\xc0\xa0"));
    EXPECT_FALSE(matches("root ::= [^x]", "\xe0\x80\xa0"));
    EXPECT_FALSE(matches("root ::= [^x]", "\xed\xa0\x80"));
    EXPECT_FALSE(matches("root ::= [^x]", "\xf4\x90\x80\x80"));
    EXPECT_FALSE(matches("root ::= [^x]", "\xff"));
    // Right recursion is fine (and does not deepen the stacks); a deep text runs.
    EXPECT_TRUE(matches("root ::= \"a\" root | \"b\"", std::string(5000, 'a') + "b"));
    EXPECT_TRUE(matches(grammar_file("arithmetic.gbnf"), "x+1 = (a+12)\n"));
    EXPECT_TRUE(matches(grammar_file("list.gbnf"), "- one\n- two\n"));
    EXPECT_FALSE(matches(grammar_file("list.gbnf"), "- one\n-two\n"));
}

TEST(Grammar, ErrorsNameTheProblemAndWhere) {
    EXPECT_NE(error_of("root ::= \"a\" | (\"b\"").find("expected ')' at line 1"), std::string::npos) << error_of("root ::= \"a\" | (\"b\"");
    EXPECT_NE(error_of("root ::= foo").find("rule 'foo' is used but not defined"), std::string::npos);
    EXPECT_NE(error_of("a ::= \"x\"").find("no 'root' rule"), std::string::npos);
    EXPECT_NE(error_of("root ::= root \"x\" | \"y\"").find("left-recursive"), std::string::npos);
    EXPECT_NE(error_of("root ::= a \"x\"\na ::= b\nb ::= \"z\"? root").find("left-recursive"), std::string::npos);
    EXPECT_NE(error_of("root ::= \"x\"\nroot ::= \"y\"").find("defined twice"), std::string::npos);
    EXPECT_NE(error_of("root ::= [b-a]").find("end is before its start"), std::string::npos);
    EXPECT_NE(error_of("root ::= \"abc").find("unterminated string"), std::string::npos);
    EXPECT_NE(error_of("root ::= \"a\"{3,1}").find("maximum is below"), std::string::npos);
    EXPECT_NE(error_of("root ::= \"\\q\"").find("unknown escape at line 1, column 11"), std::string::npos) << error_of("root ::= \"\\q\"");
    EXPECT_NE(error_of("root ::= <think>").find("need a vocabulary"), std::string::npos);
    EXPECT_NE(error_of("root = \"a\"").find("expected '::='"), std::string::npos);
    EXPECT_NE(error_of("root ::= \"a\" $").find("unexpected character '$' at line 1, column 14"), std::string::npos) << error_of("root ::= \"a\" $");
}

// The whole-vocabulary mask equals the one-token answer for every token, along random walks
// through each grammar (each step takes a random allowed token).
TEST(Grammar, MaskAgreesWithTheOneTokenAnswerOnEveryToken) {
    const int steps = slow_build() ? 3 : 12;
    for (const char* name : {"json.gbnf", "arithmetic.gbnf", "japanese.gbnf", "list.gbnf", "chess.gbnf"}) {
        SCOPED_TRACE(name);
        auto gv = grammar_vocab("qwen2");
        GrammarMatcher m(Grammar::parse(grammar_file(name)), gv);
        std::mt19937 rng(7);
        std::vector<uint8_t> mask;
        std::string text;
        for (int s = 0; s < steps; ++s) {
            m.allowed(mask);
            std::vector<TokenId> ok;
            for (int i = 0; i < gv->size(); ++i) {
                ASSERT_EQ(mask[size_t(i)] != 0, m.allows(i)) << "token " << i << " '" << gv->piece(i) << "' after '" << text << "'";
                if (mask[size_t(i)]) ok.push_back(i);
            }
            ASSERT_FALSE(ok.empty()) << text;
            const TokenId t = ok[rng() % ok.size()];
            if (gv->is_end(t)) break;
            m.accept(t);
            text += gv->piece(t);
        }
    }
}

// Tokens that end inside a character (byte-level BPE splits CJK characters) are allowed when the
// grammar allows some character they begin, and the character completes across tokens.
TEST(Grammar, CharactersSplitAcrossTokens) {
    auto gv = grammar_vocab("qwen2");
    const Tokenizer& tok = vocab("qwen2");
    GrammarMatcher m(Grammar::parse("root ::= [\\u3041-\\u309F]+ \".\""), gv);
    const TokenId lead = byte_token(tok, 0xE3);
    ASSERT_GE(lead, 0);
    ASSERT_EQ(gv->piece(lead), "\xe3");
    EXPECT_TRUE(m.allows(lead));  // U+3000..U+303F... and U+3041.. begin with E3 81..
    m.accept(lead);
    const TokenId a = byte_token(tok, 0x81);  // the byte 0x81
    const TokenId b = byte_token(tok, 0x82);  // the byte 0x82
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    EXPECT_TRUE(m.allows(a));
    EXPECT_TRUE(m.allows(b));
    m.accept(b);  // E3 82: U+3080..U+30BF, hiragana up to U+309F
    EXPECT_FALSE(m.complete());
    const TokenId c = byte_token(tok, 0xA0);  // 0xA0: U+30A0, outside the class
    const TokenId d = byte_token(tok, 0x93);  // 0x93: U+3093 (ん)
    ASSERT_GE(c, 0);
    ASSERT_GE(d, 0);
    EXPECT_FALSE(m.allows(c));
    EXPECT_TRUE(m.allows(d));
    m.accept(d);
    EXPECT_FALSE(m.complete());
    EXPECT_FALSE(m.allows(tok.eos() >= 0 ? tok.eos() : 0));
    m.accept(tok.find("."));
    EXPECT_TRUE(m.complete());
    EXPECT_TRUE(m.finished());
}

// Token elements name special tokens (Llama 3's header tokens stand in for a reasoning model's
// <think> and </think>: the test vocabularies of Qwen carry no such tokens).
TEST(Grammar, EndTokensOnlyWhenCompleteAndTokenElements) {
    const Tokenizer& tok = vocab("llama-bpe");
    auto gv = grammar_vocab("llama-bpe");
    const TokenId think = tok.find("<|start_header_id|>"), end_think = tok.find("<|end_header_id|>");
    ASSERT_GE(think, 0);
    ASSERT_GE(end_think, 0);
    GrammarMatcher m(Grammar::parse("root ::= <|start_header_id|> [a-z ]* <|end_header_id|> \"ok\" [!]?", &tok), gv);
    EXPECT_TRUE(m.allows(think));
    EXPECT_FALSE(m.allows(tok.find("a")));
    m.accept(think);
    EXPECT_TRUE(m.allows(tok.find("a")));
    EXPECT_TRUE(m.allows(end_think));
    EXPECT_FALSE(m.allows(tok.find("<")));  // the text "<" is not the token
    m.accept(tok.find("a"));
    m.accept(end_think);
    std::vector<uint8_t> mask;
    m.allowed(mask);
    EXPECT_TRUE(mask[size_t(tok.find("ok"))]);
    EXPECT_FALSE(mask[size_t(tok.eos())]);
    m.accept(tok.find("ok"));
    EXPECT_TRUE(m.complete());
    EXPECT_FALSE(m.finished());  // "!" may still follow
    m.allowed(mask);
    const TokenId eog = tok.eot() >= 0 ? tok.eot() : tok.eos();
    EXPECT_TRUE(mask[size_t(eog)]);
    EXPECT_TRUE(mask[size_t(tok.find("!"))]);
    EXPECT_THROW(m.accept(tok.find("x")), Error);
    EXPECT_TRUE(m.complete());  // a refused token changes nothing
    // Negated tokens: anything but the closing one.
    GrammarMatcher n(Grammar::parse("root ::= !<|end_header_id|>* <|end_header_id|>", &tok), gv);
    EXPECT_TRUE(n.allows(tok.find("hello")));
    EXPECT_TRUE(n.allows(think));
    n.accept(tok.find("hello"));
    n.accept(end_think);
    EXPECT_TRUE(n.finished());
}

// The sampler under a grammar: greedy and top-k (which ask about the best tokens one at a time)
// pick what the whole mask picks, and everything sampled stays in the language.
TEST(Grammar, SamplerPicksOnlyAllowedTokensAndGreedyMatchesTheMask) {
    auto gv = grammar_vocab("qwen35");
    const auto g = Grammar::parse(grammar_file("json.gbnf"));
    const int V = gv->size();
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 3.0f);
    std::vector<float> logits(static_cast<size_t>(V));
    for (float temp : {0.0f, 0.8f, 1.5f}) {
        for (int top_k : {40, 0}) {
            if (temp == 0.0f && top_k == 0) continue;
            SCOPED_TRACE(testing::Message() << "temperature " << temp << " top_k " << top_k);
            SamplerParams p;
            p.temperature = temp;
            p.top_k = top_k;
            p.seed = 11;
            Sampler s(p);
            GrammarMatcher m(g, gv);
            std::string text;
            std::vector<uint8_t> mask;
            for (int i = 0; i < (slow_build() ? 12 : 60) && !m.finished(); ++i) {
                for (float& l : logits) l = nd(rng);
                const TokenId t = s.sample(logits.data(), V, &m);
                if (temp == 0.0f) {
                    m.allowed(mask);
                    TokenId best = -1;
                    for (int j = 0; j < V; ++j)
                        if (mask[size_t(j)] && (best < 0 || logits[size_t(j)] > logits[size_t(best)])) best = j;
                    ASSERT_EQ(t, best);
                }
                ASSERT_TRUE(m.allows(t)) << text;
                if (gv->is_end(t)) break;
                m.accept(t);
                text += gv->piece(t);
            }
            GrammarMatcher check(g, gv);
            // Whatever was produced is a prefix the grammar can still complete; complete ones match.
            if (m.complete()) {
                EXPECT_TRUE(check.matches(text)) << text;
                EXPECT_TRUE(nlohmann::json::accept(text)) << hex(text);
            }
        }
    }
}

// Every grammar of llama.cpp, sampled with random logits: each token is allowed, and a text the
// matcher calls complete is one the grammar matches when read again from the start.
TEST(Grammar, SampledTextOfEveryLlamaCppGrammarMatchesIt) {
    auto gv = grammar_vocab("qwen2");
    const int V = gv->size();
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.0f, 3.0f);
    std::vector<float> logits(static_cast<size_t>(V));
    int complete = 0, n = 0;
    for (const auto& e : std::filesystem::directory_iterator(source_dir() + "/.cache/llama.cpp/grammars")) {
        if (e.path().extension() != ".gbnf") continue;
        SCOPED_TRACE(e.path().filename().string());
        const auto g = Grammar::parse(read_text(e.path().string()), &vocab("qwen2"));
        for (uint64_t seed : {1, 2}) {
            SamplerParams p;
            p.temperature = 1.0f;
            p.top_k = 40;
            p.seed = seed;
            Sampler s(p);
            GrammarMatcher m(g, gv);
            std::string text;
            bool ended = false;
            for (int i = 0; i < (slow_build() ? 15 : 80) && !m.finished(); ++i) {
                for (float& l : logits) l = nd(rng);
                const TokenId t = s.sample(logits.data(), V, &m);
                ASSERT_TRUE(m.allows(t)) << text;
                if (gv->is_end(t)) { ended = true; break; }
                m.accept(t);
                text += gv->piece(t);
            }
            ++n;
            if (ended || m.finished()) {
                ++complete;
                EXPECT_TRUE(GrammarMatcher(g, gv).matches(text)) << text;
            }
        }
    }
    EXPECT_GE(n, 16);
    std::printf("[ sample ] %d texts of llama.cpp's grammars, %d complete\n", n, complete);
}

// What a mask costs on the 248k-token vocabulary, in the two kinds of places JSON has: where few
// tokens fit (after '{') and where nearly all do (inside a string). Printed, not asserted.
TEST(Grammar, MaskCostOnTheQwen35Vocabulary) {
    auto gv = grammar_vocab("qwen35");
    const Tokenizer& tok = vocab("qwen35");
    GrammarMatcher m(Grammar::parse(grammar_file("json.gbnf")), gv);
    std::vector<uint8_t> mask;
    // The first mask at a position is walked; the matcher keeps the last few, so a position met
    // again (every character of a string) costs a copy.
    auto time = [&](const char* where) {
        auto t0 = std::chrono::steady_clock::now();
        m.allowed(mask);
        const double first = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        const std::vector<uint8_t> walked = mask;
        t0 = std::chrono::steady_clock::now();
        m.allowed(mask);
        const double again = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        EXPECT_EQ(mask, walked);
        size_t n = 0;
        for (uint8_t b : mask) n += b;
        std::printf("[ mask ] %-12s %7zu of %d tokens allowed: walked %.2f ms, kept %.3f ms\n", where, n, gv->size(), first, again);
        return n;
    };
    EXPECT_GT(time("at the start"), 0u);
    m.accept(tok.find("{"));
    EXPECT_GT(time("after '{'"), 0u);
    m.accept(tok.find("\""));
    EXPECT_GT(time("in a string"), size_t(gv->size() / 2));
}
