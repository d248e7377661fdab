package grey

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"

	"libgrey/grey/capi"
)

// KvFormat is the form of a KV cache's blocks older than its window (grey_kv_format).
type KvFormat int

// The KV block formats (variables: SWIG gives grey.h's enum values as such).
var (
	KvInt8    KvFormat = KvFormat(capi.GREY_KV_INT8)
	KvInt4    KvFormat = KvFormat(capi.GREY_KV_INT4)
	KvInt2    KvFormat = KvFormat(capi.GREY_KV_INT2)
	KvFP8E4M3 KvFormat = KvFormat(capi.GREY_KV_FP8_E4M3)
)

// KvWindowAll keeps every token in the window form (GREY_KV_WINDOW_ALL).
const KvWindowAll = uint32(math.MaxUint32)

// KvConfig is grey_kv_cache_config. NewKvConfig fills the defaults; K/V are F32 slices laid out
// [layer][token][kv_head][head_dim] (Append) or [token][kv_head][head_dim] (WriteLayer, Gather).
type KvConfig struct {
	Layers, KvHeads, HeadDim     uint32
	TokensPerBlock, WindowTokens uint32
	WindowF16                    bool // the window form in fp16 instead of bf16
	Format                       KvFormat
	GroupSize                    uint32
	CapacityBytes                uint64
	// HadamardK rotates K before it is quantized (GREY_KV_HADAMARD_K; HeadDim a power of two).
	HadamardK bool
}

// NewKvConfig is a configuration with grey.h's defaults (16-token blocks, a 128-token bf16 window, int4
// blocks, V groups of 32).
func NewKvConfig(layers, kvHeads, headDim uint32, capacityBytes uint64) KvConfig {
	return KvConfig{Layers: layers, KvHeads: kvHeads, HeadDim: headDim, TokensPerBlock: 16, WindowTokens: 128, Format: KvInt4,
		GroupSize: 32, CapacityBytes: capacityBytes}
}

// KvStats is grey_kv_stats.
type KvStats struct {
	Sequences                                                      uint32
	Tokens, BlocksUsed, BlocksCached, BlocksCompressed, BlocksFree uint64
	BytesUsed, CapacityBytes, PrefixHits, Evictions                uint64
	BytesPerToken, CompressionRatio                                float64
}

// KvCache is a paged, quantized KV cache on one device (grey.h, "KV cache"; docs/kv.md). Sequences are
// uint64 ids. Close it before its context.
type KvCache struct {
	mu     sync.RWMutex
	handle capi.Grey_kv_cache
	config KvConfig
}

// NewKvCache creates a KV cache on device `device` of c.
func (c *Context) NewKvCache(device int, config KvConfig) (*KvCache, error) {
	index, err := deviceIndex(device)
	if err != nil {
		return nil, err
	}
	raw := capi.NewGrey_kv_cache_config()
	defer capi.DeleteGrey_kv_cache_config(raw)
	raw.SetLayers(uint(config.Layers))
	raw.SetKv_heads(uint(config.KvHeads))
	raw.SetHead_dim(uint(config.HeadDim))
	raw.SetTokens_per_block(uint(config.TokensPerBlock))
	raw.SetWindow_tokens(uint(config.WindowTokens))
	raw.SetWindow_dtype(capi.GREY_DTYPE_BF16)
	if config.WindowF16 {
		raw.SetWindow_dtype(capi.GREY_DTYPE_F16)
	}
	raw.SetFormat(capi.Grey_kv_format(config.Format))
	raw.SetGroup_size(uint(config.GroupSize))
	raw.SetCapacity_bytes(config.CapacityBytes)
	if config.HadamardK {
		raw.SetFlags(uint(capi.GREY_KV_HADAMARD_K))
	}
	out := []uintptr{0}
	if err := c.with(func(h capi.Grey_context) error { return capi.Grey_kv_cache_create(h, index, raw, out) }); err != nil {
		return nil, err
	}
	cache := &KvCache{handle: capi.SwigcptrGrey_kv_cache(out[0]), config: config}
	runtime.SetFinalizer(cache, (*KvCache).Close)
	return cache, nil
}

// Close frees the cache and every sequence in it. Safe to call more than once.
func (k *KvCache) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.handle != nil {
		capi.Grey_kv_cache_destroy(k.handle)
		k.handle = nil
	}
	runtime.SetFinalizer(k, nil)
	return nil
}

func (k *KvCache) with(f func(capi.Grey_kv_cache) error) error {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.handle == nil {
		return ErrClosed
	}
	return f(k.handle)
}

func invalid(format string, args ...any) error {
	return &Error{Status: int(StatusInvalidArgument), Message: fmt.Sprintf("grey: "+format, args...)}
}

