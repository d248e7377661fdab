// Shared fixtures for the audit tests: a private temporary directory with a fresh key pair, and helpers
// that read, cut and splice a log file the way an attacker would.
#pragma once

#include "audit/key_schedule.hpp"
#include "audit/record_format.hpp"
#include "audit/verifier.hpp"
#include "grey.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace grey::audit::test {

inline std::vector<uint8_t> read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_all_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Byte ranges [offset, offset + size) of each record in a log file.
struct Span {
    size_t offset;
    size_t size;
};
inline std::vector<Span> record_spans(const std::vector<uint8_t>& file) {
    std::vector<Span> spans;
    const auto log = parse_log(file);
    if (!log) return spans;
    for (const auto& r : log->records) spans.push_back({static_cast<size_t>(r.offset), r.bytes.size()});
    return spans;
}

// Runs `body` in a child process and returns its exit status, or nullopt when it has not finished
// within `seconds` (the child is killed): a call that blocks for ever fails the test instead of hanging
// it. Fork before the test starts threads of its own.
inline std::optional<int> exit_status_within(int seconds, const std::function<int()>& body) {
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(body());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return std::nullopt;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// What an attacker who can write the log file (but holds no key) appends: a record that continues the
// log's sequence and hash chain, claims key epoch `epoch`, and carries `mac` in place of a MAC.
// The leaf hash of the last record of a log (of its header when it holds none), in the log's format.
inline Hash last_leaf(const std::vector<uint8_t>& file) {
    const auto log = parse_log(file);
    Sha256 sha;
    return log->records.empty() ? leaf_hash(sha, Bytes(file).first(header_size))
                                : record_leaf(log->header.version, sha, log->records.back().bytes);
}

inline std::vector<uint8_t> forged_record(const std::vector<uint8_t>& file, uint32_t epoch, const Hash& mac,
                                          std::string_view payload = "{}") {
    const auto log = parse_log(file);
    Sha256 sha;
    const Hash previous = last_leaf(file);
    const uint64_t sequence = log->records.size();
    std::string sealed;
    HmacSha256 any_key{SecretKey()};
    append_record(log->header.version, sealed, {sequence, 1, epoch, "t", payload, previous}, any_key, sha);
    std::copy(mac.begin(), mac.end(), sealed.end() - 32);
    return {sealed.begin(), sealed.end()};
}

// The same, sealed with `key` (an epoch key K(e)) as the writer of epoch `epoch` would: for logs that an
// older libgrey, or another program holding the key, wrote.
inline std::vector<uint8_t> sealed_record(const std::vector<uint8_t>& file, const SecretKey& key, uint32_t epoch, std::string_view type,
                                          std::string_view payload) {
    const auto log = parse_log(file);
    Sha256 sha;
    const Hash previous = last_leaf(file);
    std::string sealed;
    append_record(log->header.version, sealed, {log->records.size(), 1, epoch, type, payload, previous}, HmacSha256(record_key(key)), sha);
    return {sealed.begin(), sealed.end()};
}

inline void append_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::app);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

class AuditTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string pattern = (std::filesystem::temp_directory_path() / "grey-audit-XXXXXX").string();
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        dir = pattern;
        verifier_key = dir + "/verifier.key";
        writer_key = dir + "/writer.key";
        log_path = dir + "/audit.log";
        grey_audit_keygen_options k = GREY_AUDIT_KEYGEN_OPTIONS_INIT;
        k.verifier_key_path = verifier_key.c_str();
        k.writer_key_path = writer_key.c_str();
        ASSERT_EQ(grey_audit_keygen(&k), GREY_OK) << grey_last_error();
    }
    void TearDown() override { std::filesystem::remove_all(dir); }

    // Replaces the key pair with a fresh one that has an Ed25519 pair too, written to `private_key`
    // and `public_key`, for tests of signed checkpoints.
    void use_signing_keys(const std::string& private_key, const std::string& public_key) {
        const std::string verifier = dir + "/signed-verifier.key", writer = dir + "/signed-writer.key";
        grey_audit_keygen_options k = GREY_AUDIT_KEYGEN_OPTIONS_INIT;
        k.verifier_key_path = verifier.c_str();
        k.writer_key_path = writer.c_str();
        k.ed25519 = 1;
        k.ed25519_private_path = private_key.c_str();
        k.ed25519_public_path = public_key.c_str();
        ASSERT_EQ(grey_audit_keygen(&k), GREY_OK) << grey_last_error();
        verifier_key = verifier;
        writer_key = writer;
    }

    grey_audit_log* open_log(grey_audit_options o = GREY_AUDIT_OPTIONS_INIT) {
        if (o.log_path == nullptr) o.log_path = log_path.c_str();
        if (o.key_path == nullptr) o.key_path = writer_key.c_str();
        grey_audit_log* log = nullptr;
        EXPECT_EQ(grey_audit_log_create(&o, &log), GREY_OK) << grey_last_error();
        return log;
    }

    // Appends `count` records {"i": n} and closes the log.
    void write_records(int count, grey_audit_options o = GREY_AUDIT_OPTIONS_INIT, int first = 0) {
        grey_audit_log* log = open_log(o);
        ASSERT_NE(log, nullptr);
        for (int i = first; i < first + count; ++i) {
            const std::string payload = "{\"i\":" + std::to_string(i) + "}";
            ASSERT_EQ(grey_audit_append(log, "test", payload.c_str(), nullptr), GREY_OK) << grey_last_error();
        }
        ASSERT_EQ(grey_audit_flush(log), GREY_OK);
        grey_audit_log_destroy(log);
    }

    // Verifies on one thread, on all cores and on three threads (more than this machine may have, which
    // interleaves them differently), and expects the three reports to be the same in every field.
    grey_audit_report verify(const std::vector<std::string>& checkpoints = {}, const std::string& key = "",
                             const char* public_key = nullptr, const std::string& path = "") {
        std::vector<const char*> paths;
        for (const auto& c : checkpoints) paths.push_back(c.c_str());
        grey_audit_verify_options v = GREY_AUDIT_VERIFY_OPTIONS_INIT;
        const std::string& log = path.empty() ? log_path : path;
        v.log_path = log.c_str();
        v.key_path = key.empty() ? verifier_key.c_str() : key.c_str();
        v.checkpoint_paths = paths.data();
        v.checkpoint_count = static_cast<uint32_t>(paths.size());
        v.public_key_path = public_key;
        auto run = [&](uint32_t threads) {
            v.threads = threads;
            grey_audit_report report{};
            report.struct_size = sizeof report;
            EXPECT_EQ(grey_audit_verify(&v, &report), GREY_OK) << grey_last_error();
            return report;
        };
        const grey_audit_report one = run(1);
        for (const uint32_t threads : {0u, 3u}) {
            const grey_audit_report other = run(threads);
            EXPECT_EQ(std::memcmp(&one, &other, sizeof one), 0)
                << "threads " << threads << " gave another report: " << grey_audit_cause_name(other.cause) << " at "
                << other.first_bad_record << ", \"" << other.detail << "\" (one thread: " << grey_audit_cause_name(one.cause) << " at "
                << one.first_bad_record << ", \"" << one.detail << "\")";
        }
        return one;
    }

    // The log's records as grey_audit_records_json gives them (a JSON array).
    std::string records_json() {
        size_t length = 0;
        EXPECT_EQ(grey_audit_records_json(log_path.c_str(), 0, 0, nullptr, 0, &length), GREY_ERROR_BUFFER_TOO_SMALL);
        std::string text(length + 1, '\0');
        EXPECT_EQ(grey_audit_records_json(log_path.c_str(), 0, 0, text.data(), text.size(), &length), GREY_OK) << grey_last_error();
        text.resize(length);
        return text;
    }

    std::string dir, verifier_key, writer_key, log_path;
};

}  // namespace grey::audit::test
