// Reading a model file into the workload model. The file is mapped and parsed by runtime/model (the
// same parsers grey_model_create uses); only the header pages are touched, so a sparse or huge file costs
// nothing to plan for.
#include "plan/workload_model.hpp"

#include "core/error.hpp"
#include "core/mapped_file.hpp"
#include "core/regular_file.hpp"
#include "model/model_file.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <optional>

namespace grey::plan {
namespace {

using model::GgufType;
using model::GgufValue;

// A number from a GGUF scalar, or from an array's largest element (head_count_kv is an array per layer
// in some models: the largest sizes the cache safely).
std::optional<double> gguf_number(const GgufValue& value) {
    const auto scalar = [](GgufType type, const char* bytes) -> std::optional<double> {
        switch (type) {
            case GgufType::u8: return static_cast<double>(static_cast<uint8_t>(bytes[0]));
            case GgufType::i8: return static_cast<double>(static_cast<int8_t>(bytes[0]));
            case GgufType::boolean: return static_cast<double>(bytes[0] != 0);
            case GgufType::u16: { uint16_t v; std::memcpy(&v, bytes, 2); return v; }
            case GgufType::i16: { int16_t v; std::memcpy(&v, bytes, 2); return v; }
            case GgufType::u32: { uint32_t v; std::memcpy(&v, bytes, 4); return v; }
            case GgufType::i32: { int32_t v; std::memcpy(&v, bytes, 4); return v; }
            case GgufType::f32: { float v; std::memcpy(&v, bytes, 4); return v; }
            case GgufType::u64: { uint64_t v; std::memcpy(&v, bytes, 8); return static_cast<double>(v); }
            case GgufType::i64: { int64_t v; std::memcpy(&v, bytes, 8); return static_cast<double>(v); }
            case GgufType::f64: { double v; std::memcpy(&v, bytes, 8); return v; }
            default: return std::nullopt;
        }
    };
    if (value.type != GgufType::array) {
        if (value.bytes.size() < model::gguf_scalar_size(value.type) || model::gguf_scalar_size(value.type) == 0) return std::nullopt;
        return scalar(value.type, value.bytes.data());
    }
    const uint32_t size = model::gguf_scalar_size(value.element_type);
    if (size == 0 || value.count == 0 || value.bytes.size() < value.count * size) return std::nullopt;
    std::optional<double> largest;
    for (uint64_t i = 0; i < value.count; ++i) {
        const auto v = scalar(value.element_type, value.bytes.data() + i * size);
        if (v && (!largest || *v > *largest)) largest = v;
    }
    return largest;
}

const GgufValue* find_key(const model::ModelFile& file, std::string_view key) {
    for (const auto& entry : file.metadata)
        if (entry.key == key) return &entry.value;
    return nullptr;
}

uint32_t gguf_u32(const model::ModelFile& file, const std::string& key) {
    const GgufValue* value = find_key(file, key);
    if (value == nullptr) return 0;
    const auto number = gguf_number(*value);
    return number && *number > 0 && *number < 4294967296.0 ? static_cast<uint32_t>(*number) : 0;
}

// The encoders llama.cpp knows: no KV cache.
bool is_encoder_architecture(std::string_view arch) {
    return arch == "bert" || arch == "nomic-bert" || arch == "nomic-bert-moe" || arch == "jina-bert-v2" || arch == "t5encoder" ||
           arch == "neo-bert" || arch == "roberta" || arch == "xlm-roberta" || arch == "distilbert" || arch == "modernbert";
}

Architecture from_gguf(const model::ModelFile& file) {
    Architecture a;
    if (const GgufValue* arch = find_key(file, "general.architecture"); arch != nullptr && arch->type == GgufType::string) a.name = arch->bytes;
    if (a.name.empty()) return a;
    const std::string p = a.name + ".";
    a.source = "gguf";
    a.layers = gguf_u32(file, p + "block_count");
    a.embedding = gguf_u32(file, p + "embedding_length");
    a.heads = gguf_u32(file, p + "attention.head_count");
    a.kv_heads = gguf_u32(file, p + "attention.head_count_kv");
    a.key_length = gguf_u32(file, p + "attention.key_length");
    a.value_length = gguf_u32(file, p + "attention.value_length");
    a.context_trained = gguf_u32(file, p + "context_length");
    a.experts = gguf_u32(file, p + "expert_count");
    a.experts_used = gguf_u32(file, p + "expert_used_count");
    a.causal = !is_encoder_architecture(a.name);
    if (const GgufValue* causal = find_key(file, p + "attention.causal"); causal != nullptr)
        if (const auto v = gguf_number(*causal)) a.causal = *v != 0;
    // llama.cpp's MLA files (converted since its MLA cache) state the per-head sizes of the decompressed
    // attention in *_mla and give key_length = kv_lora_rank + rope dimensions on one KV head: the cache
    // holds that latent only. Older conversions of the same models lack the *_mla keys and are cached
    // decompressed (K and V per head), which the plain formula already sizes.
    if (gguf_u32(file, p + "attention.key_length_mla") != 0 && gguf_u32(file, p + "attention.value_length_mla") != 0) {
        a.latent_kv = true;
        a.value_length = 0;
    }
    return a;
}

uint32_t json_u32(const nlohmann::json& config, std::initializer_list<const char*> keys) {
    for (const char* key : keys) {
        const auto it = config.find(key);
        if (it != config.end() && it->is_number_unsigned() && it->get<uint64_t>() <= UINT32_MAX) return it->get<uint32_t>();
    }
    return 0;
}

// config.json beside a safetensors file (the Hugging Face layout). A file that is absent gives nothing;
// one that is present but unreadable as JSON is named in the error.
std::optional<Architecture> from_config_json(const std::string& model_path) {
    const auto config_path = std::filesystem::path(model_path).parent_path() / "config.json";
    std::error_code ec;
    if (!std::filesystem::is_regular_file(config_path, ec)) return std::nullopt;
    const auto bytes = read_regular_file(config_path.string(), "model configuration", SizeLimit{4u << 20});
    const auto config = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
    if (config.is_discarded() || !config.is_object())
        fail(GREY_ERROR_CORRUPT, "model configuration '" + config_path.string() + "' is not a JSON object");
    Architecture a;
    a.source = "config.json";
    if (const auto it = config.find("model_type"); it != config.end() && it->is_string()) a.name = it->get<std::string>();
    a.layers = json_u32(config, {"num_hidden_layers", "n_layer", "num_layers"});
    a.embedding = json_u32(config, {"hidden_size", "n_embd", "d_model"});
    a.heads = json_u32(config, {"num_attention_heads", "n_head"});
    a.kv_heads = json_u32(config, {"num_key_value_heads", "num_kv_heads"});
    a.key_length = json_u32(config, {"head_dim"});
    a.context_trained = json_u32(config, {"max_position_embeddings", "n_positions", "seq_length"});
    a.experts = json_u32(config, {"num_local_experts", "n_routed_experts", "num_experts"});
    a.experts_used = json_u32(config, {"num_experts_per_tok", "moe_topk"});
    a.causal = !is_encoder_architecture(a.name);
    // DeepSeek-style MLA: engines cache the kv_lora_rank latent and the rotary key part per token and layer.
    if (const uint32_t rank = json_u32(config, {"kv_lora_rank"}); rank != 0) {
        a.latent_kv = true;
        a.kv_heads = 1;
        a.key_length = rank + json_u32(config, {"qk_rope_head_dim"});
        a.value_length = 0;
    }
    return a;
}

// What the tensors' shapes say, when no metadata does: layers from the highest block number, the
// hidden size from the token embedding, the K and V widths from the key and value projections' output
// rows (which is all the KV cache's size needs, whatever the split into heads).
Architecture from_shapes(const std::vector<TensorInfo>& tensors) {
    Architecture a;
    a.source = "inferred from tensor shapes";
    uint64_t key_width = 0;
    uint64_t value_width = 0;
    bool encoder = false;
    std::vector<uint32_t> expert_ids;
    for (const auto& t : tensors) {
        if (t.layer >= 0) a.layers = std::max<uint32_t>(a.layers, static_cast<uint32_t>(t.layer) + 1);
        if (t.name.find("encoder.layer.") != std::string::npos || t.name.find("bert") != std::string::npos) encoder = true;
        if (t.role == GREY_TENSOR_ROLE_EMBEDDING && t.shape.size() == 2 && a.embedding == 0 &&
            (t.name.find("token_embd") != std::string::npos || t.name.find("embed_tokens") != std::string::npos ||
             t.name.find("word_embeddings") != std::string::npos))
            a.embedding = static_cast<uint32_t>(t.shape[1]);
        if (t.layer == 0 && t.shape.size() == 2 && t.role == GREY_TENSOR_ROLE_ATTENTION) {
            const auto& n = t.name;
            const bool is_k = n.find("attn_k.") != std::string::npos || n.find("k_proj.") != std::string::npos || n.find(".key.") != std::string::npos;
            const bool is_v = n.find("attn_v.") != std::string::npos || n.find("v_proj.") != std::string::npos || n.find(".value.") != std::string::npos;
            if (is_k) key_width = t.shape[0];
            if (is_v) value_width = t.shape[0];
        }
        if (t.role == GREY_TENSOR_ROLE_ROUTED_EXPERTS && t.layer >= 0) {
            if (t.shape.size() == 3) a.experts = std::max<uint32_t>(a.experts, static_cast<uint32_t>(t.shape[0]));
        }
    }
    if (key_width != 0) {
        // The split into heads does not change the cache's size; 64 or 128 wide heads are the common ones.
        const uint32_t head = key_width % 128 == 0 && key_width >= 1024 ? 128 : (key_width % 64 == 0 ? 64 : static_cast<uint32_t>(key_width));
        a.key_length = head;
        a.value_length = value_width != 0 && value_width % head == 0 ? head : a.key_length;
        a.kv_heads = static_cast<uint32_t>(key_width / head);
        a.heads = a.embedding != 0 && a.embedding % head == 0 ? a.embedding / head : a.kv_heads;
    }
    a.causal = !encoder;
    return a;
}

// Fills what a source left out: head sizes from the hidden size, KV heads from the heads.
void complete(Architecture& a, const Architecture& inferred) {
    if (a.layers == 0) a.layers = inferred.layers;
    if (a.embedding == 0) a.embedding = inferred.embedding;
    if (a.heads == 0) a.heads = inferred.heads;
    if (a.kv_heads == 0) a.kv_heads = a.heads != 0 ? a.heads : inferred.kv_heads;
    if (a.key_length == 0) a.key_length = a.heads != 0 && a.embedding != 0 ? a.embedding / a.heads : inferred.key_length;
    if (a.value_length == 0 && !a.latent_kv) a.value_length = a.key_length;
    if (a.experts == 0) a.experts = inferred.experts;
    if (a.experts != 0 && a.experts_used == 0) a.experts_used = std::min<uint32_t>(a.experts, 2);
}

// Hyper-parameters beyond any real model are a broken or hostile file, refused before they size anything.
void check_plausible(const Architecture& a, const std::string& path) {
    const auto limit = [&](uint64_t value, uint64_t most, const char* what) {
        if (value > most)
            fail(GREY_ERROR_CORRUPT, "model file '" + path + "' (" + a.source + "): " + what + " " + std::to_string(value) + " is beyond " +
                                         std::to_string(most));
    };
    limit(a.layers, 65536, "layer count");
    limit(a.embedding, 1u << 20, "embedding length");
    limit(a.heads, 65536, "head count");
    limit(a.kv_heads, 65536, "KV head count");
    limit(a.key_length, 65536, "key length");
    limit(a.value_length, 65536, "value length");
    limit(a.experts, 1u << 20, "expert count");
}

}  // namespace

WorkloadModel read_workload_model(const std::string& path) {
    const MappedFile file(path, "model file");
    const model::ModelFile contents = model::parse_model(file.bytes());
    WorkloadModel w;
    w.path = path;
    w.format = contents.format;
    w.tensors.reserve(contents.tensors.size());
    for (const auto& t : contents.tensors) {
        const NameClass c = classify_tensor_name(t.name);
        w.tensors.push_back({t.name, c.role, c.layer, t.dtype, t.shape, t.data.size()});
    }
    const Architecture inferred = from_shapes(w.tensors);
    std::optional<Architecture> declared;
    if (contents.format == GREY_MODEL_FORMAT_GGUF) {
        if (Architecture a = from_gguf(contents); !a.source.empty()) declared = a;
    } else {
        declared = from_config_json(path);
    }
    w.arch = declared ? *declared : inferred;
    complete(w.arch, inferred);
    check_plausible(w.arch, path);
    return w;
}

}  // namespace grey::plan
