#include "cuda/device_runtime.hpp"

#include "common/kv_plan.hpp"

#include <algorithm>
#include <cstdlib>
#include <string_view>
#include <string>

namespace grey::cuda {

PrimaryContext::PrimaryContext(const Driver& driver, CUdevice device) : driver_(driver), device_(device) {
    driver_.check(driver_.cuDevicePrimaryCtxRetain(&context_, device_), "cuDevicePrimaryCtxRetain");
}

PrimaryContext::~PrimaryContext() { (void)driver_.cuDevicePrimaryCtxRelease(device_); }

Stream::Stream(const Driver& driver) : driver_(driver) {
    // Non-blocking: work on it does not wait for the legacy default stream other code may use.
    driver_.check(driver_.cuStreamCreate(&stream_, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
}

Stream::~Stream() { (void)driver_.cuStreamDestroy(stream_); }

Event::Event(const Driver& driver, unsigned int flags) : driver_(driver) {
    driver_.check(driver_.cuEventCreate(&event_, flags), "cuEventCreate");
}

Event::~Event() { (void)driver_.cuEventDestroy(event_); }

PinnedHost::PinnedHost(const Driver& driver, size_t size) : driver_(driver) {
    driver_.check(driver_.cuMemAllocHost(&pointer_, size), "cuMemAllocHost");
}

PinnedHost::~PinnedHost() { (void)driver_.cuMemFreeHost(pointer_); }

Module::Module(const Driver& driver, std::span<const unsigned char> image, const char* what) : driver_(driver) {
    driver_.check(driver_.cuModuleLoadData(&module_, image.data()), (std::string("cuModuleLoadData (") + what + ")").c_str());
}

Module::~Module() { (void)driver_.cuModuleUnload(module_); }

CUfunction Module::function(const char* name) const {
    CUfunction f = nullptr;
    driver_.check(driver_.cuModuleGetFunction(&f, module_, name), (std::string("cuModuleGetFunction(") + name + ")").c_str());
    return f;
}

Kernels::Kernels(const Driver& driver)
    : module(driver, kernel_fatbin(), "the embedded kernel fatbin"),
      fill(module.function("grey_fill")),
      copy(module.function("grey_copy")),
      checksum(module.function("grey_checksum")) {}

QuantKernels::QuantKernels(const Driver& driver)
    : blocks_module(driver, quant_kernel_fatbin(QuantFamily::blocks), "the embedded quantization fatbin (blocks)"),
      q8_0_module(driver, quant_kernel_fatbin(QuantFamily::q8_0), "the embedded quantization fatbin (q8_0)"),
      grouped_module(driver, quant_kernel_fatbin(QuantFamily::grouped), "the embedded quantization fatbin (grouped)"),
      rows_module(driver, quant_kernel_fatbin(QuantFamily::rows), "the embedded quantization fatbin (rows)"),
      global_module(driver, quant_kernel_fatbin(QuantFamily::global), "the embedded quantization fatbin (global)"),
      search_module(driver, quant_kernel_fatbin(QuantFamily::search), "the embedded quantization fatbin (search)"),
      dequantize_module(driver, quant_kernel_fatbin(QuantFamily::dequantize), "the embedded quantization fatbin (dequantize)"),
      measure_module(driver, quant_kernel_fatbin(QuantFamily::measure), "the embedded quantization fatbin (measure)"),
      ragged_module(driver, quant_kernel_fatbin(QuantFamily::ragged), "the embedded quantization fatbin (ragged)"),
      blocks(blocks_module.function("grey_quant_blocks")),
      q8_0(q8_0_module.function("grey_quant_q8_0")),
      grouped8(grouped_module.function("grey_quant_grouped8")),
      grouped16(grouped_module.function("grey_quant_grouped16")),
      rows(rows_module.function("grey_quant_rows")),
      absmax(global_module.function("grey_quant_absmax")),
      params(global_module.function("grey_quant_param_sets")),
      encode(global_module.function("grey_quant_encode")),
      search(search_module.function("grey_quant_search")),
      dequant(dequantize_module.function("grey_dequant")),
      dequant_fast(dequantize_module.function("grey_dequant_fast")),
      measure(measure_module.function("grey_quant_measure")),
      ragged(ragged_module.function("grey_quant_ragged")),
      dequant_ragged(ragged_module.function("grey_dequant_ragged")),
      measure_ragged(ragged_module.function("grey_measure_ragged")) {}

DeviceRuntime::DeviceRuntime(const Driver& driver, CUdevice device, uint64_t memory_bytes)
    : driver_(driver), context_(driver, device) {
    pool_ = std::make_unique<VmmPool>(driver_, device, context_.get(), memory_bytes);
    ContextScope scope(driver_, context_.get());
    stream_ = std::make_unique<Stream>(driver_);
    // Only waited on, never timed: no timing makes record and synchronize cheaper.
    done_ = std::make_unique<Event>(driver_, CU_EVENT_DISABLE_TIMING);
    kernels_ = std::make_unique<Kernels>(driver_);
    int sms = 0;
    driver_.check(driver_.cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device), "cuDeviceGetAttribute(SM count)");
    // Enough blocks to fill every SM several times over; the kernels' grid-stride loops do the rest.
    multiprocessors_ = static_cast<unsigned int>(std::max(1, sms));
    max_blocks_ = multiprocessors_ * 8;
    int major = 0;
    driver_.check(driver_.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device),
                  "cuDeviceGetAttribute(compute capability)");
    driver_.check(driver_.cuDeviceGetAttribute(&shared_optin_, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, device),
                  "cuDeviceGetAttribute(shared memory a block may opt in to)");
    const char* tensor_cores = std::getenv("GREY_CUDA_KV_TENSOR_CORES");
    kv_tensor_cores_ = major >= 8 && !(tensor_cores != nullptr && std::string_view(tensor_cores) == "0");
    checksum_slot_ = pool_->allocate(sizeof(uint64_t));
}

DeviceRuntime::~DeviceRuntime() {
    try {
        ContextScope scope(driver_, context_.get());
        (void)driver_.cuStreamSynchronize(stream_->get());
        quant_kernels_.reset();
        quant_flag_host_.reset();
        kernels_.reset();
        done_.reset();
        stream_.reset();
    } catch (const DriverError&) {
        // The context cannot be made current any more; the objects go with it.
    }
    pool_.reset();
}

void DeviceRuntime::copy_to_device_async(CUdeviceptr destination, const void* source, uint64_t size) {
    driver_.check(driver_.cuMemcpyHtoDAsync(destination, source, size, stream_->get()), "cuMemcpyHtoDAsync");
}

void DeviceRuntime::copy_to_host_async(void* destination, CUdeviceptr source, uint64_t size) {
    driver_.check(driver_.cuMemcpyDtoHAsync(destination, source, size, stream_->get()), "cuMemcpyDtoHAsync");
}

void DeviceRuntime::copy_on_device_async(CUdeviceptr destination, CUdeviceptr source, uint64_t size) {
    driver_.check(driver_.cuMemcpyDtoDAsync(destination, source, size, stream_->get()), "cuMemcpyDtoDAsync");
}

void DeviceRuntime::launch(CUfunction function, uint64_t size, void** params) { launch_sized_on(stream_->get(), function, size, params); }

void DeviceRuntime::launch_sized_on(CUstream stream, CUfunction function, uint64_t size, void** params) {
    constexpr unsigned int kThreads = 256;
    constexpr uint64_t kBytesPerThread = 16;
    const uint64_t wanted = (size + kThreads * kBytesPerThread - 1) / (kThreads * kBytesPerThread);
    const auto blocks = static_cast<unsigned int>(std::clamp<uint64_t>(wanted, 1, max_blocks_));
    driver_.check(driver_.cuLaunchKernel(function, blocks, 1, 1, kThreads, 1, 1, 0, stream, params, nullptr), "cuLaunchKernel");
}

void DeviceRuntime::launch(CUfunction function, unsigned int blocks, unsigned int threads, unsigned int shared_bytes, void** params) {
    launch_on(stream_->get(), function, blocks, threads, shared_bytes, params);
}

void DeviceRuntime::launch_on(CUstream stream, CUfunction function, unsigned int blocks, unsigned int threads, unsigned int shared_bytes,
                              void** params) {
    driver_.check(driver_.cuLaunchKernel(function, blocks, 1, 1, threads, 1, 1, shared_bytes, stream, params, nullptr), "cuLaunchKernel");
}

void DeviceRuntime::launch(CUfunction function, Grid grid, unsigned int threads, unsigned int shared_bytes, void** params) {
    launch_on(stream_->get(), function, grid, threads, shared_bytes, params);
}

void DeviceRuntime::launch_on(CUstream stream, CUfunction function, Grid grid, unsigned int threads, unsigned int shared_bytes, void** params) {
    driver_.check(driver_.cuLaunchKernel(function, grid.x, grid.y, grid.z, threads, 1, 1, shared_bytes, stream, params, nullptr), "cuLaunchKernel");
}

KvKernels::KvKernels(const Driver& driver, int shared_optin)
    : module(driver, kv_kernel_fatbin(), "the embedded KV cache fatbin"),
      store(module.function("grey_kv_store")),
      compress(module.function("grey_kv_compress")),
      compress_warps(module.function("grey_kv_compress_warps")),
      combine(module.function("grey_kv_attend_combine")) {
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) attend_split[i][j] = module.function(backend::kv::kernel_name(backend::kv::split_kernel(i, j)));
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 3; ++j) {
            attend_mma[i][j] = module.function(backend::kv::kernel_name(backend::kv::mma_kernel(i, j)));
            driver.check(driver.cuFuncSetAttribute(attend_mma[i][j], CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, shared_optin),
                         "cuFuncSetAttribute(dynamic shared memory)");
        }
    // The compression's staging buffers come beside its static shared memory.
    compress_staging_limit = static_cast<unsigned int>(std::max(0, shared_optin - GREY_KVK_COMPRESS_STATIC_SHARED));
    driver.check(driver.cuFuncSetAttribute(compress, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, static_cast<int>(compress_staging_limit)),
                 "cuFuncSetAttribute(dynamic shared memory)");
}

