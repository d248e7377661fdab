// What a GPU backend launches for a quantize or dequantize job, decided once for every vendor that runs
// the kernels of kernels/cuda/quant_*.cu (CUDA as they are, HIP through kernels/hip/cuda_compat.h): the
// kernel path for the job's shape, format, dtype and alignment, the argument blocks of
// kernels/cuda/quant_args.h, the threads per block and the work each launch covers, and the zero fills
// between launches. The plan names no vendor type; launch_plan() carries it out through a thin
// per-vendor launcher (cuLaunchKernel, hipModuleLaunchKernel), which alone knows how functions are found
// and how many blocks fit on its device.
#pragma once

#include "cuda/quant_args.h"
#include "grey_backend.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace grey::backend::quant {

// Exact division by d of every n below 2^31 on the GPU, as n / d = (n * multiplier) >> shift, with
// shift = 32 + ceil(log2 d) and multiplier = ceil(2^shift / d) (under 2^33, so n * multiplier fits 64
// bits; the error n * (multiplier * d - 2^shift) / (d * 2^shift) stays below 1/d). d in 1 .. 2^31.
struct Divider {
    uint64_t multiplier;
    int32_t shift;
};
Divider divider_for(uint64_t d);

// Every quantization kernel, and the module (code object family) that holds it.
enum class Kernel : uint8_t {
    blocks,          // grey_quant_blocks: a lane per 32 elements (aligned tensors)
    q8_0,            // grey_quant_q8_0: Q8_0, elements in registers (aligned tensors)
    grouped8,        // grey_quant_grouped8: eight elements a thread
    grouped16,       // grey_quant_grouped16: sixteen
    rows,            // grey_quant_rows
    absmax,          // grey_quant_absmax
    param_sets,      // grey_quant_param_sets
    encode,          // grey_quant_encode
    search,          // grey_quant_search
    dequant,         // grey_dequant
    dequant_fast,    // grey_dequant_fast: aligned tensors, 32-bit indices
    measure,         // grey_quant_measure: the error report, on the device
    ragged,          // grey_quant_ragged: rows with a ragged last group, quantize (RTN and MSE)
    dequant_ragged,  // grey_dequant_ragged
    measure_ragged,  // grey_measure_ragged
};
inline constexpr size_t kKernelCount = 15;
enum class Family : uint8_t { blocks, q8_0, grouped, rows, global, search, dequantize, measure, ragged };
inline constexpr size_t kFamilyCount = 9;

const char* kernel_name(Kernel kernel);  // "grey_quant_blocks"
Family family_of(Kernel kernel);
const char* module_name(Family family);  // "quant_blocks": the source kernels/cuda/<name>.cu

// How a launch's blocks are counted from its work (launch_plan).
enum class Grid : uint8_t {
    // Enough blocks for the work, but never more than fit on the device at once: the general kernels
    // loop over their work, and a second, partial wave would leave most multiprocessors idle at the end
    // (a grid of one thread per piece of work ran every format slower on those kernels: bench/RESULTS.md,
    // "CUDA kernel design").
    resident,
    // A block for every `threads` pieces of work, so that each block makes one pass of its loop.
    // grey_dequant_fast and grey_quant_q8_0 run faster this way than with a resident grid looping over the
    // tensor, while grey_quant_blocks and grey_quant_rows run slower (bench/cuda_grid_bench.cu measures
    // it; bench/RESULTS.md has the figures).
    spread,
};

// A kernel's parameters, as its signature in kernels/cuda takes them.
enum class Arguments : uint8_t { args, args_error, args_rows, args_rows_error };

// One step of a plan: a launch, or (zero_bytes != 0) a fill of zero_bytes zero bytes at zero_address.
struct Step {
    Kernel kernel = Kernel::blocks;
    Grid grid = Grid::resident;
    Arguments arguments = Arguments::args;
    uint64_t work_threads = 0;
    unsigned int threads = 0;
    unsigned int shared_bytes = 0;
    uint64_t zero_address = 0;
    uint64_t zero_bytes = 0;
};

