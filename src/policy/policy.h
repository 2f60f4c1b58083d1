/*
 * policy.h: the site's license policy and scan requirement: which model
 * licenses may enter the store, which need an operator's acknowledgement,
 * which are refused, and the highest scan verdict ingest lets in.
 *
 * The policy is a small JSON file, $AIRLOCK_HOME/policy.json, replaced
 * atomically (core/fs.h); a store without one has the default policy:
 * no license rules, `unknown: ack`, `scan: warn`. The module reads and writes
 * the file and decides; it knows nothing of the store: the CLI takes the
 * store's write lock around a change and records the change as an event
 * (docs/internals/policy.md).
 *
 * License identifiers are SPDX identifiers and the names model hubs use for
 * model licenses (llama3.1, gemma, openrail++), compared without case after
 * al_license_normalize. A built-in table (policy.c, documented in
 * docs/internals/policy.md) says for each known license whether it lets a
 * model be redistributed freely, under conditions, or not at all: the build
 * host's check (al_policy_pack_decide) reads it; the site's rules decide what
 * enters (al_policy_license_decide). Guidance, not legal advice.
 */
#ifndef AL_POLICY_POLICY_H
#define AL_POLICY_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

#define AL_LICENSE_ID_MAX       64          /* characters of one license identifier */
#define AL_POLICY_RULES_MAX     256         /* license rules in one policy */
#define AL_POLICY_FILE_MAX      (64u << 10) /* policy.json */
#define AL_POLICY_CARD_MAX      (1u << 20)  /* a model card (README.md) read for its license */
#define AL_POLICY_CARD_LICENSES 8           /* licenses one card may list */
#define AL_POLICY_TEXT_MAX      320         /* a decision's rule or finding text */

/* A license rule, and the policy's answer for a license without one. */
enum al_license_rule { AL_RULE_ALLOW, AL_RULE_ACK, AL_RULE_DENY };

/* What the built-in table says of redistribution. */
enum al_redist { AL_REDIST_FREE, AL_REDIST_CONDITIONS, AL_REDIST_FORBIDDEN, AL_REDIST_UNKNOWN };

/* Scan verdicts as the scan module numbers them. */
enum { AL_POLICY_SCAN_OK = 0, AL_POLICY_SCAN_WARN = 1, AL_POLICY_SCAN_DANGEROUS = 2 };

struct al_policy_license {
    char id[AL_LICENSE_ID_MAX + 1]; /* normalized */
    enum al_license_rule rule;
};

struct al_policy {
    struct al_policy_license *rules; /* sorted by id, ids unique */
    size_t n;
    enum al_license_rule unknown; /* for a license without a rule, or none declared */
    int scan_max;                 /* the highest verdict let in: OK or WARN */
};

/* The default policy (no rules, unknown: ack, scan: warn); nothing to free
 * but al_policy_release is harmless. */
void al_policy_init(struct al_policy *p);
void al_policy_release(struct al_policy *p);

/* $AIRLOCK_HOME/policy.json into out (AL_LIMIT_PATH). */
enum al_rc al_policy_path(const char *home, char *out, size_t size, struct al_err *err);

/* Loads the policy at path into *out (the default when the file does not
 * exist). AL_ERR_CORRUPT for a file that is not a valid policy (bad JSON,
 * an unknown key or value, an identifier that is not normalized, duplicate
 * ids), AL_ERR_LIMIT over AL_POLICY_FILE_MAX or AL_POLICY_RULES_MAX; *out is
 * then untouched. After success *out is the caller's to release. */
enum al_rc al_policy_load(const char *path, struct al_policy *out, struct al_err *err);

/* The policy as its file's text (malloc'd, sorted keys, a final newline). */
enum al_rc al_policy_serialize(const struct al_policy *p, char **out, struct al_err *err);

/* Writes the policy to path atomically (temporary, fsync, rename). */
enum al_rc al_policy_save(const char *path, const struct al_policy *p, struct al_err *err);

/* Sets (adds or replaces) the rule of one license; id is normalized first.
 * AL_ERR_INVALID for an id al_license_normalize refuses, AL_ERR_LIMIT past
 * AL_POLICY_RULES_MAX. */
enum al_rc al_policy_set(struct al_policy *p, const char *id, enum al_license_rule rule, struct al_err *err);
/* Removes the rule of id; AL_ERR_NOT_FOUND when it has none. */
enum al_rc al_policy_unset(struct al_policy *p, const char *id, struct al_err *err);
/* The rule for a normalized id, or NULL. Borrowed from p. */
const struct al_policy_license *al_policy_find(const struct al_policy *p, const char *id);

