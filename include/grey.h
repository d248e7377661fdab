/*
 * grey.h — the stable C API of libgrey.
 *
 * This header is the contract. It is plain C11 (and valid C++), uses only fixed-width types, has no
 * variadic functions and names no vendor type. Rules that hold for every function below unless its
 * comment says otherwise:
 *
 *  - A fallible function returns grey_status. GREY_OK (0) means success; anything else is an error, and
 *    grey_last_error() then holds a message with detail for the calling thread.
 *  - Out-parameters come last and are left untouched when the call fails.
 *  - Input structs begin with `struct_size`; initialise them with their GREY_X_INIT macro so that a
 *    program built against an older header keeps working with a newer library. Output structs also
 *    begin with `struct_size`: set it to sizeof(the struct) and the library fills that many bytes
 *    (a newer library fills only what an older caller's struct has room for; bytes the library does
 *    not know of are zeroed). A struct_size smaller than the struct's first released size is refused.
 *  - Handles are opaque. X_destroy(NULL) is a no-op.
 *  - No exception, abort or exit crosses this boundary.
 *  - Strings are UTF-8 and NUL-terminated. A `const char*` returned by the library is owned by it; its
 *    lifetime is stated where it is returned.
 *
 * Thread safety: a grey_context may be used from several threads at once; each call is internally
 * synchronised. grey_last_error() is per thread.
 *
 * Version history: every declaration names the version it arrived in ("since 0.1").
 */
#ifndef GREY_H
#define GREY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------------
 * Export and attribute macros
 * ------------------------------------------------------------------------------------------------- */

#if defined(GREY_STATIC_DEFINE)
#define GREY_API
#elif defined(_WIN32)
#if defined(GREY_BUILDING_LIBRARY)
#define GREY_API __declspec(dllexport)
#else
#define GREY_API __declspec(dllimport)
#endif
#elif defined(__GNUC__) || defined(__clang__)
#define GREY_API __attribute__((visibility("default")))
#else
#define GREY_API
#endif

/* The caller must look at a returned grey_status. */
#if defined(__GNUC__) || defined(__clang__)
#define GREY_NODISCARD __attribute__((warn_unused_result))
#elif defined(_MSC_VER)
#define GREY_NODISCARD _Check_return_
#else
#define GREY_NODISCARD
#endif

/* ---------------------------------------------------------------------------------------------------
 * Version (since 0.1)
 * ------------------------------------------------------------------------------------------------- */

#define GREY_VERSION_MAJOR 0
#define GREY_VERSION_MINOR 1
#define GREY_VERSION_PATCH 0
/* One number, comparable: (major << 16) | (minor << 8) | patch. */
#define GREY_VERSION_NUMBER ((GREY_VERSION_MAJOR << 16) | (GREY_VERSION_MINOR << 8) | GREY_VERSION_PATCH)

/* The version of the library actually loaded, as GREY_VERSION_NUMBER encodes it. Since 0.1. */
GREY_API uint32_t grey_version(void);
/* "MAJOR.MINOR.PATCH", static storage. Since 0.1. */
GREY_API const char* grey_version_string(void);
/* The source revision the library was built from ("unknown" outside a git checkout). Since 0.1. */
GREY_API const char* grey_build_revision(void);

/* ---------------------------------------------------------------------------------------------------
 * Status and errors (since 0.1)
 * ------------------------------------------------------------------------------------------------- */

typedef enum grey_status {
    GREY_OK = 0,
    GREY_ERROR_INVALID_ARGUMENT = 1,   /* a parameter is NULL, out of range, or malformed */
    GREY_ERROR_OUT_OF_MEMORY = 2,      /* host or device memory is exhausted */
    GREY_ERROR_UNSUPPORTED = 3,        /* the backend or device cannot do this */
    GREY_ERROR_NOT_FOUND = 4,          /* a named file, backend, device or key does not exist */
    GREY_ERROR_IO = 5,                 /* reading or writing a file failed */
    GREY_ERROR_CORRUPT = 6,            /* a file or record is malformed or fails its integrity check */
    GREY_ERROR_CONFIG = 7,             /* configuration is invalid (the message names key and line) */
    GREY_ERROR_BACKEND = 8,            /* a backend or vendor driver reported a failure */
    GREY_ERROR_PERMISSION_DENIED = 9,  /* the OS or driver refused access */
    GREY_ERROR_BUFFER_TOO_SMALL = 10,  /* an output buffer is too small; the needed size is reported */
    GREY_ERROR_INTERNAL = 11,          /* a bug in libgrey: please report it with grey_last_error() */
    GREY_ERROR_TIMEOUT = 12,           /* the call's time limit passed first (since 0.2) */
    GREY_ERROR_STOPPED = 13,           /* an emergency stop is in force: no work is admitted (since 0.2) */
    GREY_ERROR_CANCELLED = 14,         /* the caller's progress callback asked to stop (since 0.2) */
    GREY_STATUS_FORCE32 = 0x7FFFFFFF
} grey_status;

/* A short, static description of a status ("invalid argument"). Never NULL. Since 0.1. */
GREY_API const char* grey_status_string(grey_status status);

/* The detailed message of the last failed call on this thread, or "" if none. Valid until the next
 * libgrey call on this thread. Since 0.1. */
GREY_API const char* grey_last_error(void);

/* ---------------------------------------------------------------------------------------------------
 * Logging (since 0.1)
 * ------------------------------------------------------------------------------------------------- */

typedef enum grey_log_level {
    GREY_LOG_DEBUG = 0,
    GREY_LOG_INFO = 1,
    GREY_LOG_WARNING = 2,
    GREY_LOG_ERROR = 3,
    GREY_LOG_OFF = 4,
    GREY_LOG_LEVEL_FORCE32 = 0x7FFFFFFF
} grey_log_level;

/* Receives each log message at or above the context's level. `message` is valid only during the call.
 * May be called from any thread that uses the context; it must not call back into the context. */
typedef void (*grey_log_fn)(grey_log_level level, const char* message, void* user);

/* "DEBUG", "INFO", "WARNING", "ERROR", "OFF"; NULL for an unknown value. Since 0.1. */
GREY_API const char* grey_log_level_name(grey_log_level level);

/* ---------------------------------------------------------------------------------------------------
 * Configuration (since 0.1)
 *
 * A grey_config holds every key of the configuration schema (docs/config.md), addressed by its dotted
 * path such as "memory.compression.algorithm". Values are layered: a profile's defaults, then a YAML
 * file, then (only when asked) GREY_* environment variables, then explicit grey_config_set calls.
 * A grey_config is not synchronised: use one from one thread at a time.
 * ------------------------------------------------------------------------------------------------- */

typedef struct grey_config grey_config;

/* A config holding the defaults of `profile` ("conservative", "balanced" or "aggressive"; NULL means
 * "balanced"). Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_config_create(const char* profile, grey_config** out_config);

/* The largest configuration file read, in bytes (since 0.2). */
#define GREY_CONFIG_FILE_MAX 1048576u

/* Overlays the YAML file at `path`. Unknown keys, wrong types, out-of-range values and keys or values
 * holding a NUL byte (YAML's "\0") fail with GREY_ERROR_CONFIG and a message naming the file, line and
 * key; the config is then unchanged. `path` must name a regular file: a directory, FIFO or device fails
 * with GREY_ERROR_INVALID_ARGUMENT (without blocking), a file over GREY_CONFIG_FILE_MAX bytes with
 * GREY_ERROR_CONFIG, a missing one with GREY_ERROR_NOT_FOUND; each message names the path. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_config_load_file(grey_config* config, const char* path);

/* Same as grey_config_load_file, from YAML text in memory. `origin` names it in messages (may be NULL).
 * Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_config_load_string(grey_config* config, const char* yaml,
                                                            const char* origin);

/* Applies GREY_CONFIG_PATH (a file to overlay), GREY_LOG_LEVEL, GREY_DRY_RUN, GREY_GPU_INDEX and
 * GREY_DAEMON_PORT from the process environment. Never called implicitly. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_config_apply_env(grey_config* config);

/* Sets one key from its textual form ("true", "75", "zstd"), validated as in a file. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_config_set(grey_config* config, const char* key,
                                                    const char* value);

/* Copies the textual value of `key` into `buffer` (NUL-terminated). `*out_length` receives the length
 * without the NUL; if `buffer_size` is too small the call fails with GREY_ERROR_BUFFER_TOO_SMALL and
 * still sets `*out_length` so the caller can retry. `buffer` may be NULL when `buffer_size` is 0.
 * Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_config_get(const grey_config* config, const char* key,
                                                    char* buffer, size_t buffer_size,
                                                    size_t* out_length);

/* The whole configuration as YAML, with the same buffer protocol as grey_config_get. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_config_to_yaml(const grey_config* config, char* buffer,
                                                        size_t buffer_size, size_t* out_length);

/* The number of schema keys, and the dotted path of the i-th one (static storage). Since 0.1. */
GREY_API uint32_t grey_config_key_count(void);
GREY_API const char* grey_config_key_name(uint32_t index);
/* What reads the i-th key and acts on it ("the governor (grey_governor_configure)"; static storage), or
 * NULL while libgrey accepts the key but nothing acts on it yet (and for an index past the last key).
 * grey_config_to_yaml marks such keys with the comment "accepted, not yet acted on". Since 0.2. */
GREY_API const char* grey_config_key_acted_on_by(uint32_t index);

GREY_API void grey_config_destroy(grey_config* config);

/* ---------------------------------------------------------------------------------------------------
 * Context (since 0.1)
 * ------------------------------------------------------------------------------------------------- */

typedef struct grey_context grey_context;

typedef struct grey_context_options {
    uint32_t struct_size;
    grey_log_level log_level;    /* messages below this level are dropped; default WARNING */
    grey_log_fn log_callback;    /* NULL: log to stderr */
    void* log_user;              /* passed to log_callback */
    /* Comma-separated backend names to load ("cuda,hip"); NULL or "" loads every plugin found. The host
     * backend is always present. A named backend that is not found is logged and reported by
     * grey_backend_info; it fails creation only when require_backends is set. */
    const char* backends;
    /* A directory searched for plugins before every other place; NULL for none. Like every directory
     * on the search path it is searched only if it can be trusted (see grey_plugin_dir_info). */
    const char* backend_dir;
    /* A YAML config file overlaid on the profile; NULL for none. */
    const char* config_path;
    /* "conservative", "balanced" or "aggressive"; NULL for "balanced". */
    const char* profile;
    /* Non-zero: apply GREY_* environment variables (GREY_CONFIG_PATH, GREY_LOG_LEVEL, GREY_DRY_RUN,
     * GREY_GPU_INDEX, GREY_DAEMON_PORT, GREY_BACKEND_DIR). Zero (the default): the environment is
     * never read. */
    uint32_t apply_env_overrides;
    /* Since 0.2 (the field was reserved, always 0, before). Non-zero: creation fails with
     * GREY_ERROR_UNSUPPORTED, "backend 'NAME' is not available: REASON", unless every backend named in
     * `backends` loaded; for a program that needs that backend rather than whatever is there. */
    uint32_t require_backends;
} grey_context_options;

#define GREY_CONTEXT_OPTIONS_INIT \
    { (uint32_t)sizeof(grey_context_options), GREY_LOG_WARNING, NULL, NULL, NULL, NULL, NULL, NULL, 0u, 0u }

/* Creates a context: loads the configuration, then the backends, then enumerates devices. `options`
 * may be NULL for the defaults. Fails only on invalid options or configuration; a plugin that cannot
 * be loaded is skipped and reported. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_context_create(const grey_context_options* options,
                                                        grey_context** out_context);

/* Destroys the context and everything it owns (devices, buffers not yet destroyed, backends). */
GREY_API void grey_context_destroy(grey_context* context);

/* The context's effective configuration, owned by the context and valid until it is destroyed. Read it
 * with grey_config_get; do not destroy it. Since 0.1. */
GREY_API const grey_config* grey_context_config(const grey_context* context);

/* ---------------------------------------------------------------------------------------------------
 * Backends (since 0.1)
 * ------------------------------------------------------------------------------------------------- */

typedef enum grey_backend_outcome {
    GREY_BACKEND_LOADED = 0,          /* in use */
    GREY_BACKEND_SKIPPED = 1,         /* found but not requested, or shadowed by an earlier copy */
    GREY_BACKEND_FAILED = 2,          /* could not be loaded; `reason` says why */
    GREY_BACKEND_NOT_FOUND = 3,       /* requested by name but found in no search directory */
    GREY_BACKEND_OUTCOME_FORCE32 = 0x7FFFFFFF
} grey_backend_outcome;

/* The value's lower-case name ("loaded", "skipped", "failed", "not_found"), a static string; NULL for a value this version does not know.
 * Since 0.2. */
GREY_API const char* grey_backend_outcome_name(grey_backend_outcome value);

#define GREY_NAME_MAX 64
#define GREY_PATH_MAX 512
#define GREY_REASON_MAX 256

/* One backend candidate the loader considered, in the order it considered them. */
typedef struct grey_backend_info {
    uint32_t struct_size;
    grey_backend_outcome outcome;
    uint32_t device_count;            /* devices it offered (0 unless loaded) */
    uint32_t reserved0;
    char name[GREY_NAME_MAX];         /* "host", "cuda", ... */
    char path[GREY_PATH_MAX];         /* the shared object, or "(built in)" */
    char reason[GREY_REASON_MAX];     /* why it was loaded, skipped or failed */
} grey_backend_info;

/* Number of entries in the loader's report (every backend candidate it considered, loaded or not; not
 * the number of backends in use), and one entry. Since 0.1; named grey_backend_count before 0.2. */
GREY_API GREY_NODISCARD grey_status grey_backend_candidate_count(const grey_context* context, uint32_t* out_count);
GREY_API GREY_NODISCARD grey_status grey_backend_info_get(const grey_context* context, uint32_t index,
                                                          grey_backend_info* out_info);

/* The directories on the plugin search path, in order, joined by '\n' (buffer protocol as
 * grey_config_get): the `path` of every entry grey_plugin_dir_info_get lists, searched or not.
 * Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_backend_search_path(const grey_context* context, char* buffer,
                                                             size_t buffer_size, size_t* out_length);

/* Plugin directories (since 0.2).
 *
 * A context looks for backend plugins, in this order, in: the directory the host names
 * (grey_context_options.backend_dir); GREY_BACKEND_DIR, only when the host asked for environment
 * overrides; and `grey/` beside the file that holds libgrey's code at run time: <libdir>/grey beside
 * libgrey.so, or, where libgrey is linked statically, beside the program or module it is linked into
 * (for the Python package, grey/grey/ inside the installed package). No path chosen when libgrey was
 * built is ever searched.
 *
 * A directory is searched only if it can be trusted: after resolving every symbolic link, it and every
 * directory above it up to / belong to root or to the process's effective user, and no one else may
 * write to them (a directory above it may be shared if it is sticky, as /tmp is; the plugin directory
 * itself may not). A plugin file must itself be a regular file owned by root or that user and writable
 * by no one else, or it is reported GREY_BACKEND_FAILED with the reason. */

/* How a directory came to be on the search path. */
typedef enum grey_plugin_origin {
    GREY_PLUGIN_ORIGIN_HOST = 0,            /* grey_context_options.backend_dir */
    GREY_PLUGIN_ORIGIN_ENVIRONMENT = 1,     /* GREY_BACKEND_DIR, with apply_env_overrides */
    GREY_PLUGIN_ORIGIN_BESIDE_LIBRARY = 2,  /* grey/ beside the file holding libgrey */
    GREY_PLUGIN_ORIGIN_FORCE32 = 0x7FFFFFFF
} grey_plugin_origin;

/* The value's lower-case name ("host", "environment", "beside_library"), a static string; NULL for a value this version does not know.
 * Since 0.2. */
GREY_API const char* grey_plugin_origin_name(grey_plugin_origin value);

/* What the loader made of a directory. */
typedef enum grey_plugin_dir_state {
    GREY_PLUGIN_DIR_SEARCHED = 0,   /* trusted, and searched */
    GREY_PLUGIN_DIR_MISSING = 1,    /* it does not exist: nothing to search */
    GREY_PLUGIN_DIR_REFUSED = 2,    /* not searched: not trusted, or not readable; `reason` says why */
    GREY_PLUGIN_DIR_DUPLICATE = 3,  /* the same directory as an earlier entry, searched (or not) there */
    GREY_PLUGIN_DIR_STATE_FORCE32 = 0x7FFFFFFF
} grey_plugin_dir_state;

/* The value's lower-case name ("searched", "missing", "refused", "duplicate"), a static string; NULL for a value this version does not know.
 * Since 0.2. */
GREY_API const char* grey_plugin_dir_state_name(grey_plugin_dir_state value);

/* One directory of the search path and the loader's verdict on it. */
typedef struct grey_plugin_dir_info {
    uint32_t struct_size;
    grey_plugin_origin origin;
    grey_plugin_dir_state state;
    uint32_t reserved0;
    char path[GREY_PATH_MAX];       /* as named, made absolute */
    char real_path[GREY_PATH_MAX];  /* with every symbolic link resolved; "" if resolution stopped early */
    char reason[GREY_REASON_MAX];   /* why it was trusted, missing or refused, naming the path at fault */
} grey_plugin_dir_info;

/* The number of directories on the search path, and the `index`-th of them in search order, copied
 * into `*out_info` (set its struct_size first; an index past the end is GREY_ERROR_INVALID_ARGUMENT).
 * The report is made once, when the context is created; these calls only read it, and may be made
 * from any thread. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_plugin_dir_count(const grey_context* context, uint32_t* out_count);
GREY_API GREY_NODISCARD grey_status grey_plugin_dir_info_get(const grey_context* context, uint32_t index,
                                                             grey_plugin_dir_info* out_info);

/* ---------------------------------------------------------------------------------------------------
 * Devices: specifications and telemetry (since 0.1)
 *
 * Every field carries its value, its state and its source. A value is meaningful only when its state
 * is GREY_FIELD_OK; otherwise it is 0 (or "") and grey_device_field_reason says why. Units are part of
 * each field's name: _bytes, _mhz, _mw (milliwatts), _mj (millijoules), _c (degrees Celsius), _gbps
 * (10^9 bytes per second), _percent, _ns.
 * ------------------------------------------------------------------------------------------------- */

typedef enum grey_field_state {
    GREY_FIELD_OK = 0,
    GREY_FIELD_UNSUPPORTED = 1,        /* the device, driver or OS does not report it */
    GREY_FIELD_PERMISSION_DENIED = 2,  /* it exists but this process may not read it */
    GREY_FIELD_NOT_APPLICABLE = 3,     /* it has no meaning for this device (a CPU's PCIe width) */
    GREY_FIELD_STATE_FORCE32 = 0x7FFFFFFF
} grey_field_state;

/* The value's lower-case name ("ok", "unsupported", "permission_denied", "not_applicable"), a static string; NULL for a value this version does not know.
 * Since 0.2. */
GREY_API const char* grey_field_state_name(grey_field_state value);

/* Where a value came from. */
typedef enum grey_source {
    GREY_SOURCE_NONE = 0,
    GREY_SOURCE_OS = 1,               /* /proc, /sys, sysconf */
    GREY_SOURCE_CUDA_DRIVER = 2,
    GREY_SOURCE_NVML = 3,
    GREY_SOURCE_HIP = 4,
    GREY_SOURCE_AMD_SMI = 5,
    GREY_SOURCE_LEVEL_ZERO = 6,
    GREY_SOURCE_DERIVED = 7,          /* computed from other fields (peak bandwidth) */
    GREY_SOURCE_TABLE = 8,            /* from libgrey's table of known parts */
    GREY_SOURCE_FORCE32 = 0x7FFFFFFF
} grey_source;

/* The value's lower-case name ("none", "os", "cuda_driver", "nvml", "hip", "amd_smi", "level_zero", "derived", "table"), a static string; NULL for a value this version does not know.
 * Since 0.2. */
