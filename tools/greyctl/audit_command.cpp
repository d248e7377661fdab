// greyctl audit keygen | verify | append | checkpoint | show | prove | verify-proof
#include "commands.hpp"
#include "exit_codes.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <vector>
#include <unistd.h>

namespace greyctl {
namespace {

using json = nlohmann::ordered_json;

}  // namespace

nlohmann::ordered_json audit_report_json(const grey_audit_report& report) {
    const bool bad_record = report.first_bad_record != GREY_AUDIT_NO_RECORD;
    return {{"cause", grey_audit_cause_name(report.cause)},
            {"intact", report.cause == GREY_AUDIT_INTACT},
            {"records", report.records},
            {"first_bad_record", bad_record ? json(report.first_bad_record) : json(nullptr)},
            {"first_bad_offset", bad_record ? json(report.first_bad_offset) : json(nullptr)},
            {"bad_checkpoint", report.bad_checkpoint == GREY_AUDIT_NO_CHECKPOINT ? json(nullptr) : json(report.bad_checkpoint)},
            {"last_epoch", report.last_epoch},
            {"log_id", hex(report.log_id, sizeof report.log_id)},
            {"head_hash", hex(report.head_hash, sizeof report.head_hash)},
            {"root_hash", hex(report.root_hash, sizeof report.root_hash)},
            {"detail", report.detail}};
}

namespace {

int run_keygen(const std::string& out, bool ed25519, bool as_json) {
    const std::string writer = out + ".writer";
    const std::string priv = out + ".ed25519";
    const std::string pub = out + ".ed25519.pub";
    grey_audit_keygen_options options = GREY_AUDIT_KEYGEN_OPTIONS_INIT;
    options.verifier_key_path = out.c_str();
    options.writer_key_path = writer.c_str();
    options.ed25519 = ed25519 ? 1u : 0u;
    options.ed25519_private_path = priv.c_str();
    options.ed25519_public_path = pub.c_str();
    check(grey_audit_keygen(&options));
    if (as_json) {
        std::cout << json{{"verifier_key", out}, {"writer_key", writer}, {"ed25519_private", ed25519 ? json(priv) : json(nullptr)},
                          {"ed25519_public", ed25519 ? json(pub) : json(nullptr)}}.dump(2)
                  << "\n";
        return 0;
    }
    std::printf("verifier key: %s  (keep it offline: only it can verify the whole log)\n", out.c_str());
    std::printf("writer key:   %s  (give it to the writer; it advances every epoch)\n", writer.c_str());
    if (ed25519) std::printf("ed25519:      %s (private, signs checkpoints), %s (public, share it)\n", priv.c_str(), pub.c_str());
    return 0;
}

int run_verify(const std::string& log, const std::string& key, const std::vector<std::string>& checkpoints,
               const std::string& public_key, uint32_t threads, bool as_json) {
    std::vector<const char*> paths;
    for (const auto& c : checkpoints) paths.push_back(c.c_str());
    grey_audit_verify_options options = GREY_AUDIT_VERIFY_OPTIONS_INIT;
    options.log_path = log.c_str();
    options.key_path = key.c_str();
    options.checkpoint_paths = paths.data();
    options.checkpoint_count = static_cast<uint32_t>(paths.size());
    options.public_key_path = public_key.empty() ? nullptr : public_key.c_str();
    options.threads = threads;
    grey_audit_report report{};
    report.struct_size = sizeof report;
    check(grey_audit_verify(&options, &report));
    const bool intact = report.cause == GREY_AUDIT_INTACT;
    if (as_json) {
        std::cout << audit_report_json(report).dump(2) << "\n";
    } else if (intact) {
        std::printf("intact: %llu records, head %s, root %s\n", static_cast<unsigned long long>(report.records),
                    hex(report.head_hash, 32).c_str(), hex(report.root_hash, 32).c_str());
    } else {
        std::printf("TAMPERED: %s", grey_audit_cause_name(report.cause));
        if (report.first_bad_record != GREY_AUDIT_NO_RECORD)
            std::printf(" at record %llu (offset %llu)", static_cast<unsigned long long>(report.first_bad_record),
                        static_cast<unsigned long long>(report.first_bad_offset));
        std::printf("\n  %s\n  %llu records verified before it\n", report.detail, static_cast<unsigned long long>(report.records));
    }
    return code_of(intact ? Exit::ok : Exit::check_failed);
}

grey_audit_checkpoint_info read_checkpoint(const std::string& path) {
    grey_audit_checkpoint_info info{};
    info.struct_size = sizeof info;
    check(grey_audit_checkpoint_read(path.c_str(), &info));
    return info;
}

// A file under the temporary directory, removed on scope exit: where a proof bound for standard output
// is checked first (grey_audit_check_proof reads a file).
class TempFile {
public:
    TempFile() {
        path_ = (std::filesystem::temp_directory_path() / "greyctl-proof-XXXXXX").string();
        const int fd = ::mkstemp(path_.data());
        if (fd < 0) throw std::runtime_error("cannot create a temporary file in " + std::filesystem::temp_directory_path().string());
        ::close(fd);
    }
    ~TempFile() { std::filesystem::remove(path_); }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    std::string path_;
};

void write_text_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) throw std::runtime_error("cannot write '" + path + "'");
}

