// io/json.cpp — the JSON value, its strict parser and serializer, and the whole-file helpers.
//
// Numbers go through <charconv> (locale-independent, shortest round-trip output). The parser is
// recursive descent over bytes; every error carries the byte offset so a user can find it in a
// hand-edited file.
#include "nmsnn/json.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <unordered_set>
#include <vector>

#include "nmsnn/error.hpp"
#include "nmsnn/limits.hpp"

namespace nmsnn {

using detail::fail;

namespace {

constexpr int kMaxDepth = 256;
constexpr double kMaxExactInteger = 9007199254740992.0;  // 2^53

// Length of the UTF-8 sequence starting at s[i], or 0 when it is not well-formed (RFC 3629:
// no overlong forms, no surrogates, nothing above U+10FFFF).
size_t utf8_length(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return k < s.size() ? (unsigned char)s[k] : 0u; };
  const unsigned c = byte(i);
  if (c < 0x80) return 1;
  const auto cont = [&](size_t k, unsigned lo = 0x80, unsigned hi = 0xBF) {
    const unsigned b = byte(k);
    return k < s.size() && b >= lo && b <= hi;
  };
  if (c >= 0xC2 && c <= 0xDF) return cont(i + 1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    const unsigned lo = c == 0xE0 ? 0xA0 : 0x80;  // E0 80..9F would be overlong
    const unsigned hi = c == 0xED ? 0x9F : 0xBF;  // ED A0..BF would be a surrogate
    return cont(i + 1, lo, hi) && cont(i + 2) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    const unsigned lo = c == 0xF0 ? 0x90 : 0x80;  // F0 80..8F would be overlong
    const unsigned hi = c == 0xF4 ? 0x8F : 0xBF;  // F4 90.. would be above U+10FFFF
    return cont(i + 1, lo, hi) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  }
  return 0;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

const char* article(Json::Type t) {
  return t == Json::Type::array || t == Json::Type::object ? "an " : "a ";
}

[[noreturn]] void wrong_type(Json::Type actual, const char* expected) {
  fail("JSON value is ", actual == Json::Type::null ? "" : article(actual), to_string(actual),
       ", expected ", expected);
}

// ---- parser ----

class Parser {
 public:
  Parser(std::string_view text, const std::string& source) : text_(text), source_(source) {}

  Json parse_document() {
    if (text_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
    skip_whitespace();
    Json value = parse_value();
    skip_whitespace();
    if (pos_ < text_.size()) error("expected end of input after the JSON value, found " + found());
    return value;
  }

 private:
  [[noreturn]] void error(const std::string& what) const { error_at(pos_, what); }
  [[noreturn]] void error_at(size_t at, const std::string& what) const {
    size_t line = 1, line_start = 0;
    for (size_t i = 0; i < at && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        line_start = i + 1;
      }
    }
    fail(source_, ": invalid JSON at byte offset ", at, " (line ", line, ", column ",
         at - line_start + 1, "): ", what);
  }

  // What sits at the cursor, for "expected X, found Y".
  std::string found() const { return describe(pos_); }
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

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }

  void skip_whitespace() {
    while (!at_end()) {
      const char c = text_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  Json parse_value() {
    if (at_end()) error("expected a value, found end of input");
    switch (peek()) {
      case '{': return parse_object();
      case '[': return parse_array();
      case '"': return Json(parse_string());
      case 't': expect_literal("true"); return Json(true);
      case 'f': expect_literal("false"); return Json(false);
      case 'n': expect_literal("null"); return Json();
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return parse_number();
        error("expected a value (object, array, string, number, true, false or null), found " +
              found());
    }
  }

  void expect_literal(const char* word) {
    const size_t n = std::strlen(word);
    if (text_.substr(pos_, n) != word)
      error(std::string("invalid literal, expected '") + word + "'");
    pos_ += n;
  }

  void enter() {
    if (++depth_ > kMaxDepth) {
      error("arrays and objects nested deeper than " + std::to_string(kMaxDepth) + " levels");
    }
  }

  Json parse_object() {
    enter();
    ++pos_;  // '{'
    Json obj = Json::object();
    Json::Object& members = obj.as_object();
    std::unordered_set<std::string> keys;
    skip_whitespace();
    if (peek() == '}') {
      ++pos_;
      --depth_;
      return obj;
    }
    while (true) {
      skip_whitespace();
      if (peek() != '"') {
        error(std::string(members.empty() ? "expected a string key or '}'"
                                          : "expected a string key after ','") +
              ", found " + found());
      }
      const size_t key_at = pos_;
      std::string key = parse_string();
      if (!keys.insert(key).second)
        error_at(key_at, "duplicate key " + detail::quote(key) + " in object");
      skip_whitespace();
      if (peek() != ':') error("expected ':' after object key, found " + found());
      ++pos_;
      skip_whitespace();
      members.emplace_back(std::move(key), parse_value());
      skip_whitespace();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        break;
      }
      error("expected ',' or '}' after object member, found " + found());
    }
    --depth_;
    return obj;
  }

  Json parse_array() {
    enter();
    ++pos_;  // '['
    Json::Array items;
    skip_whitespace();
    if (peek() == ']') {
      ++pos_;
      --depth_;
      return Json(std::move(items));
    }
    while (true) {
      skip_whitespace();
      items.push_back(parse_value());
      skip_whitespace();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        break;
      }
      error("expected ',' or ']' after array item, found " + found());
    }
    --depth_;
    return Json(std::move(items));
  }

