// The waiting requests of one device and the order they are admitted in:
//
//  1. A request at priority level p > 0 that has waited p * aging_ns is overdue; overdue requests go
//     first, earliest deadline (arrival + p * aging_ns) first. This is the starvation bound.
//  2. Otherwise the highest level (0) with a waiting request, and within it start-time fair queueing
//     (Goyal, Vin and Cheng 1996): a request's start tag is max(virtual time, its tenant's previous
//     finish tag), its finish tag start + cost / weight; the smallest start tag goes first and the
//     level's virtual time becomes that tag.
//
// With fairness disabled, each level is first come, first served. Requests above `max_level` (a hot
// device admits level 0 only) are passed over, overdue or not. Not synchronised: the DeviceGate's
// mutex guards it. A linear scan picks the next request: queues are as long as the number of waiting
// threads and async tickets, which is small next to the work each stands for.
#pragma once

#include "govern/tenant.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

namespace grey::govern {

inline constexpr uint32_t kMaxLevels = 16;

struct QueuedRequest {
    uint64_t sequence = 0;
    TenantState* tenant = nullptr;
    uint32_t level = 0;
    uint64_t cost_ns = 0;
    uint64_t arrival_ns = 0;
    double start_tag = 0.0;
    uint32_t slot = 0;  // the ticket it belongs to
};

class FairQueue {
public:
    void configure(bool fairness, uint64_t aging_ns) {
        fairness_ = fairness;
        aging_ns_ = aging_ns;
    }

    // Queues a request for `tenant` (weight read now) and gives it its tags.
    void push(TenantState& tenant, uint32_t level, uint64_t cost_ns, uint64_t arrival_ns, uint32_t slot);
    // The position of the request to admit next, or nullopt when none at or above max_level waits.
    [[nodiscard]] std::optional<size_t> pick(uint64_t now_ns, uint32_t max_level) const;
    // Removes the request at `position` (from pick) as admitted: the level's virtual time advances.
    QueuedRequest take(size_t position);
    // Removes the request of ticket `slot` without admitting it (cancelled, timed out, refused).
    void remove(uint32_t slot);
    void forget(const TenantState& tenant) { finish_tags_.erase(tenant.id); }

    [[nodiscard]] bool empty() const noexcept { return waiting_.empty(); }
    [[nodiscard]] size_t size() const noexcept { return waiting_.size(); }
    [[nodiscard]] const std::vector<QueuedRequest>& requests() const noexcept { return waiting_; }
    [[nodiscard]] uint64_t deadline(const QueuedRequest& r) const noexcept { return r.arrival_ns + r.level * aging_ns_; }

private:
    bool fairness_ = true;
    uint64_t aging_ns_ = 2'000'000'000ull;
    uint64_t next_sequence_ = 0;
    std::vector<QueuedRequest> waiting_;
    std::array<double, kMaxLevels> virtual_time_{};
    std::unordered_map<uint64_t, double> finish_tags_;  // by tenant id
};

}  // namespace grey::govern
