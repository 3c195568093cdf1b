// nmsnn/error.hpp — the one exception type the library throws, and the one way to quote user text.
//
// Every failure (bad shapes, bad values, unreadable files, CUDA errors) becomes an nmsnn::Error
// whose message names what is at fault: the layer, the shape, the value or the file. A message is
// one line: text that came from the user (a CSV cell, a JSON key, a path, a flag value) goes in
// through detail::quote, never raw.
#pragma once

#include <cstddef>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace nmsnn {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
// Builds a message from any streamable pieces: fail("layer ", i, ": size must be > 0, got ", n).
template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  throw Error(out.str());
}

// User text made safe for a one-line message: in single quotes; control characters (newline,
// NUL, the escape that starts terminal codes, C1 controls), quotes, backslashes and bytes that are
// not UTF-8 written as escapes (\n, \t, \x1b, ...); longer than max_bytes, it is cut on a
// character boundary and the full length is said: 'abc...' (10485760 bytes).
std::string quote(std::string_view text, std::size_t max_bytes = 80);
}  // namespace detail

}  // namespace nmsnn
