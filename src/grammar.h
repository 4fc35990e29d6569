// Grammar-constrained generation: GBNF grammars (the format llama.cpp defines, grammars/README.md
// in its source) and the matcher that says which tokens may come next.
//
// A grammar is a set of rules, each a list of alternatives, each a sequence of elements: a
// character class, a reference to a rule, or a whole token (<[id]>, <text>, negated with !).
// Groups and repetitions (*, +, ?, {m,n}) become rules of their own when parsed, so the matcher
// knows only those three kinds. The matcher holds the set of parse stacks that the text so far
// leaves open (a pushdown automaton run on all alternatives at once); the stacks are persistent
// lists whose nodes are interned, so stacks that agree share their storage and compare as
// pointers. Which of a 248k-token vocabulary may come next is found by walking the tokens in
// byte order, sharing the work on common prefixes and skipping every token under a dead prefix.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace rill {

class Grammar {
public:
    // Parses GBNF text. Throws rill::Error naming the line and column of a syntax error, an
    // undefined or twice-defined rule, a missing start rule, or a left-recursive rule (the
    // matcher cannot run those). Token elements are resolved against `tok` (null: refused).
    static std::shared_ptr<const Grammar> parse(std::string_view text, const Tokenizer* tok = nullptr,
                                                std::string_view start = "root");

    struct Elem {
        enum Kind : uint8_t { End, Ref, Chars, Token, NotToken };
        Kind kind;
        uint32_t arg;  // Ref: rule; Chars: class; Token, NotToken: token id
    };
    struct CharClass {
        std::vector<std::pair<uint32_t, uint32_t>> ranges;  // inclusive code point ranges
        bool negated = false;
        bool matches(uint32_t cp) const;
        bool matches_any(uint32_t lo, uint32_t hi) const;  // some code point in [lo, hi]
    };

    // Alternatives of each rule, as offsets into elems() of runs that end in an End element.
    const std::vector<std::vector<uint32_t>>& rules() const { return rules_; }
    const std::vector<Elem>& elems() const { return elems_; }
    const CharClass& char_class(uint32_t i) const { return classes_[i]; }
    uint32_t start() const { return start_; }
    const std::string& rule_name(uint32_t r) const { return names_[r]; }
    // The grammar written back as GBNF (generated rules included), for error messages and tests.
    std::string to_gbnf() const;

private:
    friend class GrammarParser;
    std::vector<Elem> elems_;
    std::vector<std::vector<uint32_t>> rules_;
    std::vector<std::string> names_;
    std::vector<CharClass> classes_;
    uint32_t start_ = 0;
};

// The vocabulary as the matcher sees it, built once per tokenizer: each token's bytes, the tokens
// in byte order with the common prefix of each with the one before, and the end-of-generation set.
class GrammarVocab {
public:
    explicit GrammarVocab(const Tokenizer& tok);
    int size() const { return int(piece_.size()); }
    const std::string& piece(TokenId id) const { return piece_[size_t(id)]; }
    bool is_end(TokenId id) const { return end_[size_t(id)] != 0; }
    const std::vector<TokenId>& sorted() const { return sorted_; }
    const std::vector<uint16_t>& common_prefix() const { return lcp_; }
    // The piece of sorted()[i], from one buffer in sorted order (a walk reads memory in sequence).
    std::string_view sorted_piece(size_t i) const {
        return std::string_view(sorted_bytes_).substr(sorted_at_[i], sorted_at_[i + 1] - sorted_at_[i]);
    }

private:
    std::vector<std::string> piece_;  // "" for control tokens: text cannot spell them
    std::vector<uint8_t> end_;
    std::vector<TokenId> sorted_;     // tokens with a non-empty piece, by piece
    std::vector<uint16_t> lcp_;       // lcp_[i]: bytes sorted_[i] shares with sorted_[i - 1]
    std::string sorted_bytes_;        // the pieces of sorted_, one after the other
    std::vector<uint32_t> sorted_at_; // where each begins, and the end
};

