// The golden's oracle run: llama.cpp (the prebuilt libraries of node-llama-cpp, pinned to one ggml
// CPU variant by scripts/setup.sh) greedy-generates N tokens after a prompt and writes every
// step's full logit vector, in the same files `rill logits` writes (float32 rows, FILE.json).
// The context is the one node-llama-cpp makes (tests/oracle/golden.mjs used it through its JS
// API, which returns each logit row as a sorted Map: most of the golden's time): flash attention
// off, F32 KV cache, batch = ubatch, non-unified KV, no SWA cache.
//
//   llama_logits BACKEND_DIR MODEL PROMPT STEPS OUT BATCH THREADS [MTP_OUT]
// BATCH 0 feeds the prompt as one batch, 1 one token at a time; the prompt is tokenised with the
// model's BOS rule and special tokens recognised. FILE.json also names the ggml CPU libraries
// mapped into the process ("cpu_variants"), which the golden checks against the pinned one.
// MTP_OUT (a model with Qwen 3.5's MTP block): also the draft logits of llama.cpp's MTP graph at every
// evaluated position p (rows of n_vocab float32), from the pair (token p, the target's h_nextn at p - 1;
// zeros at 0), decoded in an MTP context as common/speculative.cpp's draft-mtp does: as one batch, or
// (BATCH 1) one pair at a time.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "llama-ext.h"  // the staging API of the MTP context (llama_set_embeddings_nextn, ...)
#include "llama.h"
#include "oracle_common.h"

namespace {

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "llama_logits: %s\n", what.c_str());
    std::exit(1);
}

// The target's h_nextn rows, one per decoded token, when the MTP graph is wanted.
std::vector<float>* g_h_rows = nullptr;

// Decodes tokens [i0, i1) at positions i0.., keeping the logits of the last one only.
void decode(llama_context* ctx, const std::vector<llama_token>& toks, size_t i0, size_t i1) {
    llama_batch b = llama_batch_init(int32_t(i1 - i0), 0, 1);
    for (size_t i = i0; i < i1; ++i) {
        const int32_t k = b.n_tokens++;
        b.token[k] = toks[i];
        b.pos[k] = llama_pos(i);
        b.n_seq_id[k] = 1;
        b.seq_id[k][0] = 0;
        b.logits[k] = i + 1 == i1;
    }
    const int32_t rc = llama_decode(ctx, b);
    llama_batch_free(b);
    if (rc != 0) fail("llama_decode returned " + std::to_string(rc));
    if (g_h_rows) {
        const size_t n_embd = size_t(llama_model_n_embd(llama_get_model(ctx)));
        const float* h = llama_get_embeddings_nextn(ctx);
        if (!h) fail("no h_nextn rows from the target context");
        g_h_rows->insert(g_h_rows->end(), h, h + (i1 - i0) * n_embd);
    }
}

