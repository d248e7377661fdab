// The host reference quantizer: every format of common/quant_layout.h, on host memory, written once
// over the primitives of kernels.hpp (so the scalar and AVX2 paths give the same bits) and the coding
// rules of common/quant_coding.hpp. Bad input (a NaN, a group too large for fp16 parameters) throws
// std::invalid_argument in the words of common/quant_text.hpp; the host backend's slots turn that into
// a status. `parallel` shares the work out (parallel.hpp); the bits are the same whatever it is.
#pragma once

#include "host/quant/kernels.hpp"
#include "host/quant/parallel.hpp"
#include "common/quant_error.hpp"
#include "common/quant_layout.h"
#include "grey.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <type_traits>
#include <span>
#include <utility>
#include <vector>

namespace grey::host::quant {

// Allocates like std::allocator but default-initializes: a vector of floats that is written before it is
// read does not first clear a tensor's worth of memory (that pass took 5% of a whole-model quantization).
template <typename T>
struct DefaultInitAllocator : std::allocator<T> {
    template <typename U>
    struct rebind {
        using other = DefaultInitAllocator<U>;
    };
    DefaultInitAllocator() = default;
    template <typename U>
    explicit DefaultInitAllocator(const DefaultInitAllocator<U>&) noexcept {}
    template <typename U>
    void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
        ::new (static_cast<void*>(p)) U;
    }
    template <typename U, typename... Args>
    void construct(U* p, Args&&... args) {
        std::allocator_traits<std::allocator<T>>::construct(static_cast<std::allocator<T>&>(*this), p, std::forward<Args>(args)...);
    }
};
// A tensor's float32 values being filled: uninitialized until written.
using FloatBuffer = std::vector<float, DefaultInitAllocator<float>>;

// Whether `dtype` values at `data` are float32 that can be read (or written) in place: F32, 4-byte aligned
// (mapped file data need not be).
inline bool f32_in_place(grey_dtype dtype, const void* data) {
    return dtype == GREY_DTYPE_F32 && reinterpret_cast<uintptr_t>(data) % alignof(float) == 0;
}

// The tensor as float32: F32 copied, F16 and BF16 widened exactly. A NaN or infinity fails with
// std::invalid_argument naming its index. `max_magnitude_bits`, when given, receives the largest
// magnitude's float32 bits, learnt by the same check (quantize can use it).
FloatBuffer to_f32(grey_dtype dtype, std::span<const std::byte> source, uint64_t elements, const Kernels& kernels,
                   const Parallel& parallel = {}, uint32_t* max_magnitude_bits = nullptr);
// The same values without a copy where there is nothing to convert (F32, 4-byte aligned): a view of
// `source`, or of `storage`, which receives the converted copy otherwise.
std::span<const float> as_f32(grey_dtype dtype, std::span<const std::byte> source, uint64_t elements, const Kernels& kernels,
                              FloatBuffer& storage, const Parallel& parallel = {}, uint32_t* max_magnitude_bits = nullptr);
// float32 -> F32, F16 or BF16 (round to nearest even).
void from_f32(std::span<const float> values, grey_dtype dtype, std::span<std::byte> destination, const Parallel& parallel = {});

// Whether quantize_in_one_pass takes this plan from `dtype`: the ggml formats (Q8_0, Q4_0, Q4_1) with
// round-to-nearest calibration, from F32, F16 or BF16.
bool quantizes_in_one_pass(const grey_quant_layout& plan, grey_dtype dtype);
// Quantizes `source` (plan.elements values of `dtype`) into `out` a piece at a time, each piece widened
// to float32 in a buffer that stays in the cache, its blocks' statistics, coding and packing done in
// one visit, and (with `error`) its error summed from the same codes: no float32 copy of the tensor and
// one pass over it. The bytes and the sums are quantize()'s and common::ErrorSums::add's. Returns false,
// having written nothing, when the input is not all finite or holds a magnitude above 65504 (a block
// whose fp16 parameters could overflow): the general route then gives the refusal in its own words.
bool quantize_in_one_pass(const grey_quant_layout& plan, grey_dtype dtype, std::span<const std::byte> source, std::span<std::byte> out,
                          grey::common::ErrorSums* error, const Kernels& kernels, const Parallel& parallel = {});
