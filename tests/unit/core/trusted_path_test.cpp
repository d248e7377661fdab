// resolve_trusted on its own: path resolution as the kernel does it, and refusals that are not about
// ownership or mode (plugin_trust_test.cpp covers those through the loader).
#include "core/trusted_path.hpp"
#include "test_support.hpp"

#include <sys/stat.h>

#include <filesystem>
#include <string>

namespace fs = std::filesystem;
using grey::test::TempDir;

using grey::test::has;

TEST(TrustedPath, ResolvesDotDotRelativePathsAndLinksLikeTheKernel) {
    TempDir tmp;
    const fs::path root = fs::canonical(tmp.path());
    fs::create_directories(root / "a" / "b");
    fs::create_directory_symlink("a/b", root / "ab");
    const auto real = fs::canonical(root / "a");
    auto via = grey::resolve_trusted(root / "ab" / ".." / "." / "", grey::PathKind::Directory);
    EXPECT_EQ(via.state, grey::TrustedPath::State::Trusted) << via.reason;
    EXPECT_EQ(via.real_path, real);

    const auto cwd = fs::current_path();
    fs::current_path(root);
    auto relative = grey::resolve_trusted("ab", grey::PathKind::Directory);
    fs::current_path(cwd);
    EXPECT_EQ(relative.real_path, real / "b");
}

TEST(TrustedPath, RefusesLoopsAndTheWrongKindOfFile) {
    TempDir tmp;
    const fs::path root = fs::canonical(tmp.path());
    fs::create_symlink("loop", root / "loop");
    auto loop = grey::resolve_trusted(root / "loop", grey::PathKind::Directory);
    EXPECT_EQ(loop.state, grey::TrustedPath::State::Refused);
    EXPECT_TRUE(has(loop.reason, "symbolic links")) << loop.reason;

    const auto file = tmp.write("file", "x");
    auto not_dir = grey::resolve_trusted(file, grey::PathKind::Directory);
    EXPECT_EQ(not_dir.state, grey::TrustedPath::State::Refused);
    EXPECT_TRUE(has(not_dir.reason, "is not a directory")) << not_dir.reason;
    auto not_file = grey::resolve_trusted(root, grey::PathKind::RegularFile);
    EXPECT_EQ(not_file.state, grey::TrustedPath::State::Refused);
    EXPECT_TRUE(has(not_file.reason, "not a regular file")) << not_file.reason;
    ASSERT_EQ(::mkfifo((root / "fifo").c_str(), 0600), 0);
    auto fifo = grey::resolve_trusted(root / "fifo", grey::PathKind::RegularFile);
    EXPECT_TRUE(has(fifo.reason, "is not a regular file")) << fifo.reason;
    EXPECT_EQ(grey::resolve_trusted("", grey::PathKind::Directory).state, grey::TrustedPath::State::Refused);
}

TEST(TrustedPath, AFileIsJudgedAtTheEndOfItsLinks) {
    TempDir tmp;
    const fs::path root = fs::canonical(tmp.path());
    const auto file = tmp.write("lib/libx.so.1", "x");
    fs::permissions(file, fs::perms(0644));
    fs::create_symlink("lib/libx.so.1", root / "libx.so");
    auto trusted = grey::resolve_trusted(root / "libx.so", grey::PathKind::RegularFile);
    EXPECT_EQ(trusted.state, grey::TrustedPath::State::Trusted) << trusted.reason;
    EXPECT_EQ(trusted.real_path, root / "lib" / "libx.so.1");

    fs::permissions(file, fs::perms(0646));
    auto shared = grey::resolve_trusted(root / "libx.so", grey::PathKind::RegularFile);
    EXPECT_EQ(shared.state, grey::TrustedPath::State::Refused);
    EXPECT_EQ(shared.reason, "file '" + (root / "lib" / "libx.so.1").string() + "' is writable by others (mode 0646)");
}