// address is the host address of a slice's first element, or 0 for an empty slice (which libgrey refuses
// with its own message).
func address[T any](s []T) uintptr {
	if len(s) == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(&s[0]))
}

// Sequence starts an empty sequence; sequences share cached prefix blocks only when their salts are equal.
func (k *KvCache) Sequence(salt uint64) (uint64, error) {
	id := []uint64{0}
	err := k.with(func(h capi.Grey_kv_cache) error { return capi.Grey_kv_sequence_create(h, salt, id) })
	return id[0], err
}

// Fork starts a sequence sharing sequence's tokens (copy on write).
func (k *KvCache) Fork(sequence uint64) (uint64, error) {
	id := []uint64{0}
	err := k.with(func(h capi.Grey_kv_cache) error { return capi.Grey_kv_sequence_fork(h, sequence, id) })
	return id[0], err
}

// Truncate shortens sequence to tokens tokens.
func (k *KvCache) Truncate(sequence, tokens uint64) error {
	return k.with(func(h capi.Grey_kv_cache) error { return capi.Grey_kv_sequence_truncate(h, sequence, tokens) })
}

// Free ends sequence; its full blocks stay cached for prefix sharing.
func (k *KvCache) Free(sequence uint64) error {
	return k.with(func(h capi.Grey_kv_cache) error { return capi.Grey_kv_sequence_free(h, sequence) })
}

// Length is the number of tokens sequence holds.
func (k *KvCache) Length(sequence uint64) (uint64, error) {
	n := []uint64{0}
	err := k.with(func(h capi.Grey_kv_cache) error { return capi.Grey_kv_sequence_length(h, sequence, n) })
	return n[0], err
}

// Append adds tokens with their K and V of every layer ([layer][token][kv_head][head_dim] each).
func (k *KvCache) Append(sequence uint64, tokens []int32, keys, values []float32) error {
	if len(keys) != len(values) {
		return invalid("keys (%d values) and values (%d) differ in length", len(keys), len(values))
	}
	err := k.with(func(h capi.Grey_kv_cache) error {
		return capi.Grey_kv_append(h, sequence, address(tokens), uint(len(tokens)), capi.GREY_DTYPE_F32, address(keys), address(values),
			uint64(len(keys))*4)
	})
	runtime.KeepAlive(tokens)
	runtime.KeepAlive(keys)
	runtime.KeepAlive(values)
	return err
}

// Reserve reserves tokens at the end of sequence, to be written a layer at a time with WriteLayer; it
// returns how many leading tokens were found whole in the prefix cache (their K/V are already stored).
func (k *KvCache) Reserve(sequence uint64, tokens []int32) (uint32, error) {
	cached := []uint32{0}
	err := k.with(func(h capi.Grey_kv_cache) error {
		return capi.Grey_kv_reserve(h, sequence, address(tokens), uint(len(tokens)), cached)
	})
	runtime.KeepAlive(tokens)
	return cached[0], err
}

// WriteLayer writes layer of the reserved tokens ([token][kv_head][head_dim] each); writing the last
// unwritten layer commits them.
func (k *KvCache) WriteLayer(sequence uint64, layer uint32, keys, values []float32) error {
	if len(keys) != len(values) {
		return invalid("keys (%d values) and values (%d) differ in length", len(keys), len(values))
	}
	err := k.with(func(h capi.Grey_kv_cache) error {
		return capi.Grey_kv_write_layer(h, sequence, uint(layer), capi.GREY_DTYPE_F32, address(keys), address(values), uint64(len(keys))*4)
	})
	runtime.KeepAlive(keys)
	runtime.KeepAlive(values)
	return err
}

// Attend is decode attention of layer for sequences: queries [batch][queryHeads][head_dim] in, the
// output in the same shape out.
func (k *KvCache) Attend(layer, queryHeads uint32, sequences []uint64, queries []float32) ([]float32, error) {
	if want := len(sequences) * int(queryHeads) * int(k.config.HeadDim); len(queries) != want {
		return nil, invalid("queries hold %d values; %d sequences x %d query heads x head_dim %d need %d", len(queries), len(sequences),
			queryHeads, k.config.HeadDim, want)
	}
	params := capi.NewGrey_kv_attend_params()
	defer capi.DeleteGrey_kv_attend_params(params)
	params.SetLayer(uint(layer))
	params.SetQuery_heads(uint(queryHeads))
	output := make([]float32, len(queries))
	err := k.with(func(h capi.Grey_kv_cache) error {
		return capi.Grey_kv_attend(h, params, address(sequences), uint(len(sequences)), address(queries), address(output),
			uint64(len(queries))*4)
	})
	runtime.KeepAlive(sequences)
	runtime.KeepAlive(queries)
	if err != nil {
		return nil, err
	}
	return output, nil
}