// The MTP graph's logits for every decoded token (see MTP_OUT above).
void write_mtp_logits(llama_model* model, llama_context* tgt, const std::vector<llama_token>& toks, const std::vector<float>& h,
                      bool single, int threads, const std::string& out) {
    const int n_embd = llama_model_n_embd(model), n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    const int n = int(h.size() / size_t(n_embd));
    llama_context_params cp = llama_context_default_params();
    cp.ctx_type = LLAMA_CONTEXT_TYPE_MTP;
    cp.ctx_other = tgt;
    cp.n_ctx = 1024;
    cp.n_batch = cp.n_ubatch = 1024;
    cp.n_seq_max = 1;
    cp.n_rs_seq = 0;
    cp.n_threads = cp.n_threads_batch = threads;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.type_k = cp.type_v = GGML_TYPE_F32;
    cp.no_perf = true;
    llama_context* mtp = llama_init_from_model(model, cp);
    if (!mtp) fail("cannot create the MTP context");
    llama_set_embeddings_nextn(mtp, true, true);
    FILE* f = std::fopen(out.c_str(), "wb");
    if (!f) fail("cannot write " + out);
    const int step = single ? 1 : n;
    llama_batch b = llama_batch_init(step, n_embd, 1);
    b.token = static_cast<llama_token*>(std::malloc(sizeof(llama_token) * size_t(step)));  // MTP needs both
    for (int i0 = 0; i0 < n; i0 += step) {
        b.n_tokens = 0;
        for (int i = i0; i < i0 + step; ++i) {
            const int k = b.n_tokens++;
            b.token[k] = toks[size_t(i)];
            b.pos[k] = i;
            b.n_seq_id[k] = 1;
            b.seq_id[k][0] = 0;
            b.logits[k] = 1;
            float* row = b.embd + size_t(k) * size_t(n_embd);
            if (i == 0) std::fill(row, row + n_embd, 0.0f);
            else std::copy(h.begin() + long(size_t(i - 1) * size_t(n_embd)), h.begin() + long(size_t(i) * size_t(n_embd)), row);
        }
        if (llama_decode(mtp, b) != 0) fail("llama_decode of an MTP batch failed");
        for (int k = 0; k < b.n_tokens; ++k) std::fwrite(llama_get_logits_ith(mtp, k), sizeof(float), size_t(n_vocab), f);
    }
    std::fclose(f);
    std::free(b.token);
    b.token = nullptr;
    llama_batch_free(b);
    llama_free(mtp);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 8 && argc != 9) fail("usage: llama_logits BACKEND_DIR MODEL PROMPT STEPS OUT BATCH THREADS [MTP_OUT]");
    const std::string mtp_out = argc == 9 ? argv[8] : "";
    const char* backends = argv[1];
    const char* model_path = argv[2];
    const std::string prompt = argv[3];
    const int steps = std::atoi(argv[4]);
    const std::string out = argv[5];
    const bool single = std::atoi(argv[6]) == 1;
    const int threads = std::atoi(argv[7]);

    llama_log_set([](ggml_log_level level, const char* text, void*) {
        if (level >= GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
    }, nullptr);
    ggml_backend_load_all_from_path(backends);
    llama_backend_init();

    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    mp.progress_callback = [](float, void*) { return true; };  // no progress dots
    mp.load_mtp = !mtp_out.empty();
    llama_model* model = llama_model_load_from_file(model_path, mp);
    if (!model) fail(std::string("cannot load ") + model_path);
    const llama_vocab* vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);

    std::vector<llama_token> toks(prompt.size() + 16);
    const int n = llama_tokenize(vocab, prompt.data(), int32_t(prompt.size()), toks.data(), int32_t(toks.size()), true, true);
    if (n <= 0) fail("the prompt tokenises to nothing");
    toks.resize(size_t(n));

    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 1024;
    cp.n_batch = cp.n_ubatch = single ? 1 : 1024;
    cp.n_seq_max = 1;
    cp.n_threads = cp.n_threads_batch = threads;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.type_k = cp.type_v = GGML_TYPE_F32;
    cp.no_perf = true;
    cp.swa_full = false;
    cp.kv_unified = false;
    llama_context* ctx = llama_init_from_model(model, cp);
    if (!ctx) fail("cannot create the context");
    std::vector<float> h_rows;
    if (!mtp_out.empty()) {
        llama_set_embeddings_nextn(ctx, true, false);
        g_h_rows = &h_rows;
    }

    if (single)
        for (size_t i = 0; i < toks.size(); ++i) decode(ctx, toks, i, i + 1);
    else
        decode(ctx, toks, 0, toks.size());

    FILE* f = std::fopen(out.c_str(), "wb");
    if (!f) fail("cannot write " + out);
    std::vector<llama_token> chosen;
    std::vector<llama_token> all = toks;
    for (int s = 0; s < steps; ++s) {
        const float* row = llama_get_logits_ith(ctx, -1);
        if (!row) fail("no logits");
        std::fwrite(row, sizeof(float), size_t(n_vocab), f);
        int best = 0;
        for (int i = 1; i < n_vocab; ++i)
            if (row[i] > row[best]) best = i;
        chosen.push_back(best);
        all.push_back(best);
        if (s + 1 < steps) decode(ctx, all, all.size() - 1, all.size());
    }
    std::fclose(f);
    if (!mtp_out.empty()) write_mtp_logits(model, ctx, all, h_rows, single, threads, mtp_out);

    std::string json = "{\"cpu_variants\":" + oracle::cpu_variants_json() + ",\"n_vocab\":" + std::to_string(n_vocab) + ",\"prompt_tokens\":[";
    for (size_t i = 0; i < toks.size(); ++i) json += (i ? "," : "") + std::to_string(toks[i]);
    json += "],\"tokens\":[";
    for (size_t i = 0; i < chosen.size(); ++i) json += (i ? "," : "") + std::to_string(chosen[i]);
    json += "]}\n";
    FILE* j = std::fopen((out + ".json").c_str(), "w");
    if (!j) fail("cannot write " + out + ".json");
    std::fputs(json.c_str(), j);
    std::fclose(j);

    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
