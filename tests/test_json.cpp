// tests/test_json.cpp — the JSON value, its parser and serializer, and whole JSON files.
//
// Round trips check that what dump writes parse_json reads back identically (float32 values
// bit-exactly). The parsing itself is nlohmann-json's: the error tests check what nmsnn adds on
// top (byte offsets, the path of the value, duplicate keys, the depth limit, one safe line), not
// nlohmann's wording beyond a few words. The file helpers have their own tests (test_files.cpp).
#include <gtest/gtest.h>

#include "temp_dir.hpp"

#include "safe_message.hpp"
#include "throws_with.hpp"

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "nmsnn/error.hpp"
#include "nmsnn/files.hpp"
#include "nmsnn/json.hpp"

namespace nmsnn {
// Failed comparisons print the JSON text rather than the object's bytes.
void PrintTo(const Json& j, std::ostream* os) { *os << j.dump(); }
}  // namespace nmsnn

namespace fs = std::filesystem;
using nmsnn::Json;
using nmsnn::parse_json;

namespace {

uint32_t bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

uint64_t bits(double d) {
  uint64_t b;
  std::memcpy(&b, &d, 8);
  return b;
}

}  // namespace

// ---- parsing ----

TEST(JsonParse, Scalars) {
  EXPECT_TRUE(parse_json("null").is_null());
  EXPECT_EQ(parse_json("true").as_bool(), true);
  EXPECT_EQ(parse_json("false").as_bool(), false);
  EXPECT_EQ(parse_json("0").as_number(), 0.0);
  EXPECT_TRUE(std::signbit(parse_json("-0").as_number()));
  EXPECT_EQ(parse_json("1.5e3").as_number(), 1500.0);
  EXPECT_EQ(parse_json("-2E-2").as_number(), -0.02);
  EXPECT_EQ(parse_json("1E+2").as_number(), 100.0);
  EXPECT_EQ(parse_json("123456789012345678901234567890").as_number(), 1.2345678901234568e29);
  EXPECT_EQ(parse_json("\"text\"").as_string(), "text");
  EXPECT_EQ(parse_json(" \t\r\n 7 \n").as_number(), 7.0);
}

TEST(JsonParse, UnderflowBecomesSignedZero) {
  EXPECT_EQ(parse_json("1e-400").as_number(), 0.0);
  EXPECT_TRUE(std::signbit(parse_json("-1e-400").as_number()));
  EXPECT_EQ(parse_json("0.0000e99999999999999999999").as_number(), 0.0);
  EXPECT_EQ(parse_json("4.9406564584124654e-324").as_number(),
            std::numeric_limits<double>::denorm_min());
}

// nlohmann reads integers as int64/uint64 and larger ones as doubles; all become the nearest
// double, as if the text had been read as a double, and "-0" keeps its sign.
TEST(JsonParse, IntegersOfAnySize) {
  EXPECT_EQ(parse_json("9007199254740993").as_number(), 9007199254740992.0);  // 2^53 + 1 rounds
  EXPECT_EQ(parse_json("18446744073709551615").as_number(), 18446744073709551616.0);
  EXPECT_EQ(parse_json("18446744073709551617").as_number(), 18446744073709551616.0);
  EXPECT_EQ(parse_json("-9223372036854775808").as_number(), -9223372036854775808.0);
  EXPECT_EQ(parse_json("-9223372036854775809").as_number(), -9223372036854775808.0);
  const Json zeros = parse_json(R"([-0, 0, -0.0, -0e5, {"z": -0}])");
  EXPECT_TRUE(std::signbit(zeros.at(size_t(0)).as_number()));
  EXPECT_FALSE(std::signbit(zeros.at(size_t(1)).as_number()));
  EXPECT_TRUE(std::signbit(zeros.at(size_t(2)).as_number()));
  EXPECT_TRUE(std::signbit(zeros.at(size_t(3)).as_number()));
  EXPECT_TRUE(std::signbit(zeros.at(size_t(4)).at("z").as_number()));
  EXPECT_EQ(zeros.dump(), R"([-0,0,-0,-0,{"z":-0}])");
}

