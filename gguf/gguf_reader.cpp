#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>

#include "gguf/gguf.h"
#include "rill/error.h"

#if !defined(__EMSCRIPTEN__) && !defined(_WIN32)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define RILL_HAVE_MMAP 1
#endif

namespace rill::gguf {
namespace {

constexpr uint32_t kMaxArrayDepth = 8;   // nested arrays deeper than this are rejected
constexpr uint32_t kMaxDims = 4;
constexpr uint64_t kMaxNameLength = 1024;

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::FLOAT64); }

template <typename T>
T load_le(const uint8_t* p) { T v; std::memcpy(&v, p, sizeof(T)); return v; }

// Decodes scalar bytes into a Value's u/i/f fields.
void decode_scalar(Value& v, const uint8_t* p) {
    switch (v.type) {
        case ValueType::UINT8: v.u = p[0]; v.i = int64_t(v.u); break;
        case ValueType::INT8: v.i = int8_t(p[0]); break;
        case ValueType::UINT16: v.u = load_le<uint16_t>(p); v.i = int64_t(v.u); break;
        case ValueType::INT16: v.i = load_le<int16_t>(p); break;
        case ValueType::UINT32: v.u = load_le<uint32_t>(p); v.i = int64_t(v.u); break;
        case ValueType::INT32: v.i = load_le<int32_t>(p); break;
        case ValueType::UINT64: v.u = load_le<uint64_t>(p); v.i = int64_t(v.u); break;
        case ValueType::INT64: v.i = load_le<int64_t>(p); break;
        case ValueType::FLOAT32: v.f = load_le<float>(p); break;
        case ValueType::FLOAT64: v.f = load_le<double>(p); break;
        case ValueType::BOOL: v.u = p[0]; break;
        default: break;
    }
}

// A bounds-checked cursor over the file bytes. Every read names what it was reading.
class Cursor {
public:
    Cursor(const uint8_t* data, size_t size) : data_(data), size_(size) {}
    size_t pos() const { return pos_; }
    size_t remaining() const { return size_ - pos_; }

    const uint8_t* take(uint64_t n, const std::string& what) {
        if (n > remaining())
            RILL_FAIL("file truncated while reading %s: needs %llu bytes at offset %zu, file has %zu bytes",
                      what.c_str(), (unsigned long long)n, pos_, size_);
        const uint8_t* p = data_ + pos_;
        pos_ += size_t(n);
        return p;
    }
    template <typename T>
    T read(const std::string& what) { return load_le<T>(take(sizeof(T), what)); }

    std::string_view read_string(const std::string& what) {
        const uint64_t len = read<uint64_t>(what + " length");
        if (len > remaining())
            RILL_FAIL("%s has length %llu at offset %zu, past the end of the file (%zu bytes)", what.c_str(),
                      (unsigned long long)len, pos_ - 8, size_);
        return {reinterpret_cast<const char*>(take(len, what)), size_t(len)};
    }

private:
    const uint8_t* data_;
    size_t size_;
    size_t pos_ = 0;
};

