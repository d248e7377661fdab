// The Level Zero backend's byte fill and copy (grey_buffer_fill, and grey_buffer_copy within a device),
// the kernels/cuda/grey_kernels.cu pair in OpenCL C: grid-stride loops that move 16 bytes a work item
// where the addresses allow it (the middle of the range, once aligned) and single bytes at the unaligned
// head and tail, so any launch covers any length and any alignment. Each range is a buffer and a byte
// offset into it (the backend passes the range's own address and 0; OpenCL, whose sub-buffers must be
// aligned, needs the offset to reach an unaligned range).

// Bytes before `address` reaches a 16-byte boundary, at most `n`.
ulong head_bytes(ulong address, ulong n) {
    const ulong head = (16 - (address & 15)) & 15;
    return head < n ? head : n;
}

__kernel void grey_fill(__global uchar* buffer, ulong offset, ulong n, uint value) {
    __global uchar* destination = buffer + offset;
    const ulong stride = get_global_size(0);
    const ulong id = get_global_id(0);
    const uchar byte = (uchar)value;
    const ulong head = head_bytes((ulong)destination, n);
    const ulong words = (n - head) / 16;
    const uint w = 0x01010101u * byte;
    for (ulong i = id; i < head; i += stride) destination[i] = byte;
    __global uint4* body = (__global uint4*)(destination + head);
    for (ulong i = id; i < words; i += stride) body[i] = (uint4)(w, w, w, w);
    for (ulong i = head + words * 16 + id; i < n; i += stride) destination[i] = byte;
}

// The ranges must not overlap (the runtime refuses overlapping copies).
__kernel void grey_copy(__global uchar* to, ulong to_offset, __global const uchar* from, ulong from_offset, ulong n) {
    __global uchar* destination = to + to_offset;
    __global const uchar* source = from + from_offset;
    const ulong stride = get_global_size(0);
    const ulong id = get_global_id(0);
    const ulong d = (ulong)destination, s = (ulong)source;
    if (((d ^ s) & 15) != 0) {  // never 16-byte aligned together: byte copies
        for (ulong i = id; i < n; i += stride) destination[i] = source[i];
        return;
    }
    const ulong head = head_bytes(d, n);
    const ulong words = (n - head) / 16;
    for (ulong i = id; i < head; i += stride) destination[i] = source[i];
    __global uint4* out = (__global uint4*)(destination + head);
    __global const uint4* in = (__global const uint4*)(source + head);
    for (ulong i = id; i < words; i += stride) out[i] = in[i];
    for (ulong i = head + words * 16 + id; i < n; i += stride) destination[i] = source[i];
}
