// The Level Zero backend's kernel for grey.h's buffer checksum, compiled at build time from OpenCL C to
// SPIR-V (clang -target spir64, llvm-spirv) and embedded in libgrey-backend-level0.so. The checksum is
// sum over i of (byte[i] + 1) * (i * step + base), modulo 2^64; `step` and `base` are arguments so the
// constants stay in one place (common/checksum.hpp). Work item g adds the bytes g, g + G, g + 2G, ...
// (G work items in all) and writes its sum to partial[g]; the host adds the G partial sums, in any order.
__kernel void grey_checksum_partial(__global const uchar* source, ulong n, ulong step, ulong base, __global ulong* partial) {
    const ulong g = get_global_id(0);
    const ulong stride = get_global_size(0);
    ulong sum = 0;
    for (ulong i = g; i < n; i += stride) sum += ((ulong)source[i] + 1) * (i * step + base);
    partial[g] = sum;
}
