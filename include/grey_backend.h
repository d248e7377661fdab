/*
 * grey_backend.h — the contract between libgrey and a backend plugin.
 *
 * A backend is a shared object named libgrey-backend-<name>.so that exports one C function,
 * grey_backend_entry (GREY_BACKEND_ENTRY_SYMBOL), which fills a grey_backend_vtable. libgrey opens it
 * with dlopen at run time; the plugin, in turn, opens its vendor libraries with dlopen, so neither has
 * a link-time dependency on a driver and one build runs on any machine.
 *
 * Rules:
 *  - The vtable begins with struct_size and abi_version. The loader refuses a plugin whose abi_version
 *    differs from GREY_BACKEND_ABI_VERSION, and one whose struct_size is smaller than the required
 *    slots need.
 *  - Slots marked "optional" may be NULL; the runtime then answers GREY_ERROR_UNSUPPORTED or uses the
 *    host reference, and says which.
 *  - Every slot returns grey_status. On failure it reports detail through host->set_error on the
 *    calling thread before returning; the message becomes grey_last_error().
 *  - A backend never calls back up into the runtime's capabilities; the host services below (logging,
 *    error text, the worker pool, field reasons) are the only calls it makes into libgrey. No C++ exception ever crosses
 *    a slot: a C++ backend catches everything and reports a status and set_error.
 *  - A backend includes this header, grey.h and the neutral layer common/ (numeric conversions,
 *    checksum, quantization rules and layout), never a runtime header, and compiles no runtime source
 *    (tests/layering checks both).
 *  - Object model: backend -> devices (0..device_count-1) -> buffers, each owned by one device.
 *  - Calls into one backend instance may come from several threads; the backend synchronises itself.
 */
#ifndef GREY_BACKEND_H
#define GREY_BACKEND_H

#include "grey.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 2 (0.2): quantization jobs carry the layout the runtime computed (common/quant_layout.h) and where
 * their tensors are (a buffer, or host memory for backends that accept it), the error report is measured
 * where the data is, and the vtable ends with capability bits. */
#define GREY_BACKEND_ABI_VERSION 2u
#define GREY_BACKEND_ENTRY_SYMBOL "grey_backend_entry"

#if defined(__GNUC__) || defined(__clang__)
#define GREY_BACKEND_EXPORT __attribute__((visibility("default")))
#else
#define GREY_BACKEND_EXPORT
#endif

/* Services libgrey offers a backend. Valid from init until shutdown returns. */
typedef struct grey_backend_host {
    uint32_t struct_size;
    uint32_t abi_version;
    void* host_data; /* pass back as the first argument of each service */
    void (*log)(void* host_data, grey_log_level level, const char* message);
    /* Sets the calling thread's grey_last_error() text; call before returning a non-OK status. */
    void (*set_error)(void* host_data, const char* message);
    /* Since 0.2; present when struct_size covers it, and may be NULL (then run the work yourself). Runs
     * chunk(chunk_data, begin, end) for consecutive chunks of `chunk_items` items covering [0, items)
     * on the context's worker pool (its size is the configuration key host.threads), the calling thread
     * among the workers, and returns when every chunk has run: GREY_OK, or the first non-OK status a
     * chunk returned, after which chunks not yet started are skipped (chunks are started in order, so
     * every chunk before a failed one runs). Chunks run concurrently and in any order; their outcome
     * must not depend on which thread runs them. A chunk must not call set_error (it would set a worker
     * thread's text): keep the detail and report it from the calling thread. Calls from several
     * threads, and from inside a chunk, are allowed (one of them runs on the calling thread alone). */
    grey_status (*parallel_for)(void* host_data, uint64_t items, uint64_t chunk_items,
                                grey_status (*chunk)(void* chunk_data, uint64_t begin, uint64_t end), void* chunk_data);
} grey_backend_host;

/* Collects the reason a spec or telemetry field is not GREY_FIELD_OK, one call per such field. */
typedef struct grey_field_reasons {
    void* sink_data;
    void (*set)(void* sink_data, grey_field field, const char* reason);
} grey_field_reasons;

/* The handle of a buffer inside the backend; opaque to libgrey. */
typedef struct grey_backend_buffer grey_backend_buffer;
/* A stream and an event inside the backend (GREY_BACKEND_CAP_STREAMS); opaque to libgrey. */
typedef struct grey_backend_stream grey_backend_stream;
typedef struct grey_backend_event grey_backend_event;

