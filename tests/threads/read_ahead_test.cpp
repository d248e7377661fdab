// Read-ahead of a mapped file: a large range is asked for whole (one WILLNEED would read only the
// device's read-ahead size from its start), and the read-ahead thread stays within its window of the
// reader and follows it. Residency is the page cache's, seen through mincore; the test waits for the
// disk, it does not time it.
#include "core/mapped_file.hpp"
#include "core/read_ahead.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <fcntl.h>
#include <fstream>
#include <string>
#include <sys/mman.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using grey::MappedFile;
using grey::ReadAhead;

constexpr std::size_t kMiB = 1 << 20;

// The fraction of the pages holding `range` (page-aligned: a part of a mapping at a page boundary)
// that are in the page cache.
double resident(std::span<const std::byte> range) {
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    std::vector<unsigned char> pages((range.size() + page - 1) / page);
    if (::mincore(const_cast<std::byte*>(range.data()), range.size(), pages.data()) != 0) return -1;
    std::size_t in = 0;
    for (const unsigned char p : pages) in += p & 1u;
    return static_cast<double>(in) / static_cast<double>(pages.size());
}

bool wait_until_resident(std::span<const std::byte> range) {
    for (int i = 0; i < 2000; ++i) {
        if (resident(range) == 1.0) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

// A file of `bytes` on disk whose pages are out of the page cache, or "" where the file system keeps
// them (tmpfs holds files only there).
std::string cold_file(const grey::test::TempDir& dir, std::size_t bytes) {
    const std::string path = (dir.path() / "cold").string();
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return "";
    std::vector<char> piece(kMiB, 'g');
    for (std::size_t done = 0; done < bytes; done += piece.size())
        if (::write(fd, piece.data(), piece.size()) != static_cast<ssize_t>(piece.size())) return ::close(fd), "";
    ::fsync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
    const MappedFile file(path, "test file");
    return resident(file.bytes()) == 0.0 ? path : "";
}

}  // namespace

TEST(ReadAhead, PrefetchOfALargeRangeReadsAllOfIt) {
    const grey::test::TempDir dir;
    const std::string path = cold_file(dir, 32 * kMiB);
    if (path.empty()) GTEST_SKIP() << "the temporary directory's file system keeps files in the page cache (tmpfs?)";
    const MappedFile file(path, "test file");
    file.prefetch(file.bytes());
    EXPECT_TRUE(wait_until_resident(file.bytes())) << "resident: " << resident(file.bytes());
}

TEST(ReadAhead, StaysWithinItsWindowAndFollowsTheReader) {
    const grey::test::TempDir dir;
    const std::string path = cold_file(dir, 8 * 4 * kMiB);
    if (path.empty()) GTEST_SKIP() << "the temporary directory's file system keeps files in the page cache (tmpfs?)";
    const MappedFile file(path, "test file");
    std::vector<std::span<const std::byte>> ranges;
    for (std::size_t i = 0; i < 8; ++i) ranges.push_back(file.bytes().subspan(i * 4 * kMiB, 4 * kMiB));
    {
        ReadAhead read_ahead(file, ranges, 8 * kMiB);  // two ranges
        ASSERT_TRUE(wait_until_resident(file.bytes().first(8 * kMiB)));
        EXPECT_EQ(resident(file.bytes().subspan(8 * kMiB)), 0.0) << "nothing past the window is asked for";
        read_ahead.at(6);
        ASSERT_TRUE(wait_until_resident(file.bytes().subspan(24 * kMiB)));
        EXPECT_EQ(resident(file.bytes().subspan(8 * kMiB, 16 * kMiB)), 0.0) << "the ranges the reader passed are not asked for";
    }
    const MappedFile again(path, "test file");
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(again.bytes().data()) + 30 * kMiB, 3), "ggg");
}

TEST(ReadAhead, NoRangesAndAStopBeforeTheEndAreFine) {
    const grey::test::TempDir dir;
    const std::string path = (dir.path() / "small").string();
    std::ofstream(path, std::ios::binary) << std::string(3 * kMiB, 'x');
    const MappedFile file(path, "test file");
    { ReadAhead none(file, {}, 1 * kMiB); none.at(0); }
    { ReadAhead early(file, {file.bytes().first(kMiB), file.bytes().subspan(kMiB, kMiB), file.bytes().subspan(2 * kMiB)}, kMiB); }
    ReadAhead past(file, {file.bytes()}, 0);  // a window of nothing asks for nothing, and is stopped
    past.at(5);                                  // a reader past the end
}
