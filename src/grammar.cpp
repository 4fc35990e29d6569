#include "src/grammar.h"

#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <unordered_map>

#include "rill/error.h"

namespace rill {

using Elem = Grammar::Elem;

namespace {
template <class Stacks>
bool has_empty(const Stacks& s) { return std::find(s.begin(), s.end(), nullptr) != s.end(); }
}  // namespace

bool Grammar::CharClass::matches(uint32_t cp) const {
    bool in = false;
    for (const auto& [lo, hi] : ranges) in |= lo <= cp && cp <= hi;
    return in != negated;
}

bool Grammar::CharClass::matches_any(uint32_t lo, uint32_t hi) const {
    if (!negated) {
        for (const auto& [a, b] : ranges)
            if (a <= hi && lo <= b) return true;
        return false;
    }
    // Negated: some code point of [lo, hi] lies outside every range.
    std::vector<std::pair<uint32_t, uint32_t>> r = ranges;
    std::sort(r.begin(), r.end());
    uint32_t next = lo;  // the first code point not yet known to be excluded
    for (const auto& [a, b] : r) {
        if (b < next) continue;
        if (a > next) return true;
        if (b >= hi) return false;
        next = b + 1;
    }
    return next <= hi;
}

// ---- Parsing ------------------------------------------------------------------------------

class GrammarParser {
public:
    GrammarParser(std::string_view text, const Tokenizer* tok) : s_(text), tok_(tok) {}

    std::shared_ptr<const Grammar> run(std::string_view start) {
        // The names written before '::=' anywhere, so that a group's generated rule never takes
        // the name of one defined further down (a loose scan: a literal that looks like a
        // definition only makes a generated name skip that name).
        for (size_t i = s_.find("::="); i != std::string_view::npos; i = s_.find("::=", i + 3)) {
            size_t e = i;
            while (e > 0 && (s_[e - 1] == ' ' || s_[e - 1] == '\t')) --e;
            size_t b = e;
            while (b > 0 && word_char(s_[b - 1])) --b;
            if (b < e) declared_.insert(std::string(s_.substr(b, e - b)));
        }
        space(true);
        while (p_ < s_.size()) {
            rule();
            space(true);
        }
        for (size_t r = 0; r < defined_.size(); ++r)
            if (!defined_[r]) RILL_FAIL("grammar: rule '%s' is used but not defined (first used at %s)", names_[r].c_str(), first_use_[r].c_str());
        const auto it = index_.find(std::string(start));
        if (it == index_.end()) RILL_FAIL("grammar: no '%.*s' rule (the start of the grammar)", int(start.size()), start.data());
        auto g = std::make_shared<Grammar>();
        g->names_ = names_;
        g->classes_ = std::move(classes_);
        g->start_ = it->second;
        for (const auto& alts : alts_) {
            std::vector<uint32_t> offsets;
            for (const auto& seq : alts) {
                offsets.push_back(uint32_t(g->elems_.size()));
                g->elems_.insert(g->elems_.end(), seq.begin(), seq.end());
                g->elems_.push_back({Elem::End, 0});
            }
            g->rules_.push_back(std::move(offsets));
        }
        refuse_left_recursion(*g);
        return g;
    }

private:
    using Seq = std::vector<Elem>;

    [[noreturn]] void fail(const char* what) const {
        size_t line = 1, col = 1;
        for (size_t i = 0; i < p_ && i < s_.size(); ++i) {
            if (s_[i] == '\n') ++line, col = 1;
            else ++col;
        }
        RILL_FAIL("grammar: %s at line %zu, column %zu", what, line, col);
    }
    std::string where() const {
        size_t line = 1;
        for (size_t i = 0; i < p_ && i < s_.size(); ++i) line += s_[i] == '\n';
        return strprintf("line %zu", line);
    }
    bool at_end() const { return p_ >= s_.size(); }
    char peek(size_t k = 0) const { return p_ + k < s_.size() ? s_[p_ + k] : '\0'; }
    static bool word_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    }

    // Blanks and comments; newlines too where `newlines` (between rules, inside parentheses,
    // after '|').
    void space(bool newlines) {
        while (!at_end()) {
            const char c = peek();
            if (c == ' ' || c == '\t') ++p_;
            else if (c == '#') {
                while (!at_end() && peek() != '\n') ++p_;
            } else if (newlines && (c == '\n' || c == '\r')) ++p_;
            else break;
        }
    }
    std::string name() {
        const size_t b = p_;
        while (!at_end() && word_char(peek())) ++p_;
        if (p_ == b) fail("expected a rule name");
        return std::string(s_.substr(b, p_ - b));
    }
    uint32_t rule_index(const std::string& n) {
        const auto it = index_.find(n);
        if (it != index_.end()) return it->second;
        const uint32_t r = uint32_t(names_.size());
        index_[n] = r;
        names_.push_back(n);
        alts_.emplace_back();
        defined_.push_back(false);
        first_use_.push_back(where());
        return r;
    }
    uint32_t new_rule(const std::string& base) {
        std::string n;
        do n = strprintf("%s-%u", base.c_str(), ++generated_);
        while (index_.count(n) || declared_.count(n));
        const uint32_t r = rule_index(n);
        defined_[r] = true;
        return r;
    }

