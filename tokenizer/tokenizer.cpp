#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <cctype>
#include <queue>

#include "rill/error.h"
#include "tokenizer/unicode.h"

namespace rill {
namespace {

// GPT-2's reversible byte <-> code point map: printable bytes stand for themselves,
// the others are moved to U+0100 onwards so that every byte is a visible character.
struct ByteMap {
    std::string encode[256];
    std::unordered_map<uint32_t, uint8_t> decode;
    ByteMap() {
        uint32_t next = 256;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
            const uint32_t cp = printable ? uint32_t(b) : next++;
            unicode::append_utf8(encode[b], cp);
            decode[cp] = uint8_t(b);
        }
    }
};
const ByteMap& byte_map() {
    static const ByteMap m;
    return m;
}

std::string merge_key(std::string_view left, std::string_view right) {
    std::string k;
    k.reserve(left.size() + right.size() + 1);
    k.append(left);
    k += '\xff';  // never part of valid UTF-8, so the key is unambiguous
    k.append(right);
    return k;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
    std::string out;
    size_t pos = 0;
    for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
        out.append(s, pos, hit - pos);
        out.append(to);
    }
    out.append(s, pos);
    s = std::move(out);
}

const gguf::Value* array_of(const gguf::File& f, const char* key, gguf::ValueType elem, size_t expected_len, bool required) {
    const gguf::Value* v = f.find(key);
    if (!v) {
        if (required) RILL_FAIL("missing metadata key '%s'", key);
        return nullptr;
    }
    if (v->type != gguf::ValueType::ARRAY || v->elem_type != elem)
        RILL_FAIL("metadata key '%s' must be an array of %s", key, std::string(gguf::value_type_name(elem)).c_str());
    if (expected_len != SIZE_MAX && v->count != expected_len)
        RILL_FAIL("metadata key '%s' has %llu entries, expected %zu (one per token)", key, (unsigned long long)v->count, expected_len);
    return v;
}

const std::string_view kSpmSpace = "\xe2\x96\x81";  // U+2581, SentencePiece's visible space

// Texts llama.cpp treats as control tokens whatever their stored type: end-of-turn /
// end-of-generation markers and fill-in-the-middle markers of the model families it knows.
const char* const kControlLooking[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
    "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>",
    "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~[",
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>",
    "<|code_prefix|>", "<|prefix|>", "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
    "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>",
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>",
    "<|code_middle|>", "<|middle|>", "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", "<|fim_repo|>",
    "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", "<|file_sep|>"};

// Of those, the ones that end generation.
const char* const kEndOfGeneration[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
    "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>",
    "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~[",
    "<|fim_pad|>", "<|fim_repo|>", "<|repo_name|>", "<|file_sep|>"};

// A byte's fallback token text in SentencePiece vocabularies: <0xXX>.
std::string byte_token_name(uint8_t byte) {
    static const char* hex = "0123456789ABCDEF";
    return {'<', '0', 'x', hex[byte >> 4], hex[byte & 15], '>'};
}

// The UTF-8 characters of a text as a linked chain that merges shrink in place; shared
// by byte-level BPE (merge ranks) and SentencePiece BPE (token scores).
struct SymbolChain {
    struct Sym { size_t begin, len; int prev, next; };
    std::string_view text;
    std::vector<Sym> syms;

    explicit SymbolChain(std::string_view t) : text(t) {
        for (size_t off = 0; off < t.size();) {
            const size_t len = std::min(t.size() - off, unicode::utf8_len(uint8_t(t[off])));
            syms.push_back({off, len, int(syms.size()) - 1, -1});
            off += len;
        }
        for (size_t i = 0; i + 1 < syms.size(); ++i) syms[i].next = int(i + 1);
    }
    std::string_view at(int i) const { return text.substr(syms[size_t(i)].begin, syms[size_t(i)].len); }
    // The two symbols joined, as they stand now.
    std::string_view joined(int l, int r) const { return text.substr(syms[size_t(l)].begin, syms[size_t(l)].len + syms[size_t(r)].len); }
    // Merges r into l unless the queued pair is stale: a side already merged away, or
    // the pair no longer the one queued (its merged length changed).
    bool merge(int l, int r, size_t queued_len) {
        Sym& a = syms[size_t(l)];
        Sym& b = syms[size_t(r)];
        if (a.len == 0 || b.len == 0 || a.next != r || a.len + b.len != queued_len) return false;
        a.len += b.len;
        b.len = 0;
        a.next = b.next;
        if (b.next >= 0) syms[size_t(b.next)].prev = l;
        return true;
    }
};

