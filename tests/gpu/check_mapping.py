#!/usr/bin/env python3
"""grey_buffer_map on a real GPU: the address is device memory holding the buffer's bytes, in the CUDA
device whose ordinal the mapping names.

    python3 tests/gpu/check_mapping.py LIBGREY.so BACKEND_DIR

For each CUDA device libgrey offers: write random bytes with grey_buffer_write, map the buffer, then
through the CUDA driver itself (libcuda.so.1, its primary context) check that cuPointerGetAttribute
puts the address on the mapping's ordinal, that cuMemcpyDtoH from it reads the written bytes, and that
bytes written to it with cuMemcpyHtoD are what grey_buffer_read returns; and that a CUstream made
through the driver can be wrapped (grey_stream_wrap_native) and made to wait for a grey stream. Standard library only (ctypes),
so it needs no Python binding on the machine. Prints one line per check; exits 1 on any failure.
"""

from __future__ import annotations

import ctypes as C
import os
import sys

GREY_DEVICE_GPU = 1
GREY_MEMORY_CUDA_DEVICE = 1
CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL = 9


class ContextOptions(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("log_level", C.c_uint32), ("log_callback", C.c_void_p),
                ("log_user", C.c_void_p), ("backends", C.c_char_p), ("backend_dir", C.c_char_p),
                ("config_path", C.c_char_p), ("profile", C.c_char_p), ("apply_env_overrides", C.c_uint32),
                ("reserved0", C.c_uint32)]


class Mapping(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("kind", C.c_uint32), ("address", C.c_uint64),
                ("size_bytes", C.c_uint64), ("vendor_device", C.c_int32), ("reserved0", C.c_uint32)]


failed = 0


def check(ok: bool, what: str) -> None:
    global failed
    failed += 0 if ok else 1
    print(f"{'PASS' if ok else 'FAIL'}  {what}", flush=True)


