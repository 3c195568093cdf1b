// io/csv.cpp — the CSV reader and the table-to-Dataset conversion.
//
// The reader is one pass over the whole file held in memory, tracking the physical line so every
// message can point at it. Conversion is strict: a cell is a number only if all of it is, and a
// missing value is an error rather than a silent zero or mean. Cells, names and paths reach a
// message only through detail::quoted, so a newline or a 10 MB cell still gives one short line.
#include "nmsnn/csv.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <string_view>

#include "nmsnn/error.hpp"
#include "nmsnn/limits.hpp"

namespace nmsnn {

using detail::fail;

namespace {

bool is_blank_char(char c) { return c == ' ' || c == '\t'; }

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && is_blank_char(s[b])) ++b;
  while (e > b && is_blank_char(s[e - 1])) --e;
  return s.substr(b, e - b);
}

// "'a', 'b', 'c'", each name quoted and the list cut after about 200 characters, so a 1000-column
// file or a 10 MB header cell does not flood the message.
std::string join_names(const std::vector<std::string>& names) {
  std::string s;
  size_t i = 0;
  for (; i < names.size() && s.size() < 200; ++i)
    s += (i ? ", " : "") + detail::quote(names[i], 40);
  if (i < names.size()) s += ", ... (" + std::to_string(names.size()) + " in all)";
  return s;
}

// Spellings of "no value" that exports commonly write; they get a clearer message than
// "not a number" and are never taken as a class name.
bool is_missing(const std::string& s) {
  static const char* const kMissing[] = {"", "NA", "N/A", "NaN", "nan", "NAN", "?", "null", "NULL"};
  for (const char* m : kMissing) {
    if (s == m) return true;
  }
  return false;
}

enum class Parse { ok, not_number, not_finite, out_of_range };

// Decimal exponent of the first significant digit of a number from_chars accepted: 2 for "123.4",
// -3 for "0.00123", -400 for "1e-400". Only its sign is used, to tell overflow from underflow.
long decimal_exponent(std::string_view s) {
  const size_t e = std::min(s.find_first_of("eE"), s.size());
  long exponent = 0;
  if (e < s.size()) {
    std::string_view digits = s.substr(e + 1);
    if (!digits.empty() && digits[0] == '+') digits.remove_prefix(1);
    const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), exponent);
    if (r.ec != std::errc()) exponent = digits[0] == '-' ? -1000000 : 1000000;  // sign suffices
  }
  const std::string_view mantissa = s.substr(0, e);
  const size_t int_end = std::min(mantissa.find('.'), mantissa.size());
  for (size_t i = 0; i < mantissa.size(); ++i) {
    if (mantissa[i] < '1' || mantissa[i] > '9') continue;
    return exponent + (i < int_end ? long(int_end - 1 - i) : -long(i - int_end));
  }
  return -1;  // all zeros (never out of range, but a zero is not an overflow)
}

// The whole of `s` must be one decimal number. std::from_chars, unlike strtod, ignores the locale,
// so "1.5" means the same everywhere.
Parse parse_float(const std::string& s, float& out) {
  const char* first = s.data();
  const char* last = s.data() + s.size();
  if (first != last && *first == '+' && last - first > 1 && first[1] != '-' && first[1] != '+') {
    ++first;  // from_chars rejects a leading '+', which spreadsheets do write
  }
  if (first == last) return Parse::not_number;
  auto [end, ec] = std::from_chars(first, last, out);
  if (ec == std::errc::result_out_of_range && end == last) {
    // from_chars says "out of range" both for 1e39 and for 1e-400. Underflow is a number too small
    // for a float: it rounds to a zero of the same sign, as IEEE arithmetic would. Overflow is an
    // error: no float is near it.
    if (decimal_exponent(std::string_view(first, size_t(last - first))) >= 0) {
      return Parse::out_of_range;
    }
    out = *first == '-' ? -0.0f : 0.0f;
    return Parse::ok;
  }
  if (ec != std::errc() || end != last) return Parse::not_number;
  if (!std::isfinite(out)) return Parse::not_finite;
  return Parse::ok;
}

int row_line(const CsvTable& t, size_t r) {
  return t.row_lines.size() == t.rows.size() ? t.row_lines[r] : int(r) + 2;
}

