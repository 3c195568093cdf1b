// cli_args.cpp — parsing and converting command-line flags, with errors that name the flag.
#include "cli_args.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "nmsnn/error.hpp"

namespace nmsnn::cli {

using detail::fail;

void Args::flag(const std::string& name, const std::string& value, const std::string& help) {
  specs_.push_back({name, value, help});
}

void Args::sw(const std::string& name, const std::string& help) {
  specs_.push_back({name, "", help});
}

const Args::Spec* Args::find(const std::string& name) const {
  for (const Spec& s : specs_)
    if (s.name == name) return &s;
  return nullptr;
}

namespace {
// Edit distance, to suggest the flag the user probably meant.
size_t distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}
}  // namespace

void Args::parse(const std::vector<std::string>& argv) {
  for (size_t k = 0; k < argv.size(); ++k) {
    const std::string& arg = argv[k];
    if (arg.rfind("--", 0) != 0)
      fail("unexpected argument ", detail::quote(arg), " (flags start with --)");
    std::string name = arg.substr(2), value;
    const size_t eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const Spec* spec = find(name);
    if (!spec) {
      std::string best;
      size_t best_d = std::min<size_t>(4, 1 + name.size() / 3);  // close enough to be a typo
      for (const Spec& s : specs_) {
        if (name.size() > 64) break;  // no flag is that long; skip the quadratic distance
        const size_t d = distance(name, s.name);
        if (d < best_d) best_d = d, best = s.name;
      }
      fail("unknown flag ", detail::quote("--" + name),
           best.empty() ? "" : " (did you mean --" + best + "?)", "; see --help");
    }
    if (spec->value.empty()) {
      if (inline_value) fail("flag --", name, " takes no value");
      value = "1";
    } else if (!inline_value) {
      if (k + 1 >= argv.size()) fail("flag --", name, " needs a value (", spec->value, ")");
      value = argv[++k];
    }
    values_[name] = value;
  }
}

bool Args::has(const std::string& name) const { return values_.count(name) > 0; }

std::string Args::str(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

long long Args::int64(const std::string& name, long long fallback) const {
  if (!has(name)) return fallback;
  const std::string& v = values_.at(name);
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno == ERANGE)
    fail("flag --", name, ": ", detail::quote(v), " is not a whole number");
  return x;
}

int Args::integer(const std::string& name, int fallback) const {
  const long long x = int64(name, fallback);
  if (x < -2147483647LL || x > 2147483647LL) fail("flag --", name, ": ", x, " is out of range");
  return int(x);
}

double Args::number(const std::string& name, double fallback) const {
  if (!has(name)) return fallback;
  const std::string& v = values_.at(name);
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !std::isfinite(x))
    fail("flag --", name, ": ", detail::quote(v), " is not a finite number");
  return x;
}

namespace {
std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) out.push_back(part);
  return out;
}
}  // namespace

std::vector<int> Args::integers(const std::string& name, const std::vector<int>& fallback) const {
  if (!has(name)) return fallback;
  std::vector<int> out;
  for (const std::string& part : split(values_.at(name))) {
    Args one;
    one.flag(name, "N", "");
    one.values_[name] = part;
    out.push_back(one.integer(name, 0));
  }
  if (out.empty()) fail("flag --", name, ": expected a comma-separated list of whole numbers");
  return out;
}

std::vector<double> Args::numbers(const std::string& name,
                                  const std::vector<double>& fallback) const {
  if (!has(name)) return fallback;
  std::vector<double> out;
  for (const std::string& part : split(values_.at(name))) {
    Args one;
    one.flag(name, "X", "");
    one.values_[name] = part;
    out.push_back(one.number(name, 0));
  }
  if (out.empty()) fail("flag --", name, ": expected a comma-separated list of numbers");
  return out;
}

int Args::integer(const std::string& name, int fallback, int lo, int hi) const {
  return int(int64(name, fallback, lo, hi));
}

long long Args::int64(const std::string& name, long long fallback, long long lo,
                      long long hi) const {
  const long long x = int64(name, fallback);
  if (has(name) && (x < lo || x > hi))
    fail("flag --", name, ": must be in [", lo, ", ", hi, "], got ", x);
  return x;
}

double Args::number(const std::string& name, double fallback, double lo, double hi) const {
  const double x = number(name, fallback);
  if (has(name) && !(x >= lo && x <= hi))
    fail("flag --", name, ": must be in [", lo, ", ", hi, "], got ", x);
  return x;
}

std::vector<int> Args::integers(const std::string& name, const std::vector<int>& fallback, int lo,
                                int hi) const {
  const std::vector<int> out = integers(name, fallback);
  for (int x : out)
    if (has(name) && (x < lo || x > hi))
      fail("flag --", name, ": every value must be in [", lo, ", ", hi, "], got ", x);
  return out;
}

std::vector<double> Args::numbers(const std::string& name, const std::vector<double>& fallback,
                                  double lo, double hi) const {
  const std::vector<double> out = numbers(name, fallback);
  for (double x : out)
    if (has(name) && !(x >= lo && x <= hi))
      fail("flag --", name, ": every value must be in [", lo, ", ", hi, "], got ", x);
  return out;
}

std::string Args::help() const {
  std::ostringstream out;
  for (const Spec& s : specs_) {
    std::string left = "  --" + s.name + (s.value.empty() ? "" : " " + s.value);
    if (left.size() < 26) left.resize(26, ' ');
    else left += "\n" + std::string(26, ' ');
    out << left << s.help << "\n";
  }
  return out.str();
}

}  // namespace nmsnn::cli
