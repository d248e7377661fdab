// Decode attention on the tensor cores (CUDA, sm_80 and later; kv_cache.cu includes this file unless it
// is compiled as HIP). Same thread blocks, splits and partial results as grey_kv_attend_split, which the
// HIP backend and head_dim above 128 keep; the two differ in how a warp turns a chunk of 16 tokens into
// scores and weighted values.
//
// A warp takes a chunk of 16 tokens of one block at a time and does both products with mma.m16n8k16
// (16-bit operands, fp32 accumulators):
//  - scores, S = K Q'^T: A holds the chunk's K codes, its 16 tokens as rows, exact 16-bit numbers
//    (integer codes through the 0x6400 exponent trick, fp8 converted); B holds the queries as columns
//    (query head h in column h and the rounding error of it in column GC + h: q = hi + lo, both 16-bit,
//    so a product is as exact as an fp32 one). A quantized block's per-channel K scale is folded into Q'
//    (q * scale, scaled by a power of two into fp16's range per block) and its minimum into a per-head
//    bias, as grey_kv_attend_split does.
//  - values, O^T += V^T P'^T: A holds the V codes as rows of channels, B the softmax weights times each
//    token's V scale (again hi + lo in two columns). The score tile (tokens by columns) becomes B (columns
//    by tokens) by movmatrix, in registers; a lane's accumulator columns are its score columns, so the
//    softmax rescale needs no exchange. V's per-token minimum is a per-head sum kept beside (sum of
//    p * minimum), and the scales are kept below 1 by a running power of two (the warp's largest scale
//    exponent), rescaled like the softmax maximum.
// Quantized chunks come into shared memory by cp.async, two chunks ahead of the one computed (one where
// the launch plan finds that three buffers a warp would hold fewer thread blocks on a multiprocessor; the
// rows padded so that fragment reads do not conflict); window-form blocks, a few at the end of a sequence,
// are read in place. Nothing is dequantized to memory.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace {
namespace tc {

constexpr uint32_t kChunk = GREY_KVK_MMA_CHUNK;
constexpr uint32_t kWarps = GREY_KVK_ATTEND_WARPS;
constexpr uint32_t kFull = 0xffffffffu;
constexpr uint32_t kMagic = 0x64006400u;  // fp16 1024.0 twice: OR-ing a small integer into the mantissa gives 1024 + code

// The forms a chunk's codes take: kv_int8 .. kv_fp8_e4m3 (grey_kv_format), and the window's 16-bit values.
constexpr int kWindow = 16;

template <int FORM>
struct Form {
    static constexpr uint32_t bits = FORM == kWindow ? 16u : FORM == kv_int4 ? 4u : FORM == kv_int2 ? 2u : 8u;
    static constexpr uint32_t per_word = 32u / bits;    // channels a 32-bit word holds
    static constexpr uint32_t pairs = per_word / 2u;  // pairs a word gives: channels (j, j + pairs)
};

// D += A B for one m16n8k16 tile (A 16 x 16 row-major, B 16 x 8 column-major, fp32 accumulators).
template <bool BF16>
__device__ __forceinline__ void mma(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0, uint32_t b1) {
    if constexpr (BF16)
        asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
            : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
    else
        asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
            : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Two floats as 16-bit values (low, high), rounded to nearest, and back.
template <bool BF16>
__device__ __forceinline__ uint32_t pack(float low, float high) {
    uint32_t r;
    if constexpr (BF16) asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(high), "f"(low));
    else asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(high), "f"(low));
    return r;
}
template <bool BF16>
__device__ __forceinline__ float2 unpack(uint32_t v) {
    if constexpr (BF16) return make_float2(__uint_as_float(v << 16), __uint_as_float(v & 0xffff0000u));
    float2 r;
    asm("{.reg .f16 l, h; mov.b32 {l, h}, %2; cvt.f32.f16 %0, l; cvt.f32.f16 %1, h;}" : "=f"(r.x), "=f"(r.y) : "r"(v));
    return r;
}
// (x, y) as two 16-bit pairs that add up to it: the rounded values (part 1), the rounding errors (part
// 2), or zeros (part 0: a lane whose row or column holds nothing).
template <bool BF16>
__device__ __forceinline__ uint32_t split(float x, float y, uint32_t part) {
    if (part == 0) return 0;
    const uint32_t rounded = pack<BF16>(x, y);
    if (part == 1) return rounded;
    const float2 r = unpack<BF16>(rounded);
    return pack<BF16>(x - r.x, y - r.y);
}

// (a & mask) | bits in one LOP3 (the compiler splits it in two when both are constants).
__device__ __forceinline__ uint32_t and_or(uint32_t a, uint32_t mask, uint32_t bits) {
    uint32_t r;
    asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(r) : "r"(a), "r"(mask), "r"(bits));
    return r;
}

// An 8 x 8 tile of 16-bit values transposed across the warp (lane (g, t) holds row g, columns 2t, 2t+1
// before and after).
__device__ __forceinline__ uint32_t transpose(uint32_t v) {
    uint32_t r;
    asm("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;" : "=r"(r) : "r"(v));
    return r;
}

// Four (two) 8 x 8 tiles of 16-bit values from shared memory, transposed: lanes 8i .. 8i + 7 give the
// addresses of tile i's rows (lanes 0 .. 15 for two tiles), and lane (g, t) receives column g of rows 2t
// and 2t + 1 of each tile (row 2t in the low half). Volatile: the staged rows are waited for by the
// volatile cp.async.wait_group before it, which a load the compiler could move would not respect.
__device__ __forceinline__ void load_transposed(uint32_t (&r)[4], uint32_t address) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(address));
}
__device__ __forceinline__ void load_transposed(uint32_t (&r)[2], uint32_t address) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];" : "=r"(r[0]), "=r"(r[1]) : "r"(address));
}

__device__ __forceinline__ uint32_t sub_f16x2(uint32_t a, uint32_t b) {
    uint32_t r;
    asm("sub.f16x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
__device__ __forceinline__ uint32_t fma_f16x2(uint32_t a, uint32_t b, uint32_t c) {
    uint32_t r;
    asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(c));
    return r;
}

// 2^x, results below 2^-126 flushed to zero: every use takes x <= 0 (a weight or a rescale against the
// running maximum), where a flushed value is below what an fp32 sum of ones can hold anyway. exp2f
// itself spends four more instructions a call keeping such values subnormal.
__device__ __forceinline__ float exp2_flush(float x) {
    float r;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
    return r;
}

// A code field of `bits` bits at bit `shift` (< 16 - bits, below fp16's exponent) of both 16-bit halves,
// as an fp16 pair, without moving it down first: OR-ing it into 1024's mantissa gives 1024 + 2^shift c,
// exact, and (1024 + 2^shift c) 2^-shift - 1024 2^-shift = c is one exact fma. A lane keeps the mask
// and the two constants of its own field.
struct Field {
    uint32_t mask, scale, offset;  // the field's bits in both halves; 2^-shift and -1024 2^-shift as f16x2
};
__device__ __forceinline__ constexpr Field field_at(uint32_t bits, uint32_t shift) {
    const uint32_t h = 15u - shift;  // fp16 exponent field of 2^-shift (bias 15)
    const uint32_t scale = h << 10, offset = 0x8000u | ((25u - shift) << 10);  // -1024 2^-shift = -2^(10-shift)
    return Field{((1u << bits) - 1u) * 0x00010001u << shift, scale * 0x00010001u, offset * 0x00010001u};
}
__device__ __forceinline__ uint32_t decode_field(uint32_t w, const Field& f) {
    return fma_f16x2(and_or(w, f.mask, 0x64006400u), f.scale, f.offset);
}

// The fp8 e4m3 values in the low 16 bits of `v` as two fp16 values (exact: fp16 holds every e4m3 number).
__device__ __forceinline__ uint32_t e4m3x2_to_f16x2(uint32_t v) {
#if __CUDA_ARCH__ >= 890
    uint32_t r;
    asm("{.reg .b16 t; cvt.u16.u32 t, %1; cvt.rn.f16x2.e4m3x2 %0, t;}" : "=r"(r) : "r"(v));
    return r;
#else
    // Each byte's exponent and mantissa moved under fp16's (bias 15 against 7): the value / 256, then * 256.
    const uint32_t s = __byte_perm(v, 0u, 0x1404u);  // byte 0 to bits 8..15, byte 1 to bits 24..31
    const uint32_t h = (s & 0x80008000u) | ((s >> 1) & 0x3f803f80u);
    uint32_t r;
    asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(r) : "r"(h), "r"(0x5c005c00u));
    return r;
#endif
}