// Parses one cell as a finite float or throws naming the place.
float cell_number(const CsvTable& t, const std::string& where, size_t r, int col) {
  const std::string cell = trim(t.rows[r][col]);
  const std::string place = where + ": line " + std::to_string(row_line(t, r)) + ", column " +
                            detail::quote(t.columns[col]) + ": ";
  if (is_missing(cell)) {
    fail(place, "missing value",
         cell.empty() ? std::string(" (empty cell)") : " (" + detail::quote(cell) + ")",
         "; nmsnn does not fill in missing values, so remove the row or fill the cell");
  }
  float v = 0;
  switch (parse_float(cell, v)) {
    case Parse::ok: return v;
    case Parse::not_number: fail(place, detail::quote(cell), " is not a number");
    case Parse::not_finite: fail(place, detail::quote(cell), " is not a finite number");
    case Parse::out_of_range: fail(place, detail::quote(cell), " is outside the float range");
  }
  return v;
}

bool as_number(const std::string& s, double& out) {
  float f = 0;
  if (parse_float(trim(s), f) != Parse::ok) return false;
  out = f;
  return true;
}

// Class order when the data decides it: numbers by value, then other text bytewise.
bool class_less(const std::string& a, const std::string& b) {
  double va = 0, vb = 0;
  const bool na = as_number(a, va), nb = as_number(b, vb);
  if (na && nb && va != vb) return va < vb;
  if (na != nb) return na;
  return a < b;
}

}  // namespace

CsvTable parse_csv(const std::string& text, const std::string& source_name) {
  const std::string source = detail::quote(source_name);
  const size_t n = text.size();
  size_t i = 0;
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;  // UTF-8 byte order mark, as Excel writes
  int line = 1;

  // Ends a record at a line break (LF, CRLF or a lone CR) and moves to the next line. Line numbers
  // are ints (CsvTable::row_lines), so a file of more than 2^31 - 1 lines is refused, not wrapped.
  auto take_newline = [&] {
    if (i < n && text[i] == '\r' && i + 1 < n && text[i + 1] == '\n') ++i;
    ++i;
    if (line == std::numeric_limits<int>::max()) {
      fail(source, ": more than ", line, " lines; nmsnn reads at most ", kMaxSamples, " rows");
    }
    ++line;
  };

  std::vector<std::vector<std::string>> records;
  std::vector<int> lines;
  std::vector<bool> blank;
  while (i < n) {
    const int start_line = line;
    std::vector<std::string> fields;
    bool any_quoted = false;
    for (;;) {
      std::string field;
      size_t j = i;
      while (j < n && is_blank_char(text[j])) ++j;
      if (j < n && text[j] == '"') {
        any_quoted = true;
        const int open_line = line;
        i = j + 1;
        for (;;) {
          if (i >= n) {
            fail(source, ": line ", open_line, ": quoted field ", fields.size() + 1,
                 " is never closed (unterminated quote)");
          }
          const char c = text[i];
          if (c == '"') {
            if (i + 1 < n && text[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          if (c == '\r' || c == '\n') {
            // A line break inside quotes is data; store it as '\n' whatever the file uses.
            field += '\n';
            take_newline();
            continue;
          }
          field += c;
          ++i;
        }
        while (i < n && is_blank_char(text[i])) ++i;
        if (i < n && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
          fail(source, ": line ", line, ", field ", fields.size() + 1, ": unexpected ",
               detail::quote(std::string_view(&text[i], 1)),
               " after a closing quote (a quote inside a quoted field is written \"\")");
        }
      } else {
        size_t end = i;
        while (end < n && text[end] != ',' && text[end] != '\n' && text[end] != '\r') {
          if (text[end] == '"') {
            fail(source, ": line ", line, ", field ", fields.size() + 1,
                 ": a '\"' inside an unquoted field; quote the whole field and write the quote "
                 "as \"\"");
          }
          ++end;
        }
        field = trim(text.substr(i, end - i));
        i = end;
      }
      fields.push_back(std::move(field));
      if (fields.size() > size_t(kMaxLayerSize) + 1) {  // features plus a target
        fail(source, ": line ", start_line, " has more than ", kMaxLayerSize + 1,
             " fields; nmsnn accepts at most ", kMaxLayerSize, " features");
      }
      if (i < n && text[i] == ',') {
        ++i;
        continue;
      }
      if (i < n) take_newline();
      break;
    }
    blank.push_back(fields.size() == 1 && fields[0].empty() && !any_quoted);
    records.push_back(std::move(fields));
    lines.push_back(start_line);
    if (records.size() > size_t(kMaxSamples) + 1 && !blank.back()) {  // rows plus the header
      fail(source, ": line ", start_line, ": more than ", kMaxSamples,
           " data rows; nmsnn reads at most that many samples");
    }
  }
  while (!records.empty() && blank.back()) {
    records.pop_back();
    lines.pop_back();
    blank.pop_back();
  }
  size_t header = 0;  // blank lines before the header are skipped too
  while (header < records.size() && blank[header]) ++header;
  if (header == records.size()) fail(source, ": file is empty; a CSV file needs a header row");

  CsvTable t;
  t.path = source_name;
  t.columns = std::move(records[header]);
  std::map<std::string, size_t> seen;
  for (size_t c = 0; c < t.columns.size(); ++c) {
    const std::string& name = t.columns[c];
    if (name.empty()) {
      fail(source, ": line ", lines[header], ": header column ", c + 1,
           " has no name; every column needs one");
    }
    auto [it, fresh] = seen.emplace(name, c);
    if (!fresh) {
      fail(source, ": line ", lines[header], ": duplicate column name ", detail::quote(name),
           " (columns ", it->second + 1, " and ", c + 1, ")");
    }
  }
  for (size_t r = header + 1; r < records.size(); ++r) {
    if (blank[r]) {
      fail(source, ": line ", lines[r], " is blank; blank lines are allowed only at the end");
    }
    if (records[r].size() != t.columns.size()) {
      fail(source, ": line ", lines[r], " has ", records[r].size(),
           records[r].size() == 1 ? " field" : " fields", ", the header has ", t.columns.size());
    }
    t.rows.push_back(std::move(records[r]));
    t.row_lines.push_back(lines[r]);
  }
  return t;
}

CsvTable read_csv(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    fail("cannot read CSV ", detail::quote(path), ": is a directory");
  }
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail("cannot open CSV ", detail::quote(path), ": ", std::strerror(errno));
  // The text and the cells parsed from it are each about the file's size.
  if (std::uintmax_t size = std::filesystem::file_size(path, ec); !ec) {
    try {
      check_memory("reading CSV " + detail::quote(path) + " (" + format_bytes(double(size)) + ")",
                   2.0 * double(size));
    } catch (...) {
      std::fclose(f);
      throw;
    }
  }
  std::string text;
  char buffer[1 << 16];
  size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, f)) > 0) text.append(buffer, got);
  const bool bad = std::ferror(f) != 0;
  std::fclose(f);
  if (bad) fail("cannot read CSV ", detail::quote(path), ": read error");
  return parse_csv(text, path);
}

