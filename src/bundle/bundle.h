/*
 * bundle.h: what crosses the air gap. Packing a model version into a signed
 * bundle on the build host, and verifying and ingesting bundles inside.
 *
 * A native bundle is a tar (optionally zstd-compressed) holding, in this
 * order: checksums.txt (sha256sum format over every other file but the
 * signatures), its detached signatures (checksums.txt.minisig, further
 * minisign signatures as checksums.txt.<n>.minisig, and/or checksums.txt.asc),
 * then an OCI image layout: oci-layout, index.json, the manifest blob, the
 * config blob, the layer blobs (blobs/sha256/<hex>). The manifest names the
 * model (org.opencontainers.image.title, .version) and carries a monotonic
 * sequence number, creation and expiry dates and the previous version's digest
 * (io.airlock.*), so the signature over checksums.txt covers them all. Every
 * claim can be checked with sha256sum -c, minisign -V and gpg --verify after
 * a plain tar xf. Packing is deterministic: fixed mtime (the creation date),
 * uid, gid, owner names and modes, a fixed entry order, deterministic
 * signatures; the same inputs and key give the same bytes.
 *
 * A plain bundle is what an operator makes by hand (sha256sum, gpg
 * --detach-sign, tar czf): files, checksums.txt and its signature in any
 * order; the name and tag come from the caller (--as).
 *
 * Ingest reads the archive once, entry by entry (plain tar, gzip, zstd,
 * detected from the content), never extracting into the file system: each
 * file is streamed into an uncommitted blob writer in the store's tmp/, hashed
 * while written. Nothing becomes visible until the signatures, the trust
 * policy (src/trust), every digest and size, expiry and sequence are proven;
 * then the blobs are committed and the version recorded in one step
 * (al_repo_commit_version). Refused: links, devices, FIFOs, unexpected
 * directories, absolute or ".." paths, duplicates, entries not listed in
 * checksums.txt, listed entries missing, entries over their listed size or
 * over the caps, bad or untrusted signatures, revoked keys, too few
 * signatures, expired manifests, replays. Every refusal leaves the store and
 * index as they were and is recorded as an "ingest-refused" event; every
 * ingest records its provenance in the "ingest" event.
 */
#ifndef AL_BUNDLE_BUNDLE_H
#define AL_BUNDLE_BUNDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "delta/delta.h"
#include "index/index.h"
#include "policy/policy.h"
#include "registry/registry.h"
#include "repo/repo.h"
#include "sign/minisign.h"

#define AL_BUNDLE_MAX_SIGS      8           /* signature files in one bundle */
#define AL_BUNDLE_MAX_ENTRIES   (AL_LIMIT_FILES_PER_MODEL + 16u)
#define AL_BUNDLE_CHECKSUMS_MAX (256u << 10) /* checksums.txt */
#define AL_BUNDLE_ENTRY_NAME    1024u       /* an entry's name as found in the archive */
#define AL_BUNDLE_KEEP_MAX      (8u << 20)  /* small entries kept in memory (manifests) */

/* ---- pack ---- */
struct al_bundle_pack_opts {
    const char *ref;                     /* a stored version (needs a repo), or NULL */
    const char *name, *tag;              /* for files: the version's name and tag */
    const char *const *files;            /* local files, when ref is NULL */
    size_t n_files;
    const char *prompts_dir, *bench_dir; /* files added as prompts/<f>, bench/<f> */
    const char *card_path;               /* a model card JSON (files only) */
    struct al_mkey_sec *const *keys;     /* minisign secret keys to sign with (>= 1) */
    size_t n_keys;
    int64_t seq;                         /* 0: the creation time in seconds */
    const char *created;                 /* ISO 8601; NULL: SOURCE_DATE_EPOCH, else newest input mtime */
    const char *expires;                 /* ISO 8601 date or time, or NULL */
    bool zstd;
    bool progress;
    bool allow_dangerous;                /* pack a file the scan calls dangerous (a warning on stderr) */
    const char *ack_license;             /* --ack-license ID: written into the signed manifest, or NULL */
    const char *delta_base;              /* a stored version: pack ref as a delta from it (needs ref) */
    bool delta_dry_run;                  /* with delta_base: plan only, fill res->delta, write nothing */
    bool meta_only;                      /* push: only checksums.txt, signatures, oci-layout, index.json,
                                            manifest and config are written (not a bundle: the layers stay
                                            in the store, and go to the registry from there) */
};

