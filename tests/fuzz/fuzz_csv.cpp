// fuzz_csv.cpp — fuzz target for the CSV reader: parse_csv, then csv_to_dataset as each task and
// option set the tools use (last column or a named target, fixed class names, features only).
//
//   libFuzzer: scripts/fuzz.sh csv        replay: fuzz_replay_csv corpus/csv regressions/csv
// Input: the bytes of a CSV file. Seeds: tests/fuzz/corpus/csv (data/csv files cut short, and
// broken ones: unclosed quotes, ragged rows, huge and non-finite numbers, control bytes).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz.hpp"
#include "nmsnn/csv.hpp"

namespace {

// What every successful conversion must give: a consistent dataset.
void check(const nmsnn::Dataset& d, const nmsnn::CsvTable& table) {
  if (d.count != int(table.rows.size()) || d.x.size() != size_t(d.count) * size_t(d.features) ||
      int(d.feature_names.size()) != d.features)
    fuzz::finding("csv_to_dataset: dataset sizes disagree with the table");
  for (int label : d.labels)
    if (label < 0 || label >= d.classes) fuzz::finding("csv_to_dataset: label out of range");
}

void convert(const nmsnn::CsvTable& table, const nmsnn::CsvOptions& options) {
  try {
    check(nmsnn::csv_to_dataset(table, options), table);
  } catch (const nmsnn::Error& e) {
    fuzz::check_message(e);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::init();
  nmsnn::CsvTable table;
  try {
    table = nmsnn::parse_csv(std::string(reinterpret_cast<const char*>(data), size), "fuzz.csv");
  } catch (const nmsnn::Error& e) {
    fuzz::check_message(e);
    return 0;
  }
  for (const auto& row : table.rows)
    if (row.size() != table.columns.size()) fuzz::finding("parse_csv: a row of the wrong width");

  using nmsnn::TaskKind;
  for (TaskKind task : {TaskKind::classification, TaskKind::binary, TaskKind::regression}) {
    nmsnn::CsvOptions options;
    options.task = task;
    convert(table, options);
  }
  // A named target (the first column), fixed class names as a saved model gives them, and a
  // prediction file whose target column is absent.
  nmsnn::CsvOptions named;
  if (!table.columns.empty()) named.target = table.columns.front();
  named.class_names = {"0", "1", "setosa"};
  convert(table, named);
  nmsnn::CsvOptions features_only;
  features_only.target = "target";
  features_only.allow_missing_target = true;
  if (table.columns.size() > 2) features_only.ignore = {table.columns[1]};
  convert(table, features_only);
  return 0;
}
