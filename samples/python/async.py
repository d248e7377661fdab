#!/usr/bin/env python3
"""Streams, events and an async quantization: one stream uploads a tensor, a second waits for it through
an event, quantizes it to q4_0 in four row blocks, checksums and reads the result back, all before one
synchronize; then a NaN input fails at synchronize with the synchronous call's message.

    python3 samples/python/async.py [DEVICE]

DEVICE (default 0, the host) is the device the streams run on. The input is the synthetic 256 x 512
tensor of samples/python/quantize.py; every async sample in samples/ prints the same lines (pip install
./bindings/python first).
"""

import sys

import numpy as np

import grey

ROWS, COLS, BLOCKS = 256, 512, 4


def synthetic(rows: int, cols: int) -> np.ndarray:
    """An LCG whose values are exact in float32, so every language makes the same tensor."""
    state, values = 12345, np.empty(rows * cols, dtype=np.float32)
    for i in range(values.size):
        state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
        values[i] = (np.float32(state >> 8) / np.float32(16777216) - np.float32(0.5)) / np.float32(16)
    return values.reshape(rows, cols)


def main() -> int:
    device = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    values = synthetic(ROWS, COLS)
    block_shape = (ROWS // BLOCKS, COLS)
    expected = grey.quantize(values, "q4_0", report=False).data.tobytes()
    block_bytes = grey.quant_size(block_shape, "q4_0")
    with grey.Context() as ctx:
        plain, quantized = ctx.buffer(values.nbytes, device), ctx.buffer(len(expected), device)
        upload, work = ctx.stream(device), ctx.stream(device)
        uploaded = ctx.event(device)
        packed = bytearray(len(expected))

        upload.write_async(plain, values)  # the stream keeps `values` alive until it has run
        uploaded.record(upload)
        work.wait(uploaded)
        for i in range(BLOCKS):
            work.quantize_async(plain, block_shape, "q4_0", quantized, source_offset=i * values.nbytes // BLOCKS,
                                destination_offset=i * block_bytes)
        checksum = work.checksum_async(quantized)
        work.read_async(quantized, packed)
        work.synchronize()
        upload.synchronize()
        if bytes(packed) != expected:
            print("async: the async quantization differs from the synchronous one", file=sys.stderr)
            return 1
        print(f"async input: synthetic [{ROWS}, {COLS}] F32")
        print(f"async q4_0: {BLOCKS} quantizations of [{ROWS // BLOCKS}, {COLS}] on 2 streams, {len(expected)} bytes, "
              f"checksum {checksum.value:016x}, equal to the synchronous call")

        # A NaN input: the failure arrives at synchronize, in the words of the synchronous call.
        values.flat[5] = np.nan
        plain.write(values)
        try:
            grey.quantize(values, "q4_0", report=False)
            print("async: the synchronous call took a NaN input", file=sys.stderr)
            return 1
        except grey.InvalidArgument as e:
            synchronous = str(e)
        work.quantize_async(plain, block_shape, "q4_0", quantized)
        try:
            work.synchronize()
            print("async: synchronize took a NaN input", file=sys.stderr)
            return 1
        except grey.InvalidArgument as e:
            if str(e) != synchronous:
                print(f"async: a NaN input gave {e} at synchronize, {synchronous} synchronously", file=sys.stderr)
                return 1
        print("async nan: refused at synchronize with the synchronous call's message")
    return 0


if __name__ == "__main__":
    sys.exit(main())
