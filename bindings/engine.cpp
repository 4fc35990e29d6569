// The per-token engine API, exposed to JavaScript through Embind. One Engine holds at most one
// model and its context; the JS worker (bindings/js) drives it. Every method checks the state
// it needs and reports misuse or bad input as a JS Error carrying the C++ message.
#include <emscripten/bind.h>
#include <emscripten/heap.h>
#include <emscripten/val.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <wasm_simd128.h>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "kernels/ops.h"
#include "rill/error.h"
#include "src/context.h"
#include "src/embedding.h"
#include "src/model.h"
#include "src/generator.h"
#include "src/grammar.h"
#include "src/json_schema.h"
#include "src/sampler.h"
#include "src/thread_pool.h"
#include "tokenizer/tokenizer.h"

using emscripten::val;

namespace rill {
namespace {

// Model bytes written by JS straight into wasm memory (one copy, streamed as they arrive).
class MallocBytes final : public gguf::Bytes {
public:
    MallocBytes(uint8_t* p, size_t n) : p_(p), n_(n) {}
    ~MallocBytes() override { std::free(p_); }
    const uint8_t* data() const override { return p_; }
    size_t size() const override { return n_; }
    bool writable() const override { return true; }
private:
    uint8_t* p_;
    size_t n_;
};

[[noreturn]] void throw_js(const std::string& message) { val::global("Error").new_(val(message)).throw_(); }

// Runs f, turning C++ errors into JS exceptions (the engine stays usable afterwards).
template <typename F>
auto guarded(F&& f) -> decltype(f()) {
    std::string message;
    try {
        return f();
    } catch (const std::bad_alloc&) {
        message = "out of memory (wasm32 memory is limited to 4 GB)";
    } catch (const std::exception& e) {
        message = e.what();
    }
    throw_js(message);
}

class Engine {
public:
    // Reserves n bytes of wasm memory for a model file; JS fills it through heapView. Fresh
    // pages are touched by n_threads threads at once: the first write to new wasm memory costs a
    // page fault per 4 KB (about 1.4 s for 500 MB on a VM), and faults proceed in parallel.
    double allocate(double n, int n_threads) {
        return guarded([&] {
            if (n < 0 || n > 4294967295.0) RILL_FAIL("a model of %.0f bytes cannot be loaded into wasm32 memory (4 GB at most)", n);
            void* p = malloc_large(std::max<size_t>(size_t(n), 1));  // an empty file still gets the parser's message
            if (!p) RILL_FAIL("cannot allocate %.0f bytes for the model: it does not fit the wasm32 memory (4 GB at most, shared with the KV cache and the runtime)", n);
            pending_.push_back(p);
            if (!ctx_) start_threads(n_threads);  // no model uses the pool: it may be resized
            prefault(static_cast<uint8_t*>(p), size_t(n), pool_.get());
            return double(reinterpret_cast<uintptr_t>(p));
        });
    }
    // malloc(n), also for n over 2 GB: wasm32's dlmalloc grows the heap (sbrk) only in steps
    // below 2 GB, so one request for more fails. Growing it in 1 GB steps (allocated, then freed:
    // they coalesce into one free top chunk, which never shrinks) first makes room for it.
    static void* malloc_large(size_t n) {
        if (void* p = std::malloc(n)) return p;
        constexpr size_t kStep = size_t(1) << 30;
        if (n <= kStep) return nullptr;
        std::vector<void*> steps;
        for (size_t got = 0; got < n;) {
            const size_t step = std::min(kStep, n - got + (size_t(1) << 20));  // the last one: what is left, and a little
            void* s = std::malloc(step);
            if (!s) break;
            steps.push_back(s);
            got += step;
        }
        for (auto it = steps.rbegin(); it != steps.rend(); ++it) std::free(*it);
        return std::malloc(n);
    }
    static void prefault(uint8_t* p, size_t n, ThreadPool* pool) {
        if (!pool || pool->size() <= 1 || n < (size_t(64) << 20)) return;
        pool->run([&](int ith, int nth) {
            const size_t b0 = n * size_t(ith) / size_t(nth), b1 = n * size_t(ith + 1) / size_t(nth);
            for (size_t i = b0; i < b1; i += 4096) p[i] = 0;
        });
    }
    void release(double ptr) {  // an allocation abandoned (load cancelled or failed)
        void* p = reinterpret_cast<void*>(uintptr_t(ptr));
        if (take_pending(p)) std::free(p);
    }
    val heapView(double ptr, double n) const {
        return val(emscripten::typed_memory_view(size_t(n), reinterpret_cast<uint8_t*>(uintptr_t(ptr))));
    }

