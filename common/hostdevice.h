/* The shim that lets one header be compiled as host C++, as CUDA (ggml's ggml-common.h is the model) and
 * as C++ for OpenCL (the Level Zero kernels, kernels/opencl): functions marked GREY_FN are host and
 * device functions under nvcc and plain inline functions elsewhere, and tables marked GREY_TABLE live in
 * constant memory on the device. A rule written once
 * here is the same rule on both sides; only the primitive operations below differ in spelling.
 *
 * The arithmetic wrappers are the reason the two sides give the same bits. On the device each one is
 * the IEEE round-to-nearest intrinsic, which the compiler never contracts into a fused multiply-add; on
 * the host each one is the plain operator, and every host file that computes quantization codes is
 * compiled with -ffp-contract=off (runtime/CMakeLists.txt), so neither side fuses a multiply and an add.
 * Includes nothing from runtime/ or backends/. */
#ifndef GREY_COMMON_HOSTDEVICE_H
#define GREY_COMMON_HOSTDEVICE_H

#if defined(__CUDACC__) || defined(__HIP__) /* HIP: kernels/hip/cuda_compat.h */
#define GREY_FN __host__ __device__ inline
#define GREY_FN_FORCE __host__ __device__ __forceinline__
/* A table in constant memory on the device, an ordinary constant array on the host. */
#define GREY_TABLE(type, name, size) __constant__ type name[size]
#elif defined(__OPENCL_CPP_VERSION__)
#define GREY_FN inline
#define GREY_FN_FORCE inline
/* Program-scope data in OpenCL lives in an address space; constant memory, as on CUDA. */
#define GREY_TABLE(type, name, size) __constant type name[size]
#else
#define GREY_FN inline
#define GREY_FN_FORCE inline
#define GREY_TABLE(type, name, size) inline constexpr type name[size]
#endif

#if defined(__OPENCL_CPP_VERSION__)
/* OpenCL spells C's float functions as overloads; these are the names the shared headers use. Each is
 * exact in OpenCL (0 ulp), as in C. Division and sqrt are not used through here: OpenCL allows them to be
 * inexact without -cl-fp32-correctly-rounded-divide-sqrt, so the Level Zero backend divides on the host. */
inline float fabsf(float x) { return fabs(x); }
inline float ldexpf(float x, int e) { return ldexp(x, e); }
inline float frexpf(float x, int* e) { return frexp(x, e); }
inline float nearbyintf(float x) { return rint(x); }
inline float rintf(float x) { return rint(x); }
/* fminf and fmaxf as glibc's x86-64 host library answers them (the host reference's): of two equal values
 * (-0 and +0) the first argument, and the other argument when one is NaN. OpenCL's fmin and fmax leave
 * the sign of an equal zero open, which would change a stored KV minimum's bits. */
inline float fminf(float a, float b) { return isnan(a) ? b : isnan(b) ? a : b < a ? b : a; }
inline float fmaxf(float a, float b) { return isnan(a) ? b : isnan(b) ? a : a < b ? b : a; }
#endif

#ifdef __cplusplus
namespace grey::common {

// mul_rn, add_rn, sub_rn, div_rn on float and dmul_rn, dadd_rn, dsub_rn, ddiv_rn on double.
#if defined(__CUDA_ARCH__)
#define GREY_ROUNDED(name, type, intrinsic, op) \
    GREY_FN_FORCE type name(type a, type b) { return intrinsic(a, b); }
#else
#define GREY_ROUNDED(name, type, intrinsic, op) \
    GREY_FN_FORCE type name(type a, type b) { return a op b; }
#endif
GREY_ROUNDED(mul_rn, float, __fmul_rn, *)
GREY_ROUNDED(add_rn, float, __fadd_rn, +)
GREY_ROUNDED(sub_rn, float, __fsub_rn, -)
GREY_ROUNDED(div_rn, float, __fdiv_rn, /)
GREY_ROUNDED(dmul_rn, double, __dmul_rn, *)
GREY_ROUNDED(dadd_rn, double, __dadd_rn, +)
GREY_ROUNDED(dsub_rn, double, __dsub_rn, -)
GREY_ROUNDED(ddiv_rn, double, __ddiv_rn, /)
#undef GREY_ROUNDED

}  // namespace grey::common
#endif

#endif
