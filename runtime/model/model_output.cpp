#include "model/model_output.hpp"

#include "core/error.hpp"

#include <cerrno>
#include <cstring>
#include <cstdio>
#include <fcntl.h>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

namespace grey::model {
namespace {

// Every failure to produce the output is GREY_ERROR_IO, as the one-shot writer always reported.
[[noreturn]] void fail_output(const std::filesystem::path& path, const char* doing, int error) {
    fail(GREY_ERROR_IO, std::string("cannot ") + doing + " '" + path.string() + "': " + std::strerror(error));
}

// "PATH.grey-XXXXXX"-style names beside the output: hidden, and telling whose they are.
std::filesystem::path temporary_name(const std::filesystem::path& directory, const std::filesystem::path& path) {
    static constexpr char kLetters[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::random_device random;
    std::string suffix(6, 'x');
    for (auto& c : suffix) c = kLetters[random() % (sizeof kLetters - 1)];
    return directory / ("." + path.filename().string() + ".grey-" + suffix);
}

// Runs `attempt(name)` with fresh temporary names until it does not fail with EEXIST.
template <typename Attempt>
std::filesystem::path with_fresh_name(const std::filesystem::path& directory, const std::filesystem::path& path, Attempt&& attempt) {
    for (int tries = 0; tries < 100; ++tries) {
        auto name = temporary_name(directory, path);
        if (attempt(name)) return name;
        if (errno != EEXIST) fail_output(path.string(), "create a temporary file for", errno);
    }
    fail(GREY_ERROR_IO, "cannot find a free temporary name beside '" + path.string() + "'");
}

std::string proc_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

}  // namespace

ModelOutput::ModelOutput(std::filesystem::path path, uint64_t size, Replace replace, Temporary temporary)
    : path_(std::move(path)), directory_(path_.parent_path().empty() ? "." : path_.parent_path()), replace_(replace) {
    struct stat info {};
    if (replace_ == Replace::no && ::lstat(path_.c_str(), &info) == 0) fail(GREY_ERROR_IO, "'" + path_.string() + "' already exists");
    if (temporary == Temporary::unnamed_if_possible) {
        file_ = UniqueFd(::open(directory_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0666));
        if (file_.get() < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) fail_output(path_.string(), "create", errno);
        // Naming it later goes through /proc; without /proc, use a named file from the start.
        if (file_.get() >= 0 && ::access(proc_path(file_.get()).c_str(), F_OK) != 0) file_ = UniqueFd();
    }
    if (file_.get() < 0) create_named();
    if (::ftruncate(file_.get(), static_cast<off_t>(size)) != 0) fail_output(path_.string(), "size", errno);
}

ModelOutput::~ModelOutput() {
    if (!committed_ && !named_.empty()) ::unlink(named_.c_str());
}

void ModelOutput::create_named() {
    named_ = with_fresh_name(directory_, path_, [&](const std::filesystem::path& name) {
        file_ = UniqueFd(::open(name.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0666));
        return file_.get() >= 0;
    });
}

void ModelOutput::write_at(uint64_t offset, std::span<const std::byte> bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::pwrite(file_.get(), bytes.data(), bytes.size(), static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail_output(path_.string(), "write", n < 0 ? errno : EIO);
        bytes = bytes.subspan(static_cast<std::size_t>(n));
        offset += static_cast<uint64_t>(n);
        written_since_writeback_ += static_cast<uint64_t>(n);
    }
    if (written_since_writeback_ >= writeback_bytes) {
        // Starts writeback of every dirty page of the file and returns without waiting (a hint: a file
        // system without it just leaves the work to commit's fsync).
        (void)::sync_file_range(file_.get(), 0, 0, SYNC_FILE_RANGE_WRITE);
        written_since_writeback_ = 0;
    }
}

void ModelOutput::link_unnamed_as(const std::filesystem::path& name) {
    if (::linkat(AT_FDCWD, proc_path(file_.get()).c_str(), AT_FDCWD, name.c_str(), AT_SYMLINK_FOLLOW) != 0) {
        if (errno == EEXIST && name == path_) fail(GREY_ERROR_IO, "'" + path_.string() + "' already exists");
        fail_output(path_.string(), "create", errno);
    }
}

void ModelOutput::commit() {
    if (::fsync(file_.get()) != 0) fail_output(path_.string(), "sync", errno);
    const bool unnamed = named_.empty();
    if (unnamed && replace_ == Replace::no) {
        link_unnamed_as(path_);  // fails if anything is there: never replaces
    } else {
        if (unnamed)  // a name to rename from, as rename can replace and linkat cannot
            named_ = with_fresh_name(directory_, path_, [&](const std::filesystem::path& name) {
                if (::linkat(AT_FDCWD, proc_path(file_.get()).c_str(), AT_FDCWD, name.c_str(), AT_SYMLINK_FOLLOW) == 0) return true;
                if (errno != EEXIST) fail_output(path_.string(), "create", errno);
                return false;
            });
        if (replace_ == Replace::yes) {
            if (::rename(named_.c_str(), path_.c_str()) != 0) fail_output(path_.string(), "rename a temporary file to", errno);
        } else if (::renameat2(AT_FDCWD, named_.c_str(), AT_FDCWD, path_.c_str(), RENAME_NOREPLACE) != 0) {
            if (errno == EEXIST) fail(GREY_ERROR_IO, "'" + path_.string() + "' already exists");
            // A file system without RENAME_NOREPLACE: link, which refuses an existing name too.
            if (errno != EINVAL && errno != ENOSYS) fail_output(path_.string(), "rename a temporary file to", errno);
            if (::link(named_.c_str(), path_.c_str()) != 0) {
                if (errno == EEXIST) fail(GREY_ERROR_IO, "'" + path_.string() + "' already exists");
                fail_output(path_.string(), "create", errno);
            }
            ::unlink(named_.c_str());
        }
    }
    committed_ = true;
    sync_directory();
}

void ModelOutput::sync_directory() {
    const UniqueFd directory(::open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (directory.get() < 0 || ::fsync(directory.get()) != 0) fail_output(directory_.string(), "sync the directory", errno);
}

}  // namespace grey::model