const KvKernels& DeviceRuntime::kv_kernels() {
    if (!kv_kernels_) kv_kernels_ = std::make_unique<KvKernels>(driver_, shared_optin_);
    return *kv_kernels_;
}

CodecKernels::CodecKernels(const Driver& driver)
    : module(driver, codec_kernel_fatbin(), "the embedded codec fatbin"),
      decode(module.function("grey_codec_decode")),
      block_hash(module.function("grey_block_hash")) {}

const CodecKernels& DeviceRuntime::codec_kernels() {
    if (!codec_kernels_) codec_kernels_ = std::make_unique<CodecKernels>(driver_);
    return *codec_kernels_;
}

const QuantKernels& DeviceRuntime::quant_kernels() {
    if (!quant_kernels_) {
        auto kernels = std::make_unique<QuantKernels>(driver_);
        if (!quant_flag_host_) {
            auto host = std::make_unique<PinnedHost>(driver_, sizeof(QuantHost));
            CUdeviceptr noticed = 0;
            driver_.check(driver_.cuMemHostGetDevicePointer(&noticed, &static_cast<QuantHost*>(host->get())->noticed, 0),
                          "cuMemHostGetDevicePointer");
            quant_noticed_device_ = noticed;
            quant_flag_host_ = std::move(host);
        }
        if (quant_flags_slot_ == 0) {
            const CUdeviceptr slot = pool_->allocate(sizeof(grey_qk_flags));
            const grey_qk_flags none{~uint64_t{0}, ~uint64_t{0}, ~uint64_t{0}};
            try {
                copy_to_device_async(slot, &none, sizeof none);
                finish();
            } catch (...) {
                pool_->release(slot);
                throw;
            }
            quant_flags_slot_ = slot;
        }
        quant_kernels_ = std::move(kernels);
    }
    return *quant_kernels_;
}

