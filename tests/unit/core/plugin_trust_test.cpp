// The loader searches only directories it can trust and loads only files it can trust: nothing another
// user could have written, and no directory fixed when libgrey was built (docs/security.md).
#include "test_support.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using grey::test::make_context;
using grey::test::TempDir;

namespace {

constexpr uid_t kNobody = 65534;

using grey::test::has;

// A directory holding a copy of the loader tests' well-behaved fake plugin.
fs::path plugin_dir_in(const fs::path& dir, fs::perms mode = fs::perms(0755)) {
    fs::create_directories(dir);
    fs::copy_file(fs::path(GREY_TEST_PLUGIN_DIR) / "libgrey-backend-fake.so", dir / "libgrey-backend-fake.so",
                  fs::copy_options::overwrite_existing);
    fs::permissions(dir / "libgrey-backend-fake.so", fs::perms(0755));
    fs::permissions(dir, mode);
    return dir;
}

grey::test::ContextPtr context_searching(const fs::path& dir) {
    grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
    options.backend_dir = dir.c_str();
    options.backends = "fake";
    options.log_level = GREY_LOG_OFF;
    return make_context(options);
}

std::vector<grey_plugin_dir_info> dirs_of(grey_context* context) {
    uint32_t count = 0;
    EXPECT_EQ(grey_plugin_dir_count(context, &count), GREY_OK);
    std::vector<grey_plugin_dir_info> dirs(count);
    for (uint32_t i = 0; i < count; ++i) {
        dirs[i].struct_size = sizeof dirs[i];
        EXPECT_EQ(grey_plugin_dir_info_get(context, i, &dirs[i]), GREY_OK) << grey_last_error();
    }
    return dirs;
}

grey_backend_info fake_report(grey_context* context) { return grey::test::backend_report(context, "fake"); }

// The search path's first entry, which is the host's backend_dir.
grey_plugin_dir_info host_dir_of(grey_context* context) {
    const auto dirs = dirs_of(context);
    if (dirs.empty()) return {};
    EXPECT_EQ(dirs[0].origin, GREY_PLUGIN_ORIGIN_HOST);
    return dirs[0];
}

void expect_refused_dir(const fs::path& named, const std::string& why) {
    auto context = context_searching(named);
    const auto dir = host_dir_of(context.get());
    EXPECT_EQ(dir.state, GREY_PLUGIN_DIR_REFUSED) << dir.reason;
    EXPECT_TRUE(has(dir.reason, why)) << dir.reason;
    const auto fake = fake_report(context.get());
    EXPECT_EQ(fake.outcome, GREY_BACKEND_NOT_FOUND) << fake.reason;
    EXPECT_TRUE(has(fake.reason, "not searched, as untrusted: " + named.string())) << fake.reason;
}

void expect_refused_plugin(const fs::path& dir, const std::string& why) {
    auto context = context_searching(dir);
    EXPECT_EQ(host_dir_of(context.get()).state, GREY_PLUGIN_DIR_SEARCHED);
    const auto fake = fake_report(context.get());
    EXPECT_EQ(fake.outcome, GREY_BACKEND_FAILED) << fake.reason;
    EXPECT_TRUE(has(fake.reason, "refused: ") && has(fake.reason, why)) << fake.reason;
    uint32_t devices = 0;
    ASSERT_EQ(grey_device_count(context.get(), &devices), GREY_OK);
    EXPECT_EQ(devices, 1u) << "only the host: the refused plugin was never opened";
}

void require_root() {
    if (::geteuid() != 0) GTEST_SKIP() << "giving a file to another user (uid 65534) needs root";
}

}  // namespace

TEST(PluginTrust, APluginInATrustedDirectoryLoads) {
    TempDir tmp;
    const fs::path root = fs::canonical(tmp.path());
    const auto dir = plugin_dir_in(root / "plugins");
    auto context = context_searching(dir);
    const auto searched = host_dir_of(context.get());
    EXPECT_EQ(searched.state, GREY_PLUGIN_DIR_SEARCHED) << searched.reason;
    EXPECT_EQ(std::string(searched.path), dir.string());
    EXPECT_EQ(std::string(searched.real_path), fs::canonical(dir).string());
    EXPECT_TRUE(has(searched.reason, "trusted")) << searched.reason;
    EXPECT_EQ(fake_report(context.get()).outcome, GREY_BACKEND_LOADED) << fake_report(context.get()).reason;
}

