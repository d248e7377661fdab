import gc

import numpy as np
import pytest

import grey


@pytest.fixture
def ctx():
    with grey.Context() as context:
        yield context


def test_numpy_round_trip_in_place(ctx):
    data = np.arange(1024, dtype=np.float32)
    buf = ctx.buffer(data.nbytes)
    assert buf.size == len(buf) == data.nbytes and buf.device == 0
    buf.write(data)
    out = np.zeros_like(data)
    address = out.__array_interface__["data"][0]
    buf.read_into(out)
    assert out.__array_interface__["data"][0] == address  # filled where it lies, not replaced
    np.testing.assert_array_equal(out, data)


def test_any_buffer_protocol_object_and_offsets(ctx):
    buf = ctx.buffer(16)
    buf.fill(0xAB)
    buf.write(b"grey", offset=4)
    buf.write(memoryview(bytearray(b"xyz"))[1:], offset=10)
    assert buf.read() == bytearray(b"\xab" * 4 + b"grey" + b"\xab" * 2 + b"yz" + b"\xab" * 4)
    assert buf.read(4, offset=4) == b"grey"
    view = bytearray(8)
    buf.read_into(memoryview(view)[2:6], offset=4)
    assert view == bytearray(b"\0\0grey\0\0")


def test_copy_between_buffers(ctx):
    a, b = ctx.buffer(8), ctx.buffer(8)
    a.write(np.arange(8, dtype=np.uint8))
    b.copy_from(a, size=4, offset=4, source_offset=2)
    assert list(b.read(4, offset=4)) == [2, 3, 4, 5]


def test_bad_ranges_and_objects(ctx):
    buf = ctx.buffer(8)
    with pytest.raises(grey.InvalidArgument, match="outside the buffer"):
        buf.write(bytes(9))
    with pytest.raises(grey.InvalidArgument):
        buf.read_into(bytearray(4), offset=6)
    with pytest.raises((ValueError, BufferError)):
        buf.write(np.arange(8, dtype=np.uint8)[::2])  # not contiguous: refused, never copied silently
    with pytest.raises(BufferError, match="not writable"):
        buf.read_into(b"read-only bytes")
    with pytest.raises(TypeError):
        buf.write("text is not bytes")
    with pytest.raises(grey.InvalidArgument):
        ctx.buffer(0)
    with pytest.raises(grey.InvalidArgument):
        ctx.buffer(8, device=ctx.device_count())


def test_buffer_lifetime(ctx):
    buf = ctx.buffer(8)
    buf.close()
    buf.close()
    with pytest.raises(ValueError, match="closed"):
        buf.read()
    kept = ctx.buffer(8)
    ctx.close()  # frees what it still owns
    assert kept.closed
    with pytest.raises(ValueError, match="closed"):
        kept.write(b"x")


def test_garbage_collected_buffers_and_contexts():
    for _ in range(50):
        c = grey.Context()
        b = c.buffer(4096)
        b.write(bytes(4096))
        cycle = [c, b]
        cycle.append(cycle)
        del c, b, cycle
    gc.collect()


def test_no_dlpack_until_the_api_has_device_pointers():
    # grey.h has no device pointers yet (mapping arrives with sealed buffers): nothing to export.
    assert not hasattr(grey.Buffer, "__dlpack__")
