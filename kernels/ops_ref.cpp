#include "kernels/ops_ref.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/half.h"
#include "kernels/quant_blocks.h"
#include "kernels/quant_ref.h"
#include "rill/error.h"

namespace rill {
namespace {

// Q8_0 / Q8_1 activations the way llama.cpp's x86 CPU code makes them.
template <typename Block>
void quantize_q8_acts(const float* x, Block* y, int64_t n, bool with_sum) {
    for (int64_t i = 0; i < n / 32; ++i, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        y[i].d = f32_to_fp16(d);
        int sum = 0;
        for (int j = 0; j < 32; ++j) {
            y[i].qs[j] = int8_t(std::nearbyint(x[j] * id));
            sum += y[i].qs[j];
        }
        if constexpr (sizeof(Block) == sizeof(block_q8_1)) {
            if (with_sum) y[i].s = f32_to_fp16(float(sum) * d);
        }
    }
}

int32_t dot_i8(const int8_t* a, const int8_t* b, int n) {
    int32_t s = 0;
    for (int i = 0; i < n; ++i) s += int32_t(a[i]) * int32_t(b[i]);
    return s;
}

float dot_q4_0_q8_0(const block_q4_0* x, const block_q8_0* y, int64_t nb) {
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; ++i) {
        int32_t s = 0;
        for (int j = 0; j < 16; ++j) {
            s += ((x[i].qs[j] & 0x0f) - 8) * y[i].qs[j];
            s += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
        }
        sum += fp16_to_f32(x[i].d) * fp16_to_f32(y[i].d) * float(s);
    }
    return sum;
}

float dot_q4_1_q8_1(const block_q4_1* x, const block_q8_1* y, int64_t nb) {
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; ++i) {
        int32_t s = 0;
        for (int j = 0; j < 16; ++j) s += (x[i].qs[j] & 0x0f) * y[i].qs[j] + (x[i].qs[j] >> 4) * y[i].qs[j + 16];
        sum += fp16_to_f32(x[i].d) * fp16_to_f32(y[i].d) * float(s) + fp16_to_f32(x[i].m) * fp16_to_f32(y[i].s);
    }
    return sum;
}

int q5_value(const uint8_t qs[16], const uint8_t qh[4], int j) {
    uint32_t h;
    std::memcpy(&h, qh, 4);
    const int nib = j < 16 ? (qs[j] & 0x0f) : (qs[j - 16] >> 4);
    return nib | int((h >> j) & 1u) << 4;
}

float dot_q5_0_q8_0(const block_q5_0* x, const block_q8_0* y, int64_t nb) {
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; ++i) {
        int32_t s = 0;
        for (int j = 0; j < 32; ++j) s += (q5_value(x[i].qs, x[i].qh, j) - 16) * y[i].qs[j];
        sum += fp16_to_f32(x[i].d) * fp16_to_f32(y[i].d) * float(s);
    }
    return sum;
}

float dot_q5_1_q8_1(const block_q5_1* x, const block_q8_1* y, int64_t nb) {
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; ++i) {
        int32_t s = 0;
        for (int j = 0; j < 32; ++j) s += q5_value(x[i].qs, x[i].qh, j) * y[i].qs[j];
        sum += fp16_to_f32(x[i].d) * fp16_to_f32(y[i].d) * float(s) + fp16_to_f32(x[i].m) * fp16_to_f32(y[i].s);
    }
    return sum;
}

float dot_q8_0_q8_0(const block_q8_0* x, const block_q8_0* y, int64_t nb) {
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; ++i) sum += fp16_to_f32(x[i].d) * fp16_to_f32(y[i].d) * float(dot_i8(x[i].qs, y[i].qs, 32));
    return sum;
}

