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

namespace {
std::string octal_mode(mode_t mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
    return text;
}

UniqueFd open_nonblocking(const std::string& path, int flags, const char* what) {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, for ever. Regular files
    // ignore the flag, and anything else is refused before a byte is read.
    UniqueFd fd(::open(path.c_str(), flags | O_NONBLOCK | O_CLOEXEC));
    if (fd.get() < 0) {
        const int e = errno;
        if (e == ENOENT) fail(GREY_ERROR_NOT_FOUND, std::string(what) + " '" + path + "' does not exist");
        if (e == EACCES || e == EPERM || e == ELOOP)
            fail(GREY_ERROR_PERMISSION_DENIED, "cannot open " + std::string(what) + " '" + path + "': " + std::strerror(e));
        if (e == EISDIR) fail(GREY_ERROR_INVALID_ARGUMENT, std::string(what) + " '" + path + "' is a directory, not a regular file");
        fail(GREY_ERROR_IO, "cannot open " + std::string(what) + " '" + path + "': " + std::strerror(e));
    }
    return fd;
}

}  // namespace

RegularFile checked_regular(UniqueFd fd, const std::string& path, uint64_t limit, const char* what) {
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) fail(GREY_ERROR_IO, "cannot stat '" + path + "': " + errno_text());
    if (!S_ISREG(st.st_mode))
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string(what) + " '" + path + "' is " + file_type_text(st.st_mode) + ", not a regular file");
    if (static_cast<uint64_t>(st.st_size) > limit)
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string(what) + " '" + path + "' is " + std::to_string(st.st_size) +
                                              " bytes; at most " + std::to_string(limit) + " are accepted");
    // From here on reads and writes block as usual (on a regular file they never wait anyway).
    const int status = ::fcntl(fd.get(), F_GETFL);
    if (status < 0 || ::fcntl(fd.get(), F_SETFL, status & ~O_NONBLOCK) != 0) fail(GREY_ERROR_IO, "cannot use '" + path + "': " + errno_text());
    return {std::move(fd), static_cast<uint64_t>(st.st_size)};
}

RegularFile open_regular_file(const std::string& path, uint64_t limit, int flags, const char* what) {
    return checked_regular(open_nonblocking(path, flags, what), path, limit, what);
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
    return "not a regular file";
}

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

RegularFile open_private_file(const std::string& path, uint64_t limit, int flags) {
    UniqueFd fd = open_nonblocking(path, flags | O_NOFOLLOW, "key file");
    // The permission check comes first: a key file that others can read is reported as such, whatever
    // else is wrong with it.
    require_private_file(path, fd.get());
    return checked_regular(std::move(fd), path, limit, "key file");
}

std::vector<uint8_t> read_private_file(const std::string& path, size_t limit) {
    const RegularFile file = open_private_file(path, limit, O_RDONLY);
    return read_fd(file.fd.get(), path, limit);
}

std::vector<uint8_t> read_file(const std::string& path, size_t limit) {
    const RegularFile file = open_regular_file(path, limit, O_RDONLY | O_NOFOLLOW, "file");
    return read_fd(file.fd.get(), path, limit);
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
    try {
        // The umask may only remove bits, but be explicit: a key file is 0600 whatever the umask says.
        if (::fchmod(fd.get(), 0600) != 0) fail(GREY_ERROR_IO, "cannot chmod '" + path + "': " + errno_text());
        write_all(fd.get(), bytes, "'" + path + "'");
        if (::fsync(fd.get()) != 0) fail(GREY_ERROR_IO, "cannot sync '" + path + "': " + errno_text());
    } catch (...) {
        ::unlink(path.c_str());  // a partial file is no use to anyone
        throw;
    }
    fsync_directory_of(path);
}

void replace_file(const std::string& path, std::span<const uint8_t> bytes, unsigned mode) {
    // For files that hold no secret (checkpoints, public keys, proof artifacts); the writer's key file
    // has its own replacement, WriterKeyFile::replace.
    const std::string temporary = path + ".tmp." + std::to_string(::getpid());
    try {
        {
            UniqueFd fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
            if (fd.get() < 0) fail(GREY_ERROR_IO, "cannot create '" + temporary + "': " + errno_text());
            if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0) fail(GREY_ERROR_IO, "cannot chmod '" + temporary + "': " + errno_text());
            write_all(fd.get(), bytes, "'" + temporary + "'");
            if (::fsync(fd.get()) != 0) fail(GREY_ERROR_IO, "cannot sync '" + temporary + "': " + errno_text());
        }
        if (::rename(temporary.c_str(), path.c_str()) != 0) fail(GREY_ERROR_IO, "cannot replace '" + path + "': " + errno_text());
    } catch (...) {
        ::unlink(temporary.c_str());
        throw;
    }
    fsync_directory_of(path);
}

}  // namespace grey::audit