/* Where one tensor of a job lies: `size` bytes at `offset` of `buffer`, a buffer of this backend; or,
 * when `buffer` is NULL, `size` bytes of host memory at `host`, valid for the length of the call (only
 * backends with GREY_BACKEND_CAP_QUANT_HOST_MEMORY are given host memory). The runtime has checked that
 * the range lies inside the buffer. Fixed: this struct never grows, so jobs may hold it by value. */
typedef struct grey_backend_memory {
    grey_backend_buffer* buffer;
    void* host;
    uint64_t offset;
    uint64_t size;
} grey_backend_memory;

/* A quantization's error against its reference, summed in float64 (common/quant_error.hpp): sum x^2,
 * sum (x - y)^2 and max |x - y| over `elements` elements, x the plain tensor, y its dequantized form.
 * An output struct: the runtime sets struct_size. */
typedef struct grey_backend_quant_error {
    uint32_t struct_size;
    uint32_t reserved0;
    uint64_t elements;
    double sum_squared_signal;
    double sum_squared_error;
    double max_abs_error;
} grey_backend_quant_error;

/* The layout of a quantized tensor, computed once by the runtime: defined in common/quant_layout.h,
 * which plugins built in this repository include (it holds a field backends must check, required_features). */
struct grey_quant_layout;

/* One quantize or dequantize call (the vtable's quantize and dequantize slots). */
typedef struct grey_backend_quant_job {
    uint32_t struct_size;
    uint32_t reserved0;
    const struct grey_quant_layout* layout; /* computed and checked by the runtime; refuse unknown
                                               layout->required_features bits with UNSUPPORTED */
    grey_dtype plain_dtype;                 /* F32, F16 or BF16: read by quantize, written by dequantize */
    uint32_t reserved1;
    grey_backend_memory plain;              /* layout->elements of plain_dtype */
    grey_backend_memory quantized;          /* layout->bytes, in the layout */
    /* quantize only, and only for backends with GREY_BACKEND_CAP_QUANT_ERROR: when not NULL, also
     * measure the quantized tensor against `plain` where the data is, filling every member after
     * struct_size. NULL: measure nothing. */
    grey_backend_quant_error* error;
} grey_backend_quant_job;

/* The byte layout of a KV-cache block: defined in common/kv_layout.hpp (a plain struct), computed and
 * checked by the runtime; backends built in this repository include that header. */
struct grey_kv_layout;

/* Writes K and V of `tokens` tokens into window-form blocks (the kv_store slot). `keys` and `values` are
 * [layer_count][tokens][kv_heads][head_dim] values of `dtype`; token i goes to slot slots[i] of
 * blocks[i] (a buffer of layout's dense block size), layers layer_first .. layer_first + layer_count - 1.
 * No two tokens name the same (block, slot). Without GREY_BACKEND_CAP_KV_STORE_CHECKED the runtime
 * gives F32 values it has checked to be finite; with it (since 0.2) also F16 and BF16, and values it
 * has not checked: then `first_non_finite` is set, and receives the index of the first NaN or infinity
 * (the keys' values numbered first, 0 .., then the values' from layer_count x tokens x kv_heads x
 * head_dim on) or UINT64_MAX when there is none. The runtime drops the tokens when one is found, so what
 * their slots then hold does not matter. A backend reads the members after `slots` only when
 * struct_size says they are there (a runtime older than them: F32, checked). */
typedef struct grey_backend_kv_store_job {
    uint32_t struct_size;
    uint32_t tokens;
    const struct grey_kv_layout* layout;
    uint32_t layer_first;
    uint32_t layer_count;
    grey_backend_memory keys;
    grey_backend_memory values;
    grey_backend_buffer* const* blocks;
    const uint32_t* slots;
    grey_dtype dtype;             /* F32, or F16 and BF16 with the capability */
    uint32_t reserved0;           /* 0 */
    uint64_t* first_non_finite;   /* NULL: the values are checked; see above */
} grey_backend_kv_store_job;

/* Quantizes `count` full window-form blocks, sources[i] into destinations[i] (a buffer of layout's
 * compressed block size), byte for byte as common/kv_layout.hpp's kv_group_params_at and
 * kv_code_byte_at define them (the kv_compress slot). */
