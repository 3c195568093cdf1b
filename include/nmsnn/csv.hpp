// nmsnn/csv.hpp — reading CSV files and turning them into Datasets.
//
// Two steps, so each can be checked on its own: read_csv parses the text into strings (RFC 4180
// with the usual leniencies), csv_to_dataset decides which column is the target and parses
// numbers. Both throw nmsnn::Error naming the file, the 1-based line and the column at fault; the
// file name, cells and column names are put in through detail::quoted, so a message is one short
// line whatever the file holds. Missing values are errors: nmsnn never imputes silently.
#pragma once

#include <string>
#include <vector>

#include "nmsnn/dataset.hpp"
#include "nmsnn/task.hpp"

namespace nmsnn {

struct CsvTable {
  std::vector<std::string> columns;             // header names, unique and non-empty
  std::vector<std::vector<std::string>> rows;   // [rows][columns] cell text
  std::string path;                             // where it came from, for messages
  // 1-based line on which each row starts (a quoted field may span lines). When empty, messages
  // assume one line per row after the header.
  std::vector<int> row_lines;
};

// Reads `path`: comma separated, a header row required, "double-quoted" fields with "" for a quote
// and commas or newlines inside, LF or CRLF line ends, a UTF-8 byte order mark skipped, blank lines
// before the header and at the end ignored (elsewhere they are an error). Unquoted fields are
// trimmed of spaces and tabs; quoted ones are kept as written. A header with no rows is accepted
// here (csv_to_dataset then rejects it). At most kMaxSamples rows of kMaxLayerSize + 1 fields
// (nmsnn/limits.hpp); a file larger than half the memory budget is refused before it is read.
CsvTable read_csv(const std::string& path);

// The same parser on text already in memory; `source` names it (quoted) in messages and becomes
// the table's path.
CsvTable parse_csv(const std::string& text, const std::string& source);

struct CsvOptions {
  std::string target;  // target column name; empty = the last column
  TaskKind task = TaskKind::classification;
  // Fixed class mapping, e.g. from a saved model: the value class_names[i] becomes label i and any
  // other value is an error. When empty the mapping is built from the data: sorted unique values,
  // numbers by value ("2" before "10") and ahead of other text, which sorts bytewise.
  std::vector<std::string> class_names;
  // For prediction files: a named target column that is absent gives a features-only dataset.
  bool allow_missing_target = false;
  // Feature columns, in this order; empty = every column except the target and `ignore`.
  std::vector<std::string> features;
  std::vector<std::string> ignore;  // columns that are not features, e.g. row ids
};

// Builds a Dataset from `table`: features parsed as float (the whole cell must be a finite number;
// one too small for a float, such as 1e-400, reads as a zero of its sign, one too large is an
// error), the target read as `options.task` says. The feature matrix is checked against the memory
// budget before it is built. name is the file's stem; feature_names, class_names and
// target_names are filled.
Dataset csv_to_dataset(const CsvTable& table, const CsvOptions& options);

// read_csv then csv_to_dataset.
Dataset load_csv(const std::string& path, const CsvOptions& options);

}  // namespace nmsnn
