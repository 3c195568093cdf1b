// cpu/thread_pool.hpp — a fixed set of worker threads running indexed tasks.
//
// parallel_for(n, fn) calls fn(task, worker) for task = 0 .. n-1, spread over the workers, and
// returns when all are done. Results must not depend on which worker ran a task: the CPU engine
// splits work into a fixed number of tasks, independent of the thread count, so one seed gives
// bit-identical results on any machine size.
//
// When the threads cannot all be started (a container's process limit, memory for their stacks),
// the constructor stops and joins the ones it started and throws nmsnn::Error saying how many it
// managed: it does not quietly run with fewer threads than asked for.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace nmsnn::cpu {

// More threads than any machine this library targets has cores: a request above it is a mistake.
constexpr int kMaxThreads = 4096;

class ThreadPool {
 public:
  // Starts one thread; the default is std::thread. Tests pass one that fails, to check cleanup.
  using StartThread = std::function<std::thread(std::function<void()>)>;

  // threads <= 0: one per hardware thread; the calling thread counts as one of them.
  explicit ThreadPool(int threads, const StartThread& start = nullptr);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }  // the calling thread works too

  // Runs fn(task, worker) for every task in [0, tasks); worker is in [0, size()). The first
  // exception thrown by a task is rethrown here after all tasks have stopped.
  void parallel_for(int tasks, const std::function<void(int task, int worker)>& fn);

 private:
  void worker_loop(int worker);
  void stop_workers();  // wakes every worker with stop_ set and joins it
  void run_tasks(int worker);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int, int)>* job_ = nullptr;
  int tasks_ = 0, next_task_ = 0, active_ = 0;
  long generation_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace nmsnn::cpu
