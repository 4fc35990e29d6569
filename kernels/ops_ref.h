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
// Q8_0 for Q4_0/Q5_0/Q8_0/IQ4_NL, Q8_1 for Q4_1/Q5_1, Q8_K for the K-quants and IQ4_XS,
// F16/BF16/F32 as is.
TensorType activation_type(TensorType weight);
bool weight_type_supported(TensorType weight);

// The order in which a dot product's per-block terms are summed. The integer parts are
// exact; this decides the last bits. llama.cpp's x86 backend (AVX2) repacks Q4_0, Q4_K and
// IQ4_NL matrices whose row count is a multiple of 8, a tied token_embd used as the output head
// included, and sums their blocks one after another (Rows); elsewhere it keeps 8 lanes (Lanes).
enum class SumOrder : uint8_t { Lanes, Rows };
SumOrder llama_cpp_sum_order(TensorType weight, int64_t rows);

// How a weight matrix's bytes are arranged. Plain: as in the file, row after row. Rows4: a
// Q4_0, IQ4_NL or Q4_K matrix rearranged at load (kern::repack) for the SIMD kernels'
// row-order dot product, rows in groups of four, the same size as Plain. Q4_0 / IQ4_NL: each
// block of the group 72 bytes, the four rows' fp16 scales, then four 16-byte vectors; vector j
// holds, for row k at bytes 4k..4k+3, elements 4j..4j+3 of the block in the low nibbles and
// elements 16+4j..16+4j+3 in the high nibbles. Q4_K: see ops_simd.cpp (super-blocks of 576 bytes).
// Q5Bits: a Q5_0 or Q5_1 matrix whose blocks keep their place, scales and size, the 32 five-bit
// values regrouped in their 20 bytes so that the SIMD kernels unpack them in fewer steps: qs byte e
// holds value e whole and the three low bits of value 16 + e, whose two top bits sit in qh (see
// q5_block_regroup in ops_simd.cpp). Q8Abs7: a Q8_0 matrix as in the file, known to hold no
// value -128 (which llama.cpp's quantiser never writes), so that |w| fits the byte dots' 7 bits
// without a check per block. Paired16 (strict SIMD128): a Q5_K, IQ4_XS or Q8_0 matrix whose
// blocks keep their place and size, the bytes of every 16-byte vector of quants (Q5_K's qs and
// qh, IQ4_XS's and Q8_0's qs) in the order 0,1, 4,5, 8,9, 12,13, 2,3, 6,7, 10,11, 14,15, so that the
// values widen straight into the pair order of the kernels' activations (see simd.h's
// ScaledBytes). Q6Bytes: a Q6_K matrix whose blocks keep their place, scales and size, the
// 6-bit values regrouped in the 192 bytes of ql and qh: of every four 16-value vectors, three
// whole in bytes (bits 0..5) and the fourth's 6 bits in the top two bits of those three (see
// q6_values in ops_simd.cpp). The strict build's Q5Bits and Q6Bytes hold values in that pair order.
// Every layout but Rows4 keeps each row's bytes in the row's place (see kern::plain_row).
enum class WeightLayout : uint8_t { Plain, Rows4, Q5Bits, Q8Abs7, Paired16, Q6Bytes };

// Activations of n elements quantised to activation_type(weight), as llama.cpp's x86 CPU
// path does: Q8_0/Q8_1 with id = 127/amax and round-half-to-even, Q8_K with the reference rounding.
void quantize_activations(TensorType weight, const float* x, int64_t n, std::vector<uint8_t>& out);
// Dot product of one weight row (n elements of type `weight`) with quantised activations.
float dot_row(TensorType weight, const void* row, const void* acts, int64_t n, SumOrder order = SumOrder::Lanes);
// y[r] = W[r] . x for the `rows` rows of W (each `cols` elements of type `weight`).
void matvec(TensorType weight, const void* W, int64_t rows, int64_t cols, const float* x, float* y,
            SumOrder order = SumOrder::Lanes);
// Y[t] = W X[t] for n_tokens rows of X. Float weights are summed in the order llama.cpp uses
// for that shape (see float_matmul_sums_in_blocks); quantised weights have one order whatever the batch.
void matmul(TensorType weight, const void* W, int64_t rows, int64_t cols, const float* X, float* Y, int64_t n_tokens,
            SumOrder order = SumOrder::Lanes);

