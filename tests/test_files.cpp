// tests/test_files.cpp — whole-file reads and atomic writes (nmsnn/files.hpp).
//
// The atomic-write tests kill a writer in the middle of a write and check what it leaves: the old
// file intact, and no temporary (O_TMPFILE) or one that the next write removes (named fallback).
#include <gtest/gtest.h>

#include "temp_dir.hpp"

#include "safe_message.hpp"
#include "throws_with.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iterator>
#include <string>
#include <vector>

#include "nmsnn/error.hpp"
#include "nmsnn/files.hpp"

namespace fs = std::filesystem;

class Files : public TempDirTest {};

TEST_F(Files, WriteAndReadBack) {
  const std::string target = path("a.bin");
  const std::string bytes("x\0y\xff", 4);
  nmsnn::write_file_atomic(target, bytes);
  EXPECT_EQ(nmsnn::read_file(target), bytes);
  nmsnn::write_file_atomic(target, "");
  EXPECT_EQ(nmsnn::read_file(target), "");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

TEST_F(Files, ErrorsNameThePath) {
  const std::string missing = path("missing.bin");
  EXPECT_TRUE(
      throws_with([&] { nmsnn::read_file(missing); }, {missing, "cannot open for reading"}));
  const std::string nowhere = (dir / "no-dir" / "x.bin").string();
  EXPECT_TRUE(throws_with([&] { nmsnn::write_file_atomic(nowhere, "x"); },
                          {nowhere, "cannot create a temporary file"}));
  EXPECT_TRUE(throws_with([&] { nmsnn::write_file_atomic(dir.string() + "/", "x"); },
                          {"the path names a directory"}));
}

// ---- atomic writes: what a crash leaves behind ----

namespace {

std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// A pid that is certainly not running: a child that has exited and been reaped.
pid_t dead_pid() {
  const pid_t pid = fork();
  if (pid == 0) _exit(0);
  int status = 0;
  waitpid(pid, &status, 0);
  return pid;
}

// Forks a child that writes `size` bytes to `target` (through a named temporary when `named`) and
// SIGKILLs it as soon as a file it has open in `dir`, other than the target, holds data: that is,
// in the middle of the write, before the rename. True when the child died of that SIGKILL.
bool kill_mid_write(const fs::path& dir, const std::string& target, size_t size, bool named) {
  const pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    // The lowest priority lets the watching parent run while the child writes, even on a busy
    // machine, so the kill lands well before the write could finish.
    if (nice(19) == -1) _exit(2);
    const std::string bytes(size, 'n');
    try {
      named ? nmsnn::detail::write_file_atomic_named(target, bytes)
            : nmsnn::write_file_atomic(target, bytes);
    } catch (...) {
    }
    _exit(0);
  }
  // The child's descriptors show where it writes: "<dir>/#123 (deleted)" for an O_TMPFILE file,
  // "<dir>/.<name>.tmp.<pid>.<n>" for a named one.
  const std::string fds = "/proc/" + std::to_string(pid) + "/fd";
  const std::string inside = fs::canonical(dir).string() + "/";
  const std::string final_name = inside + fs::path(target).filename().string();
  bool killed = false;
  const auto start = std::chrono::steady_clock::now();
  while (!killed && std::chrono::steady_clock::now() - start < std::chrono::seconds(30)) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return false;  // finished before it was caught
    DIR* d = opendir(fds.c_str());
    for (const dirent* e; d && !killed && (e = readdir(d));) {
      const std::string fd = fds + "/" + e->d_name;
      char link[4096];
      const ssize_t n = readlink(fd.c_str(), link, sizeof link - 1);
      if (n <= 0) continue;
      const std::string where(link, size_t(n));
      struct stat st {};
      if (where.rfind(inside, 0) == 0 && where != final_name && stat(fd.c_str(), &st) == 0 &&
          st.st_size > 0 && size_t(st.st_size) < size) {
        killed = kill(pid, SIGKILL) == 0;
      }
    }
    if (d) closedir(d);
    if (!killed) usleep(100);  // leave the child the CPU to make progress
  }
  if (!killed) kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  return killed && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

// Whether `dir` takes O_TMPFILE files, so that a killed writer leaves nothing at all.
bool supports_unnamed_files(const fs::path& dir) {
#ifdef O_TMPFILE
  const int fd = open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  close(fd);
  return true;
#else
  (void)dir;
  return false;
#endif
}

constexpr size_t kBig = size_t(128) << 20;  // large enough that the kill lands mid-write

}  // namespace

