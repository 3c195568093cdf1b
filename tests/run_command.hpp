// run_command.hpp — the tests' way to run a shell command and read what it printed.
//
//   const CommandRun r = run_command(nmsnn_path + " train --help 2>&1");
//   EXPECT_EQ(r.status, 0) << r.output;
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

struct CommandRun {
  int status;          // the exit status, or -1 when it did not exit normally
  std::string output;  // its standard output (redirect stderr in `command` to read that too)
};

inline CommandRun run_command(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}