struct ProveRequest {
    std::string log, key, out;
    bool consistency = false;
    uint64_t record = 0;
    std::string checkpoint;      // inclusion: the tree; consistency: the new tree
    std::string old_checkpoint;  // consistency only
};

// Builds a proof from the log for the tree size its checkpoint(s) name, and checks it against them
// before handing it out, so that a checkpoint of another log or of another history is reported here
// and not by whoever receives the proof. With a verifier key the whole log is verified first.
int run_prove(const ProveRequest& r, bool as_json) {
    std::vector<std::string> checkpoints;
    if (r.consistency) checkpoints = {r.old_checkpoint, r.checkpoint};
    else checkpoints = {r.checkpoint};
    if (!r.key.empty()) {
        std::vector<const char*> paths;
        for (const auto& c : checkpoints) paths.push_back(c.c_str());
        grey_audit_verify_options options = GREY_AUDIT_VERIFY_OPTIONS_INIT;
        options.log_path = r.log.c_str();
        options.key_path = r.key.c_str();
        options.checkpoint_paths = paths.data();
        options.checkpoint_count = static_cast<uint32_t>(paths.size());
        grey_audit_report report{};
        report.struct_size = sizeof report;
        check(grey_audit_verify(&options, &report));
        if (report.cause != GREY_AUDIT_INTACT)
            throw CommandError(Exit::check_failed, "no proof: " + r.log + " does not verify against the checkpoint(s): " +
                                                       grey_audit_cause_name(report.cause) + ": " + report.detail);
    }
    const grey_audit_checkpoint_info tree = read_checkpoint(r.checkpoint);
    std::string text;
    uint64_t old_size = 0;
    if (r.consistency) {
        const grey_audit_checkpoint_info old_tree = read_checkpoint(r.old_checkpoint);
        old_size = old_tree.size;
        text = read_text([&](char* b, size_t n, size_t* len) {
            return grey_audit_prove_consistency(r.log.c_str(), old_tree.size, tree.size, b, n, len);
        });
    } else {
        text = read_text([&](char* b, size_t n, size_t* len) {
            return grey_audit_prove_inclusion(r.log.c_str(), r.record, tree.size, b, n, len);
        });
    }
    std::optional<TempFile> temp;
    if (r.out.empty()) temp.emplace();
    const std::string& proof_path = r.out.empty() ? temp->path() : r.out;
    write_text_file(proof_path, text);
    const char* old_path = r.consistency ? r.old_checkpoint.c_str() : nullptr;
    if (grey_audit_check_proof(proof_path.c_str(), r.checkpoint.c_str(), old_path, nullptr) != GREY_OK) {
        const std::string why = grey_last_error();
        if (!r.out.empty()) std::filesystem::remove(r.out);
        throw CommandError(Exit::check_failed, "no proof: the records of " + r.log + " do not match the checkpoint(s): " + why);
    }
    if (as_json) {
        std::cout << json{{"kind", r.consistency ? "consistency" : "inclusion"},
                          {"record", r.consistency ? json(nullptr) : json(r.record)},
                          {"old_size", r.consistency ? json(old_size) : json(nullptr)},
                          {"tree_size", tree.size},
                          {"root_hash", hex(tree.root_hash, sizeof tree.root_hash)},
                          {"out", r.out.empty() ? json(nullptr) : json(r.out)},
                          {"proof", r.out.empty() ? json(text) : json(nullptr)}}
                         .dump(2)
                  << "\n";
    } else if (r.out.empty()) std::fwrite(text.data(), 1, text.size(), stdout);
    else if (r.consistency)
        std::printf("consistency proof from size %llu to %llu written to %s\n", static_cast<unsigned long long>(old_size),
                    static_cast<unsigned long long>(tree.size), r.out.c_str());
    else
        std::printf("inclusion proof of record %llu in the tree of size %llu written to %s\n", static_cast<unsigned long long>(r.record),
                    static_cast<unsigned long long>(tree.size), r.out.c_str());
    return 0;
}

