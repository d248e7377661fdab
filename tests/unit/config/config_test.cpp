#include "config/config.hpp"
#include "core/error.hpp"
#include "test_support.hpp"

#include <fstream>
#include <map>
#include <sstream>
#include <vector>

using grey::config::Config;
using grey::config::Profile;

namespace {
std::string error_of(const std::function<void()>& body) {
    try {
        body();
    } catch (const grey::Error& e) {
        return e.what();
    }
    return "(no error)";
}
std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}
}  // namespace

TEST(Config, BalancedProfileIsTheReferenceFile) {
    // Loading the product's reference file over the balanced defaults changes nothing.
    Config balanced(Profile::Balanced);
    Config loaded(Profile::Conservative);
    loaded.load_file(GREY_REFERENCE_CONFIG);
    for (const auto& key : grey::config::schema())
        EXPECT_EQ(loaded.get_text(key.path), balanced.get_text(key.path)) << key.path;
}

TEST(Config, EveryReferenceKeyIsInTheSchema) {
    // The reference file exercises every key it has; a key it lacks would be an unknown-key error above.
    const std::string text = read_file(GREY_REFERENCE_CONFIG);
    for (const char* key : {"auto_detect", "ram_multiplier", "scan_interval_ms", "algorithm", "pool_size_mb",
                            "fragmentation_threshold", "target_temp_c", "max_temp_c", "throttle_strategy",
                            "fairness_enabled", "priority_levels", "preemption_allowed", "port",
                            "health_check_interval_s", "proof_artifact_dir", "log_level", "dry_run_default",
                            "rollback_window_s", "backup_before_enforce", "require_explicit_consent"})
        EXPECT_NE(text.find(key), std::string::npos) << key;
}

TEST(Config, ProfilesDiffer) {
    Config conservative(Profile::Conservative), aggressive(Profile::Aggressive);
    EXPECT_EQ(conservative.get_string("memory.compression.algorithm"), "lz4");
    EXPECT_FALSE(conservative.get_bool("memory.compression.enabled"));
    EXPECT_EQ(aggressive.get_string("memory.compression.algorithm"), "zstd");
    EXPECT_TRUE(aggressive.get_bool("scheduling.preemption_allowed"));
    EXPECT_FALSE(aggressive.get_bool("safety.dry_run_default"));
    for (Profile p : {Profile::Conservative, Profile::Balanced, Profile::Aggressive}) {
        Config c(p);
        EXPECT_LT(c.get_real("thermal.target_temp_c"), c.get_real("thermal.max_temp_c")) << grey::config::profile_name(p);
    }
}

TEST(Config, ErrorsNameFileLineAndKey) {
    Config c;
    EXPECT_EQ(error_of([&] { c.load_yaml("memory:\n  compresion:\n    enabled: true\n", "x.yaml"); }),
              "x.yaml:2: memory.compresion: unknown key");
    EXPECT_EQ(error_of([&] { c.load_yaml("daemon:\n  port: 70000\n", "x.yaml"); }),
              "x.yaml:2: daemon.port: value 70000 is out of range [1, 65535]");
    EXPECT_EQ(error_of([&] { c.load_yaml("daemon:\n  port: eighty\n", "x.yaml"); }),
              "x.yaml:2: daemon.port: expected an integer, got 'eighty'");
    EXPECT_EQ(error_of([&] { c.load_yaml("daemon:\n  port: \"8080\"\n", "x.yaml"); }),
              "x.yaml:2: daemon.port: expected an integer, got the string \"8080\"");
    EXPECT_EQ(error_of([&] { c.load_yaml("thermal:\n  enabled: yes\n", "x.yaml"); }),
              "x.yaml:2: thermal.enabled: expected a boolean (true or false), got 'yes'");
    EXPECT_EQ(error_of([&] { c.load_yaml("thermal: 5\n", "x.yaml"); }),
              "x.yaml:1: thermal: expected a section (a mapping of keys)");
    EXPECT_EQ(error_of([&] { c.load_yaml("targets:\n  ram_multiplier: [1, 2]\n", "x.yaml"); }),
              "x.yaml:2: targets.ram_multiplier: expected a number, got a list");
    EXPECT_EQ(error_of([&] { c.load_yaml("daemon:\n  proof_artifact_dir: \"\"\n", "x.yaml"); }),
              "x.yaml:2: daemon.proof_artifact_dir: must not be empty");
    EXPECT_EQ(error_of([&] { c.load_yaml("version: \"2.0\"\n", "x.yaml"); }),
              "x.yaml:1: version: expected one of 1.0, got '2.0'");
    EXPECT_EQ(error_of([&] { c.load_yaml("daemon:\n  port: 1\n  port: 2\n", "x.yaml"); }),
              "x.yaml:3: daemon.port: duplicate key");
    EXPECT_EQ(error_of([&] { c.load_yaml("- a\n- b\n", "x.yaml"); }),
              "x.yaml:1: (document): the top level must be a mapping of sections");
    EXPECT_EQ(error_of([&] { c.load_yaml("thermal: {target_temp_c: 90, max_temp_c: 85}\n", "x.yaml"); }),
              "x.yaml: thermal.target_temp_c (90.0) must be below thermal.max_temp_c (85.0)");
    EXPECT_NE(error_of([&] { c.load_yaml("daemon: [\n", "x.yaml"); }).find("x.yaml:2: YAML syntax error"), std::string::npos);
}

