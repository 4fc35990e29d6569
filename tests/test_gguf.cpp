#include <gtest/gtest.h>

#include <cstring>

#include "gguf/gguf.h"
#include "kernels/quant_ref.h"
#include "rill/error.h"

using namespace rill;
using namespace rill::gguf;

namespace {

File parse(std::vector<uint8_t> bytes) { return File::parse(bytes_from_vector(std::move(bytes))); }

Writer sample_writer() {
    Writer w;
    w.set_str("general.architecture", "llama");
    w.set_u8("t.u8", 200);
    w.set_i8("t.i8", -100);
    w.set_u16("t.u16", 60000);
    w.set_i16("t.i16", -30000);
    w.set_u32("t.u32", 4000000000u);
    w.set_i32("t.i32", -2000000000);
    w.set_u64("t.u64", 18000000000000000000ull);
    w.set_i64("t.i64", -9000000000000000000ll);
    w.set_f32("t.f32", 1.5f);
    w.set_f64("t.f64", -2.25);
    w.set_bool("t.bool", true);
    w.set_str("t.str", "héllo");
    w.set_array_i32("t.arr_i32", {1, -2, 3});
    w.set_array_f32("t.arr_f32", {0.5f, -1.0f});
    w.set_array_str("t.arr_str", std::vector<std::string>{"a", "", "ccc"});
    return w;
}

}  // namespace

TEST(Gguf, EveryValueTypeRoundTrips) {
    const File f = parse(sample_writer().finish());
    EXPECT_EQ(f.version(), 3u);
    EXPECT_EQ(f.get("t.u8").as_int(), 200);
    EXPECT_EQ(f.get("t.i8").as_int(), -100);
    EXPECT_EQ(f.get("t.u16").as_int(), 60000);
    EXPECT_EQ(f.get("t.i16").as_int(), -30000);
    EXPECT_EQ(f.get("t.u32").as_int(), 4000000000ll);
    EXPECT_EQ(f.get("t.i32").as_int(), -2000000000);
    EXPECT_EQ(f.get("t.u64").u, 18000000000000000000ull);
    EXPECT_THROW(f.get("t.u64").as_int(), Error);  // does not fit int64
    EXPECT_EQ(f.get("t.i64").as_int(), -9000000000000000000ll);
    EXPECT_EQ(f.get("t.f32").as_float(), 1.5);
    EXPECT_EQ(f.get("t.f64").as_float(), -2.25);
    EXPECT_TRUE(f.get("t.bool").as_bool());
    EXPECT_EQ(f.get("t.str").as_string(), "héllo");
    const Value& ai = f.get("t.arr_i32");
    ASSERT_EQ(ai.count, 3u);
    EXPECT_EQ(ai.int_at(1), -2);
    EXPECT_EQ(f.get("t.arr_f32").float_at(1), -1.0);
    const Value& as = f.get("t.arr_str");
    ASSERT_EQ(as.strings.size(), 3u);
    EXPECT_EQ(as.strings[2], "ccc");
    EXPECT_EQ(as.strings[1], "");
    EXPECT_THROW(f.get("t.str").as_int(), Error);
    EXPECT_THROW(f.get("missing"), Error);
    // Order of keys is kept.
    EXPECT_EQ(f.metadata().front().first, "general.architecture");
}

TEST(Gguf, NestedArraysRoundTripThroughSetValue) {
    // Build a nested array value by hand: [[1,2],[3]] of int32.
    std::vector<uint8_t> b = {'G', 'G', 'U', 'F', 3, 0, 0, 0};
    auto u32 = [&](uint32_t v) { for (int i = 0; i < 4; ++i) b.push_back(uint8_t(v >> (8 * i))); };
    auto u64 = [&](uint64_t v) { for (int i = 0; i < 8; ++i) b.push_back(uint8_t(v >> (8 * i))); };
    u64(0);  // tensors
    u64(1);  // kv
    u64(6);
    for (char c : std::string("nested")) b.push_back(uint8_t(c));
    u32(9);  // ARRAY
    u32(9);  // of ARRAY
    u64(2);
    u32(5); u64(2); u32(1); u32(2);
    u32(5); u64(1); u32(3);
    const File f = parse(b);
    const Value& v = f.get("nested");
    ASSERT_EQ(v.arrays.size(), 2u);
    EXPECT_EQ(v.arrays[0].int_at(1), 2);
    EXPECT_EQ(v.arrays[1].int_at(0), 3);
    Writer w;
    w.set_value("copy", v);
    const File g = parse(w.finish());
    EXPECT_EQ(g.get("copy").arrays[1].int_at(0), 3);
    EXPECT_EQ(g.get("copy").to_string(), "[[1, 2], [3]]");
}