    void rule() {
        const std::string n = name();
        space(false);
        if (s_.substr(p_, 3) != "::=") fail("expected '::='");
        p_ += 3;
        space(true);
        const uint32_t r = rule_index(n);
        if (defined_[r]) fail(strprintf("rule '%s' defined twice", n.c_str()).c_str());
        defined_[r] = true;
        current_ = n;
        alts_[r] = alternatives(false);
        if (!at_end() && peek() != '\n' && peek() != '\r') fail("expected the end of the rule");
    }

    std::vector<Seq> alternatives(bool nested) {
        std::vector<Seq> out;
        out.push_back(sequence(nested));
        while (peek() == '|') {
            ++p_;
            space(true);
            out.push_back(sequence(nested));
        }
        return out;
    }

    Seq sequence(bool nested) {
        Seq seq;
        for (;;) {
            space(nested);
            const char c = peek();
            if (at_end() || c == '|' || c == ')' || c == '\n' || c == '\r') break;
            size_t begin = seq.size();
            if (c == '"') literal(seq);
            else if (c == '[') seq.push_back({Elem::Chars, char_class()});
            else if (c == '.') {
                ++p_;
                seq.push_back({Elem::Chars, add_class({{}, true})});
            } else if (c == '(') {
                ++p_;
                space(true);
                const uint32_t r = new_rule(current_);
                auto alts = alternatives(true);
                space(true);
                if (peek() != ')') fail("expected ')'");
                ++p_;
                alts_[r] = std::move(alts);
                seq.push_back({Elem::Ref, r});
            } else if (c == '<' || (c == '!' && peek(1) == '<')) {
                seq.push_back(token());
            } else if (word_char(c)) {
                const size_t save = p_;
                const std::string n = name();
                // A name followed by '::=' starts the next rule (its newline was crossed inside a group).
                size_t q = p_;
                while (q < s_.size() && (s_[q] == ' ' || s_[q] == '\t')) ++q;
                if (s_.substr(q, 3) == "::=") {
                    p_ = save;
                    fail("expected the end of the rule before the next rule");
                }
                seq.push_back({Elem::Ref, rule_index(n)});
            } else {
                fail(strprintf("unexpected character '%c'", c).c_str());
            }
            repetition(seq, begin);
        }
        return seq;
    }

    // A repetition operator after the item at seq[begin..] (a literal of several characters is
    // one item): the item is moved into a rule of its own and repeated through rules.
    void repetition(Seq& seq, size_t begin) {
        space(false);
        const char c = peek();
        if (c != '*' && c != '+' && c != '?' && c != '{') return;
        if (seq.size() == begin) fail("a repetition needs something before it");
        ++p_;
        int min = 0, max = -1;  // -1: unbounded
        if (c == '+') min = 1;
        else if (c == '?') max = 1;
        else if (c == '{') {
            space(false);
            min = number();
            space(false);
            max = min;
            if (peek() == ',') {
                ++p_;
                space(false);
                max = std::isdigit(static_cast<unsigned char>(peek())) ? number() : -1;
                space(false);
            }
            if (peek() != '}') fail("expected '}'");
            ++p_;
            if (max >= 0 && max < min) fail("a repetition's maximum is below its minimum");
        }
        Elem item = seq[begin];
        if (seq.size() - begin > 1) {  // several elements (a literal): one rule
            const uint32_t r = new_rule(current_);
            alts_[r] = {Seq(seq.begin() + long(begin), seq.end())};
            item = {Elem::Ref, r};
        }
        seq.resize(begin);
        for (int i = 0; i < min; ++i) seq.push_back(item);
        if (max < 0) {  // item*: R ::= item R | ()
            const uint32_t r = new_rule(current_);
            alts_[r] = {Seq{item, {Elem::Ref, r}}, Seq{}};
            seq.push_back({Elem::Ref, r});
        } else if (max > min) {  // up to max - min more: R1 ::= item R2 | () ... Rk ::= item | ()
            uint32_t next = 0;
            for (int i = 0; i < max - min; ++i) {
                const uint32_t r = new_rule(current_);
                if (i == 0) alts_[r] = {Seq{item}, Seq{}};
                else alts_[r] = {Seq{item, {Elem::Ref, next}}, Seq{}};
                next = r;
            }
            seq.push_back({Elem::Ref, next});
        }
        if (seq.size() - begin > 100000) fail("a repetition too large");
    }