// YAML's "\0" escape puts a NUL byte in a key or value. A C caller reads either up to that byte: a
// proof directory "/tmp/p\0/x" would be used as "/tmp/p", and a message naming the key would stop
// there. Both are refused, naming the file, the line and the key as far as it is known.
TEST(Config, KeysAndValuesHoldingANulByteAreRefused) {
    Config c;
    EXPECT_EQ(error_of([&] { c.load_yaml("daemon:\n  proof_artifact_dir: \"/tmp/p\\0/x\"\n", "x.yaml"); }),
              "x.yaml:2: daemon.proof_artifact_dir: the value holds a NUL byte (byte 6 of 9), where a C string would end");
    EXPECT_EQ(error_of([&] { c.load_yaml("daemon:\n  \"port\\0x\": 80\n", "x.yaml"); }),
              "x.yaml:2: daemon: a key holds a NUL byte (byte 4 of 6), where a C string would end");
    EXPECT_EQ(error_of([&] { c.load_yaml("daemon:\n  log_level: \"INFO\\0\"\n", "x.yaml"); }),
              "x.yaml:2: daemon.log_level: the value holds a NUL byte (byte 4 of 5), where a C string would end");
    EXPECT_EQ(c.get_string("daemon.proof_artifact_dir"), "./proofs");
}

TEST(Config, AllProblemsAreReportedAtOnceAndNothingIsApplied) {
    Config c;
    const std::string before = c.to_yaml();
    const std::string message = error_of([&] {
        c.load_yaml("daemon:\n  port: 9000\n  colour: blue\nthermal:\n  strategy: cold\n", "y.yaml");
    });
    EXPECT_EQ(message, "2 problems:\n  y.yaml:3: daemon.colour: unknown key\n  y.yaml:5: thermal.strategy: unknown key");
    EXPECT_EQ(c.to_yaml(), before) << "a failed load must not apply the valid parts";
    EXPECT_EQ(c.get_int("daemon.port"), 8090);
}

TEST(Config, EmptyDocumentChangesNothing) {
    Config c;
    c.load_yaml("", "empty.yaml");
    c.load_yaml("# only a comment\n", "empty.yaml");
    EXPECT_EQ(c.get_int("daemon.port"), 8090);
}

// The cap on pinned host-tier containers: a profile value each, 0 (pin none) its minimum, and a bad value
// refused naming the key, as every key's.
TEST(Config, PinnedHostCapHasADefaultAndRefusesBadValues) {
    // A bound for the host's sake, not a degree of compression: the same in every profile.
    for (Profile p : {Profile::Conservative, Profile::Balanced, Profile::Aggressive})
        EXPECT_EQ(Config(p).get_int("memory.compression.pinned_host_mb"), 4096);
    Config c;
    c.load_yaml("memory:\n  compression:\n    pinned_host_mb: 0\n", "x.yaml");
    EXPECT_EQ(c.get_int("memory.compression.pinned_host_mb"), 0);
    EXPECT_EQ(error_of([&] { c.load_yaml("memory:\n  compression:\n    pinned_host_mb: -1\n", "x.yaml"); }),
              "x.yaml:3: memory.compression.pinned_host_mb: value -1 is out of range [0, 16777216]");
    EXPECT_EQ(error_of([&] { c.load_yaml("memory:\n  compression:\n    pinned_host_mb: 4GB\n", "x.yaml"); }),
              "x.yaml:3: memory.compression.pinned_host_mb: expected an integer, got '4GB'");
    EXPECT_EQ(error_of([&] { c.set("memory.compression.pinned_host_mb", "16777217"); }),
              "memory.compression.pinned_host_mb: value 16777217 is out of range [0, 16777216]");
    EXPECT_EQ(c.get_int("memory.compression.pinned_host_mb"), 0) << "a refused value changes nothing";
}