TEST_F(Files, KillDuringAWriteLeavesTheOldFileAndNoTemporary) {
  const std::string target = path("model.bin");
  nmsnn::write_file_atomic(target, "old model");
  ASSERT_TRUE(kill_mid_write(dir, target, kBig, false));
  EXPECT_EQ(nmsnn::read_file(target), "old model");
  if (supports_unnamed_files(dir)) {
    // The new bytes were in a file without a name: the kernel freed it with the process.
    EXPECT_EQ(listing(dir), std::vector<std::string>{"model.bin"});
  }
  nmsnn::write_file_atomic(target, "new model");
  EXPECT_EQ(nmsnn::read_file(target), "new model");
  EXPECT_EQ(listing(dir), std::vector<std::string>{"model.bin"});
}

// Where O_TMPFILE is missing the data goes to a named temporary, which a kill leaves behind; the
// next write to the same target removes it.
TEST_F(Files, TheNextWriteRemovesWhatAKilledNamedWriteLeft) {
  const std::string target = path("model.bin");
  nmsnn::write_file_atomic(target, "old model");
  ASSERT_TRUE(kill_mid_write(dir, target, kBig, true));
  EXPECT_EQ(nmsnn::read_file(target), "old model");
  const std::vector<std::string> left = listing(dir);
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].rfind(".model.bin.tmp.", 0), 0u) << left[0];
  EXPECT_GT(fs::file_size(dir / left[0]), 0u);
  nmsnn::write_file_atomic(target, "new model");
  EXPECT_EQ(nmsnn::read_file(target), "new model");
  EXPECT_EQ(listing(dir), std::vector<std::string>{"model.bin"});
}

// Only temporaries of this target whose process is gone are removed: a live writer's (this
// process's), another target's, and names that merely look similar stay.
TEST_F(Files, StaleTemporariesOfDeadWritersOnlyAreRemoved) {
  const std::string dead = std::to_string(dead_pid());
  const std::string alive = std::to_string(getpid());
  const std::vector<std::string> stale = {".t.json.tmp." + dead + ".0",
                                          ".t.json.tmp-" + dead + "-3-123456"};  // older format
  const std::vector<std::string> kept = {
      ".t.json.tmp." + alive + ".7",       // a writer that is still running
      ".u.json.tmp." + dead + ".0",        // another target
      ".t.json.tmp." + dead + ".x",        // not a temporary's name
      ".t.json.tmp." + dead + ".5.tmp.1",  // the temporary of a target "t.json.tmp.<pid>.5"
      "t.json.tmp." + dead + ".0",         // not hidden: a user's file
  };
  for (const auto& names : {stale, kept}) {
    for (const std::string& name : names) nmsnn::write_file_atomic(path(name), "x");
  }
  nmsnn::write_file_atomic(path("t.json"), "1");
  std::vector<std::string> expected = kept;
  expected.push_back("t.json");
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(listing(dir), expected);
}

// A path that is one long name still gets a temporary name within the file system's limit.
TEST_F(Files, LongFileNames) {
  const std::string name(250, 'n');
  nmsnn::write_file_atomic(path(name), "a");
  nmsnn::detail::write_file_atomic_named(path(name), "b");
  EXPECT_EQ(nmsnn::read_file(path(name)), "b");
  EXPECT_EQ(listing(dir), std::vector<std::string>{name});
}

// Paths in messages are quoted like any user text.
TEST_F(Files, PathsInMessagesAreQuoted) {
  const std::string odd = path("no\ndir") + "/x\x1b[31m.json";
  EXPECT_TRUE(throws_safe_line([&] { nmsnn::write_file_atomic(odd, "x"); },
                               {"no\\ndir/x\\x1b[31m.json'", "cannot create a temporary file"}));
  EXPECT_TRUE(throws_safe_line([&] { nmsnn::read_file(odd); },
                               {"no\\ndir/x\\x1b[31m.json': cannot open for reading"}));
}