TEST(JsonParse, NestedKeepsInsertionOrder) {
  const Json j = parse_json(R"({"zeta": 1, "alpha": [true, null, {"c": "d"}], "mid": {}})");
  ASSERT_TRUE(j.is_object());
  const Json::Object& members = j.as_object();
  ASSERT_EQ(members.size(), 3u);
  EXPECT_EQ(members[0].first, "zeta");
  EXPECT_EQ(members[1].first, "alpha");
  EXPECT_EQ(members[2].first, "mid");
  EXPECT_EQ(j.at("alpha").size(), 3u);
  EXPECT_TRUE(j.at("alpha").at(size_t(1)).is_null());
  EXPECT_EQ(j.at("alpha").at(size_t(2)).at("c").as_string(), "d");
  EXPECT_EQ(j.at("mid").size(), 0u);
}

TEST(JsonParse, Escapes) {
  EXPECT_EQ(parse_json(R"("\"\\\/\b\f\n\r\t")").as_string(), "\"\\/\b\f\n\r\t");
  EXPECT_EQ(parse_json(R"("\u0041\u00e9\u20AC")").as_string(), "A\xC3\xA9\xE2\x82\xAC");
  // U+1F600 as a surrogate pair becomes one 4-byte UTF-8 sequence.
  EXPECT_EQ(parse_json(R"("\uD83D\uDE00")").as_string(), "\xF0\x9F\x98\x80");
  EXPECT_EQ(parse_json(R"("\udbff\udfff")").as_string(), "\xF4\x8F\xBF\xBF");  // U+10FFFF
  EXPECT_EQ(parse_json(R"("a\u0000b")").as_string(), std::string("a\0b", 3));
  // Raw UTF-8 passes through untouched.
  EXPECT_EQ(parse_json("\"caf\xC3\xA9 \xF0\x9F\x98\x80\"").as_string(),
            "caf\xC3\xA9 \xF0\x9F\x98\x80");
}

TEST(JsonParse, SkipsByteOrderMark) { EXPECT_EQ(parse_json("\xEF\xBB\xBF[1]").size(), 1u); }

TEST(JsonParse, DepthLimit) {
  const std::string ok = std::string(256, '[') + std::string(256, ']');
  EXPECT_NO_THROW(parse_json(ok));
  const std::string deep = std::string(257, '[') + std::string(257, ']');
  EXPECT_TRUE(throws_with([&] { parse_json(deep); }, {"byte offset 256", "deeper than 256"}));
  std::string objects;
  for (int i = 0; i < 300; ++i) objects += "{\"a\":";
  EXPECT_TRUE(throws_with([&] { parse_json(objects); }, {"deeper than 256"}));
}

// 100,000 levels would overflow the stack of a recursive parser without the limit: the error
// comes at the 257th level, whatever follows.
TEST(JsonParse, DeepNestingIsAnErrorNotACrash) {
  EXPECT_TRUE(throws_safe_line([] { parse_json(std::string(100000, '[')); },
                               {"byte offset 256", "nested deeper than 256 levels"}));
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += "{\"k\":";
  EXPECT_TRUE(throws_safe_line([&] { parse_json(objects + "1"); }, {"deeper than 256"}));
  std::string mixed;
  for (int i = 0; i < 100000; ++i) mixed += i % 2 ? "[" : "{\"k\":";
  EXPECT_TRUE(throws_safe_line([&] { parse_json(mixed); }, {"deeper than 256"}));
}

