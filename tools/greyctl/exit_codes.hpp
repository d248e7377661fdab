// greyctl's exit codes, defined once: every command exits with one of these classes, the manual page and
// `greyctl help` list them from this table, and errors printed as JSON (--json) carry the class's name.
#pragma once

#include "grey.h"

#include <array>
#include <stdexcept>
#include <string>

namespace greyctl {

enum class Exit : int {
    ok = 0,
    check_failed = 1,  // the command ran and what it checked does not hold (a tampered log, an invalid file)
    usage = 2,         // the command line is wrong: an unknown command or option, a missing or invalid value
    bad_input = 3,     // a file or value given cannot be used: missing, unreadable, not a regular file, malformed
    unavailable = 4,   // a backend, device or greyd the command needs is not there
    failed = 5,        // the work could not be done: out of memory, a timeout, an emergency stop, a cancelled run, a bug
};

struct ExitClass {
    Exit code;
    const char* name;     // in JSON errors: {"error": {"class": name, ...}}
    const char* meaning;  // for the manual page and docs/cli.md
};

inline constexpr std::array<ExitClass, 6> exit_classes{{
    {Exit::ok, "ok", "success"},
    {Exit::check_failed, "check_failed",
     "the command ran and what it checks does not hold: a tampered audit log, an invalid proof or configuration file, "
     "an artifact not recorded"},
    {Exit::usage, "usage", "usage error: an unknown command or option, a missing argument, a value out of range"},
    {Exit::bad_input, "bad_input",
     "a file or value the command was given cannot be used: missing, unreadable, not a regular file, malformed or corrupt, "
     "refused (an output that exists without --force, nothing to quantize)"},
    {Exit::unavailable, "unavailable", "a backend, device or greyd that the command needs is not available"},
    {Exit::failed, "failed",
     "the work could not be done: out of memory, a timeout, an emergency stop in force, a cancelled run, an internal error"},
}};

inline const ExitClass& exit_class(Exit code) {
    for (const ExitClass& c : exit_classes)
        if (c.code == code) return c;
    return exit_classes.back();
}

// The class of a libgrey status: what the library says went wrong decides the exit code.
inline Exit exit_for(grey_status status) {
    switch (status) {
        case GREY_OK: return Exit::ok;
        case GREY_ERROR_INVALID_ARGUMENT:
        case GREY_ERROR_NOT_FOUND:
        case GREY_ERROR_IO:
        case GREY_ERROR_CORRUPT:
        case GREY_ERROR_CONFIG:
        case GREY_ERROR_PERMISSION_DENIED: return Exit::bad_input;
        case GREY_ERROR_UNSUPPORTED:
        case GREY_ERROR_BACKEND: return Exit::unavailable;
        default: return Exit::failed;
    }
}

// An error greyctl finds itself, with the class it belongs to.
class CommandError : public std::runtime_error {
public:
    CommandError(Exit code, const std::string& message) : std::runtime_error(message), exit(code) {}
    Exit exit;
};

inline int code_of(Exit e) { return static_cast<int>(e); }

}  // namespace greyctl
