// The vendor shim that compiles the CUDA kernels of kernels/cuda as HIP for AMD GPUs (ggml's
// ggml-cuda/vendors/hip.h is the model): it is force-included (-include) before every kernel source,
// which then compiles unchanged. It maps the CUDA names the kernels use onto clang's AMDGPU builtins, so
// the code objects need neither the HIP headers nor the ROCm device libraries (-nogpuinc -nogpulib):
// clang and lld alone build them, and nothing here can differ between ROCm releases.
//
// Warps. The kernels are written for 32-lane warps. gfx1100 runs wave32, so a warp is a wavefront; gfx90a
// and gfx942 run wave64, where each wavefront holds two 32-lane warps (ggml does the same). That is
// exact as long as no lane ever reads across the 32-lane boundary, which this shim guarantees: every
// shuffle's width is at most kGreyWarpLanes (the default width is 32, not the wavefront's 64), and the
// votes (__any_sync) look only at the caller's 32-lane half. __syncwarp is a wavefront-wide fence, which
// covers both halves.
//
// Arithmetic. The quantization kernels must give the host reference's bits: every __f*_rn/__d*_rn
// intrinsic is the plain IEEE operator (as HIP's own headers define them), and the build forbids
// contraction (-ffp-contract=off), keeps fp32 denormals and correctly rounded division and square root
// (backends/hip/CMakeLists.txt). The math functions below are the LLVM builtins, each an exact operation
// (fabs, fmin/fmax, fma, ldexp, frexp, rounding to integers); exp2f (used by the KV cache's attention
// only, never by quantization) is the hardware's approximation, as CUDA's exp2f is.
#pragma once

#if !defined(__HIP__)
#error "kernels/hip/cuda_compat.h is for clang's HIP mode (-x hip)"
#endif

#include <stdint.h>

#define GREY_HIP 1

#define __host__ __attribute__((host))
#define __device__ __attribute__((device))
#define __global__ __attribute__((global))
#define __shared__ __attribute__((shared))
#define __constant__ __attribute__((constant))
#define __forceinline__ inline __attribute__((always_inline))
#define __align__(n) __attribute__((aligned(n)))
#define GREY_HIP_LAUNCH_BOUNDS_1(threads) __attribute__((amdgpu_flat_work_group_size(1, threads)))
#define GREY_HIP_LAUNCH_BOUNDS_2(threads, blocks) GREY_HIP_LAUNCH_BOUNDS_1(threads)
#define GREY_HIP_LAUNCH_BOUNDS_PICK(_1, _2, name, ...) name
#define __launch_bounds__(...) GREY_HIP_LAUNCH_BOUNDS_PICK(__VA_ARGS__, GREY_HIP_LAUNCH_BOUNDS_2, GREY_HIP_LAUNCH_BOUNDS_1, )(__VA_ARGS__)

// The lanes of a CUDA warp, on every AMD target (see above), and of the target's wavefront.
inline constexpr int kGreyWarpLanes = 32;
#if defined(__AMDGCN_WAVEFRONT_SIZE__)
#define GREY_HIP_WAVEFRONT __AMDGCN_WAVEFRONT_SIZE__
#elif defined(__AMDGCN_WAVEFRONT_SIZE)
#define GREY_HIP_WAVEFRONT __AMDGCN_WAVEFRONT_SIZE
#else
#error "the compiler does not say the target's wavefront size"
#endif
static_assert(GREY_HIP_WAVEFRONT == 32 || GREY_HIP_WAVEFRONT == 64, "a wavefront holds one or two 32-lane warps");

// --- Thread and block indices: what CUDA's built-in variables hold, computed where they are read.

struct GreyDim3 {
    unsigned int x, y, z;
};
#define threadIdx (::GreyDim3{__builtin_amdgcn_workitem_id_x(), __builtin_amdgcn_workitem_id_y(), __builtin_amdgcn_workitem_id_z()})
#define blockIdx (::GreyDim3{__builtin_amdgcn_workgroup_id_x(), __builtin_amdgcn_workgroup_id_y(), __builtin_amdgcn_workgroup_id_z()})
#define blockDim \
    (::GreyDim3{__builtin_amdgcn_workgroup_size_x(), __builtin_amdgcn_workgroup_size_y(), __builtin_amdgcn_workgroup_size_z()})
// The grid in blocks (HSA counts it in work-items; hipModuleLaunchKernel's grids are whole blocks).
#define gridDim                                                                          \
    (::GreyDim3{__builtin_amdgcn_grid_size_x() / __builtin_amdgcn_workgroup_size_x(), \
                __builtin_amdgcn_grid_size_y() / __builtin_amdgcn_workgroup_size_y(), \
                __builtin_amdgcn_grid_size_z() / __builtin_amdgcn_workgroup_size_z()})

// --- Vector types (CUDA's alignment: a 16-byte access is one instruction).