    // Loads a model from buffers made by allocate() and filled: one, or the parts of a split
    // model in order. The engine owns them from here on, even when parsing fails.
    void loadFromBuffers(const val& ptrs, const val& sizes, int n_ctx, int n_threads) {
        guarded([&] {
            const unsigned n = ptrs["length"].as<unsigned>();
            std::vector<std::shared_ptr<const gguf::Bytes>> bytes;  // every buffer taken before any error: none leaks
            unsigned foreign = 0;
            for (unsigned k = 0; k < n; ++k) {
                void* p = reinterpret_cast<void*>(uintptr_t(ptrs[k].as<double>()));
                if (take_pending(p)) bytes.push_back(std::make_shared<MallocBytes>(static_cast<uint8_t*>(p), size_t(sizes[k].as<double>())));
                else foreign = k + 1;
            }
            if (foreign) RILL_FAIL("loadFromBuffers: buffer %u was not made by allocate()", foreign);
            if (n == 0) RILL_FAIL("loadFromBuffers: no buffers");
            std::vector<gguf::File> parts;
            for (unsigned k = 0; k < n; ++k) {
                try {
                    parts.push_back(gguf::File::parse(bytes[k]));
                } catch (const Error& e) {
                    if (n == 1) throw;
                    RILL_FAIL("part %u of %u: %s", k + 1, n, e.what());
                }
            }
            load(n == 1 ? std::move(parts[0]) : gguf::File::join(std::move(parts)), n_ctx, n_threads);
        });
    }
    void loadFromPath(const std::string& path, int n_ctx, int n_threads) {
        guarded([&] { load(gguf::File::open(path), n_ctx, n_threads); });
    }
    // Starts the engine's threads (n <= 0: one per core), kept across models: starting a thread
    // costs a wasm instance in a worker (about 0.2 s), paid once per engine rather than per load.
    void threads(int n) { guarded([&] { start_threads(n); }); }
    void freeModel() {
        clear_grammar();
        grammar_vocab_.reset();
        gen_.reset();
        ctx_.reset();
        model_.reset();
        decoder_.reset();
    }
    bool loaded() const { return model_ != nullptr; }

    val tokenize(const std::string& text, bool add_special, bool parse_special) const {
        return guarded([&] { return to_js(need_model().tokenizer().tokenize(text, add_special, parse_special)); });
    }
    std::string detokenize(const val& ids, bool special) const {
        return guarded([&] { return need_model().tokenizer().detokenize(from_js(ids), special); });
    }

    // Evaluates text (special tokens recognised; BOS added at the start of an empty context as
    // the model asks) after whatever was generated. Returns the number of tokens evaluated.
    int decodePrompt(const std::string& text) {
        return guarded([&] {
            need_model();
            return decode(model_->tokenizer().tokenize(text, gen_->empty(), true));
        });
    }
    int decodeTokens(const val& ids, bool logits) { return guarded([&] { need_model(); return decode(from_js(ids), logits); }); }

