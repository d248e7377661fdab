/* The plugin contract's layout for GREY_BACKEND_ABI_VERSION 2, frozen: a struct that changes size or
 * moves a field needs a new ABI version (the loader refuses plugins of another version), so any such
 * change must come with the version bump and new lines here. The one exception is a member appended to
 * a struct that begins with struct_size (the vtable, a job): a reader built before it never looks past
 * its own size, and one built after it reads the member only where struct_size says it is there. Compiled as C11 with -Wall -Wextra
 * -pedantic -Werror, which also proves grey_backend.h and common/quant_layout.h are clean C. LP64. */
#include "grey_backend.h"
#include "common/quant_layout.h"

#include <stddef.h>

_Static_assert(GREY_BACKEND_ABI_VERSION == 2, "the ABI version moved: freeze the new layout below");
#if defined(__LP64__)
_Static_assert(sizeof(grey_quant_layout) == 80, "size of grey_quant_layout changed");
_Static_assert(offsetof(grey_quant_layout, struct_size) == 0, "grey_quant_layout.struct_size moved");
_Static_assert(offsetof(grey_quant_layout, required_features) == 4, "grey_quant_layout.required_features moved");
_Static_assert(offsetof(grey_quant_layout, format) == 8, "grey_quant_layout.format moved");
_Static_assert(offsetof(grey_quant_layout, calibration) == 12, "grey_quant_layout.calibration moved");
_Static_assert(offsetof(grey_quant_layout, elements) == 16, "grey_quant_layout.elements moved");
_Static_assert(offsetof(grey_quant_layout, run_length) == 24, "grey_quant_layout.run_length moved");
_Static_assert(offsetof(grey_quant_layout, param_count) == 32, "grey_quant_layout.param_count moved");
_Static_assert(offsetof(grey_quant_layout, codes_bytes) == 40, "grey_quant_layout.codes_bytes moved");
_Static_assert(offsetof(grey_quant_layout, bytes) == 48, "grey_quant_layout.bytes moved");
_Static_assert(offsetof(grey_quant_layout, row_length) == 56, "grey_quant_layout.row_length moved");
_Static_assert(offsetof(grey_quant_layout, reserved) == 64, "grey_quant_layout.reserved moved");
_Static_assert(sizeof(grey_backend_memory) == 32, "size of grey_backend_memory changed");
_Static_assert(offsetof(grey_backend_memory, buffer) == 0, "grey_backend_memory.buffer moved");
_Static_assert(offsetof(grey_backend_memory, host) == 8, "grey_backend_memory.host moved");
_Static_assert(offsetof(grey_backend_memory, offset) == 16, "grey_backend_memory.offset moved");
_Static_assert(offsetof(grey_backend_memory, size) == 24, "grey_backend_memory.size moved");
_Static_assert(sizeof(grey_backend_quant_error) == 40, "size of grey_backend_quant_error changed");
_Static_assert(offsetof(grey_backend_quant_error, struct_size) == 0, "grey_backend_quant_error.struct_size moved");
_Static_assert(offsetof(grey_backend_quant_error, reserved0) == 4, "grey_backend_quant_error.reserved0 moved");
_Static_assert(offsetof(grey_backend_quant_error, elements) == 8, "grey_backend_quant_error.elements moved");
_Static_assert(offsetof(grey_backend_quant_error, sum_squared_signal) == 16, "grey_backend_quant_error.sum_squared_signal moved");
_Static_assert(offsetof(grey_backend_quant_error, sum_squared_error) == 24, "grey_backend_quant_error.sum_squared_error moved");
_Static_assert(offsetof(grey_backend_quant_error, max_abs_error) == 32, "grey_backend_quant_error.max_abs_error moved");
_Static_assert(sizeof(grey_backend_quant_job) == 96, "size of grey_backend_quant_job changed");
_Static_assert(offsetof(grey_backend_quant_job, struct_size) == 0, "grey_backend_quant_job.struct_size moved");
_Static_assert(offsetof(grey_backend_quant_job, reserved0) == 4, "grey_backend_quant_job.reserved0 moved");
_Static_assert(offsetof(grey_backend_quant_job, layout) == 8, "grey_backend_quant_job.layout moved");
_Static_assert(offsetof(grey_backend_quant_job, plain_dtype) == 16, "grey_backend_quant_job.plain_dtype moved");
_Static_assert(offsetof(grey_backend_quant_job, reserved1) == 20, "grey_backend_quant_job.reserved1 moved");
_Static_assert(offsetof(grey_backend_quant_job, plain) == 24, "grey_backend_quant_job.plain moved");
_Static_assert(offsetof(grey_backend_quant_job, quantized) == 56, "grey_backend_quant_job.quantized moved");
_Static_assert(offsetof(grey_backend_quant_job, error) == 88, "grey_backend_quant_job.error moved");
_Static_assert(offsetof(grey_backend_vtable, capabilities) == 144, "grey_backend_vtable.capabilities moved");
_Static_assert(GREY_BACKEND_CAP_KV_HADAMARD_K == 0x8u, "the value of GREY_BACKEND_CAP_KV_HADAMARD_K changed");
/* Slots appended in 0.2: power limits, then streams, events, async operations and pinned host memory. */
_Static_assert(offsetof(grey_backend_vtable, power_limit_set) == 152, "grey_backend_vtable.power_limit_set moved");
_Static_assert(offsetof(grey_backend_vtable, stream_create) == 160, "grey_backend_vtable.stream_create moved");
_Static_assert(offsetof(grey_backend_vtable, stream_destroy) == 168, "grey_backend_vtable.stream_destroy moved");
_Static_assert(offsetof(grey_backend_vtable, stream_synchronize) == 176, "grey_backend_vtable.stream_synchronize moved");
_Static_assert(offsetof(grey_backend_vtable, stream_query) == 184, "grey_backend_vtable.stream_query moved");
_Static_assert(offsetof(grey_backend_vtable, event_create) == 192, "grey_backend_vtable.event_create moved");
_Static_assert(offsetof(grey_backend_vtable, event_destroy) == 200, "grey_backend_vtable.event_destroy moved");
_Static_assert(offsetof(grey_backend_vtable, event_record) == 208, "grey_backend_vtable.event_record moved");
_Static_assert(offsetof(grey_backend_vtable, stream_wait_event) == 216, "grey_backend_vtable.stream_wait_event moved");
_Static_assert(offsetof(grey_backend_vtable, event_synchronize) == 224, "grey_backend_vtable.event_synchronize moved");
_Static_assert(offsetof(grey_backend_vtable, event_query) == 232, "grey_backend_vtable.event_query moved");
_Static_assert(offsetof(grey_backend_vtable, event_elapsed_ms) == 240, "grey_backend_vtable.event_elapsed_ms moved");
_Static_assert(offsetof(grey_backend_vtable, buffer_write_async) == 248, "grey_backend_vtable.buffer_write_async moved");
_Static_assert(offsetof(grey_backend_vtable, buffer_read_async) == 256, "grey_backend_vtable.buffer_read_async moved");
_Static_assert(offsetof(grey_backend_vtable, buffer_copy_async) == 264, "grey_backend_vtable.buffer_copy_async moved");
_Static_assert(offsetof(grey_backend_vtable, buffer_fill_async) == 272, "grey_backend_vtable.buffer_fill_async moved");
_Static_assert(offsetof(grey_backend_vtable, buffer_checksum_async) == 280, "grey_backend_vtable.buffer_checksum_async moved");
_Static_assert(offsetof(grey_backend_vtable, quantize_async) == 288, "grey_backend_vtable.quantize_async moved");
_Static_assert(offsetof(grey_backend_vtable, dequantize_async) == 296, "grey_backend_vtable.dequantize_async moved");
_Static_assert(offsetof(grey_backend_vtable, host_alloc) == 304, "grey_backend_vtable.host_alloc moved");
_Static_assert(offsetof(grey_backend_vtable, host_free) == 312, "grey_backend_vtable.host_free moved");
_Static_assert(offsetof(grey_backend_vtable, kv_store) == 320, "grey_backend_vtable.kv_store moved");
_Static_assert(offsetof(grey_backend_vtable, kv_compress) == 328, "grey_backend_vtable.kv_compress moved");
_Static_assert(offsetof(grey_backend_vtable, kv_attend) == 336, "grey_backend_vtable.kv_attend moved");
_Static_assert(offsetof(grey_backend_vtable, stream_native_handle) == 344, "grey_backend_vtable.stream_native_handle moved");
_Static_assert(offsetof(grey_backend_vtable, stream_wrap_native) == 352, "grey_backend_vtable.stream_wrap_native moved");
_Static_assert(offsetof(grey_backend_vtable, codec_decode) == 360, "grey_backend_vtable.codec_decode moved");
_Static_assert(offsetof(grey_backend_vtable, block_hashes) == 368, "grey_backend_vtable.block_hashes moved");
_Static_assert(offsetof(grey_backend_vtable, event_create_untimed) == 376, "grey_backend_vtable.event_create_untimed moved");
_Static_assert(offsetof(grey_backend_vtable, codec_decode_async) == 384, "grey_backend_vtable.codec_decode_async moved");
_Static_assert(offsetof(grey_backend_vtable, codec_decode_async_staged) == 392, "grey_backend_vtable.codec_decode_async_staged moved");
_Static_assert(offsetof(grey_backend_vtable, host_task_async) == 400, "grey_backend_vtable.host_task_async moved");
_Static_assert(offsetof(grey_backend_vtable, kv_attend_async) == 408, "grey_backend_vtable.kv_attend_async moved");
_Static_assert(sizeof(grey_backend_vtable) == 416, "size of grey_backend_vtable changed: slots are only appended");

