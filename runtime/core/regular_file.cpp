#include "core/regular_file.hpp"

#include "core/error.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace grey {
namespace {

const char* kind_of(mode_t mode) noexcept {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a file";
}

}  // namespace

FileDescriptor& FileDescriptor::operator=(FileDescriptor&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = other.release();
    }
    return *this;
}

FileDescriptor::~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
}

void fail_errno(const std::string& path, const char* doing, int error) {
    const grey_status status = error == ENOENT ? GREY_ERROR_NOT_FOUND
                               : (error == EACCES || error == EPERM) ? GREY_ERROR_PERMISSION_DENIED
                                                                     : GREY_ERROR_IO;
    fail(status, std::string("cannot ") + doing + " '" + path + "': " + std::strerror(error));
}

FileDescriptor open_regular_file(const std::string& path, const std::string& what, struct stat* info) {
    // O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for one. It changes
    // nothing for a regular file, the only kind read after the check.
    FileDescriptor file(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (file.get() < 0) fail_errno(path, ("open " + what).c_str(), errno);
    if (::fstat(file.get(), info) != 0) fail_errno(path, ("stat " + what).c_str(), errno);
    if (!S_ISREG(info->st_mode))
        fail(GREY_ERROR_INVALID_ARGUMENT, what + " '" + path + "' is not a regular file (it is " + kind_of(info->st_mode) + ")");
    return file;
}

std::string read_regular_file(const std::string& path, const std::string& what, uint64_t max_bytes, grey_status too_large) {
    struct stat info {};
    const FileDescriptor file = open_regular_file(path, what, &info);
    const auto refuse = [&](const std::string& size) {
        fail(too_large, what + " '" + path + "' is " + size + " bytes, larger than the limit of " + std::to_string(max_bytes) + " bytes");
    };
    if (static_cast<uint64_t>(info.st_size) > max_bytes) refuse(std::to_string(info.st_size));
    // The file may have grown since fstat: stop as soon as it passes the limit.
    std::string text;
    text.reserve(static_cast<std::size_t>(info.st_size));
    char chunk[1 << 16];
    for (;;) {
        const ssize_t n = ::read(file.get(), chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail_errno(path, "read", errno);
        if (n == 0) break;
        text.append(chunk, static_cast<std::size_t>(n));
        if (text.size() > max_bytes) refuse("more than " + std::to_string(max_bytes));
    }
    return text;
}

}  // namespace grey
