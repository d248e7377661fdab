// A file written in place at known offsets (pwrite) into a temporary file in its directory, and moved
// to its path only when complete (commit): until then nothing is at the path. Destroying an output that
// was not committed removes the temporary file; an unnamed one (O_TMPFILE, where the file system has
// it) never had a name, so not even a killed process leaves it behind.
#pragma once

#include "core/unique_fd.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>

namespace grey::model {

class ModelOutput {
public:
    enum class Replace { no, yes };
    enum class Temporary { unnamed_if_possible, named };

    // Creates the temporary file, `size` bytes long (zeros until written). With Replace::no a file
    // already at `path` is refused now and again, atomically, by commit. GREY_ERROR_IO naming the path.
    ModelOutput(std::filesystem::path path, uint64_t size, Replace replace, Temporary temporary = Temporary::unnamed_if_possible);
    ~ModelOutput();
    ModelOutput(const ModelOutput&) = delete;
    ModelOutput& operator=(const ModelOutput&) = delete;

    // Writes `bytes` at `offset` (within the size given); GREY_ERROR_IO when the system refuses. Every
    // `writeback_bytes` written, the kernel is asked to start writing the file out, so that the disk
    // works while the caller produces the rest and commit's sync finds little left to do.
    void write_at(uint64_t offset, std::span<const std::byte> bytes);
    // Syncs the file, gives it its name (refusing a file there unless Replace::yes), syncs the directory.
    void commit();

private:
    void create_named();
    void link_unnamed_as(const std::filesystem::path& name);
    void sync_directory();

    std::filesystem::path path_;
    std::filesystem::path directory_;
    std::filesystem::path named_;  // the temporary file's name; empty while it has none
    UniqueFd file_;
    Replace replace_;
    bool committed_ = false;
    uint64_t written_since_writeback_ = 0;
    static constexpr uint64_t writeback_bytes = 32ull << 20;
};

}  // namespace grey::model