Dataset csv_to_dataset(const CsvTable& t, const CsvOptions& o) {
  const std::string where = t.path.empty() ? std::string("CSV") : detail::quote(t.path);
  if (t.columns.empty()) fail(where, ": table has no columns");
  auto find = [&](const std::string& name) {
    auto it = std::find(t.columns.begin(), t.columns.end(), name);
    return it == t.columns.end() ? -1 : int(it - t.columns.begin());
  };

  int target = o.target.empty() ? int(t.columns.size()) - 1 : find(o.target);
  if (target < 0 && !o.allow_missing_target) {
    fail(where, ": no target column ", detail::quote(o.target), "; the columns are: ",
         join_names(t.columns));
  }

  std::vector<int> feature_cols;
  if (!o.features.empty()) {
    for (const std::string& name : o.features) {
      const int c = find(name);
      if (c < 0) {
        fail(where, ": no feature column ", detail::quote(name), "; the columns are: ",
             join_names(t.columns));
      }
      if (c == target)
        fail(where, ": column ", detail::quote(name), " is the target, so not a feature");
      if (std::count(feature_cols.begin(), feature_cols.end(), c)) {
        fail(where, ": feature column ", detail::quote(name), " is listed twice");
      }
      feature_cols.push_back(c);
    }
  } else {
    std::vector<bool> skip(t.columns.size(), false);
    for (const std::string& name : o.ignore) {
      const int c = find(name);
      if (c < 0) {
        fail(where, ": cannot ignore column ", detail::quote(name),
             ": no such column; the columns are: ", join_names(t.columns));
      }
      skip[c] = true;
    }
    for (int c = 0; c < int(t.columns.size()); ++c) {
      if (c != target && !skip[c]) feature_cols.push_back(c);
    }
  }
  if (feature_cols.empty()) {
    fail(where, ": no feature columns left besides the target ", detail::quote(t.columns[target]));
  }
  if (t.rows.empty()) fail(where, ": has a header but no data rows");
  // Tables built by hand skip parse_csv's bounds; the counts become ints below.
  if (t.rows.size() > size_t(kMaxSamples)) {
    fail(where, ": ", t.rows.size(), " rows, more than the ", kMaxSamples, " nmsnn accepts");
  }
  if (feature_cols.size() > size_t(kMaxLayerSize)) {
    fail(where, ": ", feature_cols.size(), " feature columns, more than the ", kMaxLayerSize,
         " nmsnn accepts");
  }
  check_memory(where + ": a feature matrix of " + std::to_string(t.rows.size()) + " rows x " +
                   std::to_string(feature_cols.size()) + " columns",
               double(t.rows.size()) * double(feature_cols.size()) * sizeof(float));

  Dataset d;
  d.name = t.path.empty() ? "csv" : std::filesystem::path(t.path).stem().string();
  d.count = int(t.rows.size());
  d.features = int(feature_cols.size());
  for (int c : feature_cols) d.feature_names.push_back(t.columns[c]);
  d.x.reserve(size_t(d.count) * d.features);
  for (size_t r = 0; r < t.rows.size(); ++r) {
    for (int c : feature_cols) d.x.push_back(cell_number(t, where, r, c));
  }
  if (target < 0) return d;  // features only, for prediction

  const std::string& tname = t.columns[target];
  if (o.task == TaskKind::regression) {
    d.target_size = 1;
    d.target_names = {tname};
    d.targets.reserve(d.count);
    for (size_t r = 0; r < t.rows.size(); ++r) {
      d.targets.push_back(cell_number(t, where, r, target));
    }
    d.validate();
    return d;
  }

  // Classification and binary: the target's text names the class.
  const bool binary = o.task == TaskKind::binary;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    if (is_missing(trim(t.rows[r][target]))) {
      fail(where, ": line ", row_line(t, r), ", column ", detail::quote(tname),
           ": missing class label",
           t.rows[r][target].empty() ? std::string(" (empty cell)")
                                     : " (" + detail::quote(t.rows[r][target]) + ")");
    }
  }
  std::vector<std::string> names = o.class_names;
  if (names.empty()) {
    std::set<std::string> unique;
    for (const auto& row : t.rows) unique.insert(row[target]);
    names.assign(unique.begin(), unique.end());
    std::sort(names.begin(), names.end(), class_less);
    for (size_t k = 1; k < names.size(); ++k) {
      double a = 0, b = 0;
      if (as_number(names[k - 1], a) && as_number(names[k], b) && a == b) {
        fail(where, ": column ", detail::quote(tname), ": class labels ",
             detail::quote(names[k - 1]), " and ", detail::quote(names[k]),
             " are the same number written two ways; write each class one way");
      }
    }
    if (binary && names.size() != 2) {
      fail(where, ": column ", detail::quote(tname),
           ": a binary task needs exactly 2 classes, found ", names.size(), ": ",
           join_names(names));
    }
    if (names.size() < 2) {
      fail(where, ": column ", detail::quote(tname),
           ": classification needs at least 2 classes, found only ", detail::quote(names[0]));
    }
  } else {
    if (binary && names.size() != 2) {
      fail(where, ": a binary task needs exactly 2 class names, given ", names.size(), ": ",
           join_names(names));
    }
    std::set<std::string> unique(names.begin(), names.end());
    if (unique.size() != names.size()) {
      fail(where, ": the given class names repeat a name: ", join_names(names));
    }
  }

  std::map<std::string, int> id;
  for (size_t k = 0; k < names.size(); ++k) id[names[k]] = int(k);
  d.labels.reserve(d.count);
  for (size_t r = 0; r < t.rows.size(); ++r) {
    auto it = id.find(t.rows[r][target]);
    if (it == id.end()) {
      fail(where, ": line ", row_line(t, r), ", column ", detail::quote(tname), ": ",
           detail::quote(t.rows[r][target]), " is not one of the ", names.size(),
           " known classes: ", join_names(names));
    }
    d.labels.push_back(it->second);
  }
  d.classes = int(names.size());
  d.class_names = std::move(names);
  d.validate();
  return d;
}

Dataset load_csv(const std::string& path, const CsvOptions& options) {
  return csv_to_dataset(read_csv(path), options);
}

}  // namespace nmsnn