TEST(Config, SetAndGetValidateLikeAFile) {
    Config c;
    c.set("memory.compression.algorithm", "zstd");
    EXPECT_EQ(c.get_string("memory.compression.algorithm"), "zstd");
    EXPECT_EQ(error_of([&] { c.set("memory.compression.algorithm", "brotli"); }),
              "memory.compression.algorithm: expected one of lz4 | zstd | none, got 'brotli'");
    EXPECT_EQ(error_of([&] { c.set("no.such.key", "1"); }), "no.such.key: unknown key");
    EXPECT_EQ(error_of([&] { c.set("thermal.target_temp_c", "99"); }),
              "thermal.target_temp_c (99.0) must be below thermal.max_temp_c (83.0)");
    EXPECT_DOUBLE_EQ(c.get_real("thermal.target_temp_c"), 75.0);
}

TEST(Config, EnvironmentOverrides) {
    grey::test::TempDir dir;
    const auto file = dir.write("env.yaml", "daemon:\n  health_check_interval_s: 7\n");
    std::map<std::string, std::string> env = {{"GREY_CONFIG_PATH", file.string()}, {"GREY_LOG_LEVEL", "debug"},
                                              {"GREY_DRY_RUN", "0"}, {"GREY_GPU_INDEX", "2"}, {"GREY_DAEMON_PORT", "9999"}};
    auto lookup = [&env](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
    };
    Config c;
    c.apply_env(lookup);
    EXPECT_EQ(c.get_int("daemon.health_check_interval_s"), 7);
    EXPECT_EQ(c.get_string("daemon.log_level"), "DEBUG");
    EXPECT_FALSE(c.get_bool("safety.dry_run_default"));
    EXPECT_EQ(c.get_int("detection.gpu_index"), 2);
    EXPECT_EQ(c.get_int("daemon.port"), 9999);

    env["GREY_GPU_INDEX"] = "-5";
    Config d;
    EXPECT_EQ(error_of([&] { d.apply_env(lookup); }),
              "environment GREY_GPU_INDEX=-5: detection.gpu_index: value -5 is out of range [-1, 1023]");
    EXPECT_EQ(d.get_int("daemon.port"), 8090) << "a failed override applies nothing";
}

TEST(Config, YamlRoundTrip) {
    for (Profile p : {Profile::Conservative, Profile::Balanced, Profile::Aggressive}) {
        Config original(p);
        original.set("daemon.proof_artifact_dir", "/var/lib/grey proofs/\"x\"");
        original.set("targets.ram_multiplier", "3.3");
        Config copy(p == Profile::Balanced ? Profile::Aggressive : Profile::Balanced);
        copy.load_yaml(original.to_yaml(), "roundtrip");
        for (const auto& key : grey::config::schema()) EXPECT_EQ(copy.get_text(key.path), original.get_text(key.path)) << key.path;
    }
}

TEST(Config, DocsDescribeEveryKey) {
    const std::string docs = read_file(std::string(GREY_TEST_DATA_DIR) + "/../../docs/config.md");
    ASSERT_FALSE(docs.empty()) << "docs/config.md is missing";
    for (const auto& key : grey::config::schema())
        EXPECT_NE(docs.find("`" + std::string(key.path) + "`"), std::string::npos) << key.path << " is not documented";
    for (const char* env : {"GREY_CONFIG_PATH", "GREY_LOG_LEVEL", "GREY_DRY_RUN", "GREY_GPU_INDEX", "GREY_DAEMON_PORT"})
        EXPECT_NE(docs.find(env), std::string::npos) << env;
}