    // Prefix reuse: ids is a whole new text from position 0; returns how many of its leading
    // tokens are kept (already evaluated, or restored from a checkpoint); feedTokens then
    // evaluates the rest, with checkpoints after the offsets in marks.
    int reusePrefix(const val& ids) {
        return guarded([&] {
            need_model();
            const int kept = gen_->reuse(from_js(ids));
            decoder_ = std::make_unique<StreamDecoder>(model_->tokenizer());
            return kept;
        });
    }
    int feedTokens(const val& ids, const val& marks) {
        return guarded([&] {
            need_model();
            const std::vector<TokenId> t = from_js(ids);
            if (t.empty()) RILL_FAIL("nothing to decode: the prompt is empty");
            gen_->feed(t, from_js(marks));
            return int(t.size());
        });
    }
    // State snapshots (Generator::save_state): bytes to keep (beside the model in a cache, say)
    // and to load back into an engine with the same model.
    val saveState() {
        return guarded([&] {
            need_model();
            const std::vector<uint8_t> bytes = gen_->save_state();
            val out = val::global("Uint8Array").new_(bytes.size());
            out.call<void>("set", val(emscripten::typed_memory_view(bytes.size(), bytes.data())));
            return out;
        });
    }
    void loadState(const val& bytes) {
        guarded([&] {
            need_model();
            std::vector<uint8_t> buf(bytes["length"].as<size_t>());
            val(emscripten::typed_memory_view(buf.size(), buf.data())).call<void>("set", bytes);
            gen_->load_state(buf.data(), buf.size());
            decoder_ = std::make_unique<StreamDecoder>(model_->tokenizer());
            return 0;
        });
    }
    // A checkpoint at the current position (the end of a reply).
    void checkpoint() { guarded([&] { need_model(); gen_->checkpoint(); return 0; }); }
    void setCheckpointBudget(int count, double bytes) {
        guarded([&] {
            need_model();
            if (!(bytes >= 0)) RILL_FAIL("checkpoint bytes must be a non-negative number");
            gen_->set_checkpoint_budget(count, uint64_t(bytes));
            return 0;
        });
    }

    // One token: {token, piece, done, reason}. reason: "" while generating, then "eos",
    // "context", or "grammar" (the grammar is complete and nothing may follow).
    val generateStep() {
        return guarded([&] {
            need_model();
            val r = val::object();
            if (matcher_ && matcher_->finished()) return finish(r, "grammar");
            if (!gen_->has_room()) return finish(r, "context");
            const TokenId id = gen_->next();
            r.set("token", id);
            if (model_->tokenizer().is_end_of_generation(id)) return finish(r, "eos");
            r.set("piece", decoder_->push(id));
            if (sampling_.logprobs >= 0) {  // the token's log-probability and the best alternatives
                const TokenLogprobs& lp = sampler_->last_logprobs();
                r.set("logprob", lp.logprob);
                val top = val::array();
                for (const auto& [t, l] : lp.top) {
                    val a = val::object();
                    a.set("token", t);
                    a.set("logprob", l);
                    top.call<void>("push", a);
                }
                r.set("top", top);
            }
            r.set("done", false);
            r.set("reason", "");
            return r;
        });
    }
    // The next piece of text; "" once generation has ended (bytes of a character split across
    // tokens are held back until it is complete).
    std::string generateToken() {
        for (;;) {
            val r = generateStep();
            if (r["done"].as<bool>()) return r["piece"].as<std::string>();
            std::string piece = r["piece"].as<std::string>();
            if (!piece.empty()) return piece;
        }
    }

    void resetContext() {
        guarded([&] {
            need_model();
            gen_->reset();
            sampler_->reset();
            decoder_ = std::make_unique<StreamDecoder>(model_->tokenizer());
            return 0;
        });
    }

