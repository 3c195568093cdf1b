// fuzz_flags.cpp — fuzz target for the command-line flag parser (tools/cli_args.cpp): Args::parse
// on any argument list, then every typed getter, with and without a (lo, hi) range, on every
// flag, as the subcommands read them.
//
//   libFuzzer: scripts/fuzz.sh flags      replay: fuzz_replay_flags corpus/flags regressions/flags
// Input: the arguments separated by NUL bytes, e.g. "--epochs\0 3\0--lr=0.1\0--quiet". Seeds:
// tests/fuzz/corpus/flags (typical train and predict lines, and bad ones: unknown and misspelt
// flags, missing values, 1e400, -5 for a count, "1,,2" lists, control bytes in values).
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cli_args.hpp"
#include "fuzz.hpp"

namespace {

// The getters return what parse stored; a value inside its range must come back as given.
template <class T>
void in_range(T x, T lo, T hi, const char* what) {
  if (!(x >= lo && x <= hi)) fuzz::finding(std::string(what) + ": value outside its range returned");
}

// Every getter on one flag; each may refuse the value, clearly.
void read_all(const nmsnn::cli::Args& args, const std::string& name) {
  const auto attempt = [](auto&& get) {
    try {
      get();
    } catch (const nmsnn::Error& e) {
      fuzz::check_message(e);
    }
  };
  attempt([&] { args.str(name, ""); });
  attempt([&] { args.integer(name, 0); });
  attempt([&] { args.int64(name, 0); });
  attempt([&] { args.number(name, 0); });
  attempt([&] { args.integers(name, {}); });
  attempt([&] { args.numbers(name, {}); });
  attempt([&] { in_range(args.integer(name, 1, 1, 1 << 20), 1, 1 << 20, "integer"); });
  attempt([&] { in_range(args.integer(name, 0, -3, 3), -3, 3, "integer"); });
  attempt([&] {
    in_range(args.int64(name, 0, 0, std::numeric_limits<long long>::max()), 0LL,
             std::numeric_limits<long long>::max(), "int64");
  });
  attempt([&] { in_range(args.number(name, 0.5, 0.0, 1.0), 0.0, 1.0, "number"); });
  attempt([&] { in_range(args.number(name, 1, 1e-12, 1e6), 1e-12, 1e6, "number"); });
  attempt([&] {
    for (int x : args.integers(name, {1}, 1, 4096)) in_range(x, 1, 4096, "integers");
  });
  attempt([&] {
    for (double x : args.numbers(name, {0.5}, 0.0, 1.0)) in_range(x, 0.0, 1.0, "numbers");
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::init();
  std::vector<std::string> argv;
  if (size > 0) {
    argv.emplace_back();
    for (size_t i = 0; i < size; ++i) {
      if (data[i] == 0) argv.emplace_back();
      else argv.back() += char(data[i]);
    }
  }
  // A flag set like `nmsnn train`'s: valued flags of each kind and switches.
  nmsnn::cli::Args args;
  const std::vector<std::string> valued = {"data", "epochs", "lr", "hidden", "limit",
                                           "threads", "seed", "validation", "max-memory"};
  for (const std::string& name : valued) args.flag(name, "X", "a flag with a value");
  args.sw("quiet", "a switch");
  args.sw("help", "a switch");
  try {
    args.parse(argv);
  } catch (const nmsnn::Error& e) {
    fuzz::check_message(e);
    return 0;
  }
  for (const std::string& name : valued) read_all(args, name);
  if (args.has("quiet") && args.str("quiet", "") != "1") fuzz::finding("a switch with a value");
  args.help();
  return 0;
}
