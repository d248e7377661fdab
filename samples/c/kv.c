/* The KV cache through the C API: a cache of int4 blocks behind a bf16 window, a 40-token prompt and three
 * decode steps appended to one sequence, a fork that grows on its own while the original is truncated,
 * decode attention over both (4 query heads on 2 KV heads), K/V gathered back and compared with what was
 * appended, and the cache's statistics.
 *
 *   cc -std=c11 -Iinclude samples/c/kv.c -Lbuild/default/lib -Wl,-rpath,$PWD/build/default/lib -lgrey
 *   ./a.out
 *
 * K, V and queries come from the LCG of samples/c/quantize.c, whose values are exact in float32, so every
 * kv sample in samples/ prints the same lines.
 */
#include <grey.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LAYERS = 2, KV_HEADS = 2, HEAD_DIM = 64, QUERY_HEADS = 4, ROW = KV_HEADS * HEAD_DIM, MAX_TOKENS = 64 };

static int fail(const char* what, grey_status status) {
    fprintf(stderr, "kv: %s failed: %s (%s)\n", what, grey_last_error(), grey_status_string(status));
    return 1;
}

#define CHECK(call)                                                    \
    do {                                                               \
        const grey_status check_status = (call);                       \
        if (check_status != GREY_OK) return fail(#call, check_status); \
    } while (0)

static uint32_t lcg_state = 12345u;

/* The next n values of the synthetic stand-in. */
static void synthetic(float* values, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        lcg_state = lcg_state * 1664525u + 1013904223u;
        values[i] = ((float)(lcg_state >> 8) / 16777216.0f - 0.5f) / 16.0f;
    }
}

/* What a sequence was given: layer 0 of every token appended, [token][kv_head][head_dim]. */
typedef struct {
    float keys[MAX_TOKENS * ROW], values[MAX_TOKENS * ROW];
    uint32_t tokens;
} Appended;

/* Appends n tokens (ids from first_id) with fresh K/V, [layer][token][kv_head][head_dim], and records layer 0. */
static grey_status append(grey_kv_cache* cache, uint64_t sequence, int32_t first_id, uint32_t n, Appended* record) {
    static float keys[LAYERS * MAX_TOKENS * ROW], values[LAYERS * MAX_TOKENS * ROW];
    int32_t ids[MAX_TOKENS];
    for (uint32_t i = 0; i < n; ++i) ids[i] = first_id + (int32_t)((i * 7919u) % 30000u);
    synthetic(keys, (size_t)LAYERS * n * ROW);
    synthetic(values, (size_t)LAYERS * n * ROW);
    const grey_status status = grey_kv_append(cache, sequence, ids, n, GREY_DTYPE_F32, keys, values, (uint64_t)LAYERS * n * ROW * sizeof(float));
    if (status == GREY_OK) {  /* layer 0 is the first n rows */
        memcpy(record->keys + (size_t)record->tokens * ROW, keys, (size_t)n * ROW * sizeof(float));
        memcpy(record->values + (size_t)record->tokens * ROW, values, (size_t)n * ROW * sizeof(float));
        record->tokens += n;
    }
    return status;
}

static double max_abs_difference(const float* a, const float* b, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; ++i) {
        const double d = (double)a[i] - (double)b[i];
        if (d > worst) worst = d;
        if (-d > worst) worst = -d;
    }
    return worst;
}