    // Embeddings as llama.cpp makes them (src/embedding.h), one Float32Array per text (an array
    // of id arrays): pooled ("mean", "cls", "last"; "" takes the file's pooling_type) and
    // L2-normalised if asked; texts packed into batches of up to 512 tokens. Evaluated from an
    // empty context, which is emptied again after: what was generated before is dropped.
    val embed(const val& texts, const std::string& pooling, bool normalize) {
        return guarded([&] {
            need_model();
            std::vector<std::vector<TokenId>> ids;
            const unsigned n = texts["length"].as<unsigned>();
            for (unsigned i = 0; i < n; ++i) ids.push_back(from_js(texts[i]));
            const Pooling mode = pooling_for(*model_, pooling);
            clear_grammar();
            gen_->reset();
            const std::vector<std::vector<float>> vectors = rill::embed(*ctx_, ids, mode, normalize);
            gen_->reset();
            decoder_ = std::make_unique<StreamDecoder>(model_->tokenizer());
            val out = val::array();
            for (const std::vector<float>& v : vectors) {
                val a = val::global("Float32Array").new_(v.size());
                a.call<void>("set", val(emscripten::typed_memory_view(v.size(), v.data())));
                out.call<void>("push", a);
            }
            return out;
        });
    }

    // Constrains what is generated next: kind "gbnf" (text is a grammar, start rule "root"),
    // "json_schema" (text is a JSON Schema), "json_object" (any JSON object), "" (no constraint).
    // The constraint holds until changed; it starts from the text generated next.
    void setGrammar(const std::string& kind, const std::string& text) {
        guarded([&] {
            need_model();
            std::shared_ptr<const Grammar> g;
            if (kind == "gbnf") g = Grammar::parse(text, &model_->tokenizer());
            else if (kind == "json_schema") g = Grammar::parse(json_schema_to_gbnf(text));
            else if (kind == "json_object") g = Grammar::parse(json_object_gbnf());
            else if (!kind.empty()) RILL_FAIL("setGrammar: unknown kind '%s' (gbnf, json_schema, json_object or '')", kind.c_str());
            clear_grammar();
            if (!g) return 0;
            if (!grammar_vocab_) grammar_vocab_ = std::make_shared<GrammarVocab>(model_->tokenizer());  // once per model
            matcher_ = std::make_unique<GrammarMatcher>(g, grammar_vocab_);
            gen_->set_grammar(matcher_.get());
            return 0;
        });
    }

    void setSampling(const val& o) {
        guarded([&] {
            SamplerParams p;
            if (o.hasOwnProperty("temperature")) p.temperature = o["temperature"].as<float>();
            if (o.hasOwnProperty("topK")) p.top_k = o["topK"].as<int>();
            if (o.hasOwnProperty("topP")) p.top_p = o["topP"].as<float>();
            if (o.hasOwnProperty("minP")) p.min_p = o["minP"].as<float>();
            if (o.hasOwnProperty("repeatPenalty")) p.repeat_penalty = o["repeatPenalty"].as<float>();
            if (o.hasOwnProperty("presencePenalty")) p.presence_penalty = o["presencePenalty"].as<float>();
            if (o.hasOwnProperty("frequencyPenalty")) p.frequency_penalty = o["frequencyPenalty"].as<float>();
            if (o.hasOwnProperty("penaltyLastN")) p.penalty_last_n = o["penaltyLastN"].as<int>();
            if (o.hasOwnProperty("logprobs")) p.logprobs = o["logprobs"].as<int>();
            if (o.hasOwnProperty("logitBias")) {  // [[id, bias], ...]
                const val b = o["logitBias"];
                const int n_vocab = ctx_ ? ctx_->n_vocab() : 0;
                for (unsigned i = 0, n = b["length"].as<unsigned>(); i < n; ++i) {
                    const int id = b[i][0].as<int>();
                    if (ctx_ && (id < 0 || id >= n_vocab)) RILL_FAIL("logitBias names token %d, outside the vocabulary (0..%d)", id, n_vocab - 1);
                    p.logit_bias.push_back({id, b[i][1].as<float>()});
                }
            }
            if (o.hasOwnProperty("seed")) p.seed = uint64_t(o["seed"].as<double>());
            if (!(p.top_p > 0.0f)) RILL_FAIL("topP must be positive, got %g", double(p.top_p));
            sampling_ = p;
            if (sampler_) *sampler_ = Sampler(p);  // in place: the generator holds it
            return 0;
        });
    }

