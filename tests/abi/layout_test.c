/* The released layout of every public struct, frozen. If one of these assertions fails, a released
 * struct changed size or moved a field: that breaks every program built against the older header.
 * Grow structs only at the end (struct_size tells the library how much the caller has), and add the
 * new fields' offsets here (scripts/layout-asserts.sh prints the lines for a struct). Compiled as C11 with -Wall -Wextra -pedantic -Werror, which also proves
 * the header is clean C. The offsets hold for LP64 (Linux and macOS on 64-bit). */
#include "grey.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#if defined(__LP64__)
_Static_assert(sizeof(grey_context_options) == 64, "size of grey_context_options changed");
_Static_assert(offsetof(grey_context_options, struct_size) == 0, "grey_context_options.struct_size moved");
_Static_assert(offsetof(grey_context_options, log_level) == 4, "grey_context_options.log_level moved");
_Static_assert(offsetof(grey_context_options, log_callback) == 8, "grey_context_options.log_callback moved");
_Static_assert(offsetof(grey_context_options, log_user) == 16, "grey_context_options.log_user moved");
_Static_assert(offsetof(grey_context_options, backends) == 24, "grey_context_options.backends moved");
_Static_assert(offsetof(grey_context_options, backend_dir) == 32, "grey_context_options.backend_dir moved");
_Static_assert(offsetof(grey_context_options, config_path) == 40, "grey_context_options.config_path moved");
_Static_assert(offsetof(grey_context_options, profile) == 48, "grey_context_options.profile moved");
_Static_assert(offsetof(grey_context_options, apply_env_overrides) == 56, "grey_context_options.apply_env_overrides moved");
_Static_assert(offsetof(grey_context_options, reserved0) == 60, "grey_context_options.reserved0 moved");
_Static_assert(sizeof(grey_backend_info) == 848, "size of grey_backend_info changed");
_Static_assert(offsetof(grey_backend_info, struct_size) == 0, "grey_backend_info.struct_size moved");
_Static_assert(offsetof(grey_backend_info, outcome) == 4, "grey_backend_info.outcome moved");
_Static_assert(offsetof(grey_backend_info, device_count) == 8, "grey_backend_info.device_count moved");
_Static_assert(offsetof(grey_backend_info, reserved0) == 12, "grey_backend_info.reserved0 moved");
_Static_assert(offsetof(grey_backend_info, name) == 16, "grey_backend_info.name moved");
_Static_assert(offsetof(grey_backend_info, path) == 80, "grey_backend_info.path moved");
_Static_assert(offsetof(grey_backend_info, reason) == 592, "grey_backend_info.reason moved");
_Static_assert(sizeof(grey_plugin_dir_info) == 1296, "size of grey_plugin_dir_info changed");
_Static_assert(offsetof(grey_plugin_dir_info, struct_size) == 0, "grey_plugin_dir_info.struct_size moved");
_Static_assert(offsetof(grey_plugin_dir_info, origin) == 4, "grey_plugin_dir_info.origin moved");
_Static_assert(offsetof(grey_plugin_dir_info, state) == 8, "grey_plugin_dir_info.state moved");
_Static_assert(offsetof(grey_plugin_dir_info, reserved0) == 12, "grey_plugin_dir_info.reserved0 moved");
_Static_assert(offsetof(grey_plugin_dir_info, path) == 16, "grey_plugin_dir_info.path moved");
_Static_assert(offsetof(grey_plugin_dir_info, real_path) == 528, "grey_plugin_dir_info.real_path moved");
_Static_assert(offsetof(grey_plugin_dir_info, reason) == 1040, "grey_plugin_dir_info.reason moved");
_Static_assert(sizeof(grey_field_u64) == 16, "size of grey_field_u64 changed");
_Static_assert(offsetof(grey_field_u64, value) == 0, "grey_field_u64.value moved");
_Static_assert(offsetof(grey_field_u64, state) == 8, "grey_field_u64.state moved");
_Static_assert(offsetof(grey_field_u64, source) == 12, "grey_field_u64.source moved");
_Static_assert(sizeof(grey_field_f64) == 16, "size of grey_field_f64 changed");
_Static_assert(offsetof(grey_field_f64, value) == 0, "grey_field_f64.value moved");
_Static_assert(offsetof(grey_field_f64, state) == 8, "grey_field_f64.state moved");
_Static_assert(offsetof(grey_field_f64, source) == 12, "grey_field_f64.source moved");
_Static_assert(sizeof(grey_field_text) == 136, "size of grey_field_text changed");
_Static_assert(offsetof(grey_field_text, value) == 0, "grey_field_text.value moved");
_Static_assert(offsetof(grey_field_text, state) == 128, "grey_field_text.state moved");
_Static_assert(offsetof(grey_field_text, source) == 132, "grey_field_text.source moved");
_Static_assert(sizeof(grey_device_spec) == 1352, "size of grey_device_spec changed");
_Static_assert(offsetof(grey_device_spec, struct_size) == 0, "grey_device_spec.struct_size moved");
_Static_assert(offsetof(grey_device_spec, vendor) == 4, "grey_device_spec.vendor moved");
_Static_assert(offsetof(grey_device_spec, type) == 8, "grey_device_spec.type moved");
_Static_assert(offsetof(grey_device_spec, backend_device_index) == 12, "grey_device_spec.backend_device_index moved");
_Static_assert(offsetof(grey_device_spec, backend) == 16, "grey_device_spec.backend moved");
_Static_assert(offsetof(grey_device_spec, name) == 80, "grey_device_spec.name moved");
_Static_assert(offsetof(grey_device_spec, uuid) == 216, "grey_device_spec.uuid moved");
_Static_assert(offsetof(grey_device_spec, pci_bus_id) == 352, "grey_device_spec.pci_bus_id moved");
_Static_assert(offsetof(grey_device_spec, architecture) == 488, "grey_device_spec.architecture moved");
_Static_assert(offsetof(grey_device_spec, compute_capability) == 624, "grey_device_spec.compute_capability moved");
_Static_assert(offsetof(grey_device_spec, driver_version) == 760, "grey_device_spec.driver_version moved");
_Static_assert(offsetof(grey_device_spec, runtime_version) == 896, "grey_device_spec.runtime_version moved");
_Static_assert(offsetof(grey_device_spec, memory_total_bytes) == 1032, "grey_device_spec.memory_total_bytes moved");
_Static_assert(offsetof(grey_device_spec, memory_free_bytes) == 1048, "grey_device_spec.memory_free_bytes moved");
_Static_assert(offsetof(grey_device_spec, memory_bus_width_bits) == 1064, "grey_device_spec.memory_bus_width_bits moved");
_Static_assert(offsetof(grey_device_spec, memory_clock_max_mhz) == 1080, "grey_device_spec.memory_clock_max_mhz moved");
_Static_assert(offsetof(grey_device_spec, peak_memory_bandwidth_gbps) == 1096, "grey_device_spec.peak_memory_bandwidth_gbps moved");
_Static_assert(offsetof(grey_device_spec, l2_cache_bytes) == 1112, "grey_device_spec.l2_cache_bytes moved");
_Static_assert(offsetof(grey_device_spec, compute_units) == 1128, "grey_device_spec.compute_units moved");
_Static_assert(offsetof(grey_device_spec, graphics_clock_max_mhz) == 1144, "grey_device_spec.graphics_clock_max_mhz moved");
_Static_assert(offsetof(grey_device_spec, power_limit_mw) == 1160, "grey_device_spec.power_limit_mw moved");
_Static_assert(offsetof(grey_device_spec, power_limit_default_mw) == 1176, "grey_device_spec.power_limit_default_mw moved");
_Static_assert(offsetof(grey_device_spec, power_limit_min_mw) == 1192, "grey_device_spec.power_limit_min_mw moved");
_Static_assert(offsetof(grey_device_spec, power_limit_max_mw) == 1208, "grey_device_spec.power_limit_max_mw moved");
_Static_assert(offsetof(grey_device_spec, temperature_slowdown_c) == 1224, "grey_device_spec.temperature_slowdown_c moved");
_Static_assert(offsetof(grey_device_spec, temperature_shutdown_c) == 1240, "grey_device_spec.temperature_shutdown_c moved");
_Static_assert(offsetof(grey_device_spec, temperature_gpu_max_c) == 1256, "grey_device_spec.temperature_gpu_max_c moved");
_Static_assert(offsetof(grey_device_spec, temperature_memory_max_c) == 1272, "grey_device_spec.temperature_memory_max_c moved");
_Static_assert(offsetof(grey_device_spec, pcie_generation_current) == 1288, "grey_device_spec.pcie_generation_current moved");
_Static_assert(offsetof(grey_device_spec, pcie_generation_max) == 1304, "grey_device_spec.pcie_generation_max moved");
_Static_assert(offsetof(grey_device_spec, pcie_width_current) == 1320, "grey_device_spec.pcie_width_current moved");
_Static_assert(offsetof(grey_device_spec, pcie_width_max) == 1336, "grey_device_spec.pcie_width_max moved");
_Static_assert(sizeof(grey_device_telemetry) == 240, "size of grey_device_telemetry changed");
_Static_assert(offsetof(grey_device_telemetry, struct_size) == 0, "grey_device_telemetry.struct_size moved");
_Static_assert(offsetof(grey_device_telemetry, reserved0) == 4, "grey_device_telemetry.reserved0 moved");
_Static_assert(offsetof(grey_device_telemetry, timestamp_ns) == 8, "grey_device_telemetry.timestamp_ns moved");
_Static_assert(offsetof(grey_device_telemetry, temperature_c) == 16, "grey_device_telemetry.temperature_c moved");
_Static_assert(offsetof(grey_device_telemetry, memory_temperature_c) == 32, "grey_device_telemetry.memory_temperature_c moved");
_Static_assert(offsetof(grey_device_telemetry, power_draw_mw) == 48, "grey_device_telemetry.power_draw_mw moved");
_Static_assert(offsetof(grey_device_telemetry, energy_total_mj) == 64, "grey_device_telemetry.energy_total_mj moved");
_Static_assert(offsetof(grey_device_telemetry, graphics_clock_mhz) == 80, "grey_device_telemetry.graphics_clock_mhz moved");
_Static_assert(offsetof(grey_device_telemetry, sm_clock_mhz) == 96, "grey_device_telemetry.sm_clock_mhz moved");
_Static_assert(offsetof(grey_device_telemetry, memory_clock_mhz) == 112, "grey_device_telemetry.memory_clock_mhz moved");
_Static_assert(offsetof(grey_device_telemetry, utilization_percent) == 128, "grey_device_telemetry.utilization_percent moved");
_Static_assert(offsetof(grey_device_telemetry, memory_utilization_percent) == 144, "grey_device_telemetry.memory_utilization_percent moved");
_Static_assert(offsetof(grey_device_telemetry, memory_used_bytes) == 160, "grey_device_telemetry.memory_used_bytes moved");
_Static_assert(offsetof(grey_device_telemetry, throttle_reasons) == 176, "grey_device_telemetry.throttle_reasons moved");
_Static_assert(offsetof(grey_device_telemetry, throttle_time_power_ns) == 192, "grey_device_telemetry.throttle_time_power_ns moved");
_Static_assert(offsetof(grey_device_telemetry, throttle_time_thermal_ns) == 208, "grey_device_telemetry.throttle_time_thermal_ns moved");
_Static_assert(offsetof(grey_device_telemetry, throttle_time_sync_boost_ns) == 224, "grey_device_telemetry.throttle_time_sync_boost_ns moved");
_Static_assert(sizeof(grey_field_desc) == 40, "size of grey_field_desc changed");
_Static_assert(offsetof(grey_field_desc, struct_size) == 0, "grey_field_desc.struct_size moved");
_Static_assert(offsetof(grey_field_desc, field) == 4, "grey_field_desc.field moved");
_Static_assert(offsetof(grey_field_desc, kind) == 8, "grey_field_desc.kind moved");
_Static_assert(offsetof(grey_field_desc, group) == 12, "grey_field_desc.group moved");
_Static_assert(offsetof(grey_field_desc, offset) == 16, "grey_field_desc.offset moved");
_Static_assert(offsetof(grey_field_desc, key) == 24, "grey_field_desc.key moved");
_Static_assert(offsetof(grey_field_desc, unit) == 32, "grey_field_desc.unit moved");
_Static_assert(sizeof(grey_memory_stats) == 80, "size of grey_memory_stats changed");
_Static_assert(offsetof(grey_memory_stats, struct_size) == 0, "grey_memory_stats.struct_size moved");
_Static_assert(offsetof(grey_memory_stats, reserved0) == 4, "grey_memory_stats.reserved0 moved");
_Static_assert(offsetof(grey_memory_stats, reserved_bytes) == 8, "grey_memory_stats.reserved_bytes moved");
_Static_assert(offsetof(grey_memory_stats, committed_bytes) == 16, "grey_memory_stats.committed_bytes moved");
_Static_assert(offsetof(grey_memory_stats, allocated_bytes) == 24, "grey_memory_stats.allocated_bytes moved");
_Static_assert(offsetof(grey_memory_stats, free_bytes) == 32, "grey_memory_stats.free_bytes moved");
_Static_assert(offsetof(grey_memory_stats, largest_free_bytes) == 40, "grey_memory_stats.largest_free_bytes moved");
_Static_assert(offsetof(grey_memory_stats, allocation_count) == 48, "grey_memory_stats.allocation_count moved");
_Static_assert(offsetof(grey_memory_stats, growth_count) == 56, "grey_memory_stats.growth_count moved");
_Static_assert(offsetof(grey_memory_stats, granularity_bytes) == 64, "grey_memory_stats.granularity_bytes moved");
_Static_assert(offsetof(grey_memory_stats, fragmentation) == 72, "grey_memory_stats.fragmentation moved");
_Static_assert(sizeof(grey_buffer_mapping) == 32, "size of grey_buffer_mapping changed");
_Static_assert(offsetof(grey_buffer_mapping, struct_size) == 0, "grey_buffer_mapping.struct_size moved");
_Static_assert(offsetof(grey_buffer_mapping, kind) == 4, "grey_buffer_mapping.kind moved");
_Static_assert(offsetof(grey_buffer_mapping, address) == 8, "grey_buffer_mapping.address moved");
_Static_assert(offsetof(grey_buffer_mapping, size_bytes) == 16, "grey_buffer_mapping.size_bytes moved");
_Static_assert(offsetof(grey_buffer_mapping, vendor_device) == 24, "grey_buffer_mapping.vendor_device moved");
_Static_assert(offsetof(grey_buffer_mapping, reserved0) == 28, "grey_buffer_mapping.reserved0 moved");
_Static_assert(sizeof(grey_tensor_desc) == 80, "size of grey_tensor_desc changed");
_Static_assert(offsetof(grey_tensor_desc, struct_size) == 0, "grey_tensor_desc.struct_size moved");
_Static_assert(offsetof(grey_tensor_desc, dtype) == 4, "grey_tensor_desc.dtype moved");
_Static_assert(offsetof(grey_tensor_desc, rank) == 8, "grey_tensor_desc.rank moved");
_Static_assert(offsetof(grey_tensor_desc, reserved0) == 12, "grey_tensor_desc.reserved0 moved");
_Static_assert(offsetof(grey_tensor_desc, shape) == 16, "grey_tensor_desc.shape moved");
_Static_assert(sizeof(grey_model_write_options) == 8, "size of grey_model_write_options changed");
_Static_assert(offsetof(grey_model_write_options, struct_size) == 0, "grey_model_write_options.struct_size moved");
_Static_assert(offsetof(grey_model_write_options, replace) == 4, "grey_model_write_options.replace moved");
_Static_assert(sizeof(grey_model_tensor) == 112, "size of grey_model_tensor changed");
_Static_assert(offsetof(grey_model_tensor, struct_size) == 0, "grey_model_tensor.struct_size moved");
_Static_assert(offsetof(grey_model_tensor, file_type) == 4, "grey_model_tensor.file_type moved");
_Static_assert(offsetof(grey_model_tensor, name) == 8, "grey_model_tensor.name moved");
_Static_assert(offsetof(grey_model_tensor, data) == 16, "grey_model_tensor.data moved");
_Static_assert(offsetof(grey_model_tensor, size_bytes) == 24, "grey_model_tensor.size_bytes moved");
_Static_assert(offsetof(grey_model_tensor, desc) == 32, "grey_model_tensor.desc moved");
_Static_assert(sizeof(grey_quant_params) == 24, "size of grey_quant_params changed");
_Static_assert(offsetof(grey_quant_params, struct_size) == 0, "grey_quant_params.struct_size moved");
_Static_assert(offsetof(grey_quant_params, format) == 4, "grey_quant_params.format moved");
_Static_assert(offsetof(grey_quant_params, calibration) == 8, "grey_quant_params.calibration moved");
_Static_assert(offsetof(grey_quant_params, group_size) == 12, "grey_quant_params.group_size moved");
_Static_assert(offsetof(grey_quant_params, axis) == 16, "grey_quant_params.axis moved");
_Static_assert(offsetof(grey_quant_params, reserved0) == 20, "grey_quant_params.reserved0 moved");
_Static_assert(sizeof(grey_quant_report) == 72, "size of grey_quant_report changed");
_Static_assert(offsetof(grey_quant_report, struct_size) == 0, "grey_quant_report.struct_size moved");
_Static_assert(offsetof(grey_quant_report, calibration) == 4, "grey_quant_report.calibration moved");
_Static_assert(offsetof(grey_quant_report, elements) == 8, "grey_quant_report.elements moved");
_Static_assert(offsetof(grey_quant_report, bytes) == 16, "grey_quant_report.bytes moved");
_Static_assert(offsetof(grey_quant_report, bits_per_weight) == 24, "grey_quant_report.bits_per_weight moved");
_Static_assert(offsetof(grey_quant_report, rel_rmse) == 32, "grey_quant_report.rel_rmse moved");
_Static_assert(offsetof(grey_quant_report, sqnr_db) == 40, "grey_quant_report.sqnr_db moved");
_Static_assert(offsetof(grey_quant_report, max_abs_err) == 48, "grey_quant_report.max_abs_err moved");
_Static_assert(offsetof(grey_quant_report, sum_squared_error) == 56, "grey_quant_report.sum_squared_error moved");
_Static_assert(offsetof(grey_quant_report, sum_squared_signal) == 64, "grey_quant_report.sum_squared_signal moved");
_Static_assert(sizeof(grey_audit_options) == 56, "size of grey_audit_options changed");
_Static_assert(offsetof(grey_audit_options, struct_size) == 0, "grey_audit_options.struct_size moved");
_Static_assert(offsetof(grey_audit_options, durability) == 4, "grey_audit_options.durability moved");
_Static_assert(offsetof(grey_audit_options, log_path) == 8, "grey_audit_options.log_path moved");
_Static_assert(offsetof(grey_audit_options, key_path) == 16, "grey_audit_options.key_path moved");
_Static_assert(offsetof(grey_audit_options, signing_key_path) == 24, "grey_audit_options.signing_key_path moved");
_Static_assert(offsetof(grey_audit_options, group_records) == 32, "grey_audit_options.group_records moved");
_Static_assert(offsetof(grey_audit_options, group_ms) == 36, "grey_audit_options.group_ms moved");
_Static_assert(offsetof(grey_audit_options, epoch_records) == 40, "grey_audit_options.epoch_records moved");
_Static_assert(offsetof(grey_audit_options, epoch_seconds) == 48, "grey_audit_options.epoch_seconds moved");
_Static_assert(sizeof(grey_audit_keygen_options) == 40, "size of grey_audit_keygen_options changed");
_Static_assert(offsetof(grey_audit_keygen_options, struct_size) == 0, "grey_audit_keygen_options.struct_size moved");
_Static_assert(offsetof(grey_audit_keygen_options, ed25519) == 4, "grey_audit_keygen_options.ed25519 moved");
_Static_assert(offsetof(grey_audit_keygen_options, verifier_key_path) == 8, "grey_audit_keygen_options.verifier_key_path moved");
_Static_assert(offsetof(grey_audit_keygen_options, writer_key_path) == 16, "grey_audit_keygen_options.writer_key_path moved");
_Static_assert(offsetof(grey_audit_keygen_options, ed25519_private_path) == 24, "grey_audit_keygen_options.ed25519_private_path moved");
_Static_assert(offsetof(grey_audit_keygen_options, ed25519_public_path) == 32, "grey_audit_keygen_options.ed25519_public_path moved");
_Static_assert(sizeof(grey_audit_log_info) == 80, "size of grey_audit_log_info changed");
_Static_assert(offsetof(grey_audit_log_info, struct_size) == 0, "grey_audit_log_info.struct_size moved");
_Static_assert(offsetof(grey_audit_log_info, epoch) == 4, "grey_audit_log_info.epoch moved");
_Static_assert(offsetof(grey_audit_log_info, records) == 8, "grey_audit_log_info.records moved");
_Static_assert(offsetof(grey_audit_log_info, pending) == 16, "grey_audit_log_info.pending moved");
_Static_assert(offsetof(grey_audit_log_info, recovered_bytes) == 24, "grey_audit_log_info.recovered_bytes moved");
_Static_assert(offsetof(grey_audit_log_info, log_id) == 32, "grey_audit_log_info.log_id moved");
_Static_assert(offsetof(grey_audit_log_info, head_hash) == 48, "grey_audit_log_info.head_hash moved");
_Static_assert(sizeof(grey_audit_verify_options) == 48, "size of grey_audit_verify_options changed");
_Static_assert(offsetof(grey_audit_verify_options, struct_size) == 0, "grey_audit_verify_options.struct_size moved");
_Static_assert(offsetof(grey_audit_verify_options, checkpoint_count) == 4, "grey_audit_verify_options.checkpoint_count moved");
_Static_assert(offsetof(grey_audit_verify_options, log_path) == 8, "grey_audit_verify_options.log_path moved");
_Static_assert(offsetof(grey_audit_verify_options, key_path) == 16, "grey_audit_verify_options.key_path moved");
_Static_assert(offsetof(grey_audit_verify_options, checkpoint_paths) == 24, "grey_audit_verify_options.checkpoint_paths moved");
_Static_assert(offsetof(grey_audit_verify_options, public_key_path) == 32, "grey_audit_verify_options.public_key_path moved");
_Static_assert(offsetof(grey_audit_verify_options, threads) == 40, "grey_audit_verify_options.threads moved");
_Static_assert(sizeof(grey_audit_report) == 376, "size of grey_audit_report changed");
_Static_assert(offsetof(grey_audit_report, struct_size) == 0, "grey_audit_report.struct_size moved");
_Static_assert(offsetof(grey_audit_report, cause) == 4, "grey_audit_report.cause moved");
_Static_assert(offsetof(grey_audit_report, records) == 8, "grey_audit_report.records moved");
_Static_assert(offsetof(grey_audit_report, first_bad_record) == 16, "grey_audit_report.first_bad_record moved");
_Static_assert(offsetof(grey_audit_report, first_bad_offset) == 24, "grey_audit_report.first_bad_offset moved");
_Static_assert(offsetof(grey_audit_report, bad_checkpoint) == 32, "grey_audit_report.bad_checkpoint moved");
_Static_assert(offsetof(grey_audit_report, last_epoch) == 36, "grey_audit_report.last_epoch moved");
_Static_assert(offsetof(grey_audit_report, log_id) == 40, "grey_audit_report.log_id moved");
_Static_assert(offsetof(grey_audit_report, head_hash) == 56, "grey_audit_report.head_hash moved");
_Static_assert(offsetof(grey_audit_report, root_hash) == 88, "grey_audit_report.root_hash moved");
_Static_assert(offsetof(grey_audit_report, detail) == 120, "grey_audit_report.detail moved");
_Static_assert(sizeof(grey_proof_report) == 424, "size of grey_proof_report changed");
_Static_assert(offsetof(grey_proof_report, struct_size) == 0, "grey_proof_report.struct_size moved");
_Static_assert(offsetof(grey_proof_report, verified) == 4, "grey_proof_report.verified moved");
_Static_assert(offsetof(grey_proof_report, record) == 8, "grey_proof_report.record moved");
_Static_assert(offsetof(grey_proof_report, sha256) == 16, "grey_proof_report.sha256 moved");
_Static_assert(offsetof(grey_proof_report, log) == 48, "grey_proof_report.log moved");
_Static_assert(sizeof(grey_audit_checkpoint_info) == 80, "size of grey_audit_checkpoint_info changed");
_Static_assert(offsetof(grey_audit_checkpoint_info, struct_size) == 0, "grey_audit_checkpoint_info.struct_size moved");
_Static_assert(offsetof(grey_audit_checkpoint_info, epoch) == 4, "grey_audit_checkpoint_info.epoch moved");
_Static_assert(offsetof(grey_audit_checkpoint_info, size) == 8, "grey_audit_checkpoint_info.size moved");
_Static_assert(offsetof(grey_audit_checkpoint_info, time_ns) == 16, "grey_audit_checkpoint_info.time_ns moved");
_Static_assert(offsetof(grey_audit_checkpoint_info, log_id) == 24, "grey_audit_checkpoint_info.log_id moved");
_Static_assert(offsetof(grey_audit_checkpoint_info, root_hash) == 40, "grey_audit_checkpoint_info.root_hash moved");
_Static_assert(offsetof(grey_audit_checkpoint_info, ed25519_signed) == 72, "grey_audit_checkpoint_info.ed25519_signed moved");
#endif

