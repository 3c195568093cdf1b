// nmsnn_main.cpp — the `nmsnn` command: dispatches to its subcommands and turns errors into a
// message and a non-zero exit status.
//
// Exit status: 0 done, 1 an error in the input, the flags or the resources (one line on stderr
// naming it), 2 a bad command line (usage), 3 an internal error (a bug: please report it).
//
// As one rank of several (mpirun, cli_distributed.hpp): an error every rank raises together
// (CollectiveError: bad data on one rank, divergence) is printed by rank 0 and every rank exits
// with status 1; an error only this rank knows of is printed with its rank, and the whole run is
// ended at once (MPI_Abort), so that no other rank waits for this one.
#include <cstdio>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli_common.hpp"
#include "cli_distributed.hpp"
#include "nmsnn/communicator.hpp"
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

// The last guard of "one line": messages quote user text through detail::quoted already, but a
// control character that slipped through must not break the line or reach the terminal raw.
std::string one_line(const std::string& message) {
  std::string out;
  for (const char ch : message) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c != 0x7f) {
      out += ch;
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  return out;
}

// What the command was doing, for "out of memory while loading the data".
std::string while_doing() {
  const char* what = nmsnn::cli::now_doing();
  return what ? std::string(" while ") + what : std::string();
}

// Prints `line` (an error) and returns `status`; as one rank of several, see the top of this file.
int report(const std::string& line, int status, bool collective = false) {
  nmsnn::Communicator* comm = nmsnn::cli::run_communicator();
  if (!comm || comm->size() == 1) {
    std::fprintf(stderr, "%s\n", line.c_str());
    return status;
  }
  if (collective) {
    if (comm->rank() == 0) std::fprintf(stderr, "%s\n", line.c_str());
    return status;
  }
  nmsnn::cli::abort_other_ranks(line + " (on rank " + std::to_string(comm->rank()) + " of " +
                                std::to_string(comm->size()) + "; ending every rank)");
  return status;
}

const char* kMemoryAdvice =
    "; try fewer samples, a smaller --batch or a smaller model (--max-memory sets the budget "
    "that sizes are checked against before large allocations)";
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
    std::fprintf(stderr, "nmsnn: unknown command %s (train, eval, predict, plot or help)\n",
                 nmsnn::detail::quote(command).c_str());
    usage();
    return 2;
  } catch (const nmsnn::CollectiveError& e) {
    return report("nmsnn " + command + ": error: " + one_line(e.what()), 1, true);
  } catch (const nmsnn::Error& e) {
    return report("nmsnn " + command + ": error: " + one_line(e.what()), 1);
  } catch (const std::bad_alloc&) {
    // Not a bug: the input or the flags asked for more memory than the machine would give.
    return report("nmsnn " + command + ": error: out of memory" + while_doing() + kMemoryAdvice, 1);
  } catch (const std::length_error&) {
    // std::vector refused a size beyond what it can ever hold: the same cause, a size too large.
    return report("nmsnn " + command + ": error: a size too large to allocate" + while_doing() +
                      kMemoryAdvice,
                  1);
  } catch (const std::exception& e) {
    return report("nmsnn " + command + ": internal error: " + one_line(e.what()), 3);
  }
}
