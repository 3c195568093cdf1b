// nmsnn_main.cpp — the `nmsnn` command: dispatches to its subcommands and turns errors into a
// message and a non-zero exit status.
#include <cstdio>
#include <string>
#include <vector>

#include "nmsnn/error.hpp"

namespace nmsnn::cli {
int run_train(const std::vector<std::string>& argv);
int run_eval(const std::vector<std::string>& argv);
int run_predict(const std::vector<std::string>& argv);
int run_plot(const std::vector<std::string>& argv);
}

namespace {
void usage() {
  std::printf(
      "usage: nmsnn <command> [flags]\n\n"
      "commands:\n"
      "  train    train a model (spiking or not) on images or a CSV table, report its metrics\n"
      "  eval     score a saved model on labelled data\n"
      "  predict  write a saved model's predictions for a CSV file\n"
      "  plot     draw a saved model: training curves, confusion/ROC/PR, neuron views\n"
      "  help     show this message\n\n"
      "`nmsnn <command> --help` lists a command's flags.\n");
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage();
    return 2;
  }
  const std::string command = argv[1];
  const std::vector<std::string> rest(argv + 2, argv + argc);
  try {
    if (command == "train") return nmsnn::cli::run_train(rest);
    if (command == "eval") return nmsnn::cli::run_eval(rest);
    if (command == "predict") return nmsnn::cli::run_predict(rest);
    if (command == "plot") return nmsnn::cli::run_plot(rest);
    if (command == "help" || command == "--help" || command == "-h") {
      usage();
      return 0;
    }
    std::fprintf(stderr, "nmsnn: unknown command '%s'\n\n", command.c_str());
    usage();
    return 2;
  } catch (const nmsnn::Error& e) {
    std::fprintf(stderr, "nmsnn %s: error: %s\n", command.c_str(), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nmsnn %s: internal error: %s\n", command.c_str(), e.what());
    return 3;
  }
}