/* "allow", "ack", "deny" and back (false for anything else). */
const char *al_license_rule_name(enum al_license_rule r);
bool al_license_rule_parse(const char *s, enum al_license_rule *out);
/* "free", "conditions", "forbidden", "unknown". */
const char *al_redist_name(enum al_redist r);
/* "ok", "warn", "dangerous" and back (ok and warn only for parse). */
const char *al_policy_scan_name(int verdict);
bool al_policy_scan_parse(const char *s, int *out);

/* Normalizes a declared license into out (AL_LICENSE_ID_MAX + 1 bytes):
 * surrounding blanks and quotes dropped, lowercase, inner blanks as '-', and
 * a few common spellings mapped to the table's ids ("Apache 2.0" and
 * "apache2" are apache-2.0, "llama-3.1" is llama3.1). AL_ERR_INVALID when
 * the result is empty, longer than AL_LICENSE_ID_MAX, or has a character
 * outside [a-z0-9.+_-]. */
enum al_rc al_license_normalize(const char *in, char *out, struct al_err *err);

/* The built-in table's judgement of a normalized id (AL_REDIST_UNKNOWN when
 * the table does not know it) and, when note is not NULL, a short reason
 * (static). */
enum al_redist al_license_redist(const char *id, const char **note);

/* The table itself, for `airlock policy show --table` and the docs' check:
 * entry i's id (NULL past the end). */
const char *al_license_table_id(size_t i);

/* The licenses a model card declares. */
struct al_card_license {
    char ids[AL_POLICY_CARD_LICENSES][AL_LICENSE_ID_MAX + 1]; /* normalized */
    size_t n;         /* 0: the card declares none (or has no front matter) */
    bool front_matter; /* the card has YAML front matter */
};

/* Reads the license of a Hugging Face style model card: Markdown that opens
 * with YAML front matter ("---" line ... "---" or "..." line), whose top-level
 * `license:` is a scalar, a flow list [a, b] or a block list of "- a" lines.
 * `license: other` with a `license_name:` gives the name instead. Only the
 * front matter is read; the Markdown body is ignored. Errors: AL_ERR_LIMIT for
 * len over AL_POLICY_CARD_MAX or more than AL_POLICY_CARD_LICENSES licenses,
 * AL_ERR_INVALID for front matter that never closes or a license that does
 * not normalize. A card without front matter, or without a license key, is
 * AL_OK with n = 0. */
enum al_rc al_license_from_card(const char *text, size_t len, struct al_card_license *out, struct al_err *err);

/* The general.license of the GGUF file open on fd (read with pread; the fd
 * stays the caller's) into out, as declared ("" when absent), through the
 * gguf module's checked reader: its errors (AL_ERR_INVALID, AL_ERR_LIMIT,
 * AL_ERR_IO) are returned. name is for messages. */
enum al_rc al_license_from_gguf_fd(int fd, const char *name, char *out, size_t size, struct al_err *err);

enum al_decision { AL_DECIDE_ALLOW, AL_DECIDE_ACK_NEEDED, AL_DECIDE_DENY };
/* "allow", "ack-needed", "deny". */
const char *al_decision_name(enum al_decision d);

struct al_license_decision {
    enum al_decision verdict;
    char license[AL_LICENSE_ID_MAX + 1]; /* the license that decided; "" when none is declared */
    char rule[AL_POLICY_TEXT_MAX];       /* which rule decided, and how to change it */
    bool disagree;                       /* card and GGUF name different licenses */
    char finding[AL_POLICY_TEXT_MAX];    /* the disagreement, "" when none */
    bool acked;                          /* an acknowledgement turned ack-needed into allow */
};

/* What the site's policy says of a model whose card declares card[0..n_card)
 * and whose GGUF declares gguf (NULL or "" when none), both as declared (they
 * are normalized here; one that does not normalize counts as an unknown
 * license). Every declared license is decided (its rule, else `unknown`) and
 * the strictest answer wins: deny, then ack-needed, then allow. An ack rule
 * is allow when acked is true. No license at all is decided by `unknown`.
 * Card and GGUF disagreeing is a finding (d->disagree) but not by itself a
 * refusal: both licenses are decided. Never fails. */
void al_policy_license_decide(const struct al_policy *p, const char *const *card, size_t n_card, const char *gguf,
                              bool acked, struct al_license_decision *d);

/* The build host's check before packing: the built-in table's judgement of
 * each declared license, strictest wins: free is allow, conditions and
 * unknown are ack-needed, forbidden is deny; acked (--ack-license) turns
 * ack-needed and forbidden into allow. A deny rule in p (NULL: none) denies
 * whatever acked says. Never fails. */
void al_policy_pack_decide(const struct al_policy *p, const char *const *card, size_t n_card, const char *gguf,
                           bool acked, struct al_license_decision *d);

/* True when a scan verdict (AL_POLICY_SCAN_*) is let in: verdict <= scan_max. */
bool al_policy_scan_allows(const struct al_policy *p, int verdict);

#endif
