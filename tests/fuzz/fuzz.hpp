// tests/fuzz/fuzz.hpp — what every fuzz target shares: the rule for an acceptable outcome, and an
// in-memory file for the readers that take a path.
//
// A reader given any bytes may return, or throw nmsnn::Error whose message keeps the library's
// promise (one line, user text quoted: no control characters, valid UTF-8, a readable length).
// Everything else is a finding: a crash, a sanitizer report, a hang, another exception (it
// escapes LLVMFuzzerTestOneInput and aborts the process), or a message that breaks the promise
// (check_message aborts, so libFuzzer saves the input like any crash).
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "nmsnn/error.hpp"
#include "nmsnn/json.hpp"
#include "nmsnn/limits.hpp"

namespace fuzz {

// Longer than any message needs: a few quoted values (each cut to 80 bytes) plus context.
constexpr size_t kMaxMessageBytes = 2000;

// Once per process: a memory budget well under the fuzzer's -rss_limit_mb (2048), so a size that
// the library accepts can never exhaust the machine; a file that needs more must be refused with a
// clear error before the allocation, which is exactly what is being tested.
inline void init() {
  static const bool done = [] {
    nmsnn::set_memory_limit(int64_t(256) << 20);
    return true;
  }();
  (void)done;
}

[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "fuzz finding: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// The message of an expected nmsnn::Error: one line, nothing a terminal would interpret, valid
// UTF-8 (detail::quote escapes any other bytes), not empty, not a wall of text.
inline void check_message(const nmsnn::Error& e) {
  const std::string_view m = e.what();
  if (m.empty()) finding("an nmsnn::Error with an empty message");
  if (m.size() > kMaxMessageBytes)
    finding("error message of " + std::to_string(m.size()) + " bytes: " +
            nmsnn::detail::quote(m, 400));
  if (!nmsnn::is_valid_utf8(m))
    finding("invalid UTF-8 in error message: " + nmsnn::detail::quote(m, 400));
  for (size_t i = 0; i < m.size(); ++i) {
    const auto c = static_cast<unsigned char>(m[i]);
    // C0 controls and DEL; C1 controls are U+0080..U+009F, encoded as C2 80..C2 9F.
    const bool c1 = c == 0xC2 && i + 1 < m.size() && static_cast<unsigned char>(m[i + 1]) < 0xA0;
    if (c < 0x20 || c == 0x7F || c1)
      finding("control character in error message: " + nmsnn::detail::quote(m, 400));
  }
}

// An anonymous in-memory file (memfd) reachable by a path, for readers that open a path
// (read_idx, Model::load). Nothing is left on disk, even when a finding kills the process.
class MemoryFile {
 public:
  MemoryFile() : fd_(memfd_create("nmsnn-fuzz", 0)) {
    if (fd_ < 0) finding("memfd_create failed");
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;
  ~MemoryFile() { close(fd_); }

  // Replaces the file's contents with `bytes`; returns the path to open.
  const std::string& write(std::string_view bytes) {
    if (ftruncate(fd_, 0) != 0) finding("ftruncate failed");
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = pwrite(fd_, bytes.data() + done, bytes.size() - done, off_t(done));
      if (n <= 0) finding("pwrite failed");
      done += size_t(n);
    }
    return path_;
  }

 private:
  int fd_;
  std::string path_;
};

}  // namespace fuzz