Value read_value(Cursor& c, ValueType type, const std::string& key, uint32_t depth) {
    Value v;
    v.type = type;
    if (type == ValueType::STRING) {
        v.str = c.read_string("value of key '" + key + "'");
        return v;
    }
    if (type != ValueType::ARRAY) {
        decode_scalar(v, c.take(value_type_size(type), "value of key '" + key + "'"));
        if (type == ValueType::BOOL && v.u > 1) RILL_FAIL("key '%s': bool value %llu is not 0 or 1", key.c_str(), (unsigned long long)v.u);
        return v;
    }
    if (depth >= kMaxArrayDepth) RILL_FAIL("key '%s': arrays nested deeper than %u", key.c_str(), kMaxArrayDepth);
    const uint32_t et = c.read<uint32_t>("array type of key '" + key + "'");
    if (!valid_value_type(et)) RILL_FAIL("key '%s': unknown array element type %u", key.c_str(), et);
    v.elem_type = static_cast<ValueType>(et);
    v.count = c.read<uint64_t>("array length of key '" + key + "'");
    // Smallest encoding of one element, so an absurd count fails before any allocation.
    const uint64_t min_elem = v.elem_type == ValueType::STRING ? 8 : v.elem_type == ValueType::ARRAY ? 12 : value_type_size(v.elem_type);
    if (v.count > c.remaining() / min_elem)
        RILL_FAIL("key '%s': array of %llu %s elements cannot fit in the %zu bytes left in the file", key.c_str(),
                  (unsigned long long)v.count, std::string(value_type_name(v.elem_type)).c_str(), c.remaining());
    if (v.elem_type == ValueType::STRING) {
        v.strings.reserve(size_t(v.count));
        for (uint64_t k = 0; k < v.count; ++k) v.strings.push_back(c.read_string("element " + std::to_string(k) + " of key '" + key + "'"));
    } else if (v.elem_type == ValueType::ARRAY) {
        v.arrays.reserve(size_t(v.count));
        for (uint64_t k = 0; k < v.count; ++k) v.arrays.push_back(read_value(c, ValueType::ARRAY, key, depth + 1));
    } else {
        v.raw = c.take(v.count * min_elem, "array of key '" + key + "'");
        if (v.elem_type == ValueType::BOOL)
            for (uint64_t k = 0; k < v.count; ++k)
                if (v.raw[k] > 1) RILL_FAIL("key '%s': bool element %llu is %u, not 0 or 1", key.c_str(), (unsigned long long)k, v.raw[k]);
    }
    return v;
}

bool mul_overflows(uint64_t a, uint64_t b, uint64_t& out) { return __builtin_mul_overflow(a, b, &out); }
bool add_overflows(uint64_t a, uint64_t b, uint64_t& out) { return __builtin_add_overflow(a, b, &out); }

class VectorBytes final : public Bytes {
public:
    explicit VectorBytes(std::vector<uint8_t> v) : v_(std::move(v)) {}
    const uint8_t* data() const override { return v_.data(); }
    size_t size() const override { return v_.size(); }
    bool writable() const override { return true; }
private:
    std::vector<uint8_t> v_;
};

#ifdef RILL_HAVE_MMAP
class MappedBytes final : public Bytes {
public:
    MappedBytes(void* p, size_t n) : p_(p), n_(n) {}
    ~MappedBytes() override { if (p_ && n_) munmap(p_, n_); }
    const uint8_t* data() const override { return static_cast<const uint8_t*>(p_); }
    size_t size() const override { return n_; }
private:
    void* p_;
    size_t n_;
};
#endif

}  // namespace

size_t value_type_size(ValueType t) {
    switch (t) {
        case ValueType::UINT8: case ValueType::INT8: case ValueType::BOOL: return 1;
        case ValueType::UINT16: case ValueType::INT16: return 2;
        case ValueType::UINT32: case ValueType::INT32: case ValueType::FLOAT32: return 4;
        case ValueType::UINT64: case ValueType::INT64: case ValueType::FLOAT64: return 8;
        default: return 0;
    }
}

std::string_view value_type_name(ValueType t) {
    static const char* names[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
                                  "bool", "string", "array", "uint64", "int64", "float64"};
    const auto i = static_cast<uint32_t>(t);
    return i < 13 ? names[i] : "unknown";
}

bool Value::is_integer() const {
    switch (type) {
        case ValueType::UINT8: case ValueType::INT8: case ValueType::UINT16: case ValueType::INT16:
        case ValueType::UINT32: case ValueType::INT32: case ValueType::UINT64: case ValueType::INT64: return true;
        default: return false;
    }
}

int64_t Value::as_int() const {
    if (type == ValueType::UINT64 && u > uint64_t(std::numeric_limits<int64_t>::max()))
        RILL_FAIL("value %llu does not fit a signed 64-bit integer", (unsigned long long)u);
    if (is_integer()) return i;
    if (type == ValueType::BOOL) return int64_t(u);
    RILL_FAIL("expected an integer, found %s", std::string(value_type_name(type)).c_str());
}

