// kern:: for builds without wasm SIMD (the native CLI and tests): the reference kernels,
// with matmul rows split across the thread pool.
#if !defined(__wasm_simd128__)

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/ops.h"
#include "rill/error.h"
#include "src/thread_pool.h"

namespace rill::kern {

const char* kernel_set() { return "scalar"; }
bool madd_is_fused() { return true; }  // the reference uses std::fma

void set_group_dot_form(GroupDotForm) {}
const char* group_dot_form() { return "i32"; }

WeightLayout preferred_layout(TensorType, int64_t, int64_t, SumOrder) { return WeightLayout::Plain; }

void repack(WeightLayout layout, TensorType, void*, int64_t, int64_t) {
    if (layout != WeightLayout::Plain) RILL_FAIL("the scalar kernels read only the plain weight layout");
}

WeightLayout checked_layout(WeightLayout layout, TensorType, const void*, int64_t, int64_t) { return layout; }

void plain_row(WeightLayout layout, TensorType w, const void* row, int64_t cols, void* out) {
    if (layout != WeightLayout::Plain) RILL_FAIL("the scalar kernels read only the plain weight layout");
    std::memcpy(out, row, size_t(row_bytes(w, uint64_t(cols))));
}

void matmul(TensorType w, const void* W, int64_t rows, int64_t cols, const float* X, float* Y, int64_t n_tokens,
            SumOrder order, ThreadPool* pool, WeightLayout layout) {
    if (layout != WeightLayout::Plain) RILL_FAIL("the scalar kernels read only the plain weight layout");
    if (!pool || pool->size() == 1 || rows < 64) return rill::matmul(w, W, rows, cols, X, Y, n_tokens, order);
    const uint64_t rb = row_bytes(w, uint64_t(cols));
    pool->run([&](int ith, int nth) {
        const int64_t r0 = rows * ith / nth, r1 = rows * (ith + 1) / nth;
        if (r0 == r1) return;
        std::vector<float> part(size_t((r1 - r0) * n_tokens));
        rill::matmul(w, static_cast<const uint8_t*>(W) + uint64_t(r0) * rb, r1 - r0, cols, X, part.data(), n_tokens, order);
        for (int64_t t = 0; t < n_tokens; ++t)
            std::copy(part.begin() + t * (r1 - r0), part.begin() + (t + 1) * (r1 - r0), Y + t * rows + r0);
    });
}

float dot_f32_lanes8(const float* a, const float* b, int64_t n) { return rill::dot_f32_lanes8(a, b, n); }
float dot_f32_blocks32(const float* a, const float* b, int64_t n) { return rill::dot_f32_blocks32(a, b, n); }
void silu_inplace(float* x, int64_t n) { rill::silu_inplace(x, n); }
void swiglu(const float* gate, const float* up, float* out, int64_t n) { rill::swiglu(gate, up, out, n); }
void geglu(const float* gate, const float* up, float* out, int64_t n) { rill::geglu(gate, up, out, n); }
void gelu(const float* x, float* y, int64_t n) { rill::gelu(x, y, n); }
void softmax(float* x, int64_t n) { rill::softmax(x, n); }
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) { rill::rms_norm(x, w, y, n, eps); }
void attention_head(const float* q, const float* k, const float* v, int64_t n_kv, int64_t head_dim, int64_t k_stride,
                    int64_t v_stride, float scale, bool batched, float* scores, float* out, int64_t first) {
    rill::attention_head(q, k, v, n_kv, head_dim, k_stride, v_stride, scale, batched, scores, out, first);
}
void attention_queries(const AttentionQuery* queries, int64_t n_queries, const float* k, const float* v, int64_t head_dim, int64_t k_stride,
                       int64_t v_stride, float scale, bool batched, float* scores) {
    rill::attention_queries(queries, n_queries, k, v, head_dim, k_stride, v_stride, scale, batched, scores);
}
void conv1d_causal_step(float* state, const float* x, const float* w, int64_t channels, int K, float* out) {
    rill::conv1d_causal_step(state, x, w, channels, K, out);
}
void delta_rule_step(const float* S_in, float* S, const float* q, const float* k, const float* v, float g, float beta, float scale,
                     int64_t dk, int64_t dv, float* out) {
    rill::delta_rule_step(S_in, S, q, k, v, g, beta, scale, dk, dv, out);
}

}  // namespace rill::kern

#endif
