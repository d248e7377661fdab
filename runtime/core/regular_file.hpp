// Opening files that a caller or a user names, which may be anything: a FIFO (whose open blocks until a
// writer comes), a device (/dev/zero never ends), a directory (which reads as an empty file). Such
// paths are opened without blocking and refused unless they name a regular file, and reads are bounded.
#pragma once

#include "grey.h"

#include <cstdint>
#include <string>
#include <sys/stat.h>

namespace grey {

// A file descriptor, closed when the object dies.
class FileDescriptor {
public:
    FileDescriptor() = default;
    explicit FileDescriptor(int fd) noexcept : fd_(fd) {}
    FileDescriptor(FileDescriptor&& other) noexcept : fd_(other.release()) {}
    FileDescriptor& operator=(FileDescriptor&& other) noexcept;
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    ~FileDescriptor();

    [[nodiscard]] int get() const noexcept { return fd_; }
    int release() noexcept {
        const int fd = fd_;
        fd_ = -1;
        return fd;
    }

private:
    int fd_ = -1;
};

// The status for a failed system call on `path`: GREY_ERROR_NOT_FOUND, GREY_ERROR_PERMISSION_DENIED or
// GREY_ERROR_IO, with "cannot DOING 'PATH': strerror".
[[noreturn]] void fail_errno(const std::string& path, const char* doing, int error);

// Opens `path` read-only (close-on-exec, never blocking) and checks that it is a regular file; its
// status goes to `*info`. `what` names the file in messages ("config file 'PATH' is not a regular file
// (it is a FIFO)", GREY_ERROR_INVALID_ARGUMENT).
FileDescriptor open_regular_file(const std::string& path, const std::string& what, struct stat* info);

// The whole contents of regular file `path`, at most `max_bytes` of them: a larger file fails with
// `too_large` naming the limit, before anything is read.
std::string read_regular_file(const std::string& path, const std::string& what, uint64_t max_bytes, grey_status too_large);

}  // namespace grey
