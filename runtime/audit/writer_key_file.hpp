// The writer's key file on disk. Forward security holds only if no earlier epoch's key survives in any
// file once the writer has moved on, so the key file is never rewritten in place and never leaves a
// copy behind:
//   - a new key goes to "<path>.tmp" (created 0600 with O_EXCL), is synced, renamed over the key file,
//     and the directory is synced;
//   - the file it replaced, which still holds the previous key and no longer has a name, is overwritten
//     with zeros and synced through a descriptor held across the rename (on file systems that overwrite
//     in place this reaches the blocks that held it; docs/security.md says where it does not);
//   - leftovers of a rotation cut short — "<path>.tmp", and "<path>.tmp.<pid>" from libgrey 0.1 — are
//     overwritten and removed whenever the key file is loaded or replaced.
// Loading and replacing take an exclusive flock on the key file (the one that is about to be replaced,
// for a rotation), so that no process reads a file that is being wiped or removes a temporary file
// another process is still writing. The writer calls both while holding the log's own lock.
#pragma once

#include "audit/key_schedule.hpp"

#include <functional>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace grey::audit {

// Called with the name of each step of a key rotation once it is done ("temporary written", "renamed",
// ...). Tests kill the writer there to check that no crash leaves an old key behind; empty otherwise.
using StepHook = std::function<void(std::string_view step)>;

class WriterKeyFile {
public:
    WriterKeyFile(std::string path, StepHook hook) : path_(std::move(path)), hook_(std::move(hook)) {}

    // Removes leftovers of an interrupted rotation, then reads and parses the key file.
    KeyFile load();
    // Whether the path now names another file than the one last loaded or written: another process
    // rotated the key (or someone replaced the file).
    [[nodiscard]] bool replaced_on_disk() const;
    // Replaces the key file with `next`, as described above. On failure the old key file stays.
    void replace(const KeyFile& next);
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    void step(std::string_view name) const {
        if (hook_) hook_(name);
    }

    std::string path_;
    StepHook hook_;
    dev_t device_ = 0;
    ino_t inode_ = 0;
};

// Overwrites and removes the leftover temporaries of the key file at `path` (see above); returns how many.
size_t remove_key_leftovers(const std::string& path);

}  // namespace grey::audit