struct __align__(16) uint4 { unsigned int x, y, z, w; };
struct __align__(8) uint2 { unsigned int x, y; };
struct __align__(16) float4 { float x, y, z, w; };
struct __align__(8) float2 { float x, y; };
__device__ __forceinline__ uint4 make_uint4(unsigned int x, unsigned int y, unsigned int z, unsigned int w) { return {x, y, z, w}; }
__device__ __forceinline__ uint2 make_uint2(unsigned int x, unsigned int y) { return {x, y}; }
__device__ __forceinline__ float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
__device__ __forceinline__ float2 make_float2(float x, float y) { return {x, y}; }

// --- Synchronisation.

__device__ __forceinline__ void __syncthreads() {
    __builtin_amdgcn_fence(__ATOMIC_RELEASE, "workgroup");
    __builtin_amdgcn_s_barrier();
    __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "workgroup");
}

// A wavefront runs in lock step: the fence orders its lanes' shared-memory accesses around the call.
__device__ __forceinline__ void __syncwarp(unsigned int = 0xFFFFFFFFu) {
    __builtin_amdgcn_fence(__ATOMIC_SEQ_CST, "wavefront");
    __builtin_amdgcn_wave_barrier();
}

// --- Lanes, shuffles and votes, within 32-lane warps.

__device__ __forceinline__ unsigned int grey_hardware_lane() {
#if GREY_HIP_WAVEFRONT == 64
    return __builtin_amdgcn_mbcnt_hi(~0u, __builtin_amdgcn_mbcnt_lo(~0u, 0u));
#else
    return __builtin_amdgcn_mbcnt_lo(~0u, 0u);
#endif
}

// `var` of hardware lane `source` (ds_bpermute addresses lanes in bytes).
__device__ __forceinline__ int grey_read_lane(int var, unsigned int source) { return __builtin_amdgcn_ds_bpermute(static_cast<int>(source << 2), var); }

template <typename T>
__device__ __forceinline__ T grey_read_lane_of(T var, unsigned int source) {
    static_assert(sizeof(T) == 4 || sizeof(T) == 8, "shuffles move 32- or 64-bit values");
    if constexpr (sizeof(T) == 4) {
        return __builtin_bit_cast(T, grey_read_lane(__builtin_bit_cast(int, var), source));
    } else {
        const uint64_t bits = __builtin_bit_cast(uint64_t, var);
        const uint64_t low = static_cast<uint32_t>(grey_read_lane(static_cast<int>(static_cast<uint32_t>(bits)), source));
        const uint64_t high = static_cast<uint32_t>(grey_read_lane(static_cast<int>(static_cast<uint32_t>(bits >> 32)), source));
        return __builtin_bit_cast(T, low | (high << 32));
    }
}

// CUDA's rules, for `width` a power of two up to 32: a source outside the caller's segment of `width`
// lanes leaves the caller its own value. The mask is not needed: the callers' whole warps are present.
template <typename T>
__device__ __forceinline__ T __shfl_xor_sync(unsigned int, T var, int lane_mask, int width = kGreyWarpLanes) {
    const unsigned int self = grey_hardware_lane();
    const unsigned int segment = self & ~static_cast<unsigned int>(width - 1);
    const unsigned int source = self ^ static_cast<unsigned int>(lane_mask);
    return grey_read_lane_of(var, (source & ~static_cast<unsigned int>(width - 1)) == segment ? source : self);
}

template <typename T>
__device__ __forceinline__ T __shfl_down_sync(unsigned int, T var, unsigned int delta, int width = kGreyWarpLanes) {
    const unsigned int self = grey_hardware_lane();
    const bool inside = (self & static_cast<unsigned int>(width - 1)) + delta < static_cast<unsigned int>(width);
    return grey_read_lane_of(var, inside ? self + delta : self);
}

template <typename T>
__device__ __forceinline__ T __shfl_sync(unsigned int, T var, int source_lane, int width = kGreyWarpLanes) {
    const unsigned int self = grey_hardware_lane();
    const unsigned int segment = self & ~static_cast<unsigned int>(width - 1);
    return grey_read_lane_of(var, segment + (static_cast<unsigned int>(source_lane) & static_cast<unsigned int>(width - 1)));
}

// Whether `predicate` holds for any active lane of the caller's 32-lane warp.
__device__ __forceinline__ bool __any_sync(unsigned int, bool predicate) {
#if GREY_HIP_WAVEFRONT == 64
    const uint64_t votes = __builtin_amdgcn_ballot_w64(predicate);
    return ((votes >> (grey_hardware_lane() & 32u)) & 0xFFFFFFFFu) != 0;
#else
    return __builtin_amdgcn_ballot_w32(predicate) != 0;
#endif
}

// --- Atomics (device scope, relaxed, as CUDA's).