GREY_API const char* grey_source_name(grey_source value);

typedef struct grey_field_u64 {
    uint64_t value;
    grey_field_state state;
    grey_source source;
} grey_field_u64;

typedef struct grey_field_f64 {
    double value;
    grey_field_state state;
    grey_source source;
} grey_field_f64;

#define GREY_TEXT_MAX 128
typedef struct grey_field_text {
    char value[GREY_TEXT_MAX];
    grey_field_state state;
    grey_source source;
} grey_field_text;

typedef enum grey_vendor {
    GREY_VENDOR_UNKNOWN = 0,
    GREY_VENDOR_NVIDIA = 1,
    GREY_VENDOR_AMD = 2,
    GREY_VENDOR_INTEL = 3,
    GREY_VENDOR_CPU = 4,              /* the host processor, whatever its maker (see `name`) */
    GREY_VENDOR_FORCE32 = 0x7FFFFFFF
} grey_vendor;

/* The value's lower-case name ("unknown", "nvidia", "amd", "intel", "cpu"), a static string; NULL for a value this version does not know.
 * Since 0.2. */
GREY_API const char* grey_vendor_name(grey_vendor value);

typedef enum grey_device_type {
    GREY_DEVICE_CPU = 0,
    GREY_DEVICE_GPU = 1,
    GREY_DEVICE_TYPE_FORCE32 = 0x7FFFFFFF
} grey_device_type;

/* The value's lower-case name ("cpu", "gpu"), a static string; NULL for a value this version does not know.
 * Since 0.2. */
GREY_API const char* grey_device_type_name(grey_device_type value);

/* Static facts about a device. Since 0.1. */
typedef struct grey_device_spec {
    uint32_t struct_size;
    grey_vendor vendor;
    grey_device_type type;
    uint32_t backend_device_index;   /* the device's index within its backend */
    char backend[GREY_NAME_MAX];     /* the backend that owns it: "host", "cuda", ... */

    grey_field_text name;
    grey_field_text uuid;
    grey_field_text pci_bus_id;
    grey_field_text architecture;    /* "Hopper", "x86_64", ... */
    grey_field_text compute_capability; /* "9.0" on NVIDIA; gfx target on AMD */
    grey_field_text driver_version;
    grey_field_text runtime_version; /* CUDA / HIP / Level Zero API version the driver supports */

    grey_field_u64 memory_total_bytes;
    grey_field_u64 memory_free_bytes; /* at the time of the query */
    grey_field_u64 memory_bus_width_bits;
    grey_field_u64 memory_clock_max_mhz;
    grey_field_f64 peak_memory_bandwidth_gbps;
    grey_field_u64 l2_cache_bytes;
    grey_field_u64 compute_units;    /* SMs, CUs, Xe cores, or CPU logical cores */
    grey_field_u64 graphics_clock_max_mhz;

    grey_field_u64 power_limit_mw;   /* currently enforced */
    grey_field_u64 power_limit_default_mw;
    grey_field_u64 power_limit_min_mw;
    grey_field_u64 power_limit_max_mw;

    grey_field_f64 temperature_slowdown_c;
    grey_field_f64 temperature_shutdown_c;
    grey_field_f64 temperature_gpu_max_c;
    grey_field_f64 temperature_memory_max_c;

    grey_field_u64 pcie_generation_current;
    grey_field_u64 pcie_generation_max;
    grey_field_u64 pcie_width_current;
    grey_field_u64 pcie_width_max;
} grey_device_spec;

/* Reasons a device is slowing its clocks, as a bit set (grey_device_telemetry.throttle_reasons). */
typedef enum grey_throttle_reason {
    GREY_THROTTLE_NONE = 0,
    GREY_THROTTLE_IDLE = 1u << 0,
    GREY_THROTTLE_APPLICATION_CLOCKS = 1u << 1,
    GREY_THROTTLE_SW_POWER_CAP = 1u << 2,
    GREY_THROTTLE_HW_SLOWDOWN = 1u << 3,
    GREY_THROTTLE_SYNC_BOOST = 1u << 4,
    GREY_THROTTLE_SW_THERMAL = 1u << 5,
    GREY_THROTTLE_HW_THERMAL = 1u << 6,
    GREY_THROTTLE_HW_POWER_BRAKE = 1u << 7,
    GREY_THROTTLE_DISPLAY_CLOCKS = 1u << 8,
    GREY_THROTTLE_OTHER = 1u << 30,
    GREY_THROTTLE_FORCE32 = 0x7FFFFFFF
} grey_throttle_reason;

/* The name of one throttle reason bit ("sw_power_cap"), or NULL if `bit` is not exactly one known bit.
 * Since 0.1. */
GREY_API const char* grey_throttle_reason_name(uint32_t bit);

/* Live readings. Since 0.1. */
typedef struct grey_device_telemetry {
    uint32_t struct_size;
    uint32_t reserved0;
    uint64_t timestamp_ns;           /* CLOCK_MONOTONIC when the sample was taken */

    grey_field_f64 temperature_c;
    grey_field_f64 memory_temperature_c;
    grey_field_u64 power_draw_mw;
    grey_field_u64 energy_total_mj;  /* monotonically increasing since an unspecified start */
    grey_field_u64 graphics_clock_mhz;
    grey_field_u64 sm_clock_mhz;
    grey_field_u64 memory_clock_mhz;
    grey_field_u64 utilization_percent;        /* compute busy, since the previous sample */
    grey_field_u64 memory_utilization_percent; /* memory controller busy */
    grey_field_u64 memory_used_bytes;
    grey_field_u64 throttle_reasons;           /* grey_throttle_reason bits */
    grey_field_u64 throttle_time_power_ns;     /* cumulative time held back by the power cap */
    grey_field_u64 throttle_time_thermal_ns;   /* cumulative time held back by temperature */
    grey_field_u64 throttle_time_sync_boost_ns;
} grey_device_telemetry;

/* Number of devices across all loaded backends. Device indices are 0..count-1 and stable for the
 * context's lifetime; the host CPU is always present. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_device_count(const grey_context* context, uint32_t* out_count);

/* Fills `out_spec`; set out_spec->struct_size = sizeof(grey_device_spec) first. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_device_spec_get(grey_context* context, uint32_t device,
                                                         grey_device_spec* out_spec);

/* Samples the device now; set out_telemetry->struct_size first. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_device_telemetry_get(grey_context* context, uint32_t device,
                                                              grey_device_telemetry* out_telemetry);

/* Every spec and telemetry field, named, so that tools and bindings can walk them generically. */
typedef enum grey_field {
    GREY_FIELD_NAME = 0,
    GREY_FIELD_UUID,
    GREY_FIELD_PCI_BUS_ID,
    GREY_FIELD_ARCHITECTURE,
    GREY_FIELD_COMPUTE_CAPABILITY,
    GREY_FIELD_DRIVER_VERSION,
    GREY_FIELD_RUNTIME_VERSION,
    GREY_FIELD_MEMORY_TOTAL_BYTES,
    GREY_FIELD_MEMORY_FREE_BYTES,
    GREY_FIELD_MEMORY_BUS_WIDTH_BITS,
    GREY_FIELD_MEMORY_CLOCK_MAX_MHZ,
    GREY_FIELD_PEAK_MEMORY_BANDWIDTH_GBPS,
    GREY_FIELD_L2_CACHE_BYTES,
    GREY_FIELD_COMPUTE_UNITS,
    GREY_FIELD_GRAPHICS_CLOCK_MAX_MHZ,
    GREY_FIELD_POWER_LIMIT_MW,
    GREY_FIELD_POWER_LIMIT_DEFAULT_MW,
    GREY_FIELD_POWER_LIMIT_MIN_MW,
    GREY_FIELD_POWER_LIMIT_MAX_MW,
    GREY_FIELD_TEMPERATURE_SLOWDOWN_C,
    GREY_FIELD_TEMPERATURE_SHUTDOWN_C,
    GREY_FIELD_TEMPERATURE_GPU_MAX_C,
    GREY_FIELD_TEMPERATURE_MEMORY_MAX_C,
    GREY_FIELD_PCIE_GENERATION_CURRENT,
    GREY_FIELD_PCIE_GENERATION_MAX,
    GREY_FIELD_PCIE_WIDTH_CURRENT,
    GREY_FIELD_PCIE_WIDTH_MAX,
    /* telemetry */
    GREY_FIELD_TEMPERATURE_C,
    GREY_FIELD_MEMORY_TEMPERATURE_C,
    GREY_FIELD_POWER_DRAW_MW,
    GREY_FIELD_ENERGY_TOTAL_MJ,
    GREY_FIELD_GRAPHICS_CLOCK_MHZ,
    GREY_FIELD_SM_CLOCK_MHZ,
    GREY_FIELD_MEMORY_CLOCK_MHZ,
    GREY_FIELD_UTILIZATION_PERCENT,
    GREY_FIELD_MEMORY_UTILIZATION_PERCENT,
    GREY_FIELD_MEMORY_USED_BYTES,
    GREY_FIELD_THROTTLE_REASONS,
    GREY_FIELD_THROTTLE_TIME_POWER_NS,
    GREY_FIELD_THROTTLE_TIME_THERMAL_NS,
    GREY_FIELD_THROTTLE_TIME_SYNC_BOOST_NS,
    GREY_FIELD_COUNT, /* the number of fields in this header version; grows with minor versions */
    GREY_FIELD_FORCE32 = 0x7FFFFFFF
} grey_field;

typedef enum grey_field_kind {
    GREY_FIELD_KIND_U64 = 0,  /* the field is a grey_field_u64 */
    GREY_FIELD_KIND_F64 = 1,  /* a grey_field_f64 */
    GREY_FIELD_KIND_TEXT = 2, /* a grey_field_text */
    GREY_FIELD_KIND_FORCE32 = 0x7FFFFFFF
} grey_field_kind;

/* The value's lower-case name ("u64", "f64", "text"), a static string; NULL for a value this version does not know.
 * Since 0.2. */
GREY_API const char* grey_field_kind_name(grey_field_kind value);

typedef enum grey_field_group {
    GREY_FIELD_GROUP_SPEC = 0,      /* lives in grey_device_spec */
    GREY_FIELD_GROUP_TELEMETRY = 1, /* lives in grey_device_telemetry */
    GREY_FIELD_GROUP_FORCE32 = 0x7FFFFFFF
} grey_field_group;

/* The value's lower-case name ("spec", "telemetry"), a static string; NULL for a value this version does not know.
 * Since 0.2. */
GREY_API const char* grey_field_group_name(grey_field_group value);

/* Static description of a field. */
typedef struct grey_field_desc {
    uint32_t struct_size;
    grey_field field;
    grey_field_kind kind;
    grey_field_group group;
    uint64_t offset;        /* byte offset of the field inside its group's struct */
    const char* key;        /* "memory_total_bytes": the JSON key greyctl prints; static storage */
    const char* unit;       /* "bytes", "MHz", "mW", ...; "" for text; static storage */
} grey_field_desc;

/* Describes `field`; GREY_ERROR_INVALID_ARGUMENT for a value outside 0..GREY_FIELD_COUNT-1. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_field_describe(grey_field field, grey_field_desc* out_desc);

/* Why `field` of `device` is not GREY_FIELD_OK ("NVML: nvmlDeviceGetPowerUsage not found in
 * libnvidia-ml.so.1"), from the most recent spec or telemetry query of that device; "" when the field
 * is OK or has not been queried. Buffer protocol as grey_config_get. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_device_field_reason(grey_context* context, uint32_t device,
                                                             grey_field field, char* buffer,
                                                             size_t buffer_size, size_t* out_length);

/* ---------------------------------------------------------------------------------------------------
 * Buffers (since 0.1)
 *
 * A grey_buffer is memory on one device, owned by the context: allocation and copies here; sealing,
 * deduplication and compression (since 0.2) in "Sealed buffers and memory tiers".
 * A buffer may be used from several threads only for reads; writes need external ordering.
 * ------------------------------------------------------------------------------------------------- */

typedef struct grey_buffer grey_buffer;

/* Allocates `size_bytes` (> 0) on `device`. Out of memory gives GREY_ERROR_OUT_OF_MEMORY with the
 * sizes in the message. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_buffer_create(grey_context* context, uint32_t device,
                                                       uint64_t size_bytes, grey_buffer** out_buffer);

/* Frees the buffer. NULL-safe. Must not race with other calls on the same buffer. */
GREY_API void grey_buffer_destroy(grey_buffer* buffer);

/* The buffer's size in bytes, and the device it lives on. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_buffer_size(const grey_buffer* buffer, uint64_t* out_size);
GREY_API GREY_NODISCARD grey_status grey_buffer_device(const grey_buffer* buffer, uint32_t* out_device);

/* Copies host memory into the buffer at `offset`, and back. The range must lie inside the buffer.
 * Synchronous: the copy has completed when the call returns. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_buffer_write(grey_buffer* buffer, uint64_t offset,
                                                      const void* source, uint64_t size_bytes);
GREY_API GREY_NODISCARD grey_status grey_buffer_read(const grey_buffer* buffer, uint64_t offset,
                                                     void* destination, uint64_t size_bytes);

/* Copies between two buffers of the same context (same or different devices; across devices the copy
 * goes through host memory). Overlapping ranges of one buffer are refused. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_buffer_copy(grey_buffer* destination, uint64_t destination_offset,
                                                     const grey_buffer* source, uint64_t source_offset,
                                                     uint64_t size_bytes);

/* Fills a range with a repeated byte. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_buffer_fill(grey_buffer* buffer, uint64_t offset, uint8_t value,
                                                     uint64_t size_bytes);

/* ---------------------------------------------------------------------------------------------------
 * Device memory statistics and buffer checksums (since 0.1)
 *
 * GPU backends serve buffers from a pool: a large range of device address space is reserved once,
 * physical memory is mapped into it in chunks as buffers need it, and buffers are carved out of the
 * mapped part (best fit, free neighbours merged). These statistics say what that pool holds, counted
 * from what is actually allocated. The host backend has no pool (each buffer is its own host
 * allocation): it reports reserved = committed = allocated and no free space.
 * ------------------------------------------------------------------------------------------------- */

typedef struct grey_memory_stats {
    uint32_t struct_size;           /* set to sizeof(grey_memory_stats) before the call */
    uint32_t reserved0;
    uint64_t reserved_bytes;        /* address space set aside for the pool (not memory) */
    uint64_t committed_bytes;       /* physical device memory the pool holds */
    uint64_t allocated_bytes;       /* in live buffers, after rounding to the pool's alignment */
    uint64_t free_bytes;            /* committed but not allocated */
    uint64_t largest_free_bytes;    /* the largest single free block: the biggest buffer that fits
                                       without growing the pool */
    uint64_t allocation_count;      /* live buffers */
    uint64_t growth_count;          /* times the pool mapped more physical memory */
    uint64_t granularity_bytes;     /* the physical chunk size the pool grows by */
    double fragmentation;           /* 1 - largest_free_bytes / free_bytes; 0 when nothing is free */
    /* Since 0.2: the memory tiers (sealed buffers, deduplication, compression; see "Sealed buffers and
     * memory tiers"), counted from what libgrey holds for the buffers. A caller compiled against 0.1
     * sets the old struct_size and gets the members above only. In a tenant's statistics
     * (grey_device_memory_stats_tenant_get) the pool members above are 0 and these count that tenant's
     * buffers; a block shared by k buffers counts 1/k of its bytes to each. */
    uint64_t logical_bytes;            /* what the buffers hold to their users: sum of their sizes, or of
                                          grey_buffer_options.source_bytes for a quantized buffer */
    uint64_t physical_bytes;           /* device and host memory held for the buffers' contents, plus the
                                          working-set cache: physical_device_bytes + physical_host_bytes */
    uint64_t physical_device_bytes;    /* raw buffers, stored blocks held raw or compressed on the device,
                                          device containers, the cache */
    uint64_t physical_host_bytes;      /* containers of GREY_RESIDENCY_COMPRESSED_HOST buffers, and stored
                                          blocks held compressed in host memory */
    uint64_t saved_dedup_bytes;        /* sizes of deduplicated buffers minus the sizes of the stored blocks
                                          they hold */
    uint64_t saved_compression_bytes;  /* sizes of compressed buffers minus their containers, plus sizes of
                                          stored blocks held compressed minus their containers (once per
                                          block, however many buffers hold it) */
    uint64_t saved_quantization_bytes; /* source_bytes minus size, over quantized buffers */
    uint64_t cache_bytes;              /* dense copies held in the working-set cache now */
    uint64_t cache_capacity_bytes;     /* memory.cache.working_set_mb (per device; the same for a tenant) */
    uint64_t cache_hits;               /* maps served by a copy already in the cache */
    uint64_t cache_misses;             /* maps that decoded into the cache */
    double cache_hit_rate;             /* hits / (hits + misses); 0 before any map through the cache */
    double effective_multiplier;       /* logical_bytes / physical_bytes; 0 when physical_bytes is 0 */
    uint64_t buffer_count;             /* live buffers (of the tenant) */
    uint64_t buffers_by_residency[4];  /* live buffers per grey_residency value */
    uint64_t shared_blocks;            /* distinct stored blocks of deduplicated buffers */
    uint64_t constant_blocks;          /* blocks of deduplicated buffers held as zero or one value (no storage) */
    uint64_t pinned_host_bytes;        /* page-locked host memory held for the tiers: the containers of
                                          GREY_RESIDENCY_COMPRESSED_HOST buffers held so (counted in
                                          physical_host_bytes too) and, in a device's statistics, the
                                          staging of async maps (in no other member); together at most the
                                          configuration's memory.compression.pinned_host_mb (since 0.2) */
} grey_memory_stats;

/* Fills `out_stats` with the memory statistics of `device`; set out_stats->struct_size first.
 * GREY_ERROR_UNSUPPORTED when the device's backend keeps no statistics. Thread-safe. Since 0.1; named
 * grey_device_memory_stats before 0.2, like the other getters that fill a struct it now ends in _get. */
GREY_API GREY_NODISCARD grey_status grey_device_memory_stats_get(grey_context* context, uint32_t device,
                                                                 grey_memory_stats* out_stats);

/* Asks the driver to hold `device`'s power limit at `limit_mw` milliwatts and gives the limit it replaced
 * in *out_previous_mw (may be NULL), so that the caller can put it back with a second call. libgrey never
 * calls this on its own: only a host program that calls it, or a governor created with
 * grey_governor_options.power_limit_mw (an explicit opt-in, 0 by default), changes a power limit.
 * GREY_ERROR_UNSUPPORTED when the device's backend cannot set one (the host backend; NVML without
 * nvmlDeviceSetPowerManagementLimit), GREY_ERROR_PERMISSION_DENIED when the driver refuses (setting a
 * limit normally needs root), GREY_ERROR_INVALID_ARGUMENT when limit_mw lies outside the device's
 * [power_limit_min_mw, power_limit_max_mw] (grey_device_spec) or is 0. The limit outlives the process:
 * whoever sets one must restore it. Thread-safe. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_device_power_limit_set(grey_context* context, uint32_t device, uint64_t limit_mw,
                                                                uint64_t* out_previous_mw);

/* A 64-bit checksum of `size_bytes` bytes of the buffer starting at `offset`, computed where the buffer
 * lives (on a GPU, by a kernel; nothing is copied to the host). The value depends only on the bytes and
 * their order, not on the device or the offset, so checksums of equal ranges on different devices are
 * equal: sum over i of (byte[i] + 1) * (i * 0x9E3779B97F4A7C15 + 0xD6E8FEB86659FD93), modulo 2^64.
 * It detects changed, swapped and zeroed bytes; it is not a cryptographic hash. The checksum of an empty
 * range is 0. The range must lie inside the buffer. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_buffer_checksum(const grey_buffer* buffer, uint64_t offset,
                                                         uint64_t size_bytes, uint64_t* out_checksum);

/* ---------------------------------------------------------------------------------------------------
 * Mapping buffers (since 0.1)
 *
 * Mapping hands out the address of a buffer's bytes, for handing them to other libraries (DLPack,
 * a CUDA kernel of the caller's own). Buffers are plain device memory in this version, so the address is
 * the buffer's own memory: writes through it are what grey_buffer_read sees and the other way round.
 * A sealed buffer that is not raw gives a dense copy in the working-set cache instead (since 0.2,
 * grey_buffer_map_access). Every grey_buffer_map is paired with one grey_buffer_unmap.
 * ------------------------------------------------------------------------------------------------- */

