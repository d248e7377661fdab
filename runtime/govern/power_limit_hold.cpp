#include "govern/power_limit_hold.hpp"

#include "core/error.hpp"

#include <string>

namespace grey::govern {

PowerLimitHold::PowerLimitHold(grey_context* context, uint32_t device_count, uint64_t limit_mw)
    : context_(context), limit_mw_(limit_mw), previous_mw_(device_count, 0) {
    std::string unsupported;
    bool any = false;
    for (uint32_t device = 0; device < device_count; ++device) {
        uint64_t previous = 0;
        const grey_status status = grey_device_power_limit_set(context_, device, limit_mw_, &previous);
        if (status == GREY_ERROR_UNSUPPORTED) {  // a host CPU, a backend without the slot: nothing to hold
            unsupported += (unsupported.empty() ? "" : "; ") + std::string("device ") + std::to_string(device) + ": " + grey_last_error();
            continue;
        }
        if (status != GREY_OK) {
            const std::string why = grey_last_error();
            const std::string undo = restore();
            fail(status, "options->power_limit_mw: device " + std::to_string(device) + " cannot hold " + std::to_string(limit_mw_) +
                             " mW: " + why + (undo.empty() ? std::string() : "; and restoring the others failed: " + undo));
        }
        std::lock_guard lock(mutex_);
        previous_mw_[device] = previous;
        any = true;
    }
    if (!any) fail(GREY_ERROR_UNSUPPORTED, "options->power_limit_mw: no device can hold a power limit (" + unsupported + ")");
}

PowerLimitHold::~PowerLimitHold() { (void)restore(); }

std::string PowerLimitHold::restore() noexcept {
    std::lock_guard lock(mutex_);
    std::string problems;
    for (uint32_t device = 0; device < previous_mw_.size(); ++device) {
        if (previous_mw_[device] == 0) continue;
        if (grey_device_power_limit_set(context_, device, previous_mw_[device], nullptr) != GREY_OK)
            problems += (problems.empty() ? "" : "; ") + std::string("device ") + std::to_string(device) + ": " + grey_last_error();
        previous_mw_[device] = 0;  // tried once: a limit that cannot be restored now is reported, not retried later
    }
    return problems;
}

std::pair<uint64_t, uint64_t> PowerLimitHold::held(uint32_t device) const {
    std::lock_guard lock(mutex_);
    if (device >= previous_mw_.size() || previous_mw_[device] == 0) return {0, 0};
    return {limit_mw_, previous_mw_[device]};
}

}  // namespace grey::govern
