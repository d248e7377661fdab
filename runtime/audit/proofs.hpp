// Merkle proofs as portable text, and proof artifacts: JSON files whose SHA-256 is recorded in the log.
#pragma once

#include "audit/checkpoint.hpp"
#include "audit/verifier.hpp"
#include "audit/writer.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace grey::audit {

enum class ProofKind { Inclusion, Consistency };

// An inclusion proof (index < size, leaf = the record's leaf hash) or a consistency proof
// (index = old size, size = new size). docs/audit-format.md gives the grammar. Its version is the record
// format of the log it was made from, which defines what a leaf hash covers: version 1, the whole
// record; version 2, the record without its MAC. (The checks themselves are the same for both.)
struct MerkleProof {
    uint32_t version = format_version;
    ProofKind kind = ProofKind::Inclusion;
    LogId log_id{};
    uint64_t index = 0;
    uint64_t size = 0;
    Hash leaf{};
    std::vector<Hash> path;
};

std::string encode_proof(const MerkleProof& proof);
std::optional<MerkleProof> parse_proof(std::string_view text, std::string& why);

// Builds a proof from the log's records (structure only: a proof is checked against a checkpoint, so
// whoever builds it need not be trusted).
MerkleProof build_proof(Bytes log_file, ProofKind kind, uint64_t index, uint64_t size);

// Checks a proof against the checkpoint(s) it names: fails with GREY_ERROR_CORRUPT and the reason when it
// does not hold. The checkpoints' own signatures are checked when `public_key` is given.
void check_proof(const MerkleProof& proof, const Checkpoint& checkpoint, const Checkpoint* old_checkpoint, evp_pkey_st* public_key);

// Writes `json` (a JSON object) to <dir>/<id>.json, records its SHA-256 in the log as a "grey.proof"
// record and syncs it. Returns the id: the first 16 hex digits of the SHA-256.
std::string write_artifact(Writer& writer, const std::string& dir, std::string_view json);

struct ArtifactCheck {
    VerifyReport log;
    Hash sha256{};
    std::optional<uint64_t> record;  // the grey.proof record holding the artifact's hash
};
ArtifactCheck check_artifact(Bytes log_file, KeyChain& keys, const std::string& artifact_path);

}  // namespace grey::audit
