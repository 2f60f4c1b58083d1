/*
 * fuzz_bundle_tar.c: a whole bundle file as `airlock verify` (ingest in a dry
 * run) reads it: the tar stream (plain, gzip or zstd) entry by entry, each
 * header judged, checksums.txt and the signatures, index.json and the
 * manifest of a native bundle, the final checks. The store is a fresh one in
 * a temporary directory that trusts the fuzz test key
 * (tests/fuzz/fuzz-test.pub), so the seeds, bundles signed by that key, pass
 * every check and mutations of them reach the late ones. A dry run writes
 * nothing, so each input meets the same store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundle/bundle.h"
#include "fuzzutil.h"
#include "trust/trust.h"

/* tests/fuzz/fuzz-test.pub */
static const char PUB[] = "untrusted comment: minisign public key F3C2445DF2EE0408\n"
                          "RWQIBO7yXUTC82vC4BXqZpKZXVxf8C4Fx/uFD8UdTpkhRKTFhDtJyeNM\n";

static struct al_repo *repo;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_quiet();
    struct al_err err = AL_ERR_INIT;
    char home[256];
    snprintf(home, sizeof home, "%s/home", fz_tmpdir());
    if (al_repo_open(home, true, &repo, &err) != AL_OK ||
        al_trust_add(repo, "fuzz", AL_TRUST_MINISIGN, PUB, sizeof PUB - 1, NULL, 0, NULL, &err) != AL_OK) {
        fprintf(stderr, "fuzz_bundle_tar: cannot set up the store: %s\n", err.msg);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = fz_memfd("bundle.tar", data, size);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    struct al_bundle_opts o = {
        .as = "fuzz:seed",
        .dry_run = true,
        .max_entry = 16u << 20,
        .max_total = 64u << 20,
    };
    struct al_bundle_report rep;
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = al_bundle_ingest(repo, path, &o, &rep, &err);
    if (rc != AL_OK && err.msg[0] == '\0')
        abort(); /* every refusal says why */
    if (rc == AL_OK && (!rep.accepted || rep.good_signers < 1))
        abort(); /* accepted only when a trusted key signed */
    al_bundle_report_release(&rep);
    close(fd);
    return 0;
}
