// The first part of an input file on its way into the page cache while greyctl does something slow that
// does not need it yet: starting a GPU backend's driver takes a few tenths of a second, in which a disk
// reads hundreds of megabytes of the model the command is about to walk.
#pragma once

#include <string>
#include <thread>

namespace greyctl {

class InputPrefetch {
public:
    // Starts asking for the first bytes of `path` (at most 1 GiB and a quarter of the memory available
    // now) on a thread of its own and returns at once. Only a hint: a file it cannot open is left to the
    // command that reads it, which names the problem.
    explicit InputPrefetch(const std::string& path);

private:
    std::jthread thread_;  // asking can wait while the disk's queue is full; stopped and joined on destruction
};

}  // namespace greyctl
