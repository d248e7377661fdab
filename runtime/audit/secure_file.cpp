#include "audit/secure_file.hpp"

#include "core/error.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace grey::audit {

std::string errno_text() { return std::strerror(errno); }

namespace {
std::string octal_mode(mode_t mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
    return text;
}

UniqueFd open_for_reading(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (fd.get() < 0) {
        const int e = errno;
        if (e == ENOENT) fail(GREY_ERROR_NOT_FOUND, "file '" + path + "' does not exist");
        if (e == EACCES || e == EPERM || e == ELOOP)
            fail(GREY_ERROR_PERMISSION_DENIED, "cannot open '" + path + "': " + std::strerror(e));
        fail(GREY_ERROR_IO, "cannot open '" + path + "': " + std::strerror(e));
    }
    return fd;
}

std::vector<uint8_t> read_fd(int fd, const std::string& path, size_t limit) {
    std::vector<uint8_t> bytes;
    uint8_t chunk[65536];
    for (;;) {
        const ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail(GREY_ERROR_IO, "cannot read '" + path + "': " + errno_text());
        }
        if (n == 0) break;
        if (bytes.size() + static_cast<size_t>(n) > limit)
            fail(GREY_ERROR_CORRUPT, "file '" + path + "' is larger than " + std::to_string(limit) + " bytes");
        bytes.insert(bytes.end(), chunk, chunk + n);
    }
    return bytes;
}
}  // namespace

void require_private_file(const std::string& path, int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) fail(GREY_ERROR_IO, "cannot stat '" + path + "': " + errno_text());
    if (!S_ISREG(st.st_mode)) fail(GREY_ERROR_PERMISSION_DENIED, "key file '" + path + "' is not a regular file");
    if ((st.st_mode & 077) != 0)
        fail(GREY_ERROR_PERMISSION_DENIED, "key file '" + path + "' has mode " + octal_mode(st.st_mode) +
                                               ": group or others may access it; run chmod 600 on it (and consider "
                                               "the key exposed)");
    if (st.st_uid != ::geteuid())
        fail(GREY_ERROR_PERMISSION_DENIED, "key file '" + path + "' is owned by uid " + std::to_string(st.st_uid) +
                                               ", not by this user");
}

std::vector<uint8_t> read_private_file(const std::string& path, size_t limit) {
    UniqueFd fd = open_for_reading(path);
    require_private_file(path, fd.get());
    return read_fd(fd.get(), path, limit);
}

std::vector<uint8_t> read_file(const std::string& path, size_t limit) {
    UniqueFd fd = open_for_reading(path);
    return read_fd(fd.get(), path, limit);
}

void write_all(int fd, std::span<const uint8_t> bytes, const std::string& what) {
    size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail(GREY_ERROR_IO, "cannot write " + what + ": " + errno_text());
        }
        done += static_cast<size_t>(n);
    }
}

void fsync_directory_of(const std::string& path) {
    const auto slash = path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0 || ::fsync(fd.get()) != 0) fail(GREY_ERROR_IO, "cannot sync directory '" + dir + "': " + errno_text());
}

void write_new_private_file(const std::string& path, std::span<const uint8_t> bytes) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (fd.get() < 0) {
        if (errno == EEXIST) fail(GREY_ERROR_INVALID_ARGUMENT, "'" + path + "' already exists; refusing to overwrite a key");
        fail(GREY_ERROR_IO, "cannot create '" + path + "': " + errno_text());
    }
    // The umask may only remove bits, but be explicit: a key file is 0600 whatever the umask says.
    if (::fchmod(fd.get(), 0600) != 0) fail(GREY_ERROR_IO, "cannot chmod '" + path + "': " + errno_text());
    write_all(fd.get(), bytes, "'" + path + "'");
    if (::fsync(fd.get()) != 0) fail(GREY_ERROR_IO, "cannot sync '" + path + "': " + errno_text());
    fsync_directory_of(path);
}

void replace_file(const std::string& path, std::span<const uint8_t> bytes, unsigned mode) {
    const std::string temporary = path + ".tmp." + std::to_string(::getpid());
    {
        UniqueFd fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (fd.get() < 0) fail(GREY_ERROR_IO, "cannot create '" + temporary + "': " + errno_text());
        if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0) fail(GREY_ERROR_IO, "cannot chmod '" + temporary + "': " + errno_text());
        write_all(fd.get(), bytes, "'" + temporary + "'");
        if (::fsync(fd.get()) != 0) fail(GREY_ERROR_IO, "cannot sync '" + temporary + "': " + errno_text());
    }
    if (::rename(temporary.c_str(), path.c_str()) != 0) {
        const std::string why = errno_text();
        ::unlink(temporary.c_str());
        fail(GREY_ERROR_IO, "cannot replace '" + path + "': " + why);
    }
    fsync_directory_of(path);
}

}  // namespace grey::audit