// The device memory a quantize job's kernels use beside its tensors.
struct Targets {
    uint64_t flags;    // a grey_qk_flags, every member ~0 before the job (the kernels lower them)
    uint64_t noticed;  // a uint32 the kernels set to 1 when they raise a flag
    uint64_t scratch;  // quantize_scratch_bytes(...) bytes (unused when that is 0)
    uint64_t error;    // a grey_qk_error to measure into, or 0: measure nothing
};

struct Plan {
    grey_qk_args args{};
    grey_qk_rows rows{};
    uint64_t error = 0;  // the measure kernels' second (ragged: third) argument
    std::array<Step, 6> steps{};
    size_t count = 0;

    [[nodiscard]] std::span<const Step> launches() const { return {steps.data(), count}; }
    void add(const Step& step) { steps.at(count++) = step; }
};

// The scratch the kernels of a quantize job need (0 on most paths). `multiprocessors`: the device's
// (CUDA multiprocessors, AMD compute units), which decides between two paths.
uint64_t quantize_scratch_bytes(const grey_backend_quant_job& job, unsigned int multiprocessors, uint64_t source, uint64_t destination);

// The plans. A layout feature this code does not know throws std::domain_error, a plain dtype other
// than F32/F16/BF16 std::invalid_argument.
Plan plan_quantize(const grey_backend_quant_job& job, unsigned int multiprocessors, uint64_t source, uint64_t destination,
                   const Targets& targets);
Plan plan_dequantize(const grey_backend_quant_job& job, uint64_t source, uint64_t destination);

// The largest grid.x a launch may ask for.
inline constexpr uint64_t kMaxGridBlocks = (uint64_t{1} << 31) - 1;

// Carries out `plan` in order through `vendor`, which provides
//   function(Kernel) -> F                                   the loaded kernel
//   resident_blocks(F, threads, shared_bytes) -> unsigned   blocks of the device resident at once
//   launch(F, blocks, threads, shared_bytes, void** params) one launch
//   zero(address, bytes)                                    a fill of zeros, ordered with the launches
// and throws what they throw. The plan's argument blocks are what the launches point at.
template <typename Vendor>
void launch_plan(Plan& plan, Vendor& vendor) {
    void* args[] = {&plan.args};
    void* args_error[] = {&plan.args, &plan.error};
    void* args_rows[] = {&plan.args, &plan.rows};
    void* args_rows_error[] = {&plan.args, &plan.rows, &plan.error};
    for (const Step& step : plan.launches()) {
        if (step.zero_bytes != 0) {
            vendor.zero(step.zero_address, step.zero_bytes);
            continue;
        }
        auto function = vendor.function(step.kernel);
        const uint64_t wanted = (step.work_threads + step.threads - 1) / step.threads;
        const uint64_t most = step.grid == Grid::spread ? kMaxGridBlocks : vendor.resident_blocks(function, step.threads, step.shared_bytes);
        const auto blocks = static_cast<unsigned int>(std::clamp<uint64_t>(wanted, 1, most));
        void** params = step.arguments == Arguments::args         ? args
                        : step.arguments == Arguments::args_error ? args_error
                        : step.arguments == Arguments::args_rows  ? args_rows
                                                                  : args_rows_error;
        vendor.launch(function, blocks, step.threads, step.shared_bytes, params);
    }
}

// What naming a job's flagged input takes, copied from the job (which lives only for its call).
struct QuantFacts {
    grey_quant_format format;
    uint64_t run_length;
    uint64_t row_length;
    bool has_rows;
};
QuantFacts facts_of(const grey_backend_quant_job& job);

// Throws std::invalid_argument with the host backend's message when `found` holds a flag: the lowest
// non-finite element first, then the lowest overflowing group.
void throw_if_flagged(const grey_qk_flags& found, const QuantFacts& facts);

}  // namespace grey::backend::quant
