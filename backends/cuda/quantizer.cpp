#include "cuda/quantizer.hpp"

#include "cuda/quant_args.h"
#include "common/quant_layout.h"
#include "common/numeric.hpp"
#include "common/quant_coding.hpp"
#include "common/quant_text.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace grey::cuda {
namespace {

using Plan = grey_quant_layout;

constexpr unsigned int kThreads = 256;
// MSE runs one thread per parameter set, each looping over its elements many times: smaller blocks
// spread the sets over more multiprocessors.
constexpr unsigned int kSearchThreads = 128;
// grey_quant_absmax keeps the per-set maxima in shared memory up to this many sets (32 KiB).
constexpr uint64_t kSharedStatistics = GREY_QK_SHARED_STATISTICS;
// grey_quant_rows gives each run a block; longer runs no longer fit L2 for its second pass.
constexpr uint64_t kMaxRowLength = uint64_t{1} << 16;
// Tensors up to this many elements take grey_quant_rows however few runs they have (choose_path).
constexpr uint64_t kSmallTensor = uint64_t{1} << 16;

enum class Path {
    blocks,   // grey_quant_blocks: 4-bit grouped formats, aligned tensors
    q8_0,     // grey_quant_q8_0: Q8_0, aligned tensors
    grouped,  // grey_quant_grouped8/16: grouped formats, any alignment
    rows,     // grey_quant_rows
    global,   // grey_quant_absmax, grey_quant_param_sets, grey_quant_encode
    search,   // grey_quant_search, grey_quant_encode
    ragged,   // grey_quant_ragged: rows with a ragged last group, RTN and MSE
};

bool is_grouped(grey_quant_format f) {
    return f == GREY_QUANT_INT4 || f == GREY_QUANT_INT4_SYM || f == GREY_QUANT_NF4 || f == GREY_QUANT_Q8_0 ||
           f == GREY_QUANT_Q4_0 || f == GREY_QUANT_Q4_1;
}

// The fast kernels (quant_blocks.cu, quant_q8_0.cu, grey_dequant_fast) index in 32 bits and make no
// alignment checks.
constexpr uint64_t kFastIndexLimit = uint64_t{1} << 31;
// The largest grid.x a launch may ask for.
constexpr uint64_t kMaxGridBlocks = (uint64_t{1} << 31) - 1;

bool aligned16(CUdeviceptr address) { return address % 16 == 0; }

// grey_quant_blocks: a lane per 32 elements of a group of 32, 64 or 128, both tensors 16-byte aligned.
bool blocks_fit(const Plan& plan, CUdeviceptr plain, CUdeviceptr quantized) {
    return aligned16(plain) && aligned16(quantized) && plan.elements / 32 < kFastIndexLimit &&
           (plan.run_length == 32 || plan.run_length == 64 || plan.run_length == 128);
}

// grey_dequant_fast: chunks of four elements that share a parameter set, both tensors 16-byte aligned.
bool fast_dequant_fits(const Plan& plan, CUdeviceptr plain, CUdeviceptr quantized) {
    return aligned16(plain) && aligned16(quantized) && plan.elements % 4 == 0 && plan.elements / 4 < kFastIndexLimit &&
           plan.run_length % 4 == 0 && plan.param_count < kFastIndexLimit;
}

Path choose_path(const Plan& plan, const DeviceRuntime& device, CUdeviceptr plain, CUdeviceptr quantized) {
    if (grey_quant_layout_has_rows(&plan)) return Path::ragged;
    if (plan.calibration == GREY_CALIBRATION_MSE) return Path::search;
    if (is_grouped(plan.format)) {
        if (!blocks_fit(plan, plain, quantized)) return Path::grouped;
        return plan.format == GREY_QUANT_Q8_0 ? Path::q8_0 : Path::blocks;
    }
    // A block per run pays when runs own their scale and there are enough of them to fill the GPU, and
    // for a small tensor, where one launch costs less host time than the global path's four (a fill and
    // three kernels): what an async call's enqueue costs is its launches.
    if (grey_quant_layout_runs(&plan) == plan.param_count && plan.run_length <= kMaxRowLength &&
        (plan.param_count >= device.multiprocessors() || plan.elements <= kSmallTensor))
        return Path::rows;
    return Path::global;
}

int32_t kernel_dtype(grey_dtype dtype) {
    switch (dtype) {
        case GREY_DTYPE_F32: return GREY_QK_F32;
        case GREY_DTYPE_F16: return GREY_QK_F16;
        case GREY_DTYPE_BF16: return GREY_QK_BF16;
        default: throw std::invalid_argument("the plain tensor must be F32, F16 or BF16");
    }
}

const Plan& plan_of(const grey_backend_quant_job& job) {
    if ((job.layout->required_features & ~GREY_QUANT_LAYOUT_REQUIRES_KNOWN) != 0)
        throw std::domain_error("the quantization layout requires features " + std::to_string(job.layout->required_features) +
                                " this backend does not know");
    return *job.layout;
}

int32_t log2_if_power_of_two(uint64_t value) {
    if (value == 0 || (value & (value - 1)) != 0) return -1;
    int32_t shift = 0;
    while ((uint64_t{1} << shift) != value) ++shift;
    return shift;
}

}  // namespace