def check_wrapped_stream(grey, cuda, context, device: int, buffer, address: int, size: int, tag: str) -> None:
    """grey_stream_wrap_native over a CUstream made here through the driver (the primary context is
    current): libgrey's fill runs on it in order with the driver's copy, and a wrapper made only to wait
    for an event makes the driver's stream wait for a grey stream's fill without blocking the host."""
    native = C.c_void_p()
    if cuda.cuStreamCreate(C.byref(native), 1) != 0:  # CU_STREAM_NON_BLOCKING
        check(False, f"{tag}: cuStreamCreate")
        return
    handle = native.value or 0
    wrapper = C.c_void_p()
    status = grey.grey_stream_wrap_native(context, device, GREY_MEMORY_CUDA_DEVICE, C.c_uint64(handle), C.byref(wrapper))
    check(status == 0, f"{tag}: grey_stream_wrap_native of a driver CUstream ({grey.grey_last_error().decode() if status else 'ok'})")
    if status != 0:
        cuda.cuStreamDestroy_v2(native)
        return
    back = C.create_string_buffer(size)
    ok = grey.grey_buffer_fill_async(buffer, 0, 0x3C, size, wrapper) == 0
    ok = ok and cuda.cuMemcpyDtoHAsync_v2(back, C.c_uint64(address), C.c_size_t(size), native) == 0
    ok = ok and cuda.cuStreamSynchronize(native) == 0
    check(ok and back.raw == b"\x3c" * size, f"{tag}: a fill enqueued on the wrapper runs before the driver's copy on the same CUstream")
    grey.grey_stream_destroy(wrapper)

    producer, event, waiter = C.c_void_p(), C.c_void_p(), C.c_void_p()
    ok = grey.grey_stream_create(context, device, C.byref(producer)) == 0
    ok = ok and grey.grey_event_create(context, device, C.byref(event)) == 0
    ok = ok and grey.grey_buffer_fill_async(buffer, 0, 0xA7, size, producer) == 0
    ok = ok and grey.grey_event_record(event, producer) == 0
    ok = ok and grey.grey_stream_wrap_native(context, device, GREY_MEMORY_CUDA_DEVICE, C.c_uint64(handle), C.byref(waiter)) == 0
    ok = ok and grey.grey_stream_wait_event(waiter, event) == 0
    grey.grey_stream_destroy(waiter)
    ok = ok and cuda.cuMemcpyDtoHAsync_v2(back, C.c_uint64(address), C.c_size_t(size), native) == 0
    ok = ok and cuda.cuStreamSynchronize(native) == 0
    check(ok and back.raw == b"\xa7" * size, f"{tag}: the driver's stream waits for a grey stream's fill through an event")
    grey.grey_stream_synchronize(producer)
    grey.grey_event_destroy(event)
    grey.grey_stream_destroy(producer)
    cuda.cuStreamDestroy_v2(native)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    grey = C.CDLL(argv[1])
    cuda = C.CDLL("libcuda.so.1")
    grey.grey_last_error.restype = C.c_char_p
    grey.grey_buffer_read.argtypes = [C.c_void_p, C.c_uint64, C.c_void_p, C.c_uint64]
    grey.grey_buffer_write.argtypes = [C.c_void_p, C.c_uint64, C.c_void_p, C.c_uint64]
    grey.grey_buffer_create.argtypes = [C.c_void_p, C.c_uint32, C.c_uint64, C.POINTER(C.c_void_p)]
    grey.grey_buffer_map.argtypes = [C.c_void_p, C.POINTER(Mapping)]
    grey.grey_buffer_unmap.argtypes = [C.c_void_p]
    grey.grey_buffer_destroy.argtypes = [C.c_void_p]
    grey.grey_context_destroy.argtypes = [C.c_void_p]
    grey.grey_device_count.argtypes = [C.c_void_p, C.POINTER(C.c_uint32)]
    grey.grey_stream_wrap_native.argtypes = [C.c_void_p, C.c_uint32, C.c_uint32, C.c_uint64, C.POINTER(C.c_void_p)]
    grey.grey_stream_create.argtypes = [C.c_void_p, C.c_uint32, C.POINTER(C.c_void_p)]
    grey.grey_stream_destroy.argtypes = [C.c_void_p]
    grey.grey_stream_synchronize.argtypes = [C.c_void_p]
    grey.grey_stream_wait_event.argtypes = [C.c_void_p, C.c_void_p]
    grey.grey_event_create.argtypes = [C.c_void_p, C.c_uint32, C.POINTER(C.c_void_p)]
    grey.grey_event_record.argtypes = [C.c_void_p, C.c_void_p]
    grey.grey_event_destroy.argtypes = [C.c_void_p]
    grey.grey_buffer_fill_async.argtypes = [C.c_void_p, C.c_uint64, C.c_uint8, C.c_uint64, C.c_void_p]
    cuda.cuMemcpyDtoHAsync_v2.argtypes = [C.c_void_p, C.c_uint64, C.c_size_t, C.c_void_p]
    cuda.cuStreamCreate.argtypes = [C.POINTER(C.c_void_p), C.c_uint]
    cuda.cuStreamSynchronize.argtypes = [C.c_void_p]
    cuda.cuStreamDestroy_v2.argtypes = [C.c_void_p]
    cuda.cuMemcpyDtoH_v2.argtypes = [C.c_void_p, C.c_uint64, C.c_size_t]
    cuda.cuMemcpyHtoD_v2.argtypes = [C.c_uint64, C.c_void_p, C.c_size_t]
    cuda.cuPointerGetAttribute.argtypes = [C.c_void_p, C.c_int, C.c_uint64]

    options = ContextOptions(struct_size=C.sizeof(ContextOptions), log_level=2, backends=b"cuda",
                             backend_dir=os.fsencode(argv[2]))
    context = C.c_void_p()
    if grey.grey_context_create(C.byref(options), C.byref(context)) != 0:
        print(f"FAIL  context: {grey.grey_last_error().decode()}")
        return 1
    count = C.c_uint32()
    grey.grey_device_count(context, C.byref(count))
    check(cuda.cuInit(0) == 0, "cuInit")
    gpus = 0
    size = (5 << 20) + 3  # several pool granules' worth, odd
    for device in range(1, count.value):  # device 0 is the host
        gpus += 1
        tag = f"device {device}"
        data = os.urandom(size)
        buffer = C.c_void_p()
        if grey.grey_buffer_create(context, device, size, C.byref(buffer)) != 0:
            check(False, f"{tag}: allocation ({grey.grey_last_error().decode()})")
            continue
        check(grey.grey_buffer_write(buffer, 0, data, size) == 0, f"{tag}: grey_buffer_write")
        mapping = Mapping(struct_size=C.sizeof(Mapping))
        if grey.grey_buffer_map(buffer, C.byref(mapping)) != 0:
            check(False, f"{tag}: grey_buffer_map ({grey.grey_last_error().decode()})")
            grey.grey_buffer_destroy(buffer)
            continue
        check(mapping.kind == GREY_MEMORY_CUDA_DEVICE and mapping.size_bytes == size and mapping.address != 0,
              f"{tag}: mapped as CUDA memory of {mapping.size_bytes} bytes at {mapping.address:#x}, ordinal {mapping.vendor_device}")
        ordinal = C.c_int(-1)
        status = cuda.cuPointerGetAttribute(C.byref(ordinal), CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, mapping.address)
        check(status == 0 and ordinal.value == mapping.vendor_device,
              f"{tag}: the driver puts the address on CUDA device {ordinal.value} (status {status})")
        cu_device, cu_context = C.c_int(), C.c_void_p()
        check(cuda.cuDeviceGet(C.byref(cu_device), mapping.vendor_device) == 0 and
              cuda.cuDevicePrimaryCtxRetain(C.byref(cu_context), cu_device) == 0 and
              cuda.cuCtxPushCurrent_v2(cu_context) == 0, f"{tag}: the primary context of that ordinal")
        back = C.create_string_buffer(size)
        status = cuda.cuMemcpyDtoH_v2(back, mapping.address, size)
        check(status == 0 and back.raw == data, f"{tag}: cuMemcpyDtoH from the address reads what grey_buffer_write wrote")
        other = os.urandom(size)
        status = cuda.cuMemcpyHtoD_v2(mapping.address, other, size)
        seen = C.create_string_buffer(size)
        check(status == 0 and grey.grey_buffer_read(buffer, 0, seen, size) == 0 and seen.raw == other,
              f"{tag}: grey_buffer_read sees what cuMemcpyHtoD wrote to the address")
        check_wrapped_stream(grey, cuda, context, device, buffer, mapping.address, size, tag)
        popped = C.c_void_p()
        cuda.cuCtxPopCurrent_v2(C.byref(popped))
        cuda.cuDevicePrimaryCtxRelease_v2(cu_device)
        check(grey.grey_buffer_unmap(buffer) == 0 and grey.grey_buffer_unmap(buffer) != 0, f"{tag}: one unmap per map")
        grey.grey_buffer_destroy(buffer)
    check(gpus > 0, "at least one CUDA device is offered")
    grey.grey_context_destroy(context)
    print(f"mapping: {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
