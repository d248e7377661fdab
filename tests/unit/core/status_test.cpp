#include "test_support.hpp"

#include <set>
#include <string>
#include <thread>

TEST(Status, EveryStatusHasADistinctDescription) {
    std::set<std::string> seen;
    for (int s = GREY_OK; s <= GREY_ERROR_CANCELLED; ++s) {
        const std::string text = grey_status_string(static_cast<grey_status>(s));
        EXPECT_NE(text, "unknown status") << s;
        EXPECT_TRUE(seen.insert(text).second) << "duplicate: " << text;
    }
    EXPECT_STREQ(grey_status_string(static_cast<grey_status>(9999)), "unknown status");
    EXPECT_STREQ(grey_status_string(GREY_OK), "ok");
}

TEST(Status, VersionMatchesTheHeader) {
    EXPECT_EQ(grey_version(), static_cast<uint32_t>(GREY_VERSION_NUMBER));
    EXPECT_STREQ(grey_version_string(), "0.1.0");
    EXPECT_NE(grey_build_revision(), nullptr);
}

TEST(Status, LastErrorIsPerThreadAndClearedBySuccess) {
    uint32_t count = 0;
    ASSERT_EQ(grey_device_count(nullptr, &count), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_STREQ(grey_last_error(), "context must not be NULL");
    std::string other_thread;
    std::thread([&] { other_thread = grey_last_error(); }).join();
    EXPECT_EQ(other_thread, "");
    grey_config* config = nullptr;
    ASSERT_EQ(grey_config_create(nullptr, &config), GREY_OK);
    EXPECT_STREQ(grey_last_error(), "");
    grey_config_destroy(config);
}

TEST(Status, LogLevelNames) {
    EXPECT_STREQ(grey_log_level_name(GREY_LOG_DEBUG), "DEBUG");
    EXPECT_STREQ(grey_log_level_name(GREY_LOG_WARNING), "WARNING");
    EXPECT_EQ(grey_log_level_name(static_cast<grey_log_level>(42)), nullptr);
}
