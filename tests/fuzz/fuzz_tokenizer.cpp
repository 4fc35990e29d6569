// libFuzzer target: arbitrary bytes (valid UTF-8 or not) through every pre-tokenizer,
// BPE and SentencePiece tokenisation, detokenisation and the streaming decoder.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "rill/error.h"
#include "tokenizer/tokenizer.h"

namespace {

std::vector<rill::Tokenizer> load_all() {
    std::vector<rill::Tokenizer> out;
    const char* dir = std::getenv("RILL_VOCAB_DIR");
    const std::string base = dir ? dir : ".cache/llama.cpp/models";
    for (const char* name : {"qwen35", "llama-bpe", "gpt-2", "llama-spm", "phi-3"})
        out.push_back(rill::Tokenizer::from_gguf(rill::gguf::File::open(base + "/ggml-vocab-" + name + ".gguf")));
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::vector<rill::Tokenizer> toks = load_all();
    if (size == 0) return 0;
    const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
    for (auto kind : {rill::PreTokenizer::Default, rill::PreTokenizer::Gpt2, rill::PreTokenizer::Llama3,
                      rill::PreTokenizer::Qwen2, rill::PreTokenizer::Qwen35})
        (void)rill::pretokenize(kind, text);
    const auto& tok = toks[data[0] % toks.size()];
    const bool special = data[0] & 0x80;
    const auto ids = tok.tokenize(text, special, special);
    rill::StreamDecoder dec(tok, special);
    std::string streamed;
    for (auto id : ids) streamed += dec.push(id);
    streamed += dec.flush();
    if (streamed != [&] { std::string s; for (auto id : ids) s += tok.token_to_piece(id, special); return s; }()) std::abort();
    (void)tok.detokenize(ids, special);
    return 0;
}
