#!/usr/bin/env python3
"""Quantization throughput on an NVIDIA GPU, side by side in one process:

  * libgrey's CUDA kernels (grey_quantize_buffer / grey_dequantize_buffer through grey.h, via ctypes so
    that the machine needs no SWIG build),
  * a device-to-device copy of the plain tensor (torch's copy_, which is cudaMemcpyAsync),
  * the same format written in PyTorch, eager and torch.compile,
  * bitsandbytes where it has the format (int8 per row, NF4 blocks of 64).

Every operation is timed the same way: wall clock around one call followed by a device synchronise
(libgrey's calls are synchronous), median of --repeat runs after --warmup runs. With --device-time it
also reports device time alone: the durations CUPTI records for every kernel and copy of the call
(through torch.profiler, which sees kernels launched through the driver API too). Throughput is bytes
moved (read + written) per second; quantize reads the plain tensor and writes the quantized bytes,
dequantize the reverse, the copy reads and writes the plain tensor.

  python3 bench/quant_gpu_bench.py --lib build/gpu/lib/libgrey.so --backend-dir build/gpu/lib/grey \\
      [--elements 268435456] [--formats int8,nf4,...] [--no-compile] [--json out.json]
"""
import argparse
import ctypes as C
import json
import statistics
import sys
import time

import torch

# --------------------------------------------------------------------------------------------------
# grey.h through ctypes: only what the benchmark calls. Layouts are frozen by tests/abi/layout_test.c.

GREY_DTYPE = {"F32": 0, "F16": 1, "BF16": 2}


class ContextOptions(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("log_level", C.c_int32), ("log_callback", C.c_void_p),
                ("log_user", C.c_void_p), ("backends", C.c_char_p), ("backend_dir", C.c_char_p),
                ("config_path", C.c_char_p), ("profile", C.c_char_p), ("apply_env_overrides", C.c_uint32),
                ("reserved0", C.c_uint32)]


class TensorDesc(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("dtype", C.c_int32), ("rank", C.c_uint32),
                ("reserved0", C.c_uint32), ("shape", C.c_uint64 * 8)]


class QuantParams(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("format", C.c_int32), ("calibration", C.c_int32),
                ("group_size", C.c_uint32), ("axis", C.c_int32), ("reserved0", C.c_uint32)]


GREY_DEVICE_CPU, GREY_DEVICE_GPU = 0, 1


class Grey:
    """A context on `backend` ("cuda"; "host" for the host device, whose index is then in .gpu), with the
    YAML overlay `config_path` (None: the profile's defaults)."""

    def __init__(self, library, backend_dir, backend="cuda", config_path=None):
        self.lib = C.CDLL(library)
        self.lib.grey_last_error.restype = C.c_char_p
        options = ContextOptions(C.sizeof(ContextOptions), 2, None, None, backend.encode(), backend_dir.encode(),
                                 config_path.encode() if config_path else None, None, 0, 0)
        self.context = C.c_void_p()
        self.call("grey_context_create", C.byref(options), C.byref(self.context))
        self.gpu = self.first_device(GREY_DEVICE_CPU if backend == "host" else GREY_DEVICE_GPU)

    def call(self, name, *args):
        status = getattr(self.lib, name)(*args)
        if status != 0:
            raise RuntimeError(f"{name}: status {status}: {self.lib.grey_last_error().decode()}")

    def first_device(self, device_type=GREY_DEVICE_GPU):
        count = C.c_uint32()
        self.call("grey_device_count", self.context, C.byref(count))
        for device in range(count.value):
            spec = (C.c_uint8 * 1352)()
            C.c_uint32.from_buffer(spec, 0).value = 1352
            self.call("grey_device_spec_get", self.context, C.c_uint32(device), spec)
            if C.c_int32.from_buffer(spec, 8).value == device_type:  # grey_device_spec.type
                return device
        raise RuntimeError(f"libgrey offers no {'GPU' if device_type == GREY_DEVICE_GPU else 'host'} device")

    def first_gpu(self):
        return self.first_device(GREY_DEVICE_GPU)

    def params(self, name):
        """grey_quant_params for a format name ("int4-g128", ...), as greyctl quantize --format takes."""
        params = QuantParams()
        params.struct_size = C.sizeof(QuantParams)
        self.call("grey_quant_params_from_name", name.encode(), C.byref(params))
        return params

    def format_names(self):
        self.lib.grey_quant_name_at.restype = C.c_char_p
        return [self.lib.grey_quant_name_at(C.c_uint32(i)).decode() for i in range(self.lib.grey_quant_name_count())]

    def buffer(self, size):
        handle = C.c_void_p()
        self.call("grey_buffer_create", self.context, C.c_uint32(self.gpu), C.c_uint64(size), C.byref(handle))
        return handle

    def destroy(self, handle):
        self.lib.grey_buffer_destroy(handle)

    def close(self, *buffers):
        """Destroys `buffers`, then the context."""
        for handle in buffers:
            self.destroy(handle)
        self.lib.grey_context_destroy(self.context)