// Channels j and j + pairs of the word `w` of one token's row, as an fp16 (bf16 for a bf16 window) pair.
template <int FORM>
__device__ __forceinline__ uint32_t row_pair(uint32_t w, uint32_t j) {
    if constexpr (FORM == kWindow) return w;
    else if constexpr (FORM == kv_fp8_e4m3) return e4m3x2_to_f16x2(__byte_perm(w, 0u, j | ((j + 2u) << 4)));
    else {
        constexpr uint32_t bits = Form<FORM>::bits, mask = ((1u << bits) - 1u) * 0x00010001u;
        return sub_f16x2(and_or(w >> (j * bits), mask, kMagic), kMagic);
    }
}

// Channel j of the words `a` and `b` of two tokens' rows, as a pair (token a's value low); `field` is
// the lane's field_at(bits, (j % per_byte) * bits) for codes of 4 bits or fewer.
template <int FORM>
__device__ __forceinline__ uint32_t column_pair(uint32_t a, uint32_t b, uint32_t j, const Field& field) {
    if constexpr (FORM == kWindow) return __byte_perm(a, b, j == 0 ? 0x5410u : 0x7632u);
    else if constexpr (FORM == kv_fp8_e4m3) return e4m3x2_to_f16x2(__byte_perm(a, b, j | ((4u + j) << 4)));
    else {
        constexpr uint32_t bits = Form<FORM>::bits, per_byte = 8u / bits;
        const uint32_t byte = j / per_byte;
        const uint32_t both = __byte_perm(a, b, byte | ((4u + byte) << 8));  // the two bytes at bits 0 and 16
        if constexpr (bits <= 4) return decode_field(both, field);
        else return sub_f16x2(and_or(both, ((1u << bits) - 1u) * 0x00010001u, kMagic), kMagic);
    }
}

template <int N>
__device__ __forceinline__ void copy_async(uint32_t to, const void* from, bool take) {
    const uint32_t size = take ? N : 0u;  // 0: the destination is zero-filled and nothing is read
    if constexpr (N == 16) asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(to), "l"(from), "r"(size) : "memory");
    else asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;" ::"r"(to), "l"(from), "n"(N), "r"(size) : "memory");
}
__device__ __forceinline__ void commit_copies() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wait_copies() {
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}
__device__ __forceinline__ uint32_t shared_address(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }

// What a warp attends next: a chunk of 16 tokens (its first token `chunk` in the block, those of lo..hi-1
// taken) of the block at table index `index`.
struct Cursor {
    const uint8_t* block;  // nullptr: the warp's blocks are done
    uint64_t index;
    uint32_t lo, hi, chunk;
    bool quantized;
    bool fresh;  // the block's first chunk: its K parameters come with it
};

struct Walk {
    const uint64_t* table;
    uint64_t first, last, end;  // the sequence's tokens, the end of the split's blocks
    uint32_t per_block;

    __device__ void open(Cursor& c, uint64_t index) const {
        c.block = nullptr;
        if (index >= end) return;
        const uint64_t entry = table[index];
        c.block = reinterpret_cast<const uint8_t*>(entry & ~uint64_t{1});
        c.index = index;
        c.quantized = (entry & 1u) != 0;
        const uint64_t base = index * per_block;
        c.lo = first > base ? static_cast<uint32_t>(first - base) : 0u;
        const uint64_t remaining = last - base;
        c.hi = remaining < per_block ? static_cast<uint32_t>(remaining) : per_block;
        c.chunk = c.lo / kChunk * kChunk;
        c.fresh = true;
    }
    __device__ void advance(Cursor& c) const {
        if (c.chunk + kChunk < c.hi) {
            c.chunk += kChunk;
            c.fresh = false;
        } else {
            open(c, c.index + kWarps);
        }
    }
};

// Where the thread block's slice (layer, head) lies in every block, in bytes from the block's start, and
// how a warp's lanes share the copies of a quantized chunk: computed once.
struct Geometry {
    uint32_t window_k, window_v, window_row;  // window form
    uint32_t k, v, row;                       // quantized codes
    uint32_t k_params, v_params;              // quantized parameters ([channel], [token][group])
    uint32_t groups, stride;                  // V groups; staged rows' stride in words
    uint32_t copy_bytes;                      // granule of the row copies (16, 8 or 4)
    uint32_t copy_row, copy_step, copy_part;  // this lane's first row, row step and part when its lanes tile rows
    bool lanes_tile_rows;                     // kLanes a multiple of the granules a row
};

__device__ Geometry geometry_of(const KvLayout& l, uint32_t layer, uint32_t head, uint32_t lane) {
    const uint32_t slice = layer * l.kv_heads + head;
    const uint32_t first = slice * l.tokens_per_block * l.head_dim;  // the slice's first element (blocks < 512 MiB)
    const uint32_t bits = kv_code_bits(l.format);
    Geometry g;
    g.window_k = first * 2;
    g.window_v = static_cast<uint32_t>((kv_block_elements(l) + first) * 2);
    g.window_row = l.head_dim * 2;
    g.k = static_cast<uint32_t>(kv_k_codes_offset(l)) + first * bits / 8;
    g.v = static_cast<uint32_t>(kv_v_codes_offset(l)) + first * bits / 8;
    g.row = l.head_dim * bits / 8;
    g.groups = kv_v_groups(l);
    g.k_params = slice * l.head_dim * 8;
    g.v_params = static_cast<uint32_t>(kv_k_param_count(l) * 8) + slice * l.tokens_per_block * g.groups * 8;
    g.stride = grey_kvk_mma_row_stride(g.row / 4);
    const uint32_t align = g.k | g.v | g.row;  // blocks themselves are at least 16-byte aligned (checked per block)
    g.copy_bytes = align % 16 == 0 ? 16u : align % 8 == 0 ? 8u : 4u;
    const uint32_t per_row = g.row / g.copy_bytes;
    g.lanes_tile_rows = kLanes % per_row == 0;
    g.copy_part = lane % per_row;
    g.copy_row = lane / per_row;
    g.copy_step = kLanes / per_row;
    return g;
}