// Queues every adjacent pair, then merges best-first until the queue is empty.
// `consider(l, r)` queues the pair if it may merge; queue entries carry left, right and len.
template <typename Queue, typename Consider>
void merge_best_first(SymbolChain& chain, Queue& queue, Consider consider) {
    for (size_t i = 0; i + 1 < chain.syms.size(); ++i) consider(int(i), int(i + 1));
    while (!queue.empty()) {
        const auto p = queue.top();
        queue.pop();
        if (!chain.merge(p.left, p.right, p.len)) continue;
        consider(chain.syms[size_t(p.left)].prev, p.left);
        consider(p.left, chain.syms[size_t(p.left)].next);
    }
}

}  // namespace

Tokenizer Tokenizer::from_gguf(const gguf::File& f) {
    Tokenizer t;
    const gguf::Value* model = f.find("tokenizer.ggml.model");
    if (!model) RILL_FAIL("missing metadata key 'tokenizer.ggml.model': the file has no tokenizer");
    const std::string_view model_name = model->as_string();
    if (model_name == "gpt2") t.kind_ = VocabKind::Bpe;
    else if (model_name == "llama") t.kind_ = VocabKind::Spm;
    else if (model_name == "gemma4") t.kind_ = VocabKind::Bpe, t.escape_spaces_ = true;
    else RILL_FAIL("unsupported tokenizer model '%s' (Rill supports 'gpt2', 'llama' and 'gemma4')", std::string(model_name).c_str());

    const gguf::Value* tokens = array_of(f, "tokenizer.ggml.tokens", gguf::ValueType::STRING, SIZE_MAX, true);
    const size_t n = size_t(tokens->count);
    if (n == 0) RILL_FAIL("metadata key 'tokenizer.ggml.tokens' is empty");
    if (n > size_t(INT32_MAX)) RILL_FAIL("vocabulary of %zu tokens is too large", n);
    const gguf::Value* scores = array_of(f, "tokenizer.ggml.scores", gguf::ValueType::FLOAT32, n, false);
    const gguf::Value* types = array_of(f, "tokenizer.ggml.token_type", gguf::ValueType::INT32, n, false);

    t.tokens_.resize(n);
    t.by_text_.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        Token& tok = t.tokens_[i];
        tok.text = std::string(tokens->strings[i]);
        if (tok.text.empty()) tok.text = "[EMPTY_" + std::to_string(i) + "]";
        if (scores) tok.score = float(scores->float_at(i));
        if (types) {
            const int64_t ty = types->int_at(i);
            tok.type = (ty >= 1 && ty <= 6) ? TokenType(ty) : TokenType::Undefined;
        }
        switch (tok.type) {
            case TokenType::Normal: tok.attr = kNormal; break;
            case TokenType::Unknown: tok.attr = kUnknown; break;
            case TokenType::Control: tok.attr = kControl; break;
            case TokenType::UserDefined: tok.attr = kUserDefined; break;
            case TokenType::Byte: tok.attr = kByte; break;
            case TokenType::Unused: tok.attr = kUnused; break;
            default: tok.attr = 0; break;
        }
        t.by_text_[tok.text] = TokenId(i);  // a repeated text maps to its last id, as in llama.cpp
    }

    if (t.kind_ == VocabKind::Bpe) {
        const gguf::Value* merges = array_of(f, "tokenizer.ggml.merges", gguf::ValueType::STRING, SIZE_MAX, true);
        t.n_merges_ = size_t(merges->count);
        t.ranks_.reserve(t.n_merges_);
        for (size_t i = 0; i < t.n_merges_; ++i) {
            const std::string_view m = merges->strings[i];
            const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string_view::npos;
            if (sp == std::string_view::npos) RILL_FAIL("tokenizer merge %zu ('%s') has no space separating its two parts", i, std::string(m).c_str());
            t.ranks_.emplace(merge_key(m.substr(0, sp), m.substr(sp + 1)), int(i));
        }
        const gguf::Value* pre = f.find("tokenizer.ggml.pre");
        // gemma4 has one pre-tokenizer whatever the key says (as in llama.cpp), and no default ids.
        const std::string pre_name = t.escape_spaces_ ? "gemma4" : pre ? std::string(pre->as_string()) : "default";
        const auto kind = pretokenizer_from_name(pre_name);
        if (!kind) RILL_FAIL("unsupported pre-tokenizer '%s' (tokenizer.ggml.pre)", pre_name.c_str());
        t.pre_ = *kind;
        t.bos_ = t.eos_ = t.escape_spaces_ ? kNoToken : 11;
        t.clean_spaces_ = true;
        if (t.pre_ == PreTokenizer::Llama3) { t.ignore_merges_ = true; t.add_bos_ = true; }
        if (t.pre_ == PreTokenizer::Qwen2 || t.pre_ == PreTokenizer::Qwen35) t.clean_spaces_ = false;
    } else {
        t.bos_ = 1;
        t.eos_ = 2;
        t.unk_ = 0;
        t.add_space_prefix_ = true;
        t.add_bos_ = true;
    }

    auto read_id = [&](const char* key, TokenId& id) {
        if (const gguf::Value* v = f.find(key)) {
            const int64_t x = v->as_int();
            if (x >= 0 && size_t(x) < n) id = TokenId(x);  // an out-of-range id keeps the default, as in llama.cpp
        }
    };
    read_id("tokenizer.ggml.bos_token_id", t.bos_);
    read_id("tokenizer.ggml.eos_token_id", t.eos_);
    read_id("tokenizer.ggml.eot_token_id", t.eot_);
    read_id("tokenizer.ggml.unknown_token_id", t.unk_);
    if (const gguf::Value* v = f.find("tokenizer.ggml.add_bos_token")) t.add_bos_ = v->as_bool();
    if (const gguf::Value* v = f.find("tokenizer.ggml.add_eos_token")) t.add_eos_ = v->as_bool();
    if (const gguf::Value* v = f.find("tokenizer.ggml.add_space_prefix")) t.add_space_prefix_ = v->as_bool();
    if (t.escape_spaces_) t.add_bos_ = true, t.add_space_prefix_ = false;  // llama.cpp's Gemma 4 override
    if (t.bos_ >= TokenId(n)) t.bos_ = kNoToken;
    if (t.eos_ >= TokenId(n)) t.eos_ = kNoToken;
    if (t.unk_ >= TokenId(n)) t.unk_ = kNoToken;

    const gguf::Value* general_name = f.find("general.name");
    t.apply_attribute_overrides(general_name && general_name->type == gguf::ValueType::STRING ? general_name->str : "");
    std::stable_sort(t.special_.begin(), t.special_.end(),
                     [&](TokenId a, TokenId b) { return t.tokens_[a].text.size() > t.tokens_[b].text.size(); });
    return t;
}

