/*
 * scan.h: look inside an artifact for known dangers, without running it.
 *
 * A valid signature says who sent a file, not that loading it is safe. This
 * module reads a file the way an attacker would want it read and reports a
 * verdict, `ok`, `warn` or `dangerous`, with findings that say where (file,
 * zip member, byte offset, opcode or tensor) and what:
 *
 *  - pickle (.pkl .pt .pth .bin .ckpt, or the magic \x80 + protocol): the
 *    opcode stream of protocols 0 to 5 is walked, never executed, tracking
 *    the stack and memo so that STACK_GLOBAL's module and name are known.
 *    Every import (GLOBAL, STACK_GLOBAL, INST) outside a short safe list of
 *    torch/numpy/collections rebuild functions is `dangerous`, named
 *    `module.name`; a REDUCE, NEWOBJ or OBJ that calls one is named too.
 *    A malformed, truncated or over-cap stream is `dangerous`: the scanner
 *    cannot vouch for what it could not read.
 *  - PyTorch zip checkpoints: every `.pkl` member, read through libarchive.
 *  - safetensors: header length and JSON within caps, every tensor's dtype
 *    and shape consistent with its data_offsets, offsets inside the file, no
 *    overlap.
 *  - GGUF: the structure check of the gguf module, then every tensor's
 *    values (NaN, Inf, data past the end: al_gguf_scan_values).
 *  - ELF, PE, Mach-O, `#!` scripts and nested archives: `warn`, naming the
 *    kind; an executable bit is named, and is `dangerous` with
 *    AL_SCAN_EXEC_DANGEROUS (files inside a bundle).
 *
 * The rules are docs/internals/scan.md. Every input size has a cap in
 * core/limits.h (AL_LIMIT_PICKLE_*, AL_LIMIT_SAFETENSORS_*, AL_LIMIT_SCAN_*).
 * Strings copied from the file into findings have control characters
 * replaced by '?' and are cut to their field, so they are safe to print.
 * Functions are reentrant: no state outside the report.
 */
#ifndef AL_SCAN_SCAN_H
#define AL_SCAN_SCAN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/limits.h"

/* Bumped whenever a rule changes, so a recorded verdict names its rules. */
#define AL_SCAN_RULES_VERSION 1

/* Ordered: a report's verdict is the worst of its findings. */
enum al_scan_verdict { AL_SCAN_OK = 0, AL_SCAN_WARN = 1, AL_SCAN_DANGEROUS = 2 };

/* Flags of al_scan_file. */
#define AL_SCAN_EXEC_DANGEROUS 1u /* an executable bit makes ELF/PE/Mach-O/script dangerous (bundles) */
#define AL_SCAN_EXEC_BIT       2u /* treat the file as having an executable bit (a tar entry's mode) */

/* How many findings of a file a provenance record or a refusal keeps. */
#define AL_SCAN_RECORD_FINDINGS 5

#define AL_SCAN_NO_OFFSET UINT64_MAX

struct al_scan_finding {
    enum al_scan_verdict severity;
    char member[256];  /* the zip member it is in, "" for the file itself */
    uint64_t offset;   /* byte offset in the file or member, AL_SCAN_NO_OFFSET when none */
    char opcode[20];   /* pickle opcode name ("STACK_GLOBAL"), "" when none */
    char tensor[128];  /* safetensors or GGUF tensor name, "" when none */
    char what[512];    /* what was found: "imports os.system: runs shell commands" */
};

struct al_scan_report {
    char file[AL_LIMIT_PATH];  /* as given, made printable */
    char kind[32];             /* "pickle", "pytorch-zip", "safetensors", "gguf", "elf", ..., "data" */
    enum al_scan_verdict verdict;
    size_t n_findings;         /* kept in findings[] */
    size_t n_dropped;          /* found past AL_LIMIT_SCAN_FINDINGS, counted only */
    struct al_scan_finding findings[AL_LIMIT_SCAN_FINDINGS];
};

