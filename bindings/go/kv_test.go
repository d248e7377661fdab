package grey_test

import (
	"strings"
	"testing"
	"unsafe"

	"libgrey/grey/capi"
)

// The KV cache through the raw binding: arrays go in as host addresses.
func TestKvCacheRaw(t *testing.T) {
	options := capi.NewGrey_context_options()
	defer capi.DeleteGrey_context_options(options)
	out := []uintptr{0}
	if err := capi.Grey_context_create(options, out); err != nil {
		t.Fatal(err)
	}
	context := capi.SwigcptrGrey_context(out[0])
	defer capi.Grey_context_destroy(context)

	config := capi.NewGrey_kv_cache_config()
	defer capi.DeleteGrey_kv_cache_config(config)
	config.SetLayers(1)
	config.SetKv_heads(1)
	config.SetHead_dim(32)
	config.SetTokens_per_block(4)
	config.SetWindow_tokens(4)
	config.SetWindow_dtype(capi.GREY_DTYPE_BF16)
	config.SetFormat(capi.GREY_KV_INT4)
	config.SetCapacity_bytes(1 << 20)
	if err := capi.Grey_kv_cache_create(context, 0, config, out); err != nil {
		t.Fatal(err)
	}
	cache := capi.SwigcptrGrey_kv_cache(out[0])
	defer capi.Grey_kv_cache_destroy(cache)

	seq := []uint64{0}
	if err := capi.Grey_kv_sequence_create(cache, 3, seq); err != nil {
		t.Fatal(err)
	}
	const n = 9
	tokens := make([]int32, n)
	k := make([]float32, n*32)
	v := make([]float32, n*32)
	for i := range k {
		k[i] = float32(i%7) * 0.25
		v[i] = float32(i%5) * 0.5
	}
	for i := range tokens {
		tokens[i] = int32(i)
	}
	if err := capi.Grey_kv_append(cache, seq[0], uintptr(unsafe.Pointer(&tokens[0])), n, capi.GREY_DTYPE_F32,
		uintptr(unsafe.Pointer(&k[0])), uintptr(unsafe.Pointer(&v[0])), uint64(len(k)*4)); err != nil {
		t.Fatal(err)
	}
	params := capi.NewGrey_kv_attend_params()
	defer capi.DeleteGrey_kv_attend_params(params)
	params.SetQuery_heads(4)
	q := make([]float32, 4*32)
	result := make([]float32, 4*32)
	for i := range q {
		q[i] = 0.1
	}
	if err := capi.Grey_kv_attend(cache, params, uintptr(unsafe.Pointer(&seq[0])), 1, uintptr(unsafe.Pointer(&q[0])),
		uintptr(unsafe.Pointer(&result[0])), uint64(len(q)*4)); err != nil {
		t.Fatal(err)
	}
	for h := 1; h < 4; h++ { // MQA: every query head reads the one KV head with the same query
		if result[h*32] != result[0] {
			t.Errorf("head %d: %v != %v", h, result[h*32], result[0])
		}
	}
	stats := capi.NewGrey_kv_stats()
	defer capi.DeleteGrey_kv_stats(stats)
	if err := capi.Grey_kv_cache_stats_get(cache, stats); err != nil {
		t.Fatal(err)
	}
	if stats.GetTokens() != n || stats.GetBlocks_compressed() != 1 {
		t.Errorf("tokens %d, compressed blocks %d", stats.GetTokens(), stats.GetBlocks_compressed())
	}
	if err := capi.Grey_kv_sequence_free(cache, 999); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("freeing an unknown sequence: %v", err)
	}
}
