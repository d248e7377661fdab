#include "core/regular_file.hpp"

#include "core/error.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sys/stat.h>
#include <unistd.h>

namespace grey {
namespace {

[[noreturn]] void too_large(const std::string& path, const std::string& what, const std::string& size, SizeLimit limit) {
    fail(limit.status, what + " '" + path + "' is " + size + " bytes, larger than the limit of " + std::to_string(limit.bytes) + " bytes");
}

[[noreturn]] void not_regular(const std::string& path, const std::string& what, unsigned mode) {
    fail(GREY_ERROR_INVALID_ARGUMENT, what + " '" + path + "' is not a regular file (it is " + file_type_text(mode) + ")");
}

}  // namespace

std::string errno_text() { return std::strerror(errno); }

void fail_errno(const std::string& path, const std::string& doing, int error) {
    const grey_status status = error == ENOENT ? GREY_ERROR_NOT_FOUND
                               : (error == EACCES || error == EPERM) ? GREY_ERROR_PERMISSION_DENIED
                                                                     : GREY_ERROR_IO;
    fail(status, "cannot " + doing + " '" + path + "': " + std::strerror(error));
}

std::string file_type_text(unsigned mode) {
    switch (mode & S_IFMT) {
        case S_IFDIR: return "a directory";
        case S_IFIFO: return "a FIFO";
        case S_IFCHR: return "a character device";
        case S_IFBLK: return "a block device";
        case S_IFSOCK: return "a socket";
        case S_IFLNK: return "a symbolic link";
        case S_IFREG: return "a regular file";
    }
    return "of an unknown type";
}

std::string octal_mode(unsigned mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", mode & 07777);
    return text;
}

RegularFile open_regular_file(const std::string& path, const std::string& what, int flags, SizeLimit limit, unsigned create_mode) {
    UniqueFd fd(::open(path.c_str(), flags | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, static_cast<mode_t>(create_mode)));
    if (fd.get() < 0) {
        const int error = errno;
        if (error == EISDIR) not_regular(path, what, S_IFDIR);  // asked to write: open says so before fstat could
        // With O_NOFOLLOW, ELOOP is a symbolic link where the caller refuses one.
        if (error == ELOOP && (flags & O_NOFOLLOW) != 0)
            fail(GREY_ERROR_PERMISSION_DENIED, "cannot open " + what + " '" + path + "': it is a symbolic link, which is not followed");
        fail_errno(path, "open " + what, error);
    }
    struct stat info {};
    if (::fstat(fd.get(), &info) != 0) fail_errno(path, "stat " + what, errno);
    if (!S_ISREG(info.st_mode)) not_regular(path, what, info.st_mode);
    if (static_cast<uint64_t>(info.st_size) > limit.bytes) too_large(path, what, std::to_string(info.st_size), limit);
    // From here on reads and writes block as usual; on a regular file the flag changed nothing anyway.
    const int status = ::fcntl(fd.get(), F_GETFL);
    if (status < 0 || ::fcntl(fd.get(), F_SETFL, status & ~O_NONBLOCK) != 0) fail_errno(path, "use " + what, errno);
    return {std::move(fd), static_cast<uint64_t>(info.st_size)};
}

std::vector<uint8_t> read_to_end(const RegularFile& file, const std::string& path, const std::string& what, SizeLimit limit) {
    // One byte more than the size checked, to see the end (or growth) without a second buffer.
    std::vector<uint8_t> bytes(static_cast<std::size_t>(std::min(file.size, limit.bytes)) + 1);
    std::size_t done = 0;
    for (;;) {
        if (done == bytes.size()) {
            if (done > limit.bytes) too_large(path, what, "more than " + std::to_string(limit.bytes), limit);
            bytes.resize(std::min<uint64_t>(limit.bytes, uint64_t{2} * done) + 1);
        }
        const ssize_t n = ::read(file.fd.get(), bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail_errno(path, "read " + what, errno);
        if (n == 0) break;
        done += static_cast<std::size_t>(n);
    }
    bytes.resize(done);
    return bytes;
}

std::vector<uint8_t> read_regular_file(const std::string& path, const std::string& what, SizeLimit limit) {
    return read_to_end(open_regular_file(path, what, O_RDONLY, limit), path, what, limit);
}

}  // namespace grey
