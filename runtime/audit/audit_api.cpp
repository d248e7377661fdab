// C entry points of the audit log.
#include "audit/checkpoint.hpp"
#include "audit/json_check.hpp"
#include "audit/proofs.hpp"
#include "audit/verifier.hpp"
#include "audit/writer.hpp"
#include "core/error.hpp"
#include "core/mapped_file.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>

struct grey_audit_log {
    explicit grey_audit_log(grey::audit::WriterOptions options) : writer(std::move(options)) {}
    grey::audit::Writer writer;
};

struct grey_audit_batch {
    grey::audit::RecordBatch records;
};

using grey::abi_guard;
using grey::fail;
using grey::require_non_null;
namespace audit = grey::audit;

namespace {
// Sizes of the structs as first released, below which a caller's struct_size is refused.
constexpr size_t audit_options_v1_size = sizeof(grey_audit_options);
constexpr size_t keygen_options_v1_size = sizeof(grey_audit_keygen_options);
constexpr size_t verify_options_v1_size = offsetof(grey_audit_verify_options, threads);
constexpr uint32_t max_verify_threads = 256;


template <typename Options>
void require_input_struct(const Options* options, size_t first_released_size, const char* what) {
    require_non_null(options, what);
    if (options->struct_size < first_released_size)
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string(what) + "->struct_size is " + std::to_string(options->struct_size) +
                                              "; initialise it with its GREY_..._INIT macro");
}

std::string required_path(const char* path, const char* what) {
    if (path == nullptr || *path == '\0') fail(GREY_ERROR_INVALID_ARGUMENT, std::string(what) + " must be a path");
    return path;
}

std::string optional_path(const char* path) { return path != nullptr ? path : ""; }

grey_audit_cause to_c(audit::Cause cause) {
    switch (cause) {
        case audit::Cause::Intact: return GREY_AUDIT_INTACT;
        case audit::Cause::Modified: return GREY_AUDIT_MODIFIED;
        case audit::Cause::Deleted: return GREY_AUDIT_DELETED;
        case audit::Cause::Reordered: return GREY_AUDIT_REORDERED;
        case audit::Cause::Inserted: return GREY_AUDIT_INSERTED;
        case audit::Cause::Truncated: return GREY_AUDIT_TRUNCATED;
        case audit::Cause::Resealed: return GREY_AUDIT_RESEALED;
        case audit::Cause::ForeignLog: return GREY_AUDIT_FOREIGN_LOG;
        case audit::Cause::Forked: return GREY_AUDIT_FORKED;
        case audit::Cause::Malformed: return GREY_AUDIT_MALFORMED;
    }
    return GREY_AUDIT_MALFORMED;
}

grey_audit_report to_c(const audit::VerifyReport& r) {
    grey_audit_report out{};
    out.struct_size = sizeof out;
    out.cause = to_c(r.cause);
    out.records = r.records;
    out.first_bad_record = r.bad_record.value_or(GREY_AUDIT_NO_RECORD);
    out.first_bad_offset = r.bad_offset;
    out.bad_checkpoint = r.bad_checkpoint.value_or(GREY_AUDIT_NO_CHECKPOINT);
    out.last_epoch = r.last_epoch;
    std::copy(r.log_id.begin(), r.log_id.end(), out.log_id);
    std::copy(r.head.begin(), r.head.end(), out.head_hash);
    std::copy(r.root.begin(), r.root.end(), out.root_hash);
    const size_t n = std::min(r.detail.size(), sizeof out.detail - 1);
    std::memcpy(out.detail, r.detail.data(), n);
    return out;
}

audit::KeyChain verifier_keys(const std::string& key_path) {
    const audit::KeyFile key = audit::read_key_file(key_path);
    if (key.epoch != 0)
        fail(GREY_ERROR_INVALID_ARGUMENT, "key file '" + key_path + "' is at epoch " + std::to_string(key.epoch) +
                                              ": verification needs the initial (verifier) key");
    return audit::KeyChain(key.key);
}

// Logs are mapped, not read: their size costs address space rather than memory. Every byte is read, so
// the pages are read in up front rather than faulted in one by one.
grey::MappedFile map_log(const std::string& path) { return {path, "audit log", grey::MappedFile::Prefault::yes}; }

std::string read_text_file(const std::string& path) {
    const auto bytes = audit::read_file(path, 1u << 20);
    return {bytes.begin(), bytes.end()};
}

audit::Checkpoint load_checkpoint(const std::string& path) {
    std::string why;
    auto c = audit::parse_checkpoint(read_text_file(path), why);
    if (!c) fail(GREY_ERROR_INVALID_ARGUMENT, "'" + path + "': " + why);
    return *c;
}
grey_status prove(const char* log_path, audit::ProofKind kind, uint64_t first, uint64_t size, char* buffer, size_t buffer_size,
                  size_t* out_length) {
    return abi_guard([&] {
        const grey::MappedFile file = map_log(required_path(log_path, "log_path"));
        grey::copy_out_text(audit::encode_proof(audit::build_proof(file.bytes<uint8_t>(), kind, first, size)), buffer, buffer_size, out_length);
    });
}
}  // namespace

