// Pre-tokenisation: splitting text into the words that BPE merges within.
// Each kind reproduces the split llama.cpp performs for that `tokenizer.ggml.pre`.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rill {

enum class PreTokenizer {
    Default,  // llama.cpp's fallback: punctuation runs, GPT-2 words, digit runs, digit triples
    Gpt2,     // 's|'t|... | ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    Llama3,   // (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    Qwen2,    // as Llama3 with single digits
    Qwen35,   // as Qwen2 with marks (\p{M}) joining letters
    Lines,    // [^\n]+|[\n]+ (Gemma 4: SentencePiece-style BPE merges whole lines)
};

// Maps a GGUF `tokenizer.ggml.pre` value; nullopt if Rill does not know it.
std::optional<PreTokenizer> pretokenizer_from_name(std::string_view name);
std::string_view pretokenizer_name(PreTokenizer p);

// Splits text into words; concatenating them gives the text back, except that
// malformed UTF-8 bytes become U+FFFD (as in llama.cpp).
std::vector<std::string> pretokenize(PreTokenizer kind, std::string_view text);

}  // namespace rill
