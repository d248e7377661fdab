#include "model/mapped_file.hpp"

#include "core/error.hpp"
#include "core/regular_file.hpp"

#include <cerrno>
#include <sys/mman.h>
#include <unistd.h>

namespace grey::model {

MappedFile::MappedFile(const std::filesystem::path& path) {
    struct stat info {};
    const FileDescriptor file = open_regular_file(path.string(), "model file", &info);
    size_ = static_cast<std::size_t>(info.st_size);
    if (size_ == 0) return;  // mmap refuses a zero length; an empty file is an empty span
    void* mapped = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, file.get(), 0);
    if (mapped == MAP_FAILED) fail_errno(path.string(), "map", errno);
    data_ = static_cast<const std::byte*>(mapped);
}

MappedFile::~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
}

MappedFile::MappedFile(MappedFile&& other) noexcept : data_(other.data_), size_(other.size_) {
    other.data_ = nullptr;
    other.size_ = 0;
}

void MappedFile::evict(std::span<const std::byte> range) const noexcept {
    if (range.empty() || data_ == nullptr) return;
    // Whole pages covering the range. The mapping is private and never written, so the pages dropped
    // are re-read from the file when next touched: the bytes never change, whatever shares the pages.
    static const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto first = reinterpret_cast<uintptr_t>(range.data()) / page * page;
    const auto last = reinterpret_cast<uintptr_t>(range.data() + range.size());
    ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

}  // namespace grey::model
