// Configuration files must be regular files of a bounded size: a directory, FIFO or device is refused
// at once (never read as an empty file, never waited on), and so is a file over GREY_CONFIG_FILE_MAX.
#include "child_process.hpp"
#include "test_support.hpp"

#include <sys/stat.h>
#include <unistd.h>

namespace {

struct ConfigDeleter {
    void operator()(grey_config* c) const noexcept { grey_config_destroy(c); }
};

// Loads `path` in a child that may take at most 10 s, and returns "status: message" (or what went wrong).
std::string load_in_child(const std::filesystem::path& path) {
    const auto child = grey::test::run_in_child(
        [&] {
            grey_config* raw = nullptr;
            if (grey_config_create(nullptr, &raw) != GREY_OK) return 100;
            const std::unique_ptr<grey_config, ConfigDeleter> config(raw);
            const grey_status status = grey_config_load_file(config.get(), path.c_str());
            const std::string message = grey_last_error();
            // The exit code says which expectation held: 0 the refusal named the path and the kind of file.
            if (status == GREY_OK) return 10;
            if (message.find("'" + path.string() + "'") == std::string::npos) return 11;
            if (status == GREY_ERROR_INVALID_ARGUMENT && message.find("is not a regular file") != std::string::npos) return 0;
            if (status == GREY_ERROR_CONFIG && message.find("larger than the limit of 1048576 bytes") != std::string::npos) return 1;
            return 12;
        },
        10);
    if (!child.exited) return "did not return within 10 s";
    switch (child.exit_code) {
        case 0: return "not a regular file";
        case 1: return "too large";
        case 10: return "accepted";
        case 11: return "the message does not name the path";
        default: return "wrong status or message (" + std::to_string(child.exit_code) + ")";
    }
}

}  // namespace

TEST(ConfigFile, OnlyRegularFilesAreRead) {
    grey::test::TempDir dir;
    const auto fifo = dir.path() / "config.fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    EXPECT_EQ(load_in_child(dir.path()), "not a regular file");
    EXPECT_EQ(load_in_child(fifo), "not a regular file");
    EXPECT_EQ(load_in_child("/dev/zero"), "not a regular file");
}

TEST(ConfigFile, SizeIsBounded) {
    grey::test::TempDir dir;
    const auto big = dir.write("big.yaml", "# a comment, then spaces\n");
    ASSERT_EQ(::truncate(big.c_str(), GREY_CONFIG_FILE_MAX + 1), 0);
    EXPECT_EQ(load_in_child(big), "too large");
    const auto largest = dir.write("largest.yaml", "memory:\n  compression:\n    algorithm: zstd\n");
    const std::string padding(GREY_CONFIG_FILE_MAX - std::filesystem::file_size(largest), '\n');
    std::ofstream(largest, std::ios::app) << padding;
    ASSERT_EQ(std::filesystem::file_size(largest), GREY_CONFIG_FILE_MAX);
    grey_config* raw = nullptr;
    ASSERT_EQ(grey_config_create(nullptr, &raw), GREY_OK);
    const std::unique_ptr<grey_config, ConfigDeleter> config(raw);
    EXPECT_EQ(grey_config_load_file(config.get(), largest.c_str()), GREY_OK) << grey_last_error();
}

TEST(ConfigFile, AContextRefusesAConfigPathThatIsNotAFile) {
    grey::test::TempDir dir;
    grey_context_options options = grey::test::host_only_options();
    options.config_path = dir.path().c_str();
    grey_context* context = nullptr;
    EXPECT_EQ(grey_context_create(&options, &context), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("is not a regular file"), std::string::npos) << grey_last_error();
    EXPECT_EQ(context, nullptr);
}
