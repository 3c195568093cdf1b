// tests/test_csv.cpp — the CSV reader and the table-to-Dataset conversion.
//
// Fixture files are written at run time into a fresh temporary directory so each quoting rule and
// each failure can be produced exactly; the seed CSVs in data/csv check the loader end to end.
#include <gtest/gtest.h>

#include "temp_dir.hpp"

#include "safe_message.hpp"
#include "throws_with.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "nmsnn/csv.hpp"
#include "nmsnn/error.hpp"
#include "nmsnn/limits.hpp"

namespace fs = std::filesystem;
using nmsnn::CsvOptions;
using nmsnn::CsvTable;
using nmsnn::TaskKind;
using Rows = std::vector<std::vector<std::string>>;
using Names = std::vector<std::string>;

namespace {

class CsvTest : public TempDirTest {
 protected:
  // Writes `text` byte for byte (no newline translation) and returns the path.
  std::string write(const std::string& name, const std::string& text) {
    const std::string p = path(name);
    FILE* f = std::fopen(p.c_str(), "wb");
    EXPECT_NE(f, nullptr) << p;
    if (f) {
      EXPECT_EQ(std::fwrite(text.data(), 1, text.size(), f), text.size());
      std::fclose(f);
    }
    return p;
  }
  nmsnn::Dataset load(const std::string& text, const CsvOptions& o = {}) {
    return nmsnn::load_csv(write("data.csv", text), o);
  }
};

CsvOptions task(TaskKind kind, const std::string& target = "") {
  CsvOptions o;
  o.task = kind;
  o.target = target;
  return o;
}

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

std::string seed_csv(const std::string& name) {
  return std::string(NMSNN_SOURCE_DIR) + "/data/csv/" + name;
}

}  // namespace

// ---- read_csv: the text format ------------------------------------------------------------------

TEST_F(CsvTest, QuotedFieldsWithCommasEscapesAndNewlines) {
  const std::string p = write("q.csv",
                              "name,\"note, with comma\",value\n"
                              "\"Smith, J\",\"He said \"\"hi\"\"\",1.5\n"
                              "\"multi\nline\",plain,2\n"
                              "x,\"\",3\n");
  const CsvTable t = nmsnn::read_csv(p);
  EXPECT_EQ(t.path, p);
  EXPECT_EQ(t.columns, (Names{"name", "note, with comma", "value"}));
  EXPECT_EQ(t.rows, (Rows{{"Smith, J", "He said \"hi\"", "1.5"},
                          {"multi\nline", "plain", "2"},
                          {"x", "", "3"}}));
  // The quoted newline pushes the last row to physical line 5.
  EXPECT_EQ(t.row_lines, (std::vector<int>{2, 3, 5}));
}

TEST_F(CsvTest, CrlfBomWhitespaceAndTrailingBlankLines) {
  const CsvTable t = nmsnn::read_csv(write("w.csv",
                                           "\xEF\xBB\xBF"
                                           "a,b\r\n"
                                           " 1 ,\t2\r\n"
                                           "\"  kept  \",\"two\r\nlines\"\r\n"
                                           "\r\n"
                                           "   \n"
                                           "\r\n"));
  // The BOM is not part of the first name; unquoted cells are trimmed, quoted ones are not, and a
  // CRLF inside quotes is stored as '\n'.
  EXPECT_EQ(t.columns, (Names{"a", "b"}));
  EXPECT_EQ(t.rows, (Rows{{"1", "2"}, {"  kept  ", "two\nlines"}}));
  EXPECT_EQ(t.row_lines, (std::vector<int>{2, 3}));
}

TEST_F(CsvTest, LastLineWithoutNewlineAndTrailingEmptyField) {
  const CsvTable t = nmsnn::read_csv(write("e.csv", "a,b,c\n1,,3\n4,5,"));
  EXPECT_EQ(t.rows, (Rows{{"1", "", "3"}, {"4", "5", ""}}));
}

TEST_F(CsvTest, HeaderOnlyReadsButDoesNotConvert) {
  const std::string p = write("h.csv", "a,b\n");
  const CsvTable t = nmsnn::read_csv(p);
  EXPECT_EQ(t.columns, (Names{"a", "b"}));
  EXPECT_TRUE(t.rows.empty());
  EXPECT_TRUE(throws_with([&] { nmsnn::csv_to_dataset(t, {}); }, {p, "no data rows"}));
}