extern "C" {

grey_status grey_audit_keygen(const grey_audit_keygen_options* options) {
    return abi_guard([&] {
        require_input_struct(options, keygen_options_v1_size, "options");
        const std::string verifier_path = required_path(options->verifier_key_path, "options->verifier_key_path");
        audit::KeyFile key;
        audit::random_bytes(key.key.mutable_bytes());
        key.key_id = audit::key_id_of(key.key);
        key.role = audit::KeyRole::Verifier;
        audit::write_new_key_file(verifier_path, key);
        if (options->writer_key_path != nullptr) {
            key.role = audit::KeyRole::Writer;
            audit::write_new_key_file(options->writer_key_path, key);
        }
        if (options->ed25519 != 0) {
            const std::string priv = required_path(options->ed25519_private_path, "options->ed25519_private_path");
            const std::string pub = required_path(options->ed25519_public_path, "options->ed25519_public_path");
            const audit::PkeyPtr pair = audit::ed25519_generate();
            audit::ed25519_write_private(priv, pair.get());
            audit::ed25519_write_public(pub, pair.get());
        }
    });
}

grey_status grey_audit_log_create(const grey_audit_options* options, grey_audit_log** out_log) {
    return abi_guard([&] {
        require_input_struct(options, audit_options_v1_size, "options");
        require_non_null(out_log, "out_log");
        audit::WriterOptions o;
        o.log_path = required_path(options->log_path, "options->log_path");
        o.key_path = required_path(options->key_path, "options->key_path");
        o.signing_key_path = optional_path(options->signing_key_path);
        switch (options->durability) {
            case GREY_AUDIT_DURABILITY_EVERY_RECORD: o.durability = audit::Durability::EveryRecord; break;
            case GREY_AUDIT_DURABILITY_GROUP: o.durability = audit::Durability::Group; break;
            default: fail(GREY_ERROR_INVALID_ARGUMENT, "options->durability is not a grey_audit_durability value");
        }
        o.group_records = options->group_records;
        o.group_ms = options->group_ms;
        o.epoch_records = options->epoch_records;
        o.epoch_seconds = options->epoch_seconds;
        *out_log = std::make_unique<grey_audit_log>(std::move(o)).release();
    });
}

grey_status grey_audit_append(grey_audit_log* log, const char* type, const char* payload, uint64_t* out_sequence) {
    return abi_guard([&] {
        require_non_null(log, "log");
        require_non_null(type, "type");
        require_non_null(payload, "payload");
        const auto sequence = log->writer.append(type, payload);
        if (out_sequence != nullptr) *out_sequence = sequence.value_or(UINT64_MAX);
    });
}

grey_status grey_audit_batch_create(grey_audit_batch** out_batch) {
    return abi_guard([&] {
        require_non_null(out_batch, "out_batch");
        *out_batch = std::make_unique<grey_audit_batch>().release();
    });
}

grey_status grey_audit_batch_add(grey_audit_batch* batch, const char* type, const char* payload) {
    return abi_guard([&] {
        require_non_null(batch, "batch");
        require_non_null(type, "type");
        require_non_null(payload, "payload");
        batch->records.add(type, payload);
    });
}

grey_status grey_audit_append_batch(grey_audit_log* log, grey_audit_batch* batch, uint64_t* out_first_sequence) {
    return abi_guard([&] {
        require_non_null(log, "log");
        require_non_null(batch, "batch");
        const auto first = log->writer.append_batch(batch->records);
        if (out_first_sequence != nullptr) *out_first_sequence = first.value_or(UINT64_MAX);
    });
}

void grey_audit_batch_destroy(grey_audit_batch* batch) { delete batch; }

grey_status grey_audit_flush(grey_audit_log* log) {
    return abi_guard([&] {
        require_non_null(log, "log");
        log->writer.flush();
    });
}

grey_status grey_audit_checkpoint(grey_audit_log* log, const char* out_path) {
    return abi_guard([&] {
        require_non_null(log, "log");
        const std::string path = required_path(out_path, "out_path");
        const std::string text = log->writer.checkpoint();
        audit::replace_file(path, audit::as_bytes(text), 0644);
    });
}

grey_status grey_audit_log_info_get(grey_audit_log* log, grey_audit_log_info* out_info) {
    return abi_guard([&] {
        require_non_null(log, "log");
        require_non_null(out_info, "out_info");
        const audit::WriterState s = log->writer.state();
        grey_audit_log_info info{};
        info.struct_size = sizeof info;
        info.epoch = s.epoch;
        info.records = s.records;
        info.pending = s.pending;
        info.recovered_bytes = s.recovered_bytes;
        std::copy(s.log_id.begin(), s.log_id.end(), info.log_id);
        std::copy(s.head.begin(), s.head.end(), info.head_hash);
        grey::copy_out_struct(info, out_info, sizeof(grey_audit_log_info), "out_info");
    });
}

void grey_audit_log_destroy(grey_audit_log* log) { delete log; }

const char* grey_audit_cause_name(grey_audit_cause cause) {
    switch (cause) {
        case GREY_AUDIT_INTACT: return "intact";
        case GREY_AUDIT_MODIFIED: return "modified";
        case GREY_AUDIT_DELETED: return "deleted";
        case GREY_AUDIT_REORDERED: return "reordered";
        case GREY_AUDIT_INSERTED: return "inserted";
        case GREY_AUDIT_TRUNCATED: return "truncated";
        case GREY_AUDIT_RESEALED: return "resealed";
        case GREY_AUDIT_FOREIGN_LOG: return "foreign_log";
        case GREY_AUDIT_FORKED: return "forked";
        case GREY_AUDIT_MALFORMED: return "malformed";
        case GREY_AUDIT_CAUSE_FORCE32: break;
    }
    return nullptr;
}

grey_status grey_audit_verify(const grey_audit_verify_options* options, grey_audit_report* out_report) {
    return abi_guard([&] {
        require_input_struct(options, verify_options_v1_size, "options");
        require_non_null(out_report, "out_report");
        // (threads arrived in 0.2: a caller built against 0.1 passes a struct without it.)
        const uint32_t threads = options->struct_size >= offsetof(grey_audit_verify_options, threads) + sizeof(uint32_t) ? options->threads : 0;
        if (threads > max_verify_threads)
            fail(GREY_ERROR_INVALID_ARGUMENT, "options->threads is " + std::to_string(threads) + "; at most " +
                                                  std::to_string(max_verify_threads) + " (0: one per core)");
        const std::string log_path = required_path(options->log_path, "options->log_path");
        audit::KeyChain keys = verifier_keys(required_path(options->key_path, "options->key_path"));
        if (options->checkpoint_count > 0) require_non_null(options->checkpoint_paths, "options->checkpoint_paths");
        std::vector<audit::NamedText> checkpoints;
        for (uint32_t i = 0; i < options->checkpoint_count; ++i) {
            const std::string path = required_path(options->checkpoint_paths[i], "a checkpoint path");
            checkpoints.push_back({path, read_text_file(path)});
        }
        audit::PkeyPtr public_key;
        if (options->public_key_path != nullptr) public_key = audit::ed25519_read_public(options->public_key_path);
        const grey::MappedFile file = map_log(log_path);
        const audit::VerifyReport report = audit::verify_log(file.bytes<uint8_t>(), keys, checkpoints, public_key.get(), threads);
        grey::copy_out_struct(to_c(report), out_report, sizeof(grey_audit_report), "out_report");
    });
}

grey_status grey_audit_records_json(const char* log_path, uint64_t from, uint64_t max_records, char* buffer,
                                    size_t buffer_size, size_t* out_length) {
    return abi_guard([&] {
        const grey::MappedFile file = map_log(required_path(log_path, "log_path"));
        const auto log = audit::parse_log(file.bytes<uint8_t>());
        if (!log)
            fail(GREY_ERROR_CORRUPT, std::string("'") + log_path + "' is not a grey audit log that this libgrey reads: " +
                                         audit::header_problem(file.bytes<uint8_t>()));
        audit::Sha256 sha;
        nlohmann::ordered_json records = nlohmann::ordered_json::array();
        for (uint64_t i = from; i < log->records.size() && (max_records == 0 || i - from < max_records); ++i) {
            const audit::RecordView& r = log->records[i];
            // A payload appended by this version passed check_json; a forged or older log may hold
            // anything, which is shown as text (it proves nothing anyway). Checked first, so that no
            // reader of this output meets nesting deeper than max_json_depth (+2) or a repeated key.
            nlohmann::ordered_json payload = std::string(r.payload);
            if (audit::valid_json(r.payload)) payload = nlohmann::ordered_json::parse(r.payload, nullptr, false);
            records.push_back({{"sequence", r.sequence}, {"time_ns", r.timestamp_ns}, {"epoch", r.epoch}, {"type", std::string(r.type)},
                               {"payload", payload}, {"hash", audit::to_hex(audit::record_leaf(log->header.version, sha, r.bytes))}});
        }
        grey::copy_out_text(records.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), buffer, buffer_size, out_length);
    });
}