// K-quants against Q8_K: integer sums per group, scaled by the group's integer scale,
// combined with the super-block scales in float (and the mins through the Q8_K group sums).
float dot_q2_K_q8_K(const block_q2_K* x, const block_q8_K* y, int64_t nb) {
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; ++i) {
        int32_t isum = 0, msum = 0;
        for (int g = 0; g < 16; ++g) {
            const int half = g / 8, plane = (g % 8) / 2, part = g % 2;
            const uint8_t* q = x[i].qs + 32 * half + 16 * part;
            int32_t s = 0;
            for (int l = 0; l < 16; ++l) s += ((q[l] >> (2 * plane)) & 3) * y[i].qs[16 * g + l];
            isum += (x[i].scales[g] & 0x0f) * s;
            msum += (x[i].scales[g] >> 4) * y[i].bsums[g];
        }
        sum += y[i].d * fp16_to_f32(x[i].d) * float(isum) - y[i].d * fp16_to_f32(x[i].dmin) * float(msum);
    }
    return sum;
}

float dot_q3_K_q8_K(const block_q3_K* x, const block_q8_K* y, int64_t nb) {
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; ++i) {
        int32_t isum = 0;
        for (int g = 0; g < 16; ++g) {
            const int half = g / 8, plane = (g % 8) / 2, part = g % 2;
            const int low = g < 8 ? (x[i].scales[g] & 0x0f) : (x[i].scales[g - 8] >> 4);
            const int high = (x[i].scales[8 + g % 4] >> (2 * (g / 4))) & 3;
            const int scale = (low | (high << 4)) - 32;
            int32_t s = 0;
            for (int l = 0; l < 16; ++l) {
                const int k = 16 * part + l;
                const int v = ((x[i].qs[32 * half + k] >> (2 * plane)) & 3) - ((x[i].hmask[k] >> (4 * half + plane)) & 1 ? 0 : 4);
                s += v * y[i].qs[16 * g + l];
            }
            isum += scale * s;
        }
        sum += y[i].d * fp16_to_f32(x[i].d) * float(isum);
    }
    return sum;
}

// Q4_K and Q5_K share their scales, mins and nibble order; Q5_K adds a fifth bit.
float dot_k_affine_q8_K(uint16_t d, uint16_t dmin, const uint8_t* scales, const uint8_t* qs, const uint8_t* qh,
                        const block_q8_K& y) {
    int32_t isum = 0, msum = 0;
    for (int g = 0; g < 8; ++g) {
        uint8_t sc, m;
        k4_scale_min(g, scales, sc, m);
        const uint8_t* q = qs + 32 * (g / 2);
        const int shift = 4 * (g % 2);
        int32_t s = 0;
        for (int l = 0; l < 32; ++l) {
            const int v = ((q[l] >> shift) & 0x0f) + (qh ? ((qh[l] >> g) & 1) << 4 : 0);
            s += v * y.qs[32 * g + l];
        }
        isum += sc * s;
        msum += m * (y.bsums[2 * g] + y.bsums[2 * g + 1]);
    }
    return y.d * fp16_to_f32(d) * float(isum) - y.d * fp16_to_f32(dmin) * float(msum);
}

float dot_q6_K_q8_K(const block_q6_K* x, const block_q8_K* y, int64_t nb) {
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; ++i) {
        int32_t isum = 0;
        for (int g = 0; g < 16; ++g) {
            int32_t s = 0;
            for (int l = 0; l < 16; ++l) {
                const int e = 16 * g + l;
                const int half = e / 128, r = e % 128, quarter = r / 32, ll = r % 32;
                const uint8_t ql = x[i].ql[64 * half + (r % 64)];
                const int low = r < 64 ? (ql & 0x0f) : (ql >> 4);
                const int high = (x[i].qh[32 * half + ll] >> (2 * quarter)) & 3;
                s += ((low | (high << 4)) - 32) * y[i].qs[e];
            }
            isum += x[i].scales[g] * s;
        }
        sum += y[i].d * fp16_to_f32(x[i].d) * float(isum);
    }
    return sum;
}

}  // namespace

TensorType activation_type(TensorType w) {
    switch (w) {
        case TensorType::Q4_0: case TensorType::Q5_0: case TensorType::Q8_0: return TensorType::Q8_0;
        case TensorType::Q4_1: case TensorType::Q5_1: return TensorType::Q8_1;
        case TensorType::Q2_K: case TensorType::Q3_K: case TensorType::Q4_K: case TensorType::Q5_K:
        case TensorType::Q6_K: return TensorType::Q8_K;
        case TensorType::F16: return TensorType::F16;
        case TensorType::BF16: return TensorType::BF16;
        default: return TensorType::F32;
    }
}

