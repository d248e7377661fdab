// The governor through grey.h, on the host backend, plus blocking admissions from several threads on
// the real clock (this file also runs under ThreadSanitizer).
#include "grey.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Fixture : ::testing::Test {
    grey_context* context = nullptr;
    grey_governor* governor = nullptr;
    void SetUp() override {
        grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
        options.backends = "none_at_all";  // the host alone
        options.log_level = GREY_LOG_OFF;
        ASSERT_EQ(grey_context_create(&options, &context), GREY_OK) << grey_last_error();
        grey_governor_options g = GREY_GOVERNOR_OPTIONS_INIT;
        g.sample_period_ms = 0;
        ASSERT_EQ(grey_governor_create(context, &g, &governor), GREY_OK) << grey_last_error();
    }
    void TearDown() override {
        grey_governor_destroy(governor);
        grey_context_destroy(context);
    }
    grey_tenant* make_tenant(const char* name, double weight = 1.0, uint32_t priority = 0) {
        grey_tenant_options o = GREY_TENANT_OPTIONS_INIT;
        o.name = name;
        o.weight = weight;
        o.priority = priority;
        grey_tenant* t = nullptr;
        EXPECT_EQ(grey_tenant_create(governor, &o, &t), GREY_OK) << grey_last_error();
        return t;
    }
};

TEST_F(Fixture, AdmitReleaseAndAccount) {
    grey_tenant* t = make_tenant("app");
    ASSERT_EQ(grey_governor_step(governor), GREY_OK);
    grey_admission a{};
    a.struct_size = sizeof a;
    ASSERT_EQ(grey_govern_admit(t, 0, 1000, GREY_WAIT_FOREVER, &a), GREY_OK) << grey_last_error();
    EXPECT_EQ(a.device, 0u);
    EXPECT_EQ(a.duty, 1.0);
    uint32_t yield = 7;
    ASSERT_EQ(grey_govern_should_yield(t, a.ticket, &yield), GREY_OK);
    EXPECT_EQ(yield, 0u);
    ASSERT_EQ(grey_govern_release(t, a.ticket, 900), GREY_OK);
    EXPECT_EQ(grey_govern_release(t, a.ticket, 900), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("not a live ticket"), std::string::npos);

    grey_tenant_stats s{};
    s.struct_size = sizeof s;
    ASSERT_EQ(grey_tenant_stats_get(t, &s), GREY_OK);
    EXPECT_STREQ(s.name, "app");
    EXPECT_EQ(s.admitted_count, 1u);
    EXPECT_EQ(s.admitted_cost_ns, 1000u);
    EXPECT_EQ(s.actual_cost_ns, 900u);

    grey_govern_device_state d{};
    d.struct_size = sizeof d;
    ASSERT_EQ(grey_governor_device_state_get(governor, 0, &d), GREY_OK);
    // This machine's CPU may or may not have a sensor; without one the host is reported, unpaced.
    EXPECT_TRUE(d.mode == GREY_GOVERN_NO_SENSOR || d.mode == GREY_GOVERN_COOL || d.mode == GREY_GOVERN_PACING) << d.mode;
    EXPECT_EQ(d.admitted_count, 1u);
    EXPECT_STREQ(grey_govern_mode_name(d.mode), d.mode == GREY_GOVERN_NO_SENSOR ? "no_sensor" : grey_govern_mode_name(d.mode));
    grey_tenant_destroy(t);
}

