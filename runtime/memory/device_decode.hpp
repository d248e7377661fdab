// Decoding a container held in device memory into device memory, on the device where its backend has
// the codec_decode slot: the blocks decode where they are, from the header and the table kept on the host
// since the container was written (or, without them, read back first). A block the device does not decode (lz4, zstd) or gives up on is decoded on the host from its
// payload alone, so a damaged block still fails with the host decoder's GREY_ERROR_CORRUPT naming it.
#pragma once

#include "codec/container_format.hpp"
#include "codec/device_jobs.hpp"
#include "common/codec_decode.hpp"
#include "grey_backend.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

namespace grey {
class Backend;
}

namespace grey::memory {

// A device job (codec/device_jobs.hpp) in the backend ABI's spelling: the same fields.
grey_backend_codec_block as_backend_block(const common::CodecBlockJob& job) noexcept;

// A device container's header and table, checked, and the plan that decodes all of it, kept on the host
// from when the buffer was compressed into device memory (the host encoded the container, so it has them
// without reading anything back). A few dozen bytes a 64 KiB block.
struct DeviceContainerPlan {
    std::vector<std::byte> table;  // the container's first bytes, up to where its payloads begin
    codec::ContainerInfo info;
    codec::DeviceDecodePlan plan;  // every block's job, and the blocks only the host decodes
};
// The plan of `container` (all its bytes, in host memory) for a buffer of `raw_size` bytes; nullptr when
// the container is too short for a header (the host decoder names the problem on every read).
std::shared_ptr<const DeviceContainerPlan> plan_device_container(std::span<const std::byte> container, uint64_t raw_size);

// Writes the `raw_size` decoded bytes of the `container_size`-byte container at the start of `container`
// into `target` at `target_offset`. Without codec_decode the whole container is read back and decoded on
// the host. With `plan` (the container's, made when it was written) nothing is read back before the
// decode; without one its header and table are read back first.
void decode_device_container(const Backend& backend, grey_backend_buffer* container, uint64_t container_size, grey_backend_buffer* target,
                             uint64_t target_offset, uint64_t raw_size, const DeviceContainerPlan* plan = nullptr);

// The device jobs that decode the whole `container_size`-byte container at the start of `container` (of
// `raw_size` raw bytes) into an output from its first byte, each job's block index, and the container's
// block count; nullopt when some block only the host decodes (lz4, zstd) or the container is too short
// for a header (the host decoder then names the problem). The header and the table are checked.
struct ContainerJobs {
    std::vector<grey_backend_codec_block> blocks;
    std::vector<uint32_t> job_blocks;
    uint64_t block_count = 0;
    uint64_t block_size = 0;
};
std::optional<ContainerJobs> device_container_jobs(const Backend& backend, grey_backend_buffer* container, uint64_t container_size, uint64_t raw_size);
// The same from the container's plan kept on the host: nothing read back.
std::optional<ContainerJobs> planned_container_jobs(const DeviceContainerPlan& plan);

// The same for a container held in host memory (a buffer compressed in the host tier), planned without
// touching the device: nullopt when the container is too short for a header or some block only the host
// decodes. The header and the table are checked.
std::optional<ContainerJobs> host_container_jobs(std::span<const std::byte> container, uint64_t raw_size);

// decode_device_container for a container whose header and table (`table`: a host copy of the container's
// start, or all of it) and device jobs (every block's) are known already, so that nothing is read back
// before the decode: a host-tier container copied to the device. A block the device gives up on is
// decoded on the host from its payload in `container`, as there.
void decode_planned_container(const Backend& backend, grey_backend_buffer* container, std::span<const std::byte> table,
                              const codec::ContainerInfo& info, const ContainerJobs& jobs, grey_backend_buffer* target, uint64_t target_offset);

// After a device decode of the container at the start of `container` (whose header and table `table`
// holds) into `target` at `target_offset`: the blocks it gave up on (job j, block job_blocks[j], with
// faults[j] not kFaultNone) and `host_blocks` decoded on the host, each from its own payload read back,
// so that the host decoder names a damaged one.
void decode_faulted_on_host(const Backend& backend, grey_backend_buffer* container, std::span<const std::byte> table, const codec::ContainerInfo& info,
                            std::span<const uint32_t> faults, std::span<const uint32_t> job_blocks, std::vector<uint32_t> host_blocks,
                            grey_backend_buffer* target, uint64_t target_offset);

// Decodes the raw bytes at `offset` of the `container_size`-byte container at the start of `container`
// into `out` on the host, reading back only the header, the table and the payloads of the blocks the
// range touches (each checked against its checksum); with `plan`, only those payloads. GREY_ERROR_INVALID_ARGUMENT
// for a range past the raw size; GREY_ERROR_CORRUPT naming the field or the block for a damaged container.
void read_device_container(const Backend& backend, grey_backend_buffer* container, uint64_t container_size, uint64_t offset,
                           std::span<std::byte> out, const DeviceContainerPlan* plan = nullptr);

}  // namespace grey::memory
