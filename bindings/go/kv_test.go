package grey_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"unsafe"

	"libgrey/grey"
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

// The idiomatic wrapper: a token written a layer at a time ends as an appended one, attention sees it
// before it commits, and misuse is refused with libgrey's message.
func TestKvCacheLayerByLayer(t *testing.T) {
	ctx, err := grey.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	config := grey.NewKvConfig(2, 1, 32, 1<<20)
	config.TokensPerBlock, config.WindowTokens, config.Format = 8, 4, grey.KvInt8
	cache, err := ctx.NewKvCache(0, config)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	row := func(seed int) []float32 {
		r := make([]float32, 32)
		for i := range r {
			r[i] = float32((i+seed)%7) * 0.25
		}
		return r
	}
	k0, k1, v0, v1 := row(1), row(2), row(3), row(4)
	whole, _ := cache.Sequence(1)
	layered, _ := cache.Sequence(2)
	if err := cache.Append(whole, []int32{7}, append(append([]float32{}, k0...), k1...), append(append([]float32{}, v0...), v1...)); err != nil {
		t.Fatal(err)
	}
	if cached, err := cache.Reserve(layered, []int32{7}); err != nil || cached != 0 {
		t.Fatalf("reserve: %d, %v", cached, err)
	}
	if err := cache.WriteLayer(layered, 1, k1, v1); err != nil {
		t.Fatal(err)
	}
	if n, _ := cache.Length(layered); n != 0 {
		t.Errorf("committed before every layer was written: %d tokens", n)
	}
	q := make([]float32, 32)
	for i := range q {
		q[i] = 0.5
	}
	a, err := cache.Attend(1, 1, []uint64{layered}, q)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := cache.Attend(1, 1, []uint64{whole}, q)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("attention before the commit differs at %d: %v != %v", i, a[i], b[i])
		}
	}
	if err := cache.WriteLayer(layered, 1, k1, v1); err == nil || !strings.Contains(err.Error(), "layer 1") {
		t.Errorf("writing layer 1 twice: %v", err)
	}
	if err := cache.WriteLayer(layered, 0, k0, v0); err != nil {
		t.Fatal(err)
	}
	for layer := uint32(0); layer < 2; layer++ {
		gk, gv, err := cache.Gather(layered, layer)
		wk, wv, _ := cache.Gather(whole, layer)
		if err != nil || len(gk) != 32 || fmt.Sprint(gk, gv) != fmt.Sprint(wk, wv) {
			t.Errorf("layer %d: gathered %v / %v, %v", layer, gk, wk, err)
		}
	}
	if _, err := cache.Attend(0, 4, []uint64{whole}, q); err == nil || !strings.Contains(err.Error(), "queries hold 32 values") {
		t.Errorf("short queries: %v", err)
	}
	if stats, err := cache.Stats(); err != nil || stats.Tokens != 2 || stats.Sequences != 2 {
		t.Errorf("stats: %+v, %v", stats, err)
	}
	cache.Close()
	if _, err := cache.Sequence(0); err != grey.ErrClosed {
		t.Errorf("after Close: %v", err)
	}
}

// HadamardK: K is stored rotated and given back unrotated; head_dim must be a power of two.
func TestKvCacheHadamardK(t *testing.T) {
	ctx, err := grey.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	config := grey.NewKvConfig(1, 1, 32, 1<<20)
	config.TokensPerBlock, config.WindowTokens, config.HadamardK = 4, grey.KvWindowAll, true
	cache, err := ctx.NewKvCache(0, config)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	keys, values := make([]float32, 2*32), make([]float32, 2*32)
	for i := range keys {
		keys[i] = float32(i%9) * 0.5
		values[i] = float32(i%5) * 0.25
	}
	seq, _ := cache.Sequence(0)
	if err := cache.Append(seq, []int32{1, 2}, keys, values); err != nil {
		t.Fatal(err)
	}
	gk, gv, err := cache.Gather(seq, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		if d := gk[i] - keys[i]; d > 0.03 || d < -0.03 || gv[i] != values[i] {
			t.Fatalf("element %d: K %v (appended %v), V %v (appended %v)", i, gk[i], keys[i], gv[i], values[i])
		}
	}
	config.HeadDim = 48
	if _, err := ctx.NewKvCache(0, config); err == nil || !strings.Contains(err.Error(), "power of two") {
		t.Errorf("head_dim 48 with HadamardK: %v", err)
	}
}

