#include "memory/device_decode.hpp"

#include "codec/container.hpp"
#include "codec/device_jobs.hpp"
#include "core/backend.hpp"
#include "core/error.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace grey::memory {
namespace {

void decode_on_host(const Backend& backend, grey_backend_buffer* container, uint64_t container_size, grey_backend_buffer* target,
                    uint64_t target_offset, uint64_t raw_size) {
    std::vector<std::byte> staged(container_size);
    backend.buffer_read(container, 0, staged.data(), staged.size());
    std::vector<std::byte> raw(raw_size);
    codec::decode_into(staged, raw);
    backend.buffer_write(target, target_offset, raw.data(), raw.size());
}

// The header and the table of a container in device memory, read back only that far, and checked.
std::vector<std::byte> read_table(const Backend& backend, grey_backend_buffer* container, uint64_t container_size, codec::ContainerInfo& info) {
    std::vector<std::byte> table(codec::kHeaderSize);
    backend.buffer_read(container, 0, table.data(), table.size());
    const uint64_t table_end = std::min(codec::container_table_end(std::span<const std::byte, codec::kHeaderSize>(table.data(), codec::kHeaderSize)),
                                        container_size);
    table.resize(table_end);
    backend.buffer_read(container, codec::kHeaderSize, table.data() + codec::kHeaderSize, table_end - codec::kHeaderSize);
    info = codec::read_container_table(table, container_size);
    return table;
}

}  // namespace

static_assert(sizeof(grey_backend_codec_block) == sizeof(common::CodecBlockJob) &&
              offsetof(grey_backend_codec_block, checksum_seed) == offsetof(common::CodecBlockJob, checksum_seed) &&
              offsetof(grey_backend_codec_block, element_width) == offsetof(common::CodecBlockJob, element_width));

grey_backend_codec_block as_backend_block(const common::CodecBlockJob& job) noexcept {
    grey_backend_codec_block block;
    std::memcpy(&block, &job, sizeof block);
    return block;
}

namespace {

// Decodes the jobs `blocks` (block `job_blocks[j]` each, outputs from the raw bytes' start) of the container
// at the start of `container` on the device into `target` at `target_offset`, and `host_blocks` with every
// block the device gave up on on the host, each from its own payload read back.
void decode_jobs(const Backend& backend, grey_backend_buffer* container, std::span<const std::byte> table, const codec::ContainerInfo& info,
                 std::vector<grey_backend_codec_block> blocks, std::span<const uint32_t> job_blocks, std::vector<uint32_t> host_blocks,
                 grey_backend_buffer* target, uint64_t target_offset) {
    for (grey_backend_codec_block& block : blocks) block.output += target_offset;
    std::vector<grey_backend_buffer*> containers(blocks.size(), container);
    std::vector<uint32_t> faults(blocks.size(), 0);
    backend.codec_decode(containers, target, blocks, faults);
    decode_faulted_on_host(backend, container, table, info, faults, job_blocks, std::move(host_blocks), target, target_offset);
}

}  // namespace

void decode_faulted_on_host(const Backend& backend, grey_backend_buffer* container, std::span<const std::byte> table, const codec::ContainerInfo& info,
                            std::span<const uint32_t> faults, std::span<const uint32_t> job_blocks, std::vector<uint32_t> host_blocks,
                            grey_backend_buffer* target, uint64_t target_offset) {
    for (size_t j = 0; j < faults.size(); ++j)
        if (faults[j] != common::kFaultNone) host_blocks.push_back(job_blocks[j]);
    if (host_blocks.empty()) return;
    std::sort(host_blocks.begin(), host_blocks.end());
    std::vector<std::byte> payload, raw;
    for (const uint32_t b : host_blocks) {
        const codec::BlockEntry& entry = info.blocks[b];
        payload.resize(entry.stored_size);
        raw.resize(entry.raw_size);
        backend.buffer_read(container, info.payload_start + entry.offset, payload.data(), payload.size());
        codec::decode_block_payload(table, info, b, payload, raw);
        backend.buffer_write(target, target_offset + uint64_t{b} * info.block_size, raw.data(), raw.size());
    }
}

std::shared_ptr<const DeviceContainerPlan> plan_device_container(std::span<const std::byte> container, uint64_t raw_size) {
    if (container.size() < codec::kHeaderSize) return nullptr;
    auto out = std::make_shared<DeviceContainerPlan>();
    out->info = codec::read_container_info(container);
    if (out->info.raw_size != raw_size)
        fail(GREY_ERROR_CORRUPT, "codec container: raw size " + std::to_string(out->info.raw_size) + ", expected " + std::to_string(raw_size));
    out->table.assign(container.begin(), container.begin() + static_cast<std::ptrdiff_t>(out->info.payload_start));
    out->plan = codec::device_decode_plan(out->table, out->info, 0, raw_size);
    return out;
}