TEST_F(CsvTest, MissingAndEmptyFiles) {
  const std::string missing = (dir / "nope.csv").string();
  EXPECT_TRUE(throws_with([&] { nmsnn::read_csv(missing); },
                          {"cannot open CSV", missing, "No such file"}));
  EXPECT_TRUE(throws_with([&] { nmsnn::read_csv(dir.string()); }, {"is a directory"}));
  const std::string empty = write("empty.csv", "");
  EXPECT_TRUE(throws_with([&] { nmsnn::read_csv(empty); }, {empty, "file is empty"}));
  // Only a BOM and blank lines is still empty.
  const std::string blank = write("blank.csv", "\xEF\xBB\xBF\n\r\n  \n");
  EXPECT_TRUE(throws_with([&] { nmsnn::read_csv(blank); }, {blank, "file is empty"}));
}

TEST_F(CsvTest, RaggedRowsNameTheLine) {
  const std::string p = write("r.csv", "a,b,c\n1,2,3\n4,5\n");
  EXPECT_TRUE(throws_with([&] { nmsnn::read_csv(p); },
                          {p, "line 3 has 2 fields, the header has 3"}));
  // The line counts physical lines, so a quoted newline earlier moves it.
  const std::string q = write("r2.csv", "a,b\n\"x\ny\",1\n1,2,3\n");
  EXPECT_TRUE(throws_with([&] { nmsnn::read_csv(q); }, {"line 4 has 3 fields, the header has 2"}));
  const std::string b = write("r3.csv", "a,b\n1,2\n\n3,4\n");
  EXPECT_TRUE(throws_with([&] { nmsnn::read_csv(b); },
                          {b, "line 3 is blank", "only at the end"}));
}

TEST_F(CsvTest, UnterminatedQuoteNamesWhereItOpened) {
  const std::string p = write("u.csv", "a,b\n1,2\n3,\"open\n5,6\n");
  EXPECT_TRUE(throws_with([&] { nmsnn::read_csv(p); },
                          {p, "line 3", "quoted field 2", "unterminated quote"}));
}

TEST_F(CsvTest, MisplacedQuotes) {
  const std::string p = write("m.csv", "a,b\n1,ab\"c\n");
  EXPECT_TRUE(throws_with([&] { nmsnn::read_csv(p); },
                          {p, "line 2, field 2", "inside an unquoted field"}));
  const std::string q = write("m2.csv", "a,b\n\"x\"y,1\n");
  EXPECT_TRUE(throws_with([&] { nmsnn::read_csv(q); },
                          {q, "line 2, field 1", "unexpected 'y' after a closing quote"}));
}

TEST_F(CsvTest, BadHeaders) {
  const std::string d = write("d.csv", "a,b,a\n1,2,3\n");
  EXPECT_TRUE(throws_with([&] { nmsnn::read_csv(d); },
                          {d, "duplicate column name 'a'", "columns 1 and 3"}));
  const std::string e = write("e.csv", "a,,c\n1,2,3\n");
  EXPECT_TRUE(throws_with([&] { nmsnn::read_csv(e); }, {e, "header column 2 has no name"}));
}

TEST_F(CsvTest, BlankLinesBeforeTheHeaderAreSkipped) {
  const std::string p = write("lead.csv", "\n  \r\na,b\n1,2\n");
  const CsvTable t = nmsnn::read_csv(p);
  EXPECT_EQ(t.columns, (Names{"a", "b"}));
  EXPECT_EQ(t.rows, (Rows{{"1", "2"}}));
  EXPECT_EQ(t.row_lines, (std::vector<int>{4}));
  const std::string d = write("lead2.csv", "\n\nx,x\n");
  EXPECT_TRUE(throws_with([&] { nmsnn::read_csv(d); }, {"line 3: duplicate column name 'x'"}));
}

// ---- csv_to_dataset: features ------------------------------------------------------------------

TEST_F(CsvTest, FeaturesAreParsedStrictly) {
  // Leading '+', exponents, and an underflowing value that rounds to (nearly) zero are numbers.
  const nmsnn::Dataset d = load("f1,f2,y\n+1.5,-2e3,a\n1e-50,0.25,b\n", task(TaskKind::binary));
  EXPECT_EQ(d.name, "data");
  EXPECT_EQ(d.count, 2);
  EXPECT_EQ(d.features, 2);
  EXPECT_EQ(d.feature_names, (Names{"f1", "f2"}));
  ASSERT_EQ(d.x.size(), 4u);
  EXPECT_EQ(d.x[0], 1.5f);
  EXPECT_EQ(d.x[1], -2000.0f);
  EXPECT_LT(std::abs(d.x[2]), 1e-38f);
  EXPECT_EQ(d.x[3], 0.25f);
}