// Attention with the queries and the output in buffers gives what Attend gives, and bad buffers are refused.
func TestKvCacheAttendBuffer(t *testing.T) {
	ctx, err := grey.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	config := grey.NewKvConfig(1, 2, 32, 1<<20)
	config.TokensPerBlock, config.WindowTokens, config.Format = 8, 8, grey.KvInt4
	cache, err := ctx.NewKvCache(0, config)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	seq, _ := cache.Sequence(0)
	const n = 19
	k := make([]float32, n*2*32)
	v := make([]float32, len(k))
	for i := range k {
		k[i] = float32(i%11)*0.125 - 0.5
		v[i] = float32(i%13) * 0.25
	}
	tokens := make([]int32, n)
	if err := cache.Append(seq, tokens, k, v); err != nil {
		t.Fatal(err)
	}
	q := make([]float32, 4*32)
	for i := range q {
		q[i] = float32(i%9) * 0.1
	}
	want, err := cache.Attend(0, 4, []uint64{seq}, q)
	if err != nil {
		t.Fatal(err)
	}
	queries, _ := ctx.NewBuffer(0, uint64(len(q)*4+8))
	output, _ := ctx.NewBuffer(0, uint64(len(q)*4))
	defer queries.Close()
	defer output.Close()
	if _, err := queries.WriteAt(unsafe.Slice((*byte)(unsafe.Pointer(&q[0])), len(q)*4), 8); err != nil {
		t.Fatal(err)
	}
	if err := cache.AttendBuffer(0, 4, []uint64{seq}, queries, 8, output, 0); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, len(q))
	if _, err := output.ReadAt(unsafe.Slice((*byte)(unsafe.Pointer(&got[0])), len(got)*4), 0); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("AttendBuffer %v, Attend %v", got[:4], want[:4])
	}
	if err := cache.AttendBuffer(0, 4, []uint64{seq}, queries, 16, output, 0); err == nil || !strings.Contains(err.Error(), "queries: range") {
		t.Errorf("queries past the buffer: %v", err)
	}
	if err := cache.AttendBuffer(0, 4, []uint64{seq}, queries, -4, output, 0); err == nil || !strings.Contains(err.Error(), "negative offset") {
		t.Errorf("negative offset: %v", err)
	}
	output.Close()
	if err := cache.AttendBuffer(0, 4, []uint64{seq}, queries, 8, output, 0); err != grey.ErrClosed {
		t.Errorf("closed output: %v", err)
	}
}

