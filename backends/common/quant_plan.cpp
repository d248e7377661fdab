#include "common/quant_plan.hpp"

#include "common/numeric.hpp"
#include "common/quant_coding.hpp"
#include "common/quant_layout.h"
#include "common/quant_text.hpp"

#include <stdexcept>
#include <string>

namespace grey::backend::quant {
namespace {

using Layout = grey_quant_layout;

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

bool aligned16(uint64_t address) { return address % 16 == 0; }

// grey_quant_blocks: a lane per 32 elements of a group of 32, 64 or 128, both tensors 16-byte aligned.
bool blocks_fit(const Layout& plan, uint64_t plain, uint64_t quantized) {
    return aligned16(plain) && aligned16(quantized) && plan.elements / 32 < kFastIndexLimit &&
           (plan.run_length == 32 || plan.run_length == 64 || plan.run_length == 128);
}

// grey_dequant_fast: chunks of four elements that share a parameter set, both tensors 16-byte aligned.
bool fast_dequant_fits(const Layout& plan, uint64_t plain, uint64_t quantized) {
    return aligned16(plain) && aligned16(quantized) && plan.elements % 4 == 0 && plan.elements / 4 < kFastIndexLimit &&
           plan.run_length % 4 == 0 && plan.param_count < kFastIndexLimit;
}

Path choose_path(const Layout& plan, unsigned int multiprocessors, uint64_t plain, uint64_t quantized) {
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
        (plan.param_count >= multiprocessors || plan.elements <= kSmallTensor))
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

const Layout& layout_of(const grey_backend_quant_job& job) {
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

grey_qk_args make_args(const Layout& plan, grey_dtype dtype, uint64_t plain, uint64_t quantized) {
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
grey_qk_rows make_rows(const Layout& plan) {
    grey_qk_rows rows{};
    rows.row_length = plan.row_length;
    rows.row_bytes = grey_quant_layout_row_bytes(&plan);
    rows.groups_per_row = grey_quant_layout_groups_per_row(&plan);
    rows.mse = plan.calibration == GREY_CALIBRATION_MSE ? 1 : 0;
    return rows;
}

// Where a job's scratch begins: the codings first, then the per-set maxima on 16 bytes.
uint64_t codings_bytes(const Layout& plan, Path path) {
    return path == Path::global || path == Path::search ? plan.param_count * sizeof(grey::common::Coding) : 0;
}
uint64_t absmax_offset(const Layout& plan, Path path) { return (codings_bytes(plan, path) + 15) / 16 * 16; }

Step resident(Kernel kernel, uint64_t work_threads, unsigned int threads, unsigned int shared_bytes = 0, Arguments arguments = Arguments::args) {
    return Step{kernel, Grid::resident, arguments, work_threads, threads, shared_bytes, 0, 0};
}
Step spread(Kernel kernel, uint64_t work_threads, unsigned int threads) {
    return Step{kernel, Grid::spread, Arguments::args, work_threads, threads, 0, 0, 0};
}
Step zero(uint64_t address, uint64_t bytes) {
    Step s;
    s.zero_address = address;
    s.zero_bytes = bytes;
    return s;
}

}  // namespace

Divider divider_for(uint64_t d) {
    if (d == 0 || d > kFastIndexLimit) throw std::invalid_argument("divider_for: the divisor must be in 1 .. 2^31");
    int32_t ceil_log2 = 0;
    while ((uint64_t{1} << ceil_log2) < d) ++ceil_log2;
    const int32_t shift = 32 + ceil_log2;
    return {((uint64_t{1} << shift) + d - 1) / d, shift};
}

const char* kernel_name(Kernel kernel) {
    static constexpr const char* kNames[kKernelCount] = {
        "grey_quant_blocks", "grey_quant_q8_0", "grey_quant_grouped8", "grey_quant_grouped16", "grey_quant_rows",
        "grey_quant_absmax", "grey_quant_param_sets", "grey_quant_encode", "grey_quant_search", "grey_dequant",
        "grey_dequant_fast", "grey_quant_measure", "grey_quant_ragged", "grey_dequant_ragged", "grey_measure_ragged"};
    return kNames[static_cast<size_t>(kernel)];
}

Family family_of(Kernel kernel) {
    switch (kernel) {
        case Kernel::blocks: return Family::blocks;
        case Kernel::q8_0: return Family::q8_0;
        case Kernel::grouped8:
        case Kernel::grouped16: return Family::grouped;
        case Kernel::rows: return Family::rows;
        case Kernel::absmax:
        case Kernel::param_sets:
        case Kernel::encode: return Family::global;
        case Kernel::search: return Family::search;
        case Kernel::dequant:
        case Kernel::dequant_fast: return Family::dequantize;
        case Kernel::measure: return Family::measure;
        case Kernel::ragged:
        case Kernel::dequant_ragged:
        case Kernel::measure_ragged: return Family::ragged;
    }
    throw std::logic_error("family_of: unknown kernel");
}

const char* module_name(Family family) {
    static constexpr const char* kNames[kFamilyCount] = {"quant_blocks", "quant_q8_0",       "quant_grouped", "quant_rows",  "quant_global",
                                                         "quant_search", "quant_dequantize", "quant_measure", "quant_ragged"};
    return kNames[static_cast<size_t>(family)];
}

uint64_t quantize_scratch_bytes(const grey_backend_quant_job& job, unsigned int multiprocessors, uint64_t source, uint64_t destination) {
    const Layout& plan = layout_of(job);
    const Path path = choose_path(plan, multiprocessors, source, destination);
    if (path == Path::global) return absmax_offset(plan, path) + plan.param_count * sizeof(uint32_t);
    return codings_bytes(plan, path);
}

Plan plan_quantize(const grey_backend_quant_job& job, unsigned int multiprocessors, uint64_t source, uint64_t destination,
                   const Targets& targets) {
    const Layout& layout = layout_of(job);
    Plan p;
    p.args = make_args(layout, job.plain_dtype, source, destination);
    grey_qk_args& a = p.args;
    const uint64_t sets = layout.param_count;
    const uint64_t n = layout.elements;
    const Path path = choose_path(layout, multiprocessors, source, destination);
    a.flags = targets.flags;
    a.noticed = targets.noticed;
    a.codings = codings_bytes(layout, path) != 0 ? targets.scratch : 0;
    a.absmax_bits = path == Path::global ? targets.scratch + absmax_offset(layout, path) : 0;
    p.error = targets.error;
    p.rows = make_rows(layout);
    switch (path) {
        case Path::blocks: p.add(resident(Kernel::blocks, n / 32, GREY_QK_BLOCKS_THREADS)); break;
        case Path::q8_0: {
            const uint64_t warp_blocks = GREY_QK_Q8_WARP_BLOCKS(a.dtype == GREY_QK_F32);
            p.add(spread(Kernel::q8_0, (n / 32 + warp_blocks - 1) / warp_blocks * 32, GREY_QK_Q8_THREADS));
            break;
        }
        case Path::grouped:
            if (layout.format == GREY_QUANT_Q8_0 || layout.format == GREY_QUANT_Q4_0) p.add(resident(Kernel::grouped8, n / 8, kThreads));
            else p.add(resident(Kernel::grouped16, n / 16, kThreads));
            break;
        case Path::rows: p.add(resident(Kernel::rows, sets * kThreads, kThreads)); break;
        case Path::global: {
            p.add(zero(a.absmax_bits, sets * sizeof(uint32_t)));
            const auto shared = static_cast<unsigned int>(sets <= kSharedStatistics ? sets * sizeof(uint32_t) : 0);
            p.add(resident(Kernel::absmax, (n + 15) / 16, kThreads, shared));
            p.add(resident(Kernel::param_sets, sets, kThreads));
            p.add(resident(Kernel::encode, (n + 3) / 4, kThreads));
            break;
        }
        case Path::search:
            p.add(resident(Kernel::search, sets, kSearchThreads));
            p.add(resident(Kernel::encode, grey::common::is_ggml(layout.format) ? sets : (n + 3) / 4, kThreads));
            break;
        case Path::ragged: p.add(resident(Kernel::ragged, sets, kSearchThreads, 0, Arguments::args_rows)); break;
    }
    if (p.error != 0) {  // the report, measured here: neither tensor crosses to the host
        p.add(zero(p.error, sizeof(grey_qk_error)));
        if (path == Path::ragged) p.add(resident(Kernel::measure_ragged, n, kThreads, 0, Arguments::args_rows_error));
        else p.add(resident(Kernel::measure, (n + 3) / 4, kThreads, 0, Arguments::args_error));
    }
    return p;
}

Plan plan_dequantize(const grey_backend_quant_job& job, uint64_t source, uint64_t destination) {
    const Layout& layout = layout_of(job);
    Plan p;
    p.args = make_args(layout, job.plain_dtype, destination, source);
    p.rows = make_rows(layout);
    if (grey_quant_layout_has_rows(&layout)) {
        p.add(resident(Kernel::dequant_ragged, layout.elements, kThreads, 0, Arguments::args_rows));
    } else if (fast_dequant_fits(layout, destination, source)) {
        const uint64_t chunks = layout.elements / 4;
        p.add(spread(Kernel::dequant_fast, (chunks + GREY_QK_DEQUANT_FAST_CHUNKS - 1) / GREY_QK_DEQUANT_FAST_CHUNKS, kThreads));
    } else p.add(resident(Kernel::dequant, (layout.elements + 7) / 8, kThreads));
    return p;
}

QuantFacts facts_of(const grey_backend_quant_job& job) {
    const Layout& plan = layout_of(job);
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

}  // namespace grey::backend::quant
