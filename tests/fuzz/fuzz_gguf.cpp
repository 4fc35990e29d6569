// libFuzzer target: any byte string given to the GGUF reader either parses or raises
// rill::Error; a parsed file's every value and tensor view can be walked safely.
#include <cstdint>
#include <vector>

#include "gguf/gguf.h"
#include "rill/error.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const auto file = rill::gguf::File::parse(rill::gguf::bytes_from_vector(std::vector<uint8_t>(data, data + size)));
        size_t sink = 0;
        for (const auto& [k, v] : file.metadata()) sink += v.to_string().size() + k.size();
        for (const auto& t : file.tensors())
            for (uint64_t i = 0; i < t.n_bytes; i += 4096) sink += t.data[i];
        try {
            const auto tok = rill::Tokenizer::from_gguf(file);
            sink += tok.tokenize("Hello world <|im_start|> 123", true, true).size();
        } catch (const rill::Error&) {
        }
        return sink == 0xdeadbeef;
    } catch (const rill::Error&) {
        return 0;
    }
}
