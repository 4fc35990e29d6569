// Matmul kernel throughput by weight format: GB/s of weights read and ms per call, for a
// decode step (1 token) and prefill batches, over a weight set larger than the caches.
// Built natively (the scalar reference kernels) and in both wasm builds:
//   RILL_THREADS=2 node build/wasm-relaxed/rill_kernel_bench.js
// (main takes no arguments: Emscripten 3.1.6 does not find clang-19's main(argc, argv).)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <random>
#include <vector>

#include "kernels/ops.h"
#include "kernels/quant_ref.h"
#include "src/thread_pool.h"

using namespace rill;

namespace {

struct Case {
    const char* name;
    TensorType type;
    SumOrder order;
    WeightLayout layout = WeightLayout::Plain;
};

double seconds_now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// One format: `mats` matrices of rows x cols (together about 96 MB, beyond any cache), each
// multiplied in turn; the best of 12 passes (and their median time).
void run_case(const Case& c, int64_t n_tokens, int64_t rows, int64_t cols, ThreadPool* pool) {
    const uint64_t rb = row_bytes(c.type, uint64_t(cols));
    const uint64_t mat_bytes = rb * uint64_t(rows);
    // RILL_CACHED=1: one matrix, read again and again from the caches (the kernel's compute alone).
    const int mats = std::getenv("RILL_CACHED") ? 1 : int(96e6 / double(mat_bytes)) + 1;
    std::vector<uint8_t> W(mat_bytes * uint64_t(mats));
    WeightLayout layout = c.layout;
    {  // one matrix quantised, then copied (distinct bytes in memory: the caches see every copy)
        std::mt19937 rng(7);
        std::normal_distribution<float> g(0.0f, 1.0f);
        std::vector<float> f(static_cast<size_t>(cols));
        for (int64_t r = 0; r < rows; ++r) {
            for (auto& v : f) v = g(rng);
            quantize_row(c.type, f.data(), W.data() + uint64_t(r) * rb, cols);
        }
        kern::repack(c.layout, c.type, W.data(), rows, cols);
        layout = kern::checked_layout(c.layout, c.type, W.data(), rows, cols);  // as the engine does
        for (int m = 1; m < mats; ++m) std::memcpy(W.data() + mat_bytes * uint64_t(m), W.data(), mat_bytes);
    }
    std::vector<float> X(size_t(cols * n_tokens)), Y(size_t(rows * n_tokens));
    std::mt19937 rng(3);
    std::normal_distribution<float> g(0.0f, 1.0f);
    for (auto& v : X) v = g(rng);
    std::vector<double> times;
    for (int pass = 0; pass < 12; ++pass) {
        const double t0 = seconds_now();
        for (int m = 0; m < mats; ++m)
            kern::matmul(c.type, W.data() + mat_bytes * uint64_t(m), rows, cols, X.data(), Y.data(), n_tokens, c.order, pool, layout);
        times.push_back((seconds_now() - t0) / mats);
    }
    std::sort(times.begin(), times.end());
    const double best = times.front(), median = times[times.size() / 2];
    std::printf("| %-12s | %6lld | %8.3f | %7.2f | %8.1f | %8.3f |\n", c.name, static_cast<long long>(n_tokens), best * 1e3,
                double(mat_bytes) / best / 1e9, double(rows * cols * n_tokens) / best / 1e9, median * 1e3);
}

}  // namespace

int main() {
    const char* env = std::getenv("RILL_THREADS");
    const int threads = env ? std::atoi(env) : 1;
    ThreadPool pool(threads);
    // RILL_GROUP_DOT=i32|i16 forces the Rows4 kernels' group-dot form (default: timed, the faster).
    const char* form = std::getenv("RILL_GROUP_DOT");
    if (form) kern::set_group_dot_form(std::string(form) == "i16" ? kern::GroupDotForm::I16 : kern::GroupDotForm::I32);
    const char* only = std::getenv("RILL_ONLY");  // a substring of the format names to run
    // RILL_SHAPE=rows,cols: another matrix shape (a model's: ffn_down of a 0.8B model is 1024,3584).
    int64_t rows = 3584, cols = 1024;
    if (const char* s = std::getenv("RILL_SHAPE")) {
        long long r = 0, k = 0;
        if (std::sscanf(s, "%lld,%lld", &r, &k) != 2 || r <= 0 || k <= 0 || k % 32 != 0) {
            std::fprintf(stderr, "RILL_SHAPE=%s: expected rows,cols with cols a multiple of 32\n", s);
            return 1;
        }
        rows = r, cols = k;
    }
    std::printf("kernels: %s, group dots: %s, threads: %d, matrix %lld x %lld\n\n", kern::kernel_set(), kern::group_dot_form(), threads,
                static_cast<long long>(rows), static_cast<long long>(cols));
    std::printf("| format     | tokens | ms/call  | GB/s    | GMAC/s   | median ms |\n|---|---|---|---|---|---|\n");
    // The layout the engine loads a lane-order matrix in (Q6Bytes for Q6_K; the strict build: Paired16 for Q8_0, Q5_K, IQ4_XS).
    const auto preferred = [&](TensorType t) { return kern::preferred_layout(t, rows, cols, SumOrder::Lanes); };
    const Case cases[] = {
        {"Q4_0 rows4", TensorType::Q4_0, SumOrder::Rows, WeightLayout::Rows4},
        {"Q4_0 rows", TensorType::Q4_0, SumOrder::Rows}, {"Q4_0 lanes", TensorType::Q4_0, SumOrder::Lanes},
        {"Q8_0", TensorType::Q8_0, SumOrder::Lanes, preferred(TensorType::Q8_0)},
        {"Q4_K rows", TensorType::Q4_K, SumOrder::Rows},
        {"Q4_K rows4", TensorType::Q4_K, SumOrder::Rows, WeightLayout::Rows4},
        {"Q5_K", TensorType::Q5_K, SumOrder::Lanes, preferred(TensorType::Q5_K)},
        {"Q6_K", TensorType::Q6_K, SumOrder::Lanes, preferred(TensorType::Q6_K)},
        {"IQ4_NL rows4", TensorType::IQ4_NL, SumOrder::Rows, WeightLayout::Rows4},
        {"IQ4_NL lanes", TensorType::IQ4_NL, SumOrder::Lanes}, {"IQ4_XS", TensorType::IQ4_XS, SumOrder::Lanes, preferred(TensorType::IQ4_XS)},
        {"Q5_0", TensorType::Q5_0, SumOrder::Lanes, WeightLayout::Q5Bits}, {"Q4_1", TensorType::Q4_1, SumOrder::Lanes},
        {"Q5_1", TensorType::Q5_1, SumOrder::Lanes, WeightLayout::Q5Bits},
    };
    std::vector<int64_t> counts = {1, 16, 64};  // RILL_TOKENS=1,2,3: other token counts (a verify batch's)
    if (const char* t = std::getenv("RILL_TOKENS")) {
        counts.clear();
        for (const char* p = t; *p;) {
            char* end = nullptr;
            counts.push_back(std::strtoll(p, &end, 10));
            p = *end == ',' ? end + 1 : end;
            if (end == p && *p) break;
        }
    }
    for (const Case& c : cases)
        if ((!only || std::strstr(c.name, only)) && cols % traits(c.type).block_size == 0)
            for (int64_t n : counts) run_case(c, n, rows, cols, threads > 1 ? &pool : nullptr);
    return 0;
}