// The shared memory of a staged chunk: K rows, V rows (each `stride` words apart), V parameters
// ([token][group]), the block's K parameters ([channel]).
struct Stage {
    uint8_t* base;
    uint32_t stride;  // words
    __device__ uint32_t* k_rows() const { return reinterpret_cast<uint32_t*>(base); }
    __device__ uint32_t* v_rows() const { return k_rows() + kChunk * stride; }
    __device__ KvGroupParams* v_params() const { return reinterpret_cast<KvGroupParams*>(v_rows() + kChunk * stride); }
    __device__ KvGroupParams* k_params(uint32_t groups) const { return v_params() + kChunk * groups; }
};

template <int N>
__device__ __forceinline__ void stage_rows(const Geometry& geo, const uint8_t* k, const uint8_t* v, const Cursor& c, const Stage& st,
                                           uint32_t lane) {
    auto copy = [&](uint32_t row, uint32_t part) {
        const uint32_t half = row / kChunk, r = row % kChunk, token = c.chunk + r;
        const bool take = token >= c.lo && token < c.hi;
        const uint8_t* from = (half == 0 ? k : v) + (take ? token * geo.row + part * N : 0);
        uint32_t* to = (half == 0 ? st.k_rows() : st.v_rows()) + r * st.stride;
        copy_async<N>(shared_address(reinterpret_cast<uint8_t*>(to) + part * N), from, take);
    };
    if (geo.lanes_tile_rows) {
        // A lane copies the same part of K's and V's row r: one offset serves both.
        const uint32_t to = shared_address(st.k_rows()) + geo.copy_part * N, v_to = kChunk * st.stride * 4;
        for (uint32_t r = geo.copy_row; r < kChunk; r += geo.copy_step) {
            const uint32_t token = c.chunk + r;
            const bool take = token >= c.lo && token < c.hi;
            const uint32_t from = take ? token * geo.row + geo.copy_part * N : 0u;
            copy_async<N>(to + r * st.stride * 4, k + from, take);
            copy_async<N>(to + r * st.stride * 4 + v_to, v + from, take);
        }
    } else {
        const uint32_t per_row = geo.row / N;
        for (uint32_t i = lane; i < 2 * kChunk * per_row; i += kLanes) copy(i / per_row, i % per_row);
    }
}

// A quantized chunk's codes and parameters into `st` (tokens outside lo..hi-1 zero-filled, never read).
__device__ __forceinline__ void stage_chunk(const KvLayout& l, const Geometry& geo, const Cursor& c, const Stage& st, uint32_t lane) {
    const uint8_t* k = c.block + geo.k;
    const uint8_t* v = c.block + geo.v;
    if (geo.copy_bytes == 16 && reinterpret_cast<uintptr_t>(c.block) % 16 == 0) stage_rows<16>(geo, k, v, c, st, lane);
    else if (geo.copy_bytes >= 8 && reinterpret_cast<uintptr_t>(c.block) % 8 == 0) stage_rows<8>(geo, k, v, c, st, lane);
    else stage_rows<4>(geo, k, v, c, st, lane);
    // The chunk's V parameters are one run ([token][group]): entry i is token chunk + i / groups, taken
    // when it lies in [lo, hi), that is when chunk * groups + i lies in [lo * groups, hi * groups).
    const auto* v_params = reinterpret_cast<const KvGroupParams*>(c.block + geo.v_params) + c.chunk * geo.groups;
    // At most 4 groups (head_dim <= 128, groups of 32 or more) and 128 channels: two copies a lane for
    // the V entries and four for the K ones, written out so that no loop is compiled for other counts.
    const uint32_t taken_from = c.lo > c.chunk ? (c.lo - c.chunk) * geo.groups : 0u, taken_to = (c.hi - c.chunk) * geo.groups;
    static_assert(kChunk * 4 <= 2 * kLanes && GREY_KVK_MMA_MAX_HEAD_DIM <= 4 * kLanes, "staging copies a lane");
#pragma unroll
    for (uint32_t n = 0; n < 2; ++n) {
        const uint32_t i = lane + n * kLanes;
        const bool take = i >= taken_from && i < taken_to;
        if (i < kChunk * geo.groups) copy_async<8>(shared_address(st.v_params() + i), v_params + (take ? i : 0u), take);
    }
    if (c.fresh) {
        const auto* k_params = reinterpret_cast<const KvGroupParams*>(c.block + geo.k_params);
#pragma unroll
        for (uint32_t n = 0; n < 4; ++n) {
            const uint32_t i = lane + n * kLanes;
            if (i < l.head_dim) copy_async<8>(shared_address(st.k_params(geo.groups) + i), k_params + i, true);
        }
    }
}

// 2^e for e in -126 .. 127 (a normal float built from its exponent); 0 below.
__device__ __forceinline__ float power_of_two(int e) { return e < -126 ? 0.0f : __int_as_float((127 + min(e, 127)) << 23); }

// The channels of a warp's accumulator rows: one order for every chunk of a launch. In the span order
// (`codes` > 0: the codes a 16-bit value of the layout's format holds, 2, 4 or 8), the one in which
// ldmatrix.trans hands a lane two tokens' V codes in one register (value_spans), m-tile mt takes span
// s = mt / (codes / 2) of every row (16 bytes: 8 codes channels), and its rows g and g + 8 are codes 2p
// and 2p + 1 (p = mt % (codes / 2)) of the span's 16-bit value g: channel 8 codes s + codes g + 2p and
// the one after. In the linear order (codes 0) they are channels 16 mt + g and 16 mt + g + 8; 2-bit
// codes in V groups of 32 channels keep it, since a span of 64 channels would put two groups in one
// m-tile, and an m-tile has one B.
struct ChannelOrder {
    uint32_t codes;
    __device__ uint32_t low(int mt, uint32_t g) const {
        if (codes == 0) return 16u * mt + g;
        const uint32_t half = codes / 2u;
        return 8u * codes * (mt / half) + codes * g + 2u * (mt % half);
    }
    __device__ uint32_t high(int mt, uint32_t g) const { return low(mt, g) + (codes == 0 ? 8u : 1u); }
};
__device__ __forceinline__ ChannelOrder channel_order(const KvLayout& l) {
    const uint32_t bits = kv_code_bits(l.format);
    return ChannelOrder{l.format == kv_int2 && l.group_size == 32 ? 0u : 16u / bits};
}

// A warp's running state. Lane (g, t) = (lane / 4, lane % 4), as the mma fragments name them: its score
// and accumulator columns are 2t and 2t+1 (query heads (2t) % GC and (2t+1) % GC, "a" and "b"; columns
// GC .. 2GC-1 hold the rounding errors of columns 0 .. GC-1).
template <int KS, int GC>
struct State {
    static constexpr int kGroups = static_cast<int>(grey_kvk_mma_groups(KS));  // V groups of 32 channels or more, or one
    float acc[KS][4];          // O^T tiles: channels 16 mt + g (+8), columns 2t, 2t+1
    uint2* q;                  // the block's B fragments of Q' (column g), [KS][lanes] in the warp's shared memory
    float max[2];              // heads a and b: the running maximum score (base 2)
    float sum[2];              // this lane's part (tokens g, g + 8) of the sum of weights
    float minimum[2][kGroups]; // this lane's part of sum p * V minimum, per group
    int exponent;              // the warp's V scales are below 2^(exponent + 1)
    float score_scale[2], score_bias[2];  // the block's, heads a and b: score = raw * score_scale + score_bias
};

