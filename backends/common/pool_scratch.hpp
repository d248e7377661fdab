// A block of a backend's device pool for the length of one job, given back when the scope ends; none for
// 0 bytes (get() is then 0). Pool: allocate(bytes) returning the block's address, release(address) (the
// CUDA plugin's VmmPool, the HIP and Level Zero plugins' ChunkPool). take() hands the block on instead.
#pragma once

#include <cstdint>
#include <utility>

namespace grey::backend {

template <class Pool>
class PoolScratch {
public:
    using Address = decltype(std::declval<Pool&>().allocate(uint64_t{}));

    PoolScratch(Pool& pool, uint64_t bytes) : pool_(pool), address_(bytes == 0 ? Address{} : pool.allocate(bytes)) {}
    ~PoolScratch() {
        if (address_ != Address{}) pool_.release(address_);
    }
    PoolScratch(const PoolScratch&) = delete;
    PoolScratch& operator=(const PoolScratch&) = delete;
    [[nodiscard]] Address get() const noexcept { return address_; }
    // Gives the block up: the caller releases it later (work queued on a stream that still uses it).
    [[nodiscard]] Address take() noexcept { return std::exchange(address_, Address{}); }

private:
    Pool& pool_;
    Address address_;
};

}  // namespace grey::backend