typedef struct grey_backend_kv_compress_job {
    uint32_t struct_size;
    uint32_t count;
    const struct grey_kv_layout* layout;
    grey_backend_buffer* const* sources;
    grey_backend_buffer* const* destinations;
} grey_backend_kv_compress_job;

/* Decode attention over paged blocks (the kv_attend slot). Sequence b owns blocks
 * blocks[table_offsets[b] .. table_offsets[b + 1]) in token order, quantized[i] != 0 when blocks[i] is
 * in quantized form; it attends to its tokens first[b] .. last[b] - 1 (first < last <= its blocks'
 * capacity). queries and output: F32 [batch][query_heads][head_dim]; query head h reads KV head
 * h / (query_heads / kv_heads). output = softmax(q.K * scale) V over those tokens. */
typedef struct grey_backend_kv_attend_job {
    uint32_t struct_size;
    uint32_t batch;
    const struct grey_kv_layout* layout;
    uint32_t layer;
    uint32_t query_heads;
    float scale;
    uint32_t reserved0;
    const uint64_t* first;
    const uint64_t* last;
    const uint64_t* table_offsets;
    grey_backend_buffer* const* blocks;
    const uint8_t* quantized;
    grey_backend_memory queries;
    grey_backend_memory output;
    /* Since 0.2, read only where struct_size covers it: NULL, or for each block the address its buffer
     * maps to (buffer_map's) with bit 0 set when it is quantized, kept by the runtime between calls, so
     * that a backend need not visit every block's buffer on every call. */
    const uint64_t* addresses;
} grey_backend_kv_attend_job;

/* Capability bits of grey_backend_vtable.capabilities. */
/* quantize and dequantize accept host memory (grey_backend_memory.buffer NULL) for either tensor. */
#define GREY_BACKEND_CAP_QUANT_HOST_MEMORY 0x1u
/* quantize fills job->error when it is given (the runtime then reads nothing back to measure). */
#define GREY_BACKEND_CAP_QUANT_ERROR 0x2u
/* Streams and events: every stream_*, event_* and buffer_*_async slot is set (since 0.2). Without the
 * bit the runtime runs each async call synchronously when it is enqueued, so the API works on every
 * backend. quantize_async and dequantize_async stay optional: without them the runtime waits for the
 * stream, then runs the synchronous slot (ordered, but not overlapped). */
#define GREY_BACKEND_CAP_STREAMS 0x4u
/* kv_store and kv_attend honour grey_kv_layout.hadamard_k (K stored rotated, queries rotated to match;
 * since 0.2). Without the bit a cache asking for GREY_KV_HADAMARD_K is refused on the backend's devices,
 * so that a plugin built before the field existed cannot store K unrotated while attention expects it
 * rotated. */
#define GREY_BACKEND_CAP_KV_HADAMARD_K 0x8u
/* kv_store takes F16 and BF16 K/V as well as F32, and checks them for NaN and infinity itself when
 * grey_backend_kv_store_job.first_non_finite is set (since 0.2), so K/V already in device memory are
 * stored without a trip through the host. Without the bit the runtime refuses K/V in device memory on
 * the backend's devices (grey_kv_append_buffer: GREY_ERROR_UNSUPPORTED) and gives the slot checked F32. */
#define GREY_BACKEND_CAP_KV_STORE_CHECKED 0x10u

/* One block of an LT-Block container (docs/codecs.md) for codec_decode: where its payload is, where its
 * raw bytes go, and what they must hash to. The layout of common/codec_decode.hpp's CodecBlockJob. */
typedef struct grey_backend_codec_block {
    uint64_t payload;       /* offset of the block's payload from its container's first byte */
    uint64_t output;        /* offset of its raw bytes from the output's first byte */
    uint64_t checksum;      /* the block entry's checksum */
    uint64_t checksum_seed; /* its seed: xxh3-64 of the entry's bytes 0..23 seeded with the block index */
    uint32_t raw_size;
    uint32_t stored_size;
    uint32_t codec;         /* raw 0, zero 1, fill 2, bitmask 3 or float 4 */
    uint32_t element_width;
} grey_backend_codec_block;