/* What kind of memory a mapping's address points into. */
typedef enum grey_memory_kind {
    GREY_MEMORY_HOST = 0,         /* host memory: a pointer the CPU dereferences */
    GREY_MEMORY_CUDA_DEVICE = 1,  /* CUDA device memory: a CUdeviceptr on device `vendor_device` */
    GREY_MEMORY_KIND_FORCE32 = 0x7FFFFFFF
} grey_memory_kind;

/* The value's lower-case name ("host", "cuda_device"), a static string; NULL for a value this version does not know.
 * Since 0.2. */
GREY_API const char* grey_memory_kind_name(grey_memory_kind value);

/* A mapped buffer. An output struct: set struct_size first. Since 0.1. */
typedef struct grey_buffer_mapping {
    uint32_t struct_size;
    grey_memory_kind kind;
    uint64_t address;        /* the buffer's first byte; valid until the matching grey_buffer_unmap */
    uint64_t size_bytes;     /* the whole buffer is mapped */
    int32_t vendor_device;   /* the device's number in its vendor's API (CUDA: the CUdevice ordinal,
                                what cudaSetDevice takes; not libgrey's device index); 0 for host memory */
    uint32_t reserved0;
} grey_buffer_mapping;

/* Maps the whole buffer for reading and writing (a sealed buffer: for reading, as grey_buffer_map_access
 * with GREY_MAP_READ) and fills `out_mapping`. Mappings nest: each needs its own
 * grey_buffer_unmap. A backend that cannot hand out addresses fails with GREY_ERROR_UNSUPPORTED and says
 * so. The address stays valid until the matching unmap; destroying a buffer (or its context) while it is
 * mapped invalidates every mapping of it. Copies through grey_buffer_write and the others are complete
 * when they return, so no synchronisation is needed before using the address. Thread-safe. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_buffer_map(grey_buffer* buffer, grey_buffer_mapping* out_mapping);

/* Ends one mapping of `buffer`; its address must not be used afterwards. GREY_ERROR_INVALID_ARGUMENT when
 * the buffer has no mapping left to end. Thread-safe. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_buffer_unmap(grey_buffer* buffer);

/* ---------------------------------------------------------------------------------------------------
 * Tensors and model files (since 0.1)
 *
 * A grey_tensor_desc names a tensor's element type and shape. Shapes list the outermost dimension
 * first (row-major, as PyTorch, numpy and safetensors do); GGUF's innermost-first ne[] is reversed on
 * reading and writing. Block types (Q8_0, Q4_0, Q4_1) run their blocks along the innermost dimension.
 * ------------------------------------------------------------------------------------------------- */

typedef enum grey_dtype {
    GREY_DTYPE_F32 = 0,
    GREY_DTYPE_F16 = 1,
    GREY_DTYPE_BF16 = 2,
    GREY_DTYPE_F64 = 3,
    GREY_DTYPE_I8 = 4,
    GREY_DTYPE_U8 = 5,
    GREY_DTYPE_I16 = 6,
    GREY_DTYPE_U16 = 7,
    GREY_DTYPE_I32 = 8,
    GREY_DTYPE_U32 = 9,
    GREY_DTYPE_I64 = 10,
    GREY_DTYPE_U64 = 11,
    GREY_DTYPE_BOOL = 12,
    GREY_DTYPE_F8_E4M3 = 13,  /* OCP e4m3 "fn": no infinities, largest finite 448 */
    GREY_DTYPE_F8_E5M2 = 14,
    GREY_DTYPE_Q8_0 = 15,     /* ggml blocks of 32: fp16 scale, 32 x int8 (34 bytes) */
    GREY_DTYPE_Q4_0 = 16,     /* ggml blocks of 32: fp16 scale, 16 bytes of nibbles (18 bytes) */
    GREY_DTYPE_Q4_1 = 17,     /* ggml blocks of 32: fp16 scale, fp16 min, 16 bytes of nibbles (20 bytes) */
    GREY_DTYPE_OTHER = 18,    /* a GGUF type libgrey can size but not decode (grey_model_tensor.file_type) */
    GREY_DTYPE_FORCE32 = 0x7FFFFFFF
} grey_dtype;

/* "F32", "BF16", "Q4_0", ...; NULL for an unknown value. Static storage. Since 0.1. */
GREY_API const char* grey_dtype_name(grey_dtype dtype);

#define GREY_TENSOR_MAX_RANK 8

/* An input struct. Since 0.1. */
typedef struct grey_tensor_desc {
    uint32_t struct_size;
    grey_dtype dtype;
    uint32_t rank;                         /* 0 (a scalar) .. GREY_TENSOR_MAX_RANK */
    uint32_t reserved0;                    /* must be 0 */
    uint64_t shape[GREY_TENSOR_MAX_RANK];  /* shape[0] outermost; entries at and past `rank` must be 0 */
} grey_tensor_desc;

#define GREY_TENSOR_DESC_INIT \
    { (uint32_t)sizeof(grey_tensor_desc), GREY_DTYPE_F32, 0u, 0u, { 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u } }

/* The bytes a tensor of `desc` takes (GREY_ERROR_INVALID_ARGUMENT for GREY_DTYPE_OTHER, an overflow, or
 * a block type whose innermost dimension is not a whole number of blocks). Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_tensor_bytes(const grey_tensor_desc* desc, uint64_t* out_bytes);

typedef enum grey_model_format {
    GREY_MODEL_FORMAT_SAFETENSORS = 0,
    GREY_MODEL_FORMAT_GGUF = 1,         /* GGUF version 3 (version 2 is read too) */
    GREY_MODEL_FORMAT_FORCE32 = 0x7FFFFFFF
} grey_model_format;

/* The value's lower-case name ("safetensors", "gguf"), a static string; NULL for a value this version does not know.
 * Since 0.2. */
GREY_API const char* grey_model_format_name(grey_model_format value);

/* A model file, memory-mapped read-only. Immutable once open: any number of threads may read it. The
 * mapping shows the file as it is: keep it unchanged while open (replace it by rename, never in place),
 * as touching a page of a file truncated meanwhile raises SIGBUS (docs/security.md, "Files that change
 * while libgrey reads them"). */
typedef struct grey_model grey_model;

/* Limits of the model readers and writers (since 0.2). A file beyond them is refused as
 * GREY_ERROR_CORRUPT (a writer refuses with GREY_ERROR_INVALID_ARGUMENT to write one); docs/security.md
 * lists every limit. Real models stay far inside them. */
#define GREY_MODEL_NAME_MAX 1024u               /* bytes in a tensor name or a metadata key */
#define GREY_MODEL_ALIGNMENT_MAX 65536u         /* GGUF general.alignment (a power of two, at most this) */
#define GREY_MODEL_TENSORS_MAX 1048576u         /* tensors in one file */
#define GREY_MODEL_METADATA_MAX 65536u          /* metadata entries in one file */

/* Opens a safetensors or GGUF file (chosen by content: GGUF by its magic, safetensors otherwise) and
 * checks every length, count and offset in it against the file's size and the limits above; the memory
 * its metadata takes is in proportion to the file's size. A truncated or malformed file, tensors that
 * share bytes, a name used twice, a tensor name or metadata key holding a NUL byte (a C string would
 * end there), or a file beyond a limit fails with GREY_ERROR_CORRUPT and a message naming the file and
 * what is wrong; a missing one with GREY_ERROR_NOT_FOUND; a path that is not a regular file (a
 * directory, FIFO or device) with GREY_ERROR_INVALID_ARGUMENT, without blocking. The caller owns
 * *out_model and releases it with grey_model_destroy. Since 0.2 (0.1 named it grey_model_open). */
GREY_API GREY_NODISCARD grey_status grey_model_create(const char* path, grey_model** out_model);

/* Unmaps the file. Pointers obtained from the model become invalid. NULL-safe. Since 0.1. */
GREY_API void grey_model_destroy(grey_model* model);

GREY_API GREY_NODISCARD grey_status grey_model_format_get(const grey_model* model, grey_model_format* out_format);
GREY_API GREY_NODISCARD grey_status grey_model_tensor_count(const grey_model* model, uint64_t* out_count);

/* One tensor of a model file. An output struct: set struct_size first. Since 0.1. */
typedef struct grey_model_tensor {
    uint32_t struct_size;
    uint32_t file_type;     /* GGUF: the ggml type number; safetensors: 0 */
    const char* name;       /* owned by the model, valid until grey_model_destroy */
    const void* data;       /* the tensor's bytes in the mapped file (read-only), valid as `name` */
    uint64_t size_bytes;
    /* dtype and shape (outermost first); owned by the model, valid as `name`. A pointer rather than the
     * struct itself (since 0.2), so that grey_tensor_desc may grow without moving this struct. */
    const grey_tensor_desc* desc;
} grey_model_tensor;

/* The tensor at `index` (0 .. count-1), in file order. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_model_tensor_get(const grey_model* model, uint64_t index,
                                                          grey_model_tensor* out_tensor);

/* Drops the pages of tensor `index`'s bytes from the process's resident memory (they are read from the
 * file again if touched: its data pointer stays valid). A program that walks a model larger than memory,
 * tensor by tensor, calls it when done with each, so that its memory holds one tensor at a time. Pages
 * the tensor shares with its neighbours go too; that costs a re-read of the same bytes (of whatever the
 * file holds then, if it was written meanwhile). Thread-safe, as every read of a model. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_model_tensor_evict(const grey_model* model, uint64_t index);

/* Writes a safetensors or GGUF file, in one of two ways. Not synchronised: use one writer from one
 * thread at a time.
 *
 *  - All at once (since 0.1): add every tensor with its bytes (grey_model_writer_add_tensor, which copies
 *    them), then grey_model_writer_write. Memory holds the whole model.
 *  - Streaming (since 0.2): declare every tensor without its bytes (grey_model_writer_declare_tensor),
 *    open the output (grey_model_writer_open: it writes the header, since every size is known), give each
 *    tensor's bytes as they are ready (grey_model_writer_write_tensor: tensors in any order, a tensor in
 *    one or more pieces in order), then grey_model_writer_finish. The writer keeps no tensor bytes, so
 *    memory holds what the caller holds: one tensor at a time, for a model far larger than memory.
 *
 * Either way the file is written to a temporary file in the output's directory (unnamed where the file
 * system allows it), synced, and renamed into place by finish: until then nothing is at the path, and a
 * failure, grey_model_writer_destroy without finish, or a killed process leaves nothing behind (on file
 * systems without unnamed temporary files, a kill can leave a hidden `.NAME.grey-XXXXXX` beside it).
 * The bytes are those of the all-at-once writer, whichever way the file was written. */
typedef struct grey_model_writer grey_model_writer;

GREY_API GREY_NODISCARD grey_status grey_model_writer_create(grey_model_format format, grey_model_writer** out_writer);
/* Frees the writer; an output opened and not finished is removed. NULL-safe. Since 0.1. */
GREY_API void grey_model_writer_destroy(grey_model_writer* writer);

/* Copies every metadata entry of `source` (GGUF key/values of any type; safetensors' __metadata__
 * strings). Writing GGUF metadata that is not a string to safetensors later fails. Only before
 * grey_model_writer_open. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_model_writer_copy_metadata(grey_model_writer* writer, const grey_model* source);

/* Sets a string metadata entry, replacing one of the same key. Only before grey_model_writer_open.
 * Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_model_writer_set_metadata(grey_model_writer* writer, const char* key,
                                                                   const char* value);

/* Adds a tensor; its `size_bytes` must be what `desc` needs. The bytes are copied. `file_type` is the
 * ggml type number and is read only when desc->dtype is GREY_DTYPE_OTHER (GGUF output only). Names are
 * unique and at most GREY_MODEL_NAME_MAX bytes. Only before grey_model_writer_open. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_model_writer_add_tensor(grey_model_writer* writer, const char* name,
                                                                 const grey_tensor_desc* desc, uint32_t file_type,
                                                                 const void* data, uint64_t size_bytes);

/* Writes the file of every tensor added with its bytes, replacing `path`, through a temporary file as
 * above. Fails with GREY_ERROR_INVALID_ARGUMENT if a tensor was only declared, or the writer is open;
 * GREY_ERROR_IO naming the path when it cannot be written. The writer can write again. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_model_writer_write(grey_model_writer* writer, const char* path);

/* Declares the next tensor of the file (tensors lie in the file in the order they are declared or
 * added), with the checks of grey_model_writer_add_tensor but no bytes: they are given after
 * grey_model_writer_open with grey_model_writer_write_tensor. `*out_index` (may be NULL) receives its
 * index: the number of tensors declared or added before it. Only before grey_model_writer_open.
 * Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_model_writer_declare_tensor(grey_model_writer* writer, const char* name,
                                                                     const grey_tensor_desc* desc, uint32_t file_type,
                                                                     uint64_t* out_index);

/* How grey_model_writer_open treats the path. An input struct. Since 0.2. */
typedef struct grey_model_write_options {
    uint32_t struct_size;
    /* Non-zero: replace a file already at the path when finishing. Zero (the default): refuse it, both
     * when opening and, atomically, when finishing, with GREY_ERROR_IO ("... already exists"). */
    uint32_t replace;
} grey_model_write_options;

#define GREY_MODEL_WRITE_OPTIONS_INIT { (uint32_t)sizeof(grey_model_write_options), 0u }

/* Opens the output: creates its temporary file beside `path`, writes the header (the metadata and every
 * tensor's name, type, shape and place) and the bytes of the tensors added with their bytes (which the
 * writer then frees). From here on only write_tensor, finish and destroy are allowed. `options` may be
 * NULL for the defaults. GREY_ERROR_IO naming the path when it cannot be created (a missing directory,
 * no permission, a file already there without `replace`). Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_model_writer_open(grey_model_writer* writer, const char* path,
                                                           const grey_model_write_options* options);

/* Writes the next `size_bytes` bytes of declared tensor `index` (its first bytes on the first call).
 * Giving a tensor more bytes than it takes, or writing before open, fails with
 * GREY_ERROR_INVALID_ARGUMENT; a failed write with GREY_ERROR_IO (the writer can then only be
 * destroyed). Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_model_writer_write_tensor(grey_model_writer* writer, uint64_t index,
                                                                   const void* data, uint64_t size_bytes);

/* Completes the output: checks that every tensor has all its bytes (GREY_ERROR_INVALID_ARGUMENT naming
 * the first that has not; the writer stays open), syncs the file, and moves it to the path given to
 * open (refusing a file that appeared there meanwhile unless `replace`), then syncs the directory.
 * The writer is then spent: only destroy is allowed. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_model_writer_finish(grey_model_writer* writer);

/* ---------------------------------------------------------------------------------------------------
 * Quantization (since 0.1)
 *
 * Turns an F32, F16 or BF16 tensor into one of the formats below and back, and measures the error
 * against a float64 reference. docs/quantization.md gives every format's byte layout, its bits per
 * weight and its measured error on real weights. The host functions (grey_quantize, grey_dequantize,
 * grey_quant_compare) are pure: they keep no state and may be called from any number of threads at once.
 * ------------------------------------------------------------------------------------------------- */

typedef enum grey_quant_format {
    GREY_QUANT_INT8 = 0,        /* int8 symmetric, one fp32 scale per channel along `axis` */
    GREY_QUANT_INT8_TOKEN = 1,  /* int8 symmetric, one fp32 scale per row of the innermost dimension */
    GREY_QUANT_INT4 = 2,        /* 4-bit asymmetric, groups along each row (first dimension x the rest), fp16 scale and min */
    GREY_QUANT_INT4_SYM = 3,    /* 4-bit symmetric (codes -8..7), groups as INT4, fp16 scale */
    GREY_QUANT_FP8_E4M3 = 4,    /* fp8 e4m3, fp32 scale per channel along `axis` or per tensor */
    GREY_QUANT_FP8_E5M2 = 5,    /* fp8 e5m2, scales as FP8_E4M3 */
    GREY_QUANT_NF4 = 6,         /* NF4 code book, blocks of 64 along each row as INT4, fp32 absmax */
    GREY_QUANT_Q8_0 = 7,        /* llama.cpp Q8_0 blocks (as GREY_DTYPE_Q8_0) */
    GREY_QUANT_Q4_0 = 8,        /* llama.cpp Q4_0 blocks */
    GREY_QUANT_Q4_1 = 9,        /* llama.cpp Q4_1 blocks */
    GREY_QUANT_FORMAT_FORCE32 = 0x7FFFFFFF
} grey_quant_format;

typedef enum grey_quant_calibration {
    /* Round to nearest with the scale taken from the absolute maximum (for Q8_0/Q4_0/Q4_1, bit for bit
     * ggml's quantize_row_*_ref). */
    GREY_CALIBRATION_RTN = 0,
    /* For each scale group, the clipping range (a fraction of the absolute maximum, searched on a grid)
     * that minimises the group's squared error. */
    GREY_CALIBRATION_MSE = 1,
    GREY_CALIBRATION_FORCE32 = 0x7FFFFFFF
} grey_quant_calibration;

/* The value's lower-case name ("rtn", "mse"), a static string; NULL for a value this version does not know.
 * Since 0.2. */
GREY_API const char* grey_quant_calibration_name(grey_quant_calibration value);

/* The value of grey_quant_params.axis that asks FP8 for one scale for the whole tensor. */
#define GREY_QUANT_PER_TENSOR (-1)

/* An input struct. Since 0.1. */
typedef struct grey_quant_params {
    uint32_t struct_size;
    grey_quant_format format;
    grey_quant_calibration calibration;
    uint32_t group_size;  /* INT4 and INT4_SYM: 32, 64 or 128 (0 means 128); every other format: 0 */
    int32_t axis;         /* INT8 and FP8: the channel axis (0 = outermost); FP8 also GREY_QUANT_PER_TENSOR.
                             Every other format: 0 */
    uint32_t reserved0;   /* must be 0 */
} grey_quant_params;

#define GREY_QUANT_PARAMS_INIT \
    { (uint32_t)sizeof(grey_quant_params), GREY_QUANT_INT8, GREY_CALIBRATION_RTN, 0u, 0, 0u }

/* What a quantization cost, measured against a float64 reference. An output struct. Since 0.1. */
typedef struct grey_quant_report {
    uint32_t struct_size;
    grey_quant_calibration calibration;  /* the scale choice that was used */
    uint64_t elements;
    uint64_t bytes;                      /* the quantized size, scales and zero points included */
    double bits_per_weight;              /* 8 * bytes / elements */
    double rel_rmse;                     /* sqrt(sum (x - x')^2 / sum x^2); 0 when x is all zero */
    double sqnr_db;                      /* 10 log10(sum x^2 / sum (x - x')^2); +inf when exact */
    double max_abs_err;                  /* max |x - x'| */
    double sum_squared_error;            /* sum (x - x')^2, to combine reports over several tensors */
    double sum_squared_signal;           /* sum x^2 */
} grey_quant_report;

/* "int8", "int8-token", "int4", "int4-sym", "fp8-e4m3", "fp8-e5m2", "nf4", "q8_0", "q4_0", "q4_1";
 * NULL for an unknown value. Static storage. Since 0.1. */
GREY_API const char* grey_quant_format_name(grey_quant_format format);