unsigned int DeviceRuntime::resident_blocks(CUfunction function, unsigned int threads, unsigned int shared_bytes) {
    const auto key = std::make_tuple(function, threads, shared_bytes);
    std::lock_guard lock(occupancy_mutex_);
    if (const auto known = resident_blocks_.find(key); known != resident_blocks_.end()) return known->second;
    int per_multiprocessor = 0;
    driver_.check(driver_.cuOccupancyMaxActiveBlocksPerMultiprocessor(&per_multiprocessor, function, static_cast<int>(threads), shared_bytes),
                  "cuOccupancyMaxActiveBlocksPerMultiprocessor");
    return resident_blocks_[key] = multiprocessors_ * static_cast<unsigned int>(std::max(1, per_multiprocessor));
}

void DeviceRuntime::fill_async(CUdeviceptr destination, uint8_t value, uint64_t size) { enqueue_fill(stream_->get(), destination, value, size); }

void DeviceRuntime::enqueue_fill(CUstream stream, CUdeviceptr destination, uint8_t value, uint64_t size) {
    unsigned long long n = size;
    unsigned int v = value;
    void* params[] = {&destination, &n, &v};
    launch_sized_on(stream, kernels_->fill, size, params);
}

void DeviceRuntime::kernel_copy_async(CUdeviceptr destination, CUdeviceptr source, uint64_t size) {
    unsigned long long n = size;
    void* params[] = {&destination, &source, &n};
    launch(kernels_->copy, size, params);
}

