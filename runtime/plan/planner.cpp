// The planning algorithm (docs/plan.md, "How a plan is made"):
//  1. Units, in the order they claim memory: the tensors every token reads that belong to no layer
//     (output, final norm), then each layer's tensors every token reads together with that layer's KV
//     cache, then each layer's routed experts tensor by tensor (so that the room a whole layer's
//     experts no longer fit in still takes some of them, as llama.cpp's --fit does with a partial layer,
//     before the embedding, of which a token reads one row), then the token embedding.
//  2. Each unit goes to the first device, fastest first, with room for it; the units every token reads
//     must land on an accelerator when the machine has one, the others may go to host memory. When
//     routed experts do, the placement is made again with room on the fastest GPU for the copy of one
//     host-resident expert tensor that llama.cpp makes there to process a prompt batch.
//  3. When something does not fit, the next step of a ladder is tried: the KV cache in int8, then
//     weights in q8_0, KV in int4, weights in q4_0, KV in int2 (the quantization policy keeps its
//     critical layers throughout), skipping a KV precision the runtime that will hold the cache lacks
//     (llama.cpp has no 2-bit cache type: its ladder ends at q4_0 weights, int4 KV). The first step
//     that fits is the plan; none fitting is an error that says how much is missing where. A fixed KV
//     precision asked for keeps that precision on every step (as stored, q8_0, q4_0 weights). The KV
//     cache is sized as that runtime stores it (kv_precisions, kv_cells_per_sequence).
//  4. Auto KV, for libgrey's KV runtime: when the first step that fits keeps f16 KV on a machine with a
//     GPU and leaves weights other than the token embedding in host memory, the same step with int8 KV
//     is tried and taken when it puts more of those weights on the GPUs: a decode step reads
//     host-resident experts through the CPU, so their bytes set its speed, and halving a long context's
//     KV cache frees room for them. Not for llama.cpp's: its attention over a q8_0 cache decoded slower
//     than over f16 by more than the experts the room moved gained (bench/RESULTS.md), so there auto
//     keeps f16 wherever f16 fits.
#include "plan/plan.hpp"

#include "core/error.hpp"
#include "quant/model_policy.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <optional>
#include <utility>

namespace grey::plan {

const std::vector<KvPrecision>& kv_precisions(grey_kv_runtime runtime) {
    // libgrey: codes plus an fp32 scale and minimum per group of 32 (runtime/kv's blocks), per element.
    static const std::vector<KvPrecision> libgrey{{"f16", 2.0}, {"int8", 1.25}, {"int4", 0.75}, {"int2", 0.5}};
    // llama.cpp: the cache types llama_cpp_args names, f16, q8_0 (an fp16 scale and 32 int8 codes, 34
    // bytes per block of 32) and q4_0 (an fp16 scale and 16 bytes of nibbles, 18 bytes per 32).
    static const std::vector<KvPrecision> llama_cpp{{"f16", 2.0}, {"int8", 34.0 / 32}, {"int4", 18.0 / 32}};
    return runtime == GREY_KV_RUNTIME_LLAMA_CPP ? llama_cpp : libgrey;
}

std::optional<double> kv_element_bytes(grey_kv_runtime runtime, const std::string& precision) {
    for (const auto& p : kv_precisions(runtime))
        if (p.name == precision) return p.bytes_per_element;
    return std::nullopt;
}

uint64_t kv_cells_per_sequence(grey_kv_runtime runtime, uint64_t context) {
    if (runtime != GREY_KV_RUNTIME_LLAMA_CPP) return context;
    // llama_context pads n_ctx (the -c llama_cpp_args gives, context x batch) to a multiple of 256 and,
    // with a stream per sequence (-np, kv_unified off), each sequence's n_ctx_seq = n_ctx / n_seq_max to
    // a multiple of 256 again; the cache holds n_ctx_seq cells per stream. That is the context itself
    // padded to 256: pad(context x batch, 256) / batch never exceeds pad(context, 256).
    constexpr uint64_t kPad = 256;
    return context > UINT64_MAX - kPad ? context : (context + kPad - 1) / kPad * kPad;
}

uint64_t Plan::kv_bytes() const noexcept {
    uint64_t total = 0;
    for (const auto& u : usage) total += u.kv_bytes;
    return total;
}

std::string gib_text(uint64_t bytes) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f GiB", static_cast<double>(bytes) / 1073741824.0);
    return text;
}