/* Named parameter sets: the one public spelling of a format, shared by greyctl, the bindings and the
 * samples. A name fixes format, group_size and axis: "int8", "int8-token", "int4-g32", "int4-g64",
 * "int4-g128", "int4-sym-g128", "fp8-e4m3", "fp8-e5m2", "nf4", "q8_0", "q4_0", "q4_1" (int8 and fp8
 * take one scale per channel of axis 0, the output channels of a weight matrix). Calibration is not part
 * of a name. */

/* Fills `out_params` (an output struct: set struct_size first, or start from GREY_QUANT_PARAMS_INIT) with
 * the parameters `name` stands for, calibration GREY_CALIBRATION_RTN. An unknown name fails with
 * GREY_ERROR_INVALID_ARGUMENT and a message naming it and listing the valid names. Names are matched
 * exactly (case matters). Thread-safe. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_quant_params_from_name(const char* name, grey_quant_params* out_params);

/* The name of `params` (calibration ignored; INT4 group_size 0 counts as 128), or NULL when no name
 * stands for them (an axis other than 0, a per-tensor FP8 scale, INT4_SYM with groups of 32 or 64,
 * invalid params, or NULL). Static storage. Since 0.1. */
GREY_API const char* grey_quant_params_name(const grey_quant_params* params);

/* The number of names, and the i-th one in the order listed above (NULL past the end; static storage),
 * for menus and for running every format. Since 0.1. */
GREY_API uint32_t grey_quant_name_count(void);
GREY_API const char* grey_quant_name_at(uint32_t index);

/* The bytes the quantized form of a tensor `desc` (its dtype is not used) takes. Fails with
 * GREY_ERROR_INVALID_ARGUMENT, naming the rule, when the format cannot hold that shape (Q8_0, Q4_0 and
 * Q4_1 need the innermost dimension to be a multiple of 32; INT8's axis must exist). INT4, INT4_SYM and
 * NF4 hold every shape: rows = the first dimension, a row = the other dimensions, a row's last group
 * ragged when the row is not a whole number of groups (docs/quantization.md, "Rows and groups"; since
 * 0.2, before which the innermost dimension had to be a multiple of the group). Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_quant_size(const grey_tensor_desc* desc, const grey_quant_params* params,
                                                    uint64_t* out_bytes);

/* Quantizes the host tensor `source` (desc->dtype F32, F16 or BF16; `source_bytes` exactly its size)
 * into `destination` (`destination_bytes` at least grey_quant_size). NaN or infinite inputs fail with
 * GREY_ERROR_INVALID_ARGUMENT. `out_report` may be NULL; when given it is filled (that costs one
 * dequantization). Runs on the calling thread with the host kernels (AVX2 when the CPU has it). Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_quantize(const grey_tensor_desc* desc, const void* source, uint64_t source_bytes,
                                                  const grey_quant_params* params, void* destination,
                                                  uint64_t destination_bytes, grey_quant_report* out_report);

/* Dequantizes `source` (produced by grey_quantize with the same shape and params) into `destination`,
 * whose element type is desc->dtype (F32, F16 or BF16). Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_dequantize(const grey_tensor_desc* desc, const grey_quant_params* params,
                                                    const void* source, uint64_t source_bytes, void* destination,
                                                    uint64_t destination_bytes);

/* Measures `approximation` against `reference`, both host tensors of `desc` (F32, F16 or BF16), in
 * float64. The report's bytes and bits_per_weight are those of desc->dtype. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_quant_compare(const grey_tensor_desc* desc, const void* reference,
                                                       const void* approximation, uint64_t bytes_each,
                                                       grey_quant_report* out_report);

/* The same on device buffers: reads `desc`'s bytes at `source_offset` of `source`, writes the quantized
 * form at `destination_offset` of `destination`. Both buffers must be on one device, whose backend runs
 * the kernels; a backend without quantization kernels fails with GREY_ERROR_UNSUPPORTED and says so
 * (nothing is staged through the host behind the caller's back). `out_report` may be NULL; when given,
 * the runtime reads both tensors back to the host to measure. Every backend gives the host's bytes
 * (docs/quantization.md). A NaN or infinite element fails with GREY_ERROR_INVALID_ARGUMENT naming the
 * first one; a GPU backend finds it while encoding, so the destination range may have been written.
 * Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_quantize_buffer(const grey_tensor_desc* desc, const grey_buffer* source,
                                                         uint64_t source_offset, const grey_quant_params* params,
                                                         grey_buffer* destination, uint64_t destination_offset,
                                                         grey_quant_report* out_report);
GREY_API GREY_NODISCARD grey_status grey_dequantize_buffer(const grey_tensor_desc* desc, const grey_quant_params* params,
                                                           const grey_buffer* source, uint64_t source_offset,
                                                           grey_buffer* destination, uint64_t destination_offset);

/* ---------------------------------------------------------------------------------------------------
 * Whole models (since 0.2)
 *
 * Quantizes every eligible tensor of a safetensors or GGUF file into a new model file, under a policy
 * that decides, tensor by tensor, what is quantized, in which format, and what keeps its precision and
 * why; and restores a full-precision safetensors file from one so made. Both stream: memory holds one
 * tensor (and its quantized form) at a time, whatever the model's size. docs/quantization.md describes
 * the policy, the report and the metadata convention.
 *
 * The policy, for each tensor in file order:
 *  1. not F32, F16 or BF16: kept ("not a float tensor (I64)");
 *  2. its name matches a keep pattern: kept ("matches keep pattern 'P'");
 *  3. fewer than two dimensions: kept ("one-dimensional (bias or norm)");
 *  4. with keep_critical (the default) and no quantize pattern matching it, a critical layer is kept:
 *     embeddings, the output layer (lm_head, output.weight, embed_out), norms, biases, and the first
 *     and last convolution (a weight of three or more dimensions) of the file;
 *  5. otherwise it is quantized in the format of the first format override whose pattern matches its
 *     name, else in the call's format; a shape that format cannot hold is kept, with the reason.
 * Patterns are RE2 regular expressions (github.com/google/re2/wiki/Syntax) searched for anywhere in
 * the name (anchor with ^ and $): matching takes time linear in the name whatever the pattern. A
 * pattern that does not compile fails the call with GREY_ERROR_INVALID_ARGUMENT naming it.
 *
 * The output holds every tensor in the input's order and the input's metadata (a GGUF input's only
 * when the output is GGUF too), plus "grey.quantization" ("FORMAT, calibration rtn|mse"). A tensor
 * quantized to Q8_0, Q4_0 or Q4_1 in a GGUF output is stored as ggml's own type, which llama.cpp
 * loads; every other quantized tensor is stored as a one-dimensional U8 (safetensors) or I8 (GGUF)
 * tensor of libgrey's layout, described by the metadata entry "grey.quant.<name>", a JSON object:
 * {"format": name, "calibration": "rtn"|"mse", "dtype": the source element type, "shape": [...],
 *  "axis": n, "group_size": n}. grey_model_dequantize reads exactly that.
 * ------------------------------------------------------------------------------------------------- */

/* Reports the progress of a whole-model call (grey_model_quantize, grey_model_dequantize): called on the
 * calling thread once before the first tensor (bytes_done 0, tensor "") and once after each tensor of the
 * input, in file order, with the input tensor bytes done so far (kept tensors count too), their total,
 * and the tensor's name (valid during the call only). Return 0 to go on; any other value cancels: the
 * call then fails with GREY_ERROR_CANCELLED and writes no output file. It must not call back into the
 * model call it reports on. Since 0.2. */
typedef uint32_t (*grey_model_progress_callback)(uint64_t bytes_done, uint64_t bytes_total, const char* tensor, void* user);

/* An input struct. Every pattern list is a string of patterns, one per line ('\n' separates them;
 * empty lines are ignored); NULL or "" for none. Since 0.2. */
typedef struct grey_model_quant_options {
    uint32_t struct_size;
    grey_quant_calibration calibration;  /* GREY_CALIBRATION_RTN by default */
    uint32_t keep_critical;              /* non-zero (the default): keep the critical layers (rule 4) */
    uint32_t allow_empty;                /* non-zero: succeed (and write) when no tensor is quantized */
    uint32_t replace;                    /* non-zero: replace a file already at the output path */
    uint32_t device;                     /* with `context`: the device whose backend runs the kernels */
    const char* keep_patterns;           /* tensors to keep in their precision (rule 2) */
    const char* quantize_patterns;       /* tensors to quantize even if critical (overrides rule 4) */
    const char* format_overrides;        /* lines "PATTERN=FORMAT" (a name of grey_quant_params_from_name,
                                            split at the last '='): mixed precision (rule 5) */
    grey_context* context;               /* NULL (the default): host memory, on the calling thread;
                                            else tensors are quantized in buffers on `device` */
    grey_model_progress_callback progress; /* NULL (the default): no progress reports */
    void* progress_user;                 /* passed to `progress` as it is */
} grey_model_quant_options;

#define GREY_MODEL_QUANT_OPTIONS_INIT \
    { (uint32_t)sizeof(grey_model_quant_options), GREY_CALIBRATION_RTN, 1u, 0u, 0u, 0u, NULL, NULL, NULL, NULL, NULL, NULL }

/* The outcome of grey_model_quantize: its report. Immutable: any number of threads may read it. */
typedef struct grey_model_quant_result grey_model_quant_result;

/* Quantizes the model at `input_path` in `format` (a name of grey_quant_params_from_name) under the
 * policy above, and writes the result to `output_path` (ending in .safetensors or .gguf; NULL to
 * measure only and write nothing) through a temporary file renamed into place when complete, as
 * grey_model_writer does; an output path that is the input file (by any name) is refused. `options`
 * may be NULL for the defaults. Every quantized tensor's error is measured against a float64
 * reference. When no tensor can be quantized the call fails with GREY_ERROR_INVALID_ARGUMENT ("nothing
 * to quantize in ...", with the reasons) and writes nothing, unless options->allow_empty. A NaN,
 * infinite or too large value fails the call naming the tensor (a keep pattern keeps it); nothing is
 * written then. `*out_result` receives the report; free it with grey_model_quant_result_destroy.
 * Thread-safe (with a context, as its buffers are). Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_model_quantize(const char* input_path, const char* output_path, const char* format,
                                                        const grey_model_quant_options* options,
                                                        grey_model_quant_result** out_result);

/* The report as JSON text, through the buffer protocol of grey_config_get:
 * {"tensors": [{"name", "format", "elements", "bits_per_weight", "rel_rmse", "sqnr_db", "max_abs_err"}...]
 *  (every quantized tensor, in file order; sqnr_db null when exact),
 *  "kept": [{"name", "dtype", "shape", "reason"}...] (every other tensor, in file order),
 *  "total": {"elements", "bits_per_weight", "rel_rmse", "sqnr_db", "bytes_in", "bytes_out"}}.
 * Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_model_quant_result_json(const grey_model_quant_result* result, char* buffer,
                                                                 size_t buffer_size, size_t* out_length);

/* NULL-safe. Since 0.2. */
GREY_API void grey_model_quant_result_destroy(grey_model_quant_result* result);

/* An input struct. Since 0.2. */
typedef struct grey_model_dequant_options {
    uint32_t struct_size;
    grey_dtype dtype;   /* the element type of restored tensors: GREY_DTYPE_F32 (the default), F16 or BF16 */
    uint32_t replace;   /* non-zero: replace a file already at the output path */
    uint32_t reserved0; /* must be 0 */
    grey_model_progress_callback progress; /* NULL (the default): no progress reports */
    void* progress_user;                   /* passed to `progress` as it is */
} grey_model_dequant_options;

#define GREY_MODEL_DEQUANT_OPTIONS_INIT { (uint32_t)sizeof(grey_model_dequant_options), GREY_DTYPE_F32, 0u, 0u, NULL, NULL }

/* Restores a full-precision safetensors file at `output_path` from a model libgrey quantized (a file
 * written by grey_model_quantize, safetensors or GGUF): every quantized tensor (described by
 * "grey.quant.<name>", or of ggml type Q8_0, Q4_0 or Q4_1) is dequantized to options->dtype in its
 * original shape; every other tensor is copied as it is. The input's metadata is kept, less
 * grey.quantization and grey.quant.* (a GGUF input's is not carried). A file with no quantized tensor
 * fails with GREY_ERROR_INVALID_ARGUMENT; a grey.quant.* entry that is not what grey_model_quantize
 * writes (malformed JSON, a missing field, an unknown format, a size that does not match, a tensor
 * that does not exist) with GREY_ERROR_CORRUPT naming the tensor. Written through a temporary file as
 * grey_model_quantize's output. `options` may be NULL for the defaults. Thread-safe. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_model_dequantize(const char* input_path, const char* output_path,
                                                          const grey_model_dequant_options* options);

/* ---------------------------------------------------------------------------------------------------
 * Sealed buffers and memory tiers (since 0.2)
 *
 * A buffer is writable until grey_buffer_seal. A sealed buffer is immutable: grey_buffer_write, _fill,
 * _copy into it, the _async forms and quantizing into it fail with GREY_ERROR_INVALID_ARGUMENT saying
 * that it is sealed. Being immutable, it may change residency, explicitly (grey_buffer_compress,
 * grey_memory_compact), without its contents ever changing:
 *   raw                 its own device memory, as every unsealed buffer;
 *   deduplicated        cut into blocks (memory.deduplication.block_size_kb, 64 KiB by default): blocks of
 *                       zeros or of one repeated 8-byte value are kept as that value (no storage); other
 *                       blocks are stored once per device and sharing domain and shared, refcounted, by
 *                       every buffer of the domain that holds the same bytes. Blocks are matched by an
 *                       xxh3 hash salted per domain (a random salt per context) and then compared byte
 *                       for byte, so that a hash collision never merges different data. Buffers of two
 *                       sharing domains never share a block. A stored block is held raw on the device,
 *                       or compressed (an LT-Block container of that block, with its checksum) on the
 *                       device or in host memory, once for every buffer holding it (grey_buffer_compress,
 *                       grey_memory_compact); it is decoded where a holder is read or mapped;
 *   compressed_device   an LT-Block container (docs/codecs.md) in device memory;
 *   compressed_host     an LT-Block container in host memory.
 * Every call that reads a buffer (grey_buffer_read, _copy from it, _checksum) works in every residency,
 * decoding what it needs on the host. grey_buffer_map of a buffer that is not raw decodes it into the
 * device's working-set cache (memory.cache.working_set_mb): a dense copy on the device that stays there
 * after the unmap until the cache needs room, when the least recently used copy not mapped is freed
 * (the most recently used one when the buffer being mapped had its own copy freed for room before: maps
 * cycling over more than the cache, docs/memory.md) (the buffer keeps its residency, so no data is ever
 * lost); a mapped copy is never moved or freed.
 * Mapping with GREY_MAP_WRITE makes the buffer private and raw again (copy on write: the blocks it
 * shared stay with the other buffers) and unseals it. The _async calls and the quantization calls work
 * on raw memory: a sealed buffer that is not raw is brought back to raw memory first (it stays sealed,
 * so it may be compacted again once unused); one that is also mapped is refused. A buffer never changes
 * residency while work using it is pending on a stream.
 * The codecs run on the host in this version on every backend (the container is moved to and from the
 * device through the backend's copies).
 *
 * The statistics of grey_device_memory_stats_get count all of this (grey_memory_stats, since 0.2).
 * Thread-safe: every call here may be made from any thread; one context's tier state is serialised.
 * ------------------------------------------------------------------------------------------------- */

/* Where a buffer's contents are held. */
typedef enum grey_residency {
    GREY_RESIDENCY_RAW = 0,
    GREY_RESIDENCY_DEDUPLICATED = 1,
    GREY_RESIDENCY_COMPRESSED_DEVICE = 2,
    GREY_RESIDENCY_COMPRESSED_HOST = 3,
    GREY_RESIDENCY_FORCE32 = 0x7FFFFFFF
} grey_residency;

/* "raw", "deduplicated", "compressed_device", "compressed_host"; NULL for a value this version does not
 * know. Since 0.2. */
GREY_API const char* grey_residency_name(grey_residency value);

/* The codec of a compressed residency (docs/codecs.md). Zero and one-value blocks are found first
 * whatever the codec; a block the codec would not make smaller is stored raw. */
typedef enum grey_codec {
    GREY_CODEC_DEFAULT = 0,  /* memory.compression.algorithm of the context's configuration */
    GREY_CODEC_LZ4 = 1,      /* liblz4 */
    GREY_CODEC_ZSTD = 2,     /* libzstd, level 3 */
    GREY_CODEC_FLOAT = 3,    /* the lossless float codec: the buffer's dtype must be F16, BF16, F32 or F64 */
    GREY_CODEC_BITMASK = 4,  /* bitmask + pack for sparse data, per element of the buffer's dtype */
    GREY_CODEC_FORCE32 = 0x7FFFFFFF
} grey_codec;

/* "default", "lz4", "zstd", "float", "bitmask"; NULL for a value this version does not know. Since 0.2. */
GREY_API const char* grey_codec_name(grey_codec value);

/* What a mapping is for. */
typedef enum grey_map_access {
    GREY_MAP_READ = 0,   /* reading only: a sealed buffer that is not raw is decoded into the cache */
    GREY_MAP_WRITE = 1,  /* reading and writing: a sealed buffer is made private, raw and unsealed first */
    GREY_MAP_ACCESS_FORCE32 = 0x7FFFFFFF
} grey_map_access;

/* "read", "write"; NULL for a value this version does not know. Since 0.2. */
GREY_API const char* grey_map_access_name(grey_map_access value);

/* How grey_buffer_create_with_options makes a buffer. An input struct: start from
 * GREY_BUFFER_OPTIONS_INIT. */
typedef struct grey_buffer_options {
    uint32_t struct_size;
    uint32_t device;          /* the context's device index */
    uint64_t size_bytes;      /* > 0 */
    uint64_t tenant;          /* whose buffer, for the per-tenant statistics (any number; 0 by default) */
    uint64_t sharing_domain;  /* deduplication shares blocks only between buffers of one domain (0) */
    uint64_t source_bytes;    /* for a buffer that holds a quantized tensor: the bytes of the full-precision
                                 tensor it replaces (counted as logical bytes and saved by quantization);
                                 0: the buffer replaces nothing. Must be 0 or at least size_bytes */
    grey_dtype dtype;         /* element type, for the element-aware codecs (GREY_DTYPE_U8: bytes) */
    uint32_t reserved0;
} grey_buffer_options;

#define GREY_BUFFER_OPTIONS_INIT \
    { (uint32_t)sizeof(grey_buffer_options), 0u, 0u, 0u, 0u, 0u, GREY_DTYPE_U8, 0u }

/* grey_buffer_create with a tenant, a sharing domain, a source size and an element type. The buffer is
 * raw and writable. Errors as grey_buffer_create; GREY_ERROR_INVALID_ARGUMENT for a dtype outside the
 * enum or a source_bytes below size_bytes. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_buffer_create_with_options(grey_context* context, const grey_buffer_options* options,
                                                                    grey_buffer** out_buffer);

/* Makes the buffer immutable (see above). Sealing a sealed buffer is a no-op. GREY_ERROR_INVALID_ARGUMENT
 * while it is mapped (a mapping may still write). Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_buffer_seal(grey_buffer* buffer);

/* A buffer's state. An output struct: set struct_size first. Since 0.2. */
typedef struct grey_buffer_info {
    uint32_t struct_size;
    grey_residency residency;
    uint64_t size_bytes;
    uint64_t physical_bytes;  /* memory its contents hold now: raw size, container size, or the bytes
                                 the stored blocks it refers to hold, raw or compressed (each counted
                                 whole, shared or not) */
    uint64_t tenant;
    uint64_t sharing_domain;
    uint64_t source_bytes;
    grey_dtype dtype;
    uint32_t sealed;          /* 1 when sealed */
    uint32_t map_count;       /* live mappings */
    grey_codec codec;         /* a compressed residency's codec, GREY_CODEC_DEFAULT otherwise */
    uint64_t shared_blocks;   /* deduplicated: blocks stored in the device's shared store */
    uint64_t shared_with_others; /* deduplicated: of those, blocks held more than once (by another buffer,
                                    or twice by this one) */
    uint64_t constant_blocks; /* deduplicated: blocks of zeros or of one value (no storage) */
    uint32_t cached;          /* 1 when a dense copy is in the working-set cache */
    uint32_t reserved0;
} grey_buffer_info;