// sums += the error of `quantized` (quantize()'s bytes of `source`) against `source`, plan.elements values of
// `dtype` (F32, F16 or BF16, no alignment needed): common::ErrorSums::add over the float32 values and the
// dequantized ones, piece by piece in its order (the pieces summed in parallel), with neither tensor
// made whole.
void add_quantization_error(grey::common::ErrorSums& sums, const grey_quant_layout& plan, grey_dtype dtype, std::span<const std::byte> source,
                            std::span<const std::byte> quantized, const Kernels& kernels, const Parallel& parallel = {});

// Quantized output of at least this many bytes has its INT8 codes written with streaming stores where the
// kernel set has them (Kernels::quantize_int8_runs): behind a tensor of four times the size read through
// the caches, they would not be there for their reader anyway. Measured at 16 MiB of codes (a 64 MiB
// float32 tensor, bench/RESULTS.md, "Host int8 quantization"); smaller output keeps ordinary stores.
inline constexpr uint64_t kStreamCodeBytes = uint64_t{16} << 20;

// Writes plan.bytes bytes of quantized `x` (plan.elements values) to `out`; on failure (a group whose
// fp16 parameters would overflow) nothing. `max_magnitude_bits`: the largest magnitude's float32 bits
// among `x` when the caller already has them (as_f32); without them, quantize_checked learns them as it
// quantizes where it can, and otherwise the statistics pass finds any group that would overflow.
// `stream_bytes`: the output size from which codes are streamed (kStreamCodeBytes; tests lower it); the
// bytes are the same.
void quantize(const grey_quant_layout& plan, std::span<const float> x, std::span<std::byte> out, const Kernels& kernels,
              const Parallel& parallel = {}, std::optional<uint32_t> max_magnitude_bits = std::nullopt, uint64_t stream_bytes = kStreamCodeBytes);
// quantize() for input not yet checked, when round to nearest visits each run once (one parameter set a
// run, runs no longer than a chunk): `source` (plan.elements values of `dtype`: F32 read in place when
// 4-byte aligned, F16, BF16 or unaligned F32 widened a piece of whole runs at a time, for runs up to
// common::ErrorSums::kPiece elements) is checked as it is quantized (every value finite, and at most 65504
// where the parameters are fp16), into staging memory copied to `out` once every chunk passed. One read
// of the input, and no float32 copy of it. False, `out` untouched, when a value fails the check (as_f32
// and quantize() then say which), for other plans and input, or when the output is too large to stage.
bool quantize_checked(const grey_quant_layout& plan, grey_dtype dtype, std::span<const std::byte> source, std::span<std::byte> out,
                      const Kernels& kernels, const Parallel& parallel = {}, uint64_t stream_bytes = kStreamCodeBytes);
// Output of at least this many bytes is written with streaming stores where the kernel set has them
// (StreamingKernels): too large to be read back from the caches, it is not read from memory before it is
// written either. Smaller output keeps ordinary stores, and stays in the cache for its reader. The whole
// output counts, not a chunk's share (a chunk would always fit a cache; what matters is whether the
// tensor does). Set above the last-level cache by measurement (bench/RESULTS.md, "Host dequantization
// with streaming stores").
inline constexpr uint64_t kStreamOutputBytes = uint64_t{64} << 20;

// The reverse: plan.elements float32 values from plan.bytes bytes. `stream_bytes`: the output size from
// which streaming stores are used where the kernel set has them (tests lower it); the bits are the same.
void dequantize(const grey_quant_layout& plan, std::span<const std::byte> in, std::span<float> out, const Kernels& kernels,
                const Parallel& parallel = {}, uint64_t stream_bytes = kStreamOutputBytes);
// Elements first .. first + out.size() - 1 only; `first` and the count even, and whole blocks for the
// ggml formats (multiples of 32). Decoding a tensor in slices gives the bits of decoding it whole.
void dequantize_range(const grey_quant_layout& plan, std::span<const std::byte> in, uint64_t first, std::span<float> out,
                      const Kernels& kernels);

}  // namespace grey::host::quant
