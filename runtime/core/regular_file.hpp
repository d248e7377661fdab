// Opening files that a caller or a user names, which may be anything: a FIFO (whose open blocks until a
// writer comes), a device (/dev/zero never ends), a directory (which reads as an empty file). Every
// such path in libgrey (model files, configuration, audit logs, keys, checkpoints, proofs, artifacts)
// is opened here: without blocking, refused unless it names a regular file, and read with a bound.
#pragma once

#include "core/unique_fd.hpp"
#include "grey.h"

#include <cstdint>
#include <fcntl.h>
#include <limits>
#include <string>
#include <vector>

namespace grey {

// The most bytes a file may hold, and the status for one that holds more.
struct SizeLimit {
    uint64_t bytes = std::numeric_limits<uint64_t>::max();
    grey_status status = GREY_ERROR_INVALID_ARGUMENT;
};

// A regular file opened by open_regular_file, with its size when it was checked.
struct RegularFile {
    UniqueFd fd;
    uint64_t size = 0;
};

// strerror(errno), for messages.
std::string errno_text();
// The status for a failed system call on `path`: GREY_ERROR_NOT_FOUND, GREY_ERROR_PERMISSION_DENIED or
// GREY_ERROR_IO, with "cannot DOING 'PATH': strerror".
[[noreturn]] void fail_errno(const std::string& path, const std::string& doing, int error);
// "a FIFO", "a directory", "a character device"... for a st_mode.
std::string file_type_text(unsigned mode);
// "0640" for a st_mode.
std::string octal_mode(unsigned mode);

// Opens `path` with `flags` (O_RDONLY, O_RDWR, O_NOFOLLOW, O_CREAT with `create_mode`...) plus
// O_NONBLOCK, O_CLOEXEC and O_NOCTTY: opening a FIFO for reading would otherwise wait for a writer for
// ever. Then fstat: anything but a regular file fails with GREY_ERROR_INVALID_ARGUMENT, "WHAT 'PATH' is
// not a regular file (it is a FIFO)", and a file larger than `limit` with its status, "WHAT 'PATH' is N
// bytes, larger than the limit of M bytes". A failed open is GREY_ERROR_NOT_FOUND, _PERMISSION_DENIED
// (also for a symbolic link refused by O_NOFOLLOW) or _IO, "cannot open WHAT 'PATH': strerror". The
// descriptor returned blocks as usual (on a regular file nothing waits anyway).
RegularFile open_regular_file(const std::string& path, const std::string& what, int flags = O_RDONLY, SizeLimit limit = {},
                              unsigned create_mode = 0);

// Reads `file` from its current offset to its end: at most `limit` bytes, so a file that grew since it
// was checked fails as open_regular_file does. The bytes go straight into the buffer returned (no
// copies are left behind in memory, which matters for keys).
std::vector<uint8_t> read_to_end(const RegularFile& file, const std::string& path, const std::string& what, SizeLimit limit);

// open_regular_file, then read_to_end.
std::vector<uint8_t> read_regular_file(const std::string& path, const std::string& what, SizeLimit limit);

}  // namespace grey