/* Fills `out_info`; set out_info->struct_size first. Thread-safe. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_buffer_info_get(const grey_buffer* buffer, grey_buffer_info* out_info);

/* Moves a sealed, unmapped buffer to `residency`: RAW decodes it back into its own device memory,
 * DEDUPLICATED shares its blocks, COMPRESSED_DEVICE and COMPRESSED_HOST encode it with `codec` (ignored
 * for the other two). A deduplicated buffer holding a stored block that is held more than once (by
 * another buffer, or twice by itself) stays deduplicated instead, since a container of its own would add
 * to the blocks the others keep: its stored blocks are compressed where they are, into that tier with
 * `codec`, each once for all its holders (a block already held so, or one the codec does not make
 * smaller, is left as it is; asking again with the other tier moves the blocks there); check
 * grey_buffer_info.residency. The contents never change, and every byte stays readable. A stored block
 * whose container fails its checksum fails the calls that read it with GREY_ERROR_CORRUPT naming the
 * block ("stored block 4 of 7 of the buffer (bytes ..., compressed_host with zstd, held 2 time(s)): ...").
 * GREY_ERROR_INVALID_ARGUMENT for a buffer not sealed or mapped, a value outside the enums,
 * GREY_CODEC_FLOAT on a dtype it cannot take, or GREY_CODEC_DEFAULT when memory.compression.algorithm is
 * "none"; GREY_ERROR_OUT_OF_MEMORY leaves the buffer as it was (stored blocks compressed in place: each
 * whole, in its old form or its new one). A call using the buffer on another thread, and the work enqueued on the
 * buffer before the call (on any stream: it may still read the raw memory the move frees), are waited
 * for first; other work is not, and its failures stay with its streams. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_buffer_compress(grey_buffer* buffer, grey_residency residency, grey_codec codec);

/* grey_buffer_map with an access (see grey_map_access). READ of a raw buffer gives its own memory; READ
 * of any other gives its dense copy in the working-set cache, decoding it when it is not there (the
 * unmapped copies are freed to make room, as grey_buffer_map says); GREY_ERROR_OUT_OF_MEMORY when the buffer
 * is larger than the cache or mapped copies fill it. The address must only be read. grey_buffer_map is
 * this call with WRITE for an unsealed buffer and READ for a sealed one. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_buffer_map_access(grey_buffer* buffer, grey_map_access access,
                                                           grey_buffer_mapping* out_mapping);

/* What grey_memory_compact does. An input struct: start from GREY_COMPACT_POLICY_INIT. */
typedef struct grey_compact_policy {
    uint32_t struct_size;
    uint32_t deduplicate;      /* 1: every sealed raw buffer is deduplicated */
    uint32_t compress;         /* 1: then every sealed buffer still raw, or deduplicated with stored blocks
                                  none of which it holds more than once (one held by another buffer too, or
                                  twice), is compressed into `tier` with `codec`; a deduplicated buffer
                                  holding a block more than once has its stored blocks compressed there
                                  instead, each once for all its holders, as grey_buffer_compress does
                                  (GREY_CODEC_FLOAT: only buffers of a dtype it takes) */
    grey_residency tier;       /* GREY_RESIDENCY_COMPRESSED_DEVICE or GREY_RESIDENCY_COMPRESSED_HOST */
    grey_codec codec;
    uint32_t reserved0;
} grey_compact_policy;

#define GREY_COMPACT_POLICY_INIT \
    { (uint32_t)sizeof(grey_compact_policy), 1u, 0u, GREY_RESIDENCY_COMPRESSED_DEVICE, GREY_CODEC_DEFAULT, 0u }

/* What a grey_memory_compact call did. An output struct: set struct_size first. */
typedef struct grey_compact_result {
    uint32_t struct_size;
    uint32_t reserved0;
    uint64_t buffers_examined;       /* buffers of the device */
    uint64_t buffers_deduplicated;
    uint64_t buffers_compressed;     /* into a container, or (deduplicated) whose stored blocks this call
                                        compressed; a holder of blocks compressed already is not counted */
    uint64_t buffers_skipped;        /* not sealed, mapped, or in a call's use */
    uint64_t physical_bytes_before;  /* grey_memory_stats.physical_bytes before and after */
    uint64_t physical_bytes_after;
} grey_compact_result;

/* Applies `policy` to the buffers of `device`; NULL takes it from the configuration
 * (memory.deduplication.enabled, memory.compression.enabled and .algorithm, on the device). Mapped and
 * unsealed buffers are left alone, and so are buffers a call is using on another thread. `out_result`
 * may be NULL. A failure part way leaves every buffer whole, in its old or its new residency. Waits for
 * the work enqueued on each buffer it moves (on any stream) before moving it, and for no other work.
 * Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_memory_compact(grey_context* context, uint32_t device, const grey_compact_policy* policy,
                                                        grey_compact_result* out_result);

/* grey_device_memory_stats_get for the buffers of one tenant (grey_buffer_options.tenant) on `device`.
 * Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_device_memory_stats_tenant_get(grey_context* context, uint32_t device, uint64_t tenant,
                                                                        grey_memory_stats* out_stats);

/* ---------------------------------------------------------------------------------------------------
 * Streams and events (since 0.2)
 *
 * A grey_stream is an ordered queue of work on one device: the _async calls below check their arguments,
 * enqueue the work and return; the stream runs it in the order it was enqueued, apart from the calling
 * thread. Streams of one device run independently of each other; a grey_event recorded on one stream and
 * waited for on another orders them. The synchronous calls (grey_buffer_write and the rest) are the
 * same work enqueued on the device's own default stream and synchronized at once: they keep their
 * behaviour, and are not ordered with work on the caller's streams (synchronize or wait first).
 *
 * Argument errors (NULL, a range outside a buffer, a buffer of another device) are returned by the
 * _async call itself and nothing is enqueued. An error the work finds when it runs (a NaN input to a
 * quantization, a driver failure) is kept by the stream and returned, with the same status and
 * grey_last_error() text as the synchronous call would give, by the next grey_stream_synchronize or
 * grey_stream_query that sees the stream idle (which then forget it), and by grey_event_synchronize or
 * grey_event_query of an event recorded after it. Work enqueued after a failure still runs.
 *
 * Host memory given to an _async call (source, destination, checksum destination) must stay valid and
 * untouched until the stream reaches the work: synchronize the stream, or an event recorded after it,
 * before reusing or freeing it. A buffer must not be destroyed while work using it is pending.
 * grey_host_alloc gives host memory the device transfers from at full speed.
 *
 * A backend without streams of its own runs each _async call's work when it is enqueued, on the calling
 * thread (logged at debug level), keeping the error for the next synchronize; the semantics above hold on
 * every backend. One stream may be used from several threads; work enqueued from different threads at
 * the same time is ordered as the calls happen to be. Streams and events belong to their context:
 * destroying the context destroys those left, after waiting for their work.
 * ------------------------------------------------------------------------------------------------- */

typedef struct grey_stream grey_stream;
typedef struct grey_event grey_event;

/* Creates a stream on `device`. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_stream_create(grey_context* context, uint32_t device, grey_stream** out_stream);

/* Waits for the work enqueued on the stream, then frees it; an error kept by the stream is logged as a
 * warning (it has no caller left to return to). NULL-safe. Must not race with other calls on the stream.
 * Since 0.2. */
GREY_API void grey_stream_destroy(grey_stream* stream);

/* Blocks until every piece of work enqueued on the stream has run; returns the first error the work found
 * since the last synchronize (and forgets it), GREY_OK otherwise. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_stream_synchronize(grey_stream* stream);

/* Without blocking: *out_done = 1 when every piece of work enqueued has run, 0 otherwise. When the stream
 * is idle and has kept an error, returns it as grey_stream_synchronize does (and forgets it); *out_done is
 * then left untouched, as on every failure, and the stream is idle. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_stream_query(grey_stream* stream, uint32_t* out_done);

/* The stream's own handle in its vendor's API, so that other libraries can enqueue work on the same
 * queue (the Python binding's __cuda_stream__ and DLPack's stream handshake use it). *out_kind names the
 * API as the memory kind of the device's buffers: GREY_MEMORY_CUDA_DEVICE for a CUstream (the same
 * value as a cudaStream_t), as an integer in *out_handle. The handle belongs to the stream: valid until
 * grey_stream_destroy, never to be destroyed by the caller. Work enqueued on it by others is ordered with
 * the stream's own work, but its failures are not the stream's. A stream whose device has no native
 * streams (the host device: its streams are threads of libgrey) answers GREY_ERROR_UNSUPPORTED naming
 * the backend, leaving both outputs untouched. Thread-safe. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_stream_native_handle(grey_stream* stream, grey_memory_kind* out_kind, uint64_t* out_handle);

/* Wraps a stream of the vendor's API that the caller made (another library's: a framework's current
 * stream) as a grey_stream of `device`, so that libgrey's async calls run on it in order with the
 * caller's own work, and grey_stream_wait_event makes it wait for libgrey's streams without blocking the
 * host. `kind` names the API as grey_stream_native_handle does: GREY_MEMORY_CUDA_DEVICE, `native_handle`
 * a CUstream (a cudaStream_t) of the device's primary context, or 0 (the NULL stream), 1 (the legacy
 * default stream) or 2 (the per-thread default stream), as CUDA and DLPack number them. A stream of
 * another context, an unknown handle, a kind the device's backend does not use or a device without
 * native streams (the host device) fails with a message naming the problem, and *out_stream is left
 * untouched.
 *
 * The native stream stays the caller's: it must outlive the wrapper, and grey_stream_destroy never
 * destroys it. Destroying the wrapper waits for the operations libgrey enqueued on it (writes, reads,
 * copies, fills, checksums, quantizations), but not for event waits and records alone, so a wrapper made
 * only to wait for an event is destroyed without blocking. Failures of libgrey's work on it surface at
 * grey_stream_synchronize/query of the wrapper as on any stream; other work on the native stream is not
 * the wrapper's. Thread-safe. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_stream_wrap_native(grey_context* context, uint32_t device, grey_memory_kind kind,
                                                            uint64_t native_handle, grey_stream** out_stream);

/* Creates an event on `device`; it can be recorded on that device's streams. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_event_create(grey_context* context, uint32_t device, grey_event** out_event);

/* Frees the event. Waits already enqueued on other streams still wait for its last record. NULL-safe.
 * Since 0.2. */
GREY_API void grey_event_destroy(grey_event* event);

/* Captures the work enqueued on `stream` (of the event's device) so far: the event completes when the
 * stream reaches this point. Recording again replaces what the event stands for. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_event_record(grey_event* event, grey_stream* stream);

/* Makes work enqueued on `stream` after this call wait until `event`'s latest record has completed,
 * without blocking the caller (across backends the call itself waits). The event must have been recorded
 * and belong to the stream's context. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_stream_wait_event(grey_stream* stream, grey_event* event);

/* Blocks until the event's latest record has completed; returns the error its stream kept at that point,
 * if any (without making the stream forget it). GREY_ERROR_INVALID_ARGUMENT for an event never recorded.
 * Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_event_synchronize(grey_event* event);

/* Without blocking: *out_done = 1 when the event's latest record has completed, 0 otherwise. When it has
 * completed after an error of its stream, returns that error as grey_event_synchronize does (*out_done is
 * then left untouched, as on every failure). Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_event_query(grey_event* event, uint32_t* out_done);

/* The time in milliseconds from `start`'s latest record completing to `end`'s (negative when `end`
 * completed first), measured by the device's clock where the backend has one. Waits for both records.
 * Both events must be recorded and on one device. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_event_elapsed_ms(grey_event* start, grey_event* end, double* out_ms);

/* The _async forms of grey_buffer_write, grey_buffer_read, grey_buffer_copy, grey_buffer_fill and
 * grey_buffer_checksum: same arguments and checks, plus the stream, which must be on the buffers' device
 * (a copy between devices needs grey_buffer_copy). `host_source`, `host_destination` and
 * `checksum_destination` must stay valid until the stream reaches the work (see above); the checksum is
 * written to *checksum_destination then. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_buffer_write_async(grey_buffer* buffer, uint64_t offset, const void* host_source,
                                                            uint64_t size_bytes, grey_stream* stream);
GREY_API GREY_NODISCARD grey_status grey_buffer_read_async(const grey_buffer* buffer, uint64_t offset, void* host_destination,
                                                           uint64_t size_bytes, grey_stream* stream);
GREY_API GREY_NODISCARD grey_status grey_buffer_copy_async(grey_buffer* destination, uint64_t destination_offset,
                                                           const grey_buffer* source, uint64_t source_offset,
                                                           uint64_t size_bytes, grey_stream* stream);
GREY_API GREY_NODISCARD grey_status grey_buffer_fill_async(grey_buffer* buffer, uint64_t offset, uint8_t value,
                                                           uint64_t size_bytes, grey_stream* stream);
GREY_API GREY_NODISCARD grey_status grey_buffer_checksum_async(const grey_buffer* buffer, uint64_t offset, uint64_t size_bytes,
                                                               uint64_t* checksum_destination, grey_stream* stream);

/* grey_buffer_map_access on a stream, for streaming a model through the working-set cache layer by layer:
 * map layer N+1 on one stream while layer N is computed on another. A raw buffer (every unsealed one)
 * is mapped at once. Any other is put into the working-set cache, as grey_buffer_map_access does, by
 * work enqueued on `stream` (of the buffer's device): *out_mapping is filled when the call returns, but
 * the bytes at its address are there only once the stream reaches this point (grey_stream_synchronize,
 * or an event recorded after the call, which other streams can wait for). A buffer compressed in device
 * or host memory (or deduplicated with its stored blocks compressed in device memory) whose blocks the
 * device decodes is decoded on `stream` itself, straight into the working set, behind the work queued
 * there: the call waits for nothing but reading a container's header and table back, or, for one in host
 * memory, copying its compressed bytes to the device. Any other is decoded on the calling thread during
 * the call, and only the copy into the working set runs on the stream. A cache hit costs no copy;
 * a hit on a copy that another stream is still filling makes `stream` wait for that fill.
 *
 * Arguments are checked at once (GREY_ERROR_INVALID_ARGUMENT: a NULL pointer, out_mapping->struct_size
 * too small, an access outside grey_map_access, a stream of another context or device;
 * GREY_ERROR_UNSUPPORTED: a backend that cannot hand out addresses; nothing is mapped then). Failures of the mapping itself are reported by the stream, like failures of other
 * queued work, at its next grey_stream_synchronize/query or by an event recorded after the call: the
 * buffer mapped for reading elsewhere when WRITE asks for copy on write (INVALID_ARGUMENT), a buffer
 * larger than the cache or mapped copies filling it (OUT_OF_MEMORY), a corrupted block of its container
 * (GREY_ERROR_CORRUPT naming the block). Such a failed mapping has address 0 and still takes its
 * grey_buffer_unmap, so every call that returned GREY_OK is paired with one unmap. A block that a decode
 * on the stream finds corrupted is known only once the stream has run it, as CUDA reports a kernel's
 * fault: that mapping has its address, but work queued after it read wrong bytes for the block; the
 * stream's next grey_stream_synchronize or grey_stream_query (not an event recorded after the call, in
 * this version) returns GREY_ERROR_CORRUPT naming the block, and the copy is never handed to a later map
 * (a map of the buffer while it is still mapped fails with the same error; once it is unmapped the
 * buffer is decoded again). grey_buffer_unmap is not enqueued: call it once the work that reads the
 * mapping is done. A copy an async map is filling is never evicted, nor its buffer moved, before the
 * stream has written it, even after an early unmap.
 * Thread-safe. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_buffer_map_async(grey_buffer* buffer, grey_map_access access,
                                                          grey_buffer_mapping* out_mapping, grey_stream* stream);

/* The _async forms of grey_quantize_buffer (without a report: measure afterwards with grey_quant_compare)
 * and grey_dequantize_buffer, on the stream of the buffers' device. A backend without quantization
 * kernels fails at once with GREY_ERROR_UNSUPPORTED; a NaN or infinite input fails at the next
 * synchronize (or query, or event of a record after it) with the synchronous call's message. The host,
 * CUDA, HIP and Level Zero backends only enqueue; a backend whose quantization cannot be enqueued waits
 * for the stream's earlier work and quantizes before the call returns: the order and the error reporting
 * are the same, without overlap. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_quantize_buffer_async(const grey_tensor_desc* desc, const grey_buffer* source,
                                                               uint64_t source_offset, const grey_quant_params* params,
                                                               grey_buffer* destination, uint64_t destination_offset,
                                                               grey_stream* stream);
GREY_API GREY_NODISCARD grey_status grey_dequantize_buffer_async(const grey_tensor_desc* desc, const grey_quant_params* params,
                                                                 const grey_buffer* source, uint64_t source_offset,
                                                                 grey_buffer* destination, uint64_t destination_offset,
                                                                 grey_stream* stream);

/* Allocates `size_bytes` (> 0) of host memory, aligned to at least 64 bytes, that `device` transfers from
 * at full speed: pinned (page-locked) through the device's backend when it can pin, plain host memory
 * otherwise (the host device). Free it with grey_host_free on the same context; memory left is freed when
 * the context is destroyed. Thread-safe. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_host_alloc(grey_context* context, uint32_t device, uint64_t size_bytes,
                                                    void** out_memory);

/* Frees memory from grey_host_alloc of `context`. NULL `memory` does nothing; memory the context did
 * not give is refused with GREY_ERROR_INVALID_ARGUMENT. No pending work may still use it. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_host_free(grey_context* context, void* memory);

/* ---------------------------------------------------------------------------------------------------
 * Audit log (since 0.1)
 *
 * A tamper-evident, append-only log (docs/audit-format.md gives the bytes, docs/security.md what it
 * promises). Each record is authenticated with HMAC-SHA256 under a key that moves forward every epoch
 * (the previous key is erased), chained to the previous record, and a leaf of an RFC 6962 Merkle tree.
 * Checkpoints commit to the tree's root and may be signed with Ed25519 as well.
 *
 * Keys: grey_audit_keygen writes a verifier key (keep it offline: it is the only thing that can verify
 * the whole log) and a writer key (given to grey_audit_log_create; the library replaces it at every epoch,
 * leaving no copy of the previous key in its directory). Key files must be mode 0600 and owned by the
 * caller; anything else is refused with GREY_ERROR_PERMISSION_DENIED. Key bytes never appear in
 * messages.
 * ------------------------------------------------------------------------------------------------- */

typedef struct grey_audit_log grey_audit_log;

typedef enum grey_audit_durability {
    GREY_AUDIT_DURABILITY_EVERY_RECORD = 0, /* write and fdatasync before each append returns */
    GREY_AUDIT_DURABILITY_GROUP = 1,        /* group commit: every group_records records or group_ms */
    GREY_AUDIT_DURABILITY_FORCE32 = 0x7FFFFFFF
} grey_audit_durability;

/* The value's lower-case name ("every_record", "group"), a static string; NULL for a value this version does not know.
 * Since 0.2. */
GREY_API const char* grey_audit_durability_name(grey_audit_durability value);

typedef struct grey_audit_options {
    uint32_t struct_size;
    grey_audit_durability durability;
    const char* log_path;          /* created (mode 0640) when it does not exist */
    const char* key_path;          /* a writer key file; replaced atomically at every epoch change */
    const char* signing_key_path;  /* Ed25519 private key (PEM) for checkpoints; NULL for none */
    uint32_t group_records;        /* group commit: write when this many records wait (default 256) */
    uint32_t group_ms;             /* ...or when the oldest has waited this long (default 10) */
    uint64_t epoch_records;        /* advance the key after this many records; 0: never by count */
    uint64_t epoch_seconds;        /* advance the key after this many seconds; 0: never by time */
} grey_audit_options;

