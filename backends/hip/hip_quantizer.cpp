#include "hip/hip_quantizer.hpp"

#include "common/quant_layout.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace grey::hip {

namespace quant = backend::quant;

QuantKernels::QuantKernels(const HipRuntime& hip, std::string_view target, int ordinal) {
    if (hip.module_occupancy == nullptr)
        throw KernelsUnavailable("no quantization kernels: " + hip.missing("hipModuleOccupancyMaxActiveBlocksPerMultiprocessor"));
    int units = 0;
    hip.check(hip.device_get_attribute(&units, api::kAttributeMultiprocessorCount, ordinal), "hipDeviceGetAttribute(compute units)");
    compute_units_ = static_cast<unsigned int>(std::max(1, units));
    for (size_t f = 0; f < quant::kFamilyCount; ++f)
        modules_[f] = std::make_unique<Module>(hip, code_object_for(quant::module_name(static_cast<quant::Family>(f)), target));
    for (size_t i = 0; i < quant::kKernelCount; ++i) {
        const auto kernel = static_cast<quant::Kernel>(i);
        functions_[i] = modules_[static_cast<size_t>(quant::family_of(kernel))]->function(quant::kernel_name(kernel));
    }
}

namespace {

// The HIP launcher of quant::launch_plan on one stream (nullptr: the null stream), which orders the
// launches and the fills.
struct HipLauncher {
    const HipRuntime& hip;
    const QuantKernels& k;
    api::Stream stream;

    [[nodiscard]] api::Function function(quant::Kernel kernel) const { return k.function(kernel); }
    [[nodiscard]] unsigned int resident_blocks(api::Function f, unsigned int threads, unsigned int shared_bytes) const {
        int per_unit = 0;
        hip.check(hip.module_occupancy(&per_unit, f, static_cast<int>(threads), shared_bytes), "hipModuleOccupancyMaxActiveBlocksPerMultiprocessor");
        return k.compute_units() * static_cast<unsigned int>(std::max(1, per_unit));
    }
    void launch(api::Function f, unsigned int blocks, unsigned int threads, unsigned int shared_bytes, void** params) const {
        grey::hip::launch(hip, f, blocks, threads, shared_bytes, params, stream);
    }
    // hipMemset on the null stream (the synchronous slots need no stream entry point); hipMemsetAsync on
    // a caller's stream.
    void zero(uint64_t address, uint64_t bytes) const {
        if (stream == nullptr) hip.check(hip.mem_set(reinterpret_cast<void*>(address), 0, bytes), "hipMemset");
        else hip.check(hip.mem_set_async(reinterpret_cast<void*>(address), 0, bytes, stream), "hipMemsetAsync");
    }
};

void to_host(const HipRuntime& hip, void* destination, uint64_t source, uint64_t bytes) {
    hip.check(hip.mem_copy(destination, reinterpret_cast<const void*>(source), bytes, api::kMemcpyDeviceToHost), "hipMemcpy");
}
void to_device(const HipRuntime& hip, uint64_t destination, const void* source, uint64_t bytes) {
    hip.check(hip.mem_copy(reinterpret_cast<void*>(destination), source, bytes, api::kMemcpyHostToDevice), "hipMemcpy");
}

}  // namespace

void enqueue_plan(const HipRuntime& hip, const QuantKernels& k, api::Stream stream, quant::Plan& plan) {
    HipLauncher launcher{hip, k, stream};
    quant::launch_plan(plan, launcher);
}

void enqueue_quantize(const HipRuntime& hip, const QuantKernels& k, api::Stream stream, const grey_backend_quant_job& job, uint64_t source,
                      uint64_t destination, const quant::Targets& targets) {
    quant::Plan plan = quant::plan_quantize(job, k.compute_units(), source, destination, targets);
    enqueue_plan(hip, k, stream, plan);
}

void enqueue_dequantize(const HipRuntime& hip, const QuantKernels& k, api::Stream stream, const grey_backend_quant_job& job, uint64_t source,
                        uint64_t destination) {
    quant::Plan plan = quant::plan_dequantize(job, source, destination);
    enqueue_plan(hip, k, stream, plan);
}

void quantize(const HipRuntime& hip, const QuantKernels& k, backend::ChunkPool& pool, const QuantFlags& flags, const grey_backend_quant_job& job,
              uint64_t source, uint64_t destination) {
    const quant::QuantFacts facts = quant::facts_of(job);
    backend::ChunkScratch scratch(pool, quant::quantize_scratch_bytes(job, k.compute_units(), source, destination));
    backend::ChunkScratch error_sums(pool, job.error != nullptr ? sizeof(grey_qk_error) : 0);
    uint32_t noticed = 0;
    grey_qk_error measured{};
    drained_on_failure(hip, [&] {
        enqueue_quantize(hip, k, nullptr, job, source, destination, {flags.flags, flags.noticed, scratch.get(), error_sums.get()});
        // A copy on the null stream waits for the kernels before it.
        to_host(hip, &noticed, flags.noticed, sizeof noticed);
        if (job.error != nullptr) to_host(hip, &measured, error_sums.get(), sizeof measured);
    });
    if (job.error != nullptr) {
        job.error->elements = job.layout->elements;
        job.error->sum_squared_signal = measured.sum_squared_signal;
        job.error->sum_squared_error = measured.sum_squared_error;
        std::memcpy(&job.error->max_abs_error, &measured.max_abs_error_bits, sizeof(double));
    }
    // The kernels set `noticed` whenever they raise a flag, so the flags need reading back only then.
    if (noticed == 0) return;
    grey_qk_flags found{};
    to_host(hip, &found, flags.flags, sizeof found);
    static const grey_qk_flags armed{~uint64_t{0}, ~uint64_t{0}, ~uint64_t{0}};
    static const uint32_t quiet = 0;
    to_device(hip, flags.flags, &armed, sizeof armed);  // re-armed for the next job
    to_device(hip, flags.noticed, &quiet, sizeof quiet);
    quant::throw_if_flagged(found, facts);
}

void dequantize(const HipRuntime& hip, const QuantKernels& k, const grey_backend_quant_job& job, uint64_t source, uint64_t destination) {
    enqueue_dequantize(hip, k, nullptr, job, source, destination);
    hip.check(hip.device_synchronize(), "hipDeviceSynchronize");
}

}  // namespace grey::hip
