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

// Debug and sanitizer builds run the long equivalence tests shorter (they are there for memory
// and UB errors; the Release and wasm builds run them in full).
inline bool slow_build() {
#if defined(__SANITIZE_ADDRESS__)
    return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return true;
#endif
#endif
#ifndef NDEBUG
    return true;
#else
    return false;
#endif
}