void decode_device_container(const Backend& backend, grey_backend_buffer* container, uint64_t container_size, grey_backend_buffer* target,
                             uint64_t target_offset, uint64_t raw_size, const DeviceContainerPlan* plan) {
    if (!backend.has_codec_decode() || container_size < codec::kHeaderSize) {
        decode_on_host(backend, container, container_size, target, target_offset, raw_size);
        return;
    }
    if (plan != nullptr) {
        // Planned when the container was written: the decode is the first thing to touch the device.
        std::vector<grey_backend_codec_block> blocks(plan->plan.jobs.size());
        for (size_t j = 0; j < blocks.size(); ++j) blocks[j] = as_backend_block(plan->plan.jobs[j]);
        decode_jobs(backend, container, plan->table, plan->info, std::move(blocks), plan->plan.job_blocks, plan->plan.host_blocks, target,
                    target_offset);
        return;
    }
    codec::ContainerInfo info;
    const std::vector<std::byte> table = read_table(backend, container, container_size, info);
    if (info.raw_size != raw_size)
        fail(GREY_ERROR_CORRUPT, "codec container: raw size " + std::to_string(info.raw_size) + ", expected " + std::to_string(raw_size));
    const codec::DeviceDecodePlan plan_read = codec::device_decode_plan(table, info, 0, raw_size);
    std::vector<grey_backend_codec_block> blocks(plan_read.jobs.size());
    for (size_t j = 0; j < blocks.size(); ++j) blocks[j] = as_backend_block(plan_read.jobs[j]);
    decode_jobs(backend, container, table, info, std::move(blocks), plan_read.job_blocks, plan_read.host_blocks, target, target_offset);
}

void decode_planned_container(const Backend& backend, grey_backend_buffer* container, std::span<const std::byte> table,
                              const codec::ContainerInfo& info, const ContainerJobs& jobs, grey_backend_buffer* target, uint64_t target_offset) {
    decode_jobs(backend, container, table, info, jobs.blocks, jobs.job_blocks, {}, target, target_offset);
}

namespace {

std::optional<ContainerJobs> jobs_of(std::span<const std::byte> table, const codec::ContainerInfo& info, uint64_t raw_size) {
    if (info.raw_size != raw_size)
        fail(GREY_ERROR_CORRUPT, "codec container: raw size " + std::to_string(info.raw_size) + ", expected " + std::to_string(raw_size));
    codec::DeviceDecodePlan plan = codec::device_decode_plan(table, info, 0, raw_size);
    if (!plan.host_blocks.empty()) return std::nullopt;
    ContainerJobs out;
    out.blocks.reserve(plan.jobs.size());
    for (const common::CodecBlockJob& job : plan.jobs) out.blocks.push_back(as_backend_block(job));
    out.job_blocks = std::move(plan.job_blocks);
    out.block_count = info.blocks.size();
    out.block_size = info.block_size;
    return out;
}

}  // namespace

std::optional<ContainerJobs> device_container_jobs(const Backend& backend, grey_backend_buffer* container, uint64_t container_size, uint64_t raw_size) {
    if (container_size < codec::kHeaderSize) return std::nullopt;
    codec::ContainerInfo info;
    const std::vector<std::byte> table = read_table(backend, container, container_size, info);
    return jobs_of(table, info, raw_size);
}

std::optional<ContainerJobs> planned_container_jobs(const DeviceContainerPlan& plan) {
    if (!plan.plan.host_blocks.empty()) return std::nullopt;
    ContainerJobs out;
    out.blocks.reserve(plan.plan.jobs.size());
    for (const common::CodecBlockJob& job : plan.plan.jobs) out.blocks.push_back(as_backend_block(job));
    out.job_blocks = plan.plan.job_blocks;
    out.block_count = plan.info.blocks.size();
    out.block_size = plan.info.block_size;
    return out;
}

std::optional<ContainerJobs> host_container_jobs(std::span<const std::byte> container, uint64_t raw_size) {
    if (container.size() < codec::kHeaderSize) return std::nullopt;
    return jobs_of(container, codec::read_container_info(container), raw_size);
}

void read_device_container(const Backend& backend, grey_backend_buffer* container, uint64_t container_size, uint64_t offset,
                           std::span<std::byte> out, const DeviceContainerPlan* plan) {
    if (out.empty()) return;
    if (container_size < codec::kHeaderSize) {  // too short for a header: the host decoder names the problem
        std::vector<std::byte> staged(container_size);
        backend.buffer_read(container, 0, staged.data(), staged.size());
        codec::decode_range(staged, codec::read_container_info(staged), offset, out);
        return;
    }
    codec::ContainerInfo read_info;
    std::vector<std::byte> read_table_bytes;
    if (plan == nullptr) read_table_bytes = read_table(backend, container, container_size, read_info);
    const std::span<const std::byte> table = plan != nullptr ? std::span<const std::byte>(plan->table) : std::span<const std::byte>(read_table_bytes);
    const codec::ContainerInfo& info = plan != nullptr ? plan->info : read_info;
    // The touched blocks' payloads lie back to back: one read brings them all.
    const codec::PayloadRange needed = codec::payloads_of_range(info, offset, out.size());
    std::vector<std::byte> payloads(needed.end - needed.first);
    backend.buffer_read(container, info.payload_start + needed.first, payloads.data(), payloads.size());
    codec::decode_range_payloads(table, info, offset, payloads, needed.first, out);
}

}  // namespace grey::memory
