#include <cstring>
#include <fstream>

#include "gguf/gguf.h"
#include "rill/error.h"

namespace rill::gguf {
namespace {

template <typename T>
void append(std::vector<uint8_t>& out, T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    out.insert(out.end(), p, p + sizeof(T));
}

void append_string(std::vector<uint8_t>& out, std::string_view s) {
    append<uint64_t>(out, s.size());
    out.insert(out.end(), s.begin(), s.end());
}

template <typename T>
std::vector<uint8_t> scalar(ValueType t, T v) {
    std::vector<uint8_t> e;
    append<uint32_t>(e, static_cast<uint32_t>(t));
    append<T>(e, v);
    return e;
}

size_t element_size(ValueType t) {
    const size_t n = value_type_size(t);
    if (n == 0) RILL_FAIL("element type %s is not a scalar", std::string(value_type_name(t)).c_str());
    return n;
}

// Payload of an array value (element type, count, elements), without the leading ARRAY tag.
void append_array_payload(std::vector<uint8_t>& out, const Value& v) {
    append<uint32_t>(out, static_cast<uint32_t>(v.elem_type));
    append<uint64_t>(out, v.count);
    if (v.elem_type == ValueType::STRING) {
        for (auto s : v.strings) append_string(out, s);
    } else if (v.elem_type == ValueType::ARRAY) {
        for (const auto& a : v.arrays) append_array_payload(out, a);
    } else if (v.count) {
        out.insert(out.end(), v.raw, v.raw + v.count * element_size(v.elem_type));
    }
}

}  // namespace

void Writer::put(const std::string& k, std::vector<uint8_t> encoded) {
    for (auto& e : kv_) {
        if (e.key == k) { e.encoded = std::move(encoded); return; }
    }
    kv_.push_back({k, std::move(encoded)});
}

void Writer::set_u8(const std::string& k, uint8_t v) { put(k, scalar(ValueType::UINT8, v)); }
void Writer::set_i8(const std::string& k, int8_t v) { put(k, scalar(ValueType::INT8, v)); }
void Writer::set_u16(const std::string& k, uint16_t v) { put(k, scalar(ValueType::UINT16, v)); }
void Writer::set_i16(const std::string& k, int16_t v) { put(k, scalar(ValueType::INT16, v)); }
void Writer::set_u32(const std::string& k, uint32_t v) { put(k, scalar(ValueType::UINT32, v)); }
void Writer::set_i32(const std::string& k, int32_t v) { put(k, scalar(ValueType::INT32, v)); }
void Writer::set_u64(const std::string& k, uint64_t v) { put(k, scalar(ValueType::UINT64, v)); }
void Writer::set_i64(const std::string& k, int64_t v) { put(k, scalar(ValueType::INT64, v)); }
void Writer::set_f32(const std::string& k, float v) { put(k, scalar(ValueType::FLOAT32, v)); }
void Writer::set_f64(const std::string& k, double v) { put(k, scalar(ValueType::FLOAT64, v)); }
void Writer::set_bool(const std::string& k, bool v) { put(k, scalar(ValueType::BOOL, uint8_t(v ? 1 : 0))); }

void Writer::set_str(const std::string& k, std::string_view v) {
    std::vector<uint8_t> e;
    append<uint32_t>(e, static_cast<uint32_t>(ValueType::STRING));
    append_string(e, v);
    put(k, std::move(e));
}

void Writer::set_array_raw(const std::string& k, ValueType t, const void* data, uint64_t count) {
    std::vector<uint8_t> e;
    append<uint32_t>(e, static_cast<uint32_t>(ValueType::ARRAY));
    append<uint32_t>(e, static_cast<uint32_t>(t));
    append<uint64_t>(e, count);
    const auto* p = static_cast<const uint8_t*>(data);
    if (count) e.insert(e.end(), p, p + count * element_size(t));
    put(k, std::move(e));
}

void Writer::set_array_i32(const std::string& k, const std::vector<int32_t>& v) { set_array_raw(k, ValueType::INT32, v.data(), v.size()); }
void Writer::set_array_f32(const std::string& k, const std::vector<float>& v) { set_array_raw(k, ValueType::FLOAT32, v.data(), v.size()); }

void Writer::set_array_str(const std::string& k, const std::vector<std::string_view>& v) {
    std::vector<uint8_t> e;
    append<uint32_t>(e, static_cast<uint32_t>(ValueType::ARRAY));
    append<uint32_t>(e, static_cast<uint32_t>(ValueType::STRING));
    append<uint64_t>(e, v.size());
    for (auto s : v) append_string(e, s);
    put(k, std::move(e));
}

void Writer::set_array_str(const std::string& k, const std::vector<std::string>& v) {
    set_array_str(k, std::vector<std::string_view>(v.begin(), v.end()));
}

void Writer::set_value(const std::string& k, const Value& v) {
    std::vector<uint8_t> e;
    append<uint32_t>(e, static_cast<uint32_t>(v.type));
    switch (v.type) {
        case ValueType::STRING: append_string(e, v.str); break;
        case ValueType::ARRAY: append_array_payload(e, v); break;
        case ValueType::UINT8: case ValueType::BOOL: append<uint8_t>(e, uint8_t(v.u)); break;
        case ValueType::INT8: append<int8_t>(e, int8_t(v.i)); break;
        case ValueType::UINT16: append<uint16_t>(e, uint16_t(v.u)); break;
        case ValueType::INT16: append<int16_t>(e, int16_t(v.i)); break;
        case ValueType::UINT32: append<uint32_t>(e, uint32_t(v.u)); break;
        case ValueType::INT32: append<int32_t>(e, int32_t(v.i)); break;
        case ValueType::UINT64: append<uint64_t>(e, v.u); break;
        case ValueType::INT64: append<int64_t>(e, v.i); break;
        case ValueType::FLOAT32: append<float>(e, float(v.f)); break;
        case ValueType::FLOAT64: append<double>(e, v.f); break;
    }
    put(k, std::move(e));
}

void Writer::set_alignment(uint32_t a) {
    if (a == 0 || (a & (a - 1)) != 0) RILL_FAIL("alignment %u is not a power of two", a);
    alignment_ = a;
    set_u32("general.alignment", a);
}

void Writer::add_tensor(const std::string& name, TensorType type, const std::vector<int64_t>& ne, const void* data,
                        uint64_t n_bytes) {
    if (ne.empty() || ne.size() > 4) RILL_FAIL("tensor '%s': %zu dimensions (1 to 4 allowed)", name.c_str(), ne.size());
    for (const auto& t : tensors_)
        if (t.name == name) RILL_FAIL("duplicate tensor name '%s'", name.c_str());
    uint64_t n = 1;
    for (auto d : ne) n *= uint64_t(d);
    const auto& tr = traits(type);
    if (ne[0] % tr.block_size != 0) RILL_FAIL("tensor '%s': row length %lld is not a multiple of %u", name.c_str(), (long long)ne[0], tr.block_size);
    const uint64_t expect = n / tr.block_size * tr.type_size;
    if (expect != n_bytes)
        RILL_FAIL("tensor '%s': %llu bytes given, shape and type need %llu", name.c_str(), (unsigned long long)n_bytes,
                  (unsigned long long)expect);
    const auto* p = static_cast<const uint8_t*>(data);
    tensors_.push_back({name, type, ne, std::vector<uint8_t>(p, p + n_bytes)});
}

std::vector<uint8_t> Writer::finish() const {
    std::vector<uint8_t> out;
    out.insert(out.end(), {'G', 'G', 'U', 'F'});
    append<uint32_t>(out, 3);
    append<uint64_t>(out, tensors_.size());
    append<uint64_t>(out, kv_.size());
    for (const auto& e : kv_) {
        append_string(out, e.key);
        out.insert(out.end(), e.encoded.begin(), e.encoded.end());
    }
    auto padded = [&](uint64_t x) { return (x + alignment_ - 1) / alignment_ * alignment_; };
    uint64_t offset = 0;
    for (const auto& t : tensors_) {
        append_string(out, t.name);
        append<uint32_t>(out, uint32_t(t.ne.size()));
        for (auto d : t.ne) append<int64_t>(out, d);
        append<uint32_t>(out, static_cast<uint32_t>(t.type));
        append<uint64_t>(out, offset);
        offset = padded(offset + t.data.size());
    }
    out.resize(padded(out.size()), 0);
    for (const auto& t : tensors_) {
        out.insert(out.end(), t.data.begin(), t.data.end());
        out.resize(padded(out.size()), 0);
    }
    return out;
}

void Writer::write_file(const std::string& path) const {
    const auto bytes = finish();
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) RILL_FAIL("cannot write '%s'", path.c_str());
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    if (!out) RILL_FAIL("error writing '%s'", path.c_str());
}

}  // namespace rill::gguf
