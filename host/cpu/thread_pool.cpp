// cpu/thread_pool.cpp — the worker threads behind the CPU engine's parallel loops.
#include "cpu/thread_pool.hpp"

#include <system_error>

#include "nmsnn/error.hpp"

namespace nmsnn::cpu {

ThreadPool::ThreadPool(int threads, const StartThread& start) {
  if (threads > kMaxThreads)
    detail::fail("CPU threads must be in [0, ", kMaxThreads, "], got ", threads);
  if (threads <= 0) threads = int(std::thread::hardware_concurrency());
  if (threads <= 0) threads = 1;
  if (threads > kMaxThreads) threads = kMaxThreads;
  workers_.reserve(size_t(threads - 1));
  try {
    for (int w = 1; w < threads; ++w) {
      auto loop = [this, w] { worker_loop(w); };
      workers_.push_back(start ? start(loop) : std::thread(loop));
    }
  } catch (const std::system_error& e) {
    // The destructor does not run for a half-built object: stop and join the started workers
    // here, or they would wait forever (and their std::thread objects would end the program).
    const int started = size();
    stop_workers();
    detail::fail("cannot start ", threads, " CPU worker threads (started ", started, ": ",
                 e.code().message(), "); use --threads ", started, " or fewer");
  } catch (...) {
    stop_workers();
    throw;
  }
}

ThreadPool::~ThreadPool() { stop_workers(); }

void ThreadPool::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_)
    if (t.joinable()) t.join();
  workers_.clear();
}

void ThreadPool::run_tasks(int worker) {
  for (;;) {
    int task;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (next_task_ >= tasks_ || error_) return;
      task = next_task_++;
    }
    try {
      (*job_)(task, worker);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }
}

void ThreadPool::worker_loop(int worker) {
  long seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      ++active_;
    }
    run_tasks(worker);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --active_;
    }
    done_.notify_all();
  }
}

void ThreadPool::parallel_for(int tasks, const std::function<void(int, int)>& fn) {
  if (tasks <= 0) return;
  if (workers_.empty() || tasks == 1) {
    for (int task = 0; task < tasks; ++task) fn(task, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    tasks_ = tasks;
    next_task_ = 0;
    error_ = nullptr;
    ++generation_;
  }
  wake_.notify_all();
  run_tasks(0);
  std::exception_ptr error;
  {
    // Wait until every task has been taken and every worker that joined this round has left it.
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return active_ == 0 && (next_task_ >= tasks_ || error_); });
    job_ = nullptr;
    error = error_;
    error_ = nullptr;
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace nmsnn::cpu
