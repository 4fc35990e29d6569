#include "src/synth.h"

#include <cmath>
#include <cstring>
#include <optional>

#include "gguf/gguf.h"
#include "kernels/quant_ref.h"
#include "rill/error.h"
#include "src/arch.h"
#include "src/model.h"
#include "src/quant_layout.h"

namespace rill {
namespace {

// Deterministic normal numbers from (seed, tensor name): SplitMix64 + Box-Muller.
class Rng {
public:
    Rng(uint64_t seed, const std::string& name) : s_(seed * 0x9e3779b97f4a7c15ULL) {
        for (unsigned char ch : name) s_ = (s_ ^ ch) * 0x100000001b3ULL;
    }
    uint64_t next() {
        uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }
    double normal() {
        const double u1 = uniform() + 1e-300, u2 = uniform();
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }
private:
    uint64_t s_;
};

enum class Kind { U32, F32, I32_ARRAY, BOOL };
struct Key { std::string name; Kind kind; std::string value; };

Kind kind_of(const std::string& value) {
    if (value == "true" || value == "false") return Kind::BOOL;
    if (value.find(',') != std::string::npos) return Kind::I32_ARRAY;
    return value.find_first_of(".eE") != std::string::npos ? Kind::F32 : Kind::U32;
}

// Small shapes whose matrix rows are multiples of 256, so every K-quant fits; the card's own keys
// (its synth_keys) override or extend them.
std::vector<Key> default_keys(const ArchCard& card) {
    std::vector<Key> k = {
        {"context_length", Kind::U32, "4096"},
        {"embedding_length", Kind::U32, "256"},
        {"block_count", Kind::U32, "4"},
        {"feed_forward_length", Kind::U32, "512"},
        {"attention.head_count", Kind::U32, "4"},
        {"attention.head_count_kv", Kind::U32, "2"},
        {"attention.layer_norm_rms_epsilon", Kind::F32, "1e-6"},
        {"rope.freq_base", Kind::F32, "10000"},
    };
    for (const SynthKey& sk : card.synth_keys) {
        bool found = false;
        for (auto& key : k)
            if (key.name == sk.name) {  // the default's type, but a list stays a list
                key.value = sk.value;
                if (kind_of(sk.value) == Kind::I32_ARRAY) key.kind = Kind::I32_ARRAY;
                found = true;
            }
        if (!found) k.push_back({sk.name, kind_of(sk.value), sk.value});
    }
    return k;
}

int64_t parse_int(const std::string& key, const std::string& v) {
    char* end = nullptr;
    const long long x = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end) RILL_FAIL("synth: --set %s=%s is not an integer", key.c_str(), v.c_str());
    return x;
}

class Builder {
public:
    Builder(const SynthOptions& o, gguf::Writer& w, int n_layer, int n_gqa) : o_(o), w_(w), n_layer_(n_layer), n_gqa_(n_gqa) {
        if (!o.layout.empty()) {
            layout_ = quant_layout(o.layout);
            if (!layout_) RILL_FAIL("synth: unknown --layout '%s' (%s)", o.layout.c_str(), quant_layout_names());
            layout_->imatrix = o.imatrix;
        }
    }

    TensorType type_for(const std::string& name, bool matrix, int64_t ne0) const {
        if (!matrix) return TensorType::F32;
        std::string base = name;
        if (base.size() > 7 && base.compare(base.size() - 7, 7, ".weight") == 0) base.resize(base.size() - 7);
        TensorType t = layout_ ? quant_layout_type(*layout_, {name, ne0, n_layer_, n_gqa_, o_.tied}) : o_.type;
        for (const auto& [suffix, ty] : o_.tensor_types)
            if (base == suffix || (base.size() > suffix.size() && base.compare(base.size() - suffix.size(), suffix.size(), suffix) == 0 &&
                                   base[base.size() - suffix.size() - 1] == '.'))
                t = ty;
        return t;
    }

    // Adds a tensor of shape [ne0, ne1] whose values are produced row by row by `fill`.
    template <typename Fill>
    void add(const std::string& name, int64_t ne0, int64_t ne1, bool matrix, Fill fill) {
        const TensorType t = type_for(name, matrix, ne0);
        const auto& tr = traits(t);
        if (ne0 % tr.block_size != 0)
            RILL_FAIL("synth: tensor '%s' has rows of %lld values, not a multiple of the %s block size %u; choose another type or shape",
                      name.c_str(), (long long)ne0, std::string(tr.name).c_str(), tr.block_size);
        Rng rng(o_.seed, name);
        std::vector<float> row(static_cast<size_t>(ne0));
        std::vector<uint8_t> bytes(static_cast<size_t>(row_bytes(t, uint64_t(ne0)) * uint64_t(ne1)));
        for (int64_t r = 0; r < ne1; ++r) {
            fill(rng, r, row);
            quantize_row(t, row.data(), bytes.data() + uint64_t(r) * row_bytes(t, uint64_t(ne0)), ne0);
        }
        std::vector<int64_t> shape{ne0};
        if (ne1 > 1 || matrix) shape.push_back(ne1);
        w_.add_tensor(name, t, shape, bytes.data(), bytes.size());
    }

