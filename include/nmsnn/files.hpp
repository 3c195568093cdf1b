// nmsnn/files.hpp — whole-file reads and atomic whole-file writes.
//
// Every writer in nmsnn (JSON reports, safetensors models, SVG plots, prediction CSVs) replaces a
// file in one piece, so a crash or a full disk never leaves half a model where the old one was.
#pragma once

#include <string>
#include <string_view>

namespace nmsnn {

// The bytes of the file at `path`; throws naming the path when it cannot be opened or read, or
// when the file is larger than memory_limit() (nmsnn/limits.hpp).
std::string read_file(const std::string& path);

// Writes `bytes` to `path` so that `path` is either untouched or completely replaced: the bytes
// go to a file in the same directory, are flushed to disk (fsync), and that file is renamed over
// `path`. On any failure nothing is left behind and nmsnn::Error names the path. Where the file
// system supports O_TMPFILE (Linux) the file has no name while it is written, so even a kill -9
// leaves nothing; elsewhere it is ".<name>.tmp.<pid>.<n>", and each write first removes such
// temporaries of the same target whose process no longer exists.
void write_file_atomic(const std::string& path, std::string_view bytes);

namespace detail {
// write_file_atomic's fallback, always through a named temporary (no O_TMPFILE, no clean-up of
// stale temporaries); public so tests can produce what a crash on such a file system leaves.
void write_file_atomic_named(const std::string& path, std::string_view bytes);
}  // namespace detail

}  // namespace nmsnn