// Attention queued on a stream gives AttendBuffer's output bit for bit once the stream is synchronized,
// for both layers queued at once; bad arguments, an unknown sequence among them, are refused by the
// call with nothing queued.
func TestKvCacheAttendAsync(t *testing.T) {
	ctx, err := grey.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	config := grey.NewKvConfig(2, 2, 32, 1<<20)
	config.TokensPerBlock, config.WindowTokens = 8, 8
	cache, err := ctx.NewKvCache(0, config)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	// Ragged sequences: quantized blocks, the window and a partly filled last block.
	var sequences []uint64
	for _, n := range []int{1, 9, 30} {
		seq, _ := cache.Sequence(0)
		k := make([]float32, 2*n*2*32)
		v := make([]float32, len(k))
		for i := range k {
			k[i] = float32((i+n)%11)*0.125 - 0.5
			v[i] = float32((i*3+n)%13) * 0.25
		}
		if err := cache.Append(seq, make([]int32, n), k, v); err != nil {
			t.Fatal(err)
		}
		sequences = append(sequences, seq)
	}
	q := make([]float32, 3*4*32)
	for i := range q {
		q[i] = float32(i%9)*0.1 - 0.3
	}
	ioBytes := len(q) * 4
	bytesOf := func(f []float32) []byte { return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), len(f)*4) }
	queries, _ := ctx.NewBuffer(0, uint64(ioBytes))
	expected, _ := ctx.NewBuffer(0, uint64(2*ioBytes))
	output, _ := ctx.NewBuffer(0, uint64(2*ioBytes))
	defer queries.Close()
	defer expected.Close()
	defer output.Close()
	if _, err := queries.WriteAt(bytesOf(q), 0); err != nil {
		t.Fatal(err)
	}
	stream, err := ctx.NewStream(0)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	for layer := uint32(0); layer < 2; layer++ {
		if err := cache.AttendBuffer(layer, 4, sequences, queries, 0, expected, int64(layer)*int64(ioBytes)); err != nil {
			t.Fatal(err)
		}
		if err := cache.AttendAsync(layer, 4, sequences, queries, 0, output, int64(layer)*int64(ioBytes), stream); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Synchronize(); err != nil {
		t.Fatal(err)
	}
	want, got := make([]byte, 2*ioBytes), make([]byte, 2*ioBytes)
	if _, err := expected.ReadAt(want, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := output.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("AttendAsync's output differs from AttendBuffer's")
	}

	// Refused calls queue nothing: the output keeps its bytes.
	if err := output.Fill(0xCD, 0, uint64(ioBytes)); err != nil {
		t.Fatal(err)
	}
	unknown := []uint64{sequences[0], 12345, sequences[2]}
	if err := cache.AttendAsync(0, 4, unknown, queries, 0, output, 0, stream); !errors.Is(err, grey.ErrNotFound) ||
		!strings.Contains(err.Error(), "sequence 12345 does not exist") {
		t.Errorf("unknown sequence: %v", err)
	}
	if err := cache.AttendAsync(0, 4, sequences, queries, 0, output, 0, nil); !errors.Is(err, grey.ErrInvalidArgument) ||
		!strings.Contains(err.Error(), "stream") {
		t.Errorf("nil stream: %v", err)
	}
	if err := cache.AttendAsync(0, 4, sequences, queries, 0, queries, 0, stream); err == nil || !strings.Contains(err.Error(), "overlap") {
		t.Errorf("overlapping queries and output: %v", err)
	}
	if err := cache.AttendAsync(0, 4, sequences, queries, -4, output, 0, stream); err == nil || !strings.Contains(err.Error(), "negative offset") {
		t.Errorf("negative offset: %v", err)
	}
	other, err := grey.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	foreign, err := other.NewStream(0)
	if err != nil {
		t.Fatal(err)
	}
	if err := cache.AttendAsync(0, 4, sequences, queries, 0, output, 0, foreign); err == nil || !strings.Contains(err.Error(), "another context") {
		t.Errorf("a stream of another context: %v", err)
	}
	foreign.Close()
	if err := cache.AttendAsync(0, 4, sequences, queries, 0, output, 0, foreign); err != grey.ErrClosed {
		t.Errorf("closed stream: %v", err)
	}
	if err := stream.Synchronize(); err != nil {
		t.Fatal(err)
	}
	if _, err := output.ReadAt(got[:ioBytes], 0); err != nil {
		t.Fatal(err)
	}
	if bytes.Count(got[:ioBytes], []byte{0xCD}) != ioBytes {
		t.Errorf("a refused call wrote the output")
	}
	queries.Close()
	if err := cache.AttendAsync(0, 4, sequences, queries, 0, output, 0, stream); err != grey.ErrClosed {
		t.Errorf("closed queries: %v", err)
	}
}