// F32 dot products in llama.cpp's two x86 orders (its haswell variant: 256-bit vectors). Both
// are exact re-orderings of the same sum; which one is used decides the last bits, and those
// decide later roundings.
float dot_f32_lanes8(const float* a, const float* b, int64_t n);      // llamafile's tinyBLAS: 8 FMA lanes, then a tree
float dot_f32_blocks32(const float* a, const float* b, int64_t n);    // ggml_vec_dot_f32: 4 x 8 FMA lanes, folded, hadd tree
// ggml_vec_dot_bf16 on widened bfloat16 values: the same 4 x 8 lanes and fold, then the movehl tree
// (as tree_sum8), a remainder of n % 32 products added in double.
float dot_bf16_blocks32(const float* a, const float* b, int64_t n);
// True where llama.cpp multiplies an F32/F16/BF16 matrix row by row with ggml_vec_dot (blocks32): one
// token, or a shape llamafile's AVX2 tinyBLAS refuses (cols % 8, rows % 4); false where
// tinyBLAS sums it (lanes8), and for every other weight type.
bool float_matmul_sums_in_blocks(TensorType weight, int64_t rows, int64_t cols, int64_t n_tokens);

// ---- element-wise and normalisation ------------------------------------------------------

// exp(x) by the polynomial llama.cpp's CPU backend uses (from Arm's optimized routines:
// x = n ln2 + b, exp(x) = 2^n + 2^n (p(b) - 1), error below 2 ulp), in the form of its AVX2 code
// (ggml_v_expf of the haswell variant; the AVX-512 one rounds differently). Rill uses it wherever llama.cpp does
// (SiLU, softmax), which keeps rounding-sensitive steps identical and vectorises well.
float exp_poly(float x);
// ggml processes these in 8-wide vector blocks and finishes a remainder with libm expf;
// the reference mirrors that split so that results match bit for bit.
void silu_inplace(float* x, int64_t n);
void swiglu(const float* gate, const float* up, float* out, int64_t n);  // silu(gate) * up
// gelu(gate) * up with GELU's tanh form as ggml's CPU code computes it (GGML_GELU_FP16): the input
// rounded to fp16 and looked up in a table of fp16 results (exact: built with a correctly rounded
// tanh, which gives glibc's fp16 table on every entry), 0 below -10, gate * up above 10.
void geglu(const float* gate, const float* up, float* out, int64_t n);
void gelu(const float* x, float* y, int64_t n);  // the same GELU alone (ggml_gelu)
// ggml's table behind both (ggml_table_gelu_f16): entry h is GELU of fp16 h, rounded to fp16.
const uint16_t* gelu_fp16_table();

// y = x / sqrt(mean(x^2) + eps) * w (w may be null); sums in double, as ggml.
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);
// x / sqrt(sum(x^2) + eps), in place.
void l2_norm(float* x, int64_t n, float eps);
// l2_norm of each of `rows` consecutive rows of n values: the same sums, four rows' sequential
// double sums interleaved (independent chains, so no row waits on another's additions).
void l2_norm_rows(float* x, int64_t rows, int64_t n, float eps);
inline float sigmoid(float x);
float softplus(float x);
// In-place softmax of n values: max subtracted, exp_poly over 8-wide blocks (each block
// summed as a tree, then added in double), libm expf for a remainder, scaled by 1/sum.
void softmax(float* x, int64_t n);

// ---- rotary position embedding -------------------------------------------------------------

// sinf / cosf exactly as glibc's x86-64 FMA build computes them (the libm llama.cpp runs with),
// on every platform: rope angles must round identically for logits to agree.
float sinf_libm(float x);
float cosf_libm(float x);
// expm1f / tanhf as glibc up to 2.40 computes them (the fdlibm algorithm; Debian 12's libm, which
// the oracle runs with: checked equal on every float): the logit soft-cap's tanh.
float expm1f_libm(float x);
float tanhf_libm(float x);