TEST(PluginTrust, AWorldOrGroupWritableDirectoryIsRefused) {
    TempDir tmp;
    const fs::path root = fs::canonical(tmp.path());
    expect_refused_dir(plugin_dir_in(root / "world", fs::perms(0777)), "is writable by group and others (mode 0777)");
    expect_refused_dir(plugin_dir_in(root / "others", fs::perms(0757)), "is writable by others (mode 0757)");
    expect_refused_dir(plugin_dir_in(root / "group", fs::perms(0775)), "is writable by group (mode 0775)");
    // Sticky or not: whoever may add a file to the plugin directory may add a plugin.
    expect_refused_dir(plugin_dir_in(root / "sticky", fs::perms(01777)), "(mode 1777)");
}

TEST(PluginTrust, AWritableDirectoryAboveIsRefusedUnlessSticky) {
    TempDir tmp;
    const fs::path root = fs::canonical(tmp.path());
    const fs::path open_parent = root / "open";
    plugin_dir_in(open_parent / "plugins");
    fs::permissions(open_parent, fs::perms(0777));
    // Anyone could rename open/plugins away and put their own directory in its place.
    expect_refused_dir(open_parent / "plugins", "directory '" + open_parent.string() + "' is writable by group and others");

    // As in /tmp: others may add entries beside ours but may not rename or remove ours.
    const fs::path sticky_parent = root / "sticky";
    plugin_dir_in(sticky_parent / "plugins");
    fs::permissions(sticky_parent, fs::perms(01777));
    auto context = context_searching(sticky_parent / "plugins");
    EXPECT_EQ(host_dir_of(context.get()).state, GREY_PLUGIN_DIR_SEARCHED) << host_dir_of(context.get()).reason;
    EXPECT_EQ(fake_report(context.get()).outcome, GREY_BACKEND_LOADED);
}

TEST(PluginTrust, AGroupOrOtherWritablePluginFileIsRefused) {
    TempDir tmp;
    const fs::path root = fs::canonical(tmp.path());
    const auto dir = plugin_dir_in(root / "plugins");
    const auto file = dir / "libgrey-backend-fake.so";
    fs::permissions(file, fs::perms(0666));
    expect_refused_plugin(dir, "file '" + fs::canonical(file).string() + "' is writable by group and others (mode 0666)");
    fs::permissions(file, fs::perms(0775));
    expect_refused_plugin(dir, "is writable by group (mode 0775)");
}

TEST(PluginTrust, ADirectoryOrPluginOwnedByAnotherUserIsRefused) {
    require_root();
    TempDir tmp;
    const fs::path root = fs::canonical(tmp.path());
    const auto dir = plugin_dir_in(root / "theirs");
    ASSERT_EQ(::chown(dir.c_str(), kNobody, kNobody), 0);
    expect_refused_dir(dir, "directory '" + dir.string() + "' is owned by uid 65534, neither root nor this user");

    const auto parent = root / "their-parent";
    plugin_dir_in(parent / "plugins");
    ASSERT_EQ(::chown(parent.c_str(), kNobody, kNobody), 0);
    expect_refused_dir(parent / "plugins", "directory '" + parent.string() + "' is owned by uid 65534");

    const auto mine = plugin_dir_in(root / "mine");
    ASSERT_EQ(::chown((mine / "libgrey-backend-fake.so").c_str(), kNobody, kNobody), 0);
    expect_refused_plugin(mine, "is owned by uid 65534, neither root nor this user");
}

TEST(PluginTrust, ASymlinkIsJudgedByWhereItLeads) {
    TempDir tmp;
    const fs::path root = fs::canonical(tmp.path());
    const auto untrusted = plugin_dir_in(root / "untrusted", fs::perms(0777));
    const auto trusted = plugin_dir_in(root / "trusted");
    fs::create_directories(root / "links");
    fs::create_directory_symlink(untrusted, root / "links" / "to-untrusted");
    fs::create_directory_symlink("../trusted", root / "links" / "to-trusted");

    expect_refused_dir(root / "links" / "to-untrusted", "directory '" + untrusted.string() + "' is writable");
    {
        auto context = context_searching(root / "links" / "to-untrusted");
        EXPECT_EQ(std::string(host_dir_of(context.get()).real_path), untrusted.string());
    }
    {
        auto context = context_searching(root / "links" / "to-trusted");
        const auto dir = host_dir_of(context.get());
        EXPECT_EQ(dir.state, GREY_PLUGIN_DIR_SEARCHED) << dir.reason;
        EXPECT_EQ(std::string(dir.real_path), trusted.string());
        EXPECT_EQ(fake_report(context.get()).outcome, GREY_BACKEND_LOADED);
    }

    // A plugin file that is a link into an untrusted directory.
    const auto linked = root / "linked";
    fs::create_directories(linked);
    fs::create_symlink(untrusted / "libgrey-backend-fake.so", linked / "libgrey-backend-fake.so");
    expect_refused_plugin(linked, "directory '" + untrusted.string() + "' is writable by group and others");
}

