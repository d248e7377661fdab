#include "govern/device_gate.hpp"

#include "core/error.hpp"

#include <algorithm>
#include <chrono>
#include <string>

namespace grey::govern {
namespace {

uint64_t add_saturating(uint64_t a, uint64_t b) { return b > UINT64_MAX - a ? UINT64_MAX : a + b; }

std::chrono::steady_clock::time_point steady_time(uint64_t ns) {
    // SteadyClock reads CLOCK_MONOTONIC, which is what std::chrono::steady_clock is on Linux.
    const uint64_t capped = std::min<uint64_t>(ns, static_cast<uint64_t>(INT64_MAX / 2));
    return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(capped));
}

}  // namespace

DeviceGate::DeviceGate(uint32_t device, const Clock& clock, const GateSettings& settings)
    : device_(device), clock_(clock), settings_(settings) {
    queue_.configure(settings.fairness, settings.aging_ns);
    pacer_.start(clock.now_ns(), settings.burst_ns);
    last_apply_ns_ = clock.now_ns();
}

void DeviceGate::configure(const GateSettings& settings) {
    std::lock_guard lock(mutex_);
    settings_ = settings;
    queue_.configure(settings.fairness, settings.aging_ns);
    pacer_.configure(settings.burst_ns);
    if (!settings.preemption)
        for (Ticket& t : tickets_) t.yield = false;
    dispatch(clock_.now_ns());
}

uint64_t DeviceGate::ticket_id(uint32_t slot) const noexcept {
    return (static_cast<uint64_t>(device_) << 48) | (static_cast<uint64_t>(tickets_[slot].generation) << 32) | slot;
}

uint32_t DeviceGate::lookup(const TenantState& tenant, uint64_t ticket) const {
    const auto slot = static_cast<uint32_t>(ticket & 0xFFFFFFFFu);
    const auto generation = static_cast<uint16_t>((ticket >> 32) & 0xFFFFu);
    if ((ticket >> 48) != device_ || slot >= tickets_.size() || tickets_[slot].generation != generation ||
        tickets_[slot].state == TicketState::Free)
        fail(GREY_ERROR_INVALID_ARGUMENT, "ticket " + std::to_string(ticket) + " is not a live ticket of device " +
                                              std::to_string(device_) + " (already released, cancelled or never issued)");
    if (tickets_[slot].tenant != &tenant)
        fail(GREY_ERROR_INVALID_ARGUMENT, "ticket " + std::to_string(ticket) + " belongs to another tenant than '" + tenant.name + "'");
    return slot;
}

uint32_t DeviceGate::level_of(const TenantState& tenant) const noexcept {
    return std::min(tenant.priority, settings_.priority_levels - 1);
}

uint32_t DeviceGate::allocate(TenantState& tenant, uint64_t cost_ns, uint32_t level, uint64_t now_ns, TicketState state) {
    uint32_t slot = free_head_;
    if (slot != kNoSlot) {
        free_head_ = tickets_[slot].next_free;
    } else {
        if (tickets_.size() >= UINT32_MAX - 1) fail(GREY_ERROR_OUT_OF_MEMORY, "too many tickets are live on one device");
        slot = static_cast<uint32_t>(tickets_.size());
        tickets_.emplace_back();
    }
    Ticket& t = tickets_[slot];
    t.generation = static_cast<uint16_t>(t.generation + 1 == 0 ? 1 : t.generation + 1);
    t.state = state;
    t.yield = false;
    t.level = level;
    t.tenant = &tenant;
    t.cost_ns = cost_ns;
    t.arrival_ns = now_ns;
    t.waited_ns = 0;
    t.waiter = nullptr;
    return slot;
}

void DeviceGate::free_slot(uint32_t slot) {
    Ticket& t = tickets_[slot];
    t.state = TicketState::Free;
    t.tenant = nullptr;
    t.waiter = nullptr;
    t.next_free = free_head_;
    free_head_ = slot;
    if (timekeeper_ == slot) timekeeper_ = kNoSlot;
}