/* How one file of a delta travels (docs/internals/delta.md). */
struct al_bundle_delta_file {
    char path[AL_LIMIT_FILE_NAME + 1];
    char via[8];                  /* "base" (the base has it), "patch", "whole" (no counterpart) */
    char base_path[AL_LIMIT_FILE_NAME + 1]; /* the base file a patch starts from, "" otherwise */
    uint64_t size;                /* the result file's size */
    struct al_delta_stats st;     /* of a patch: tensors and bytes (patch_bytes 0 in a dry run) */
};

struct al_bundle_packed {
    char manifest[AL_DIGEST_SIZE];
    char bundle[AL_DIGEST_SIZE]; /* SHA-256 of the bundle file */
    uint64_t bytes;
    int64_t seq;
    char created[40];
    size_t n_files;
    char scan[16];               /* the worst scan verdict of the files: "ok", "warn", "dangerous" */
    struct al_license_decision license; /* the build host's license check (al_policy_pack_decide) */
    /* A delta (delta_base): the base's manifest and ref, and each file's route (malloc'd, n_files). */
    char delta_base[AL_DIGEST_SIZE];
    char delta_base_ref[AL_LIMIT_NAME + AL_LIMIT_TAG + 2];
    struct al_bundle_delta_file *delta;
};
void al_bundle_packed_release(struct al_bundle_packed *res);

/* Writes the bundle to out_path (atomically: a temporary name, then rename).
 * r may be NULL when packing files. Every file is scanned (scan.h) before
 * anything is written: a dangerous one refuses the pack (AL_ERR_DENIED,
 * nothing written) unless o->allow_dangerous. */
enum al_rc al_bundle_pack(struct al_repo *r, const struct al_bundle_pack_opts *o, const char *out_path,
                          struct al_bundle_packed *res, struct al_err *err);

/* ---- verify and ingest ---- */
struct al_bundle_opts {
    const char *as;        /* NAME[:TAG]: required for plain bundles, renames native ones */
    bool allow_expired;    /* accept an expired manifest (recorded) */
    bool allow_downgrade;  /* accept a sequence not above the highest seen (recorded) */
    bool allow_dangerous;  /* accept a file the scan calls dangerous (recorded) */
    bool allow_unsigned;   /* pull: accept content without signatures (recorded as "unsigned") */
    const char *ack_license; /* --ack-license ID: the operator acknowledges the license (recorded), or NULL */
    bool dry_run;          /* verify only: nothing is written, no event */
    bool no_activate;
    bool progress;
    uint64_t max_entry;    /* cap on one entry; 0: the store's free space less a margin */
    uint64_t max_total;    /* cap on all entries together; 0: the same default */
};

struct al_bundle_signer {
    char kind[12];          /* "minisign", "gpg" */
    char id[72];            /* minisign key id or OpenPGP fingerprint */
    char key_name[72];      /* the trusted key's name, "" when not trusted */
    char status[64];        /* "good", "untrusted key", "revoked key", "bad signature", ... */
    char file[64];          /* the signature file */
    bool good;              /* verified by a trusted, non-revoked key */
};

struct al_bundle_file {
    char name[AL_LIMIT_FILE_NAME + 1]; /* entry name in the archive */
    char digest[AL_DIGEST_SIZE];
    uint64_t size;
    char status[32];                   /* "ok", "signature", "checksums", ... */
};

/* What was found; filled as far as the check got, on success or failure.
 * Release with al_bundle_report_release. */