_Static_assert(sizeof(grey_backend_codec_block) == 48, "size of grey_backend_codec_block changed");
_Static_assert(offsetof(grey_backend_codec_block, checksum_seed) == 24, "grey_backend_codec_block.checksum_seed moved");
_Static_assert(offsetof(grey_backend_codec_block, raw_size) == 32, "grey_backend_codec_block.raw_size moved");
_Static_assert(offsetof(grey_backend_codec_block, element_width) == 44, "grey_backend_codec_block.element_width moved");

_Static_assert(sizeof(grey_backend_kv_store_job) == 120, "size of grey_backend_kv_store_job changed");
_Static_assert(offsetof(grey_backend_kv_store_job, layout) == 8, "grey_backend_kv_store_job.layout moved");
_Static_assert(offsetof(grey_backend_kv_store_job, keys) == 24, "grey_backend_kv_store_job.keys moved");
_Static_assert(offsetof(grey_backend_kv_store_job, slots) == 96, "grey_backend_kv_store_job.slots moved");
_Static_assert(offsetof(grey_backend_kv_store_job, dtype) == 104, "grey_backend_kv_store_job.dtype moved");
_Static_assert(offsetof(grey_backend_kv_store_job, first_non_finite) == 112, "grey_backend_kv_store_job.first_non_finite moved");
_Static_assert(sizeof(grey_backend_kv_compress_job) == 32, "size of grey_backend_kv_compress_job changed");
_Static_assert(offsetof(grey_backend_kv_compress_job, destinations) == 24, "grey_backend_kv_compress_job.destinations moved");
_Static_assert(sizeof(grey_backend_kv_attend_job) == 144, "size of grey_backend_kv_attend_job changed");
_Static_assert(offsetof(grey_backend_kv_attend_job, addresses) == 136, "grey_backend_kv_attend_job.addresses moved");
_Static_assert(offsetof(grey_backend_kv_attend_job, scale) == 24, "grey_backend_kv_attend_job.scale moved");
_Static_assert(offsetof(grey_backend_kv_attend_job, first) == 32, "grey_backend_kv_attend_job.first moved");
_Static_assert(offsetof(grey_backend_kv_attend_job, quantized) == 64, "grey_backend_kv_attend_job.quantized moved");
_Static_assert(offsetof(grey_backend_kv_attend_job, output) == 104, "grey_backend_kv_attend_job.output moved");

/* Host services appended in 0.2: the worker pool. */
_Static_assert(offsetof(grey_backend_host, host_data) == 8, "grey_backend_host.host_data moved");
_Static_assert(offsetof(grey_backend_host, set_error) == 24, "grey_backend_host.set_error moved");
_Static_assert(offsetof(grey_backend_host, parallel_for) == 32, "grey_backend_host.parallel_for moved");
_Static_assert(sizeof(grey_backend_host) == 40, "size of grey_backend_host changed: services are only appended");
#endif

int main(void) { return 0; }
