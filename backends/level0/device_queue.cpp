#include "level0/device_queue.hpp"

#include "common/checksum.hpp"
#include "level0/checksum_kernel.hpp"
#include "level0/fill_copy_kernels.hpp"
#include "level0/kernel_images.hpp"
#include "level0/kv_launch.hpp"
#include "level0/quant_launch.hpp"

#include <optional>
#include <string>
#include <vector>

namespace grey::level0 {

namespace {

backend::ChunkPool::AllocateChunk chunk_allocator(const ZeLibrary& ze, ze_context_handle_t context, ze_device_handle_t device) {
    return [&ze, context, device](uint64_t bytes) {
        ze_device_mem_alloc_desc_t desc{};
        desc.stype = ZE_STRUCTURE_TYPE_DEVICE_MEM_ALLOC_DESC;
        void* memory = nullptr;
        const ze_result_t r = ze.zeMemAllocDevice(context, &desc, bytes, backend::ChunkPool::kAlignment, device, &memory);
        if (r == ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY || r == ZE_RESULT_ERROR_UNSUPPORTED_SIZE)
            throw backend::PoolOutOfMemory(ZeLibrary::describe(r, "zeMemAllocDevice"));
        ZeLibrary::check(r, "zeMemAllocDevice");
        return reinterpret_cast<uint64_t>(memory);
    };
}

}  // namespace

DeviceQueue::DeviceQueue(const ZeLibrary& ze, ze_context_handle_t context, ze_device_handle_t device)
    : ze_(ze), context_(context), device_(device),
      pool_(chunk_allocator(ze, context, device), [&ze, context](uint64_t address) {
          (void)ze.zeMemFree(context, reinterpret_cast<void*>(address));
      }) {
    ze_command_queue_desc_t desc{};
    desc.stype = ZE_STRUCTURE_TYPE_COMMAND_QUEUE_DESC;
    desc.ordinal = 0;  // the first queue group, which Level Zero drivers give compute and copy
    desc.mode = ZE_COMMAND_QUEUE_MODE_SYNCHRONOUS;
    desc.priority = ZE_COMMAND_QUEUE_PRIORITY_NORMAL;
    ZeLibrary::check(ze_.zeCommandListCreateImmediate(context_, device_, &desc, &list_), "zeCommandListCreateImmediate");
}

DeviceQueue::~DeviceQueue() {
    for (const auto& [name, kernel] : kernels_) (void)ze_.zeKernelDestroy(kernel);
    for (ze_module_handle_t module : modules_)
        if (module != nullptr) (void)ze_.zeModuleDestroy(module);
    if (list_ != nullptr) (void)ze_.zeCommandListDestroy(list_);
}

void DeviceQueue::copy_locked(void* destination, const void* source, uint64_t size) {
    ZeLibrary::check(ze_.zeCommandListAppendMemoryCopy(list_, destination, source, size, nullptr, 0, nullptr), "zeCommandListAppendMemoryCopy");
}

void DeviceQueue::append_copy(void* destination, const void* source, uint64_t size) {
    std::lock_guard lock(mutex_);
    copy_locked(destination, source, size);
}

ze_module_handle_t DeviceQueue::module_locked(KernelModule which) {
    ze_module_handle_t& module = modules_[static_cast<uint32_t>(which)];
    if (module != nullptr) return module;
    const auto spirv = spirv_image(which);
    ze_module_desc_t desc{};
    desc.stype = ZE_STRUCTURE_TYPE_MODULE_DESC;
    desc.format = ZE_MODULE_FORMAT_IL_SPIRV;
    desc.inputSize = spirv.size();
    desc.pInputModule = spirv.data();
    desc.pBuildFlags = module_build_flags(which);
    ze_module_build_log_handle_t log = nullptr;
    ze_module_handle_t created = nullptr;
    const ze_result_t r = ze_.zeModuleCreate(context_, device_, &desc, &created, &log);
    std::string text;
    if (log != nullptr) {
        size_t length = 0;
        if (ze_.zeModuleBuildLogGetString(log, &length, nullptr) == ZE_RESULT_SUCCESS && length > 1) {
            text.resize(length);
            if (ze_.zeModuleBuildLogGetString(log, &length, text.data()) != ZE_RESULT_SUCCESS) text.clear();
            text.resize(text.empty() ? 0 : length - 1);  // the terminating NUL
        }
        (void)ze_.zeModuleBuildLogDestroy(log);
    }
    if (r != ZE_RESULT_SUCCESS)
        throw ZeError(r, ZeLibrary::describe(r, "zeModuleCreate") + " for " + module_name(which) + " (SPIR-V, " + std::to_string(spirv.size()) +
                             " bytes)" + (text.empty() ? std::string() : "; build log: " + text));
    module = created;
    return module;
}

ze_kernel_handle_t DeviceQueue::kernel_locked(KernelModule which, const char* name, uint32_t group_size) {
    for (const auto& [known, kernel] : kernels_)
        if (known == name) return kernel;
    const ze_module_handle_t module = module_locked(which);
    ze_kernel_desc_t desc{};
    desc.stype = ZE_STRUCTURE_TYPE_KERNEL_DESC;
    desc.pKernelName = name;
    ze_kernel_handle_t kernel = nullptr;
    if (const ze_result_t k = ze_.zeKernelCreate(module, &desc, &kernel); k != ZE_RESULT_SUCCESS)
        throw ZeError(k, ZeLibrary::describe(k, "zeKernelCreate") + " (" + name + " of " + module_name(which) + ")");
    if (const ze_result_t g = ze_.zeKernelSetGroupSize(kernel, group_size, 1, 1); g != ZE_RESULT_SUCCESS) {
        (void)ze_.zeKernelDestroy(kernel);
        throw ZeError(g, ZeLibrary::describe(g, "zeKernelSetGroupSize") + " (" + name + ")");
    }
    // Memory a kernel reaches through an address it reads (not a pointer argument) must be declared, or
    // the driver need not make it resident.
    if (which == KernelModule::kv)
        if (const ze_result_t i = ze_.zeKernelSetIndirectAccess(kernel, ZE_KERNEL_INDIRECT_ACCESS_FLAG_DEVICE); i != ZE_RESULT_SUCCESS) {
            (void)ze_.zeKernelDestroy(kernel);
            throw ZeError(i, ZeLibrary::describe(i, "zeKernelSetIndirectAccess") + " (" + name + " of " + module_name(which) + ")");
        }
    kernels_.emplace_back(name, kernel);
    return kernel;
}

void DeviceQueue::launch_locked(ze_kernel_handle_t kernel, uint32_t groups, std::initializer_list<std::pair<size_t, const void*>> arguments) {
    launch_on_locked(list_, kernel, groups, arguments);
}

void DeviceQueue::launch_on_locked(ze_command_list_handle_t list, ze_kernel_handle_t kernel, uint32_t groups,
                                   std::initializer_list<std::pair<size_t, const void*>> arguments) {
    const auto check = [&](ze_result_t result, const char* call) {
        if (result == ZE_RESULT_SUCCESS) return;
        std::string name = "?";
        for (const auto& [known, handle] : kernels_)
            if (handle == kernel) name = known;
        throw ZeError(result, ZeLibrary::describe(result, call) + " (" + name + ")");
    };
    uint32_t index = 0;
    for (const auto& [size, value] : arguments) check(ze_.zeKernelSetArgumentValue(kernel, index++, size, value), "zeKernelSetArgumentValue");
    const ze_group_count_t launch{groups, 1, 1};
    check(ze_.zeCommandListAppendLaunchKernel(list, kernel, &launch, nullptr, 0, nullptr), "zeCommandListAppendLaunchKernel");
}

namespace {

// Pool memory for the length of a call.
class Scratch {
public:
    Scratch(backend::ChunkPool& pool, uint64_t bytes) : pool_(pool), address_(pool.allocate(bytes)) {}
    ~Scratch() { pool_.release(address_); }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    [[nodiscard]] void* pointer() const noexcept { return reinterpret_cast<void*>(address_); }

private:
    backend::ChunkPool& pool_;
    uint64_t address_;
};

// A kernel argument holding a device pointer.
struct PointerArgument {
    const void* pointer;
    [[nodiscard]] std::pair<size_t, const void*> argument() const noexcept { return {sizeof pointer, &pointer}; }
};

template <typename T>
std::pair<size_t, const void*> value_argument(const T& value) noexcept {
    return {sizeof value, &value};
}

}  // namespace

uint64_t DeviceQueue::checksum(uint64_t source, uint64_t size) {
    const uint32_t groups = checksum_group_count(size);
    const uint64_t items = uint64_t{groups} * kChecksumGroupSize;
    std::vector<uint64_t> partial(items);
    const Scratch scratch(pool_, items * sizeof(uint64_t));  // the partial sums
    {
        std::lock_guard lock(mutex_);
        const ze_kernel_handle_t kernel = kernel_locked(KernelModule::checksum, kChecksumKernelName, kChecksumGroupSize);
        const PointerArgument from{reinterpret_cast<const void*>(source)}, sums{scratch.pointer()};
        const uint64_t n = size, step = common::kChecksumWeightStep, base = common::kChecksumWeightBase;
        launch_locked(kernel, groups, {from.argument(), value_argument(n), value_argument(step), value_argument(base), sums.argument()});
        copy_locked(partial.data(), scratch.pointer(), items * sizeof(uint64_t));
    }
    uint64_t sum = 0;
    for (uint64_t p : partial) sum += p;  // modulo 2^64, in any order
    return sum;
}

// The kernels of one quantize job on this queue; the job holds the queue's lock throughout.
class DeviceQueue::QuantRun final : public QuantKernels {
public:
    QuantRun(DeviceQueue& queue, uint64_t plain, uint64_t quantized) : q_(queue), plain_{reinterpret_cast<const void*>(plain)},
        quantized_(quantized) {}

