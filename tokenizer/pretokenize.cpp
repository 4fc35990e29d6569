#include "tokenizer/pretokenize.h"

#include <cstdint>

#include "tokenizer/unicode.h"

namespace rill {
namespace {

using unicode::kLetter;
using unicode::kMark;
using unicode::kNumber;
using unicode::kWhitespace;

// The differences between the GPT-2-family split expressions, as data.
struct SplitRules {
    bool contractions_any_case;  // (?i:'s|'t|...) rather than 's|'t|...
    bool any_prefix_letters;     // [^\r\n\p{L}\p{N}]?\p{L}+ rather than ' ?\p{L}+'
    bool marks_are_letters;      // [\p{L}\p{M}]+ (Qwen 3.5)
    int max_digits;              // 0: ' ?\p{N}+'; otherwise \p{N}{1,max_digits}
    bool newline_runs;           // [\r\n]* after punctuation and the \s*[\r\n]+ branch
};

constexpr SplitRules kGpt2{false, false, false, 0, false};
constexpr SplitRules kLlama3{true, true, false, 3, true};
constexpr SplitRules kQwen2{true, true, false, 1, true};
constexpr SplitRules kQwen35{true, true, true, 1, true};

// A piece [begin, end) of the code points: positions outside it read as "nothing"
// (no code point, no flags), which is how the split expressions see the text's edges.
struct Piece {
    const std::vector<uint32_t>& cps;
    size_t begin, end;
    static constexpr uint32_t kNone = 0xffffffffu;
    uint32_t cp(size_t i) const { return i >= begin && i < end ? cps[i] : kNone; }
    uint16_t flags(size_t i) const { return i >= begin && i < end ? unicode::flags(cps[i]) : 0; }
};

// Appends the lengths of the words of one piece to `out`.
void split_gpt2_family(const SplitRules& r, const Piece& p, std::vector<size_t>& out) {
    const uint16_t letterish = r.marks_are_letters ? (kLetter | kMark) : kLetter;
    const uint16_t not_punct = kWhitespace | kLetter | kNumber | (r.marks_are_letters ? kMark : 0);
    auto lower = [&](uint32_t c) { return r.contractions_any_case ? unicode::to_lower(c) : c; };
    auto is_newline = [](uint32_t c) { return c == '\r' || c == '\n'; };

    size_t prev = p.begin;
    auto emit = [&](size_t end) {
        const size_t len = end - prev;
        if (len) out.push_back(len);
        prev = end;
        return len;
    };

    for (size_t pos = p.begin; pos < p.end;) {
        const uint32_t c = p.cp(pos);
        const uint16_t f = p.flags(pos);

        if (c == '\'' && pos + 1 < p.end) {  // contractions
            const uint32_t c1 = lower(p.cp(pos + 1));
            if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') { pos += emit(pos + 2); continue; }
            if (pos + 2 < p.end) {
                const uint32_t c2 = lower(p.cp(pos + 2));
                if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) { pos += emit(pos + 3); continue; }
            }
        }

        const uint16_t f_after_space = c == ' ' ? p.flags(pos + 1) : f;
        if (r.any_prefix_letters) {  // [^\r\n\p{L}\p{N}]?\p{L}+
            if (!is_newline(c) && !(f & kNumber) && ((f & letterish) || (p.flags(pos + 1) & letterish))) {
                ++pos;
                while (p.flags(pos) & letterish) ++pos;
                emit(pos);
                continue;
            }
        } else if (f_after_space & kLetter) {  // ' ?\p{L}+'
            pos += (c == ' ');
            while (p.flags(pos) & kLetter) ++pos;
            emit(pos);
            continue;
        }

        if (r.max_digits == 0) {  // ' ?\p{N}+'
            if (f_after_space & kNumber) {
                pos += (c == ' ');
                while (p.flags(pos) & kNumber) ++pos;
                emit(pos);
                continue;
            }
        } else if (f & kNumber) {  // \p{N}{1,max}
            size_t start = pos;
            while (p.flags(pos) & kNumber) {
                if (++pos - start >= size_t(r.max_digits)) { emit(pos); start = pos; }
            }
            emit(pos);
            continue;
        }

        // ' ?[^\s\p{L}\p{N}]+' (+ '[\r\n]*'). The GPT-2 form needs a code point after an
        // optional space; the later forms only one at the start (llama.cpp's behaviour).
        const bool starts = r.newline_runs ? f != 0 : f_after_space != 0;
        if (!(f_after_space & not_punct) && starts) {
            pos += (c == ' ');
            uint16_t g = f_after_space;
            while (!(g & not_punct) && g != 0) g = p.flags(++pos);
            if (r.newline_runs)
                while (is_newline(p.cp(pos))) ++pos;
            emit(pos);
            continue;
        }

        size_t n_ws = 0, after_last_newline = 0;
        while (p.flags(pos + n_ws) & kWhitespace) {
            if (is_newline(p.cp(pos + n_ws))) after_last_newline = pos + n_ws + 1;
            ++n_ws;
        }
        if (r.newline_runs && after_last_newline) { pos = after_last_newline; emit(pos); continue; }  // \s*[\r\n]+
        if (n_ws > 1 && p.cp(pos + n_ws) != Piece::kNone) { pos += n_ws - 1; emit(pos); continue; }  // \s+(?!\S)
        if (n_ws > 0) { pos += n_ws; emit(pos); continue; }                                          // \s+
        emit(++pos);
    }
}

// Splits a piece into maximal runs of code points satisfying `in_class` and the gaps between them.
template <typename Pred>
void split_runs(const Piece& p, std::vector<size_t>& out, Pred in_class) {
    size_t pos = p.begin;
    while (pos < p.end) {
        const size_t start = pos;
        const bool inside = in_class(p.cps[pos]);
        while (pos < p.end && in_class(p.cps[pos]) == inside) ++pos;
        out.push_back(pos - start);
    }
}

// Applies one splitting stage to every piece of `lengths`.
template <typename Stage>
std::vector<size_t> refine(const std::vector<uint32_t>& cps, const std::vector<size_t>& lengths, Stage stage) {
    std::vector<size_t> out;
    size_t start = 0;
    for (size_t len : lengths) {
        stage(Piece{cps, start, start + len}, out);
        start += len;
    }
    return out;
}

bool default_punct(uint32_t c) {
    if (c < 0x80) {
        // ASCII \p{P} as llama.cpp's expression sees it, plus $+<=>^~|
        return (c >= 0x21 && c <= 0x2f) || c == 0x3a || c == 0x3b || (c >= 0x3c && c <= 0x40) ||
               (c >= 0x5b && c <= 0x5f) || c == 0x7b || c == 0x7c || c == 0x7d || c == 0x7e;
    }
    const uint16_t f = unicode::flags(c);
    return !(f & kWhitespace) && (f & unicode::kPunctuation);
}

bool default_number(uint32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    const uint16_t f = unicode::flags(c);
    return !(f & kWhitespace) && (f & kNumber);
}

// Digit triples: every run of three ASCII digits is a word; leftover digits join the gap.
void split_digit_triples(const Piece& p, std::vector<size_t>& out) {
    auto digit = [](uint32_t c) { return c >= '0' && c <= '9'; };
    size_t gap_start = p.begin, pos = p.begin;
    while (pos < p.end) {
        if (pos + 3 <= p.end && digit(p.cps[pos]) && digit(p.cps[pos + 1]) && digit(p.cps[pos + 2])) {
            if (pos > gap_start) out.push_back(pos - gap_start);
            out.push_back(3);
            pos += 3;
            gap_start = pos;
        } else {
            ++pos;
        }
    }
    if (p.end > gap_start) out.push_back(p.end - gap_start);
}

}  // namespace

