#include "src/model.h"

#include <cmath>

#include "kernels/ops.h"
#include "kernels/ops_ref.h"
#include "rill/error.h"

namespace rill {
namespace {

// Reads `<arch>.<key>` metadata with errors that name the key.
struct Keys {
    const gguf::File& f;
    std::string prefix;
    const gguf::Value* find(const std::string& key) const { return f.find(prefix + key); }
    int64_t integer(const std::string& key) const {
        const gguf::Value* v = find(key);
        if (!v) RILL_FAIL("missing metadata key '%s%s'", prefix.c_str(), key.c_str());
        try {
            return v->as_int();
        } catch (const Error& e) {
            RILL_FAIL("metadata key '%s%s': %s", prefix.c_str(), key.c_str(), e.what());
        }
    }
    int64_t integer(const std::string& key, int64_t def) const { return find(key) ? integer(key) : def; }
    double number(const std::string& key, double def) const {
        const gguf::Value* v = find(key);
        if (!v) return def;
        try {
            return v->as_float();
        } catch (const Error& e) {
            RILL_FAIL("metadata key '%s%s': %s", prefix.c_str(), key.c_str(), e.what());
        }
    }
};

void require_positive(const char* what, int64_t v) {
    if (v <= 0 || v > (1 << 24)) RILL_FAIL("hyperparameter %s = %lld is out of range", what, (long long)v);
}

// Binds tensors by name and checks each against the shape and types its role needs.
struct Binder {
    const gguf::File& f;
    std::vector<Tensor>* repacks;  // matrices to rearrange into their preferred layout

    // lookup: rows are also read one by one (token_embd), so the bytes keep the file's layout.
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
        if (matrix && !lookup && f.writable()) {  // owned bytes: the kernels' preferred layout
            t.layout = kern::preferred_layout(t.type, t.ne[1], t.ne[0], t.order);
            if (t.layout != WeightLayout::Plain) repacks->push_back(t);
        }
        return t;
    }
};

}  // namespace

std::string_view arch_name(Arch a) {
    switch (a) {
        case Arch::Llama: return "llama";
        case Arch::Qwen2: return "qwen2";
        case Arch::Qwen3: return "qwen3";
        case Arch::Qwen35: return "qwen35";
    }
    return "?";
}

uint64_t Tensor::row_bytes() const { return rill::row_bytes(type, uint64_t(ne[0])); }