void DeviceGate::grant(uint32_t slot, uint64_t now_ns, bool queued) {
    Ticket& t = tickets_[slot];
    t.state = TicketState::Admitted;
    t.waited_ns = now_ns - std::min(now_ns, t.arrival_ns);
    pacer_.take(t.cost_ns);
    TenantCounters& c = t.tenant->counters;
    if (queued) c.waiting.fetch_sub(1, std::memory_order_relaxed);
    c.running.fetch_add(1, std::memory_order_relaxed);
    c.admitted_count.fetch_add(1, std::memory_order_relaxed);
    c.admitted_cost_ns.fetch_add(t.cost_ns, std::memory_order_relaxed);
    c.record_wait(t.waited_ns);
    ++totals_.admitted_count;
    totals_.admitted_cost_ns += t.cost_ns;
    if (timekeeper_ == slot) timekeeper_ = kNoSlot;
    if (t.waiter != nullptr) t.waiter->notify_one();
}

void DeviceGate::mark_yields(uint32_t above_level) {
    for (Ticket& t : tickets_)
        if (t.state == TicketState::Admitted && t.level > above_level && !t.yield) {
            t.yield = true;
            t.tenant->counters.yield_requests.fetch_add(1, std::memory_order_relaxed);
            ++totals_.yield_requests;
        }
}

void DeviceGate::dispatch(uint64_t now_ns) {
    pacer_.refill(now_ns);
    if (stopped_) return;
    std::optional<size_t> next = queue_.pick(now_ns, decision_.max_level);
    while (next && pacer_.ready()) {
        const QueuedRequest r = queue_.take(*next);
        grant(r.slot, now_ns, true);
        next = queue_.pick(now_ns, decision_.max_level);
    }
    if (settings_.preemption) {
        if (decision_.max_level != kAllLevels) mark_yields(decision_.max_level);
        if (next) mark_yields(queue_.requests()[*next].level);
    }
    // Someone must wake when the pacer next allows work: the next request's own waiter, or any waiter
    // when the next request is an async ticket nobody is waiting on.
    uint32_t keeper = kNoSlot;
    if (next) {
        const uint32_t slot = queue_.requests()[*next].slot;
        if (tickets_[slot].waiter != nullptr) keeper = slot;
        else
            for (const QueuedRequest& r : queue_.requests())
                if (tickets_[r.slot].waiter != nullptr) {
                    keeper = r.slot;
                    break;
                }
    }
    if (keeper != timekeeper_) {
        timekeeper_ = keeper;
        if (keeper != kNoSlot) tickets_[keeper].waiter->notify_one();
    }
}

void DeviceGate::fill(uint32_t slot, Admission& out) const {
    out.ticket = ticket_id(slot);
    out.waited_ns = tickets_[slot].waited_ns;
    // While pacing, a piece of at most slice_ns: the duty's scale alone would let a host heat the device
    // in bursts as long as its full batch times the duty, whose swings the sensor sees between them.
    const uint64_t cost = tickets_[slot].cost_ns;
    out.batch_scale = decision_.batch_scale < 1.0 && cost > settings_.slice_ns
                          ? std::min(decision_.batch_scale, static_cast<double>(settings_.slice_ns) / static_cast<double>(cost))
                          : decision_.batch_scale;
    out.duty = decision_.duty;
}

