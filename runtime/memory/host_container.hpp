// The LT-Block container of a buffer compressed in the host tier. Where the device decodes every block
// of it, a map copies it to the device as it is, so it is held in page-locked (pinned) memory from the
// device's backend (its host_alloc slot, the one grey_host_alloc uses): the copy is then a DMA queued
// on the map's stream, which the call does not wait for. Where pinning is not possible (a backend
// without the slot, the pinned-memory limit reached) or would serve nothing (a container the host
// decodes) or would take the device past its budget of pinned bytes (memory.compression.pinned_host_mb:
// page-locked memory is taken from the system's, which cannot page it out), it is held in ordinary
// pageable memory: the same bytes, only copied slower (an async map copies them on its stream through
// pinned staging where it can: Tiers::stage_host_container_locked). Immutable once made, and shared: a fill still
// copying from it on a stream keeps it alive (memory/working_set.hpp).
#pragma once

#include "codec/container_format.hpp"
#include "memory/device_decode.hpp"
#include "memory/pinned_host.hpp"

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

class HostContainer {
public:
    // Holds `container` (of a buffer of `raw_size` bytes on device `device_in_backend` of `backend`),
    // planning its device decode once, here, for every later map; pinned only while `budget` (the
    // device's) has room for it, and its bytes given back to it when it goes.
    static std::shared_ptr<const HostContainer> hold(const Backend& backend, uint32_t device_in_backend, std::vector<std::byte> container,
                                                     uint64_t raw_size, std::shared_ptr<PinnedBudget> budget);
    ~HostContainer();
    HostContainer(const HostContainer&) = delete;
    HostContainer& operator=(const HostContainer&) = delete;

    [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
    [[nodiscard]] uint64_t size() const noexcept { return size_; }
    // Whether the bytes are in page-locked memory from the backend.
    [[nodiscard]] bool pinned() const noexcept { return pinned_by_ != nullptr; }
    // The jobs that decode every block on the device, with the container's table read; nullopt when some
    // block only the host decodes, the backend has no codec_decode slot, or the container is too short.
    [[nodiscard]] const std::optional<ContainerJobs>& jobs() const noexcept { return jobs_; }
    [[nodiscard]] const codec::ContainerInfo* info() const noexcept { return info_ ? &*info_ : nullptr; }

    // Made only by hold(), the one maker of a Key, through std::make_shared.
    class Key {
        friend class HostContainer;
        Key() = default;
    };
    explicit HostContainer(Key) {}

private:

    const std::byte* data_ = nullptr;
    uint64_t size_ = 0;
    const Backend* pinned_by_ = nullptr;  // the backend whose host_free gives the memory back
    std::shared_ptr<PinnedBudget> budget_;  // what the pinned bytes count against
    std::vector<std::byte> pageable_;     // the bytes when not pinned
    std::optional<ContainerJobs> jobs_;
    std::optional<codec::ContainerInfo> info_;
};

}  // namespace grey::memory