#define GREY_AUDIT_OPTIONS_INIT \
    { (uint32_t)sizeof(grey_audit_options), GREY_AUDIT_DURABILITY_EVERY_RECORD, NULL, NULL, NULL, 256u, 10u, 10000u, 3600u }

typedef struct grey_audit_keygen_options {
    uint32_t struct_size;
    uint32_t ed25519;                 /* non-zero: also write an Ed25519 key pair */
    const char* verifier_key_path;    /* required: the initial (epoch 0) key, for verification */
    const char* writer_key_path;      /* NULL for none: the same key, marked for the writer */
    const char* ed25519_private_path; /* required when ed25519 is set (written 0600) */
    const char* ed25519_public_path;  /* required when ed25519 is set */
} grey_audit_keygen_options;

#define GREY_AUDIT_KEYGEN_OPTIONS_INIT { (uint32_t)sizeof(grey_audit_keygen_options), 0u, NULL, NULL, NULL, NULL }

/* Generates a fresh 256-bit key from the OpenSSL CSPRNG and writes the key files named in `options`
 * (mode 0600). Refuses to overwrite an existing file (GREY_ERROR_INVALID_ARGUMENT). Thread-safe.
 * Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_audit_keygen(const grey_audit_keygen_options* options);

/* Opens (or creates) the log at options->log_path for appending. A torn last record left by a crash is
 * detected, moved to "<log>.torn.<offset>.<time>", truncated away, and the recovery is logged as a
 * "grey.recovery" record. A complete record the writer cannot verify (forged, replayed, damaged), or a
 * damaged record followed by further records, is never truncated: the call fails with
 * GREY_ERROR_CORRUPT naming the record, and changes neither the log nor the key file (since 0.2; 0.1
 * took such a record at its word). On success the caller owns *out_log and releases it with
 * grey_audit_log_destroy. Since 0.2 (0.1 named it grey_audit_open). */
GREY_API GREY_NODISCARD grey_status grey_audit_log_create(const grey_audit_options* options, grey_audit_log** out_log);

/* Appends a record of `type` (1..64 characters of [A-Za-z0-9._-]; "grey." is reserved) with a JSON
 * `payload` (at most 1 MiB, nested at most 64 levels deep, no key repeated in an object: refused with
 * GREY_ERROR_INVALID_ARGUMENT since 0.2). In EVERY_RECORD mode the record is durable when the call
 * returns and *out_sequence (may be NULL) receives its sequence number. In GROUP mode it is queued and
 * *out_sequence receives UINT64_MAX: a background thread seals and writes each group (group_records
 * records, or what has waited group_ms) and reports it durable only after fdatasync returns — through
 * grey_audit_log_info_get's `records`, and grey_audit_flush, which returns once every record queued
 * before it is durable. The call returns without waiting for the disk unless 8 groups (or 64 MiB) are
 * already queued. Thread-safe; records from several threads or processes never interleave. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_audit_append(grey_audit_log* log, const char* type, const char* payload,
                                                      uint64_t* out_sequence);

/* A batch of records to append in one call (since 0.2). Appending records a batch at a time costs the
 * library one lock, one write and (in EVERY_RECORD mode) one fdatasync for the whole batch, and lets it
 * hash the records on several threads. A batch is not tied to a log and may be reused: appending it
 * empties it. Not thread-safe: fill and append one batch from one thread at a time (several batches
 * may be filled at once). */
typedef struct grey_audit_batch grey_audit_batch;

/* Creates an empty batch; the caller owns *out_batch and releases it with grey_audit_batch_destroy.
 * Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_audit_batch_create(grey_audit_batch** out_batch);

/* Adds a record of `type` with a JSON `payload` to the batch, checked as grey_audit_append checks them
 * (a "grey." type is refused too). A refused record is not added, and the message names it by its
 * index in the batch ("entry 3: payload is not valid JSON (at byte 12)"); the batch keeps the records
 * added before, so the caller decides whether to append them without it or to drop the batch. A batch
 * holds at most 64 MiB of records (each takes its type, its payload and 100 bytes): the record that
 * would pass that is refused the same way. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_audit_batch_add(grey_audit_batch* batch, const char* type, const char* payload);

/* Appends every record of `batch`, in order, and empties it. All or nothing: the records take
 * consecutive sequence numbers (no other thread's or process's record comes between them) and are
 * sealed with one key epoch (when the batch would outlast the current epoch's epoch_records, the key
 * advances before it, so a batch never straddles two epochs), so they reach the file in one write, and
 * a write that fails leaves none of them. A batch of more records than the log's epoch_records is
 * refused (GREY_ERROR_INVALID_ARGUMENT) and left as it was, as it is on any failure. In EVERY_RECORD
 * mode the records are durable when the call returns, after one fdatasync, and *out_first_sequence (may
 * be NULL) receives the first one's sequence number. In GROUP mode they are queued together, as
 * grey_audit_append queues one record, and *out_first_sequence receives UINT64_MAX; an I/O error of
 * their group commit drops all of them and is reported by the next call. An empty batch appends
 * nothing and gives UINT64_MAX. Thread-safe with respect to the log. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_audit_append_batch(grey_audit_log* log, grey_audit_batch* batch,
                                                            uint64_t* out_first_sequence);

/* NULL-safe. Since 0.2. */
GREY_API void grey_audit_batch_destroy(grey_audit_batch* batch);

/* Writes and syncs every queued record; reports an error a background group commit met. If a
 * background fdatasync fails, what the file holds is unknown: every later call on this log fails with
 * GREY_ERROR_IO, and the caller closes it and opens it again (which checks and recovers the file).
 * Thread-safe. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_audit_flush(grey_audit_log* log);

/* Flushes, then writes a signed checkpoint of the whole log to `out_path` (atomically, mode 0644).
 * Keep checkpoints off this machine: they are what makes truncation and rewriting detectable.
 * Thread-safe. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_audit_checkpoint(grey_audit_log* log, const char* out_path);

typedef struct grey_audit_log_info {
    uint32_t struct_size;
    uint32_t epoch;            /* the writer's current key epoch */
    uint64_t records;          /* records in the file, durable (synced) */
    uint64_t pending;          /* records queued for group commit and not yet durable */
    uint64_t recovered_bytes;  /* torn-tail bytes removed when the log was opened */
    uint8_t log_id[16];
    uint8_t head_hash[32];     /* leaf hash of the last record */
} grey_audit_log_info;

/* Fills `out_info` (set struct_size first). Thread-safe. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_audit_log_info_get(grey_audit_log* log, grey_audit_log_info* out_info);

/* Flushes what is queued (errors are lost: call grey_audit_flush first to see them) and closes the log.
 * NULL-safe. Must not race with other calls on the same log. Since 0.2 (0.1 named it grey_audit_close). */
GREY_API void grey_audit_log_destroy(grey_audit_log* log);

/* Why a log failed verification. */
typedef enum grey_audit_cause {
    GREY_AUDIT_INTACT = 0,       /* every record and checkpoint verified */
    GREY_AUDIT_MODIFIED = 1,     /* a record's (or the header's, or a checkpoint's) bytes were changed */
    GREY_AUDIT_DELETED = 2,      /* records are missing from the middle */
    GREY_AUDIT_REORDERED = 3,    /* records are out of order */
    GREY_AUDIT_INSERTED = 4,     /* a record was copied in, or taken from another log under the same key */
    GREY_AUDIT_TRUNCATED = 5,    /* a checkpoint covers more records than the log holds */
    GREY_AUDIT_RESEALED = 6,     /* a record was re-sealed with a later epoch's key */
    GREY_AUDIT_FOREIGN_LOG = 7,  /* the log (or a checkpoint) was never sealed with this key */
    GREY_AUDIT_FORKED = 8,       /* checkpoints disagree with each other or with the log's history */
    GREY_AUDIT_MALFORMED = 9,    /* bytes that are not a record (a torn tail, garbage, a bad checkpoint) */
    GREY_AUDIT_CAUSE_FORCE32 = 0x7FFFFFFF
} grey_audit_cause;

/* "intact", "modified", ...; NULL for an unknown value. Since 0.1. */
GREY_API const char* grey_audit_cause_name(grey_audit_cause cause);

#define GREY_AUDIT_NO_RECORD UINT64_MAX
#define GREY_AUDIT_NO_CHECKPOINT UINT32_MAX

typedef struct grey_audit_verify_options {
    uint32_t struct_size;
    uint32_t checkpoint_count;
    const char* log_path;
    const char* key_path;                 /* the verifier key (or a writer key still at epoch 0) */
    const char* const* checkpoint_paths;  /* checkpoint_count files; may be NULL when the count is 0 */
    const char* public_key_path;          /* Ed25519 public key: every checkpoint must carry a valid
                                             signature; NULL to check HMACs only */
    uint32_t threads;                     /* threads that hash the log: 0 (the default) for one per
                                             core, else at most 256; the report is the same whatever
                                             their number (since 0.2) */
} grey_audit_verify_options;

#define GREY_AUDIT_VERIFY_OPTIONS_INIT { (uint32_t)sizeof(grey_audit_verify_options), 0u, NULL, NULL, NULL, NULL, 0u }

typedef struct grey_audit_report {
    uint32_t struct_size;
    grey_audit_cause cause;
    uint64_t records;            /* records that verified, in order, before the first bad one */
    uint64_t first_bad_record;   /* index of the first bad record, or GREY_AUDIT_NO_RECORD */
    uint64_t first_bad_offset;   /* its byte offset in the file (0 when there is none) */
    uint32_t bad_checkpoint;     /* index into checkpoint_paths, or GREY_AUDIT_NO_CHECKPOINT */
    uint32_t last_epoch;         /* key epoch of the last verified record */
    uint8_t log_id[16];
    uint8_t head_hash[32];       /* leaf hash of the last verified record (of the header if none) */
    uint8_t root_hash[32];       /* Merkle root over the verified records */
    char detail[GREY_REASON_MAX]; /* what was found, in words */
} grey_audit_report;

/* Verifies the whole log, and the checkpoints against it. Returns GREY_OK whenever verification could
 * run — the verdict is out_report->cause — and an error only when it could not (a missing file, a bad
 * key file). Reads only. Run it on a log no writer is appending to: a record being written at that
 * moment shows as a malformed tail. A log of more than 1024 records is hashed on up to
 * options->threads threads (all the machine's cores by default), which the call starts and joins
 * before it returns. Thread-safe. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_audit_verify(const grey_audit_verify_options* options,
                                                      grey_audit_report* out_report);

/* The records from index `from` on, at most `max_records` of them (0: all), as a JSON array of
 * {"sequence","time_ns","epoch","type","payload","hash"} objects, through the buffer protocol of
 * grey_config_get. A payload that grey_audit_append would refuse (malformed, nested deeper than 64
 * levels, a repeated key) is given as a JSON string of its text. Reads structure only: it needs no key
 * and proves nothing (use grey_audit_verify). Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_audit_records_json(const char* log_path, uint64_t from, uint64_t max_records,
                                                            char* buffer, size_t buffer_size, size_t* out_length);

/* An RFC 6962 inclusion proof of record `index` in the tree of the first `tree_size` records, as text
 * (docs/audit-format.md), through the buffer protocol. Needs no key: a proof is checked against a
 * checkpoint. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_audit_prove_inclusion(const char* log_path, uint64_t index, uint64_t tree_size,
                                                               char* buffer, size_t buffer_size, size_t* out_length);

/* An RFC 6962 consistency proof between the trees of the first `old_size` and `new_size` records, as
 * text, through the buffer protocol. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_audit_prove_consistency(const char* log_path, uint64_t old_size, uint64_t new_size,
                                                                 char* buffer, size_t buffer_size, size_t* out_length);

/* Checks a proof file against checkpoint files: an inclusion proof against `checkpoint_path`; a
 * consistency proof between `old_checkpoint_path` and `checkpoint_path`. With `public_key_path` the
 * checkpoints' Ed25519 signatures are checked too (this needs no secret); a version 1 checkpoint,
 * whose signature does not cover its hmac line, is then refused (since 0.2). GREY_OK when the proof holds,
 * GREY_ERROR_CORRUPT (with the reason) when it does not. Thread-safe. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_audit_check_proof(const char* proof_path, const char* checkpoint_path,
                                                           const char* old_checkpoint_path, const char* public_key_path);

/* What a checkpoint file commits to, read without any key (structure only: the strict grammar of
 * docs/audit-format.md, but neither its HMAC nor its signature is checked; grey_audit_verify and
 * grey_audit_check_proof do that). */
typedef struct grey_audit_checkpoint_info {
    uint32_t struct_size;
    uint32_t epoch;            /* key epoch of the checkpoint's HMAC */
    uint64_t size;             /* records the tree covers */
    uint64_t time_ns;          /* when it was written (Unix time, ns) */
    uint8_t log_id[16];
    uint8_t root_hash[32];     /* Merkle root of the first `size` records */
    uint32_t ed25519_signed;   /* 1 when it carries an Ed25519 signature (unchecked here) */
} grey_audit_checkpoint_info;

/* Parses the checkpoint file at `checkpoint_path` into `out_info` (set struct_size first).
 * GREY_ERROR_INVALID_ARGUMENT with the reason when the file is not a canonical checkpoint. Lets a
 * caller build a proof for the tree size a checkpoint names (grey_audit_prove_inclusion). Thread-safe.
 * Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_audit_checkpoint_read(const char* checkpoint_path,
                                                               grey_audit_checkpoint_info* out_info);

/* SHA-256 of a file's contents. Thread-safe. Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_audit_sha256_file(const char* path, uint8_t out_digest[32]);

/* Proof artifacts: JSON documents that record how a figure was produced, bound to the audit log. */

/* Writes `artifact_json` (a JSON object, stored byte for byte) to "<directory>/<id>.json", creating the
 * directory if needed, appends a "grey.proof" record holding its SHA-256 and syncs the log. The id (16
 * hex digits, the start of the SHA-256) is returned through the buffer protocol. Thread-safe.
 * Since 0.1. */
GREY_API GREY_NODISCARD grey_status grey_proof_write(grey_audit_log* log, const char* directory,
                                                     const char* artifact_json, char* id_buffer,
                                                     size_t id_buffer_size, size_t* out_id_length);

typedef struct grey_proof_report {
    uint32_t struct_size;
    uint32_t verified;           /* 1: the log is intact and holds this artifact's exact hash */
    uint64_t record;             /* the grey.proof record, or GREY_AUDIT_NO_RECORD */
    uint8_t sha256[32];          /* of the artifact file as it is now */
} grey_proof_report;

/* Verifies the log with the verifier key, hashes the artifact file and looks for a grey.proof record
 * with that hash. GREY_OK whenever the check could run (the verdict is out_report->verified; when the
 * log is intact but no record matches, the artifact was changed or never logged). `out_log`, when not
 * NULL, receives the log's verification (both output structs: set their struct_size first); when the
 * log is not intact it says why. Both are left untouched on failure. Since 0.1; out_log since 0.2 (it
 * was a member of grey_proof_report before, which kept grey_audit_report from growing). */
GREY_API GREY_NODISCARD grey_status grey_proof_verify(const char* log_path, const char* key_path,
                                                      const char* artifact_path, grey_proof_report* out_report,
                                                      grey_audit_report* out_log);

/* ---------------------------------------------------------------------------------------------------
 * Thermal governor and fair scheduler (since 0.2)
 *
 * A grey_governor watches the temperature of every device of a context and decides how much device
 * time the work that goes through it may take; tenants (the parts of a program sharing the devices)
 * ask it before they start work and tell it when the work is done. docs/govern.md describes the
 * controller, the scheduler's guarantees and how to tune them.
 *
 * The governor acts only by pacing admissions and by suggesting smaller batches (grey_admission's
 * batch_scale); it never changes clocks, power limits, fan settings or any other device setting.
 *
 * Configuration (read when the governor is created and by grey_governor_configure): thermal.enabled,
 * thermal.target_temp_c, thermal.max_temp_c, thermal.throttle_strategy, scheduling.fairness_enabled,
 * scheduling.priority_levels, scheduling.preemption_allowed.
 *
 * Costs are estimated device time in nanoseconds: the scheduler shares device time between tenants in
 * proportion to their weights, and the pacer holds admitted device time to the controller's duty.
 * Priority level 0 is the highest. A request at level p > 0 that has waited p * aging_ns goes ahead of
 * every request not yet that late (the starvation bound), except while the device is at or above
 * thermal.max_temp_c (only level 0 is admitted then) or an emergency stop is in force.
 *
 * Threads: every function here may be called from any thread. A tenant's calls may run concurrently,
 * except grey_tenant_destroy, which must not race with any other call on that tenant. Destroy tenants
 * before their governor and the governor before its context.
 * ------------------------------------------------------------------------------------------------- */

typedef struct grey_governor grey_governor;
typedef struct grey_tenant grey_tenant;

/* An input struct. A member left 0 takes the default named beside it. Since 0.2. */
typedef struct grey_governor_options {
    uint32_t struct_size;
    /* Period of the governor's sampling thread, ms. 0: no thread; the host calls grey_governor_step
     * (the default, GREY_GOVERNOR_OPTIONS_INIT, is 100). */
    uint32_t sample_period_ms;
    uint64_t burst_ns;      /* device time admitted ahead of the pacing rate; 0: 20 ms */
    uint64_t aging_ns;      /* a level-p request is overdue after p * aging_ns; 0: 2 s */
    double kp;              /* proportional gain, duty per kelvin; 0: 0.03 */
    double ti_s;            /* integral time, seconds; 0: 2 */
    double horizon_s;       /* proactive: the error is taken this far ahead on the slope; 0: 0.5 */
    double hysteresis_c;    /* kelvin below target (pacing) and max (hot) before releasing; 0: 1 */
    double min_duty;        /* the least duty pacing goes down to, (0, 1]; 0: 0.05 */
    double unknown_duty;    /* the duty ceiling once the temperature has been unknown 2 s, (0, 1]; 0: 0.5 */
    /* The power-limit request path, off by default. 0: the governor never touches a power limit. Any
     * other value is an explicit opt-in: grey_governor_create asks every device to hold this limit
     * (grey_device_power_limit_set; devices whose backend cannot hold one, such as the host CPU, are
     * left alone; creation fails, restoring what it had set, if a device refuses or none can hold one),
     * and the limits found are restored by grey_governor_emergency_stop and grey_governor_destroy
     * (grey_governor_resume does not set them again). The controller itself never changes it. */
    uint64_t power_limit_mw;
    /* While the duty is below 1, an admission's batch_scale suggests a piece of at most this much device
     * time (of the cost_ns asked): the same duty in short, even pieces heats the device in small steps,
     * where long bursts swing its temperature between them. 0: 2 ms. Since 0.2. */
    uint64_t slice_ns;
} grey_governor_options;

#define GREY_GOVERNOR_OPTIONS_INIT \
    { (uint32_t)sizeof(grey_governor_options), 100u, 0u, 0u, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0u, 0u }

/* What the governor is doing on a device. */
typedef enum grey_govern_mode {
    GREY_GOVERN_OFF = 0,        /* thermal.enabled is false: admissions are not paced for heat */
    GREY_GOVERN_NO_SENSOR = 1,  /* a host CPU that reports no temperature: not paced for heat */
    GREY_GOVERN_COOL = 2,       /* below target: full duty */
    GREY_GOVERN_PACING = 3,     /* the controller holds the duty (below 1, or on its way back to 1) */
    GREY_GOVERN_HOT = 4,        /* at or above thermal.max_temp_c: only priority level 0 is admitted */
    GREY_GOVERN_UNKNOWN = 5,    /* the temperature is missing, stale or implausible: never taken as cool */
    GREY_GOVERN_STOPPED = 6,    /* an emergency stop is in force: nothing is admitted */
    GREY_GOVERN_MODE_FORCE32 = 0x7FFFFFFF
} grey_govern_mode;