void Tokenizer::apply_attribute_overrides(std::string_view model_name) {
    auto add_eog = [&](TokenId id) {
        if (id != kNoToken && std::find(eog_.begin(), eog_.end(), id) == eog_.end()) eog_.push_back(id);
    };
    for (const char* text : kControlLooking) {
        const TokenId id = find(text);
        if (id != kNoToken) tokens_[size_t(id)].attr |= kControl;
    }
    for (const char* text : kEndOfGeneration) add_eog(find(text));
    add_eog(eos_);
    add_eog(eot_);
    // Two exceptions llama.cpp makes: harmony-style vocabularies (<|return|> and <|call|>
    // or <|calls|> and <|flush|>) keep <|end|> as an ordinary user token, and vocabularies with
    // <|tool_response> keep </s> as ordinary text.
    auto erase_eog = [&](TokenId id, uint8_t attr) {
        eog_.erase(std::remove(eog_.begin(), eog_.end(), id), eog_.end());
        tokens_[size_t(id)].attr = attr;
    };
    const TokenId end = find("<|end|>");
    const bool has_call = find("<|call|>") != kNoToken || find("<|calls|>") != kNoToken;
    if (end != kNoToken && has_call && (find("<|return|>") != kNoToken || find("<|flush|>") != kNoToken)) erase_eog(end, kUserDefined);
    const TokenId s_end = find("</s>");
    if (s_end != kNoToken && find("<|tool_response>") != kNoToken) erase_eog(s_end, kNormal);

    for (size_t i = 0; i < tokens_.size(); ++i)
        if (tokens_[i].attr & (kControl | kUserDefined | kUnknown)) special_.push_back(TokenId(i));

    // Phi-3 (recognised by model name, as llama.cpp does): whitespace after its special
    // tokens belongs to the token, except after <unk>, <s> and <|endoftext|>.
    std::string name(model_name);
    for (auto& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
    if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
        for (TokenId id : special_) tokens_[size_t(id)].attr |= kRstrip;
        if (s_end != kNoToken) tokens_[size_t(s_end)].attr |= kRstrip;
        for (const char* text : {"<unk>", "<s>", "<|endoftext|>"}) {
            const TokenId id = find(text);
            if (id != kNoToken) tokens_[size_t(id)].attr &= uint8_t(~kRstrip);
        }
    }
}