    std::vector<grey_ql0_stats> statistics(const grey_ql0_args& args) override {
        const uint64_t pieces = stats_items(args);
        const Scratch found(q_.pool_, pieces * sizeof(grey_ql0_stats));
        const PointerArgument out{found.pointer()};
        q_.launch_locked(q_.kernel_locked(KernelModule::quant, kQuantStatsKernelName, kQuantGroupSize), quant_group_count(pieces),
                         {plain_.argument(), out.argument(), value_argument(args)});
        std::vector<grey_ql0_stats> stats(pieces);
        q_.copy_locked(stats.data(), found.pointer(), pieces * sizeof(grey_ql0_stats));
        return stats;
    }

    std::vector<double> search(const grey_ql0_args& args, std::span<const common::Coding> codings, uint32_t steps) override {
        const uint64_t items = grey_quant_layout_runs(&args.layout) * steps;
        const Scratch tried(q_.pool_, codings.size_bytes()), errors(q_.pool_, items * sizeof(double));
        q_.copy_locked(tried.pointer(), codings.data(), codings.size_bytes());
        const PointerArgument codings_pointer{tried.pointer()}, out{errors.pointer()};
        q_.launch_locked(q_.kernel_locked(KernelModule::quant_mse, kQuantSearchKernelName, kQuantGroupSize), quant_group_count(items),
                         {plain_.argument(), codings_pointer.argument(), out.argument(), value_argument(args), value_argument(steps)});
        std::vector<double> result(items);
        q_.copy_locked(result.data(), errors.pointer(), items * sizeof(double));
        return result;
    }

