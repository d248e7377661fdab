/* Streams, events and an async quantization, through the C API: one stream uploads a tensor, a second
 * waits for it through an event, quantizes it to q4_0 in four row blocks, checksums and reads the result
 * back, all enqueued before one synchronize; then a NaN input fails at synchronize with the synchronous
 * call's message.
 *
 *   cc -std=c11 -Iinclude samples/c/async.c -Lbuild/default/lib -Wl,-rpath,$PWD/build/default/lib -lgrey
 *   ./a.out [DEVICE]
 *
 * DEVICE (default 0, the host) is the device the streams run on: a GPU's index runs the same work there.
 * The input is the deterministic synthetic 256 x 512 tensor of samples/c/quantize.c. Every async sample in
 * samples/ does the same work and prints the same lines.
 */
#include <grey.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ROWS = 256, COLS = 512, BLOCKS = 4 };

static int fail(const char* what, grey_status status) {
    fprintf(stderr, "async: %s failed: %s (%s)\n", what, grey_last_error(), grey_status_string(status));
    return 1;
}

#define CHECK(call)                                      \
    do {                                                 \
        const grey_status check_status = (call);         \
        if (check_status != GREY_OK) return fail(#call, check_status); \
    } while (0)

/* The synthetic stand-in: an LCG whose values are exact in float32, so every language makes the same. */
static void synthetic(float* values, size_t n) {
    uint32_t state = 12345u;
    for (size_t i = 0; i < n; ++i) {
        state = state * 1664525u + 1013904223u;
        values[i] = ((float)(state >> 8) / 16777216.0f - 0.5f) / 16.0f;
    }
}

/* A copy of grey_last_error(), which the next call replaces. */
static char* last_error_copy(void) {
    const char* text = grey_last_error();
    char* copy = malloc(strlen(text) + 1);
    if (copy != NULL) memcpy(copy, text, strlen(text) + 1);
    return copy;
}

static grey_tensor_desc desc_of(uint64_t rows) {
    grey_tensor_desc desc = GREY_TENSOR_DESC_INIT;
    desc.dtype = GREY_DTYPE_F32;
    desc.rank = 2;
    desc.shape[0] = rows;
    desc.shape[1] = COLS;
    return desc;
}

static int run(grey_context* context, uint32_t device) {
    const grey_tensor_desc whole = desc_of(ROWS), block = desc_of(ROWS / BLOCKS);
    grey_quant_params params = GREY_QUANT_PARAMS_INIT;
    CHECK(grey_quant_params_from_name("q4_0", &params));
    uint64_t packed_bytes = 0, block_bytes = 0;
    CHECK(grey_quant_size(&whole, &params, &packed_bytes));
    CHECK(grey_quant_size(&block, &params, &block_bytes));
    const uint64_t plain_bytes = (uint64_t)ROWS * COLS * sizeof(float);

    /* Host memory the streams read and write after the calls return: pinned where the device can pin. */
    void* host = NULL;
    CHECK(grey_host_alloc(context, device, plain_bytes + packed_bytes + sizeof(uint64_t), &host));
    float* values = host;
    unsigned char* packed = (unsigned char*)host + plain_bytes;
    uint64_t* checksum = (uint64_t*)(packed + packed_bytes);
    synthetic(values, (size_t)ROWS * COLS);
    unsigned char* expected = malloc(packed_bytes);
    if (expected == NULL) return fail("malloc", GREY_ERROR_OUT_OF_MEMORY);
    CHECK(grey_quantize(&whole, values, plain_bytes, &params, expected, packed_bytes, NULL));

    grey_buffer *plain = NULL, *quantized = NULL;
    grey_stream *upload = NULL, *work = NULL;
    grey_event* uploaded = NULL;
    CHECK(grey_buffer_create(context, device, plain_bytes, &plain));
    CHECK(grey_buffer_create(context, device, packed_bytes, &quantized));
    CHECK(grey_stream_create(context, device, &upload));
    CHECK(grey_stream_create(context, device, &work));
    CHECK(grey_event_create(context, device, &uploaded));

    CHECK(grey_buffer_write_async(plain, 0, values, plain_bytes, upload));
    CHECK(grey_event_record(uploaded, upload));
    CHECK(grey_stream_wait_event(work, uploaded));
    for (uint64_t i = 0; i < BLOCKS; ++i)
        CHECK(grey_quantize_buffer_async(&block, plain, i * (plain_bytes / BLOCKS), &params, quantized, i * block_bytes, work));
    CHECK(grey_buffer_checksum_async(quantized, 0, packed_bytes, checksum, work));
    CHECK(grey_buffer_read_async(quantized, 0, packed, packed_bytes, work));
    CHECK(grey_stream_synchronize(work));
    CHECK(grey_stream_synchronize(upload));
    if (memcmp(packed, expected, packed_bytes) != 0) {
        fprintf(stderr, "async: the async quantization differs from the synchronous one\n");
        return 1;
    }
    printf("async input: synthetic [%d, %d] F32\n", ROWS, COLS);
    printf("async q4_0: %d quantizations of [%d, %d] on 2 streams, %llu bytes, checksum %016llx, equal to the synchronous call\n",
           BLOCKS, ROWS / BLOCKS, COLS, (unsigned long long)packed_bytes, (unsigned long long)*checksum);

    /* A NaN input: the async call returns once enqueued; the failure arrives at synchronize, in the
     * words of the synchronous call. */
    values[5] = NAN;
    CHECK(grey_buffer_write(plain, 0, values, plain_bytes));
    const grey_status synchronous = grey_quantize_buffer(&block, plain, 0, &params, quantized, 0, NULL);
    char* synchronous_message = last_error_copy();
    CHECK(grey_quantize_buffer_async(&block, plain, 0, &params, quantized, 0, work));
    const grey_status later = grey_stream_synchronize(work);
    if (synchronous != GREY_ERROR_INVALID_ARGUMENT || later != synchronous || synchronous_message == NULL ||
        strcmp(grey_last_error(), synchronous_message) != 0) {
        fprintf(stderr, "async: a NaN input gave '%s' at synchronize, '%s' synchronously\n", grey_last_error(),
                synchronous_message != NULL ? synchronous_message : "?");
        return 1;
    }
    printf("async nan: refused at synchronize with the synchronous call's message\n");

    free(synchronous_message);
    free(expected);
    grey_event_destroy(uploaded);
    grey_stream_destroy(work);
    grey_stream_destroy(upload);
    grey_buffer_destroy(quantized);
    grey_buffer_destroy(plain);
    CHECK(grey_host_free(context, host));
    return 0;
}

int main(int argc, char** argv) {
    const uint32_t device = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 0;
    grey_context* context = NULL;
    const grey_status status = grey_context_create(NULL, &context);
    if (status != GREY_OK) return fail("grey_context_create", status);
    const int rc = run(context, device);
    grey_context_destroy(context);
    return rc;
}