// Needs no log and no secret: the proof, the checkpoint(s) and, for signed checkpoints, the public key.
int run_verify_proof(const std::string& proof, const std::string& checkpoint, const std::string& old_checkpoint,
                     const std::string& public_key, bool as_json) {
    const grey_status status = grey_audit_check_proof(proof.c_str(), checkpoint.c_str(), old_checkpoint.empty() ? nullptr : old_checkpoint.c_str(),
                                                      public_key.empty() ? nullptr : public_key.c_str());
    // CORRUPT is the verdict (the proof does not hold); any other failure means it could not be checked.
    if (status != GREY_OK && status != GREY_ERROR_CORRUPT) check(status);
    const std::string why = status == GREY_OK ? "" : grey_last_error();
    const grey_audit_checkpoint_info tree = read_checkpoint(checkpoint);
    if (as_json) {
        std::cout << json{{"valid", status == GREY_OK},
                          {"proof", proof},
                          {"checkpoint", checkpoint},
                          {"old_checkpoint", old_checkpoint.empty() ? json(nullptr) : json(old_checkpoint)},
                          {"tree_size", tree.size},
                          {"root_hash", hex(tree.root_hash, sizeof tree.root_hash)},
                          {"ed25519_checked", !public_key.empty()},
                          {"detail", why}}
                         .dump(2)
                  << "\n";
        return code_of(status == GREY_OK ? Exit::ok : Exit::check_failed);
    }
    if (status != GREY_OK) {
        std::printf("INVALID: %s\n", why.c_str());
        return code_of(Exit::check_failed);
    }
    std::printf("valid: %s holds against %s (tree size %llu, root %s)%s\n", proof.c_str(), checkpoint.c_str(),
                static_cast<unsigned long long>(tree.size), hex(tree.root_hash, sizeof tree.root_hash).c_str(),
                public_key.empty() ? "" : ", Ed25519 signature checked");
    return 0;
}

int run_show(const std::string& log, uint64_t from, uint64_t count, bool as_json) {
    const std::string text = read_text([&](char* b, size_t n, size_t* len) { return grey_audit_records_json(log.c_str(), from, count, b, n, len); });
    if (as_json) {
        std::cout << text << "\n";
        return 0;
    }
    for (const auto& record : json::parse(text))
        std::printf("%-6llu epoch %-4u %-16s %s\n", record["sequence"].get<unsigned long long>(), record["epoch"].get<unsigned>(),
                    record["type"].get<std::string>().c_str(), record["payload"].dump().c_str());
    return 0;
}

}  // namespace