bool weight_type_supported(TensorType w) {
    switch (w) {
        case TensorType::F32: case TensorType::F16: case TensorType::BF16: case TensorType::Q4_0: case TensorType::Q4_1:
        case TensorType::Q5_0: case TensorType::Q5_1: case TensorType::Q8_0: case TensorType::Q2_K: case TensorType::Q3_K:
        case TensorType::Q4_K: case TensorType::Q5_K: case TensorType::Q6_K: return true;
        default: return false;
    }
}

void quantize_activations(TensorType weight, const float* x, int64_t n, std::vector<uint8_t>& out) {
    const TensorType at = activation_type(weight);
    out.resize(size_t(row_bytes(at, uint64_t(n))));
    switch (at) {
        case TensorType::Q8_0: return quantize_q8_acts(x, reinterpret_cast<block_q8_0*>(out.data()), n, false);
        case TensorType::Q8_1: return quantize_q8_acts(x, reinterpret_cast<block_q8_1*>(out.data()), n, true);
        default: return quantize_row(at, x, out.data(), n);
    }
}

float dot_row(TensorType w, const void* row, const void* acts, int64_t n) {
    const int64_t nb = n / traits(w).block_size;
    switch (w) {
        case TensorType::F32: {
            const auto* a = static_cast<const float*>(row);
            const auto* b = static_cast<const float*>(acts);
            float s = 0.0f;
            for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
            return s;
        }
        case TensorType::F16:
        case TensorType::BF16: {
            const auto* a = static_cast<const uint16_t*>(row);
            const auto* b = static_cast<const uint16_t*>(acts);
            const auto cvt = w == TensorType::F16 ? fp16_to_f32 : bf16_to_f32;
            double s = 0.0;
            for (int64_t i = 0; i < n; ++i) s += double(cvt(a[i]) * cvt(b[i]));
            return float(s);
        }
        case TensorType::Q4_0: return dot_q4_0_q8_0(static_cast<const block_q4_0*>(row), static_cast<const block_q8_0*>(acts), nb);
        case TensorType::Q4_1: return dot_q4_1_q8_1(static_cast<const block_q4_1*>(row), static_cast<const block_q8_1*>(acts), nb);
        case TensorType::Q5_0: return dot_q5_0_q8_0(static_cast<const block_q5_0*>(row), static_cast<const block_q8_0*>(acts), nb);
        case TensorType::Q5_1: return dot_q5_1_q8_1(static_cast<const block_q5_1*>(row), static_cast<const block_q8_1*>(acts), nb);
        case TensorType::Q8_0: return dot_q8_0_q8_0(static_cast<const block_q8_0*>(row), static_cast<const block_q8_0*>(acts), nb);
        case TensorType::Q2_K: return dot_q2_K_q8_K(static_cast<const block_q2_K*>(row), static_cast<const block_q8_K*>(acts), nb);
        case TensorType::Q3_K: return dot_q3_K_q8_K(static_cast<const block_q3_K*>(row), static_cast<const block_q8_K*>(acts), nb);
        case TensorType::Q4_K: {
            const auto* x = static_cast<const block_q4_K*>(row);
            const auto* y = static_cast<const block_q8_K*>(acts);
            float s = 0.0f;
            for (int64_t i = 0; i < nb; ++i) s += dot_k_affine_q8_K(x[i].d, x[i].dmin, x[i].scales, x[i].qs, nullptr, y[i]);
            return s;
        }
        case TensorType::Q5_K: {
            const auto* x = static_cast<const block_q5_K*>(row);
            const auto* y = static_cast<const block_q8_K*>(acts);
            float s = 0.0f;
            for (int64_t i = 0; i < nb; ++i) s += dot_k_affine_q8_K(x[i].d, x[i].dmin, x[i].scales, x[i].qs, x[i].qh, y[i]);
            return s;
        }
        case TensorType::Q6_K: return dot_q6_K_q8_K(static_cast<const block_q6_K*>(row), static_cast<const block_q8_K*>(acts), nb);
        default: RILL_FAIL("no dot product for weight type %s", std::string(type_name(w)).c_str());
    }
}