/* Enum values are part of the ABI too. */
_Static_assert(GREY_DTYPE_OTHER == 18 && GREY_QUANT_Q4_1 == 9 && GREY_CALIBRATION_MSE == 1 &&
               GREY_MODEL_FORMAT_GGUF == 1, "dtype, quantization and model format values are frozen");
_Static_assert(GREY_MEMORY_HOST == 0 && GREY_MEMORY_CUDA_DEVICE == 1, "memory kinds are frozen");
_Static_assert(GREY_OK == 0, "GREY_OK must be 0");
_Static_assert(GREY_ERROR_INTERNAL == 11, "status values are frozen");
_Static_assert(GREY_FIELD_THROTTLE_TIME_SYNC_BOOST_NS == 40, "grey_field values are frozen");
_Static_assert(GREY_PLUGIN_ORIGIN_BESIDE_LIBRARY == 2 && GREY_PLUGIN_DIR_DUPLICATE == 3,
               "plugin directory origins and states are frozen");
_Static_assert(sizeof(grey_status) == 4 && sizeof(grey_field_state) == 4 && sizeof(grey_source) == 4,
               "enums are 32-bit");

/* And the header is usable from C: create a context, query the host device, read an error. */
int main(void) {
    grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
    grey_context* context = NULL;
    grey_device_spec spec;
    uint32_t count = 0;
    options.log_level = GREY_LOG_ERROR;
    if (grey_context_create(&options, &context) != GREY_OK) {
        fprintf(stderr, "create failed: %s\n", grey_last_error());
        return 1;
    }
    if (grey_device_count(context, &count) != GREY_OK || count < 1) return 2;
    memset(&spec, 0, sizeof spec);
    spec.struct_size = sizeof spec;
    if (grey_device_spec_get(context, 0, &spec) != GREY_OK || strcmp(spec.backend, "host") != 0) return 3;
    if (grey_device_spec_get(context, count, &spec) != GREY_ERROR_INVALID_ARGUMENT) return 4;
    if (strstr(grey_last_error(), "out of range") == NULL) return 5;
    {
        /* The search path's report from C: every entry has a path and a reason. */
        grey_plugin_dir_info dir;
        uint32_t dirs = 0, d;
        if (grey_plugin_dir_count(context, &dirs) != GREY_OK || dirs < 1) return 12;
        for (d = 0; d < dirs; ++d) {
            memset(&dir, 0, sizeof dir);
            dir.struct_size = sizeof dir;
            if (grey_plugin_dir_info_get(context, d, &dir) != GREY_OK || dir.path[0] != '/' || dir.reason[0] == '\0') return 13;
        }
    }
    {
        /* Quantization from C: a 2 x 32 tensor to Q8_0 and back. */
        float weights[64], back[64];
        unsigned char blocks[68];
        uint64_t size = 0;
        int i;
        grey_tensor_desc desc = GREY_TENSOR_DESC_INIT;
        grey_quant_params params = GREY_QUANT_PARAMS_INIT;
        grey_quant_report report;
        for (i = 0; i < 64; ++i) weights[i] = (float)(i - 32) / 8.0f;
        desc.rank = 2;
        desc.shape[0] = 2;
        desc.shape[1] = 32;
        if (grey_quant_params_from_name("q8_0", &params) != GREY_OK || params.format != GREY_QUANT_Q8_0) return 10;
        if (strcmp(grey_quant_params_name(&params), "q8_0") != 0) return 11;
        memset(&report, 0, sizeof report);
        report.struct_size = sizeof report;
        if (grey_quant_size(&desc, &params, &size) != GREY_OK || size != 68) return 6;
        if (grey_quantize(&desc, weights, sizeof weights, &params, blocks, sizeof blocks, &report) != GREY_OK) return 7;
        if (grey_dequantize(&desc, &params, blocks, sizeof blocks, back, sizeof back) != GREY_OK) return 8;
        if (report.elements != 64 || report.bits_per_weight != 8.5 || report.max_abs_err > 0.02) return 9;
    }
    grey_context_destroy(context);
    grey_context_destroy(NULL);
    printf("C11 client OK: %s, %u device(s)\n", grey_version_string(), count);
    return 0;
}