grey_status DeviceGate::wait_locked(std::unique_lock<std::mutex>& lock, uint32_t slot, uint64_t timeout_ns, bool drop_on_timeout,
                                    Admission& out) {
    const uint64_t deadline = add_saturating(clock_.now_ns(), timeout_ns);
    std::condition_variable cv;
    Ticket* t = &tickets_[slot];
    if (t->state == TicketState::Queued) {
        if (t->waiter != nullptr) fail(GREY_ERROR_INVALID_ARGUMENT, "another thread is already waiting on ticket " + std::to_string(ticket_id(slot)));
        t->waiter = &cv;
    }
    for (;;) {
        const uint64_t now = clock_.now_ns();
        dispatch(now);
        t = &tickets_[slot];  // dispatch never reallocates, but allocation by other threads may have
        if (t->state == TicketState::Admitted) {
            t->waiter = nullptr;
            fill(slot, out);
            return GREY_OK;
        }
        if (t->state == TicketState::Refused) {
            t->tenant->counters.refused_stopped.fetch_add(1, std::memory_order_relaxed);
            t->tenant->counters.waiting.fetch_sub(1, std::memory_order_relaxed);
            free_slot(slot);
            return GREY_ERROR_STOPPED;
        }
        if (now >= deadline || !clock_.real_time()) {
            t->waiter = nullptr;
            if (timekeeper_ == slot) timekeeper_ = kNoSlot;
            if (drop_on_timeout) {
                t->tenant->counters.timeouts.fetch_add(1, std::memory_order_relaxed);
                t->tenant->counters.waiting.fetch_sub(1, std::memory_order_relaxed);
                queue_.remove(slot);
                free_slot(slot);
                dispatch(now);  // someone else may have to keep time now
            }
            return GREY_ERROR_TIMEOUT;
        }
        uint64_t wake = deadline;
        if (timekeeper_ == slot) wake = std::min(wake, pacer_.ready_at(now));
        cv.wait_until(lock, steady_time(wake));
    }
}

grey_status DeviceGate::admit(TenantState& tenant, uint64_t cost_ns, uint64_t timeout_ns, Admission& out) {
    std::unique_lock lock(mutex_);
    const uint64_t now = clock_.now_ns();
    if (stopped_) {
        tenant.counters.refused_stopped.fetch_add(1, std::memory_order_relaxed);
        return GREY_ERROR_STOPPED;
    }
    const uint32_t level = level_of(tenant);
    pacer_.refill(now);
    if (queue_.empty() && level <= decision_.max_level && pacer_.ready()) {
        // The uncontended path: nothing waits, so nothing to order.
        const uint32_t slot = allocate(tenant, cost_ns, level, now, TicketState::Queued);
        grant(slot, now, false);
        fill(slot, out);
        return GREY_OK;
    }
    const uint32_t slot = allocate(tenant, cost_ns, level, now, TicketState::Queued);
    tenant.counters.waiting.fetch_add(1, std::memory_order_relaxed);
    queue_.push(tenant, level, cost_ns, now, slot);
    return wait_locked(lock, slot, timeout_ns, true, out);
}

uint64_t DeviceGate::submit(TenantState& tenant, uint64_t cost_ns) {
    std::lock_guard lock(mutex_);
    const uint64_t now = clock_.now_ns();
    if (stopped_) {
        tenant.counters.refused_stopped.fetch_add(1, std::memory_order_relaxed);
        fail(GREY_ERROR_STOPPED, "device " + std::to_string(device_) + ": an emergency stop is in force; no work is admitted");
    }
    const uint32_t level = level_of(tenant);
    const uint32_t slot = allocate(tenant, cost_ns, level, now, TicketState::Queued);
    tenant.counters.waiting.fetch_add(1, std::memory_order_relaxed);
    queue_.push(tenant, level, cost_ns, now, slot);
    dispatch(now);
    return ticket_id(slot);
}

grey_status DeviceGate::wait(TenantState& tenant, uint64_t ticket, uint64_t timeout_ns, Admission& out) {
    std::unique_lock lock(mutex_);
    const uint32_t slot = lookup(tenant, ticket);
    return wait_locked(lock, slot, timeout_ns, false, out);
}

void DeviceGate::cancel(TenantState& tenant, uint64_t ticket) {
    std::lock_guard lock(mutex_);
    const uint32_t slot = lookup(tenant, ticket);
    Ticket& t = tickets_[slot];
    if (t.state == TicketState::Admitted)
        fail(GREY_ERROR_INVALID_ARGUMENT, "ticket " + std::to_string(ticket) + " has been admitted: release it instead of cancelling");
    if (t.waiter != nullptr) fail(GREY_ERROR_INVALID_ARGUMENT, "a thread is waiting on ticket " + std::to_string(ticket));
    if (t.state == TicketState::Queued) queue_.remove(slot);
    tenant.counters.waiting.fetch_sub(1, std::memory_order_relaxed);
    free_slot(slot);
    dispatch(clock_.now_ns());
}