  uint32_t parse_hex4() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = peek();
      int d;
      if (c >= '0' && c <= '9') {
        d = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        d = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        d = c - 'A' + 10;
      } else {
        error("expected 4 hex digits after \\u, found " + found());
      }
      v = v * 16 + uint32_t(d);
      ++pos_;
    }
    return v;
  }

  std::string parse_string() {
    const size_t open = pos_++;
    std::string out;
    while (true) {
      if (at_end()) error_at(open, "unterminated string (no closing '\"')");
      const unsigned char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) {
        error(std::string("control character ") + describe(pos_) +
              " in string; write it as an escape such as \\n or \\u00XX");
      }
      if (c >= 0x80) {
        const size_t n = utf8_length(text_, pos_);
        if (n == 0) error("invalid UTF-8 " + describe(pos_) + " in string");
        out.append(text_.substr(pos_, n));
        pos_ += n;
        continue;
      }
      if (c != '\\') {
        out += char(c);
        ++pos_;
        continue;
      }
      const size_t escape_at = pos_++;
      if (at_end()) error_at(open, "unterminated string (no closing '\"')");
      const char e = text_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = parse_hex4();
          if (cp >= 0xDC00 && cp <= 0xDFFF) {
            error_at(escape_at, "unpaired low surrogate " + escape_text(cp));
          }
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            // A high surrogate must be followed by a low one; together they name one code point.
            if (text_.substr(pos_, 2) != "\\u") {
              error_at(escape_at, "unpaired high surrogate " + escape_text(cp) +
                                      " (expected a \\uDC00-\\uDFFF escape after it)");
            }
            pos_ += 2;
            const uint32_t lo = parse_hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) {
              error_at(escape_at, "high surrogate " + escape_text(cp) + " followed by " +
                                      escape_text(lo) + ", not by a low surrogate");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default:
          pos_ = escape_at + 1;
          error("invalid escape: " + found() + " after '\\'; valid escapes are " +
                "\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX");
      }
    }
  }

  static std::string escape_text(uint32_t cp) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\u%04X", cp);
    return buf;
  }

  static bool is_digit(char c) { return c >= '0' && c <= '9'; }

  Json parse_number() {
    const size_t start = pos_;
    if (peek() == '-') ++pos_;
    if (!is_digit(peek())) error("expected a digit after '-', found " + found());
    if (peek() == '0') {
      ++pos_;
      if (is_digit(peek())) error("leading zeros are not allowed in numbers");
    }
    while (is_digit(peek())) ++pos_;
    const size_t int_end = pos_;
    if (peek() == '.') {
      ++pos_;
      if (!is_digit(peek())) error("expected a digit after '.', found " + found());
      while (is_digit(peek())) ++pos_;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!is_digit(peek())) error("expected a digit in the exponent, found " + found());
      while (is_digit(peek())) ++pos_;
    }
    const char* first = text_.data() + start;
    const char* last = text_.data() + pos_;
    double value = 0;
    const auto [end, ec] = std::from_chars(first, last, value);
    if (ec == std::errc::result_out_of_range) {
      // Too small underflows to a signed zero like every JSON reader does; too large is an error.
      if (magnitude_exponent(start, int_end) > 0) {
        error_at(start, "number " +
                            detail::quote(std::string_view(first, size_t(last - first)), 40) +
                            " is outside the double range");
      }
      value = text_[start] == '-' ? -0.0 : 0.0;
    } else if (ec != std::errc() || end != last) {
      error_at(start, "malformed number " +
                          detail::quote(std::string_view(first, size_t(last - first)), 40));
    }
    return Json(value);
  }

  // Decimal exponent of the first significant digit of the number at [start, pos_), e.g. 2 for
  // "123.4" and -3 for "0.00123"; used only to tell overflow from underflow.
  long magnitude_exponent(size_t start, size_t int_end) const {
    size_t mantissa_end = text_.find_first_of("eE", start);
    long exponent = 0;
    if (mantissa_end < pos_) {
      const char* first = text_.data() + mantissa_end + 1;
      if (*first == '+') ++first;
      if (std::from_chars(first, text_.data() + pos_, exponent).ec != std::errc()) {
        exponent = *first == '-' ? -1000000 : 1000000;  // beyond long: sign is all that matters
      }
    } else {
      mantissa_end = pos_;
    }
    for (size_t i = start; i < mantissa_end; ++i) {
      if (text_[i] < '1' || text_[i] > '9') continue;
      const long place = i < int_end ? long(int_end - 1 - i) : -long(i - int_end);
      return exponent + place;
    }
    return -1;  // all digits zero
  }

  std::string_view text_;
  const std::string& source_;
  size_t pos_ = 0;
  int depth_ = 0;
};

