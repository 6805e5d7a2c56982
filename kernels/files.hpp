// Files written whole, and JSON's string quoting: what the checkpoint writers (nn/) and
// the profiler's trace (autograd/) share.
#pragma once

#include <string>
#include <string_view>

namespace tg {

// Writes bytes to path atomically: a temporary file beside it (path.tmp.PID.N), written
// and fsynced, renamed over path, the directory fsynced. A crash at any point leaves the
// old file or the new one, never a mix (a killed writer may leave its temporary file); a
// failed write (a full disk, a file size limit) throws tg::Error naming `op` and leaves
// the old file.
void write_file_atomic(const std::string& path, const std::string& bytes, const char* op = "save");

// A JSON string literal for s (quotes and escapes added). s must be UTF-8: a JSON
// text is (RFC 8259, 8.1), and callers check it with utf8_error (nn/json.hpp) first.
std::string json_quote(std::string_view s);

}  // namespace tg
