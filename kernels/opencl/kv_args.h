/* The argument blocks of the Level Zero KV-cache kernels (kernels/opencl/grey_kv.clcpp), each passed by
 * value as a kernel's only argument. Shared by the kernels, the backend that launches them
 * (backends/level0/kv_launch.*), the fake loader and the test that runs them through OpenCL on the CPU.
 * Device addresses are 64-bit integers (the kernels reach the blocks through tables of them, so the
 * backend declares the kernels' indirect access to device memory); plain C types, 8-byte members aligned. */
#ifndef GREY_KERNELS_OPENCL_KV_ARGS_H
#define GREY_KERNELS_OPENCL_KV_ARGS_H

#include "common/kv_layout.hpp"

#include <stdint.h>

/* The element types grey_kvk_store reads. */
enum { GREY_KVL0_F32 = 0, GREY_KVL0_F16 = 1, GREY_KVL0_BF16 = 2 };

/* grey_kvk_store: token i's K and V rows into slot slots[i] of the window-form block at blocks[i].
 * A cache that rotates K (layout.hadamard_k) has each K row copied to `rotated` ([layer_count][tokens]
 * [kv_heads][head_dim] floats of scratch) and rotated there before it is stored. With `checks` set, row r
 * (of layer_count x tokens x kv_heads) writes checks[2r] and checks[2r + 1]: the channel of its first NaN
 * or infinity among the K values read, and among the V values, or UINT32_MAX (no atomics: the backend
 * reads the rows back and takes the first). */
typedef struct grey_kvl0_store_args {
    struct grey_kv_layout layout;
    uint64_t keys;    /* const <dtype>*: [layer_count][tokens][kv_heads][head_dim] */
    uint64_t values;
    uint64_t blocks;  /* const uint64_t*: a device address per token */
    uint64_t slots;   /* const uint32_t*: a slot per token */
    uint64_t rotated; /* float*: scratch for the rotated K rows, or 0 without hadamard_k */
    uint64_t checks;  /* uint32_t*: two words a row, or 0 */
    uint32_t tokens;
    uint32_t layer_first;
    uint32_t layer_count;
    uint32_t dtype;   /* GREY_KVL0_F32 / F16 / BF16 */
} grey_kvl0_store_args;

/* grey_kvk_params, then grey_kvk_codes: the quantized form of `count` window-form blocks. */
typedef struct grey_kvl0_compress_args {
    struct grey_kv_layout layout;
    uint64_t sources;      /* const uint64_t*: device addresses */
    uint64_t destinations; /* const uint64_t* */
    uint32_t count;
    uint32_t reserved0;
} grey_kvl0_compress_args;

/* One sequence of an attention launch: its tokens first .. last - 1, its blocks at
 * blocks[table_offset ..] (a device address each, bit 0 set when the block is quantized). */
typedef struct grey_kvl0_sequence {
    uint64_t first;
    uint64_t last;
    uint64_t table_offset;
} grey_kvl0_sequence;

/* grey_kvk_attend: a work item per (sequence, query head). */
typedef struct grey_kvl0_attend_args {
    struct grey_kv_layout layout;
    uint64_t sequences; /* const grey_kvl0_sequence*: [batch] */
    uint64_t blocks;    /* const uint64_t* */
    uint64_t queries;   /* const float*: [batch][query_heads][head_dim] */
    uint64_t output;    /* float*: same shape; the kernel accumulates there */
    uint64_t rotated;   /* float*: scratch of the queries' shape for the rotated queries, or 0 without hadamard_k */
    uint32_t batch;
    uint32_t layer;
    uint32_t query_heads;
    uint32_t group;     /* query_heads / kv_heads */
    float scale;
    uint32_t reserved0;
} grey_kvl0_attend_args;

#endif
