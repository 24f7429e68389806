#include "engine/exec/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <exception>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace nibble {
namespace {

// How long an idle thread polls for new work before blocking; covers the gap between two ops
// (it yields between bursts, so a thread that holds the work on an oversubscribed core still
// runs). Measured on the 2-core VM, yolov10n at 2 threads, medians: 20 us let the workers sleep
// between ops, and a run after the process had idled 0.1 s (the main job's engines taking
// turns) took 29-32 ms for its first runs instead of 21; 200 us: 20-23 ms from the first run,
// 20.0 ms back to back (20 us: 21.7), and 37.1 ms with another process busy on one core (20
// us: 38.2). An older measurement on another machine had 200 us slower when oversubscribed.
constexpr auto kSpinTime = std::chrono::microseconds(200);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// Polls `ready` for up to kSpinTime; true once it holds. Yields between bursts, so a thread of
// ours that the OS descheduled on this core gets to run.
template <typename Ready>
bool spin_until(Ready&& ready) {
  const auto deadline = std::chrono::steady_clock::now() + kSpinTime;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (ready()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::yield();
  }
}

}  // namespace

// One parallel_for call. Chunks are claimed from `next`; the caller waits until `done` reaches
// `chunks`, so `fn` (owned by the caller) outlives every use.
struct ThreadPool::Job {
  const std::function<void(int64_t, int64_t)>* fn = nullptr;
  int64_t n = 0, chunks = 0, per_chunk = 0;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
  std::mutex mutex;
  std::condition_variable cv;
  std::exception_ptr error;

  void run_chunks() {
    for (int64_t c; (c = next.fetch_add(1)) < chunks;) {
      try {
        const int64_t begin = c * per_chunk;
        (*fn)(begin, std::min(n, begin + per_chunk));
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!error) error = std::current_exception();
      }
      if (done.fetch_add(1) + 1 == chunks) {
        std::lock_guard<std::mutex> lock(mutex);
        cv.notify_all();
      }
    }
  }
};

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

int64_t ThreadPool::chunk_size(int64_t n, int64_t grain, int num_threads) {
  grain = std::max<int64_t>(grain, 1);
  const int64_t max_chunks = std::max<int64_t>(1, int64_t{num_threads} * kChunksPerThread);
  const int64_t chunks = std::clamp<int64_t>(n / grain, 1, max_chunks);
  return (n + chunks - 1) / chunks;
}

std::shared_ptr<ThreadPool::Job> ThreadPool::next_job() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (!queue_.empty()) {
      std::shared_ptr<Job> job = std::move(queue_.front());
      queue_.pop_front();
      queued_.fetch_sub(1, std::memory_order_relaxed);
      return job;
    }
    if (stopping_) return nullptr;
    lock.unlock();
    const bool work_seen = spin_until([this] {
      return queued_.load(std::memory_order_relaxed) > 0;
    });
    lock.lock();
    if (work_seen || !queue_.empty() || stopping_) continue;
    ++sleeping_;
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    --sleeping_;
  }
}

void ThreadPool::worker_loop() {
  while (std::shared_ptr<Job> job = next_job()) job->run_chunks();
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn,
                              int64_t grain) {
  if (n <= 0) return;
  const int64_t per_chunk = chunk_size(n, grain, num_threads_);
  const int64_t chunks = (n + per_chunk - 1) / per_chunk;
  if (num_threads_ <= 1 || chunks <= 1) {
    fn(0, n);
    return;
  }
  // The caller finishes the job alone if every worker is busy elsewhere (nested or concurrent
  // calls): helpers that arrive late find no chunk left and drop the job.
  auto job = std::make_shared<Job>();
  job->fn = &fn;
  job->n = n;
  job->chunks = chunks;
  job->per_chunk = per_chunk;
  const int64_t helpers = std::min<int64_t>(chunks, num_threads_) - 1;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (int64_t i = 0; i < helpers; ++i) queue_.push_back(job);
    queued_.fetch_add(helpers, std::memory_order_relaxed);
    wake = sleeping_ > 0;
  }
  if (wake) cv_.notify_all();
  job->run_chunks();
  if (!spin_until([&] { return job->done.load() == chunks; })) {
    std::unique_lock<std::mutex> lock(job->mutex);
    job->cv.wait(lock, [&] { return job->done.load() == chunks; });
  }
  if (job->error) std::rethrow_exception(job->error);
}

}  // namespace nibble
