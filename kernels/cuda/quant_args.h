/* The argument block every quantization kernel of kernels/cuda/quant_*.cu takes, by value. Shared by the kernels
 * and the CUDA backend that launches them (backends/cuda/quantizer.cpp), so both sides agree on its
 * layout; plain C types only, device addresses as 64-bit integers. */
#ifndef GREY_KERNELS_CUDA_QUANT_ARGS_H
#define GREY_KERNELS_CUDA_QUANT_ARGS_H

#include <stdint.h>

/* The plain element types a quantizer reads and a dequantizer writes. */
enum { GREY_QK_F32 = 0, GREY_QK_F16 = 1, GREY_QK_BF16 = 2 };

/* Chunks of four elements each thread of grey_dequant_fast takes in one pass of its loop, for every
 * format: two keeps enough loads in flight for the planar 4-bit formats (a warp loads their codes a word
 * a lane and shuffles) without the cost four had for the others (bench/RESULTS.md). */
enum { GREY_QK_DEQUANT_FAST_CHUNKS = 2 };

/* grey_quant_absmax keeps the per-set maxima in shared memory up to this many sets (32 KiB). */
enum { GREY_QK_SHARED_STATISTICS = 8192 };

/* Threads a block of grey_quant_blocks: its shared memory holds three staging areas for each warp. */
enum { GREY_QK_BLOCKS_THREADS = 64 };

/* Threads a block of grey_quant_q8_0, and the 16-byte loads each of its lanes keeps in flight. */
enum { GREY_QK_Q8_THREADS = 256, GREY_QK_Q8_LOADS = 8 };
/* The Q8_0 blocks a warp of grey_quant_q8_0 takes in one pass: its loads are 512 bytes each, 4 blocks of
 * F32 or 8 of F16/BF16. */
#define GREY_QK_Q8_WARP_BLOCKS(f32) (GREY_QK_Q8_LOADS * ((f32) ? 4 : 8))

/* What a quantization job found wrong with its input, each the lowest index the kernels flagged (~0 for
 * none): the host reports the first problem of the first kind that has one, as the host backend does. */
typedef struct grey_qk_flags {
    uint64_t non_finite; /* the lowest NaN or infinite element */
    uint64_t overflow;   /* the first element of the lowest scale group whose fp16 scale or minimum overflowed */
    uint64_t nan;        /* the lowest NaN element: the lowest non-finite one is NaN when the two are equal, so the
                            host names it without reading the input back (it may have changed by then) */
} grey_qk_flags;

/* The error sums grey_quant_measure accumulates (common/quant_error.hpp's, in another order), its second
 * argument: the host zeroes them; max_abs_error_bits holds a non-negative double's bits, which order as
 * the values do. */
typedef struct grey_qk_error {
    double sum_squared_signal;
    double sum_squared_error;
    uint64_t max_abs_error_bits;
} grey_qk_error;

typedef struct grey_qk_args {
    uint64_t plain;        /* the F32/F16/BF16 tensor: read by quantize, written by dequantize */
    uint64_t quantized;    /* the layout of docs/quantization.md */
    uint64_t elements;
    uint64_t run_length;   /* elements sharing one parameter set in a row (common/quant_layout.h) */
    uint64_t param_count;  /* run r uses parameter set r % param_count */
    uint64_t codes_bytes;  /* planar formats: where the parameter arrays begin */
    uint64_t flags;        /* device address of a grey_qk_flags (quantize) */
    uint64_t noticed;      /* device address of a uint32 in mapped host memory: set to 1 with any flag, so
                              that the host reads the flags back only when one was set */
    uint64_t codings;      /* device address of param_count grey::common::Codings (scratch) */
    uint64_t absmax_bits;  /* device address of param_count uint32 (scratch, global-statistics path) */
    int32_t format;        /* grey_quant_format */
    int32_t dtype;         /* GREY_QK_F32 / F16 / BF16 */
    int32_t run_shift;     /* log2(run_length) when it is a power of two, else -1: saves a division */
    int32_t sets_are_runs; /* 1 when param_count is the number of runs (run r uses set r) */
    /* Exact division by run_length and by param_count for the fast kernels, whose indices are below
     * 2^31: n / d = (n * multiplier) >> shift (grey::cuda::divider_for in quantizer.cpp). */
    uint64_t run_multiplier;
    uint64_t set_multiplier;
    int32_t run_mshift;
    int32_t set_mshift;
} grey_qk_args;

/* The second argument of the kernels of quant_ragged.cu: rows with a ragged last group
 * (common/quant_layout.h, "Rows"). Apart from grey_qk_args, so that the other kernels' argument block,
 * and with it their code, stays as measured. */
typedef struct grey_qk_rows {
    uint64_t row_length;     /* elements of a row */
    uint64_t row_bytes;      /* bytes of a row's 4-bit codes: rows start on a byte */
    uint64_t groups_per_row; /* the last one ragged */
    int32_t mse;             /* 1: choose each group's parameters by MSE calibration, 0: round to nearest */
    int32_t reserved;
} grey_qk_rows;

#endif
