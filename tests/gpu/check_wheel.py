#!/usr/bin/env python3
"""The Python wheel on a real GPU, in PyTorch's interpreter: the CUDA plugin travels inside the package,
a quantization runs on the GPU, and torch.from_dlpack sees its result without a copy.

    python3 tests/gpu/check_wheel.py      (the wheel installed; run by tests/gpu/run.sh, step `wheel`)

Checks, one line each (exit 1 on any failure):
  - the package holds grey/grey/libgrey-backend-cuda.so and the loader takes the CUDA backend from there;
  - int8 quantization of real-looking data on the GPU, enqueued on a grey.Stream, equals the host
    backend's bytes once torch reads it through DLPack on its current stream (the stream handshake
    makes torch's stream wait for the grey stream on the device);
  - torch's tensor has the buffer's own device pointer (grey_buffer_map's address): no copy;
  - a quantization enqueued on torch's current stream through grey.Stream.wrap is ordered with torch's
    own work on that stream.
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import torch

import grey

failed = 0


def check(ok: bool, what: str) -> None:
    global failed
    failed += 0 if ok else 1
    print(f"{'PASS' if ok else 'FAIL'}  {what}", flush=True)


def mapped_address(buffer: grey.Buffer) -> int:
    handle = buffer._get_handle()
    mapping = grey.capi.grey_buffer_mapping()
    grey.capi.grey_buffer_map(handle, mapping)
    grey.capi.grey_buffer_unmap(handle)
    return int(mapping.address)


def main() -> int:
    package = pathlib.Path(grey.__file__).resolve().parent
    plugin = package / "grey" / "libgrey-backend-cuda.so"
    check(plugin.is_file(), f"the wheel carries {plugin.relative_to(package.parent)}")
    with grey.Context(backends="cuda") as ctx:
        cuda = [b for b in ctx.backends() if b.name == "cuda"]
        check(bool(cuda) and cuda[0].outcome == "loaded" and pathlib.Path(cuda[0].path).resolve() == plugin.resolve(),
              f"the CUDA backend is loaded from the package ({cuda[0].path if cuda else 'not found'})")
        gpu = next(i for i in range(ctx.device_count()) if i != 0)
        rows, cols = 256, 4096
        values = np.random.default_rng(7).standard_normal((rows, cols)).astype(np.float32)
        values[:, 5] *= 40.0  # an outlier channel, as real activations have
        expected = grey.quantize(values, "int8", report=False).data.tobytes()
        size = grey.quant_size((rows, cols), "int8")

        source = ctx.buffer(values.nbytes, device=gpu)
        packed = ctx.buffer(size, device=gpu)
        source.write(values)
        stream = ctx.stream(gpu)
        stream.quantize_async(source, (rows, cols), "int8", packed)
        seen = torch.from_dlpack(packed)  # torch passes its current stream: a device-side wait
        check(seen.device.type == "cuda" and seen.numel() == size, f"torch.from_dlpack gives a CUDA tensor of {size} bytes")
        check(seen.data_ptr() == mapped_address(packed), "torch's tensor is the buffer's own memory (same device pointer)")
        check(seen.cpu().numpy().tobytes() == expected, "GPU int8 bytes read by torch equal the host backend's")
        stream.synchronize()

        # The other way: libgrey's work on torch's stream, between torch's own kernels.
        torch_stream = torch.cuda.current_stream()
        with ctx.wrap_stream(torch_stream, device=gpu) as on_torch:
            as_tensor = torch.from_dlpack(source)  # the float32 input, seen as bytes
            as_tensor.zero_()                       # torch's kernel, then libgrey's quantization, in order
            on_torch.fill_async(packed, 0xFF)
            on_torch.quantize_async(source, (rows, cols), "int8", packed)
            on_torch.synchronize()
        zeros = grey.quantize(np.zeros((rows, cols), np.float32), "int8", report=False).data.tobytes()
        check(bytes(packed.read()) == zeros, "a quantization on torch's stream (grey.Stream.wrap) ran after torch's kernel")
        stream.close()
    print(f"wheel: {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