// Lane (g, t)'s role in a tile: 1 the rounded query / weight of head g % GC, 2 its rounding error, 0 none.
template <int GC>
__device__ __forceinline__ uint32_t role(uint32_t g) { return g < GC ? 1u : g < 2 * GC ? 2u : 0u; }

// A block's Q' fragments: for each k-step, lane (g, t)'s channels of query head g % GC (pair
// 8 ks + 2t + r of the row gives channels c0 and c0 + pairs), times the K scale of each (a quantized
// block), times a power of two that puts the largest into [2^14, 2^15); the bias sums q * minimum.
// Lanes g and g + GC take the same values (the rounded ones, and their rounding errors), so each of the
// two computes half the k-steps, both parts of them, and they swap the part the other keeps: half the
// loads and arithmetic a block, a large part of a block's cost when blocks are short.
template <int FORM, bool BF16, int KS, int GC>
__device__ __forceinline__ void load_queries(State<KS, GC>& st, const float* q_shared, const KvGroupParams* k_params, uint32_t dim,
                                             float scale_log2, uint32_t lane) {
    using F = Form<FORM>;
    constexpr int kHalf = KS / 2;
    constexpr uint32_t kPartner = 4u * GC;  // lane g + GC (or g - GC): the other part of the same head
    const uint32_t g = lane / 4, t = lane % 4, h = g % GC;
    const bool rounded = (g / GC) % 2 == 0;  // this lane keeps the rounded values (else the rounding errors)
    const int own = rounded ? 0 : kHalf;      // the k-steps this lane computes: own .. own + kHalf - 1
    float value[kHalf][4];
    float largest = 0.0f, bias = 0.0f;
    // Pair 8 ks + 2t + r gives channels 16 ks + first[r] and that + pairs (8 ks is whole words): two
    // addresses a lane, the rest constants.
    const float* q_at[2];
    const KvGroupParams* k_at[2] = {};
#pragma unroll
    for (uint32_t r = 0; r < 2; ++r) {
        const uint32_t first = 16u * own + (2 * t + r) / F::pairs * F::per_word + (2 * t + r) % F::pairs;
        q_at[r] = q_shared + first * GC + h;
        if constexpr (FORM != kWindow) k_at[r] = k_params + first;
    }
#pragma unroll
    for (int j = 0; j < kHalf; ++j) {
        if (16 * (own + j) >= static_cast<int>(dim)) {  // channels past head_dim: not there to read
#pragma unroll
            for (int i = 0; i < 4; ++i) value[j][i] = 0.0f;
            continue;
        }
#pragma unroll
        for (uint32_t r = 0; r < 2; ++r)
#pragma unroll
            for (uint32_t i = 0; i < 2; ++i) {
                const uint32_t c = 16 * j + i * F::pairs;
                float x = q_at[r][c * GC];
                if constexpr (FORM != kWindow) {
                    const KvGroupParams p = k_at[r][c];
                    bias = fmaf(x, p.minimum, bias);
                    x = x * p.scale;
                }
                value[j][2 * r + i] = x;
                largest = fmaxf(largest, fabsf(x));
            }
    }
    // The head's whole row: lanes t of both halves.
    for (uint32_t offset = 1; offset < 4; offset *= 2) {
        largest = fmaxf(largest, __shfl_xor_sync(kFull, largest, offset));
        bias += __shfl_xor_sync(kFull, bias, offset);
    }
    largest = fmaxf(largest, __shfl_xor_sync(kFull, largest, kPartner));
    bias += __shfl_xor_sync(kFull, bias, kPartner);
    const int shift = largest > 0.0f ? min(max(14 - ilogbf(largest), -126), 126) : 0;
    const float up = power_of_two(shift);
    const bool empty = role<GC>(g) == 0;
#pragma unroll
    for (int j = 0; j < kHalf; ++j) {
        uint32_t keep[2], give[2];
#pragma unroll
        for (int w = 0; w < 2; ++w) {
            const float x = value[j][2 * w] * up, y = value[j][2 * w + 1] * up;
            const uint32_t hi = pack<BF16>(x, y);
            const float2 r = unpack<BF16>(hi);
            const uint32_t lo = pack<BF16>(x - r.x, y - r.y);
            keep[w] = rounded ? hi : lo;
            give[w] = rounded ? lo : hi;
        }
        // Lane g sends the errors of its k-steps and receives the rounded values of its partner's; the
        // partner the reverse.
        const uint2 mine = make_uint2(keep[0], keep[1]);
        const uint2 theirs = make_uint2(__shfl_xor_sync(kFull, give[0], kPartner), __shfl_xor_sync(kFull, give[1], kPartner));
        st.q[(own + j) * kLanes + lane] = empty ? make_uint2(0u, 0u) : mine;
        st.q[(kHalf - own + j) * kLanes + lane] = empty ? make_uint2(0u, 0u) : theirs;
    }
    // Lanes 4h (g = h) hold head h's normalization; this lane's score columns are heads a and b.
    const float score_scale = scale_log2 * power_of_two(-shift), score_bias = bias * scale_log2;
#pragma unroll
    for (uint32_t k = 0; k < 2; ++k) {
        const int from = static_cast<int>(4 * ((2 * t + k) % GC));
        st.score_scale[k] = __shfl_sync(kFull, score_scale, from);
        st.score_bias[k] = __shfl_sync(kFull, score_bias, from);
    }
}