namespace {

// Sizes beyond any machine stand at kHuge, so that a hostile file's figures never wrap around: a unit
// that large fits nowhere and the plan fails saying so.
constexpr uint64_t kHuge = uint64_t{1} << 62;
uint64_t saturate(double bytes) { return bytes >= static_cast<double>(kHuge) || !(bytes >= 0) ? kHuge : static_cast<uint64_t>(bytes); }
uint64_t add(uint64_t a, uint64_t b) { return std::min(a + std::min(b, kHuge), kHuge); }

}  // namespace

uint64_t kv_layer_bytes(const Architecture& arch, grey_kv_runtime runtime, const std::string& precision, uint64_t context, uint32_t batch) {
    const double row = std::ceil(kv_element_bytes(runtime, precision).value_or(0) * arch.kv_heads *
                                 (static_cast<double>(arch.key_length) + arch.value_length));
    return saturate(row * static_cast<double>(kv_cells_per_sequence(runtime, context)) * batch);
}

uint64_t kv_token_bytes(const Architecture& arch, grey_kv_runtime runtime, const std::string& precision) {
    return saturate(std::ceil(kv_element_bytes(runtime, precision).value_or(0) * static_cast<double>(arch.kv_elements_per_token())));
}

namespace {

struct Level {
    std::string weights;  // "" or a format name
    std::string kv;       // a kv_precisions() name, or "none"
};

std::vector<Level> ladder(const Request& request) {
    if (request.kind == GREY_WORKLOAD_TRAINING) return {{"", "none"}};
    if (request.kind == GREY_WORKLOAD_INFERENCE) return {{"", "none"}, {"q8_0", "none"}, {"q4_0", "none"}};
    if (request.kv != "auto" && request.kv != "f16-first") return {{"", request.kv}, {"q8_0", request.kv}, {"q4_0", request.kv}};
    std::vector<Level> steps{{"", "f16"}, {"", "int8"}, {"q8_0", "int8"}, {"q8_0", "int4"}, {"q4_0", "int4"}, {"q4_0", "int2"}};
    // A step whose KV precision the runtime has no cache type for is one it could never run.
    std::erase_if(steps, [&](const Level& l) { return !kv_element_bytes(request.kv_runtime, l.kv); });
    return steps;
}

uint64_t elements_of(const TensorInfo& t) {
    uint64_t n = 1;
    for (const uint64_t d : t.shape) n *= d;
    return n;
}

// Gradients and Adam's two moments (fp32), plus fp32 master weights for 16-bit tensors.
uint64_t training_extra(const TensorInfo& t) {
    const bool half = t.dtype == GREY_DTYPE_F16 || t.dtype == GREY_DTYPE_BF16;
    return t.bytes + elements_of(t) * (half ? 12 : 8);
}

struct Unit {
    std::vector<uint32_t> tensors;
    int32_t kv_layer = -1;
    bool hot = true;
};

std::vector<Unit> make_units(const WorkloadModel& model) {
    // Maps, not vectors indexed by layer: a name may claim any layer number.
    std::map<int32_t, Unit> hot_layer;
    std::map<int32_t, std::vector<uint32_t>> experts;
    Unit globals;
    Unit embeddings;
    embeddings.hot = false;
    for (uint32_t l = 0; l < model.arch.layers; ++l) hot_layer[static_cast<int32_t>(l)].kv_layer = static_cast<int32_t>(l);
    for (uint32_t i = 0; i < model.tensors.size(); ++i) {
        const auto& t = model.tensors[i];
        if (t.role == GREY_TENSOR_ROLE_EMBEDDING) embeddings.tensors.push_back(i);
        else if (t.layer < 0) globals.tensors.push_back(i);
        else if (t.role == GREY_TENSOR_ROLE_ROUTED_EXPERTS) experts[t.layer].push_back(i);
        else hot_layer[t.layer].tensors.push_back(i);
    }
    std::vector<Unit> units;
    if (!globals.tensors.empty()) units.push_back(std::move(globals));
    for (auto& [layer, u] : hot_layer) units.push_back(std::move(u));
    // Every byte of routed experts is read at the same rate (the share of experts a step uses), so one
    // tensor per unit loses nothing against whole layers and fills the room whole layers leave.
    for (const auto& [layer, tensors] : experts)
        for (const uint32_t i : tensors) units.push_back(Unit{{i}, -1, false});
    if (!embeddings.tensors.empty()) units.push_back(std::move(embeddings));
    return units;
}

// Bytes of each tensor in a weight format (the policy decides which tensors it quantizes).
std::vector<uint64_t> weight_bytes(const WorkloadModel& model, const std::string& format, std::vector<std::string>& formats) {
    std::vector<uint64_t> bytes(model.tensors.size());
    formats.assign(model.tensors.size(), "");
    if (format.empty()) {
        for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = model.tensors[i].bytes;
        return bytes;
    }
    quant::PolicyOptions options;
    options.format = format;
    const quant::ModelPolicy policy(options);
    std::vector<quant::PolicyTensor> tensors;
    tensors.reserve(model.tensors.size());
    for (const auto& t : model.tensors) tensors.push_back({t.name, t.dtype, t.shape});
    const auto decisions = policy.decide(tensors);
    for (size_t i = 0; i < bytes.size(); ++i) {
        const bool smaller = !decisions[i].kept && decisions[i].quantized_bytes < model.tensors[i].bytes;
        bytes[i] = smaller ? decisions[i].quantized_bytes : model.tensors[i].bytes;
        if (smaller) formats[i] = decisions[i].format;
    }
    return bytes;
}

// Devices fastest first: accelerators by bandwidth, then the host.
std::vector<uint32_t> speed_order(const std::vector<Device>& devices) {
    std::vector<uint32_t> order(devices.size());
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
        const bool ga = devices[a].type == GREY_DEVICE_GPU, gb = devices[b].type == GREY_DEVICE_GPU;
        if (ga != gb) return ga;
        return devices[a].bandwidth_gbps > devices[b].bandwidth_gbps;
    });
    return order;
}