    // Speculative decoding with the model's MTP head (when it has one): {enabled (default true),
    // draftTokens (1..3, 0 or absent: the default), adaptive (default true)}.
    void setSpeculative(const val& o) {
        guarded([&] {
            SpeculativeParams p;
            if (o.hasOwnProperty("enabled")) p.enabled = o["enabled"].as<bool>();
            if (o.hasOwnProperty("draftTokens")) p.draft_tokens = o["draftTokens"].as<int>();
            if (o.hasOwnProperty("adaptive")) p.adaptive = o["adaptive"].as<bool>();
            if (gen_) gen_->set_params(p);  // checks the values
            speculative_ = p;
            return 0;
        });
    }
    // Benchmarks: drafts replayed from a known text (token ids from position 0) instead of the MTP
    // head's, right with probability `acceptance`; an empty text goes back to the MTP head.
    void setReplayDrafts(const val& text, double acceptance) {
        guarded([&] {
            need_model();
            const std::vector<TokenId> t = from_js(text);
            gen_->set_draft_source(t.empty() ? DraftSource{} : replay_drafts(t, acceptance, ctx_->n_vocab()));
            return 0;
        });
    }
    // Drafts proposed and accepted, steps and their time, since the last call with clear = true.
    val speculativeStats(bool clear) {
        return guarded([&] {
            need_model();
            const GenerationStats& s = gen_->stats();
            val o = val::object();
            o.set("enabled", gen_->speculative());
            o.set("maxDrafts", gen_->max_drafts());
            o.set("drafted", s.drafted);
            o.set("accepted", s.accepted);
            o.set("steps", s.steps);
            o.set("draftMs", s.draft_ms);
            o.set("verifyMs", s.verify_ms);
            if (clear) gen_->clear_stats();
            return o;
        });
    }

    // A copy of the last evaluated token's logits.
    val getLogits() const {
        return guarded([&] {
            need_model();
            const float* l = ctx_->logits();
            val out = val::global("Float32Array").new_(ctx_->n_vocab());
            out.call<void>("set", val(emscripten::typed_memory_view(size_t(ctx_->n_vocab()), l)));
            return out;
        });
    }

    val info() const {
        return guarded([&] {
            const Model& m = need_model();
            const ModelConfig& c = m.config();
            val o = val::object();
            o.set("architecture", c.arch);
            const gguf::Value* name = m.file().find("general.name");
            o.set("name", name && name->type == gguf::ValueType::STRING ? std::string(name->str) : c.arch);
            o.set("nVocab", c.n_vocab);
            o.set("nCtx", ctx_->n_ctx());
            o.set("nCtxTrain", c.n_ctx_train);
            o.set("nLayer", c.n_layer);
            o.set("nEmbd", c.n_embd);
            o.set("mtp", m.mtp() != nullptr);
            o.set("speculative", gen_->speculative());
            o.set("weightBytes", double(m.weight_bytes()));
            o.set("fileBytes", double(m.file().file_size()));
            o.set("stateBytes", double(ctx_->state_bytes()));
            o.set("threads", pool_->size());
            o.set("nPast", gen_->n_past());
            o.set("checkpoints", gen_->n_checkpoints());
            o.set("checkpointBytes", double(gen_->checkpoint_bytes()));
            o.set("memoryBytes", double(emscripten_get_heap_size()));
            o.set("bos", m.tokenizer().bos());
            o.set("eos", m.tokenizer().eos());
            o.set("addBos", m.tokenizer().add_bos());
            const auto* tmpl = m.file().find("tokenizer.chat_template");
            o.set("chatTemplate", tmpl && tmpl->type == gguf::ValueType::STRING ? val(std::string(tmpl->str)) : val::null());
            if (m.tokenizer().bos() >= 0) o.set("bosText", m.tokenizer().token_text(m.tokenizer().bos()));
            if (m.tokenizer().eos() >= 0) o.set("eosText", m.tokenizer().token_text(m.tokenizer().eos()));
            return o;
        });
    }

    // Milliseconds per category since the last call with clear = true, and the tokens evaluated.
    val profile(bool clear) {
        return guarded([&] {
            need_model();
            Profile& p = ctx_->profile();
            val o = val::object();
            for (const auto& [k, v] : p.ms) o.set(k, v);
            o.set("tokens", p.tokens);
            if (clear) p.clear();
            return o;
        });
    }

    static std::string kernels() { return kern::kernel_set(); }
    static double memoryBytes() { return double(emscripten_get_heap_size()); }

    // Memory-read bandwidth of this wasm build: n_threads threads each summing their share of a
    // buffer of mb megabytes with v128 loads, best of `repeats` passes. GB/s. Runs on the
    // engine's threads: a second pool would wait for workers that a browser worker blocked in
    // this call can never start.
    double probeBandwidth(int mb, int n_threads, int repeats) {
        return guarded([&] {
            const size_t n = size_t(mb) << 20;
            std::vector<uint8_t> buf(n, 1);
            n_threads = std::max(1, n_threads);
            if (n_threads > 1) start_threads(n_threads);  // an error if a model uses another count
            ThreadPool single(1);
            ThreadPool& pool = n_threads == 1 ? single : *pool_;
            std::vector<int32_t> sink(size_t(pool.size()) * 16);
            double best = 0;
            for (int r = 0; r < repeats; ++r) {
                const auto t0 = std::chrono::steady_clock::now();
                pool.run([&](int ith, int nth) {
                    const size_t b0 = n / 64 * size_t(ith) / size_t(nth) * 64, b1 = n / 64 * size_t(ith + 1) / size_t(nth) * 64;
                    v128_t a0 = wasm_i32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
                    for (size_t i = b0; i < b1; i += 64) {
                        a0 = wasm_i32x4_add(a0, wasm_v128_load(&buf[i]));
                        a1 = wasm_i32x4_add(a1, wasm_v128_load(&buf[i + 16]));
                        a2 = wasm_i32x4_add(a2, wasm_v128_load(&buf[i + 32]));
                        a3 = wasm_i32x4_add(a3, wasm_v128_load(&buf[i + 48]));
                    }
                    const v128_t s = wasm_i32x4_add(wasm_i32x4_add(a0, a1), wasm_i32x4_add(a2, a3));
                    sink[size_t(ith) * 16] = wasm_i32x4_extract_lane(s, 0);
                });
                const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                best = std::max(best, double(n) / sec / 1e9);
            }
            return best;
        });
    }
    static bool maddFused() { return kern::madd_is_fused(); }
    // The GBNF of a JSON Schema (start rule root), for grammars that embed one (tool calls).
    static std::string schemaToGbnf(const std::string& schema) {
        return guarded([&] { return json_schema_to_gbnf(schema); });
    }

    ~Engine() {
        freeModel();
        for (void* p : pending_) std::free(p);
    }

private:
    // Removes p from the allocations not yet handed to a model; false if it is not one of them.
    bool take_pending(void* p) {
        const auto it = std::find(pending_.begin(), pending_.end(), p);
        if (it == pending_.end()) return false;
        pending_.erase(it);
        return true;
    }
    void clear_grammar() {
        if (gen_) gen_->set_grammar(nullptr);
        matcher_.reset();
    }
    void load(gguf::File file, int n_ctx, int n_threads) {
        freeModel();
        auto model = Model::load(file);
        if (n_ctx <= 0) n_ctx = std::min(4096, std::max(model->config().n_ctx_train, 512));
        start_threads(n_threads);
        auto ctx = std::make_unique<Context>(model, n_ctx, pool_.get());
        model_ = std::move(model);
        ctx_ = std::move(ctx);
        sampler_ = std::make_unique<Sampler>(sampling_);
        gen_ = std::make_unique<Generator>(*ctx_, *sampler_, speculative_);
        decoder_ = std::make_unique<StreamDecoder>(model_->tokenizer());
    }
    void start_threads(int n) {
        if (n <= 0) n = ThreadPool::default_threads();
        if (pool_ && pool_->size() == n) return;
        if (ctx_) RILL_FAIL("the thread count cannot change while a model is loaded");
        pool_.reset();
        pool_ = std::make_unique<ThreadPool>(n);
    }
    const Model& need_model() const {
        if (!model_) RILL_FAIL("no model is loaded (call loadModel first; after freeModel the engine is empty)");
        return *model_;
    }
    int decode(const std::vector<TokenId>& ids, bool logits = true) {
        if (ids.empty()) RILL_FAIL("nothing to decode: the prompt is empty");
        gen_->feed(ids, {}, logits);
        return int(ids.size());
    }
    val finish(val& r, const char* reason) {
        r.set("piece", decoder_->flush());
        r.set("done", true);
        r.set("reason", std::string(reason));
        return r;
    }
    static val to_js(const std::vector<TokenId>& ids) {
        val a = val::global("Int32Array").new_(ids.size());
        a.call<void>("set", val(emscripten::typed_memory_view(ids.size(), ids.data())));
        return a;
    }
    static std::vector<TokenId> from_js(const val& ids) {
        std::vector<TokenId> v;
        const int n = ids["length"].as<int>();
        v.reserve(size_t(n));
        for (int i = 0; i < n; ++i) v.push_back(ids[i].as<int>());
        return v;
    }