// The value products of a chunk, O^T += V^T P'^T: m-tile mt is channels 16 mt .. 16 mt + 15, with the B
// of group mt >> SHIFT (group 0 for SHIFT < 0). This lane's A rows are channels 16 mt + g and + 8, its
// columns tokens 2t, 2t+1 (a0, a1) and 2t+8, 2t+9 (a2, a3); rows read in place only when valid.
template <int FORM, bool BF16, int SHIFT, int KS, int GC, int NB>
__device__ __forceinline__ void value_products(State<KS, GC>& st, const uint32_t (&b)[NB][2], const Cursor& c, const uint32_t* v_rows,
                                               uint32_t stride, uint32_t dim, uint32_t lane) {
    using F = Form<FORM>;
    constexpr bool in_place = FORM == kWindow;
    constexpr uint32_t per_word = F::per_word;
    const uint32_t g = lane / 4, t = lane % 4;
    const uint32_t tokens[4] = {2 * t, 2 * t + 1, 2 * t + 8, 2 * t + 9};
    bool valid[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) valid[i] = c.chunk + tokens[i] >= c.lo && c.chunk + tokens[i] < c.hi;
    // Channel 16 mt + g is in word lane_low at j_low, + 8 in lane_high at j_high; both at the same place
    // in their byte (8 is a multiple of the codes a byte holds).
    const uint32_t lane_low = per_word >= 8 ? 0u : g / per_word, lane_high = per_word >= 16 ? 0u : (g + 8) / per_word;
    const uint32_t j_low = g % per_word, j_high = (g + 8) % per_word;
    Field field{};
    if constexpr (F::bits <= 4) field = field_at(F::bits, j_low % (8u / F::bits) * F::bits);
    const uint32_t* rows[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) rows[i] = v_rows + tokens[i] * stride;
#pragma unroll
    for (int mt = 0; mt < KS; ++mt) {
        // Past head_dim a staged chunk gives its padding to accumulators that are never written out; a
        // window row read in place may end the block.
        if constexpr (in_place)
            if (16 * mt >= dim) break;
        constexpr int last = NB - 1;
        const int q = SHIFT < 0 ? 0 : min(mt >> (SHIFT < 0 ? 0 : SHIFT), last);
        const uint32_t base = 16 * mt / per_word;
        uint32_t lo[4], hi[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            lo[i] = hi[i] = 0u;
            if (!in_place || valid[i]) {
                if constexpr (per_word == 16) {
                    lo[i] = hi[i] = rows[i][base];
                } else if constexpr (per_word == 8) {
                    const uint2 w = *reinterpret_cast<const uint2*>(rows[i] + base);
                    lo[i] = w.x;
                    hi[i] = w.y;
                } else {
                    lo[i] = rows[i][base + lane_low];
                    hi[i] = rows[i][base + lane_high];
                }
            }
        }
        mma<BF16>(st.acc[mt], column_pair<FORM>(lo[0], lo[1], j_low, field), column_pair<FORM>(hi[0], hi[1], j_high, field),
                  column_pair<FORM>(lo[2], lo[3], j_low, field), column_pair<FORM>(hi[2], hi[3], j_high, field), b[q][0], b[q][1]);
    }
}

// Code j of both 16-bit halves of `w` as an fp16 pair (`down`: w >> 8, for codes of 4 bits or fewer
// that lie above fp16's mantissa, decoded from there).
template <int FORM>
__device__ __forceinline__ uint32_t code_pair(uint32_t w, uint32_t down, uint32_t j) {
    constexpr uint32_t bits = Form<FORM>::bits;
    if constexpr (bits <= 4) {
        if (j * bits + bits <= 10) return decode_field(w, field_at(bits, j * bits));
        return decode_field(down, field_at(bits, j * bits - 8));
    } else {
        return row_pair<FORM>(w, j);
    }
}

// The value products of a staged chunk in the span order (ChannelOrder), O^T += V^T P'^T with the B of
// group mt >> SHIFT. ldmatrix.trans gives lane (g, t) the 16-bit value g of one span of tokens 2t and 2t+1
// (a tile: eight tokens of one span) in one register, whose codes are then A registers (a channel, two
// tokens) by a mask and one fp16 operation each: no byte permutes, and two to four shared loads a chunk
// instead of 32. Tiles come four at a time (both halves of the chunk's tokens for two spans; two for an
// odd last span); spans past head_dim are not read.
template <int FORM, bool BF16, int SHIFT, int KS, int GC, int NB>
__device__ __forceinline__ void value_spans(State<KS, GC>& st, const uint32_t (&b)[NB][2], const uint32_t* v_rows, uint32_t stride,
                                            uint32_t dim, uint32_t lane) {
    constexpr int codes = 16 / static_cast<int>(Form<FORM>::bits);
    constexpr int per_span = codes / 2;        // m-tiles a span gives
    constexpr int kSpans = KS / per_span;      // spans the accumulators hold
    const int spans = static_cast<int>((dim * Form<FORM>::bits + 127u) / 128u);  // spans holding channels below head_dim
    // Lane l gives row l % 8 of tile l / 8: tokens 8 ((l / 8) % 2) + l % 8 of span l / 16 of the pair.
    const uint32_t row = 8u * ((lane / 8u) % 2u) + lane % 8u;
    const uint32_t at = shared_address(v_rows) + (row * stride + 4u * (lane / 16u)) * 4u;
#pragma unroll
    for (int pair = 0; pair < (kSpans + 1) / 2; ++pair) {
        if (2 * pair >= spans) break;
        uint32_t r[4] = {};
        if (2 * pair + 1 < kSpans && 2 * pair + 1 < spans) {
            load_transposed(r, at + 32u * pair);
        } else {
            uint32_t r2[2];
            load_transposed(r2, at + 32u * pair);
            r[0] = r2[0];
            r[1] = r2[1];
        }
#pragma unroll
        for (int k = 0; k < 2; ++k) {
            const int s = 2 * pair + k;
            if (s >= kSpans || s >= spans) break;
            const uint32_t low = r[2 * k], high = r[2 * k + 1];  // tokens 2t, 2t+1 and 2t+8, 2t+9
            const uint32_t low_down = low >> 8, high_down = high >> 8;
#pragma unroll
            for (int p = 0; p < per_span; ++p) {
                const int mt = s * per_span + p;
                const int q = SHIFT < 0 ? 0 : min(mt >> (SHIFT < 0 ? 0 : SHIFT), NB - 1);
                mma<BF16>(st.acc[mt], code_pair<FORM>(low, low_down, 2 * p), code_pair<FORM>(low, low_down, 2 * p + 1),
                          code_pair<FORM>(high, high_down, 2 * p), code_pair<FORM>(high, high_down, 2 * p + 1), b[q][0], b[q][1]);
            }
        }
    }
}

// A window-form chunk's value products (read in place, one B) in a span order: rows g and g + 8 of an
// m-tile are two adjacent channels, one word of each token's row. Window chunks are a few at a
// sequence's end, so the order is taken at run time.
template <bool BF16, int KS, int GC, int NB>
__device__ __forceinline__ void window_values(State<KS, GC>& st, const uint32_t (&b)[NB][2], const Cursor& c, const uint32_t* v_rows,
                                              uint32_t stride, uint32_t dim, ChannelOrder order, uint32_t lane) {
    const uint32_t g = lane / 4, t = lane % 4;
    const uint32_t tokens[4] = {2 * t, 2 * t + 1, 2 * t + 8, 2 * t + 9};
    bool valid[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) valid[i] = c.chunk + tokens[i] >= c.lo && c.chunk + tokens[i] < c.hi;
#pragma unroll
    for (int mt = 0; mt < KS; ++mt) {
        if (order.low(mt, 0) >= dim) break;  // the m-tiles' spans rise with mt
        const uint32_t channel = order.low(mt, g);  // even: row g + 8 is the next channel, in the same word
        uint32_t w[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) w[i] = valid[i] && channel < dim ? v_rows[tokens[i] * stride + channel / 2] : 0u;
        mma<BF16>(st.acc[mt], __byte_perm(w[0], w[1], 0x5410u), __byte_perm(w[0], w[1], 0x7632u), __byte_perm(w[2], w[3], 0x5410u),
                  __byte_perm(w[2], w[3], 0x7632u), b[0][0], b[0][1]);
    }
}