struct Attempt {
    std::vector<PlacedTensor> placed;
    std::vector<DeviceUsage> usage;
    uint64_t hot_missing = 0;
    uint64_t cold_missing = 0;
    bool fits() const { return hot_missing == 0 && cold_missing == 0; }
};

class Planner {
public:
    Planner(const WorkloadModel& model, const Machine& machine, const Request& request)
        : model_(model), machine_(machine), request_(request), units_(make_units(model)), order_(speed_order(machine.devices)) {
        for (const auto& d : machine.devices) has_gpu_ = has_gpu_ || d.type == GREY_DEVICE_GPU;
        for (const auto& t : model.tensors)
            if (t.role == GREY_TENSOR_ROLE_EMBEDDING && t.shape.size() == 2) vocab_ = std::max(vocab_, t.shape[0]);
    }

    // Activations and compute buffers for `batch` sequences, on the first device, with `staging` bytes of
    // host-resident weights copied in for a product offloaded to the GPU (below). For LLM inference the
    // graph runs one batch of up to 512 tokens at a time and its buffer is reused from op to op (ggml's
    // allocator frees a tensor after its last reader; so does every framework's caching allocator): the
    // peak is the larger of a layer's activations with the staged copy and the output stage's logits
    // (vocabulary-wide floats a token, beside the final hidden state and its norm), not their sum.
    uint64_t other_bytes(uint32_t batch, uint64_t staging) const {
        const uint64_t e = model_.arch.embedding;
        const uint64_t ctx = request_.context;
        switch (request_.kind) {
            case GREY_WORKLOAD_TRAINING: {
                // Korthikanti et al. 2022: s*b*h*(34 + 5*a*s/h) bytes per layer in 16-bit, no recomputation.
                const double tokens = static_cast<double>(ctx) * batch;
                const double per_layer = tokens * static_cast<double>(e) *
                                         (34.0 + 5.0 * model_.arch.heads * static_cast<double>(ctx) / std::max<double>(static_cast<double>(e), 1));
                return add(saturate(per_layer * model_.arch.layers + tokens * static_cast<double>(vocab_) * 4), staging);
            }
            case GREY_WORKLOAD_INFERENCE:
                return add(saturate(static_cast<double>(ctx) * batch * static_cast<double>(16 * e + vocab_) * 4), staging);
            default: {
                const double tokens = std::min(static_cast<double>(ctx) * batch, 512.0);
                // llama.cpp's attention also reads the batch's mask, an f16 for each of its tokens and each
                // cache cell of a sequence (its flash-attention path, which it takes by default where the
                // backend has the kernels): what grows with the context.
                const double mask = request_.kv_runtime == GREY_KV_RUNTIME_LLAMA_CPP
                                        ? tokens * static_cast<double>(kv_cells_per_sequence(request_.kv_runtime, ctx)) * 2
                                        : 0.0;
                const uint64_t layer = add(saturate(tokens * static_cast<double>(16 * e) * 4 + mask), staging);
                const uint64_t output = saturate(tokens * static_cast<double>(vocab_ + 2 * e) * 4);
                return std::max(layer, output);
            }
        }
    }

