// Generation on a context, one token at a time or speculatively: when the model has a
// multi-token-prediction head (Qwen 3.5), each step drafts k tokens with it, verifies them in one
// batch of k + 1 through the main model, keeps the longest prefix the sampler agrees with, and
// rolls the context back past the rest (attention entries dropped, DeltaNet states restored from
// the verify batch's per-token checkpoints). Greedy output is token-for-token that of plain
// decoding (the verify batch sums each row as a one-token eval does); sampled output has exactly
// the sampler's distribution (Sampler::sample_after_draft).
#pragma once

#include <deque>
#include <functional>
#include <vector>

#include "src/context.h"
#include "src/sampler.h"

namespace rill {

struct SpeculativeParams {
    bool enabled = true;   // draft with the model's MTP head when it has one
    int draft_tokens = 0;  // drafts per step at most, 1..3 (0: kDefaultDraftTokens)
    bool adaptive = true;  // per step, as many drafts (0 to draft_tokens) as pay by measured acceptance and cost
    static constexpr int kDefaultDraftTokens = 2;
    static constexpr int kMaxDraftTokens = 3;
};

struct GenerationStats {
    int steps = 0;     // evaluations of the pending token (plain or verify batches)
    int drafted = 0;   // draft tokens proposed
    int accepted = 0;  // ... of which the main model kept
    double draft_ms = 0, verify_ms = 0;  // time in the MTP drafts and in the main model's evals
};

// Drafts from elsewhere than the MTP head (tests, benchmarks at a controlled acceptance rate):
// given the position of the pending token, the pending token and k, the k tokens after it.
using DraftSource = std::function<std::vector<TokenId>(int pos, TokenId pending, int k)>;

// A benchmark's drafts: the token at each position as a known text has it (a previous greedy run),
// each replaced by a wrong one with probability 1 - acceptance (decided per position by a hash,
// so every run sees the same drafts).
DraftSource replay_drafts(std::vector<TokenId> text, double acceptance, int n_vocab);

class Generator {
public:
    Generator(Context& ctx, Sampler& sampler, SpeculativeParams sp = {});

    // Evaluates tokens after everything emitted so far (the pending token first). Throws rill::Error,
    // leaving the state as it was, if they do not fit the context. marks: offsets into tokens
    // (ascending, 1..size) after which to keep a checkpoint (see checkpoint()). logits false: the
    // last token's logits are not computed (more tokens follow; a vocabulary-wide head saved).
    void feed(const std::vector<TokenId>& tokens, const std::vector<int>& marks = {}, bool logits = true);

    // Prefix reuse. `text` is a whole new text from position 0 (a conversation rendered again):
    // the longest prefix of it that the context has evaluated, or the latest checkpoint within
    // that prefix, is kept, everything after is dropped, and the number of leading tokens kept is
    // returned (at most text.size() - 1, so that feeding the rest yields logits). Nothing is
    // pending afterwards. Reusing gives what evaluating text from scratch gives (bit for bit where
    // the batches split alike).
    int reuse(const std::vector<TokenId>& text);
    // Keeps a checkpoint of the recurrent state at the current position, so that a later text
    // that shares the prefix up to here but not beyond can resume from it (attention layers need
    // none: their caches are truncated). Bounded in number and bytes; the least recently used go.
    void checkpoint();
    void set_checkpoint_budget(int count, uint64_t bytes);

