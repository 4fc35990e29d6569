// Scalar reference kernels: plain portable C++, the specification the SIMD kernels
// are tested against. Each follows llama.cpp's CPU arithmetic where it matters for
// agreement (activation quantisation, integer dot products, double-precision sums in norms).
#pragma once

#include <cstdint>
#include <vector>

#include "gguf/types.h"

namespace rill {

// ---- matrix-vector products -------------------------------------------------------------

// The format llama.cpp converts activations to before multiplying by a weight of type t:
// Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for the K-quants, F16/BF16/F32 as is.
TensorType activation_type(TensorType weight);
bool weight_type_supported(TensorType weight);

// Activations of n elements quantised to activation_type(weight), as llama.cpp's x86 CPU
// path does: Q8_0/Q8_1 with id = 127/amax and round-half-to-even, Q8_K with the reference rounding.
void quantize_activations(TensorType weight, const float* x, int64_t n, std::vector<uint8_t>& out);
// Dot product of one weight row (n elements of type `weight`) with quantised activations.
float dot_row(TensorType weight, const void* row, const void* acts, int64_t n);
// y[r] = W[r] . x for the `rows` rows of W (each `cols` elements of type `weight`).
void matvec(TensorType weight, const void* W, int64_t rows, int64_t cols, const float* x, float* y);

// ---- element-wise and normalisation ------------------------------------------------------

// y = x / sqrt(mean(x^2) + eps) * w (w may be null); sums in double, as ggml.
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);
// x / sqrt(sum(x^2) + eps), in place.
void l2_norm(float* x, int64_t n, float eps);
inline float silu(float x);
inline float sigmoid(float x);
float softplus(float x);
// In-place softmax of n values (max subtracted, sum in double).
void softmax(float* x, int64_t n);

// ---- rotary position embedding -------------------------------------------------------------

// Rotates the first n_rot dims of one head at position pos. NeoX style pairs (i, i + n_rot/2);
// otherwise adjacent pairs (2i, 2i+1). freq_factors (n_rot/2 values) divide the angles if given.
void rope(float* head, int n_rot, int pos, float freq_base, bool neox, const float* freq_factors);

// ---- attention --------------------------------------------------------------------------------

// One query head against n_kv cached positions. k/v rows are `stride` floats apart.
// out = softmax(scale * q.K^T) V, head_dim values.
void attention_head(const float* q, const float* k, const float* v, int64_t n_kv, int64_t head_dim, int64_t stride,
                    float scale, float* scores, float* out);

// ---- Gated DeltaNet ---------------------------------------------------------------------------

// Causal depthwise conv1d for one token over `channels` channels with kernel size K:
// out[c] = sum_k window[k][c] * w[c][k], window = (K-1 previous inputs from state, x).
// state holds K-1 rows of `channels` (oldest first) and is shifted to take x.
void conv1d_causal_step(float* state, const float* x, const float* w, int64_t channels, int K, float* out);

// One token of the gated delta rule for one head. S is [dv][dk] (k contiguous):
//   S = S * exp(g);  d = beta * (v - S^T k);  S += k d^T;  out = S^T q.
// q must already be scaled by 1/sqrt(dk).
void delta_rule_step(float* S, const float* q, const float* k, const float* v, float g, float beta, int64_t dk,
                     int64_t dv, float* out);

inline float silu(float x) { return x / (1.0f + __builtin_expf(-x)); }
inline float sigmoid(float x) { return 1.0f / (1.0f + __builtin_expf(-x)); }

}  // namespace rill