    // A placement, then, when routed experts land in host memory on a machine with a GPU and prompts come
    // in batches of 32 tokens or more, the same placement again with room kept on the fastest GPU for one
    // host-resident expert tensor. For a batch that large llama.cpp runs a product whose weights lie in host
    // memory on the GPU (its op offload: ggml's scheduler asks the GPU backend, which takes a MUL_MAT_ID of
    // 32 tokens or more), copying the weight tensor into the GPU's compute buffer as an input of that op's
    // split. The scheduler starts a new split at every such weight so that its copy can reuse the memory
    // of the last one: the buffer holds one copy at a time, the largest host-resident tensor an offloaded
    // op reads. llama.cpp sizes that buffer at start-up from the worst-case (full prompt batch) graph, so
    // decode runs pay for it too. The token embedding in host memory is never copied (a row lookup is not
    // offloaded). The second placement keeps room for the model's largest expert tensor; the prediction
    // then counts the largest one the host actually holds.
    Attempt attempt(const Level& level, uint32_t batch) {
        Attempt a = place(level, batch, 0);
        if (!a.fits() || !stages_experts(batch)) return a;
        std::vector<std::string> formats;
        const auto& bytes = cached_weight_bytes(level.weights, formats);
        if (largest_host_expert_tensor(a, bytes) == 0) return a;
        Attempt b = place(level, batch, largest_expert_tensor(bytes));
        if (!b.fits()) return b;
        b.usage[order_.front()].other_bytes = other_bytes(batch, largest_host_expert_tensor(b, bytes));
        return b;
    }

private:
    bool stages_experts(uint32_t batch) const {
        if (!has_gpu_ || request_.kind == GREY_WORKLOAD_TRAINING) return false;
        const double tokens = static_cast<double>(request_.context) * batch;
        return (request_.kind == GREY_WORKLOAD_LLM_INFERENCE ? std::min(tokens, 512.0) : tokens) >= 32;
    }