void DeviceRuntime::finish() {
    driver_.check(driver_.cuEventRecord(done_->get(), stream_->get()), "cuEventRecord");
    driver_.check(driver_.cuEventSynchronize(done_->get()), "cuEventSynchronize");
}

void DeviceRuntime::drain() noexcept { (void)driver_.cuStreamSynchronize(stream_->get()); }

void DeviceRuntime::write(CUdeviceptr destination, const void* source, uint64_t size) {
    std::lock_guard lock(mutex_);
    ContextScope scope(driver_, context_.get());
    copy_to_device_async(destination, source, size);
    finish();
}

void DeviceRuntime::read(void* destination, CUdeviceptr source, uint64_t size) {
    std::lock_guard lock(mutex_);
    ContextScope scope(driver_, context_.get());
    copy_to_host_async(destination, source, size);
    finish();
}

void DeviceRuntime::copy(CUdeviceptr destination, CUdeviceptr source, uint64_t size) {
    std::lock_guard lock(mutex_);
    ContextScope scope(driver_, context_.get());
    kernel_copy_async(destination, source, size);
    finish();
}

void DeviceRuntime::fill(CUdeviceptr destination, uint8_t value, uint64_t size) {
    std::lock_guard lock(mutex_);
    ContextScope scope(driver_, context_.get());
    fill_async(destination, value, size);
    finish();
}

uint64_t DeviceRuntime::checksum(CUdeviceptr source, uint64_t size) {
    std::lock_guard lock(mutex_);
    ContextScope scope(driver_, context_.get());
    const uint64_t zero = 0;
    uint64_t sum = 0;
    copy_to_device_async(checksum_slot_, &zero, sizeof zero);
    unsigned long long n = size;
    void* params[] = {&source, &n, &checksum_slot_};
    launch(kernels_->checksum, size, params);
    copy_to_host_async(&sum, checksum_slot_, sizeof sum);
    finish();
    return sum;
}

void DeviceRuntime::memory_info(uint64_t& free, uint64_t& total) {
    ContextScope scope(driver_, context_.get());
    size_t f = 0, t = 0;
    driver_.check(driver_.cuMemGetInfo(&f, &t), "cuMemGetInfo");
    free = f;
    total = t;
}

}  // namespace grey::cuda