class GrammarMatcher {
public:
    GrammarMatcher(std::shared_ptr<const Grammar> g, std::shared_ptr<const GrammarVocab> vocab);

    // Whether the token may come next: its bytes continue the grammar (a character split across
    // tokens counts if some allowed character starts with those bytes), or a token element takes
    // it; an end-of-generation token when the text so far is complete.
    bool allows(TokenId id) const;
    // allows() of every token, one byte per token: one walk over the vocabulary in byte order.
    void allowed(std::vector<uint8_t>& mask) const;
    // Takes the token; throws rill::Error if it is not allowed (and then changes nothing).
    void accept(TokenId id);
    // Whether the text so far is a whole sentence of the grammar (an end token may come next).
    bool complete() const;
    // Whether nothing can follow: complete, and no stack is open (generation can stop here).
    bool finished() const;
    // Whether the text (whole, from the start) is a sentence of the grammar: for tests.
    bool matches(std::string_view text) const;

    // The position, to go back to after speculative tokens were dropped.
    struct State {
        std::vector<const void*> stacks;
        uint32_t partial = 0;  // a character begun in an earlier token: its bits so far
        int need = 0;          // ... the continuation bytes it still needs
        int size = 0;          // ... and its length in bytes
        bool ended = false;    // an end token was taken
    };
    State save() const { return to_state(cur_); }
    void restore(const State& s);

private:
    struct Node {
        const Grammar::Elem* e;  // the next element to match
        const Node* up;          // the rest of the stack; null: the bottom
    };
    using Stacks = std::vector<const Node*>;  // sorted, unique; a null entry: the text is complete
    struct Pos {
        Stacks stacks;
        uint32_t partial = 0;
        int need = 0;
        int size = 0;
        bool ended = false;
    };
    const Node* intern(const Grammar::Elem* e, const Node* up) const;
    void expand(const Grammar::Elem* e, const Node* up, Stacks& out) const;
    bool advance_byte(const Pos& from, uint8_t b, Pos& to) const;
    void advance_char(const Stacks& from, uint32_t cp, Stacks& to) const;
    bool partial_ok(const Stacks& stacks, uint32_t partial, int need, int size) const;
    bool piece_ok(const Pos& at) const;  // a token may end here
    bool advance_token(const Pos& from, TokenId id, Pos& to) const;
    State to_state(const Pos& p) const;
    void compute_allowed(std::vector<uint8_t>& mask) const;
    static bool same_position(const Pos& a, const Pos& b);

    std::shared_ptr<const Grammar> g_;
    std::shared_ptr<const GrammarVocab> vocab_;
    Pos cur_;
    // Interned stack nodes. The positions taken (accept) keep theirs for the matcher's life; a
    // look ahead (allows, allowed) adds its own to a scratch table emptied when it returns.
    struct Table {
        struct Hash {
            size_t operator()(const std::pair<const void*, const void*>& k) const {
                return std::hash<const void*>()(k.first) * 0x9e3779b97f4a7c15ull ^ std::hash<const void*>()(k.second);
            }
        };
        std::unordered_map<std::pair<const void*, const void*>, Node*, Hash> index;
        std::vector<std::unique_ptr<Node[]>> chunks;
        size_t used = 0;  // nodes used in the last chunk
        const Node* get(const Grammar::Elem* e, const Node* up);
        const Node* find(const Grammar::Elem* e, const Node* up) const;
        void clear();
    };
    Table kept_;
    mutable Table scratch_;
    mutable int looking_ = 0;
    mutable std::vector<std::pair<Pos, std::vector<uint64_t>>> masks_;  // the last masks as bits, newest first
    struct Walk;       // the sets of stacks of one mask
    struct LookAhead;  // counts looking_ and empties scratch_ when the outermost returns
};

}  // namespace rill