double Value::as_float() const {
    if (type == ValueType::FLOAT32 || type == ValueType::FLOAT64) return f;
    if (type == ValueType::UINT64) return double(u);
    if (is_integer()) return double(i);
    RILL_FAIL("expected a number, found %s", std::string(value_type_name(type)).c_str());
}

bool Value::as_bool() const {
    if (type == ValueType::BOOL) return u != 0;
    if (is_integer()) return i != 0;
    RILL_FAIL("expected a bool, found %s", std::string(value_type_name(type)).c_str());
}

std::string_view Value::as_string() const {
    if (type != ValueType::STRING) RILL_FAIL("expected a string, found %s", std::string(value_type_name(type)).c_str());
    return str;
}

int64_t Value::int_at(uint64_t k) const {
    if (type != ValueType::ARRAY || !raw || k >= count) RILL_FAIL("element %llu is not in a numeric array", (unsigned long long)k);
    Value e;
    e.type = elem_type;
    decode_scalar(e, raw + k * value_type_size(elem_type));
    return e.type == ValueType::FLOAT32 || e.type == ValueType::FLOAT64 ? int64_t(e.f) : e.as_int();
}

double Value::float_at(uint64_t k) const {
    if (type != ValueType::ARRAY || !raw || k >= count) RILL_FAIL("element %llu is not in a numeric array", (unsigned long long)k);
    Value e;
    e.type = elem_type;
    decode_scalar(e, raw + k * value_type_size(elem_type));
    return e.as_float();
}

// A string as a quoted, escaped, possibly shortened literal for display.
static std::string quoted(std::string_view s, size_t max_len = 200) {
    std::string out = "\"";
    for (char c : s.substr(0, max_len)) {
        switch (c) {
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            case '\r': out += "\\r"; break;
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) out += strprintf("\\x%02x", static_cast<unsigned char>(c));
                else out += c;
        }
    }
    return out + (s.size() > max_len ? "...\"" : "\"");
}

std::string Value::to_string(size_t max_items) const {
    switch (type) {
        case ValueType::STRING: return quoted(str);
        case ValueType::BOOL: return u ? "true" : "false";
        case ValueType::FLOAT32: case ValueType::FLOAT64: return strprintf("%g", f);
        case ValueType::UINT64: return std::to_string(u);
        case ValueType::ARRAY: {
            std::string s = "[";
            const uint64_t n = std::min<uint64_t>(count, max_items);
            for (uint64_t k = 0; k < n; ++k) {
                if (k) s += ", ";
                if (elem_type == ValueType::STRING) s += quoted(strings[k], 40);
                else if (elem_type == ValueType::ARRAY) s += arrays[k].to_string(max_items);
                else if (elem_type == ValueType::FLOAT32 || elem_type == ValueType::FLOAT64) s += strprintf("%g", float_at(k));
                else s += std::to_string(int_at(k));
            }
            if (count > n) s += strprintf(", ... (%llu items)", (unsigned long long)count);
            return s + "]";
        }
        default: return std::to_string(i);
    }
}

std::string TensorInfo::shape_string() const {
    std::string s = "[";
    for (uint32_t d = 0; d < n_dims; ++d) s += (d ? ", " : "") + std::to_string(ne[d]);
    return s + "]";
}

std::shared_ptr<const Bytes> bytes_from_vector(std::vector<uint8_t> v) {
    return std::make_shared<VectorBytes>(std::move(v));
}

std::shared_ptr<const Bytes> bytes_from_path(const std::string& path) {
#ifdef RILL_HAVE_MMAP
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) RILL_FAIL("cannot open '%s': %s", path.c_str(), std::strerror(errno));
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        RILL_FAIL("'%s' is not a regular file", path.c_str());
    }
    const size_t n = size_t(st.st_size);
    void* p = n ? mmap(nullptr, n, PROT_READ, MAP_PRIVATE, fd, 0) : nullptr;
    ::close(fd);
    if (n && p == MAP_FAILED) RILL_FAIL("cannot map '%s': %s", path.c_str(), std::strerror(errno));
    return std::make_shared<MappedBytes>(p, n);
