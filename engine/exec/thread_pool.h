// A persistent pool of worker threads. parallel_for may be called from several threads at once
// (concurrent Session::run calls share one pool) and from inside a parallel_for (nested calls);
// the calling thread always takes part in the work.
//
// Work is cut into more chunks than threads and claimed one chunk at a time, so a worker that the
// OS deschedules (a loaded machine) delays only the chunk it holds, and uneven chunks balance out.
// Idle workers spin briefly before sleeping: a network runs hundreds of short ops back to back,
// and waking a sleeping thread costs more than many of them take.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace nibble {

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads);  // total threads including the caller; <= 1 means serial
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }
  // Calls fn(begin, end) over disjoint ranges covering [0, n); every range but the last holds at
  // least `grain` items. Returns when all are done; rethrows the first exception a range threw.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1);

  // How many items each range of parallel_for(n, fn, grain) holds (the last may hold fewer):
  // up to kChunksPerThread ranges per thread, none smaller than grain.
  static constexpr int64_t kChunksPerThread = 4;
  static int64_t chunk_size(int64_t n, int64_t grain, int num_threads);

 private:
  struct Job;
  void worker_loop();
  // Takes a queued job, waiting for one; null when the pool is stopping.
  std::shared_ptr<Job> next_job();

  int num_threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;  // one entry per helper a job asks for
  std::atomic<int64_t> queued_{0};          // queue_.size(), read by spinning workers
  int sleeping_ = 0;                        // workers blocked on cv_ (guarded by mutex_)
  bool stopping_ = false;
};

}  // namespace nibble