TEST(PluginTrust, ASymlinkInAnUntrustedDirectoryIsRefusedWhereverItLeads) {
    TempDir tmp;
    const fs::path root = fs::canonical(tmp.path());
    const auto trusted = plugin_dir_in(root / "trusted");
    const auto open = root / "open";
    fs::create_directories(open);
    fs::create_directory_symlink(trusted, open / "link");
    fs::permissions(open, fs::perms(0777));
    // Whoever may write `open` chooses where the link leads.
    expect_refused_dir(open / "link", "directory '" + open.string() + "' is writable");
}

TEST(PluginTrust, OneDirectoryReachedTwiceIsSearchedOnce) {
    TempDir tmp;
    const fs::path root = fs::canonical(tmp.path());
    const auto dir = plugin_dir_in(root / "plugins");
    fs::create_directory_symlink(dir, root / "alias");
    setenv("GREY_BACKEND_DIR", (root / "alias").c_str(), 1);
    grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
    options.backend_dir = dir.c_str();
    options.apply_env_overrides = 1;
    options.log_level = GREY_LOG_OFF;
    auto context = make_context(options);
    unsetenv("GREY_BACKEND_DIR");
    const auto dirs = dirs_of(context.get());
    ASSERT_GE(dirs.size(), 2u);
    EXPECT_EQ(dirs[1].origin, GREY_PLUGIN_ORIGIN_ENVIRONMENT);
    EXPECT_EQ(dirs[1].state, GREY_PLUGIN_DIR_DUPLICATE);
    EXPECT_TRUE(has(dirs[1].reason, "the same directory as '" + dir.string() + "'")) << dirs[1].reason;
}

TEST(PluginTrust, AMissingDirectoryIsReportedAsMissing) {
    TempDir tmp;
    const fs::path root = fs::canonical(tmp.path());
    auto context = context_searching(root / "none" / "here");
    const auto dir = host_dir_of(context.get());
    EXPECT_EQ(dir.state, GREY_PLUGIN_DIR_MISSING);
    EXPECT_TRUE(has(dir.reason, "'" + (root / "none").string() + "' does not exist")) << dir.reason;
}

// No directory chosen at build time (the build tree, the configured prefix) is searched: only the
// host's, the opted-in environment's, and grey/ beside the file holding libgrey (here, this program).
TEST(PluginTrust, TheDefaultSearchPathIsOnlyBesideTheLibrary) {
    auto context = make_context(grey::test::host_only_options());
    size_t length = 0;
    ASSERT_EQ(grey_backend_search_path(context.get(), nullptr, 0, &length), GREY_ERROR_BUFFER_TOO_SMALL);
    std::string text(length + 1, '\0');
    ASSERT_EQ(grey_backend_search_path(context.get(), text.data(), text.size(), &length), GREY_OK);
    text.resize(length);
    const fs::path beside = fs::canonical("/proc/self/exe").parent_path() / "grey";
    EXPECT_EQ(text, beside.string());

    const auto dirs = dirs_of(context.get());
    ASSERT_EQ(dirs.size(), 1u);
    EXPECT_EQ(dirs[0].origin, GREY_PLUGIN_ORIGIN_BESIDE_LIBRARY);
    EXPECT_EQ(std::string(dirs[0].path), beside.string());
}

TEST(PluginTrust, DirInfoRejectsBadArguments) {
    auto context = make_context(grey::test::host_only_options());
    grey_plugin_dir_info info{};
    info.struct_size = sizeof info;
    EXPECT_EQ(grey_plugin_dir_info_get(context.get(), 1000, &info), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(has(grey_last_error(), "out of range")) << grey_last_error();
    EXPECT_EQ(grey_plugin_dir_info_get(context.get(), 0, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    info.struct_size = 4;
    EXPECT_EQ(grey_plugin_dir_info_get(context.get(), 0, &info), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_plugin_dir_count(nullptr, nullptr), GREY_ERROR_INVALID_ARGUMENT);
}
