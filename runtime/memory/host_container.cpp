#include "memory/host_container.hpp"

#include "codec/container.hpp"
#include "core/backend.hpp"

#include <cstring>

namespace grey::memory {

std::shared_ptr<const HostContainer> HostContainer::hold(const Backend& backend, uint32_t device_in_backend, std::vector<std::byte> container,
                                                         uint64_t raw_size, std::shared_ptr<PinnedBudget> budget) {
    auto out = std::make_shared<HostContainer>(Key{});
    if (backend.has_codec_decode() && container.size() >= codec::kHeaderSize) {
        out->jobs_ = host_container_jobs(container, raw_size);
        if (out->jobs_ && out->jobs_->blocks.empty()) out->jobs_.reset();  // nothing for the device to decode
        if (out->jobs_) out->info_ = codec::read_container_info(container);
    }
    // Pinned only where a map copies the container to the device as it is, and while the device's budget
    // has room: past it, pageable memory holds the same bytes.
    if (out->jobs_ && budget && budget->take_for_container(container.size())) {
        // Pinning refused (the driver's limit, no memory to lock): pageable memory holds the same bytes.
        if (void* pinned = pinned_or_null(backend, device_in_backend, container.size()); pinned != nullptr) {
            std::memcpy(pinned, container.data(), container.size());
            out->data_ = static_cast<const std::byte*>(pinned);
            out->size_ = container.size();
            out->pinned_by_ = &backend;
            out->budget_ = std::move(budget);
            return out;
        }
        budget->give_back_container(container.size());
    }
    out->pageable_ = std::move(container);
    out->data_ = out->pageable_.data();
    out->size_ = out->pageable_.size();
    return out;
}

HostContainer::~HostContainer() {
    if (pinned_by_ != nullptr) {
        pinned_by_->host_free(const_cast<std::byte*>(data_));
        budget_->give_back_container(size_);
    }
}

}  // namespace grey::memory
