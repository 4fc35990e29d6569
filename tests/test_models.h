// Small synthetic models for the model, context and split tests, written once per test run
// with rill's own generator, and helpers to load them.
#pragma once

#include <string>
#include <vector>

#include "rill/error.h"
#include "src/context.h"
#include "src/model.h"
#include "src/synth.h"
#include "test_paths.h"

namespace rill {

inline std::string temp_path(const std::string& name) {
    const char* dir = std::getenv("TMPDIR");
    return std::string(dir && *dir ? dir : "/tmp") + "/rill_test_" + name + ".gguf";
}

// A small synthetic model (Q8_0, 64 wide) for an architecture, written (again) by each call.
inline std::string small_model(const std::string& arch) {
    const std::string path = temp_path(arch);
    SynthOptions o;
    o.arch = arch;
    o.vocab_path = vocab_dir() + (arch == "llama" || arch == "phi3" ? "/ggml-vocab-llama-spm.gguf"
                                  : arch == "gemma4"                 ? "/ggml-vocab-gemma-4.gguf"
                                                                     : "/ggml-vocab-qwen35.gguf");
    o.out_path = path;
    o.seed = 3;
    o.type = TensorType::Q8_0;
    o.tied = arch != "llama" && arch != "phi3";
    o.set = {{"embedding_length", "64"}, {"feed_forward_length", "128"}, {"attention.head_count", "2"},
             {"attention.head_count_kv", "1"}, {"block_count", "4"}};
    if (arch == "lfm2") o.set["attention.head_count_kv"] = "0,1,0,1";  // convolution, attention, ...
    if (arch == "gemma4")  // sliding, global, then two layers sharing their caches
        o.set.insert({{"attention.sliding_window_pattern", "1,0,1,0"}, {"attention.shared_kv_layers", "2"},
                      {"embedding_length_per_layer_input", "32"}});
    if (arch == "qwen35")
        o.set.insert({{"attention.key_length", "32"}, {"attention.value_length", "32"}, {"rope.dimension_count", "16"},
                      {"ssm.state_size", "32"}, {"ssm.group_count", "1"}, {"ssm.time_step_rank", "2"}, {"ssm.inner_size", "64"}});
    synth_model(o);
    return path;
}

inline std::string load_error(const std::string& path) {
    try {
        Model::load_file(path);
    } catch (const Error& e) {
        return e.what();
    }
    return "(loaded)";
}

inline std::vector<float> last_logits(Context& ctx) { return {ctx.logits(), ctx.logits() + ctx.n_vocab()}; }

}  // namespace rill
