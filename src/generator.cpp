#include "src/generator.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "rill/error.h"

namespace rill {

namespace {
using Clock = std::chrono::steady_clock;
double since_ms(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

TokenId argmax(const float* x, int n) { return TokenId(std::max_element(x, x + n) - x); }
}  // namespace

DraftSource replay_drafts(std::vector<TokenId> text, double acceptance, int n_vocab) {
    if (!(acceptance >= 0 && acceptance <= 1)) RILL_FAIL("acceptance must be in [0, 1], got %g", acceptance);
    return [text = std::move(text), acceptance, n_vocab](int pos, TokenId, int k) {
        std::vector<TokenId> d;
        for (int i = 1; i <= k; ++i) {
            const size_t q = size_t(pos + i);
            const TokenId right = q < text.size() ? text[q] : 0;
            uint64_t h = (q + 1) * 0x9e3779b97f4a7c15ULL;
            h = (h ^ (h >> 31)) * 0xbf58476d1ce4e5b9ULL;
            const bool wrong = double(h >> 11) * (1.0 / 9007199254740992.0) >= acceptance;
            d.push_back(wrong ? TokenId((uint64_t(right) + 1 + (h % 1000)) % uint64_t(n_vocab)) : right);
        }
        return d;
    };
}

Generator::Generator(Context& ctx, Sampler& sampler, SpeculativeParams sp) : ctx_(ctx), sampler_(sampler) {
    h_last_.assign(size_t(ctx.model().config().n_embd), 0.0f);
    set_params(sp);
}

void Generator::set_params(const SpeculativeParams& sp) {
    if (sp.draft_tokens < 0 || sp.draft_tokens > SpeculativeParams::kMaxDraftTokens)
        RILL_FAIL("draft tokens must be 1 to %d (0: the default), got %d", SpeculativeParams::kMaxDraftTokens, sp.draft_tokens);
    settle();
    flush_absorb();
    mtp_ = sp.enabled && ctx_.has_mtp();
    k_max_ = sp.draft_tokens ? sp.draft_tokens : SpeculativeParams::kDefaultDraftTokens;
    adaptive_ = sp.adaptive;
    step_ms_.assign(size_t(k_max_ + 1), 0.0);
}

void Generator::reset() {
    ctx_.reset();
    sampler_.set_recent({});  // the random stream goes on (Sampler::reset restarts it)
    pending_ = -1;
    queue_.clear();
    step_tokens_.clear();
    ahead_ = 0;
    mtp_tokens_.clear();
    mtp_h_.clear();
    text_.clear();
    saved_.clear();
    std::fill(h_last_.begin(), h_last_.end(), 0.0f);  // llama.cpp's MTP pairs the first token with zeros
}

int Generator::n_past() const { return ctx_.n_past() - ahead_; }

bool Generator::has_room() const {
    if (!queue_.empty() || pending_ < 0) return true;
    return ctx_.n_past() < ctx_.n_ctx();
}

// Queues the pairs (tokens[i], h_prev row i) for the MTP cache at positions pos0..; they are
// written in one batch before the next draft (or once enough have gathered), so that steps
// without drafts cost the head almost nothing.
void Generator::absorb(const TokenId* tokens, const float* h_prev, int n, int pos0) {
    if (n <= 0) return;
    if (mtp_tokens_.empty()) mtp_pos0_ = pos0;
    if (pos0 != mtp_pos0_ + int(mtp_tokens_.size())) RILL_FAIL("internal: MTP pairs out of order");
    mtp_tokens_.insert(mtp_tokens_.end(), tokens, tokens + n);
    mtp_h_.insert(mtp_h_.end(), h_prev, h_prev + size_t(n) * h_last_.size());
    if (mtp_tokens_.size() >= kAbsorbBatch) flush_absorb();
}

// Drops the queued MTP pairs at positions pos and later (their text is gone; the cache's own
// entries there are overwritten before anything reads them).
void Generator::drop_mtp_pairs_from(int pos) {
    const size_t keep = size_t(std::clamp(pos - mtp_pos0_, 0, int(mtp_tokens_.size())));
    mtp_tokens_.resize(keep);
    mtp_h_.resize(keep * h_last_.size());
}

void Generator::flush_absorb() {
    if (mtp_tokens_.empty()) return;
    ctx_.mtp_eval(mtp_tokens_.data(), mtp_h_.data(), int(mtp_tokens_.size()), mtp_pos0_, Logits::None);
    mtp_tokens_.clear();
    mtp_h_.clear();
}

void Generator::settle() {
    if (queue_.empty()) return;
    const int popped = int(step_tokens_.size() - queue_.size());
    if (ahead_ > 0) {  // accepted drafts were evaluated but not emitted: keep the verify batch's first 1 + popped
        ctx_.rollback(1 + popped);
        text_.resize(size_t(ctx_.n_past()));
        if (mtp_) {
            const float* h = ctx_.hidden(popped);
            h_last_.assign(h, h + h_last_.size());
        }
        drop_mtp_pairs_from(ctx_.n_past());
    }
    sampler_.set_recent(recent_before_);
    for (int i = 0; i < popped; ++i) sampler_.accept(step_tokens_[size_t(i)]);
    if (grammar_) {
        grammar_->restore(grammar_before_);
        for (int i = 0; i < popped; ++i) grammar_->accept(step_tokens_[size_t(i)]);
    }
    queue_.clear();
    ahead_ = 0;
    pending_ = -1;
}

void Generator::feed(const std::vector<TokenId>& tokens, const std::vector<int>& marks, bool logits) {
    settle();
    if (!marks.empty()) {  // in chunks ending at the marks, a checkpoint after each; logits after the last
        if (tokens.empty()) RILL_FAIL("nothing to evaluate");
        int at = 0;
        for (int m : marks)
            if (m <= at || m > int(tokens.size())) RILL_FAIL("checkpoint marks must ascend within 1..%zu, got %d after %d", tokens.size(), m, at);
            else at = m;
        at = 0;
        for (int m : marks) {
            feed(std::vector<TokenId>(tokens.begin() + at, tokens.begin() + m), {}, logits && m == int(tokens.size()));
            checkpoint();
            at = m;
        }
        if (at < int(tokens.size())) feed(std::vector<TokenId>(tokens.begin() + at, tokens.end()), {}, logits);
        return;
    }
    std::vector<TokenId> ids;
    if (pending_ >= 0) ids.push_back(pending_);
    ids.insert(ids.end(), tokens.begin(), tokens.end());
    if (ids.empty()) RILL_FAIL("nothing to evaluate");
    const int pos0 = ctx_.n_past();
    if (pos0 + int(ids.size()) > ctx_.n_ctx())
        RILL_FAIL("prompt of %zu tokens does not fit: %d of the context's %d tokens are used", tokens.size(), pos0 + int(pending_ >= 0),
                  ctx_.n_ctx());
    EvalOptions o;
    o.hidden = mtp_;
    o.keep = logits ? Logits::Last : Logits::None;
    ctx_.eval(ids, o);  // throws before any change if the tokens do not fit
    text_.insert(text_.end(), ids.begin(), ids.end());
    pending_ = -1;
    for (TokenId t : tokens) sampler_.accept(t);
    if (!mtp_) return;
    const size_t E = h_last_.size();
    std::vector<float> h_prev(ids.size() * E);
    std::copy(h_last_.begin(), h_last_.end(), h_prev.begin());
    for (size_t i = 1; i < ids.size(); ++i) std::copy(ctx_.hidden(int(i - 1)), ctx_.hidden(int(i - 1)) + E, h_prev.begin() + long(i * E));
    absorb(ids.data(), h_prev.data(), int(ids.size()), pos0);
    h_last_.assign(ctx_.hidden(int(ids.size()) - 1), ctx_.hidden(int(ids.size()) - 1) + E);
}

// The sampler's recent tokens (its penalties' window) as evaluating the kept text would leave them.
void Generator::recall_recent() {
    sampler_.set_recent({});
    for (TokenId t : text_) sampler_.accept(t);
}

void Generator::set_checkpoint_budget(int count, uint64_t bytes) {
    if (count < 0) RILL_FAIL("checkpoint count %d must not be negative", count);
    max_saved_ = count;
    max_saved_bytes_ = bytes;
    while (int(saved_.size()) > max_saved_ || (!saved_.empty() && checkpoint_bytes() > max_saved_bytes_))
        saved_.erase(std::min_element(saved_.begin(), saved_.end(), [](const Saved& a, const Saved& b) { return a.used < b.used; }));
}

uint64_t Generator::checkpoint_bytes() const {
    uint64_t n = 0;
    for (const Saved& s : saved_) n += s.state.bytes() + s.h_last.size() * sizeof(float);
    return n;
}

void Generator::checkpoint() {
    settle();
    const int pos = ctx_.n_past();
    if (pos == 0 || max_saved_ == 0) return;
    for (Saved& s : saved_)
        if (s.state.n_past == pos) {  // one per position: the text below it is the same
            s.used = ++clock_;
            return;
        }
    flush_absorb();  // the MTP cache below pos complete, like the main one
    Saved s;
    s.state = ctx_.save_recurrent();
    s.h_last = h_last_;
    s.used = ++clock_;
    saved_.push_back(std::move(s));
    set_checkpoint_budget(max_saved_, max_saved_bytes_);  // evicts what no longer fits
}

int Generator::reuse(const std::vector<TokenId>& text) {
    settle();
    size_t common = 0;
    while (common < text.size() && common < text_.size() && text[common] == text_[common]) ++common;
    if (common == text.size() && common == text_.size() && ctx_.has_logits() && !text.empty()) {
        pending_ = -1;    // the very text, its logits at hand (a state just loaded, say); a pending
        recall_recent();  // token sampled from them is not part of it
        return int(common);
    }
    const int target = int(std::min(common, text.empty() ? 0 : text.size() - 1));
    pending_ = -1;
    if (target == ctx_.n_past()) {  // everything evaluated is kept; the text goes on from here
        recall_recent();
        return target;
    }
    // Back to the latest checkpoint within the shared prefix (with attention only, any position
    // is one: the caches are truncated, there is no recurrent state to restore).
    Saved* best = nullptr;
    for (Saved& s : saved_)
        if (s.state.n_past <= target && (!best || s.state.n_past > best->state.n_past)) best = &s;
    int keep = 0;
    if (!ctx_.has_recurrent()) {
        keep = target;
        ctx_.truncate(keep);
    } else if (best) {
        keep = best->state.n_past;
        ctx_.restore_recurrent(best->state);
        h_last_ = best->h_last;
        best->used = ++clock_;
    } else {
        ctx_.reset();
        std::fill(h_last_.begin(), h_last_.end(), 0.0f);
    }
    text_.resize(size_t(keep));
    recall_recent();
    // Checkpoints past the kept point may lie on the text being replaced.
    saved_.erase(std::remove_if(saved_.begin(), saved_.end(), [&](const Saved& s) { return s.state.n_past > keep; }), saved_.end());
    drop_mtp_pairs_from(keep);
    return keep;
}

namespace {
constexpr char kStateMagic[8] = {'R', 'I', 'L', 'L', 'S', 'T', 'A', 'T'};
uint64_t fnv1a(const uint8_t* p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}
template <typename T>
void append(std::vector<uint8_t>& out, const T& v) {
    const auto* b = reinterpret_cast<const uint8_t*>(&v);
    out.insert(out.end(), b, b + sizeof(T));
}
template <typename T>
T take(const uint8_t*& p, const uint8_t* end) {
    if (size_t(end - p) < sizeof(T)) RILL_FAIL("the saved state is truncated");
    T v;
    std::memcpy(&v, p, sizeof(T));
    p += sizeof(T);
    return v;
}
}  // namespace

std::vector<uint8_t> Generator::save_state() {
    settle();
    flush_absorb();
    std::vector<uint8_t> out(kStateMagic, kStateMagic + 8);
    append(out, kStateVersion);
    append(out, ctx_.model().fingerprint());
    append(out, uint32_t(text_.size()));
    for (TokenId t : text_) append(out, t);
    append(out, pending_);
    append(out, uint32_t(h_last_.size()));
    for (float x : h_last_) append(out, x);
    ctx_.write_state(out);
    append(out, fnv1a(out.data(), out.size()));
    return out;
}

void Generator::load_state(const uint8_t* p, size_t n) {
    if (n < 8 + 8 || std::memcmp(p, kStateMagic, 8) != 0) RILL_FAIL("these bytes are not a saved Rill state");
    const uint8_t* end = p + n - 8;
    uint64_t sum;
    std::memcpy(&sum, end, 8);
    const uint8_t* q = p + 8;
    const uint32_t version = take<uint32_t>(q, end);
    if (version != kStateVersion) RILL_FAIL("the saved state has format version %u; this build reads version %u", version, kStateVersion);
    const uint64_t fp = take<uint64_t>(q, end);
    if (fp != ctx_.model().fingerprint())
        RILL_FAIL("the saved state belongs to another model (fingerprint %016llx; this model's is %016llx)", (unsigned long long)fp,
                  (unsigned long long)ctx_.model().fingerprint());
    if (fnv1a(p, n - 8) != sum) RILL_FAIL("the saved state is corrupt (its checksum does not match)");
    std::vector<TokenId> text(take<uint32_t>(q, end));
    for (TokenId& t : text) t = take<TokenId>(q, end);
    const TokenId pending = take<TokenId>(q, end);
    std::vector<float> h(take<uint32_t>(q, end));
    if (h.size() != h_last_.size()) RILL_FAIL("the saved state's hidden width %zu differs from the model's %zu", h.size(), h_last_.size());
    for (float& x : h) x = take<float>(q, end);
    for (TokenId t : text)
        if (t < 0 || t >= ctx_.n_vocab()) RILL_FAIL("the saved state holds token id %d, outside the vocabulary", t);
    uint32_t positions = 0;  // the context's part starts with its position count
    if (size_t(end - q) >= sizeof positions) std::memcpy(&positions, q, sizeof positions);
    if (positions != text.size())
        RILL_FAIL("the saved state's text (%zu tokens) and caches (%u positions) disagree", text.size(), positions);
    ctx_.read_state(q, size_t(end - q));  // checks the shapes; changes nothing if it throws
    queue_.clear();
    step_tokens_.clear();
    ahead_ = 0;
    mtp_tokens_.clear();
    mtp_h_.clear();
    saved_.clear();
    text_ = std::move(text);
    h_last_ = std::move(h);
    pending_ = pending;
    recall_recent();
    if (pending_ >= 0) sampler_.accept(pending_);
}

TokenId Generator::pop() {
    const TokenId t = queue_.front();
    queue_.pop_front();
    if (ahead_ > 0) --ahead_;
    else pending_ = t;
    return t;
}

TokenId Generator::next() {
    if (!queue_.empty()) return pop();
    return step();
}

// How many drafts this step: the maximum, or (adaptive) the number with the most expected tokens
// per millisecond, from the measured acceptance rate a and each choice's measured step time:
// k drafts yield 1 + a + ... + a^k tokens when acceptances are independent.
int Generator::choose_drafts(int room) {
    const int k_top = std::min(k_max_, room);
    if (!speculative() || k_top <= 0) return 0;
    if (!adaptive_) return k_top;
    // The best of the choices timed so far; the next larger one is tried (timed) when the largest
    // timed one is the best, so that drafting more is explored only while it looks like paying.
    // Acceptance: the drafts tested lately (decaying counts) and one prior draft accepted half the
    // time, so that a few misses are enough to stop drafting where it does not pay.
    const double a = std::min(0.99, (accepted_ + 0.5) / (tested_ + 1));
    int best = 0;
    double best_rate = 0;
    for (int k = 0; k <= k_top; ++k) {
        if (step_ms_[size_t(k)] == 0) {
            if (k == 0 || best == k - 1) return k;
            break;
        }
        const double tokens = (1 - std::pow(a, k + 1)) / (1 - a);
        const double rate = tokens / step_ms_[size_t(k)];
        if (rate > best_rate) best_rate = rate, best = k;
    }
    if (best > 0) return best;
    // Not paying now: draft once in a while to keep measuring the acceptance, less often while
    // those probes keep failing.
    if (++plain_steps_ < probe_interval_) return 0;
    plain_steps_ = 0;
    probing_ = true;
    return 1;
}

void Generator::set_grammar(GrammarMatcher* g) {
    settle();  // tokens decided under the previous constraint (or none) and not yet returned are dropped
    grammar_ = g;
}

TokenId Generator::step() {
    const int V = ctx_.n_vocab();
    if (pending_ < 0) {  // the logits after the emitted text are at hand
        const TokenId t = sampler_.sample(ctx_.logits(), V, grammar_);
        sampler_.accept(t);
        if (grammar_) grammar_->accept(t);
        pending_ = t;
        return t;
    }
    const int P = ctx_.n_past();
    if (P >= ctx_.n_ctx()) RILL_FAIL("the context of %d tokens is full", ctx_.n_ctx());
    const auto t_step = Clock::now();
    const int k = choose_drafts(ctx_.n_ctx() - P - 1);
    const size_t E = h_last_.size();
    std::vector<TokenId> batch{pending_};
    if (k > 0) {
        const auto t0 = Clock::now();
        if (source_) {
            const std::vector<TokenId> d = source_(P, pending_, k);
            if (int(d.size()) != k) RILL_FAIL("the draft source gave %zu tokens, %d asked for", d.size(), k);
            batch.insert(batch.end(), d.begin(), d.end());
        } else {  // chained through the MTP head: each draft's own state is the next one's h_prev
            flush_absorb();
            ctx_.mtp_eval(&pending_, h_last_.data(), 1, P, Logits::Last);
            for (int i = 1;; ++i) {
                batch.push_back(argmax(ctx_.mtp_logits(), V));
                if (i == k) break;
                const std::vector<float> h(ctx_.mtp_hidden(), ctx_.mtp_hidden() + E);
                ctx_.mtp_eval(&batch.back(), h.data(), 1, P + i, Logits::Last);
            }
        }
        stats_.draft_ms += since_ms(t0);
        stats_.drafted += k;
    }

    const auto t_eval = Clock::now();
    EvalOptions o;
    o.keep = k > 0 ? Logits::All : Logits::Last;
    o.hidden = mtp_;
    o.as_single = o.checkpoints = k > 0;
    ctx_.eval(batch, o);
    stats_.verify_ms += since_ms(t_eval);
    ++stats_.steps;

    recent_before_ = sampler_.recent();
    if (grammar_) grammar_before_ = grammar_->save();
    step_tokens_.clear();
    int a = 0;  // drafts accepted
    const Tokenizer& tok = ctx_.model().tokenizer();
    for (int i = 0; i <= k; ++i) {
        bool accepted = false;
        const TokenId t = i < k ? sampler_.sample_after_draft(ctx_.logits(i), V, batch[size_t(i + 1)], &accepted, grammar_)
                                : sampler_.sample(ctx_.logits(i), V, grammar_);
        sampler_.accept(t);
        if (grammar_) grammar_->accept(t);
        step_tokens_.push_back(t);
        if (!accepted) break;
        ++a;
        if (tok.is_end_of_generation(t) || (grammar_ && grammar_->finished())) break;
    }
    text_.insert(text_.end(), batch.begin(), batch.begin() + 1 + a);
    if (k > 0) {
        ctx_.rollback(1 + a);
        stats_.accepted += a;
        const double tested = std::min(a + 1, k);
        tested_ = 0.9 * tested_ + tested;
        accepted_ = 0.9 * accepted_ + a;
        if (probing_) probe_interval_ = a > 0 ? kFirstProbe : std::min(kLastProbe, 2 * probe_interval_);
        probing_ = false;
    }
    if (mtp_) {  // the head's cache gets the pairs (token, h_prev) of the tokens kept
        std::vector<float> h_prev(size_t(1 + a) * E);
        std::copy(h_last_.begin(), h_last_.end(), h_prev.begin());
        for (int i = 0; i < a; ++i) std::copy(ctx_.hidden(i), ctx_.hidden(i) + E, h_prev.begin() + long(size_t(i + 1) * E));
        // The first draft wrote position P itself, from the same pair.
        const int skip = k > 0 && !source_ ? 1 : 0;
        absorb(batch.data() + skip, h_prev.data() + size_t(skip) * E, 1 + a - skip, P + skip);
        h_last_.assign(ctx_.hidden(a), ctx_.hidden(a) + E);
    }
    const double ms = since_ms(t_step);
    double& m = step_ms_[size_t(k)];
    m = m == 0 ? ms : 0.8 * m + 0.2 * ms;

    pending_ = -1;
    queue_.assign(step_tokens_.begin(), step_tokens_.end());
    ahead_ = a;
    return pop();
}

}  // namespace rill
