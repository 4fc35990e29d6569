#include "tokenizer/unicode.h"

#include <algorithm>

namespace rill::unicode {
namespace {

struct UnicodeRange { uint32_t start; uint16_t flags; };
struct UnicodePair { uint32_t from, to; };

#include "unicode_tables.inc"

}  // namespace

uint16_t flags(uint32_t cp) {
    if (cp >= 0x110000) return kUndefined;
    const auto* end = std::end(kCategoryRanges);
    const auto* it = std::upper_bound(std::begin(kCategoryRanges), end, cp,
                                      [](uint32_t c, const UnicodeRange& r) { return c < r.start; });
    uint16_t f = (it - 1)->flags;
    if (std::binary_search(std::begin(kWhitespaceList), std::end(kWhitespaceList), cp)) f |= kWhitespace;
    return f;
}

uint32_t to_lower(uint32_t cp) {
    const auto* it = std::lower_bound(std::begin(kLowercase), std::end(kLowercase), cp,
                                      [](const UnicodePair& p, uint32_t c) { return p.from < c; });
    return (it != std::end(kLowercase) && it->from == cp) ? it->to : cp;
}

std::vector<uint32_t> decode_utf8(std::string_view s) {
    std::vector<uint32_t> out;
    out.reserve(s.size());
    const auto* p = reinterpret_cast<const uint8_t*>(s.data());
    const size_t n = s.size();
    size_t i = 0;
    auto cont = [&](size_t k) { return i + k < n && (p[i + k] & 0xc0) == 0x80; };
    while (i < n) {
        const uint8_t b = p[i];
        if (b < 0x80) { out.push_back(b); i += 1; continue; }
        if ((b & 0xe0) == 0xc0 && cont(1)) {
            out.push_back(uint32_t(b & 0x1f) << 6 | (p[i + 1] & 0x3f));
            i += 2;
        } else if ((b & 0xf0) == 0xe0 && cont(1) && cont(2)) {
            out.push_back(uint32_t(b & 0x0f) << 12 | uint32_t(p[i + 1] & 0x3f) << 6 | (p[i + 2] & 0x3f));
            i += 3;
        } else if ((b & 0xf8) == 0xf0 && cont(1) && cont(2) && cont(3)) {
            out.push_back(uint32_t(b & 0x07) << 18 | uint32_t(p[i + 1] & 0x3f) << 12 | uint32_t(p[i + 2] & 0x3f) << 6 |
                          (p[i + 3] & 0x3f));
            i += 4;
        } else {
            out.push_back(0xfffd);
            i += 1;
        }
    }
    return out;
}

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xc0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out += char(0xe0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3f));
        out += char(0x80 | (cp & 0x3f));
    } else {
        out += char(0xf0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3f));
        out += char(0x80 | ((cp >> 6) & 0x3f));
        out += char(0x80 | (cp & 0x3f));
    }
}

bool is_valid_utf8(std::string_view s) {
    const auto* p = reinterpret_cast<const uint8_t*>(s.data());
    const size_t n = s.size();
    for (size_t i = 0; i < n;) {
        const uint8_t b = p[i];
        size_t len;
        uint32_t cp, min;
        if (b < 0x80) { i += 1; continue; }
        if ((b & 0xe0) == 0xc0) { len = 2; cp = b & 0x1f; min = 0x80; }
        else if ((b & 0xf0) == 0xe0) { len = 3; cp = b & 0x0f; min = 0x800; }
        else if ((b & 0xf8) == 0xf0) { len = 4; cp = b & 0x07; min = 0x10000; }
        else return false;
        if (i + len > n) return false;
        for (size_t k = 1; k < len; ++k) {
            if ((p[i + k] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += len;
    }
    return true;
}

}  // namespace rill::unicode