Divider divider_for(uint64_t d) {
    if (d == 0 || d > kFastIndexLimit) throw std::invalid_argument("divider_for: the divisor must be in 1 .. 2^31");
    int32_t ceil_log2 = 0;
    while ((uint64_t{1} << ceil_log2) < d) ++ceil_log2;
    const int32_t shift = 32 + ceil_log2;
    return {((uint64_t{1} << shift) + d - 1) / d, shift};
}

namespace {

grey_qk_args make_args(const Plan& plan, grey_dtype dtype, CUdeviceptr plain, CUdeviceptr quantized) {
    grey_qk_args a{};
    a.plain = plain;
    a.quantized = quantized;
    a.elements = plan.elements;
    a.run_length = plan.run_length;
    a.param_count = plan.param_count;
    a.codes_bytes = plan.codes_bytes;
    a.format = static_cast<int32_t>(plan.format);
    a.dtype = kernel_dtype(dtype);
    a.run_shift = log2_if_power_of_two(plan.run_length);
    a.sets_are_runs = plan.param_count == grey_quant_layout_runs(&plan) ? 1 : 0;
    // Only the fast kernels divide through these, and only when their indices are below 2^31.
    if (plan.run_length <= kFastIndexLimit && plan.param_count <= kFastIndexLimit) {
        const Divider run = divider_for(plan.run_length), set = divider_for(plan.param_count);
        a.run_multiplier = run.multiplier;
        a.run_mshift = run.shift;
        a.set_multiplier = set.multiplier;
        a.set_mshift = set.shift;
    }
    return a;
}

// The second argument of the ragged kernels (quant_ragged.cu).
grey_qk_rows make_rows(const Plan& plan) {
    grey_qk_rows rows{};
    rows.row_length = plan.row_length;
    rows.row_bytes = grey_quant_layout_row_bytes(&plan);
    rows.groups_per_row = grey_quant_layout_groups_per_row(&plan);
    rows.mse = plan.calibration == GREY_CALIBRATION_MSE ? 1 : 0;
    return rows;
}

// Launches on one stream, with the device's context current.
struct Launcher {
    DeviceRuntime& device;
    CUstream stream;

    // Enough blocks for `work_threads` threads, but never more than fit on the device at once: the
    // general kernels loop over their work, and a second, partial wave would leave most multiprocessors
    // idle at the end (a grid of one thread per piece of work ran every format slower on those kernels:
    // bench/RESULTS.md, "CUDA kernel design").
    void resident(CUfunction function, uint64_t work_threads, unsigned int threads, unsigned int shared_bytes, void** params) const {
        const uint64_t wanted = (work_threads + threads - 1) / threads;
        const auto blocks = static_cast<unsigned int>(std::clamp<uint64_t>(wanted, 1, device.resident_blocks(function, threads, shared_bytes)));
        device.launch_on(stream, function, blocks, threads, shared_bytes, params);
    }

