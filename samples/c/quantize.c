/* Quantizes one real weight matrix in every format libgrey knows and prints each format's error,
 * through the C API.
 *
 *   cc -std=c11 -Iinclude samples/c/quantize.c -Lbuild/default/lib -Wl,-rpath,$PWD/build/default/lib -lgrey
 *   ./a.out [MODEL.safetensors|MODEL.gguf]
 *
 * The input is the first two-dimensional F32, F16 or BF16 tensor whose rows are a multiple of 128 long
 * (so that every format can hold it) of the model named on the command line, or else of the
 * all-MiniLM-L6-v2 weights scripts/fetch-model.sh caches. Without either, a deterministic synthetic
 * 256 x 512 tensor stands in, and the sample says so. Every sample in samples/ picks the same input the
 * same way and prints the same lines.
 */
#include <grey.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char* what, grey_status status) {
    fprintf(stderr, "quantize: %s failed: %s (%s)\n", what, grey_last_error(), grey_status_string(status));
    return 1;
}

/* $GREY_CACHE_DIR, else $XDG_CACHE_HOME/libgrey, else ~/.cache/libgrey (as scripts/fetch-model.sh). */
static void default_model(char* path, size_t size) {
    const char* cache = getenv("GREY_CACHE_DIR");
    const char* xdg = getenv("XDG_CACHE_HOME");
    const char* home = getenv("HOME");
    const char* leaf = "all-minilm-l6-v2/model.safetensors";
    if (cache != NULL && *cache != '\0') snprintf(path, size, "%s/%s", cache, leaf);
    else if (xdg != NULL && *xdg != '\0') snprintf(path, size, "%s/libgrey/%s", xdg, leaf);
    else snprintf(path, size, "%s/.cache/libgrey/%s", home != NULL ? home : ".", leaf);
}

static int file_exists(const char* path) {
    FILE* f = fopen(path, "rb");
    if (f == NULL) return 0;
    fclose(f);
    return 1;
}

/* The synthetic stand-in: an LCG whose values are exact in float32, so every language makes the same. */
static void synthetic(float* values, size_t n) {
    uint32_t state = 12345u;
    for (size_t i = 0; i < n; ++i) {
        state = state * 1664525u + 1013904223u;
        values[i] = ((float)(state >> 8) / 16777216.0f - 0.5f) / 16.0f;
    }
}

static int is_candidate(const grey_model_tensor* t) {
    const grey_dtype d = t->desc->dtype;
    return (d == GREY_DTYPE_F32 || d == GREY_DTYPE_F16 || d == GREY_DTYPE_BF16) && t->desc->rank == 2 &&
           t->desc->shape[1] % 128 == 0;
}

static int report_every_format(const grey_tensor_desc* desc, const void* data, uint64_t size) {
    for (uint32_t i = 0; i < grey_quant_name_count(); ++i) {
        const char* name = grey_quant_name_at(i);
        grey_quant_params params = GREY_QUANT_PARAMS_INIT;
        grey_status status = grey_quant_params_from_name(name, &params);
        if (status != GREY_OK) return fail("grey_quant_params_from_name", status);
        uint64_t bytes = 0;
        status = grey_quant_size(desc, &params, &bytes);
        if (status != GREY_OK) return fail("grey_quant_size", status);
        void* out = malloc(bytes);
        if (out == NULL) return fail("malloc", GREY_ERROR_OUT_OF_MEMORY);
        grey_quant_report report;
        memset(&report, 0, sizeof report);
        report.struct_size = sizeof report;
        status = grey_quantize(desc, data, size, &params, out, bytes, &report);
        free(out);
        if (status != GREY_OK) return fail("grey_quantize", status);
        printf("quantize %s: bits_per_weight %.4f rel_rmse %.8f sqnr_db %.4f max_abs_err %.8f\n", name,
               report.bits_per_weight, report.rel_rmse, report.sqnr_db, report.max_abs_err);
    }
    return 0;
}

int main(int argc, char** argv) {
    char path[4096];
    if (argc > 1) snprintf(path, sizeof path, "%s", argv[1]);
    else default_model(path, sizeof path);

    if (argc <= 1 && !file_exists(path)) {
        enum { ROWS = 256, COLS = 512 };
        static float values[ROWS * COLS];
        synthetic(values, ROWS * COLS);
        grey_tensor_desc desc = GREY_TENSOR_DESC_INIT;
        desc.rank = 2;
        desc.shape[0] = ROWS;
        desc.shape[1] = COLS;
        printf("note: no model at %s (scripts/fetch-model.sh fetches one): using a synthetic tensor\n", path);
        printf("input: synthetic [%d, %d] F32\n", ROWS, COLS);
        return report_every_format(&desc, values, sizeof values);
    }

    grey_model* model = NULL;
    grey_status status = grey_model_create(path, &model);
    if (status != GREY_OK) return fail("grey_model_create", status);
    uint64_t count = 0;
    status = grey_model_tensor_count(model, &count);
    if (status != GREY_OK) {
        grey_model_destroy(model);
        return fail("grey_model_tensor_count", status);
    }
    int rc = -1; /* -1: no tensor fits */
    for (uint64_t i = 0; i < count; ++i) {
        grey_model_tensor t;
        memset(&t, 0, sizeof t);
        t.struct_size = sizeof t;
        status = grey_model_tensor_get(model, i, &t);
        if (status != GREY_OK) {
            rc = fail("grey_model_tensor_get", status);
            break;
        }
        if (!is_candidate(&t)) continue;
        printf("input: %s [%" PRIu64 ", %" PRIu64 "] %s of %s\n", t.name, t.desc->shape[0], t.desc->shape[1],
               grey_dtype_name(t.desc->dtype), path);
        rc = report_every_format(t.desc, t.data, t.size_bytes);
        break;
    }
    if (rc == -1) {
        fprintf(stderr, "quantize: %s has no 2-D float tensor with rows a multiple of 128\n", path);
        rc = 1;
    }
    grey_model_destroy(model);
    return rc;
}