TEST_F(CsvTest, NonNumericFeatureNamesColumnLineAndText) {
  EXPECT_TRUE(throws_with([&] { load("f,g,y\n1,2,a\n3,1.5x,b\n"); },
                          {"data.csv", "line 3", "column 'g'", "'1.5x' is not a number"}));
  EXPECT_TRUE(throws_with([&] { load("f,y\ninf,a\n1,b\n"); },
                          {"line 2", "column 'f'", "'inf' is not a finite number"}));
  EXPECT_TRUE(throws_with([&] { load("f,y\n1,a\n1e39,b\n"); },
                          {"line 3", "column 'f'", "'1e39' is outside the float range"}));
  EXPECT_TRUE(throws_with([&] { load("f,y\n1,a\n1,2,b\n"); }, {"line 3 has 3 fields"}));
}

// from_chars reports 1e-400 and 1e400 alike as out of range. A number too small for a float is a
// zero of its sign, as the comment in csv.cpp promises; one too large is an error naming the cell.
TEST_F(CsvTest, UnderflowIsZeroOverflowIsAnError) {
  const nmsnn::Dataset d =
      load("f,y\n1e-400,a\n-1e-400,b\n1e-50,a\n0.00001e-99999999999999999999,b\n1e-40,a\n");
  ASSERT_EQ(d.x.size(), 5u);
  EXPECT_EQ(bits_of(d.x[0]), bits_of(0.0f));
  EXPECT_EQ(bits_of(d.x[1]), bits_of(-0.0f));
  EXPECT_EQ(d.x[2], 0.0f);
  EXPECT_EQ(d.x[3], 0.0f);
  EXPECT_EQ(d.x[4], 1e-40f);  // a denormal float is kept, not flushed
  EXPECT_GT(d.x[4], 0.0f);
  for (const std::string big : {"1e400", "-1e39", "3.5e38", "1e99999999999999999999", "+1e40",
                                "12345678901234567890123456789012345678901"}) {
    SCOPED_TRACE(big);
    EXPECT_TRUE(throws_with([&] { load("f,y\n1,a\n" + big + ",b\n"); },
                            {"line 3, column 'f': '" + big + "' is outside the float range"}));
  }
}

// Cells, column names, labels and paths are quoted in messages: a newline, NUL, ESC or a 10 MB
// cell still gives one short line, with the rest of the message intact after them.
TEST_F(CsvTest, MessagesQuoteWhatTheyEcho) {
  EXPECT_TRUE(throws_safe_line([&] { load("f,y\n1,a\n\x1b[31mred,b\n"); },
                               {"line 3, column 'f': '\\x1b[31mred' is not a number"}));
  EXPECT_TRUE(throws_safe_line([&] { load(std::string("f,y\n1,a\n1\0 2,b\n", 13)); },
                               {"line 3, column 'f': '1\\x00 2' is not a number"}));
  const std::string big(10 << 20, '7');
  EXPECT_TRUE(
      throws_safe_line([&] { load("f,y\n1,a\n" + big + "x,b\n"); },
                       {"line 3, column 'f': '7777", "...' (10485761 bytes) is not a number"}));
  EXPECT_TRUE(throws_safe_line([&] { load("\"a\nb\",\"a\nb\"\n1,2\n"); },
                               {"duplicate column name 'a\\nb' (columns 1 and 2)"}));
  EXPECT_TRUE(throws_safe_line([&] { load("\"f\r\nx\",y\n1,a\n,b\n"); },
                               {"line 4, column 'f\\nx': missing value (empty cell)"}));
  EXPECT_TRUE(throws_safe_line([&] { load("f,y\n1,\"a\nb\"\n2,\"a\nb\"\n"); },
                               {"column 'y': classification needs at least 2 classes, found only "
                                "'a\\nb'"}));
  EXPECT_TRUE(throws_safe_line([&] { load("f,y\n1,a\n\"2\"\x1b,b\n"); },
                               {"line 3, field 1: unexpected '\\x1b' after a closing quote"}));
  CsvOptions o;
  o.class_names = {"a", "b"};
  EXPECT_TRUE(throws_safe_line([&] { load("f,y\n1,a\n2,\"x\n\x07\"\n", o); },
                               {"line 3, column 'y': 'x\\n\\x07' is not one of the 2 known "
                                "classes: 'a', 'b'"}));
  // A thousand long column names: the list is cut.
  std::string header;
  for (int c = 0; c < 1000; ++c) header += std::string(100, 'c') + std::to_string(c) + ",";
  EXPECT_TRUE(throws_safe_line([&] { load(header + "y\n" + std::string(1000, ',') + "1\n",
                                          task(TaskKind::regression, "\ntarget")); },
                               {"no target column '\\ntarget'", "... (1001 in all)"}));
  // The path is user text too.
  const std::string odd = write("odd\nname\x1b.csv", "f,y\n1,a\nx,b\n");
  EXPECT_TRUE(throws_safe_line([&] { nmsnn::load_csv(odd, {}); },
                               {"odd\\nname\\x1b.csv': line 3, column 'f': 'x' is not a number"}));
  EXPECT_TRUE(throws_safe_line([&] { nmsnn::read_csv(odd + "\x1b"); },
                               {"cannot open CSV '", "\\x1b.csv\\x1b': No such file"}));
}

