#include "src/thread_pool.h"

#include "rill/error.h"

namespace rill {
namespace {
// Spins before sleeping: about the gap between two jobs of one decode step, so that workers
// stay awake within a step and sleep between tokens.
constexpr int kSpins = 1 << 17;
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads) {
    if (n_threads < 1 || n_threads > 256) RILL_FAIL("thread count %d is out of range (1..256)", n_threads);
    threads_.reserve(size_t(n_threads - 1));
    try {
        for (int i = 1; i < n_threads; ++i) threads_.emplace_back([this, i] { worker(i); });
    } catch (const std::system_error& e) {
        stop_ = true;
        wake_.notify_all();
        for (auto& t : threads_) t.join();
        RILL_FAIL("cannot start %d threads: %s", n_threads, e.what());
    }
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
        generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
}

int ThreadPool::default_threads() {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : int(n);
}

void ThreadPool::run(const std::function<void(int, int)>& job) {
    if (n_threads_ == 1) return job(0, 1);
    job_ = &job;
    pending_.store(n_threads_ - 1, std::memory_order_relaxed);
    {
        // Under the lock, so that a worker between its last check and its wait cannot miss it.
        std::lock_guard<std::mutex> lock(mutex_);
        generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    job(0, n_threads_);
    while (pending_.load(std::memory_order_acquire) != 0) {
    }
}

void ThreadPool::worker(int index) {
    uint32_t seen = 0;
    for (;;) {
        uint32_t g = generation_.load(std::memory_order_acquire);
        for (int spin = 0; g == seen && spin < kSpins; ++spin) g = generation_.load(std::memory_order_acquire);
        if (g == seen) {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
            g = generation_.load(std::memory_order_acquire);
        }
        seen = g;
        if (stop_.load(std::memory_order_acquire)) return;
        (*job_)(index, n_threads_);
        pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
}

}  // namespace rill
