// Which parameter set an element uses. The general kernels locate elements with 64-bit indices (shifts
// and 32-bit divisions where the geometry allows: 64-bit division is a long subroutine on the GPU); the
// fast kernels, whose indices are below 2^31, divide through the multipliers the backend computed
// (grey::cuda::divider_for).
#pragma once

#include "quant_base.cuh"

namespace {

struct Position {
    uint64_t set;
    uint64_t offset;  // inside the run
};

__device__ __forceinline__ Position locate(const grey_qk_args& a, uint64_t i) {
    uint64_t run;
    if (a.run_shift >= 0) run = i >> a.run_shift;
    else if (a.elements <= 0xFFFFFFFFull) run = static_cast<uint32_t>(i) / static_cast<uint32_t>(a.run_length);
    else run = i / a.run_length;
    const uint64_t offset = i - run * a.run_length;
    uint64_t set;
    if (a.sets_are_runs) set = run;
    else if (a.param_count == 1) set = 0;
    else if (run <= 0xFFFFFFFFull && a.param_count <= 0xFFFFFFFFull) set = static_cast<uint32_t>(run) % static_cast<uint32_t>(a.param_count);
    else set = run % a.param_count;
    return {set, offset};
}

// Moves a Position one element on.
__device__ __forceinline__ void advance(const grey_qk_args& a, Position& at) {
    if (++at.offset == a.run_length) {
        at.offset = 0;
        at.set = at.set + 1 == a.param_count ? 0 : at.set + 1;
    }
}


// n / d for n < 2^31, through the multiplier and shift the host computed for d (exact: see
// grey::cuda::divider_for).
__device__ __forceinline__ uint32_t divide(uint32_t n, uint64_t multiplier, int32_t shift) {
    return static_cast<uint32_t>((static_cast<uint64_t>(n) * multiplier) >> shift);
}

// The parameter set of planar element i.
__device__ __forceinline__ uint32_t set_of(const grey_qk_args& a, uint32_t i) {
    const uint32_t run = a.run_shift >= 0 ? i >> a.run_shift : divide(i, a.run_multiplier, a.run_mshift);
    if (a.sets_are_runs) return run;
    if (a.param_count == 1) return 0;
    return run - divide(run, a.set_multiplier, a.set_mshift) * static_cast<uint32_t>(a.param_count);
}


}  // namespace