struct al_bundle_report {
    char bundle[AL_DIGEST_SIZE];
    uint64_t bundle_bytes;
    bool native;
    char name[AL_LIMIT_NAME + 1], tag[AL_LIMIT_TAG + 1];
    char manifest[AL_DIGEST_SIZE];
    int64_t seq, max_seq;
    char created[40], expires[40], previous[AL_DIGEST_SIZE];
    int threshold, good_signers;
    struct al_bundle_signer signers[AL_BUNDLE_MAX_SIGS * 4];
    size_t n_signers;
    struct al_bundle_file *files;
    size_t n_files;
    char checks[512];      /* comma-separated names of what passed */
    char overrides[64];    /* "expired", "downgrade" */
    bool accepted;
    struct al_version version; /* after ingest */
    bool existed;
    /* existed, and nothing was changed: a native bundle whose signed manifest
     * is already a version here (ingested before); no tag or active pointer
     * moves, so an old bundle sent again cannot bring its version back. */
    bool untouched;
    /* A delta bundle (it carries delta.json): the base it needs, whether this
     * store has it (as base_found, a version of that manifest or of the same
     * files), and how many files were rebuilt from patches or taken from the base. */
    bool delta;
    char delta_base[AL_DIGEST_SIZE];
    char delta_base_ref[AL_LIMIT_NAME + AL_LIMIT_TAG + 2];
    char delta_base_found[AL_DIGEST_SIZE];
    size_t delta_patched, delta_from_base;
    uint64_t delta_patch_bytes;
};
void al_bundle_report_release(struct al_bundle_report *rep);

/* Verifies (o->dry_run) or ingests the bundle at path into r's store, as the
 * header describes. AL_ERR_INVALID / LIMIT for malformed or over-cap archives,
 * AL_ERR_VERIFY for digests and signatures, AL_ERR_DENIED for policy. */
enum al_rc al_bundle_ingest(struct al_repo *r, const char *path, const struct al_bundle_opts *o,
                            struct al_bundle_report *rep, struct al_err *err);

/* ---- registries (push.c, pull.c; docs/internals/registry.md) ---- */

/* The artifactType of the referrer that carries a version's checksums.txt,
 * its signatures, oci-layout and index.json; its subject is the model manifest. */
#define AL_MT_AIRLOCK_SIGS "application/vnd.airlock.signatures.v1+json"

struct al_bundle_pushed {
    char manifest[AL_DIGEST_SIZE];  /* the model manifest pushed */
    char referrer[AL_DIGEST_SIZE];  /* the signature referrer, "" when unsigned */
    int64_t seq;
    bool signed_;
    bool kept;                      /* the signatures were those the version arrived with (no keys given) */
    bool referrers_api;             /* the registry lists referrers itself (else the sha256-<hex> tag) */
    size_t blobs_sent, blobs_skipped;
    uint64_t bytes_sent;
    char cred_source[AL_LIMIT_PATH];
};

/* Pushes the stored version ref to dst (HOST[:PORT]/REPO[:TAG]). With keys in
 * po (po->n_keys > 0) the version is packed as `export` packs it (scan and
 * license checks included) and its signatures go along as a referrer; without,
 * the stored manifest goes as it is, with the signatures the version arrived
 * with (ingest, pull) as their referrers, unsigned when it arrived unsigned.
 * po's ref and zstd are ignored. */
enum al_rc al_bundle_push(struct al_repo *r, const char *ref, const char *dst, const struct al_reg_opts *ro,
                          const struct al_bundle_pack_opts *po, struct al_bundle_pushed *res, struct al_err *err);

struct al_bundle_pulled {
    char manifest[AL_DIGEST_SIZE];     /* the registry's manifest */
    char media_type[AL_REG_MT_MAX + 1];
    bool signed_;                      /* a signature referrer was found */
    bool referrers_api;
};

/* Pulls src (HOST[:PORT]/REPO[:TAG|@sha256:HEX]) into r through the checks
 * of al_bundle_ingest (o: as, allow_*, ack_license, no_activate, progress,
 * caps; dry_run is refused). rep as for ingest; a refusal is one event. */
enum al_rc al_bundle_pull(struct al_repo *r, const char *src, const struct al_reg_opts *ro,
                          const struct al_bundle_opts *o, struct al_bundle_pulled *res, struct al_bundle_report *rep,
                          struct al_err *err);

/* ---- imports from other tools' stores (import*.c; docs/internals/import.md) ----
 * An import is a local operator action like `airlock add`: unsigned by
 * nature, no trust policy; every blob is re-hashed against its digest and
 * size while it is copied into the store, then the checks of an ingest run
 * (weights, scan, license; o: as, allow_dangerous, ack_license, no_activate,
 * progress, caps; dry_run is refused) and the one commit, an "import" event
 * whose "import" object says where it came from. A refusal after the store
 * is locked is one "import-refused" (or "scan-refused", "license-refused")
 * event; blobs and index.json stay as they were. rep as for ingest. */
