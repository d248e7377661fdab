#!/usr/bin/env python3
"""A model larger than the working-set cache, streamed layer by layer through libgrey, beside the same
model resident (issue 17), and the latency of a map.

The model: --layers bf16 matrices [--dim, --dim] whose values are real weights: every F16 tensor of
--source (a safetensors file) converted to bf16, tiled to fill each layer from its own starting point
and scaled by a factor of the layer's own, so that layers differ and the float codec sees the exponent
statistics of real weights. A pass pushes activations x [batch, dim] through every layer: x = x @ W,
then an RMS normalisation (which keeps the values finite over many layers). The same passes run:

  * resident: the layers as plain torch bf16 tensors;
  * raw libgrey: the layers as never-compressed libgrey buffers, each mapped once before the passes;
  * streamed: the layers as libgrey buffers, sealed and compressed with the float codec into the device
    tier (--tier host or both: host memory), in a context whose working-set cache
    (memory.cache.working_set_mb) is the model's size / --ratio. For layer i of a pass: torch's stream
    waits for layer i's map event, x = x @ W_i over the mapped address, an event is recorded after it;
    then layer i + --ahead is mapped with grey_buffer_map_async on a libgrey stream of its own (its
    decode runs during the call, on the calling thread's time, while the GPU works through layer i) and
    an event recorded after the map; then layer i - 1, whose work is done once its event is, is unmapped.
    With --keep K the first K layers stay mapped for all passes instead (a cyclic scan over more than an
    LRU cache never hits, so keeping what fits and streaming the rest is what a user would do); "auto"
    keeps as many as leave the cache room for the streamed layers in flight. Default: 0 and auto.
    On CUDA torch's stream is wrapped as a grey_stream (grey_stream_wrap_native), so that the waits and
    records are libgrey's own calls on the stream torch computes on;
  * torch offload (CUDA only), the peer a torch user would pick for a model larger than the GPU: the
    layers in pinned host memory, each copied into one of --ahead + 1 device slots on a copy stream
    --ahead layers before it is computed.

Every pass of every form must give the same output bit for bit (the float codec is lossless): the
benchmark fails otherwise. Times are wall clock per pass (the device synchronised before and after),
median of --passes after --warmup; the resident passes run again right before each streamed row, and
that row's ratio is to them. The cache's hits and misses come from grey_device_memory_stats_get
over the timed passes; a miss decodes a whole layer, so bytes decoded = misses x layer bytes. The
compression ratio is the layers' bytes over what their containers hold (grey_buffer_info_get).

Map latency: a --map-mib buffer of the same kind of weights, in a context whose cache holds one such
copy, compressed into the device tier and into host memory: the time of grey_buffer_map_access (data
ready when it returns) and of grey_buffer_map_async (the call; the call until an event after it has
completed) for a hit and for a miss (a second buffer mapped between two maps evicts the first), with a
raw buffer's map and a device memcpy of the same bytes beside them (GB/s: bytes written into the cache,
or copied, per second). Median of --map-repeat.

  python3 bench/layer_stream_gpu_bench.py --lib build/gpu/lib/libgrey.so --backend-dir build/gpu/lib/grey \\
      --source .deps/model/all-minilm-l6-v2-f16.safetensors [--tier both] [--json out.json]
  python3 bench/layer_stream_gpu_bench.py --backend host --lib build/default/lib/libgrey.so \\
      --backend-dir build/default/lib/grey --source MODEL.safetensors     (CPU torch, small defaults)
"""
import argparse
import contextlib
import ctypes as C
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

# cuBLAS gives the same bits run after run only while one stream is active, unless its workspace is fixed
# (cuBLAS documentation, "Results reproducibility"); the passes compared bit for bit here run beside
# libgrey's streams and a copy stream. Set before torch creates its cuBLAS handles.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "scripts"))
from quant_gpu_bench import GREY_DTYPE, Grey  # noqa: E402 - the benchmarks' ctypes view of grey.h
from stream_gpu_bench import Streams  # noqa: E402 - its streams and events
import safetensors_io as st  # noqa: E402 - the project's one safetensors reader

# --------------------------------------------------------------------------------------------------
# The rest of grey.h this benchmark calls. Layouts are frozen by tests/abi/layout_test.c (sizes checked).

GREY_MEMORY_HOST, GREY_MEMORY_CUDA_DEVICE = 0, 1
GREY_RESIDENCY = {"raw": 0, "deduplicated": 1, "device": 2, "host": 3}
GREY_CODEC_FLOAT = 3
GREY_RESIDENCY_NAME = {0: "raw", 1: "deduplicated", 2: "compressed_device", 3: "compressed_host"}
GREY_MAP_READ = 0
MIB = 1 << 20


class BufferOptions(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("device", C.c_uint32), ("size_bytes", C.c_uint64), ("tenant", C.c_uint64),
                ("sharing_domain", C.c_uint64), ("source_bytes", C.c_uint64), ("dtype", C.c_int32), ("reserved0", C.c_uint32)]