// bufferAttendCall is what AttendBuffer and AttendAsync check and make before the call: the buffers
// given and of one context, the offsets, the parameters (freed by close) and the size of the queries.
type bufferAttendCall struct {
	params   capi.Grey_kv_attend_params
	from, to uint64
	ioBytes  uint64
}

func (k *KvCache) bufferAttendCall(layer, queryHeads uint32, sequences []uint64, queries *Buffer, queriesOffset int64, output *Buffer,
	outputOffset int64) (*bufferAttendCall, error) {
	if queries == nil || output == nil {
		return nil, invalid("queries and output must be buffers")
	}
	if queries.ctx != output.ctx {
		return nil, invalid("queries and output are buffers of different contexts")
	}
	from, err := offset(queriesOffset)
	if err != nil {
		return nil, err
	}
	to, err := offset(outputOffset)
	if err != nil {
		return nil, err
	}
	params := capi.NewGrey_kv_attend_params()
	params.SetLayer(uint(layer))
	params.SetQuery_heads(uint(queryHeads))
	ioBytes := uint64(len(sequences)) * uint64(queryHeads) * uint64(k.config.HeadDim) * 4
	return &bufferAttendCall{params, from, to, ioBytes}, nil
}

func (c *bufferAttendCall) close() { capi.DeleteGrey_kv_attend_params(c.params) }

// AttendBuffer is Attend with the queries and the output in buffers of the cache's device, where they
// stay: float32 [batch][queryHeads][head_dim] at the given byte offsets (multiples of 4). The output is
// written when it returns.
func (k *KvCache) AttendBuffer(layer, queryHeads uint32, sequences []uint64, queries *Buffer, queriesOffset int64, output *Buffer,
	outputOffset int64) error {
	call, err := k.bufferAttendCall(layer, queryHeads, sequences, queries, queriesOffset, output, outputOffset)
	if err != nil {
		return err
	}
	defer call.close()
	err = k.with(func(h capi.Grey_kv_cache) error {
		return queries.with(func(q capi.Grey_buffer) error {
			if _, live := queries.ctx.buffers[output.id]; !live {
				return ErrClosed
			}
			err := capi.Grey_kv_attend_buffer(h, call.params, address(sequences), uint(len(sequences)), q, call.from,
				capi.SwigcptrGrey_buffer(output.id), call.to, call.ioBytes)
			runtime.KeepAlive(output)
			return err
		})
	})
	runtime.KeepAlive(sequences)
	return err
}

// AttendAsync is AttendBuffer queued on stream (a Stream of the cache's context and device) behind the
// work already there: it returns once the work is queued, and output is written when the stream reaches
// it, in order with the stream's other work (another library's, on a stream from WrapStream) without a
// wait on the host. What each sequence holds is taken at the call: tokens appended later are not
// attended to. Argument errors, an unknown sequence among them, are returned here with nothing queued;
// a failure of the work is returned by stream.Synchronize. queries and output must stay open and
// referenced, with the queries unwritten and the output unread, until the stream has passed the work
// (Synchronize, or an Event recorded after the call): as with the Stream's own async calls, nothing
// keeps them open for the work, so closing one before then (or letting the garbage collector finalize
// it) frees memory the work uses.
func (k *KvCache) AttendAsync(layer, queryHeads uint32, sequences []uint64, queries *Buffer, queriesOffset int64, output *Buffer,
	outputOffset int64, stream *Stream) error {
	if stream == nil {
		return invalid("stream must be a Stream, not nil")
	}
	call, err := k.bufferAttendCall(layer, queryHeads, sequences, queries, queriesOffset, output, outputOffset)
	if err != nil {
		return err
	}
	defer call.close()
	err = k.with(func(h capi.Grey_kv_cache) error {
		// The stream's check holds both buffers live (and of its context) for the call.
		return stream.with(func(s capi.Grey_stream) error {
			return capi.Grey_kv_attend_async(h, call.params, address(sequences), uint(len(sequences)), bufferHandle(queries), call.from,
				bufferHandle(output), call.to, call.ioBytes, s)
		}, queries, output)
	})
	runtime.KeepAlive(sequences)
	return err
}