// ---- serializer ----

void append_escaped(std::string& out, const std::string& s) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = s[i];
    if (c >= 0x80) {
      const size_t n = utf8_length(s, i);
      if (n == 0) {
        out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
        ++i;
      } else {
        out.append(s, i, n);
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += char(c);
        }
    }
    ++i;
  }
  out += '"';
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
    case Json::Type::string: append_escaped(out, j.as_string()); return;
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
        append_escaped(out, members[i].first);
        out += indent < 0 ? ":" : ": ";
        dump_to(out, members[i].second, indent, level + 1);
      }
      if (indent >= 0 && !members.empty()) newline(level);
      out += '}';
      return;
    }
  }
}

std::string errno_text() { return std::strerror(errno); }

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
  return Parser(text, source).parse_document();
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

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string read_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail(detail::quote(path), ": cannot open for reading: ", errno_text());
  std::string bytes;
  // A regular file's size is known: check it against the memory budget, then read without
  // reallocating. Pipes and the like report no size and just grow the string.
  struct stat st {};
  if (::fstat(::fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    try {
      check_memory("reading " + detail::quote(path), double(st.st_size));
      bytes.reserve(size_t(st.st_size));
    } catch (...) {
      std::fclose(f);
      throw;
    }
  }
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.append(buf, n);
  const bool bad = std::ferror(f);
  std::fclose(f);
  if (bad) fail(detail::quote(path), ": read error");
  return bytes;
}

// ---- atomic writes ----
//
// The new bytes go to a file with no name at all (O_TMPFILE, Linux 3.11+, on most local file
// systems): a process killed while writing leaves nothing behind, because the kernel frees an
// unnamed file when its last descriptor closes. Once the data is on disk the file is linked under
// a temporary name and renamed over the target; rename is what makes the replacement atomic, and
// linkat cannot overwrite. Between those two calls (no I/O in between) a crash leaves the
// temporary ".<file>.tmp.<pid>.<n>"; where O_TMPFILE is not available the whole write happens
// under that name. Either way the next write to the same target removes temporaries whose
// process no longer exists, so at most one crash's leftover is ever seen, and only until then.

namespace {

// File names are limited to 255 bytes; the temporary's adds about 25 to the target's.
constexpr size_t kMaxTempStem = 200;

std::string temp_prefix(const std::string& filename) {
  return "." + filename.substr(0, kMaxTempStem) + ".tmp";
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The pid in a temporary name of `prefix`: ".<file>.tmp.<pid>.<n>", or the older
// ".<file>.tmp-<pid>-<n>-<stamp>"; 0 for any other name. Matching exactly keeps the temporaries of
// a target whose name merely starts the same ("model.bin.tmp.5.x") out of it.
pid_t temp_owner(std::string_view name, const std::string& prefix) {
  if (name.size() <= prefix.size() + 1 || name.compare(0, prefix.size(), prefix) != 0) return 0;
  const char sep = name[prefix.size()];
  if (sep != '.' && sep != '-') return 0;
  std::vector<std::string_view> parts;
  std::string_view rest = name.substr(prefix.size() + 1);
  for (size_t at; (at = rest.find(sep)) != std::string_view::npos; rest.remove_prefix(at + 1)) {
    parts.push_back(rest.substr(0, at));
  }
  parts.push_back(rest);
  if (parts.size() != (sep == '.' ? 2u : 3u)) return 0;
  for (std::string_view part : parts) {
    if (!all_digits(part)) return 0;
  }
  long pid = 0;
  const auto r = std::from_chars(parts[0].data(), parts[0].data() + parts[0].size(), pid);
  return r.ec == std::errc() && pid > 0 && pid <= INT32_MAX ? pid_t(pid) : 0;
}

// Removes the temporaries of `filename` in `dir` whose writer is gone: killed, or crashed, between
// creating its temporary and renaming it. A writer that is alive (even one of another user, which
// kill() reports as EPERM) is left alone. Best effort: a failure here never fails the write.
void remove_stale_temporaries(const std::string& dir, const std::string& filename) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  const std::string prefix = temp_prefix(filename);
  while (const dirent* entry = ::readdir(d)) {
    const pid_t pid = temp_owner(entry->d_name, prefix);
    if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) ::unlinkat(::dirfd(d), entry->d_name, 0);
  }
  ::closedir(d);
}

