// Where the governor and scheduler read the time. Production code uses the monotonic clock; tests use a
// manual clock they advance themselves, so that controller and scheduler runs are deterministic and no
// test sleeps.
#pragma once

#include <atomic>
#include <cstdint>
#include <ctime>

namespace grey::govern {

class Clock {
public:
    virtual ~Clock() = default;
    [[nodiscard]] virtual uint64_t now_ns() const noexcept = 0;
    // True when blocking waits may use real timed waits on this clock. A manual clock says no: a thread
    // waiting for simulated time to pass would wait for ever, so waits on it return at once.
    [[nodiscard]] virtual bool real_time() const noexcept = 0;
};

class SteadyClock final : public Clock {
public:
    [[nodiscard]] uint64_t now_ns() const noexcept override {
        timespec ts{};
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
    }
    [[nodiscard]] bool real_time() const noexcept override { return true; }
};

class ManualClock final : public Clock {
public:
    explicit ManualClock(uint64_t start_ns = 1'000'000'000ull) : now_(start_ns) {}
    [[nodiscard]] uint64_t now_ns() const noexcept override { return now_.load(std::memory_order_acquire); }
    [[nodiscard]] bool real_time() const noexcept override { return false; }
    void advance(uint64_t ns) noexcept { now_.fetch_add(ns, std::memory_order_acq_rel); }

private:
    std::atomic<uint64_t> now_;
};

}  // namespace grey::govern
