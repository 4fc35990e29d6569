// What the oracle drivers (llama_logits.cpp, llama_embed.cpp) share.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <string>

namespace oracle {

// The ggml CPU variants loaded, from the libggml-cpu-NAME.so files mapped into this process,
// as a JSON array: the pinned one alone, or the result is not the golden's.
inline std::string cpu_variants_json() {
    std::ifstream maps("/proc/self/maps");
    std::set<std::string> names;
    for (std::string line; std::getline(maps, line);) {
        const size_t at = line.find("libggml-cpu-");
        if (at == std::string::npos) continue;
        const size_t from = at + std::strlen("libggml-cpu-"), to = line.find(".so", from);
        names.insert(line.substr(from, to - from));
    }
    std::string json = "[";
    for (const auto& n : names) json += (json.size() > 1 ? ",\"" : "\"") + n + "\"";
    return json + "]";
}

}  // namespace oracle
