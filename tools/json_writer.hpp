// json_writer.hpp — writes the JSON reports of the command-line tools.
//
//   JsonWriter j; j.begin_object(); j.key("test_accuracy"); j.value(0.97); j.end_object();
// Non-finite numbers are written as null, strings are escaped; the text is j.str().
#pragma once

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace nmsnn::cli {

class JsonWriter {
 public:
  void begin_object() { open('{'); }
  void end_object() { close('}'); }
  void begin_array() { open('['); }
  void end_array() { close(']'); }

  void key(const std::string& k) {
    comma();
    text_ += quote(k) + ": ";
    after_key_ = true;
  }
  void value(const std::string& s) { put(quote(s)); }
  void value(const char* s) { put(quote(s)); }
  void value(bool b) { put(b ? "true" : "false"); }
  void value(int v) { put(std::to_string(v)); }
  void value(long long v) { put(std::to_string(v)); }
  void value(double v) {
    if (!std::isfinite(v)) return put("null");
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.10g", v);
    put(buf);
  }
  void null() { put("null"); }
  template <class T>
  void field(const std::string& k, const T& v) {
    key(k);
    value(v);
  }
  void field(const std::string& k, const std::vector<int>& v) {
    key(k);
    begin_array();
    for (int x : v) value(x);
    end_array();
  }
  void field(const std::string& k, const std::vector<double>& v) {
    key(k);
    begin_array();
    for (double x : v) value(x);
    end_array();
  }

  const std::string& str() const { return text_; }

 private:
  static std::string quote(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += char(c);
      } else if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      } else {
        out += char(c);
      }
    }
    return out + "\"";
  }
  void comma() {
    if (!first_.empty() && !first_.back()) text_ += ", ";
    if (!first_.empty()) first_.back() = false;
  }
  void put(const std::string& s) {
    if (!after_key_) comma();
    after_key_ = false;
    text_ += s;
  }
  void open(char c) {
    put(std::string(1, c));
    first_.push_back(true);
  }
  void close(char c) {
    first_.pop_back();
    text_ += c;
  }

  std::string text_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

}  // namespace nmsnn::cli