def desc_of(dtype, shape):
    d = TensorDesc(C.sizeof(TensorDesc), GREY_DTYPE[dtype], len(shape), 0)
    for i, n in enumerate(shape):
        d.shape[i] = n
    return d




# --------------------------------------------------------------------------------------------------
# The formats in PyTorch: the same arithmetic and the same outputs (codes, packed where libgrey packs,
# plus fp16/fp32 scales), not bit-exact copies of libgrey's rounding corners.

NF4_LEVELS = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
              -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
              0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
              0.7229568362236023, 1.0]


def pack(q):  # neighbours into one byte, low nibble first
    return (q[..., 0::2] | (q[..., 1::2] << 4)).to(torch.uint8)


def unpack(p):
    return torch.stack((p & 0x0F, p >> 4), dim=-1).flatten(-2)


def torch_formats(device):
    levels = torch.tensor(NF4_LEVELS, device=device)
    midpoints = (levels[1:] + levels[:-1]) * 0.5

    def int8_rows(x):
        scale = x.abs().amax(dim=1, keepdim=True) / 127
        return torch.round(x / scale).clamp(-127, 127).to(torch.int8), scale

    def int8_rows_back(q, scale):
        return q.float() * scale

    def int4(group):
        def quantize(x):
            g = x.view(-1, group)
            lo, hi = g.amin(dim=1, keepdim=True), g.amax(dim=1, keepdim=True)
            scale = (hi - lo) / 15
            q = torch.round((g - lo) / scale).clamp(0, 15).to(torch.uint8)
            return pack(q), scale.half(), lo.half()

        def dequantize(p, scale, lo):
            return (unpack(p).float() * scale.float() + lo.float()).view(-1)
        return quantize, dequantize

    def int4_sym(x):
        g = x.view(-1, 128)
        scale = g.abs().amax(dim=1, keepdim=True) / 7
        q = (torch.round(g / scale).clamp(-8, 7) + 8).to(torch.uint8)
        return pack(q), scale.half()

    def int4_sym_back(p, scale):
        return ((unpack(p).float() - 8) * scale.float()).view(-1)

    def fp8(dtype, largest):
        def quantize(x):
            scale = x.abs().amax(dim=1, keepdim=True) / largest
            return (x / scale).to(dtype), scale

        def dequantize(q, scale):
            return q.float() * scale
        return quantize, dequantize

    def nf4(x):
        g = x.view(-1, 64)
        absmax = g.abs().amax(dim=1, keepdim=True)
        q = torch.bucketize(g / absmax, midpoints).to(torch.uint8)
        return pack(q), absmax

    def nf4_back(p, absmax):
        return (levels[unpack(p).long()] * absmax).view(-1)

    def q8_0(x):
        g = x.view(-1, 32)
        d = g.abs().amax(dim=1, keepdim=True) / 127
        return torch.round(g / d).to(torch.int8), d.half()

    def q8_0_back(q, d):
        return (q.float() * d.float()).view(-1)

    def q4_0(x):
        g = x.view(-1, 32)
        peak = g.gather(1, g.abs().argmax(dim=1, keepdim=True))
        d = peak / -8
        q = torch.trunc(g / d + 8.5).clamp(0, 15).to(torch.uint8)
        return pack(q), d.half()

    def q4_0_back(p, d):
        return ((unpack(p).float() - 8) * d.float()).view(-1)

    def q4_1(x):
        g = x.view(-1, 32)
        lo, hi = g.amin(dim=1, keepdim=True), g.amax(dim=1, keepdim=True)
        d = (hi - lo) / 15
        q = torch.trunc((g - lo) / d + 0.5).clamp(0, 15).to(torch.uint8)
        return pack(q), d.half(), lo.half()

    def q4_1_back(p, d, lo):
        return (unpack(p).float() * d.float() + lo.float()).view(-1)

    return {
        "int8": (int8_rows, int8_rows_back),
        "int8-token": (int8_rows, int8_rows_back),
        "int4-g32": int4(32),
        "int4-g64": int4(64),
        "int4-g128": int4(128),
        "int4-sym-g128": (int4_sym, int4_sym_back),
        "fp8-e4m3": fp8(torch.float8_e4m3fn, 448.0),
        "fp8-e5m2": fp8(torch.float8_e5m2, 57344.0),
        "nf4": (nf4, nf4_back),
        "q8_0": (q8_0, q8_0_back),
        "q4_0": (q4_0, q4_0_back),
        "q4_1": (q4_1, q4_1_back),
    }


