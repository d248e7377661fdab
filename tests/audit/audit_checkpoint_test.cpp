// Every byte of a checkpoint is vouched for: an edited hmac line (or any other line) is refused both by
// whoever holds only the Ed25519 public key and by whoever holds the verifier key.
#include "audit/checkpoint.hpp"
#include "audit_test_util.hpp"

#include <openssl/pem.h>

namespace grey::audit::test {
namespace {

class CheckpointCoverage : public AuditTest {
protected:
    void SetUp() override {
        AuditTest::SetUp();
        signing_key = dir + "/ed.key";
        public_key = dir + "/ed.pub";
        use_signing_keys(signing_key, public_key);
        grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
        o.signing_key_path = signing_key.c_str();
        o.epoch_records = 2;  // the checkpoint's HMAC key is a later epoch's
        grey_audit_log* log = open_log(o);
        ASSERT_NE(log, nullptr);
        for (int i = 0; i < 5; ++i) ASSERT_EQ(grey_audit_append(log, "t", "{}", nullptr), GREY_OK);
        checkpoint = dir + "/c5";
        ASSERT_EQ(grey_audit_checkpoint(log, checkpoint.c_str()), GREY_OK) << grey_last_error();
        grey_audit_log_destroy(log);
        proof = dir + "/inclusion";
        size_t length = 0;
        std::string text(4096, '\0');
        ASSERT_EQ(grey_audit_prove_inclusion(log_path.c_str(), 2, 5, text.data(), text.size(), &length), GREY_OK);
        write_all_bytes(proof, {text.begin(), text.begin() + static_cast<long>(length)});
    }

    std::string text_of(const std::string& path) {
        const auto bytes = read_all(path);
        return {bytes.begin(), bytes.end()};
    }
    // `line` ("hmac", "root", ...) with its last hex digit changed: still canonical, so only the
    // signature or the HMAC can tell.
    std::string edited(const std::string& line) {
        std::string text = text_of(checkpoint);
        const size_t start = text.find(line + " ");
        const size_t end = text.find('\n', start);
        char& digit = text[end - 1];
        digit = digit == '0' ? '1' : '0';
        const std::string path = dir + "/edited-" + line;
        write_all_bytes(path, {text.begin(), text.end()});
        return path;
    }

    std::string signing_key, public_key, checkpoint, proof;
};

TEST_F(CheckpointCoverage, SignatureCoversTheHmacLine) {
    ASSERT_EQ(text_of(checkpoint).substr(0, 25), "grey-audit-checkpoint v2\n");
    ASSERT_EQ(grey_audit_check_proof(proof.c_str(), checkpoint.c_str(), nullptr, public_key.c_str()), GREY_OK) << grey_last_error();
    ASSERT_EQ(verify({checkpoint}, "", public_key.c_str()).cause, GREY_AUDIT_INTACT);

    const std::string hmac_edited = edited("hmac");
    // Public key only: the signature no longer holds.
    EXPECT_EQ(grey_audit_check_proof(proof.c_str(), hmac_edited.c_str(), nullptr, public_key.c_str()), GREY_ERROR_CORRUPT);
    EXPECT_NE(std::string(grey_last_error()).find("fails its Ed25519 signature check"), std::string::npos) << grey_last_error();
    // Verifier key, with and without the public key: the HMAC (and the signature) no longer hold.
    for (const char* key : {static_cast<const char*>(nullptr), public_key.c_str()}) {
        const auto r = verify({hmac_edited}, "", key);
        EXPECT_EQ(r.cause, GREY_AUDIT_MODIFIED) << r.detail;
        EXPECT_EQ(r.bad_checkpoint, 0u);
    }
    // The other lines were covered before and still are.
    for (const char* line : {"root", "size", "time", "epoch", "log"}) {
        const std::string path = edited(line);
        EXPECT_NE(grey_audit_check_proof(proof.c_str(), path.c_str(), nullptr, public_key.c_str()), GREY_OK) << line;
        EXPECT_NE(verify({path}, "", public_key.c_str()).cause, GREY_AUDIT_INTACT) << line;
    }
}

TEST_F(CheckpointCoverage, VersionOneCheckpointsNeedTheVerifierKey) {
    // A version 1 checkpoint, as libgrey 0.1 wrote it: the signature covers the lines before "hmac".
    std::string why;
    Checkpoint c = *parse_checkpoint(text_of(checkpoint), why);
    c.version = 1;
    const KeyFile writer = read_key_file(writer_key);
    c.hmac = HmacSha256(checkpoint_key(writer.key)).mac(c.body());
    PkeyPtr signer = ed25519_read_private(signing_key);
    c.ed25519 = ed25519_sign(signer.get(), as_bytes(c.body()));
    const std::string v1 = dir + "/c5-v1";
    const std::string text = c.text();
    ASSERT_EQ(text.substr(0, 25), "grey-audit-checkpoint v1\n");
    write_all_bytes(v1, {text.begin(), text.end()});

    // With the verifier key every byte is checked (the HMAC covers what the signature leaves out).
    EXPECT_EQ(verify({v1}, "", public_key.c_str()).cause, GREY_AUDIT_INTACT) << verify({v1}, "", public_key.c_str()).detail;
    // With the public key alone its hmac line is vouched for by nothing, so it is refused, saying why.
    EXPECT_EQ(grey_audit_check_proof(proof.c_str(), v1.c_str(), nullptr, public_key.c_str()), GREY_ERROR_CORRUPT);
    EXPECT_NE(std::string(grey_last_error()).find("version 1"), std::string::npos) << grey_last_error();
    // Its structure still reads, for building proofs.
    grey_audit_checkpoint_info info{};
    info.struct_size = sizeof info;
    EXPECT_EQ(grey_audit_checkpoint_read(v1.c_str(), &info), GREY_OK) << grey_last_error();
    EXPECT_EQ(info.size, 5u);
}

}  // namespace
}  // namespace grey::audit::test