class Mapping(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("kind", C.c_int32), ("address", C.c_uint64), ("size_bytes", C.c_uint64),
                ("vendor_device", C.c_int32), ("reserved0", C.c_uint32)]


class BufferInfo(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("residency", C.c_int32), ("size_bytes", C.c_uint64), ("physical_bytes", C.c_uint64),
                ("tenant", C.c_uint64), ("sharing_domain", C.c_uint64), ("source_bytes", C.c_uint64), ("dtype", C.c_int32),
                ("sealed", C.c_uint32), ("map_count", C.c_uint32), ("codec", C.c_int32), ("shared_blocks", C.c_uint64),
                ("shared_with_others", C.c_uint64), ("constant_blocks", C.c_uint64), ("cached", C.c_uint32), ("reserved0", C.c_uint32)]


class MemoryStats(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("reserved0", C.c_uint32)] + \
        [(name, C.c_uint64) for name in ("reserved_bytes", "committed_bytes", "allocated_bytes", "free_bytes", "largest_free_bytes",
                                         "allocation_count", "growth_count", "granularity_bytes")] + \
        [("fragmentation", C.c_double)] + \
        [(name, C.c_uint64) for name in ("logical_bytes", "physical_bytes", "physical_device_bytes", "physical_host_bytes",
                                         "saved_dedup_bytes", "saved_compression_bytes", "saved_quantization_bytes", "cache_bytes",
                                         "cache_capacity_bytes", "cache_hits", "cache_misses")] + \
        [("cache_hit_rate", C.c_double), ("effective_multiplier", C.c_double), ("buffer_count", C.c_uint64),
         ("buffers_by_residency", C.c_uint64 * 4), ("shared_blocks", C.c_uint64), ("constant_blocks", C.c_uint64)]


for struct, size in ((BufferOptions, 48), (Mapping, 32), (BufferInfo, 96), (MemoryStats, 240)):
    assert C.sizeof(struct) == size, f"{struct.__name__}: {C.sizeof(struct)} bytes, grey.h has {size}"


class Tiers(Streams):
    """Sealed buffers, residencies and maps of one quant_gpu_bench.Grey context, beside the streams and events
    of stream_gpu_bench.Streams."""

    def __init__(self, grey, backend):
        super().__init__(grey)
        self.backend = backend
        self.device = grey.gpu

    def call(self, name, *args):
        self.grey.call(name, *args)

    def bf16_buffer(self, host_tensor, seal=True):
        """A buffer holding a contiguous CPU bf16 tensor's bytes, tagged BF16 for the float codec."""
        options = BufferOptions(C.sizeof(BufferOptions), self.device, host_tensor.numel() * 2, 0, 0, 0, GREY_DTYPE["BF16"], 0)
        handle = C.c_void_p()
        self.call("grey_buffer_create_with_options", self.grey.context, C.byref(options), C.byref(handle))
        self.call("grey_buffer_write", handle, C.c_uint64(0), C.c_void_p(host_tensor.data_ptr()), C.c_uint64(options.size_bytes))
        if seal:
            self.call("grey_buffer_seal", handle)
        return handle

    def compress(self, handle, tier):
        self.call("grey_buffer_compress", handle, C.c_int(GREY_RESIDENCY[tier]), C.c_int(GREY_CODEC_FLOAT))

    def info(self, handle):
        info = BufferInfo()
        info.struct_size = C.sizeof(BufferInfo)
        self.call("grey_buffer_info_get", handle, C.byref(info))
        return info

    def stats(self):
        stats = MemoryStats()
        stats.struct_size = C.sizeof(MemoryStats)
        self.call("grey_device_memory_stats_get", self.grey.context, C.c_uint32(self.device), C.byref(stats))
        return stats

    def map(self, handle):
        mapping = Mapping()
        mapping.struct_size = C.sizeof(Mapping)
        self.call("grey_buffer_map_access", handle, C.c_int(GREY_MAP_READ), C.byref(mapping))
        return mapping

    def map_async(self, handle, stream):
        mapping = Mapping()
        mapping.struct_size = C.sizeof(Mapping)
        self.call("grey_buffer_map_async", handle, C.c_int(GREY_MAP_READ), C.byref(mapping), stream)
        return mapping

    def unmap(self, handle):
        self.call("grey_buffer_unmap", handle)

    def wrap(self, torch_stream):
        """torch's CUDA stream as a grey_stream (libgrey's calls and waits on the stream torch computes on)."""
        handle = C.c_void_p()
        self.call("grey_stream_wrap_native", self.grey.context, C.c_uint32(self.device), C.c_int(GREY_MEMORY_CUDA_DEVICE),
                  C.c_uint64(torch_stream.cuda_stream), C.byref(handle))
        return handle

    def record(self, event, stream):
        self.call("grey_event_record", event, stream)

    def wait(self, stream, event):
        self.call("grey_stream_wait_event", stream, event)

    def event_sync(self, event):
        self.call("grey_event_synchronize", event)



