/* The layout of one quantized tensor: which elements share a parameter set and where codes and
 * parameters lie in the quantized bytes (docs/quantization.md draws it). The runtime computes it once
 * per call from the caller's shape and grey_quant_params (runtime/quant/layout.cpp, which checks every
 * rule) and hands it to the backend inside grey_backend_quant_job; backends read it and never recompute
 * it. Plain C, so that it can cross the plugin boundary.
 *
 * Elements are taken in row-major order. A "run" is a stretch of run_length consecutive elements that
 * share one parameter set (scale, and min for INT4); run r uses parameter set r % param_count. That one
 * rule covers grouped formats (run = group, one set per run), per-channel scales on any axis (run = the
 * elements inside one index of the axis, sets cycle through the channels) and per-tensor scales (one
 * run). Planar formats store codes_bytes of codes, then their parameter arrays; the ggml formats
 * (Q8_0, Q4_0, Q4_1) store param_count blocks with their parameters inline.
 *
 * Growth. A layout that a reader must understand to decode correctly sets a bit in `required_features`; a
 * backend refuses (GREY_ERROR_UNSUPPORTED) any bit of required_features it does not know, so an older plugin can never
 * misread a newer layout. Row-wise grouping with a ragged last group (issue 15: a weight of rank >= 2 as
 * rows x row_length, row_length not a multiple of the group) is expected to arrive that way: a
 * GREY_QUANT_LAYOUT_ROWS bit, `row_length` set, runs restarting at every row and a row's last run
 * holding row_length % run_length elements. Until then row_length and required_features are 0. */
#ifndef GREY_COMMON_QUANT_LAYOUT_H
#define GREY_COMMON_QUANT_LAYOUT_H

#include "grey.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The bits of grey_quant_layout.required_features this version defines: none yet. */
#define GREY_QUANT_LAYOUT_REQUIRES_KNOWN 0u

typedef struct grey_quant_layout {
    uint32_t struct_size;               /* sizeof(grey_quant_layout) as the runtime was built */
    uint32_t required_features;         /* what the reader must know (see "Growth"); 0 here */
    grey_quant_format format;
    grey_quant_calibration calibration;
    uint64_t elements;                  /* of the plain tensor, at least 1 and below 2^56 */
    uint64_t run_length;                /* elements sharing one parameter set in a row */
    uint64_t param_count;               /* run r uses parameter set r % param_count */
    uint64_t codes_bytes;               /* planar formats: where the parameter arrays begin */
    uint64_t bytes;                     /* the whole quantized tensor: grey_quant_size */
    uint64_t row_length;                /* 0: reserved for row-wise layouts (see "Growth") */
    uint64_t reserved[2];               /* 0 */
} grey_quant_layout;

/* The number of runs: elements / run_length. */
static inline uint64_t grey_quant_layout_runs(const grey_quant_layout* layout) {
    return layout->run_length == 0 ? 0 : layout->elements / layout->run_length;
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif
