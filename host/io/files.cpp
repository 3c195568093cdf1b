// io/files.cpp — reading a whole file, and replacing one atomically (write, fsync, rename).
//
// Plain POSIX calls rather than std::ofstream: the atomic write needs O_TMPFILE, fsync and linkat,
// which iostreams cannot reach, and the errors need errno to say why a write failed.
#include "nmsnn/files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "nmsnn/error.hpp"
#include "nmsnn/limits.hpp"

namespace nmsnn {

using detail::fail;

namespace {
std::string errno_text() { return std::strerror(errno); }
}  // namespace

std::string read_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail(detail::quote(path), ": cannot open for reading: ", errno_text());
  std::string bytes;
  // A regular file's size is known: check it against the memory budget, then read without
  // reallocating. Pipes and the like report no size and just grow the string.
  struct stat st {};
  if (::fstat(::fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    try {
      check_memory("reading " + detail::quote(path), double(st.st_size));
      bytes.reserve(size_t(st.st_size));
    } catch (...) {
      std::fclose(f);
      throw;
    }
  }
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.append(buf, n);
  const bool bad = std::ferror(f);
  std::fclose(f);
  if (bad) fail(detail::quote(path), ": read error");
  return bytes;
}

// ---- atomic writes ----
//
// The new bytes go to a file with no name at all (O_TMPFILE, Linux 3.11+, on most local file
// systems): a process killed while writing leaves nothing behind, because the kernel frees an
// unnamed file when its last descriptor closes. Once the data is on disk the file is linked under
// a temporary name and renamed over the target; rename is what makes the replacement atomic, and
// linkat cannot overwrite. Between those two calls (no I/O in between) a crash leaves the
// temporary ".<file>.tmp.<pid>.<n>"; where O_TMPFILE is not available the whole write happens
// under that name. Either way the next write to the same target removes temporaries whose
// process no longer exists, so at most one crash's leftover is ever seen, and only until then.

namespace {

// File names are limited to 255 bytes; the temporary's adds about 25 to the target's.
constexpr size_t kMaxTempStem = 200;

std::string temp_prefix(const std::string& filename) {
  return "." + filename.substr(0, kMaxTempStem) + ".tmp";
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The pid in a temporary name of `prefix`: ".<file>.tmp.<pid>.<n>", or the older
// ".<file>.tmp-<pid>-<n>-<stamp>"; 0 for any other name. Matching exactly keeps the temporaries of
// a target whose name merely starts the same ("model.bin.tmp.5.x") out of it.
pid_t temp_owner(std::string_view name, const std::string& prefix) {
  if (name.size() <= prefix.size() + 1 || name.compare(0, prefix.size(), prefix) != 0) return 0;
  const char sep = name[prefix.size()];
  if (sep != '.' && sep != '-') return 0;
  std::vector<std::string_view> parts;
  std::string_view rest = name.substr(prefix.size() + 1);
  for (size_t at; (at = rest.find(sep)) != std::string_view::npos; rest.remove_prefix(at + 1)) {
    parts.push_back(rest.substr(0, at));
  }
  parts.push_back(rest);
  if (parts.size() != (sep == '.' ? 2u : 3u)) return 0;
  for (std::string_view part : parts) {
    if (!all_digits(part)) return 0;
  }
  long pid = 0;
  const auto r = std::from_chars(parts[0].data(), parts[0].data() + parts[0].size(), pid);
  return r.ec == std::errc() && pid > 0 && pid <= INT32_MAX ? pid_t(pid) : 0;
}

// Removes the temporaries of `filename` in `dir` whose writer is gone: killed, or crashed, between
// creating its temporary and renaming it. A writer that is alive (even one of another user, which
// kill() reports as EPERM) is left alone. Best effort: a failure here never fails the write.
void remove_stale_temporaries(const std::string& dir, const std::string& filename) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  const std::string prefix = temp_prefix(filename);
  while (const dirent* entry = ::readdir(d)) {
    const pid_t pid = temp_owner(entry->d_name, prefix);
    if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) ::unlinkat(::dirfd(d), entry->d_name, 0);
  }
  ::closedir(d);
}

// A fresh temporary name in `dir`; unique per process and call, and the pid tells a later writer
// whether its owner is still alive.
std::string temp_name(const std::string& dir, const std::string& filename) {
  static std::atomic<unsigned> counter{0};
  return dir + "/" + temp_prefix(filename) + "." + std::to_string(::getpid()) + "." +
         std::to_string(counter++);
}

// Writes all of `bytes` to `fd` and flushes them to disk; false with errno set on failure.
bool write_and_sync(int fd, std::string_view bytes, const char*& step) {
  size_t done = 0;
  step = "write";
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) {
      errno = EIO;
      return false;
    }
    done += size_t(n);
  }
  step = "fsync";
  return ::fsync(fd) == 0;
}