TEST(Gguf, TensorsAreZeroCopyViewsAndRoundTrip) {
    Writer w = sample_writer();
    std::vector<float> a(64);
    for (int i = 0; i < 64; ++i) a[size_t(i)] = float(i) * 0.25f;
    std::vector<block_q8_0> q(2);
    quantize_row_q8_0(a.data(), q.data(), 64);
    w.add_tensor("a", TensorType::F32, {16, 4}, a.data(), a.size() * 4);
    w.add_tensor("blk.0.q", TensorType::Q8_0, {64}, q.data(), q.size() * sizeof(block_q8_0));
    const auto bytes = w.finish();
    auto owner = bytes_from_vector(bytes);
    const File f = File::parse(owner);
    ASSERT_EQ(f.tensors().size(), 2u);
    const TensorInfo* ta = f.find_tensor("a");
    ASSERT_NE(ta, nullptr);
    EXPECT_EQ(ta->ne[0], 16);
    EXPECT_EQ(ta->ne[1], 4);
    EXPECT_EQ(ta->n_bytes, 256u);
    EXPECT_EQ(ta->shape_string(), "[16, 4]");
    // The view points into the file bytes, aligned.
    EXPECT_GE(ta->data, owner->data());
    EXPECT_LT(ta->data, owner->data() + owner->size());
    EXPECT_EQ((ta->data - owner->data()) % 32, 0);
    EXPECT_EQ(std::memcmp(ta->data, a.data(), 256), 0);
    const TensorInfo* tq = f.find_tensor("blk.0.q");
    EXPECT_EQ(tq->type, TensorType::Q8_0);
    EXPECT_EQ(std::memcmp(tq->data, q.data(), tq->n_bytes), 0);
    // Writing what was read gives the same bytes back.
    Writer w2;
    for (const auto& [k, v] : f.metadata()) w2.set_value(k, v);
    for (const auto& t : f.tensors()) w2.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims), t.data, t.n_bytes);
    EXPECT_EQ(w2.finish(), bytes);
}

TEST(Gguf, CustomAlignmentIsHonoured) {
    Writer w;
    w.set_alignment(64);
    std::vector<float> a(8, 1.0f);
    w.add_tensor("x", TensorType::F32, {8}, a.data(), 32);
    w.add_tensor("y", TensorType::F32, {8}, a.data(), 32);
    auto owner = bytes_from_vector(w.finish());
    const File f = File::parse(owner);
    EXPECT_EQ(f.alignment(), 64u);
    EXPECT_EQ(f.data_offset() % 64, 0u);
    EXPECT_EQ(f.find_tensor("y")->offset, 64u);
}

TEST(Gguf, Version2IsRead) {
    auto bytes = sample_writer().finish();
    bytes[4] = 2;
    EXPECT_EQ(parse(bytes).version(), 2u);
}

TEST(Gguf, WriterRejectsInconsistentTensors) {
    Writer w;
    float x[32] = {};
    EXPECT_THROW(w.add_tensor("a", TensorType::F32, {8}, x, 16), Error);
    EXPECT_THROW(w.add_tensor("b", TensorType::Q8_0, {16}, x, 17), Error);
    w.add_tensor("c", TensorType::F32, {4}, x, 16);
    EXPECT_THROW(w.add_tensor("c", TensorType::F32, {4}, x, 16), Error);
}

// Every truncation of a valid file is rejected with an error, never a crash.
TEST(Gguf, EveryTruncationIsAnError) {
    Writer w = sample_writer();
    std::vector<float> a(32, 2.0f);
    w.add_tensor("a", TensorType::F32, {32}, a.data(), 128);
    const auto bytes = w.finish();
    size_t errors = 0;
    for (size_t n = 0; n < bytes.size(); ++n) {
        try {
            parse(std::vector<uint8_t>(bytes.begin(), bytes.begin() + long(n)));
        } catch (const Error& e) {
            ++errors;
            EXPECT_GT(std::strlen(e.what()), 10u);
        }
    }
    // Cutting only the trailing padding after the last tensor still leaves a valid file.
    EXPECT_GE(errors, bytes.size() - 32);
}
