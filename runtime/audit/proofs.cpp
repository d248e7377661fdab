#include "audit/proofs.hpp"

#include "audit/json_check.hpp"
#include "audit/merkle.hpp"
#include "core/error.hpp"

#include <nlohmann/json.hpp>

#include <sys/stat.h>

namespace grey::audit {

namespace {
constexpr std::string_view inclusion_magic = "grey-audit-inclusion";
constexpr std::string_view consistency_magic = "grey-audit-consistency";
constexpr size_t max_path_length = 64;  // a tree of 2^64 leaves needs no more

bool take_line(std::string_view& text, std::string_view& line) {
    const auto nl = text.find('\n');
    if (nl == std::string_view::npos) return false;
    line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    return true;
}

bool take_field(std::string_view& text, std::string_view name, std::string_view& value) {
    std::string_view line;
    if (!take_line(text, line) || line.size() <= name.size() || !line.starts_with(name) || line[name.size()] != ' ') return false;
    value = line.substr(name.size() + 1);
    return true;
}
}  // namespace

std::string encode_proof(const MerkleProof& proof) {
    const bool inclusion = proof.kind == ProofKind::Inclusion;
    std::string text(inclusion ? inclusion_magic : consistency_magic);
    text += " v" + std::to_string(proof.version);
    text += "\nlog " + to_hex(proof.log_id);
    text += (inclusion ? "\nindex " : "\nold-size ") + std::to_string(proof.index);
    text += (inclusion ? "\nsize " : "\nnew-size ") + std::to_string(proof.size);
    if (inclusion) text += "\nleaf " + to_hex(proof.leaf);
    for (const Hash& h : proof.path) text += "\npath " + to_hex(h);
    text += "\n";
    return text;
}

std::optional<MerkleProof> parse_proof(std::string_view text, std::string& why) {
    const std::string_view original = text;
    MerkleProof proof;
    std::string_view line;
    std::string_view value;
    if (text.size() > 16384 || !take_line(text, line)) {
        why = "not a proof: too long or no complete first line";
        return std::nullopt;
    }
    // "<magic> v<version>"; the version is checked for its canonical form with the rest, below.
    const auto space = line.rfind(' ');
    const std::string_view magic = line.substr(0, space);
    if (space != std::string_view::npos && (magic == inclusion_magic || magic == consistency_magic) && line.substr(space + 1).starts_with('v')) {
        proof.kind = magic == inclusion_magic ? ProofKind::Inclusion : ProofKind::Consistency;
        uint64_t version = 0;
        if (!parse_decimal(line.substr(space + 2), version) || version < oldest_format_version || version > format_version) {
            why = "a " + std::string(magic) + " proof of version '" + std::string(line.substr(space + 2)) +
                  "', which this libgrey does not read (it reads versions " + std::to_string(oldest_format_version) + " to " +
                  std::to_string(format_version) + ")";
            return std::nullopt;
        }
        proof.version = static_cast<uint32_t>(version);
    } else {
        why = "not a proof: the first line must be '" + std::string(inclusion_magic) + " v<version>' or '" + std::string(consistency_magic) +
              " v<version>'";
        return std::nullopt;
    }
    const bool inclusion = proof.kind == ProofKind::Inclusion;
    auto bad = [&](const char* what) {
        why = std::string("malformed proof: bad '") + what + "' line";
        return std::nullopt;
    };
    if (!take_field(text, "log", value) || !from_hex(value, proof.log_id)) return bad("log");
    if (!take_field(text, inclusion ? "index" : "old-size", value) || !parse_decimal(value, proof.index)) return bad("index");
    if (!take_field(text, inclusion ? "size" : "new-size", value) || !parse_decimal(value, proof.size)) return bad("size");
    if (inclusion && (!take_field(text, "leaf", value) || !from_hex(value, proof.leaf))) return bad("leaf");
    while (!text.empty()) {
        Hash h{};
        if (proof.path.size() == max_path_length || !take_field(text, "path", value) || !from_hex(value, h)) return bad("path");
        proof.path.push_back(h);
    }
    // Only the canonical form (lower-case hex) is accepted, so that one proof has exactly one text.
    if (encode_proof(proof) != original) return bad("canonical form");
    return proof;
}

MerkleProof build_proof(Bytes log_file, ProofKind kind, uint64_t index, uint64_t size) {
    const auto log = parse_log(log_file);
    if (!log) fail(GREY_ERROR_CORRUPT, "not a grey audit log that this libgrey reads: " + header_problem(log_file));
    if (size > log->records.size())
        fail(GREY_ERROR_INVALID_ARGUMENT, "tree size " + std::to_string(size) + " exceeds the " + std::to_string(log->records.size()) + " records in the log");
    if (kind == ProofKind::Inclusion && index >= size)
        fail(GREY_ERROR_INVALID_ARGUMENT, "record index " + std::to_string(index) + " is not below the tree size " + std::to_string(size));
    if (kind == ProofKind::Consistency && index > size)
        fail(GREY_ERROR_INVALID_ARGUMENT, "old size " + std::to_string(index) + " exceeds the new size " + std::to_string(size));
    Sha256 sha;
    std::vector<Hash> leaves;
    leaves.reserve(size);
    const uint32_t version = log->header.version;
    for (uint64_t i = 0; i < size; ++i) leaves.push_back(record_leaf(version, sha, log->records[i].bytes));
    MerkleProof proof{version, kind, log->header.log_id, index, size, {}, {}};
    if (kind == ProofKind::Inclusion) {
        proof.leaf = leaves[index];
        proof.path = inclusion_proof(sha, leaves, index);
    } else {
        proof.path = consistency_proof(sha, leaves, index);
    }
    return proof;
}

void check_proof(const MerkleProof& proof, const Checkpoint& checkpoint, const Checkpoint* old_checkpoint, evp_pkey_st* public_key) {
    // With only the public key, the signature is all that vouches for a checkpoint, so it must cover
    // every byte of it (the hmac line too).
    if (public_key != nullptr) {
        for (const Checkpoint* c : {&checkpoint, old_checkpoint}) {
            std::string why;
            if (c != nullptr && !signature_covers_all(*c, public_key, why))
                fail(GREY_ERROR_CORRUPT, std::string(c == &checkpoint ? "the" : "the old") + " checkpoint " + why +
                                             " (no valid Ed25519 signature for the given public key)");
        }
    }
    if (proof.log_id != checkpoint.log_id || (old_checkpoint != nullptr && old_checkpoint->log_id != proof.log_id))
        fail(GREY_ERROR_CORRUPT, "the proof and the checkpoint belong to different logs");
    if (proof.size != checkpoint.size)
        fail(GREY_ERROR_CORRUPT, "the proof is for tree size " + std::to_string(proof.size) + " but the checkpoint has size " + std::to_string(checkpoint.size));
    Sha256 sha;
    if (proof.kind == ProofKind::Inclusion) {
        if (!verify_inclusion(sha, proof.index, proof.size, proof.leaf, proof.path, checkpoint.root))
            fail(GREY_ERROR_CORRUPT, "the inclusion proof does not lead to the checkpoint's root");
        return;
    }
    if (old_checkpoint == nullptr) fail(GREY_ERROR_INVALID_ARGUMENT, "a consistency proof needs the old checkpoint too");
    if (old_checkpoint->size != proof.index)
        fail(GREY_ERROR_CORRUPT, "the proof starts at size " + std::to_string(proof.index) + " but the old checkpoint has size " + std::to_string(old_checkpoint->size));
    if (!verify_consistency(sha, proof.index, proof.size, old_checkpoint->root, checkpoint.root, proof.path))
        fail(GREY_ERROR_CORRUPT, "the two checkpoints are not consistent: the log forked between them");
}

std::string write_artifact(Writer& writer, const std::string& dir, std::string_view json) {
    if (const JsonCheck check = check_json(json); check.verdict != JsonVerdict::Valid)
        fail(GREY_ERROR_INVALID_ARGUMENT, "the proof artifact " + json_problem_text(check));
    if (!nlohmann::json::parse(json, nullptr, false).is_object()) fail(GREY_ERROR_INVALID_ARGUMENT, "a proof artifact must be a JSON object");
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) fail(GREY_ERROR_IO, "cannot create '" + dir + "': " + errno_text());
    Sha256 sha;
    const Hash digest = sha.hash(-1, as_bytes(json));
    const std::string hex = to_hex(digest);
    const std::string id = hex.substr(0, 16);
    const std::string file = id + ".json";
    replace_file(dir + "/" + file, as_bytes(json), 0644);
    const nlohmann::ordered_json payload = {{"id", id}, {"sha256", hex}, {"file", file}};
    writer.append_reserved("grey.proof", payload.dump());
    writer.flush();
    return id;
}

ArtifactCheck check_artifact(Bytes log_file, KeyChain& keys, const std::string& artifact_path) {
    ArtifactCheck check{verify_log(log_file, keys, {}, nullptr), sha256_file(artifact_path), std::nullopt};
    if (check.log.cause != Cause::Intact) return check;
    const auto log = parse_log(log_file);
    const std::string hex = to_hex(check.sha256);
    for (uint64_t i = 0; i < check.log.records; ++i) {
        const RecordView& rec = log->records[i];
        if (rec.type != "grey.proof") continue;
        // A payload with a repeated key could name two hashes; only what check_json accepts counts.
        if (!valid_json(rec.payload)) continue;
        const auto payload = nlohmann::json::parse(rec.payload, nullptr, false);
        if (payload.is_object() && payload.contains("sha256") && payload["sha256"] == hex) {
            check.record = i;
            break;
        }
    }
    return check;
}

}  // namespace grey::audit
