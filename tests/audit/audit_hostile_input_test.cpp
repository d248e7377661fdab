// Hostile input to the audit API: payloads nested deeper than anything can parse, repeated keys, and
// paths that are not regular files (FIFOs, devices, directories, huge sparse files). Each is refused
// with a status and a message, never with a crash or a hang.
#include "audit/json_check.hpp"
#include "audit_test_util.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include <set>

namespace grey::audit::test {
namespace {

class HostileInput : public AuditTest {
protected:
    std::string records_text(const std::string& path) {
        size_t length = 0;
        const grey_status probe = grey_audit_records_json(path.c_str(), 0, 0, nullptr, 0, &length);
        if (probe != GREY_ERROR_BUFFER_TOO_SMALL) return "status " + std::to_string(probe) + ": " + grey_last_error();
        std::string text(length + 1, '\0');
        if (grey_audit_records_json(path.c_str(), 0, 0, text.data(), text.size(), &length) != GREY_OK) return grey_last_error();
        text.resize(length);
        return text;
    }
};

std::string nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST_F(HostileInput, PayloadsNestedTooDeeplyAreRefusedAtAppend) {
    grey_audit_log* log = open_log();
    ASSERT_NE(log, nullptr);
    for (const size_t depth : {size_t{65}, size_t{1000}, size_t{60000}, size_t{100000}}) {
        EXPECT_EQ(grey_audit_append(log, "t", nested(depth).c_str(), nullptr), GREY_ERROR_INVALID_ARGUMENT) << depth;
        EXPECT_NE(std::string(grey_last_error()).find("deeper than 64 levels"), std::string::npos) << grey_last_error();
    }
    const std::string objects = [] {
        std::string text;
        for (int i = 0; i < 65; ++i) text += "{\"a\":";
        return text + "1" + std::string(65, '}');
    }();
    EXPECT_EQ(grey_audit_append(log, "t", objects.c_str(), nullptr), GREY_ERROR_INVALID_ARGUMENT);
    ASSERT_EQ(grey_audit_append(log, "t", nested(max_json_depth).c_str(), nullptr), GREY_OK) << grey_last_error();
    grey_audit_log_destroy(log);
    const auto records = nlohmann::json::parse(records_text(log_path));
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0]["payload"].dump(), nested(max_json_depth));
}

TEST_F(HostileInput, ReadersSurviveALogWithADeepPayload) {
    // A log written before the limit (or by another program holding the key) may hold any depth: it is
    // still a valid log, and the readers show such a payload as text instead of overflowing the stack.
    write_records(2);
    const SecretKey initial = read_key_file(verifier_key).key;
    append_bytes(log_path, sealed_record(read_all(log_path), initial, 0, "t", nested(100000)));
    append_bytes(log_path, sealed_record(read_all(log_path), initial, 0, "t", "{\"a\":1,\"a\":2}"));
    const std::string text = records_text(log_path);
    const auto records = nlohmann::json::parse(text, nullptr, false);
    ASSERT_FALSE(records.is_discarded()) << text.substr(0, 300);
    ASSERT_EQ(records.size(), 4u);
    ASSERT_TRUE(records[2]["payload"].is_string());
    EXPECT_EQ(records[2]["payload"].get<std::string>(), nested(100000));
    ASSERT_TRUE(records[3]["payload"].is_string());
    EXPECT_EQ(verify().cause, GREY_AUDIT_INTACT);
    // ...and a writer appends to it.
    write_records(1);
    EXPECT_EQ(verify().records, 5u);
}

TEST_F(HostileInput, RepeatedKeysAreRefused) {
    grey_audit_log* log = open_log();
    ASSERT_NE(log, nullptr);
    for (const char* payload : {"{\"a\":1,\"a\":2}", "{\"a\":1,\"\\u0061\":2}", "{\"x\":{\"k\":[],\"k\":null}}", "[{\"id\":1,\"id\":1}]"}) {
        EXPECT_EQ(grey_audit_append(log, "t", payload, nullptr), GREY_ERROR_INVALID_ARGUMENT) << payload;
        EXPECT_NE(std::string(grey_last_error()).find("repeats the key"), std::string::npos) << grey_last_error();
    }
    EXPECT_EQ(grey_audit_append(log, "t", "{\"a\":{\"a\":1},\"b\":[{\"a\":1},{\"a\":2}]}", nullptr), GREY_OK) << grey_last_error();
    char id[17];
    size_t length = 0;
    const std::string proofs = dir + "/proofs";
    EXPECT_EQ(grey_proof_write(log, proofs.c_str(), "{\"result\":1,\"result\":2}", id, sizeof id, &length), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_proof_write(log, proofs.c_str(), ("{\"r\":" + nested(100) + "}").c_str(), id, sizeof id, &length), GREY_ERROR_INVALID_ARGUMENT);
    grey_audit_log_destroy(log);
}