    int number() {
        const size_t b = p_;
        long v = 0;
        while (std::isdigit(static_cast<unsigned char>(peek()))) {
            v = v * 10 + (peek() - '0');
            if (v > 100000) fail("a repetition count too large");
            ++p_;
        }
        if (p_ == b) fail("expected a number");
        return int(v);
    }

    uint32_t utf8() {  // one code point of the grammar text
        const auto b0 = static_cast<unsigned char>(peek());
        int n = b0 < 0x80 ? 0 : b0 >= 0xf0 ? 3 : b0 >= 0xe0 ? 2 : b0 >= 0xc0 ? 1 : -1;
        if (n < 0) fail("invalid UTF-8");
        uint32_t cp = n == 0 ? b0 : b0 & (0x3f >> n);
        ++p_;
        for (int i = 0; i < n; ++i) {
            const auto b = static_cast<unsigned char>(peek());
            if ((b & 0xc0) != 0x80) fail("invalid UTF-8");
            cp = cp << 6 | (b & 0x3f);
            ++p_;
        }
        return cp;
    }
    uint32_t hex(int digits) {
        uint32_t v = 0;
        for (int i = 0; i < digits; ++i) {
            const char c = peek();
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d < 0) fail("expected a hexadecimal digit");
            v = v << 4 | uint32_t(d);
            ++p_;
        }
        return v;
    }
    // A character of a literal or class, escapes decoded.
    uint32_t character() {
        if (at_end()) fail("unexpected end of the grammar");
        if (peek() != '\\') return utf8();
        ++p_;
        const char c = peek();
        ++p_;
        switch (c) {
            case 'x': return hex(2);
            case 'u': return hex(4);
            case 'U': return hex(8);
            case 't': return '\t';
            case 'r': return '\r';
            case 'n': return '\n';
            case '\\': case '"': case '[': case ']': case '-': case '^': case '/': case '.': return uint32_t(c);
            default: p_ -= 2; fail("unknown escape");
        }
    }
    uint32_t add_class(Grammar::CharClass c) {
        classes_.push_back(std::move(c));
        return uint32_t(classes_.size() - 1);
    }
    void literal(Seq& seq) {
        ++p_;
        while (peek() != '"') {
            if (at_end() || peek() == '\n') fail("unterminated string");
            const uint32_t cp = character();
            seq.push_back({Elem::Chars, add_class({{{cp, cp}}, false})});
        }
        ++p_;
    }
    uint32_t char_class() {
        ++p_;
        Grammar::CharClass cls;
        if (peek() == '^') cls.negated = true, ++p_;
        while (peek() != ']') {
            if (at_end() || peek() == '\n') fail("unterminated character class");
            const uint32_t lo = character();
            uint32_t hi = lo;
            if (peek() == '-' && peek(1) != ']') {
                ++p_;
                hi = character();
                if (hi < lo) fail("a character range whose end is before its start");
            }
            cls.ranges.emplace_back(lo, hi);
        }
        ++p_;
        return add_class(std::move(cls));
    }
    Elem token() {
        const bool negated = peek() == '!';
        if (negated) ++p_;
        ++p_;  // '<'
        TokenId id;
        if (peek() == '[') {
            ++p_;
            long v = 0;
            const size_t b = p_;
            while (std::isdigit(static_cast<unsigned char>(peek()))) v = v * 10 + (peek() - '0'), ++p_;
            if (p_ == b || peek() != ']' || peek(1) != '>') fail("expected <[token id]>");
            p_ += 2;
            if (!tok_ || v >= long(tok_->n_tokens())) fail(strprintf("token id %ld is not in the vocabulary", v).c_str());
            id = TokenId(v);
        } else {
            const size_t b = p_;
            while (!at_end() && peek() != '>' && peek() != '\n') ++p_;
            if (peek() != '>') fail("expected '>' after a token");
            const std::string text = "<" + std::string(s_.substr(b, p_ - b)) + ">";
            ++p_;
            if (!tok_) fail("token elements need a vocabulary");
            id = tok_->find(text);
            if (id < 0) fail(strprintf("'%s' is not a token of the vocabulary", text.c_str()).c_str());
        }
        return {negated ? Elem::NotToken : Elem::Token, uint32_t(id)};
    }

    // The matcher expands a rule into its alternatives before it reads a character: a rule that
    // can reach itself without reading one would expand forever.
    static void refuse_left_recursion(const Grammar& g) {
        const size_t R = g.rules().size();
        std::vector<char> nullable(R, 0);
        for (bool changed = true; changed;) {
            changed = false;
            for (size_t r = 0; r < R; ++r) {
                if (nullable[r]) continue;
                for (uint32_t a : g.rules()[r]) {
                    bool all = true;
                    for (const Elem* e = &g.elems()[a]; e->kind != Elem::End && all; ++e)
                        all = e->kind == Elem::Ref && nullable[e->arg];
                    if (all) { nullable[r] = 1, changed = true; break; }
                }
            }
        }
        std::vector<std::vector<uint32_t>> first(R);  // rules reachable before any character
        for (size_t r = 0; r < R; ++r)
            for (uint32_t a : g.rules()[r])
                for (const Elem* e = &g.elems()[a]; e->kind == Elem::Ref; ++e) {
                    first[r].push_back(e->arg);
                    if (!nullable[e->arg]) break;
                }
        std::vector<int> mark(R, 0);  // 0 new, 1 on the path, 2 done
        std::vector<std::pair<uint32_t, size_t>> path;
        for (uint32_t s = 0; s < R; ++s) {
            if (mark[s]) continue;
            path.push_back({s, 0});
            mark[s] = 1;
            while (!path.empty()) {
                auto& [r, i] = path.back();
                if (i == first[r].size()) {
                    mark[r] = 2;
                    path.pop_back();
                    continue;
                }
                const uint32_t n = first[r][i++];
                if (mark[n] == 1) RILL_FAIL("grammar: rule '%s' is left-recursive (it can reach itself before reading a character)", g.rule_name(n).c_str());
                if (mark[n] == 0) mark[n] = 1, path.push_back({n, 0});
            }
        }
    }

    std::string_view s_;
    size_t p_ = 0;
    const Tokenizer* tok_;
    std::map<std::string, uint32_t> index_;
    std::vector<std::string> names_;
    std::vector<std::vector<Seq>> alts_;
    std::vector<bool> defined_;
    std::vector<std::string> first_use_;
    std::vector<Grammar::CharClass> classes_;
    std::string current_;
    unsigned generated_ = 0;
    std::set<std::string> declared_;
};

