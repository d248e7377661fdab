// RFC 6962 (and RFC 9162 section 2.1) Merkle tree over the log's records: leaf hash SHA-256(0x00 || record),
// interior node SHA-256(0x01 || left || right), the empty tree's root SHA-256("").
#pragma once

#include "audit/crypto.hpp"
#include "core/worker_pool.hpp"

#include <cstdint>
#include <span>
#include <vector>

namespace grey::audit {

using Hashes = std::span<const Hash>;

// MTH(D[0:n]) over leaf hashes.
Hash merkle_root(const Sha256& sha, Hashes leaves);
// The roots of the aligned, complete chunks of `chunk` leaves (a power of two) of a tree, as far as
// someone has computed them already: in an RFC 6962 tree every aligned run of 2^m leaves is a complete
// subtree, because each split point of a larger range is a multiple of 2^m, so a chunk's root serves
// every prefix of the leaves that covers the chunk.
struct ChunkRoots {
    static constexpr size_t chunk = 1024;
    std::vector<Hash> roots;
    std::vector<uint8_t> known;  // roots[i] is set
    // Sets the root of chunk `index` if [begin, end) is exactly that chunk.
    void offer(const Sha256& sha, Hashes leaves, size_t begin, size_t end);
};

// merkle_root of a power-of-two number of leaves (at most 64), a level at a time through Sha256::nodes
// (sixteen nodes at a time where the CPU allows).
Hash complete_subtree_root(const Sha256& sha, Hashes leaves);
// The same root as merkle_root, with the chunks `known` lacks hashed on the pool's threads first.
Hash merkle_root_parallel(const Sha256& sha, Hashes leaves, WorkerPool& pool, const ChunkRoots* known = nullptr);
// PATH(index, D[0:n]).
std::vector<Hash> inclusion_proof(const Sha256& sha, Hashes leaves, uint64_t index);
// PROOF(m, D[0:n]) for 0 < m < n; empty for m == n or m == 0.
std::vector<Hash> consistency_proof(const Sha256& sha, Hashes leaves, uint64_t old_size);

bool verify_inclusion(const Sha256& sha, uint64_t index, uint64_t size, const Hash& leaf, Hashes proof, const Hash& root);
bool verify_consistency(const Sha256& sha, uint64_t old_size, uint64_t new_size, const Hash& old_root, const Hash& new_root,
                        Hashes proof);

// The right-hand edge of a growing tree: one subtree root per set bit of the size, so appending costs
// amortised one node hash and the root is always at hand without keeping every leaf.
class CompactRange {
public:
    void append(const Sha256& sha, const Hash& leaf);
    // Appends 2^height leaves at once, given the root of their (complete) subtree: the same state as
    // appending them one by one, since a size that is a multiple of 2^height has no peak below that
    // height. The size must be such a multiple (throws GREY_ERROR_INTERNAL otherwise).
    void append_subtree(const Sha256& sha, const Hash& root, unsigned height);
    [[nodiscard]] uint64_t size() const { return size_; }
    Hash root(const Sha256& sha) const;

private:
    uint64_t size_ = 0;
    std::vector<Hash> peaks_;  // largest (leftmost) subtree first
};

}  // namespace grey::audit