// A fresh temporary name in `dir`; unique per process and call, and the pid tells a later writer
// whether its owner is still alive.
std::string temp_name(const std::string& dir, const std::string& filename) {
  static std::atomic<unsigned> counter{0};
  return dir + "/" + temp_prefix(filename) + "." + std::to_string(::getpid()) + "." +
         std::to_string(counter++);
}

// Writes all of `bytes` to `fd` and flushes them to disk; false with errno set on failure.
bool write_and_sync(int fd, std::string_view bytes, const char*& step) {
  size_t done = 0;
  step = "write";
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) {
      errno = EIO;
      return false;
    }
    done += size_t(n);
  }
  step = "fsync";
  return ::fsync(fd) == 0;
}

// Renames the complete temporary `tmp` over `path`, then makes the rename itself durable.
void replace_with(const std::string& tmp, const std::string& path, const std::string& dir) {
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = errno_text();
    ::unlink(tmp.c_str());
    fail(detail::quote(path), ": cannot rename the temporary file over it: ", why,
         " (nothing was replaced)");
  }
  // A failure to sync the directory loses nothing already written, so it is ignored.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

// Gives the unnamed file `fd` the name `tmp`. linkat with AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH
// on older kernels; the /proc/self/fd link works for anyone where /proc is mounted.
bool link_unnamed(int fd, const std::string& tmp) {
#ifdef AT_EMPTY_PATH
  if (::linkat(fd, "", AT_FDCWD, tmp.c_str(), AT_EMPTY_PATH) == 0) return true;
  if (errno == EEXIST) return false;
#endif
  const std::string self = "/proc/self/fd/" + std::to_string(fd);
  return ::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, tmp.c_str(), AT_SYMLINK_FOLLOW) == 0;
}

struct Target {
  std::string path, dir, filename;
};

Target split_target(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  if (target.filename().empty())
    fail(detail::quote(path), ": cannot write: the path names a directory");
  return {path, target.has_parent_path() ? target.parent_path().string() : std::string("."),
          target.filename().string()};
}

// The write through an O_TMPFILE file. False when the file system (or the kernel, or a missing
// /proc) does not allow it, before anything visible happened; the caller then uses a named
// temporary. Throws when the write itself fails, which a named temporary would not fix.
bool write_unnamed(const Target& t, std::string_view bytes) {
#ifdef O_TMPFILE
  const int fd = ::open(t.dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
  if (fd < 0) return false;
  const char* step = "";
  if (!write_and_sync(fd, bytes, step)) {
    const std::string why = errno_text();
    ::close(fd);  // frees the unnamed file: nothing to clean up
    fail(detail::quote(t.path), ": ", step, " failed: ", why, " (nothing was replaced)");
  }
  std::string tmp;
  bool linked = false;
  for (int attempt = 0; attempt < 100 && !linked; ++attempt) {
    tmp = temp_name(t.dir, t.filename);  // a name left by a crash of a reused pid: try the next
    linked = link_unnamed(fd, tmp);
    if (!linked && errno != EEXIST) break;
  }
  ::close(fd);  // the data is synced; a close error cannot lose it any more
  if (!linked) return false;
  replace_with(tmp, t.path, t.dir);
  return true;
#else
  (void)t, (void)bytes;
  return false;
#endif
}

}  // namespace

namespace detail {

void write_file_atomic_named(const std::string& path, std::string_view bytes) {
  const Target t = split_target(path);
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    tmp = temp_name(t.dir, t.filename);
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    fail(detail::quote(path), ": cannot create a temporary file in ", detail::quote(t.dir), ": ",
         errno_text());
  }
  const char* step = "";
  if (!write_and_sync(fd, bytes, step)) {
    const std::string why = errno_text();
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(detail::quote(path), ": ", step, " failed: ", why, " (nothing was replaced)");
  }
  if (::close(fd) != 0) {
    const std::string why = errno_text();
    ::unlink(tmp.c_str());
    fail(detail::quote(path), ": close failed: ", why, " (nothing was replaced)");
  }
  replace_with(tmp, path, t.dir);
}

}  // namespace detail

void write_file_atomic(const std::string& path, std::string_view bytes) {
  const Target t = split_target(path);
  remove_stale_temporaries(t.dir, t.filename);
  if (!write_unnamed(t, bytes)) detail::write_file_atomic_named(path, bytes);
}

Json read_json_file(const std::string& path) {
  return parse_json(read_file(path), detail::quote(path));
}

void write_json_file(const std::string& path, const Json& value, int indent) {
  write_file_atomic(path, value.dump(indent) + "\n");
}

}  // namespace nmsnn