std::shared_ptr<const Grammar> Grammar::parse(std::string_view text, const Tokenizer* tok, std::string_view start) {
    return GrammarParser(text, tok).run(start);
}

namespace {
std::string gbnf_char(uint32_t cp, bool in_class) {
    if (cp == '\n') return "\\n";
    if (cp == '\t') return "\\t";
    if (cp == '\r') return "\\r";
    if (cp == '\\' || cp == '"' || (in_class && (cp == ']' || cp == '-' || cp == '^' || cp == '['))) return std::string("\\") + char(cp);
    if (cp < 0x20 || cp == 0x7f) return strprintf("\\x%02X", cp);
    if (cp < 0x80) return std::string(1, char(cp));
    if (cp < 0x10000) return strprintf("\\u%04X", cp);
    return strprintf("\\U%08X", cp);
}
}  // namespace

std::string Grammar::to_gbnf() const {
    // Rules come in the order they are first named, read from the first rule on: the order in
    // which parse() numbers them, so the text parsed again prints the same.
    std::vector<uint32_t> order;
    std::vector<bool> listed(rules_.size(), false);
    auto list = [&](uint32_t r) {
        if (!listed[r]) listed[r] = true, order.push_back(r);
    };
    size_t k = 0;
    for (uint32_t next = 0; next < rules_.size(); ++next) {
        list(next);
        for (; k < order.size(); ++k)
            for (uint32_t alt : rules_[order[k]])
                for (const Elem* e = &elems_[alt]; e->kind != Elem::End; ++e)
                    if (e->kind == Elem::Ref) list(e->arg);
    }
    std::string out;
    for (uint32_t r : order) {
        out += names_[r] + " ::=";
        for (size_t i = 0; i < rules_[r].size(); ++i) {
            if (i) out += " |";
            for (const Elem* e = &elems_[rules_[r][i]]; e->kind != Elem::End; ++e) {
                out += ' ';
                switch (e->kind) {
                    case Elem::Ref: out += names_[e->arg]; break;
                    case Elem::Token: out += strprintf("<[%u]>", e->arg); break;
                    case Elem::NotToken: out += strprintf("!<[%u]>", e->arg); break;
                    case Elem::Chars: {
                        const Grammar::CharClass& c = classes_[e->arg];
                        if (!c.negated && c.ranges.size() == 1 && c.ranges[0].first == c.ranges[0].second) {
                            out += "\"" + gbnf_char(c.ranges[0].first, false) + "\"";
                            break;
                        }
                        out += c.negated ? "[^" : "[";
                        for (const auto& [lo, hi] : c.ranges) {
                            out += gbnf_char(lo, true);
                            if (hi != lo) out += "-" + gbnf_char(hi, true);
                        }
                        out += "]";
                        break;
                    }
                    case Elem::End: break;
                }
            }
            if (elems_[rules_[r][i]].kind == Elem::End) out += " \"\"";
        }
        out += '\n';
    }
    return out;
}

// ---- The vocabulary -----------------------------------------------------------------------

