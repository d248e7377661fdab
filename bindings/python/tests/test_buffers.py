import gc

import numpy as np
import pytest

import grey
from grey import capi


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


def test_dlpack_shares_the_buffers_own_memory(ctx):
    buf = ctx.buffer(64)
    buf.write(np.arange(64, dtype=np.uint8))
    assert buf.__dlpack_device__() == (1, 0)  # kDLCPU
    view = np.from_dlpack(buf)
    assert view.dtype == np.uint8 and view.shape == (64,)
    np.testing.assert_array_equal(view, np.arange(64, dtype=np.uint8))  # what grey_buffer_write put there
    view[3:7] = [0xDE, 0xAD, 0xBE, 0xEF]  # writes through the view ...
    assert buf.read(4, offset=3) == bytearray(b"\xde\xad\xbe\xef")  # ... are what grey_buffer_read sees
    buf.write(b"\x01\x02", offset=62)
    assert view[62:].tolist() == [1, 2]
    assert view.view(np.uint32)[0] == int.from_bytes(bytes(buf.read(4)), "little")


def test_both_capsule_kinds_and_their_names(ctx):
    buf = ctx.buffer(8)
    legacy = buf.__dlpack__()
    versioned = buf.__dlpack__(stream=None, max_version=(1, 0))
    assert "dltensor" in repr(legacy) and "dltensor_versioned" in repr(versioned)
    assert buf._exports == 2
    del legacy, versioned  # never consumed: their destructors give the mappings back
    gc.collect()
    assert buf._exports == 0
    mapping = capi.grey_buffer_mapping()
    with pytest.raises(grey.InvalidArgument, match="not mapped"):
        capi.grey_buffer_unmap(buf._handle)  # no mapping was left behind
    capi.grey_buffer_map(buf._handle, mapping)
    capi.grey_buffer_unmap(buf._handle)
    with pytest.raises(BufferError, match="copy"):
        buf.__dlpack__(copy=True)
    with pytest.raises(BufferError, match="device"):
        buf.__dlpack__(dl_device=(2, 0))


def test_an_export_keeps_the_buffer_and_context_alive():
    ctx = grey.Context()
    buf = ctx.buffer(32)
    buf.write(bytes(range(32)))
    view = np.from_dlpack(buf)
    buf.close()  # the Python object is closed at once ...
    assert buf.closed
    with pytest.raises(ValueError, match="closed"):
        buf.read()
    ctx.close()
    del buf, ctx
    gc.collect()
    assert view.tolist() == list(range(32))  # ... but the memory lives until the consumer lets go
    view[0] = 7
    del view
    gc.collect()  # now the buffer and the context are freed (ASan would see a leak or a double free)


def test_capsule_outlives_its_python_buffer_object():
    with grey.Context() as ctx:
        buf = ctx.buffer(16)
        buf.fill(0x5A)
        capsule = buf.__dlpack__(max_version=(1, 0))
        del buf
        gc.collect()  # the capsule holds the buffer object
        view = np.from_dlpack(_Capsule(capsule))
        assert view.tolist() == [0x5A] * 16
        del capsule, view
        gc.collect()


class _Capsule:
    """Hands an existing capsule to numpy.from_dlpack."""

    def __init__(self, capsule):
        self.capsule = capsule

    def __dlpack__(self, **kwargs):
        return self.capsule

    def __dlpack_device__(self):
        return (1, 0)


def test_a_backend_that_cannot_map_refuses_dlpack_and_leaves_nothing_mapped():
    # The loader tests' fake plugin has buffers but no buffer_map slot (tests/plugins/test_plugin.cpp).
    from pathlib import Path

    plugins = Path(__file__).resolve().parents[3] / "build" / "default" / "tests" / "plugins"
    if not (plugins / "libgrey-backend-fake.so").exists():
        pytest.skip(f"no test plugins in {plugins}: build the default preset")
    with grey.Context(backends="fake", backend_dir=plugins) as ctx:
        fake = next(d.index for d in ctx.devices() if d.backend == "fake")
        buf = ctx.buffer(16, device=fake)
        with pytest.raises(grey.Unsupported, match="backend 'fake' cannot map buffers"):
            buf.__dlpack__()
        with pytest.raises(grey.Unsupported):
            buf.__dlpack_device__()
        assert buf._exports == 0 and ctx._exports == 0
        with pytest.raises(grey.InvalidArgument, match="not mapped"):
            capi.grey_buffer_unmap(buf._handle)