/* Scans the file at path into a new report *out (must be NULL on entry;
 * the caller's after success, freed with al_scan_report_free). What the file
 * holds never makes this fail: it is a finding. Errors: AL_ERR_NOT_FOUND (no
 * such file), AL_ERR_IO (cannot open, stat, map or read; not a regular
 * file), AL_ERR_NOMEM. flags: AL_SCAN_* above. */
enum al_rc al_scan_file(const char *path, unsigned flags, struct al_scan_report **out, struct al_err *err);

/* The same for content at path known under another name (a bundle's entry
 * in its temporary file): name decides the reader where the bytes do not
 * (a `.pkl` name) and is the report's file. */
enum al_rc al_scan_file_named(const char *path, const char *name, unsigned flags, struct al_scan_report **out,
                              struct al_err *err);

/* The same with a GGUF's tensor-value report made as the file was written
 * (gguf.h, al_gguf_value_stream: the same report as reading it again), so
 * the values are not read a second time; NULL: they are read. */
struct al_gguf_value_report;
enum al_rc al_scan_file_values(const char *path, const char *name, unsigned flags,
                               const struct al_gguf_value_report *values, struct al_scan_report **out,
                               struct al_err *err);

/* A file's whole report, as `airlock scan --json` prints it: {"file","kind",
 * "verdict","findings":[every finding kept],"findings_omitted"}. A new
 * reference, NULL when out of memory. */
json_t *al_scan_report_json(const struct al_scan_report *r);

/* The record of a scan for the event log: a compact JSON object text,
 * malloc'd (the caller frees it; NULL when out of memory):
 * {"scanner":"airlock VERSION","rules":AL_SCAN_RULES_VERSION,"verdict":the
 * worst,"files":[{"file","kind","verdict","findings":count,"first":[the
 * first AL_SCAN_RECORD_FINDINGS findings, as in `airlock scan --json`]}]}.
 * reports[0..n) are borrowed. */
char *al_scan_record_json(const struct al_scan_report *const *reports, size_t n);

/* The refusal of a dangerous file by pack, ingest or add: sets err to
 * AL_ERR_DENIED with a message naming the file, its first dangerous
 * findings and what to do next (hint, appended as it is, may be NULL);
 * returns AL_ERR_DENIED. op names the operation ("add", "ingest", "pack"). */
enum al_rc al_scan_refuse(const struct al_scan_report *r, const char *op, const char *hint, struct al_err *err);

/* The refusal of a file whose verdict the site's policy does not let in
 * (a warn under `scan: ok`): as al_scan_refuse, with the file's warn and
 * dangerous findings and the rule (text from the caller, such as "policy.json
 * scan: ok") named in the message. */
enum al_rc al_scan_refuse_rule(const struct al_scan_report *r, const char *op, const char *rule, const char *hint,
                               struct al_err *err);

/* A new, empty report (verdict ok, kind "data") for file, or NULL when out
 * of memory. */
struct al_scan_report *al_scan_report_new(const char *file);

/* Frees a report; NULL is a no-op. */
void al_scan_report_free(struct al_scan_report *r);

/* Walks the pickle stream data[0..len) (borrowed, not kept) and adds its
 * findings to r; member names the zip member it came from ("" for none).
 * Sets r->kind to "pickle" when it is "data". Never fails: a malformed
 * stream is a finding. Used by al_scan_file and directly by the tests. */
void al_scan_pickle(const uint8_t *data, size_t len, const char *member, struct al_scan_report *r);

/* Checks a safetensors file held in data[0..len) (borrowed) and adds its
 * findings to r; sets r->kind to "safetensors". */
void al_scan_safetensors(const uint8_t *data, size_t len, struct al_scan_report *r);

/* "ok", "warn", "dangerous". */
const char *al_scan_verdict_name(enum al_scan_verdict v);

#endif