GrammarVocab::GrammarVocab(const Tokenizer& tok) {
    const int n = tok.n_tokens();
    piece_.resize(size_t(n));
    end_.resize(size_t(n));
    for (int i = 0; i < n; ++i) {
        end_[size_t(i)] = tok.is_end_of_generation(i);
        piece_[size_t(i)] = tok.token_to_piece(i, false);
        if (!piece_[size_t(i)].empty()) sorted_.push_back(i);
    }
    std::sort(sorted_.begin(), sorted_.end(), [&](TokenId a, TokenId b) { return piece_[size_t(a)] < piece_[size_t(b)]; });
    lcp_.resize(sorted_.size());
    for (size_t i = 1; i < sorted_.size(); ++i) {
        const std::string& a = piece_[size_t(sorted_[i - 1])];
        const std::string& b = piece_[size_t(sorted_[i])];
        size_t k = 0;
        while (k < a.size() && k < b.size() && a[k] == b[k]) ++k;
        lcp_[i] = uint16_t(std::min<size_t>(k, 65535));
    }
    sorted_at_.reserve(sorted_.size() + 1);
    for (TokenId t : sorted_) {
        sorted_at_.push_back(uint32_t(sorted_bytes_.size()));
        sorted_bytes_ += piece_[size_t(t)];
    }
    sorted_at_.push_back(uint32_t(sorted_bytes_.size()));
}

// ---- Matching -----------------------------------------------------------------------------

const GrammarMatcher::Node* GrammarMatcher::Table::find(const Elem* e, const Node* up) const {
    const auto it = index.find({e, up});
    return it == index.end() ? nullptr : it->second;
}

const GrammarMatcher::Node* GrammarMatcher::Table::get(const Elem* e, const Node* up) {
    auto [it, fresh] = index.try_emplace({e, up}, nullptr);
    if (!fresh) return it->second;
    constexpr size_t kChunk = 4096;
    if (chunks.empty() || used == kChunk) chunks.emplace_back(new Node[kChunk]), used = 0;
    Node* n = &chunks.back()[used++];
    *n = {e, up};
    it->second = n;
    return n;
}

void GrammarMatcher::Table::clear() {
    index.clear();
    if (chunks.size() > 1) chunks.resize(1);
    used = 0;
}

struct GrammarMatcher::LookAhead {
    const GrammarMatcher& m;
    explicit LookAhead(const GrammarMatcher& m) : m(m) { ++m.looking_; }
    ~LookAhead() {
        if (--m.looking_ == 0) m.scratch_.clear();
    }
};

const GrammarMatcher::Node* GrammarMatcher::intern(const Elem* e, const Node* up) const {
    if (!looking_) return const_cast<Table&>(kept_).get(e, up);
    if (const Node* n = kept_.find(e, up)) return n;
    return scratch_.get(e, up);
}

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> g, std::shared_ptr<const GrammarVocab> vocab)
    : g_(std::move(g)), vocab_(std::move(vocab)) {
    const Elem* base = g_->elems().data();
    for (uint32_t a : g_->rules()[g_->start()]) expand(base + a, nullptr, cur_.stacks);
    std::sort(cur_.stacks.begin(), cur_.stacks.end());
    cur_.stacks.erase(std::unique(cur_.stacks.begin(), cur_.stacks.end()), cur_.stacks.end());
}

// Adds the stacks of "e, then the rest `up`" with rule references replaced by their
// alternatives until each stack's top reads a character or a token (or the stack is empty).
void GrammarMatcher::expand(const Elem* e, const Node* up, Stacks& out) const {
    for (;;) {
        if (e->kind == Elem::End) {  // this alternative is done: go on with the rest
            if (!up) { out.push_back(nullptr); return; }
            e = up->e;
            up = up->up;
            continue;
        }
        if (e->kind != Elem::Ref) { out.push_back(intern(e, up)); return; }
        // The element after the reference is what follows each alternative; if the reference ends
        // its alternative, the rest of the stack is (so repetitions do not deepen the stack).
        const Node* after = (e + 1)->kind == Elem::End ? up : intern(e + 1, up);
        const auto& alts = g_->rules()[e->arg];
        const Elem* base = g_->elems().data();
        for (size_t i = 1; i < alts.size(); ++i) expand(base + alts[i], after, out);
        e = base + alts[0];
        up = after;
    }
}

void GrammarMatcher::advance_char(const Stacks& from, uint32_t cp, Stacks& to) const {
    to.clear();
    for (const Node* n : from)
        if (n && n->e->kind == Elem::Chars && g_->char_class(n->e->arg).matches(cp)) expand(n->e + 1, n->up, to);
    std::sort(to.begin(), to.end());
    to.erase(std::unique(to.begin(), to.end()), to.end());
}

