// io/json.cpp — the JSON value, and parsing and writing it with nlohmann-json underneath.
//
// Parsing: nlohmann's SAX interface (sax_parse) rather than its DOM, because the events let this
// file build nmsnn::Json directly (no second tree to convert) and add what nmsnn needs on top of
// RFC 8259: duplicate keys are an error naming the key's path (`layers[2].tau`), and nesting is
// bounded by kMaxJsonDepth, since Json's copy, comparison and dump recurse and 100,000 '[' must be
// an error, not a stack overflow. nlohmann's own parser keeps its nesting on a heap stack, so it
// never recurses. The text reaches nlohmann through an iterator that counts the bytes taken: the
// events carry no position, and the count gives every error a byte offset, line and column.
//
// Writing: a loop of its own, because the layout (arrays of scalars on one line) and the numbers
// (format_json_number: the shortest text that reads back as the same float32) are nmsnn's;
// strings go through nlohmann's serializer, which escapes them and replaces bytes that are not
// UTF-8 with U+FFFD. nlohmann stays in this file: no public header includes it.
#include "nmsnn/json.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <iterator>
#include <nlohmann/json.hpp>
#include <unordered_set>
#include <vector>

#include "nmsnn/error.hpp"
#include "nmsnn/files.hpp"
#include "nmsnn/limits.hpp"

namespace nmsnn {

using detail::fail;

namespace {

constexpr double kMaxExactInteger = 9007199254740992.0;  // 2^53

const char* article(Json::Type t) {
  return t == Json::Type::array || t == Json::Type::object ? "an " : "a ";
}

[[noreturn]] void wrong_type(Json::Type actual, const char* expected) {
  fail("JSON value is ", actual == Json::Type::null ? "" : article(actual), to_string(actual),
       ", expected ", expected);
}

// ---- parser ----

// A pointer into the text that counts the bytes nlohmann's lexer has taken, one at a time (it
// never backs up), so the handler knows where in the text each event happened.
struct CountingIterator {
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  const char* at;
  size_t* taken;

  const char& operator*() const { return *at; }
  CountingIterator& operator++() {
    ++at;
    ++*taken;
    return *this;
  }
  bool operator==(const CountingIterator& other) const { return at == other.at; }
  bool operator!=(const CountingIterator& other) const { return at != other.at; }
};

// Builds a Json from nlohmann's SAX events. Arrays and objects that are open wait on a stack until
// they end; an object's frame holds the key being read and the keys seen so far.
class Builder final : public nlohmann::json_sax<nlohmann::json> {
 public:
  Builder(std::string_view text, const std::string& source) : text_(text), source_(source) {}

  Json parse() {
    const CountingIterator first{text_.data(), &taken_};
    const CountingIterator last{text_.data() + text_.size(), &taken_};
    nlohmann::json::sax_parse(first, last, this);  // every error throws from parse_error below
    return std::move(root_);
  }

  bool null() override { return add(Json()); }
  bool boolean(bool value) override { return add(Json(value)); }
  // nlohmann reads a number without '-' as unsigned and one with '-' as signed, so a signed zero
  // was "-0": its sign is kept, as a float32 written as -0 must read back bit-exactly.
  bool number_integer(number_integer_t value) override {
    return add(value == 0 ? Json(-0.0) : Json(value));
  }
  bool number_unsigned(number_unsigned_t value) override { return add(Json(value)); }
  bool number_float(number_float_t value, const string_t&) override { return add(Json(value)); }
  bool string(string_t& value) override { return add(Json(std::move(value))); }
  bool binary(binary_t&) override { return true; }  // only binary formats (CBOR, ...) have these
  bool start_object(size_t) override { return open(Json::object()); }
  bool start_array(size_t) override { return open(Json::array()); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }

  bool key(string_t& key) override {
    Frame& object = open_.back();
    object.key = key;
    if (!object.keys.insert(std::move(key)).second) {
      error_at(string_start(), "", "duplicate key " + detail::quote(path()));
    }
    return true;
  }