#else
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) RILL_FAIL("cannot open '%s'", path.c_str());
    const std::streamsize n = in.tellg();
    if (n < 0) RILL_FAIL("cannot read '%s'", path.c_str());
    std::vector<uint8_t> v(static_cast<size_t>(n));
    in.seekg(0);
    if (n && !in.read(reinterpret_cast<char*>(v.data()), n)) RILL_FAIL("cannot read '%s'", path.c_str());
    return bytes_from_vector(std::move(v));
#endif
}

File File::parse(std::shared_ptr<const Bytes> bytes) {
    File f;
    f.bytes_ = std::move(bytes);
    Cursor c(f.bytes_->data(), f.bytes_->size());

    const uint8_t* magic = c.take(4, "magic");
    if (std::memcmp(magic, "GGUF", 4) != 0)
        RILL_FAIL("not a GGUF file: magic is %02x %02x %02x %02x, expected 'GGUF'", magic[0], magic[1], magic[2], magic[3]);
    f.version_ = c.read<uint32_t>("version");
    if (f.version_ == 1) RILL_FAIL("GGUF version 1 is not supported (versions 2 and 3 are)");
    if (f.version_ != 2 && f.version_ != 3) {
        if ((f.version_ & 0xffff) == 0 && (f.version_ >> 16) != 0)
            RILL_FAIL("GGUF version %u looks byte-swapped: big-endian files are not supported", f.version_);
        RILL_FAIL("unsupported GGUF version %u (versions 2 and 3 are)", f.version_);
    }
    const uint64_t n_tensors = c.read<uint64_t>("tensor count");
    const uint64_t n_kv = c.read<uint64_t>("metadata count");
    // Each key/value needs at least 13 bytes and each tensor info at least 24.
    if (n_kv > c.remaining() / 13)
        RILL_FAIL("metadata count %llu cannot fit in a file of %zu bytes", (unsigned long long)n_kv, f.bytes_->size());
    if (n_tensors > c.remaining() / 24)
        RILL_FAIL("tensor count %llu cannot fit in a file of %zu bytes", (unsigned long long)n_tensors, f.bytes_->size());

    f.kv_.reserve(size_t(n_kv));
    for (uint64_t k = 0; k < n_kv; ++k) {
        const std::string key(c.read_string("key of metadata entry " + std::to_string(k)));
        if (key.empty()) RILL_FAIL("metadata entry %llu has an empty key", (unsigned long long)k);
        const uint32_t t = c.read<uint32_t>("type of key '" + key + "'");
        if (!valid_value_type(t)) RILL_FAIL("key '%s' has unknown value type %u", key.c_str(), t);
        Value v = read_value(c, static_cast<ValueType>(t), key, 0);
        if (!f.kv_index_.emplace(key, f.kv_.size()).second) RILL_FAIL("duplicate metadata key '%s'", key.c_str());
        f.kv_.emplace_back(key, std::move(v));
    }

    if (const Value* a = f.find("general.alignment")) {
        if (a->type != ValueType::UINT32) RILL_FAIL("general.alignment must be uint32, found %s", std::string(value_type_name(a->type)).c_str());
        if (a->u == 0 || (a->u & (a->u - 1)) != 0) RILL_FAIL("general.alignment %llu is not a power of two", (unsigned long long)a->u);
        f.alignment_ = a->u;
    }

    f.tensors_.reserve(size_t(n_tensors));
    for (uint64_t k = 0; k < n_tensors; ++k) {
        TensorInfo ti;
        const std::string_view name = c.read_string("name of tensor " + std::to_string(k));
        if (name.empty()) RILL_FAIL("tensor %llu has an empty name", (unsigned long long)k);
        if (name.size() > kMaxNameLength) RILL_FAIL("tensor %llu has a name of %zu bytes", (unsigned long long)k, name.size());
        ti.name = std::string(name);
        const std::string what = "tensor '" + ti.name + "'";
        ti.n_dims = c.read<uint32_t>("dimension count of " + what);
        if (ti.n_dims == 0 || ti.n_dims > kMaxDims) RILL_FAIL("%s has %u dimensions (1 to %u allowed)", what.c_str(), ti.n_dims, kMaxDims);
        uint64_t n_elements = 1;
        for (uint32_t d = 0; d < ti.n_dims; ++d) {
            ti.ne[d] = c.read<int64_t>("shape of " + what);
            if (ti.ne[d] < 0) RILL_FAIL("%s has negative dimension %lld", what.c_str(), (long long)ti.ne[d]);
            if (mul_overflows(n_elements, uint64_t(ti.ne[d]), n_elements) || n_elements > uint64_t(std::numeric_limits<int64_t>::max()))
                RILL_FAIL("%s has too many elements (shape overflows)", what.c_str());
        }
        const uint32_t type_id = c.read<uint32_t>("type of " + what);
        const auto tr = type_traits(type_id);
        if (!tr) RILL_FAIL("%s has unknown type %u", what.c_str(), type_id);
        ti.type = static_cast<TensorType>(type_id);
        if (ti.ne[0] % tr->block_size != 0)
            RILL_FAIL("%s: row length %lld is not a multiple of the %s block size %u", what.c_str(), (long long)ti.ne[0],
                      std::string(tr->name).c_str(), tr->block_size);
        ti.offset = c.read<uint64_t>("data offset of " + what);
        if (ti.offset % f.alignment_ != 0)
            RILL_FAIL("%s: data offset %llu is not a multiple of the alignment %llu", what.c_str(), (unsigned long long)ti.offset,
                      (unsigned long long)f.alignment_);
        ti.n_bytes = n_elements / tr->block_size * tr->type_size;  // n_elements < 2^63, type_size small: checked below
        if (n_elements / tr->block_size != 0 && ti.n_bytes / (n_elements / tr->block_size) != tr->type_size)
            RILL_FAIL("%s: byte size overflows", what.c_str());
        if (!f.tensor_index_.emplace(ti.name, f.tensors_.size()).second) RILL_FAIL("duplicate tensor name '%s'", ti.name.c_str());
        f.tensors_.push_back(std::move(ti));
    }

    const uint64_t header_end = c.pos();
    f.data_offset_ = (header_end + f.alignment_ - 1) / f.alignment_ * f.alignment_;
    const uint64_t file_size = f.bytes_->size();
    if (!f.tensors_.empty() && f.data_offset_ > file_size)
        RILL_FAIL("tensor data section starts at byte %llu, past the end of the file (%llu bytes)",
                  (unsigned long long)f.data_offset_, (unsigned long long)file_size);
    for (auto& ti : f.tensors_) {
        uint64_t start = 0, end = 0;
        if (add_overflows(f.data_offset_, ti.offset, start) || add_overflows(start, ti.n_bytes, end) || end > file_size)
            RILL_FAIL("tensor '%s' data ends at byte %llu past the end of the file (%llu bytes)", ti.name.c_str(),
                      (unsigned long long)(start + ti.n_bytes), (unsigned long long)file_size);
        ti.data = f.bytes_->data() + start;
    }
    // Tensors may come in any order but must not share bytes.
    std::vector<const TensorInfo*> by_offset;
    for (const auto& ti : f.tensors_) by_offset.push_back(&ti);
    std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
    for (size_t k = 1; k < by_offset.size(); ++k) {
        const auto* prev = by_offset[k - 1];
        if (by_offset[k]->offset < prev->offset + prev->n_bytes)
            RILL_FAIL("tensor '%s' (offset %llu) overlaps tensor '%s' (bytes %llu to %llu)", by_offset[k]->name.c_str(),
                      (unsigned long long)by_offset[k]->offset, prev->name.c_str(), (unsigned long long)prev->offset,
                      (unsigned long long)(prev->offset + prev->n_bytes));
    }
    return f;
}

const Value* File::find(std::string_view key) const {
    const auto it = kv_index_.find(std::string(key));
    return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const Value& File::get(std::string_view key) const {
    const Value* v = find(key);
    if (!v) RILL_FAIL("missing metadata key '%s'", std::string(key).c_str());
    return *v;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
    const auto it = tensor_index_.find(std::string(name));
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace rill::gguf