TokenId Tokenizer::find(std::string_view text) const {
    const auto it = by_text_.find(std::string(text));
    return it == by_text_.end() ? kNoToken : it->second;
}

bool Tokenizer::is_end_of_generation(TokenId id) const {
    return std::find(eog_.begin(), eog_.end(), id) != eog_.end();
}

int Tokenizer::bpe_rank(std::string_view left, std::string_view right) const {
    const auto it = ranks_.find(merge_key(left, right));
    return it == ranks_.end() ? -1 : it->second;
}

// Splits the text at every occurrence of the special tokens, longest tokens first.
std::vector<Tokenizer::Fragment> Tokenizer::partition(std::string_view text, bool parse_special) const {
    std::vector<Fragment> frags;
    if (!text.empty()) frags.push_back({kNoToken, 0, text.size()});
    for (TokenId id : special_) {
        const Token& tok = tokens_[size_t(id)];
        if (!parse_special && (tok.attr & (kControl | kUnknown))) continue;
        std::vector<Fragment> next;
        next.reserve(frags.size());
        for (const Fragment& fr : frags) {
            if (fr.token != kNoToken) { next.push_back(fr); continue; }
            size_t pos = fr.begin;
            auto is_space = [&](size_t i) { return std::isspace(static_cast<unsigned char>(text[i])) != 0; };
            while (pos < fr.end) {
                const size_t hit = text.substr(0, fr.end).find(tok.text, pos);
                if (hit == std::string_view::npos) break;
                size_t left_end = hit;
                if (tok.attr & kLstrip)
                    while (left_end > pos && is_space(left_end - 1)) --left_end;
                if (left_end > pos) next.push_back({kNoToken, pos, left_end});
                next.push_back({id, hit, hit + tok.text.size()});
                pos = hit + tok.text.size();
                if (tok.attr & kRstrip)
                    while (pos < fr.end && is_space(pos)) ++pos;
            }
            if (pos < fr.end) next.push_back({kNoToken, pos, fr.end});
        }
        frags = std::move(next);
    }
    return frags;
}

void Tokenizer::tokenize_bpe_word(const std::string& word, std::vector<TokenId>& out) const {
    // Whole words that are tokens: always (ignore_merges), or (gemma4) runs of newlines.
    if (ignore_merges_ || (escape_spaces_ && word.find_first_not_of('\n') == std::string::npos)) {
        const TokenId whole = find(word);
        if (whole != kNoToken) { out.push_back(whole); return; }
    }
    SymbolChain chain(word);
    struct Pair { int rank; int left, right; size_t len; };
    auto cmp = [](const Pair& a, const Pair& b) { return a.rank != b.rank ? a.rank > b.rank : a.left > b.left; };
    std::priority_queue<Pair, std::vector<Pair>, decltype(cmp)> queue(cmp);
    auto consider = [&](int l, int r) {
        if (l < 0 || r < 0) return;
        const int rank = bpe_rank(chain.at(l), chain.at(r));
        if (rank >= 0) queue.push({rank, l, r, chain.joined(l, r).size()});
    };
    merge_best_first(chain, queue, consider);
    for (size_t i = 0; i < chain.syms.size(); ++i) {
        if (chain.syms[i].len == 0) continue;
        const std::string_view piece = chain.at(int(i));
        const TokenId id = find(piece);
        if (id != kNoToken) { out.push_back(id); continue; }
        for (char c : piece) {  // no token for the merged text: fall back to single bytes where they exist
            const TokenId b = escape_spaces_ ? find(byte_token_name(uint8_t(c))) : find(std::string(1, c));
            if (b != kNoToken) out.push_back(b);
        }
    }
}

