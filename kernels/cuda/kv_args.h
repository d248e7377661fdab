/* The argument blocks of the KV-cache kernels (kernels/cuda/kv_cache.cu), by value. Shared by the kernels
 * and the CUDA backend that launches them (backends/cuda/kv_ops.cpp); plain C types, device addresses as
 * 64-bit integers. */
#ifndef GREY_KERNELS_CUDA_KV_ARGS_H
#define GREY_KERNELS_CUDA_KV_ARGS_H

#include "common/kv_layout.hpp"

#include <stdint.h>

/* The kernels' warp: a logical group of 32 consecutive threads (a CUDA warp; half a wave64 wavefront on
 * AMD's gfx90a/gfx942, a whole wave32 one on gfx1100), the width of every shuffle in kv_cache.cu.
 * Threads of a block of grey_kv_attend_split: four warps, each taking every fourth block of its range.
 * (One enum, so that their product is plain arithmetic.) */
enum { GREY_KVK_WARP_LANES = 32, GREY_KVK_ATTEND_WARPS = 4 };
/* The attention kernels' limits: head_dim a multiple of 16 (every code row then fills whole 32-bit words)
 * up to 256 (eight channels a lane), and at most eight query heads of a KV head per thread block. */
enum { GREY_KVK_HEAD_DIM_STEP = 16, GREY_KVK_MAX_HEAD_DIM = 256, GREY_KVK_MAX_QUERY_GROUP = 8 };

/* The element types grey_kv_store reads. */
enum { GREY_KVK_F32 = 0, GREY_KVK_F16 = 1, GREY_KVK_BF16 = 2 };

/* grey_kv_store: token i's K and V rows into slot slots[i] of the window-form block at blocks[i]. With
 * non_finite set, the index of the first NaN or infinity read (grey_backend_kv_store_job's numbering) is
 * folded into the uint64_t there by atomicMin; the caller sets it to UINT64_MAX first. */
typedef struct grey_kvk_store_args {
    struct grey_kv_layout layout;
    uint64_t keys;   /* const <dtype>*: [layer_count][tokens][kv_heads][head_dim] */
    uint64_t values;
    uint64_t blocks; /* const uint64_t*: a device address per token */
    uint64_t slots;  /* const uint32_t* */
    uint32_t tokens;
    uint32_t layer_first;
    uint32_t layer_count;
    uint32_t dtype;      /* GREY_KVK_F32 / F16 / BF16 */
    uint64_t non_finite; /* uint64_t*, or 0 */
} grey_kvk_store_args;

/* grey_kv_compress: the quantized form of count window-form blocks. With `staged` set, a thread block
 * copies each (layer, head) slice it takes into dynamic shared memory (grey_kvk_compress_slice_bytes) and
 * codes it from there; with 0 it reads the slices in place. grey_kv_compress_warps takes the same
 * arguments (never staged): a warp per K or V of a slice, for blocks of a few rows. */
typedef struct grey_kvk_compress_args {
    struct grey_kv_layout layout;
    uint64_t sources;      /* const uint64_t*: device addresses */
    uint64_t destinations; /* const uint64_t* */
    uint32_t count;
    uint32_t staged;
} grey_kvk_compress_args;

/* grey_kv_compress: a thread block of GREY_KVK_COMPRESS_THREADS threads takes one (layer, head) slice of a
 * block at a time, for head_dim a multiple of GREY_KVK_CHUNK up to GREY_KVK_COMPRESS_MAX_HEAD_DIM
 * (check_layout's head_dim always is); its static shared memory is GREY_KVK_COMPRESS_STATIC_SHARED bytes
 * (K's extremes, a float pair per chunk value of every thread, and an encoder per channel), beside the
 * staging buffers. grey_kv_store reads rows in chunks of GREY_KVK_CHUNK values (16 bytes of window form)
 * where head_dim and the input's alignment allow it. */
enum {
    GREY_KVK_CHUNK = 8,
    GREY_KVK_COMPRESS_THREADS = 256,
    GREY_KVK_COMPRESS_MAX_HEAD_DIM = 1024,
    GREY_KVK_COMPRESS_STATIC_SHARED = 2 * GREY_KVK_COMPRESS_THREADS * GREY_KVK_CHUNK * 4 + GREY_KVK_COMPRESS_MAX_HEAD_DIM * 8
};

/* One slice's window form, K then V: the staged copy. */
GREY_FN_FORCE uint64_t grey_kvk_compress_slice_bytes(const struct grey_kv_layout* l) {
    return 2u * static_cast<uint64_t>(l->tokens_per_block) * l->head_dim * 2u;
}

/* Whether grey_kv_store reads the job in chunks (its grid then needs a thread per chunk, not per element). */
GREY_FN_FORCE bool grey_kvk_store_takes_chunks(const grey_kvk_store_args* a) {
    return a->layout.hadamard_k == 0 && a->layout.head_dim % GREY_KVK_CHUNK == 0 && (a->keys | a->values) % 16u == 0;
}
/* Whether grey_kv_compress takes the layout. */
GREY_FN_FORCE bool grey_kvk_compress_takes(const struct grey_kv_layout* l) {
    return l->head_dim % GREY_KVK_CHUNK == 0 && l->head_dim <= GREY_KVK_COMPRESS_MAX_HEAD_DIM;
}

/* One sequence of an attention launch: its tokens first .. last - 1, its blocks at
 * blocks[table_offset ..] (a device address each, bit 0 set when the block is quantized). */
typedef struct grey_kvk_sequence {
    uint64_t first;
    uint64_t last;
    uint64_t table_offset;
} grey_kvk_sequence;

