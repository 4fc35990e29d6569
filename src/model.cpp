#include "src/model.h"

#include <algorithm>
#include <cmath>

#include "kernels/ops.h"
#include "kernels/ops_ref.h"
#include "kernels/quant_ref.h"
#include "rill/error.h"
#include "src/arch.h"

namespace rill {
namespace {

// Binds tensors by name and checks each against the shape and types its role needs.
struct Binder {
    const gguf::File& f;
    std::vector<Tensor>* repacks;  // matrices to rearrange into their preferred layout

    // lookup: rows are also read one by one (token_embd, see Tensor::dequantize_row), so only a
    // layout that keeps each row's bytes together applies.
    Tensor bind(const std::string& name, std::vector<int64_t> shape, bool matrix, bool required = true, bool lookup = false) const {
        const gguf::TensorInfo* ti = f.find_tensor(name);
        if (!ti) {
            if (required) RILL_FAIL("missing tensor '%s'", name.c_str());
            return {};
        }
        Tensor t;
        t.type = ti->type;
        std::copy(ti->ne, ti->ne + 4, t.ne);
        t.data = ti->data;
        t.order = llama_cpp_sum_order(t.type, ti->ne[1]);
        bool ok = ti->n_dims <= 4;
        for (size_t d = 0; d < 4; ++d) ok = ok && ti->ne[d] == (d < shape.size() ? shape[d] : 1);
        if (!ok) {
            std::string want = "[";
            for (size_t d = 0; d < shape.size(); ++d) want += (d ? ", " : "") + std::to_string(shape[d]);
            RILL_FAIL("tensor '%s' has shape %s, expected %s", name.c_str(), ti->shape_string().c_str(), (want + "]").c_str());
        }
        if (matrix ? !weight_type_supported(t.type) : t.type != TensorType::F32)
            RILL_FAIL("tensor '%s' has type %s, which Rill does not support for %s", name.c_str(),
                      std::string(type_name(t.type)).c_str(), matrix ? "a weight matrix" : "a vector weight (needs f32)");
        if (matrix && f.writable()) {  // owned bytes: the kernels' preferred layout
            const WeightLayout layout = kern::preferred_layout(t.type, t.ne[1], t.ne[0], t.order);
            if (!lookup || layout != WeightLayout::Rows4) t.layout = layout;
            if (t.layout != WeightLayout::Plain) repacks->push_back(t);
        }
        if (matrix) t.layout = kern::checked_layout(t.layout, t.type, t.data, t.ne[1], t.ne[0]);
        return t;
    }
    // Binds each spec into its slot; block tensors (prefix "blk.<il>.") by their full names.
    void bind_all(const std::vector<TensorSpec>& specs, const std::string& prefix) const {
        for (const TensorSpec& s : specs) *s.slot = bind(prefix + s.name, s.shape, s.matrix, s.required, s.lookup);
    }
};

}  // namespace

uint64_t Tensor::row_bytes() const { return rill::row_bytes(type, uint64_t(ne[0])); }

void Tensor::dequantize_row(int64_t r, float* out) const {
    const uint8_t* row = data + uint64_t(r) * row_bytes();
    if (layout == WeightLayout::Plain || layout == WeightLayout::Q8Abs7) return rill::dequantize_row(type, row, out, ne[0]);
    thread_local std::vector<uint8_t> plain;
    plain.resize(size_t(row_bytes()));
    kern::plain_row(layout, type, row, ne[0], plain.data());
    rill::dequantize_row(type, plain.data(), out, ne[0]);
}

ModelConfig Model::read_config(const gguf::File& file, const ArchCard** card_out) {
    const gguf::Value* av = file.find("general.architecture");
    if (!av) RILL_FAIL("missing metadata key 'general.architecture'");
    ModelConfig c;
    c.arch = std::string(av->as_string());
    const ArchCard* card = find_arch(c.arch);
    if (!card) RILL_FAIL("unsupported architecture '%s' (Rill supports %s)", c.arch.c_str(), arch_names().c_str());
    if (card_out) *card_out = card;

    const MetaKeys k{file, c.arch + "."};
    c.n_ctx_train = int(k.integer("context_length"));
    c.n_embd = int(k.positive("embedding_length"));
    const int64_t block_count = k.positive("block_count");
    const int64_t nextn = k.integer("nextn_predict_layers", 0);
    if (nextn != 0 && c.arch != "qwen35")
        RILL_FAIL("%snextn_predict_layers = %lld: Rill reads multi-token-prediction blocks for qwen35 only", k.prefix.c_str(), (long long)nextn);
    if (nextn < 0 || nextn > 1 || nextn >= block_count)
        RILL_FAIL("%snextn_predict_layers = %lld: Rill reads files with 0 or 1 multi-token-prediction block (as Qwen 3.5's), "
                  "fewer than block_count (%lld)", k.prefix.c_str(), (long long)nextn, (long long)block_count);
    c.n_layer = int(block_count - nextn);
    c.n_layer_mtp = int(nextn);
    // feed_forward_length: one number, or one per block (Gemma 4's wider FFNs on some layers).
    if (const gguf::Value* ff = k.find("feed_forward_length"); ff && ff->type == gguf::ValueType::ARRAY) {
        if (ff->count != uint64_t(block_count))
            RILL_FAIL("metadata key '%sfeed_forward_length' must hold one value per block (%lld)", k.prefix.c_str(), (long long)block_count);
        for (int64_t il = 0; il < block_count; ++il) {
            const int64_t v = ff->int_at(uint64_t(il));
            if (v <= 0 || v > (1 << 24)) RILL_FAIL("%sfeed_forward_length[%lld] = %lld is out of range", k.prefix.c_str(), (long long)il, (long long)v);
            c.n_ff_layer.push_back(int(v));
            c.n_ff = std::max(c.n_ff, int(v));
        }
    } else {
        c.n_ff = int(k.positive("feed_forward_length"));
    }
    c.n_head = int(k.positive("attention.head_count"));
    // head_count_kv: one number, or one per layer (LFM2: 0 on its convolution layers; every other
    // layer must have the same count).
    const gguf::Value* kv = k.find("attention.head_count_kv");
    c.n_head_kv_layer.assign(size_t(block_count), c.n_head);
    if (kv && kv->type == gguf::ValueType::ARRAY) {
        if (kv->count != uint64_t(block_count))
            RILL_FAIL("metadata key '%sattention.head_count_kv' must hold one value per block (%lld)", k.prefix.c_str(), (long long)block_count);
        c.n_head_kv = 0;
        for (int64_t il = 0; il < block_count; ++il) {
            const int64_t v = kv->int_at(uint64_t(il));
            if (v < 0 || v > (1 << 24)) RILL_FAIL("%sattention.head_count_kv[%lld] = %lld is out of range", k.prefix.c_str(), (long long)il, (long long)v);
            c.n_head_kv_layer[size_t(il)] = int(v);
            if (v && c.n_head % v != 0)
                RILL_FAIL("attention.head_count (%d) is not a multiple of %sattention.head_count_kv[%lld] (%lld)", c.n_head,
                          k.prefix.c_str(), (long long)il, (long long)v);
            c.n_head_kv = std::max(c.n_head_kv, int(v));  // the largest; kv_heads(il) is each layer's
        }
        if (c.n_head_kv == 0) RILL_FAIL("%sattention.head_count_kv is 0 on every layer", k.prefix.c_str());
    } else {
        c.n_head_kv = kv ? int(k.positive("attention.head_count_kv")) : c.n_head;
        c.n_head_kv_layer.assign(size_t(block_count), c.n_head_kv);
    }
    if (c.n_head % c.n_head_kv != 0)
        RILL_FAIL("attention.head_count (%d) is not a multiple of attention.head_count_kv (%d)", c.n_head, c.n_head_kv);
    c.head_dim_k = k.find("attention.key_length") ? int(k.positive("attention.key_length")) : c.n_embd / c.n_head;
    if (c.head_dim_k <= 0) RILL_FAIL("hyperparameter attention.key_length = %d is out of range", c.head_dim_k);
    c.head_dim_v = int(k.integer("attention.value_length", c.head_dim_k));
    if (c.head_dim_v != c.head_dim_k) RILL_FAIL("attention.value_length (%d) differs from attention.key_length (%d)", c.head_dim_v, c.head_dim_k);
    c.rms_eps = float(k.number("attention.layer_norm_rms_epsilon", -1));
    if (!(c.rms_eps > 0)) RILL_FAIL("missing or invalid metadata key '%sattention.layer_norm_rms_epsilon'", k.prefix.c_str());
    c.rope_base = float(k.number("rope.freq_base", 10000.0));
    c.n_rot = int(k.integer("rope.dimension_count", c.head_dim_k));
    if (c.n_rot <= 0 || c.n_rot > c.head_dim_k || c.n_rot % 2)
        RILL_FAIL("rope.dimension_count %d must be even and at most attention.key_length %d", c.n_rot, c.head_dim_k);
    c.recurrent.assign(size_t(c.n_layer), false);
    c.rope_layer.assign(size_t(c.n_layer + c.n_layer_mtp), true);
    c.swa_layer.assign(size_t(c.n_layer + c.n_layer_mtp), false);
    if (const gguf::Value* t = k.find("rope.scaling.type")) {
        const std::string type(t->as_string());
        if (type == "yarn")
            RILL_FAIL("%srope.scaling.type 'yarn' is not supported (Rill applies none, linear and LongRoPE scaling)", k.prefix.c_str());
        if (type != "none" && type != "linear" && type != "longrope")
            RILL_FAIL("%srope.scaling.type '%s' is unknown", k.prefix.c_str(), type.c_str());
    }
    const double factor = k.find("rope.scaling.factor") ? k.number("rope.scaling.factor", 0) : k.number("rope.scale_linear", 0);
    if (!(factor >= 0) || !std::isfinite(factor)) RILL_FAIL("%srope.scaling.factor = %g is not a valid factor", k.prefix.c_str(), factor);
    c.rope_freq_scale = factor == 0 ? 1.0f : 1.0f / float(factor);
    card->configure(k, c);
    for (int il = 0; il < c.n_layer; ++il)
        if (!c.recurrent[size_t(il)] && c.n_head_kv_layer[size_t(il)] == 0)
            RILL_FAIL("%sattention.head_count_kv is 0 on layer %d, which %s runs as attention", k.prefix.c_str(), il, c.arch.c_str());
    if (!(c.rope_mscale > 0) || !std::isfinite(c.rope_mscale))
        RILL_FAIL("metadata key '%srope.scaling.attn_factor' = %g is not a positive number", k.prefix.c_str(), double(c.rope_mscale));
    return c;
}

std::shared_ptr<const Model> Model::load(const gguf::File& file) {
    auto m = std::make_shared<Model>();
    m->file_ = file;
    if (file.split_count() != file.parts())
        RILL_FAIL("this file is %s of a model split in %u parts (llama.cpp's gguf-split): load all of them, by the first part's path or URL (the others are found beside it) or as a list",
                  file.find("split.no") ? ("part " + std::to_string(file.find("split.no")->as_int() + 1)).c_str() : "one part",
                  file.split_count());
    m->config_ = read_config(file, &m->card_);
    ModelConfig& c = m->config_;

    m->tokenizer_ = Tokenizer::from_gguf(file);
    std::vector<Tensor> repacks;
    const Binder b{file, &repacks};
    const gguf::TensorInfo* emb = file.find_tensor("token_embd.weight");
    if (!emb) RILL_FAIL("missing tensor 'token_embd.weight'");
    c.n_vocab = int(emb->ne[1]);
    if (size_t(c.n_vocab) < m->tokenizer_.n_tokens())
        RILL_FAIL("token_embd.weight has %d rows but the vocabulary has %zu tokens", c.n_vocab, m->tokenizer_.n_tokens());
    m->token_embd_ = b.bind("token_embd.weight", {c.n_embd, c.n_vocab}, true, true, /*lookup=*/true);
    m->output_norm_ = b.bind(std::string(m->card_->output_norm), {c.n_embd}, false);
    m->output_ = b.bind("output.weight", {c.n_embd, c.n_vocab}, true, false);
    if (!m->output_.present()) m->output_ = m->token_embd_;
    m->rope_freqs_ = b.bind("rope_freqs.weight", {c.n_rot / 2}, false, false);

    if (m->card_->model_tensors) {
        std::vector<TensorSpec> specs;
        m->card_->model_tensors(c, m->extra_, specs);
        b.bind_all(specs, "");
    }
    const int64_t E = c.n_embd;
    const auto name = [](int il, const char* s) { return "blk." + std::to_string(il) + "." + s; };
    m->layers_.resize(size_t(c.n_layer));
    for (int il = 0; il < c.n_layer + c.n_layer_mtp; ++il) {
        LayerWeights& L = il < c.n_layer ? m->layers_[size_t(il)] : m->mtp_.block;
        std::vector<TensorSpec> specs;
        m->card_->block(c, il, L, specs);
        b.bind_all(specs, "blk." + std::to_string(il) + ".");
    }
    if (c.n_layer_mtp) {
        const int il = c.n_layer;
        MtpWeights& t = m->mtp_;
        t.eh_proj = b.bind(name(il, "nextn.eh_proj.weight"), {2 * E, E}, true);
        t.enorm = b.bind(name(il, "nextn.enorm.weight"), {E}, false);
        t.hnorm = b.bind(name(il, "nextn.hnorm.weight"), {E}, false);
        t.embed_tokens = b.bind(name(il, "nextn.embed_tokens.weight"), {E, c.n_vocab}, true, false, /*lookup=*/true);
        t.shared_head_head = b.bind(name(il, "nextn.shared_head_head.weight"), {E, c.n_vocab}, true, false);
        t.shared_head_norm = b.bind(name(il, "nextn.shared_head_norm.weight"), {E}, false, false);
    }
    // FNV-1a over what identifies the weights, before any repacking.
    uint64_t h = 0xcbf29ce484222325ULL;
    const auto mix = [&h](const void* p, size_t n) {
        for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<const uint8_t*>(p)[i]) * 0x100000001b3ULL;
    };
    for (const auto& [k, v] : file.metadata()) {
        const std::string s = k + "=" + v.to_string(16);
        mix(s.data(), s.size());
    }
    for (const auto& t : file.tensors()) {
        mix(t.name.data(), t.name.size());
        mix(&t.type, sizeof(t.type));
        mix(t.ne, sizeof(t.ne));
        if (t.type == TensorType::F32 && t.n_bytes <= (1u << 20)) mix(t.data, size_t(t.n_bytes));
    }
    mix(emb->data, size_t(std::min<uint64_t>(emb->n_bytes, 1u << 16)));
    m->fingerprint_ = h;
    // Every tensor is bound once, so each is rearranged once; the bytes only on the first load.
    file.rewrite_once([&] {
        for (const Tensor& t : repacks) kern::repack(t.layout, t.type, const_cast<uint8_t*>(t.data), t.ne[1], t.ne[0]);
    });
    return m;
}

const float* Model::rope_factors(int n_ctx) const {
    if (rope_freqs_.present()) return rope_freqs_.f32();
    const Tensor& t = n_ctx > config_.n_ctx_orig ? extra_.rope_long : extra_.rope_short;
    return t.present() ? t.f32() : nullptr;
}

uint64_t Model::weight_bytes() const {
    uint64_t n = 0;
    for (const auto& t : file_.tensors()) n += t.n_bytes;
    return n;
}

}  // namespace rill