grey_status grey_audit_prove_inclusion(const char* log_path, uint64_t index, uint64_t tree_size, char* buffer,
                                       size_t buffer_size, size_t* out_length) {
    return prove(log_path, audit::ProofKind::Inclusion, index, tree_size, buffer, buffer_size, out_length);
}

grey_status grey_audit_prove_consistency(const char* log_path, uint64_t old_size, uint64_t new_size, char* buffer,
                                         size_t buffer_size, size_t* out_length) {
    return prove(log_path, audit::ProofKind::Consistency, old_size, new_size, buffer, buffer_size, out_length);
}

grey_status grey_audit_check_proof(const char* proof_path, const char* checkpoint_path, const char* old_checkpoint_path,
                                   const char* public_key_path) {
    return abi_guard([&] {
        const std::string path = required_path(proof_path, "proof_path");
        std::string why;
        const auto proof = audit::parse_proof(read_text_file(path), why);
        if (!proof) fail(GREY_ERROR_INVALID_ARGUMENT, "'" + path + "': " + why);
        const audit::Checkpoint checkpoint = load_checkpoint(required_path(checkpoint_path, "checkpoint_path"));
        std::optional<audit::Checkpoint> old_checkpoint;
        if (old_checkpoint_path != nullptr) old_checkpoint = load_checkpoint(old_checkpoint_path);
        audit::PkeyPtr public_key;
        if (public_key_path != nullptr) public_key = audit::ed25519_read_public(public_key_path);
        audit::check_proof(*proof, checkpoint, old_checkpoint ? &*old_checkpoint : nullptr, public_key.get());
    });
}