  bool parse_error(size_t position, const std::string& last_token,
                   const nlohmann::json::exception& e) override {
    // 406 is a number beyond the double range, found once all of it (last_token) was read.
    if (e.id == 406) {
      const size_t start = position - std::min(position, last_token.size());
      error_at(start, path(),
               "number " + detail::quote(last_token, 40) + " is outside the double range");
    }
    // Otherwise `position` counts the byte the lexer stopped at (or the end of input) as read.
    const size_t at = std::min(position == 0 ? 0 : position - 1, text_.size());
    error_at(at, path(), reason(e.what(), last_token, describe(at)));
  }

 private:
  struct Frame {
    Json value;                            // the array or object being filled
    std::string key;                       // objects: the member being read
    std::unordered_set<std::string> keys;  // objects: every key so far
  };

  bool add(Json value) {
    if (open_.empty()) {
      root_ = std::move(value);
    } else if (Frame& f = open_.back(); f.value.is_array()) {
      f.value.as_array().push_back(std::move(value));
    } else {
      f.value.as_object().emplace_back(f.key, std::move(value));
    }
    return true;
  }

  bool open(Json container) {
    if (open_.size() >= size_t(kMaxJsonDepth)) {
      error_at(taken_ - 1, "",  // the '[' or '{' just taken; its path is as deep as the limit
               "arrays and objects nested deeper than " + std::to_string(kMaxJsonDepth) +
                   " levels");
    }
    open_.push_back({std::move(container), {}, {}});
    return true;
  }

  bool close() {
    Json done = std::move(open_.back().value);
    open_.pop_back();
    return add(std::move(done));
  }

  // Where the parser is, as a user would write it: `layers[2].tau`, the array item or object
  // member being read in each open container. Keys go in as they are; messages quote the whole.
  std::string path() const {
    std::string p;
    for (const Frame& f : open_) {
      if (f.value.is_array()) {
        p += "[" + std::to_string(f.value.size()) + "]";
      } else if (!f.keys.empty()) {
        p += (p.empty() ? "" : ".") + f.key;
      }
    }
    return p;
  }

  // The offset of the '"' that opens the string just read, whose closing '"' was the last byte
  // taken. Inside a string every '"' is escaped, so the opening one is the nearest '"' before it
  // with an even number of backslashes in front.
  size_t string_start() const {
    for (size_t i = taken_ - 1; i-- > 0;) {
      if (text_[i] != '"') continue;
      size_t backslashes = 0;
      while (backslashes < i && text_[i - 1 - backslashes] == '\\') ++backslashes;
      if (backslashes % 2 == 0) return i;
    }
    return 0;
  }

  // What sits at `at`, for "found Y".
  std::string describe(size_t at) const {
    if (at >= text_.size()) return "end of input";
    const unsigned char c = text_[at];
    char buf[16];
    if (c >= 0x20 && c < 0x7F) {
      std::snprintf(buf, sizeof buf, "'%c'", c);
    } else {
      std::snprintf(buf, sizeof buf, "byte 0x%02X", c);
    }
    return buf;
  }

  // nlohmann's message, e.g. "[json.exception.parse_error.101] parse error at line 1, column 4:
  // syntax error while parsing value - invalid literal; last read: 'tru'", without its position
  // (the message gives the byte offset instead) and without "last read: '<token>'": the token's
  // raw bytes, of any length, become what is found at the offset.
  static std::string reason(std::string what, const std::string& last_token,
                            const std::string& found) {
    const size_t colon = what.find(": ");
    if (colon != std::string::npos) what.erase(0, colon + 2);
    const std::string echo = "; last read: '" + last_token + "'";
    if (const size_t at = what.find(echo); at != std::string::npos) {
      what.replace(at, echo.size(), "; found " + found);
    } else if (const size_t cut = what.find("; last read: "); cut != std::string::npos) {
      what.erase(cut);
    }
    return what;
  }

  [[noreturn]] void error_at(size_t at, const std::string& where, const std::string& what) const {
    size_t line = 1, line_start = 0;
    for (size_t i = 0; i < at && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        line_start = i + 1;
      }
    }
    fail(source_, ": invalid JSON at byte offset ", at, " (line ", line, ", column ",
         at - line_start + 1, ")", where.empty() ? "" : " in " + detail::quote(where), ": ", what);
  }

