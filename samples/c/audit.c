/* Keeps a signed audit log through the C API: generates keys, appends three records, writes a
 * checkpoint, then verifies the log and the checkpoint with the verifier key and prints the verdict.
 *
 *   cc -std=c11 -Iinclude samples/c/audit.c -Lbuild/default/lib -Wl,-rpath,$PWD/build/default/lib -lgrey
 *   ./a.out [DIR]
 *
 * The files (audit.key, audit.key.writer, audit.log, checkpoint-1) go to DIR, which must not hold them
 * yet (keys are never overwritten); without DIR, to a temporary directory removed at the end.
 */
#define _POSIX_C_SOURCE 200809L
#include <grey.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(const char* what, grey_status status) {
    fprintf(stderr, "audit: %s failed: %s (%s)\n", what, grey_last_error(), grey_status_string(status));
    return 1;
}

static void hex(const uint8_t* bytes, size_t n, char* out) {
    for (size_t i = 0; i < n; ++i) sprintf(out + 2 * i, "%02x", bytes[i]);
}

static const char* const kFiles[] = {"audit.key", "audit.key.writer", "audit.log", "checkpoint-1"};

static int run(const char* dir) {
    char verifier[4096], writer[4096], log_path[4096], checkpoint[4096];
    snprintf(verifier, sizeof verifier, "%s/%s", dir, kFiles[0]);
    snprintf(writer, sizeof writer, "%s/%s", dir, kFiles[1]);
    snprintf(log_path, sizeof log_path, "%s/%s", dir, kFiles[2]);
    snprintf(checkpoint, sizeof checkpoint, "%s/%s", dir, kFiles[3]);

    grey_audit_keygen_options keygen = GREY_AUDIT_KEYGEN_OPTIONS_INIT;
    keygen.verifier_key_path = verifier;
    keygen.writer_key_path = writer;
    grey_status status = grey_audit_keygen(&keygen);
    if (status != GREY_OK) return fail("grey_audit_keygen", status);

    grey_audit_options options = GREY_AUDIT_OPTIONS_INIT;
    options.log_path = log_path;
    options.key_path = writer;
    grey_audit_log* log = NULL;
    status = grey_audit_log_create(&options, &log);
    if (status != GREY_OK) return fail("grey_audit_log_create", status);
    for (int step = 0; step < 3; ++step) {
        char payload[64];
        snprintf(payload, sizeof payload, "{\"step\":%d,\"language\":\"c\"}", step);
        uint64_t sequence = 0;
        status = grey_audit_append(log, "sample.step", payload, &sequence);
        if (status != GREY_OK) break;
        printf("appended record %" PRIu64 "\n", sequence);
    }
    if (status == GREY_OK) status = grey_audit_checkpoint(log, checkpoint);
    grey_audit_log_destroy(log);
    if (status != GREY_OK) return fail("appending", status);

    const char* checkpoints[] = {checkpoint};
    grey_audit_verify_options verify = GREY_AUDIT_VERIFY_OPTIONS_INIT;
    verify.log_path = log_path;
    verify.key_path = verifier;
    verify.checkpoint_paths = checkpoints;
    verify.checkpoint_count = 1;
    grey_audit_report report;
    memset(&report, 0, sizeof report);
    report.struct_size = sizeof report;
    status = grey_audit_verify(&verify, &report);
    if (status != GREY_OK) return fail("grey_audit_verify", status);
    char head[65], root[65], log_id[33];
    hex(report.head_hash, 32, head);
    hex(report.root_hash, 32, root);
    hex(report.log_id, 16, log_id);
    printf("verify: cause %s, records %" PRIu64 ", head %s, root %s, log_id %s\n", grey_audit_cause_name(report.cause),
           report.records, head, root, log_id);
    return report.cause == GREY_AUDIT_INTACT ? 0 : 1;
}

int main(int argc, char** argv) {
    if (argc > 1) {
        mkdir(argv[1], 0700);  /* it may exist already */
        return run(argv[1]);
    }
    const char* tmp = getenv("TMPDIR");
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/grey-audit-sample-XXXXXX", tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("audit: mkdtemp");
        return 1;
    }
    const int rc = run(dir);
    for (size_t i = 0; i < sizeof kFiles / sizeof kFiles[0]; ++i) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, kFiles[i]);
        unlink(path);
    }
    rmdir(dir);
    return rc;
}