    std::shared_ptr<const Model> model_;
    std::unique_ptr<ThreadPool> pool_;
    std::unique_ptr<Context> ctx_;
    std::unique_ptr<Sampler> sampler_;
    std::unique_ptr<Generator> gen_;
    std::unique_ptr<StreamDecoder> decoder_;
    std::shared_ptr<const GrammarVocab> grammar_vocab_;  // the model's tokens for grammars, made on first use
    std::unique_ptr<GrammarMatcher> matcher_;             // the constraint on generation, if any
    SamplerParams sampling_;
    SpeculativeParams speculative_;
    std::vector<void*> pending_;  // allocations not yet handed to a model
};

}  // namespace
}  // namespace rill

EMSCRIPTEN_BINDINGS(rill) {
    using rill::Engine;
    emscripten::class_<Engine>("Engine")
        .constructor<>()
        .function("allocate", &Engine::allocate)
        .function("release", &Engine::release)
        .function("heapView", &Engine::heapView)
        .function("loadFromBuffers", &Engine::loadFromBuffers)
        .function("loadFromPath", &Engine::loadFromPath)
        .function("freeModel", &Engine::freeModel)
        .function("threads", &Engine::threads)
        .function("loaded", &Engine::loaded)
        .function("tokenize", &Engine::tokenize)
        .function("detokenize", &Engine::detokenize)
        .function("decodePrompt", &Engine::decodePrompt)
        .function("decodeTokens", &Engine::decodeTokens)
        .function("reusePrefix", &Engine::reusePrefix)
        .function("feedTokens", &Engine::feedTokens)
        .function("checkpoint", &Engine::checkpoint)
        .function("saveState", &Engine::saveState)
        .function("loadState", &Engine::loadState)
        .function("setCheckpointBudget", &Engine::setCheckpointBudget)
        .function("generateStep", &Engine::generateStep)
        .function("generateToken", &Engine::generateToken)
        .function("resetContext", &Engine::resetContext)
        .function("setSampling", &Engine::setSampling)
        .function("setGrammar", &Engine::setGrammar)
        .function("embed", &Engine::embed)
        .function("setSpeculative", &Engine::setSpeculative)
        .function("speculativeStats", &Engine::speculativeStats)
        .function("setReplayDrafts", &Engine::setReplayDrafts)
        .function("getLogits", &Engine::getLogits)
        .function("info", &Engine::info)
        .function("profile", &Engine::profile)
        .class_function("kernels", &Engine::kernels)
        .class_function("maddFused", &Engine::maddFused)
        .class_function("schemaToGbnf", &Engine::schemaToGbnf)
        .class_function("memoryBytes", &Engine::memoryBytes)
        .function("probeBandwidth", &Engine::probeBandwidth);
}
