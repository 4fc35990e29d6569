// GGUF files: a validating, zero-copy reader and a writer.
//
// The reader checks everything before anything uses it (magic, version, counts,
// lengths, types, dimensions, offsets and sizes with overflow-safe arithmetic,
// duplicate names); a malformed file raises rill::Error naming the problem.
// Tensor data and string/numeric arrays are views into the file bytes: nothing
// is copied, so the bytes must outlive the File (File keeps a shared owner).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gguf/types.h"

namespace rill::gguf {

enum class ValueType : uint32_t {
    UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
    BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
std::string_view value_type_name(ValueType t);
// Bytes of one scalar of type t; 0 for STRING and ARRAY.
size_t value_type_size(ValueType t);

// One metadata value. Scalars are held decoded; arrays of scalars point at the
// little-endian bytes in the file; arrays of strings/arrays hold their elements.
struct Value {
    ValueType type = ValueType::UINT8;
    uint64_t u = 0;      // unsigned integers and bool
    int64_t i = 0;       // signed integers
    double f = 0;        // floats
    std::string_view str;
    // ARRAY
    ValueType elem_type = ValueType::UINT8;
    uint64_t count = 0;
    const uint8_t* raw = nullptr;            // scalar element bytes
    std::vector<std::string_view> strings;   // STRING elements
    std::vector<Value> arrays;               // ARRAY elements (nested)

    bool is_integer() const;
    bool is_number() const { return is_integer() || type == ValueType::FLOAT32 || type == ValueType::FLOAT64; }
    // Numeric conversions; throw rill::Error if the value is not numeric or does not fit.
    int64_t as_int() const;
    double as_float() const;
    bool as_bool() const;
    std::string_view as_string() const;
    // Element k of a numeric array as integer / float.
    int64_t int_at(uint64_t k) const;
    double float_at(uint64_t k) const;
    // A short human-readable rendering (arrays abbreviated).
    std::string to_string(size_t max_items = 8) const;
};

struct TensorInfo {
    std::string name;
    TensorType type = TensorType::F32;
    uint32_t n_dims = 0;
    int64_t ne[4] = {1, 1, 1, 1};  // ne[0] is the innermost (row) dimension
    uint64_t offset = 0;           // relative to the data section
    uint64_t n_bytes = 0;
    const uint8_t* data = nullptr; // view into the file bytes

    int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
    std::string shape_string() const;  // "[1024, 248320]"
};

// Bytes that back a File: an owned buffer or a memory-mapped file.
class Bytes {
public:
    virtual ~Bytes() = default;
    virtual const uint8_t* data() const = 0;
    virtual size_t size() const = 0;
    // Owned buffers may be rearranged in place (weights repacked for the kernels at load);
    // a read-only map may not.
    virtual bool writable() const { return false; }
    // Runs f the first time it is called on these bytes, however many Files and Models share
    // them (a second model loaded from the same bytes must not repack them again).
    void once(const std::function<void()>& f) const { std::call_once(once_, f); }

private:
    mutable std::once_flag once_;
};
std::shared_ptr<const Bytes> bytes_from_vector(std::vector<uint8_t> v);
// Maps the file read-only where the platform can (native), reads it otherwise.
std::shared_ptr<const Bytes> bytes_from_path(const std::string& path);

class File {
public:
    // Parses and validates; throws rill::Error with a message naming the problem.
    static File parse(std::shared_ptr<const Bytes> bytes);
    // Opens a file; the path of any part of a split model (<name>-00001-of-0000N.gguf) opens
    // and joins all its parts.
    static File open(const std::string& path);
    // A model split over several files (llama.cpp's gguf-split): the parts in order, the first
    // holding the metadata, each some of the tensors (the first possibly none), every one the
    // keys split.no (0-based), split.count and split.tensors.count. One File views them all;
    // throws naming a missing, misplaced or foreign part.
    static File join(std::vector<File> parts);