typedef struct grey_backend_vtable {
    uint32_t struct_size;  /* sizeof(grey_backend_vtable) as the plugin was compiled */
    uint32_t abi_version;  /* GREY_BACKEND_ABI_VERSION as the plugin was compiled */
    const char* name;      /* "cuda": must match the <name> of the file */

    /* Starts the backend. `*out_state` is passed to every other slot. When the vendor runtime is
     * missing (no driver, no device), fail with GREY_ERROR_UNSUPPORTED and a message naming what was
     * missing: the loader reports it and carries on. */
    grey_status (*init)(const grey_backend_host* host, void** out_state);
    void (*shutdown)(void* state);

    grey_status (*device_count)(void* state, uint32_t* out_count);
    /* Fill every field: value, state and source. Fields left untouched are reported unsupported. */
    grey_status (*device_spec)(void* state, uint32_t device, grey_device_spec* out_spec,
                               const grey_field_reasons* reasons);
    grey_status (*device_telemetry)(void* state, uint32_t device, grey_device_telemetry* out_telemetry,
                                    const grey_field_reasons* reasons);

    /* Memory. Out of memory: GREY_ERROR_OUT_OF_MEMORY with the sizes in the message. */
    grey_status (*buffer_alloc)(void* state, uint32_t device, uint64_t size_bytes,
                                grey_backend_buffer** out_buffer);
    void (*buffer_free)(void* state, grey_backend_buffer* buffer);
    /* Host <-> device copies, synchronous. Ranges have been checked by the runtime. */
    grey_status (*buffer_write)(void* state, grey_backend_buffer* buffer, uint64_t offset,
                                const void* source, uint64_t size_bytes);
    grey_status (*buffer_read)(void* state, grey_backend_buffer* buffer, uint64_t offset,
                               void* destination, uint64_t size_bytes);
    /* Copy within one device (optional: the runtime stages through host memory without it). */
    grey_status (*buffer_copy)(void* state, grey_backend_buffer* destination, uint64_t destination_offset,
                               grey_backend_buffer* source, uint64_t source_offset, uint64_t size_bytes);
    /* Fill with a byte (optional: the runtime writes from a host staging block without it). */
    grey_status (*buffer_fill)(void* state, grey_backend_buffer* buffer, uint64_t offset, uint8_t value,
                               uint64_t size_bytes);

    /* Slots appended in 0.1 after the first set. A plugin whose struct_size ends before them is accepted
     * and they count as NULL; new slots are only ever appended here. */

    /* Memory statistics of a device (optional: the runtime answers UNSUPPORTED without it). Fill every
     * member of `out_stats` after struct_size. */
    grey_status (*memory_stats)(void* state, uint32_t device, grey_memory_stats* out_stats);
    /* The checksum grey_buffer_checksum defines, over a range the runtime has checked (optional: the
     * runtime reads the range back and computes it on the host without it). */
    grey_status (*buffer_checksum)(void* state, grey_backend_buffer* buffer, uint64_t offset, uint64_t size_bytes,
                                   uint64_t* out_checksum);

    /* Quantization (optional). `job` has been validated and its layout computed by the runtime; the
     * ranges lie inside their buffers, and buffers are on one device of this backend. quantize reads
     * the plain tensor and writes the quantized one in the layout of docs/quantization.md (measuring the
     * error too when job->error is set); dequantize is the reverse, writing job->plain_dtype. The bytes
     * must equal the host backend's (the conformance rule, docs/architecture.md). A NaN or infinite input,
     * or a group too large for its fp16 parameters, fails with GREY_ERROR_INVALID_ARGUMENT in the words
     * of common/quant_text.hpp. NULL: the runtime answers GREY_ERROR_UNSUPPORTED. */
    grey_status (*quantize)(void* state, const grey_backend_quant_job* job);
    grey_status (*dequantize)(void* state, const grey_backend_quant_job* job);

    /* The address of a buffer's memory, for grey_buffer_map (optional: NULL makes grey_buffer_map answer
     * GREY_ERROR_UNSUPPORTED). Fill `kind`, `address` and `vendor_device` of `out_mapping`; the runtime has
     * zeroed it and fills struct_size and size_bytes itself, and counts the mappings (a backend whose
     * buffers are plain memory keeps no state for them). The address must stay valid until buffer_free. */
    grey_status (*buffer_map)(void* state, grey_backend_buffer* buffer, grey_buffer_mapping* out_mapping);

    /* Slots appended in 0.2. */

    /* GREY_BACKEND_CAP_* bits. Without one, the runtime does not rely on what it says. */
    uint64_t capabilities;

    /* Sets the device's power limit to `limit_mw` (non-zero, checked by the driver against its range)
     * and returns the limit it replaced in *out_previous_mw (optional: NULL makes
     * grey_device_power_limit_set answer GREY_ERROR_UNSUPPORTED). Report a refusal of the driver as
     * GREY_ERROR_PERMISSION_DENIED, a limit out of range as GREY_ERROR_INVALID_ARGUMENT. */
    grey_status (*power_limit_set)(void* state, uint32_t device, uint64_t limit_mw, uint64_t* out_previous_mw);

    /* Streams and events (0.2, GREY_BACKEND_CAP_STREAMS). A stream runs the work enqueued on it in
     * order, apart from the caller's thread; streams of one device run independently of each other and
     * of the synchronous slots above. A slot that enqueues returns once the work is queued; a failure of
     * the work itself (a NaN input) is kept by the stream and returned, with its set_error message, by
     * the next stream_synchronize (which then forgets it) and by event_synchronize/event_query of an
     * event recorded after it. Work after a failure still runs, so events recorded later complete. */
    grey_status (*stream_create)(void* state, uint32_t device, grey_backend_stream** out_stream);
    /* Waits for the work enqueued on the stream, then frees it. */
    void (*stream_destroy)(void* state, grey_backend_stream* stream);
    grey_status (*stream_synchronize)(void* state, grey_backend_stream* stream);
    /* *out_done = 1 when all enqueued work has finished, else 0; returns the stream's kept failure like
     * stream_synchronize (and forgets it) once done. */
    grey_status (*stream_query)(void* state, grey_backend_stream* stream, uint32_t* out_done);
    grey_status (*event_create)(void* state, uint32_t device, grey_backend_event** out_event);
    void (*event_destroy)(void* state, grey_backend_event* event);
    /* Captures the work enqueued on `stream` so far; a later record replaces what the event stands for. */
    grey_status (*event_record)(void* state, grey_backend_event* event, grey_backend_stream* stream);
    /* Work enqueued on `stream` after this call waits for the event's latest record (the runtime only
     * calls it for a recorded event of the same backend). */
    grey_status (*stream_wait_event)(void* state, grey_backend_stream* stream, grey_backend_event* event);
    grey_status (*event_synchronize)(void* state, grey_backend_event* event);
    grey_status (*event_query)(void* state, grey_backend_event* event, uint32_t* out_done);
    /* Milliseconds between two completed records of one device. */
    grey_status (*event_elapsed_ms)(void* state, grey_backend_event* start, grey_backend_event* end, double* out_ms);

    /* The operations above, enqueued on `stream` of the buffers' device (set with GREY_BACKEND_CAP_STREAMS;
     * quantize_async and dequantize_async optional, see there). Host memory (`source`, `destination`, `out_checksum`) stays valid
     * until the stream reaches the work; `job` and its layout only for the length of the call, so a
     * backend copies what it keeps; job->error is always NULL. */
    grey_status (*buffer_write_async)(void* state, grey_backend_stream* stream, grey_backend_buffer* buffer, uint64_t offset,
                                      const void* source, uint64_t size_bytes);
    grey_status (*buffer_read_async)(void* state, grey_backend_stream* stream, grey_backend_buffer* buffer, uint64_t offset,
                                     void* destination, uint64_t size_bytes);
    grey_status (*buffer_copy_async)(void* state, grey_backend_stream* stream, grey_backend_buffer* destination,
                                     uint64_t destination_offset, grey_backend_buffer* source, uint64_t source_offset,
                                     uint64_t size_bytes);
    grey_status (*buffer_fill_async)(void* state, grey_backend_stream* stream, grey_backend_buffer* buffer, uint64_t offset,
                                     uint8_t value, uint64_t size_bytes);
    grey_status (*buffer_checksum_async)(void* state, grey_backend_stream* stream, grey_backend_buffer* buffer, uint64_t offset,
                                         uint64_t size_bytes, uint64_t* out_checksum);
    grey_status (*quantize_async)(void* state, grey_backend_stream* stream, const grey_backend_quant_job* job);
    grey_status (*dequantize_async)(void* state, grey_backend_stream* stream, const grey_backend_quant_job* job);

    /* Host memory that `device` transfers from at full speed (pinned), `size_bytes` > 0, aligned to at
     * least 64 bytes (optional: the runtime gives plain aligned host memory without it). */
    grey_status (*host_alloc)(void* state, uint32_t device, uint64_t size_bytes, void** out_memory);
    void (*host_free)(void* state, void* memory);

    /* The KV cache's block operations (0.2, optional: a cache on a device of a backend without all
     * three is refused with GREY_ERROR_UNSUPPORTED). Synchronous: they return when the blocks are
     * written. Block buffers are the backend's own (buffer_alloc); the runtime owns the block tables. */
    grey_status (*kv_store)(void* state, const grey_backend_kv_store_job* job);
    grey_status (*kv_compress)(void* state, const grey_backend_kv_compress_job* job);
    grey_status (*kv_attend)(void* state, const grey_backend_kv_attend_job* job);

    /* The stream's handle in the vendor's API, for grey_stream_native_handle: the memory kind that names
     * the API (GREY_MEMORY_CUDA_DEVICE: a CUstream) and the handle (0.2, optional: without it the runtime
     * answers GREY_ERROR_UNSUPPORTED). */
    grey_status (*stream_native_handle)(void* state, grey_backend_stream* stream, grey_memory_kind* out_kind, uint64_t* out_handle);

    /* A stream over the vendor stream `handle` of API `kind` that the caller owns, for grey_stream_wrap_native
     * (0.2, optional: without it the runtime answers GREY_ERROR_UNSUPPORTED). It is used like a stream of
     * stream_create's, except that stream_destroy frees only the backend's own state and does not wait:
     * the runtime synchronizes it first when libgrey enqueued work on it. */
    grey_status (*stream_wrap_native)(void* state, uint32_t device, grey_memory_kind kind, uint64_t handle, grey_backend_stream** out_stream);

    /* Decoding container blocks where they lie (0.2, optional: without it the runtime reads containers
     * back and decodes on the host). Block i's payload lies at blocks[i].payload in containers[i] (blocks
     * of one container, or one-block containers of their own) and its raw bytes go to blocks[i].output in
     * `output`, every buffer on one device; the runtime has checked the containers' headers and tables,
     * and that every payload and output lies inside its buffer. Synchronous. out_faults[i] receives block
     * i's common/codec_decode.hpp fault bits: 0 when it decoded and its checksum held; otherwise its output
     * is undefined and the runtime decodes that block on the host, which names the problem. */
    grey_status (*codec_decode)(void* state, grey_backend_buffer* const* containers, grey_backend_buffer* output,
                                const grey_backend_codec_block* blocks, uint32_t count, uint32_t* out_faults);
    /* The deduplication hash (XXH3-64 seeded with `seed`) of each `block_size` bytes of [offset, offset +
     * size) of `buffer`, the last block possibly shorter, into out_hashes[ceil(size / block_size)] (0.2,
     * optional: without it the runtime reads the bytes back and hashes on the host). The runtime has
     * checked the range; size > 0, block_size > 0. */
    grey_status (*block_hashes)(void* state, grey_backend_buffer* buffer, uint64_t offset, uint64_t size, uint32_t block_size,
                                uint64_t seed, uint64_t* out_hashes);

    /* An event that is recorded, waited for and queried but never timed: the runtime's own (marking where
     * buffers' async work ends) never reach event_elapsed_ms, so a backend may make them cheaper to record
     * (CUDA: CU_EVENT_DISABLE_TIMING). Freed with event_destroy (0.2, optional: the runtime uses
     * event_create without it). */
    grey_status (*event_create_untimed)(void* state, uint32_t device, grey_backend_event** out_event);

    /* codec_decode's job enqueued on `stream` behind the work already queued there (0.2, optional: without
     * it an async map decodes on the calling thread and queues a copy). Returns once the work is queued.
     * `faults` is a device buffer of this backend's, on the output's device, that the runtime allocated
     * with at least GREY_BACKEND_CODEC_DECODE_ASYNC_BYTES(count) bytes and leaves untouched until the
     * stream has passed the work: the stream writes block i's fault bits (as codec_decode's out_faults) to
     * its uint32 i, and the runtime reads them back then. The bytes from GREY_BACKEND_CODEC_FAULTS_BYTES(count)
     * on are the backend's to use for the work (the job table it uploads), so that nothing of its own has
     * to outlive the call. A block that faulted leaves its output undefined; the runtime reports it
     * through the stream. */
    grey_status (*codec_decode_async)(void* state, grey_backend_stream* stream, grey_backend_buffer* const* containers,
                                      grey_backend_buffer* output, const grey_backend_codec_block* blocks, uint32_t count,
                                      grey_backend_buffer* faults);

    /* codec_decode_async with its job table staged in host memory of the runtime's (0.2, optional: where
     * set, the runtime uses it instead of codec_decode_async). `table` is host memory of at least
     * GREY_BACKEND_CODEC_TABLE_BYTES(count) bytes, aligned to 64, that the runtime keeps, untouched, until
     * the stream has passed the work; page-locked from this backend's host_alloc where the runtime could
     * get it. The backend writes the table it uploads there and queues the upload on `stream` ahead of
     * the decode, so that the call waits for nothing on any stream. `faults` as codec_decode_async's (its
     * bytes from GREY_BACKEND_CODEC_FAULTS_BYTES(count) on still take the uploaded table). */
    grey_status (*codec_decode_async_staged)(void* state, grey_backend_stream* stream, grey_backend_buffer* const* containers,
                                             grey_backend_buffer* output, const grey_backend_codec_block* blocks, uint32_t count,
                                             grey_backend_buffer* faults, void* table);

    /* Runs `task(data)` on a host thread once `stream` reaches it, in order with the work queued there
     * before and after it (0.2, optional: without it an async map copies a pageable host-tier container to
     * the device during the call). Returns once the task is queued. The task only copies host memory the
     * runtime keeps until the stream has passed it; it calls no backend slot and cannot fail. CUDA:
     * cuLaunchHostFunc. */
    grey_status (*host_task_async)(void* state, grey_backend_stream* stream, void (*task)(void* data), void* data);

    /* kv_attend enqueued on `stream` (of the blocks' device) behind the work already queued there (0.2,
     * optional: without it grey_kv_attend_async waits for the stream and calls kv_attend). Returns once the
     * work is queued. `job` and the tables it points to are the runtime's only for the call; `staging` is
     * host memory of at least GREY_BACKEND_KV_ATTEND_STAGING_BYTES(job->batch, blocks), where blocks is
     * job->table_offsets[job->batch], aligned to 64 and page-locked where the runtime could get it, that
     * the runtime keeps untouched until the stream has passed the work: the backend writes the tables it
     * uploads there and queues the upload on the stream. The blocks, the queries and the output also stay
     * until then. Device memory the work needs besides is the backend's, kept until the stream has passed
     * the work. A failure of the work is kept by the stream as the other async slots keep theirs. */
    grey_status (*kv_attend_async)(void* state, grey_backend_stream* stream, const grey_backend_kv_attend_job* job, void* staging);
} grey_backend_vtable;