    // The largest routed-expert tensor, and the largest of those in host memory.
    uint64_t largest_expert_tensor(const std::vector<uint64_t>& bytes) const { return expert_tensor_max(bytes, nullptr); }
    uint64_t largest_host_expert_tensor(const Attempt& a, const std::vector<uint64_t>& bytes) const { return expert_tensor_max(bytes, &a); }
    uint64_t expert_tensor_max(const std::vector<uint64_t>& bytes, const Attempt* on_host) const {
        uint64_t largest = 0;
        for (size_t i = 0; i < model_.tensors.size(); ++i) {
            if (model_.tensors[i].role != GREY_TENSOR_ROLE_ROUTED_EXPERTS) continue;
            if (on_host && machine_.devices[on_host->placed[i].device].type == GREY_DEVICE_GPU) continue;
            largest = std::max(largest, bytes[i]);
        }
        return largest;
    }

public:
    Attempt place(const Level& level, uint32_t batch, uint64_t staging) {
        Attempt a;
        std::vector<std::string> formats;
        const auto& bytes = cached_weight_bytes(level.weights, formats);
        const uint64_t per_layer_kv = kv_layer_bytes(model_.arch, request_.kv_runtime, level.kv, request_.context, batch);
        a.placed.resize(model_.tensors.size());
        a.usage.resize(machine_.devices.size());
        for (size_t d = 0; d < machine_.devices.size(); ++d) {
            const Device& dev = machine_.devices[d];
            a.usage[d].budget_bytes =
                static_cast<uint64_t>(static_cast<double>(dev.memory_free_bytes) * (1.0 - dev.safety_margin)) / request_.tenants;
        }
        a.usage[order_.front()].other_bytes = other_bytes(batch, staging);
        const auto room = [&](uint32_t d) {
            const auto& u = a.usage[d];
            return u.budget_bytes > u.predicted_bytes() ? u.budget_bytes - u.predicted_bytes() : 0;
        };
        if (a.usage[order_.front()].other_bytes > a.usage[order_.front()].budget_bytes)
            a.hot_missing += a.usage[order_.front()].other_bytes - a.usage[order_.front()].budget_bytes;
        uint64_t hot_unplaced = 0, cold_unplaced = 0, largest_hot = 0, largest_cold = 0;
        for (const Unit& unit : units_) {
            uint64_t weights = 0, extra = 0;
            for (const uint32_t i : unit.tensors) {
                weights += bytes[i];
                if (request_.kind == GREY_WORKLOAD_TRAINING) extra += training_extra(model_.tensors[i]);
            }
            const uint64_t kv = unit.kv_layer >= 0 && level.kv != "none" ? per_layer_kv : 0;
            const uint64_t need = add(add(weights, extra), kv);
            std::optional<uint32_t> chosen;
            for (const uint32_t d : order_) {
                if (unit.hot && has_gpu_ && machine_.devices[d].type != GREY_DEVICE_GPU) break;
                if (room(d) >= need) {
                    chosen = d;
                    break;
                }
            }
            // A unit that fits nowhere is left out and counted, so that the error can say how much is missing.
            if (!chosen) {
                uint64_t& unplaced = unit.hot && has_gpu_ ? hot_unplaced : cold_unplaced;
                unplaced = add(unplaced, need);
                (unit.hot && has_gpu_ ? largest_hot : largest_cold) = std::max(unit.hot && has_gpu_ ? largest_hot : largest_cold, need);
                continue;
            }
            const uint32_t d = *chosen;
            a.usage[d].weight_bytes += weights;
            a.usage[d].other_bytes += extra;
            a.usage[d].kv_bytes += kv;
            for (const uint32_t i : unit.tensors) a.placed[i] = {d, formats[i], bytes[i]};
        }
        // What is missing: the unplaced bytes beyond the room left, or (when only the pieces do not fit)
        // the largest unit's excess over the largest room.
        const auto missing = [&](uint64_t unplaced, uint64_t largest, bool gpus_only) -> uint64_t {
            if (unplaced == 0) return 0;
            uint64_t free_total = 0, free_largest = 0;
            for (const uint32_t d : order_) {
                if (gpus_only && machine_.devices[d].type != GREY_DEVICE_GPU) continue;
                free_total += room(d);
                free_largest = std::max(free_largest, room(d));
            }
            if (unplaced > free_total) return unplaced - free_total;
            return largest > free_largest ? largest - free_largest : 1;
        };
        a.hot_missing = add(a.hot_missing, missing(hot_unplaced, largest_hot, true));
        a.cold_missing = add(a.cold_missing, missing(cold_unplaced, largest_cold, false));
        return a;
    }

    std::string accelerators() const {
        std::string names;
        size_t n = 0;
        for (const uint32_t d : order_)
            if (machine_.devices[d].type == GREY_DEVICE_GPU) names += (n++ ? " + " : "") + machine_.devices[d].name;
        return n > 1 ? names + " together" : names;
    }

    std::string host() const { return machine_.devices[order_.back()].name; }

    bool has_gpu() const { return has_gpu_; }

    // Weight bytes on the GPUs and in host memory, the token embedding left out: a token reads one row of
    // it, so where it lies barely changes a decode step, while every other host-resident byte (routed
    // experts) is read through the CPU at the experts' share.
    std::pair<uint64_t, uint64_t> bulk_weights(const Attempt& a) const {
        uint64_t gpu = 0, host = 0;
        for (size_t i = 0; i < model_.tensors.size(); ++i) {
            if (model_.tensors[i].role == GREY_TENSOR_ROLE_EMBEDDING) continue;
            (machine_.devices[a.placed[i].device].type == GREY_DEVICE_GPU ? gpu : host) += a.placed[i].bytes;
        }
        return {gpu, host};
    }

private:
    const std::vector<uint64_t>& cached_weight_bytes(const std::string& format, std::vector<std::string>& formats) {
        auto it = weight_bytes_.find(format);
        if (it == weight_bytes_.end()) {
            std::vector<std::string> f;
            auto bytes = weight_bytes(model_, format, f);
            it = weight_bytes_.emplace(format, std::make_pair(std::move(bytes), std::move(f))).first;
        }
        formats = it->second.second;
        return it->second.first;
    }

