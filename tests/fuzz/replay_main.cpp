// replay_main.cpp — runs a fuzz target without libFuzzer: every file of the directories (or the
// files) named on the command line goes once through LLVMFuzzerTestOneInput. Built with the
// normal compiler and registered in ctest (fuzz_replay_<target>), so the seed corpus and every
// saved crash (tests/fuzz/regressions/<target>/) are replayed in every build.
//
//   usage: fuzz_replay_<target> DIR_OR_FILE...     (names starting with '.' are skipped)
// A finding aborts, or an exception other than nmsnn::Error escapes: the file being replayed is
// printed before each input, so the last name printed is the one at fault.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i) {
    const fs::path arg = argv[i];
    if (fs::is_directory(arg)) {
      std::vector<fs::path> files;
      for (const auto& entry : fs::directory_iterator(arg))
        if (entry.is_regular_file() && entry.path().filename().string()[0] != '.')
          files.push_back(entry.path());
      std::sort(files.begin(), files.end());
      inputs.insert(inputs.end(), files.begin(), files.end());
    } else if (fs::is_regular_file(arg)) {
      inputs.push_back(arg);
    } else {
      std::fprintf(stderr, "fuzz_replay: %s is neither a file nor a directory\n", argv[i]);
      return 1;
    }
  }
  // An empty corpus would make this test pass without testing anything.
  if (inputs.empty()) {
    std::fprintf(stderr, "fuzz_replay: no inputs found\n");
    return 1;
  }
  for (const fs::path& path : inputs) {
    std::printf("%s\n", path.c_str());
    std::fflush(stdout);
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      std::fprintf(stderr, "fuzz_replay: cannot read %s\n", path.c_str());
      return 1;
    }
    try {
      LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "fuzz_replay: %s: uncaught exception: %s\n", path.c_str(), e.what());
      return 1;
    }
  }
  std::printf("fuzz_replay: %zu inputs, no findings\n", inputs.size());
  return 0;
}
