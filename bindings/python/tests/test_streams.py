import ctypes

import numpy as np
import pytest

import grey
from grey._tensor import make_desc


@pytest.fixture
def ctx():
    with grey.Context() as context:
        yield context


def test_work_on_a_stream_runs_in_order(ctx):
    size = 1 << 16
    a, b = ctx.buffer(size), ctx.buffer(size)
    stream = ctx.stream()
    versions = [np.full(size, v, dtype=np.uint8) for v in range(10)]
    for version in versions:
        stream.write_async(a, version)
    stream.copy_async(b, a)
    stream.fill_async(b, 0x5A, offset=100, size=1000)
    out = bytearray(size)
    stream.read_async(b, out)
    checksum = stream.checksum_async(b)
    stream.synchronize()
    expected = versions[-1].copy()
    expected[100:1100] = 0x5A
    assert out == expected.tobytes()
    assert checksum.value == grey.capi.grey_buffer_checksum(b._get_handle(), 0, size)
    assert stream.query()


def test_an_event_orders_two_streams_and_times_them(ctx):
    size = 1 << 20
    buf = ctx.buffer(size)
    producer, consumer = ctx.stream(), ctx.stream()
    start, ready = ctx.event(), ctx.event()
    data = np.arange(size, dtype=np.uint32).astype(np.uint8)
    start.record(producer)
    producer.write_async(buf, data)
    ready.record(producer)
    consumer.wait(ready)
    out = np.zeros(size, dtype=np.uint8)
    consumer.read_async(buf, out)
    consumer.synchronize()
    np.testing.assert_array_equal(out, data)
    assert ready.query()
    ready.synchronize()
    assert start.elapsed_ms(ready) >= 0.0


def test_errors_surface_at_synchronize(ctx):
    x = np.ones((4, 128), dtype=np.float32)
    x[2, 5] = np.nan
    src = ctx.buffer(x.nbytes)
    src.write(x)
    dst = ctx.buffer(4096)
    params = grey.capi.grey_quant_params()
    grey.capi.grey_quant_params_from_name("int8", params)
    desc = make_desc(grey.capi.GREY_DTYPE_F32, x.shape)
    stream = ctx.stream()
    grey.capi.grey_quantize_buffer_async(desc, src._get_handle(), 0, params, dst._get_handle(), 0, stream._get_handle())
    with pytest.raises(grey.InvalidArgument):
        stream.synchronize()
    stream.synchronize()  # reported once


def test_refused_input(ctx):
    buf = ctx.buffer(64)
    stream = ctx.stream()
    with pytest.raises(grey.InvalidArgument, match="lies outside the buffer"):
        stream.write_async(buf, b"x" * 100)
    with pytest.raises(TypeError):
        stream.read_async(buf, b"read-only")
    never = ctx.event()
    with pytest.raises(grey.InvalidArgument, match="never been recorded"):
        never.synchronize()
    with pytest.raises(grey.InvalidArgument):
        ctx.stream(device=99)
    stream.close()
    with pytest.raises(ValueError):
        stream.synchronize()


def test_host_memory(ctx):
    with ctx.host_memory(4096) as host:
        assert host.address % 64 == 0
        view = host.memoryview()
        view[:] = bytes(range(256)) * 16
        buf = ctx.buffer(4096)
        stream = ctx.stream()
        stream.write_async(buf, view)
        stream.synchronize()
        assert buf.read() == bytes(range(256)) * 16
    with pytest.raises(grey.InvalidArgument):
        grey.capi.grey_host_free(ctx._get_handle(), host.address)


def test_quantize_async_gives_the_synchronous_bytes_and_raises_nan_at_synchronize(ctx):
    x = np.linspace(-3.0, 5.0, 4 * 256, dtype=np.float32).reshape(4, 256)
    expected = grey.quantize(x, "q4_0", report=False)
    src, dst = ctx.buffer(x.nbytes), ctx.buffer(grey.quant_size(x.shape, "q4_0"))
    restored = ctx.buffer(x.nbytes)
    stream = ctx.stream()
    stream.write_async(src, x)
    stream.quantize_async(src, x.shape, "q4_0", dst)
    stream.dequantize_async(dst, x.shape, "q4_0", restored)
    out = bytearray(dst.size)
    back = np.zeros_like(x)
    stream.read_async(dst, out)
    stream.read_async(restored, back)
    stream.synchronize()
    assert bytes(out) == expected.data.tobytes()
    np.testing.assert_array_equal(back, expected.dequantize())
    bad = x.copy()
    bad[1, 7] = np.nan
    stream.write_async(src, bad)
    stream.quantize_async(src, x.shape, "q4_0", dst)
    with pytest.raises(grey.InvalidArgument, match="element 263 is NaN"):
        stream.synchronize()


def test_host_streams_have_no_native_handle(ctx):
    stream = ctx.stream()
    with pytest.raises(grey.Unsupported, match="backend 'host', which has no native streams"):
        stream.native_handle()
    with pytest.raises(grey.Unsupported, match="no native streams"):
        stream.__cuda_stream__()