// Duplicate keys are an error (RFC 8259 leaves them to the reader; nmsnn would silently drop one)
// naming the key's path and pointing at the second occurrence.
TEST(JsonParse, DuplicateKeysNameTheirPath) {
  EXPECT_TRUE(throws_with(
      [] { parse_json(R"({"a": 1, "b": 2, "a": 3})"); },
      {"invalid JSON at byte offset 17 (line 1, column 18): duplicate key 'a'"}));
  const std::string nested = R"({
  "layers": [
    {"size": 4},
    {"size": 3},
    {"size": 2, "tau": 5, "tau": 6}
  ]
})";
  EXPECT_TRUE(throws_with([&] { parse_json(nested, "net.json"); },
                          {"net.json: invalid JSON at byte offset 76 (line 5, column 27): "
                           "duplicate key 'layers[2].tau'"}));
  // The same key in different objects, or escaped differently but different, is fine.
  EXPECT_NO_THROW(parse_json(R"({"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}], "A": 0})"));
  EXPECT_NO_THROW(parse_json(R"({"a\"": 1, "a": 2})"));
  // Escapes are compared decoded: "\u0061" is "a".
  EXPECT_TRUE(throws_with([] { parse_json(R"({"a": 1, "\u0061": 2})"); },
                          {"byte offset 9 ", "duplicate key 'a'"}));
  // A key ending in an escaped backslash still points at its opening quote.
  EXPECT_TRUE(throws_with([] { parse_json(R"({"x\\": 1, "x\\": 2})"); },
                          {"byte offset 11 ", "duplicate key 'x\\\\'"}));
}

// Syntax errors say which value was being read, as a path, as well as where in the text.
TEST(JsonParse, ErrorsNameThePath) {
  const std::string text = R"({"layers": [{"size": 4}, {"size": 3, "tau": 2.0.5}]})";
  EXPECT_TRUE(throws_with([&] { parse_json(text); },
                          {"byte offset 47 ", "in 'layers[1].tau'", "found '.'"}));
  EXPECT_TRUE(throws_with([] { parse_json("[1, 2, [3, x]]"); }, {"in '[2][1]'", "found 'x'"}));
  EXPECT_TRUE(
      throws_with([] { parse_json(R"({"lr": 1e999})"); },
                  {"byte offset 7 ", "in 'lr'", "number '1e999' is outside the double range"}));
  // At the top level there is no path to give.
  EXPECT_TRUE(throws_with([] { parse_json("tru"); }, {"byte offset 3 (line 1, column 4): syntax"}));
}

