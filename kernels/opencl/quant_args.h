/* The arguments of the Level Zero quantization kernels (grey_quant.clcpp), shared by the kernels, the
 * backend that launches them (backends/level0/quant_launch.*) and the test that runs them through
 * OpenCL on the CPU, so that all agree on the layout. Plain C types, 8-byte members aligned. */
#ifndef GREY_KERNELS_OPENCL_QUANT_ARGS_H
#define GREY_KERNELS_OPENCL_QUANT_ARGS_H

#include "common/quant_layout.h"

#include <stdint.h>

/* The plain element types a quantizer reads and a dequantizer writes. */
enum { GREY_QL0_F32 = 0, GREY_QL0_F16 = 1, GREY_QL0_BF16 = 2 };

/* The last argument of every quantization kernel, by value. */
typedef struct grey_ql0_args {
    grey_quant_layout layout;   /* as the runtime computed it */
    uint64_t plain_offset;      /* bytes into the plain tensor's buffer argument */
    uint64_t quantized_offset;  /* bytes into the quantized tensor's buffer argument */
    uint64_t piece;             /* grey_quant_stats: elements of a run one work item scans */
    uint64_t pieces_per_run;    /* ceil(run_length / piece) */
    int32_t dtype;              /* GREY_QL0_F32 / F16 / BF16 */
    int32_t reserved;
} grey_ql0_args;

/* What grey_quant_stats finds in one piece of a run (elements [piece * k, piece * (k + 1)) of it): the
 * statistics common/quant_coding.hpp's Stats holds, each as the host's sequential scan gives it, and the
 * first element that is not finite. */
typedef struct grey_ql0_stats {
    float absmax;
    float min;
    float max;
    float peak;             /* Q4_0: the first element whose magnitude is absmax, with its sign */
    uint64_t first_bad;     /* the index in the tensor of the piece's first NaN or infinity; ~0: none */
    uint32_t first_bad_nan; /* 1 when that element is NaN */
    uint32_t reserved;
} grey_ql0_stats;

#endif
