/* add_checks.h: what 'airlock add' checks before a version is added, shared
 * by the commands that add a version they made (quantize, finetune): the
 * scan and license hooks handed to al_repo_add, the refusal event of a
 * refused add, and the source version's other files carried into a derived
 * one. */
#ifndef AL_CLI_ADD_CHECKS_H
#define AL_CLI_ADD_CHECKS_H

#include <stdbool.h>
#include <stddef.h>

#include "bundle/bundle.h"
#include "core/limits.h"
#include "policy/policy.h"
#include "repo/repo.h"
#include "scan/scan.h"

/* The scan of an add's files (repo may not include scan, so the CLI hands
 * these hooks to al_repo_add): every file is scanned after the repo's own
 * checks and before anything is copied; a dangerous one refuses the add
 * unless --allow-dangerous, a warning one when the site's policy says
 * `scan: ok`, and the refused report is kept for the event. */
struct al_cli_add_checks {
    bool allow_dangerous;
    const struct al_policy *policy;
    struct al_scan_report *reports[AL_LIMIT_FILES_PER_MODEL];
    size_t n;
    struct al_scan_report *refused; /* one of reports[], or NULL */
    bool overridden;
    /* The license (docs/internals/bundle.md): read from each file, decided by record. */
    struct al_bundle_license lic;
    const char *ack;       /* --ack-license, or NULL */
    bool enforce;          /* the site has a policy file: a refusal refuses */
    char *license;         /* the decision's record, once decided */
    bool license_refused;
    char format[32];       /* what the files are when none is a GGUF (the config's format) */
};

/* The al_add_check_fn and al_add_record_fn of al_repo_add; ud is a struct
 * al_cli_add_checks (zeroed, policy and enforce set by the caller; its
 * reports and license freed by the caller). */
enum al_rc al_cli_add_check_file(void *ud, const char *path, const char *name, struct al_err *err);
enum al_rc al_cli_add_check_record(void *ud, char **detail, const char **note_kind, char **note_detail,
                                   struct al_err *err);

/* The one "license-refused" or "scan-refused" event of a refused add: the
 * reason and KEY's record (the license decision, or the refused file's scan:
 * verdict, rules, first findings). A failure to record is the user's to see. */
enum al_rc al_cli_add_refusal(struct al_repo *r, const char *ref, const char *kind, const char *key,
                              const char *record, struct al_err *err);

/* After al_repo_add failed with *rc: when these checks refused it (the scan
 * or the license), records that refusal (al_cli_add_refusal, into *rc) and
 * returns true; false when the failure was another's. */
bool al_cli_add_checks_refused(struct al_repo *r, const char *ref, const struct al_cli_add_checks *c,
                               enum al_rc *rc, struct al_err *err);

/* The source version's other files, carried into a version made from it:
 * each file beside the weights (a tokenizer, a README card, a license, a
 * template) read from its blob, checked against its digest (al_repo_read_blob,
 * up to AL_LIMIT_CARRIED_FILE) and written into dir under its name; files
 * in a folder (a bundle's bench/ suite: the source's golden recording) and
 * other GGUFs are left behind. The card of the manifest (AL_ANN_CARD) is
 * written to dir/.card.json, *card set to it. paths[*n...] get the files
 * (malloc'd; the caller unlinks and frees them). */
enum al_rc al_cli_carry_files(struct al_repo *r, const struct al_weights *w, const char *dir, char **paths,
                              size_t *n, char *card, size_t card_size, struct al_err *err);

#endif