struct al_bundle_imported {
    char source[AL_LIMIT_PATH + 256];  /* "ollama://HOST/NS/NAME:TAG", "oci:DIR:REF", "oci-archive:FILE:REF" */
    char manifest[AL_DIGEST_SIZE];     /* the source's manifest (SHA-256 of its bytes) */
    char media_types[1024];            /* the layers' media types, comma-separated */
};

/* An Ollama models directory (dir: manifests/, blobs/) and a model in it,
 * NAME[:TAG], NAMESPACE/NAME[:TAG] or HOST/NAMESPACE/NAME[:TAG]. o->as
 * defaults to the name as Ollama shows it. */
enum al_rc al_bundle_import_ollama(struct al_repo *r, const char *dir, const char *name,
                                   const struct al_bundle_opts *o, struct al_bundle_imported *res,
                                   struct al_bundle_report *rep, struct al_err *err);

/* An OCI image layout directory or an oci-archive tar (src: PATH[:REF]; a
 * PATH that exists wins over a ':' in it). The manifest is the one whose
 * org.opencontainers.image.ref.name is REF, or the only one; several and no
 * REF, or a REF not there, is AL_ERR_NOT_FOUND listing the refs. Layers are
 * named as an unsigned pull names them (ModelPack, Docker Model Runner, ORAS
 * GGUF). o->as defaults to REF when it is a valid NAME[:TAG]. */
enum al_rc al_bundle_import_oci(struct al_repo *r, const char *src, const struct al_bundle_opts *o,
                                struct al_bundle_imported *res, struct al_bundle_report *rep, struct al_err *err);

/* ---- the license of a model's files (issue 18; docs/internals/bundle.md) ---- */

/* What a model's files declare: the model card (a file whose base name is
 * README.md, any case) and the first GGUF file (name ending in .gguf) that
 * declares general.license. */
struct al_bundle_license {
    struct al_card_license card;
    char card_file[AL_LIMIT_FILE_NAME + 1]; /* "" when no card */
    char gguf[AL_LICENSE_ID_MAX + 1];       /* as declared, "" when none */
    char gguf_file[AL_LIMIT_FILE_NAME + 1];
};

/* Reads the file at path, named name in the version, into l when it is a
 * card or a GGUF (anything else is ignored). Errors are the card reader's or
 * the GGUF reader's (policy.h), with the file named. */
enum al_rc al_bundle_license_file(const char *path, const char *name, struct al_bundle_license *l,
                                  struct al_err *err);

/* Decides l under p: al_policy_pack_decide when pack, else
 * al_policy_license_decide. ack (NULL or "") counts as an acknowledgement
 * when it normalizes to one of the declared licenses, or is "none" when the
 * files declare none. */
void al_bundle_license_decide(const struct al_policy *p, const struct al_bundle_license *l, bool pack,
                              const char *ack, struct al_license_decision *d);

/* The record of a decision for the event log (malloc'd JSON object text, NULL
 * when out of memory): license, decision, rule, card and gguf as declared,
 * finding when card and GGUF disagree, and ack / acked_by when acknowledged. */
char *al_bundle_license_json(const struct al_bundle_license *l, const struct al_license_decision *d,
                             const char *ack, const char *acked_by);

/* The refusal of a decision that is not allow: AL_ERR_DENIED naming the
 * license, the decision, the rule and what to do next (hint appended). */
enum al_rc al_bundle_license_refuse(const struct al_license_decision *d, const char *op, const char *hint,
                                    struct al_err *err);

/* The view of a stored version that `push --sign` would put in a registry
 * (registry.h), in memory, for `serve --registry`: packed and signed with
 * po's keys exactly as push packs it (scan and license checks included), the
 * signature referrer built as push builds it. Without keys (po NULL or no
 * keys), what push without --sign sends: the stored manifest and the first
 * signatures the version arrived with (referrer "" when it arrived
 * unsigned). out is the caller's (al_reg_view_release). Errors: those of
 * al_bundle_pack, al_repo_resolve and the store's reads. */
enum al_rc al_bundle_view_make(struct al_repo *r, const char *ref, const struct al_bundle_pack_opts *po,
                               struct al_reg_view *out, struct al_err *err);

#endif