// One chunk: scores, the online softmax and the weighted values. K and V rows `stride` words apart
// (shared memory for a quantized chunk, the block itself for a window-form one); v_params [token][group]
// for a quantized chunk.
template <int FORM, bool BF16, int KS, int GC>
__device__ __forceinline__ void attend_chunk(State<KS, GC>& st, const Cursor& c, const uint32_t* k_rows, const uint32_t* v_rows,
                                             uint32_t stride, const KvGroupParams* v_params, uint32_t dim, uint32_t group_size,
                                             uint32_t groups, ChannelOrder order, uint32_t lane) {
    using F = Form<FORM>;
    constexpr int kGroups = State<KS, GC>::kGroups;
    constexpr bool in_place = FORM == kWindow;  // rows outside lo..hi-1 may be unwritten (or past the slice): not read
    const uint32_t g = lane / 4, t = lane % 4;

    // Scores as K Q'^T: A holds the chunk's tokens as rows (g and g + 8), B the query columns. Pair
    // 8 ks + 2t (+1) of a row is word 8 ks / pairs + lane_word, channel pair lane_pair (+1) of it.
    const uint32_t lane_word = 2 * t / F::pairs, lane_pair = 2 * t % F::pairs;
    // This lane's score rows, tokens g and g + 8: taken, and (read in place) read, only inside lo..hi-1.
    const bool valid_token[2] = {c.chunk + g >= c.lo && c.chunk + g < c.hi, c.chunk + 8 + g >= c.lo && c.chunk + 8 + g < c.hi};
    const bool row_ok[2] = {!in_place || valid_token[0], !in_place || valid_token[1]};
    const uint32_t* row_low = k_rows + g * stride + lane_word;
    const uint32_t* row_high = row_low + 8 * stride;
    // Two accumulators, even and odd k-steps: two chains of dependent products instead of one as long.
    float d[4] = {}, d_odd[4] = {};
#pragma unroll
    for (int ks = 0; ks < KS; ++ks) {
        // Past head_dim a staged row has padding or the next row, read as codes and multiplied by the
        // zeros load_queries put there (an fp8 code may be a NaN: zeroed); a window row read in place
        // may end the block, so its k-steps stop there. No branch in the quantized forms lets their
        // loads be issued ahead.
        if constexpr (FORM == kWindow)
            if (16 * ks >= dim) break;
        uint32_t a0, a1, a2, a3;
        if constexpr (F::pairs == 1) {
            uint2 lo = make_uint2(0u, 0u), hi = make_uint2(0u, 0u);
            if (row_ok[0]) lo = *reinterpret_cast<const uint2*>(row_low + 8 * ks);
            if (row_ok[1]) hi = *reinterpret_cast<const uint2*>(row_high + 8 * ks);
            a0 = lo.x;
            a2 = lo.y;
            a1 = hi.x;
            a3 = hi.y;
        } else if constexpr (F::bits <= 4) {
            // Pairs lane_pair and lane_pair + 1: one shift brings both down, the second is read in place.
            constexpr Field first = field_at(F::bits, 0);
            const Field second = field_at(F::bits, F::bits);
            const uint32_t lo = row_low[8 * ks / F::pairs] >> (lane_pair * F::bits), hi = row_high[8 * ks / F::pairs] >> (lane_pair * F::bits);
            a0 = decode_field(lo, first);
            a2 = decode_field(lo, second);
            a1 = decode_field(hi, first);
            a3 = decode_field(hi, second);
        } else {
            const uint32_t lo = row_low[8 * ks / F::pairs], hi = row_high[8 * ks / F::pairs];
            a0 = row_pair<FORM>(lo, lane_pair);
            a2 = row_pair<FORM>(lo, lane_pair + 1);
            a1 = row_pair<FORM>(hi, lane_pair);
            a3 = row_pair<FORM>(hi, lane_pair + 1);
        }
        if constexpr (FORM == kv_fp8_e4m3) {
            const bool in = 16 * ks < static_cast<int>(dim);
            a0 = in ? a0 : 0u;
            a1 = in ? a1 : 0u;
            a2 = in ? a2 : 0u;
            a3 = in ? a3 : 0u;
        }
        const uint2 q = st.q[ks * kLanes + lane];
        mma<BF16>(ks % 2 == 0 ? d : d_odd, a0, a1, a2, a3, q.x, q.y);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) d[i] += d_odd[i];
    // d: (token g, column 2t), (g, 2t+1), (g + 8, 2t), (g + 8, 2t+1). A column's rounding error sits GC
    // columns on: lane t ^ (GC / 2), or the next column of the same lane for GC 1.
    float score[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        if constexpr (GC == 1) score[i] = d[i & 2] + d[(i & 2) + 1];
        else score[i] = d[i] + __shfl_xor_sync(kFull, d[i], GC / 2);
    }
    float p[4], rescale[2];
#pragma unroll
    for (int k = 0; k < 2; ++k) {  // head a (columns 2t), head b (2t+1)
        float low = valid_token[0] ? fmaf(score[k], st.score_scale[k], st.score_bias[k]) : -INFINITY;
        float high = valid_token[1] ? fmaf(score[2 + k], st.score_scale[k], st.score_bias[k]) : -INFINITY;
        float top = fmaxf(low, high);
        top = fmaxf(top, __shfl_xor_sync(kFull, top, 4));
        top = fmaxf(top, __shfl_xor_sync(kFull, top, 8));
        top = fmaxf(top, __shfl_xor_sync(kFull, top, 16));
        const float new_max = fmaxf(st.max[k], top);
        rescale[k] = st.max[k] == -INFINITY ? 0.0f : exp2_flush(st.max[k] - new_max);
        st.max[k] = new_max;
        p[k] = valid_token[0] ? exp2_flush(low - new_max) : 0.0f;
        p[2 + k] = valid_token[1] ? exp2_flush(high - new_max) : 0.0f;
        st.sum[k] = fmaf(st.sum[k], rescale[k], p[k] + p[2 + k]);
    }

    // The warp's V scale exponent (this lane's tokens g and g + 8), then per V group the sums of
    // p * minimum and B of the value products: p * scale / 2^exponent (rounded, or its rounding error),
    // as the score tile's layout (token rows, query columns) moved into B's (query rows) by movmatrix.
    const uint32_t v_token[2] = {g, g + 8};
    int top_exponent = 0;
    if constexpr (FORM != kWindow) {
        top_exponent = -127;
#pragma unroll
        for (int q = 0; q < kGroups; ++q) {
            if (q >= static_cast<int>(groups)) break;
#pragma unroll
            for (int i = 0; i < 2; ++i)
                top_exponent = max(top_exponent, static_cast<int>((__float_as_uint(v_params[v_token[i] * groups + q].scale) >> 23) & 0xffu) - 127);
        }
        top_exponent = max(top_exponent, __shfl_xor_sync(kFull, top_exponent, 4));
        top_exponent = max(top_exponent, __shfl_xor_sync(kFull, top_exponent, 8));
        top_exponent = max(top_exponent, __shfl_xor_sync(kFull, top_exponent, 16));
    }
    const int new_exponent = max(st.exponent, top_exponent);
    const float down = power_of_two(st.exponent - new_exponent);
    st.exponent = new_exponent;
    const float unit = power_of_two(-new_exponent);
    // The V minimum sums follow the softmax rescale (a window-form chunk adds nothing to them).
#pragma unroll
    for (int q = 0; q < kGroups; ++q) {
        if (q >= static_cast<int>(groups)) break;
#pragma unroll
        for (int k = 0; k < 2; ++k) st.minimum[k][q] *= rescale[k];
    }
    // A window-form chunk has no V scales: one B serves every group.
    const int b_groups = FORM == kWindow ? 1 : static_cast<int>(groups);
    const uint32_t part = role<GC>(2 * t);  // columns 2t and 2t+1 share a role but for GC 1 (rounded, error)
    uint32_t b[kGroups][2];
#pragma unroll
    for (int q = 0; q < kGroups; ++q) {
        b[q][0] = b[q][1] = 0u;
        if (q >= b_groups) break;
        float w[4];  // (token g, column 2t), (g, 2t+1), (g + 8, 2t), (g + 8, 2t+1)
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            float v_scale = 1.0f;
            if constexpr (FORM != kWindow) {
                const KvGroupParams vp = v_params[v_token[i] * groups + q];
                v_scale = vp.scale;
#pragma unroll
                for (int k = 0; k < 2; ++k) st.minimum[k][q] = fmaf(p[2 * i + k], vp.minimum, st.minimum[k][q]);
            }
            w[2 * i] = p[2 * i] * (v_scale * unit);
            w[2 * i + 1] = p[2 * i + 1] * (v_scale * unit);
        }
        uint32_t tile[2];
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            if constexpr (GC == 1) {
                // Column 0 the rounded weight, column 1 its rounding error; other lanes' columns are empty.
                const float rounded = unpack<BF16>(pack<BF16>(w[2 * i], w[2 * i])).x;
                tile[i] = t == 0 ? pack<BF16>(rounded, w[2 * i] - rounded) : 0u;
            } else {
                tile[i] = split<BF16>(w[2 * i], w[2 * i + 1], part);
            }
        }
        b[q][0] = transpose(tile[0]);
        b[q][1] = transpose(tile[1]);
    }
    const float r0 = rescale[0] * down, r1 = rescale[1] * down;
    if (__any_sync(kFull, r0 != 1.0f || r1 != 1.0f)) {
#pragma unroll
        for (int mt = 0; mt < KS; ++mt) {
            st.acc[mt][0] *= r0;
            st.acc[mt][1] *= r1;
            st.acc[mt][2] *= r0;
            st.acc[mt][3] *= r1;
        }
    }
    // m-tile mt takes group mt >> shift (32-channel groups: 1, 64: 2), or group 0 throughout when the
    // layout has one group (or the chunk has no V scales): resolved at compile time, so that each
    // m-tile's B is a register, not a choice made per tile. The linear order (2-bit codes in groups of
    // 32) is the only one value_products keeps for quantized chunks.
    if constexpr (FORM == kWindow) {
        if (order.codes == 0) value_products<FORM, BF16, -1>(st, b, c, v_rows, stride, dim, lane);
        else window_values<BF16>(st, b, c, v_rows, stride, dim, order, lane);
    } else if constexpr (FORM == kv_int2) {
        if (order.codes == 0) {
            if (b_groups == 1) value_products<FORM, BF16, -1>(st, b, c, v_rows, stride, dim, lane);
            else value_products<FORM, BF16, 1>(st, b, c, v_rows, stride, dim, lane);
        } else if (b_groups == 1) {
            value_spans<FORM, BF16, -1>(st, b, v_rows, stride, dim, lane);
        } else {
            value_spans<FORM, BF16, 2>(st, b, v_rows, stride, dim, lane);
        }
    } else {
        if (b_groups == 1) value_spans<FORM, BF16, -1>(st, b, v_rows, stride, dim, lane);
        else if (group_size == 32) value_spans<FORM, BF16, 1>(st, b, v_rows, stride, dim, lane);
        else value_spans<FORM, BF16, 2>(st, b, v_rows, stride, dim, lane);
    }
}