    // A linear layer with fan-in ne0: N(0, gain / sqrt(ne0)).
    void linear(const std::string& name, int64_t ne0, int64_t ne1, double gain = 1.0) {
        const double s = gain / std::sqrt(double(ne0));
        add(name, ne0, ne1, true, [&](Rng& g, int64_t, std::vector<float>& row) {
            for (auto& v : row) v = float(g.normal() * s);
        });
    }
    // Rows with their own scale exp(0.5 N(0,1)), so that logits are well separated.
    void head(const std::string& name, int64_t ne0, int64_t ne1) {
        const double s = 1.0 / std::sqrt(double(ne0));
        add(name, ne0, ne1, true, [&](Rng& g, int64_t, std::vector<float>& row) {
            const double row_scale = std::exp(0.5 * g.normal());
            for (auto& v : row) v = float(g.normal() * s * row_scale);
        });
    }
    // Around `mean` with spread `sd`.
    void vec(const std::string& name, int64_t n, double mean, double sd) {
        add(name, n, 1, false, [&](Rng& g, int64_t, std::vector<float>& row) {
            for (auto& v : row) v = float(mean + sd * g.normal());
        });
    }

    // A card's tensor, drawn as its Init says.
    void spec(const std::string& prefix, const TensorSpec& t) {
        const std::string name = prefix + t.name;
        const int64_t ne0 = t.shape[0], ne1 = t.shape.size() > 1 ? t.shape[1] : 1;
        const auto each = [&](auto draw) {
            add(name, ne0, ne1, t.matrix, [&](Rng& g, int64_t, std::vector<float>& row) {
                for (auto& v : row) v = float(draw(g));
            });
        };
        switch (t.init) {
            case Init::Linear: return linear(name, ne0, ne1, t.gain);
            case Init::Norm: return vec(name, ne0, 1.0, 0.1);
            case Init::Bias: return vec(name, ne0, 0.0, 0.1);
            case Init::DtBias: return vec(name, ne0, 0.0, 0.5);
            case Init::Conv: return each([](Rng& g) { return 0.5 * g.normal(); });
            case Init::DecayA: return each([](Rng& g) { return -std::exp(2.0 * g.uniform() - 1.5); });  // stored as -exp(A_log)
            case Init::RopeFactor: return each([](Rng& g) { return std::exp(2.0 * g.uniform()); });
            case Init::Absent: return;
        }
    }

private:
    const SynthOptions& o_;
    gguf::Writer& w_;
    int n_layer_, n_gqa_;
    std::optional<QuantLayout> layout_;
};

}  // namespace

