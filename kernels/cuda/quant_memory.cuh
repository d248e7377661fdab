// Memory access of the quantization kernels. Buffers come from the pool well aligned, but callers'
// offsets need not be: every vector access of the general kernels checks its address and falls back to
// bytes; the fast kernels, which run only on aligned tensors, say so with kAligned.
#pragma once

#include "quant_base.cuh"

namespace {

__device__ __forceinline__ bool aligned(uint64_t address, uint64_t to) { return (address & (to - 1)) == 0; }

__device__ __forceinline__ uint32_t element_bytes(int dtype) { return dtype == GREY_QK_F32 ? 4u : 2u; }

__device__ __forceinline__ float load_element(const grey_qk_args& a, uint64_t i) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(a.plain);
    if (a.dtype == GREY_QK_F32) {
        const uint64_t at = a.plain + 4 * i;
        if (aligned(at, 4)) return *reinterpret_cast<const float*>(at);
        const uint32_t bits = p[4 * i] | (p[4 * i + 1] << 8) | (p[4 * i + 2] << 16) | (static_cast<uint32_t>(p[4 * i + 3]) << 24);
        return __uint_as_float(bits);
    }
    const uint64_t at = a.plain + 2 * i;
    const uint32_t h = aligned(at, 2) ? *reinterpret_cast<const uint16_t*>(at) : (p[2 * i] | (p[2 * i + 1] << 8));
    return a.dtype == GREY_QK_F16 ? f16_to_f32(h) : bf16_to_f32(h);
}

// Four consecutive elements from `i` (a multiple of 4), in one 16- or 8-byte load where aligned.
__device__ __forceinline__ void load4(const grey_qk_args& a, uint64_t i, float v[4]) {
    const uint64_t at = a.plain + i * element_bytes(a.dtype);
    if (a.dtype == GREY_QK_F32 && aligned(at, 16)) {
        const float4 f = *reinterpret_cast<const float4*>(at);
        v[0] = f.x; v[1] = f.y; v[2] = f.z; v[3] = f.w;
    } else if (a.dtype != GREY_QK_F32 && aligned(at, 8)) {
        const uint2 h = *reinterpret_cast<const uint2*>(at);
        const uint32_t halves[4] = {h.x & 0xFFFFu, h.x >> 16, h.y & 0xFFFFu, h.y >> 16};
        for (int k = 0; k < 4; ++k) v[k] = a.dtype == GREY_QK_F16 ? f16_to_f32(halves[k]) : bf16_to_f32(halves[k]);
    } else {
        for (int k = 0; k < 4; ++k) v[k] = load_element(a, i + k);
    }
}

__device__ __forceinline__ void store_element(const grey_qk_args& a, uint64_t i, float value) {
    unsigned char* p = reinterpret_cast<unsigned char*>(a.plain);
    if (a.dtype == GREY_QK_F32) {
        const uint64_t at = a.plain + 4 * i;
        if (aligned(at, 4)) {
            *reinterpret_cast<float*>(at) = value;
        } else {
            const uint32_t bits = __float_as_uint(value);
            for (int k = 0; k < 4; ++k) p[4 * i + k] = static_cast<unsigned char>(bits >> (8 * k));
        }
        return;
    }
    const uint32_t h = a.dtype == GREY_QK_F16 ? f32_to_f16(value) : f32_to_bf16(value);
    const uint64_t at = a.plain + 2 * i;
    if (aligned(at, 2)) {
        *reinterpret_cast<uint16_t*>(at) = static_cast<uint16_t>(h);
    } else {
        p[2 * i] = static_cast<unsigned char>(h);
        p[2 * i + 1] = static_cast<unsigned char>(h >> 8);
    }
}

// Little-endian stores of 1..4 bytes at any address: one access when aligned.
__device__ __forceinline__ void store_u32(uint64_t at, uint32_t value) {
    if (aligned(at, 4)) {
        *reinterpret_cast<uint32_t*>(at) = value;
    } else if (aligned(at, 2)) {
        reinterpret_cast<uint16_t*>(at)[0] = static_cast<uint16_t>(value);
        reinterpret_cast<uint16_t*>(at)[1] = static_cast<uint16_t>(value >> 16);
    } else {
        for (int k = 0; k < 4; ++k) reinterpret_cast<unsigned char*>(at)[k] = static_cast<unsigned char>(value >> (8 * k));
    }
}

__device__ __forceinline__ void store_u16(uint64_t at, uint32_t value) {
    if (aligned(at, 2)) {
        *reinterpret_cast<uint16_t*>(at) = static_cast<uint16_t>(value);
    } else {
        reinterpret_cast<unsigned char*>(at)[0] = static_cast<unsigned char>(value);
        reinterpret_cast<unsigned char*>(at)[1] = static_cast<unsigned char>(value >> 8);
    }
}

// kAligned: the caller knows the address is aligned (the fast paths), so no check is made.
template <bool kAligned = false>
__device__ __forceinline__ uint32_t load_u32(uint64_t at) {
    if (kAligned || aligned(at, 4)) return *reinterpret_cast<const uint32_t*>(at);
    const unsigned char* p = reinterpret_cast<const unsigned char*>(at);
    return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

template <bool kAligned = false>
__device__ __forceinline__ uint32_t load_u16(uint64_t at) {
    if (kAligned || aligned(at, 2)) return *reinterpret_cast<const uint16_t*>(at);
    const unsigned char* p = reinterpret_cast<const unsigned char*>(at);
    return p[0] | (p[1] << 8);
}

template <int kCount>
__device__ __forceinline__ void load_elements(const grey_qk_args& a, uint64_t first, float* v) {
#pragma unroll
    for (int k = 0; k < kCount; k += 4) load4(a, first + k, v + k);
}

__device__ __forceinline__ uint32_t pack_bytes(const uint32_t* q) { return q[0] | (q[1] << 8) | (q[2] << 16) | (q[3] << 24); }
__device__ __forceinline__ uint32_t pack_nibbles(const uint32_t* q) {
    uint32_t word = 0;
#pragma unroll
    for (int k = 0; k < 8; ++k) word |= (q[k] & 0x0Fu) << (4 * k);
    return word;
}

template <int kDtype>
__device__ __forceinline__ void unpack16(const uint4& h, float* v) {
    if (kDtype == GREY_QK_F32) {
        v[0] = __uint_as_float(h.x); v[1] = __uint_as_float(h.y); v[2] = __uint_as_float(h.z); v[3] = __uint_as_float(h.w);
    } else {
        const uint32_t words[4] = {h.x, h.y, h.z, h.w};
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            v[2 * k] = kDtype == GREY_QK_F16 ? f16_to_f32(words[k] & 0xFFFFu) : bf16_to_f32(words[k] & 0xFFFFu);
            v[2 * k + 1] = kDtype == GREY_QK_F16 ? f16_to_f32(words[k] >> 16) : bf16_to_f32(words[k] >> 16);
        }
    }
}

// Stores at addresses the caller knows to be aligned.
__device__ __forceinline__ void store_u16_at(unsigned char* at, uint32_t value) { *reinterpret_cast<uint16_t*>(at) = static_cast<uint16_t>(value); }
__device__ __forceinline__ void store_u32_at(unsigned char* at, uint32_t value) { *reinterpret_cast<uint32_t*>(at) = value; }

}  // namespace
