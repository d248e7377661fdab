// Kills a writer process at random moments, many times, and checks that every record it reported
// durable survives, in order, and that the log still verifies after recovery.
#include "audit_test_util.hpp"

#include <nlohmann/json.hpp>

#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <random>
#include <sys/wait.h>
#include <unistd.h>

namespace grey::audit::test {
namespace {

class Crash : public AuditTest, public ::testing::WithParamInterface<grey_audit_durability> {};

// The child appends {"w": run, "i": n} forever and, after each append that made records durable,
// writes the durable record count to the pipe.
[[noreturn]] void writer_child(const grey_audit_options& options, int run, int out_fd) {
    grey_audit_log* log = nullptr;
    if (grey_audit_log_create(&options, &log) != GREY_OK) ::_exit(2);
    for (uint64_t n = 0;; ++n) {
        const std::string payload = "{\"w\":" + std::to_string(run) + ",\"i\":" + std::to_string(n) + "}";
        if (grey_audit_append(log, "crash", payload.c_str(), nullptr) != GREY_OK) ::_exit(3);
        grey_audit_log_info info{};
        info.struct_size = sizeof info;
        if (grey_audit_log_info_get(log, &info) != GREY_OK) ::_exit(4);
        if (::write(out_fd, &info.records, sizeof info.records) != sizeof info.records) ::_exit(5);
    }
}

TEST_P(Crash, DurableRecordsSurviveSigkill) {
    grey_audit_options options = GREY_AUDIT_OPTIONS_INIT;
    options.log_path = log_path.c_str();
    options.key_path = writer_key.c_str();
    options.durability = GetParam();
    options.group_records = 8;
    options.group_ms = 2;
    options.epoch_records = 40;  // cross epochs, and so key-file rewrites, while being killed
    std::mt19937 random(12345);
    uint64_t durable = 0;
    for (int run = 0; run < 25; ++run) {
        int fds[2];
        ASSERT_EQ(::pipe(fds), 0);
        const pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            ::close(fds[0]);
            writer_child(options, run, fds[1]);
        }
        ::close(fds[1]);
        ::usleep(1000u + random() % 20000u);
        ::kill(pid, SIGKILL);
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFSIGNALED(status)) << "writer exited by itself with status " << status;
        uint64_t reported = 0;
        while (::read(fds[0], &reported, sizeof reported) == sizeof reported) durable = std::max(durable, reported);
        ::close(fds[0]);

        // Reopening recovers whatever the kill left half-written.
        grey_audit_log* log = open_log(options);
        ASSERT_NE(log, nullptr);
        grey_audit_log_info info{};
        info.struct_size = sizeof info;
        ASSERT_EQ(grey_audit_log_info_get(log, &info), GREY_OK);
        grey_audit_log_destroy(log);
        ASSERT_GE(info.records, durable) << "run " << run << " lost durable records";
        durable = info.records;
    }
    const auto r = verify();
    ASSERT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
    EXPECT_EQ(r.records, durable);

    // Each run's records appear as an unbroken prefix 0, 1, 2, ... of what it tried to write.
    std::map<int, int64_t> next;
    for (const auto& record : nlohmann::json::parse(records_json())) {
        if (record["type"] != "crash") continue;
        const int w = record["payload"]["w"];
        const int64_t i = record["payload"]["i"];
        EXPECT_EQ(i, next[w]) << "run " << w;
        next[w] = i + 1;
    }
}

INSTANTIATE_TEST_SUITE_P(Durability, Crash, ::testing::Values(GREY_AUDIT_DURABILITY_EVERY_RECORD, GREY_AUDIT_DURABILITY_GROUP));

}  // namespace
}  // namespace grey::audit::test
