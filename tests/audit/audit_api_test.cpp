// The audit C API: keys and their permissions, bad input, recovery of a torn tail, concurrency,
// checkpoints with Ed25519, Merkle proofs and proof artifacts.
#include "audit/key_schedule.hpp"
#include "audit_test_util.hpp"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstring>
#include <filesystem>
#include <map>
#include <thread>

namespace grey::audit::test {
namespace {

class AuditApi : public AuditTest {};

std::string read_text(const std::string& path) {
    const auto bytes = read_all(path);
    return {bytes.begin(), bytes.end()};
}

// grey_audit_log_create of `log` with the key at `key`, which is expected to fail.
grey_status open_refused(const std::string& log, const std::string& key) {
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.log_path = log.c_str();
    o.key_path = key.c_str();
    grey_audit_log* opened = nullptr;
    const grey_status status = grey_audit_log_create(&o, &opened);
    EXPECT_EQ(opened, nullptr);
    grey_audit_log_destroy(opened);
    return status;
}

TEST_F(AuditApi, KeyFilesAreOwnerOnly) {
    struct stat st {};
    ASSERT_EQ(::stat(verifier_key.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(::stat(writer_key.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(AuditApi, KeyReadableByOthersIsRefusedWithoutLeakingIt) {
    const std::string key_hex = read_text(writer_key).substr(read_text(writer_key).find("\nkey ") + 5, 64);
    ASSERT_EQ(::chmod(writer_key.c_str(), 0640), 0);
    EXPECT_EQ(open_refused(log_path, writer_key), GREY_ERROR_PERMISSION_DENIED);
    const std::string message = grey_last_error();
    EXPECT_NE(message.find("0640"), std::string::npos) << message;
    EXPECT_NE(message.find("chmod 600"), std::string::npos) << message;
    EXPECT_EQ(message.find(key_hex), std::string::npos);

    ASSERT_EQ(::chmod(verifier_key.c_str(), 0604), 0);
    grey_audit_verify_options v = GREY_AUDIT_VERIFY_OPTIONS_INIT;
    v.log_path = log_path.c_str();
    v.key_path = verifier_key.c_str();
    grey_audit_report report{};
    report.struct_size = sizeof report;
    EXPECT_EQ(grey_audit_verify(&v, &report), GREY_ERROR_PERMISSION_DENIED);
}

// Whoever may write the directory could point a link at another file: keys are never read through one.
TEST_F(AuditApi, KeyFilesAreNeverReadThroughASymbolicLink) {
    const std::string link = writer_key + ".link";
    ASSERT_EQ(::symlink(writer_key.c_str(), link.c_str()), 0);
    EXPECT_EQ(open_refused(log_path, link), GREY_ERROR_PERMISSION_DENIED);
    EXPECT_NE(std::string(grey_last_error()).find("key file '" + link + "': it is a symbolic link"), std::string::npos) << grey_last_error();
}

TEST_F(AuditApi, KeygenRefusesToOverwrite) {
    grey_audit_keygen_options k = GREY_AUDIT_KEYGEN_OPTIONS_INIT;
    k.verifier_key_path = verifier_key.c_str();
    EXPECT_EQ(grey_audit_keygen(&k), GREY_ERROR_INVALID_ARGUMENT);
}

TEST_F(AuditApi, WriterRefusesTheVerifierKey) {
    EXPECT_EQ(open_refused(log_path, verifier_key), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("verifier key"), std::string::npos);
}

TEST_F(AuditApi, NullAndMalformedArgumentsGiveAStatus) {
    grey_audit_log* log = open_log();
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(grey_audit_log_create(nullptr, &log), GREY_ERROR_INVALID_ARGUMENT);
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    EXPECT_EQ(grey_audit_log_create(&o, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_audit_log_create(&o, &log), GREY_ERROR_INVALID_ARGUMENT);  // no paths
    o.struct_size = 4;
    EXPECT_EQ(grey_audit_log_create(&o, &log), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_audit_append(nullptr, "t", "{}", nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_audit_append(log, nullptr, "{}", nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_audit_append(log, "t", nullptr, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_audit_append(log, "t", "{not json", nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_audit_append(log, "bad type!", "{}", nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_audit_append(log, "", "{}", nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_audit_append(log, "grey.proof", "{}", nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_audit_append(log, std::string(65, 'a').c_str(), "{}", nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_audit_checkpoint(log, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_audit_flush(nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_audit_verify(nullptr, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_audit_keygen(nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_audit_sha256_file(nullptr, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    size_t length = 0;
    EXPECT_EQ(grey_audit_records_json(nullptr, 0, 0, nullptr, 0, &length), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_audit_check_proof(nullptr, nullptr, nullptr, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_proof_verify(nullptr, nullptr, nullptr, nullptr, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_STREQ(grey_audit_cause_name(GREY_AUDIT_RESEALED), "resealed");
    EXPECT_EQ(grey_audit_cause_name(static_cast<grey_audit_cause>(77)), nullptr);
    grey_audit_log_destroy(log);
    grey_audit_log_destroy(nullptr);
}

TEST_F(AuditApi, VerificationThreadsAreChecked) {
    write_records(3);
    grey_audit_verify_options v = GREY_AUDIT_VERIFY_OPTIONS_INIT;
    v.log_path = log_path.c_str();
    v.key_path = verifier_key.c_str();
    grey_audit_report report{};
    report.struct_size = sizeof report;
    v.threads = 257;
    EXPECT_EQ(grey_audit_verify(&v, &report), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_STREQ(grey_last_error(), "options->threads is 257; at most 256 (0: one per core)");
    v.threads = 256;
    ASSERT_EQ(grey_audit_verify(&v, &report), GREY_OK) << grey_last_error();
    EXPECT_EQ(report.records, 3u);
    // A caller built against 0.1 passes the struct without `threads`: whatever follows is not read.
    v.threads = 9999;
    v.struct_size = offsetof(grey_audit_verify_options, threads);
    ASSERT_EQ(grey_audit_verify(&v, &report), GREY_OK) << grey_last_error();
    EXPECT_EQ(report.cause, GREY_AUDIT_INTACT);
    v.struct_size = offsetof(grey_audit_verify_options, threads) - 1;
    EXPECT_EQ(grey_audit_verify(&v, &report), GREY_ERROR_INVALID_ARGUMENT);
}

TEST_F(AuditApi, GarbageAndTruncatedFilesGiveClearResults) {
    const std::string garbage = dir + "/garbage.log";
    write_all_bytes(garbage, std::vector<uint8_t>(300, 0xAB));
    EXPECT_EQ(verify({}, "", nullptr, garbage).cause, GREY_AUDIT_MALFORMED);
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.log_path = garbage.c_str();
    o.key_path = writer_key.c_str();
    grey_audit_log* log = nullptr;
    EXPECT_EQ(grey_audit_log_create(&o, &log), GREY_ERROR_CORRUPT);

    write_records(3);
    auto file = read_all(log_path);
    file.resize(50);  // inside the header
    write_all_bytes(garbage, file);
    EXPECT_EQ(verify({}, "", nullptr, garbage).cause, GREY_AUDIT_MALFORMED);
    write_all_bytes(garbage, {});
    EXPECT_EQ(verify({}, "", nullptr, garbage).cause, GREY_AUDIT_MALFORMED);

    grey_audit_verify_options v = GREY_AUDIT_VERIFY_OPTIONS_INIT;
    const std::string missing = dir + "/missing.log";
    v.log_path = missing.c_str();
    v.key_path = verifier_key.c_str();
    grey_audit_report report{};
    report.struct_size = sizeof report;
    EXPECT_EQ(grey_audit_verify(&v, &report), GREY_ERROR_NOT_FOUND);

    const std::string bad_checkpoint = dir + "/bad.cp";
    write_all_bytes(bad_checkpoint, {'g', 'a', 'r', 'b', 'a', 'g', 'e', '\n'});
    const auto r = verify({bad_checkpoint});
    EXPECT_EQ(r.cause, GREY_AUDIT_MALFORMED);
    EXPECT_EQ(r.bad_checkpoint, 0u);
}

TEST_F(AuditApi, TornTailIsRecoveredLoggedAndKept) {
    write_records(6);
    auto file = read_all(log_path);
    const size_t cut = file.size() - 17;
    file.resize(cut);
    file.insert(file.end(), {0x00, 0x13, 0x37});
    write_all_bytes(log_path, file);
    grey_audit_log* log = open_log();
    ASSERT_NE(log, nullptr);
    grey_audit_log_info info{};
    info.struct_size = sizeof info;
    ASSERT_EQ(grey_audit_log_info_get(log, &info), GREY_OK);
    EXPECT_EQ(info.records, 6u);  // five survivors and the recovery record
    EXPECT_GT(info.recovered_bytes, 0u);
    grey_audit_log_destroy(log);
    const auto r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
    size_t length = 0;
    ASSERT_EQ(grey_audit_records_json(log_path.c_str(), 5, 1, nullptr, 0, &length), GREY_ERROR_BUFFER_TOO_SMALL);
    std::string json(length + 1, '\0');
    ASSERT_EQ(grey_audit_records_json(log_path.c_str(), 5, 1, json.data(), json.size(), &length), GREY_OK);
    EXPECT_NE(json.find("grey.recovery"), std::string::npos) << json;
    int saved = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir))
        if (entry.path().filename().string().starts_with("audit.log.torn.")) ++saved;
    EXPECT_EQ(saved, 1);
}

TEST_F(AuditApi, DamageFollowedByRecordsIsNotTruncated) {
    write_records(6);
    auto file = read_all(log_path);
    file[record_spans(file)[2].offset + 40] ^= 1;
    write_all_bytes(log_path, file);
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.log_path = log_path.c_str();
    o.key_path = writer_key.c_str();
    grey_audit_log* log = nullptr;
    EXPECT_EQ(grey_audit_log_create(&o, &log), GREY_ERROR_CORRUPT);
    EXPECT_EQ(read_all(log_path), file);
}

TEST_F(AuditApi, ThreadsAndProcessesNeverInterleave) {
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.durability = GREY_AUDIT_DURABILITY_GROUP;
    o.group_records = 16;
    o.epoch_records = 50;
    // Fork before this process starts any thread of its own (the group-commit timer among them): a
    // child forked while another thread holds a lock (the allocator's, OpenSSL's) can deadlock.
    std::vector<pid_t> children;
    for (int p = 0; p < 2; ++p) {
        const pid_t pid = ::fork();
        if (pid == 0) {
            grey_audit_options child = o;
            child.log_path = log_path.c_str();
            child.key_path = writer_key.c_str();
            grey_audit_log* own = nullptr;
            if (grey_audit_log_create(&child, &own) != GREY_OK) ::_exit(2);
            for (int i = 0; i < 100; ++i)
                if (grey_audit_append(own, "child", "{\"n\":1}", nullptr) != GREY_OK) ::_exit(3);
            const bool ok = grey_audit_flush(own) == GREY_OK;
            grey_audit_log_destroy(own);
            ::_exit(ok ? 0 : 4);
        }
        children.push_back(pid);
    }
    grey_audit_log* log = open_log(o);
    ASSERT_NE(log, nullptr);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([log] {
            for (int i = 0; i < 100; ++i) EXPECT_EQ(grey_audit_append(log, "thread", "{\"n\":2}", nullptr), GREY_OK);
        });
    for (auto& t : threads) t.join();
    ASSERT_EQ(grey_audit_flush(log), GREY_OK) << grey_last_error();
    for (const pid_t pid : children) {
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    }
    grey_audit_log_destroy(log);
    const auto r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
    EXPECT_EQ(r.records, 600u);
}

TEST_F(AuditApi, GroupCommitReportsRecordsDurableOnlyThroughInfoAndFlush) {
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.durability = GREY_AUDIT_DURABILITY_GROUP;
    o.group_records = 7;
    o.group_ms = 1000;  // the group fills (or a flush comes) long before this
    o.epoch_records = 30;
    grey_audit_log* log = open_log(o);
    ASSERT_NE(log, nullptr);
    for (int i = 0; i < 100; ++i) {
        uint64_t sequence = 0;
        ASSERT_EQ(grey_audit_append(log, "t", "{\"n\":1}", &sequence), GREY_OK) << grey_last_error();
        EXPECT_EQ(sequence, UINT64_MAX);  // never "durable" from append itself in group mode
        grey_audit_log_info info{};
        info.struct_size = sizeof info;
        ASSERT_EQ(grey_audit_log_info_get(log, &info), GREY_OK);
        EXPECT_LE(info.records, static_cast<uint64_t>(i + 1));
        EXPECT_EQ(info.records + info.pending, static_cast<uint64_t>(i + 1));
    }
    ASSERT_EQ(grey_audit_flush(log), GREY_OK) << grey_last_error();
    grey_audit_log_info info{};
    info.struct_size = sizeof info;
    ASSERT_EQ(grey_audit_log_info_get(log, &info), GREY_OK);
    EXPECT_EQ(info.records, 100u);
    EXPECT_EQ(info.pending, 0u);
    EXPECT_EQ(info.epoch, 3u);
    // A checkpoint right after more appends covers them: it flushes first.
    for (int i = 0; i < 5; ++i) ASSERT_EQ(grey_audit_append(log, "t", "{}", nullptr), GREY_OK);
    const std::string c105 = dir + "/c105";
    ASSERT_EQ(grey_audit_checkpoint(log, c105.c_str()), GREY_OK) << grey_last_error();
    grey_audit_checkpoint_info cp{};
    cp.struct_size = sizeof cp;
    ASSERT_EQ(grey_audit_checkpoint_read(c105.c_str(), &cp), GREY_OK);
    EXPECT_EQ(cp.size, 105u);
    // Closing without a flush still writes what is queued.
    for (int i = 0; i < 3; ++i) ASSERT_EQ(grey_audit_append(log, "t", "{}", nullptr), GREY_OK);
    grey_audit_log_destroy(log);
    const auto r = verify({c105});
    EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
    EXPECT_EQ(r.records, 108u);
}

TEST_F(AuditApi, GroupCommitWithABacklogNeitherLosesNorReordersRecords) {
    // Groups of one record and a backlog of 64: appending threads outrun the disk and must wait.
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.durability = GREY_AUDIT_DURABILITY_GROUP;
    o.group_records = 1;
    o.group_ms = 1;
    grey_audit_log* log = open_log(o);
    ASSERT_NE(log, nullptr);
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t)
        threads.emplace_back([log, t] {
            for (int i = 0; i < 300; ++i) {
                const std::string payload = "{\"t\":" + std::to_string(t) + ",\"i\":" + std::to_string(i) + "}";
                EXPECT_EQ(grey_audit_append(log, "t", payload.c_str(), nullptr), GREY_OK);
            }
        });
    for (auto& t : threads) t.join();
    ASSERT_EQ(grey_audit_flush(log), GREY_OK) << grey_last_error();
    grey_audit_log_destroy(log);
    const auto r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
    EXPECT_EQ(r.records, 900u);
    std::map<int, int> next;  // each thread's records in the order it appended them
    for (const auto& record : nlohmann::json::parse(records_json())) {
        const int t = record["payload"]["t"];
        EXPECT_EQ(record["payload"]["i"].get<int>(), next[t]++);
    }
}

TEST_F(AuditApi, SignedCheckpointsAndProofs) {
    const std::string priv = dir + "/ed.key";
    const std::string pub = dir + "/ed.pub";
    use_signing_keys(priv, pub);
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.signing_key_path = priv.c_str();
    grey_audit_log* log = open_log(o);
    ASSERT_NE(log, nullptr);
    for (int i = 0; i < 5; ++i) ASSERT_EQ(grey_audit_append(log, "t", "{}", nullptr), GREY_OK);
    const std::string c5 = dir + "/c5";
    const std::string c9 = dir + "/c9";
    ASSERT_EQ(grey_audit_checkpoint(log, c5.c_str()), GREY_OK);
    for (int i = 0; i < 4; ++i) ASSERT_EQ(grey_audit_append(log, "t", "{}", nullptr), GREY_OK);
    ASSERT_EQ(grey_audit_checkpoint(log, c9.c_str()), GREY_OK);
    grey_audit_log_destroy(log);
    EXPECT_EQ(verify({c5, c9}, "", pub.c_str()).cause, GREY_AUDIT_INTACT);

    // A checkpoint reads back as what it commits to: the log, the size, and the root verify found.
    grey_audit_checkpoint_info info{};
    info.struct_size = sizeof info;
    ASSERT_EQ(grey_audit_checkpoint_read(c9.c_str(), &info), GREY_OK) << grey_last_error();
    EXPECT_EQ(info.size, 9u);
    EXPECT_EQ(info.ed25519_signed, 1u);
    EXPECT_GT(info.time_ns, 0u);
    const auto whole = verify({c9});
    EXPECT_EQ(std::memcmp(info.root_hash, whole.root_hash, 32), 0);
    EXPECT_EQ(std::memcmp(info.log_id, whole.log_id, 16), 0);
    EXPECT_EQ(grey_audit_checkpoint_read(log_path.c_str(), &info), GREY_ERROR_INVALID_ARGUMENT);  // a log is no checkpoint
    EXPECT_NE(std::string(grey_last_error()).find("not a checkpoint"), std::string::npos) << grey_last_error();
    EXPECT_EQ(info.size, 9u);  // untouched on failure
    EXPECT_EQ(grey_audit_checkpoint_read(c9.c_str(), nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_audit_checkpoint_read(nullptr, &info), GREY_ERROR_INVALID_ARGUMENT);
    info.struct_size = 4;
    EXPECT_EQ(grey_audit_checkpoint_read(c9.c_str(), &info), GREY_ERROR_INVALID_ARGUMENT);

    auto write_proof = [&](const std::string& path, auto call) {
        size_t length = 0;
        ASSERT_EQ(call(nullptr, 0, &length), GREY_ERROR_BUFFER_TOO_SMALL);
        std::string text(length + 1, '\0');
        ASSERT_EQ(call(text.data(), text.size(), &length), GREY_OK) << grey_last_error();
        text.resize(length);
        write_all_bytes(path, {text.begin(), text.end()});
    };
    const std::string inclusion = dir + "/inc";
    const std::string consistency = dir + "/con";
    write_proof(inclusion, [&](char* b, size_t n, size_t* l) { return grey_audit_prove_inclusion(log_path.c_str(), 3, 9, b, n, l); });
    write_proof(consistency, [&](char* b, size_t n, size_t* l) { return grey_audit_prove_consistency(log_path.c_str(), 5, 9, b, n, l); });
    EXPECT_EQ(grey_audit_check_proof(inclusion.c_str(), c9.c_str(), nullptr, pub.c_str()), GREY_OK) << grey_last_error();
    EXPECT_EQ(grey_audit_check_proof(consistency.c_str(), c9.c_str(), c5.c_str(), pub.c_str()), GREY_OK) << grey_last_error();
    EXPECT_EQ(grey_audit_check_proof(inclusion.c_str(), c5.c_str(), nullptr, nullptr), GREY_ERROR_CORRUPT);

    // A changed proof, or a checkpoint whose signature no longer matches, fails.
    auto proof = read_all(inclusion);
    proof[proof.size() - 3] = proof[proof.size() - 3] == 'a' ? 'b' : 'a';
    write_all_bytes(inclusion, proof);
    EXPECT_EQ(grey_audit_check_proof(inclusion.c_str(), c9.c_str(), nullptr, nullptr), GREY_ERROR_CORRUPT);
    auto checkpoint = read_text(c9);
    const auto size_at = checkpoint.find("size 9");
    checkpoint.replace(size_at, 6, "size 8");
    write_all_bytes(c9, {checkpoint.begin(), checkpoint.end()});
    const auto r = verify({c9}, "", pub.c_str());
    EXPECT_EQ(r.cause, GREY_AUDIT_MODIFIED);
    EXPECT_EQ(r.bad_checkpoint, 0u);

    // A checkpoint without a signature is refused when a public key is given.
    const std::string unsigned_cp = dir + "/unsigned";
    log = open_log();
    ASSERT_EQ(grey_audit_checkpoint(log, unsigned_cp.c_str()), GREY_OK);
    grey_audit_log_destroy(log);
    EXPECT_EQ(verify({unsigned_cp}).cause, GREY_AUDIT_INTACT);
    EXPECT_EQ(verify({unsigned_cp}, "", pub.c_str()).cause, GREY_AUDIT_MODIFIED);
}

TEST_F(AuditApi, ProofArtifactIsBoundToTheLog) {
    grey_audit_log* log = open_log();
    const std::string proofs = dir + "/proofs";
    char id[17];
    size_t length = 0;
    ASSERT_EQ(grey_proof_write(log, proofs.c_str(), "{\"result\":42}", id, sizeof id, &length), GREY_OK) << grey_last_error();
    EXPECT_EQ(length, 16u);
    grey_audit_log_destroy(log);
    const std::string artifact = proofs + "/" + id + ".json";
    grey_proof_report report{};
    report.struct_size = sizeof report;
    ASSERT_EQ(grey_proof_verify(log_path.c_str(), verifier_key.c_str(), artifact.c_str(), &report, nullptr), GREY_OK) << grey_last_error();
    EXPECT_EQ(report.verified, 1u);
    EXPECT_EQ(report.record, 0u);
    write_all_bytes(artifact, {'{', '"', 'r', 'e', 's', 'u', 'l', 't', '"', ':', '4', '3', '}'});
    grey_audit_report log_report{};
    log_report.struct_size = sizeof log_report;
    log_report.cause = GREY_AUDIT_MODIFIED;
    ASSERT_EQ(grey_proof_verify(log_path.c_str(), verifier_key.c_str(), artifact.c_str(), &report, &log_report), GREY_OK);
    EXPECT_EQ(report.verified, 0u);
    EXPECT_EQ(log_report.cause, GREY_AUDIT_INTACT);
    EXPECT_EQ(log_report.struct_size, sizeof log_report);
    EXPECT_EQ(report.record, GREY_AUDIT_NO_RECORD);
}

// The two output structs are checked before either is written: a bad struct_size on one leaves both
// as they were.
TEST_F(AuditApi, ProofVerifyLeavesBothReportsUntouchedOnFailure) {
    grey_audit_log* log = open_log();
    char id[17];
    size_t length = 0;
    ASSERT_EQ(grey_proof_write(log, (dir + "/proofs").c_str(), "{}", id, sizeof id, &length), GREY_OK) << grey_last_error();
    grey_audit_log_destroy(log);
    const std::string artifact = dir + "/proofs/" + id + ".json";
    grey_proof_report report{};
    report.struct_size = sizeof report;
    report.record = 77;
    grey_audit_report log_report{};
    log_report.struct_size = 4;  // too small
    log_report.records = 99;
    EXPECT_EQ(grey_proof_verify(log_path.c_str(), verifier_key.c_str(), artifact.c_str(), &report, &log_report),
              GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("out_log->struct_size is 4"), std::string::npos) << grey_last_error();
    EXPECT_EQ(report.record, 77u);
    EXPECT_EQ(log_report.records, 99u);
}

}  // namespace
}  // namespace grey::audit::test