/* kv_attend_async's host `staging`: 32 bytes a sequence and 8 a block. */
#define GREY_BACKEND_KV_ATTEND_STAGING_BYTES(batch, blocks) ((uint64_t)(batch) * 32u + (uint64_t)(blocks) * 8u)

/* codec_decode_async's `faults` buffer: count uint32 of fault bits, rounded up to 8 bytes, then room for
 * the count blocks' table. */
#define GREY_BACKEND_CODEC_FAULTS_BYTES(count) (((uint64_t)(count) * 4u + 7u) / 8u * 8u)
#define GREY_BACKEND_CODEC_DECODE_ASYNC_BYTES(count) \
    (GREY_BACKEND_CODEC_FAULTS_BYTES(count) + (uint64_t)(count) * sizeof(grey_backend_codec_block))
/* codec_decode_async_staged's host `table`: the count blocks' table. */
#define GREY_BACKEND_CODEC_TABLE_BYTES(count) ((uint64_t)(count) * sizeof(grey_backend_codec_block))

/* The vtable size of the smallest plugin the loader accepts: everything up to the appended slots. */
#define GREY_BACKEND_VTABLE_MIN_SIZE offsetof(grey_backend_vtable, memory_stats)

/* The one symbol a plugin exports. `host_abi_version` is the loader's GREY_BACKEND_ABI_VERSION;
 * `out_vtable->struct_size` is set by the loader to its sizeof(grey_backend_vtable) and the plugin
 * fills at most that many bytes. Must not allocate or touch a vendor library: init does that. */
typedef grey_status (*grey_backend_entry_fn)(uint32_t host_abi_version, grey_backend_vtable* out_vtable);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* GREY_BACKEND_H */
