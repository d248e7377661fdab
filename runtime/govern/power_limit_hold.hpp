// The governor's power-limit request path, off by default (grey_governor_options.power_limit_mw): it
// asks every device to hold one limit, remembers the limits it replaced, and puts them back on an
// emergency stop or when the governor goes. It goes through grey_device_power_limit_set like any host
// program; the controller never touches it.
#pragma once

#include "grey.h"

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace grey::govern {

class PowerLimitHold {
public:
    // Sets `limit_mw` on each of the context's `device_count` devices that can hold one (a device whose
    // backend cannot, GREY_ERROR_UNSUPPORTED, is left alone). If one refuses otherwise, or none can, those
    // already set are restored and grey::Error is thrown naming the device and the driver's reason.
    PowerLimitHold(grey_context* context, uint32_t device_count, uint64_t limit_mw);
    ~PowerLimitHold();  // restore()
    PowerLimitHold(const PowerLimitHold&) = delete;
    PowerLimitHold& operator=(const PowerLimitHold&) = delete;

    // Puts every replaced limit back (once; later calls do nothing). A device that refuses is logged
    // through grey_last_error's message in the returned text; the others are still restored.
    std::string restore() noexcept;

    // What device `device` holds now: {held limit, limit to restore}, both 0 when nothing is held.
    [[nodiscard]] std::pair<uint64_t, uint64_t> held(uint32_t device) const;

private:
    grey_context* context_;
    uint64_t limit_mw_;
    mutable std::mutex mutex_;
    std::vector<uint64_t> previous_mw_;  // per device; 0: not set by us (or restored)
};

}  // namespace grey::govern
