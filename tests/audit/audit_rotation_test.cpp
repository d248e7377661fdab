// Forward security across crashes: however a key rotation is cut short, no file in the writer's
// directory holds the key of an epoch older than the key file's, and the replaced key file is wiped.
#include "audit/writer.hpp"
#include "audit_test_util.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace grey::audit::test {
namespace {

// Files in `dir` holding key material of an epoch older than the writer key file's: K(e), R(e) or C(e),
// raw or as hex, derived from the verifier key (which is kept elsewhere).
std::vector<std::string> files_with_old_keys(const std::string& dir, const std::string& verifier_key, const std::string& writer_key) {
    const uint32_t current = read_key_file(writer_key).epoch;
    std::vector<std::pair<uint32_t, std::vector<uint8_t>>> secrets;
    SecretKey key = read_key_file(verifier_key).key;
    for (uint32_t e = 0; e < current; ++e) {
        for (const SecretKey& secret : {key, record_key(key), checkpoint_key(key)}) {
            secrets.emplace_back(e, std::vector<uint8_t>(secret.bytes().begin(), secret.bytes().end()));
            const std::string hex = to_hex(secret.bytes());
            secrets.emplace_back(e, std::vector<uint8_t>(hex.begin(), hex.end()));
        }
        key = next_epoch_key(key);
    }
    std::vector<std::string> found;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        if (!entry.is_regular_file()) continue;
        const auto bytes = read_all(entry.path().string());
        for (const auto& [epoch, secret] : secrets)
            if (std::search(bytes.begin(), bytes.end(), secret.begin(), secret.end()) != bytes.end()) {
                found.push_back(entry.path().filename().string() + " (a key of epoch " + std::to_string(epoch) + ", the key file is at " +
                                std::to_string(current) + ")");
                break;
            }
    }
    return found;
}

std::string joined(const std::vector<std::string>& names) {
    std::string text;
    for (const auto& n : names) text += n + "; ";
    return text;
}

class Rotation : public AuditTest {
protected:
    // A fresh log directory with its own copy of the epoch-0 writer key.
    std::string fresh_run(const std::string& name) {
        const std::string run = dir + "/" + name;
        std::filesystem::create_directory(run);
        std::filesystem::copy_file(writer_key, run + "/writer.key");
        return run;
    }
    // A writer of `run`'s log, groups of `group_records` at most 1 ms apart, the key moving on every
    // `epoch_records` records.
    static WriterOptions options(const std::string& run, Durability durability, uint32_t group_records, uint64_t epoch_records) {
        WriterOptions o;
        o.log_path = run + "/audit.log";
        o.key_path = run + "/writer.key";
        o.durability = durability;
        o.group_records = group_records;
        o.group_ms = 1;
        o.epoch_records = epoch_records;
        return o;
    }
    // `count` records, the key moving on before each one after the first.
    static void append_rotating(const std::string& run, Durability durability, int count, StepHook hook) {
        WriterOptions o = options(run, durability, 2, 1);
        o.on_step = std::move(hook);
        Writer writer(o);
        for (int i = 0; i < count; ++i) writer.append("t", "{\"i\":" + std::to_string(i) + "}");
        writer.flush();
    }
};

class RotationCrash : public Rotation, public ::testing::WithParamInterface<Durability> {};

TEST_P(RotationCrash, KillingTheWriterAtAnyStepOfARotationLeavesNoOldKey) {
    std::vector<std::string> steps;
    append_rotating(fresh_run("count"), GetParam(), 4, [&](std::string_view step) { steps.emplace_back(step); });
    ASSERT_GE(steps.size(), 3u * 7u) << "three rotations: log synced; temporary created, written, synced; renamed; directory synced; old key wiped";
    for (size_t k = 0; k < steps.size(); ++k) {
        const std::string run = fresh_run("kill-" + std::to_string(k));
        const pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            size_t seen = 0;
            try {
                append_rotating(run, GetParam(), 4, [&](std::string_view) {
                    if (seen++ == k) ::raise(SIGKILL);
                });
            } catch (...) {
                ::_exit(3);
            }
            ::_exit(0);
        }
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFSIGNALED(status)) << "killed at step " << k << " (" << steps[k] << "): status " << status;
        const std::string where = "killed at step " + std::to_string(k) + " (" + steps[k] + "): ";
        EXPECT_EQ(joined(files_with_old_keys(run, verifier_key, run + "/writer.key")), "") << where;

        // The next writer takes over, rotates further, and still nothing old is left.
        append_rotating(run, GetParam(), 3, {});
        EXPECT_EQ(joined(files_with_old_keys(run, verifier_key, run + "/writer.key")), "") << where << "after the next writer";
        const auto r = verify({}, "", nullptr, run + "/audit.log");
        EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << where << r.detail;
        std::filesystem::remove_all(run);
    }
}

INSTANTIATE_TEST_SUITE_P(Durability, RotationCrash, ::testing::Values(Durability::EveryRecord, Durability::Group));