    const WorkloadModel& model_;
    const Machine& machine_;
    const Request& request_;
    std::vector<Unit> units_;
    std::vector<uint32_t> order_;
    bool has_gpu_ = false;
    uint64_t vocab_ = 0;
    std::map<std::string, std::pair<std::vector<uint64_t>, std::vector<std::string>>> weight_bytes_;
};

std::string level_text(const Level& level, grey_workload_kind kind) {
    if (kind == GREY_WORKLOAD_TRAINING) return "for training (weights, gradients, Adam state and activations)";
    std::string text = "even with " + (level.weights.empty() ? std::string("the weights as stored") : level.weights + " weights");
    if (level.kv != "none") text += " and " + level.kv + " KV";
    return text;
}

void check_request(const WorkloadModel& model, const Machine& machine, const Request& request) {
    if (machine.devices.empty()) fail(GREY_ERROR_INVALID_ARGUMENT, "the machine has no device");
    if (request.kind == GREY_WORKLOAD_LLM_INFERENCE) {
        if (!model.arch.causal)
            fail(GREY_ERROR_INVALID_ARGUMENT, "'" + model.path + "' is an encoder (" + (model.arch.name.empty() ? "no causal attention" : model.arch.name) +
                                                  ") without a KV cache: plan it as workload inference");
        if (model.arch.kv_elements_per_token() == 0)
            fail(GREY_ERROR_INVALID_ARGUMENT, "'" + model.path + "': cannot size the KV cache: neither metadata nor tensor shapes give the "
                                                                 "layers, KV heads and head size");
    }
    if (model.tensors.empty()) fail(GREY_ERROR_INVALID_ARGUMENT, "'" + model.path + "' holds no tensor");
    if (request.kv != "auto" && request.kv != "f16-first" && request.kind == GREY_WORKLOAD_LLM_INFERENCE &&
        !kv_element_bytes(request.kv_runtime, request.kv))
        fail(GREY_ERROR_INVALID_ARGUMENT, "KV precision " + request.kv + " cannot be planned for KV runtime " + grey_kv_runtime_name(request.kv_runtime) +
                                              ": llama.cpp has no 2-bit KV cache type (its smallest is q4_0, int4)");
}

// Bytes read per step from each device, and the steps per second its bandwidth allows.
void predict_traffic(Plan& plan) {
    const uint32_t batch = plan.request.batch;
    const double expert_share =
        plan.arch.experts > 0 ? std::min(1.0, static_cast<double>(batch) * plan.arch.experts_used / plan.arch.experts) : 1.0;
    for (size_t i = 0; i < plan.tensors.size(); ++i) {
        const auto& t = plan.tensors[i];
        const auto& p = plan.placed[i];
        double share = 1.0;
        if (t.role == GREY_TENSOR_ROLE_ROUTED_EXPERTS) share = expert_share;
        else if (t.role == GREY_TENSOR_ROLE_EMBEDDING && !t.shape.empty() && t.shape[0] > 0)
            share = std::min(1.0, static_cast<double>(batch) / static_cast<double>(t.shape[0]));
        plan.usage[p.device].read_bytes_per_step += share * static_cast<double>(p.bytes);
    }
    double seconds = 0;
    for (size_t d = 0; d < plan.devices.size(); ++d) {
        auto& u = plan.usage[d];
        u.read_bytes_per_step += static_cast<double>(u.kv_bytes);
        if (u.read_bytes_per_step == 0) continue;
        if (plan.devices[d].bandwidth_gbps <= 0) return;  // unknown: no prediction
        seconds += u.read_bytes_per_step / (plan.devices[d].bandwidth_gbps * 1e9);
    }
    plan.predicted_steps_per_s = seconds > 0 ? 1.0 / seconds : 0;
}

