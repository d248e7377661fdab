#include "core/mapped_file.hpp"

#include "core/error.hpp"
#include "core/regular_file.hpp"

#include <cerrno>
#include <sys/mman.h>
#include <unistd.h>

namespace grey {

static_assert(sizeof(off_t) <= sizeof(std::size_t), "every regular file's size must fit a mapping's length");

MappedFile::MappedFile(const std::string& path, const std::string& what, Paging paging) {
    struct stat info {};
    const FileDescriptor file = open_regular_file(path, what, &info);
    size_ = static_cast<std::size_t>(info.st_size);
    if (size_ == 0) return;  // mmap refuses a zero length; an empty file is an empty span
    const int flags = MAP_PRIVATE | (paging == Paging::up_front ? MAP_POPULATE : 0);
    void* mapped = ::mmap(nullptr, size_, PROT_READ, flags, file.get(), 0);
    if (mapped == MAP_FAILED) fail_errno(path, ("map " + what).c_str(), errno);
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

}  // namespace grey