    // A snapshot of the evaluated text (tokens, attention caches, recurrent and MTP state, the last
    // logits, the pending token) with a format version, the model's fingerprint and a checksum.
    // load_state refuses bytes that are not a state, of another version or model, corrupt, or too
    // long for the context, with a message saying which, and then leaves everything as it was.
    std::vector<uint8_t> save_state();
    void load_state(const uint8_t* p, size_t n);
    static constexpr uint32_t kStateVersion = 1;
    int n_checkpoints() const { return int(saved_.size()); }
    uint64_t checkpoint_bytes() const;
    // The next token: sampled from the logits after the emitted text, or an accepted draft. It is
    // evaluated by the next call (or feed). Needs logits (a feed or a previous next()).
    TokenId next();
    // Whether next() can run: the pending token (if any) still fits the context.
    bool has_room() const;
    // Forgets the text: the context is reset, the sampler's recent tokens cleared (its random
    // stream goes on).
    void reset();
    // Tokens emitted and evaluated (the pending one not counted).
    int n_past() const;
    // Nothing fed or generated since the start or the last reset.
    bool empty() const { return n_past() == 0 && pending_ < 0 && queue_.empty(); }
    // Changes the speculative parameters between steps. Turned on part-way through a text, the MTP
    // cache lacks the pairs of the tokens evaluated while it was off: drafts are poorer (never the
    // output) until the next reset.
    void set_params(const SpeculativeParams& sp);

    bool speculative() const { return mtp_ || bool(source_); }
    int max_drafts() const { return k_max_; }
    const GenerationStats& stats() const { return stats_; }
    void clear_stats() { stats_ = {}; }
    void set_draft_source(DraftSource source) { source_ = std::move(source); }
    // Constrains the tokens next() chooses to a grammar (null: none). The matcher takes each
    // chosen token; the caller owns it and keeps it alive while it is set.
    void set_grammar(GrammarMatcher* g);
    GrammarMatcher* grammar() const { return grammar_; }

private:
    TokenId step();
    int choose_drafts(int room);
    void settle();  // drops evaluated-but-unemitted drafts (see queue_)
    void absorb(const TokenId* tokens, const float* h_prev, int n, int pos0);
    void flush_absorb();
    void drop_mtp_pairs_from(int pos);
    void recall_recent();

    Context& ctx_;
    Sampler& sampler_;
    bool mtp_ = false;  // drafting with the MTP head: every eval keeps hidden states and the head absorbs them
    int k_max_ = 0;
    bool adaptive_ = true;
    DraftSource source_;
    TokenId pending_ = -1;  // emitted, not yet evaluated
    // Tokens decided by the last verify batch and not yet returned by next(); the first
    // queued_evaluated_ of them were evaluated in it (accepted drafts).
    std::deque<TokenId> queue_;
    std::vector<TokenId> step_tokens_;  // everything the last verify batch decided (queue_ is its tail)
    std::deque<TokenId> recent_before_;  // the sampler's recent tokens before them
    GrammarMatcher* grammar_ = nullptr;
    GrammarMatcher::State grammar_before_;  // the grammar's position before them
    int ahead_ = 0;  // leading queue_ tokens already evaluated
    TokenId pop();
    std::vector<float> h_last_;  // the main model's hidden state of the last evaluated token (MTP input)
    std::vector<TokenId> text_;  // the tokens the context has evaluated, position by position
    struct Saved {
        Context::Recurrent state;
        std::vector<float> h_last;
        uint64_t used = 0;  // recency
    };
    std::vector<Saved> saved_;
    int max_saved_ = 8;
    uint64_t max_saved_bytes_ = uint64_t(128) << 20;
    uint64_t clock_ = 0;
    // Pairs (token, h_prev) waiting to be written to the MTP cache, at positions mtp_pos0_..
    std::vector<TokenId> mtp_tokens_;
    std::vector<float> mtp_h_;
    int mtp_pos0_ = 0;
    static constexpr size_t kAbsorbBatch = 64;
    GenerationStats stats_;
    // The adaptive choice: acceptance and cost estimates.
    double tested_ = 0, accepted_ = 0;  // drafts compared and accepted, each step's counts decaying by 0.9
    std::vector<double> step_ms_;  // per number of drafts 0..k_max (0: not measured yet)
    int plain_steps_ = 0;
    static constexpr int kFirstProbe = 16, kLastProbe = 256;
    int probe_interval_ = kFirstProbe;  // plain steps between drafts while drafting does not pay
    bool probing_ = false;
};

}  // namespace rill
