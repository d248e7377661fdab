// File operations with the guarantees that key material and the log need: private files created 0600
// and refused when group or others can read them, atomic replacement, and complete reads and writes.
#pragma once

#include "core/regular_file.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace grey::audit {

using grey::RegularFile;
using grey::UniqueFd;
using grey::errno_text;

// A key file opened for reading through grey::open_regular_file (without blocking; a regular file of at
// most `limit` bytes), never through a symbolic link, and then require_private_file.
RegularFile open_private_file(const std::string& path, uint64_t limit, int flags);

// Fails with GREY_ERROR_PERMISSION_DENIED when the regular file open as `fd` is not owned by this user
// or has permission bits for group or others. The message names the path and the mode, never the
// contents.
void require_private_file(const std::string& path, int fd);

// Reads a private key file (open_private_file); at most `limit` bytes (larger files are refused).
std::vector<uint8_t> read_private_file(const std::string& path, size_t limit);
// Reads a regular file whole (at most `limit` bytes; larger files are refused), never through a
// symbolic link.
std::vector<uint8_t> read_file(const std::string& path, size_t limit);

// Creates `path` with mode 0600; fails if it exists.
void write_new_private_file(const std::string& path, std::span<const uint8_t> bytes);
// Replaces `path` atomically (temporary file, fsync, rename, fsync of the directory), mode `mode`.
void replace_file(const std::string& path, std::span<const uint8_t> bytes, unsigned mode);

void write_all(int fd, std::span<const uint8_t> bytes, const std::string& what);
void fsync_directory_of(const std::string& path);

}  // namespace grey::audit
