// A tenant of the scheduler: a name, a weight, a priority level, and what it has been admitted and has
// waited. Counters are atomics because one tenant's requests go to several devices, each under its own
// lock; readers (status, metrics) may see them a moment apart but never torn.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace grey::govern {

struct TenantCounters {
    std::atomic<uint64_t> admitted_count{0};
    std::atomic<uint64_t> admitted_cost_ns{0};
    std::atomic<uint64_t> actual_cost_ns{0};   // as released (the estimate when no actual was given)
    std::atomic<uint64_t> waited_total_ns{0};
    std::atomic<uint64_t> wait_max_ns{0};
    std::atomic<uint64_t> timeouts{0};
    std::atomic<uint64_t> refused_stopped{0};
    std::atomic<uint64_t> yield_requests{0};
    std::atomic<int64_t> waiting{0};
    std::atomic<int64_t> running{0};

    void record_wait(uint64_t waited_ns) {
        waited_total_ns.fetch_add(waited_ns, std::memory_order_relaxed);
        uint64_t seen = wait_max_ns.load(std::memory_order_relaxed);
        while (waited_ns > seen && !wait_max_ns.compare_exchange_weak(seen, waited_ns, std::memory_order_relaxed)) {
        }
    }
};

struct TenantState {
    TenantState(uint64_t tenant_id, std::string tenant_name, double tenant_weight, uint32_t tenant_priority)
        : id(tenant_id), name(std::move(tenant_name)), weight(tenant_weight), priority(tenant_priority) {}

    const uint64_t id;
    const std::string name;
    std::atomic<double> weight;
    const uint32_t priority;  // 0 is the highest level
    TenantCounters counters;
};

}  // namespace grey::govern
