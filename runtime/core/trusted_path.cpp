#include "core/trusted_path.hpp"

#include "core/regular_file.hpp"
#include "core/text.hpp"

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace grey {
namespace fs = std::filesystem;

namespace {

constexpr int kMaxSymlinks = 40;  // the kernel's own limit for one path resolution

const char* who_else_may_write(mode_t mode) {
    const bool group = (mode & S_IWGRP) != 0;
    const bool others = (mode & S_IWOTH) != 0;
    return group && others ? "group and others" : (group ? "group" : "others");
}

// Why `st` (the status of `what` '`path`') is not to be trusted, or "" when it is.
std::string distrust(const struct stat& st, const char* what, const std::string& path, bool sticky_may_be_shared) {
    const uid_t self = ::geteuid();
    if (st.st_uid != 0 && st.st_uid != self)
        return std::string(what) + " '" + path + "' is owned by uid " + std::to_string(st.st_uid) +
               ", neither root nor this user (uid " + std::to_string(self) + ")";
    const bool shared = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
    if (shared && !(sticky_may_be_shared && (st.st_mode & S_ISVTX) != 0))
        return std::string(what) + " '" + path + "' is writable by " + who_else_may_write(st.st_mode) + " (mode " +
               octal_mode(st.st_mode) + ")";
    return {};
}

TrustedPath verdict(TrustedPath::State state, std::string reason, std::string real_path = {}) {
    return TrustedPath{state, std::move(real_path), std::move(reason)};
}

TrustedPath refused(std::string reason, std::string real_path = {}) {
    return verdict(TrustedPath::State::Refused, std::move(reason), std::move(real_path));
}

// The directories opened so far, from "/" down; the next component is looked up in the last one.
class DirectoryChain {
public:
    bool open_root(std::string& why) {
        UniqueFd root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
        struct stat st {};
        if (root.get() < 0 || ::fstat(root.get(), &st) != 0) {
            why = "cannot open '/': " + errno_text();
            return false;
        }
        why = distrust(st, "directory", "/", true);
        fds_.push_back(std::move(root));
        return why.empty();
    }
    [[nodiscard]] int fd() const { return fds_.back().get(); }
    [[nodiscard]] std::string path() const { return "/" + join(names_, "/"); }
    [[nodiscard]] std::string path_of(const std::string& name) const { return names_.empty() ? "/" + name : path() + "/" + name; }
    void push(UniqueFd fd, std::string name) {
        fds_.push_back(std::move(fd));
        names_.push_back(std::move(name));
    }
    void up() {
        if (names_.empty()) return;  // "/.." is "/"
        fds_.pop_back();
        names_.pop_back();
    }
    void back_to_root() {
        fds_.resize(1);
        names_.clear();
    }

private:
    std::vector<UniqueFd> fds_;
    std::vector<std::string> names_;
};

}  // namespace

TrustedPath resolve_trusted(const fs::path& path, PathKind kind) {
    if (path.empty()) return refused("the path is empty");
    std::error_code ec;
    const fs::path absolute = fs::absolute(path, ec);
    if (ec) return refused("cannot make '" + path.string() + "' absolute: " + ec.message());

    DirectoryChain chain;
    if (std::string why; !chain.open_root(why)) return refused(why);
    std::deque<std::string> pending;
    for (const auto& part : absolute.relative_path()) pending.push_back(part.string());

    int links = 0;
    while (!pending.empty()) {
        const std::string name = std::move(pending.front());
        pending.pop_front();
        if (name.empty() || name == ".") continue;
        if (name == "..") {
            chain.up();
            continue;
        }
        const std::string at = chain.path_of(name);
        struct stat st {};
        if (::fstatat(chain.fd(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT) return verdict(TrustedPath::State::Missing, "'" + at + "' does not exist");
            return refused("cannot examine '" + at + "': " + errno_text());
        }
        if (S_ISLNK(st.st_mode)) {
            if (++links > kMaxSymlinks) return refused("more than " + std::to_string(kMaxSymlinks) + " symbolic links in '" + path.string() + "'");
            char target[PATH_MAX];
            const ssize_t n = ::readlinkat(chain.fd(), name.c_str(), target, sizeof target);
            if (n < 0 || static_cast<size_t>(n) >= sizeof target) return refused("cannot read the symbolic link '" + at + "'");
            const fs::path link(std::string(target, static_cast<size_t>(n)));
            if (link.is_absolute()) chain.back_to_root();
            std::deque<std::string> parts;
            for (const auto& part : link.relative_path()) parts.push_back(part.string());
            pending.insert(pending.begin(), parts.begin(), parts.end());
            continue;
        }
        const bool last = pending.empty();
        if (kind == PathKind::RegularFile && last) {
            if (!S_ISREG(st.st_mode)) return refused("'" + at + "' is not a regular file", at);
            if (std::string why = distrust(st, "file", at, false); !why.empty()) return refused(why, at);
            return verdict(TrustedPath::State::Trusted,
                           "trusted: the file and every directory above it belong to root or this user, and no one else "
                           "may write to them",
                           at);
        }
        if (!S_ISDIR(st.st_mode)) return refused("'" + at + "' is not a directory");
        UniqueFd fd(::openat(chain.fd(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0) return refused("cannot open the directory '" + at + "': " + errno_text());
        if (std::string why = distrust(st, "directory", at, true); !why.empty()) return refused(why, last ? at : "");
        chain.push(std::move(fd), name);
    }

    const std::string at = chain.path();
    if (kind == PathKind::RegularFile) return refused("'" + at + "' is a directory, not a regular file", at);
    // Above the target a sticky directory may be shared; the target itself may not: anyone who may add
    // a file to it may add a plugin.
    struct stat st {};
    if (::fstat(chain.fd(), &st) != 0) return refused("cannot examine '" + at + "': " + errno_text(), at);
    if (std::string why = distrust(st, "directory", at, false); !why.empty()) return refused(why, at);
    return verdict(TrustedPath::State::Trusted,
                   "trusted: the directory and every directory above it belong to root or this user, and no one "
                   "else may write to them",
                   at);
}

}  // namespace grey