TEST_F(HostileInput, AProofRecordWithARepeatedKeyProvesNothing) {
    // {"sha256": <another file's hash>, "sha256": <this artifact's hash>}: a reader that lets the last
    // key win would take it for this artifact's record.
    grey_audit_log* log = open_log();
    ASSERT_NE(log, nullptr);
    grey_audit_log_destroy(log);
    const std::string artifact = dir + "/artifact.json";
    write_all_bytes(artifact, {'{', '}'});
    uint8_t digest[32];
    ASSERT_EQ(grey_audit_sha256_file(artifact.c_str(), digest), GREY_OK);
    const std::string hex = to_hex(Bytes(digest, 32));
    const std::string payload = "{\"id\":\"" + hex.substr(0, 16) + "\",\"sha256\":\"" + std::string(64, '0') + "\",\"file\":\"x.json\",\"sha256\":\"" +
                                hex + "\"}";
    append_bytes(log_path, sealed_record(read_all(log_path), read_key_file(verifier_key).key, 0, "grey.proof", payload));
    ASSERT_EQ(verify().cause, GREY_AUDIT_INTACT);
    grey_proof_report report{};
    report.struct_size = sizeof report;
    ASSERT_EQ(grey_proof_verify(log_path.c_str(), verifier_key.c_str(), artifact.c_str(), &report, nullptr), GREY_OK) << grey_last_error();
    EXPECT_EQ(report.verified, 0u);
    EXPECT_EQ(report.record, GREY_AUDIT_NO_RECORD);
}