    uint32_t version() const { return version_; }
    uint64_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }
    size_t file_size() const;  // all parts
    // Whether tensor bytes may be rewritten in place (owned, not a read-only map).
    bool writable() const;
    // split.count (1 for a whole file), and how many parts this File holds.
    uint32_t split_count() const;
    size_t parts() const { return 1 + more_bytes_.size(); }
    // Runs f (which rewrites tensor bytes in place) once per set of bytes, if writable.
    void rewrite_once(const std::function<void()>& f) const {
        if (bytes_->writable()) bytes_->once(f);
    }

    const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
    const Value* find(std::string_view key) const;
    const Value& get(std::string_view key) const;  // throws if missing
    const std::vector<TensorInfo>& tensors() const { return tensors_; }
    const TensorInfo* find_tensor(std::string_view name) const;

private:
    std::shared_ptr<const Bytes> bytes_;
    std::vector<std::shared_ptr<const Bytes>> more_bytes_;  // the other parts of a split model
    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    std::vector<std::pair<std::string, Value>> kv_;
    std::unordered_map<std::string, size_t> kv_index_;
    std::vector<TensorInfo> tensors_;
    std::unordered_map<std::string, size_t> tensor_index_;
};

// Builds a GGUF (version 3) in memory. Keys and tensors are written in the order added.
class Writer {
public:
    void set_u8(const std::string& k, uint8_t v);
    void set_i8(const std::string& k, int8_t v);
    void set_u16(const std::string& k, uint16_t v);
    void set_i16(const std::string& k, int16_t v);
    void set_u32(const std::string& k, uint32_t v);
    void set_i32(const std::string& k, int32_t v);
    void set_u64(const std::string& k, uint64_t v);
    void set_i64(const std::string& k, int64_t v);
    void set_f32(const std::string& k, float v);
    void set_f64(const std::string& k, double v);
    void set_bool(const std::string& k, bool v);
    void set_str(const std::string& k, std::string_view v);
    // Array of scalars of element type t given as raw little-endian bytes (count elements).
    void set_array_raw(const std::string& k, ValueType t, const void* data, uint64_t count);
    void set_array_i32(const std::string& k, const std::vector<int32_t>& v);
    void set_array_f32(const std::string& k, const std::vector<float>& v);
    void set_array_str(const std::string& k, const std::vector<std::string_view>& v);
    void set_array_str(const std::string& k, const std::vector<std::string>& v);
    // Copies a metadata value read from another file (any type, nested arrays too).
    void set_value(const std::string& k, const Value& v);
    void set_alignment(uint32_t a);

    void add_tensor(const std::string& name, TensorType type, const std::vector<int64_t>& ne,
                    const void* data, uint64_t n_bytes);

    std::vector<uint8_t> finish() const;
    void write_file(const std::string& path) const;

private:
    struct Entry { std::string key; std::vector<uint8_t> encoded; };  // type + payload
    struct PendingTensor { std::string name; TensorType type; std::vector<int64_t> ne; std::vector<uint8_t> data; };
    void put(const std::string& k, std::vector<uint8_t> encoded);
    std::vector<Entry> kv_;
    std::vector<PendingTensor> tensors_;
    uint32_t alignment_ = 32;
};

// The path of part `no` (0-based) of a model split in n: "<prefix>-%05d-of-%05d.gguf".
std::string split_path(const std::string& prefix, uint32_t no, uint32_t n);
// The prefix, part (0-based) and count a split part's path names; false for another name.
bool parse_split_path(const std::string& path, std::string& prefix, uint32_t& no, uint32_t& n);
// Splits a file into n parts as llama.cpp's gguf-split does (tensors in order, each part
// holding about 1/n of the tensor bytes; all metadata in the first): the parts' bytes.
std::vector<std::vector<uint8_t>> split_file(const File& f, uint32_t n);

}  // namespace rill::gguf
