#include "audit/merkle.hpp"

#include "core/error.hpp"

#include <array>
#include <bit>

namespace grey::audit {

namespace {
Hash node(const Sha256& sha, const Hash& left, const Hash& right) { return sha.hash(0x01, left, right); }

// After combining with a left sibling at an even position, climb past the levels where this node is a
// left child with no right sibling (RFC 9162: "right-shift fn and sn until LSB(fn) is set or fn is 0").
void climb_past_lone_left_children(uint64_t& fn, uint64_t& sn) {
    while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
    }
}

// The largest power of two strictly smaller than n (n >= 2).
uint64_t split_point(uint64_t n) { return std::bit_floor(n - 1); }

void subproof(const Sha256& sha, Hashes leaves, uint64_t m, bool whole, std::vector<Hash>& out) {
    const uint64_t n = leaves.size();
    if (m == n) {
        if (!whole) out.push_back(merkle_root(sha, leaves));
        return;
    }
    const uint64_t k = split_point(n);
    if (m <= k) {
        subproof(sha, leaves.first(k), m, whole, out);
        out.push_back(merkle_root(sha, leaves.subspan(k)));
    } else {
        subproof(sha, leaves.subspan(k), m - k, false, out);
        out.push_back(merkle_root(sha, leaves.first(k)));
    }
}
}  // namespace

Hash merkle_root(const Sha256& sha, Hashes leaves) {
    if (leaves.empty()) return sha.hash(-1, {});
    if (leaves.size() == 1) return leaves[0];
    const uint64_t k = split_point(leaves.size());
    return node(sha, merkle_root(sha, leaves.first(k)), merkle_root(sha, leaves.subspan(k)));
}

namespace {
// The root of a subtree whose leaves start at `offset`, taking the root of each aligned, complete
// chunk it holds from `chunk_roots`.
Hash root_over_chunks(const Sha256& sha, Hashes leaves, size_t offset, const std::vector<Hash>& chunk_roots) {
    constexpr size_t chunk = ChunkRoots::chunk;
    if (leaves.size() == chunk) return chunk_roots[offset / chunk];  // offsets of ranges this large are aligned
    if (leaves.size() < chunk) return merkle_root(sha, leaves);
    const uint64_t k = split_point(leaves.size());
    return node(sha, root_over_chunks(sha, leaves.first(k), offset, chunk_roots),
                root_over_chunks(sha, leaves.subspan(k), offset + k, chunk_roots));
}
}  // namespace

void ChunkRoots::offer(const Sha256& sha, Hashes leaves, size_t begin, size_t end) {
    if (begin % chunk != 0 || end - begin != chunk) return;
    roots[begin / chunk] = merkle_root(sha, leaves.subspan(begin, chunk));
    known[begin / chunk] = 1;
}

Hash merkle_root_parallel(const Sha256& sha, Hashes leaves, WorkerPool& pool, const ChunkRoots* known) {
    constexpr size_t chunk = ChunkRoots::chunk;
    if (leaves.size() <= 2 * chunk) return merkle_root(sha, leaves);
    std::vector<Hash> chunk_roots(leaves.size() / chunk);
    std::vector<size_t> missing;
    for (size_t i = 0; i < chunk_roots.size(); ++i) {
        if (known != nullptr && i < known->known.size() && known->known[i] != 0) chunk_roots[i] = known->roots[i];
        else missing.push_back(i);
    }
    pool.run(missing.size(), 8, [&](size_t begin, size_t end) {
        for (size_t m = begin; m < end; ++m) chunk_roots[missing[m]] = merkle_root(sha, leaves.subspan(missing[m] * chunk, chunk));
    });
    return root_over_chunks(sha, leaves, 0, chunk_roots);
}

std::vector<Hash> inclusion_proof(const Sha256& sha, Hashes leaves, uint64_t index) {
    std::vector<Hash> path;
    while (leaves.size() > 1) {
        const uint64_t k = split_point(leaves.size());
        if (index < k) {
            path.push_back(merkle_root(sha, leaves.subspan(k)));
            leaves = leaves.first(k);
        } else {
            path.push_back(merkle_root(sha, leaves.first(k)));
            leaves = leaves.subspan(k);
            index -= k;
        }
    }
    // Collected top-down; RFC 6962 lists the path from the leaf up.
    return {path.rbegin(), path.rend()};
}

