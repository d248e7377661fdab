// Decoding the LT-Block container's block formats on a GPU (docs/codecs.md), written once for the
// kernel (kernels/cuda/codec_decode.cu) and for the host, where the fake CUDA driver runs the same code
// and tests/codec/device_codec_test.cpp and the codec fuzzer compare it with the host codecs.
//
// A block is decoded by one 32-lane warp. Each decoder is written as the work of one lane, in phases
// separated by a warp barrier; the host runs a phase for lanes 0..31 in turn, the GPU runs them at once.
// Nothing a lane does depends on another lane's work within a phase, so both orders give the same bytes.
//
// The decoders never read outside the payload or write outside the block's raw bytes, whatever the
// payload says: every offset is checked against the stored size first. A payload they cannot decode
// gives a fault code, not a message; the runtime then decodes that block on the host, whose decoder
// names the problem (runtime/codec), so a device and a host failure read the same.
#pragma once

#include "common/hostdevice.h"
#include "common/xxh3.hpp"

#include <stdint.h>

namespace grey::common {

inline constexpr uint32_t kCodecLanes = 32;
inline constexpr uint32_t kCodecProbBits = 12;
inline constexpr uint32_t kCodecProbTotal = 1u << kCodecProbBits;
inline constexpr uint32_t kCodecStateLow = 1u << 16;

// The container's codec ids a device decodes (runtime/codec/codec_id.hpp has them all; lz4 and zstd
// blocks stay with the host).
enum CodecBlockId : uint32_t { kCodecRaw = 0, kCodecZero = 1, kCodecFill = 2, kCodecBitmask = 3, kCodecFloat = 4 };

GREY_FN_FORCE bool device_decodes(uint32_t codec) { return codec <= kCodecFloat; }

// Why a block was not decoded (zero: it was). Faults of the lanes of a block are or-ed together.
enum CodecFault : uint32_t {
    kFaultNone = 0,
    kFaultLayout = 1u << 0,    // a header field, or sizes that do not add up to the stored size
    kFaultTable = 1u << 1,     // an rANS frequency table that is not a distribution
    kFaultLane = 1u << 2,      // an rANS lane that reads past its words or does not end where it began
    kFaultBitmask = 1u << 3,   // a mask or a packed element that contradicts the count
    kFaultChecksum = 1u << 4,  // the decoded bytes fail the entry's checksum
    kFaultCodec = 1u << 5,     // a codec id no device decoder has
};

// One container block to decode: where its payload is, where its raw bytes go, what they must hash to.
struct CodecBlockJob {
    uint64_t payload;        // offset of the payload from the container's first byte (the kernel: its address)
    uint64_t output;         // offset of the block's raw bytes from the output's first byte
    uint64_t checksum;       // the entry's checksum
    uint64_t checksum_seed;  // its seed: xxh3-64 of the entry's bytes 0..23 seeded with the block index
    uint32_t raw_size;
    uint32_t stored_size;
    uint32_t codec;
    uint32_t element_width;
};

GREY_FN_FORCE uint32_t popcount32(uint32_t x) {
#if defined(__CUDA_ARCH__)
    return static_cast<uint32_t>(__popc(x));
#else
    return static_cast<uint32_t>(__builtin_popcount(x));
#endif
}
GREY_FN_FORCE uint32_t read_u16(const uint8_t* p) { return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8; }

// ---- raw, zero, fill: lane l writes bytes l, l + 32, ...

GREY_FN void constant_decode_lane(uint32_t lane, const CodecBlockJob& job, const uint8_t* payload, uint8_t* out) {
    for (uint32_t i = lane; i < job.raw_size; i += kCodecLanes)
        out[i] = job.codec == kCodecZero ? 0 : job.codec == kCodecRaw ? payload[i] : payload[i % job.element_width];
}

GREY_FN uint32_t constant_layout_fault(const CodecBlockJob& job) {
    switch (job.codec) {
        case kCodecRaw: return job.stored_size == job.raw_size ? kFaultNone : kFaultLayout;
        case kCodecZero: return job.stored_size == 0 ? kFaultNone : kFaultLayout;
        default: return job.stored_size == job.element_width && job.raw_size >= job.element_width ? kFaultNone : kFaultLayout;
    }
}

// ---- bitmask + pack

struct BitmaskLayout {
    uint32_t elements;
    uint32_t nonzero;
    uint32_t words;
    uint32_t packed;  // offsets from the payload's start
    uint32_t tail;
};

GREY_FN uint32_t bitmask_layout(const uint8_t* payload, const CodecBlockJob& job, BitmaskLayout* layout) {
    const uint32_t width = job.element_width;
    if (width == 0 || job.stored_size < 8 || payload[0] != width || payload[1] != 0 || read_u16(payload + 2) != 0) return kFaultLayout;
    layout->elements = job.raw_size / width;
    layout->nonzero = xxh_read32(payload + 4);
    layout->words = (layout->elements + 31) / 32;
    layout->packed = 8 + 4 * layout->words;
    const uint64_t tail = layout->packed + uint64_t{layout->nonzero} * width;
    if (layout->nonzero > layout->elements || tail + job.raw_size % width != job.stored_size) return kFaultLayout;
    layout->tail = static_cast<uint32_t>(tail);
    return kFaultNone;
}

// Lane l writes elements 32k + l: word k of the mask is read by every lane, and the packed index of a
// set bit is the popcount of the words before (which every lane sums alike) and of the bits below it.
template <uint32_t W>
GREY_FN uint32_t bitmask_decode_lane(uint32_t lane, const CodecBlockJob& job, const BitmaskLayout& layout, const uint8_t* payload, uint8_t* out) {
    uint32_t fault = kFaultNone;
    uint32_t before = 0;
    const uint8_t* packed = payload + layout.packed;
    for (uint32_t k = 0; k < layout.words; ++k) {
        const uint32_t word = xxh_read32(payload + 8 + 4 * k);
        const uint32_t valid = layout.elements - 32 * k < 32 ? layout.elements - 32 * k : 32;
        if (valid < 32 && (word >> valid) != 0) fault |= kFaultBitmask;
        if (lane < valid) {
            uint8_t* element = out + (uint64_t{32} * k + lane) * W;
            if ((word >> lane) & 1u) {
                const uint32_t index = before + popcount32(word & ((1u << lane) - 1u));
                uint32_t any = 0;
                if (index < layout.nonzero) {
                    for (uint32_t b = 0; b < W; ++b) {
                        element[b] = packed[uint64_t{index} * W + b];
                        any |= element[b];
                    }
                }
                if (any == 0) fault |= kFaultBitmask;  // past the count, or a zero stored as nonzero
            } else {
                for (uint32_t b = 0; b < W; ++b) element[b] = 0;
            }
        }
        before += popcount32(word);
    }
    if (before != layout.nonzero) fault |= kFaultBitmask;
    if (lane == 0)
        for (uint32_t b = 0; b < job.raw_size % W; ++b) out[uint64_t{layout.elements} * W + b] = payload[layout.tail + b];
    return fault;
}

// bitmask_decode_lane for the block's element width (1, 2, 4 or 8 bytes; anything else is a layout fault).
GREY_FN uint32_t bitmask_decode_lane_any(uint32_t lane, const CodecBlockJob& job, const BitmaskLayout& layout, const uint8_t* payload, uint8_t* out) {
    switch (job.element_width) {
        case 1: return bitmask_decode_lane<1>(lane, job, layout, payload, out);
        case 2: return bitmask_decode_lane<2>(lane, job, layout, payload, out);
        case 4: return bitmask_decode_lane<4>(lane, job, layout, payload, out);
        case 8: return bitmask_decode_lane<8>(lane, job, layout, payload, out);
        default: return kFaultLayout;
    }
}

// ---- split float: rANS-coded symbols in 32 lanes, remainders raw

struct FloatLayout {
    uint32_t elements;
    uint32_t frequencies;  // offsets from the payload's start
    uint32_t states;
    uint32_t counts;
    uint32_t words;
    uint32_t remainders;
    uint32_t tail;
};

// The table a warp builds in shared memory before its lanes decode: about 6 KiB.
struct RansWorkspace {
    uint16_t frequency[256];
    uint16_t start[256];
    uint32_t range[256];  // start | frequency << 16: one load a decoded symbol instead of two
    uint32_t lane_total[kCodecLanes];
    uint8_t slot_symbol[kCodecProbTotal];
};

GREY_FN uint32_t float_layout(const uint8_t* payload, const CodecBlockJob& job, FloatLayout* layout) {
    const uint32_t width = job.element_width;
    if ((width != 2 && width != 4 && width != 8) || job.stored_size < 8 + 32 || payload[0] != width || payload[1] != kCodecLanes ||
        payload[2] != kCodecProbBits || payload[3] != 0)
        return kFaultLayout;
    layout->elements = xxh_read32(payload + 4);
    if (layout->elements != job.raw_size / width) return kFaultLayout;
    uint32_t present = 0;
    for (uint32_t i = 0; i < 32; ++i) present += popcount32(payload[8 + i]);
    layout->frequencies = 8 + 32;
    layout->states = layout->frequencies + 2 * present;
    layout->counts = layout->states + 4 * kCodecLanes;
    layout->words = layout->counts + 4 * kCodecLanes;
    if (layout->words > job.stored_size) return kFaultLayout;
    uint64_t words = 0;
    for (uint32_t l = 0; l < kCodecLanes; ++l) words += xxh_read32(payload + layout->counts + 4 * l);
    const uint64_t remainders = layout->words + 2 * words;
    const uint64_t tail = remainders + uint64_t{layout->elements} * (width - 1);
    if (tail + job.raw_size % width != job.stored_size) return kFaultLayout;
    layout->remainders = static_cast<uint32_t>(remainders);
    layout->tail = static_cast<uint32_t>(tail);
    return kFaultNone;
}

// Phase 1: lane l reads the frequencies of symbols 8l..8l+7 (byte l of the presence bitmap; its first
// frequency's index is the popcount of the bytes before).
GREY_FN uint32_t rans_read_frequencies(uint32_t lane, const uint8_t* payload, const FloatLayout& layout, RansWorkspace* ws) {
    uint32_t index = 0;
    for (uint32_t i = 0; i < lane; ++i) index += popcount32(payload[8 + i]);
    const uint32_t present = payload[8 + lane];
    uint32_t fault = kFaultNone, total = 0;
    for (uint32_t b = 0; b < 8; ++b) {
        uint32_t frequency = 0;
        if ((present >> b) & 1u) {
            frequency = read_u16(payload + layout.frequencies + 2 * index++);
            if (frequency == 0 || frequency > kCodecProbTotal) fault |= kFaultTable;
        }
        ws->frequency[8 * lane + b] = static_cast<uint16_t>(frequency);
        total += frequency;
    }
    ws->lane_total[lane] = total;
    return fault;
}

// Phase 2: each symbol's cumulative start; the frequencies must sum to 4096 (0 for an empty block).
GREY_FN uint32_t rans_starts(uint32_t lane, const FloatLayout& layout, RansWorkspace* ws) {
    uint32_t start = 0, all = 0;
    for (uint32_t i = 0; i < kCodecLanes; ++i) {
        if (i < lane) start += ws->lane_total[i];
        all += ws->lane_total[i];
    }
    for (uint32_t b = 0; b < 8; ++b) {
        const uint32_t frequency = ws->frequency[8 * lane + b];
        ws->start[8 * lane + b] = static_cast<uint16_t>(start);
        ws->range[8 * lane + b] = (start & 0xFFFFu) | frequency << 16;
        start += frequency;
    }
    return all == (layout.elements == 0 ? 0 : kCodecProbTotal) ? kFaultNone : kFaultTable;
}

// Phase 3 (only for a valid table): lane l fills slots 128l..128l+127 of the slot-to-symbol table,
// starting from the last symbol whose start is at or below its first slot (a present one: an absent
// symbol shares its start with the next). An empty block has no table to fill.
GREY_FN void rans_fill_slots(uint32_t lane, const FloatLayout& layout, RansWorkspace* ws) {
    if (layout.elements == 0) return;
    constexpr uint32_t kSlotsPerLane = kCodecProbTotal / kCodecLanes;
    const uint32_t first = lane * kSlotsPerLane;
    uint32_t low = 0, high = 255;
    while (low < high) {
        const uint32_t middle = (low + high + 1) / 2;
        if (ws->start[middle] <= first) low = middle;
        else high = middle - 1;
    }
    uint32_t symbol = low;
    for (uint32_t slot = first; slot < first + kSlotsPerLane; ++slot) {
        while (slot >= uint32_t{ws->start[symbol]} + ws->frequency[symbol]) ++symbol;
        ws->slot_symbol[slot] = static_cast<uint8_t>(symbol);
    }
}

// Phase 4: lane l decodes symbols l, l + 32, ... from its own words and writes those elements, each
// its symbol joined to its remainder (sign above the low bits, as runtime/codec/float_split.hpp).
// The loads a step needs do not depend on the rANS state, so they are issued ahead of it: the lane's
// next word before the step that may take it, and the remainders of kAhead elements before those
// elements are decoded. On a GPU their latency then overlaps the state's dependency chain instead of
// adding to each step.
template <uint32_t W>
GREY_FN uint64_t float_remainder_at(const uint8_t* payload, const FloatLayout& layout, uint32_t i) {
    uint64_t remainder = 0;
    const uint8_t* at = payload + layout.remainders + uint64_t{i} * (W - 1);
    for (uint32_t b = 0; b < W - 1; ++b) remainder |= static_cast<uint64_t>(at[b]) << (8 * b);
    return remainder;
}

template <uint32_t W>
GREY_FN uint32_t float_decode_lane(uint32_t lane, const CodecBlockJob& job, const FloatLayout& layout, const uint8_t* payload,
                                   const RansWorkspace* ws, uint8_t* out) {
    constexpr uint32_t kAhead = 4;
    constexpr uint32_t kMantissaBits = 8 * W - 9;
    uint32_t state = xxh_read32(payload + layout.states + 4 * lane);
    if (state < kCodecStateLow) return kFaultLane;
    uint64_t next = layout.words;
    for (uint32_t l = 0; l < lane; ++l) next += 2ull * xxh_read32(payload + layout.counts + 4 * l);
    const uint64_t end = next + 2ull * xxh_read32(payload + layout.counts + 4 * lane);
    uint32_t word = next < end ? read_u16(payload + next) : 0;
    for (uint32_t first = lane; first < layout.elements; first += kAhead * kCodecLanes) {
        uint64_t remainders[kAhead];
        for (uint32_t k = 0; k < kAhead; ++k) {
            const uint32_t i = first + k * kCodecLanes;
            remainders[k] = i < layout.elements ? float_remainder_at<W>(payload, layout, i) : 0;
        }
        for (uint32_t k = 0; k < kAhead; ++k) {
            const uint32_t i = first + k * kCodecLanes;
            if (i >= layout.elements) break;
            const uint32_t slot = state & (kCodecProbTotal - 1);
            const uint32_t symbol = ws->slot_symbol[slot];
            const uint32_t range = ws->range[symbol];
            state = (range >> 16) * (state >> kCodecProbBits) + slot - (range & 0xFFFFu);
            if (state < kCodecStateLow) {
                if (next == end) return kFaultLane;
                state = (state << 16) | word;
                next += 2;
                word = next < end ? read_u16(payload + next) : 0;
            }
            const uint64_t remainder = remainders[k];
            const uint64_t element = ((remainder >> kMantissaBits) << (8 * W - 1)) | (static_cast<uint64_t>(symbol) << kMantissaBits) |
                                     (remainder & ((uint64_t{1} << kMantissaBits) - 1));
            uint8_t* to = out + uint64_t{i} * W;
            for (uint32_t b = 0; b < W; ++b) to[b] = static_cast<uint8_t>(element >> (8 * b));
        }
    }
    if (next != end || state != kCodecStateLow) return kFaultLane;
    if (lane == 0)
        for (uint32_t b = 0; b < job.raw_size % W; ++b) out[uint64_t{layout.elements} * W + b] = payload[layout.tail + b];
    return kFaultNone;
}

// float_decode_lane for the block's element width (float_layout has checked it is 2, 4 or 8).
GREY_FN uint32_t float_decode_lane_any(uint32_t lane, const CodecBlockJob& job, const FloatLayout& layout, const uint8_t* payload,
                                       const RansWorkspace* ws, uint8_t* out) {
    switch (job.element_width) {
        case 2: return float_decode_lane<2>(lane, job, layout, payload, ws, out);
        case 4: return float_decode_lane<4>(lane, job, layout, payload, ws, out);
        default: return float_decode_lane<8>(lane, job, layout, payload, ws, out);
    }
}

#if !defined(__CUDA_ARCH__)
// The block decoded as a warp would, one lane after another (the fake CUDA driver's kernel, and the
// tests' reference for the kernel's logic); `workspace` is scratch. Returns the block's faults.
inline uint32_t decode_block_by_lanes(const uint8_t* container, uint8_t* output, const CodecBlockJob& job, RansWorkspace* workspace) {
    const uint8_t* payload = container + job.payload;
    uint8_t* out = output + job.output;
    uint32_t fault = kFaultNone;
    switch (job.codec) {
        case kCodecRaw:
        case kCodecZero:
        case kCodecFill:
            fault = constant_layout_fault(job);
            if (fault == kFaultNone)
                for (uint32_t lane = 0; lane < kCodecLanes; ++lane) constant_decode_lane(lane, job, payload, out);
            break;
        case kCodecBitmask: {
            BitmaskLayout layout{};
            fault = bitmask_layout(payload, job, &layout);
            for (uint32_t lane = 0; fault == kFaultNone && lane < kCodecLanes; ++lane)
                fault |= bitmask_decode_lane_any(lane, job, layout, payload, out);
            break;
        }
        case kCodecFloat: {
            FloatLayout layout{};
            fault = float_layout(payload, job, &layout);
            if (fault != kFaultNone) break;
            for (uint32_t lane = 0; lane < kCodecLanes; ++lane) fault |= rans_read_frequencies(lane, payload, layout, workspace);
            for (uint32_t lane = 0; lane < kCodecLanes; ++lane) fault |= rans_starts(lane, layout, workspace);
            if (fault != kFaultNone) break;
            for (uint32_t lane = 0; lane < kCodecLanes; ++lane) rans_fill_slots(lane, layout, workspace);
            for (uint32_t lane = 0; lane < kCodecLanes; ++lane) fault |= float_decode_lane_any(lane, job, layout, payload, workspace, out);
            break;
        }
        default: fault = kFaultCodec;
    }
    if (fault == kFaultNone && xxh3_64(out, job.raw_size, job.checksum_seed) != job.checksum) fault = kFaultChecksum;
    return fault;
}
#endif

}  // namespace grey::common
