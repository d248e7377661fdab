/* The KV cache's optional rotation of K (GREY_KV_HADAMARD_K): each K row of head_dim values (a power of
 * two) is multiplied by the normalized Walsh-Hadamard matrix H / sqrt(head_dim) before it is stored, so
 * that an outlier channel is spread over every channel of the row before the per-channel quantization
 * sees it (QuaRot's argument). The matrix is symmetric and orthogonal: it is its own inverse, and
 * (Hq).(Hk) = q.k, so attention rotates the query the same way and gather applies the rotation again to
 * give K back. Written once for the host backend and the device kernels: the butterfly order and the
 * rounding of every step are fixed here, so that a kernel that computes the same butterflies in registers
 * writes the host's bits. Includes nothing from runtime/ or backends/. */
#ifndef GREY_COMMON_KV_HADAMARD_HPP
#define GREY_COMMON_KV_HADAMARD_HPP

#include "common/hostdevice.h"

#if !defined(__OPENCL_CPP_VERSION__)  // OpenCL has its own math built in (common/hostdevice.h)
#include <math.h>
#endif
#include <stdint.h>

namespace grey::common {

GREY_FN_FORCE bool kv_is_power_of_two(uint32_t n) { return n != 0 && (n & (n - 1)) == 0; }

/* 1 / sqrt(n) for a power of two n, rounded once: 2^-k exactly, or 2^-k / sqrt(2). */
GREY_FN_FORCE float kv_hadamard_scale(uint32_t n) {
    uint32_t log = 0;
    while ((1u << log) < n) ++log;
    const float power = ldexpf(1.0f, -static_cast<int>(log / 2));
    return (log % 2) != 0 ? mul_rn(power, 0.70710678118654752440f) : power;
}

/* The butterfly of stage `h` (1, 2, 4, ..) for element `e`, given its own value and its partner's
 * (element e ^ h): the lower index of a pair takes the sum, the upper the lower minus the upper. */
GREY_FN_FORCE float kv_hadamard_butterfly(uint32_t e, uint32_t h, float own, float partner) {
    return (e & h) == 0 ? add_rn(own, partner) : sub_rn(partner, own);
}

/* x (n values, n a power of two) <- H x / sqrt(n), in place, in float: the form K is stored in. */
GREY_FN void kv_hadamard_rotate(float* x, uint32_t n) {
    for (uint32_t h = 1; h < n; h *= 2)
        for (uint32_t e = 0; e < n; ++e)
            if ((e & h) == 0) {
                const float a = x[e], b = x[e + h];
                x[e] = kv_hadamard_butterfly(e, h, a, b);
                x[e + h] = kv_hadamard_butterfly(e + h, h, b, a);
            }
    const float scale = kv_hadamard_scale(n);
    for (uint32_t e = 0; e < n; ++e) x[e] = mul_rn(x[e], scale);
}

/* The same in float64, for the host reference (the query's rotation, gather's inverse). */
GREY_FN void kv_hadamard_rotate(double* x, uint32_t n) {
    for (uint32_t h = 1; h < n; h *= 2)
        for (uint32_t e = 0; e < n; ++e)
            if ((e & h) == 0) {
                const double a = x[e], b = x[e + h];
                x[e] = a + b;
                x[e + h] = a - b;
            }
    const double scale = 1.0 / sqrt(static_cast<double>(n));
    for (uint32_t e = 0; e < n; ++e) x[e] *= scale;
}

}  // namespace grey::common

#endif
