// The one read-only file mapping of model files and audit logs: both pagings give the file's bytes, an
// empty file is an empty span, and what is not a regular file is refused without blocking, in the
// caller's words.
#include "core/error.hpp"
#include "core/mapped_file.hpp"
#include "child_process.hpp"
#include "test_support.hpp"

#include <fstream>
#include <string>
#include <sys/stat.h>

namespace {

using grey::MappedFile;

std::string as_text(std::span<const std::byte> bytes) { return {reinterpret_cast<const char*>(bytes.data()), bytes.size()}; }

}  // namespace

TEST(MappedFile, BothPrefaultsGiveTheFilesBytesAndAnEmptyFileIsEmpty) {
    grey::test::TempDir dir;
    const std::string path = (dir.path() / "data").string();
    std::ofstream(path, std::ios::binary) << std::string("\x00\x01grey\xff", 7);
    for (const auto prefault : {MappedFile::Prefault::no, MappedFile::Prefault::yes}) {
        const MappedFile file(path, "test file", prefault);
        EXPECT_EQ(as_text(file.bytes()), std::string("\x00\x01grey\xff", 7));
        ASSERT_EQ(file.bytes<uint8_t>().size(), 7u);
        EXPECT_EQ(file.bytes<uint8_t>()[6], 0xFF);
        file.evict(file.bytes());
        EXPECT_EQ(as_text(file.bytes()), std::string("\x00\x01grey\xff", 7)) << "evicted pages read back from the file";
    }
    const std::string empty = (dir.path() / "empty").string();
    std::ofstream(empty, std::ios::binary).close();
    EXPECT_TRUE(MappedFile(empty, "test file").bytes().empty());
}

TEST(MappedFile, WhatIsNotARegularFileIsRefusedWithoutBlockingNamingIt) {
    grey::test::TempDir dir;
    const auto fifo = dir.path() / "fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    for (const std::string& path : {fifo.string(), dir.path().string(), std::string("/dev/zero")}) {
        const auto child = grey::test::run_in_child(
            [&] {
                try {
                    const MappedFile file(path, "test file", MappedFile::Prefault::yes);
                } catch (const grey::Error& e) {
                    const bool named = std::string(e.what()).find("test file '" + path + "' is not a regular file") != std::string::npos;
                    return e.status() == GREY_ERROR_INVALID_ARGUMENT && named ? 0 : 2;
                }
                return 1;
            },
            10);
        EXPECT_TRUE(child.exited && child.exit_code == 0) << path << (child.exited ? ": accepted, or wrong status or message" : ": did not return");
    }
    try {
        const MappedFile file((dir.path() / "none").string(), "test file");
        ADD_FAILURE() << "a missing file was mapped";
    } catch (const grey::Error& e) {
        EXPECT_EQ(e.status(), GREY_ERROR_NOT_FOUND) << e.what();
    }
}
