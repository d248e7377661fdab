#include "input_prefetch.hpp"

#include <algorithm>
#include <cstdint>
#include <fcntl.h>
#include <fstream>
#include <limits>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace greyctl {
namespace {

constexpr uint64_t kMostBytes = 1ull << 30;

// MemAvailable counts the page cache the kernel would give up; free pages alone undercount it on any
// machine that has been reading files.
uint64_t available_memory() {
    std::ifstream meminfo("/proc/meminfo");
    std::string key;
    uint64_t kib = 0;
    while (meminfo >> key >> kib) {
        if (key == "MemAvailable:") return kib * 1024;
        meminfo.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
    }
    const long pages = ::sysconf(_SC_AVPHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

void prefetch(const std::string& path, const std::stop_token& stop) {
    // Non-blocking: opening a FIFO for reading would otherwise wait for a writer that may never come.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return;
    struct stat info {};
    if (::fstat(fd, &info) == 0 && S_ISREG(info.st_mode) && info.st_size > 0) {
        const uint64_t bytes = std::min({static_cast<uint64_t>(info.st_size), kMostBytes, available_memory() / 4});
        // One WILLNEED reads at most the device's read-ahead size (often 128 KiB) and drops the rest
        // without a word, so the range is asked for in steps no device's read-ahead is smaller than.
        constexpr uint64_t step = 128 << 10;
        for (uint64_t at = 0; at < bytes && !stop.stop_requested(); at += step)
            (void)::posix_fadvise(fd, static_cast<off_t>(at), static_cast<off_t>(std::min(step, bytes - at)), POSIX_FADV_WILLNEED);
    }
    ::close(fd);
}

}  // namespace

InputPrefetch::InputPrefetch(const std::string& path) : thread_([path](const std::stop_token& stop) { prefetch(path, stop); }) {}

}  // namespace greyctl
