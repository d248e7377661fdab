#include "audit/writer_key_file.hpp"

#include "audit/secure_file.hpp"
#include "core/error.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace grey::audit {

namespace {
// A temporary key file is a few hundred bytes; anything larger by that name was not written by a
// writer, and is removed without being overwritten first.
constexpr uint64_t max_wiped_size = 64 * 1024;

void lock(int fd, int operation, const std::string& path) {
    while (::flock(fd, operation) != 0)
        if (errno != EINTR) fail(GREY_ERROR_IO, "cannot lock key file '" + path + "': " + errno_text());
}

// Overwrites the first `size` bytes of the file with zeros and syncs it, so that the key it held does
// not stay in the blocks the file system frees when the file goes.
void wipe(int fd, uint64_t size, const std::string& path) {
    const std::vector<uint8_t> zeros(static_cast<size_t>(std::min(size, max_wiped_size)));
    for (uint64_t done = 0; done < zeros.size();) {
        const ssize_t n = ::pwrite(fd, zeros.data() + done, zeros.size() - done, static_cast<off_t>(done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail(GREY_ERROR_IO, "cannot overwrite old key material in '" + path + "': " + errno_text());
        done += static_cast<uint64_t>(n);
    }
    if (::fdatasync(fd) != 0) fail(GREY_ERROR_IO, "cannot sync '" + path + "': " + errno_text());
}

std::string directory_of(const std::string& path) {
    const auto slash = path.find_last_of('/');
    return slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
}

std::string name_of(const std::string& path) {
    const auto slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

// "<key>.tmp" (this version's temporary) or "<key>.tmp.<digits>" (libgrey 0.1's, one per process id).
bool is_leftover(std::string_view name, std::string_view key_name) {
    if (!name.starts_with(key_name)) return false;
    name.remove_prefix(key_name.size());
    if (name == ".tmp") return true;
    if (!name.starts_with(".tmp.")) return false;
    name.remove_prefix(5);
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
}
}  // namespace

size_t remove_key_leftovers(const std::string& path) {
    const std::string dir = directory_of(path);
    const std::string key_name = name_of(path);
    UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir_fd.get() < 0) fail(GREY_ERROR_IO, "cannot open directory '" + dir + "': " + errno_text());
    std::vector<std::string> leftovers;
    {
        // fdopendir takes over its descriptor; give it a copy, so that dir_fd stays ours.
        DIR* listing = ::fdopendir(::dup(dir_fd.get()));
        if (listing == nullptr) fail(GREY_ERROR_IO, "cannot list directory '" + dir + "': " + errno_text());
        while (const dirent* entry = ::readdir(listing))
            if (is_leftover(entry->d_name, key_name)) leftovers.emplace_back(entry->d_name);
        ::closedir(listing);
    }
    for (const std::string& name : leftovers) {
        const std::string leftover = dir + "/" + name;
        // Not through a symbolic link, and only our own regular files are overwritten; whatever it is, it goes.
        UniqueFd fd(::openat(dir_fd.get(), name.c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
        struct stat st {};
        if (fd.get() >= 0 && ::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == ::geteuid())
            wipe(fd.get(), static_cast<uint64_t>(st.st_size), leftover);
        if (::unlinkat(dir_fd.get(), name.c_str(), 0) != 0 && errno != ENOENT)
            fail(GREY_ERROR_IO, "cannot remove '" + leftover + "', left over from an interrupted key rotation (it may hold a key): " +
                                    errno_text());
    }
    if (!leftovers.empty() && ::fsync(dir_fd.get()) != 0) fail(GREY_ERROR_IO, "cannot sync directory '" + dir + "': " + errno_text());
    return leftovers.size();
}

KeyFile WriterKeyFile::load() {
    // A rotation by another process (of another log misusing this key) may replace the file between
    // the open and the lock; then the file we hold has no name left, and we look again.
    for (int attempt = 0;; ++attempt) {
        RegularFile file = open_private_file(path_, max_key_file_size, O_RDONLY);
        lock(file.fd.get(), LOCK_EX, path_);
        struct stat st {};
        if (::fstat(file.fd.get(), &st) != 0) fail(GREY_ERROR_IO, "cannot stat '" + path_ + "': " + errno_text());
        if (st.st_nlink == 0) {
            if (attempt < 100) continue;
            fail(GREY_ERROR_IO, "key file '" + path_ + "' keeps being replaced while it is read");
        }
        remove_key_leftovers(path_);
        const WipedBytes bytes{read_fd(file.fd.get(), path_, max_key_file_size)};
        KeyFile key = parse_key_file(path_, std::string_view(reinterpret_cast<const char*>(bytes.bytes.data()), bytes.bytes.size()));
        device_ = st.st_dev;
        inode_ = st.st_ino;
        return key;
    }
}

bool WriterKeyFile::replaced_on_disk() const {
    struct stat st {};
    if (::lstat(path_.c_str(), &st) != 0) return true;
    return st.st_dev != device_ || st.st_ino != inode_;
}

void WriterKeyFile::replace(const KeyFile& next) {
    // The file being replaced: locked, so that nobody reads it while it is wiped, and kept open to wipe
    // it once the new one has taken its name.
    UniqueFd old(::open(path_.c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (old.get() < 0) fail(GREY_ERROR_IO, "cannot open key file '" + path_ + "' to advance it: " + errno_text());
    require_private_file(path_, old.get());
    lock(old.get(), LOCK_EX, path_);
    struct stat st {};
    if (::fstat(old.get(), &st) != 0) fail(GREY_ERROR_IO, "cannot stat '" + path_ + "': " + errno_text());
    if (st.st_nlink == 0 || st.st_dev != device_ || st.st_ino != inode_)
        fail(GREY_ERROR_IO, "key file '" + path_ + "' was replaced by another process while this writer advanced it; "
                                                   "the writer reads it again before its next record");
    remove_key_leftovers(path_);

    const std::string temporary = path_ + ".tmp";
    std::string text = encode_key_file(next);
    const WipedBytes bytes{std::vector<uint8_t>(text.begin(), text.end())};
    OPENSSL_cleanse(text.data(), text.size());
    UniqueFd fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (fd.get() < 0) fail(GREY_ERROR_IO, "cannot create '" + temporary + "': " + errno_text());
    step("temporary created");
    try {
        if (::fchmod(fd.get(), 0600) != 0) fail(GREY_ERROR_IO, "cannot chmod '" + temporary + "': " + errno_text());
        write_all(fd.get(), bytes.bytes, "'" + temporary + "'");
        step("temporary written");
        if (::fsync(fd.get()) != 0) fail(GREY_ERROR_IO, "cannot sync '" + temporary + "': " + errno_text());
        step("temporary synced");
        if (::rename(temporary.c_str(), path_.c_str()) != 0) fail(GREY_ERROR_IO, "cannot rename '" + temporary + "' to '" + path_ + "': " + errno_text());
    } catch (...) {
        // The temporary holds the next key, not an old one, but it is no use to anyone: it goes.
        wipe(fd.get(), bytes.bytes.size(), temporary);
        ::unlink(temporary.c_str());
        throw;
    }
    step("renamed");
    struct stat now {};
    if (::fstat(fd.get(), &now) != 0) fail(GREY_ERROR_IO, "cannot stat '" + path_ + "': " + errno_text());
    device_ = now.st_dev;
    inode_ = now.st_ino;
    fsync_directory_of(path_);
    step("directory synced");
    // The previous key has no name now. (A hard link made by hand would still name it: then it is the
    // owner's deliberate copy, and is left alone.)
    if (::fstat(old.get(), &st) == 0 && st.st_nlink == 0) wipe(old.get(), static_cast<uint64_t>(st.st_size), path_ + " (the replaced key)");
    step("old key wiped");
}

}  // namespace grey::audit
