"""The KV cache through the raw binding (grey.capi): arrays go in as host addresses."""
import gc

import numpy as np
import pytest

import grey
from grey import capi


@pytest.fixture
def cache():
    with grey.Context() as context:
        config = capi.grey_kv_cache_config()
        config.layers, config.kv_heads, config.head_dim = 1, 2, 32
        config.tokens_per_block, config.window_tokens = 8, 4
        config.window_dtype, config.format = capi.GREY_DTYPE_BF16, capi.GREY_KV_INT8
        config.capacity_bytes = 1 << 20
        handle = capi.grey_kv_cache_create(context._get_handle(), 0, config)
        try:
            yield handle
        finally:
            capi.grey_kv_cache_destroy(handle)


def test_append_attend_and_stats(cache):
    seq = capi.grey_kv_sequence_create(cache, 7)
    rng = np.random.default_rng(0)
    n = 16
    tokens = np.arange(n, dtype=np.int32)
    k = rng.standard_normal((1, n, 2, 32), dtype=np.float32)
    v = rng.standard_normal((1, n, 2, 32), dtype=np.float32)
    capi.grey_kv_append(cache, seq, tokens.ctypes.data, n, capi.GREY_DTYPE_F32, k.ctypes.data, v.ctypes.data, k.nbytes)
    assert capi.grey_kv_sequence_length(cache, seq) == n

    params = capi.grey_kv_attend_params()
    params.query_heads = 4
    seqs = np.array([seq], dtype=np.uint64)
    q = rng.standard_normal((1, 4, 32), dtype=np.float32)
    out = np.zeros_like(q)
    capi.grey_kv_attend(cache, params, seqs.ctypes.data, 1, q.ctypes.data, out.ctypes.data, q.nbytes)

    gk, gv = np.zeros((n, 2, 32), np.float32), np.zeros((n, 2, 32), np.float32)
    capi.grey_kv_gather(cache, seq, 0, gk.ctypes.data, gv.ctypes.data, gk.nbytes)
    for h in range(4):
        scores = gk[:, h // 2, :].astype(np.float64) @ q[0, h].astype(np.float64) / np.sqrt(32.0)
        w = np.exp(scores - scores.max())
        expected = (w / w.sum()) @ gv[:, h // 2, :].astype(np.float64)
        np.testing.assert_allclose(out[0, h], expected, rtol=1e-5, atol=1e-6)

    stats = capi.grey_kv_stats()
    capi.grey_kv_cache_stats_get(cache, stats)
    assert stats.tokens == n and stats.blocks_compressed == 1 and stats.compression_ratio > 1.0


def test_unknown_sequence_raises(cache):
    with pytest.raises(grey.Error, match="does not exist"):
        capi.grey_kv_sequence_free(cache, 12345)


# ---- the Pythonic layer: grey.KvCache ----

@pytest.fixture
def kv():
    with grey.Context() as context, grey.KvCache(context, layers=2, kv_heads=2, head_dim=32, format="int8", tokens_per_block=8,
                                                 window_tokens=4, capacity_bytes=1 << 20) as cache:
        yield cache


def reference_attention(k, v, q, kv_heads):
    heads = q.shape[0]
    out = np.zeros(q.shape, np.float64)
    for h in range(heads):
        g = h // (heads // kv_heads)
        scores = k[:, g, :].astype(np.float64) @ q[h].astype(np.float64) / np.sqrt(q.shape[1])
        w = np.exp(scores - scores.max())
        out[h] = (w / w.sum()) @ v[:, g, :].astype(np.float64)
    return out


def test_wrapper_append_attend_gather_and_stats(kv):
    rng = np.random.default_rng(1)
    seq = kv.sequence()
    k = rng.standard_normal((2, 12, 2, 32), dtype=np.float32)
    v = rng.standard_normal((2, 12, 2, 32), dtype=np.float32)
    kv.append(seq, range(12), k, v.astype(np.float16))  # values in float16 are taken as float32's type
    assert kv.length(seq) == 12
    q = rng.standard_normal((1, 4, 32), dtype=np.float32)
    out = kv.attend(1, [seq], q)
    gk, gv = kv.gather(seq, 1)
    np.testing.assert_allclose(out[0], reference_attention(gk, gv, q[0], 2), rtol=1e-5, atol=1e-6)
    stats = kv.stats()
    assert stats.tokens == 12 and stats.blocks_compressed == 1 and stats.sequences == 1


def test_wrapper_token_written_a_layer_at_a_time_equals_an_append(kv):
    rng = np.random.default_rng(2)
    k = rng.standard_normal((2, 1, 2, 32), dtype=np.float32)
    v = rng.standard_normal((2, 1, 2, 32), dtype=np.float32)
    whole, layered = kv.sequence(1), kv.sequence(2)
    kv.append(whole, [5], k, v)
    assert kv.reserve(layered, [5]) == 0
    kv.write_layer(layered, 1, k[1], v[1])
    assert kv.length(layered) == 0
    q = rng.standard_normal((1, 2, 32), dtype=np.float32)
    np.testing.assert_array_equal(kv.attend(1, [layered], q), kv.attend(1, [whole], q))
    with pytest.raises(grey.InvalidArgument, match="layer 1"):
        kv.write_layer(layered, 1, k[1], v[1])
    kv.write_layer(layered, 0, k[0], v[0])
    assert kv.length(layered) == 1
    for layer in (0, 1):
        for a, b in zip(kv.gather(layered, layer), kv.gather(whole, layer)):
            np.testing.assert_array_equal(a, b)


def test_wrapper_refuses_bad_input(kv):
    seq = kv.sequence()
    with pytest.raises(ValueError, match="keys has shape"):
        kv.append(seq, [1, 2], np.zeros((2, 3, 2, 32), np.float32), np.zeros((2, 3, 2, 32), np.float32))
    with pytest.raises(ValueError, match="queries has shape"):
        kv.attend(0, [seq], np.zeros((2, 4, 32), np.float32))
    with pytest.raises(grey.InvalidArgument, match="NaN|not finite|infinite"):
        kv.append(seq, [1], np.full((2, 1, 2, 32), np.nan, np.float32), np.zeros((2, 1, 2, 32), np.float32))
    assert kv.length(seq) == 0
    with pytest.raises(grey.NotFound):
        kv.free(999)
    with grey.Context() as context:
        with pytest.raises(ValueError, match="format 'int3'"):
            grey.KvCache(context, 1, 1, 32, capacity_bytes=1 << 20, format="int3")


def test_wrapper_hadamard_k_rotates_keys_and_gives_them_back():
    rng = np.random.default_rng(3)
    k = rng.standard_normal((1, 8, 2, 32), dtype=np.float32)
    k[..., 3] = k[..., 3] * 20 + 30  # an outlier channel
    v = rng.standard_normal((1, 8, 2, 32), dtype=np.float32)
    q = rng.standard_normal((1, 2, 32), dtype=np.float32)
    with grey.Context() as context:
        with grey.KvCache(context, 1, 2, 32, capacity_bytes=1 << 20, format="int4", tokens_per_block=4, window_tokens=4,
                          hadamard_k=True) as cache:
            seq = cache.sequence()
            cache.append(seq, range(8), k, v)
            gk, gv = cache.gather(seq, 0)
            np.testing.assert_allclose(gk[4:], k[0, 4:], rtol=0.01, atol=0.1)  # the bf16 window, rotated back
            np.testing.assert_allclose(cache.attend(0, [seq], q)[0], reference_attention(gk, gv, q[0], 2), rtol=1e-5, atol=1e-5)
        with pytest.raises(grey.InvalidArgument, match="power of two"):
            grey.KvCache(context, 1, 2, 48, capacity_bytes=1 << 20, hadamard_k=True)


def test_wrapper_attend_buffer_equals_attend_and_refuses_bad_buffers():
    rng = np.random.default_rng(4)
    with grey.Context() as context, grey.KvCache(context, layers=1, kv_heads=2, head_dim=32, format="int4", tokens_per_block=8,
                                                 window_tokens=8, capacity_bytes=1 << 20) as kv:
        seqs = [kv.sequence(), kv.sequence()]
        for n, seq in zip((3, 21), seqs):
            kv.append(seq, range(n), rng.standard_normal((1, n, 2, 32), dtype=np.float32),
                      rng.standard_normal((1, n, 2, 32), dtype=np.float32))
        q = rng.standard_normal((2, 4, 32), dtype=np.float32)
        expected = kv.attend(0, seqs, q)
        queries, output = context.buffer(q.nbytes + 8), context.buffer(q.nbytes)
        queries.write(q.tobytes(), offset=8)
        kv.attend_buffer(0, seqs, queries, output, query_heads=4, queries_offset=8)
        got = np.frombuffer(bytes(output.read()), dtype=np.float32).reshape(q.shape)
        np.testing.assert_array_equal(got, expected)
        with pytest.raises(grey.InvalidArgument, match="queries: range"):
            kv.attend_buffer(0, seqs, queries, output, query_heads=4, queries_offset=16)
        with pytest.raises(grey.InvalidArgument, match="multiple of 4"):
            kv.attend_buffer(0, seqs, queries, output, query_heads=4, queries_offset=2)
        with pytest.raises(TypeError, match="grey.Buffer"):
            kv.attend_buffer(0, seqs, q, output, query_heads=4)
        with grey.Context() as other:
            foreign = other.buffer(q.nbytes)
            with pytest.raises(grey.InvalidArgument, match="another context"):
                kv.attend_buffer(0, seqs, foreign, output, query_heads=4)



def _ragged_cache(context, rng):
    """A cache of two layers holding three sequences of 1, 9 and 30 tokens: quantized blocks, the window
    and a partly filled last block."""
    kv = grey.KvCache(context, layers=2, kv_heads=2, head_dim=32, format="int4", tokens_per_block=8, window_tokens=8,
                      capacity_bytes=1 << 20)
    seqs = [kv.sequence() for _ in range(3)]
    for n, seq in zip((1, 9, 30), seqs):
        kv.append(seq, range(n), rng.standard_normal((2, n, 2, 32), dtype=np.float32), rng.standard_normal((2, n, 2, 32), dtype=np.float32))
    return kv, seqs


def test_wrapper_attend_async_equals_attend_buffer_in_order_with_the_streams_work():
    rng = np.random.default_rng(6)
    with grey.Context() as context:
        kv, seqs = _ragged_cache(context, rng)
        with kv:
            q = rng.standard_normal((3, 4, 32), dtype=np.float32)
            queries, expected = context.buffer(q.nbytes), context.buffer(q.nbytes)
            queries.write(q.tobytes())
            # A window and a scale of its own, so that the two calls are seen to pass both.
            kv.attend_buffer(1, seqs, queries, expected, query_heads=4, sliding_window=12, scale=0.2)

            # The queries written, attended to and the output read back, all queued before one synchronize.
            stream = context.stream()
            staged, output = context.buffer(q.nbytes + 8), context.buffer(q.nbytes + 4)
            stream.write_async(staged, q.tobytes(), offset=8)
            kv.attend_async(1, seqs, staged, output, stream, query_heads=4, queries_offset=8, output_offset=4, sliding_window=12,
                            scale=0.2)
            got = bytearray(q.nbytes)
            stream.read_async(output, got, offset=4)
            del staged  # the stream keeps the buffers its work uses until synchronize()
            gc.collect()
            stream.synchronize()
            assert bytes(got) == bytes(expected.read())
            assert output.read(q.nbytes, offset=4) == expected.read()

            # Both layers on one stream, each into its own part of one output, against the synchronous form.
            both = context.buffer(2 * q.nbytes)
            for layer in (0, 1):
                kv.attend_async(layer, seqs, queries, both, stream, query_heads=4, output_offset=layer * q.nbytes)
            stream.synchronize()
            for layer in (0, 1):
                kv.attend_buffer(layer, seqs, queries, expected, query_heads=4)
                assert both.read(q.nbytes, offset=layer * q.nbytes) == expected.read()
                np.testing.assert_array_equal(np.frombuffer(bytes(expected.read()), np.float32).reshape(q.shape), kv.attend(layer, seqs, q))


def test_wrapper_attend_async_refuses_bad_arguments_with_nothing_queued():
    rng = np.random.default_rng(7)
    with grey.Context() as context:
        kv, seqs = _ragged_cache(context, rng)
        with kv:
            io_bytes = 3 * 4 * 32 * 4
            queries, output = context.buffer(io_bytes), context.buffer(io_bytes)
            queries.fill(0)
            output.fill(0xCD)
            stream = context.stream()
            for not_a_stream in (None, 0, context, queries):
                with pytest.raises(TypeError, match=f"stream must be a grey.Stream .*not {type(not_a_stream).__name__}"):
                    kv.attend_async(0, seqs, queries, output, not_a_stream, query_heads=4)
            with pytest.raises(TypeError, match="grey.Buffer"):
                kv.attend_async(0, seqs, np.zeros((3, 4, 32), np.float32), output, stream, query_heads=4)
            # An unknown sequence is the call's own error (libgrey's NotFound), not the stream's.
            with pytest.raises(grey.NotFound, match="sequence 12345 does not exist"):
                kv.attend_async(0, [seqs[0], 12345, seqs[2]], queries, output, stream, query_heads=4)
            with pytest.raises(grey.InvalidArgument, match="empty"):
                kv.attend_async(0, [seqs[0], kv.sequence(), seqs[2]], queries, output, stream, query_heads=4)
            with pytest.raises(grey.InvalidArgument, match="overlap"):
                kv.attend_async(0, seqs, queries, queries, stream, query_heads=4)
            with pytest.raises(grey.InvalidArgument, match="queries: range"):
                kv.attend_async(0, seqs, queries, output, stream, query_heads=4, queries_offset=4)
            with grey.Context() as other:
                with pytest.raises(grey.InvalidArgument, match="another context"):
                    kv.attend_async(0, seqs, queries, output, other.stream(), query_heads=4)
            closed = context.stream()
            closed.close()
            with pytest.raises(ValueError, match="closed"):
                kv.attend_async(0, seqs, queries, output, closed, query_heads=4)
            stream.synchronize()
            assert output.read() == bytes([0xCD]) * io_bytes  # untouched by every refused call


def test_wrapper_append_buffer_stores_what_append_stores_and_names_a_nan():
    rng = np.random.default_rng(5)
    shape = (2, 9, 2, 32)  # layers, tokens, kv_heads, head_dim
    keys = rng.standard_normal(shape, dtype=np.float32)
    values = rng.standard_normal(shape, dtype=np.float32)
    with grey.Context() as context:
        def cache():
            return grey.KvCache(context, layers=2, kv_heads=2, head_dim=32, format="int4", tokens_per_block=4, window_tokens=4,
                                capacity_bytes=1 << 20)

        with cache() as by_array, cache() as by_buffer:
            for dtype in ("f16", "bf16"):
                if dtype == "f16":
                    k, v = keys.astype(np.float16), values.astype(np.float16)
                    reference_k, reference_v = k, v
                else:  # BF16: the top halves of the float32 bits; the same numbers as float32 for append()
                    k = (keys.view(np.uint32) >> 16).astype(np.uint16)
                    v = (values.view(np.uint32) >> 16).astype(np.uint16)
                    reference_k = (k.astype(np.uint32) << 16).view(np.float32)
                    reference_v = (v.astype(np.uint32) << 16).view(np.float32)
                a, b = by_array.sequence(), by_buffer.sequence()
                by_array.append(a, range(9), reference_k, reference_v)
                buffer = context.buffer(6 + 2 * k.nbytes)
                buffer.write(k.tobytes() + v.tobytes(), offset=6)
                by_buffer.append_buffer(b, range(9), buffer, buffer, dtype=dtype, keys_offset=6, values_offset=6 + k.nbytes)
                for layer in (0, 1):
                    for x, y in zip(by_array.gather(a, layer), by_buffer.gather(b, layer)):
                        np.testing.assert_array_equal(x, y)

            bad = keys.copy()
            bad[1, 3, 0, 5] = np.nan
            buffer = context.buffer(2 * bad.nbytes)
            buffer.write(bad.tobytes() + values.tobytes())
            seq = by_buffer.sequence()
            index = ((1 * 9 + 3) * 2 + 0) * 32 + 5
            with pytest.raises(grey.InvalidArgument, match=rf"keys\[{index}\] is not finite"):
                by_buffer.append_buffer(seq, range(100, 109), buffer, buffer, values_offset=bad.nbytes)
            assert by_buffer.length(seq) == 0
            with pytest.raises(grey.InvalidArgument, match="multiple of 2"):
                by_buffer.append_buffer(seq, range(100, 109), buffer, buffer, dtype="bf16", keys_offset=1)
            with pytest.raises(TypeError, match="grey.Buffer"):
                by_buffer.append_buffer(seq, range(100, 109), keys, buffer)
            with pytest.raises(ValueError, match="dtype"):
                by_buffer.append_buffer(seq, range(100, 109), buffer, buffer, dtype="f64")

            # A layer at a time from the same kind of buffer.
            step = rng.standard_normal((2, 1, 2, 32), dtype=np.float32)
            reference = by_array.sequence()
            by_array.append(reference, [7], step, step)
            by_buffer.reserve(seq, [7])
            layers = context.buffer(step.nbytes)
            layers.write(step.tobytes())
            layer_bytes = step.nbytes // 2
            for layer in (1, 0):
                by_buffer.write_layer_buffer(seq, layer, layers, layers, tokens=1, keys_offset=layer * layer_bytes,
                                             values_offset=layer * layer_bytes)
            assert by_buffer.length(seq) == 1
            for layer in (0, 1):
                for x, y in zip(by_array.gather(reference, layer), by_buffer.gather(seq, layer)):
                    np.testing.assert_array_equal(x, y)
