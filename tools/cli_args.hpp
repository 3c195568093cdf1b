// cli_args.hpp — a small command-line flag parser for the nmsnn subcommands.
//
// Flags are declared with a name, a value placeholder and a help line; parse() accepts
// "--name value" and "--name=value", rejects unknown flags (suggesting the closest known one) and
// reports which flag had a bad value. Every error is an nmsnn::Error with that message.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace nmsnn::cli {

class Args {
 public:
  // A flag taking a value, e.g. flag("epochs", "N", "training epochs (default 10)").
  void flag(const std::string& name, const std::string& value, const std::string& help);
  // A flag without a value (a switch), e.g. sw("quiet", "print only the final summary").
  void sw(const std::string& name, const std::string& help);

  void parse(const std::vector<std::string>& argv);

  bool has(const std::string& name) const;
  std::string str(const std::string& name, const std::string& fallback) const;
  int integer(const std::string& name, int fallback) const;
  long long int64(const std::string& name, long long fallback) const;
  double number(const std::string& name, double fallback) const;
  std::vector<int> integers(const std::string& name, const std::vector<int>& fallback) const;
  std::vector<double> numbers(const std::string& name, const std::vector<double>& fallback) const;
  // The same, refusing values outside [lo, hi] (inclusive) with "flag --name: must be in [lo, hi],
  // got v": every flag with a bounded meaning (counts, limits, steps, fractions) reads through these.
  int integer(const std::string& name, int fallback, int lo, int hi) const;
  long long int64(const std::string& name, long long fallback, long long lo, long long hi) const;
  double number(const std::string& name, double fallback, double lo, double hi) const;
  std::vector<int> integers(const std::string& name, const std::vector<int>& fallback, int lo,
                            int hi) const;
  std::vector<double> numbers(const std::string& name, const std::vector<double>& fallback,
                              double lo, double hi) const;

  // "  --name VALUE   help" lines for --help.
  std::string help() const;

 private:
  struct Spec {
    std::string name, value, help;
  };
  const Spec* find(const std::string& name) const;
  std::vector<Spec> specs_;
  std::map<std::string, std::string> values_;
};

}  // namespace nmsnn::cli