def test_dlpack_waits_for_the_stream_that_wrote_the_buffer(ctx):
    size = 1 << 20
    buf = ctx.buffer(size)
    stream = ctx.stream()
    data = (np.arange(size) % 251).astype(np.uint8)
    stream.write_async(buf, data)
    view = np.from_dlpack(buf)  # stream None: the write has completed first
    np.testing.assert_array_equal(view, data)
    del view
    stream.fill_async(buf, 7)
    view = np.from_dlpack(buf)
    assert int(view[0]) == 7 and int(view[-1]) == 7
    del view
    stream.synchronize()


def test_dlpack_refuses_streams_a_host_buffer_cannot_have(ctx):
    buf = ctx.buffer(64)
    for stream, message in ((0, "host memory, which has no streams"), (5, "host memory"), ("s", "integer or None"),
                            (True, "integer or None")):
        with pytest.raises(BufferError, match=message):
            buf.__dlpack__(stream=stream)
    capsule = buf.__dlpack__(stream=-1)
    del capsule


class _ProtocolStream:
    """Stands for cuda.core's or CuPy's stream objects."""

    def __init__(self, version: int, handle: int) -> None:
        self.version, self.handle = version, handle

    def __cuda_stream__(self):
        return (self.version, self.handle)


class _TorchLikeStream:
    cuda_stream = 7


def test_wrapping_a_native_stream_needs_a_device_with_native_streams(ctx):
    for native in (1, _ProtocolStream(0, 5), _TorchLikeStream()):
        with pytest.raises(grey.Unsupported, match="device 0 of backend 'host' has no native streams to wrap"):
            ctx.wrap_stream(native, device=0)


def test_wrapping_refuses_what_is_not_a_cuda_stream(ctx):
    with pytest.raises(TypeError, match="an integer or has __cuda_stream__, not str"):
        grey.Stream.wrap(ctx, 0, "stream")
    with pytest.raises(TypeError, match="an integer or has __cuda_stream__, not bool"):
        grey.Stream.wrap(ctx, 0, True)
    with pytest.raises(TypeError, match="__cuda_stream__ version 3 is not supported"):
        grey.Stream.wrap(ctx, 0, _ProtocolStream(3, 5))
    with pytest.raises(ValueError, match="not negative"):
        grey.Stream.wrap(ctx, 0, -4)


def test_map_async_decodes_a_compressed_buffer_on_the_stream(ctx):
    data = (np.arange(200000, dtype=np.uint32) % 7).astype(np.uint8).tobytes()
    buf = ctx.buffer(len(data))
    buf.write(data)
    handle = buf._get_handle()
    grey.capi.grey_buffer_seal(handle)
    grey.capi.grey_buffer_compress(handle, grey.capi.GREY_RESIDENCY_COMPRESSED_HOST, grey.capi.GREY_CODEC_LZ4)
    stream = ctx.stream()
    with stream.map_async(buf) as mapping:
        assert mapping.address != 0 and mapping.size == len(data)
        stream.synchronize()
        assert ctypes.string_at(mapping.address, mapping.size) == data
    with pytest.raises(grey.InvalidArgument, match="not mapped"):
        grey.capi.grey_buffer_unmap(handle)
    # Copy on write refused while mapped for reading: the stream reports it, the mapping still unmaps.
    with stream.map_async(buf):
        failed = stream.map_async(buf, write=True)
        assert failed.address == 0
        with pytest.raises(grey.InvalidArgument, match="mapped for reading"):
            stream.synchronize()
        failed.unmap()
    with pytest.raises(grey.InvalidArgument, match="not a grey_map_access value"):
        grey.capi.grey_buffer_map_async(handle, 7, grey.capi.grey_buffer_mapping(), stream._get_handle())


def test_the_stream_keeps_the_buffers_its_work_uses_until_synchronize(ctx):
    """A buffer handed only to queued work stays open until the stream has run it: dropping the last
    reference of the caller's must not destroy it under the work (grey_buffer_destroy with work pending)."""
    import gc
    import weakref

    stream = ctx.stream()
    kept = []
    for make in ("copy", "fill", "checksum", "write", "read", "quantize"):
        source, target = ctx.buffer(4096), ctx.buffer(max(4096, grey.quant_size((1024,), "int8")))
        source.write(np.ones(1024, np.float32))
        if make == "copy":
            stream.copy_async(target, source)
        elif make == "fill":
            stream.fill_async(target, 7)
        elif make == "checksum":
            stream.checksum_async(target)
        elif make == "write":
            stream.write_async(target, bytes(4096))  # the first 4096 bytes
        elif make == "read":
            stream.read_async(target, bytearray(4096))  # the first 4096 bytes
        else:
            stream.quantize_async(source, (1024,), "int8", target)
        kept.append((make, weakref.ref(source), weakref.ref(target)))
        del source, target
    gc.collect()
    for make, source, target in kept:
        assert target() is not None and not target().closed, make
        if make in ("copy", "quantize"):
            assert source() is not None and not source().closed, make
    stream.synchronize()
    gc.collect()
    assert all(target() is None for _, _, target in kept)
