// Snapshots of the files `greyctl apply` is about to change, so that `greyctl rollback` can put them
// back: a directory per snapshot under the state directory, holding a manifest (manifest.json) and a
// copy of every file that existed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace greyctl {

struct SnapshotFile {
    std::string path;     // the file apply changes
    bool existed = false; // false: rollback removes it
    std::string backup;   // the copy in the snapshot, when it existed
};

struct Snapshot {
    std::string id;
    int64_t created = 0;  // seconds since the epoch
    std::string plan;     // the plan file applied
    std::vector<SnapshotFile> files;
};

// Copies every file of `paths` that exists into a new snapshot under `state_dir` and returns it.
Snapshot take_snapshot(const std::string& state_dir, const std::string& plan, const std::vector<std::string>& paths);
// Every snapshot under `state_dir`, oldest first.
std::vector<Snapshot> list_snapshots(const std::string& state_dir);
// Puts every file of `snapshot` back as it was (removing those that did not exist).
void restore_snapshot(const Snapshot& snapshot);

}  // namespace greyctl
