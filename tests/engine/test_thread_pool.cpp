// engine/exec/thread_pool.h: how work is cut into chunks, that every item runs exactly once
// (also from nested and concurrent calls), and that errors reach the caller.
#include <doctest/doctest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "engine/exec/thread_pool.h"

using nibble::ThreadPool;

TEST_CASE("work is cut into several chunks per thread, none below the grain") {
  // More chunks than threads, so one slow thread delays only the chunk it holds.
  CHECK(ThreadPool::chunk_size(64, 1, 2) == 64 / (2 * ThreadPool::kChunksPerThread));
  CHECK(ThreadPool::chunk_size(8, 1, 2) == 1);
  CHECK(ThreadPool::chunk_size(3, 1, 2) == 1);
  CHECK(ThreadPool::chunk_size(100, 30, 2) >= 30);
  CHECK(ThreadPool::chunk_size(10, 50, 4) == 10);  // less than one grain: one chunk
  CHECK(ThreadPool::chunk_size(1000, 1, 1) == 1000 / ThreadPool::kChunksPerThread);
}

TEST_CASE("parallel_for covers every item exactly once") {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 2, 7, 8, 9, 100, 1001}) {
      for (int64_t grain : {1, 3, 64}) {
        CAPTURE(threads);
        CAPTURE(n);
        CAPTURE(grain);
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::atomic<int> ranges{0}, empty_ranges{0};
        pool.parallel_for(n, [&](int64_t begin, int64_t end) {
          empty_ranges += begin >= end;
          ++ranges;
          for (int64_t i = begin; i < end; ++i) ++hits[size_t(i)];
        }, grain);
        int wrong = 0;
        for (auto& h : hits) wrong += h.load() != 1;
        CHECK(wrong == 0);
        CHECK(empty_ranges.load() == 0);
        const int64_t per_chunk = ThreadPool::chunk_size(n, grain, threads);
        CHECK(ranges.load() == (threads == 1 ? 1 : (n + per_chunk - 1) / per_chunk));
      }
    }
  }
}

TEST_CASE("nested and concurrent parallel_for calls all complete") {
  ThreadPool pool(3);
  std::atomic<int64_t> total{0};
  auto nested = [&] {
    pool.parallel_for(6, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        pool.parallel_for(10, [&](int64_t b, int64_t e) { total += e - b; });
    });
  };
  std::thread other(nested);
  nested();
  other.join();
  CHECK(total.load() == 2 * 6 * 10);
}

TEST_CASE("an exception in a chunk reaches the caller after every chunk finished") {
  ThreadPool pool(2);
  std::atomic<int> finished{0};
  CHECK_THROWS_AS(pool.parallel_for(16, [&](int64_t begin, int64_t) {
    if (begin == 0) throw std::runtime_error("chunk failed");
    ++finished;
  }), std::runtime_error);
  CHECK(finished.load() == 16 / ThreadPool::chunk_size(16, 1, 2) - 1);
  // The pool still works afterwards.
  std::atomic<int> items{0};
  pool.parallel_for(5, [&](int64_t b, int64_t e) { items += int(e - b); });
  CHECK(items.load() == 5);
}