/* grey_kv_attend_split<channels per lane, query heads per thread block> and grey_kv_attend_combine. */
typedef struct grey_kvk_attend_args {
    struct grey_kv_layout layout;
    uint64_t sequences; /* const grey_kvk_sequence*: [batch] */
    uint64_t blocks;    /* const uint64_t* */
    uint64_t queries;   /* const float*: [batch][query_heads][head_dim] */
    uint64_t output;    /* float*: same shape */
    uint64_t partials;  /* float*: [batch][query_heads][splits][head_dim + 2] (accumulator, max, sum) */
    uint32_t layer;
    uint32_t query_heads;
    uint32_t group;         /* query_heads / kv_heads */
    uint32_t group_chunks;  /* ceil(group / query heads per thread block) */
    uint32_t splits;        /* thread blocks along each sequence, each over an equal share of its blocks */
    float scale_log2;       /* the softmax scale times log2(e): scores are taken in base 2 */
    uint32_t stage_bytes;   /* grey_kv_attend_mma: one staging buffer of a warp (grey_kvk_mma_stage_bytes) */
    uint32_t stages;        /* grey_kv_attend_mma: the staging buffers a warp cycles through (2 or 3) */
} grey_kvk_attend_args;

/* grey_kv_attend_mma<k-steps, query heads per thread block>, the tensor-core decode attention of CUDA
 * devices (sm_80 and later): head_dim up to 128 and at most four query heads a thread block (its
 * m16n8k16 products hold each query twice, as a 16-bit value and the rounding error of it). */
enum { GREY_KVK_MMA_MAX_HEAD_DIM = 128, GREY_KVK_MMA_MAX_QUERY_GROUP = 4, GREY_KVK_MMA_CHUNK = 16 };

/* A warp stages quantized chunks in three buffers (two chunks copied ahead of the one computed), or in
 * two where three would hold fewer thread blocks on a multiprocessor (the launch plan asks the device). */
enum { GREY_KVK_MMA_STAGES = 3, GREY_KVK_MMA_FEWER_STAGES = 2 };

/* A staged row of codes in shared memory: `row_words` 32-bit words padded to 4 modulo 8 words, so that
 * the eight rows a tensor-core fragment reads at once fall in distinct banks. */
GREY_FN_FORCE uint32_t grey_kvk_mma_row_stride(uint32_t row_words) { return row_words + ((4u - row_words % 8u) + 8u) % 8u; }

/* One staging buffer of a warp: a chunk's K and V rows of codes, their V parameters and the block's K
 * parameters (quantized blocks only: window-form blocks are read in place). */
GREY_FN_FORCE uint32_t grey_kvk_mma_stage_bytes(const struct grey_kv_layout* l) {
    const uint32_t row_words = l->head_dim * grey::common::kv_code_bits(l->format) / 32u;
    const uint32_t rows = 2u * GREY_KVK_MMA_CHUNK * grey_kvk_mma_row_stride(row_words) * 4u;
    const uint32_t v_params = GREY_KVK_MMA_CHUNK * grey::common::kv_v_groups(*l) * 8u;
    return (rows + v_params + l->head_dim * 8u + 15u) / 16u * 16u;
}

/* The k-steps of 16 channels a kernel takes (4 up to head_dim 64, else 8), and the V groups a warp keeps
 * sums for: groups of 32 channels or more, so half the k-steps. */
GREY_FN_FORCE constexpr uint32_t grey_kvk_mma_k_steps(uint32_t head_dim) { return head_dim <= 64u ? 4u : 8u; }
GREY_FN_FORCE constexpr uint32_t grey_kvk_mma_groups(uint32_t k_steps) { return k_steps / 2u > 1u ? k_steps / 2u : 1u; }

/* A thread block's shared memory, in this order: the queries ([head_dim][gc] floats, padded to 16
 * bytes); per warp its `stages` staging buffers (where its results go at the end, eight columns of
 * head_dim floats: a buffer holds at least 16 bytes a channel, 2-bit rows and K parameters) and its
 * query fragments ([k_steps][lanes] pairs of 32-bit words); per warp and query head its statistics
 * (maximum, sum, V scale and a V minimum sum per group). */
typedef struct grey_kvk_mma_shared {
    uint32_t warp_area;   /* bytes from the start: the first warp's staging buffers */
    uint32_t warp_bytes;  /* a warp's staging buffers and query fragments */
    uint32_t fragments;   /* bytes from a warp's area: its query fragments */
    uint32_t stats;       /* bytes from the start: the statistics, [warp][gc][stat_count] floats */
    uint32_t stat_count;
    uint32_t total;
} grey_kvk_mma_shared;

GREY_FN_FORCE grey_kvk_mma_shared grey_kvk_mma_shared_layout(const struct grey_kv_layout* l, uint32_t gc, uint32_t stages) {
    grey_kvk_mma_shared s;
    const uint32_t k_steps = grey_kvk_mma_k_steps(l->head_dim);
    s.warp_area = (l->head_dim * gc * 4u + 15u) / 16u * 16u;
    s.fragments = stages * grey_kvk_mma_stage_bytes(l);
    s.warp_bytes = s.fragments + k_steps * GREY_KVK_WARP_LANES * 8u;
    s.stats = s.warp_area + GREY_KVK_ATTEND_WARPS * s.warp_bytes;
    s.stat_count = 3u + grey_kvk_mma_groups(k_steps);
    s.total = s.stats + GREY_KVK_ATTEND_WARPS * gc * s.stat_count * 4u;
    return s;
}

#endif