// A key nothing acts on yet is said to be inert in the docs' table, in the YAML libgrey writes and
// through the API, all from the schema's one column; a key something acts on says what.
TEST(Config, KeysNothingActsOnAreMarkedEverywhere) {
    const std::string docs = read_file(std::string(GREY_TEST_DATA_DIR) + "/../../docs/config.md");
    // to_yaml writes the keys in the schema's order, one a line, under lines that open their sections.
    std::vector<std::string> value_lines;
    std::istringstream yaml(Config(Profile::Balanced).to_yaml());
    for (std::string l; std::getline(yaml, l);)
        if (!l.ends_with(":")) value_lines.push_back(l);
    const auto keys = grey::config::schema();
    ASSERT_EQ(value_lines.size(), keys.size());
    size_t inert = 0;
    for (uint32_t i = 0; i < keys.size(); ++i) {
        const auto& key = keys[i];
        const size_t row = docs.find("| `" + std::string(key.path) + "` |");
        ASSERT_NE(row, std::string::npos) << key.path;
        const std::string line = docs.substr(row, docs.find('\n', row) - row);
        const std::string& yaml_line = value_lines[i];
        const std::string leaf(key.path.substr(key.path.rfind('.') + 1));
        EXPECT_NE(yaml_line.find(leaf + ": "), std::string::npos) << yaml_line;
        const char* by = grey_config_key_acted_on_by(i);
        if (key.acted_on_by.empty()) {
            ++inert;
            EXPECT_EQ(by, nullptr) << key.path;
            EXPECT_TRUE(line.ends_with("| *accepted, not yet acted on* |")) << line;
            EXPECT_TRUE(yaml_line.ends_with("# accepted, not yet acted on")) << yaml_line;
        } else {
            ASSERT_NE(by, nullptr) << key.path;
            EXPECT_EQ(std::string(by), std::string(key.acted_on_by));
            EXPECT_TRUE(line.ends_with("| " + std::string(key.acted_on_by) + " |")) << line;
            EXPECT_EQ(yaml_line.find('#'), std::string::npos) << yaml_line;
        }
    }
    EXPECT_GT(inert, 0u);
    EXPECT_LT(inert, keys.size());
    EXPECT_EQ(grey_config_key_acted_on_by(static_cast<uint32_t>(keys.size())), nullptr);
}

TEST(ConfigApi, BufferProtocolAndKeyList) {
    grey_config* config = nullptr;
    ASSERT_EQ(grey_config_create("conservative", &config), GREY_OK);
    size_t length = 0;
    char tiny[2];
    EXPECT_EQ(grey_config_get(config, "daemon.log_level", tiny, sizeof tiny, &length), GREY_ERROR_BUFFER_TOO_SMALL);
    EXPECT_EQ(length, 4u);
    char value[8];
    ASSERT_EQ(grey_config_get(config, "daemon.log_level", value, sizeof value, &length), GREY_OK);
    EXPECT_STREQ(value, "INFO");
    EXPECT_EQ(grey_config_get(config, "nope", value, sizeof value, &length), GREY_ERROR_NOT_FOUND);
    EXPECT_EQ(grey_config_set(config, "daemon.port", "0"), GREY_ERROR_CONFIG);
    EXPECT_EQ(grey_config_load_string(config, "daemon: {port: 1234}", nullptr), GREY_OK);
    ASSERT_EQ(grey_config_get(config, "daemon.port", value, sizeof value, &length), GREY_OK);
    EXPECT_STREQ(value, "1234");
    EXPECT_EQ(grey_config_load_file(config, "/no/such/file.yaml"), GREY_ERROR_NOT_FOUND);
    EXPECT_EQ(grey_config_load_string(config, nullptr, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    ASSERT_GT(grey_config_key_count(), 20u);
    EXPECT_STREQ(grey_config_key_name(0), "version");
    EXPECT_EQ(grey_config_key_name(grey_config_key_count()), nullptr);
    grey_config_destroy(config);
    grey_config_destroy(nullptr);
    grey_config* out = nullptr;
    EXPECT_EQ(grey_config_create("wild", &out), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(out, nullptr);
}