    std::vector<double> refit_sums(const grey_ql0_args& args, std::span<const common::Coding> codings) override {
        const uint64_t runs = grey_quant_layout_runs(&args.layout);
        const Scratch best(q_.pool_, codings.size_bytes()), sums(q_.pool_, 4 * runs * sizeof(double));
        q_.copy_locked(best.pointer(), codings.data(), codings.size_bytes());
        const PointerArgument codings_pointer{best.pointer()}, out{sums.pointer()};
        q_.launch_locked(q_.kernel_locked(KernelModule::quant_mse, kQuantRefitKernelName, kQuantGroupSize), quant_group_count(runs),
                         {plain_.argument(), codings_pointer.argument(), out.argument(), value_argument(args)});
        std::vector<double> result(4 * runs);
        q_.copy_locked(result.data(), sums.pointer(), result.size() * sizeof(double));
        return result;
    }

    void encode(const grey_ql0_args& args, std::span<const common::Coding> codings, std::span<const std::byte> parameters) override {
        const Scratch chosen(q_.pool_, codings.size_bytes());
        q_.copy_locked(chosen.pointer(), codings.data(), codings.size_bytes());
        if (!parameters.empty()) q_.copy_locked(reinterpret_cast<void*>(quantized_ + args.layout.codes_bytes), parameters.data(), parameters.size());
        const PointerArgument to{reinterpret_cast<const void*>(quantized_)}, codings_pointer{chosen.pointer()};
        q_.launch_locked(q_.kernel_locked(KernelModule::quant, kQuantEncodeKernelName, kQuantGroupSize), quant_group_count(encode_items(args.layout)),
                         {plain_.argument(), to.argument(), codings_pointer.argument(), value_argument(args)});
    }

private:
    DeviceQueue& q_;
    const PointerArgument plain_;
    uint64_t quantized_;
};

void DeviceQueue::quantize(const grey_quant_layout& layout, grey_dtype plain_dtype, uint64_t plain, uint64_t quantized) {
    check_supported(layout, plain_dtype);
    std::lock_guard lock(mutex_);
    QuantRun run(*this, plain, quantized);
    level0::quantize(run, quant_args(layout, plain_dtype, 0, 0));
}

void DeviceQueue::dequantize_on_locked(ze_command_list_handle_t list, const grey_quant_layout& layout, grey_dtype plain_dtype, uint64_t quantized,
                                       uint64_t plain) {
    const grey_ql0_args args = quant_args(layout, plain_dtype, 0, 0);
    const PointerArgument from{reinterpret_cast<const void*>(quantized)}, to{reinterpret_cast<const void*>(plain)};
    const ze_kernel_handle_t decode = kernel_locked(KernelModule::quant, kQuantDecodeKernelName, kQuantGroupSize);
    launch_on_locked(list, decode, quant_group_count(decode_items(layout)), {from.argument(), to.argument(), value_argument(args)});
}

void DeviceQueue::dequantize(const grey_quant_layout& layout, grey_dtype plain_dtype, uint64_t quantized, uint64_t plain) {
    check_supported(layout, plain_dtype);
    std::lock_guard lock(mutex_);
    dequantize_on_locked(list_, layout, plain_dtype, quantized, plain);
}

// The kernel's arguments are set under mutex_ and captured by the append, so the synchronous list may
// use the kernel again at once. Lock order: the queue's, then the stream's (inside submit).
void DeviceQueue::enqueue_dequantize(ZeStream& stream, const grey_quant_layout& layout, grey_dtype plain_dtype, uint64_t quantized, uint64_t plain) {
    check_supported(layout, plain_dtype);
    std::lock_guard lock(mutex_);
    stream.submit([&](ze_command_list_handle_t list) { dequantize_on_locked(list, layout, plain_dtype, quantized, plain); });
}

namespace {

// A table of host values in pool memory for the length of a call, written there by `copy` (the queue's
// copy_locked).
class Upload : public backend::ChunkScratch {
public:
    template <typename T, typename Copy>
    Upload(backend::ChunkPool& pool, std::span<const T> values, Copy&& copy) : backend::ChunkScratch(pool, values.size_bytes()) {
        if (!values.empty()) copy(reinterpret_cast<void*>(get()), values.data(), values.size_bytes());
    }
};

}  // namespace

void DeviceQueue::kv_store(const common::KvLayout& layout, uint32_t layer_first, uint32_t layer_count, uint64_t keys, uint64_t values,
                           std::span<const uint64_t> blocks, std::span<const uint32_t> slots, grey_dtype dtype, uint64_t* first_non_finite) {
    if (first_non_finite != nullptr) *first_non_finite = UINT64_MAX;
    if (blocks.empty() || layer_count == 0) return;
    kv_check_layout(layout, layout.kv_heads);
    const auto tokens = static_cast<uint32_t>(blocks.size());
    std::lock_guard lock(mutex_);
    const auto copy = [this](void* to, const void* from, uint64_t size) { copy_locked(to, from, size); };
    const ze_kernel_handle_t kernel = kernel_locked(KernelModule::kv, kKvStoreKernelName, kKvGroupSize);
    const Upload block_table(pool_, blocks, copy), slot_table(pool_, slots, copy);
    const backend::ChunkScratch rotated(pool_, kv_store_rotated_bytes(layout, layer_count, tokens));
    grey_kvl0_store_args args = kv_store_args(layout, layer_first, layer_count, tokens, keys, values, block_table.get(), slot_table.get(),
                                              rotated.get(), dtype);
    const backend::ChunkScratch checks(pool_, first_non_finite != nullptr ? kv_store_checks_bytes(args) : 0);
    args.checks = checks.get();
    launch_locked(kernel, kv_group_count(kv_store_items(args)), {value_argument(args)});
    if (first_non_finite == nullptr) return;
    // The list is synchronous: the copy runs after the kernel.
    std::vector<uint32_t> rows(kv_store_checks_bytes(args) / sizeof(uint32_t));
    copy_locked(rows.data(), reinterpret_cast<const void*>(static_cast<uintptr_t>(args.checks)), kv_store_checks_bytes(args));
    *first_non_finite = kv_store_first_non_finite(args, rows);
}

void DeviceQueue::kv_compress(const common::KvLayout& layout, std::span<const uint64_t> sources, std::span<const uint64_t> destinations) {
    if (sources.empty()) return;
    kv_check_layout(layout, layout.kv_heads);
    std::lock_guard lock(mutex_);
    const auto copy = [this](void* to, const void* from, uint64_t size) { copy_locked(to, from, size); };
    const ze_kernel_handle_t params = kernel_locked(KernelModule::kv, kKvParamsKernelName, kKvGroupSize);
    const ze_kernel_handle_t codes = kernel_locked(KernelModule::kv, kKvCodesKernelName, kKvGroupSize);
    const Upload from(pool_, sources, copy), to(pool_, destinations, copy);
    const grey_kvl0_compress_args args = kv_compress_args(layout, static_cast<uint32_t>(sources.size()), from.get(), to.get());
    // The list is synchronous: the codes kernel starts once every parameter it reads is written.
    launch_locked(params, kv_group_count(kv_params_items(args)), {value_argument(args)});
    launch_locked(codes, kv_group_count(kv_codes_items(args)), {value_argument(args)});
}

void DeviceQueue::kv_attend(const common::KvLayout& layout, std::span<const uint64_t> entries, std::span<const grey_kvl0_sequence> sequences,
                            uint32_t layer, uint32_t query_heads, float scale, uint64_t queries, uint64_t output) {
    kv_check_layout(layout, query_heads);
    if (sequences.empty()) return;
    const auto batch = static_cast<uint32_t>(sequences.size());
    std::lock_guard lock(mutex_);
    const auto copy = [this](void* to, const void* from, uint64_t size) { copy_locked(to, from, size); };
    const ze_kernel_handle_t kernel = kernel_locked(KernelModule::kv, kKvAttendKernelName, kKvGroupSize);
    const Upload block_table(pool_, entries, copy), sequence_table(pool_, sequences, copy);
    const backend::ChunkScratch rotated(pool_, kv_attend_rotated_bytes(layout, batch, query_heads));
    const grey_kvl0_attend_args args = kv_attend_args(layout, batch, layer, query_heads, scale, sequence_table.get(), block_table.get(),
                                                      queries, output, rotated.get());
    launch_locked(kernel, kv_group_count(kv_attend_items(args)), {value_argument(args)});
}

void DeviceQueue::write(uint64_t destination, const void* source, uint64_t size) {
    append_copy(reinterpret_cast<void*>(destination), source, size);
}

void DeviceQueue::read(void* destination, uint64_t source, uint64_t size) {
    append_copy(destination, reinterpret_cast<const void*>(source), size);
}

void DeviceQueue::copy(uint64_t destination, uint64_t source, uint64_t size) {
    if (size == 0) return;
    const PointerArgument to{reinterpret_cast<const void*>(destination)}, from{reinterpret_cast<const void*>(source)};
    const uint64_t n = size, no_offset = 0;
    std::lock_guard lock(mutex_);
    launch_locked(kernel_locked(KernelModule::fill_copy, kCopyKernelName, kFillCopyGroupSize), fill_copy_group_count(size),
                  {to.argument(), value_argument(no_offset), from.argument(), value_argument(no_offset), value_argument(n)});
}

void DeviceQueue::fill(uint64_t destination, uint8_t value, uint64_t size) {
    if (size == 0) return;
    const PointerArgument to{reinterpret_cast<const void*>(destination)};
    const uint64_t n = size, no_offset = 0;
    const uint32_t byte = value;
    std::lock_guard lock(mutex_);
    launch_locked(kernel_locked(KernelModule::fill_copy, kFillKernelName, kFillCopyGroupSize), fill_copy_group_count(size),
                  {to.argument(), value_argument(no_offset), value_argument(n), value_argument(byte)});
}

}  // namespace grey::level0
