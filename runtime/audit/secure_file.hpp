// File operations with the guarantees that key material and the log need: private files created 0600
// and refused when group or others can read them, atomic replacement, and complete reads and writes.
#pragma once

#include "core/unique_fd.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace grey::audit {

using grey::UniqueFd;

// A file opened for reading after the checks below, with its size at that moment.
struct RegularFile {
    UniqueFd fd;
    uint64_t size = 0;
};

// Every path the audit code reads (logs, keys, checkpoints, proofs, artifacts) is opened through one of
// these: O_NONBLOCK | O_CLOEXEC, so that a FIFO cannot block the open; then fstat, and anything but a
// regular file (a FIFO, a device such as /dev/zero, a directory) is refused with
// GREY_ERROR_INVALID_ARGUMENT naming what it is, as is a file larger than `limit`. `flags` adds to the
// open flags (O_RDONLY, O_RDWR, O_NOFOLLOW...); `what` names the file in messages ("audit log").
RegularFile open_regular_file(const std::string& path, uint64_t limit, int flags, const char* what);
// The checks alone, for a file the caller opened itself (with O_NONBLOCK; the writer creates its log).
RegularFile checked_regular(UniqueFd fd, const std::string& path, uint64_t limit, const char* what);
// The same for a key file, after require_private_file (and never through a symbolic link).
RegularFile open_private_file(const std::string& path, uint64_t limit, int flags);
// "a FIFO", "a directory"... for a st_mode.
std::string file_type_text(unsigned mode);

// Fails with GREY_ERROR_PERMISSION_DENIED when `path` is not a regular file owned by this user with no
// permission bits for group or others. The message names the path and the mode, never the contents.
void require_private_file(const std::string& path, int fd);

// Reads a private key file after require_private_file; at most `limit` bytes (larger files are refused).
std::vector<uint8_t> read_private_file(const std::string& path, size_t limit);
// Reads a regular file whole (at most `limit` bytes; larger files are refused).
std::vector<uint8_t> read_file(const std::string& path, size_t limit);

// Creates `path` with mode 0600; fails if it exists.
void write_new_private_file(const std::string& path, std::span<const uint8_t> bytes);
// Replaces `path` atomically (temporary file, fsync, rename, fsync of the directory), mode `mode`.
void replace_file(const std::string& path, std::span<const uint8_t> bytes, unsigned mode);

// Reads from `fd` to its end: at most `limit` bytes (GREY_ERROR_CORRUPT beyond).
std::vector<uint8_t> read_fd(int fd, const std::string& path, size_t limit);
void write_all(int fd, std::span<const uint8_t> bytes, const std::string& what);
void fsync_directory_of(const std::string& path);
std::string errno_text();

}  // namespace grey::audit
