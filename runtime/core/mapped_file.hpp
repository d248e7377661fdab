// A read-only memory mapping of a whole file that a caller or a user names (a model file, an audit
// log), opened as every such path is (core/regular_file.hpp) and unmapped when the object dies.
//
// The mapping is private and never written, but it is not a snapshot: bytes another process writes
// into the file show through, and if another process truncates the file while it is mapped, touching a
// page past the new end raises SIGBUS (docs/security.md, "Files that change while libgrey reads them").
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace grey {

class MappedFile {
public:
    // Whether every page is read in when the file is mapped (MAP_POPULATE): for a file that is read
    // whole at once, rather than faulted in page by page.
    enum class Prefault { no, yes };

    // Maps `path`, named `what` in messages ("model file"): GREY_ERROR_NOT_FOUND,
    // GREY_ERROR_PERMISSION_DENIED or GREY_ERROR_IO naming the file, GREY_ERROR_INVALID_ARGUMENT when
    // it is not a regular file (checked without blocking on a FIFO).
    MappedFile(const std::string& path, const std::string& what, Prefault prefault = Prefault::no);
    ~MappedFile();
    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&&) = delete;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    template <typename Byte = std::byte>
    [[nodiscard]] std::span<const Byte> bytes() const noexcept {
        static_assert(sizeof(Byte) == 1, "a view of bytes");
        return {reinterpret_cast<const Byte*>(data_), size_};
    }

    // Drops the pages holding `range` (a part of bytes()) from the resident set; they are read from the
    // file again if touched.
    void evict(std::span<const std::byte> range) const noexcept;

    // Asks the kernel to start reading the pages holding `range` (a part of bytes()) in the background,
    // so that a reader walking the file front to back finds them resident instead of waiting for the
    // disk on every fault. Returns once the reads are queued, which can take a while when the disk's
    // queue is full (a third of a second a gigabyte has been seen): call it from a thread that can wait
    // (core/read_ahead.hpp).
    void prefetch(std::span<const std::byte> range) const noexcept;

private:
    const std::byte* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace grey