// Renames the complete temporary `tmp` over `path`, then makes the rename itself durable.
void replace_with(const std::string& tmp, const std::string& path, const std::string& dir) {
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = errno_text();
    ::unlink(tmp.c_str());
    fail(detail::quote(path), ": cannot rename the temporary file over it: ", why,
         " (nothing was replaced)");
  }
  // A failure to sync the directory loses nothing already written, so it is ignored.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

// Gives the unnamed file `fd` the name `tmp`. linkat with AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH
// on older kernels; the /proc/self/fd link works for anyone where /proc is mounted.
bool link_unnamed(int fd, const std::string& tmp) {
#ifdef AT_EMPTY_PATH
  if (::linkat(fd, "", AT_FDCWD, tmp.c_str(), AT_EMPTY_PATH) == 0) return true;
  if (errno == EEXIST) return false;
#endif
  const std::string self = "/proc/self/fd/" + std::to_string(fd);
  return ::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, tmp.c_str(), AT_SYMLINK_FOLLOW) == 0;
}

struct Target {
  std::string path, dir, filename;
};

Target split_target(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  if (target.filename().empty())
    fail(detail::quote(path), ": cannot write: the path names a directory");
  return {path, target.has_parent_path() ? target.parent_path().string() : std::string("."),
          target.filename().string()};
}

// The write through an O_TMPFILE file. False when the file system (or the kernel, or a missing
// /proc) does not allow it, before anything visible happened; the caller then uses a named
// temporary. Throws when the write itself fails, which a named temporary would not fix.
bool write_unnamed(const Target& t, std::string_view bytes) {
#ifdef O_TMPFILE
  const int fd = ::open(t.dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
  if (fd < 0) return false;
  const char* step = "";
  if (!write_and_sync(fd, bytes, step)) {
    const std::string why = errno_text();
    ::close(fd);  // frees the unnamed file: nothing to clean up
    fail(detail::quote(t.path), ": ", step, " failed: ", why, " (nothing was replaced)");
  }
  std::string tmp;
  bool linked = false;
  for (int attempt = 0; attempt < 100 && !linked; ++attempt) {
    tmp = temp_name(t.dir, t.filename);  // a name left by a crash of a reused pid: try the next
    linked = link_unnamed(fd, tmp);
    if (!linked && errno != EEXIST) break;
  }
  ::close(fd);  // the data is synced; a close error cannot lose it any more
  if (!linked) return false;
  replace_with(tmp, t.path, t.dir);
  return true;
#else
  (void)t, (void)bytes;
  return false;
#endif
}

}  // namespace

namespace detail {

void write_file_atomic_named(const std::string& path, std::string_view bytes) {
  const Target t = split_target(path);
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    tmp = temp_name(t.dir, t.filename);
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    fail(detail::quote(path), ": cannot create a temporary file in ", detail::quote(t.dir), ": ",
         errno_text());
  }
  const char* step = "";
  if (!write_and_sync(fd, bytes, step)) {
    const std::string why = errno_text();
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(detail::quote(path), ": ", step, " failed: ", why, " (nothing was replaced)");
  }
  if (::close(fd) != 0) {
    const std::string why = errno_text();
    ::unlink(tmp.c_str());
    fail(detail::quote(path), ": close failed: ", why, " (nothing was replaced)");
  }
  replace_with(tmp, path, t.dir);
}

}  // namespace detail

void write_file_atomic(const std::string& path, std::string_view bytes) {
  const Target t = split_target(path);
  remove_stale_temporaries(t.dir, t.filename);
  if (!write_unnamed(t, bytes)) detail::write_file_atomic_named(path, bytes);
}

}  // namespace nmsnn