TEST_F(Rotation, LeftoversOfAnInterruptedRotationAreRemovedOnOpen) {
    const std::string run = fresh_run("leftovers");
    // What an interrupted rotation to epoch 1 left: libgrey 0.1's per-process temporary and this
    // version's fixed one, both holding K(1); and a symbolic link by a leftover's name.
    const KeyFile initial = read_key_file(run + "/writer.key");
    KeyFile next = initial;
    next.key = next_epoch_key(initial.key);
    next.epoch = 1;
    for (const char* name : {"/writer.key.tmp.4242", "/writer.key.tmp"}) write_new_key_file(run + name, next);
    std::filesystem::create_symlink(run + "/writer.key", run + "/writer.key.tmp.77");
    write_all_bytes(run + "/writer.key.tmp.x", {'k', 'e', 'p', 't'});  // not a leftover's name: left alone
    append_rotating(run, Durability::EveryRecord, 4, {});
    for (const char* name : {"/writer.key.tmp.4242", "/writer.key.tmp", "/writer.key.tmp.77"})
        EXPECT_FALSE(std::filesystem::exists(std::filesystem::symlink_status(run + name))) << name;
    EXPECT_TRUE(std::filesystem::exists(run + "/writer.key.tmp.x"));
    EXPECT_EQ(read_key_file(run + "/writer.key").epoch, 3u);
    EXPECT_EQ(joined(files_with_old_keys(run, verifier_key, run + "/writer.key")), "");
    EXPECT_TRUE(std::filesystem::exists(run + "/writer.key"));  // the symbolic link's target survived
}

TEST_F(Rotation, TheReplacedKeyFileIsWiped) {
    // Whoever still holds the old key file open (or reads its blocks) finds zeros, not K(0).
    const std::string run = fresh_run("wiped");
    const int held = ::open((run + "/writer.key").c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(held, 0);
    struct stat before {};
    ASSERT_EQ(::fstat(held, &before), 0);
    append_rotating(run, Durability::EveryRecord, 2, {});
    ASSERT_EQ(read_key_file(run + "/writer.key").epoch, 1u);
    std::vector<char> old(static_cast<size_t>(before.st_size));
    ASSERT_EQ(::pread(held, old.data(), old.size(), 0), static_cast<ssize_t>(old.size()));
    ::close(held);
    EXPECT_TRUE(std::all_of(old.begin(), old.end(), [](char c) { return c == 0; })) << std::string(old.begin(), old.end());
    EXPECT_EQ(joined(files_with_old_keys(run, verifier_key, run + "/writer.key")), "");
}

TEST_F(Rotation, AHardLinkToTheKeyFileIsTheOwnersCopyAndIsKept) {
    const std::string run = fresh_run("linked");
    ASSERT_EQ(::link((run + "/writer.key").c_str(), (dir + "/backup.key").c_str()), 0);
    append_rotating(run, Durability::EveryRecord, 2, {});
    EXPECT_EQ(read_key_file(dir + "/backup.key").epoch, 0u);
}

// The new key file is made durable on another thread while the next records are sealed (they reach the
// log only once it is on disk). When that fails, the call that needed it reports the error, the key stays
// advanced in memory, and the next append writes the key file before its record: the log verifies, its
// records after the failure carry the new epoch, and no file keeps the old key.
TEST_F(Rotation, AFailedKeyFileReplacementIsMadeGoodBeforeTheNextRecord) {
    for (const Durability durability : {Durability::EveryRecord, Durability::Group}) {
        const std::string run = fresh_run(durability == Durability::Group ? "failed-group" : "failed-every");
        WriterOptions o = options(run, durability, 1, 2);
        bool fail = true;  // the first rotation's first step fails
        o.on_step = [&](std::string_view step) {
            if (step == "log synced" && std::exchange(fail, false)) throw std::runtime_error("injected failure");
        };
        int failures = 0;
        {
            Writer writer(o);
            for (int i = 0; i < 6; ++i) {
                try {
                    writer.append("t", "{\"i\":" + std::to_string(i) + "}");
                    writer.flush();  // group commit: one record a group, its error reported here
                } catch (const std::runtime_error& e) {
                    EXPECT_STREQ(e.what(), "injected failure");
                    ++failures;
                }
            }
        }
        EXPECT_EQ(failures, 1);
        const auto file = read_all(run + "/audit.log");
        const auto log = parse_log(file);
        ASSERT_TRUE(log.has_value());
        ASSERT_EQ(log->records.size(), 5u);  // the record whose epoch's key file failed was dropped
        EXPECT_EQ(log->records[1].epoch, 0u);
        EXPECT_EQ(log->records[2].epoch, 1u);
        EXPECT_EQ(read_key_file(run + "/writer.key").epoch, log->records.back().epoch);
        const auto r = verify({}, "", nullptr, run + "/audit.log");
        EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
        EXPECT_EQ(joined(files_with_old_keys(run, verifier_key, run + "/writer.key")), "");
    }
}

}  // namespace
}  // namespace grey::audit::test
