#include "model/mapped_file.hpp"

#include "core/error.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace grey::model {
namespace {

// Closes a descriptor on every path out of the constructor; the mapping outlives it.
struct FileDescriptor {
    int fd;
    ~FileDescriptor() {
        if (fd >= 0) ::close(fd);
    }
};

[[noreturn]] void fail_errno(const std::filesystem::path& path, const char* doing, int error) {
    const grey_status status = error == ENOENT ? GREY_ERROR_NOT_FOUND
                               : (error == EACCES || error == EPERM) ? GREY_ERROR_PERMISSION_DENIED
                                                                     : GREY_ERROR_IO;
    fail(status, std::string("cannot ") + doing + " '" + path.string() + "': " + std::strerror(error));
}

}  // namespace

MappedFile::MappedFile(const std::filesystem::path& path) {
    FileDescriptor file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (file.fd < 0) fail_errno(path, "open", errno);
    struct stat info {};
    if (::fstat(file.fd, &info) != 0) fail_errno(path, "stat", errno);
    if (!S_ISREG(info.st_mode)) fail(GREY_ERROR_IO, "'" + path.string() + "' is not a regular file");
    size_ = static_cast<std::size_t>(info.st_size);
    if (size_ == 0) return;  // mmap refuses a zero length; an empty file is an empty span
    void* mapped = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, file.fd, 0);
    if (mapped == MAP_FAILED) fail_errno(path, "map", errno);
    data_ = static_cast<const std::byte*>(mapped);
}

MappedFile::~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
}

MappedFile::MappedFile(MappedFile&& other) noexcept : data_(other.data_), size_(other.size_) {
    other.data_ = nullptr;
    other.size_ = 0;
}

}  // namespace grey::model