namespace {

// The code points UTF-8 spells with `size` bytes (shorter spellings are overlong: not UTF-8).
uint32_t utf8_min(int size) { return size == 2 ? 0x80 : size == 3 ? 0x800 : 0x10000; }
uint32_t utf8_max(int size) { return size == 2 ? 0x7ff : size == 3 ? 0xffff : 0x10ffff; }

// Whether some code point in [lo, hi] is a character UTF-8 may spell with `size` bytes.
bool utf8_possible(uint32_t lo, uint32_t hi, int size) {
    lo = std::max(lo, utf8_min(size));
    hi = std::min(hi, utf8_max(size));
    return lo <= hi && !(lo >= 0xd800 && hi <= 0xdfff);  // not only surrogates
}

// One byte of UTF-8 into the character being read: -1 if the bytes are not UTF-8 (overlong
// spellings, surrogates and code points past U+10FFFF are refused as soon as a byte shows them),
// 0 if the character needs more bytes, 1 if it is whole (in cp).
int utf8_feed(uint32_t& partial, int& need, int& size, uint8_t b, uint32_t& cp) {
    if (need == 0) {
        const int n = b < 0x80 ? 0 : (b & 0xe0) == 0xc0 ? 1 : (b & 0xf0) == 0xe0 ? 2 : (b & 0xf8) == 0xf0 ? 3 : -1;
        if (n < 0) return -1;  // a continuation byte, or not UTF-8
        if (n == 0) { cp = b; return 1; }
        partial = b & (0x3f >> n);
        need = n;
        size = n + 1;
    } else {
        if ((b & 0xc0) != 0x80) return -1;
        partial = partial << 6 | (b & 0x3f);
        if (--need == 0) {
            cp = partial;
            partial = 0;
            const int sz = size;
            size = 0;
            return utf8_possible(cp, cp, sz) ? 1 : -1;
        }
    }
    const uint32_t lo = partial << (6 * need);
    return utf8_possible(lo, lo | ((1u << (6 * need)) - 1), size) ? 0 : -1;
}

}  // namespace

bool GrammarMatcher::advance_byte(const Pos& from, uint8_t b, Pos& to) const {
    to.ended = false;
    to.partial = from.partial, to.need = from.need, to.size = from.size;
    uint32_t cp = 0;
    const int r = utf8_feed(to.partial, to.need, to.size, b, cp);
    if (r < 0) return false;
    if (r == 0) {
        to.stacks = from.stacks;
        return true;
    }
    advance_char(from.stacks, cp, to.stacks);
    return !to.stacks.empty();
}

// A token may end with a character begun: some stack takes a character that begins so.
bool GrammarMatcher::partial_ok(const Stacks& stacks, uint32_t partial, int need, int size) const {
    const uint32_t base = partial << (6 * need);
    const uint32_t lo = std::max(base, utf8_min(size));
    const uint32_t hi = std::min(base | ((1u << (6 * need)) - 1), utf8_max(size));
    for (const Node* n : stacks)
        if (n && n->e->kind == Elem::Chars && g_->char_class(n->e->arg).matches_any(lo, hi)) return true;
    return false;
}

// A token may end at `at`: some stack is open, and a character begun there can still be completed.
bool GrammarMatcher::piece_ok(const Pos& at) const {
    if (at.stacks.empty()) return false;
    return at.need == 0 || partial_ok(at.stacks, at.partial, at.need, at.size);
}

bool GrammarMatcher::complete() const {
    return !cur_.ended && cur_.need == 0 && has_empty(cur_.stacks);
}

bool GrammarMatcher::finished() const {
    return cur_.ended || (complete() && cur_.stacks.size() == 1);
}

bool GrammarMatcher::advance_token(const Pos& from, TokenId id, Pos& to) const {
    to = {};
    if (from.ended) return false;
    if (vocab_->is_end(id)) {
        if (from.need != 0 || !has_empty(from.stacks)) return false;
        to.ended = true;
        return true;
    }
    // Token elements take it whole (only between characters).
    Stacks by_token;
    if (from.need == 0)
        for (const Node* n : from.stacks)
            if (n && ((n->e->kind == Elem::Token && TokenId(n->e->arg) == id) || (n->e->kind == Elem::NotToken && TokenId(n->e->arg) != id)))
                expand(n->e + 1, n->up, by_token);
    const std::string& piece = vocab_->piece(id);
    bool by_text = !piece.empty();
    if (by_text) {
        Pos a = from, b;
        for (unsigned char c : piece) {
            if (!advance_byte(a, c, b)) { by_text = false; break; }
            std::swap(a, b);
        }
        if (by_text && piece_ok(a)) to = std::move(a);
        else by_text = false;
    }
    if (!by_text) to = {};
    if (by_token.empty()) return by_text;
    if (by_text && to.need != 0) return true;  // cannot merge a split character with whole-token stacks: keep the text's
    to.stacks.insert(to.stacks.end(), by_token.begin(), by_token.end());
    std::sort(to.stacks.begin(), to.stacks.end());
    to.stacks.erase(std::unique(to.stacks.begin(), to.stacks.end()), to.stacks.end());
    return true;
}

