#include "cuda/quantizer.hpp"

#include "common/quant_layout.h"

#include <cstring>

namespace grey::cuda {
namespace {

// The CUDA launcher of backend::quant::launch_plan: the device's loaded kernels, launched on one stream
// with its context current.
struct CudaLauncher {
    DeviceRuntime& device;
    const QuantKernels& k;
    CUstream stream;

    CUfunction function(quant::Kernel kernel) const {
        switch (kernel) {
            case quant::Kernel::blocks: return k.blocks;
            case quant::Kernel::q8_0: return k.q8_0;
            case quant::Kernel::grouped8: return k.grouped8;
            case quant::Kernel::grouped16: return k.grouped16;
            case quant::Kernel::rows: return k.rows;
            case quant::Kernel::absmax: return k.absmax;
            case quant::Kernel::param_sets: return k.params;
            case quant::Kernel::encode: return k.encode;
            case quant::Kernel::search: return k.search;
            case quant::Kernel::dequant: return k.dequant;
            case quant::Kernel::dequant_fast: return k.dequant_fast;
            case quant::Kernel::measure: return k.measure;
            case quant::Kernel::ragged: return k.ragged;
            case quant::Kernel::dequant_ragged: return k.dequant_ragged;
            case quant::Kernel::measure_ragged: return k.measure_ragged;
        }
        return nullptr;
    }
    unsigned int resident_blocks(CUfunction f, unsigned int threads, unsigned int shared_bytes) const {
        return device.resident_blocks(f, threads, shared_bytes);
    }
    void launch(CUfunction f, unsigned int blocks, unsigned int threads, unsigned int shared_bytes, void** params) const {
        device.launch_on(stream, f, blocks, threads, shared_bytes, params);
    }
    void zero(uint64_t address, uint64_t bytes) const { device.enqueue_fill(stream, address, 0, bytes); }
};

}  // namespace

uint64_t quantize_scratch_bytes(const DeviceRuntime& device, const grey_backend_quant_job& job, CUdeviceptr source, CUdeviceptr destination) {
    return quant::quantize_scratch_bytes(job, device.multiprocessors(), source, destination);
}

void enqueue_quantize(DeviceRuntime& device, const QuantKernels& k, CUstream stream, const grey_backend_quant_job& job, CUdeviceptr source,
                      CUdeviceptr destination, const QuantTargets& targets) {
    quant::Plan plan = quant::plan_quantize(job, device.multiprocessors(), source, destination,
                                            {targets.flags, targets.noticed, targets.scratch, targets.error});
    CudaLauncher launcher{device, k, stream};
    quant::launch_plan(plan, launcher);
}

void enqueue_dequantize(DeviceRuntime& device, const QuantKernels& k, CUstream stream, const grey_backend_quant_job& job, CUdeviceptr source,
                        CUdeviceptr destination) {
    quant::Plan plan = quant::plan_dequantize(job, source, destination);
    CudaLauncher launcher{device, k, stream};
    quant::launch_plan(plan, launcher);
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
        device.run_to_completion([&] {
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
        device.run_to_completion([&] { enqueue_dequantize(device, k, device.stream(), job, source, destination); });
    });
}

}  // namespace grey::cuda