void DeviceGate::release(TenantState& tenant, uint64_t ticket, uint64_t actual_ns) {
    std::lock_guard lock(mutex_);
    const uint32_t slot = lookup(tenant, ticket);
    Ticket& t = tickets_[slot];
    if (t.state != TicketState::Admitted)
        fail(GREY_ERROR_INVALID_ARGUMENT, "ticket " + std::to_string(ticket) + " has not been admitted: cancel it instead of releasing");
    const uint64_t now = clock_.now_ns();
    pacer_.refill(now);
    if (actual_ns != 0) pacer_.adjust(static_cast<double>(t.cost_ns) - static_cast<double>(actual_ns));
    tenant.counters.actual_cost_ns.fetch_add(actual_ns != 0 ? actual_ns : t.cost_ns, std::memory_order_relaxed);
    tenant.counters.running.fetch_sub(1, std::memory_order_relaxed);
    free_slot(slot);
    dispatch(now);
}

bool DeviceGate::should_yield(TenantState& tenant, uint64_t ticket) {
    std::lock_guard lock(mutex_);
    const uint32_t slot = lookup(tenant, ticket);
    return settings_.preemption && tickets_[slot].state == TicketState::Admitted && tickets_[slot].yield;
}

void DeviceGate::apply(const Decision& decision, uint64_t now_ns) {
    std::lock_guard lock(mutex_);
    const uint64_t dt = now_ns > last_apply_ns_ ? now_ns - last_apply_ns_ : 0;
    last_apply_ns_ = now_ns;
    // Time is charged to the state that held during it, the previous decision's.
    if (decision_.duty < 1.0) totals_.paced_ns += dt;
    if (decision_.max_level != kAllLevels) totals_.hot_ns += dt;
    if (decision_.mode == Mode::Unknown) totals_.unknown_ns += dt;
    if (stopped_) totals_.stopped_ns += dt;
    if (decision.mode != decision_.mode) ++totals_.mode_changes;
    pacer_.refill(now_ns);
    decision_ = decision;
    pacer_.set_rate(decision.duty);
    dispatch(now_ns);
}

void DeviceGate::set_stopped(bool stopped) {
    std::lock_guard lock(mutex_);
    if (stopped == stopped_) return;
    stopped_ = stopped;
    if (stopped) {
        for (const QueuedRequest& r : queue_.requests()) {
            Ticket& t = tickets_[r.slot];
            t.state = TicketState::Refused;
            if (t.waiter != nullptr) t.waiter->notify_one();
        }
        while (!queue_.empty()) queue_.remove(queue_.requests().front().slot);
        timekeeper_ = kNoSlot;
        if (settings_.preemption)
            for (Ticket& t : tickets_)
                if (t.state == TicketState::Admitted && !t.yield) {
                    t.yield = true;
                    ++totals_.yield_requests;
                    t.tenant->counters.yield_requests.fetch_add(1, std::memory_order_relaxed);
                }
    }
    dispatch(clock_.now_ns());
}

void DeviceGate::forget(TenantState& tenant) {
    std::lock_guard lock(mutex_);
    for (uint32_t slot = 0; slot < tickets_.size(); ++slot) {
        Ticket& t = tickets_[slot];
        if (t.state == TicketState::Free || t.tenant != &tenant) continue;
        if (t.state == TicketState::Queued) queue_.remove(slot);
        free_slot(slot);
    }
    queue_.forget(tenant);
    dispatch(clock_.now_ns());
}

void DeviceGate::poke() {
    std::lock_guard lock(mutex_);
    dispatch(clock_.now_ns());
}

GateSnapshot DeviceGate::snapshot() const {
    std::lock_guard lock(mutex_);
    GateSnapshot s = totals_;
    s.decision = decision_;
    s.stopped = stopped_;
    if (stopped_) s.decision.mode = Mode::Stopped;
    s.waiting = queue_.size();
    for (const Ticket& t : tickets_)
        if (t.state == TicketState::Admitted) ++s.running;
    return s;
}

}  // namespace grey::govern