template <int FORM, bool BF16, int KS, int GC>
__device__ __forceinline__ void attend_item(State<KS, GC>& st, const KvLayout& l, const Geometry& geo, const Cursor& c, const Stage& staged,
                                            const float* q_shared, float scale_log2, ChannelOrder order, uint32_t lane) {
    const uint32_t dim = l.head_dim;
    if constexpr (FORM == kWindow) {
        if (c.fresh) load_queries<FORM, BF16>(st, q_shared, nullptr, dim, scale_log2, lane);
        const uint32_t words = geo.window_row / 4;
        const auto* k = reinterpret_cast<const uint32_t*>(c.block + geo.window_k) + c.chunk * words;
        const auto* v = reinterpret_cast<const uint32_t*>(c.block + geo.window_v) + c.chunk * words;
        attend_chunk<FORM, BF16>(st, c, k, v, words, nullptr, dim, l.group_size, geo.groups, order, lane);
    } else {
        if (c.fresh) load_queries<FORM, BF16>(st, q_shared, staged.k_params(geo.groups), dim, scale_log2, lane);
        attend_chunk<FORM, BF16>(st, c, staged.k_rows(), staged.v_rows(), staged.stride, staged.v_params(), dim, l.group_size, geo.groups,
                                 order, lane);
    }
}