bool GrammarMatcher::allows(TokenId id) const {
    if (id < 0 || id >= vocab_->size()) return false;
    LookAhead la(*this);
    Pos to;
    return advance_token(cur_, id, to);
}

// The sets of stacks one mask meets, numbered, with the character steps between them remembered:
// most tokens spell their way through a few sets (inside a string, from one set back to itself),
// so most bytes cost a look-up. A set whose classes treat every non-ASCII character alike (a
// JSON string, or a place where none may come) steps once for all of them.
struct GrammarMatcher::Walk {
    explicit Walk(const GrammarMatcher& m) : m_(m) {}
    int intern(Stacks&& s) {
        if (s.empty()) return -1;
        auto [it, fresh] = ids_.try_emplace(std::move(s), int(sets_.size()));
        if (fresh) {
            Set& set = sets_.emplace_back();
            set.stacks = &it->first;
            set.ascii.fill(kUnknown);
            set.alike = true;
            for (const Node* n : *set.stacks) {
                if (!n || n->e->kind != Elem::Chars) continue;
                const Grammar::CharClass& c = m_.g_->char_class(n->e->arg);
                set.alike = set.alike && same_above_ascii(c);
                set.any_above |= c.matches(0x80);
            }
        }
        return it->second;
    }
    const Stacks& stacks(int set) const { return *sets_[size_t(set)].stacks; }
    // The set after the character cp, or -1 when no stack takes it.
    int next(int id, uint32_t cp) {
        Set& set = sets_[size_t(id)];
        int known = cp < 128 ? set.ascii[cp] : set.alike ? set.above : wide(id, cp);
        if (known != kUnknown) return known;
        Stacks to;
        m_.advance_char(stacks(id), cp, to);
        known = intern(std::move(to));  // (may move sets_)
        Set& again = sets_[size_t(id)];
        if (cp < 128) again.ascii[cp] = known;
        else if (again.alike) again.above = known;
        else wide_[key(id, cp)] = known;
        return known;
    }
    // Whether some stack of the set takes a character that begins with these bytes.
    bool may_begin(int id, uint32_t partial, int need, int size) {
        const Set& set = sets_[size_t(id)];
        if (set.alike) return set.any_above;
        const uint64_t k = uint64_t(id) << 24 | uint64_t(need) << 21 | partial;
        const auto [it, fresh] = begun_.try_emplace(k, false);
        if (fresh) it->second = m_.partial_ok(stacks(id), partial, need, size);
        return it->second;
    }

private:
    static constexpr int kUnknown = -2;
    struct Set {
        const Stacks* stacks;
        std::array<int, 128> ascii;  // the step by each ASCII character
        bool alike;                  // every class answers the same for all code points from U+0080
        bool any_above = false;      // ... and some takes them
        int above = kUnknown;        // the step by any of them, when alike
    };
    // Whether the class answers the same for every code point from U+0080 (conservative: ranges
    // that cover it only together count as not).
    static bool same_above_ascii(const Grammar::CharClass& c) {
        for (const auto& [lo, hi] : c.ranges)
            if (hi >= 0x80 && !(lo <= 0x80 && hi >= 0x10ffff)) return false;
        return true;
    }
    struct Hash {
        size_t operator()(const Stacks& s) const {
            size_t h = s.size();
            for (const Node* n : s) h = (h ^ std::hash<const void*>()(n)) * 0x9e3779b97f4a7c15ull;
            return h;
        }
    };
    static uint64_t key(int set, uint32_t cp) { return uint64_t(set) << 21 | cp; }
    int wide(int set, uint32_t cp) const {
        const auto it = wide_.find(key(set, cp));
        return it == wide_.end() ? kUnknown : it->second;
    }
    const GrammarMatcher& m_;
    std::unordered_map<Stacks, int, Hash> ids_;
    std::vector<Set> sets_;
    std::unordered_map<uint64_t, int> wide_;
    std::unordered_map<uint64_t, bool> begun_;
};