# A mapping handed to torch through DLPack, as libgrey's Python binding hands buffers (tests/gpu/check_wheel.py
# checks torch.from_dlpack on its mapped device memory): the capsule names the device, so torch asks the
# driver nothing about the address (libgrey's device memory is a VMM pool's). The layouts are dlpack.h's.

class DLDevice(C.Structure):
    _fields_ = [("device_type", C.c_int32), ("device_id", C.c_int32)]


class DLDataType(C.Structure):
    _fields_ = [("code", C.c_uint8), ("bits", C.c_uint8), ("lanes", C.c_uint16)]


class DLTensor(C.Structure):
    _fields_ = [("data", C.c_void_p), ("device", DLDevice), ("ndim", C.c_int32), ("dtype", DLDataType),
                ("shape", C.POINTER(C.c_int64)), ("strides", C.POINTER(C.c_int64)), ("byte_offset", C.c_uint64)]


class DLManagedTensor(C.Structure):
    pass


DLDeleter = C.CFUNCTYPE(None, C.POINTER(DLManagedTensor))
DLManagedTensor._fields_ = [("dl_tensor", DLTensor), ("manager_ctx", C.c_void_p), ("deleter", DLDeleter)]
KDL_CPU, KDL_CUDA, KDL_BFLOAT = 1, 2, 4
_capsule_new = C.pythonapi.PyCapsule_New
_capsule_new.restype = C.py_object
_capsule_new.argtypes = [C.c_void_p, C.c_char_p, C.c_void_p]
_alive = {}  # DLManagedTensor address -> the ctypes objects it points into, until torch lets go of it


@DLDeleter
def _release(managed):
    _alive.pop(C.addressof(managed.contents), None)


def weight_view(mapping, rows, cols=None):
    """A torch bf16 [rows, cols] tensor (cols = rows by default) over a mapping's address (no copy), on the
    GPU or the host. The mapping must outlive the tensor."""
    cols = cols or rows
    if mapping.address == 0:
        raise RuntimeError("a mapping with address 0 (a failed async map: its stream reports why)")
    if mapping.size_bytes != rows * cols * 2:
        raise RuntimeError(f"mapped {mapping.size_bytes} bytes, expected {rows * cols * 2}")
    cuda = mapping.kind == GREY_MEMORY_CUDA_DEVICE
    shape = (C.c_int64 * 2)(rows, cols)
    managed = DLManagedTensor()
    managed.dl_tensor = DLTensor(mapping.address, DLDevice(KDL_CUDA if cuda else KDL_CPU, mapping.vendor_device if cuda else 0), 2,
                                 DLDataType(KDL_BFLOAT, 16, 1), shape, None, 0)
    managed.deleter = _release
    _alive[C.addressof(managed)] = (managed, shape)
    return torch.from_dlpack(_capsule_new(C.addressof(managed), b"dltensor", None))


# --------------------------------------------------------------------------------------------------
# Real weights, tiled into layers.

def source_values(path):
    """Every F16 tensor of `path`, in file order, as one flat bf16 tensor (on the CPU)."""
    tensors, _ = st.read(path)
    parts = [np.frombuffer(t.data, dtype=np.float16) for t in tensors.values() if t.dtype == "F16"]
    if not parts:
        raise SystemExit(f"{path} has no F16 tensor")
    return torch.from_numpy(np.concatenate(parts)).to(torch.bfloat16)