void matvec(TensorType w, const void* W, int64_t rows, int64_t cols, const float* x, float* y) {
    std::vector<uint8_t> acts;
    const void* a = x;
    if (activation_type(w) != TensorType::F32) {
        quantize_activations(w, x, cols, acts);
        a = acts.data();
    }
    const uint64_t rb = row_bytes(w, uint64_t(cols));
    const auto* base = static_cast<const uint8_t*>(W);
    for (int64_t r = 0; r < rows; ++r) y[r] = dot_row(w, base + uint64_t(r) * rb, a, cols);
}

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += double(x[i] * x[i]);
    const float mean = float(sum / double(n));
    const float scale = 1.0f / std::sqrt(mean + eps);
    for (int64_t i = 0; i < n; ++i) y[i] = w ? (x[i] * scale) * w[i] : x[i] * scale;
}

void l2_norm(float* x, int64_t n, float eps) {
    // As llama.cpp: an RMS norm with eps/n, then scaled by 1/sqrt(n).
    rms_norm(x, nullptr, x, n, eps / float(n));
    const float s = 1.0f / std::sqrt(float(n));
    for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

float softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

void softmax(float* x, int64_t n) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        x[i] = std::exp(x[i] - mx);
        sum += double(x[i]);
    }
    const float inv = float(1.0 / sum);
    for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void rope(float* head, int n_rot, int pos, float freq_base, bool neox, const float* freq_factors) {
    // The angle of pair i is pos * base^(-2i/n_rot), built by repeated multiplication as ggml does.
    const float theta_scale = std::pow(freq_base, -2.0f / float(n_rot));
    float theta = float(pos);
    for (int i = 0; i < n_rot / 2; ++i, theta *= theta_scale) {
        const float t = freq_factors ? theta / freq_factors[i] : theta;
        const float c = std::cos(t), s = std::sin(t);
        const int a = neox ? i : 2 * i, b = neox ? i + n_rot / 2 : 2 * i + 1;
        const float x0 = head[a], x1 = head[b];
        head[a] = x0 * c - x1 * s;
        head[b] = x0 * s + x1 * c;
    }
}

void attention_head(const float* q, const float* k, const float* v, int64_t n_kv, int64_t head_dim, int64_t stride,
                    float scale, float* scores, float* out) {
    for (int64_t t = 0; t < n_kv; ++t) {
        float s = 0.0f;
        for (int64_t i = 0; i < head_dim; ++i) s += q[i] * k[t * stride + i];
        scores[t] = s * scale;
    }
    softmax(scores, n_kv);
    for (int64_t i = 0; i < head_dim; ++i) out[i] = 0.0f;
    for (int64_t t = 0; t < n_kv; ++t)
        for (int64_t i = 0; i < head_dim; ++i) out[i] += scores[t] * v[t * stride + i];
}

void conv1d_causal_step(float* state, const float* x, const float* w, int64_t channels, int K, float* out) {
    for (int64_t c = 0; c < channels; ++c) {
        float s = 0.0f;
        for (int k = 0; k < K - 1; ++k) s += state[int64_t(k) * channels + c] * w[c * K + k];
        s += x[c] * w[c * K + K - 1];
        out[c] = s;
    }
    if (K > 1) {
        std::memmove(state, state + channels, sizeof(float) * size_t(channels) * size_t(K - 2));
        std::memcpy(state + int64_t(K - 2) * channels, x, sizeof(float) * size_t(channels));
    }
}

void delta_rule_step(float* S, const float* q, const float* k, const float* v, float g, float beta, int64_t dk,
                     int64_t dv, float* out) {
    const float decay = std::exp(g);
    for (int64_t j = 0; j < dv; ++j) {
        float* col = S + j * dk;
        float sk = 0.0f;
        for (int64_t i = 0; i < dk; ++i) {
            col[i] *= decay;
            sk += col[i] * k[i];
        }
        const float d = (v[j] - sk) * beta;
        float o = 0.0f;
        for (int64_t i = 0; i < dk; ++i) {
            col[i] += k[i] * d;
            o += col[i] * q[i];
        }
        out[j] = o;
    }
}

}  // namespace rill
