// libFuzzer target: the Merkle proof parser and verifiers. Accepted proofs print back to the same
// bytes; verification of any parsed proof terminates without crashing.
#include "audit/merkle.hpp"
#include "audit/proofs.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace grey::audit;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    std::string why;
    const auto proof = parse_proof(text, why);
    if (!proof) return 0;
    if (encode_proof(*proof) != text) __builtin_trap();
    Sha256 sha;
    const Hash root = proof->path.empty() ? proof->leaf : proof->path.back();
    if (proof->kind == ProofKind::Inclusion) (void)verify_inclusion(sha, proof->index, proof->size, proof->leaf, proof->path, root);
    else (void)verify_consistency(sha, proof->index, proof->size, proof->leaf, root, proof->path);
    return 0;
}