std::vector<Hash> consistency_proof(const Sha256& sha, Hashes leaves, uint64_t old_size) {
    std::vector<Hash> out;
    if (old_size == 0 || old_size >= leaves.size()) return out;
    subproof(sha, leaves, old_size, true, out);
    return out;
}

bool verify_inclusion(const Sha256& sha, uint64_t index, uint64_t size, const Hash& leaf, Hashes proof, const Hash& root) {
    if (index >= size) return false;
    uint64_t fn = index;
    uint64_t sn = size - 1;
    Hash r = leaf;
    for (const Hash& p : proof) {
        if (sn == 0) return false;
        if ((fn & 1) != 0 || fn == sn) {
            r = node(sha, p, r);
            climb_past_lone_left_children(fn, sn);
        } else {
            r = node(sha, r, p);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && equal_ct(r, root);
}

bool verify_consistency(const Sha256& sha, uint64_t old_size, uint64_t new_size, const Hash& old_root, const Hash& new_root,
                        Hashes proof) {
    if (old_size > new_size) return false;
    if (old_size == new_size) return proof.empty() && equal_ct(old_root, new_root);
    if (old_size == 0) return proof.empty();
    if (proof.empty()) return false;
    std::vector<Hash> path;
    // When the old tree is a complete subtree its root is the proof's implicit first element.
    if (std::has_single_bit(old_size)) path.push_back(old_root);
    path.insert(path.end(), proof.begin(), proof.end());
    uint64_t fn = old_size - 1;
    uint64_t sn = new_size - 1;
    while ((fn & 1) != 0) {
        fn >>= 1;
        sn >>= 1;
    }
    Hash fr = path[0];
    Hash sr = path[0];
    for (size_t i = 1; i < path.size(); ++i) {
        const Hash& c = path[i];
        if (sn == 0) return false;
        if ((fn & 1) != 0 || fn == sn) {
            fr = node(sha, c, fr);
            sr = node(sha, c, sr);
            climb_past_lone_left_children(fn, sn);
        } else {
            sr = node(sha, sr, c);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && equal_ct(fr, old_root) && equal_ct(sr, new_root);
}

void CompactRange::append(const Sha256& sha, const Hash& leaf) {
    Hash carry = leaf;
    // Each trailing one bit of the old size is a complete subtree that the new leaf now pairs with.
    for (uint64_t s = size_; (s & 1) != 0; s >>= 1) {
        carry = node(sha, peaks_.back(), carry);
        peaks_.pop_back();
    }
    peaks_.push_back(carry);
    ++size_;
}

Hash complete_subtree_root(const Sha256& sha, Hashes leaves) {
    constexpr size_t most = 64;
    if (leaves.empty() || leaves.size() > most || !std::has_single_bit(leaves.size()))
        fail(GREY_ERROR_INTERNAL, "complete_subtree_root needs 1 to 64 leaves, a power of two");
    std::array<Hash, most> a, b;
    std::copy(leaves.begin(), leaves.end(), a.begin());
    Hash* from = a.data();
    Hash* to = b.data();
    for (size_t width = leaves.size(); width > 1; width /= 2) {
        sha.nodes(Hashes(from, width), std::span<Hash>(to, width / 2));
        std::swap(from, to);
    }
    return from[0];
}

void CompactRange::append_subtree(const Sha256& sha, const Hash& root, unsigned height) {
    const uint64_t leaves = uint64_t{1} << height;
    if (size_ % leaves != 0) fail(GREY_ERROR_INTERNAL, "a Merkle subtree appended off its alignment");
    Hash carry = root;
    for (uint64_t s = size_ >> height; (s & 1) != 0; s >>= 1) {
        carry = node(sha, peaks_.back(), carry);
        peaks_.pop_back();
    }
    peaks_.push_back(carry);
    size_ += leaves;
}

Hash CompactRange::root(const Sha256& sha) const {
    if (peaks_.empty()) return sha.hash(-1, {});
    Hash r = peaks_.back();
    for (auto it = peaks_.rbegin() + 1; it != peaks_.rend(); ++it) r = node(sha, *it, r);
    return r;
}

}  // namespace grey::audit
