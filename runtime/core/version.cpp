// Version, status strings and log level names: static facts of the API.
#include "core/error.hpp"

#ifndef GREY_GIT_REVISION
#define GREY_GIT_REVISION "unknown"
#endif

#define GREY_STRINGIFY2(x) #x
#define GREY_STRINGIFY(x) GREY_STRINGIFY2(x)

extern "C" {

uint32_t grey_version(void) { return GREY_VERSION_NUMBER; }

const char* grey_version_string(void) {
    return GREY_STRINGIFY(GREY_VERSION_MAJOR) "." GREY_STRINGIFY(GREY_VERSION_MINOR) "." GREY_STRINGIFY(GREY_VERSION_PATCH);
}

const char* grey_build_revision(void) { return GREY_GIT_REVISION; }

const char* grey_status_string(grey_status status) {
    const int64_t raw = grey::raw_enum(status);
    if (raw < GREY_OK || raw > GREY_ERROR_CANCELLED) return "unknown status";
    switch (status) {
        case GREY_OK: return "ok";
        case GREY_ERROR_INVALID_ARGUMENT: return "invalid argument";
        case GREY_ERROR_OUT_OF_MEMORY: return "out of memory";
        case GREY_ERROR_UNSUPPORTED: return "unsupported";
        case GREY_ERROR_NOT_FOUND: return "not found";
        case GREY_ERROR_IO: return "i/o error";
        case GREY_ERROR_CORRUPT: return "corrupt data";
        case GREY_ERROR_CONFIG: return "invalid configuration";
        case GREY_ERROR_BACKEND: return "backend error";
        case GREY_ERROR_PERMISSION_DENIED: return "permission denied";
        case GREY_ERROR_BUFFER_TOO_SMALL: return "buffer too small";
        case GREY_ERROR_INTERNAL: return "internal error";
        case GREY_ERROR_TIMEOUT: return "timed out";
        case GREY_ERROR_STOPPED: return "stopped";
        case GREY_ERROR_CANCELLED: return "cancelled";
        case GREY_STATUS_FORCE32: break;
    }
    return "unknown status";
}

const char* grey_last_error(void) { return grey::detail::last_error(); }

const char* grey_log_level_name(grey_log_level level) {
    const int64_t raw = grey::raw_enum(level);
    if (raw < GREY_LOG_DEBUG || raw > GREY_LOG_OFF) return nullptr;
    switch (level) {
        case GREY_LOG_DEBUG: return "DEBUG";
        case GREY_LOG_INFO: return "INFO";
        case GREY_LOG_WARNING: return "WARNING";
        case GREY_LOG_ERROR: return "ERROR";
        case GREY_LOG_OFF: return "OFF";
        case GREY_LOG_LEVEL_FORCE32: break;
    }
    return nullptr;
}

}  // extern "C"