template <int KS, int GC>
__device__ void attend(const grey_kvk_attend_args& a) {
    const KvLayout& l = a.layout;
    const uint32_t dim = l.head_dim, per_block = l.tokens_per_block;
    const uint32_t warp = threadIdx.x / kLanes, lane = threadIdx.x % kLanes;
    const AttendShare share = attend_share<GC>(a);
    const uint32_t sequence = share.sequence, head = share.head, g_count = share.g_count, q_first = share.q_first;
    constexpr int kGroups = State<KS, GC>::kGroups;

    // Shared memory as kv_args.h lays it out (the launch plan sizes it from the same function).
    extern __shared__ __align__(16) uint8_t shared_bytes[];
    const grey_kvk_mma_shared layout = grey_kvk_mma_shared_layout(&l, GC, a.stages);
    float* q_shared = reinterpret_cast<float*>(shared_bytes);
    uint8_t* warp_area = shared_bytes + layout.warp_area;
    uint8_t* mine = warp_area + warp * layout.warp_bytes;
    float* stats = reinterpret_cast<float*>(shared_bytes + layout.stats);  // [warp][GC][kStats]
    constexpr uint32_t kStats = 3 + kGroups;

    const auto* queries = reinterpret_cast<const float*>(a.queries);
    for (uint32_t i = threadIdx.x; i < dim * GC; i += blockDim.x) {
        const uint32_t c = i / GC, g = i % GC;
        q_shared[i] = g < g_count ? queries[(uint64_t{sequence} * a.query_heads + q_first + g) * dim + c] : 0.0f;
    }
    __syncthreads();
    if (l.hadamard_k != 0) rotate_queries<GC>(q_shared, dim);

    const uint64_t begin = share.begin;
    const Walk walk{reinterpret_cast<const uint64_t*>(a.blocks) + share.seq.table_offset, share.seq.first, share.seq.last, share.end, per_block};
    const Geometry geo = geometry_of(l, a.layer, head, lane);
    const ChannelOrder order = channel_order(l);

    State<KS, GC> st;
    st.q = reinterpret_cast<uint2*>(mine + layout.fragments);
#pragma unroll
    for (int mt = 0; mt < KS; ++mt)
#pragma unroll
        for (int i = 0; i < 4; ++i) st.acc[mt][i] = 0.0f;
#pragma unroll
    for (int k = 0; k < 2; ++k) {
#pragma unroll
        for (int q = 0; q < kGroups; ++q) st.minimum[k][q] = 0.0f;
        st.max[k] = -INFINITY;
        st.sum[k] = 0.0f;
        st.score_scale[k] = st.score_bias[k] = 0.0f;
    }
    st.exponent = -127;

    // The staging buffers in turn: chunk n goes to buffer n % a.stages (2 or 3), and is waited for when
    // the stages - 1 chunks after it have been issued.
    const uint32_t stages = a.stages;
    auto stage_at = [&](uint32_t buffer) { return Stage{mine + buffer * a.stage_bytes, geo.stride}; };
    auto next_buffer = [&](uint32_t buffer) { return buffer + 1 == stages ? 0u : buffer + 1; };
    Cursor ahead, now;
    walk.open(ahead, begin + warp);
    now = ahead;
    uint32_t issued = 0, done = 0;  // buffers
    auto issue = [&] {
        if (ahead.block != nullptr) {
            if (ahead.quantized) stage_chunk(l, geo, ahead, stage_at(issued), lane);
            walk.advance(ahead);
        }
        commit_copies();
        issued = next_buffer(issued);
    };
    for (uint32_t i = 0; i + 1 < stages; ++i) issue();
    while (now.block != nullptr) {
        issue();
        if (stages == GREY_KVK_MMA_STAGES) wait_copies<GREY_KVK_MMA_STAGES - 1>();
        else wait_copies<GREY_KVK_MMA_FEWER_STAGES - 1>();
        __syncwarp();
        const Stage staged = stage_at(done);
        if (!now.quantized) {
            if (l.window_bf16 != 0) attend_item<kWindow, true>(st, l, geo, now, staged, q_shared, a.scale_log2, order, lane);
            else attend_item<kWindow, false>(st, l, geo, now, staged, q_shared, a.scale_log2, order, lane);
        } else {
            switch (l.format) {
                case kv_int8: attend_item<kv_int8, false>(st, l, geo, now, staged, q_shared, a.scale_log2, order, lane); break;
                case kv_int4: attend_item<kv_int4, false>(st, l, geo, now, staged, q_shared, a.scale_log2, order, lane); break;
                case kv_int2: attend_item<kv_int2, false>(st, l, geo, now, staged, q_shared, a.scale_log2, order, lane); break;
                default: attend_item<kv_fp8_e4m3, false>(st, l, geo, now, staged, q_shared, a.scale_log2, order, lane); break;
            }
        }
        __syncwarp();
        walk.advance(now);
        done = next_buffer(done);
    }
    wait_copies<0>();
    __syncwarp();

    // This warp's results: the accumulators as [column][channel], then per query head its maximum, sum,
    // V scale and V minimum sums.
    const uint32_t g = lane / 4, t = lane % 4;
    auto* columns = reinterpret_cast<float*>(mine);
#pragma unroll
    for (int mt = 0; mt < KS; ++mt) {
        const uint32_t low = order.low(mt, g), high = order.high(mt, g);
        if (low < dim) {
            columns[(2 * t) * dim + low] = st.acc[mt][0];
            columns[(2 * t + 1) * dim + low] = st.acc[mt][1];
        }
        if (high < dim) {
            columns[(2 * t) * dim + high] = st.acc[mt][2];
            columns[(2 * t + 1) * dim + high] = st.acc[mt][3];
        }
    }
    // Sums over the lanes of a column (g), then lanes g = 0 write heads a and b: lanes t with 2t < GC
    // (the rounded columns), or lane 0 alone for GC 1.
#pragma unroll
    for (int k = 0; k < 2; ++k)
        for (int offset = 4; offset < 32; offset *= 2) {
            st.sum[k] += __shfl_xor_sync(kFull, st.sum[k], offset);
#pragma unroll
            for (int q = 0; q < kGroups; ++q) st.minimum[k][q] += __shfl_xor_sync(kFull, st.minimum[k][q], offset);
        }
    if (g == 0 && 2 * t < GC + (GC == 1 ? 1u : 0u)) {
#pragma unroll
        for (int k = 0; k < (GC == 1 ? 1 : 2); ++k) {
            float* out = stats + (warp * GC + 2 * t + k) * kStats;
            out[0] = st.max[k];
            out[1] = st.sum[k];
            out[2] = ldexpf(1.0f, st.exponent);
#pragma unroll
            for (int q = 0; q < kGroups; ++q) out[3 + q] = st.minimum[k][q];
        }
    }
    __syncthreads();
    auto* partials = reinterpret_cast<float*>(a.partials);
    for (uint32_t i = threadIdx.x; i < dim * GC; i += blockDim.x) {
        const uint32_t c = i % dim, h = i / dim;
        if (h >= g_count) continue;
        float top = -INFINITY;
        for (uint32_t w = 0; w < kWarps; ++w) top = fmaxf(top, stats[(w * GC + h) * kStats]);
        float total = 0.0f, value = 0.0f;
        if (top != -INFINITY) {
            for (uint32_t w = 0; w < kWarps; ++w) {
                const float* ws = stats + (w * GC + h) * kStats;
                if (ws[0] == -INFINITY) continue;
                const float weight = exp2f(ws[0] - top);
                const auto* wc = reinterpret_cast<const float*>(warp_area + w * layout.warp_bytes);
                const float v = fmaf(wc[h * dim + c] + wc[(GC + h) * dim + c], ws[2], ws[3 + c / l.group_size]);
                total = fmaf(ws[1], weight, total);
                value = fmaf(v, weight, value);
            }
        }
        float* out = partials + ((uint64_t{sequence} * a.query_heads + q_first + h) * a.splits + blockIdx.x) * (dim + 2);
        out[c] = value;
        if (c == 0) {
            out[dim] = top;
            out[dim + 1] = total;
        }
    }
}

}  // namespace tc
}  // namespace

// Blocks a multiprocessor should hold: four (128 registers a thread) for head_dim up to 64; three for
// up to 128, whose accumulators would spill at 128 registers. GREY_KV_MMA_BLOCKS_WIDE lets a build try
// another count for head_dim 128 (-DGREY_CUDA_EXTRA_FLAGS=-DGREY_KV_MMA_BLOCKS_WIDE=4).
#ifndef GREY_KV_MMA_BLOCKS_WIDE
#define GREY_KV_MMA_BLOCKS_WIDE 3
#endif
#define GREY_KV_ATTEND_MMA(ks, gc)                                                                 \
    extern "C" __global__ void __launch_bounds__(GREY_KVK_ATTEND_WARPS * GREY_KVK_WARP_LANES,      \
                                                 (ks) == 4 ? 4 : GREY_KV_MMA_BLOCKS_WIDE)          \
        grey_kv_attend_mma_##ks##_##gc(grey_kvk_attend_args a) {                                                    \
        tc::attend<ks, gc>(a);                                                                                      \
    }
GREY_KV_ATTEND_MMA(4, 1)
GREY_KV_ATTEND_MMA(4, 2)
GREY_KV_ATTEND_MMA(4, 4)
GREY_KV_ATTEND_MMA(8, 1)
GREY_KV_ATTEND_MMA(8, 2)
GREY_KV_ATTEND_MMA(8, 4)
