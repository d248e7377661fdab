/* Writes a version 1 audit log with main's libgrey (before format version 2), for tests/data/audit-v1. */
#include "grey.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(x) do { if ((x) != GREY_OK) { fprintf(stderr, "%s: %s\n", #x, grey_last_error()); exit(1); } } while (0)

static void append_n(grey_audit_log* log, int from, int to) {
    char payload[64];
    for (int i = from; i < to; ++i) {
        snprintf(payload, sizeof payload, "{\"i\":%d}", i);
        CHECK(grey_audit_append(log, "fixture", payload, NULL));
    }
}

static void save(const char* path, const char* text, size_t n) {
    FILE* f = fopen(path, "wb");
    fwrite(text, 1, n, f);
    fclose(f);
}

int main(int argc, char** argv) {
    const char* d = argv[1];
    char vk[512], wk[512], lp[512], c6[512], c10[512], pdir[512], inc[512], con[512];
    snprintf(vk, sizeof vk, "%s/verifier.key", d);
    snprintf(wk, sizeof wk, "%s/writer.key", d);
    snprintf(lp, sizeof lp, "%s/audit.log", d);
    snprintf(c6, sizeof c6, "%s/c6.checkpoint", d);
    snprintf(c10, sizeof c10, "%s/c10.checkpoint", d);
    snprintf(pdir, sizeof pdir, "%s/proofs", d);
    snprintf(inc, sizeof inc, "%s/inclusion-4-of-10.proof", d);
    snprintf(con, sizeof con, "%s/consistency-6-to-10.proof", d);
    grey_audit_keygen_options k = GREY_AUDIT_KEYGEN_OPTIONS_INIT;
    k.verifier_key_path = vk;
    k.writer_key_path = wk;
    CHECK(grey_audit_keygen(&k));
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.log_path = lp;
    o.key_path = wk;
    o.epoch_records = 3;
    grey_audit_log* log = NULL;
    CHECK(grey_audit_log_create(&o, &log));
    append_n(log, 0, 5);
    char id[32];
    size_t n = 0;
    CHECK(grey_proof_write(log, pdir, "{\"format\":\"grey-proof v1\",\"results\":{\"fixture\":true}}", id, sizeof id, &n));
    CHECK(grey_audit_checkpoint(log, c6));
    append_n(log, 5, 9);
    CHECK(grey_audit_checkpoint(log, c10));
    CHECK(grey_audit_flush(log));
    grey_audit_log_destroy(log);
    static char text[65536];
    CHECK(grey_audit_prove_inclusion(lp, 4, 10, text, sizeof text, &n));
    save(inc, text, n);
    CHECK(grey_audit_prove_consistency(lp, 6, 10, text, sizeof text, &n));
    save(con, text, n);
    printf("proof artifact id %s\n", id);
    return 0;
}
