// Admission to one device: the fair queue, the pacer that holds admitted device time to the
// controller's duty, the tickets of queued and running work, and the threads waiting for them.
#pragma once

#include "govern/clock.hpp"
#include "govern/controller.hpp"
#include "govern/fair_queue.hpp"
#include "govern/pacer.hpp"
#include "govern/tenant.hpp"

#include "grey.h"

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

namespace grey::govern {

struct GateSettings {
    uint32_t priority_levels = 3;  // scheduling.priority_levels
    bool fairness = true;          // scheduling.fairness_enabled
    bool preemption = false;       // scheduling.preemption_allowed
    uint64_t aging_ns = 2'000'000'000ull;
    uint64_t burst_ns = 20'000'000ull;
    uint64_t slice_ns = 2'000'000ull;  // the largest piece an admission's batch_scale suggests while pacing
};

// What an admission hands back.
struct Admission {
    uint64_t ticket = 0;
    uint64_t waited_ns = 0;
    double batch_scale = 1.0;
    double duty = 1.0;
};

// A consistent copy of a gate's state, for status and metrics.
struct GateSnapshot {
    Decision decision;
    bool stopped = false;
    uint64_t waiting = 0;
    uint64_t running = 0;
    uint64_t admitted_count = 0;
    uint64_t admitted_cost_ns = 0;
    uint64_t paced_ns = 0;    // time with a duty below 1
    uint64_t hot_ns = 0;      // time admitting the highest level only
    uint64_t unknown_ns = 0;  // time with the temperature unknown
    uint64_t stopped_ns = 0;
    uint64_t mode_changes = 0;
    uint64_t yield_requests = 0;
};

class DeviceGate {
public:
    DeviceGate(uint32_t device, const Clock& clock, const GateSettings& settings);

    void configure(const GateSettings& settings);

    // Blocks until the work may start (GREY_OK), `timeout_ns` passes (GREY_ERROR_TIMEOUT; 0 never waits,
    // UINT64_MAX waits for ever) or an emergency stop refuses it (GREY_ERROR_STOPPED).
    grey_status admit(TenantState& tenant, uint64_t cost_ns, uint64_t timeout_ns, Admission& out);
    // Queues a request and returns its ticket at once; wait() learns when it is admitted.
    uint64_t submit(TenantState& tenant, uint64_t cost_ns);
    // Waits for a submitted ticket. On GREY_ERROR_TIMEOUT the request stays queued.
    grey_status wait(TenantState& tenant, uint64_t ticket, uint64_t timeout_ns, Admission& out);
    void cancel(TenantState& tenant, uint64_t ticket);
    // Ends admitted work. `actual_ns` (0: unknown) corrects the pacer for the estimate's error.
    void release(TenantState& tenant, uint64_t ticket, uint64_t actual_ns);
    [[nodiscard]] bool should_yield(TenantState& tenant, uint64_t ticket);

    // The controller's latest decision, applied at `now_ns`.
    void apply(const Decision& decision, uint64_t now_ns);
    void set_stopped(bool stopped);
    // Drops every ticket of a tenant that is going away.
    void forget(TenantState& tenant);
    // Runs the admission loop now (the control thread calls this every period).
    void poke();

    [[nodiscard]] GateSnapshot snapshot() const;
    [[nodiscard]] uint32_t device() const noexcept { return device_; }

private:
    enum class TicketState : uint8_t { Free, Queued, Admitted, Refused };
    struct Ticket {
        TicketState state = TicketState::Free;
        bool yield = false;
        uint16_t generation = 0;
        uint32_t level = 0;
        TenantState* tenant = nullptr;
        uint64_t cost_ns = 0;
        uint64_t arrival_ns = 0;
        uint64_t waited_ns = 0;
        std::condition_variable* waiter = nullptr;
        uint32_t next_free = 0;
    };
    static constexpr uint32_t kNoSlot = UINT32_MAX;

    uint32_t allocate(TenantState& tenant, uint64_t cost_ns, uint32_t level, uint64_t now_ns, TicketState state);
    void free_slot(uint32_t slot);
    [[nodiscard]] uint64_t ticket_id(uint32_t slot) const noexcept;
    // The slot of `ticket`, which must belong to `tenant`; throws GREY_ERROR_INVALID_ARGUMENT otherwise.
    uint32_t lookup(const TenantState& tenant, uint64_t ticket) const;
    [[nodiscard]] uint32_t level_of(const TenantState& tenant) const noexcept;
    // `queued`: the request had been counted as waiting.
    void grant(uint32_t slot, uint64_t now_ns, bool queued);
    void dispatch(uint64_t now_ns);
    void mark_yields(uint32_t above_level);
    grey_status wait_locked(std::unique_lock<std::mutex>& lock, uint32_t slot, uint64_t timeout_ns, bool drop_on_timeout,
                            Admission& out);
    void fill(uint32_t slot, Admission& out) const;

    const uint32_t device_;
    const Clock& clock_;
    mutable std::mutex mutex_;
    GateSettings settings_;
    Pacer pacer_;
    FairQueue queue_;
    std::vector<Ticket> tickets_;
    uint32_t free_head_ = kNoSlot;
    uint32_t timekeeper_ = kNoSlot;  // the waiter that wakes when the pacer next allows work
    Decision decision_;
    bool stopped_ = false;
    uint64_t last_apply_ns_ = 0;
    GateSnapshot totals_;
};

}  // namespace grey::govern