template <typename T>
__device__ __forceinline__ T atomicAdd(T* address, T value) {
    return __hip_atomic_fetch_add(address, value, __ATOMIC_RELAXED, __HIP_MEMORY_SCOPE_AGENT);
}
template <typename T>
__device__ __forceinline__ T atomicMax(T* address, T value) {
    return __hip_atomic_fetch_max(address, value, __ATOMIC_RELAXED, __HIP_MEMORY_SCOPE_AGENT);
}
template <typename T>
__device__ __forceinline__ T atomicMin(T* address, T value) {
    return __hip_atomic_fetch_min(address, value, __ATOMIC_RELAXED, __HIP_MEMORY_SCOPE_AGENT);
}

// --- Bit casts and IEEE round-to-nearest arithmetic (the operators, never contracted: see above).

__device__ __forceinline__ unsigned int __float_as_uint(float x) { return __builtin_bit_cast(unsigned int, x); }
__device__ __forceinline__ float __uint_as_float(unsigned int x) { return __builtin_bit_cast(float, x); }
__device__ __forceinline__ long long __double_as_longlong(double x) { return __builtin_bit_cast(long long, x); }
__device__ __forceinline__ float __fadd_rn(float a, float b) { return a + b; }
__device__ __forceinline__ float __fsub_rn(float a, float b) { return a - b; }
__device__ __forceinline__ float __fmul_rn(float a, float b) { return a * b; }
__device__ __forceinline__ float __fdiv_rn(float a, float b) { return a / b; }
__device__ __forceinline__ float __frcp_rn(float a) { return 1.0f / a; }
__device__ __forceinline__ float __fmaf_rn(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
__device__ __forceinline__ double __dadd_rn(double a, double b) { return a + b; }
__device__ __forceinline__ double __dsub_rn(double a, double b) { return a - b; }
__device__ __forceinline__ double __dmul_rn(double a, double b) { return a * b; }
__device__ __forceinline__ double __ddiv_rn(double a, double b) { return a / b; }
// Clamps to [0, 1]; NaN gives 0, as CUDA's does.
__device__ __forceinline__ float __saturatef(float x) { return x >= 1.0f ? 1.0f : (x > 0.0f ? x : 0.0f); }
// Per 16-bit half: 0xFFFF where a and b are equal.
__device__ __forceinline__ unsigned int __vcmpeq2(unsigned int a, unsigned int b) {
    return ((a & 0xFFFFu) == (b & 0xFFFFu) ? 0xFFFFu : 0u) | ((a >> 16) == (b >> 16) ? 0xFFFF0000u : 0u);
}
// A streaming store is an ordinary store here.
template <typename T>
__device__ __forceinline__ void __stcs(T* address, T value) { *address = value; }

// --- Math: the exact LLVM builtins (device overloads beside the host's <math.h>).

__device__ __forceinline__ float fabsf(float x) { return __builtin_fabsf(x); }
__device__ __forceinline__ float fmaxf(float a, float b) { return __builtin_fmaxf(a, b); }
__device__ __forceinline__ float fminf(float a, float b) { return __builtin_fminf(a, b); }
__device__ __forceinline__ double fmax(double a, double b) { return __builtin_fmax(a, b); }
__device__ __forceinline__ double fabs(double x) { return __builtin_fabs(x); }
__device__ __forceinline__ float fmaf(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
__device__ __forceinline__ float ldexpf(float x, int e) { return __builtin_ldexpf(x, e); }
__device__ __forceinline__ float frexpf(float x, int* e) { return __builtin_frexpf(x, e); }
__device__ __forceinline__ float nearbyintf(float x) { return __builtin_nearbyintf(x); }
__device__ __forceinline__ float roundf(float x) { return __builtin_roundf(x); }
__device__ __forceinline__ float rintf(float x) { return __builtin_rintf(x); }
__device__ __forceinline__ float truncf(float x) { return __builtin_truncf(x); }
__device__ __forceinline__ float exp2f(float x) { return __builtin_amdgcn_exp2f(x); }
__device__ __forceinline__ unsigned int min(unsigned int a, unsigned int b) { return a < b ? a : b; }
__device__ __forceinline__ unsigned int max(unsigned int a, unsigned int b) { return a > b ? a : b; }

// --- Names of CUDA's hardware fp8 conversions (sm_89 on). The kernels call them only where
// common/numeric.hpp's kHardwareFp8 is true, which it never is here; they are declared so that the
// discarded branches still parse, and left undefined so that a call could not link.

struct __half2_raw { unsigned short x, y; };
using __nv_fp8x2_storage_t = unsigned short;
using __nv_fp8_storage_t = unsigned char;
enum __nv_fp8_interpretation_t { __NV_E4M3, __NV_E5M2 };
enum __nv_saturation_t { __NV_NOSAT, __NV_SATFINITE };
__device__ __half2_raw __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t, __nv_fp8_interpretation_t);
__device__ __nv_fp8x2_storage_t __nv_cvt_float2_to_fp8x2(float2, __nv_saturation_t, __nv_fp8_interpretation_t);
__device__ __nv_fp8_storage_t __nv_cvt_float_to_fp8(float, __nv_saturation_t, __nv_fp8_interpretation_t);