TokenId Tokenizer::spm_byte_token(uint8_t byte) const {
    TokenId id = find(byte_token_name(byte));
    if (id == kNoToken) id = find(std::string(1, char(byte)));
    return id != kNoToken ? id : unk_;
}

void Tokenizer::tokenize_spm(const std::string& text, std::vector<TokenId>& out) const {
    SymbolChain chain(text);
    if (chain.syms.empty()) return;
    struct Pair { float score; int left, right; size_t len; };
    auto cmp = [](const Pair& a, const Pair& b) { return a.score != b.score ? a.score < b.score : a.left > b.left; };
    std::priority_queue<Pair, std::vector<Pair>, decltype(cmp)> queue(cmp);
    std::unordered_map<std::string, std::pair<int, int>> merged_from;  // text -> the two symbols it was made of
    auto consider = [&](int l, int r) {
        if (l < 0 || r < 0) return;
        const std::string_view joined = chain.joined(l, r);
        const TokenId id = find(joined);
        if (id == kNoToken) return;
        queue.push({tokens_[size_t(id)].score, l, r, joined.size()});
        merged_from[std::string(joined)] = {l, r};
    };
    merge_best_first(chain, queue, consider);
    // A symbol with no token of its own is split back into the pieces it was merged
    // from, and finally into byte tokens.
    auto emit = [&](auto&& self, int i) -> void {
        const std::string_view piece = chain.at(i);
        const TokenId id = find(piece);
        if (id != kNoToken) { out.push_back(id); return; }
        const auto it = merged_from.find(std::string(piece));
        if (it == merged_from.end()) {
            for (char c : piece) {
                const TokenId b = spm_byte_token(uint8_t(c));
                if (b != kNoToken) out.push_back(b);
            }
            return;
        }
        self(self, it->second.first);
        self(self, it->second.second);
    };
    for (int i = 0; i != -1; i = chain.syms[size_t(i)].next) emit(emit, i);
}

std::vector<TokenId> Tokenizer::tokenize(std::string_view text, bool add_special, bool parse_special) const {
    std::vector<TokenId> out;
    const auto frags = partition(text, parse_special);
    if (add_special && add_bos_ && bos_ != kNoToken) out.push_back(bos_);
    bool after_special = true;  // SentencePiece prefixes a space at the start and after special tokens
    for (const Fragment& fr : frags) {
        if (fr.token != kNoToken) {
            out.push_back(fr.token);
            after_special = true;
            continue;
        }
        const std::string_view piece = text.substr(fr.begin, fr.end - fr.begin);
        if (kind_ == VocabKind::Bpe && escape_spaces_) {
            std::string s(piece);
            replace_all(s, " ", kSpmSpace);
            for (const std::string& word : pretokenize(pre_, s)) tokenize_bpe_word(word, out);
        } else if (kind_ == VocabKind::Bpe) {
            for (const std::string& word : pretokenize(pre_, piece)) {
                std::string encoded;
                for (unsigned char c : word) encoded += byte_map().encode[c];
                tokenize_bpe_word(encoded, out);
            }
        } else {
            std::string s = (add_space_prefix_ && after_special) ? " " : "";
            s.append(piece);
            replace_all(s, " ", kSpmSpace);
            tokenize_spm(s, out);
            after_special = false;
        }
    }
    if (add_special && add_eos_ && eos_ != kNoToken) out.push_back(eos_);
    return out;
}

