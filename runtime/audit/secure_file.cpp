#include "audit/secure_file.hpp"

#include "core/error.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace grey::audit {

void require_private_file(const std::string& path, int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) fail(GREY_ERROR_IO, "cannot stat '" + path + "': " + errno_text());
    if ((st.st_mode & 077) != 0)
        fail(GREY_ERROR_PERMISSION_DENIED, "key file '" + path + "' has mode " + octal_mode(st.st_mode) +
                                               ": group or others may access it; run chmod 600 on it (and consider "
                                               "the key exposed)");
    if (st.st_uid != ::geteuid())
        fail(GREY_ERROR_PERMISSION_DENIED, "key file '" + path + "' is owned by uid " + std::to_string(st.st_uid) +
                                               ", not by this user");
}

RegularFile open_private_file(const std::string& path, uint64_t limit, int flags) {
    RegularFile file = open_regular_file(path, "key file", flags | O_NOFOLLOW, {limit});
    require_private_file(path, file.fd.get());
    return file;
}

std::vector<uint8_t> read_private_file(const std::string& path, size_t limit) {
    return read_to_end(open_private_file(path, limit, O_RDONLY), path, "key file", {limit});
}

std::vector<uint8_t> read_file(const std::string& path, size_t limit) {
    return read_to_end(open_regular_file(path, "file", O_RDONLY | O_NOFOLLOW, {limit}), path, "file", {limit});
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
