// core/error.cpp — detail::quote: user text, escaped and cut, for one-line error messages.
#include "nmsnn/error.hpp"

#include <cstdint>

namespace nmsnn::detail {

namespace {
// Length of the valid UTF-8 sequence starting at s[i] (2-4), or 0 when it is not one. Overlong
// forms and surrogates count as invalid, so every byte that passes is a real character.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return uint8_t(s[i + k]); };
  const uint8_t c = b(0);
  std::size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
  if (n == 0 || c >= 0xf5 || i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k)
    if ((b(k) & 0xc0) != 0x80) return 0;
  if (c == 0xe0 && b(1) < 0xa0) return 0;  // overlong
  if (c == 0xed && b(1) > 0x9f) return 0;  // surrogate
  if (c == 0xf0 && b(1) < 0x90) return 0;  // overlong
  if (c == 0xf4 && b(1) > 0x8f) return 0;  // beyond U+10FFFF
  if (c == 0xc2 && b(1) < 0xa0) return 0;  // U+0080..U+009F: C1 controls, escaped
  return n;
}

void hex_escape(std::string& out, uint8_t c) {
  static const char digits[] = "0123456789abcdef";
  out += "\\x";
  out += digits[c >> 4];
  out += digits[c & 15];
}
}  // namespace

std::string quote(std::string_view text, std::size_t max_bytes) {
  std::string out = "'";
  std::size_t i = 0;
  for (; i < text.size() && i < max_bytes;) {
    const uint8_t c = uint8_t(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      if (c == '\'' || c == '\\') out += '\\';
      out += char(c);
      ++i;
    } else if (c == '\n') {
      out += "\\n", ++i;
    } else if (c == '\t') {
      out += "\\t", ++i;
    } else if (c == '\r') {
      out += "\\r", ++i;
    } else if (std::size_t n = c >= 0x80 ? utf8_length(text, i) : 0; n > 0) {
      if (i + n > max_bytes) break;  // never cut a character in two
      out.append(text.substr(i, n));
      i += n;
    } else {
      hex_escape(out, c), ++i;
    }
  }
  out += "'";
  if (i < text.size()) {
    out.insert(out.size() - 1, "...");
    out += " (" + std::to_string(text.size()) + " bytes)";
  }
  return out;
}

}  // namespace nmsnn::detail