grey_status grey_audit_checkpoint_read(const char* checkpoint_path, grey_audit_checkpoint_info* out_info) {
    return abi_guard([&] {
        require_non_null(out_info, "out_info");
        const audit::Checkpoint c = load_checkpoint(required_path(checkpoint_path, "checkpoint_path"));
        grey_audit_checkpoint_info info{};
        info.struct_size = sizeof info;
        info.epoch = c.epoch;
        info.size = c.size;
        info.time_ns = c.time_ns;
        std::copy(c.log_id.begin(), c.log_id.end(), info.log_id);
        std::copy(c.root.begin(), c.root.end(), info.root_hash);
        info.ed25519_signed = c.ed25519 ? 1u : 0u;
        grey::copy_out_struct(info, out_info, sizeof(grey_audit_checkpoint_info), "out_info");
    });
}

grey_status grey_audit_sha256_file(const char* path, uint8_t out_digest[32]) {
    return abi_guard([&] {
        require_non_null(out_digest, "out_digest");
        const audit::Hash digest = audit::sha256_file(required_path(path, "path"));
        std::copy(digest.begin(), digest.end(), out_digest);
    });
}

grey_status grey_proof_write(grey_audit_log* log, const char* directory, const char* artifact_json, char* id_buffer,
                             size_t id_buffer_size, size_t* out_id_length) {
    return abi_guard([&] {
        require_non_null(log, "log");
        require_non_null(artifact_json, "artifact_json");
        require_non_null(out_id_length, "out_id_length");
        if (id_buffer_size < 17) {
            *out_id_length = 16;
            fail(GREY_ERROR_BUFFER_TOO_SMALL, "the id needs a buffer of 17 bytes");
        }
        const std::string id = audit::write_artifact(log->writer, required_path(directory, "directory"), artifact_json);
        grey::copy_out_text(id, id_buffer, id_buffer_size, out_id_length);
    });
}

grey_status grey_proof_verify(const char* log_path, const char* key_path, const char* artifact_path,
                              grey_proof_report* out_report, grey_audit_report* out_log) {
    return abi_guard([&] {
        require_non_null(out_report, "out_report");
        // Both sizes are checked before either struct is written, so a failure leaves both untouched.
        grey::require_struct_size(*out_report, sizeof(grey_proof_report), "out_report");
        if (out_log != nullptr) grey::require_struct_size(*out_log, sizeof(grey_audit_report), "out_log");
        audit::KeyChain keys = verifier_keys(required_path(key_path, "key_path"));
        const grey::MappedFile file = map_log(required_path(log_path, "log_path"));
        const audit::ArtifactCheck check = audit::check_artifact(file.bytes<uint8_t>(), keys, required_path(artifact_path, "artifact_path"));
        grey_proof_report report{};
        report.struct_size = sizeof report;
        report.verified = check.log.cause == audit::Cause::Intact && check.record.has_value() ? 1u : 0u;
        report.record = check.record.value_or(GREY_AUDIT_NO_RECORD);
        std::copy(check.sha256.begin(), check.sha256.end(), report.sha256);
        grey::copy_out_struct(report, out_report, sizeof(grey_proof_report), "out_report");
        if (out_log != nullptr) grey::copy_out_struct(to_c(check.log), out_log, sizeof(grey_audit_report), "out_log");
    });
}

}  // extern "C"