std::string Tokenizer::token_to_piece(TokenId id, bool special) const {
    if (id < 0 || size_t(id) >= tokens_.size()) RILL_FAIL("token id %d is out of range (vocabulary has %zu tokens)", id, tokens_.size());
    const Token& tok = tokens_[size_t(id)];
    if (tok.attr & (kControl | kUnknown)) return special ? tok.text : std::string();
    if (tok.attr & kUserDefined) return tok.text;
    if (tok.attr & kNormal) {
        std::string s;
        if (kind_ == VocabKind::Spm || escape_spaces_) {
            s = tok.text;
            replace_all(s, kSpmSpace, " ");
            return s;
        }
        for (uint32_t cp : unicode::decode_utf8(tok.text)) {
            const auto it = byte_map().decode.find(cp);
            if (it != byte_map().decode.end()) {
                s += char(it->second);
            } else {  // not a byte-level character: keep it visible rather than drop it
                std::string utf8;
                unicode::append_utf8(utf8, cp);
                s += "[UNK_BYTE_0x";
                for (unsigned char c : utf8) s += strprintf("%02x", c);
                s += tok.text + "]";
            }
        }
        return s;
    }
    if (tok.attr & kByte) {
        if ((kind_ == VocabKind::Spm || escape_spaces_) && tok.text.size() == 6 && tok.text.compare(0, 3, "<0x") == 0 && tok.text[5] == '>') {
            char* end = nullptr;
            const std::string hex = tok.text.substr(3, 2);
            const long b = std::strtol(hex.c_str(), &end, 16);
            if (end == hex.c_str() + 2) return std::string(1, char(b));
        }
        const auto cps = unicode::decode_utf8(tok.text);
        const auto it = cps.size() == 1 ? byte_map().decode.find(cps[0]) : byte_map().decode.end();
        return it != byte_map().decode.end() ? std::string(1, char(it->second)) : tok.text;
    }
    return std::string();  // unused / undefined tokens have no text
}

std::string Tokenizer::detokenize(const std::vector<TokenId>& ids, bool special) const {
    std::string text;
    for (size_t i = 0; i < ids.size(); ++i) {
        std::string piece = token_to_piece(ids[i], special);
        if (i == 0 && add_space_prefix_ && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
        text += piece;
    }
    if (!clean_spaces_ || text.empty()) return text;
    // llama.cpp's clean_up_tokenization_spaces: " ?" " !" " ." " ," lose the space,
    // a lone " ' " becomes "'", and " 's" " 'm" " 're" " 've" lose the space.
    std::string a(1, text[0]);
    for (size_t i = 1; i < text.size(); ++i) {
        const char x = text[i];
        if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) a.pop_back();
        a += x;
    }
    std::string b(1, a[0]);
    for (size_t i = 1; i < a.size(); ++i) {
        const char x = a[i];
        if (x == '\'' && i + 1 < a.size() && a[i - 1] == ' ' && a[i + 1] == ' ') {
            b.pop_back();
            b += x;
            a[++i] = '\0';  // the following space is dropped; the NUL keeps later checks as llama.cpp has them
            continue;
        }
        b += x;
    }
    std::string c(1, b[0]);
    for (size_t i = 1; i < b.size(); ++i) {
        const char x = b[i];
        if (b[i - 1] == ' ' && x == '\'' && i + 1 < b.size()) {
            const char x1 = b[i + 1];
            const char x2 = i + 2 < b.size() ? b[i + 2] : '\0';
            if (x1 == 's' || x1 == 'm' || (i + 2 < b.size() && ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')))) c.pop_back();
        }
        c += x;
    }
    return c;
}

std::string StreamDecoder::push(TokenId id) {
    pending_ += tok_.token_to_piece(id, special_);
    // Hold back a trailing UTF-8 sequence that is not complete yet.
    size_t keep = 0;
    for (size_t back = 1; back <= std::min<size_t>(4, pending_.size()); ++back) {
        const auto c = uint8_t(pending_[pending_.size() - back]);
        if ((c & 0xc0) == 0x80) continue;  // continuation byte: look further back
        if (c >= 0xc0 && unicode::utf8_len(c) > back) keep = back;
        break;
    }
    std::string out = pending_.substr(0, pending_.size() - keep);
    pending_.erase(0, pending_.size() - keep);
    return out;
}

std::string StreamDecoder::flush() {
    std::string out;
    out.swap(pending_);
    return out;
}

}  // namespace rill