// Rotates the first n_rot dims of one head at position pos. NeoX style pairs (i, i + n_rot/2);
// otherwise adjacent pairs (2i, 2i+1). freq_factors (n_rot/2 values) divide the angles if given.
// mscale (LongRoPE's attention factor) multiplies cos and sin, and freq_scale (linear scaling:
// 1 / rope.scaling.factor) the angles, as ggml's rope cache does.
void rope(float* head, int n_rot, int pos, float freq_base, bool neox, const float* freq_factors, float mscale = 1.0f,
          float freq_scale = 1.0f);
// rope() in two steps, for the heads of one token that share a position: the n_rot/2 pairs'
// cos and sin (times mscale) computed once, then each head rotated by them; exactly rope().
void rope_angles(int n_rot, int pos, float freq_base, const float* freq_factors, float mscale, float freq_scale, float* cos,
                 float* sin);
void rope_rotate(float* head, int n_rot, bool neox, const float* cos, const float* sin);

// ---- attention --------------------------------------------------------------------------------

// One query head against n_kv cached positions. k rows are `k_stride` floats apart; v is
// stored transposed (v[i * v_stride + t]), as llama.cpp stores it without flash attention.
// out = softmax(scale * q.K^T) V, head_dim values. `scores` needs n_kv rounded up to 64
// floats: llama.cpp pads attention rows with masked positions, so every block is a full one.
// batched: the query is part of a multi-token batch (decides the order of the V sum).
// Positions before `first` are masked (a sliding window): their scores are -inf, as llama.cpp masks them.
void attention_head(const float* q, const float* k, const float* v, int64_t n_kv, int64_t head_dim, int64_t k_stride,
                    int64_t v_stride, float scale, bool batched, float* scores, float* out, int64_t first = 0);

// Several queries over the same keys and values (the query heads of one KV head, several tokens):
// each exactly attention_head(q, k, v, n_kv, ..., first) into out. `scores` holds a row of
// attention_scores_stride(max n_kv) floats per query.
struct AttentionQuery {
    const float* q;
    int64_t n_kv, first;
    float* out;
};
inline int64_t attention_scores_stride(int64_t max_n_kv) { return (max_n_kv + 63) / 64 * 64; }
// The longest of the queries' key counts.
inline int64_t attention_max_kv(const AttentionQuery* queries, int64_t n_queries) {
    int64_t m = 0;
    for (int64_t i = 0; i < n_queries; ++i) m = queries[i].n_kv > m ? queries[i].n_kv : m;
    return m;
}
void attention_queries(const AttentionQuery* queries, int64_t n_queries, const float* k, const float* v, int64_t head_dim, int64_t k_stride,
                       int64_t v_stride, float scale, bool batched, float* scores);

// ---- Gated DeltaNet ---------------------------------------------------------------------------

// Causal depthwise conv1d for one token over `channels` channels with kernel size K:
// out[c] = sum_k window[k][c] * w[c][k], window = (K-1 previous inputs from state, x).
// state holds K-1 rows of `channels` (oldest first) and is shifted to take x.
// The sum as llama.cpp's ssm_conv loop is compiled for haswell: GCC vectorises the products of
// the first K - K % 4 terms (8 or 4 at a time), rounds each, and adds them in order; it fuses
// the last K % 4 terms into FMAs (its scalar tail). See conv1d_unfused_terms.
void conv1d_causal_step(float* state, const float* x, const float* w, int64_t channels, int K, float* out);
// The state's window moved on by one input: drops the oldest row, appends x (every kernel's last step).
inline int conv1d_unfused_terms(int K) { return K - K % 4; }
void conv1d_push_state(float* state, const float* x, int64_t channels, int K);

// One token of the gated delta rule for one head. S is [dv][dk] (k contiguous):
//   S = S_in * exp(g);  d = beta * (v - S^T k);  S += k d^T;  out = (S^T q) * scale
// (scale = 1/sqrt(dk), applied to the read-out as llama.cpp's fused operation does). S_in is the
// state before the token: S itself, or another buffer (the state then moves without a copy).
void delta_rule_step(const float* S_in, float* S, const float* q, const float* k, const float* v, float g, float beta, float scale,
                     int64_t dk, int64_t dv, float* out);

inline float sigmoid(float x) { return 1.0f / (1.0f + __builtin_expf(-x)); }

}  // namespace rill
