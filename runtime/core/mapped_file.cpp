#include "core/mapped_file.hpp"

#include "core/regular_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <sys/mman.h>
#include <unistd.h>

namespace grey {

MappedFile::MappedFile(const std::string& path, const std::string& what, Prefault prefault) {
    // Mapped, not read: its size costs address space, not memory, so no limit beyond the file's own.
    const RegularFile file = open_regular_file(path, what);
    size_ = static_cast<std::size_t>(file.size);
    if (size_ == 0) return;  // mmap refuses a zero length; an empty file is an empty span
    const int flags = MAP_PRIVATE | (prefault == Prefault::yes ? MAP_POPULATE : 0);
    void* mapped = ::mmap(nullptr, size_, PROT_READ, flags, file.fd.get(), 0);
    if (mapped == MAP_FAILED) fail_errno(path, "map " + what, errno);
    data_ = static_cast<const std::byte*>(mapped);
}

MappedFile::~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
}

MappedFile::MappedFile(MappedFile&& other) noexcept : data_(other.data_), size_(other.size_) {
    other.data_ = nullptr;
    other.size_ = 0;
}

namespace {

// madvise over the whole pages covering `range`. Advice is a hint: a failure changes nothing the caller
// can see, so it is not reported.
void advise(std::span<const std::byte> range, int advice) noexcept {
    if (range.empty()) return;
    static const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto first = reinterpret_cast<uintptr_t>(range.data()) / page * page;
    const auto last = reinterpret_cast<uintptr_t>(range.data() + range.size());
    ::madvise(reinterpret_cast<void*>(first), last - first, advice);
}

}  // namespace

void MappedFile::evict(std::span<const std::byte> range) const noexcept {
    // The mapping is private and never written, so the pages dropped are re-read from the file when
    // next touched.
    if (data_ != nullptr) advise(range, MADV_DONTNEED);
}

void MappedFile::prefetch(std::span<const std::byte> range) const noexcept {
    if (data_ == nullptr) return;
    // One WILLNEED reads at most the device's read-ahead size (Linux: the larger of read_ahead_kb and
    // max_sectors_kb, often 128 KiB) from the start of the range and drops the rest without a word, so
    // a whole tensor is asked for in steps no device's read-ahead is smaller than.
    constexpr std::size_t step = 128 << 10;
    for (std::size_t at = 0; at < range.size(); at += step) advise(range.subspan(at, std::min(step, range.size() - at)), MADV_WILLNEED);
}

}  // namespace grey