  std::string_view text_;
  const std::string& source_;
  size_t taken_ = 0;  // bytes nlohmann has read so far
  std::vector<Frame> open_;
  Json root_;
};

// ---- serializer ----

// A string as JSON text. nlohmann's serializer escapes it (", \, and control characters) and,
// with `replace`, writes U+FFFD for bytes that are not UTF-8, so the output is always valid JSON.
void append_string(std::string& out, const std::string& s) {
  out += nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool is_container(const Json& j) { return j.is_array() || j.is_object(); }

void dump_to(std::string& out, const Json& j, int indent, int level) {
  const auto newline = [&](int lvl) {
    out += '\n';
    out.append(size_t(indent) * size_t(lvl), ' ');
  };
  switch (j.type()) {
    case Json::Type::null: out += "null"; return;
    case Json::Type::boolean: out += j.as_bool() ? "true" : "false"; return;
    case Json::Type::number: out += format_json_number(j.as_number()); return;
    case Json::Type::string: append_string(out, j.as_string()); return;
    case Json::Type::array: {
      const Json::Array& items = j.as_array();
      bool flat = indent < 0;
      if (!flat) {
        flat = true;
        for (const Json& item : items) flat = flat && !is_container(item);
      }
      out += '[';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += indent < 0 ? "," : flat ? ", " : ",";
        if (!flat) newline(level + 1);
        dump_to(out, items[i], indent, level + 1);
      }
      if (!flat && !items.empty()) newline(level);
      out += ']';
      return;
    }
    case Json::Type::object: {
      const Json::Object& members = j.as_object();
      out += '{';
      for (size_t i = 0; i < members.size(); ++i) {
        if (i) out += ',';
        if (indent >= 0) newline(level + 1);
        append_string(out, members[i].first);
        out += indent < 0 ? ":" : ": ";
        dump_to(out, members[i].second, indent, level + 1);
      }
      if (indent >= 0 && !members.empty()) newline(level);
      out += '}';
      return;
    }
  }
}

}  // namespace

// ---- Json ----

const char* to_string(Json::Type type) {
  switch (type) {
    case Json::Type::null: return "null";
    case Json::Type::boolean: return "boolean";
    case Json::Type::number: return "number";
    case Json::Type::string: return "string";
    case Json::Type::array: return "array";
    case Json::Type::object: return "object";
  }
  return "unknown";
}

const char* type_phrase(Json::Type type) {
  switch (type) {
    case Json::Type::null: return "null";
    case Json::Type::boolean: return "a boolean";
    case Json::Type::number: return "a number";
    case Json::Type::string: return "a string";
    case Json::Type::array: return "an array";
    case Json::Type::object: return "an object";
  }
  return "unknown";
}

bool Json::as_bool() const {
  if (type_ != Type::boolean) wrong_type(type_, "a boolean");
  return bool_;
}

double Json::as_number() const {
  if (type_ != Type::number) wrong_type(type_, "a number");
  return number_;
}

int64_t Json::as_int() const {
  const double v = as_number();
  if (v != std::trunc(v) || std::fabs(v) > kMaxExactInteger) {
    fail("JSON number ", format_json_number(v), " is not a whole number within +-2^53");
  }
  return int64_t(v);
}

const std::string& Json::as_string() const {
  if (type_ != Type::string) wrong_type(type_, "a string");
  return string_;
}

const Json::Array& Json::as_array() const {
  if (type_ != Type::array) wrong_type(type_, "an array");
  return array_;
}

Json::Array& Json::as_array() {
  if (type_ != Type::array) wrong_type(type_, "an array");
  return array_;
}

const Json::Object& Json::as_object() const {
  if (type_ != Type::object) wrong_type(type_, "an object");
  return object_;
}

Json::Object& Json::as_object() {
  if (type_ != Type::object) wrong_type(type_, "an object");
  return object_;
}

