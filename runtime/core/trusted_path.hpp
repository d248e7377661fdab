// Decides whether a path may be trusted with code: whether anyone but root and this process's user
// could have put the file there, or could replace it or a directory on the way to it.
#pragma once

#include <filesystem>
#include <string>

namespace grey {

enum class PathKind { Directory, RegularFile };

struct TrustedPath {
    enum class State { Trusted, Missing, Refused };
    State state = State::Refused;
    std::filesystem::path real_path;  // every symbolic link resolved; empty when resolution stopped early
    std::string reason;               // why it is trusted, missing or refused, naming the path at fault
};

// Resolves `path` (made absolute against the working directory) one component at a time from "/",
// following symbolic links, and trusts it only if every directory the resolution passes through, and
// the target itself, is owned by root or the effective user and writable by no one else. A directory
// above the target may be writable by others when it is sticky (as /tmp is): others can add entries
// there but can neither rename nor remove ours. The target itself may not be, sticky or not, and a
// RegularFile target must be a regular file. Nothing is opened but directories, with O_PATH.
//
// Once every directory up to the target is known to be writable only by root and this user, nobody else
// can swap a component between this check and a later open of real_path, so no descriptor needs to be
// carried from here to dlopen.
TrustedPath resolve_trusted(const std::filesystem::path& path, PathKind kind);

}  // namespace grey