def layer_weights(values, dim, index, cols=None):
    """Layer `index`: the source values tiled to [dim, cols] (cols = dim by default) from a starting point
    of the layer's own, scaled so that x @ W keeps x's RMS, times a factor in [0.75, 1.25) of the layer's
    own; bf16 on the CPU."""
    cols = cols or dim
    count = dim * cols
    start = (index * 7919 * 1031) % values.numel()
    rolled = torch.cat((values[start:], values[:start])).float()
    tiled = rolled.repeat(count // rolled.numel() + 1)[:count]
    rms = tiled.square().mean().sqrt().item()
    factor = 0.75 + 0.5 * ((index * 0.6180339887) % 1.0)
    return (tiled * (factor / (rms * dim ** 0.5))).to(torch.bfloat16).view(dim, cols).contiguous()


def step(x, w):
    """One layer's work: x @ W, then RMS normalisation (bf16 in, bf16 out)."""
    y = torch.matmul(x, w).float()
    return (y * torch.rsqrt(y.square().mean(dim=-1, keepdim=True) + 1e-6)).to(torch.bfloat16)


def overlay(cache_mib, pinned_host_mb=None):
    """A configuration overlay: the cache size, and the background scan off (only the benchmark moves
    buffers); with pinned_host_mb, the bound on page-locked host memory for the host tier (0: its
    containers stay pageable, and async maps copy them on the stream through pinned staging)."""
    handle, path = tempfile.mkstemp(prefix="grey-layer-stream-", suffix=".yaml")
    with os.fdopen(handle, "w") as f:
        f.write(f'version: "1.0"\nmemory:\n  deduplication:\n    scan_interval_ms: 0\n  cache:\n    working_set_mb: {cache_mib}\n')
        if pinned_host_mb is not None:
            f.write(f'  compression:\n    pinned_host_mb: {pinned_host_mb}\n')
    return path


def context(args, cache_mib):
    path = overlay(cache_mib, args.pinned_host_mb)
    try:
        grey = Grey(args.lib, args.backend_dir, backend=args.backend, config_path=path)
    finally:
        os.unlink(path)
    return grey, Tiers(grey, args.backend)


# --------------------------------------------------------------------------------------------------
# The device: synchronisation and the stream torch computes on.

class Device:
    def __init__(self, backend):
        self.cuda = backend != "host"
        self.name = torch.cuda.get_device_name() if self.cuda else f"host CPU ({os.cpu_count()} logical CPUs, torch {torch.__version__})"
        self.torch_device = "cuda" if self.cuda else "cpu"
        self.compute = torch.cuda.Stream() if self.cuda else None  # a side stream: not the legacy default stream

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def stream_context(self):
        return torch.cuda.stream(self.compute) if self.cuda else contextlib.nullcontext()


def median_ms(samples):
    return statistics.median(samples) * 1e3


# --------------------------------------------------------------------------------------------------
# (a) Map latency.

def map_latency(args, device, values):
    size = args.map_mib * MIB
    cols = 4096
    rows = size // 2 // cols  # 128 rows a MiB
    # Room for one copy: mapping the second buffer evicts the first.
    grey, tiers = context(args, args.map_mib + args.map_mib // 2)
    table = []
    stream = tiers.stream()
    event = tiers.event()
    weights = [layer_weights(values, rows, 1000 + i, cols) for i in range(2)]
    raw = tiers.bf16_buffer(weights[0], seal=False)

    def timed(body, prepare=None):
        samples = []
        for i in range(args.warmup + args.map_repeat):
            if prepare:
                prepare()
            t0 = time.perf_counter()
            body()
            elapsed = time.perf_counter() - t0
            if i >= args.warmup:
                samples.append(elapsed)
        return statistics.median(samples) * 1e6

    def sync_map(handle):
        def body():
            tiers.map(handle)
            tiers.unmap(handle)
        return body

    def async_call(handle):  # the call alone; the unmap after the stream has run it, outside the time
        return lambda: tiers.map_async(handle, stream), lambda: (tiers.sync(stream), tiers.unmap(handle))

    def async_ready(handle):
        def body():
            tiers.map_async(handle, stream)
            tiers.record(event, stream)
            tiers.event_sync(event)
            tiers.unmap(handle)
        return body

    table.append({"residency": "raw", "what": "grey_buffer_map_access (address only)", "cache": "-",
                  "us": timed(sync_map(raw))})
    # The floor beside them: the same bytes copied on the device (torch's copy_, a memcpy), synchronised.
    source = weights[0].to(device.torch_device)
    target = torch.empty_like(source)

    def copy():
        target.copy_(source)
        device.sync()
    us = timed(copy)
    table.append({"residency": "-", "what": "memcpy of the same bytes on the device (torch copy_ + synchronize)", "cache": "-",
                  "us": us, "decoded_gb_per_s": size / (us * 1e-6) / 1e9})
    for tier in ("device", "host"):
        pair = [tiers.bf16_buffer(w) for w in weights]
        for handle in pair:
            tiers.compress(handle, tier)
        info = tiers.info(pair[0])
        ratio = info.size_bytes / info.physical_bytes
        first, other = pair
        evict = sync_map(other)  # maps the other buffer, whose copy takes the only room: `first` misses next
        warm = sync_map(first)   # `first` in the cache: it hits next
        body, after = async_call(first)
        for what, cache, kind, measure in (
                ("grey_buffer_map_access, data ready on return", "miss", "sync", lambda: timed(sync_map(first), evict)),
                ("grey_buffer_map_access", "hit", "sync", lambda: timed(sync_map(first), warm)),
                ("grey_buffer_map_async, the call", "miss", "async-call", lambda: _timed_async(timed, body, after, evict)),
                ("grey_buffer_map_async + event synchronize, data ready", "miss", "async-ready", lambda: timed(async_ready(first), evict)),
                ("grey_buffer_map_async, the call", "hit", "async-call", lambda: _timed_async(timed, body, after, warm)),
                ("grey_buffer_map_async + event synchronize, data ready", "hit", "async-ready", lambda: timed(async_ready(first), warm))):
            before = tiers.stats()
            us = measure()
            after_stats = tiers.stats()
            hits = after_stats.cache_hits - before.cache_hits
            misses = after_stats.cache_misses - before.cache_misses
            row = {"residency": f"compressed_{tier}", "what": what, "cache": cache, "kind": kind, "us": us, "compression_ratio": ratio,
                   "maps_hit": hits, "maps_missed": misses}
            if cache == "miss" and kind != "async-call":
                row["decoded_gb_per_s"] = size / (us * 1e-6) / 1e9
            table.append(row)
        for handle, w in zip(pair, weights):
            same(tiers, handle, w, rows, cols, f"the compressed_{tier} buffer's map")
            grey.destroy(handle)
    same(tiers, raw, weights[0], rows, cols, "the raw buffer's map")
    grey.lib.grey_event_destroy(event)
    grey.lib.grey_stream_destroy(stream)
    grey.close(raw)
    return {"bytes": size, "rows": table}


def same(tiers, handle, weights, rows, cols, what):
    """Fails unless the buffer, mapped, holds `weights`' bits."""
    mapping = tiers.map(handle)
    equal = torch.equal(weight_view(mapping, rows, cols).cpu().view(torch.int16), weights.view(torch.int16))
    tiers.unmap(handle)
    if not equal:
        raise SystemExit(f"FAIL: {what} does not hold the bytes written")


def _timed_async(timed, body, after, prepare):
    """The call alone: `after` (synchronize, unmap) runs before the next `prepare`, outside the time."""
    pending = []

    def prepared():
        if pending:
            after()
            pending.clear()
        prepare()

    def call():
        body()
        pending.append(True)
    us = timed(call, prepared)
    if pending:
        after()
    return us


# --------------------------------------------------------------------------------------------------
# (b) Layer-by-layer streaming.

class Model:
    def __init__(self, args, device, values):
        self.dim, self.count = args.dim, args.layers
        self.layer_bytes = self.dim * self.dim * 2
        self.total_bytes = self.layer_bytes * self.count
        cache_mib = int(self.total_bytes / args.ratio) // MIB
        self.grey, self.tiers = context(args, cache_mib)
        self.cache_bytes = cache_mib * MIB
        if self.cache_bytes < (args.ahead + 2) * self.layer_bytes:
            raise SystemExit(f"a cache of {cache_mib} MiB holds fewer than --ahead + 2 = {args.ahead + 2} layers of "
                             f"{self.layer_bytes / MIB:.1f} MiB: raise --layers or lower --ratio")
        self.device = device
        self.resident, self.streamed, self.raw, self.pinned = [], [], [], []
        for i in range(self.count):
            w = layer_weights(values, self.dim, i)
            self.resident.append(w.to(device.torch_device))
            if device.cuda:
                self.pinned.append(w.pin_memory())
            self.streamed.append(self.tiers.bf16_buffer(w))
            self.raw.append(self.tiers.bf16_buffer(w, seal=False))
        # The raw libgrey layers, mapped once for all passes.
        self.raw_views = [weight_view(self.tiers.map(h), self.dim) for h in self.raw]
        self.copy_stream = self.tiers.stream()
        self.compute = self.tiers.wrap(device.compute) if device.cuda else None
        self.ready = [self.tiers.event() for _ in range(self.count)]
        self.done = [self.tiers.event() for _ in range(self.count)] if device.cuda else None
        self.map_call_seconds = 0.0
        if device.cuda:  # the peer: torch offload, ahead + 1 device slots filled from pinned host memory
            self.slots = [torch.empty_like(self.resident[0]) for _ in range(args.ahead + 1)]
            self.torch_copy_stream = torch.cuda.Stream()
            self.copied = [torch.cuda.Event() for _ in range(self.count)]
            self.used = [torch.cuda.Event() for _ in range(self.count)]

    def compress(self, tier):
        t0 = time.perf_counter()
        for handle in self.streamed:
            self.tiers.compress(handle, tier)
        seconds = time.perf_counter() - t0
        physical = sum(self.tiers.info(h).physical_bytes for h in self.streamed)
        return {"compression_ratio": self.total_bytes / physical, "compressed_bytes": physical, "compress_seconds": seconds}

    def resident_pass(self, x, layers):
        with self.device.stream_context():
            for w in layers:
                x = step(x, w)
        return x

    def offload_pass(self, x, ahead):
        """What a torch user does for a model larger than the GPU: the layers in pinned host memory, each
        copied into one of ahead + 1 device slots on a copy stream `ahead` layers before it is computed
        (a slot is refilled once the layer that used it is done)."""
        slots = len(self.slots)

        def issue(j):
            if j >= self.count:
                return
            with torch.cuda.stream(self.torch_copy_stream):
                if j >= slots:
                    self.torch_copy_stream.wait_event(self.used[j - slots])
                self.slots[j % slots].copy_(self.pinned[j], non_blocking=True)
                self.copied[j].record(self.torch_copy_stream)

        for j in range(ahead):
            issue(j)
        with self.device.stream_context():
            for i in range(self.count):
                self.device.compute.wait_event(self.copied[i])
                x = step(x, self.slots[i % slots])
                self.used[i].record(self.device.compute)
                issue(i + ahead)
        return x

    def streamed_pass(self, x, ahead, kept):
        """Map ahead on the copy stream; compute layer i once its map event has completed on the device;
        unmap layer i - 1 once the event after its work has. Layers in `kept` (index: view) stay mapped
        for all passes and are not mapped here."""
        t = self.tiers
        mappings = [None] * self.count
        map_seconds = 0.0

        def issue(j):
            nonlocal map_seconds
            if j >= self.count or j in kept:
                return
            t0 = time.perf_counter()
            mappings[j] = t.map_async(self.streamed[j], self.copy_stream)
            map_seconds += time.perf_counter() - t0
            t.record(self.ready[j], self.copy_stream)
            if mappings[j].address == 0:  # the map failed: the stream says why
                t.sync(self.copy_stream)
                raise RuntimeError(f"layer {j}: grey_buffer_map_async gave address 0")

        def retire(j):
            if j < 0 or j in kept:
                return
            if self.device.cuda:
                t.event_sync(self.done[j])
            t.unmap(self.streamed[j])
            mappings[j] = None

        for j in range(ahead):
            issue(j)
        with self.device.stream_context():
            for i in range(self.count):
                if i in kept:
                    w = kept[i]
                else:
                    if self.device.cuda:
                        t.wait(self.compute, self.ready[i])  # torch's stream waits on the device, not the host
                    else:
                        t.event_sync(self.ready[i])          # the CPU computes: the host waits
                    w = weight_view(mappings[i], self.dim)
                x = step(x, w)
                del w
                if self.device.cuda:
                    t.record(self.done[i], self.compute)
                issue(i + ahead)                             # layer i's work is queued: this decode overlaps it
                retire(i - 1 if self.device.cuda else i)     # on the host the CPU's matmul has returned
            if self.device.cuda:
                retire(self.count - 1)
        t.sync(self.copy_stream)
        self.map_call_seconds += map_seconds
        return x

    def check_layers(self):
        """Every streamed layer, mapped, holds its resident twin's bits (the float codec is lossless)."""
        for i, handle in enumerate(self.streamed):
            mapping = self.tiers.map(handle)
            same = torch.equal(weight_view(mapping, self.dim).view(torch.int16), self.resident[i].view(torch.int16))
            self.tiers.unmap(handle)
            if not same:
                raise SystemExit(f"FAIL: layer {i}, mapped from {GREY_RESIDENCY_NAME[self.tiers.info(handle).residency]}, "
                                 "does not hold the bits written")

    def timed(self, run, x, args, after_warmup=None):
        """Median ms of --passes runs of run(x) after --warmup, and the last output; `after_warmup` is called
        once the warm-up passes are done, before the timed ones."""
        samples, out = [], None
        for i in range(args.warmup + args.passes):
            self.device.sync()
            if i == args.warmup and after_warmup:
                after_warmup()
            t0 = time.perf_counter()
            out = run(x)
            self.device.sync()
            if i >= args.warmup:
                samples.append(time.perf_counter() - t0)
        return median_ms(samples), out

    def close(self):
        t = self.tiers
        for h in self.raw:
            t.unmap(h)
        self.raw_views = []
        for e in self.ready + (self.done or []):
            self.grey.lib.grey_event_destroy(e)
        for s in (self.copy_stream, self.compute):
            if s is not None:
                self.grey.lib.grey_stream_destroy(s)
        self.grey.close(*(self.streamed + self.raw))


def stream_table(args, device, values):
    model = Model(args, device, values)
    tiers = ["device", "host"] if args.tier == "both" else [args.tier]
    result = {"layers": model.count, "dim": model.dim, "layer_bytes": model.layer_bytes, "model_bytes": model.total_bytes,
              "cache_bytes": model.cache_bytes, "model_over_cache": model.total_bytes / model.cache_bytes, "ahead": args.ahead,
              "baselines": [], "tiers": []}
    generator = torch.Generator().manual_seed(17)
    inputs = {b: torch.randn(b, model.dim, generator=generator).to(torch.bfloat16).to(device.torch_device) for b in args.batches}
    baseline = {}
    for batch in args.batches:
        resident_ms, resident_out = model.timed(lambda x: model.resident_pass(x, model.resident), inputs[batch], args)
        raw_ms, raw_out = model.timed(lambda x: model.resident_pass(x, model.raw_views), inputs[batch], args)
        if not torch.equal(raw_out, resident_out):
            raise SystemExit(f"FAIL: batch {batch}: the raw libgrey layers give another output than the resident torch layers")
        if not torch.isfinite(resident_out.float()).all():
            raise SystemExit(f"FAIL: batch {batch}: the resident pass gives non-finite values")
        offload_ms = None
        if device.cuda:
            offload_ms, offload_out = model.timed(lambda x: model.offload_pass(x, args.ahead), inputs[batch], args)
            if not torch.equal(offload_out, resident_out):
                raise SystemExit(f"FAIL: batch {batch}: the torch offload pass gives another output than the resident one")
        baseline[batch] = (resident_ms, raw_ms, offload_ms, resident_out)
        result["baselines"].append({"batch": batch, "resident_ms": resident_ms, "raw_libgrey_ms": raw_ms, "torch_offload_ms": offload_ms,
                                    "torch_offload_over_resident_speed": resident_ms / offload_ms if offload_ms else None})
    for tier in tiers:
        entry = {"tier": tier, **model.compress(tier), "rows": []}
        model.check_layers()
        for keep in args.keep:
            # The first `kept` layers mapped once for all passes (never evicted while mapped), the rest streamed.
            kept_count = max(0, model.cache_bytes // model.layer_bytes - (args.ahead + 2)) if keep == "auto" else int(keep)
            kept_count = min(kept_count, model.count)
            kept = {i: weight_view(model.tiers.map(model.streamed[i]), model.dim) for i in range(kept_count)}
            for batch in args.batches:
                _, raw_ms, offload_ms, resident_out = baseline[batch]
                # The resident passes again right before the streamed ones, for the ratio: side by side.
                resident_ms, again = model.timed(lambda x: model.resident_pass(x, model.resident), inputs[batch], args)
                if not torch.equal(again, resident_out):
                    raise SystemExit(f"FAIL: batch {batch}: two resident runs give different outputs")
                marks = {}

                def start_counting():
                    marks["before"] = model.tiers.stats()
                    model.map_call_seconds = 0.0
                streamed_ms, streamed_out = model.timed(lambda x: model.streamed_pass(x, args.ahead, kept), inputs[batch], args,
                                                        start_counting)
                before, after = marks["before"], model.tiers.stats()
                if not torch.equal(streamed_out, resident_out):
                    differing = (streamed_out.view(torch.int16) != resident_out.view(torch.int16)).sum().item()
                    raise SystemExit(f"FAIL: tier {tier}, batch {batch}, {kept_count} layers kept: the streamed pass's output differs "
                                     f"from the resident one in {differing} of {resident_out.numel()} values, though every layer "
                                     "mapped holds the resident layer's bits (check_layers): the matrix products differ")
                runs = args.passes
                hits, misses = after.cache_hits - before.cache_hits, after.cache_misses - before.cache_misses
                entry["rows"].append({
                    "batch": batch, "kept_layers": kept_count, "resident_ms": resident_ms, "raw_libgrey_ms": raw_ms,
                    "torch_offload_ms": offload_ms, "streamed_ms": streamed_ms, "streamed_over_resident_speed": resident_ms / streamed_ms,
                    "streamed_over_torch_offload_speed": offload_ms / streamed_ms if offload_ms else None,
                    "resident_tokens_per_s": batch / (resident_ms * 1e-3), "streamed_tokens_per_s": batch / (streamed_ms * 1e-3),
                    # over the timed passes; a miss decodes a whole layer
                    "maps_hit": hits, "maps_missed": misses, "hit_rate": hits / (hits + misses) if hits + misses else None,
                    "decoded_bytes_per_pass": misses * model.layer_bytes / runs,
                    "map_call_ms_per_pass": model.map_call_seconds / runs * 1e3,
                    "outputs_identical": True})
            kept.clear()
            for i in range(kept_count):
                model.tiers.unmap(model.streamed[i])
        result["tiers"].append(entry)
    model.close()
    return result


# --------------------------------------------------------------------------------------------------

def print_tables(results):
    print(f"device: {results['device']}; backend {results['backend']}; weights from {results['source']}")
    m = results.get("map_latency")
    if m:
        print(f"\n(a) map latency, a {m['bytes'] / MIB:.0f} MiB bf16 buffer (real weights, float codec), median of {results['map_repeat']}")
        print("| residency | call | cache | time | GB/s written | compression |")
        print("|---|---|---|---|---|---|")
        for r in m["rows"]:
            gbs = f"{r['decoded_gb_per_s']:.1f}" if "decoded_gb_per_s" in r else "-"
            ratio = f"{r['compression_ratio']:.3f}x" if "compression_ratio" in r else "-"
            # A miss row's maps (the evicting one too) all miss; a hit row's all hit but the first warming map.
            as_said = r["cache"] == "-" or (r["maps_hit"] == 0 if r["cache"] == "miss" else r["maps_missed"] <= 1)
            check = "" if as_said else f" (NOT what the cache did: {r['maps_hit']} hits, {r['maps_missed']} misses)"
            print(f"| {r['residency']} | {r['what']} | {r['cache']}{check} | {r['us']:.1f} us | {gbs} | {ratio} |")
    s = results.get("stream")
    if s:
        print(f"\n(b) layer by layer: {s['layers']} layers of bf16 [{s['dim']}, {s['dim']}] ({s['model_bytes'] / MIB:.0f} MiB), "
              f"working-set cache {s['cache_bytes'] / MIB:.0f} MiB (model = {s['model_over_cache']:.2f}x the cache), "
              f"maps issued {s['ahead']} layer(s) ahead; median of {results['passes']} passes after {results['warmup']}")
        print("\n| tokens | resident torch ms/pass | raw libgrey, mapped once, ms/pass | torch offload from pinned host memory ms/pass | "
              "offload speed / resident |")
        print("|---|---|---|---|---|")
        for r in s["baselines"]:
            offload = (f"{r['torch_offload_ms']:.3f} | {r['torch_offload_over_resident_speed']:.3f}" if r["torch_offload_ms"] is not None
                       else "not run (host backend: no device memory to offload to) | -")
            print(f"| {r['batch']} | {r['resident_ms']:.3f} | {r['raw_libgrey_ms']:.3f} | {offload} |")
        for t in s["tiers"]:
            print(f"\ntier compressed_{t['tier']}: float codec ratio {t['compression_ratio']:.3f}x "
                  f"({t['compressed_bytes'] / MIB:.0f} MiB held), compressed in {t['compress_seconds']:.1f} s")
            print("| tokens | layers kept mapped | resident ms/pass (just before) | streamed ms/pass | streamed speed / resident "
                  "(goal >= 0.80) | speed / torch offload | tokens/s resident / streamed | cache hit rate | decoded MiB/pass | "
                  "map calls ms/pass | output |")
            print("|---|---|---|---|---|---|---|---|---|---|---|")
            for r in t["rows"]:
                hit = f"{r['hit_rate']:.2f}" if r["hit_rate"] is not None else "-"
                vs_offload = f"{r['streamed_over_torch_offload_speed']:.3f}" if r["streamed_over_torch_offload_speed"] else "-"
                print(f"| {r['batch']} | {r['kept_layers']} | {r['resident_ms']:.3f} | {r['streamed_ms']:.3f} | {r['streamed_over_resident_speed']:.3f} | {vs_offload} | "
                      f"{r['resident_tokens_per_s']:.0f} / {r['streamed_tokens_per_s']:.0f} | "
                      f"{hit} ({r['maps_hit']} hits, {r['maps_missed']} misses) | {r['decoded_bytes_per_pass'] / MIB:.0f} | "
                      f"{r['map_call_ms_per_pass']:.3f} | identical |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lib", required=True)
    parser.add_argument("--backend-dir", required=True)
    parser.add_argument("--backend", default="cuda", choices=("cuda", "host"))
    parser.add_argument("--source", required=True, help="a safetensors file whose F16 tensors give the weights")
    parser.add_argument("--dim", type=int, help="layer matrices [dim, dim] (default 8192; host 1024)")
    parser.add_argument("--layers", type=int, help="layers (default 21: 2.6 GiB at dim 8192; host 7)")
    parser.add_argument("--ratio", type=float, default=1.4, help="model size / working-set cache size")
    parser.add_argument("--batches", help="tokens per pass, comma-separated (default 1,256,2048,8192; host 1,8,32)")
    parser.add_argument("--tier", default="device", choices=("device", "host", "both"), help="where the compressed layers are held")
    parser.add_argument("--ahead", type=int, default=1, help="layers mapped ahead of the one computed")
    parser.add_argument("--keep", default="0,auto",
                        help="comma-separated: how many of the first layers stay mapped for all passes (the rest streamed); "
                             "auto: as many as leave the cache room for --ahead + 2 streamed layers")
    parser.add_argument("--pinned-host-mb", type=int,
                        help="memory.compression.pinned_host_mb for the contexts (default: the library's; 0 keeps host-tier containers pageable)")
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--map-mib", type=int, help="map latency buffer, MiB (default 64; host 8); 0 skips the table")
    parser.add_argument("--map-repeat", type=int, default=10)
    parser.add_argument("--no-stream", action="store_true", help="only the map latency table")
    parser.add_argument("--json")
    args = parser.parse_args()
    host = args.backend == "host"
    args.dim = args.dim or (1024 if host else 8192)
    args.layers = args.layers or (7 if host else 21)
    args.batches = [int(b) for b in (args.batches or ("1,8,32" if host else "1,256,2048,8192")).split(",")]
    args.map_mib = (8 if host else 64) if args.map_mib is None else args.map_mib
    args.keep = [k.strip() for k in args.keep.split(",")]
    if any(k != "auto" and not k.isdigit() for k in args.keep):
        raise SystemExit("--keep: numbers or auto")
    if args.ahead < 1:
        raise SystemExit("--ahead must be at least 1")

    device = Device(args.backend)
    values = source_values(args.source)
    results = {"device": device.name, "backend": args.backend, "source": os.path.basename(args.source), "passes": args.passes,
               "warmup": args.warmup, "map_repeat": args.map_repeat}
    if args.map_mib:
        results["map_latency"] = map_latency(args, device, values)
    if not args.no_stream:
        results["stream"] = stream_table(args, device, values)
    print_tables(results)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=2)


if __name__ == "__main__":
    main()