// Sizes are checked before allocating: the file against the memory budget before it is read,
// and the feature matrix before it is built.
TEST_F(CsvTest, MemoryBudgetIsCheckedBeforeAllocating) {
  struct MemoryLimit {
    explicit MemoryLimit(int64_t bytes) { nmsnn::set_memory_limit(bytes); }
    ~MemoryLimit() { nmsnn::set_memory_limit(0); }
  };
  std::string text = "a,b,y\n";
  for (int r = 0; r < 200; ++r) text += "1,2,x\n";  // 1206 bytes; 200 x 2 floats = 1600 bytes
  const std::string p = write("budget.csv", text);
  {
    const MemoryLimit limit(2000);
    EXPECT_TRUE(throws_safe_line([&] { nmsnn::read_csv(p); },
                                 {"reading CSV '" + p + "' (1.2 KiB) needs 2.4 KiB, more than the "
                                  "memory limit of 2.0 KiB"}));
  }
  const CsvTable t = nmsnn::read_csv(p);
  const MemoryLimit limit(1000);
  EXPECT_TRUE(throws_safe_line(
      [&] { nmsnn::csv_to_dataset(t, task(TaskKind::regression, "a")); },
      {"'" + p + "': a feature matrix of 200 rows x 2 columns needs 1.6 KiB, more than the memory "
       "limit of 1000 B"}));
}

TEST_F(CsvTest, MissingValuesAreRejectedNotImputed) {
  for (const std::string cell : {"", "NA", "NaN", "nan", "?", "\"\""}) {
    SCOPED_TRACE("cell <" + cell + ">");
    EXPECT_TRUE(throws_with([&] { load("a,b,y\n1,2,x\n3," + cell + ",z\n"); },
                            {"data.csv", "line 3", "column 'b'", "missing value"}));
  }
  // A missing regression target and a missing class label are errors too.
  EXPECT_TRUE(throws_with([&] { load("a,y\n1,2\n3,NA\n", task(TaskKind::regression)); },
                          {"line 3", "column 'y'", "missing value ('NA')"}));
  EXPECT_TRUE(throws_with([&] { load("a,y\n1,x\n3,\n4,z\n"); },
                          {"line 3", "column 'y'", "missing class label (empty cell)"}));
}

// ---- csv_to_dataset: the target ----------------------------------------------------------------

TEST_F(CsvTest, UnknownTargetListsColumns) {
  EXPECT_TRUE(
      throws_with([&] { load("a,b,c\n1,2,3\n", task(TaskKind::regression, "price")); },
                  {"data.csv", "no target column 'price'", "the columns are: 'a', 'b', 'c'"}));
}

