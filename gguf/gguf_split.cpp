// Split GGUF models, as llama.cpp's gguf-split writes them: "<name>-00001-of-0000N.gguf" ...
// "<name>-0000N-of-0000N.gguf", each a GGUF file with some of the tensors (their offsets
// relative to its own data section), the first with all the metadata, every one with
// split.no (u16, 0-based), split.count (u16) and split.tensors.count (i32). Files too large
// for one download or one ArrayBuffer travel this way.
#include <cstdio>
#include <regex>

#include "gguf/gguf.h"
#include "rill/error.h"

namespace rill::gguf {
namespace {

constexpr const char* kNo = "split.no";
constexpr const char* kCount = "split.count";
constexpr const char* kTensors = "split.tensors.count";

int64_t int_or(const File& f, const char* key, int64_t def) {
    const Value* v = f.find(key);
    return v ? v->as_int() : def;
}

}  // namespace

std::string split_path(const std::string& prefix, uint32_t no, uint32_t n) {
    char tail[32];
    std::snprintf(tail, sizeof tail, "-%05u-of-%05u.gguf", no + 1, n);
    return prefix + tail;
}

bool parse_split_path(const std::string& path, std::string& prefix, uint32_t& no, uint32_t& n) {
    static const std::regex re(R"(^(.*)-(\d{5})-of-(\d{5})\.gguf$)");
    std::smatch m;
    if (!std::regex_match(path, m, re)) return false;
    const uint32_t one_based = uint32_t(std::stoul(m[2])), count = uint32_t(std::stoul(m[3]));
    if (one_based < 1 || one_based > count) return false;
    prefix = m[1];
    no = one_based - 1;
    n = count;
    return true;
}

File File::open(const std::string& path) {
    std::string prefix;
    uint32_t no = 0, n = 0;
    if (!parse_split_path(path, prefix, no, n) || n == 1) return parse(bytes_from_path(path));
    std::vector<File> parts;
    for (uint32_t k = 0; k < n; ++k) parts.push_back(parse(bytes_from_path(split_path(prefix, k, n))));
    return join(std::move(parts));
}

uint32_t File::split_count() const { return uint32_t(int_or(*this, kCount, 1)); }

size_t File::file_size() const {
    size_t n = bytes_->size();
    for (const auto& b : more_bytes_) n += b->size();
    return n;
}

bool File::writable() const {
    bool all = bytes_->writable();
    for (const auto& b : more_bytes_) all = all && b->writable();
    return all;
}

File File::join(std::vector<File> parts) {
    if (parts.empty()) RILL_FAIL("a split model needs at least one part");
    const size_t n = parts.size();
    const int64_t count = int_or(parts[0], kCount, 1);
    if (count != int64_t(n))
        RILL_FAIL("split model: the first part says the model has %lld part(s), %zu were given", (long long)count, n);
    const int64_t n_tensors = int_or(parts[0], kTensors, -1);
    size_t total = 0;
    for (size_t k = 0; k < n; ++k) {
        const File& p = parts[k];
        if (p.parts() != 1) RILL_FAIL("split model: part %zu is itself a joined model", k + 1);
        const int64_t no = int_or(p, kNo, -1), c = int_or(p, kCount, -1);
        if (no != int64_t(k))
            RILL_FAIL("split model: part %zu of %zu %s", k + 1, n,
                      no < 0 ? "has no split.no key (not a part of a split model)"
                             : ("says it is part " + std::to_string(no + 1)).c_str());
        if (c != count) RILL_FAIL("split model: part %zu says the model has %lld parts, the first %lld", k + 1, (long long)c, (long long)count);
        if (int_or(p, kTensors, -1) != n_tensors)
            RILL_FAIL("split model: part %zu counts %lld tensors in all, the first %lld (parts of different models?)", k + 1,
                      (long long)int_or(p, kTensors, -1), (long long)n_tensors);
        total += p.tensors().size();
    }
    if (n_tensors >= 0 && total != size_t(n_tensors))
        RILL_FAIL("split model: the parts hold %zu tensors, split.tensors.count says %lld", total, (long long)n_tensors);

    File f = std::move(parts[0]);
    for (size_t k = 1; k < n; ++k) {
        File& p = parts[k];
        for (auto& t : p.tensors_) {
            if (!f.tensor_index_.emplace(t.name, f.tensors_.size()).second)
                RILL_FAIL("split model: tensor '%s' is in part %zu and in an earlier part", t.name.c_str(), k + 1);
            f.tensors_.push_back(std::move(t));  // its data pointer stays in part k's bytes, kept below
        }
        f.more_bytes_.push_back(std::move(p.bytes_));
    }
    return f;
}

std::vector<std::vector<uint8_t>> split_file(const File& f, uint32_t n) {
    if (n < 1 || n > 65535) RILL_FAIL("a model can be split in 1 to 65535 parts (split.count is 16-bit), not %u", n);
    if (f.parts() != 1) RILL_FAIL("split_file: the file is already split");
    const auto& tensors = f.tensors();
    uint64_t bytes = 0;
    for (const auto& t : tensors) bytes += t.n_bytes;
    std::vector<Writer> parts(n);
    for (uint32_t k = 0; k < n; ++k) {
        Writer& w = parts[k];
        if (k == 0)
            for (const auto& [key, v] : f.metadata())
                if (key.rfind("split.", 0) != 0 && key != "general.alignment") w.set_value(key, v);
        w.set_alignment(uint32_t(f.alignment()));
        w.set_u16(kNo, uint16_t(k));
        w.set_u16(kCount, uint16_t(n));
        w.set_i32(kTensors, int32_t(tensors.size()));
    }
    // Tensors in order; a part is closed once it holds 1/n of the bytes, or when each tensor
    // left must start a part of its own so that no part is empty.
    if (tensors.size() < n) RILL_FAIL("cannot split %zu tensors into %u parts", tensors.size(), n);
    const uint64_t target = (bytes + n - 1) / n;
    uint32_t k = 0;
    uint64_t in_part = 0;
    size_t in_count = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
        const auto& t = tensors[i];
        const size_t left = tensors.size() - i, parts_after = n - 1 - k;
        if (in_count > 0 && parts_after > 0 && (in_part >= target || left == parts_after)) {
            ++k;
            in_part = 0;
            in_count = 0;
        }
        std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
        parts[k].add_tensor(t.name, t.type, ne, t.data, t.n_bytes);
        in_part += t.n_bytes;
        ++in_count;
    }
    std::vector<std::vector<uint8_t>> out;
    for (const auto& w : parts) out.push_back(w.finish());
    return out;
}

}  // namespace rill::gguf