    // A block for every `threads` pieces of work, so that each block makes one pass of its loop.
    // grey_dequant_fast and grey_quant_q8_0 run faster this way than with a resident grid looping over the
    // tensor, while grey_quant_blocks and grey_quant_rows run slower (bench/cuda_grid_bench.cu measures it;
    // bench/RESULTS.md has the figures).
    void spread(CUfunction function, uint64_t work_threads, unsigned int threads, void** params) const {
        const uint64_t wanted = (work_threads + threads - 1) / threads;
        const auto blocks = static_cast<unsigned int>(std::clamp<uint64_t>(wanted, 1, kMaxGridBlocks));
        device.launch_on(stream, function, blocks, threads, 0, params);
    }
};

// Enqueues `enqueue` and waits for it. If anything throws once work is queued, the stream is drained
// before the scratch blocks the kernels use go back to the pool.
template <typename Enqueue>
void run_job(DeviceRuntime& device, Enqueue&& enqueue) {
    try {
        enqueue();
        device.finish();
    } catch (...) {
        device.drain();
        throw;
    }
}

// Where a job's scratch begins: the codings first, then the per-set maxima on 16 bytes.
uint64_t codings_bytes(const Plan& plan, Path path) {
    return path == Path::global || path == Path::search ? plan.param_count * sizeof(grey::common::Coding) : 0;
}
uint64_t absmax_offset(const Plan& plan, Path path) { return (codings_bytes(plan, path) + 15) / 16 * 16; }

}  // namespace

uint64_t quantize_scratch_bytes(const DeviceRuntime& device, const grey_backend_quant_job& job, CUdeviceptr source, CUdeviceptr destination) {
    const Plan& plan = plan_of(job);
    const Path path = choose_path(plan, device, source, destination);
    if (path == Path::global) return absmax_offset(plan, path) + plan.param_count * sizeof(uint32_t);
    return codings_bytes(plan, path);
}

void enqueue_quantize(DeviceRuntime& device, const QuantKernels& k, CUstream stream, const grey_backend_quant_job& job, CUdeviceptr source,
                      CUdeviceptr destination, const QuantTargets& targets) {
    const Plan& plan = plan_of(job);
    grey_qk_args a = make_args(plan, job.plain_dtype, source, destination);
    const uint64_t sets = plan.param_count;
    const uint64_t n = plan.elements;
    const Path path = choose_path(plan, device, source, destination);
    a.flags = targets.flags;
    a.noticed = targets.noticed;
    a.codings = codings_bytes(plan, path) != 0 ? targets.scratch : 0;
    a.absmax_bits = path == Path::global ? targets.scratch + absmax_offset(plan, path) : 0;
    CUdeviceptr error_address = targets.error;
    grey_qk_rows rows = make_rows(plan);
    void* measure_params[] = {&a, &error_address};
    void* params[] = {&a};
    void* ragged_params[] = {&a, &rows};
    void* ragged_measure_params[] = {&a, &rows, &error_address};
    const Launcher launch{device, stream};
    switch (path) {
        case Path::blocks: launch.resident(k.blocks, n / 32, GREY_QK_BLOCKS_THREADS, 0, params); break;
        case Path::q8_0: {
            const uint64_t warp_blocks = GREY_QK_Q8_WARP_BLOCKS(a.dtype == GREY_QK_F32);
            launch.spread(k.q8_0, (n / 32 + warp_blocks - 1) / warp_blocks * 32, GREY_QK_Q8_THREADS, params);
            break;
        }
        case Path::grouped:
            if (plan.format == GREY_QUANT_Q8_0 || plan.format == GREY_QUANT_Q4_0) launch.resident(k.grouped8, n / 8, kThreads, 0, params);
            else launch.resident(k.grouped16, n / 16, kThreads, 0, params);
            break;
        case Path::rows: launch.resident(k.rows, sets * kThreads, kThreads, 0, params); break;
        case Path::global: {
            device.enqueue_fill(stream, a.absmax_bits, 0, sets * sizeof(uint32_t));
            const auto shared = static_cast<unsigned int>(sets <= kSharedStatistics ? sets * sizeof(uint32_t) : 0);
            launch.resident(k.absmax, (n + 15) / 16, kThreads, shared, params);
            launch.resident(k.params, sets, kThreads, 0, params);
            launch.resident(k.encode, (n + 3) / 4, kThreads, 0, params);
            break;
        }
        case Path::search:
            launch.resident(k.search, sets, kSearchThreads, 0, params);
            launch.resident(k.encode, grey::common::is_ggml(plan.format) ? sets : (n + 3) / 4, kThreads, 0, params);
            break;
        case Path::ragged: launch.resident(k.ragged, sets, kSearchThreads, 0, ragged_params); break;
    }
    if (error_address != 0) {  // the report, measured here: neither tensor crosses to the host
        device.enqueue_fill(stream, error_address, 0, sizeof(grey_qk_error));
        if (path == Path::ragged) launch.resident(k.measure_ragged, n, kThreads, 0, ragged_measure_params);
        else launch.resident(k.measure, (n + 3) / 4, kThreads, 0, measure_params);
    }
}

