// test_thread_pool.cpp — the CPU engine's worker threads: every task runs once, and a pool whose
// threads cannot all be started fails with one clear error instead of hanging.
//
// The failure cases run in a forked child that the parent waits for with a timeout, because the
// bug they guard against is a hang (workers left waiting while the constructor throws).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "cpu/thread_pool.hpp"
#include "nmsnn/error.hpp"

namespace {

using nmsnn::cpu::ThreadPool;

struct ChildResult {
  bool finished = false;  // exited within the timeout
  int status = -1;        // exit status when it did
  std::string message;    // what it wrote to the pipe
};

// Runs `body` in a forked child; what it returns is written back, its exit status is 0 when it
// returns normally. The child is killed after `timeout_s`.
ChildResult in_child(const std::function<std::string()>& body, int timeout_s = 30) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  const pid_t pid = fork();
  if (pid < 0) return {};
  if (pid == 0) {
    close(fds[0]);
    const std::string out = body();
    if (write(fds[1], out.data(), out.size()) < 0) _exit(3);
    _exit(0);
  }
  close(fds[1]);
  ChildResult r;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      close(fds[0]);
      return r;  // finished = false: it hung
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  char buf[4096];
  while (true) {
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    r.message.append(buf, size_t(n));
  }
  close(fds[0]);
  r.finished = true;
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace

TEST(ThreadPool, RunsEveryTaskOnceOnEveryPoolSize) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    std::vector<std::atomic<int>> runs(101);
    std::atomic<bool> bad_worker{false};
    pool.parallel_for(101, [&](int task, int worker) {
      ++runs[task];
      if (worker < 0 || worker >= threads) bad_worker = true;
    });
    for (int t = 0; t < 101; ++t) EXPECT_EQ(runs[t].load(), 1) << "task " << t;
    EXPECT_FALSE(bad_worker);
  }
}

TEST(ThreadPool, TooManyThreadsAreRefused) {
  try {
    ThreadPool pool(nmsnn::cpu::kMaxThreads + 1);
    FAIL() << "no error";
  } catch (const nmsnn::Error& e) {
    EXPECT_NE(std::string(e.what()).find("CPU threads must be in [0, 4096], got 4097"),
              std::string::npos)
        << e.what();
  }
}

// Three workers start, the fourth cannot: the constructor must stop and join the three, then
// throw; before the fix it threw with them still waiting (a hang or std::terminate).
TEST(ThreadPool, FailsCleanlyWhenAThreadCannotStart) {
  const ChildResult r = in_child([] {
    int started = 0;
    const ThreadPool::StartThread start = [&](std::function<void()> fn) {
      if (started == 3)
        throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again));
      ++started;
      return std::thread(std::move(fn));
    };
    try {
      ThreadPool pool(8, start);
      return std::string("no error");
    } catch (const nmsnn::Error& e) {
      return std::string(e.what());
    }
  });
  ASSERT_TRUE(r.finished) << "the child hung";
  EXPECT_EQ(r.status, 0) << r.message;
  EXPECT_EQ(r.message,
            "cannot start 8 CPU worker threads (started 4: Resource temporarily unavailable); "
            "use --threads 4 or fewer");
}

// The real limit: a process limit of 1 leaves no room for a single worker thread. (RLIMIT_NPROC
// does not bind root, so a root child first becomes an unprivileged user.)
TEST(ThreadPool, FailsCleanlyUnderAProcessLimit) {
  const ChildResult r = in_child([] {
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
      return std::string("cannot drop root");
    const rlimit one{1, 1};
    if (setrlimit(RLIMIT_NPROC, &one) != 0) return std::string("cannot set RLIMIT_NPROC");
    try {
      ThreadPool pool(16);
      return std::string("no error");
    } catch (const nmsnn::Error& e) {
      return std::string(e.what());
    }
  });
  ASSERT_TRUE(r.finished) << "the child hung";
  EXPECT_EQ(r.status, 0) << r.message;
  EXPECT_EQ(r.message.rfind("cannot start 16 CPU worker threads (started 1: ", 0), 0u) << r.message;
  EXPECT_NE(r.message.find("; use --threads 1 or fewer"), std::string::npos) << r.message;
}