std::optional<PreTokenizer> pretokenizer_from_name(std::string_view name) {
    if (name.empty() || name == "default") return PreTokenizer::Default;
    if (name == "gpt-2" || name == "phi-2" || name == "mpt" || name == "olmo") return PreTokenizer::Gpt2;
    if (name == "llama3" || name == "llama-v3" || name == "llama-bpe" || name == "falcon3" || name == "lfm2") return PreTokenizer::Llama3;
    if (name == "qwen2" || name == "deepseek-r1-qwen") return PreTokenizer::Qwen2;
    if (name == "qwen35") return PreTokenizer::Qwen35;
    if (name == "gemma4") return PreTokenizer::Lines;
    return std::nullopt;
}

std::string_view pretokenizer_name(PreTokenizer p) {
    switch (p) {
        case PreTokenizer::Default: return "default";
        case PreTokenizer::Gpt2: return "gpt-2";
        case PreTokenizer::Llama3: return "llama3";
        case PreTokenizer::Qwen2: return "qwen2";
        case PreTokenizer::Qwen35: return "qwen35";
        case PreTokenizer::Lines: return "gemma4";
    }
    return "?";
}

std::vector<std::string> pretokenize(PreTokenizer kind, std::string_view text) {
    const std::vector<uint32_t> cps = unicode::decode_utf8(text);
    std::vector<size_t> lengths{cps.size()};
    if (cps.empty()) return {};
    auto family = [&](const SplitRules& r) {
        return refine(cps, lengths, [&](const Piece& p, std::vector<size_t>& out) { split_gpt2_family(r, p, out); });
    };
    switch (kind) {
        case PreTokenizer::Gpt2: lengths = family(kGpt2); break;
        case PreTokenizer::Llama3: lengths = family(kLlama3); break;
        case PreTokenizer::Qwen2: lengths = family(kQwen2); break;
        case PreTokenizer::Qwen35: lengths = family(kQwen35); break;
        case PreTokenizer::Lines:  // runs of newlines and runs of anything else
            lengths.clear();
            for (size_t i = 0; i < cps.size();) {
                const bool nl = cps[i] == '\n';
                size_t j = i;
                while (j < cps.size() && (cps[j] == '\n') == nl) ++j;
                lengths.push_back(j - i);
                i = j;
            }
            break;
        case PreTokenizer::Default:
            lengths = refine(cps, lengths, [](const Piece& p, std::vector<size_t>& out) { split_runs(p, out, default_punct); });
            lengths = family(kGpt2);
            lengths = refine(cps, lengths, [](const Piece& p, std::vector<size_t>& out) { split_runs(p, out, default_number); });
            lengths = refine(cps, lengths, split_digit_triples);
            break;
    }
    std::vector<std::string> words;
    words.reserve(lengths.size());
    size_t start = 0;
    for (size_t len : lengths) {
        std::string w;
        for (size_t i = start; i < start + len; ++i) unicode::append_utf8(w, cps[i]);
        words.push_back(std::move(w));
        start += len;
    }
    return words;
}

}  // namespace rill
