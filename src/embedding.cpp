#include "src/embedding.h"

#include <algorithm>
#include <cmath>

#include "rill/error.h"

namespace rill {

Pooling pooling_for(const Model& model, const std::string& name) {
    if (name == "mean") return Pooling::Mean;
    if (name == "cls") return Pooling::Cls;
    if (name == "last") return Pooling::Last;
    if (!name.empty()) RILL_FAIL("pooling must be 'mean', 'cls' or 'last', got '%s'", name.c_str());
    const gguf::Value* v = model.file().find(model.config().arch + ".pooling_type");
    const int64_t type = v ? v->as_int() : 1;
    return type == 2 ? Pooling::Cls : type == 3 ? Pooling::Last : Pooling::Mean;
}

namespace {

// The pooled vector of one text whose n hidden rows start at row `first` of the last eval.
std::vector<float> pool(const Context& ctx, int first, int n, int d, Pooling pooling, bool normalize) {
    std::vector<float> out(size_t(d), 0.0f);
    if (pooling == Pooling::Mean) {
        std::vector<double> sum(size_t(d), 0.0);
        for (int i = 0; i < n; ++i) {
            const float* h = ctx.hidden(first + i);
            for (int j = 0; j < d; ++j) sum[size_t(j)] += h[j];
        }
        for (int j = 0; j < d; ++j) out[size_t(j)] = float(sum[size_t(j)] / n);
    } else {
        const float* h = ctx.hidden(pooling == Pooling::Cls ? first : first + n - 1);
        out.assign(h, h + d);
    }
    if (normalize) {
        double ss = 0;
        for (float x : out) ss += double(x) * x;
        const float inv = ss > 0 ? float(1.0 / std::sqrt(ss)) : 0.0f;
        for (float& x : out) x *= inv;
    }
    return out;
}

}  // namespace

std::vector<std::vector<float>> embed(Context& ctx, const std::vector<std::vector<TokenId>>& texts, Pooling pooling,
                                      bool normalize, int max_batch) {
    for (size_t i = 0; i < texts.size(); ++i) {
        if (texts[i].empty()) RILL_FAIL("nothing to embed: text %zu has no tokens", i);
        if (int(texts[i].size()) > ctx.n_ctx())
            RILL_FAIL("text %zu (%zu tokens) is longer than the context of %d tokens (load with a larger contextSize)", i,
                      texts[i].size(), ctx.n_ctx());
    }
    const int d = ctx.model().config().n_embd;
    const int limit = std::min(std::max(1, max_batch), ctx.n_ctx());
    const bool pack = !ctx.has_recurrent();
    struct Empty {  // the context is empty after, however this ends
        Context& c;
        ~Empty() { c.reset(); }
    } empty_after{ctx};
    ctx.reset();
    std::vector<std::vector<float>> out;
    out.reserve(texts.size());
    for (size_t i = 0; i < texts.size();) {
        // The next batch: texts in order while they fit (at least one).
        size_t end = i + 1;
        size_t tokens = texts[i].size();
        while (pack && end < texts.size() && tokens + texts[end].size() <= size_t(limit)) tokens += texts[end++].size();
        EvalOptions eo;
        eo.keep = Logits::None;
        eo.hidden = true;
        std::vector<TokenId> batch;
        batch.reserve(tokens);
        for (size_t j = i; j < end; ++j) {
            batch.insert(batch.end(), texts[j].begin(), texts[j].end());
            if (pack) eo.sequences.push_back(int(texts[j].size()));
        }
        ctx.eval(batch, eo);
        for (int first = 0; i < end; first += int(texts[i++].size()))
            out.push_back(pool(ctx, first, int(texts[i].size()), d, pooling, normalize));
        ctx.reset();
    }
    return out;
}

}  // namespace rill