void enqueue_dequantize(DeviceRuntime& device, const QuantKernels& k, CUstream stream, const grey_backend_quant_job& job, CUdeviceptr source,
                        CUdeviceptr destination) {
    const Plan& plan = plan_of(job);
    grey_qk_args a = make_args(plan, job.plain_dtype, destination, source);
    void* params[] = {&a};
    grey_qk_rows rows = make_rows(plan);
    void* ragged_params[] = {&a, &rows};
    const Launcher launch{device, stream};
    if (grey_quant_layout_has_rows(&plan)) {
        launch.resident(k.dequant_ragged, plan.elements, kThreads, 0, ragged_params);
    } else if (fast_dequant_fits(plan, destination, source)) {
        const uint64_t chunks = plan.elements / 4;
        launch.spread(k.dequant_fast, (chunks + GREY_QK_DEQUANT_FAST_CHUNKS - 1) / GREY_QK_DEQUANT_FAST_CHUNKS, kThreads, params);
    } else launch.resident(k.dequant, (plan.elements + 7) / 8, kThreads, 0, params);
}

QuantFacts facts_of(const grey_backend_quant_job& job) {
    const Plan& plan = plan_of(job);
    return {plan.format, plan.run_length, plan.row_length, grey_quant_layout_has_rows(&plan) != 0};
}

void throw_if_flagged(const grey_qk_flags& found, const QuantFacts& facts) {
    // In the host backend's order: a non-finite element anywhere first (its group overflows too).
    if (found.non_finite != ~uint64_t{0})
        throw std::invalid_argument(grey::common::non_finite_message(found.non_finite, found.nan == found.non_finite));
    if (found.overflow != ~uint64_t{0}) {
        // The group that begins at found.overflow: with rows, a row's last group holds what is left of it.
        uint64_t group = facts.run_length;
        if (facts.has_rows) group = std::min(group, facts.row_length - found.overflow % facts.row_length);
        throw std::invalid_argument(grey::common::f16_overflow_message(facts.format, found.overflow, group));
    }
}

void quantize(DeviceRuntime& device, const grey_backend_quant_job& job, CUdeviceptr source, CUdeviceptr destination) {
    const QuantFacts facts = facts_of(job);
    const uint64_t n = job.layout->elements;
    device.exclusive([&] {
        const QuantKernels& k = device.quant_kernels();
        PoolScratch scratch(device.pool(), quantize_scratch_bytes(device, job, source, destination));
        PoolScratch error_sums(device.pool(), job.error != nullptr ? sizeof(grey_qk_error) : 0);
        grey_qk_error measured{};
        grey_qk_flags& flags = *device.quant_flags_host();
        volatile uint32_t& noticed = *device.quant_noticed_host();
        noticed = 0;
        run_job(device, [&] {
            enqueue_quantize(device, k, device.stream(), job, source, destination,
                             {device.quant_flags(), device.quant_noticed(), scratch.get(), error_sums.get()});
            if (job.error != nullptr) device.copy_to_host_async(&measured, error_sums.get(), sizeof measured);
        });
        if (job.error != nullptr) {
            job.error->elements = n;
            job.error->sum_squared_signal = measured.sum_squared_signal;
            job.error->sum_squared_error = measured.sum_squared_error;
            std::memcpy(&job.error->max_abs_error, &measured.max_abs_error_bits, sizeof(double));
        }
        // The kernels set `noticed` whenever they raise a flag, so the flags need reading back only
        // then: a job with good input costs one launch and one wait.
        if (noticed == 0) return;
        device.copy_to_host_async(&flags, device.quant_flags(), sizeof flags);
        device.finish();
        const grey_qk_flags found = flags;
        flags = {~uint64_t{0}, ~uint64_t{0}, ~uint64_t{0}};  // re-armed for the next job
        device.copy_to_device_async(device.quant_flags(), &flags, sizeof flags);
        device.finish();
        throw_if_flagged(found, facts);
    });
}

void dequantize(DeviceRuntime& device, const grey_backend_quant_job& job, CUdeviceptr source, CUdeviceptr destination) {
    device.exclusive([&] {
        const QuantKernels& k = device.quant_kernels();
        run_job(device, [&] { enqueue_dequantize(device, k, device.stream(), job, source, destination); });
    });
}

}  // namespace grey::cuda