// AppendBuffer is Append with K and V ([layer][token][kv_head][head_dim] of dtype: DTypeF32, DTypeF16 or
// DTypeBF16) in buffers of the cache's device at the given byte offsets (multiples of the dtype's size),
// where they are read. A NaN or infinity fails with ErrInvalidArgument naming it, and appends nothing.
func (k *KvCache) AppendBuffer(sequence uint64, tokens []int32, dtype DType, keys *Buffer, keysOffset int64, values *Buffer,
	valuesOffset int64) error {
	kvBytes := uint64(k.config.Layers) * uint64(len(tokens)) * uint64(k.config.KvHeads) * uint64(k.config.HeadDim) * dtypeSize(dtype)
	err := k.withInput(keys, keysOffset, values, valuesOffset, func(h capi.Grey_kv_cache, kb capi.Grey_buffer, from uint64, vb capi.Grey_buffer,
		vfrom uint64) error {
		return capi.Grey_kv_append_buffer(h, sequence, address(tokens), uint(len(tokens)), capi.Grey_dtype(dtype), kb, from, vb, vfrom, kvBytes)
	})
	runtime.KeepAlive(tokens)
	return err
}

// WriteLayerBuffer is WriteLayer with K and V ([token][kv_head][head_dim] of dtype for the tokens reserved
// tokens) in buffers of the cache's device, taken as AppendBuffer takes them.
func (k *KvCache) WriteLayerBuffer(sequence uint64, layer, tokens uint32, dtype DType, keys *Buffer, keysOffset int64, values *Buffer,
	valuesOffset int64) error {
	kvBytes := uint64(tokens) * uint64(k.config.KvHeads) * uint64(k.config.HeadDim) * dtypeSize(dtype)
	return k.withInput(keys, keysOffset, values, valuesOffset, func(h capi.Grey_kv_cache, kb capi.Grey_buffer, from uint64, vb capi.Grey_buffer,
		vfrom uint64) error {
		return capi.Grey_kv_write_layer_buffer(h, sequence, uint(layer), capi.Grey_dtype(dtype), kb, from, vb, vfrom, kvBytes)
	})
}

// dtypeSize is the bytes of one K/V value of dtype (2 for the half types; libgrey refuses the others).
func dtypeSize(dtype DType) uint64 {
	if dtype == DTypeF16 || dtype == DTypeBF16 {
		return 2
	}
	return 4
}

// withInput runs f with the cache and the K and V buffers held live, their offsets checked.
func (k *KvCache) withInput(keys *Buffer, keysOffset int64, values *Buffer, valuesOffset int64,
	f func(capi.Grey_kv_cache, capi.Grey_buffer, uint64, capi.Grey_buffer, uint64) error) error {
	if keys == nil || values == nil {
		return invalid("keys and values must be buffers")
	}
	if keys.ctx != values.ctx {
		return invalid("keys and values are buffers of different contexts")
	}
	from, err := offset(keysOffset)
	if err != nil {
		return err
	}
	vfrom, err := offset(valuesOffset)
	if err != nil {
		return err
	}
	return k.with(func(h capi.Grey_kv_cache) error {
		return keys.with(func(kb capi.Grey_buffer) error {
			if _, live := keys.ctx.buffers[values.id]; !live {
				return ErrClosed
			}
			err := f(h, kb, from, capi.SwigcptrGrey_buffer(values.id), vfrom)
			runtime.KeepAlive(values)
			return err
		})
	})
}

// Gather is the stored K and V of layer of sequence ([token][kv_head][head_dim], quantized blocks decoded).
func (k *KvCache) Gather(sequence uint64, layer uint32) (keys, values []float32, err error) {
	n, err := k.Length(sequence)
	if err != nil {
		return nil, nil, err
	}
	size := int(n) * int(k.config.KvHeads) * int(k.config.HeadDim)
	keys, values = make([]float32, size), make([]float32, size)
	if size == 0 {
		return keys, values, nil
	}
	err = k.with(func(h capi.Grey_kv_cache) error {
		return capi.Grey_kv_gather(h, sequence, uint(layer), address(keys), address(values), uint64(size)*4)
	})
	if err != nil {
		return nil, nil, err
	}
	return keys, values, nil
}

// Stats reports what the cache holds.
func (k *KvCache) Stats() (KvStats, error) {
	raw := capi.NewGrey_kv_stats()
	defer capi.DeleteGrey_kv_stats(raw)
	if err := k.with(func(h capi.Grey_kv_cache) error { return capi.Grey_kv_cache_stats_get(h, raw) }); err != nil {
		return KvStats{}, err
	}
	return KvStats{Sequences: uint32(raw.GetSequences()), Tokens: raw.GetTokens(), BlocksUsed: raw.GetBlocks_used(),
		BlocksCached: raw.GetBlocks_cached(), BlocksCompressed: raw.GetBlocks_compressed(), BlocksFree: raw.GetBlocks_free(),
		BytesUsed: raw.GetBytes_used(), CapacityBytes: raw.GetCapacity_bytes(), PrefixHits: raw.GetPrefix_hits(),
		Evictions: raw.GetEvictions(), BytesPerToken: raw.GetBytes_per_token(), CompressionRatio: raw.GetCompression_ratio()}, nil
}
