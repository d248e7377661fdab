#include "govern/fair_queue.hpp"

#include <algorithm>
#include <tuple>

namespace grey::govern {

void FairQueue::push(TenantState& tenant, uint32_t level, uint64_t cost_ns, uint64_t arrival_ns, uint32_t slot) {
    QueuedRequest r;
    r.sequence = next_sequence_++;
    r.tenant = &tenant;
    r.level = std::min(level, kMaxLevels - 1);
    r.cost_ns = cost_ns;
    r.arrival_ns = arrival_ns;
    r.slot = slot;
    double& finish = finish_tags_[tenant.id];
    r.start_tag = std::max(virtual_time_[r.level], finish);
    const double weight = tenant.weight.load(std::memory_order_relaxed);
    finish = r.start_tag + static_cast<double>(cost_ns) / weight;
    waiting_.push_back(r);
}

std::optional<size_t> FairQueue::pick(uint64_t now_ns, uint32_t max_level) const {
    // Key: (not overdue, deadline or level, tag, sequence), smallest first.
    using Key = std::tuple<int, double, double, uint64_t>;
    std::optional<size_t> best;
    Key best_key{};
    for (size_t i = 0; i < waiting_.size(); ++i) {
        const QueuedRequest& r = waiting_[i];
        if (r.level > max_level) continue;
        const bool overdue = r.level > 0 && now_ns >= deadline(r);
        const Key key = overdue ? Key{0, static_cast<double>(deadline(r)), 0.0, r.sequence}
                                : Key{1, static_cast<double>(r.level), fairness_ ? r.start_tag : 0.0, r.sequence};
        if (!best || key < best_key) {
            best = i;
            best_key = key;
        }
    }
    return best;
}

QueuedRequest FairQueue::take(size_t position) {
    QueuedRequest r = waiting_[position];
    waiting_.erase(waiting_.begin() + static_cast<std::ptrdiff_t>(position));
    virtual_time_[r.level] = std::max(virtual_time_[r.level], r.start_tag);
    return r;
}

void FairQueue::remove(uint32_t slot) {
    std::erase_if(waiting_, [slot](const QueuedRequest& r) { return r.slot == slot; });
}

}  // namespace grey::govern
