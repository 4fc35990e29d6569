// JSON Schema to GBNF: the grammar accepts the texts the schema accepts (in compact form) and no
// others, and what is not supported is refused by name. The sampled corpus test, validated by
// ajv, is tests/js/structured.test.mjs.
#include <gtest/gtest.h>

#include "rill/error.h"
#include "src/grammar.h"
#include "src/json_schema.h"
#include "test_paths.h"

using namespace rill;

namespace {

bool fits(const std::string& schema, const std::string& text) {
    static auto none = std::make_shared<GrammarVocab>(
        Tokenizer::from_gguf(gguf::File::open(vocab_dir() + "/ggml-vocab-gpt-2.gguf")));
    return GrammarMatcher(Grammar::parse(json_schema_to_gbnf(schema)), none).matches(text);
}

std::string refusal(const std::string& schema) {
    try {
        json_schema_to_gbnf(schema);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(JsonSchema, Primitives) {
    EXPECT_TRUE(fits(R"({"type":"string"})", R"("a \"b\" \u00e9")"));
    EXPECT_FALSE(fits(R"({"type":"string"})", "\"a\nb\""));
    EXPECT_TRUE(fits(R"({"type":"integer"})", "-120"));
    EXPECT_FALSE(fits(R"({"type":"integer"})", "012"));
    EXPECT_FALSE(fits(R"({"type":"integer"})", "1.5"));
    EXPECT_TRUE(fits(R"({"type":"number"})", "-0.25e+10"));
    EXPECT_FALSE(fits(R"({"type":"number"})", "1."));
    EXPECT_TRUE(fits(R"({"type":"boolean"})", "false"));
    EXPECT_TRUE(fits(R"({"type":"null"})", "null"));
    EXPECT_TRUE(fits(R"({"type":["integer","null"]})", "null"));
    EXPECT_TRUE(fits(R"({"type":["integer","null"]})", "7"));
    EXPECT_FALSE(fits(R"({"type":["integer","null"]})", "\"7\""));
    EXPECT_TRUE(fits(R"({"enum":["red","green",3,null]})", "\"green\""));
    EXPECT_TRUE(fits(R"({"enum":["red","green",3,null]})", "3"));
    EXPECT_FALSE(fits(R"({"enum":["red","green",3,null]})", "\"blue\""));
    EXPECT_TRUE(fits(R"({"const":{"a":[1,"x"]}})", R"({"a":[1,"x"]})"));
    EXPECT_TRUE(fits(R"({"type":"string","minLength":2,"maxLength":3})", R"("ab")"));
    EXPECT_FALSE(fits(R"({"type":"string","minLength":2,"maxLength":3})", R"("abcd")"));
    EXPECT_FALSE(fits(R"({"type":"string","minLength":2,"maxLength":3})", R"("a")"));
    EXPECT_TRUE(fits(R"({})", R"([{"any": true}])"));
}

TEST(JsonSchema, ObjectsKeepTheOrderAndLeaveOutOnlyOptionalProperties) {
    const std::string s = R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"},"c":{"type":"boolean"}},"required":["b"]})";
    EXPECT_TRUE(fits(s, R"({"b": "x"})"));
    EXPECT_TRUE(fits(s, R"({"a": 1, "b": "x", "c": true})"));
    EXPECT_TRUE(fits(s, R"({"a":1,"b":"x"})"));
    EXPECT_TRUE(fits(s, R"({"b":"x","c":false})"));
    EXPECT_FALSE(fits(s, R"({"a":1})"));           // b is required
    EXPECT_FALSE(fits(s, R"({"b":"x","a":1})"));   // the schema's order
    EXPECT_FALSE(fits(s, R"({"b":"x","d":1})"));   // no others
    EXPECT_FALSE(fits(s, R"({,"b":"x"})"));
    const std::string none_required = R"({"properties":{"a":{"type":"integer"},"b":{"type":"integer"},"c":{"type":"integer"}}})";
    for (const char* ok : {"{}", R"({"a":1})", R"({"b":2})", R"({"c":3})", R"({"a":1,"c":3})", R"({"b":2,"c":3})", R"({"a":1,"b":2,"c":3})"})
        EXPECT_TRUE(fits(none_required, ok)) << ok;
    for (const char* bad : {R"({,"a":1})", R"({"a":1,})", R"({"a":1 "b":2})"}) EXPECT_FALSE(fits(none_required, bad)) << bad;
    const std::string map = R"({"type":"object","additionalProperties":{"type":"integer"}})";
    EXPECT_TRUE(fits(map, R"({"x":1,"y":2})"));
    EXPECT_FALSE(fits(map, R"({"x":"1"})"));
    EXPECT_TRUE(fits(R"({"type":"object"})", R"({"x":[1,{"y":null}]})"));
}

TEST(JsonSchema, ArraysCountTheirItems) {
    const std::string s = R"({"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":3})";
    EXPECT_FALSE(fits(s, "[]"));
    EXPECT_TRUE(fits(s, "[1]"));
    EXPECT_TRUE(fits(s, "[1, 2, 3]"));
    EXPECT_FALSE(fits(s, "[1,2,3,4]"));
    EXPECT_FALSE(fits(s, "[1,\"2\"]"));
    EXPECT_TRUE(fits(R"({"type":"array"})", R"([1,"a",null])"));
    EXPECT_TRUE(fits(R"({"type":"array","maxItems":0})", "[]"));
    const std::string tuple = R"({"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false,"minItems":1})";
    EXPECT_TRUE(fits(tuple, R"(["a"])"));
    EXPECT_TRUE(fits(tuple, R"(["a",1])"));
    EXPECT_FALSE(fits(tuple, R"(["a",1,2])"));
    EXPECT_FALSE(fits(tuple, R"([1])"));
    const std::string open_tuple = R"({"type":"array","prefixItems":[{"type":"string"}],"items":{"type":"boolean"},"minItems":2})";
    EXPECT_TRUE(fits(open_tuple, R"(["a",true,false])"));
    EXPECT_FALSE(fits(open_tuple, R"(["a"])"));
}

TEST(JsonSchema, AlternativesAndReferences) {
    const std::string s = R"({"anyOf":[{"type":"integer"},{"type":"object","properties":{"k":{"const":"v"}},"required":["k"]}]})";
    EXPECT_TRUE(fits(s, "5"));
    EXPECT_TRUE(fits(s, R"({"k":"v"})"));
    EXPECT_FALSE(fits(s, R"({"k":"w"})"));
    // A recursive definition: a tree.
    const std::string tree = R"({"$ref":"#/$defs/node","$defs":{"node":{"type":"object","properties":{
        "name":{"type":"string"},"children":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["name"]}}})";
    EXPECT_TRUE(fits(tree, R"({"name":"a","children":[{"name":"b"},{"name":"c","children":[]}]})"));
    EXPECT_FALSE(fits(tree, R"({"name":"a","children":[{"children":[]}]})"));
    EXPECT_TRUE(fits(R"({"oneOf":[{"$ref":"#/definitions/x"}],"definitions":{"x":{"type":"boolean"}}})", "true"));
}

TEST(JsonSchema, WhatIsNotSupportedIsRefusedByName) {
    EXPECT_NE(refusal(R"({"type":"string","pattern":"^a"})").find("keyword 'pattern' at # is not supported"), std::string::npos);
    EXPECT_NE(refusal(R"({"type":"object","properties":{"d":{"type":"string","format":"date"}}})").find("'format' at #/properties/d"),
              std::string::npos);
    EXPECT_NE(refusal(R"({"type":"integer","minimum":0})").find("'minimum'"), std::string::npos);
    EXPECT_NE(refusal(R"({"allOf":[{}]})").find("'allOf'"), std::string::npos);
    EXPECT_NE(refusal(R"({"$ref":"https://example.com/s.json"})").find("only references to #/$defs"), std::string::npos);
    EXPECT_NE(refusal(R"({"$ref":"#/$defs/missing"})").find("does not have"), std::string::npos);
    EXPECT_NE(refusal(R"({"properties":{"a":{}},"required":["b"]})").find("names \"b\""), std::string::npos);
    EXPECT_NE(refusal(R"({"properties":{"a":{}},"additionalProperties":true})").find("'additionalProperties'"), std::string::npos);
    EXPECT_NE(refusal(R"({"type":"color"})").find("unknown type 'color'"), std::string::npos);
    EXPECT_NE(refusal(R"({"type":"array","minItems":3,"maxItems":2})").find("below 'minItems'"), std::string::npos);
    EXPECT_NE(refusal("{not json").find("not JSON"), std::string::npos);
    EXPECT_NE(refusal("false").find("accepts nothing"), std::string::npos);
}
