// The kernels the engine runs: the one place where scalar reference, wasm SIMD128 and
// relaxed SIMD are chosen (at compile time, by the build). Same signatures and the same
// arithmetic order as the reference in ops_ref.h, which specifies them; tests compare each
// SIMD kernel with its reference.
//
// Agreement with the reference: integer parts of dot products are bit-identical in every
// build. Float steps follow the reference's order; relaxed SIMD's madd is fused on engines
// whose hardware has FMA (then results are bit-identical), strict SIMD128 has no FMA and rounds
// each product (then results agree to float rounding).
#pragma once

#include <cstdint>

#include "gguf/types.h"
#include "kernels/ops_ref.h"

namespace rill {

class ThreadPool;

namespace kern {

// "scalar", "simd128" or "relaxed-simd".
const char* kernel_set();
// True when a * b + c in the kernels is computed with one rounding (checked at run time).
bool madd_is_fused();

// Y[t] = W X[t] for n_tokens rows, rows split across the pool's threads (pool may be null).
// W is arranged as `layout` says (see ops_ref.h); the result does not depend on the layout.
void matmul(TensorType weight, const void* W, int64_t rows, int64_t cols, const float* X, float* Y, int64_t n_tokens,
            SumOrder order, ThreadPool* pool, WeightLayout layout = WeightLayout::Plain);

// The layout this build's matmul reads a weight fastest in: Rows4 for row-order Q4_0, IQ4_NL
// and Q4_K matrices, Q5Bits for Q5_0 / Q5_1 and Q6Bytes for Q6_K matrices in the SIMD builds,
// Paired16 for Q5_K, IQ4_XS and Q8_0 matrices in the strict SIMD128 build, Plain otherwise.
// Depends only on the arguments, never on the bytes.
WeightLayout preferred_layout(TensorType weight, int64_t rows, int64_t cols, SumOrder order);
// Rearranges a Plain matrix in place into `layout` (a no-op for Plain).
void repack(WeightLayout layout, TensorType weight, void* W, int64_t rows, int64_t cols);
// One row (cols elements) of a matrix in `layout` as the file held it (row_bytes(weight, cols) at
// out), for rows read one at a time such as embeddings. Every layout but Rows4, which interleaves
// rows, keeps a row's bytes together.
void plain_row(WeightLayout layout, TensorType weight, const void* row, int64_t cols, void* out);
// `layout` refined by a fact about the matrix's bytes, which it leaves as they are (so it applies
// to matrices that are looked up or read-only too): a Plain Q8_0 matrix without the value -128
// becomes Q8Abs7 in the relaxed SIMD build. Reads the matrix once.
WeightLayout checked_layout(WeightLayout layout, TensorType weight, const void* W, int64_t rows, int64_t cols);

// How the Rows4 kernels sum groups of byte products (kernels/simd.h): I32 lanes, or I16 pair
// sums scaled by one multiply-add (relaxed SIMD only). Both give the same integers; Auto (the
// default) times both once and keeps the faster. group_dot_form() says which runs ("i32", "i16").
enum class GroupDotForm { Auto, I32, I16 };
void set_group_dot_form(GroupDotForm form);
const char* group_dot_form();

float dot_f32_lanes8(const float* a, const float* b, int64_t n);
float dot_f32_blocks32(const float* a, const float* b, int64_t n);
void silu_inplace(float* x, int64_t n);
void swiglu(const float* gate, const float* up, float* out, int64_t n);
void geglu(const float* gate, const float* up, float* out, int64_t n);
void gelu(const float* x, float* y, int64_t n);
void softmax(float* x, int64_t n);
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);
void attention_head(const float* q, const float* k, const float* v, int64_t n_kv, int64_t head_dim, int64_t k_stride,
                    int64_t v_stride, float scale, bool batched, float* scores, float* out, int64_t first = 0);
void attention_queries(const AttentionQuery* queries, int64_t n_queries, const float* k, const float* v, int64_t head_dim, int64_t k_stride,
                       int64_t v_stride, float scale, bool batched, float* scores);
void conv1d_causal_step(float* state, const float* x, const float* w, int64_t channels, int K, float* out);
void delta_rule_step(const float* S_in, float* S, const float* q, const float* k, const float* v, float g, float beta, float scale,
                     int64_t dk, int64_t dv, float* out);

}  // namespace kern
}  // namespace rill
