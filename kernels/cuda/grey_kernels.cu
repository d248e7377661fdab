// The CUDA backend's kernels: byte fill, copy and the buffer checksum of grey.h. Compiled by nvcc into
// a fatbin (sm_80, sm_90, and PTX for later GPUs), embedded in libgrey-backend-cuda.so and loaded with
// cuModuleLoadData; extern "C" keeps the names the backend looks up unmangled.
//
// Each kernel is a grid-stride loop, so any grid size covers any length. fill and copy move 16 bytes a
// thread where the addresses allow it (the middle of the range, once aligned) and single bytes at the
// unaligned head and tail.

#include "common/checksum.hpp"

#include <stdint.h>

namespace {

// Bytes before `address` reaches a 16-byte boundary, at most `n`.
__device__ uint64_t head_bytes(uintptr_t address, uint64_t n) {
    const uint64_t head = (16u - (address & 15u)) & 15u;
    return head < n ? head : n;
}

}  // namespace

extern "C" __global__ void grey_fill(unsigned char* dst, unsigned long long n, unsigned int value) {
    const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
    const uint64_t tid = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const unsigned char byte = static_cast<unsigned char>(value);
    const uint64_t head = head_bytes(reinterpret_cast<uintptr_t>(dst), n);
    const uint64_t words = (n - head) / 16;
    const unsigned int w = 0x01010101u * byte;
    const uint4 word = make_uint4(w, w, w, w);
    for (uint64_t i = tid; i < head; i += stride) dst[i] = byte;
    uint4* body = reinterpret_cast<uint4*>(dst + head);
    for (uint64_t i = tid; i < words; i += stride) body[i] = word;
    for (uint64_t i = head + words * 16 + tid; i < n; i += stride) dst[i] = byte;
}

// The ranges must not overlap (the runtime refuses overlapping copies).
extern "C" __global__ void grey_copy(unsigned char* dst, const unsigned char* src, unsigned long long n) {
    const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
    const uint64_t tid = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const uintptr_t d = reinterpret_cast<uintptr_t>(dst);
    const uintptr_t s = reinterpret_cast<uintptr_t>(src);
    if (((d ^ s) & 15u) != 0) {
        // The two pointers can never be 16-byte aligned together: byte copies.
        for (uint64_t i = tid; i < n; i += stride) dst[i] = src[i];
        return;
    }
    const uint64_t head = head_bytes(d, n);
    const uint64_t words = (n - head) / 16;
    for (uint64_t i = tid; i < head; i += stride) dst[i] = src[i];
    uint4* out = reinterpret_cast<uint4*>(dst + head);
    const uint4* in = reinterpret_cast<const uint4*>(src + head);
    for (uint64_t i = tid; i < words; i += stride) out[i] = in[i];
    for (uint64_t i = head + words * 16 + tid; i < n; i += stride) dst[i] = src[i];
}

// Adds sum over i of (src[i] + 1) * (i * STEP + BASE) to *out (which the caller zeroes): grey.h's
// grey_buffer_checksum, with the constants of common/checksum.hpp.
extern "C" __global__ void grey_checksum(const unsigned char* src, unsigned long long n, unsigned long long* out) {
    const uint64_t step = grey::common::kChecksumWeightStep;
    const uint64_t base = grey::common::kChecksumWeightBase;
    const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
    const uint64_t tid = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    uint64_t sum = 0;
    for (uint64_t i = tid; i < n; i += stride) sum += (static_cast<uint64_t>(src[i]) + 1u) * (i * step + base);
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_down_sync(0xffffffffu, sum, offset);
    if ((threadIdx.x & 31u) == 0) atomicAdd(out, static_cast<unsigned long long>(sum));
}
