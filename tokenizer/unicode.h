// Unicode facts the tokenizer needs: UTF-8 decoding (lenient, as llama.cpp),
// general-category flags (Unicode 15.1, as llama.cpp), White_Space, lowercase.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rill::unicode {

enum Flag : uint16_t {
    kUndefined = 0x01, kNumber = 0x02, kLetter = 0x04, kSeparator = 0x08,
    kMark = 0x10, kPunctuation = 0x20, kSymbol = 0x40, kControl = 0x80,
    kWhitespace = 0x100,
};

// Category flags of a code point, plus kWhitespace. Beyond U+10FFFF: kUndefined.
uint16_t flags(uint32_t cp);
uint32_t to_lower(uint32_t cp);

// Decodes UTF-8 the way llama.cpp does: a malformed sequence yields U+FFFD and
// skips one byte; no overlong or surrogate checks.
std::vector<uint32_t> decode_utf8(std::string_view s);
void append_utf8(std::string& out, uint32_t cp);
// Length of the UTF-8 sequence a lead byte announces (1 for a stray continuation byte).
inline size_t utf8_len(uint8_t lead) {
    static const uint8_t lens[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lens[lead >> 4];
}
// Whether s is well-formed UTF-8 (shortest form, no surrogates, <= U+10FFFF).
bool is_valid_utf8(std::string_view s);

}  // namespace rill::unicode