size_t Json::size() const {
  if (type_ == Type::array) return array_.size();
  if (type_ == Type::object) return object_.size();
  wrong_type(type_, "an array or an object");
}

const Json& Json::at(size_t index) const {
  const Array& items = as_array();
  if (index >= items.size()) {
    fail("JSON array index ", index, " is out of range (the array has ", items.size(), " items)");
  }
  return items[index];
}

Json& Json::at(size_t index) {
  return const_cast<Json&>(static_cast<const Json&>(*this).at(index));
}

const Json* Json::find(const std::string& key) const {
  if (type_ != Type::object) return nullptr;
  for (const auto& member : object_) {
    if (member.first == key) return &member.second;
  }
  return nullptr;
}

const Json& Json::at(const std::string& key) const {
  const Object& members = as_object();
  for (const auto& member : members) {
    if (member.first == key) return member.second;
  }
  std::string keys;
  size_t listed = 0;
  for (; listed < members.size() && keys.size() < 200; ++listed) {
    keys += (listed ? ", " : "") + detail::quote(members[listed].first, 40);
  }
  if (listed < members.size()) keys += ", ... (" + std::to_string(members.size()) + " in all)";
  fail("JSON object has no key ", detail::quote(key), "; ",
       members.empty() ? std::string("the object is empty") : "its keys are: " + keys);
}

Json& Json::at(const std::string& key) {
  return const_cast<Json&>(static_cast<const Json&>(*this).at(key));
}

Json& Json::set(const std::string& key, Json value) {
  if (type_ == Type::null) type_ = Type::object;
  Object& members = as_object();
  for (auto& member : members) {
    if (member.first == key) {
      member.second = std::move(value);
      return *this;
    }
  }
  members.emplace_back(key, std::move(value));
  return *this;
}

Json& Json::push_back(Json value) {
  if (type_ == Type::null) type_ = Type::array;
  as_array().push_back(std::move(value));
  return *this;
}

std::string Json::dump(int indent) const {
  std::string out;
  dump_to(out, *this, indent, 0);
  return out;
}

bool operator==(const Json& a, const Json& b) {
  if (a.type_ != b.type_) return false;
  switch (a.type_) {
    case Json::Type::null: return true;
    case Json::Type::boolean: return a.bool_ == b.bool_;
    case Json::Type::number: return a.number_ == b.number_;
    case Json::Type::string: return a.string_ == b.string_;
    case Json::Type::array: return a.array_ == b.array_;
    case Json::Type::object: return a.object_ == b.object_;
  }
  return false;
}

// ---- free functions ----

Json parse_json(std::string_view text, const std::string& source) {
  return Builder(text, source).parse();
}

std::string format_json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  if (v == std::trunc(v) && std::fabs(v) <= kMaxExactInteger) {
    if (v == 0) return std::signbit(v) ? "-0" : "0";
    const auto r = std::to_chars(buf, buf + sizeof buf, int64_t(v));
    return std::string(buf, r.ptr);
  }
  // A float32 parameter gets its shortest float form ("0.1", not "0.100000001490116"), kept only
  // if reading it back as double and narrowing gives the same float, which is what readers do.
  const float f = float(v);
  if (double(f) == v) {
    const auto r = std::to_chars(buf, buf + sizeof buf, f);
    double back = 0;
    std::from_chars(buf, r.ptr, back);
    if (float(back) == f) return std::string(buf, r.ptr);
  }
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}


// nlohmann's serializer checks UTF-8 strictly (RFC 3629: no overlong forms, surrogates or code
// points above U+10FFFF) and, unless told to replace, throws at the first bad byte.
bool is_valid_utf8(std::string_view s) {
  try {
    nlohmann::json(std::string(s)).dump();
    return true;
  } catch (const nlohmann::json::type_error&) {
    return false;
  }
}

Json read_json_file(const std::string& path) {
  return parse_json(read_file(path), detail::quote(path));
}

void write_json_file(const std::string& path, const Json& value, int indent) {
  write_file_atomic(path, value.dump(indent) + "\n");
}

}  // namespace nmsnn