void GrammarMatcher::allowed(std::vector<uint8_t>& mask) const {
    // The mask depends on the position alone, and positions recur (every character of a string,
    // the same field of every item of an array): the last few dozen masks are kept, as bits.
    for (size_t i = 0; i < masks_.size(); ++i)
        if (same_position(masks_[i].first, cur_)) {
            std::rotate(masks_.begin(), masks_.begin() + long(i), masks_.begin() + long(i) + 1);
            const std::vector<uint64_t>& bits = masks_.front().second;
            mask.resize(size_t(vocab_->size()));
            for (size_t t = 0; t < mask.size(); ++t) mask[t] = uint8_t(bits[t >> 6] >> (t & 63) & 1);
            return;
        }
    compute_allowed(mask);
    std::vector<uint64_t> bits((mask.size() + 63) / 64, 0);
    for (size_t t = 0; t < mask.size(); ++t) bits[t >> 6] |= uint64_t(mask[t] != 0) << (t & 63);
    constexpr size_t kKept = 32;  // 31 KB each for a 248k vocabulary
    if (masks_.size() == kKept) masks_.pop_back();
    masks_.insert(masks_.begin(), {cur_, std::move(bits)});
}

bool GrammarMatcher::same_position(const Pos& a, const Pos& b) {
    return a.stacks == b.stacks && a.partial == b.partial && a.need == b.need && a.size == b.size && a.ended == b.ended;
}

void GrammarMatcher::compute_allowed(std::vector<uint8_t>& mask) const {
    const int V = vocab_->size();
    mask.assign(size_t(V), 0);
    if (cur_.ended) return;
    LookAhead la(*this);
    // Whole-token elements and end tokens first.
    bool any_not_token = false;
    if (cur_.need == 0)
        for (const Node* n : cur_.stacks) {
            if (!n) continue;
            if (n->e->kind == Elem::Token) mask[n->e->arg] = 1;
            if (n->e->kind == Elem::NotToken) any_not_token = true;
        }
    if (any_not_token)
        for (int i = 0; i < V; ++i) mask[size_t(i)] |= allows(i) ? 1 : 0;  // rare: most tokens pass
    if (complete())
        for (int i = 0; i < V; ++i) mask[size_t(i)] |= vocab_->is_end(i) ? 1 : 0;
    // Text: the tokens in byte order, each level of `path` the position after that many bytes of
    // the current token; a token shares the levels of its common prefix with the one before.
    Walk w(*this);
    struct Level {
        int set;  // in w
        uint32_t partial;
        int need, size;
    };
    const std::vector<TokenId>& sorted = vocab_->sorted();
    const std::vector<uint16_t>& lcp = vocab_->common_prefix();
    std::vector<Level> path(1, Level{w.intern(Stacks(cur_.stacks)), cur_.partial, cur_.need, cur_.size});
    size_t valid = 0;  // path[0..valid] hold the levels for the previous token's bytes
    for (size_t i = 0; i < sorted.size();) {
        const std::string_view s = vocab_->sorted_piece(i);
        size_t d = std::min<size_t>(i == 0 ? 0 : lcp[i], valid);
        if (path.size() < s.size() + 1) path.resize(s.size() + 1);
        bool dead = false;
        for (; d < s.size(); ++d) {
            Level next = path[d];
            uint32_t cp = 0;
            const int r = utf8_feed(next.partial, next.need, next.size, uint8_t(s[d]), cp);
            if (r > 0) next.set = w.next(next.set, cp);
            if (r < 0 || next.set < 0 || (r == 0 && !w.may_begin(next.set, next.partial, next.need, next.size))) {
                dead = true;
                break;
            }
            path[d + 1] = next;
        }
        if (dead) {
            // Every token that starts with s[0..d] is out: skip them.
            valid = d;
            size_t j = i + 1;
            while (j < sorted.size() && lcp[j] >= d + 1) ++j;
            i = j;
            continue;
        }
        valid = s.size();
        mask[size_t(sorted[i])] = 1;  // every level checked: a character begun at the end can be completed
        ++i;
    }
}

void GrammarMatcher::accept(TokenId id) {
    if (id < 0 || id >= vocab_->size()) RILL_FAIL("grammar: token %d is not in the vocabulary", id);
    Pos to;
    if (!advance_token(cur_, id, to))
        RILL_FAIL("grammar: token %d ('%s') is not allowed here", id, vocab_->piece(id).c_str());
    cur_ = std::move(to);
}

bool GrammarMatcher::matches(std::string_view text) const {
    LookAhead la(*this);
    Pos a = cur_, b;
    for (unsigned char c : text) {
        if (!advance_byte(a, c, b)) return false;
        std::swap(a, b);
    }
    return a.need == 0 && has_empty(a.stacks);
}

GrammarMatcher::State GrammarMatcher::to_state(const Pos& p) const {
    State s;
    s.stacks.assign(p.stacks.begin(), p.stacks.end());
    s.partial = p.partial;
    s.need = p.need;
    s.size = p.size;
    s.ended = p.ended;
    return s;
}

void GrammarMatcher::restore(const State& s) {
    cur_.stacks.clear();
    for (const void* n : s.stacks) cur_.stacks.push_back(static_cast<const Node*>(n));
    cur_.partial = s.partial;
    cur_.need = s.need;
    cur_.size = s.size;
    cur_.ended = s.ended;
}

}  // namespace rill