TEST_F(Fixture, AsyncSubmitWaitAndCancel) {
    grey_tenant* t = make_tenant("async");
    grey_admission a{};
    a.struct_size = sizeof a;
    // Empty the bucket (20 ms burst) so that the next request has to wait.
    ASSERT_EQ(grey_govern_admit(t, 0, 2'000'000'000ull, 0, &a), GREY_OK);
    uint64_t ticket = 0;
    ASSERT_EQ(grey_govern_submit(t, 0, 1000, &ticket), GREY_OK);
    grey_admission b{};
    b.struct_size = sizeof b;
    EXPECT_EQ(grey_govern_wait(t, ticket, 0, &b), GREY_ERROR_TIMEOUT);
    EXPECT_EQ(grey_govern_cancel(t, ticket), GREY_OK);
    EXPECT_EQ(grey_govern_cancel(t, ticket), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_govern_admit(t, 0, 1000, 1'000'000, &b), GREY_ERROR_TIMEOUT);  // 1 ms is not enough
    grey_tenant_stats s{};
    s.struct_size = sizeof s;
    ASSERT_EQ(grey_tenant_stats_get(t, &s), GREY_OK);
    EXPECT_EQ(s.timeouts, 1u);
    EXPECT_EQ(s.waiting, 0u);
    ASSERT_EQ(grey_govern_release(t, a.ticket, 1), GREY_OK);  // it really took 1 ns: debt repaid
    EXPECT_EQ(grey_govern_admit(t, 0, 1000, 0, &b), GREY_OK);
    ASSERT_EQ(grey_govern_release(t, b.ticket, 0), GREY_OK);
    grey_tenant_destroy(t);
}

TEST_F(Fixture, EmergencyStopReachesWaitingThreads) {
    grey_tenant* t = make_tenant("stopped");
    grey_admission a{};
    a.struct_size = sizeof a;
    ASSERT_EQ(grey_govern_admit(t, 0, 60'000'000'000ull, 0, &a), GREY_OK);  // a minute of debt
    std::atomic<int> result{-1};
    std::thread waiter([&] {
        grey_admission b{};
        b.struct_size = sizeof b;
        result = grey_govern_admit(t, 0, 1000, GREY_WAIT_FOREVER, &b);
    });
    // Wait until the waiter is queued, then stop.
    for (;;) {
        grey_govern_device_state d{};
        d.struct_size = sizeof d;
        ASSERT_EQ(grey_governor_device_state_get(governor, 0, &d), GREY_OK);
        if (d.waiting == 1) break;
        std::this_thread::yield();
    }
    ASSERT_EQ(grey_governor_emergency_stop(governor, "test"), GREY_OK);
    waiter.join();
    EXPECT_EQ(result.load(), GREY_ERROR_STOPPED);
    grey_governor_state g{};
    g.struct_size = sizeof g;
    ASSERT_EQ(grey_governor_state_get(governor, &g), GREY_OK);
    EXPECT_EQ(g.stopped, 1u);
    EXPECT_STREQ(g.stop_reason, "test");
    grey_admission c{};
    c.struct_size = sizeof c;
    EXPECT_EQ(grey_govern_admit(t, 0, 1, 0, &c), GREY_ERROR_STOPPED);
    EXPECT_NE(std::string(grey_last_error()).find("emergency stop"), std::string::npos);
    ASSERT_EQ(grey_governor_resume(governor), GREY_OK);
    ASSERT_EQ(grey_govern_release(t, a.ticket, 1), GREY_OK);
    EXPECT_EQ(grey_govern_admit(t, 0, 1, 0, &c), GREY_OK);
    grey_tenant_destroy(t);
}

TEST_F(Fixture, ManyThreadsBlockAndAllAreServed) {
    constexpr int kThreads = 8, kEach = 200;
    std::vector<grey_tenant*> tenants;
    for (int i = 0; i < kThreads; ++i) tenants.push_back(make_tenant(("thread" + std::to_string(i)).c_str(), 1.0 + i % 3, i % 3));
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int i = 0; i < kThreads; ++i)
        threads.emplace_back([&, i] {
            for (int n = 0; n < kEach; ++n) {
                grey_admission a{};
                a.struct_size = sizeof a;
                // 200 us estimated, released as 50 us: the pacer makes threads queue now and then.
                if (grey_govern_admit(tenants[i], 0, 200'000, GREY_WAIT_FOREVER, &a) != GREY_OK ||
                    grey_govern_release(tenants[i], a.ticket, 50'000) != GREY_OK)
                    ++failures;
            }
        });
    std::thread stepper([&] {
        for (int n = 0; n < 20; ++n)
            if (grey_governor_step(governor) != GREY_OK) ++failures;
    });
    for (auto& th : threads) th.join();
    stepper.join();
    EXPECT_EQ(failures.load(), 0);
    uint32_t count = 0;
    ASSERT_EQ(grey_governor_tenant_count(governor, &count), GREY_OK);
    ASSERT_EQ(count, static_cast<uint32_t>(kThreads));
    for (uint32_t i = 0; i < count; ++i) {
        grey_tenant_stats s{};
        s.struct_size = sizeof s;
        ASSERT_EQ(grey_governor_tenant_stats_get(governor, i, &s), GREY_OK);
        EXPECT_EQ(s.admitted_count, static_cast<uint64_t>(kEach));
        EXPECT_EQ(s.running, 0u);
        EXPECT_EQ(s.waiting, 0u);
    }
    for (grey_tenant* t : tenants) grey_tenant_destroy(t);
}

TEST_F(Fixture, BadArgumentsAreRefusedWithAReason) {
    grey_tenant_options o = GREY_TENANT_OPTIONS_INIT;
    grey_tenant* t = nullptr;
    EXPECT_EQ(grey_tenant_create(governor, &o, &t), GREY_ERROR_INVALID_ARGUMENT);  // no name
    o.name = "x";
    o.weight = -1.0;
    EXPECT_EQ(grey_tenant_create(governor, &o, &t), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("weight"), std::string::npos);
    o.weight = 1.0;
    ASSERT_EQ(grey_tenant_create(governor, &o, &t), GREY_OK);
    grey_tenant* twin = nullptr;
    EXPECT_EQ(grey_tenant_create(governor, &o, &twin), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_tenant_set_weight(t, 0.0), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_tenant_set_weight(t, 3.0), GREY_OK);
    grey_admission a{};
    a.struct_size = sizeof a;
    EXPECT_EQ(grey_govern_admit(t, 99, 1, 0, &a), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("out of range"), std::string::npos);
    a.struct_size = 4;
    EXPECT_EQ(grey_govern_admit(t, 0, 1, 0, &a), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_govern_admit(nullptr, 0, 1, 0, &a), GREY_ERROR_INVALID_ARGUMENT);
    grey_governor_options g = GREY_GOVERNOR_OPTIONS_INIT;
    g.min_duty = 1.5;
    grey_governor* bad = nullptr;
    EXPECT_EQ(grey_governor_create(context, &g, &bad), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_govern_mode_name(static_cast<grey_govern_mode>(42)), nullptr);
    EXPECT_STREQ(grey_status_string(GREY_ERROR_STOPPED), "stopped");
    grey_tenant_destroy(t);
    grey_tenant_destroy(nullptr);
}

TEST_F(Fixture, APowerLimitOptInWithoutADeviceThatCanHoldOneIsRefused) {
    grey_governor_options g = GREY_GOVERNOR_OPTIONS_INIT;
    g.sample_period_ms = 0;
    g.power_limit_mw = 300000;
    grey_governor* other = nullptr;
    EXPECT_EQ(grey_governor_create(context, &g, &other), GREY_ERROR_UNSUPPORTED);
    EXPECT_EQ(other, nullptr);
    EXPECT_NE(std::string(grey_last_error()).find("options->power_limit_mw: no device can hold a power limit (device 0: "), std::string::npos)
        << grey_last_error();
    EXPECT_EQ(grey_device_power_limit_set(context, 0, 300000, nullptr), GREY_ERROR_UNSUPPORTED);
    EXPECT_EQ(grey_device_power_limit_set(nullptr, 0, 300000, nullptr), GREY_ERROR_INVALID_ARGUMENT);
}

TEST_F(Fixture, ReloadFromAConfig) {
    grey_config* config = nullptr;
    ASSERT_EQ(grey_config_create("aggressive", &config), GREY_OK);
    ASSERT_EQ(grey_governor_configure(governor, config), GREY_OK);
    grey_governor_state g{};
    g.struct_size = sizeof g;
    ASSERT_EQ(grey_governor_state_get(governor, &g), GREY_OK);
    EXPECT_EQ(g.priority_levels, 5u);
    EXPECT_EQ(g.proactive, 0u);
    EXPECT_EQ(g.preemption_allowed, 1u);
    EXPECT_EQ(g.target_temp_c, 80.0);
    grey_config_destroy(config);
}

TEST(GovernorThread, SamplesOnItsOwnAndStopsWithTheGovernor) {
    grey_context* context = nullptr;
    grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
    options.backends = "none_at_all";
    options.log_level = GREY_LOG_OFF;
    ASSERT_EQ(grey_context_create(&options, &context), GREY_OK);
    grey_governor_options g = GREY_GOVERNOR_OPTIONS_INIT;
    g.sample_period_ms = 1;
    grey_governor* governor = nullptr;
    ASSERT_EQ(grey_governor_create(context, &g, &governor), GREY_OK);
    grey_governor_state s{};
    s.struct_size = sizeof s;
    do {
        ASSERT_EQ(grey_governor_state_get(governor, &s), GREY_OK);
        std::this_thread::yield();
    } while (s.steps < 3);
    grey_governor_destroy(governor);
    grey_context_destroy(context);
}

}  // namespace