void add_audit_command(CLI::App& app, const GlobalOptions&, Runner& run) {
    auto* audit = app.add_subcommand("audit", "Tamper-evident audit log: keys, appends, checkpoints, verification");
    audit->require_subcommand(1);

    struct Options {
        std::string out, log, key, type, payload, public_key, signing_key;
        std::vector<std::string> checkpoints;
        bool ed25519 = false;
        bool as_json = false;
        uint64_t from = 0;
        uint64_t count = 0;
        uint32_t threads = 0;
        grey_audit_options policy = GREY_AUDIT_OPTIONS_INIT;  // epoch policy of append
        ProveRequest prove;
        std::string new_checkpoint, proof;
    };
    auto o = std::make_shared<Options>();

    auto* keygen = audit->add_subcommand("keygen", "Write a verifier key PATH and a writer key PATH.writer (mode 0600)");
    keygen->add_option("--out", o->out, "Verifier key file to create")->required();
    keygen->add_flag("--ed25519", o->ed25519, "Also write an Ed25519 pair PATH.ed25519 and PATH.ed25519.pub");
    add_json_flag(*keygen, o->as_json, "Print the paths written as JSON");
    keygen->callback([&run, o] { run = [o] { return run_keygen(o->out, o->ed25519, o->as_json); }; });

    auto* verify = audit->add_subcommand("verify", "Verify a log; exit 0 when intact, 1 with the first bad record and cause");
    verify->add_option("--log", o->log, "Audit log")->required();
    verify->add_option("--key", o->key, "Verifier key (the initial key)")->required();
    verify->add_option("--checkpoint", o->checkpoints, "Checkpoint file kept elsewhere (repeatable)");
    verify->add_option("--public-key", o->public_key, "Ed25519 public key: checkpoints must be signed with it");
    verify->add_option("--threads", o->threads, "Threads that hash the log (0: one per core); the verdict is the same")
        ->check(CLI::Range(0u, 256u))
        ->capture_default_str();
    add_json_flag(*verify, o->as_json, "Print the report as JSON (the keys of the bindings' audit report)");
    verify->callback([&run, o] {
        run = [o] { return run_verify(o->log, o->key, o->checkpoints, o->public_key, o->threads, o->as_json); };
    });

    auto* append = audit->add_subcommand("append", "Append one record and sync it");
    append->add_option("--log", o->log, "Audit log (created if missing)")->required();
    append->add_option("--key", o->key, "Writer key")->required();
    append->add_option("--type", o->type, "Record type ([A-Za-z0-9._-], 1..64)")->required();
    append->add_option("--payload", o->payload, "Record payload (JSON)")->required();
    append->add_option("--epoch-records", o->policy.epoch_records, "Advance the key after this many records of an epoch (0: never by count)")
        ->capture_default_str();
    append->add_option("--epoch-seconds", o->policy.epoch_seconds, "Advance the key once an epoch is this many seconds old (0: never by time)")
        ->capture_default_str();
    add_json_flag(*append, o->as_json, "Print {\"sequence\": N}");
    append->callback([&run, o] {
        run = [o] {
            AuditLogPtr log = open_audit_log(o->log, o->key, "", o->policy);
            uint64_t sequence = 0;
            check(grey_audit_append(log.get(), o->type.c_str(), o->payload.c_str(), &sequence));
            if (o->as_json) std::cout << json{{"sequence", sequence}}.dump() << "\n";
            else std::printf("appended record %llu\n", static_cast<unsigned long long>(sequence));
            return 0;
        };
    });

    auto* checkpoint = audit->add_subcommand("checkpoint", "Write a signed checkpoint of the log");
    checkpoint->add_option("--log", o->log, "Audit log")->required();
    checkpoint->add_option("--key", o->key, "Writer key")->required();
    checkpoint->add_option("--out", o->out, "Checkpoint file to write")->required();
    checkpoint->add_option("--signing-key", o->signing_key, "Ed25519 private key: also sign with it");
    add_json_flag(*checkpoint, o->as_json, "Print the checkpoint written (size, root, log id) as JSON");
    checkpoint->callback([&run, o] {
        run = [o] {
            AuditLogPtr log = open_audit_log(o->log, o->key, o->signing_key);
            check(grey_audit_checkpoint(log.get(), o->out.c_str()));
            if (o->as_json) {
                const grey_audit_checkpoint_info info = read_checkpoint(o->out);
                std::cout << json{{"checkpoint", o->out}, {"size", info.size}, {"epoch", info.epoch},
                                  {"log_id", hex(info.log_id, sizeof info.log_id)}, {"root_hash", hex(info.root_hash, sizeof info.root_hash)},
                                  {"ed25519_signed", info.ed25519_signed != 0}}
                                 .dump(2)
                          << "\n";
            } else {
                std::printf("checkpoint written to %s\n", o->out.c_str());
            }
            return 0;
        };
    });

    auto* prove = audit->add_subcommand("prove", "Write a Merkle inclusion proof of a record, or a consistency proof between two checkpoints");
    prove->add_option("--log", o->prove.log, "Audit log")->required();
    auto* record = prove->add_option("--record", o->prove.record, "Inclusion: the record's index (sequence number)");
    prove->add_option("--checkpoint", o->prove.checkpoint, "Inclusion: the checkpoint whose tree holds the record");
    prove->add_flag("--consistency", o->prove.consistency, "Prove that --new extends --old instead");
    prove->add_option("--old", o->prove.old_checkpoint, "Consistency: the older checkpoint");
    prove->add_option("--new", o->new_checkpoint, "Consistency: the newer checkpoint");
    prove->add_option("--key", o->prove.key, "Verifier key: verify the log against the checkpoint(s) first");
    prove->add_option("--out", o->prove.out, "Write the proof here (default: standard output)");
    add_json_flag(*prove, o->as_json, "Print JSON: the proof's kind, sizes and root, and the proof text unless --out");
    prove->callback([&run, o, record] {
        // The two modes take different options; usage errors (exit 2) say which ones.
        ProveRequest& r = o->prove;
        if (r.consistency) {
            if (r.old_checkpoint.empty() || o->new_checkpoint.empty() || !r.checkpoint.empty() || record->count() != 0)
                throw CLI::ValidationError("--consistency", "needs --old CHECKPOINT and --new CHECKPOINT (and no --record or --checkpoint)");
            r.checkpoint = o->new_checkpoint;
        } else if (r.checkpoint.empty() || record->count() == 0 || !r.old_checkpoint.empty() || !o->new_checkpoint.empty()) {
            throw CLI::ValidationError("prove", "an inclusion proof needs --record N and --checkpoint FILE (--old and --new are for --consistency)");
        }
        run = [o] { return run_prove(o->prove, o->as_json); };
    });

    auto* verify_proof = audit->add_subcommand("verify-proof", "Check a proof against its checkpoint(s); needs no log and no secret key");
    verify_proof->add_option("--proof", o->proof, "Proof file (from audit prove)")->required();
    verify_proof->add_option("--checkpoint", o->prove.checkpoint, "Checkpoint of the proof's tree (consistency: the newer one)")->required();
    verify_proof->add_option("--old", o->prove.old_checkpoint, "Consistency: the older checkpoint");
    verify_proof->add_option("--public-key", o->public_key, "Ed25519 public key: the checkpoint(s) must be signed with it");
    add_json_flag(*verify_proof, o->as_json, "Print the verdict as JSON");
    verify_proof->callback([&run, o] {
        run = [o] { return run_verify_proof(o->proof, o->prove.checkpoint, o->prove.old_checkpoint, o->public_key, o->as_json); };
    });

    auto* show = audit->add_subcommand("show", "Print records (unverified: use verify for proof)");
    show->add_option("--log", o->log, "Audit log")->required();
    show->add_option("--from", o->from, "First record index");
    show->add_option("--count", o->count, "At most this many records (0: all)");
    add_json_flag(*show, o->as_json, "Print the records as a JSON array (sequence, epoch, type, payload)");
    show->callback([&run, o] { run = [o] { return run_show(o->log, o->from, o->count, o->as_json); }; });
}

}  // namespace greyctl