/* "off", "no_sensor", "cool", "pacing", "hot", "unknown", "stopped"; NULL for an unknown value.
 * Since 0.2. */
GREY_API const char* grey_govern_mode_name(grey_govern_mode mode);

/* Creates a governor over every device of `context` (options may be NULL for the defaults) and, unless
 * options->sample_period_ms is 0, starts its sampling thread. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_governor_create(grey_context* context, const grey_governor_options* options,
                                                         grey_governor** out_governor);

/* Stops the sampling thread and frees the governor. Tenants not yet destroyed are freed with it (their
 * handles become invalid). NULL-safe. Since 0.2. */
GREY_API void grey_governor_destroy(grey_governor* governor);

/* Re-reads the thermal.* and scheduling.* keys from `config` (a reload): new targets, strategy, levels,
 * fairness and preemption apply from the next step; tenants, queues and controller state are kept.
 * Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_governor_configure(grey_governor* governor, const grey_config* config);

/* Samples every device and runs one control step now. The sampling thread calls this every period;
 * a governor created with sample_period_ms 0 relies on the host to call it. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_governor_step(grey_governor* governor);

/* Emergency stop: from this call on no work is admitted on any device, waiting admissions return
 * GREY_ERROR_STOPPED, and (with scheduling.preemption_allowed) running work is asked to yield.
 * `reason` (may be NULL) is kept for grey_governor_state_get. Work already running is not interrupted.
 * grey_governor_resume clears it. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_governor_emergency_stop(grey_governor* governor, const char* reason);
GREY_API GREY_NODISCARD grey_status grey_governor_resume(grey_governor* governor);

/* The governor as a whole. An output struct: set struct_size first. Since 0.2. */
typedef struct grey_governor_state {
    uint32_t struct_size;
    uint32_t stopped;            /* 1 while an emergency stop is in force */
    uint32_t device_count;
    uint32_t tenant_count;
    uint64_t steps;              /* control steps run so far */
    uint64_t stop_count;         /* emergency stops so far */
    double target_temp_c;        /* the configuration in force */
    double max_temp_c;
    uint32_t proactive;          /* 1: proactive, 0: reactive */
    uint32_t priority_levels;
    uint32_t thermal_enabled;
    uint32_t fairness_enabled;
    uint32_t preemption_allowed;
    uint32_t reserved0;
    char stop_reason[GREY_REASON_MAX];
} grey_governor_state;

GREY_API GREY_NODISCARD grey_status grey_governor_state_get(grey_governor* governor, grey_governor_state* out_state);

/* One device under the governor. An output struct: set struct_size first. Since 0.2. */
typedef struct grey_govern_device_state {
    uint32_t struct_size;
    grey_govern_mode mode;
    uint32_t temperature_known;  /* 0: the temperature fields below are 0 and mean nothing */
    uint32_t max_level;          /* the lowest priority level admitted now; UINT32_MAX: every level */
    double temperature_c;        /* the latest usable reading */
    double slope_c_per_s;        /* least-squares slope over the last 5 s */
    double predicted_c;          /* temperature + slope * horizon */
    double duty;                 /* the fraction of device time the pacer admits, (0, 1] */
    double batch_scale;          /* the batch size the duty suggests, as a fraction of a full batch (an
                                  * admission's may be smaller: grey_governor_options.slice_ns) */
    uint64_t waiting;            /* requests queued now */
    uint64_t running;            /* tickets admitted and not yet released */
    uint64_t admitted_count;
    uint64_t admitted_cost_ns;
    uint64_t paced_ns;           /* time spent with a duty below 1 */
    uint64_t hot_ns;             /* time spent admitting level 0 only */
    uint64_t unknown_ns;         /* time spent with the temperature unknown */
    uint64_t stopped_ns;         /* time spent under an emergency stop */
    uint64_t mode_changes;
    uint64_t yield_requests;     /* running tickets asked to yield (preemption) */
    uint64_t power_limit_held_mw;    /* the limit the governor holds now (power_limit_mw); 0: none */
    uint64_t power_limit_restore_mw; /* the limit it found and will restore; 0 while it holds none */
} grey_govern_device_state;

GREY_API GREY_NODISCARD grey_status grey_governor_device_state_get(grey_governor* governor, uint32_t device,
                                                                   grey_govern_device_state* out_state);

/* An input struct. Since 0.2. */
typedef struct grey_tenant_options {
    uint32_t struct_size;
    uint32_t priority;   /* 0 is the highest level; values past scheduling.priority_levels - 1 count as the lowest */
    double weight;       /* share of device time against tenants of the same level, > 0 and finite */
    const char* name;    /* 1..63 bytes, unique within the governor; copied */
} grey_tenant_options;

#define GREY_TENANT_OPTIONS_INIT { (uint32_t)sizeof(grey_tenant_options), 0u, 1.0, NULL }

/* Creates a tenant of `governor`. A name already in use is GREY_ERROR_INVALID_ARGUMENT. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_tenant_create(grey_governor* governor, const grey_tenant_options* options,
                                                       grey_tenant** out_tenant);

/* Cancels the tenant's queued requests, forgets its running tickets and frees it. NULL-safe. Since 0.2. */
GREY_API void grey_tenant_destroy(grey_tenant* tenant);

/* Changes the tenant's weight (> 0, finite) for requests made from now on. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_tenant_set_weight(grey_tenant* tenant, double weight);

/* What a tenant has been admitted and has waited. An output struct: set struct_size first. Since 0.2. */
typedef struct grey_tenant_stats {
    uint32_t struct_size;
    uint32_t priority;
    double weight;
    uint64_t admitted_count;
    uint64_t admitted_cost_ns;   /* estimated cost of everything admitted */
    uint64_t actual_cost_ns;     /* as released: the actual time given, else the estimate */
    uint64_t waited_total_ns;    /* summed over admissions */
    uint64_t wait_max_ns;
    uint64_t timeouts;           /* blocking admissions that timed out */
    uint64_t refused_stopped;    /* requests refused by an emergency stop */
    uint64_t yield_requests;
    uint64_t waiting;            /* requests queued now */
    uint64_t running;            /* admitted, not yet released */
    char name[GREY_NAME_MAX];
} grey_tenant_stats;

GREY_API GREY_NODISCARD grey_status grey_tenant_stats_get(grey_tenant* tenant, grey_tenant_stats* out_stats);

/* The governor's tenants, in creation order, for status pages; the `index`-th one's statistics (named
 * grey_governor_tenant_stats_at in 0.2's development). Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_governor_tenant_count(grey_governor* governor, uint32_t* out_count);
GREY_API GREY_NODISCARD grey_status grey_governor_tenant_stats_get(grey_governor* governor, uint32_t index,
                                                                  grey_tenant_stats* out_stats);

/* An admission. An output struct: set struct_size first. Since 0.2. */
typedef struct grey_admission {
    uint32_t struct_size;
    uint32_t device;
    uint64_t ticket;       /* pass to grey_govern_release when the work is done */
    uint64_t waited_ns;    /* from the request to the admission */
    double duty;           /* the device's duty at admission */
    double batch_scale;    /* suggested fraction of the host's full batch, (0, 1]: the duty, and while it is
                            * below 1 at most grey_governor_options.slice_ns / cost_ns */
} grey_admission;

/* Pass as timeout_ns to wait without limit. */
#define GREY_WAIT_FOREVER UINT64_MAX

/* Asks to start work of estimated device time `cost_ns` on `device` and blocks until it may start
 * (GREY_OK: *out_admission is filled; release the ticket when the work is done), until timeout_ns has
 * passed (GREY_ERROR_TIMEOUT; nothing is held; 0 never blocks: a try), or an emergency stop refuses it
 * (GREY_ERROR_STOPPED). Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_govern_admit(grey_tenant* tenant, uint32_t device, uint64_t cost_ns,
                                                      uint64_t timeout_ns, grey_admission* out_admission);

/* The asynchronous form: queues the request and returns its ticket at once. grey_govern_wait learns
 * when it is admitted; grey_govern_cancel withdraws it. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_govern_submit(grey_tenant* tenant, uint32_t device, uint64_t cost_ns,
                                                       uint64_t* out_ticket);

/* Waits up to timeout_ns (0: a poll) for a submitted ticket. GREY_OK once admitted (again on later
 * calls); GREY_ERROR_TIMEOUT while it is still queued (it stays queued); GREY_ERROR_STOPPED when an
 * emergency stop refused it (the ticket is then gone). One thread at a time may wait on a ticket.
 * Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_govern_wait(grey_tenant* tenant, uint64_t ticket, uint64_t timeout_ns,
                                                     grey_admission* out_admission);

/* Withdraws a ticket that has not been admitted. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_govern_cancel(grey_tenant* tenant, uint64_t ticket);

/* Ends admitted work. `actual_ns`, when non-zero, is the device time it really took; the pacer is
 * corrected by the estimate's error. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_govern_release(grey_tenant* tenant, uint64_t ticket, uint64_t actual_ns);

/* *out_yield = 1 when the running work of `ticket` should stop at its next safe point and release:
 * higher-priority work is waiting, the device is hot, or an emergency stop is in force. Always 0
 * unless scheduling.preemption_allowed is true: libgrey never interrupts work; the host decides.
 * Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_govern_should_yield(grey_tenant* tenant, uint64_t ticket, uint32_t* out_yield);

/* ---------------------------------------------------------------------------------------------------
 * KV cache (since 0.2)
 *
 * A grey_kv_cache holds the keys and values of attention layers for many sequences in paged blocks of
 * `tokens_per_block` tokens (vLLM's layout: each sequence has a block table; only its last block has
 * unused room). The newest `window_tokens` tokens of a sequence stay in bf16 or fp16; a full block that
 * has left the window is quantized (KIVI's scheme: K per channel over the block's tokens, V per token in
 * groups along the head dimension), and attention reads the quantized blocks and the window directly.
 * Full blocks are shared between sequences whose prompts begin alike: a block is named by a chained
 * hash of (its parent's hash, its token ids, the sequence's tenant salt), checked against the stored
 * tokens, so sequences of different salts never share. docs/kv.md describes layout, scheme and limits.
 *
 * A cache lives on one device: the host device (the reference: attention in float64) or a CUDA GPU
 * (kernels; head_dim a multiple of 16 up to 256); on a device whose backend has no KV operations
 * grey_kv_cache_create fails with GREY_ERROR_UNSUPPORTED. K and V and queries are host memory, copied to
 * the device by each call. Every call on one cache is serialised by the cache (thread-safe); a call
 * that fails leaves the cache and its sequences as they were.
 * ------------------------------------------------------------------------------------------------- */

typedef struct grey_kv_cache grey_kv_cache;

/* The form of the blocks that have left the recent window. Since 0.2. */
typedef enum grey_kv_format {
    GREY_KV_INT8 = 0,      /* 8-bit asymmetric codes, fp32 scale and minimum per group */
    GREY_KV_INT4 = 1,      /* 4-bit, as INT8 */
    GREY_KV_INT2 = 2,      /* 2-bit, as INT8 */
    GREY_KV_FP8_E4M3 = 3,  /* fp8 e4m3 codes, fp32 scale per group (symmetric) */
    GREY_KV_FORMAT_FORCE32 = 0x7FFFFFFF
} grey_kv_format;

/* "int8", "int4", "int2", "fp8-e4m3"; NULL for an unknown value. Static storage. Since 0.2. */
GREY_API const char* grey_kv_format_name(grey_kv_format format);

/* Flags of grey_kv_cache_config.flags. */
/* GREY_KV_HADAMARD_K: every K vector is multiplied by the normalized Walsh-Hadamard matrix
 * (H / sqrt(head_dim), orthogonal and its own inverse) before it is stored and quantized, which spreads
 * outlier channels over the whole vector (QuaRot); attention rotates the query the same way, so q.k is
 * unchanged, and grey_kv_gather returns K unrotated. V is not rotated. Needs head_dim a power of two
 * (others fail with GREY_ERROR_INVALID_ARGUMENT). Costs no memory. Since 0.2. */
#define GREY_KV_HADAMARD_K 0x1u

/* An input struct. Since 0.2. */
typedef struct grey_kv_cache_config {
    uint32_t struct_size;
    uint32_t layers;            /* >= 1 */
    uint32_t kv_heads;          /* >= 1 */
    uint32_t head_dim;          /* 1..1024 */
    uint32_t tokens_per_block;  /* 1..1024; 0 means 16 */
    uint32_t window_tokens;     /* tokens kept in window_dtype; 0 means 128. GREY_KV_WINDOW_ALL keeps all */
    grey_dtype window_dtype;    /* GREY_DTYPE_BF16 or GREY_DTYPE_F16 */
    grey_kv_format format;      /* the form of blocks older than the window */
    uint32_t group_size;        /* V's groups along head_dim: 32, 64 or 128 (0 means 32; a head_dim
                                   smaller than the group is one group) */
    uint32_t flags;             /* GREY_KV_* flags; 0 */
    uint64_t capacity_bytes;    /* the most bytes the blocks may take; at least one block in window form */
} grey_kv_cache_config;

/* window_tokens that keeps every token in window_dtype (no quantization). */
#define GREY_KV_WINDOW_ALL 0xFFFFFFFFu

#define GREY_KV_CACHE_CONFIG_INIT                                                                 \
    { (uint32_t)sizeof(grey_kv_cache_config), 0u, 0u, 0u, 16u, 128u, GREY_DTYPE_BF16, GREY_KV_INT4, \
      32u, 0u, 0u }

/* What a cache holds. An output struct. Since 0.2. */
typedef struct grey_kv_stats {
    uint32_t struct_size;
    uint32_t sequences;             /* live sequences */
    uint64_t tokens;                /* the sum of the live sequences' lengths */
    uint64_t blocks_used;           /* blocks held by sequences or kept as cached prefixes */
    uint64_t blocks_cached;         /* of those, blocks no sequence holds (evicted first, LRU) */
    uint64_t blocks_compressed;     /* of blocks_used, those in the quantized form */
    uint64_t blocks_free;           /* whole window-form blocks that still fit in capacity_bytes */
    uint64_t bytes_used;            /* the bytes of every block, scales included */
    uint64_t capacity_bytes;
    uint64_t prefix_hits;           /* full blocks an append found already cached and shared */
    uint64_t evictions;             /* cached blocks evicted to make room */
    double bytes_per_token;         /* bytes_used / the tokens stored once (shared blocks count once) */
    double compression_ratio;       /* the window-form bytes of the stored tokens / bytes_used */
} grey_kv_stats;

/* Creates a cache on `device` of `context`. `config` is copied. A config that does not validate fails
 * with GREY_ERROR_INVALID_ARGUMENT naming the field; a format, flag or shape the device's kernels do not
 * implement with GREY_ERROR_UNSUPPORTED. The cache must be destroyed before its context.
 * Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_kv_cache_create(grey_context* context, uint32_t device,
                                                         const grey_kv_cache_config* config,
                                                         grey_kv_cache** out_cache);

/* Frees the cache, its sequences and blocks. NULL-safe. Must not race with other calls on the cache. */
GREY_API void grey_kv_cache_destroy(grey_kv_cache* cache);

/* Starts an empty sequence of tenant `tenant_salt` (blocks are shared only between sequences of one
 * salt). *out_sequence is its id, never reused within the cache. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_kv_sequence_create(grey_kv_cache* cache, uint64_t tenant_salt,
                                                            uint64_t* out_sequence);

/* A new sequence with the contents and salt of `sequence`, sharing its blocks (copy on write: the
 * partly filled last block is copied when either sequence appends to it). Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_kv_sequence_fork(grey_kv_cache* cache, uint64_t sequence,
                                                          uint64_t* out_sequence);

/* Shortens `sequence` to `tokens` tokens (no more than its length), dropping an open reservation
 * (grey_kv_reserve) first. Blocks past the end are released; a quantized block cut in the middle stays
 * quantized. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_kv_sequence_truncate(grey_kv_cache* cache, uint64_t sequence,
                                                              uint64_t tokens);

/* Ends `sequence`. Its full blocks stay cached for prefix sharing until evicted; an unknown or freed
 * id fails with GREY_ERROR_NOT_FOUND. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_kv_sequence_free(grey_kv_cache* cache, uint64_t sequence);

/* The number of tokens in `sequence`. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_kv_sequence_length(const grey_kv_cache* cache, uint64_t sequence,
                                                            uint64_t* out_tokens);

/* Appends `n_tokens` (>= 1) tokens to `sequence`, for every layer at once: `token_ids` (n_tokens ids,
 * which name the blocks for prefix sharing), `keys` and `values` host arrays of `dtype` (F32, F16 or
 * BF16) laid out [layer][token][kv_head][head_dim], `kv_bytes` the size of each. The same as
 * grey_kv_reserve, then grey_kv_write_layer for every layer. When a block fills and a block of the same
 * (parent, tokens, salt) is cached, the sequence shares that block and the new K/V of those tokens are
 * dropped: identical prefixes are assumed to give identical K/V. Blocks that leave the window are
 * quantized. Not enough room (after evicting unshared cached blocks) fails with
 * GREY_ERROR_OUT_OF_MEMORY and appends nothing; NaN or infinite K/V fail with
 * GREY_ERROR_INVALID_ARGUMENT. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_kv_append(grey_kv_cache* cache, uint64_t sequence, const int32_t* token_ids,
                                                   uint32_t n_tokens, grey_dtype dtype, const void* keys,
                                                   const void* values, uint64_t kv_bytes);

/* grey_kv_append with K and V in device memory, where they are read (nothing of them crosses to the
 * host): `keys` and `values`
 * (kv_bytes each, at keys_offset and values_offset) are buffers of the cache's context on the cache's
 * device holding grey_kv_append's arrays. A framework's tensors go in through a buffer it views without
 * a copy (grey_buffer_map; DLPack in Python). Both must be raw (not deduplicated or compressed:
 * grey_buffer_info_get says), and each offset a multiple of the dtype's size. The K/V of tokens found
 * whole in the prefix cache are not read. A NaN or infinity fails with GREY_ERROR_INVALID_ARGUMENT naming
 * it (keys[i] or values[i], indexed as in the array) and appends nothing; so does a buffer of another
 * context or device, or a range outside its buffer, naming the argument. A device whose backend does not
 * check K/V itself (a plugin without GREY_BACKEND_CAP_KV_STORE_CHECKED; every backend of this release
 * has it) fails with GREY_ERROR_UNSUPPORTED. Synchronous: like every
 * synchronous call it is not ordered with work on the caller's streams (a framework's stream that writes
 * the K/V is synchronized first). Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_kv_append_buffer(grey_kv_cache* cache, uint64_t sequence, const int32_t* token_ids,
                                                          uint32_t n_tokens, grey_dtype dtype, const grey_buffer* keys,
                                                          uint64_t keys_offset, const grey_buffer* values, uint64_t values_offset,
                                                          uint64_t kv_bytes);

/* For a model that computes its layers one after another: reserves `n_tokens` (>= 1) token positions
 * at the end of `sequence`, named by `token_ids`, whose K and V are then written a layer at a time with
 * grey_kv_write_layer, in any order. While layer L of the reserved tokens is written, attention on layer
 * L (grey_kv_attend) sees them, so the token being decoded attends to itself; they join the sequence
 * (grey_kv_sequence_length, prefix naming, quantization) when every layer is written. Whole blocks at
 * the start of the reservation that are already in the prefix cache are shared at once:
 * *out_cached_tokens (may be NULL) receives how many leading tokens they hold, whose K/V are already
 * stored (their part of each write is ignored, so an engine may skip computing them). One reservation
 * per sequence at a time: reserving, appending or forking while one is open fails with
 * GREY_ERROR_INVALID_ARGUMENT; grey_kv_sequence_truncate drops it. Room is taken as grey_kv_append
 * takes it. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_kv_reserve(grey_kv_cache* cache, uint64_t sequence, const int32_t* token_ids,
                                                    uint32_t n_tokens, uint32_t* out_cached_tokens);

/* Writes `layer` of the tokens reserved by grey_kv_reserve: `keys` and `values` host arrays of `dtype`
 * (F32, F16 or BF16) laid out [token][kv_head][head_dim] for every reserved token (cached ones
 * included), `kv_bytes` the size of each. A layer written twice, a size that is not the reservation's,
 * or no reservation fail with GREY_ERROR_INVALID_ARGUMENT; a failed write leaves the layer unwritten.
 * Writing the last unwritten layer commits the tokens. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_kv_write_layer(grey_kv_cache* cache, uint64_t sequence, uint32_t layer,
                                                        grey_dtype dtype, const void* keys, const void* values,
                                                        uint64_t kv_bytes);

/* grey_kv_write_layer with K and V in device memory, taken as grey_kv_append_buffer takes them: a NaN or
 * infinity fails naming it and leaves the layer unwritten. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_kv_write_layer_buffer(grey_kv_cache* cache, uint64_t sequence, uint32_t layer,
                                                               grey_dtype dtype, const grey_buffer* keys, uint64_t keys_offset,
                                                               const grey_buffer* values, uint64_t values_offset,
                                                               uint64_t kv_bytes);

/* An input struct. Since 0.2. */
typedef struct grey_kv_attend_params {
    uint32_t struct_size;
    uint32_t layer;
    uint32_t query_heads;     /* a multiple of the cache's kv_heads (GQA; kv_heads = MQA's 1) */
    uint32_t sliding_window;  /* attend to the last this many tokens only; 0 means all */
    float scale;              /* the softmax scale; 0 means 1/sqrt(head_dim) */
    uint32_t reserved0;       /* must be 0 */
} grey_kv_attend_params;

