#include "src/sampler.h"

#include <algorithm>
#include <cmath>

#include "rill/error.h"

namespace rill {

Sampler::Sampler(const SamplerParams& p) : p_(p) {
    if (p.top_p <= 0.0f) RILL_FAIL("top_p %g must be positive", double(p.top_p));
    if (p.repeat_penalty <= 0.0f) RILL_FAIL("repeat_penalty %g must be positive", double(p.repeat_penalty));
    for (const auto& [id, bias] : p.logit_bias)
        if (std::isnan(bias) || (std::isinf(bias) && bias > 0)) RILL_FAIL("logit bias %g of token %d must be a number or -infinity", double(bias), id);
    reset();
}

void Sampler::reset() {
    // PCG32 seeding (state advanced once with the seed folded in).
    inc_ = (p_.seed << 1u) | 1u;
    state_ = 0;
    next_u32();
    state_ += 0x853c49e6748fea9bULL ^ p_.seed;
    next_u32();
    recent_.clear();
}

uint32_t Sampler::next_u32() {
    const uint64_t old = state_;
    state_ = old * 6364136223846793005ULL + inc_;
    const uint32_t xorshifted = uint32_t(((old >> 18u) ^ old) >> 27u);
    const uint32_t rot = uint32_t(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((32 - rot) & 31));
}

float Sampler::next_unit() { return float(next_u32() >> 8) * (1.0f / 16777216.0f); }

void Sampler::accept(TokenId id) {
    if (p_.penalty_last_n <= 0) return;
    recent_.push_back(id);
    while (int(recent_.size()) > p_.penalty_last_n) recent_.pop_front();
}

namespace {
bool by_logit(const std::pair<float, TokenId>& a, const std::pair<float, TokenId>& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
}
}  // namespace

void Sampler::constrain(const GrammarMatcher& grammar) {
    // Greedy and top-k need only the best few allowed tokens: those among the best candidates,
    // if enough of them are allowed, are exactly what the whole mask would give.
    const size_t want = p_.temperature <= 0.0f ? 1 : p_.top_k > 0 ? size_t(p_.top_k) : 0;
    if (want > 0) {
        const size_t look = std::min(cand_.size(), std::max<size_t>(4 * want, 256));
        std::partial_sort(cand_.begin(), cand_.begin() + long(look), cand_.end(), by_logit);
        std::vector<std::pair<float, TokenId>> picked;
        for (size_t i = 0; i < look && picked.size() < want; ++i)
            if (grammar.allows(cand_[i].second)) picked.push_back(cand_[i]);
        if (picked.size() == want) {
            cand_ = std::move(picked);
            return;
        }
    }
    grammar.allowed(mask_);
    cand_.erase(std::remove_if(cand_.begin(), cand_.end(), [&](const auto& c) { return size_t(c.second) >= mask_.size() || !mask_[size_t(c.second)]; }), cand_.end());
    if (cand_.empty()) RILL_FAIL("the grammar allows no token of the vocabulary here");
}

size_t Sampler::distribution(const float* logits, int n_vocab, const GrammarMatcher* grammar) {
    cand_.resize(size_t(n_vocab));
    for (int i = 0; i < n_vocab; ++i) cand_[size_t(i)] = {logits[i], TokenId(i)};
    for (const auto& [id, bias] : p_.logit_bias)
        if (id >= 0 && id < n_vocab) cand_[size_t(id)].first += bias;
    if (p_.repeat_penalty != 1.0f || p_.presence_penalty != 0.0f || p_.frequency_penalty != 0.0f) {
        std::vector<TokenId> seen(recent_.begin(), recent_.end());
        std::sort(seen.begin(), seen.end());
        for (size_t i = 0; i < seen.size();) {
            const TokenId id = seen[i];
            size_t count = 0;
            while (i < seen.size() && seen[i] == id) ++i, ++count;
            if (id < 0 || id >= n_vocab) continue;
            float& l = cand_[size_t(id)].first;
            l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
            l -= p_.presence_penalty + float(count) * p_.frequency_penalty;
        }
    }
    // Banned tokens (a bias of -inf) are no candidates at all.
    if (!p_.logit_bias.empty())
        cand_.erase(std::remove_if(cand_.begin(), cand_.end(), [](const auto& c) { return std::isinf(c.first) && c.first < 0; }), cand_.end());
    if (cand_.empty()) RILL_FAIL("the logit bias bans every token of the vocabulary");
    if (grammar) constrain(*grammar);
    if (p_.temperature <= 0.0f) {
        std::iter_swap(cand_.begin(), std::min_element(cand_.begin(), cand_.end(), by_logit));
        weight_.assign(1, 1.0);
        return 1;
    }

    size_t n = cand_.size();
    if (p_.top_k > 0 && size_t(p_.top_k) < n) n = size_t(p_.top_k);
    // Top-k and top-p need the candidates in order; min-p and the draw need only the largest
    // first (a sort of a 248k vocabulary costs more than the draw).
    const bool ordered = n < cand_.size() || p_.top_p < 1.0f;
    if (ordered) {
        std::partial_sort(cand_.begin(), cand_.begin() + long(n), cand_.end(), by_logit);
        cand_.resize(n);
    } else {
        std::iter_swap(cand_.begin(), std::min_element(cand_.begin(), cand_.end(), by_logit));
    }
    // Probabilities at temperature 1 decide top-p and min-p; the draw uses the temperature.
    std::vector<double>& prob = weight_;
    prob.resize(n);
    const float mx = cand_[0].first;
    double sum = 0;
    for (size_t i = 0; i < n; ++i) sum += prob[i] = std::exp(double(cand_[i].first - mx));
    size_t keep = n;
    if (p_.top_p < 1.0f) {
        double acc = 0;
        for (size_t i = 0; i < n; ++i) {
            acc += prob[i] / sum;
            if (acc >= p_.top_p) { keep = i + 1; break; }
        }
    }
    if (p_.min_p > 0.0f && ordered) {
        size_t k = 1;
        while (k < keep && prob[k] >= p_.min_p * prob[0]) ++k;  // prob[0] is the largest
        keep = k;
    } else if (p_.min_p > 0.0f) {
        size_t k = 1;  // the kept ones to the front, in their order
        for (size_t i = 1; i < keep; ++i)
            if (prob[i] >= p_.min_p * prob[0]) cand_[k] = cand_[i], prob[k] = prob[i], ++k;
        keep = k;
    }
    for (size_t i = 0; i < keep; ++i) prob[i] = std::exp(double(cand_[i].first - mx) / p_.temperature);
    prob.resize(keep);
    return keep;
}

TokenId Sampler::draw(size_t keep, TokenId skip) {
    double total = 0;
    for (size_t i = 0; i < keep; ++i)
        if (cand_[i].second != skip) total += weight_[i];
    double r = double(next_unit()) * total;
    TokenId last = cand_[keep - 1].second;
    for (size_t i = 0; i < keep; ++i) {
        if (cand_[i].second == skip) continue;
        last = cand_[i].second;
        r -= weight_[i];
        if (r < 0) return last;
    }
    return last;
}

TokenId Sampler::sample(const float* logits, int n_vocab, const GrammarMatcher* grammar) {
    const size_t keep = distribution(logits, n_vocab, grammar);
    const TokenId t = p_.temperature <= 0.0f ? cand_[0].second : draw(keep, -1);
    if (p_.logprobs >= 0) record_logprobs(logits, n_vocab, t);
    return t;
}

void Sampler::record_logprobs(const float* logits, int n_vocab, TokenId chosen) {
    std::vector<std::pair<float, TokenId>>& all = cand_;  // the distribution is drawn from already
    all.resize(size_t(n_vocab));
    for (int i = 0; i < n_vocab; ++i) all[size_t(i)] = {logits[i], TokenId(i)};
    for (const auto& [id, bias] : p_.logit_bias)
        if (id >= 0 && id < n_vocab) all[size_t(id)].first += bias;
    float mx = -INFINITY;
    for (const auto& c : all) mx = std::max(mx, c.first);
    double sum = 0;
    for (const auto& c : all) sum += std::exp(double(c.first - mx));
    const float log_z = mx + float(std::log(sum));
    logprobs_.token = chosen;
    logprobs_.logprob = all[size_t(chosen)].first - log_z;
    const size_t n = std::min(size_t(p_.logprobs), all.size());
    std::partial_sort(all.begin(), all.begin() + long(n), all.end(), by_logit);
    logprobs_.top.clear();
    for (size_t i = 0; i < n; ++i) logprobs_.top.push_back({all[i].second, all[i].first - log_z});
}

TokenId Sampler::sample_after_draft(const float* logits, int n_vocab, TokenId draft, bool* accepted,
                                    const GrammarMatcher* grammar) {
    const size_t keep = distribution(logits, n_vocab, grammar);
    if (p_.temperature <= 0.0f) {
        *accepted = cand_[0].second == draft;
        return cand_[0].second;
    }
    // The draft was the drafter's argmax (a one-point proposal q): accept it with probability
    // min(1, p(d) / q(d)) = p(d), else draw from max(0, p - q) normalised: p without d.
    double total = 0, pd = 0;
    for (size_t i = 0; i < keep; ++i) {
        total += weight_[i];
        if (cand_[i].second == draft) pd = weight_[i];
    }
    *accepted = pd > 0 && double(next_unit()) < pd / total;
    return *accepted ? draft : draw(keep, draft);
}

}  // namespace rill