static int run(grey_context* context) {
    grey_kv_cache_config config = GREY_KV_CACHE_CONFIG_INIT;
    config.layers = LAYERS;
    config.kv_heads = KV_HEADS;
    config.head_dim = HEAD_DIM;
    config.tokens_per_block = 16;
    config.window_tokens = 16;
    config.format = GREY_KV_INT4;
    config.group_size = 32;
    config.capacity_bytes = 1u << 20;
    grey_kv_cache* cache = NULL;
    CHECK(grey_kv_cache_create(context, 0, &config, &cache));
    printf("kv cache: %d layers, %d KV heads, head_dim %d, blocks of %u tokens, the newest %u in bf16, older ones %s (V groups of %u)\n",
           LAYERS, KV_HEADS, HEAD_DIM, config.tokens_per_block, config.window_tokens, grey_kv_format_name(config.format), config.group_size);

    static Appended a, b;
    uint64_t seq_a = 0, seq_b = 0;
    CHECK(grey_kv_sequence_create(cache, 0, &seq_a));
    CHECK(append(cache, seq_a, 101, 40, &a));  /* the prompt */
    for (int step = 0; step < 3; ++step) CHECK(append(cache, seq_a, 2000 + step, 1, &a));
    uint64_t length = 0;
    CHECK(grey_kv_sequence_length(cache, seq_a, &length));
    printf("kv append: sequence A holds %llu tokens (a 40-token prompt, then 3 decode steps)\n", (unsigned long long)length);

    CHECK(grey_kv_sequence_fork(cache, seq_a, &seq_b));
    b = a;
    CHECK(append(cache, seq_b, 3000, 2, &b));
    CHECK(grey_kv_sequence_truncate(cache, seq_a, 38));
    uint64_t length_b = 0;
    CHECK(grey_kv_sequence_length(cache, seq_a, &length));
    CHECK(grey_kv_sequence_length(cache, seq_b, &length_b));
    printf("kv fork: sequence B holds %llu tokens (A's 43 and 2 of its own), A truncated to %llu\n", (unsigned long long)length_b,
           (unsigned long long)length);

    const uint64_t batch[2] = {seq_a, seq_b};
    float queries[2 * QUERY_HEADS * HEAD_DIM], output[2 * QUERY_HEADS * HEAD_DIM];
    synthetic(queries, 2 * QUERY_HEADS * HEAD_DIM);
    grey_kv_attend_params params = GREY_KV_ATTEND_PARAMS_INIT;
    params.layer = 1;
    params.query_heads = QUERY_HEADS;
    CHECK(grey_kv_attend(cache, &params, batch, 2, queries, output, sizeof queries));
    double sum = 0, squares = 0;
    for (size_t i = 0; i < 2 * QUERY_HEADS * HEAD_DIM; ++i) {
        sum += output[i];
        squares += (double)output[i] * output[i];
    }
    printf("kv attend: layer 1, %d query heads on %d KV heads, batch of A and B: output sum %.6f, sum of squares %.6f\n", QUERY_HEADS,
           KV_HEADS, sum, squares);

    static float keys[MAX_TOKENS * ROW], values[MAX_TOKENS * ROW];
    CHECK(grey_kv_gather(cache, seq_b, 0, keys, values, (uint64_t)b.tokens * ROW * sizeof(float)));
    printf("kv gather: B layer 0, %u tokens: largest difference from what was appended K %.6f, V %.6f\n", b.tokens,
           max_abs_difference(keys, b.keys, (size_t)b.tokens * ROW), max_abs_difference(values, b.values, (size_t)b.tokens * ROW));

    grey_kv_stats stats = {0};
    stats.struct_size = sizeof stats;
    CHECK(grey_kv_cache_stats_get(cache, &stats));
    printf("kv stats: %u sequences, %llu tokens, %llu blocks (%llu quantized), %llu bytes, %.2f bytes per token, compression ratio %.4f\n",
           stats.sequences, (unsigned long long)stats.tokens, (unsigned long long)stats.blocks_used,
           (unsigned long long)stats.blocks_compressed, (unsigned long long)stats.bytes_used, stats.bytes_per_token, stats.compression_ratio);

    CHECK(grey_kv_sequence_free(cache, seq_a));
    CHECK(grey_kv_sequence_free(cache, seq_b));
    CHECK(grey_kv_cache_stats_get(cache, &stats));
    printf("kv free: %u sequences, %llu full blocks kept as cached prefixes\n", stats.sequences, (unsigned long long)stats.blocks_cached);
    grey_kv_cache_destroy(cache);
    return 0;
}

int main(void) {
    grey_context* context = NULL;
    const grey_status status = grey_context_create(NULL, &context);
    if (status != GREY_OK) return fail("grey_context_create", status);
    const int rc = run(context);
    grey_context_destroy(context);
    return rc;
}