def time_median(fn, warmup, repeat):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def device_seconds(fn, repeat):
    """Device time of one call to fn: the summed durations of every kernel and copy it ran, as CUPTI
    records them (torch.profiler sees kernels launched through the driver API too), per call."""
    from torch.profiler import ProfilerActivity, profile
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(repeat):
            fn()
        torch.cuda.synchronize()
    total_us = 0.0
    names = {}
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            total_us += event.device_time
            names[event.name] = names.get(event.name, 0.0) + event.device_time
    return total_us / repeat * 1e-6, {k: v / repeat for k, v in sorted(names.items(), key=lambda kv: -kv[1])}


def nbytes(result):
    items = result if isinstance(result, tuple) else (result,)
    return sum(t.numel() * t.element_size() for t in items)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lib", required=True)
    parser.add_argument("--backend-dir", required=True)
    parser.add_argument("--elements", type=int, default=1 << 28)
    parser.add_argument("--columns", type=int, default=4096)
    parser.add_argument("--formats", help="comma-separated format names (default: every name libgrey knows)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--device-time", action="store_true",
                        help="also report device time (kernels and copies, through CUPTI) of libgrey, memcpy and torch.compile")
    parser.add_argument("--json")
    args = parser.parse_args()

    device = torch.device("cuda")
    rows = args.elements // args.columns
    shape = (rows, args.columns)
    n = rows * args.columns
    torch.manual_seed(0)
    x = torch.randn(shape, device=device, dtype=torch.float32)
    plain_bytes = n * 4
    print(f"device: {torch.cuda.get_device_name()}  torch {torch.__version__}  elements {n} ({rows} x {args.columns}, F32)")

    grey = Grey(args.lib, args.backend_dir)
    source = grey.buffer(plain_bytes)
    host = x.cpu().numpy()
    grey.call("grey_buffer_write", source, C.c_uint64(0), host.ctypes.data_as(C.c_void_p), C.c_uint64(plain_bytes))
    del host
    plain_out = grey.buffer(plain_bytes)

    # What one synchronous libgrey call costs beyond its kernels, by path, on 4096 elements, beside the
    # round trip of a tiny PyTorch kernel followed by a synchronise (the floor any synchronous call pays).
    fixed = {}
    tiny = torch.zeros(4096, device=device)
    fixed["torch_tiny_kernel_sync"] = time_median(lambda: tiny.add_(1.0), args.warmup, args.repeat * 4)
    for label, fmt, rows_cols in (("quantize_int8_one_row", "int8", (1, 4096)), ("quantize_int8_rows", "int8", (512, 8)),
                                  ("quantize_q8_0", "q8_0", (1, 4096)), ("quantize_int4_g128", "int4-g128", (1, 4096))):
        small_desc, small_params = desc_of("F32", rows_cols), grey.params(fmt)
        small_size = C.c_uint64()
        grey.call("grey_quant_size", C.byref(small_desc), C.byref(small_params), C.byref(small_size))
        small_out = grey.buffer(small_size.value)
        fixed[label] = time_median(lambda: grey.call("grey_quantize_buffer", C.byref(small_desc), source, C.c_uint64(0),
                                                     C.byref(small_params), small_out, C.c_uint64(0), None), args.warmup, args.repeat * 4)
        if fmt == "q8_0":
            fixed["dequantize_q8_0"] = time_median(lambda: grey.call("grey_dequantize_buffer", C.byref(small_desc), C.byref(small_params),
                                                                     small_out, C.c_uint64(0), plain_out, C.c_uint64(0)),
                                                   args.warmup, args.repeat * 4)
        grey.destroy(small_out)
    del tiny
    print("fixed cost of one call on 4096 elements (us): " + ", ".join(f"{k} {v * 1e6:.1f}" for k, v in fixed.items()))

    copy_dst = torch.empty_like(x)
    memcpy_s = time_median(lambda: copy_dst.copy_(x), args.warmup, args.repeat)
    memcpy_gbs = 2 * plain_bytes / memcpy_s / 1e9
    memcpy_device_gbs = None
    if args.device_time:
        memcpy_device_gbs = 2 * plain_bytes / device_seconds(lambda: copy_dst.copy_(x), args.repeat)[0] / 1e9
    del copy_dst
    print(f"memcpy D2D: {memcpy_gbs:.0f} GB/s (read + write)" +
          (f"; device time alone {memcpy_device_gbs:.0f} GB/s" if memcpy_device_gbs else "") + "\n")

    try:
        import bitsandbytes as bnb
        import bitsandbytes.functional as bnbf
        bnb_version = bnb.__version__
    except Exception as error:  # noqa: BLE001 - reported, not fatal
        bnbf, bnb_version = None, f"unavailable ({error})"
    print(f"bitsandbytes: {bnb_version}")

    formats = torch_formats(device)
    results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "bitsandbytes": bnb_version,
               "elements": n, "shape": list(shape), "memcpy_gbs": memcpy_gbs, "memcpy_device_gbs": memcpy_device_gbs, "libgrey_call_fixed_us": {k: v * 1e6 for k, v in fixed.items()},
               "formats": {}}
    header = f"{'format':<14} {'op':<10} {'libgrey':>9} {'x memcpy':>9} {'eager':>8} {'compile':>8} {'bnb':>8}"
    if args.device_time:
        header += f" {'grey dev':>9} {'x memcpy':>9} {'comp dev':>9}"
    header += "   (GB/s)"
    print(header)
    names = args.formats.split(",") if args.formats else grey.format_names()
    for name in names:
        desc, params = desc_of("F32", shape), grey.params(name)
        qsize = C.c_uint64()
        grey.call("grey_quant_size", C.byref(desc), C.byref(params), C.byref(qsize))
        quantized = grey.buffer(qsize.value)
        moved = plain_bytes + qsize.value
        ours_q = time_median(lambda: grey.call("grey_quantize_buffer", C.byref(desc), source, C.c_uint64(0), C.byref(params),
                                               quantized, C.c_uint64(0), None), args.warmup, args.repeat)
        ours_d = time_median(lambda: grey.call("grey_dequantize_buffer", C.byref(desc), C.byref(params), quantized, C.c_uint64(0),
                                               plain_out, C.c_uint64(0)), args.warmup, args.repeat)
        dev = {}
        if args.device_time:
            dev["q"], dev["q_kernels"] = device_seconds(lambda: grey.call("grey_quantize_buffer", C.byref(desc), source, C.c_uint64(0),
                                                                         C.byref(params), quantized, C.c_uint64(0), None), args.repeat)
            dev["d"], dev["d_kernels"] = device_seconds(lambda: grey.call("grey_dequantize_buffer", C.byref(desc), C.byref(params),
                                                                         quantized, C.c_uint64(0), plain_out, C.c_uint64(0)), args.repeat)
        grey.destroy(quantized)

        if name not in formats:
            print(f"{name:<14} (no PyTorch version written here; skipped)")
            continue
        quantize, dequantize = formats[name]
        q = quantize(x)
        torch_moved_q = plain_bytes + nbytes(q)
        torch_moved_d = nbytes(q) + plain_bytes
        eager_q = time_median(lambda: quantize(x), args.warmup, args.repeat)
        eager_d = time_median(lambda: dequantize(*q), args.warmup, args.repeat)
        compiled_q = compiled_d = None
        compile_seconds = None
        if not args.no_compile:
            start = time.perf_counter()
            cq, cd = torch.compile(quantize, dynamic=False), torch.compile(dequantize, dynamic=False)
            cq(x)
            cd(*q)
            torch.cuda.synchronize()
            compile_seconds = time.perf_counter() - start
            compiled_q = time_median(lambda: cq(x), args.warmup, args.repeat)
            compiled_d = time_median(lambda: cd(*q), args.warmup, args.repeat)
            if args.device_time:
                dev["cq"] = device_seconds(lambda: cq(x), args.repeat)[0]
                dev["cd"] = device_seconds(lambda: cd(*q), args.repeat)[0]
        del q

        bnb_q = bnb_d = None
        bnb_moved_q = bnb_moved_d = None
        if bnbf is not None and name in ("int8", "nf4"):
            try:
                if name == "nf4":
                    packed, state = bnbf.quantize_4bit(x, blocksize=64, quant_type="nf4")
                    bnb_moved_q = plain_bytes + packed.numel() * packed.element_size() + state.absmax.numel() * state.absmax.element_size()
                    bnb_q = time_median(lambda: bnbf.quantize_4bit(x, blocksize=64, quant_type="nf4"), args.warmup, args.repeat)
                    bnb_d = time_median(lambda: bnbf.dequantize_4bit(packed, state), args.warmup, args.repeat)
                    bnb_moved_d = bnb_moved_q
                    del packed, state
                else:  # bitsandbytes' int8 takes fp16: its bytes are counted as moved
                    xh = x.half()
                    codes, stats, _ = bnbf.int8_vectorwise_quant(xh)
                    bnb_moved_q = n * 2 + codes.numel() + stats.numel() * stats.element_size()
                    bnb_q = time_median(lambda: bnbf.int8_vectorwise_quant(xh), args.warmup, args.repeat)
                    bnb_d = time_median(lambda: bnbf.int8_vectorwise_dequant(codes, stats), args.warmup, args.repeat)
                    out = bnbf.int8_vectorwise_dequant(codes, stats)
                    bnb_moved_d = codes.numel() + stats.numel() * stats.element_size() + out.numel() * out.element_size()
                    del xh, codes, stats, out
            except Exception as error:  # noqa: BLE001 - reported in the table
                print(f"  bitsandbytes {name}: {error}")
                bnb_q = bnb_d = None

        def gbs(moved_bytes, seconds):
            return None if seconds is None else moved_bytes / seconds / 1e9

        entry = {
            "quantized_bytes": qsize.value,
            "compile_seconds": compile_seconds,
            "quantize": {"libgrey": gbs(moved, ours_q), "eager": gbs(torch_moved_q, eager_q),
                         "compile": gbs(torch_moved_q, compiled_q), "bitsandbytes": gbs(bnb_moved_q, bnb_q)},
            "dequantize": {"libgrey": gbs(moved, ours_d), "eager": gbs(torch_moved_d, eager_d),
                           "compile": gbs(torch_moved_d, compiled_d), "bitsandbytes": gbs(bnb_moved_d, bnb_d)},
        }
        if args.device_time:
            entry["quantize"]["libgrey_device"] = gbs(moved, dev["q"])
            entry["dequantize"]["libgrey_device"] = gbs(moved, dev["d"])
            entry["quantize"]["compile_device"] = gbs(torch_moved_q, dev.get("cq"))
            entry["dequantize"]["compile_device"] = gbs(torch_moved_d, dev.get("cd"))
            entry["libgrey_kernels_us"] = {"quantize": dev["q_kernels"], "dequantize": dev["d_kernels"]}
        results["formats"][name] = entry
        for op in ("quantize", "dequantize"):
            r = entry[op]
            cell = lambda v: f"{v:8.0f}" if v is not None else f"{'-':>8}"  # noqa: E731
            line = (f"{name:<14} {op:<10} {r['libgrey']:9.0f} {r['libgrey'] / memcpy_gbs:9.3f} {cell(r['eager'])} "
                    f"{cell(r['compile'])} {cell(r['bitsandbytes'])}")
            if args.device_time:
                line += f" {r['libgrey_device']:9.0f} {r['libgrey_device'] / memcpy_device_gbs:9.3f} {cell(r['compile_device']):>9}"
            print(line, flush=True)
        torch.cuda.empty_cache()

    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    grey.close(source, plain_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
