// Token sampling: greedy, or penalties -> top-k -> top-p -> min-p -> temperature -> a
// draw from a seeded PCG32 stream, so a given seed always gives the same tokens.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "src/grammar.h"
#include "tokenizer/tokenizer.h"

namespace rill {

struct SamplerParams {
    float temperature = 0.0f;     // <= 0: greedy
    int top_k = 40;               // <= 0: off
    float top_p = 1.0f;           // >= 1: off
    float min_p = 0.0f;           // <= 0: off
    float repeat_penalty = 1.0f;  // 1: off; divides positive logits of recent tokens, multiplies negative ones
    float presence_penalty = 0.0f;  // subtracted once from the logit of every recent token
    float frequency_penalty = 0.0f;  // subtracted from a recent token's logit once per time it occurs
    int penalty_last_n = 64;      // how many recent tokens the penalties look at
    uint64_t seed = 0;
    std::vector<std::pair<TokenId, float>> logit_bias;  // added to those tokens' logits first (-inf: never)
    int logprobs = -1;            // >= 0: record each sampled token's log-probability and this many best alternatives
};

// A sampled token's log-probability under the model's distribution (softmax of the logits with
// the logit bias, before penalties, grammar and truncation), and the best alternatives.
struct TokenLogprobs {
    TokenId token = -1;
    float logprob = 0.0f;
    std::vector<std::pair<TokenId, float>> top;
};

class Sampler {
public:
    explicit Sampler(const SamplerParams& p);
    // With a grammar, only the tokens it allows are candidates (the rest of the pipeline runs on
    // them as if the others had no probability). Greedy and top-k ask it about the best tokens
    // one by one and stop once they have enough; otherwise it marks the whole vocabulary.
    TokenId sample(const float* logits, int n_vocab, const GrammarMatcher* grammar = nullptr);
    // Speculative decoding's rule for a drafted token: with the distribution p of these logits
    // and a drafter that proposed `draft` as its single choice, returns `draft` (accepted = true)
    // with probability p(draft), else a draw from p without it. The result is distributed exactly
    // as sample()'s. Greedy: the argmax, accepted when it equals the draft.
    TokenId sample_after_draft(const float* logits, int n_vocab, TokenId draft, bool* accepted,
                               const GrammarMatcher* grammar = nullptr);
    // Records a token (prompt or generated) for the penalties.
    void accept(TokenId id);
    void reset();
    // The recorded recent tokens (to undo accepts of tokens that were dropped).
    const std::deque<TokenId>& recent() const { return recent_; }
    void set_recent(std::deque<TokenId> r) { recent_ = std::move(r); }
    // With params.logprobs >= 0: the last sampled token's log-probabilities.
    const TokenLogprobs& last_logprobs() const { return logprobs_; }

private:
    uint32_t next_u32();
    float next_unit();  // uniform in [0, 1)
    // The distribution: cand_[0..k) with weights weight_[0..k) (unnormalised; greedy: the argmax alone).
    size_t distribution(const float* logits, int n_vocab, const GrammarMatcher* grammar);
    void constrain(const GrammarMatcher& grammar);  // cand_: only allowed tokens
    TokenId draw(size_t keep, TokenId skip);  // from the distribution without `skip`
    void record_logprobs(const float* logits, int n_vocab, TokenId chosen);

    SamplerParams p_;
    uint64_t state_, inc_;
    std::deque<TokenId> recent_;
    std::vector<std::pair<float, TokenId>> cand_;
    std::vector<double> weight_;
    std::vector<uint8_t> mask_;
    TokenLogprobs logprobs_;
};

}  // namespace rill
