// rill: the native command-line tool.
//   rill inspect MODEL.gguf [--json]
//   rill tokenize -m MODEL.gguf [--json] [--no-special] [--add-bos] [--lines] TEXT|-
//   rill detokenize -m MODEL.gguf [--special] [--lines] IDS...
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <chrono>
#include <fstream>

#include "gguf/gguf.h"
#include "rill/error.h"
#include "src/context.h"
#include "src/embedding.h"
#include "src/generator.h"
#include "src/grammar.h"
#include "src/json_schema.h"
#include "src/model.h"
#include "src/sampler.h"
#include "src/synth.h"
#include "src/thread_pool.h"
#include "tokenizer/tokenizer.h"

namespace {

using json = nlohmann::json;
using rill::Error;

const char* kUsage =
    "usage:\n"
    "  rill inspect MODEL.gguf [--json]\n"
    "  rill tokenize -m MODEL.gguf [--json] [--no-special] [--add-bos] [--lines] TEXT   (TEXT '-' reads stdin)\n"
    "  rill detokenize -m MODEL.gguf [--special] [--lines] IDS...\n"
    "  rill generate -m MODEL.gguf -p PROMPT [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P]\n"
    "                [--repeat-penalty R] [--presence-penalty P] [--seed S] [-c N_CTX] [-t THREADS] [--json]\n"
    "                [--no-spec] [--draft K] [--fixed-draft] [--grammar FILE.gbnf | --json-schema FILE.json]\n"
    "  rill logits -m MODEL.gguf -p PROMPT -n N --out FILE [-c N_CTX] [--batch B] [--reset-after-prompt P] [--mtp-out FILE]\n"
    "  rill embed -m MODEL.gguf [--pooling mean|cls|last] [--no-normalize] [--batch B] [-c N_CTX] [-t THREADS] TEXT... | --lines\n"
    "  rill synth --arch ARCH --vocab VOCAB.gguf --out FILE.gguf [--seed S] [--set KEY=VALUE ...]\n"
    "             [--type T | --layout L] [--tensor-type NAME=T ...] [--vocab-size N] [--tied] [--mtp] [--imatrix]\n"
    "  rill split --parts N MODEL.gguf PREFIX     writes PREFIX-00001-of-0000N.gguf ... (llama.cpp's gguf-split layout)\n"
    "\n"
    "  --lines  batch mode: each stdin line is one JSON string (tokenize) or JSON array of ids\n"
    "           (detokenize); one JSON result per output line.\n"
    "  generate  streams text; prompt tokens follow the model's BOS rules; stops at end of generation.\n"
    "            With an MTP block in the file (Qwen 3.5), decodes speculatively: up to K drafts per step\n"
    "            (1..3, default 2; how many each step is chosen from measured acceptance and cost, or\n"
    "            always K with --fixed-draft); --no-spec decodes one token at a time.\n"
    "            --grammar samples only what a GBNF grammar (llama.cpp's format) allows, --json-schema\n"
    "            only JSON that fits the schema; either ends the output when the grammar is complete.\n"
    "  logits    greedy-generates N tokens, writes FILE (N rows of n_vocab float32, row i chose token i)\n"
    "            and FILE.json (prompt_tokens, tokens, n_vocab). --batch B prefills in chunks of B tokens;\n"
    "            --reset-after-prompt P first runs P and 4 tokens, then resets the context.\n"
    "            --mtp-out FILE also writes the MTP head's draft logits at every evaluated position\n"
    "            (one pair at a time with --batch 1, else as one batch).\n"
    "  embed     one JSON array of floats per text and line: the model's embedding of it (pooled as the\n"
    "            file's pooling_type says unless --pooling, L2-normalised unless --no-normalize), texts\n"
    "            packed into batches of up to B tokens (default 512); --lines reads one JSON string per line.\n"
    "  synth     ARCH is qwen35, llama, qwen2, qwen3, phi3, smollm3, gemma3, gemma4 or lfm2; --set takes GGUF keys without the arch prefix;\n"
    "            --type is the default type of weight matrices (f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q4_K q5_K q6_K iq4_nl iq4_xs),\n"
    "            --layout L instead gives each tensor the type llama.cpp's quantiser picks for file type L\n"
    "            (q8_0 q4_0 q4_k_s q4_k_m iq4_nl iq4_xs: per layer and role, as in the files people download);\n"
    "            --imatrix takes the rules llama.cpp applies with an importance matrix (q4_0: the first\n"
    "            eighth of ffn_down in q4_1; iq4: no q5_K ffn_down); the values are quantised without one;\n"
    "            --tensor-type overrides either by tensor name suffix (token_embd=q6_K);\n"
    "            --mtp (qwen35) appends the multi-token-prediction block after the block_count main layers.\n";

// Arguments after the subcommand: flags (with or without a value) and positionals.
struct Args {
    std::map<std::string, std::string> opts;
    std::vector<std::string> positional;
    bool has(const std::string& k) const { return opts.count(k) != 0; }
};

Args parse_args(int argc, char** argv, int first, const std::vector<std::string>& with_value,
                const std::vector<std::string>& flags) {
    Args a;
    for (int i = first; i < argc; ++i) {
        const std::string s = argv[i];
        if (s.size() > 1 && s[0] == '-' && s != "-" && !(s.size() > 1 && std::isdigit(static_cast<unsigned char>(s[1])))) {
            if (std::find(with_value.begin(), with_value.end(), s) != with_value.end()) {
                if (i + 1 >= argc) RILL_FAIL("option %s needs a value", s.c_str());
                a.opts[s] = argv[++i];
            } else if (std::find(flags.begin(), flags.end(), s) != flags.end()) {
                a.opts[s] = "1";
            } else {
                RILL_FAIL("unknown option '%s'", s.c_str());
            }
        } else {
            a.positional.push_back(s);
        }
    }
    return a;
}

std::string read_stdin() {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

json value_to_json(const rill::gguf::Value& v) {
    using rill::gguf::ValueType;
    switch (v.type) {
        case ValueType::STRING: return std::string(v.str);
        case ValueType::BOOL: return v.u != 0;
        case ValueType::FLOAT32: case ValueType::FLOAT64: return v.f;
        case ValueType::UINT64: return v.u;
        case ValueType::ARRAY: {
            // Vocabulary-sized arrays are summarised: their size is what a reader wants.
            if (v.count > 64) return json{{"type", std::string(rill::gguf::value_type_name(v.elem_type))}, {"count", v.count}};
            json a = json::array();
            for (uint64_t k = 0; k < v.count; ++k) {
                if (v.elem_type == ValueType::STRING) a.push_back(std::string(v.strings[k]));
                else if (v.elem_type == ValueType::ARRAY) a.push_back(value_to_json(v.arrays[k]));
                else if (v.elem_type == ValueType::FLOAT32 || v.elem_type == ValueType::FLOAT64) a.push_back(v.float_at(k));
                else if (v.elem_type == ValueType::BOOL) a.push_back(v.int_at(k) != 0);
                else a.push_back(v.int_at(k));
            }
            return a;
        }
        default: return v.i;
    }
}

std::string human_bytes(uint64_t b) {
    const char* units[] = {"B", "KiB", "MiB", "GiB"};
    double x = double(b);
    int u = 0;
    while (x >= 1024 && u < 3) { x /= 1024; ++u; }
    return rill::strprintf(u ? "%.2f %s" : "%.0f %s", x, units[u]);
}

int cmd_inspect(int argc, char** argv) {
    const Args a = parse_args(argc, argv, 2, {}, {"--json"});
    if (a.positional.size() != 1) RILL_FAIL("inspect takes one MODEL.gguf");
    const auto file = rill::gguf::File::open(a.positional[0]);
    const rill::gguf::Value* arch_v = file.find("general.architecture");
    const std::string arch = arch_v ? std::string(arch_v->as_string()) : "";

    json tok_summary = nullptr;
    std::string tok_error;
    try {
        const auto tok = rill::Tokenizer::from_gguf(file);
        tok_summary = {{"model", std::string(tok.model_name())},
                       {"pre", tok.kind() == rill::VocabKind::Bpe ? json(std::string(rill::pretokenizer_name(tok.pre()))) : json(nullptr)},
                       {"n_tokens", tok.n_tokens()},
                       {"n_merges", tok.n_merges()},
                       {"bos", tok.bos()},
                       {"eos", tok.eos()},
                       {"add_bos", tok.add_bos()},
                       {"add_eos", tok.add_eos()},
                       {"chat_template", file.find("tokenizer.chat_template") != nullptr}};
    } catch (const Error& e) {
        tok_error = e.what();
    }

    uint64_t total_bytes = 0, total_params = 0;
    std::map<std::string, std::pair<uint64_t, uint64_t>> by_type;  // name -> (tensors, bytes)
    for (const auto& t : file.tensors()) {
        total_bytes += t.n_bytes;
        total_params += uint64_t(t.n_elements());
        auto& e = by_type[std::string(rill::type_name(t.type))];
        e.first += 1;
        e.second += t.n_bytes;
    }

    if (a.has("--json")) {
        json j;
        j["file"] = a.positional[0];
        j["version"] = file.version();
        j["file_bytes"] = file.file_size();
        j["alignment"] = file.alignment();
        j["architecture"] = arch;
        json meta = json::object(), hyper = json::object();
        for (const auto& [k, v] : file.metadata()) {
            meta[k] = value_to_json(v);
            if (!arch.empty() && k.rfind(arch + ".", 0) == 0) hyper[k.substr(arch.size() + 1)] = value_to_json(v);
        }
        j["metadata"] = meta;
        j["hyperparameters"] = hyper;
        j["tokenizer"] = tok_summary;
        if (!tok_error.empty()) j["tokenizer_error"] = tok_error;
        json tensors = json::array();
        for (const auto& t : file.tensors()) {
            json shape = json::array();
            for (uint32_t d = 0; d < t.n_dims; ++d) shape.push_back(t.ne[d]);
            tensors.push_back({{"name", t.name}, {"type", std::string(rill::type_name(t.type))}, {"shape", shape},
                               {"bytes", t.n_bytes}, {"offset", file.data_offset() + t.offset}});
        }
        j["tensors"] = tensors;
        json types = json::object();
        for (const auto& [name, e] : by_type) types[name] = {{"tensors", e.first}, {"bytes", e.second}};
        j["totals"] = {{"tensors", file.tensors().size()}, {"parameters", total_params}, {"bytes", total_bytes}, {"by_type", types}};
        std::cout << j.dump(2) << "\n";
        return 0;
    }

    std::printf("file:          %s (%s, GGUF v%u)\n", a.positional[0].c_str(), human_bytes(file.file_size()).c_str(), file.version());
    std::printf("architecture:  %s\n", arch.empty() ? "(none)" : arch.c_str());
    if (const auto* name = file.find("general.name")) std::printf("name:          %s\n", std::string(name->as_string()).c_str());
    if (const auto* nextn = arch.empty() ? nullptr : file.find(arch + ".nextn_predict_layers"); nextn && nextn->as_int() > 0) {
        const int64_t blocks = file.find(arch + ".block_count") ? file.find(arch + ".block_count")->as_int() : 0;
        std::printf("mtp:           %lld multi-token-prediction block(s), blk.%lld (after %lld main layers)\n",
                    (long long)nextn->as_int(), (long long)(blocks - nextn->as_int()), (long long)(blocks - nextn->as_int()));
    }
    std::printf("\nhyperparameters:\n");
    for (const auto& [k, v] : file.metadata())
        if (!arch.empty() && k.rfind(arch + ".", 0) == 0) std::printf("  %-40s %s\n", k.substr(arch.size() + 1).c_str(), v.to_string().c_str());
    std::printf("\ntokenizer:\n");
    if (tok_summary.is_null()) {
        std::printf("  (unusable: %s)\n", tok_error.c_str());
    } else {
        for (auto& [k, v] : tok_summary.items()) std::printf("  %-16s %s\n", k.c_str(), v.dump().c_str());
    }
    std::printf("\nother metadata:\n");
    for (const auto& [k, v] : file.metadata()) {
        if ((!arch.empty() && k.rfind(arch + ".", 0) == 0)) continue;
        std::printf("  %-40s %s\n", k.c_str(), v.to_string(4).c_str());
    }
    std::printf("\ntensors:\n  %-40s %-8s %-24s %12s\n", "name", "type", "shape", "bytes");
    for (const auto& t : file.tensors())
        std::printf("  %-40s %-8s %-24s %12llu\n", t.name.c_str(), std::string(rill::type_name(t.type)).c_str(), t.shape_string().c_str(),
                    (unsigned long long)t.n_bytes);
    std::printf("\ntotals: %zu tensors, %llu parameters, %s of weights\n", file.tensors().size(), (unsigned long long)total_params,
                human_bytes(total_bytes).c_str());
    for (const auto& [name, e] : by_type)
        std::printf("  %-8s %5llu tensors  %s\n", name.c_str(), (unsigned long long)e.first, human_bytes(e.second).c_str());
    return 0;
}

rill::Tokenizer load_tokenizer(const Args& a) {
    if (!a.has("-m")) RILL_FAIL("missing -m MODEL.gguf");
    return rill::Tokenizer::from_gguf(rill::gguf::File::open(a.opts.at("-m")));
}

int cmd_tokenize(int argc, char** argv) {
    const Args a = parse_args(argc, argv, 2, {"-m"}, {"--json", "--no-special", "--add-bos", "--lines"});
    const auto tok = load_tokenizer(a);
    const bool parse_special = !a.has("--no-special"), add_special = a.has("--add-bos");
    if (a.has("--lines")) {
        std::string line;
        while (std::getline(std::cin, line)) {
            const std::string text = json::parse(line).get<std::string>();
            std::cout << json(tok.tokenize(text, add_special, parse_special)).dump() << "\n";
        }
        return 0;
    }
    if (a.positional.size() != 1) RILL_FAIL("tokenize takes one TEXT argument ('-' reads stdin)");
    const std::string text = a.positional[0] == "-" ? read_stdin() : a.positional[0];
    const auto ids = tok.tokenize(text, add_special, parse_special);
    if (a.has("--json")) {
        std::cout << json(ids).dump() << "\n";
    } else {
        for (auto id : ids) std::cout << id << "\n";
    }
    return 0;
}

int cmd_detokenize(int argc, char** argv) {
    const Args a = parse_args(argc, argv, 2, {"-m"}, {"--special", "--lines"});
    const auto tok = load_tokenizer(a);
    const bool special = a.has("--special");
    auto check = [&](long long id) {
        if (id < 0 || size_t(id) >= tok.n_tokens()) RILL_FAIL("token id %lld is out of range (vocabulary has %zu tokens)", id, tok.n_tokens());
        return rill::TokenId(id);
    };
    if (a.has("--lines")) {
        std::string line;
        while (std::getline(std::cin, line)) {
            std::vector<rill::TokenId> ids;
            for (long long id : json::parse(line)) ids.push_back(check(id));
            std::cout << json(tok.detokenize(ids, special)).dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
        }
        return 0;
    }
    std::vector<rill::TokenId> ids;
    for (const auto& s : a.positional) {
        char* end = nullptr;
        const long long id = std::strtoll(s.c_str(), &end, 10);
        if (s.empty() || *end != '\0') RILL_FAIL("'%s' is not a token id", s.c_str());
        ids.push_back(check(id));
    }
    std::cout << tok.detokenize(ids, special);
    std::cout.flush();
    return 0;
}

// Repeated options (--set, --tensor-type) collect into a list.
std::vector<std::string> collect(int argc, char** argv, const std::string& name) {
    std::vector<std::string> out;
    for (int i = 2; i + 1 < argc; ++i)
        if (argv[i] == name) out.push_back(argv[++i]);
    return out;
}

double elapsed_ms(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

int int_opt(const Args& a, const std::string& k, int def) {
    if (!a.has(k)) return def;
    char* end = nullptr;
    const long v = std::strtol(a.opts.at(k).c_str(), &end, 10);
    if (*end) RILL_FAIL("option %s takes an integer, got '%s'", k.c_str(), a.opts.at(k).c_str());
    return int(v);
}

float float_opt(const Args& a, const std::string& k, float def) {
    if (!a.has(k)) return def;
    char* end = nullptr;
    const float v = std::strtof(a.opts.at(k).c_str(), &end);
    if (*end) RILL_FAIL("option %s takes a number, got '%s'", k.c_str(), a.opts.at(k).c_str());
    return v;
}

rill::TensorType type_opt(const std::string& s) {
    const auto t = rill::type_from_name(s);
    if (!t) RILL_FAIL("unknown tensor type '%s'", s.c_str());
    return *t;
}

struct Loaded {
    std::shared_ptr<const rill::Model> model;
    std::unique_ptr<rill::ThreadPool> pool;
    std::unique_ptr<rill::Context> ctx;
    double load_ms = 0;
};

Loaded load_model(const Args& a) {
    if (!a.has("-m")) RILL_FAIL("missing -m MODEL.gguf");
    const auto t0 = std::chrono::steady_clock::now();
    Loaded l;
    l.model = rill::Model::load_file(a.opts.at("-m"));
    const int n_ctx = int_opt(a, "-c", std::min(4096, std::max(l.model->config().n_ctx_train, 512)));
    // Threads split the rows of each matrix product; every order of summation stays the reference's.
    l.pool = std::make_unique<rill::ThreadPool>(int_opt(a, "-t", 1));
    l.ctx = std::make_unique<rill::Context>(l.model, n_ctx, l.pool.get());
    l.load_ms = elapsed_ms(t0);
    return l;
}

// Prompt tokens as llama.cpp makes them: special tokens recognised, BOS/EOS per the model.
std::vector<rill::TokenId> prompt_tokens(const rill::Model& m, const std::string& prompt) {
    auto ids = m.tokenizer().tokenize(prompt, true, true);
    if (ids.empty()) RILL_FAIL("the prompt is empty");
    return ids;
}

// Evaluates the prompt in chunks of `batch` tokens (0: one batch); with h_rows, appends every
// token's hidden state (the MTP head's input).
void prefill(rill::Context& ctx, const std::vector<rill::TokenId>& ids, int batch, std::vector<float>* h_rows = nullptr) {
    if (int(ids.size()) + ctx.n_past() > ctx.n_ctx())
        RILL_FAIL("prompt of %zu tokens is longer than the context of %d tokens (use -c)", ids.size(), ctx.n_ctx());
    const size_t step = batch > 0 ? size_t(batch) : ids.size();
    for (size_t i = 0; i < ids.size(); i += step) {
        const size_t end = std::min(ids.size(), i + step);
        rill::EvalOptions o;
        o.keep = end == ids.size() ? rill::Logits::Last : rill::Logits::None;
        o.hidden = h_rows != nullptr;
        ctx.eval(std::vector<rill::TokenId>(ids.begin() + long(i), ids.begin() + long(end)), o);
        if (h_rows) h_rows->insert(h_rows->end(), ctx.hidden(0), ctx.hidden(0) + (end - i) * size_t(ctx.model().config().n_embd));
    }
}

std::string read_text_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) RILL_FAIL("cannot open '%s'", path.c_str());
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

int cmd_generate(int argc, char** argv) {
    const Args a = parse_args(argc, argv, 2, {"-m", "-p", "-n", "--temp", "--top-k", "--top-p", "--min-p", "--repeat-penalty",
                                              "--presence-penalty", "--seed", "-c", "-t", "--draft", "--grammar", "--json-schema"},
                           {"--json", "--no-spec", "--fixed-draft"});
    if (!a.has("-p")) RILL_FAIL("missing -p PROMPT");
    if (a.has("--grammar") && a.has("--json-schema")) RILL_FAIL("--grammar and --json-schema both constrain the output: give one");
    auto l = load_model(a);
    // The constraint, if any: read and checked before the prompt is evaluated.
    std::shared_ptr<const rill::Grammar> grammar;
    if (a.has("--grammar")) grammar = rill::Grammar::parse(read_text_file(a.opts.at("--grammar")), &l.model->tokenizer());
    if (a.has("--json-schema")) grammar = rill::Grammar::parse(rill::json_schema_to_gbnf(read_text_file(a.opts.at("--json-schema"))));
    std::unique_ptr<rill::GrammarMatcher> matcher;
    if (grammar) matcher = std::make_unique<rill::GrammarMatcher>(grammar, std::make_shared<rill::GrammarVocab>(l.model->tokenizer()));
    rill::SamplerParams sp;
    sp.temperature = float_opt(a, "--temp", 0.8f);
    sp.top_k = int_opt(a, "--top-k", 40);
    sp.top_p = float_opt(a, "--top-p", 0.95f);
    sp.min_p = float_opt(a, "--min-p", 0.05f);
    sp.repeat_penalty = float_opt(a, "--repeat-penalty", 1.0f);
    sp.presence_penalty = float_opt(a, "--presence-penalty", 0.0f);
    sp.seed = uint64_t(int_opt(a, "--seed", 0));
    rill::Sampler sampler(sp);
    rill::SpeculativeParams spec;
    spec.enabled = !a.has("--no-spec");
    spec.draft_tokens = int_opt(a, "--draft", 0);
    spec.adaptive = !a.has("--fixed-draft");
    rill::Generator gen(*l.ctx, sampler, spec);
    gen.set_grammar(matcher.get());
    const int n_predict = int_opt(a, "-n", 64);
    const bool as_json = a.has("--json");
    const auto& tok = l.model->tokenizer();

    const auto ids = prompt_tokens(*l.model, a.opts.at("-p"));
    if (int(ids.size()) > l.ctx->n_ctx())
        RILL_FAIL("prompt of %zu tokens is longer than the context of %d tokens (use -c)", ids.size(), l.ctx->n_ctx());
    auto t0 = std::chrono::steady_clock::now();
    gen.feed(ids);
    const double prompt_ms = elapsed_ms(t0);

    std::vector<rill::TokenId> out;
    std::string text;
    rill::StreamDecoder dec(tok);
    t0 = std::chrono::steady_clock::now();
    while (int(out.size()) < n_predict && gen.has_room() && !(matcher && matcher->finished())) {
        const rill::TokenId id = gen.next();
        out.push_back(id);
        if (tok.is_end_of_generation(id)) break;
        const std::string piece = dec.push(id);
        text += piece;
        if (!as_json) { std::fwrite(piece.data(), 1, piece.size(), stdout); std::fflush(stdout); }
    }
    const std::string tail = dec.flush();
    text += tail;
    const double gen_ms = elapsed_ms(t0);
    const rill::GenerationStats& st = gen.stats();
    if (as_json) {
        json j = {{"prompt_tokens", ids}, {"tokens", out}, {"text", text}};
        j["timings"] = {{"load_ms", l.load_ms}, {"prompt_ms", prompt_ms}, {"prompt_tok_s", ids.size() / (prompt_ms / 1000.0)},
                        {"generate_ms", gen_ms}, {"generate_tok_s", out.size() / (gen_ms / 1000.0)}};
        j["speculative"] = {{"enabled", gen.speculative()}, {"max_drafts", gen.max_drafts()}, {"drafted", st.drafted},
                            {"accepted", st.accepted}, {"steps", st.steps}, {"draft_ms", st.draft_ms}, {"verify_ms", st.verify_ms}};
        std::cout << j.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    } else {
        std::fwrite(tail.data(), 1, tail.size(), stdout);
        std::printf("\n");
        std::fprintf(stderr, "\n[prompt %zu tokens, %.1f tok/s; generated %zu tokens, %.1f tok/s", ids.size(),
                     ids.size() / (prompt_ms / 1000.0), out.size(), out.size() / (gen_ms / 1000.0));
        if (gen.speculative()) std::fprintf(stderr, "; MTP drafts %d, accepted %d", st.drafted, st.accepted);
        std::fprintf(stderr, "]\n");
    }
    return 0;
}

int cmd_logits(int argc, char** argv) {
    const Args a = parse_args(argc, argv, 2, {"-m", "-p", "-n", "--out", "-c", "-t", "--batch", "--reset-after-prompt", "--mtp-out"}, {});
    if (!a.has("-p") || !a.has("--out")) RILL_FAIL("logits needs -p PROMPT and --out FILE");
    auto l = load_model(a);
    const int n = int_opt(a, "-n", 32), batch = int_opt(a, "--batch", 0);
    if (a.has("--reset-after-prompt")) {  // leave state behind, then reset: the results must not change
        prefill(*l.ctx, prompt_tokens(*l.model, a.opts.at("--reset-after-prompt")), batch);
        for (int i = 0; i < 4; ++i) l.ctx->eval({rill::Sampler({}).sample(l.ctx->logits(), l.ctx->n_vocab())});
        l.ctx->reset();
    }
    const auto ids = prompt_tokens(*l.model, a.opts.at("-p"));
    const bool mtp = a.has("--mtp-out");
    if (mtp && !l.model->mtp()) RILL_FAIL("--mtp-out: the model has no multi-token-prediction block");
    std::vector<float> h_rows;  // with --mtp-out: every evaluated token's hidden state
    prefill(*l.ctx, ids, batch, mtp ? &h_rows : nullptr);
    const std::string path = a.opts.at("--out");
    std::ofstream bin(path, std::ios::binary | std::ios::trunc);
    if (!bin) RILL_FAIL("cannot write '%s'", path.c_str());
    rill::Sampler greedy({});
    std::vector<rill::TokenId> out;
    for (int i = 0; i < n; ++i) {
        const float* lg = l.ctx->logits();
        bin.write(reinterpret_cast<const char*>(lg), std::streamsize(sizeof(float) * size_t(l.ctx->n_vocab())));
        const rill::TokenId id = greedy.sample(lg, l.ctx->n_vocab());
        out.push_back(id);
        if (i + 1 < n) {
            rill::EvalOptions o;
            o.hidden = mtp;
            l.ctx->eval({id}, o);
            if (mtp) h_rows.insert(h_rows.end(), l.ctx->hidden(0), l.ctx->hidden(0) + l.model->config().n_embd);
        }
    }
    if (mtp) {  // the MTP head's draft logits at every evaluated position, from (token p, h of p - 1)
        std::vector<rill::TokenId> text = ids;
        text.insert(text.end(), out.begin(), out.end());
        const size_t E = size_t(l.model->config().n_embd), n_eval = h_rows.size() / E;
        std::vector<float> h_prev(n_eval * E, 0.0f);  // row p: the hidden state of p - 1
        std::copy(h_rows.begin(), h_rows.end() - long(E), h_prev.begin() + long(E));
        std::ofstream m(a.opts.at("--mtp-out"), std::ios::binary | std::ios::trunc);
        const auto write = [&](int rows) {
            for (int i = 0; i < rows; ++i)
                m.write(reinterpret_cast<const char*>(l.ctx->mtp_logits(i)), std::streamsize(sizeof(float) * size_t(l.ctx->n_vocab())));
        };
        if (batch == 1) {  // one pair at a time, as the single mode feeds the prompt
            for (size_t p = 0; p < n_eval; ++p) {
                l.ctx->mtp_eval(&text[p], &h_prev[p * E], 1, int(p), rill::Logits::Last);
                write(1);
            }
        } else {
            l.ctx->mtp_eval(text.data(), h_prev.data(), int(n_eval), 0, rill::Logits::All);
            write(int(n_eval));
        }
        if (!m) RILL_FAIL("error writing '%s'", a.opts.at("--mtp-out").c_str());
    }
    std::ofstream js(path + ".json", std::ios::trunc);
    js << json({{"prompt_tokens", ids}, {"tokens", out}, {"n_vocab", l.ctx->n_vocab()}}).dump() << "\n";
    if (!bin || !js) RILL_FAIL("error writing '%s'", path.c_str());
    return 0;
}

int cmd_embed(int argc, char** argv) {
    const Args a = parse_args(argc, argv, 2, {"-m", "-c", "-t", "--pooling", "--batch"}, {"--no-normalize", "--lines"});
    std::vector<std::string> texts = a.positional;
    if (a.has("--lines"))
        for (std::string line; std::getline(std::cin, line);) texts.push_back(json::parse(line).get<std::string>());
    if (texts.empty()) RILL_FAIL("embed needs at least one TEXT (or --lines)");
    auto l = load_model(a);
    // Tokenized as llama.cpp's embeddings are: BOS/EOS as the model asks, special tokens not parsed.
    std::vector<std::vector<rill::TokenId>> ids;
    for (const std::string& t : texts) ids.push_back(l.model->tokenizer().tokenize(t, true, false));
    const rill::Pooling pooling = rill::pooling_for(*l.model, a.has("--pooling") ? a.opts.at("--pooling") : "");
    for (const std::vector<float>& v : rill::embed(*l.ctx, ids, pooling, !a.has("--no-normalize"), int_opt(a, "--batch", 512)))
        std::cout << json(v).dump() << "\n";
    return 0;
}

int cmd_synth(int argc, char** argv) {
    const Args a = parse_args(argc, argv, 2, {"--arch", "--vocab", "--out", "--seed", "--set", "--type", "--layout", "--tensor-type", "--vocab-size"},
                              {"--tied", "--mtp", "--imatrix"});
    for (const char* k : {"--arch", "--vocab", "--out"})
        if (!a.has(k)) RILL_FAIL("synth needs %s", k);
    rill::SynthOptions o;
    o.arch = a.opts.at("--arch");
    o.vocab_path = a.opts.at("--vocab");
    o.out_path = a.opts.at("--out");
    o.seed = uint64_t(int_opt(a, "--seed", 1));
    o.vocab_size = int_opt(a, "--vocab-size", 0);
    o.tied = a.has("--tied");
    o.mtp = a.has("--mtp");
    o.imatrix = a.has("--imatrix");
    if (a.has("--type")) o.type = type_opt(a.opts.at("--type"));
    if (a.has("--layout")) {
        if (a.has("--type")) RILL_FAIL("synth takes --type or --layout, not both");
        o.layout = a.opts.at("--layout");
    }
    if (o.imatrix && o.layout.empty()) RILL_FAIL("synth: --imatrix changes a --layout's rules; give --layout too");
    for (const auto& kv : collect(argc, argv, "--set")) {
        const auto eq = kv.find('=');
        if (eq == std::string::npos) RILL_FAIL("--set takes KEY=VALUE, got '%s'", kv.c_str());
        o.set[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (const auto& kv : collect(argc, argv, "--tensor-type")) {
        const auto eq = kv.find('=');
        if (eq == std::string::npos) RILL_FAIL("--tensor-type takes NAME=TYPE, got '%s'", kv.c_str());
        o.tensor_types.emplace_back(kv.substr(0, eq), type_opt(kv.substr(eq + 1)));
    }
    rill::synth_model(o);
    return 0;
}

int cmd_split(int argc, char** argv) {
    const Args a = parse_args(argc, argv, 2, {"--parts"}, {});
    if (a.positional.size() != 2 || !a.has("--parts")) RILL_FAIL("split takes --parts N MODEL.gguf PREFIX");
    const int n = int_opt(a, "--parts", 0);
    const auto parts = rill::gguf::split_file(rill::gguf::File::open(a.positional[0]), uint32_t(std::max(n, 0)));
    for (size_t k = 0; k < parts.size(); ++k) {
        const std::string path = rill::gguf::split_path(a.positional[1], uint32_t(k), uint32_t(parts.size()));
        std::ofstream out(path, std::ios::binary);
        if (!out.write(reinterpret_cast<const char*>(parts[k].data()), std::streamsize(parts[k].size())))
            RILL_FAIL("cannot write '%s'", path.c_str());
        std::printf("%s (%zu bytes)\n", path.c_str(), parts[k].size());
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
        std::fputs(kUsage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const std::string cmd = argv[1];
    try {
        if (cmd == "inspect") return cmd_inspect(argc, argv);
        if (cmd == "tokenize") return cmd_tokenize(argc, argv);
        if (cmd == "detokenize") return cmd_detokenize(argc, argv);
        if (cmd == "generate") return cmd_generate(argc, argv);
        if (cmd == "logits") return cmd_logits(argc, argv);
        if (cmd == "embed") return cmd_embed(argc, argv);
        if (cmd == "synth") return cmd_synth(argc, argv);
        if (cmd == "split") return cmd_split(argc, argv);
        std::fprintf(stderr, "rill: unknown command '%s'\n%s", cmd.c_str(), kUsage);
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "rill %s: error: %s\n", cmd.c_str(), e.what());
        return 1;
    }
}
