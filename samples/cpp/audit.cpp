// Keeps a signed audit log through the C API from C++: generates keys, appends three records, writes
// a checkpoint, then verifies the log and the checkpoint with the verifier key and prints the verdict.
//
//   c++ -std=c++20 -Iinclude samples/cpp/audit.cpp -Lbuild/default/lib -Wl,-rpath,$PWD/build/default/lib -lgrey
//   ./a.out [DIR]
//
// The files (audit.key, audit.key.writer, audit.log, checkpoint-1) go to DIR, which must not hold them
// yet (keys are never overwritten); without DIR, to a temporary directory removed at the end.
#include <grey.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

namespace {

namespace fs = std::filesystem;

struct LogDeleter {
    void operator()(grey_audit_log* log) const noexcept { grey_audit_log_destroy(log); }
};
using AuditLog = std::unique_ptr<grey_audit_log, LogDeleter>;

void check(grey_status status, const char* what) {
    if (status != GREY_OK) throw std::runtime_error(std::string(what) + " failed: " + grey_last_error());
}

std::string hex(const uint8_t* bytes, size_t n) {
    std::string out;
    char two[3];
    for (size_t i = 0; i < n; ++i) {
        std::snprintf(two, sizeof two, "%02x", bytes[i]);
        out += two;
    }
    return out;
}

// A temporary directory, removed with everything in it when it goes out of scope.
class TempDir {
public:
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "grey-audit-sample-XXXXXX").string();
        if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("cannot make a temporary directory");
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

bool run(const fs::path& dir) {
    const std::string verifier = (dir / "audit.key").string(), writer = (dir / "audit.key.writer").string();
    const std::string log_path = (dir / "audit.log").string(), checkpoint = (dir / "checkpoint-1").string();

    grey_audit_keygen_options keygen = GREY_AUDIT_KEYGEN_OPTIONS_INIT;
    keygen.verifier_key_path = verifier.c_str();
    keygen.writer_key_path = writer.c_str();
    check(grey_audit_keygen(&keygen), "grey_audit_keygen");
    {
        grey_audit_options options = GREY_AUDIT_OPTIONS_INIT;
        options.log_path = log_path.c_str();
        options.key_path = writer.c_str();
        grey_audit_log* raw = nullptr;
        check(grey_audit_log_create(&options, &raw), "grey_audit_log_create");
        const AuditLog log(raw);
        for (int step = 0; step < 3; ++step) {
            const std::string payload = "{\"step\":" + std::to_string(step) + ",\"language\":\"cpp\"}";
            uint64_t sequence = 0;
            check(grey_audit_append(log.get(), "sample.step", payload.c_str(), &sequence), "grey_audit_append");
            std::cout << "appended record " << sequence << "\n";
        }
        check(grey_audit_checkpoint(log.get(), checkpoint.c_str()), "grey_audit_checkpoint");
    }  // closed here, before it is verified

    const char* checkpoints[] = {checkpoint.c_str()};
    grey_audit_verify_options verify = GREY_AUDIT_VERIFY_OPTIONS_INIT;
    verify.log_path = log_path.c_str();
    verify.key_path = verifier.c_str();
    verify.checkpoint_paths = checkpoints;
    verify.checkpoint_count = 1;
    grey_audit_report report{};
    report.struct_size = sizeof report;
    check(grey_audit_verify(&verify, &report), "grey_audit_verify");
    std::cout << "verify: cause " << grey_audit_cause_name(report.cause) << ", records " << report.records << ", head "
              << hex(report.head_hash, 32) << ", root " << hex(report.root_hash, 32) << ", log_id " << hex(report.log_id, 16)
              << "\n";
    return report.cause == GREY_AUDIT_INTACT;
}

}  // namespace

int main(int argc, char** argv) try {
    if (argc > 1) {
        fs::create_directories(argv[1]);
        return run(argv[1]) ? 0 : 1;
    }
    const TempDir dir;
    return run(dir.path()) ? 0 : 1;
} catch (const std::exception& e) {
    std::cerr << "audit: " << e.what() << "\n";
    return 1;
}
