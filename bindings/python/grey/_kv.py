"""The paged, quantized KV cache (grey.h, "KV cache"; docs/kv.md), on NumPy arrays.

    with grey.Context() as ctx, grey.KvCache(ctx, layers=2, kv_heads=8, head_dim=128, format="int4",
                                             capacity_bytes=1 << 30) as cache:
        seq = cache.sequence()
        cache.append(seq, token_ids, keys, values)        # keys, values: [layer][token][kv_head][head_dim]
        out = cache.attend(layer=0, sequences=[seq], queries=q)   # q: [batch][query_heads][head_dim]

A model that computes one layer after another reserves the token first and writes each layer as it is
computed: ``cached = cache.reserve(seq, [token_id])`` then ``cache.write_layer(seq, layer, k, v)``.
K, V and queries may be float32 or float16 arrays; they are passed to libgrey without a copy when
contiguous. ``cache.attend_buffer(layer, [seq], queries, output, query_heads=h)`` takes the queries and
the output in buffers of the cache's device (``ctx.buffer(n)``, viewed by a framework through DLPack),
so that they do not cross to the host, and ``cache.attend_async(..., stream, query_heads=h)`` queues the
same on a grey.Stream; ``cache.append_buffer(seq, token_ids, keys, values, dtype="bf16")``
and ``cache.write_layer_buffer(...)`` take K and V from such buffers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from . import capi
from ._context import Buffer
from ._stream import Stream
from ._util import HandleOwner

WINDOW_ALL = 0xFFFFFFFF  # GREY_KV_WINDOW_ALL: keep every token in the window form
_FORMATS = {"int8": capi.GREY_KV_INT8, "int4": capi.GREY_KV_INT4, "int2": capi.GREY_KV_INT2, "fp8-e4m3": capi.GREY_KV_FP8_E4M3}
_WINDOW_DTYPES = {"bf16": capi.GREY_DTYPE_BF16, "f16": capi.GREY_DTYPE_F16}


@dataclass(frozen=True)
class KvStats:
    sequences: int
    tokens: int
    blocks_used: int
    blocks_cached: int
    blocks_compressed: int
    blocks_free: int
    bytes_used: int
    capacity_bytes: int
    prefix_hits: int
    evictions: int
    bytes_per_token: float
    compression_ratio: float


def _choice(value: str, choices: dict[str, int], what: str) -> int:
    if value not in choices:
        raise ValueError(f"{what} {value!r} is not one of {', '.join(sorted(choices))}")
    return choices[value]


def _kv_array(array: Any, shape: tuple[int, ...], what: str) -> tuple[np.ndarray, int]:
    """The array as libgrey reads it (float32 or float16, C order) and its grey_dtype."""
    a = np.asarray(array)
    if a.dtype not in (np.float32, np.float16):
        a = a.astype(np.float32)
    a = np.ascontiguousarray(a)
    if a.shape != shape:
        raise ValueError(f"{what} has shape {a.shape}; expected {shape}")
    return a, capi.GREY_DTYPE_F32 if a.dtype == np.float32 else capi.GREY_DTYPE_F16


_INPUT_DTYPES = {"f32": capi.GREY_DTYPE_F32, "f16": capi.GREY_DTYPE_F16, "bf16": capi.GREY_DTYPE_BF16}
_DTYPE_SIZES = {"f32": 4, "f16": 2, "bf16": 2}


def _buffer_input(keys: Any, values: Any, dtype: str) -> int:
    """The grey_dtype of K/V given in buffers, after checking that they are buffers."""
    if not isinstance(keys, Buffer) or not isinstance(values, Buffer):
        raise TypeError("keys and values must be grey.Buffer objects (Context.buffer); use append() or write_layer() for arrays")
    return _choice(dtype, _INPUT_DTYPES, "dtype")


class KvCache(HandleOwner):
    """A KV cache on one device of `context` (grey_kv_cache_create). Sequences are integer ids."""

    def __init__(self, context: Any, layers: int, kv_heads: int, head_dim: int, *, capacity_bytes: int, device: int = 0,
                 format: str = "int4", tokens_per_block: int = 16, window_tokens: int = 128, window_dtype: str = "bf16",
                 group_size: int = 32, hadamard_k: bool = False) -> None:
        """`hadamard_k` rotates K before it is quantized (GREY_KV_HADAMARD_K; head_dim a power of two)."""
        config = capi.grey_kv_cache_config()
        config.layers, config.kv_heads, config.head_dim = layers, kv_heads, head_dim
        config.tokens_per_block, config.window_tokens = tokens_per_block, window_tokens
        config.window_dtype = _choice(window_dtype, _WINDOW_DTYPES, "window_dtype")
        config.format = _choice(format, _FORMATS, "format")
        config.group_size, config.capacity_bytes = group_size, capacity_bytes
        config.flags = capi.GREY_KV_HADAMARD_K if hadamard_k else 0
        self.layers, self.kv_heads, self.head_dim = layers, kv_heads, head_dim
        self._context = context  # the cache must not outlive its context
        self._own(capi.grey_kv_cache_create(context._get_handle(), device, config), capi.grey_kv_cache_destroy)

    def sequence(self, salt: int = 0) -> int:
        """A new, empty sequence. Sequences share cached prefix blocks only when their salts are equal."""
        return int(capi.grey_kv_sequence_create(self._get_handle(), salt))

    def fork(self, sequence: int) -> int:
        """A new sequence sharing `sequence`'s tokens (copy on write)."""
        return int(capi.grey_kv_sequence_fork(self._get_handle(), sequence))

    def truncate(self, sequence: int, tokens: int) -> None:
        capi.grey_kv_sequence_truncate(self._get_handle(), sequence, tokens)

    def free(self, sequence: int) -> None:
        capi.grey_kv_sequence_free(self._get_handle(), sequence)

    def length(self, sequence: int) -> int:
        return int(capi.grey_kv_sequence_length(self._get_handle(), sequence))

    def append(self, sequence: int, token_ids: Sequence[int], keys: Any, values: Any) -> None:
        """Appends tokens with K and V of every layer, each [layers][tokens][kv_heads][head_dim]."""
        ids = np.ascontiguousarray(token_ids, dtype=np.int32).reshape(-1)
        shape = (self.layers, len(ids), self.kv_heads, self.head_dim)
        k, dtype = _kv_array(keys, shape, "keys")
        v, _ = _kv_array(np.asarray(values, dtype=k.dtype), shape, "values")
        capi.grey_kv_append(self._get_handle(), sequence, ids.ctypes.data, len(ids), dtype, k.ctypes.data, v.ctypes.data, k.nbytes)

    def append_buffer(self, sequence: int, token_ids: Sequence[int], keys: Buffer, values: Buffer, *, dtype: str = "f32",
                      keys_offset: int = 0, values_offset: int = 0) -> None:
        """Appends tokens whose K and V, each [layers][tokens][kv_heads][head_dim] of `dtype` ("f32",
        "f16" or "bf16"), lie in buffers of the cache's device at the given byte offsets (multiples of
        the dtype's size), where they are read: a framework's tensors go in without a copy through a
        buffer it views, e.g. ``torch.from_dlpack(buffer)``. A NaN or infinity raises InvalidArgument
        naming it and appends nothing. Not ordered with a framework's streams: synchronize the one that
        wrote the K/V first."""
        ids = np.ascontiguousarray(token_ids, dtype=np.int32).reshape(-1)
        code = _buffer_input(keys, values, dtype)
        kv_bytes = self.layers * len(ids) * self.kv_heads * self.head_dim * _DTYPE_SIZES[dtype]
        capi.grey_kv_append_buffer(self._get_handle(), sequence, ids.ctypes.data, len(ids), code, keys._get_handle(), keys_offset,
                                   values._get_handle(), values_offset, kv_bytes)

    def reserve(self, sequence: int, token_ids: Sequence[int]) -> int:
        """Reserves tokens to be written a layer at a time; returns how many leading ones were found in
        the prefix cache (their K/V are already stored and need not be computed)."""
        ids = np.ascontiguousarray(token_ids, dtype=np.int32).reshape(-1)
        return int(capi.grey_kv_reserve(self._get_handle(), sequence, ids.ctypes.data, len(ids)))

    def write_layer(self, sequence: int, layer: int, keys: Any, values: Any) -> None:
        """Writes `layer` of the reserved tokens, each [tokens][kv_heads][head_dim]; the last layer
        written commits them."""
        k = np.asarray(keys)
        if k.ndim != 3:
            raise ValueError(f"keys has shape {k.shape}; expected (tokens, {self.kv_heads}, {self.head_dim})")
        k, dtype = _kv_array(k, (k.shape[0], self.kv_heads, self.head_dim), "keys")
        v, _ = _kv_array(np.asarray(values, dtype=k.dtype), k.shape, "values")
        capi.grey_kv_write_layer(self._get_handle(), sequence, layer, dtype, k.ctypes.data, v.ctypes.data, k.nbytes)

    def write_layer_buffer(self, sequence: int, layer: int, keys: Buffer, values: Buffer, *, tokens: int, dtype: str = "f32",
                           keys_offset: int = 0, values_offset: int = 0) -> None:
        """write_layer with K and V, each [tokens][kv_heads][head_dim] of `dtype` for the `tokens`
        reserved tokens, in buffers of the cache's device, taken as append_buffer takes them."""
        code = _buffer_input(keys, values, dtype)
        kv_bytes = tokens * self.kv_heads * self.head_dim * _DTYPE_SIZES[dtype]
        capi.grey_kv_write_layer_buffer(self._get_handle(), sequence, layer, code, keys._get_handle(), keys_offset, values._get_handle(),
                                        values_offset, kv_bytes)

    def attend(self, layer: int, sequences: Sequence[int], queries: Any, *, sliding_window: int = 0, scale: float = 0.0) -> np.ndarray:
        """Decode attention: queries [batch][query_heads][head_dim] (float32) against each sequence's
        stored K/V of `layer`; returns the output in the same shape. scale 0 means 1/sqrt(head_dim)."""
        q = np.ascontiguousarray(queries, dtype=np.float32)
        seqs = np.ascontiguousarray(sequences, dtype=np.uint64).reshape(-1)
        if q.ndim != 3 or q.shape[0] != len(seqs) or q.shape[2] != self.head_dim:
            raise ValueError(f"queries has shape {q.shape}; expected ({len(seqs)}, query_heads, {self.head_dim})")
        params = capi.grey_kv_attend_params()
        params.layer, params.query_heads, params.sliding_window, params.scale = layer, q.shape[1], sliding_window, scale
        out = np.empty_like(q)
        capi.grey_kv_attend(self._get_handle(), params, seqs.ctypes.data, len(seqs), q.ctypes.data, out.ctypes.data, q.nbytes)
        return out

    def attend_buffer(self, layer: int, sequences: Sequence[int], queries: Buffer, output: Buffer, *, query_heads: int,
                      queries_offset: int = 0, output_offset: int = 0, sliding_window: int = 0, scale: float = 0.0) -> None:
        """Decode attention with the queries and the output in buffers of the cache's device, where they
        stay: float32 [batch][query_heads][head_dim] at the given byte offsets (multiples of 4). A
        framework's tensor goes in through a buffer it views without a copy, e.g.
        ``torch.from_dlpack(buffer)``. The output is written when the call returns; the call is not
        ordered with a framework's streams, so synchronize the one that wrote the queries first."""
        if not isinstance(queries, Buffer) or not isinstance(output, Buffer):
            raise TypeError("queries and output must be grey.Buffer objects (Context.buffer); use attend() for arrays")
        seqs = np.ascontiguousarray(sequences, dtype=np.uint64).reshape(-1)
        params = capi.grey_kv_attend_params()
        params.layer, params.query_heads, params.sliding_window, params.scale = layer, query_heads, sliding_window, scale
        io_bytes = len(seqs) * query_heads * self.head_dim * 4
        capi.grey_kv_attend_buffer(self._get_handle(), params, seqs.ctypes.data, len(seqs), queries._get_handle(), queries_offset,
                                   output._get_handle(), output_offset, io_bytes)

    def attend_async(self, layer: int, sequences: Sequence[int], queries: Buffer, output: Buffer, stream: Stream, *, query_heads: int,
                     queries_offset: int = 0, output_offset: int = 0, sliding_window: int = 0, scale: float = 0.0) -> None:
        """attend_buffer queued on `stream` (a grey.Stream of the cache's device) behind the work already
        there: it returns once the work is queued and `output` is written when the stream reaches it, in
        order with the stream's other work (a framework's own, on a stream from Context.wrap_stream)
        without a wait on the host. What each sequence holds is taken now: tokens appended later are not
        attended to. The stream keeps `queries` and `output` alive until its synchronize(); leave the
        queries unwritten and the output unread until then, or until an Event recorded after this call
        (a DLPack consumer of the output is made to wait for the stream, as after the stream's own
        writes). Argument errors, an unknown sequence among them, are raised here with nothing queued; a
        failure of the work is raised by stream.synchronize()."""
        if not isinstance(queries, Buffer) or not isinstance(output, Buffer):
            raise TypeError("queries and output must be grey.Buffer objects (Context.buffer); use attend() for arrays")
        if not isinstance(stream, Stream):
            raise TypeError(f"stream must be a grey.Stream (Context.stream), not {type(stream).__name__}")
        seqs = np.ascontiguousarray(sequences, dtype=np.uint64).reshape(-1)
        params = capi.grey_kv_attend_params()
        params.layer, params.query_heads, params.sliding_window, params.scale = layer, query_heads, sliding_window, scale
        io_bytes = len(seqs) * query_heads * self.head_dim * 4
        capi.grey_kv_attend_async(self._get_handle(), params, seqs.ctypes.data, len(seqs), queries._get_handle(), queries_offset,
                                  output._get_handle(), output_offset, io_bytes, stream._get_handle())
        # grey.Stream keeps what its queued work uses until synchronize(), so that dropping the last
        # reference to a buffer cannot free it under the work; a DLPack consumer of the output then waits
        # for this stream, as after the stream's own writes.
        stream._keep.append((queries, output))
        output._writer = stream

    def gather(self, sequence: int, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """The stored K and V of `layer` as float32 [tokens][kv_heads][head_dim] (quantized blocks decoded)."""
        shape = (self.length(sequence), self.kv_heads, self.head_dim)
        k, v = np.empty(shape, np.float32), np.empty(shape, np.float32)
        capi.grey_kv_gather(self._get_handle(), sequence, layer, k.ctypes.data, v.ctypes.data, k.nbytes)
        return k, v

    def stats(self) -> KvStats:
        raw = capi.grey_kv_stats()
        capi.grey_kv_cache_stats_get(self._get_handle(), raw)
        return KvStats(**{name: getattr(raw, name) for name in KvStats.__dataclass_fields__})