#define GREY_KV_ATTEND_PARAMS_INIT { (uint32_t)sizeof(grey_kv_attend_params), 0u, 0u, 0u, 0.0f, 0u }

/* Decode attention for a batch: for each of the `batch` sequences (each at least one token long), the
 * query of its next token, `queries` F32 [batch][query_heads][head_dim], attends to every token the
 * sequence holds (or the last sliding_window); query head h reads KV head h / (query_heads / kv_heads).
 * `output` (F32, same shape; `io_bytes` the size of queries and of output) receives softmax(q.K * scale) V
 * over the stored (window or quantized) K/V, accumulated in float64 on the host device and in float32
 * on a GPU. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_kv_attend(grey_kv_cache* cache, const grey_kv_attend_params* params,
                                                   const uint64_t* sequences, uint32_t batch, const float* queries,
                                                   float* output, uint64_t io_bytes);

/* grey_kv_attend with the queries and the output in device memory, where they stay (only the block
 * tables are sent to the device): `queries` (io_bytes at queries_offset, read) and `output` (io_bytes at
 * output_offset, written) are buffers of the cache's context on the cache's device, laid out as
 * grey_kv_attend's arrays. A framework's tensors go in through a buffer it views without a copy
 * (grey_buffer_map; DLPack in Python). `queries` must be raw (not deduplicated or compressed:
 * grey_buffer_info_get says) and `output` writable (not sealed); the two ranges may not overlap, and both
 * offsets are multiples of 4. A buffer of another context or device, a range outside its buffer, or an
 * io_bytes that is not the queries' size fails with GREY_ERROR_INVALID_ARGUMENT naming the argument, and
 * writes nothing. Synchronous: the output is written when it returns; like every synchronous call it is
 * not ordered with work on the caller's streams (a framework's stream that writes the queries is
 * synchronized first). Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_kv_attend_buffer(grey_kv_cache* cache, const grey_kv_attend_params* params,
                                                          const uint64_t* sequences, uint32_t batch,
                                                          const grey_buffer* queries, uint64_t queries_offset,
                                                          grey_buffer* output, uint64_t output_offset, uint64_t io_bytes);

/* grey_kv_attend_buffer queued on `stream` (a stream of the cache's context and device) behind the work
 * already there: it returns once the work is queued, and `output` is written when the stream reaches
 * it, so that attention runs in order with a framework's own work on its stream
 * (grey_stream_wrap_native) without a wait on the host. What each sequence holds is taken at the call:
 * tokens appended later are not attended to. The cache keeps the blocks the work reads as they are
 * until the stream has passed it: a later call that frees or reuses block memory or drops tokens
 * (grey_kv_sequence_truncate, grey_kv_sequence_free, an append that quantizes a block or evicts a cached
 * one, grey_kv_cache_destroy) first waits for the attention queued before it. The queries and the output
 * stay untouched and their buffers alive until then too (synchronize the stream, or an event recorded
 * after the call). Argument errors, checked as grey_kv_attend_buffer checks them plus a NULL stream or
 * one of another context or device, are returned by the call and nothing is queued; a failure of the
 * work is kept by the stream (grey_stream_synchronize). On a backend that cannot queue it (HIP and
 * Level Zero in this release) the call waits for the stream's earlier work and attends before it
 * returns: the order and the results are the same, without the overlap. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_kv_attend_async(grey_kv_cache* cache, const grey_kv_attend_params* params,
                                                         const uint64_t* sequences, uint32_t batch,
                                                         const grey_buffer* queries, uint64_t queries_offset,
                                                         grey_buffer* output, uint64_t output_offset, uint64_t io_bytes,
                                                         grey_stream* stream);

/* Writes the K and V of `layer` of `sequence` as they are stored, dequantized to F32, laid out
 * [token][kv_head][head_dim], into `keys` and `values` (`kv_bytes` each, exactly length * kv_heads *
 * head_dim * 4). Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_kv_gather(grey_kv_cache* cache, uint64_t sequence, uint32_t layer,
                                                   float* keys, float* values, uint64_t kv_bytes);

/* Fills `out_stats` (set struct_size first). Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_kv_cache_stats_get(const grey_kv_cache* cache, grey_kv_stats* out_stats);

/* ---------------------------------------------------------------------------------------------------
 * Planner (since 0.2)
 *
 * From a model file and a machine to a plan: the device of every tensor (what every token reads on the
 * fastest device first; routed experts, then the token embedding, go to host memory first when
 * something must), a quantization format per tensor when the model does not fit otherwise (the whole-
 * model policy above, critical layers kept), the KV cache's size and precision, a batch, a safety
 * margin per device, the governor's thermal thresholds, and the memory and bandwidth predicted per
 * device. The model file's metadata alone is read, never its weights. Deterministic: the same model,
 * machine and workload give the same plan. docs/plan.md describes the algorithm, plan.yaml's schema and
 * the devices file's.
 *
 * A grey_plan is immutable once made: any number of threads may query it at once.
 * ------------------------------------------------------------------------------------------------- */

typedef struct grey_plan grey_plan;

typedef enum grey_workload_kind {
    GREY_WORKLOAD_INFERENCE = 0,      /* a forward pass over whole inputs (an encoder): no KV cache */
    GREY_WORKLOAD_LLM_INFERENCE = 1,  /* autoregressive decoding with a KV cache of `context` tokens */
    GREY_WORKLOAD_TRAINING = 2,       /* weights, gradients, Adam state and activations */
    GREY_WORKLOAD_KIND_FORCE32 = 0x7FFFFFFF
} grey_workload_kind;

/* "inference", "llm-inference", "training"; NULL for an unknown value. Static storage. Since 0.2. */
GREY_API const char* grey_workload_kind_name(grey_workload_kind kind);

/* The kind named `name` (as grey_workload_kind_name spells it); GREY_ERROR_INVALID_ARGUMENT listing the
 * names for any other. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_workload_kind_from_name(const char* name, grey_workload_kind* out_kind);

/* The KV cache's precision a plan may choose (grey_workload.kv_precision). Since 0.2. */
typedef enum grey_kv_precision {
    GREY_KV_PRECISION_AUTO = 0,  /* the planner's ladder (docs/plan.md, "How a plan is made"): f16 first;
                                    with GREY_KV_RUNTIME_LIBGREY, int8 instead where that puts more
                                    weights on the GPUs (llama.cpp's quantized cache is slower to attend
                                    over, so for it f16 wherever f16 fits) */
    GREY_KV_PRECISION_F16 = 1,   /* these four: that precision whatever fits; only the weights vary */
    GREY_KV_PRECISION_INT8 = 2,
    GREY_KV_PRECISION_INT4 = 3,
    GREY_KV_PRECISION_INT2 = 4,
    GREY_KV_PRECISION_FORCE32 = 0x7FFFFFFF
} grey_kv_precision;

/* "auto", "f16", "int8", "int4", "int2"; NULL for an unknown value. Static storage. Since 0.2. */
GREY_API const char* grey_kv_precision_name(grey_kv_precision precision);

/* The precision named `name` (as grey_kv_precision_name spells it); GREY_ERROR_INVALID_ARGUMENT listing
 * the names for any other. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_kv_precision_from_name(const char* name, grey_kv_precision* out_precision);

/* The runtime that will hold the KV cache (grey_workload.kv_runtime): its cache formats set the bytes a
 * planned precision takes. Since 0.2. */
typedef enum grey_kv_runtime {
    GREY_KV_RUNTIME_LIBGREY = 0,    /* libgrey's KV compressor (grey_kv_format): per element f16 2 bytes,
                                       int8 1.25, int4 0.75, int2 0.5 (codes plus an fp32 scale and
                                       minimum per group of 32) */
    GREY_KV_RUNTIME_LLAMA_CPP = 1,  /* llama.cpp's cache types: f16, q8_0 for int8 (34 bytes per 32
                                       elements), q4_0 for int4 (18 per 32); no 2-bit type, so int2 is
                                       never planned. Its cache holds the context padded up to a
                                       multiple of 256 tokens per sequence, as llama.cpp allocates it */
    GREY_KV_RUNTIME_FORCE32 = 0x7FFFFFFF
} grey_kv_runtime;

/* "libgrey", "llama-cpp"; NULL for an unknown value. Static storage. Since 0.2. */
GREY_API const char* grey_kv_runtime_name(grey_kv_runtime runtime);

/* The runtime named `name` (as grey_kv_runtime_name spells it); GREY_ERROR_INVALID_ARGUMENT listing the
 * names for any other. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_kv_runtime_from_name(const char* name, grey_kv_runtime* out_runtime);

/* What a tensor does, from its name (GGUF's and the common safetensors families'). Since 0.2. */
typedef enum grey_tensor_role {
    GREY_TENSOR_ROLE_OTHER = 0,
    GREY_TENSOR_ROLE_EMBEDDING = 1,       /* token, position and type embeddings */
    GREY_TENSOR_ROLE_ATTENTION = 2,       /* Q, K, V and output projections */
    GREY_TENSOR_ROLE_DENSE_FFN = 3,       /* a dense layer's feed-forward network */
    GREY_TENSOR_ROLE_MOE_ROUTER = 4,      /* the gate that picks a token's experts */
    GREY_TENSOR_ROLE_ROUTED_EXPERTS = 5,  /* experts a token uses only when routed to them */
    GREY_TENSOR_ROLE_SHARED_EXPERTS = 6,  /* experts every token uses */
    GREY_TENSOR_ROLE_NORM = 7,
    GREY_TENSOR_ROLE_OUTPUT = 8,          /* the output (language model head) projection */
    GREY_TENSOR_ROLE_FORCE32 = 0x7FFFFFFF
} grey_tensor_role;

/* "other", "embedding", "attention", "dense_ffn", "moe_router", "routed_experts", "shared_experts",
 * "norm", "output"; NULL for an unknown value. Static storage. Since 0.2. */
GREY_API const char* grey_tensor_role_name(grey_tensor_role role);

/* An input struct. Since 0.2. */
typedef struct grey_workload {
    uint32_t struct_size;
    grey_workload_kind kind;  /* GREY_WORKLOAD_LLM_INFERENCE by default */
    uint64_t context;         /* tokens per sequence; 0: the model's trained context, at most 4096 (512
                                 for inference and training) */
    uint32_t batch;           /* sequences at once; 0: the planner recommends the largest power of two
                                 (at most 256) that fits */
    uint32_t tenants;         /* workloads sharing every device equally (each gets 1/tenants of its
                                 usable memory); 0 means 1 */
    grey_kv_precision kv_precision;  /* llm-inference only (any other kind: AUTO); GREY_KV_PRECISION_AUTO
                                        by default. A caller whose struct_size ends before this field
                                        gets the ladder without its int8 rule (f16 first, quantized KV
                                        only when nothing fits otherwise). Since 0.2 */
    grey_kv_runtime kv_runtime;      /* whose cache formats size the KV cache; llm-inference only (any
                                        other kind: LIBGREY); GREY_KV_RUNTIME_LIBGREY by default. Since
                                        0.2 (the field was reserved, always 0, before: such callers get
                                        libgrey's formats) */
} grey_workload;

#define GREY_WORKLOAD_INIT \
    { (uint32_t)sizeof(grey_workload), GREY_WORKLOAD_LLM_INFERENCE, 0u, 0u, 1u, GREY_KV_PRECISION_AUTO, GREY_KV_RUNTIME_LIBGREY }

/* Plans the model at `model_path` (GGUF or safetensors; a safetensors file's config.json is read from
 * its folder when there) for `workload` on a machine: the one described by `devices_path` (a devices
 * file, docs/plan.md) when not NULL, else the devices `context` detects (then `context` is required).
 * A model that does not fit even at the last step (q4_0 weights, int2 KV, or int4 KV for
 * GREY_KV_RUNTIME_LLAMA_CPP; with a fixed workload->kv_precision, q4_0 weights and that precision) fails
 * with GREY_ERROR_OUT_OF_MEMORY saying how much is missing on which device ("needs 11.2 GiB more on
 * CUDA0 even with q4_0 weights and int2 KV ..."); an unreadable devices file with GREY_ERROR_CONFIG
 * naming file and line; a kv_precision that is not a grey_kv_precision, or other than AUTO for a
 * workload without a KV cache, a kv_runtime that is not a grey_kv_runtime, or other than LIBGREY for
 * a workload without a KV cache, or a kv_precision the kv_runtime has no cache type for (int2 with
 * llama.cpp), with GREY_ERROR_INVALID_ARGUMENT. `*out_plan` receives the plan; destroy it with
 * grey_plan_destroy. Thread-safe. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_plan_create(grey_context* context, const char* model_path,
                                                     const grey_workload* workload, const char* devices_path,
                                                     grey_plan** out_plan);

/* Reads a plan written by grey_plan_to_yaml. Every problem (syntax, schema version, a missing, unknown
 * or mistyped key, a device or figure that does not add up) fails with GREY_ERROR_CONFIG, "FILE:LINE:
 * KEY: problem" for each. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_plan_load(const char* path, grey_plan** out_plan);

/* NULL-safe. Since 0.2. */
GREY_API void grey_plan_destroy(grey_plan* plan);

/* The plan as plan.yaml (schema grey-plan/1, docs/plan.md), or as JSON of the same structure, through
 * the buffer protocol of grey_config_get. grey_plan_load of the YAML gives a plan whose YAML is the
 * same text. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_plan_to_yaml(const grey_plan* plan, char* buffer, size_t buffer_size,
                                                      size_t* out_length);
GREY_API GREY_NODISCARD grey_status grey_plan_to_json(const grey_plan* plan, char* buffer, size_t buffer_size,
                                                      size_t* out_length);

/* The llama.cpp arguments that run the plan, one per line: -ngl, -ot (entries "REGEX=BUFFER" split on
 * commas; each tensor takes the buffer of the first entry whose ECMAScript regex std::regex_search
 * finds in its name), -c and the KV cache types (-ctk, -ctv, with -fa on when V is quantized). The
 * arguments are checked with grey_plan_check_llama_cpp_overrides before they are returned. A plan
 * llama.cpp cannot run as planned (int2 KV, weights to quantize first) fails with GREY_ERROR_UNSUPPORTED
 * saying why. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_plan_llama_cpp_args(const grey_plan* plan, char* buffer, size_t buffer_size,
                                                             size_t* out_length);

/* Checks an -ot value (`overrides`, as given to llama.cpp) and -ngl `gpu_layers` against the plan with
 * llama.cpp's rules: every tensor of the plan must land on the device the plan gives it, either by the
 * first entry that matches it or, when none does, by -ngl. GREY_ERROR_INVALID_ARGUMENT naming the first
 * tensor that would land elsewhere and the entry that sends it there (a pattern that catches a wrong
 * tensor), an entry that does not parse or compile, or a buffer the plan has no device for. Since 0.2. */
GREY_API GREY_NODISCARD grey_status grey_plan_check_llama_cpp_overrides(const grey_plan* plan, const char* overrides,
                                                                        uint32_t gpu_layers);

/* A plan's totals. An output struct. Since 0.2. */
typedef struct grey_plan_summary {
    uint32_t struct_size;
    grey_workload_kind kind;
    uint64_t context;
    uint32_t batch;                 /* as asked, or the recommendation */
    uint32_t batch_recommended;     /* non-zero when `batch` is the planner's */
    uint32_t tenants;
    uint32_t device_count;
    uint64_t tensor_count;
    uint32_t kv_quantized;          /* non-zero: the KV cache is in kv_format; zero: f16 (or no cache) */
    grey_kv_format kv_format;
    uint64_t kv_bytes;              /* the whole cache: batch sequences of context tokens (for
                                       GREY_KV_RUNTIME_LLAMA_CPP, of the context padded as llama.cpp
                                       pads it) */
    uint64_t kv_bytes_per_token;    /* one token of one sequence, every layer */
    uint64_t weight_bytes_file;     /* the tensors as stored */
    uint64_t weight_bytes_planned;  /* after the plan's quantization */
    double predicted_steps_per_s;   /* decode steps per second the devices' bandwidth allows; 0 unknown */
    grey_kv_runtime kv_runtime;     /* whose cache formats size kv_bytes (the workload's, or plan.yaml's
                                       kv.runtime for a loaded plan). Since 0.2 */
    uint32_t reserved0;             /* 0 */
} grey_plan_summary;

GREY_API GREY_NODISCARD grey_status grey_plan_summary_get(const grey_plan* plan, grey_plan_summary* out_summary);

/* One device of a plan. An output struct. Since 0.2. */
typedef struct grey_plan_device {
    uint32_t struct_size;
    grey_device_type type;
    char name[GREY_NAME_MAX];         /* llama.cpp's buffer type name: "CUDA0", "CPU" */
    uint64_t memory_free_bytes;
    uint64_t budget_bytes;            /* free * (1 - safety_margin) / tenants */
    uint64_t weight_bytes;
    uint64_t kv_bytes;
    uint64_t other_bytes;             /* activations and compute buffers (training: gradients, Adam state) */
    uint64_t predicted_bytes;         /* weight + kv + other */
    double safety_margin;
    double bandwidth_gbps;            /* 0 when unknown */
    double read_bytes_per_step;       /* predicted bytes read from its memory per decode step */
    double thermal_target_c;          /* for the governor; 0 for a CPU */
    double thermal_max_c;
} grey_plan_device;

GREY_API GREY_NODISCARD grey_status grey_plan_device_get(const grey_plan* plan, uint32_t index,
                                                         grey_plan_device* out_device);

/* One tensor of a plan, in file order. An output struct. Since 0.2. */
typedef struct grey_plan_tensor {
    uint32_t struct_size;
    grey_tensor_role role;
    const char* name;        /* owned by the plan, valid until grey_plan_destroy */
    const char* format;      /* "" when kept as stored, else a grey_quant_params_from_name name; as `name` */
    int32_t layer;           /* -1 when it belongs to no numbered block */
    uint32_t device;         /* index for grey_plan_device_get */
    uint64_t file_bytes;
    uint64_t planned_bytes;
} grey_plan_tensor;

GREY_API GREY_NODISCARD grey_status grey_plan_tensor_get(const grey_plan* plan, uint64_t index,
                                                         grey_plan_tensor* out_tensor);

#ifdef __cplusplus
} /* extern "C" */

#endif

#endif /* GREY_H */
