// nmsnn/json.hpp — a small JSON value, a strict parser and a serializer.
//
// Json holds null, a bool, a number (double), a string, an array or an object. Objects keep their
// members in insertion order, so what nmsnn writes reads back in the order it was built.
// parse_json follows RFC 8259 strictly and reports the byte offset of the first problem.
// dump writes numbers so that every float32 reads back bit-exactly. The parsing underneath is
// nlohmann-json's, kept out of this header so that users of nmsnn need not have it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace nmsnn {

class Json {
 public:
  enum class Type { null, boolean, number, string, array, object };
  using Array = std::vector<Json>;
  using Object = std::vector<std::pair<std::string, Json>>;  // in insertion order, keys unique

  Json() = default;  // null
  Json(std::nullptr_t) {}
  Json(bool b) : type_(Type::boolean), bool_(b) {}
  // Any int, size_t, float or double becomes a number (stored as double).
  template <class T, std::enable_if_t<std::is_arithmetic_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Json(T number) : type_(Type::number), number_(double(number)) {}
  Json(const char* s) : type_(Type::string), string_(s) {}
  Json(std::string s) : type_(Type::string), string_(std::move(s)) {}
  Json(std::string_view s) : type_(Type::string), string_(s) {}
  Json(Array items) : type_(Type::array), array_(std::move(items)) {}

  static Json array(Array items = {}) { return Json(std::move(items)); }
  static Json object() {
    Json j;
    j.type_ = Type::object;
    return j;
  }
  // An array of numbers, the common case of metric histories and vectors.
  template <class T>
  static Json array_of(const std::vector<T>& values) {
    Array a;
    a.reserve(values.size());
    for (const T& v : values) a.emplace_back(v);
    return Json(std::move(a));
  }

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::null; }
  bool is_bool() const { return type_ == Type::boolean; }
  bool is_number() const { return type_ == Type::number; }
  bool is_string() const { return type_ == Type::string; }
  bool is_array() const { return type_ == Type::array; }
  bool is_object() const { return type_ == Type::object; }

  // Typed access; each throws nmsnn::Error naming the actual type ("expected a number, got a
  // string").
  bool as_bool() const;
  double as_number() const;
  int64_t as_int() const;  // a number that is a whole number with |value| <= 2^53
  const std::string& as_string() const;
  const Array& as_array() const;
  Array& as_array();
  const Object& as_object() const;
  Object& as_object();

  // Arrays and objects: number of items or members. Throws for other types.
  size_t size() const;
  // Array item; throws naming the index and the size.
  const Json& at(size_t index) const;
  Json& at(size_t index);
  // Object member; throws naming the missing key and listing the keys there are.
  const Json& at(const std::string& key) const;
  Json& at(const std::string& key);
  const Json* find(const std::string& key) const;  // nullptr when absent (or not an object)
  bool contains(const std::string& key) const { return find(key) != nullptr; }

  // Builders. set replaces an existing key in place or appends a new one; a null value becomes an
  // object, so `Json j; j.set("a", 1);` works. Both return *this to allow chaining.
  Json& set(const std::string& key, Json value);
  Json& push_back(Json value);

  // Compact ("{"a":1,"b":[1,2]}") when indent < 0; otherwise one member per line, indented by
  // `indent` spaces, with arrays of scalars kept on one line. Non-finite numbers are written as
  // null. Strings must be UTF-8; invalid bytes are written as U+FFFD rather than producing a file
  // no parser accepts.
  std::string dump(int indent = -1) const;

  // Deep equality; objects compare member by member in order.
  friend bool operator==(const Json& a, const Json& b);
  friend bool operator!=(const Json& a, const Json& b) { return !(a == b); }

 private:
  Type type_ = Type::null;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
  Array array_;
  Object object_;
};

const char* to_string(Json::Type type);  // "null", "boolean", "number", ...
// The type as a message says it: "null", "a boolean", "a number", "a string", "an array", ...
const char* type_phrase(Json::Type type);

// Parses exactly one JSON value (RFC 8259): optional whitespace around it and nothing else.
// Rejects trailing text, nesting deeper than kMaxJsonDepth (256) arrays/objects (so 100,000 '['
// is an error, not a stack overflow), duplicate keys, invalid UTF-8, unpaired surrogates and
// numbers outside the double range. Errors give the byte offset, line and column, and the path
// of the member or item being read, then nlohmann-json's description of the problem:
//   "<source>: invalid JSON at byte offset 69 (line 5, column 20) in 'layers[2].size': syntax
//    error while parsing object - unexpected string literal; expected '}'"
//   "<source>: invalid JSON at byte offset 76 (line 5, column 27): duplicate key 'layers[2].tau'"
// and quote what they echo of the text (keys, numbers) with detail::quote. `source` is put in as
// given: callers build it from quoted parts, e.g. detail::quote(path) (read_json_file does).
// A leading UTF-8 byte order mark is skipped (RFC 8259 allows ignoring it).
Json parse_json(std::string_view text, const std::string& source = "JSON text");

// The text of one number as dump writes it: whole numbers up to 2^53 exactly ("3", "-0"); a
// value that is exactly a float32 with the fewest digits that read back as that float32 ("0.1"
// for 0.1f); any other double with the fewest digits that read back as that double.
std::string format_json_number(double value);

// True when `s` is well-formed UTF-8 (no overlong forms, surrogates or code points > U+10FFFF).
bool is_valid_utf8(std::string_view s);

// Whole JSON files, through read_file and write_file_atomic (nmsnn/files.hpp).
Json read_json_file(const std::string& path);  // read_file + parse_json, errors name the path
void write_json_file(const std::string& path, const Json& value, int indent = 2);  // atomic

}  // namespace nmsnn
