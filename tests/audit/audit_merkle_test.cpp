// The Merkle tree against the RFC 6962 test vectors published with the certificate-transparency and
// transparency-dev/merkle projects, and proofs checked for every position of small trees.
#include "audit/crypto.hpp"
#include "audit/merkle.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace grey::audit {
namespace {

Hash h(const std::string& hex) {
    Hash out{};
    EXPECT_TRUE(from_hex(hex, out)) << hex;
    return out;
}

std::vector<uint8_t> bytes_of(const std::string& hex) {
    std::vector<uint8_t> out(hex.size() / 2);
    EXPECT_TRUE(from_hex(hex, out));
    return out;
}

// The eight leaf inputs and the roots of the trees of their first 1..8 leaves.
const std::vector<std::string> leaf_inputs = {"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                              "606162636465666768696a6b6c6d6e6f"};
const std::vector<std::string> roots = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4", "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c", "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};

std::vector<Hash> vector_leaves(Sha256& sha) {
    std::vector<Hash> leaves;
    for (const auto& input : leaf_inputs) leaves.push_back(sha.hash(0x00, bytes_of(input)));
    return leaves;
}

TEST(Merkle, EmptyTreeRootIsSha256OfNothing) {
    Sha256 sha;
    EXPECT_EQ(to_hex(merkle_root(sha, {})), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Merkle, RootsMatchRfc6962Vectors) {
    Sha256 sha;
    const auto leaves = vector_leaves(sha);
    CompactRange range;
    for (size_t n = 1; n <= leaves.size(); ++n) {
        EXPECT_EQ(to_hex(merkle_root(sha, Hashes(leaves).first(n))), roots[n - 1]) << n;
        range.append(sha, leaves[n - 1]);
        EXPECT_EQ(to_hex(range.root(sha)), roots[n - 1]) << n;
    }
}

TEST(Merkle, InclusionProofsMatchVectors) {
    Sha256 sha;
    const auto leaves = vector_leaves(sha);
    struct Case {
        uint64_t index, size;
        std::vector<std::string> path;
    };
    const std::vector<Case> cases = {
        {0, 1, {}},
        {0, 8, {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
        {5, 8, {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
        {2, 3, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
        {1, 5, {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
    };
    for (const auto& c : cases) {
        const auto proof = inclusion_proof(sha, Hashes(leaves).first(c.size), c.index);
        std::vector<std::string> got;
        for (const auto& p : proof) got.push_back(to_hex(p));
        EXPECT_EQ(got, c.path) << c.index << "/" << c.size;
        EXPECT_TRUE(verify_inclusion(sha, c.index, c.size, leaves[c.index], proof, h(roots[c.size - 1])));
        // A wrong index, size or leaf must not verify.
        EXPECT_FALSE(verify_inclusion(sha, c.index + 1, c.size, leaves[c.index], proof, h(roots[c.size - 1])));
        EXPECT_FALSE(verify_inclusion(sha, c.index, c.size * 2, leaves[c.index], proof, h(roots[c.size - 1])));
        EXPECT_FALSE(verify_inclusion(sha, c.index, c.size, leaves[(c.index + 1) % 8], proof, h(roots[c.size - 1])));
    }
}

TEST(Merkle, ConsistencyProofsMatchVectors) {
    Sha256 sha;
    const auto leaves = vector_leaves(sha);
    struct Case {
        uint64_t old_size, new_size;
        std::vector<std::string> path;
    };
    const std::vector<Case> cases = {
        {1, 1, {}},
        {1, 8, {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
        {6, 8, {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
        {2, 5, {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
        {6, 7, {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a", "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    };
    for (const auto& c : cases) {
        const auto proof = consistency_proof(sha, Hashes(leaves).first(c.new_size), c.old_size);
        std::vector<std::string> got;
        for (const auto& p : proof) got.push_back(to_hex(p));
        EXPECT_EQ(got, c.path) << c.old_size << "->" << c.new_size;
        const Hash old_root = h(roots[c.old_size - 1]);
        const Hash new_root = h(roots[c.new_size - 1]);
        EXPECT_TRUE(verify_consistency(sha, c.old_size, c.new_size, old_root, new_root, proof));
        if (!proof.empty()) {
            EXPECT_FALSE(verify_consistency(sha, c.old_size, c.new_size, new_root, old_root, proof));
            auto broken = proof;
            broken[0][0] ^= 0x10;
            EXPECT_FALSE(verify_consistency(sha, c.old_size, c.new_size, old_root, new_root, broken));
            EXPECT_FALSE(verify_consistency(sha, c.old_size, c.new_size, old_root, new_root, {}));
        }
    }
}

TEST(Merkle, EveryProofOfSmallTreesVerifies) {
    Sha256 sha;
    std::vector<Hash> leaves;
    for (int i = 0; i < 33; ++i) leaves.push_back(sha.hash(0x00, as_bytes(std::to_string(i))));
    CompactRange range;
    for (uint64_t n = 1; n <= leaves.size(); ++n) {
        const Hashes tree = Hashes(leaves).first(n);
        const Hash root = merkle_root(sha, tree);
        range.append(sha, leaves[n - 1]);
        ASSERT_EQ(range.root(sha), root);
        for (uint64_t i = 0; i < n; ++i) ASSERT_TRUE(verify_inclusion(sha, i, n, leaves[i], inclusion_proof(sha, tree, i), root));
        for (uint64_t m = 1; m <= n; ++m)
            ASSERT_TRUE(verify_consistency(sha, m, n, merkle_root(sha, tree.first(m)), root, consistency_proof(sha, tree, m))) << m << "->" << n;
    }
}

// A compact range fed whole aligned subtrees (as the writer's sealing helpers hash them) holds the state
// that leaf by leaf gives, and complete_subtree_root is merkle_root of a power-of-two run of leaves.
TEST(Merkle, AppendingSubtreesMatchesAppendingLeaves) {
    Sha256 sha;
    std::vector<Hash> leaves(1000);
    for (size_t i = 0; i < leaves.size(); ++i) leaves[i] = sha.hash(0x00, std::vector<uint8_t>{static_cast<uint8_t>(i), static_cast<uint8_t>(i >> 8)});
    for (const size_t width : {1u, 2u, 4u, 16u, 64u}) {
        for (size_t at = 0; at + width <= leaves.size(); at += width)
            EXPECT_EQ(complete_subtree_root(sha, Hashes(leaves).subspan(at, width)), merkle_root(sha, Hashes(leaves).subspan(at, width)));
    }
    for (const size_t lead : {0u, 1u, 37u, 63u}) {
        CompactRange one_by_one, by_subtrees;
        size_t i = 0;
        for (; i < lead; ++i) by_subtrees.append(sha, leaves[i]);
        for (; i + 64 <= leaves.size(); i += 64) {
            if (lead % 64 != 0) break;  // only aligned runs go in whole
            by_subtrees.append_subtree(sha, complete_subtree_root(sha, Hashes(leaves).subspan(i, 64)), 6);
        }
        for (; i < leaves.size(); ++i) by_subtrees.append(sha, leaves[i]);
        for (const Hash& leaf : leaves) one_by_one.append(sha, leaf);
        EXPECT_EQ(by_subtrees.size(), one_by_one.size());
        EXPECT_EQ(by_subtrees.root(sha), one_by_one.root(sha)) << lead;
        EXPECT_EQ(one_by_one.root(sha), merkle_root(sha, leaves));
    }
    CompactRange off;
    off.append(sha, leaves[0]);
    EXPECT_THROW(off.append_subtree(sha, leaves[1], 1), std::exception);  // size 1 is not a multiple of 2
}

TEST(Merkle, ParallelRootMatchesTheRecursiveOne) {
    Sha256 sha;
    std::vector<Hash> leaves;
    for (uint32_t i = 0; i < 9 * ChunkRoots::chunk + 77; ++i) leaves.push_back(sha.hash(0x00, as_bytes(std::to_string(i))));
    // Sizes around the chunk boundaries and powers of two, with no chunk known, some, and all.
    ChunkRoots some;
    some.roots.resize(leaves.size() / ChunkRoots::chunk);
    some.known.resize(some.roots.size());
    for (size_t c = 0; c < some.roots.size(); c += 2) some.offer(sha, leaves, c * ChunkRoots::chunk, (c + 1) * ChunkRoots::chunk);
    some.offer(sha, leaves, 5, 5 + ChunkRoots::chunk);  // not aligned: ignored
    ChunkRoots all = some;
    for (size_t c = 1; c < all.roots.size(); c += 2) all.offer(sha, leaves, c * ChunkRoots::chunk, (c + 1) * ChunkRoots::chunk);
    for (const size_t n : {size_t{1}, size_t{1023}, size_t{2048}, size_t{2049}, size_t{4096}, size_t{4097}, size_t{5000},
                           size_t{8192}, size_t{8193}, size_t{9 * 1024}, leaves.size()}) {
        const Hashes prefix = Hashes(leaves).first(n);
        const Hash expected = merkle_root(sha, prefix);
        for (const size_t threads : {size_t{1}, size_t{3}}) {
            WorkerPool pool(threads);
            EXPECT_EQ(merkle_root_parallel(sha, prefix, pool), expected) << n;
            EXPECT_EQ(merkle_root_parallel(sha, prefix, pool, &some), expected) << n;
            EXPECT_EQ(merkle_root_parallel(sha, prefix, pool, &all), expected) << n;
        }
    }
}

}  // namespace
}  // namespace grey::audit
