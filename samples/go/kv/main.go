// Command kv shows the KV cache: a cache of int4 blocks behind a bf16 window, a 40-token prompt and
// three decode steps appended to one sequence, a fork that grows on its own while the original is
// truncated, decode attention over both (4 query heads on 2 KV heads), K/V gathered back and compared
// with what was appended, and the cache's statistics.
//
//	go run ./samples/go/kv
//
// K, V and queries come from the LCG of samples/go/quantize, whose values are exact in float32, so every
// kv sample in samples/ prints the same lines.
package main

import (
	"fmt"
	"math"
	"os"

	"libgrey/grey"
)

const layers, kvHeads, headDim, queryHeads = 2, 2, 64, 4
const row = kvHeads * headDim

// synthetic is an LCG whose values are exact in float32, so every language makes the same values.
type synthetic struct{ state uint32 }

func (s *synthetic) next(n int) []float32 {
	values := make([]float32, n)
	for i := range values {
		s.state = s.state*1664525 + 1013904223
		values[i] = (float32(s.state>>8)/16777216.0 - 0.5) / 16.0
	}
	return values
}

// appended is what a sequence was given: layer 0 of every token, [token][kv_head][head_dim].
type appended struct{ keys, values []float32 }

// appendTokens appends n tokens (ids from firstID) with fresh K/V, [layer][token][kv_head][head_dim],
// and records layer 0.
func appendTokens(cache *grey.KvCache, sequence uint64, firstID int32, n int, s *synthetic, record *appended) error {
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = firstID + int32((i*7919)%30000)
	}
	keys, values := s.next(layers*n*row), s.next(layers*n*row)
	if err := cache.Append(sequence, ids, keys, values); err != nil {
		return err
	}
	record.keys = append(record.keys, keys[:n*row]...) // layer 0 is the first n rows
	record.values = append(record.values, values[:n*row]...)
	return nil
}

func maxAbsDifference(a, b []float32) float64 {
	worst := 0.0
	for i := range a {
		worst = math.Max(worst, math.Abs(float64(a[i])-float64(b[i])))
	}
	return worst
}

func run() error {
	ctx, err := grey.NewContext()
	if err != nil {
		return err
	}
	defer ctx.Close()
	config := grey.NewKvConfig(layers, kvHeads, headDim, 1<<20)
	config.TokensPerBlock, config.WindowTokens, config.Format, config.GroupSize = 16, 16, grey.KvInt4, 32
	cache, err := ctx.NewKvCache(0, config)
	if err != nil {
		return err
	}
	defer cache.Close()
	fmt.Printf("kv cache: %d layers, %d KV heads, head_dim %d, blocks of %d tokens, the newest %d in bf16, older ones int4 (V groups of %d)\n",
		layers, kvHeads, headDim, config.TokensPerBlock, config.WindowTokens, config.GroupSize)

	s := &synthetic{state: 12345}
	var a appended
	seqA, err := cache.Sequence(0)
	if err != nil {
		return err
	}
	if err := appendTokens(cache, seqA, 101, 40, s, &a); err != nil { // the prompt
		return err
	}
	for step := int32(0); step < 3; step++ {
		if err := appendTokens(cache, seqA, 2000+step, 1, s, &a); err != nil {
			return err
		}
	}
	lengthA, _ := cache.Length(seqA)
	fmt.Printf("kv append: sequence A holds %d tokens (a 40-token prompt, then 3 decode steps)\n", lengthA)

	seqB, err := cache.Fork(seqA)
	if err != nil {
		return err
	}
	b := appended{keys: append([]float32{}, a.keys...), values: append([]float32{}, a.values...)}
	if err := appendTokens(cache, seqB, 3000, 2, s, &b); err != nil {
		return err
	}
	if err := cache.Truncate(seqA, 38); err != nil {
		return err
	}
	lengthA, _ = cache.Length(seqA)
	lengthB, _ := cache.Length(seqB)
	fmt.Printf("kv fork: sequence B holds %d tokens (A's 43 and 2 of its own), A truncated to %d\n", lengthB, lengthA)

	queries := s.next(2 * queryHeads * headDim)
	output, err := cache.Attend(1, queryHeads, []uint64{seqA, seqB}, queries)
	if err != nil {
		return err
	}
	sum, squares := 0.0, 0.0
	for _, x := range output {
		sum += float64(x)
		squares += float64(x) * float64(x)
	}
	fmt.Printf("kv attend: layer 1, %d query heads on %d KV heads, batch of A and B: output sum %.6f, sum of squares %.6f\n",
		queryHeads, kvHeads, sum, squares)

	keys, values, err := cache.Gather(seqB, 0)
	if err != nil {
		return err
	}
	fmt.Printf("kv gather: B layer 0, %d tokens: largest difference from what was appended K %.6f, V %.6f\n", len(b.keys)/row,
		maxAbsDifference(keys, b.keys), maxAbsDifference(values, b.values))

	stats, err := cache.Stats()
	if err != nil {
		return err
	}
	fmt.Printf("kv stats: %d sequences, %d tokens, %d blocks (%d quantized), %d bytes, %.2f bytes per token, compression ratio %.4f\n",
		stats.Sequences, stats.Tokens, stats.BlocksUsed, stats.BlocksCompressed, stats.BytesUsed, stats.BytesPerToken, stats.CompressionRatio)

	if err := cache.Free(seqA); err != nil {
		return err
	}
	if err := cache.Free(seqB); err != nil {
		return err
	}
	stats, err = cache.Stats()
	if err != nil {
		return err
	}
	fmt.Printf("kv free: %d sequences, %d full blocks kept as cached prefixes\n", stats.Sequences, stats.BlocksCached)
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kv:", err)
		os.Exit(1)
	}
}