// K/V from buffers (BF16 here, half of each F32 value's bits): the same stored values as Append of the
// F32 values they stand for; a NaN is named; a layer at a time from buffers too.
func TestKvCacheAppendBuffer(t *testing.T) {
	ctx, err := grey.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	config := grey.NewKvConfig(2, 2, 32, 1<<20)
	config.TokensPerBlock, config.WindowTokens = 4, 4
	byArray, err := ctx.NewKvCache(0, config)
	if err != nil {
		t.Fatal(err)
	}
	defer byArray.Close()
	byBuffer, err := ctx.NewKvCache(0, config)
	if err != nil {
		t.Fatal(err)
	}
	defer byBuffer.Close()
	const n = 9
	count := 2 * n * 2 * 32
	halves := make([]uint16, 2*count) // keys, then values
	floats := make([]float32, 2*count)
	for i := range halves {
		floats[i] = float32(i%23)*0.375 - 4
		halves[i] = uint16(math.Float32bits(floats[i]) >> 16)
		floats[i] = math.Float32frombits(uint32(halves[i]) << 16)
	}
	tokens := make([]int32, n)
	for i := range tokens {
		tokens[i] = int32(i + 1)
	}
	a, _ := byArray.Sequence(0)
	b, _ := byBuffer.Sequence(0)
	if err := byArray.Append(a, tokens, floats[:count], floats[count:]); err != nil {
		t.Fatal(err)
	}
	input, _ := ctx.NewBuffer(0, uint64(2+4*count))
	defer input.Close()
	if _, err := input.WriteAt(unsafe.Slice((*byte)(unsafe.Pointer(&halves[0])), 4*count), 2); err != nil {
		t.Fatal(err)
	}
	if err := byBuffer.AppendBuffer(b, tokens, grey.DTypeBF16, input, 2, input, int64(2+2*count)); err != nil {
		t.Fatal(err)
	}
	for layer := uint32(0); layer < 2; layer++ {
		wantK, wantV, _ := byArray.Gather(a, layer)
		gotK, gotV, err := byBuffer.Gather(b, layer)
		if err != nil || fmt.Sprint(gotK, gotV) != fmt.Sprint(wantK, wantV) {
			t.Errorf("layer %d: AppendBuffer stored other values than Append (%v)", layer, err)
		}
	}

	nan := uint16(0x7FC0)
	if _, err := input.WriteAt(unsafe.Slice((*byte)(unsafe.Pointer(&nan)), 2), int64(2+2*count+2*7)); err != nil { // values[7]
		t.Fatal(err)
	}
	fresh, _ := byBuffer.Sequence(1)
	if err := byBuffer.AppendBuffer(fresh, tokens, grey.DTypeBF16, input, 2, input, int64(2+2*count)); err == nil ||
		!strings.Contains(err.Error(), "values[7] is not finite") {
		t.Errorf("a NaN in the values: %v", err)
	}
	if length, _ := byBuffer.Length(fresh); length != 0 {
		t.Errorf("a refused append left %d tokens", length)
	}
	if err := byBuffer.AppendBuffer(fresh, tokens, grey.DTypeBF16, input, 1, input, 0); err == nil || !strings.Contains(err.Error(), "multiple of 2") {
		t.Errorf("an odd offset: %v", err)
	}

	// A layer at a time: one token, its two layers from the start of the buffer (finite keys as values).
	if _, err := byBuffer.Reserve(b, []int32{77}); err != nil {
		t.Fatal(err)
	}
	for layer := uint32(0); layer < 2; layer++ {
		at := int64(2 + 2*64*layer)
		if err := byBuffer.WriteLayerBuffer(b, layer, 1, grey.DTypeBF16, input, at, input, at); err != nil {
			t.Fatal(err)
		}
	}
	if length, _ := byBuffer.Length(b); length != n+1 {
		t.Errorf("length %d after a reserved token's layers were written; want %d", length, n+1)
	}
}