// Keys, numbers and paths from the text are quoted and cut: a newline, ESC or NUL in a key, a key
// of 10 MB, or a string of 10 MB that never ends, still gives one short line.
TEST(JsonParse, MessagesQuoteWhatTheyEcho) {
  EXPECT_TRUE(throws_safe_line([] { parse_json(R"({"a\nb":1,"a\nb":2})"); },
                               {"byte offset 10", "duplicate key 'a\\nb'"}));
  EXPECT_TRUE(throws_safe_line([] { parse_json(R"({"\u001b[2J\u0000x":1,"\u001b[2J\u0000x":2})"); },
                               {"duplicate key '\\x1b[2J\\x00x'"}));
  const std::string big(10 << 20, 'k');
  EXPECT_TRUE(throws_safe_line([&] { parse_json("{\"" + big + "\":1,\"" + big + "\":2}"); },
                               {"duplicate key 'kkkk", "...' (10485760 bytes)"}));
  EXPECT_TRUE(throws_safe_line([&] { parse_json("{\"" + big + "\":[1,}"); },
                               {"in 'kkkk", "...' (10485763 bytes): syntax error"}));
  EXPECT_TRUE(throws_safe_line([&] { parse_json("\"\x1b[31m\n" + big); },
                               {"byte offset 1 ", "control character", "found byte 0x1B"}));
  EXPECT_TRUE(throws_safe_line([&] { parse_json("[\"\xC3\xA9\xFF" + big); },
                               {"ill-formed UTF-8", "found byte 0xFF"}));
  EXPECT_TRUE(throws_safe_line([&] { parse_json("\"" + big); },
                               {"missing closing quote; found end of input"}));
  const std::string long_number = "1" + std::string(1 << 20, '0') + "e400";
  EXPECT_TRUE(throws_safe_line([&] { parse_json(long_number); },
                               {"number '100000", "(1048581 bytes) is outside the double range"}));
  // The source is put in as the caller built it.
  EXPECT_TRUE(throws_with([] { parse_json("[", "'my\\nfile.json'"); },
                          {"'my\\nfile.json': invalid JSON at byte offset 1"}));
}

// Each malformed text is rejected with the byte offset of the problem (where nlohmann's lexer
// stopped: the offending byte, or the end of input) and a few words of what was wrong.
TEST(JsonParse, ErrorsNameOffsetAndExpectation) {
  struct Case {
    std::string text;
    size_t offset;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"", 0, "unexpected end of input"},
      {"   ", 3, "unexpected end of input"},
      {"[1,2", 4, "unexpected end of input; expected ']'"},
      {"[1,]", 3, "unexpected ']'"},
      {"[1 2]", 3, "unexpected number literal; expected ']'"},
      {"{\"a\":1,}", 7, "unexpected '}'; expected string literal"},
      {"{\"a\" 1}", 5, "expected ':'"},
      {"{1:2}", 1, "expected string literal"},
      {"{\"a\":1 \"b\":2}", 9, "unexpected string literal; expected '}'"},
      {"{\"a\":1,\"a\":2}", 7, "duplicate key 'a'"},
      {"[1] x", 4, "found 'x'; expected end of input"},
      {"[1]]", 3, "unexpected ']'; expected end of input"},
      {"01", 1, "expected end of input"},  // a leading zero ends the number "0"
      {"-", 1, "expected digit after '-'; found end of input"},
      {"-x", 1, "expected digit after '-'; found 'x'"},
      {"1.", 2, "expected digit after '.'"},
      {"1.e5", 2, "expected digit after '.'; found 'e'"},
      {".5", 0, "invalid literal; found '.'"},
      {"+1", 0, "found '+'"},
      {"1e", 2, "digit after exponent"},
      {"1e+", 3, "digit after exponent sign"},
      {"1e400", 0, "number '1e400' is outside the double range"},
      {"-1.5e99999999999999999999", 0, "outside the double range"},
      {"NaN", 0, "invalid literal; found 'N'"},
      {"Infinity", 0, "found 'I'"},
      {"tru", 3, "invalid literal; found end of input"},
      {"nul", 3, "invalid literal"},
      {"falsy", 4, "invalid literal; found 'y'"},
      {"True", 0, "found 'T'"},
      {"\"abc", 4, "missing closing quote"},
      {"\"abc\\", 5, "found end of input"},
      {"\"a\nb\"", 2, "control character U+000A (LF) must be escaped"},
      {"\"a\tb\"", 2, "found byte 0x09"},
      {"\"\\x\"", 2, "forbidden character after backslash; found 'x'"},
      {"\"\\u12G4\"", 5, "must be followed by 4 hex digits; found 'G'"},
      {"\"\\u12\"", 5, "4 hex digits"},
      {"\"\\uD800\"", 7, "surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF"},
      {"\"\\uD800x\"", 7, "surrogate"},
      {"\"\\uDC00\"", 6, "surrogate U+DC00..U+DFFF must follow U+D800..U+DBFF"},
      {"\"\\uD800\\u0041\"", 12, "must be followed by U+DC00..U+DFFF"},
      {"\"\xFF\"", 1, "ill-formed UTF-8 byte; found byte 0xFF"},
      {"\"ab\xC0\xAF\"", 3, "found byte 0xC0"},                // overlong '/'
      {"\"\xED\xA0\x80\"", 2, "ill-formed UTF-8 byte"},        // encoded surrogate
      {"\"\xF4\x90\x80\x80\"", 2, "ill-formed UTF-8 byte"},    // above U+10FFFF
      {"\"\xE2\x82\"", 3, "ill-formed UTF-8 byte; found '\"'"},  // cut short
      {"[\x01]", 1, "found byte 0x01"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("text: " + c.text);
    EXPECT_TRUE(throws_safe_line(
        [&] { parse_json(c.text); },
        {"JSON text: invalid JSON at byte offset " + std::to_string(c.offset) + " ", c.says}));
  }
}

TEST(JsonParse, ErrorsNameSourceLineAndColumn) {
  const std::string text = "{\n  \"a\": x\n}";
  EXPECT_TRUE(throws_with(
      [&] { parse_json(text, "config.json"); },
      {"config.json: invalid JSON at byte offset 9 (line 2, column 8) in 'a'", "found 'x'"}));
}

// ---- serializing ----

TEST(JsonDump, CompactAndPretty) {
  Json j;
  j.set("name", "snn").set("layers", Json::array_of(std::vector<int>{784, 100, 10}));
  j.set("ok", true).set("none", nullptr).set("empty", Json::object()).set("list", Json::array());
  Json nested = Json::object();
  nested.set("lr", 0.5).set("rows", Json::array({Json::array_of(std::vector<int>{1, 2}),
                                                 Json::array_of(std::vector<int>{3, 4})}));
  j.set("opt", nested);
  EXPECT_EQ(j.dump(),
            R"({"name":"snn","layers":[784,100,10],"ok":true,"none":null,"empty":{},"list":[],)"
            R"("opt":{"lr":0.5,"rows":[[1,2],[3,4]]}})");
  EXPECT_EQ(j.dump(2), R"({
  "name": "snn",
  "layers": [784, 100, 10],
  "ok": true,
  "none": null,
  "empty": {},
  "list": [],
  "opt": {
    "lr": 0.5,
    "rows": [
      [1, 2],
      [3, 4]
    ]
  }
})");
  EXPECT_EQ(parse_json(j.dump()), j);
  EXPECT_EQ(parse_json(j.dump(2)), j);
  EXPECT_EQ(parse_json(j.dump(4)).dump(), j.dump());
  EXPECT_EQ(Json(3).dump(2), "3");
}

TEST(JsonDump, EscapesStrings) {
  const std::string s =
      std::string("q\"b\\s/\b\f\n\r\t\x01\x1f\x7f") + "\xC3\xA9" + std::string(1, '\0');
  const std::string text = Json(s).dump();
  EXPECT_EQ(text, "\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\xC3\xA9\\u0000\"");
  EXPECT_EQ(parse_json(text).as_string(), s);
  // Invalid UTF-8 is replaced, so the output is always valid JSON.
  const std::string bad = Json(std::string("a\xFF"
                                           "b\xC3"))
                              .dump();
  EXPECT_EQ(bad,
            "\"a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD\"");
  EXPECT_TRUE(nmsnn::is_valid_utf8(bad));
  EXPECT_EQ(parse_json(bad).as_string(),
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD");
}

TEST(JsonDump, KeysAreEscapedToo) {
  Json j;
  j.set("a\"b\n", 1);
  EXPECT_EQ(j.dump(), "{\"a\\\"b\\n\":1}");
  EXPECT_EQ(parse_json(j.dump()).at("a\"b\n").as_number(), 1.0);
}

TEST(JsonDump, NonFiniteNumbersBecomeNull) {
  const Json j = Json::array_of(std::vector<double>{1.0, std::nan(""), INFINITY, -INFINITY});
  EXPECT_EQ(j.dump(), "[1,null,null,null]");
}

TEST(JsonNumbers, Format) {
  using nmsnn::format_json_number;
  EXPECT_EQ(format_json_number(3), "3");
  EXPECT_EQ(format_json_number(-42), "-42");
  EXPECT_EQ(format_json_number(0.0), "0");
  EXPECT_EQ(format_json_number(-0.0), "-0");
  EXPECT_EQ(format_json_number(0.5), "0.5");
  EXPECT_EQ(format_json_number(0.1), "0.1");
  EXPECT_EQ(format_json_number(0.1f), "0.1");  // not 0.100000001490116...
  EXPECT_EQ(format_json_number(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(format_json_number(1.0f / 3), "0.33333334");
  EXPECT_EQ(format_json_number(9007199254740992.0), "9007199254740992");  // 2^53
  EXPECT_EQ(format_json_number(1e300), "1e+300");
  EXPECT_EQ(format_json_number(FLT_MAX), "3.4028235e+38");
  EXPECT_EQ(format_json_number(1e-7), "1e-07");
  EXPECT_EQ(format_json_number(NAN), "null");
  // Whole numbers of data offsets are exact whatever their size.
  EXPECT_EQ(format_json_number(1073741824.0), "1073741824");  // 2^30, also a float
}

// Every float32 written by dump reads back bit-exactly once narrowed to float; every double
// that is not a float32 reads back bit-exactly as a double.
TEST(JsonNumbers, Float32RoundTripIsExact) {
  std::vector<float> values = {0.1f,
                               1.0f / 3,
                               -2.5e-3f,
                               FLT_MAX,
                               -FLT_MAX,
                               FLT_MIN,
                               std::numeric_limits<float>::denorm_min(),
                               1e-40f,
                               16777216.0f,
                               16777218.0f,
                               3e38f,
                               1.17549421e-38f,
                               0.0f,
                               -0.0f};
  std::mt19937 rng(12345);
  for (int i = 0; i < 200000; ++i) {
    const uint32_t b = uint32_t(rng());
    float f;
    std::memcpy(&f, &b, 4);
    if (std::isfinite(f)) values.push_back(f);
  }
  for (float f : values) {
    const std::string text = nmsnn::format_json_number(f);
    const float back = float(parse_json(text).as_number());
    ASSERT_EQ(bits(back), bits(f)) << "float " << f << " written as " << text;
  }
  // Inside a document too.
  const std::vector<float> weights(values.begin(), values.begin() + 1000);
  const Json doc = parse_json(Json::array_of(weights).dump());
  for (size_t i = 0; i < weights.size(); ++i) {
    ASSERT_EQ(bits(float(doc.at(i).as_number())), bits(weights[i])) << i;
  }
}

TEST(JsonNumbers, DoubleRoundTripIsExact) {
  std::mt19937_64 rng(777);
  int checked = 0;
  for (int i = 0; i < 200000; ++i) {
    const uint64_t b = rng();
    double d;
    std::memcpy(&d, &b, 8);
    if (!std::isfinite(d) || double(float(d)) == d) continue;
    ++checked;
    const std::string text = nmsnn::format_json_number(d);
    ASSERT_EQ(bits(parse_json(text).as_number()), bits(d)) << "written as " << text;
  }
  EXPECT_GT(checked, 100000);
  for (double d : {0.1, 1e-300, 123456.789, -2.2250738585072014e-308, 4.9e-324}) {
    EXPECT_EQ(bits(parse_json(nmsnn::format_json_number(d)).as_number()), bits(d)) << d;
  }
}

// ---- access ----

TEST(JsonAccess, TypedAccessorsNameTheActualType) {
  const Json j = parse_json(R"({"lr": 0.5, "name": "x", "layers": [1, 2], "on": true, "n": null})");
  EXPECT_EQ(j.at("lr").as_number(), 0.5);
  EXPECT_TRUE(throws_with([&] { j.at("name").as_number(); }, {"is a string, expected a number"}));
  EXPECT_TRUE(throws_with([&] { j.at("lr").as_string(); }, {"is a number, expected a string"}));
  EXPECT_TRUE(throws_with([&] { j.at("layers").as_bool(); }, {"is an array, expected a boolean"}));
  EXPECT_TRUE(throws_with([&] { j.at("n").as_array(); }, {"is null, expected an array"}));
  EXPECT_TRUE(throws_with([&] { j.at("on").as_object(); }, {"is a boolean, expected an object"}));
  EXPECT_TRUE(throws_with([&] { j.at("lr").size(); }, {"is a number"}));
}

TEST(JsonAccess, MissingKeyListsKeys) {
  const Json j = parse_json(R"({"lr": 0.5, "epochs": 3})");
  EXPECT_TRUE(throws_with([&] { j.at("batch"); },
                          {"no key 'batch'", "its keys are: 'lr', 'epochs'"}));
  EXPECT_TRUE(throws_with([] { Json::object().at("x"); }, {"no key 'x'", "the object is empty"}));
  EXPECT_EQ(j.find("batch"), nullptr);
  EXPECT_FALSE(j.contains("batch"));
  EXPECT_TRUE(j.contains("lr"));
  EXPECT_EQ(Json(1).find("lr"), nullptr);
}

TEST(JsonAccess, MissingKeyMessageIsOneShortLine) {
  Json j = Json::object();
  for (int i = 0; i < 1000; ++i) j.set(std::string(100, 'a') + "\n" + std::to_string(i), i);
  EXPECT_TRUE(throws_safe_line([&] { j.at("no\x1b]0;title\x07"); },
                               {"no key 'no\\x1b]0;title\\x07'", "its keys are: 'aaaa",
                                "... (1000 in all)"}));
}

TEST(JsonAccess, ArrayIndexAndIntegers) {
  const Json j = parse_json("[3, 2.5, -9007199254740992, 1e300]");
  EXPECT_EQ(j.at(size_t(0)).as_int(), 3);
  EXPECT_EQ(j.at(size_t(2)).as_int(), -9007199254740992LL);
  EXPECT_TRUE(throws_with([&] { j.at(size_t(1)).as_int(); }, {"2.5 is not a whole number"}));
  EXPECT_TRUE(throws_with([&] { j.at(size_t(3)).as_int(); }, {"not a whole number within"}));
  // Values built in code are checked the same way before any conversion.
  EXPECT_TRUE(throws_with([] { Json(NAN).as_int(); }, {"is not a whole number"}));
  EXPECT_TRUE(throws_with([] { Json(INFINITY).as_int(); }, {"is not a whole number"}));
  EXPECT_TRUE(throws_with([] { Json(1e19).as_int(); }, {"not a whole number within +-2^53"}));
  EXPECT_TRUE(throws_with([&] { j.at(size_t(4)); }, {"index 4 is out of range", "4 items"}));
}

TEST(JsonAccess, BuildersReplaceInPlace) {
  Json j;
  j.set("a", 1).set("b", 2).set("a", 3);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j.as_object()[0].first, "a");
  EXPECT_EQ(j.at("a").as_number(), 3.0);
  Json list;
  list.push_back(1).push_back("two").push_back(Json::array());
  EXPECT_EQ(list.dump(), R"([1,"two",[]])");
  j.at("b") = "changed";
  EXPECT_EQ(j.dump(), R"({"a":3,"b":"changed"})");
  EXPECT_TRUE(throws_with([] { Json(1).set("a", 2); }, {"is a number, expected an object"}));
  EXPECT_NE(parse_json("[1,2]"), parse_json("[2,1]"));
  EXPECT_NE(parse_json(R"({"a":1,"b":2})"), parse_json(R"({"b":2,"a":1})"));  // order matters
}

// ---- files ----

class JsonFiles : public TempDirTest {};

TEST_F(JsonFiles, WriteAndReadBack) {
  Json j;
  j.set("accuracy", 0.97f).set("classes", Json::array({"setosa", "versicolor"}));
  const std::string path = (dir / "report.json").string();
  nmsnn::write_json_file(path, j);
  EXPECT_EQ(nmsnn::read_file(path), j.dump(2) + "\n");
  // 0.97f is written as "0.97": it reads back as the double 0.97, which narrows to 0.97f.
  const Json back = nmsnn::read_json_file(path);
  EXPECT_EQ(back.dump(), j.dump());
  EXPECT_EQ(float(back.at("accuracy").as_number()), 0.97f);
  EXPECT_EQ(back.at("classes"), j.at("classes"));
  // Overwriting leaves exactly one file, no temporaries.
  nmsnn::write_json_file(path, Json(1));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  EXPECT_EQ(nmsnn::read_json_file(path), Json(1));
}

TEST_F(JsonFiles, ErrorsNameThePath) {
  const std::string missing = (dir / "missing.json").string();
  EXPECT_TRUE(throws_with([&] { nmsnn::read_json_file(missing); }, {missing, "cannot open"}));
  const std::string bad = (dir / "bad.json").string();
  nmsnn::write_file_atomic(bad, "{\"a\": }");
  EXPECT_TRUE(throws_with([&] { nmsnn::read_json_file(bad); },
                          {bad, "invalid JSON at byte offset 6", "in 'a'", "unexpected '}'"}));
  const std::string nowhere = (dir / "no-dir" / "x.json").string();
  EXPECT_TRUE(throws_with([&] { nmsnn::write_json_file(nowhere, Json(1)); },
                          {nowhere, "cannot create a temporary file"}));
}
