// The scheduler in simulated time: weighted fair shares, the starvation bound, the hot restriction,
// emergency stops, preemption requests and the ticket rules. Requests go through the async form
// (submit, then wait with timeout 0 as a poll), so the manual clock alone moves time.
#include "simulation.hpp"

#include "core/error.hpp"
#include "govern/device_gate.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <numeric>

namespace grey::govern::test {
namespace {

double jain(const std::vector<double>& x) {
    const double sum = std::accumulate(x.begin(), x.end(), 0.0);
    double squares = 0.0;
    for (double v : x) squares += v * v;
    return sum * sum / (static_cast<double>(x.size()) * squares);
}

Decision pacing(double duty, uint32_t max_level = kAllLevels) {
    Decision d;
    d.mode = duty < 1.0 ? Mode::Pacing : Mode::Cool;
    d.duty = duty;
    d.batch_scale = duty;
    d.max_level = max_level;
    return d;
}

// Tenants that each keep `depth` requests queued at all times (saturation), for `seconds` of simulated
// time in 1 ms steps. Returns the admitted cost of each tenant, and records every request's wait.
struct Load {
    std::shared_ptr<TenantState> tenant;
    uint64_t cost_ns;
    int depth = 4;
    std::deque<uint64_t> outstanding;
    uint64_t admitted_ns = 0;
    uint64_t worst_wait_ns = 0;
};

void saturate(DeviceGate& gate, ManualClock& clock, std::vector<Load>& loads, double seconds) {
    const uint64_t end = clock.now_ns() + static_cast<uint64_t>(seconds * kSecond);
    while (clock.now_ns() < end) {
        for (Load& l : loads)
            while (static_cast<int>(l.outstanding.size()) < l.depth) l.outstanding.push_back(gate.submit(*l.tenant, l.cost_ns));
        gate.poke();
        for (Load& l : loads)
            for (auto it = l.outstanding.begin(); it != l.outstanding.end();) {
                Admission a;
                if (gate.wait(*l.tenant, *it, 0, a) == GREY_OK) {
                    l.admitted_ns += l.cost_ns;
                    l.worst_wait_ns = std::max(l.worst_wait_ns, a.waited_ns);
                    gate.release(*l.tenant, *it, 0);
                    it = l.outstanding.erase(it);
                } else {
                    ++it;
                }
            }
        clock.advance(kMs);
    }
}

std::shared_ptr<TenantState> tenant(uint64_t id, double weight, uint32_t priority = 0) {
    return std::make_shared<TenantState>(id, "t" + std::to_string(id), weight, priority);
}

TEST(Scheduler, EqualWeightsGetJainIndexAbove099OverTenSimulatedSeconds) {
    ManualClock clock;
    DeviceGate gate(0, clock, GateSettings{});
    gate.apply(pacing(0.6), clock.now_ns());
    // Four tenants, equal weight, different request sizes and queue depths: shares must still be equal.
    std::vector<Load> loads;
    const uint64_t costs[] = {1 * kMs, 3 * kMs, 7 * kMs, 500'000};
    for (uint64_t i = 0; i < 4; ++i) loads.push_back({tenant(i + 1, 1.0), costs[i], static_cast<int>(1 + i * 3)});
    saturate(gate, clock, loads, 10.0);
    std::vector<double> shares;
    for (const Load& l : loads) shares.push_back(static_cast<double>(l.admitted_ns));
    const double index = jain(shares);
    std::printf("equal weights: Jain %.5f over admitted %.3f %.3f %.3f %.3f s\n", index, shares[0] / kSecond, shares[1] / kSecond,
                shares[2] / kSecond, shares[3] / kSecond);
    EXPECT_GE(index, 0.99);
    // And the pacer held the device to its duty: 0.6 of 10 s, within one request plus the burst.
    const double total = std::accumulate(shares.begin(), shares.end(), 0.0);
    EXPECT_NEAR(total, 0.6 * 10 * kSecond, static_cast<double>(7 * kMs + GateSettings{}.burst_ns));
}

// While pacing, an admission suggests a piece of at most slice_ns of the cost asked (and never more than
// the duty's scale); at full duty, and for requests no larger than the slice, the duty's scale alone.
TEST(Scheduler, PacedAdmissionsSuggestPiecesNoLongerThanTheSlice) {
    ManualClock clock;
    GateSettings settings;
    settings.slice_ns = 2 * kMs;
    DeviceGate gate(0, clock, settings);
    const auto t = tenant(1, 1.0);
    const auto admitted = [&](uint64_t cost_ns) {
        Admission a;
        EXPECT_EQ(gate.admit(*t, cost_ns, GREY_WAIT_FOREVER, a), GREY_OK);
        gate.release(*t, a.ticket, 0);
        clock.advance(kSecond);  // the pacer refills: the next admission never waits
        return a;
    };
    EXPECT_DOUBLE_EQ(admitted(20 * kMs).batch_scale, 1.0) << "cool: the full batch";
    gate.apply(pacing(0.3), clock.now_ns());
    const Admission a = admitted(20 * kMs);
    EXPECT_DOUBLE_EQ(a.batch_scale, 0.1) << "2 ms of a 20 ms batch";
    EXPECT_DOUBLE_EQ(a.duty, 0.3);
    EXPECT_DOUBLE_EQ(admitted(5 * kMs).batch_scale, 0.3) << "the duty's scale is the smaller";
    EXPECT_DOUBLE_EQ(admitted(1 * kMs).batch_scale, 0.3) << "a request within the slice";
    EXPECT_DOUBLE_EQ(admitted(0).batch_scale, 0.3) << "no cost given";
    settings.slice_ns = 10 * kMs;
    gate.configure(settings);
    EXPECT_DOUBLE_EQ(admitted(40 * kMs).batch_scale, 0.25);
    gate.apply(pacing(1.0), clock.now_ns());
    EXPECT_DOUBLE_EQ(admitted(40 * kMs).batch_scale, 1.0) << "back to full duty";
}

TEST(Scheduler, SharesFollowWeights) {
    ManualClock clock;
    DeviceGate gate(0, clock, GateSettings{});
    std::vector<Load> loads{{tenant(1, 1.0), 2 * kMs}, {tenant(2, 2.0), 2 * kMs}, {tenant(3, 5.0), 2 * kMs}};
    saturate(gate, clock, loads, 10.0);
    const double unit = static_cast<double>(loads[0].admitted_ns);
    EXPECT_NEAR(loads[1].admitted_ns / unit, 2.0, 0.02);
    EXPECT_NEAR(loads[2].admitted_ns / unit, 5.0, 0.05);
}

TEST(Scheduler, WithoutFairnessArrivalOrderDecides) {
    ManualClock clock;
    GateSettings settings;
    settings.fairness = false;
    DeviceGate gate(0, clock, settings);
    std::vector<Load> loads{{tenant(1, 1.0), 1 * kMs, 1}, {tenant(2, 1.0), 1 * kMs, 8}};
    saturate(gate, clock, loads, 5.0);
    // First come, first served hands out turns per request: the deeper queue takes the larger share.
    EXPECT_GT(loads[1].admitted_ns, 4 * loads[0].admitted_ns);
}

TEST(Scheduler, ALowPriorityTenantWaitsNoLongerThanItsBound) {
    ManualClock clock;
    GateSettings settings;
    settings.priority_levels = 3;
    settings.aging_ns = 500 * kMs;
    DeviceGate gate(0, clock, settings);
    const double duty = 0.5;
    gate.apply(pacing(duty), clock.now_ns());
    const uint64_t cost = 4 * kMs;
    std::vector<Load> loads{{tenant(1, 1.0, 0), cost, 8}, {tenant(2, 1.0, 0), cost, 8}, {tenant(3, 1.0, 2), cost, 1}};
    saturate(gate, clock, loads, 10.0);
    // docs/govern.md: a level-p request starts within p * aging + (cost ahead of it + one cost) / duty,
    // plus one poll step here; with one such request outstanding nothing overdue is ahead of it.
    const uint64_t bound = 2 * settings.aging_ns + static_cast<uint64_t>(2.0 * cost / duty) + kMs;
    std::printf("low priority: worst wait %.1f ms, bound %.1f ms, admitted %.3f s\n", loads[2].worst_wait_ns / 1e6, bound / 1e6,
                loads[2].admitted_ns / 1e9);
    EXPECT_GT(loads[2].admitted_ns, 0u);
    EXPECT_LE(loads[2].worst_wait_ns, bound);
    EXPECT_GE(loads[2].worst_wait_ns, 2 * settings.aging_ns);  // it did wait its turn: priorities hold
}

TEST(Scheduler, HotAdmitsOnlyTheHighestLevelEvenWhenOverdue) {
    ManualClock clock;
    GateSettings settings;
    settings.aging_ns = 10 * kMs;
    DeviceGate gate(0, clock, settings);
    gate.apply(pacing(0.5, 0), clock.now_ns());
    auto low = tenant(1, 1.0, 1), high = tenant(2, 1.0, 0);
    const uint64_t low_ticket = gate.submit(*low, kMs);
    clock.advance(kSecond);  // long overdue
    const uint64_t high_ticket = gate.submit(*high, kMs);
    Admission a;
    EXPECT_EQ(gate.wait(*high, high_ticket, 0, a), GREY_OK);
    EXPECT_EQ(gate.wait(*low, low_ticket, 0, a), GREY_ERROR_TIMEOUT);
    gate.apply(pacing(0.5), clock.now_ns());  // cooled down
    EXPECT_EQ(gate.wait(*low, low_ticket, 0, a), GREY_OK);
    EXPECT_EQ(a.waited_ns, kSecond);
}

TEST(Scheduler, EmergencyStopRefusesQueuedAndNewWorkUntilResumed) {
    ManualClock clock;
    DeviceGate gate(0, clock, GateSettings{});
    auto t = tenant(1, 1.0);
    Admission a;
    ASSERT_EQ(gate.admit(*t, 100 * kMs, 0, a), GREY_OK);  // empties the bucket
    const uint64_t queued = gate.submit(*t, kMs);
    gate.set_stopped(true);
    EXPECT_EQ(gate.wait(*t, queued, 0, a), GREY_ERROR_STOPPED);
    EXPECT_THROW(gate.wait(*t, queued, 0, a), grey::Error);  // the refused ticket is gone
    EXPECT_EQ(gate.admit(*t, kMs, 0, a), GREY_ERROR_STOPPED);
    EXPECT_EQ(gate.snapshot().decision.mode, Mode::Stopped);
    EXPECT_EQ(t->counters.refused_stopped.load(), 2u);
    gate.set_stopped(false);
    clock.advance(kSecond);
    EXPECT_EQ(gate.admit(*t, kMs, 0, a), GREY_OK);
}

TEST(Scheduler, PreemptionAsksLowerLevelsToYieldOnlyWhenAllowed) {
    for (const bool allowed : {false, true}) {
        ManualClock clock;
        GateSettings settings;
        settings.preemption = allowed;
        DeviceGate gate(0, clock, settings);
        auto low = tenant(1, 1.0, 2), high = tenant(2, 1.0, 0);
        Admission running;
        ASSERT_EQ(gate.admit(*low, 200 * kMs, 0, running), GREY_OK);
        const uint64_t waiting = gate.submit(*high, kMs);  // the bucket is in debt: it waits
        Admission a;
        EXPECT_EQ(gate.wait(*high, waiting, 0, a), GREY_ERROR_TIMEOUT);
        EXPECT_EQ(gate.should_yield(*low, running.ticket), allowed);
        EXPECT_EQ(low->counters.yield_requests.load(), allowed ? 1u : 0u);
    }
}

TEST(Scheduler, TicketsBelongToTheirTenantAndDieOnce) {
    ManualClock clock;
    DeviceGate gate(0, clock, GateSettings{});
    auto a = tenant(1, 1.0), b = tenant(2, 1.0);
    Admission admission;
    ASSERT_EQ(gate.admit(*a, kMs, 0, admission), GREY_OK);
    EXPECT_THROW(gate.release(*b, admission.ticket, 0), grey::Error);
    EXPECT_THROW(gate.cancel(*a, admission.ticket), grey::Error);  // admitted: release, not cancel
    gate.release(*a, admission.ticket, 0);
    EXPECT_THROW(gate.release(*a, admission.ticket, 0), grey::Error);
    EXPECT_THROW(gate.release(*a, 0, 0), grey::Error);
    // A reused slot gets a new generation: the old ticket stays dead.
    ASSERT_EQ(gate.admit(*a, kMs, 0, admission), GREY_OK);
    const uint64_t second = admission.ticket;
    EXPECT_NE(second & 0xFFFFFFFFull, 0xFFFFFFFFull);
    gate.release(*a, second, 0);
}

TEST(Scheduler, ActualTimeCorrectsThePacer) {
    ManualClock clock;
    GateSettings settings;
    settings.burst_ns = 10 * kMs;
    DeviceGate gate(0, clock, settings);
    auto t = tenant(1, 1.0);
    Admission a;
    ASSERT_EQ(gate.admit(*t, 50 * kMs, 0, a), GREY_OK);  // estimated 50 ms: the bucket is 40 ms in debt
    EXPECT_EQ(gate.admit(*t, kMs, 0, a), GREY_ERROR_TIMEOUT);
    gate.release(*t, a.ticket, 1 * kMs);  // it took 1 ms: 49 ms come back
    ASSERT_EQ(gate.admit(*t, kMs, 0, a), GREY_OK);
    EXPECT_EQ(t->counters.actual_cost_ns.load(), 1 * kMs);
    EXPECT_EQ(t->counters.timeouts.load(), 1u);
}

TEST(Scheduler, ATenantDroppedMidQueueLeavesTheOthersServed) {
    ManualClock clock;
    DeviceGate gate(0, clock, GateSettings{});
    auto a = tenant(1, 1.0), b = tenant(2, 1.0);
    Admission admission;
    ASSERT_EQ(gate.admit(*a, 100 * kMs, 0, admission), GREY_OK);
    const uint64_t queued_a = gate.submit(*a, kMs);
    const uint64_t queued_b = gate.submit(*b, kMs);
    gate.forget(*a);
    EXPECT_THROW(gate.wait(*a, queued_a, 0, admission), grey::Error);
    clock.advance(kSecond);
    EXPECT_EQ(gate.wait(*b, queued_b, 0, admission), GREY_OK);
    EXPECT_EQ(gate.snapshot().running, 1u);
}

}  // namespace
}  // namespace grey::govern::test