void synth_model(const SynthOptions& o) {
    const ArchCard* card = find_arch(o.arch);
    if (!card) RILL_FAIL("synth: unsupported architecture '%s' (%s)", o.arch.c_str(), arch_names().c_str());
    std::vector<Key> keys = default_keys(*card);
    for (const auto& [name, value] : o.set) {
        bool found = false;
        for (auto& k : keys)
            if (k.name == name) {  // a list for a list; a single value for a card's list (LFM2, Gemma 4) is one again
                if (kind_of(value) == Kind::I32_ARRAY) k.kind = Kind::I32_ARRAY;
                else if (k.kind == Kind::I32_ARRAY) k.kind = kind_of(value);
                k.value = value;
                found = true;
            }
        if (!found) keys.push_back({name, kind_of(value), value});  // a key without a default: its type from the value
    }

    if (o.mtp) {
        if (o.arch != "qwen35") RILL_FAIL("synth: --mtp is for qwen35 (its multi-token-prediction block)");
        for (auto& k : keys)
            if (k.name == "block_count") k.value = std::to_string(parse_int(k.name, k.value) + 1);
        keys.push_back({"nextn_predict_layers", Kind::U32, "1"});
    }
    gguf::Writer w;
    w.set_str("general.architecture", o.arch);
    w.set_str("general.name", "rill-synth-" + o.arch);
    const std::string p = o.arch + ".";
    for (const auto& k : keys) {
        switch (k.kind) {
            case Kind::U32: {
                const int64_t v = parse_int(k.name, k.value);
                if (v < 0 || v > UINT32_MAX) RILL_FAIL("synth: --set %s=%s is out of range", k.name.c_str(), k.value.c_str());
                w.set_u32(p + k.name, uint32_t(v));
                break;
            }
            case Kind::F32: w.set_f32(p + k.name, std::strtof(k.value.c_str(), nullptr)); break;
            case Kind::BOOL: w.set_bool(p + k.name, k.value == "true"); break;
            case Kind::I32_ARRAY: {
                std::vector<int32_t> v;
                size_t pos = 0;
                while (pos <= k.value.size()) {
                    const size_t comma = std::min(k.value.find(',', pos), k.value.size());
                    v.push_back(int32_t(parse_int(k.name, k.value.substr(pos, comma - pos))));
                    pos = comma + 1;
                }
                w.set_array_i32(p + k.name, v);
                break;
            }
        }
    }

    // Tokenizer: copied from the vocabulary file, padded with unused tokens or cut to the first
    // vocab_size tokens if asked (cutting: only a vocabulary without merges, whose special tokens
    // stay inside, e.g. an SPM one: small heads for fast tests).
    const gguf::File vocab = gguf::File::open(o.vocab_path);
    const gguf::Value* tokens = vocab.find("tokenizer.ggml.tokens");
    if (!tokens || tokens->type != gguf::ValueType::ARRAY || tokens->elem_type != gguf::ValueType::STRING)
        RILL_FAIL("synth: '%s' has no tokenizer.ggml.tokens", o.vocab_path.c_str());
    const int64_t n_tok = int64_t(tokens->count);
    const int64_t n_vocab = o.vocab_size ? o.vocab_size : n_tok;
    if (n_vocab < n_tok) {
        if (vocab.find("tokenizer.ggml.merges"))
            RILL_FAIL("synth: --vocab-size %lld would cut a vocabulary with merges (only merge-free ones, such as SPM, can be cut)",
                      (long long)n_vocab);
        for (const auto& [k, v] : vocab.metadata())
            if (k.rfind("tokenizer.ggml.", 0) == 0 && k.size() > 9 && k.compare(k.size() - 9, 9, "_token_id") == 0 &&
                v.as_int() >= n_vocab)
                RILL_FAIL("synth: --vocab-size %lld would cut special token %s = %lld", (long long)n_vocab, k.c_str(), (long long)v.as_int());
    }
    for (const auto& [k, v] : vocab.metadata()) {
        if (k.rfind("tokenizer.", 0) != 0) continue;
        if (n_vocab != n_tok && (k == "tokenizer.ggml.tokens" || k == "tokenizer.ggml.token_type" || k == "tokenizer.ggml.scores")) continue;
        w.set_value(k, v);
    }
    if (n_vocab != n_tok) {
        const int64_t n_kept = std::min(n_tok, n_vocab);
        std::vector<std::string> toks(tokens->strings.begin(), tokens->strings.begin() + long(n_kept));
        std::vector<int32_t> types(static_cast<size_t>(n_vocab), 1);
        std::vector<float> scores(static_cast<size_t>(n_vocab), 0.0f);
        if (const gguf::Value* t = vocab.find("tokenizer.ggml.token_type"))
            for (int64_t i = 0; i < n_kept; ++i) types[size_t(i)] = int32_t(t->int_at(uint64_t(i)));
        if (const gguf::Value* s = vocab.find("tokenizer.ggml.scores"))
            for (int64_t i = 0; i < n_kept; ++i) scores[size_t(i)] = float(s->float_at(uint64_t(i)));
        for (int64_t i = n_tok; i < n_vocab; ++i) {
            toks.push_back("<|rill_unused_" + std::to_string(i) + "|>");
            types[size_t(i)] = 5;  // unused
        }
        w.set_array_str("tokenizer.ggml.tokens", toks);
        w.set_array_i32("tokenizer.ggml.token_type", types);
        if (vocab.find("tokenizer.ggml.scores")) w.set_array_f32("tokenizer.ggml.scores", scores);
    }

    // The card's tensors for these hyperparameters, read back as the loader reads them.
    ModelConfig c = Model::read_config(gguf::File::parse(gguf::bytes_from_vector(w.finish())));
    c.n_vocab = int(n_vocab);
    const int64_t E = c.n_embd;
    Builder b(o, w, c.n_layer + c.n_layer_mtp, c.n_head / c.n_head_kv);
    b.head("token_embd.weight", E, n_vocab);
    b.vec(std::string(card->output_norm), E, 1.0, 0.1);
    if (!o.tied) b.head("output.weight", E, n_vocab);
    std::vector<TensorSpec> specs;
    ModelTensors model_slots;
    if (card->model_tensors) card->model_tensors(c, model_slots, specs);
    for (const TensorSpec& t : specs) b.spec("", t);
    for (int il = 0; il < c.n_layer + c.n_layer_mtp; ++il) {
        const std::string prefix = "blk." + std::to_string(il) + ".";
        LayerWeights slots;
        specs.clear();
        card->block(c, il, slots, specs);
        for (const TensorSpec& t : specs) b.spec(prefix, t);
        if (il == c.n_layer) {  // the MTP block's own tensors; embed_tokens and the head are shared
            b.linear(prefix + "nextn.eh_proj.weight", 2 * E, E);
            b.vec(prefix + "nextn.enorm.weight", E, 1.0, 0.1);
            b.vec(prefix + "nextn.hnorm.weight", E, 1.0, 0.1);
            b.vec(prefix + "nextn.shared_head_norm.weight", E, 1.0, 0.1);
        }
    }
    w.write_file(o.out_path);
}

}  // namespace rill
