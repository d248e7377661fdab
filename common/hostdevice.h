/* The shim that lets one header be compiled as host C++ and as CUDA (ggml's ggml-common.h is the model):
 * functions marked GREY_FN are host and device functions under nvcc and plain inline functions
 * elsewhere, and tables marked GREY_TABLE live in constant memory on the device. A rule written once
 * here is the same rule on both sides; only the primitive operations below differ in spelling.
 *
 * The arithmetic wrappers are the reason the two sides give the same bits. On the device each one is
 * the IEEE round-to-nearest intrinsic, which the compiler never contracts into a fused multiply-add; on
 * the host each one is the plain operator, and every host file that computes quantization codes is
 * compiled with -ffp-contract=off (runtime/CMakeLists.txt), so neither side fuses a multiply and an add.
 * Includes nothing from runtime/ or backends/. */
#ifndef GREY_COMMON_HOSTDEVICE_H
#define GREY_COMMON_HOSTDEVICE_H

#if defined(__CUDACC__)
#define GREY_FN __host__ __device__ inline
#define GREY_FN_FORCE __host__ __device__ __forceinline__
/* A table in constant memory on the device, an ordinary constant array on the host. */
#define GREY_TABLE(type, name, size) __constant__ type name[size]
#else
#define GREY_FN inline
#define GREY_FN_FORCE inline
#define GREY_TABLE(type, name, size) inline constexpr type name[size]
#endif

#ifdef __cplusplus
namespace grey::common {

GREY_FN_FORCE float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}
GREY_FN_FORCE float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fadd_rn(a, b);
#else
    return a + b;
#endif
}
GREY_FN_FORCE float sub_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fsub_rn(a, b);
#else
    return a - b;
#endif
}
GREY_FN_FORCE float div_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fdiv_rn(a, b);
#else
    return a / b;
#endif
}
GREY_FN_FORCE double dmul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __dmul_rn(a, b);
#else
    return a * b;
#endif
}
GREY_FN_FORCE double dadd_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __dadd_rn(a, b);
#else
    return a + b;
#endif
}
GREY_FN_FORCE double dsub_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __dsub_rn(a, b);
#else
    return a - b;
#endif
}
GREY_FN_FORCE double ddiv_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __ddiv_rn(a, b);
#else
    return a / b;
#endif
}

}  // namespace grey::common
#endif

#endif
