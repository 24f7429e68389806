#include "engine/exec/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <memory>

namespace nibble {

ThreadPool::ThreadPool(int num_threads) : num_threads_(std::max(1, num_threads)) {
  for (int i = 1; i < num_threads_; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::worker_loop() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn,
                              int64_t grain) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  int64_t chunks = std::min<int64_t>(num_threads_, (n + grain - 1) / grain);
  if (chunks <= 1) {
    fn(0, n);
    return;
  }
  // Work is handed out chunk by chunk from a shared counter, so the caller can finish the job
  // alone even if every worker is busy with another parallel_for (nested or concurrent calls).
  struct Job {
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> done{0};
    std::mutex mutex;
    std::condition_variable cv;
    std::exception_ptr error;
  };
  auto job = std::make_shared<Job>();
  int64_t per_chunk = (n + chunks - 1) / chunks;
  auto run_chunks = [job, &fn, n, chunks, per_chunk] {
    for (int64_t c; (c = job->next.fetch_add(1)) < chunks;) {
      try {
        int64_t begin = c * per_chunk;
        int64_t end = std::min(n, begin + per_chunk);
        if (begin < end) fn(begin, end);
      } catch (...) {
        std::lock_guard<std::mutex> lock(job->mutex);
        if (!job->error) job->error = std::current_exception();
      }
      if (job->done.fetch_add(1) + 1 == chunks) {
        std::lock_guard<std::mutex> lock(job->mutex);
        job->cv.notify_all();
      }
    }
  };
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (int64_t i = 1; i < chunks; ++i) queue_.push_back(run_chunks);
  }
  cv_.notify_all();
  run_chunks();
  std::unique_lock<std::mutex> lock(job->mutex);
  job->cv.wait(lock, [&] { return job->done.load() == chunks; });
  if (job->error) std::rethrow_exception(job->error);
}

}  // namespace nibble
