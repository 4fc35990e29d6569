// Where tests find their data: the source tree (fixtures) and the llama.cpp vocabularies
// that scripts/setup.sh unpacks from the node-llama-cpp package into .cache/.
#pragma once

#include <cstdlib>
#include <string>

inline std::string source_dir() {
    const char* env = std::getenv("RILL_SOURCE_DIR");
    return env && *env ? env : RILL_SOURCE_DIR;
}
inline std::string vocab_dir() { return source_dir() + "/.cache/llama.cpp/models"; }