std::shared_ptr<const Model> Model::load(const gguf::File& file) {
    auto m = std::make_shared<Model>();
    m->file_ = file;
    if (file.split_count() != file.parts())
        RILL_FAIL("this file is %s of a model split in %u parts (llama.cpp's gguf-split): load all of them, by the first part's path or URL (the others are found beside it) or as a list",
                  file.find("split.no") ? ("part " + std::to_string(file.find("split.no")->as_int() + 1)).c_str() : "one part",
                  file.split_count());
    const gguf::Value* av = file.find("general.architecture");
    if (!av) RILL_FAIL("missing metadata key 'general.architecture'");
    const std::string arch(av->as_string());
    ModelConfig& c = m->config_;
    if (arch == "llama") c.arch = Arch::Llama;
    else if (arch == "qwen2") c.arch = Arch::Qwen2;
    else if (arch == "qwen3") c.arch = Arch::Qwen3;
    else if (arch == "qwen35") c.arch = Arch::Qwen35;
    else RILL_FAIL("unsupported architecture '%s' (Rill supports llama, qwen2, qwen3 and qwen35)", arch.c_str());

    const Keys k{file, arch + "."};
    c.n_ctx_train = int(k.integer("context_length"));
    c.n_embd = int(k.integer("embedding_length"));
    const int64_t block_count = k.integer("block_count");
    require_positive("block_count", block_count);
    const int64_t nextn = k.integer("nextn_predict_layers", 0);
    if (nextn != 0 && c.arch != Arch::Qwen35)
        RILL_FAIL("%snextn_predict_layers = %lld: Rill reads multi-token-prediction blocks for qwen35 only", k.prefix.c_str(), (long long)nextn);
    if (nextn < 0 || nextn > 1 || nextn >= block_count)
        RILL_FAIL("%snextn_predict_layers = %lld: Rill reads files with 0 or 1 multi-token-prediction block (as Qwen 3.5's), "
                  "fewer than block_count (%lld)", k.prefix.c_str(), (long long)nextn, (long long)block_count);
    c.n_layer = int(block_count - nextn);
    c.n_layer_mtp = int(nextn);
    c.n_ff = int(k.integer("feed_forward_length"));
    c.n_head = int(k.integer("attention.head_count"));
    c.n_head_kv = int(k.integer("attention.head_count_kv", c.n_head));
    require_positive("embedding_length", c.n_embd);
    require_positive("block_count", c.n_layer);
    require_positive("feed_forward_length", c.n_ff);
    require_positive("attention.head_count", c.n_head);
    require_positive("attention.head_count_kv", c.n_head_kv);
    if (c.n_head % c.n_head_kv != 0)
        RILL_FAIL("attention.head_count (%d) is not a multiple of attention.head_count_kv (%d)", c.n_head, c.n_head_kv);
    c.head_dim_k = int(k.integer("attention.key_length", c.n_embd / c.n_head));
    c.head_dim_v = int(k.integer("attention.value_length", c.head_dim_k));
    require_positive("attention.key_length", c.head_dim_k);
    if (c.head_dim_v != c.head_dim_k) RILL_FAIL("attention.value_length (%d) differs from attention.key_length (%d)", c.head_dim_v, c.head_dim_k);
    c.rms_eps = float(k.number("attention.layer_norm_rms_epsilon", -1));
    if (!(c.rms_eps > 0)) RILL_FAIL("missing or invalid metadata key '%sattention.layer_norm_rms_epsilon'", k.prefix.c_str());
    c.rope_base = float(k.number("rope.freq_base", 10000.0));
    c.n_rot = int(k.integer("rope.dimension_count", c.head_dim_k));
    if (c.n_rot <= 0 || c.n_rot > c.head_dim_k || c.n_rot % 2)
        RILL_FAIL("rope.dimension_count %d must be even and at most attention.key_length %d", c.n_rot, c.head_dim_k);
    c.rope_neox = c.arch != Arch::Llama;
    c.attn_output_gate = c.arch == Arch::Qwen35;
    c.recurrent.assign(size_t(c.n_layer), false);

    if (c.arch == Arch::Qwen35) {
        c.ssm_conv_kernel = int(k.integer("ssm.conv_kernel"));
        c.ssm_k_dim = int(k.integer("ssm.state_size"));
        c.ssm_n_k_heads = int(k.integer("ssm.group_count"));
        c.ssm_n_v_heads = int(k.integer("ssm.time_step_rank"));
        const int64_t inner = k.integer("ssm.inner_size");
        require_positive("ssm.conv_kernel", c.ssm_conv_kernel);
        require_positive("ssm.state_size", c.ssm_k_dim);
        require_positive("ssm.group_count", c.ssm_n_k_heads);
        require_positive("ssm.time_step_rank", c.ssm_n_v_heads);
        if (inner % c.ssm_n_v_heads != 0) RILL_FAIL("ssm.inner_size (%lld) is not a multiple of ssm.time_step_rank (%d)", (long long)inner, c.ssm_n_v_heads);
        c.ssm_v_dim = int(inner / c.ssm_n_v_heads);
        if (c.ssm_n_v_heads % c.ssm_n_k_heads != 0)
            RILL_FAIL("ssm.time_step_rank (%d value heads) is not a multiple of ssm.group_count (%d key heads)", c.ssm_n_v_heads, c.ssm_n_k_heads);
        if (c.ssm_v_dim != c.ssm_k_dim)
            RILL_FAIL("DeltaNet value head size %d (ssm.inner_size / ssm.time_step_rank) differs from key head size %d (ssm.state_size)",
                      c.ssm_v_dim, c.ssm_k_dim);
        if (const gguf::Value* rl = k.find("attention.recurrent_layers")) {
            if (rl->type != gguf::ValueType::ARRAY || rl->count != uint64_t(block_count))
                RILL_FAIL("metadata key '%sattention.recurrent_layers' must be an array of %lld values", k.prefix.c_str(), (long long)block_count);
            for (int i = 0; i < c.n_layer; ++i) c.recurrent[size_t(i)] = rl->int_at(uint64_t(i)) != 0;
        } else {
            const int64_t interval = k.integer("full_attention_interval", 4);
            require_positive("full_attention_interval", interval);
            for (int i = 0; i < c.n_layer; ++i) c.recurrent[size_t(i)] = (i + 1) % interval != 0;
        }
    }

    m->tokenizer_ = Tokenizer::from_gguf(file);
    std::vector<Tensor> repacks;
    const Binder b{file, &repacks};
    const gguf::TensorInfo* emb = file.find_tensor("token_embd.weight");
    if (!emb) RILL_FAIL("missing tensor 'token_embd.weight'");
    c.n_vocab = int(emb->ne[1]);
    if (size_t(c.n_vocab) < m->tokenizer_.n_tokens())
        RILL_FAIL("token_embd.weight has %d rows but the vocabulary has %zu tokens", c.n_vocab, m->tokenizer_.n_tokens());
    m->token_embd_ = b.bind("token_embd.weight", {c.n_embd, c.n_vocab}, true, true, /*lookup=*/true);
    m->output_norm_ = b.bind("output_norm.weight", {c.n_embd}, false);
    m->output_ = b.bind("output.weight", {c.n_embd, c.n_vocab}, true, false);
    if (!m->output_.present()) m->output_ = m->token_embd_;
    m->rope_freqs_ = b.bind("rope_freqs.weight", {c.n_rot / 2}, false, false);

    const int64_t E = c.n_embd, H = c.n_head, HKV = c.n_head_kv, D = c.head_dim_k;
    const auto name = [](int il, const char* s) { return "blk." + std::to_string(il) + "." + s; };
    // Norms and FFN: every block; attention: the non-recurrent ones and the MTP block.
    const auto bind_norms_and_ffn = [&](LayerWeights& L, int il) {
        L.attn_norm = b.bind(name(il, "attn_norm.weight"), {E}, false);
        L.post_norm = b.bind(name(il, c.arch == Arch::Qwen35 ? "post_attention_norm.weight" : "ffn_norm.weight"), {E}, false);
        L.ffn_gate = b.bind(name(il, "ffn_gate.weight"), {E, c.n_ff}, true);
        L.ffn_up = b.bind(name(il, "ffn_up.weight"), {E, c.n_ff}, true);
        L.ffn_down = b.bind(name(il, "ffn_down.weight"), {c.n_ff, E}, true);
    };
    const auto bind_attention = [&](LayerWeights& L, int il) {
        const int64_t q_rows = H * D * (c.attn_output_gate ? 2 : 1);
        L.wq = b.bind(name(il, "attn_q.weight"), {E, q_rows}, true);
        L.wk = b.bind(name(il, "attn_k.weight"), {E, HKV * D}, true);
        L.wv = b.bind(name(il, "attn_v.weight"), {E, HKV * D}, true);
        L.wo = b.bind(name(il, "attn_output.weight"), {H * D, E}, true);
        const bool biases = c.arch == Arch::Qwen2;
        L.bq = b.bind(name(il, "attn_q.bias"), {q_rows}, false, biases);
        L.bk = b.bind(name(il, "attn_k.bias"), {HKV * D}, false, biases);
        L.bv = b.bind(name(il, "attn_v.bias"), {HKV * D}, false, biases);
        const bool qk_norm = c.arch == Arch::Qwen3 || c.arch == Arch::Qwen35;
        L.q_norm = b.bind(name(il, "attn_q_norm.weight"), {D}, false, qk_norm);
        L.k_norm = b.bind(name(il, "attn_k_norm.weight"), {D}, false, qk_norm);
    };
    m->layers_.resize(size_t(c.n_layer));
    for (int il = 0; il < c.n_layer; ++il) {
        LayerWeights& L = m->layers_[size_t(il)];
        bind_norms_and_ffn(L, il);
        if (!c.recurrent[size_t(il)]) {
            bind_attention(L, il);
            continue;
        }
        const int64_t nv = c.ssm_n_v_heads, value_dim = nv * c.ssm_v_dim;
        L.wqkv = b.bind(name(il, "attn_qkv.weight"), {E, c.conv_channels()}, true);
        L.wgate = b.bind(name(il, "attn_gate.weight"), {E, value_dim}, true);
        L.conv1d = b.bind(name(il, "ssm_conv1d.weight"), {c.ssm_conv_kernel, c.conv_channels()}, false);
        L.dt_bias = b.bind(name(il, "ssm_dt.bias"), {nv}, false);
        L.ssm_a = b.bind(name(il, "ssm_a"), {nv}, false);
        L.wbeta = b.bind(name(il, "ssm_beta.weight"), {E, nv}, true);
        L.walpha = b.bind(name(il, "ssm_alpha.weight"), {E, nv}, true);
        L.ssm_norm = b.bind(name(il, "ssm_norm.weight"), {c.ssm_v_dim}, false);
        L.ssm_out = b.bind(name(il, "ssm_out.weight"), {value_dim, E}, true);
    }
    if (c.n_layer_mtp) {
        const int il = c.n_layer;
        MtpWeights& t = m->mtp_;
        bind_norms_and_ffn(t.block, il);
        bind_attention(t.block, il);
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

uint64_t Model::weight_bytes() const {
    uint64_t n = 0;
    for (const auto& t : file_.tensors()) n += t.n_bytes;
    return n;
}

}  // namespace rill
