// Tokenizer built from GGUF metadata alone: byte-level BPE (`gpt2`), SentencePiece-style
// BPE (`llama`: merges by score) and Gemma 4's (`gemma4`: merges by rank over text whose
// spaces are U+2581, raw UTF-8, <0xXX> byte fallback), with special tokens, BOS/EOS rules and
// streaming-safe detokenisation. Behaviour follows llama.cpp token for token.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gguf/gguf.h"
#include "tokenizer/pretokenize.h"

namespace rill {

using TokenId = int32_t;
constexpr TokenId kNoToken = -1;

// GGUF `tokenizer.ggml.token_type` values.
enum class TokenType : int32_t { Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

enum class VocabKind { Bpe, Spm };

class Tokenizer {
public:
    // Throws rill::Error naming the missing or malformed key, or an unsupported model/pre-tokenizer.
    static Tokenizer from_gguf(const gguf::File& file);

    // add_special: add BOS/EOS as the vocabulary asks. parse_special: recognise control
    // tokens written in the text (user-defined tokens are always recognised, as in llama.cpp).
    std::vector<TokenId> tokenize(std::string_view text, bool add_special, bool parse_special) const;
    // The bytes a token stands for; control/unknown tokens give "" unless `special`.
    std::string token_to_piece(TokenId id, bool special) const;
    // Concatenated pieces, with the vocabulary's clean-up of spaces applied as llama.cpp does.
    std::string detokenize(const std::vector<TokenId>& ids, bool special) const;

    size_t n_tokens() const { return tokens_.size(); }
    const std::string& token_text(TokenId id) const { return tokens_.at(size_t(id)).text; }
    TokenType token_type(TokenId id) const { return tokens_.at(size_t(id)).type; }
    TokenId find(std::string_view text) const;
    VocabKind kind() const { return kind_; }
    PreTokenizer pre() const { return pre_; }
    std::string_view model_name() const { return kind_ == VocabKind::Spm ? "llama" : escape_spaces_ ? "gemma4" : "gpt2"; }
    TokenId bos() const { return bos_; }
    TokenId eos() const { return eos_; }
    TokenId eot() const { return eot_; }
    bool add_bos() const { return add_bos_; }
    bool add_eos() const { return add_eos_; }
    bool add_space_prefix() const { return add_space_prefix_; }
    size_t n_merges() const { return n_merges_; }
    // End-of-generation tokens (EOS, EOT and the usual end markers present in the vocabulary).
    bool is_end_of_generation(TokenId id) const;

private:
    // Attribute bits. A token can carry several: llama.cpp adds kControl to tokens whose
    // text marks an end of turn or a fill-in-the-middle slot, whatever the file says.
    enum Attr : uint8_t { kNormal = 1, kUnknown = 2, kControl = 4, kUserDefined = 8, kByte = 16, kUnused = 32,
                         kLstrip = 64, kRstrip = 128 };  // strip whitespace before / after the token in text
    struct Token { std::string text; float score = 0; TokenType type = TokenType::Normal; uint8_t attr = kNormal; };
    void apply_attribute_overrides(std::string_view model_name);
    struct Fragment { TokenId token; size_t begin, end; };  // token, or text [begin, end) when token < 0

    std::vector<Fragment> partition(std::string_view text, bool parse_special) const;
    void tokenize_bpe_word(const std::string& word, std::vector<TokenId>& out) const;
    void tokenize_spm(const std::string& text, std::vector<TokenId>& out) const;
    TokenId spm_byte_token(uint8_t byte) const;
    int bpe_rank(std::string_view left, std::string_view right) const;

    VocabKind kind_ = VocabKind::Bpe;
    PreTokenizer pre_ = PreTokenizer::Default;
    std::vector<Token> tokens_;
    std::unordered_map<std::string, TokenId> by_text_;
    std::unordered_map<std::string, int> ranks_;  // "left\xffright" -> merge rank
    size_t n_merges_ = 0;
    std::vector<TokenId> special_;                // matched in text, longest first
    std::vector<TokenId> eog_;
    TokenId bos_ = kNoToken, eos_ = kNoToken, eot_ = kNoToken, unk_ = kNoToken;
    bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = false;
    bool ignore_merges_ = false, clean_spaces_ = false;
    // BPE over SentencePiece-style text (gemma4): spaces as U+2581, no byte-to-character map,
    // bytes without a token of their own as <0xXX> tokens.
    bool escape_spaces_ = false;
};

// Turns a stream of tokens into text without ever emitting half a UTF-8 character:
// bytes of an incomplete sequence are held until it completes.
class StreamDecoder {
public:
    explicit StreamDecoder(const Tokenizer& t, bool special = false) : tok_(t), special_(special) {}
    std::string push(TokenId id);
    std::string flush();  // whatever is held back (malformed tails included)
private:
    const Tokenizer& tok_;
    bool special_;
    std::string pending_;
};

}  // namespace rill
