/* The layout of one quantized tensor: which elements share a parameter set and where codes and
 * parameters lie in the quantized bytes (docs/quantization.md draws it). The runtime computes it once
 * per call from the caller's shape and grey_quant_params (runtime/quant/format.cpp, which checks every
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
 * Rows. A weight of rank >= 2 is grouped as rows = its first dimension and row_length = the product of
 * the others (a conv weight [out, in, kh, kw] as [out, in*kh*kw], as GPTQ, AWQ and torchao do); a tensor
 * of rank 0 or 1 is one row. The grouped planar formats (INT4, INT4_SYM, NF4) take row_length in groups
 * of run_length elements. When row_length is a multiple of the group, rows change nothing: the groups
 * follow each other through the tensor and the layout is the flat one above (required_features 0,
 * row_length 0), as every file written before rows existed. Otherwise the layout sets
 * GREY_QUANT_LAYOUT_ROWS and row_length: each row has ceil(row_length / run_length) groups, the last
 * one "ragged" with row_length % run_length elements and its own parameter set over just those; group
 * g of row r uses parameter set r * groups_per_row + g. A row's codes start on a byte: a row takes
 * ceil(row_length / 2) bytes, the last byte's high nibble 0 when row_length is odd (the only padding,
 * since 4-bit codes are stored two to a byte). The ggml formats keep ggml's rule (the innermost
 * dimension a multiple of 32, as llama.cpp reads them) and the per-channel, per-row and per-tensor
 * formats fit every shape already; neither uses rows.
 *
 * Growth. A layout that a reader must understand to decode correctly sets a bit in `required_features`; a
 * backend refuses (GREY_ERROR_UNSUPPORTED) any bit of required_features it does not know, so an older
 * plugin can never misread a newer layout. GREY_QUANT_LAYOUT_ROWS (since 0.2) is the first such bit. */
#ifndef GREY_COMMON_QUANT_LAYOUT_H
#define GREY_COMMON_QUANT_LAYOUT_H

#include "grey.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Rows with a ragged last group (see "Rows"): row_length is set and not a multiple of run_length. */
#define GREY_QUANT_LAYOUT_ROWS 1u
/* The bits of grey_quant_layout.required_features this version defines. */
#define GREY_QUANT_LAYOUT_REQUIRES_KNOWN GREY_QUANT_LAYOUT_ROWS

typedef struct grey_quant_layout {
    uint32_t struct_size;               /* sizeof(grey_quant_layout) as the runtime was built */
    uint32_t required_features;         /* what the reader must know (see "Growth") */
    grey_quant_format format;
    grey_quant_calibration calibration;
    uint64_t elements;                  /* of the plain tensor, at least 1 and below 2^56 */
    uint64_t run_length;                /* elements sharing one parameter set (a row's last group: fewer) */
    uint64_t param_count;               /* run r uses parameter set r % param_count (rows: every group its own) */
    uint64_t codes_bytes;               /* planar formats: where the parameter arrays begin */
    uint64_t bytes;                     /* the whole quantized tensor: grey_quant_size */
    uint64_t row_length;                /* GREY_QUANT_LAYOUT_ROWS: elements of a row; otherwise 0 */
    uint64_t reserved[2];               /* 0 */
} grey_quant_layout;

static inline int grey_quant_layout_has_rows(const grey_quant_layout* layout) {
    return (layout->required_features & GREY_QUANT_LAYOUT_ROWS) != 0 && layout->row_length != 0;
}

/* The number of runs: elements / run_length, or with rows every row's groups, the ragged one included. */
static inline uint64_t grey_quant_layout_runs(const grey_quant_layout* layout) {
    if (layout->run_length == 0) return 0;
    if (grey_quant_layout_has_rows(layout)) return layout->param_count;
    return layout->elements / layout->run_length;
}

/* Rows: the groups of one row, and the bytes of one row's 4-bit codes. */
static inline uint64_t grey_quant_layout_groups_per_row(const grey_quant_layout* layout) {
    return (layout->row_length + layout->run_length - 1) / layout->run_length;
}
static inline uint64_t grey_quant_layout_row_bytes(const grey_quant_layout* layout) { return (layout->row_length + 1) / 2; }

/* Where run r lies: its first element and its length. Without rows run r is elements r * run_length
 * on; with rows, group g of row r / groups_per_row, the row's last group holding what is left of it. */
static inline uint64_t grey_quant_layout_run_first(const grey_quant_layout* layout, uint64_t r) {
    if (!grey_quant_layout_has_rows(layout)) return r * layout->run_length;
    const uint64_t groups = grey_quant_layout_groups_per_row(layout);
    return (r / groups) * layout->row_length + (r % groups) * layout->run_length;
}
static inline uint64_t grey_quant_layout_run_length(const grey_quant_layout* layout, uint64_t r) {
    if (!grey_quant_layout_has_rows(layout)) return layout->run_length;
    const uint64_t in_row = (r % grey_quant_layout_groups_per_row(layout)) * layout->run_length;
    const uint64_t left = layout->row_length - in_row;
    return left < layout->run_length ? left : layout->run_length;
}
/* The run holding element e. */
static inline uint64_t grey_quant_layout_run_of(const grey_quant_layout* layout, uint64_t e) {
    if (!grey_quant_layout_has_rows(layout)) return e / layout->run_length;
    return (e / layout->row_length) * grey_quant_layout_groups_per_row(layout) + (e % layout->row_length) / layout->run_length;
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif
