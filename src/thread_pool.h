// One persistent pool of worker threads, created once per engine. run() hands every thread
// the same job (thread 0 is the caller) and returns when all have finished it. Workers spin
// briefly between jobs (a decode step issues hundreds of small jobs) and then sleep.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace rill {

class ThreadPool {
public:
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return n_threads_; }
    // Calls job(i, size()) on every thread i; not re-entrant.
    void run(const std::function<void(int, int)>& job);
    // Threads to use by default: the hardware's count (1 if unknown).
    static int default_threads();

private:
    void worker(int index);

    int n_threads_;
    std::vector<std::thread> threads_;
    const std::function<void(int, int)>* job_ = nullptr;
    std::atomic<uint32_t> generation_{0};
    std::atomic<int> pending_{0};
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::condition_variable wake_;
};

}  // namespace rill