// The governor's thresholds (thermal.target_temp_c, thermal.max_temp_c): the balanced profile's 75 and
// 83 degrees, lowered to keep 10 and 3 degrees below a GPU's own slowdown temperature.
void thermal_thresholds(Plan& plan) {
    for (size_t d = 0; d < plan.devices.size(); ++d) {
        if (plan.devices[d].type != GREY_DEVICE_GPU) continue;
        const double slowdown = plan.devices[d].thermal_slowdown_c;
        plan.usage[d].thermal_target_c = slowdown > 0 ? std::min(75.0, slowdown - 10) : 75.0;
        plan.usage[d].thermal_max_c = slowdown > 0 ? std::min(83.0, slowdown - 3) : 83.0;
    }
}

}  // namespace

Plan make_plan(const WorkloadModel& model, const Machine& machine, const Request& asked) {
    check_request(model, machine, asked);
    Request request = asked;
    request.tenants = std::max(request.tenants, 1u);
    if (request.context == 0) {
        const uint64_t cap = request.kind == GREY_WORKLOAD_LLM_INFERENCE ? kDefaultContext : 512;
        request.context = model.arch.context_trained != 0 ? std::min(model.arch.context_trained, cap) : cap;
    }
    const bool recommend = request.batch == 0;
    Planner planner(model, machine, request);
    const auto levels = ladder(request);
    std::optional<Attempt> chosen;
    Level level;
    Attempt last;
    for (size_t l = 0; l < levels.size() && !chosen; ++l) {
        Attempt a = planner.attempt(levels[l], recommend ? 1u : request.batch);
        if (a.fits()) chosen = std::move(a), level = levels[l];
        else last = std::move(a);
    }
    if (chosen && request.kind == GREY_WORKLOAD_LLM_INFERENCE && request.kv == "auto" && request.kv_runtime == GREY_KV_RUNTIME_LIBGREY &&
        level.kv == "f16" && planner.has_gpu()) {
        const auto [gpu_bytes, host_bytes] = planner.bulk_weights(*chosen);
        if (host_bytes > 0) {
            const Level int8{level.weights, "int8"};
            Attempt a = planner.attempt(int8, recommend ? 1u : request.batch);
            if (a.fits() && planner.bulk_weights(a).first > gpu_bytes) chosen = std::move(a), level = int8;
        }
    }
    if (!chosen) {
        std::string where;
        if (last.hot_missing) where = gib_text(last.hot_missing) + " more on " + (planner.has_gpu() ? planner.accelerators() : planner.host());
        if (last.cold_missing) where += (where.empty() ? "" : " and ") + gib_text(last.cold_missing) + " more on " + planner.host();
        fail(GREY_ERROR_OUT_OF_MEMORY, "'" + model.path + "' needs " + where + " " + level_text(levels.back(), request.kind) + " (context " +
                                           std::to_string(request.context) + ", batch " + std::to_string(std::max(request.batch, 1u)) + ", " +
                                           std::to_string(request.tenants) + (request.tenants == 1 ? " tenant" : " tenants") + ")");
    }
    if (recommend) {
        // The largest power of two of sequences whose KV cache (and activations) fit in the room the
        // weights leave: a larger batch never pushes a tensor off the device one sequence gives it.
        uint32_t batch = 1;
        for (uint32_t b = 2; b <= kMaxRecommendedBatch; b *= 2) {
            Attempt a = planner.attempt(level, b);
            const bool same_places = std::equal(a.placed.begin(), a.placed.end(), chosen->placed.begin(),
                                                [](const PlacedTensor& x, const PlacedTensor& y) { return x.device == y.device; });
            if (!a.fits() || !same_places) break;
            batch = b;
        }
        if (batch > 1) chosen = planner.attempt(level, batch);
        request.batch = batch;
    }
    Plan plan;
    plan.model_path = model.path;
    plan.model_format = model.format;
    plan.arch = model.arch;
    plan.request = request;
    plan.batch_recommended = recommend;
    plan.kv_precision = level.kv;
    plan.weight_format = level.weights;
    if (std::none_of(chosen->placed.begin(), chosen->placed.end(), [](const PlacedTensor& t) { return !t.format.empty(); }))
        plan.weight_format.clear();  // the policy found nothing to quantize (a quantized file): as stored
    plan.kv_bytes_per_token = kv_token_bytes(model.arch, request.kv_runtime, plan.kv_precision);
    plan.devices = machine.devices;
    plan.usage = std::move(chosen->usage);
    plan.tensors = model.tensors;
    plan.placed = std::move(chosen->placed);
    predict_traffic(plan);
    thermal_thresholds(plan);
    return plan;
}

}  // namespace grey::plan