// Each path the audit API reads, in each of its roles, replaced by something that is not a regular file.
TEST_F(HostileInput, PathsThatAreNotRegularFilesAreRefusedWithoutBlocking) {
    write_records(3);
    const std::string checkpoint = dir + "/c3";
    grey_audit_log* log = open_log();
    ASSERT_EQ(grey_audit_checkpoint(log, checkpoint.c_str()), GREY_OK);
    grey_audit_log_destroy(log);
    const std::string proof = dir + "/p";
    {
        size_t length = 0;
        std::string text(4096, '\0');
        ASSERT_EQ(grey_audit_prove_inclusion(log_path.c_str(), 1, 3, text.data(), text.size(), &length), GREY_OK);
        write_all_bytes(proof, {text.begin(), text.begin() + static_cast<long>(length)});
    }
    const std::string fifo = dir + "/fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    const std::string sparse = dir + "/sparse";  // 2 GiB that take no disk
    {
        const int fd = ::open(sparse.c_str(), O_WRONLY | O_CREAT, 0600);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::ftruncate(fd, off_t{1} << 31), 0);
        ::close(fd);
    }

    auto verify_with = [&](const std::string& log_file, const std::string& key, const std::string& cp, const char* public_key) {
        const char* paths[] = {cp.c_str()};
        grey_audit_verify_options v = GREY_AUDIT_VERIFY_OPTIONS_INIT;
        v.log_path = log_file.c_str();
        v.key_path = key.c_str();
        v.checkpoint_paths = paths;
        v.checkpoint_count = cp.empty() ? 0 : 1;
        v.public_key_path = public_key;
        grey_audit_report report{};
        report.struct_size = sizeof report;
        return grey_audit_verify(&v, &report);
    };
    auto open_with = [&](const std::string& log_file, const std::string& key) {
        grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
        o.log_path = log_file.c_str();
        o.key_path = key.c_str();
        grey_audit_log* opened = nullptr;
        const grey_status status = grey_audit_log_create(&o, &opened);
        grey_audit_log_destroy(opened);
        return status;
    };
    auto records = [&](const std::string& log_file) {
        size_t length = 0;
        return grey_audit_records_json(log_file.c_str(), 0, 0, nullptr, 0, &length);
    };
    auto prove = [&](const std::string& log_file) {
        size_t length = 0;
        return grey_audit_prove_inclusion(log_file.c_str(), 0, 1, nullptr, 0, &length);
    };
    auto check_proof = [&](const std::string& p, const std::string& cp, const char* public_key) {
        return grey_audit_check_proof(p.c_str(), cp.c_str(), nullptr, public_key);
    };
    auto read_checkpoint = [&](const std::string& cp) {
        grey_audit_checkpoint_info info{};
        info.struct_size = sizeof info;
        return grey_audit_checkpoint_read(cp.c_str(), &info);
    };
    auto hash = [&](const std::string& file) {
        uint8_t digest[32];
        return grey_audit_sha256_file(file.c_str(), digest);
    };
    auto proof_verify = [&](const std::string& log_file, const std::string& key, const std::string& artifact) {
        grey_proof_report report{};
        report.struct_size = sizeof report;
        return grey_proof_verify(log_file.c_str(), key.c_str(), artifact.c_str(), &report, nullptr);
    };
    const std::vector<std::pair<std::string, std::function<grey_status(const std::string&)>>> roles = {
        {"log to verify", [&](const std::string& bad) { return verify_with(bad, verifier_key, "", nullptr); }},
        {"verifier key", [&](const std::string& bad) { return verify_with(log_path, bad, "", nullptr); }},
        {"checkpoint to verify", [&](const std::string& bad) { return verify_with(log_path, verifier_key, bad, nullptr); }},
        {"public key", [&](const std::string& bad) { return verify_with(log_path, verifier_key, checkpoint, bad.c_str()); }},
        {"log to append to", [&](const std::string& bad) { return open_with(bad, writer_key); }},
        {"writer key", [&](const std::string& bad) { return open_with(log_path, bad); }},
        {"log to show", records},
        {"log to prove", prove},
        {"proof", [&](const std::string& bad) { return check_proof(bad, checkpoint, nullptr); }},
        {"checkpoint of a proof", [&](const std::string& bad) { return check_proof(proof, bad, nullptr); }},
        {"checkpoint to read", read_checkpoint},
        {"file to hash", hash},
        {"artifact", [&](const std::string& bad) { return proof_verify(log_path, verifier_key, bad); }},
        {"log of an artifact", [&](const std::string& bad) { return proof_verify(bad, verifier_key, checkpoint); }},
    };
    // Logs and files that are hashed as they stream by may be as large as they are; every other file
    // has a size limit, which a sparse 2 GiB file exceeds.
    const std::set<std::string> any_size = {"log to verify", "log to append to", "log to show", "log to prove", "log of an artifact",
                                            "file to hash", "artifact"};
    for (const auto& [role, call] : roles) {
        std::vector<std::string> bad_files = {fifo, "/dev/zero", dir};
        if (!any_size.contains(role)) bad_files.push_back(sparse);
        for (const std::string& bad : bad_files) {
            const auto status = exit_status_within(20, [&] { return static_cast<int>(call(bad)); });
            ASSERT_TRUE(status.has_value()) << role << " '" << bad << "': the call blocked";
            EXPECT_NE(*status, GREY_OK) << role << " '" << bad << "' was accepted";
        }
    }
    // The messages say what the file is.
    EXPECT_EQ(verify_with(fifo, verifier_key, "", nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("is not a regular file (it is a FIFO)"), std::string::npos) << grey_last_error();
    EXPECT_EQ(read_checkpoint("/dev/zero"), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("is a character device"), std::string::npos) << grey_last_error();
    EXPECT_EQ(read_checkpoint(sparse), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("bytes, larger than the limit of 1048576 bytes"), std::string::npos) << grey_last_error();
    EXPECT_EQ(open_with(fifo, writer_key), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("audit log"), std::string::npos) << grey_last_error();
    // Nothing was appended to the FIFO, or anywhere else.
    EXPECT_EQ(verify().records, 3u);
}

}  // namespace
}  // namespace grey::audit::test
