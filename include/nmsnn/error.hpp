// nmsnn/error.hpp — the one exception type the library throws.
//
// Every failure (bad shapes, bad values, unreadable files, CUDA errors) becomes an nmsnn::Error
// whose message names what is at fault: the layer, the shape, the value or the file.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

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
}  // namespace detail

}  // namespace nmsnn
