// grey_model_quantize and grey_model_dequantize: the policy's keep list and its overrides, pattern
// errors, the report listing every tensor, the empty run, and the round trip back to full precision.
#include "test_support.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>
#include <tuple>

namespace {

using grey::test::TempDir;
using json = nlohmann::json;
namespace fs = std::filesystem;

struct ModelDeleter {
    void operator()(grey_model* m) const noexcept { grey_model_destroy(m); }
};
using ModelPtr = std::unique_ptr<grey_model, ModelDeleter>;
struct ResultDeleter {
    void operator()(grey_model_quant_result* r) const noexcept { grey_model_quant_result_destroy(r); }
};
using ResultPtr = std::unique_ptr<grey_model_quant_result, ResultDeleter>;

using grey::test::desc_of;

uint64_t elements_of(const std::vector<uint64_t>& shape) {
    uint64_t n = 1;
    for (const uint64_t d : shape) n *= d;
    return n;
}

struct Spec {
    std::string name;
    grey_dtype dtype;
    std::vector<uint64_t> shape;
};

// A safetensors model of `specs`, filled with a deterministic pattern (F32) or counting bytes.
fs::path write_model(const fs::path& path, const std::vector<Spec>& specs,
                     const std::vector<std::pair<std::string, std::string>>& metadata = {}) {
    grey_model_writer* raw = nullptr;
    EXPECT_EQ(grey_model_writer_create(GREY_MODEL_FORMAT_SAFETENSORS, &raw), GREY_OK);
    const std::unique_ptr<grey_model_writer, void (*)(grey_model_writer*)> writer(raw, grey_model_writer_destroy);
    for (const auto& [key, value] : metadata) EXPECT_EQ(grey_model_writer_set_metadata(raw, key.c_str(), value.c_str()), GREY_OK);
    uint32_t seed = 1;
    for (const auto& s : specs) {
        const auto desc = desc_of(s.shape, s.dtype);
        uint64_t bytes = 0;
        EXPECT_EQ(grey_tensor_bytes(&desc, &bytes), GREY_OK);
        std::vector<unsigned char> data(bytes);
        if (s.dtype == GREY_DTYPE_F32) {
            std::vector<float> values(elements_of(s.shape));
            for (auto& v : values) {
                seed = seed * 1664525u + 1013904223u;
                v = (static_cast<float>(seed >> 8) / 16777216.0f - 0.5f) / 4.0f;
            }
            std::memcpy(data.data(), values.data(), bytes);
        } else {
            for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<unsigned char>(i);
        }
        EXPECT_EQ(grey_model_writer_add_tensor(raw, s.name.c_str(), &desc, 0, data.data(), data.size()), GREY_OK) << grey_last_error();
    }
    EXPECT_EQ(grey_model_writer_write(raw, path.c_str()), GREY_OK) << grey_last_error();
    return path;
}

// A small transformer-and-conv model that meets every rule of the policy.
const std::vector<Spec> mixed_model = {
    {"embeddings.word_embeddings.weight", GREY_DTYPE_F32, {16, 64}},
    {"conv1.weight", GREY_DTYPE_F32, {8, 3, 3, 3}},
    {"encoder.layer.0.attention.self.query.weight", GREY_DTYPE_F32, {64, 64}},
    {"encoder.layer.0.attention.self.query.bias", GREY_DTYPE_F32, {64}},
    {"encoder.layer.0.LayerNorm.weight", GREY_DTYPE_F32, {64}},
    {"encoder.layer.0.output.dense.weight", GREY_DTYPE_F32, {32, 64}},
    {"odd.weight", GREY_DTYPE_F32, {8, 30}},
    {"conv2.weight", GREY_DTYPE_F32, {16, 8, 1, 64}},
    {"conv3.weight", GREY_DTYPE_F32, {4, 16, 1, 1}},
    {"lm_head.weight", GREY_DTYPE_F32, {16, 64}},
    {"ids", GREY_DTYPE_I64, {4}},
};

struct QuantRun {
    grey_status status;
    json report;
    std::string error;
};

QuantRun quantize(const fs::path& input, const char* output, const char* format, const grey_model_quant_options* options = nullptr) {
    grey_model_quant_result* raw = nullptr;
    QuantRun run{grey_model_quantize(input.c_str(), output, format, options, &raw), {}, grey_last_error()};
    const ResultPtr result(raw);
    if (run.status != GREY_OK) return run;
    size_t length = 0;
    EXPECT_EQ(grey_model_quant_result_json(raw, nullptr, 0, &length), GREY_ERROR_BUFFER_TOO_SMALL);
    std::string text(length + 1, '\0');
    EXPECT_EQ(grey_model_quant_result_json(raw, text.data(), text.size(), &length), GREY_OK);
    text.resize(length);
    run.report = json::parse(text);
    return run;
}

std::map<std::string, std::string> kept_reasons(const json& report) {
    std::map<std::string, std::string> kept;
    for (const auto& k : report["kept"]) kept[k["name"]] = k["reason"];
    return kept;
}

std::map<std::string, std::string> quantized_formats(const json& report) {
    std::map<std::string, std::string> formats;
    for (const auto& t : report["tensors"]) formats[t["name"]] = t["format"];
    return formats;
}

TEST(ModelQuantize, DefaultPolicyKeepsCriticalLayersAndSaysWhy) {
    TempDir dir;
    const auto model = write_model(dir.path() / "m.safetensors", mixed_model);
    const QuantRun run = quantize(model, nullptr, "int4-g64");
    ASSERT_EQ(run.status, GREY_OK) << run.error;
    EXPECT_EQ(quantized_formats(run.report), (std::map<std::string, std::string>{
                                                 {"encoder.layer.0.attention.self.query.weight", "int4-g64"},
                                                 {"encoder.layer.0.output.dense.weight", "int4-g64"},
                                                 {"conv2.weight", "int4-g64"},
                                                 {"odd.weight", "int4-g64"}}));  // a ragged last group a row
    const auto kept = kept_reasons(run.report);
    EXPECT_EQ(kept.at("embeddings.word_embeddings.weight"), "embedding (critical layer)");
    EXPECT_EQ(kept.at("lm_head.weight"), "output layer (critical layer)");
    EXPECT_EQ(kept.at("conv1.weight"), "first convolution (critical layer)");
    EXPECT_EQ(kept.at("conv3.weight"), "last convolution (critical layer)");
    EXPECT_EQ(kept.at("encoder.layer.0.attention.self.query.bias"), "one-dimensional (bias or norm)");
    EXPECT_EQ(kept.at("encoder.layer.0.LayerNorm.weight"), "one-dimensional (bias or norm)");
    EXPECT_EQ(kept.at("ids"), "not a float tensor (I64)");
}

TEST(ModelQuantize, ReportListsEveryTensorOnceInFileOrder) {
    TempDir dir;
    const auto model = write_model(dir.path() / "m.safetensors", mixed_model);
    for (const char* format : {"int8", "int4-g32", "nf4", "q8_0", "fp8-e4m3"}) {
        const QuantRun run = quantize(model, nullptr, format);
        ASSERT_EQ(run.status, GREY_OK) << format << ": " << run.error;
        EXPECT_EQ(run.report["format"], format);  // what was asked, beside what was done
        EXPECT_EQ(run.report["calibration"], "rtn");
        std::vector<std::string> quantized, kept;
        for (const auto& t : run.report["tensors"]) quantized.push_back(t["name"]);
        for (const auto& k : run.report["kept"]) {
            kept.push_back(k["name"]);
            EXPECT_FALSE(k["reason"].get<std::string>().empty());
        }
        std::set<std::string> all(quantized.begin(), quantized.end());
        all.insert(kept.begin(), kept.end());
        EXPECT_EQ(all.size(), mixed_model.size()) << format;
        EXPECT_EQ(quantized.size() + kept.size(), mixed_model.size()) << format;
        uint64_t elements = 0;
        for (const auto& t : run.report["tensors"]) elements += t["elements"].get<uint64_t>();
        EXPECT_EQ(run.report["total"]["elements"].get<uint64_t>(), elements) << format;
    }
}

std::string file_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// With a context whose device is the host, the tensors are quantized where the file maps them, on the
// context's worker pool (three threads here): the file and the report are those of the context-free,
// single-threaded route, byte for byte.
TEST(ModelQuantize, OnTheHostDeviceTheWorkerPoolGivesTheHostMemoryResult) {
    TempDir dir;
    const auto model = write_model(dir.path() / "m.safetensors", mixed_model);
    const auto config = dir.write("threads.yaml", "host:\n  threads: 3\n");
    grey_context_options context_options = grey::test::host_only_options();
    const std::string config_path = config.string();
    context_options.config_path = config_path.c_str();
    const auto context = grey::test::make_context(context_options);
    for (const char* format : {"int4-g128", "int8", "q4_0", "nf4", "fp8-e4m3"}) {
        grey_model_quant_options with_context = GREY_MODEL_QUANT_OPTIONS_INIT;
        with_context.context = context.get();
        const auto alone = dir.path() / (std::string(format) + "-alone.gguf");
        const auto pooled = dir.path() / (std::string(format) + "-pool.gguf");
        const QuantRun alone_run = quantize(model, alone.c_str(), format);
        const QuantRun pool_run = quantize(model, pooled.c_str(), format, &with_context);
        ASSERT_EQ(alone_run.status, GREY_OK) << alone_run.error;
        ASSERT_EQ(pool_run.status, GREY_OK) << pool_run.error;
        EXPECT_EQ(pool_run.report, alone_run.report) << format;
        EXPECT_EQ(file_bytes(pooled), file_bytes(alone)) << format;
        EXPECT_GE(alone_run.report["tensors"].size(), 3u) << format;
    }
}

// A model of many small matrices (as a conv net or a model of many experts has): on the host device's pool
// they are quantized several at once, a tensor to a thread. The file and the report are those of one
// thread and of the context-free route, byte for byte; a tensor that cannot be quantized is named, the
// first in file order when several cannot, and nothing is written.
std::vector<Spec> many_small_matrices(int count) {
    std::vector<Spec> specs;
    for (int i = 0; i < count; ++i)
        specs.push_back({"layers." + std::to_string(i) + ".weight", GREY_DTYPE_F32,
                         {static_cast<uint64_t>(8 + i % 5), static_cast<uint64_t>(64 + 32 * (i % 3))}});
    return specs;
}

grey::test::ContextPtr host_context_of(const TempDir& dir, int threads) {
    const auto config = dir.write("threads" + std::to_string(threads) + ".yaml", "host:\n  threads: " + std::to_string(threads) + "\n");
    grey_context_options options = grey::test::host_only_options();
    const std::string config_path = config.string();
    options.config_path = config_path.c_str();
    return grey::test::make_context(options);
}

TEST(ModelQuantize, ManySmallTensorsOnThePoolGiveTheOneThreadResult) {
    TempDir dir;
    const auto model = write_model(dir.path() / "m.safetensors", many_small_matrices(60));
    const auto pool = host_context_of(dir, 3), single = host_context_of(dir, 1);
    for (const char* format : {"int4-g128", "q8_0", "nf4", "int8"}) {  // int4-g128: ragged last groups
        std::vector<std::string> files;
        std::vector<json> reports;
        for (grey_context* context : {pool.get(), single.get(), static_cast<grey_context*>(nullptr)}) {
            grey_model_quant_options options = GREY_MODEL_QUANT_OPTIONS_INIT;
            options.context = context;
            const auto out = dir.path() / (std::string(format) + "-" + std::to_string(files.size()) + ".gguf");
            const QuantRun run = quantize(model, out.c_str(), format, &options);
            ASSERT_EQ(run.status, GREY_OK) << run.error;
            files.push_back(file_bytes(out));
            reports.push_back(run.report);
        }
        EXPECT_EQ(reports[0]["tensors"].size(), 60u) << format;
        EXPECT_EQ(reports[0], reports[1]) << format;
        EXPECT_EQ(reports[0], reports[2]) << format;
        EXPECT_EQ(files[0], files[1]) << format;
        EXPECT_EQ(files[0], files[2]) << format;
    }
}

TEST(ModelQuantize, AFailingTensorAmongSmallOnesIsNamedAndNothingIsWritten) {
    TempDir dir;
    const std::vector<Spec> specs = many_small_matrices(20);
    grey_model_writer* raw = nullptr;
    ASSERT_EQ(grey_model_writer_create(GREY_MODEL_FORMAT_SAFETENSORS, &raw), GREY_OK);
    const std::unique_ptr<grey_model_writer, void (*)(grey_model_writer*)> writer(raw, grey_model_writer_destroy);
    for (size_t i = 0; i < specs.size(); ++i) {
        std::vector<float> values(elements_of(specs[i].shape), 0.25f);
        if (i == 7 || i == 12) values[values.size() / 2] = std::numeric_limits<float>::quiet_NaN();
        const auto desc = desc_of(specs[i].shape, GREY_DTYPE_F32);
        ASSERT_EQ(grey_model_writer_add_tensor(raw, specs[i].name.c_str(), &desc, 0, values.data(), values.size() * sizeof(float)), GREY_OK)
            << grey_last_error();
    }
    const auto model = dir.path() / "nan.safetensors";
    ASSERT_EQ(grey_model_writer_write(raw, model.c_str()), GREY_OK) << grey_last_error();
    const auto pool = host_context_of(dir, 3);
    grey_model_quant_options options = GREY_MODEL_QUANT_OPTIONS_INIT;
    options.context = pool.get();
    const auto out = dir.path() / "out.gguf";
    const QuantRun run = quantize(model, out.c_str(), "int4-g32", &options);
    EXPECT_NE(run.status, GREY_OK);
    EXPECT_EQ(run.error.rfind("tensor layers.7.weight: ", 0), 0u) << run.error;
    EXPECT_FALSE(fs::exists(out));
}

// On a device whose backend does not take host memory the tensors go through two buffers made once for
// the largest and reused, a larger tensor before smaller ones. The zeroquant test plugin writes zero
// codes, which decode to zeros: every tensor's error is its whole signal, measured on the host.
TEST(ModelQuantize, OnADeviceTheTensorsGoThroughReusedBuffers) {
    TempDir dir;
    const auto model = write_model(dir.path() / "m.safetensors", mixed_model);
    grey_context_options context_options = GREY_CONTEXT_OPTIONS_INIT;
    context_options.backend_dir = GREY_TEST_QUANT_PLUGIN_DIR;
    context_options.backends = "zeroquant";
    const auto context = grey::test::make_context(context_options);
    grey_model_quant_options in_buffers = GREY_MODEL_QUANT_OPTIONS_INIT;
    in_buffers.context = context.get();
    in_buffers.device = 1;  // the plugin's device, after the host's
    const QuantRun host_run = quantize(model, nullptr, "int8");
    const QuantRun device_run = quantize(model, nullptr, "int8", &in_buffers);
    ASSERT_EQ(host_run.status, GREY_OK) << host_run.error;
    ASSERT_EQ(device_run.status, GREY_OK) << device_run.error;
    ASSERT_EQ(device_run.report["tensors"].size(), host_run.report["tensors"].size());
    ASSERT_GE(device_run.report["tensors"].size(), 3u);
    for (size_t i = 0; i < device_run.report["tensors"].size(); ++i) {
        const auto& t = device_run.report["tensors"][i];
        EXPECT_EQ(t["name"], host_run.report["tensors"][i]["name"]);
        EXPECT_EQ(t["rel_rmse"].get<double>(), 1.0) << t["name"];
    }
}

TEST(ModelQuantize, PatternsOverrideTheKeepListAndTheFormat) {
    TempDir dir;
    const auto model = write_model(dir.path() / "m.safetensors", mixed_model);
    grey_model_quant_options options = GREY_MODEL_QUANT_OPTIONS_INIT;
    options.quantize_patterns = "^lm_head\\.\n\n^conv1\\.";
    options.keep_patterns = "output\\.dense";
    options.format_overrides = "^odd\\.=int8\n^conv=int8\n.*=nf4";  // the first match wins
    const QuantRun run = quantize(model, nullptr, "int4-g64", &options);
    ASSERT_EQ(run.status, GREY_OK) << run.error;
    EXPECT_EQ(quantized_formats(run.report), (std::map<std::string, std::string>{{"encoder.layer.0.attention.self.query.weight", "nf4"},
                                                                                  {"odd.weight", "int8"},
                                                                                  {"conv1.weight", "int8"},
                                                                                  {"conv2.weight", "int8"},
                                                                                  {"lm_head.weight", "nf4"}}));
    const auto kept = kept_reasons(run.report);
    EXPECT_EQ(kept.at("encoder.layer.0.output.dense.weight"), "matches keep pattern 'output\\.dense'");
    EXPECT_EQ(kept.at("embeddings.word_embeddings.weight"), "embedding (critical layer)");
    EXPECT_EQ(kept.at("conv3.weight"), "last convolution (critical layer)");

    // Without the critical-layer list, only what must be kept is kept.
    grey_model_quant_options all = GREY_MODEL_QUANT_OPTIONS_INIT;
    all.keep_critical = 0;
    const QuantRun everything = quantize(model, nullptr, "int8", &all);
    ASSERT_EQ(everything.status, GREY_OK) << everything.error;
    EXPECT_EQ(everything.report["tensors"].size(), 8u);
    EXPECT_EQ(everything.report["kept"].size(), 3u);
}

TEST(ModelQuantize, BadPatternsAndFormatsAreNamed) {
    TempDir dir;
    const auto model = write_model(dir.path() / "m.safetensors", mixed_model);
    // (keep, quantize, format overrides) and the message naming what is wrong.
    const std::vector<std::tuple<const char*, const char*, const char*, std::string>> cases = {
        {"ok\n(", nullptr, nullptr, "keep pattern '(' is not a valid regular expression"},
        {nullptr, "[a-", nullptr, "quantize pattern '[a-' is not a valid regular expression"},
        {nullptr, nullptr, "^odd=int3", "unknown quantization format name 'int3' in format override '^odd=int3'"},
        {nullptr, nullptr, "no-format-here", "format override 'no-format-here' is not PATTERN=FORMAT"},
        {nullptr, nullptr, "(x=int8", "format override pattern '(x' is not a valid regular expression"},
    };
    for (const auto& [keep, quantize_patterns, overrides, message] : cases) {
        grey_model_quant_options options = GREY_MODEL_QUANT_OPTIONS_INIT;
        options.keep_patterns = keep;
        options.quantize_patterns = quantize_patterns;
        options.format_overrides = overrides;
        const QuantRun run = quantize(model, (dir.path() / "out.safetensors").c_str(), "int8", &options);
        EXPECT_EQ(run.status, GREY_ERROR_INVALID_ARGUMENT) << message;
        EXPECT_NE(run.error.find(message), std::string::npos) << run.error;
        EXPECT_FALSE(fs::exists(dir.path() / "out.safetensors"));
    }
    EXPECT_EQ(quantize(model, nullptr, "int3").status, GREY_ERROR_INVALID_ARGUMENT);
    grey_model_quant_options small = GREY_MODEL_QUANT_OPTIONS_INIT;
    small.struct_size = 8;
    EXPECT_EQ(quantize(model, nullptr, "int8", &small).status, GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(quantize(model, (dir.path() / "out.bin").c_str(), "int8").status, GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(quantize(model, model.c_str(), "int8").status, GREY_ERROR_INVALID_ARGUMENT);
}

TEST(ModelQuantize, NothingToQuantizeFailsUnlessAllowed) {
    TempDir dir;
    const auto model = write_model(dir.path() / "m.safetensors", {{"norm.weight", GREY_DTYPE_F32, {64}}, {"ids", GREY_DTYPE_I64, {4}}});
    const auto out = dir.path() / "out.safetensors";
    const QuantRun empty = quantize(model, out.c_str(), "int8");
    EXPECT_EQ(empty.status, GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(empty.error.find("nothing to quantize in " + model.string() + ": none of its 2 tensors"), std::string::npos) << empty.error;
    EXPECT_NE(empty.error.find("1 not a float tensor (I64)"), std::string::npos) << empty.error;
    EXPECT_FALSE(fs::exists(out));
    grey_model_quant_options options = GREY_MODEL_QUANT_OPTIONS_INIT;
    options.allow_empty = 1;
    const QuantRun allowed = quantize(model, out.c_str(), "int8", &options);
    ASSERT_EQ(allowed.status, GREY_OK) << allowed.error;
    EXPECT_TRUE(allowed.report["tensors"].empty());
    EXPECT_EQ(allowed.report["kept"].size(), 2u);
    EXPECT_TRUE(fs::exists(out));
}

// The values the file's tensor `name` holds, as float32.
std::vector<float> f32_tensor(const fs::path& path, const std::string& name, grey_dtype expected = GREY_DTYPE_F32) {
    grey_model* raw = nullptr;
    EXPECT_EQ(grey_model_create(path.c_str(), &raw), GREY_OK) << grey_last_error();
    const ModelPtr model(raw);
    uint64_t count = 0;
    EXPECT_EQ(grey_model_tensor_count(raw, &count), GREY_OK);
    for (uint64_t i = 0; i < count; ++i) {
        grey_model_tensor t{};
        t.struct_size = sizeof t;
        EXPECT_EQ(grey_model_tensor_get(raw, i, &t), GREY_OK);
        if (name != t.name) continue;
        EXPECT_EQ(t.desc->dtype, expected);
        std::vector<float> values(t.size_bytes / 4);
        std::memcpy(values.data(), t.data, values.size() * 4);
        return values;
    }
    ADD_FAILURE() << "no tensor " << name << " in " << path;
    return {};
}

// What grey_quantize then grey_dequantize make of a tensor: the exact values a restored file must hold.
std::vector<float> round_trip(const std::vector<float>& values, std::vector<uint64_t> shape, const char* format) {
    grey_quant_params params = GREY_QUANT_PARAMS_INIT;
    EXPECT_EQ(grey_quant_params_from_name(format, &params), GREY_OK);
    const auto desc = desc_of(std::move(shape), GREY_DTYPE_F32);
    uint64_t size = 0;
    EXPECT_EQ(grey_quant_size(&desc, &params, &size), GREY_OK);
    std::vector<unsigned char> q(size);
    std::vector<float> back(values.size());
    EXPECT_EQ(grey_quantize(&desc, values.data(), values.size() * 4, &params, q.data(), q.size(), nullptr), GREY_OK);
    EXPECT_EQ(grey_dequantize(&desc, &params, q.data(), q.size(), back.data(), back.size() * 4), GREY_OK);
    return back;
}

TEST(ModelDequantize, RestoresEveryTensorExactlyInBothFileFormats) {
    TempDir dir;
    const auto model = write_model(dir.path() / "m.safetensors", mixed_model, {{"note", "kept"}});
    for (const char* format : {"int4-g32", "q4_0", "int8"}) {
        for (const char* extension : {".safetensors", ".gguf"}) {
            const auto quantized = dir.path() / (std::string("q-") + format + extension);
            const auto restored = dir.path() / (std::string("r-") + format + extension + ".safetensors");
            const QuantRun run = quantize(model, quantized.c_str(), format);
            ASSERT_EQ(run.status, GREY_OK) << run.error;
            ASSERT_EQ(grey_model_dequantize(quantized.c_str(), restored.c_str(), nullptr), GREY_OK) << grey_last_error();
            for (const auto& s : mixed_model) {
                if (s.dtype != GREY_DTYPE_F32) continue;
                const auto original = f32_tensor(model, s.name);
                const auto back = f32_tensor(restored, s.name);
                const bool was_quantized = quantized_formats(run.report).count(s.name) != 0;
                EXPECT_EQ(back, was_quantized ? round_trip(original, s.shape, format) : original) << format << extension << " " << s.name;
            }
        }
    }
    // F16 and BF16 outputs when asked; the metadata of libgrey's convention is gone, the rest is kept.
    const auto quantized = dir.path() / "q-int4-g32.safetensors";
    grey_model_dequant_options options = GREY_MODEL_DEQUANT_OPTIONS_INIT;
    options.dtype = GREY_DTYPE_BF16;
    ASSERT_EQ(grey_model_dequantize(quantized.c_str(), (dir.path() / "bf16.safetensors").c_str(), &options), GREY_OK) << grey_last_error();
    grey_model* raw = nullptr;
    ASSERT_EQ(grey_model_create((dir.path() / "bf16.safetensors").c_str(), &raw), GREY_OK);
    const ModelPtr bf16(raw);
    grey_model_tensor t{};
    t.struct_size = sizeof t;
    ASSERT_EQ(grey_model_tensor_get(raw, 2, &t), GREY_OK);
    EXPECT_STREQ(t.name, "encoder.layer.0.attention.self.query.weight");
    EXPECT_EQ(t.desc->dtype, GREY_DTYPE_BF16);
    EXPECT_EQ(t.desc->rank, 2u);
    EXPECT_EQ(t.desc->shape[1], 64u);
    // Replacing needs replace; the output is never the input.
    EXPECT_EQ(grey_model_dequantize(quantized.c_str(), (dir.path() / "bf16.safetensors").c_str(), &options), GREY_ERROR_IO);
    EXPECT_EQ(grey_model_dequantize(quantized.c_str(), quantized.c_str(), nullptr), GREY_ERROR_INVALID_ARGUMENT);
    options.dtype = GREY_DTYPE_I8;
    EXPECT_EQ(grey_model_dequantize(quantized.c_str(), (dir.path() / "i8.safetensors").c_str(), &options), GREY_ERROR_INVALID_ARGUMENT);
}

TEST(ModelDequantize, RefusesFilesItCannotRestore) {
    TempDir dir;
    const auto out = dir.path() / "out.safetensors";
    // A model nobody quantized.
    const auto plain = write_model(dir.path() / "plain.safetensors", {{"w", GREY_DTYPE_F32, {4, 32}}});
    EXPECT_EQ(grey_model_dequantize(plain.c_str(), out.c_str(), nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("nothing to dequantize"), std::string::npos) << grey_last_error();
    // A description cut short, one of another size, one of an unknown format, one naming no tensor.
    const std::vector<std::pair<std::string, std::string>> bad = {
        {R"({"format": "int8", "calibration": "rtn", "dtype": "F32", "shape": [4, 3)", "is not the description"},
        {R"({"format": "int8", "calibration": "rtn", "dtype": "F32", "shape": [4, 32], "axis": 0})", "is not the description"},
        {R"({"format": "int8", "calibration": "rtn", "dtype": "F32", "shape": [4, 64], "axis": 0, "group_size": 0})", "not the 272 bytes"},
        {R"({"format": "int9", "calibration": "rtn", "dtype": "F32", "shape": [4, 32], "axis": 0, "group_size": 0})", "unknown format 'int9'"},
    };
    for (const auto& [description, message] : bad) {
        const auto file = write_model(dir.path() / "bad.safetensors", {{"w", GREY_DTYPE_U8, {144}}}, {{"grey.quant.w", description}});
        EXPECT_EQ(grey_model_dequantize(file.c_str(), out.c_str(), nullptr), GREY_ERROR_CORRUPT) << description;
        const std::string error = grey_last_error();
        EXPECT_NE(error.find("grey.quant.w"), std::string::npos) << error;
        EXPECT_NE(error.find(message), std::string::npos) << error;
    }
    const auto orphan = write_model(dir.path() / "orphan.safetensors", {{"w", GREY_DTYPE_F32, {4, 32}}}, {{"grey.quant.gone", "{}"}});
    EXPECT_EQ(grey_model_dequantize(orphan.c_str(), out.c_str(), nullptr), GREY_ERROR_CORRUPT);
    EXPECT_NE(std::string(grey_last_error()).find("grey.quant.gone describes a tensor the file does not have"), std::string::npos) << grey_last_error();
    EXPECT_FALSE(fs::exists(out));
    EXPECT_EQ(grey_model_dequantize((dir.path() / "missing.safetensors").c_str(), out.c_str(), nullptr), GREY_ERROR_NOT_FOUND);
}

// What a progress callback saw, and when it asks to stop.
struct ProgressLog {
    std::vector<std::tuple<uint64_t, uint64_t, std::string>> calls;
    size_t cancel_at = SIZE_MAX;  // the call (0-based) that answers "stop"
    static uint32_t record(uint64_t done, uint64_t total, const char* tensor, void* user) {
        auto* log = static_cast<ProgressLog*>(user);
        log->calls.emplace_back(done, total, tensor);
        return log->calls.size() - 1 == log->cancel_at ? 1u : 0u;
    }
};

// The reports a whole-model call must give for `model`: 0 first, then every tensor in file order with
// the input bytes done so far.
std::vector<std::tuple<uint64_t, uint64_t, std::string>> expected_progress(const fs::path& model) {
    grey_model* raw = nullptr;
    EXPECT_EQ(grey_model_create(model.c_str(), &raw), GREY_OK);
    const ModelPtr m(raw);
    uint64_t count = 0, total = 0, done = 0;
    EXPECT_EQ(grey_model_tensor_count(raw, &count), GREY_OK);
    std::vector<std::pair<std::string, uint64_t>> tensors;
    for (uint64_t i = 0; i < count; ++i) {
        grey_model_tensor t{};
        t.struct_size = sizeof t;
        EXPECT_EQ(grey_model_tensor_get(raw, i, &t), GREY_OK);
        tensors.emplace_back(t.name, t.size_bytes);
        total += t.size_bytes;
    }
    std::vector<std::tuple<uint64_t, uint64_t, std::string>> calls{{0, total, ""}};
    for (const auto& [name, bytes] : tensors) calls.emplace_back(done += bytes, total, name);
    return calls;
}

TEST(ModelQuantize, ProgressReportsEveryTensorAndCancels) {
    TempDir dir;
    const auto model = write_model(dir.path() / "m.safetensors", mixed_model);
    const auto out = dir.path() / "q.safetensors";
    ProgressLog log;
    grey_model_quant_options options = GREY_MODEL_QUANT_OPTIONS_INIT;
    options.progress = &ProgressLog::record;
    options.progress_user = &log;
    const QuantRun run = quantize(model, out.c_str(), "int4-g32", &options);
    ASSERT_EQ(run.status, GREY_OK) << run.error;
    EXPECT_EQ(log.calls, expected_progress(model));

    // Asked to stop after the third tensor: cancelled, naming it, and no output file at all.
    ProgressLog stop;
    stop.cancel_at = 3;
    options.progress_user = &stop;
    const auto cancelled = dir.path() / "cancelled.safetensors";
    const QuantRun refused = quantize(model, cancelled.c_str(), "int4-g32", &options);
    EXPECT_EQ(refused.status, GREY_ERROR_CANCELLED);
    EXPECT_NE(refused.error.find("cancelled by the progress callback"), std::string::npos) << refused.error;
    EXPECT_NE(refused.error.find("(tensor " + std::get<2>(expected_progress(model)[3]) + ")"), std::string::npos) << refused.error;
    EXPECT_EQ(stop.calls.size(), 4u);
    EXPECT_FALSE(fs::exists(cancelled));
    for (const auto& entry : fs::directory_iterator(dir.path()))
        EXPECT_EQ(entry.path().filename().string().find("cancelled"), std::string::npos) << "left behind: " << entry.path();
    EXPECT_STREQ(grey_status_string(GREY_ERROR_CANCELLED), "cancelled");
}

TEST(ModelDequantize, ProgressReportsEveryTensorAndCancels) {
    TempDir dir;
    const auto model = write_model(dir.path() / "m.safetensors", mixed_model);
    const auto quantized = dir.path() / "q.gguf";
    ASSERT_EQ(quantize(model, quantized.c_str(), "q8_0").status, GREY_OK);
    ProgressLog log;
    grey_model_dequant_options options = GREY_MODEL_DEQUANT_OPTIONS_INIT;
    options.progress = &ProgressLog::record;
    options.progress_user = &log;
    ASSERT_EQ(grey_model_dequantize(quantized.c_str(), (dir.path() / "r.safetensors").c_str(), &options), GREY_OK) << grey_last_error();
    EXPECT_EQ(log.calls, expected_progress(quantized));

    ProgressLog stop;
    stop.cancel_at = 0;  // before the first tensor
    options.progress_user = &stop;
    const auto cancelled = dir.path() / "cancelled.safetensors";
    EXPECT_EQ(grey_model_dequantize(quantized.c_str(), cancelled.c_str(), &options), GREY_ERROR_CANCELLED);
    EXPECT_NE(std::string(grey_last_error()).find("after 0 of"), std::string::npos) << grey_last_error();
    EXPECT_FALSE(fs::exists(cancelled));
}

}  // namespace
