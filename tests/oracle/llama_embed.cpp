// The embeddings test's oracle: llama.cpp (the same pinned libraries as llama_logits, see
// scripts/setup.sh) embeds each text as its own sequence in an embedding context, pooled as the
// file's pooling_type says, not normalised, and writes the vectors (float32 rows of n_embd) to
// OUT and what it ran to OUT.json. Each text is tokenised as llama.cpp's embeddings are: BOS/EOS
// as the model asks, special tokens not parsed. The context is the golden's: flash attention off,
// F32 KV cache, batch = ubatch.
//
//   llama_embed BACKEND_DIR MODEL OUT THREADS TEXT...
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "llama.h"
#include "oracle_common.h"

namespace {

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "llama_embed: %s\n", what.c_str());
    std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 6) fail("usage: llama_embed BACKEND_DIR MODEL OUT THREADS TEXT...");
    const std::string out = argv[3];
    const int threads = std::atoi(argv[4]);
    llama_log_set([](ggml_log_level level, const char* text, void*) {
        if (level >= GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
    }, nullptr);
    ggml_backend_load_all_from_path(argv[1]);
    llama_backend_init();

    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    mp.progress_callback = [](float, void*) { return true; };
    llama_model* model = llama_model_load_from_file(argv[2], mp);
    if (!model) fail(std::string("cannot load ") + argv[2]);
    const llama_vocab* vocab = llama_model_get_vocab(model);
    const int n_embd = llama_model_n_embd(model);

    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = cp.n_batch = cp.n_ubatch = 1024;
    cp.n_seq_max = 1;
    cp.n_threads = cp.n_threads_batch = threads;
    cp.embeddings = true;
    cp.pooling_type = LLAMA_POOLING_TYPE_UNSPECIFIED;  // the file's
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.type_k = cp.type_v = GGML_TYPE_F32;
    cp.no_perf = true;
    llama_context* ctx = llama_init_from_model(model, cp);
    if (!ctx) fail("cannot create the context");
    if (llama_pooling_type(ctx) == LLAMA_POOLING_TYPE_NONE) fail("the model has no pooling (pooling_type none)");

    FILE* f = std::fopen(out.c_str(), "wb");
    if (!f) fail("cannot write " + out);
    std::string counts;
    for (int a = 5; a < argc; ++a) {
        const std::string text = argv[a];
        std::vector<llama_token> toks(text.size() + 16);
        const int n = llama_tokenize(vocab, text.data(), int32_t(text.size()), toks.data(), int32_t(toks.size()), true, false);
        if (n <= 0) fail("a text tokenises to nothing");
        toks.resize(size_t(n));
        llama_memory_clear(llama_get_memory(ctx), true);
        llama_batch b = llama_batch_init(n, 0, 1);
        for (int i = 0; i < n; ++i) {
            b.token[i] = toks[size_t(i)];
            b.pos[i] = i;
            b.n_seq_id[i] = 1;
            b.seq_id[i][0] = 0;
            b.logits[i] = 1;
        }
        b.n_tokens = n;
        if (llama_decode(ctx, b) != 0) fail("llama_decode failed");
        llama_batch_free(b);
        const float* v = llama_get_embeddings_seq(ctx, 0);
        if (!v) fail("no pooled embedding");
        std::fwrite(v, sizeof(float), size_t(n_embd), f);
        counts += (counts.empty() ? "" : ",") + std::to_string(n);
    }
    std::fclose(f);
    FILE* j = std::fopen((out + ".json").c_str(), "w");
    if (!j) fail("cannot write " + out + ".json");
    std::fprintf(j, "{\"cpu_variants\":%s,\"n_embd\":%d,\"tokens\":[%s]}\n", oracle::cpu_variants_json().c_str(), n_embd, counts.c_str());
    std::fclose(j);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
