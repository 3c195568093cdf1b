// progress.hpp — a progress line for long loops: a redrawn bar with rate and ETA on a terminal,
// a plain line every ~10% otherwise (logs, CI), nothing when quiet.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string>

namespace nmsnn::cli {

class Progress {
 public:
  explicit Progress(bool quiet) : quiet_(quiet), tty_(isatty(fileno(stderr))) {}

  // done of total units; `what` names the loop, `detail` is appended (loss, rate).
  void update(const std::string& what, long long done, long long total, double elapsed,
              const std::string& detail) {
    if (quiet_ || total <= 0) return;
    const double frac = double(done) / total;
    const double eta = done > 0 ? elapsed * (total - done) / done : 0;
    if (tty_) {
      const int width = 24, filled = int(frac * width + 0.5);
      std::fprintf(stderr, "\r%s [%s%s] %3.0f%% %s ETA %s   ", what.c_str(),
                   std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(),
                   100 * frac, detail.c_str(), clock(eta).c_str());
      if (done == total) std::fputc('\n', stderr);
    } else {
      const int decile = int(frac * 10);
      if (decile == last_decile_ && done != total) return;
      last_decile_ = decile;
      std::fprintf(stderr, "%s %3.0f%% %s ETA %s\n", what.c_str(), 100 * frac, detail.c_str(),
                   clock(eta).c_str());
    }
    std::fflush(stderr);
    if (done == total) last_decile_ = -1;
  }

  static std::string clock(double seconds) {
    const long s = long(seconds + 0.5);
    char buf[32];
    if (s >= 3600)
      std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
      std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
    return buf;
  }

 private:
  bool quiet_, tty_;
  int last_decile_ = -1;
};

}  // namespace nmsnn::cli