TEST_F(CsvTest, StringClassesMapInSortedOrder) {
  const nmsnn::Dataset d = load(
      "sepal,petal,species\n"
      "1,2,versicolor\n"
      "3,4,setosa\n"
      "5,6,virginica\n"
      "7,8,setosa\n");
  EXPECT_EQ(d.classes, 3);
  EXPECT_EQ(d.class_names, (Names{"setosa", "versicolor", "virginica"}));
  EXPECT_EQ(d.labels, (std::vector<int>{1, 0, 2, 0}));
  EXPECT_EQ(d.feature_names, (Names{"sepal", "petal"}));
  EXPECT_EQ(d.x, (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_TRUE(d.targets.empty());
  EXPECT_EQ(d.target_size, 0);
}

TEST_F(CsvTest, NumericClassesSortByValue) {
  // Bytewise "10" < "2"; by value 1 < 2 < 10. Numbers come before other text.
  const nmsnn::Dataset d = load("x,y\n0,10\n1,2\n2,1\n3,2\n4,b\n");
  EXPECT_EQ(d.class_names, (Names{"1", "2", "10", "b"}));
  EXPECT_EQ(d.labels, (std::vector<int>{2, 1, 0, 1, 3}));
  // The same class written two ways would silently become two classes; refuse it.
  EXPECT_TRUE(throws_with([&] { load("x,y\n0,1\n1,1.0\n2,2\n"); },
                          {"column 'y'", "'1' and '1.0' are the same number"}));
}

TEST_F(CsvTest, BinaryNeedsExactlyTwoClasses) {
  const nmsnn::Dataset d = load("x,y\n0,yes\n1,no\n2,yes\n", task(TaskKind::binary));
  EXPECT_EQ(d.classes, 2);
  EXPECT_EQ(d.class_names, (Names{"no", "yes"}));  // so "yes" is the positive class 1
  EXPECT_EQ(d.labels, (std::vector<int>{1, 0, 1}));
  EXPECT_TRUE(
      throws_with([&] { load("x,y\n0,a\n1,b\n2,c\n", task(TaskKind::binary)); },
                  {"column 'y'", "binary task needs exactly 2 classes, found 3: 'a', 'b', 'c'"}));
  EXPECT_TRUE(throws_with([&] { load("x,y\n0,a\n1,a\n"); },
                          {"at least 2 classes, found only 'a'"}));
}

TEST_F(CsvTest, FixedClassNamesFromAModel) {
  CsvOptions o;
  o.class_names = {"b", "a"};  // the model's order wins over sorting
  const nmsnn::Dataset d = load("x,y\n0,a\n1,b\n2,a\n", o);
  EXPECT_EQ(d.class_names, (Names{"b", "a"}));
  EXPECT_EQ(d.labels, (std::vector<int>{1, 0, 1}));
  EXPECT_TRUE(
      throws_with([&] { load("x,y\n0,a\n1,b\n2,c\n", o); },
                  {"line 4", "column 'y'", "'c' is not one of the 2 known classes: 'b', 'a'"}));
  o.task = TaskKind::binary;
  o.class_names = {"a", "b", "c"};
  EXPECT_TRUE(throws_with([&] { load("x,y\n0,a\n", o); }, {"exactly 2 class names, given 3"}));
}

TEST_F(CsvTest, RegressionTargetByName) {
  const nmsnn::Dataset d = load("price,age,rooms\n100.5,3,2\n80,10,1\n",
                                task(TaskKind::regression, "price"));
  EXPECT_EQ(d.count, 2);
  EXPECT_EQ(d.features, 2);
  EXPECT_EQ(d.feature_names, (Names{"age", "rooms"}));
  EXPECT_EQ(d.x, (std::vector<float>{3, 2, 10, 1}));
  EXPECT_EQ(d.target_size, 1);
  EXPECT_EQ(d.target_names, (Names{"price"}));
  EXPECT_EQ(d.targets, (std::vector<float>{100.5f, 80.0f}));
  EXPECT_EQ(d.classes, 0);
  EXPECT_TRUE(d.labels.empty());
  EXPECT_TRUE(throws_with([&] { load("x,y\n1,2\n2,cheap\n", task(TaskKind::regression)); },
                          {"line 3", "column 'y'", "'cheap' is not a number"}));
}

TEST_F(CsvTest, PredictionFileWithoutTarget) {
  CsvOptions o = task(TaskKind::regression, "price");
  o.allow_missing_target = true;
  const nmsnn::Dataset d = load("age,rooms\n3,2\n10,1\n", o);
  EXPECT_EQ(d.count, 2);
  EXPECT_EQ(d.feature_names, (Names{"age", "rooms"}));
  EXPECT_EQ(d.x, (std::vector<float>{3, 2, 10, 1}));
  EXPECT_TRUE(d.targets.empty());
  EXPECT_TRUE(d.labels.empty());
  o.allow_missing_target = false;
  EXPECT_TRUE(throws_with([&] { load("age,rooms\n3,2\n", o); }, {"no target column 'price'"}));
}

TEST_F(CsvTest, ChoosingAndIgnoringFeatures) {
  CsvOptions o = task(TaskKind::regression, "y");
  o.ignore = {"id"};
  const nmsnn::Dataset d = load("id,a,b,y\n17,1,2,3\n18,4,5,6\n", o);
  EXPECT_EQ(d.feature_names, (Names{"a", "b"}));
  EXPECT_EQ(d.x, (std::vector<float>{1, 2, 4, 5}));
  o.ignore = {};
  o.features = {"b", "a"};  // a saved model's order
  const nmsnn::Dataset e = load("id,a,b,y\n17,1,2,3\n18,4,5,6\n", o);
  EXPECT_EQ(e.feature_names, (Names{"b", "a"}));
  EXPECT_EQ(e.x, (std::vector<float>{2, 1, 5, 4}));
  o.features = {"a", "c"};
  EXPECT_TRUE(throws_with([&] { load("a,b,y\n1,2,3\n", o); },
                          {"no feature column 'c'", "the columns are: 'a', 'b', 'y'"}));
  o.features = {"a", "y"};
  EXPECT_TRUE(throws_with([&] { load("a,b,y\n1,2,3\n", o); }, {"'y' is the target"}));
  o.features = {};
  o.ignore = {"zz"};
  EXPECT_TRUE(throws_with([&] { load("a,b,y\n1,2,3\n", o); }, {"cannot ignore column 'zz'"}));
  EXPECT_TRUE(throws_with([&] { load("y\n1\n2\n", task(TaskKind::regression)); },
                          {"no feature columns left besides the target 'y'"}));
}

// ---- the seed data -----------------------------------------------------------------------------

TEST(SeedCsv, Iris) {
  const nmsnn::Dataset d = nmsnn::load_csv(seed_csv("iris_data.csv"), {});
  EXPECT_EQ(d.name, "iris_data");
  EXPECT_EQ(d.count, 150);
  EXPECT_EQ(d.features, 4);
  EXPECT_EQ(d.feature_names, (Names{"sepal_length", "sepal_width", "petal_length", "petal_width"}));
  EXPECT_EQ(d.classes, 3);
  EXPECT_EQ(d.class_names, (Names{"0", "1", "2"}));
  std::vector<int> per_class(3, 0);
  for (int l : d.labels) ++per_class[l];
  EXPECT_EQ(per_class, (std::vector<int>{50, 50, 50}));
  // First row 5.1,3.5,1.4,0.2,0 and last row 5.9,3.0,5.1,1.8,2.
  EXPECT_EQ(std::vector<float>(d.x.begin(), d.x.begin() + 4),
            (std::vector<float>{5.1f, 3.5f, 1.4f, 0.2f}));
  EXPECT_EQ(d.labels.front(), 0);
  EXPECT_EQ(std::vector<float>(d.x.end() - 4, d.x.end()),
            (std::vector<float>{5.9f, 3.0f, 5.1f, 1.8f}));
  EXPECT_EQ(d.labels.back(), 2);
}

TEST(SeedCsv, HousePrice) {
  const nmsnn::Dataset d =
      nmsnn::load_csv(seed_csv("house_price_data.csv"), task(TaskKind::regression, "house_price"));
  EXPECT_EQ(d.name, "house_price_data");
  EXPECT_EQ(d.count, 414);
  EXPECT_EQ(d.features, 3);
  EXPECT_EQ(d.feature_names,
            (Names{"house_age", "distance_to_nearest_MRT station", "no_of_convenience_stores"}));
  EXPECT_EQ(d.target_names, (Names{"house_price"}));
  ASSERT_EQ(d.targets.size(), 414u);
  // First row 37.9,32,84.87882,10 and last row 63.9,6.5,90.45606,9.
  EXPECT_EQ(d.targets.front(), 37.9f);
  EXPECT_EQ(std::vector<float>(d.x.begin(), d.x.begin() + 3),
            (std::vector<float>{32.0f, 84.87882f, 10.0f}));
  EXPECT_EQ(d.targets.back(), 63.9f);
  EXPECT_EQ(std::vector<float>(d.x.end() - 3, d.x.end()),
            (std::vector<float>{6.5f, 90.45606f, 9.0f}));
}
