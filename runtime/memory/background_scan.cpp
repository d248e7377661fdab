// The background scan of memory.deduplication.scan_interval_ms: a thread of the context's tiers that
// compacts every device with the configured policy (grey_memory_compact without a policy), leaving alone
// every buffer that is mapped or has async work in flight (Tiers::busy_locked), or that a call used
// within the last interval.
#include "core/log.hpp"
#include "memory/tiers.hpp"

#include <chrono>

namespace grey::memory {

void Tiers::start_scan(const Logger& logger) {
    const grey_compact_policy policy = configured_policy();
    if (scan_interval_ms_ <= 0 || (policy.deduplicate == 0 && policy.compress == 0) || scan_thread_.joinable()) return;
    scan_thread_ = std::thread([this, &logger] { scan_loop(logger); });
}

void Tiers::stop_scan() noexcept {
    if (!scan_thread_.joinable()) return;
    {
        std::lock_guard lock(scan_mutex_);
        scan_stop_ = true;
    }
    scan_wake_.notify_all();
    scan_thread_.join();
}

uint64_t Tiers::scan_passes() {
    std::lock_guard lock(scan_mutex_);
    return scan_passes_;
}

void Tiers::scan_loop(const Logger& logger) {
    const grey_compact_policy policy = configured_policy();
    bool warned = false;
    std::unique_lock lock(scan_mutex_);
    for (;;) {
        scan_wake_.wait_for(lock, std::chrono::milliseconds(scan_interval_ms_), [&] { return scan_stop_; });
        if (scan_stop_) return;
        lock.unlock();
        // Buffers used within the last interval are in steady use: left raw for now.
        const auto used_before = std::chrono::steady_clock::now() - std::chrono::milliseconds(scan_interval_ms_);
        for (uint32_t device = 0; device < devices_.size(); ++device) {
            try {
                (void)compact(device, policy, false, used_before);
            } catch (const std::exception& e) {
                // A failure leaves the buffers as they were; say it once, the scan goes on.
                if (!warned)
                    logger.warning(std::string("the background memory scan could not compact device ") + std::to_string(device) + ": " + e.what());
                warned = true;
            }
        }
        lock.lock();
        ++scan_passes_;
    }
}

}  // namespace grey::memory
