// distributed/communicator.cpp — what every Communicator shares (first_error, the timeout), the
// single-process default, and local_group: ranks as threads of one process.
#include "nmsnn/communicator.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <mutex>

#include "nmsnn/error.hpp"

namespace nmsnn {

using detail::fail;

namespace {

double timeout_from_environment() {
  const char* text = std::getenv("NMSNN_COMM_TIMEOUT");
  if (!text || !*text) return 300;
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  if (*end != '\0' || !(v > 0))
    fail("NMSNN_COMM_TIMEOUT must be a number of seconds > 0, got ", detail::quote(text));
  return v;
}

}  // namespace

Communicator::Communicator() : timeout_seconds_(timeout_from_environment()) {}

void Communicator::set_timeout_seconds(double seconds) {
  if (!(seconds > 0)) fail("Communicator: timeout must be > 0 seconds, got ", seconds);
  timeout_seconds_ = seconds;
}

std::string Communicator::first_error(const std::string& error) {
  if (size() == 1) return error.empty() ? "" : "rank 0: " + error;
  // Which ranks failed, then the lowest one's message, its length first.
  std::vector<double> failed(size_t(size()), 0.0);
  failed[size_t(rank())] = error.empty() ? 0.0 : 1.0;
  allreduce_sum(failed.data(), failed.size());
  const auto first = std::find(failed.begin(), failed.end(), 1.0);
  if (first == failed.end()) return "";
  const int root = int(first - failed.begin());
  uint64_t length = rank() == root ? error.size() : 0;
  broadcast(&length, sizeof length, root);
  std::string message = rank() == root ? error : std::string(length, ' ');
  broadcast(message.data(), length, root);
  return "rank " + std::to_string(root) + ": " + message;
}

void Communicator::check(const std::string& error) {
  const std::string message = first_error(error);
  if (!message.empty()) throw CollectiveError(message);
}

Shard shard_of(int batch, int rank, int ranks) {
  if (ranks < 1 || rank < 0 || rank >= ranks || batch < 0)
    fail("shard_of: rank ", rank, " of ", ranks, " with a batch of ", batch);
  Shard s;
  s.first = int(int64_t(batch) * rank / ranks);
  s.count = int(int64_t(batch) * (rank + 1) / ranks) - s.first;
  return s;
}

namespace {

// An integer from the first of `names` set in the environment, or -1.
int environment_int(std::initializer_list<const char*> names) {
  for (const char* name : names) {
    const char* text = std::getenv(name);
    if (!text || !*text) continue;
    char* end = nullptr;
    const long v = std::strtol(text, &end, 10);
    if (*end != '\0' || v < 0 || v > (1 << 30))
      fail("the launcher's ", name, " is ", detail::quote(text), ", not a rank or size");
    return int(v);
  }
  return -1;
}

}  // namespace

// OpenMPI's mpirun, then MPICH's and Intel MPI's (PMI). Slurm's own variables are not read: they
// are also set for a single process inside an allocation.
LaunchEnvironment launch_environment() {
  LaunchEnvironment env;
  const int size = environment_int({"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"});
  if (size < 0) return env;
  env.launched = true;
  env.size = std::max(1, size);
  env.rank = std::max(0, environment_int({"OMPI_COMM_WORLD_RANK", "PMI_RANK"}));
  env.local_rank = std::max(
      0, environment_int({"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID"}));
  return env;
}

// ---- one process -------------------------------------------------------------------------------

namespace {

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "single process"; }
  void allreduce_sum(float*, size_t) override {}
  void allreduce_sum(double*, size_t) override {}
  void broadcast(void*, size_t, int root) override {
    if (root != 0) fail("broadcast: root ", root, " is not a rank of a single process");
  }
  void barrier() override {}
};

}  // namespace

std::shared_ptr<Communicator> single_process() { return std::make_shared<SingleProcess>(); }

// ---- ranks as threads ----------------------------------------------------------------------------

namespace {

// What the ranks of a local group share. A collective is two phases around a generation counter:
// every rank posts its buffer, the last to arrive reduces them in rank order into a shared result,
// and each rank copies the result out before the group may start the next collective.
struct Group {
  explicit Group(int n) : ranks(n), posted(size_t(n), nullptr) {}
  const int ranks;
  std::mutex mutex;
  std::condition_variable changed;
  uint64_t generation = 0;
  int arrived = 0, departed = 0;
  std::vector<const void*> posted;
  std::vector<unsigned char> result;
};

class LocalGroup final : public Communicator {
 public:
  LocalGroup(std::shared_ptr<Group> group, int rank) : group_(std::move(group)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return group_->ranks; }
  std::string name() const override { return "local group"; }

  void allreduce_sum(float* data, size_t n) override { sum(data, n); }
  void allreduce_sum(double* data, size_t n) override { sum(data, n); }
  void broadcast(void* data, size_t bytes, int root) override {
    if (root < 0 || root >= size()) fail("broadcast: root ", root, " is not a rank of ", size());
    collective(data, bytes, [&](Group& g) {
      const auto* from = static_cast<const unsigned char*>(g.posted[size_t(root)]);
      g.result.assign(from, from + bytes);
    });
  }
  void barrier() override {
    collective(nullptr, 0, [](Group& g) { g.result.clear(); });
  }

 private:
  template <class T>
  void sum(T* data, size_t n) {
    collective(data, n * sizeof(T), [n](Group& g) {
      g.result.assign(n * sizeof(T), 0);
      T* out = reinterpret_cast<T*>(g.result.data());
      for (int r = 0; r < g.ranks; ++r) {
        const T* in = static_cast<const T*>(g.posted[size_t(r)]);
        for (size_t i = 0; i < n; ++i) out[i] = r == 0 ? in[i] : out[i] + in[i];
      }
    });
  }

  template <class Reduce>
  void collective(void* data, size_t bytes, Reduce reduce) {
    Group& g = *group_;
    std::unique_lock<std::mutex> lock(g.mutex);
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(timeout_seconds()));
    auto wait = [&](auto ready) {
      if (!g.changed.wait_until(lock, deadline, ready))
        fail("rank ", rank_, " of a local group waited more than ", timeout_seconds(),
             " s for the other ranks (one has stopped or is stuck)");
    };
    // The previous collective's ranks must all have copied its result out.
    wait([&] { return g.departed == 0; });
    const uint64_t generation = g.generation;
    g.posted[size_t(rank_)] = data;
    if (++g.arrived == g.ranks) {
      reduce(g);
      g.arrived = 0;
      g.departed = g.ranks;
      ++g.generation;
      g.changed.notify_all();
    } else {
      wait([&] { return g.generation != generation; });
    }
    if (bytes) std::memcpy(data, g.result.data(), bytes);
    if (--g.departed == 0) g.changed.notify_all();
  }

  std::shared_ptr<Group> group_;
  int rank_;
};

}  // namespace

std::vector<std::shared_ptr<Communicator>> local_group(int ranks) {
  if (ranks < 1) fail("local_group: ranks must be >= 1, got ", ranks);
  auto group = std::make_shared<Group>(ranks);
  std::vector<std::shared_ptr<Communicator>> out;
  for (int r = 0; r < ranks; ++r) out.push_back(std::make_shared<LocalGroup>(group, r));
  return out;
}

}  // namespace nmsnn
