// Decoding a container held in device memory into device memory, on the device where its backend has
// the codec_decode slot: only the header and the table cross to the host, and the blocks decode where
// they are. A block the device does not decode (lz4, zstd) or gives up on is decoded on the host from its
// payload alone, so a damaged block still fails with the host decoder's GREY_ERROR_CORRUPT naming it.
#pragma once

#include "codec/container_format.hpp"
#include "common/codec_decode.hpp"
#include "grey_backend.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace grey {
class Backend;
}

namespace grey::memory {

// A device job (codec/device_jobs.hpp) in the backend ABI's spelling: the same fields.
grey_backend_codec_block as_backend_block(const common::CodecBlockJob& job) noexcept;

// Writes the `raw_size` decoded bytes of the `container_size`-byte container at the start of `container`
// into `target` at `target_offset`. Without codec_decode the whole container is read back and decoded on
// the host.
void decode_device_container(const Backend& backend, grey_backend_buffer* container, uint64_t container_size, grey_backend_buffer* target,
                             uint64_t target_offset, uint64_t raw_size);

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
// range touches (each checked against its checksum). GREY_ERROR_INVALID_ARGUMENT for a range past the
// raw size; GREY_ERROR_CORRUPT naming the field or the block for a damaged container.
void read_device_container(const Backend& backend, grey_backend_buffer* container, uint64_t container_size, uint64_t offset,
                           std::span<std::byte> out);

}  // namespace grey::memory
