/*
 * check.c: fsck and gc.
 *
 * fsck trusts nothing it reads: every referenced blob is re-hashed, every
 * manifest re-parsed and compared with the index rows, and the event chain
 * recomputed. Unreferenced blobs are not damage (a crash between a blob's
 * rename and its commit leaves one); gc removes them.
 */
#include "repo/repo_int.h"

#include <jansson.h>

#include "core/hash.h"
#include "core/progress.h"
#include "oci/oci.h"

#define LOCK_TIMEOUT_MS 60000

struct reporter {
    al_fsck_report_fn *fn;
    void *ud;
    struct al_fsck_result *res;
};

static void report(struct reporter *rp, enum al_fsck_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(struct reporter *rp, enum al_fsck_kind kind, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (kind == AL_FSCK_DAMAGE)
        rp->res->damaged++;
    if (rp->fn)
        rp->fn(rp->ud, kind, msg);
}

static void chain_problem(void *ud, int64_t id, const char *msg)
{
    report(ud, AL_FSCK_DAMAGE, "event log: %s", msg);
}

static int cmp_digest(const void *a, const void *b) { return strcmp(a, b); }

struct orphan_scan {
    char (*refs)[AL_DIGEST_SIZE];
    size_t n_refs;
    size_t orphans;
    uint64_t orphan_bytes;
    struct al_repo *repo;
    bool remove, dry_run;
    struct reporter *rp;
};

static bool visit_blob(void *ud, const char *digest, uint64_t size)
{
    struct orphan_scan *s = ud;
    if (bsearch(digest, s->refs, s->n_refs, AL_DIGEST_SIZE, cmp_digest))
        return true;
    s->orphans++;
    s->orphan_bytes += size;
    if (s->remove && !s->dry_run) {
        struct al_err e = AL_ERR_INIT;
        if (al_store_remove(s->repo->store, digest, &e) != AL_OK)
            report(s->rp, AL_FSCK_INFO, "cannot remove %s: %s", digest, e.msg);
    }
    if (s->remove)
        report(s->rp, AL_FSCK_INFO, "%s %s (%" PRIu64 " bytes)", s->dry_run ? "would remove" : "removed", digest,
               size);
    return true;
}

/* Checks a version's manifest and config against its index rows. */
static void check_version(struct al_repo *r, const struct al_version *v, struct reporter *rp)
{
    struct al_err e = AL_ERR_INIT;
    char *text = NULL;
    size_t len = 0;
    struct al_oci_manifest m;
    if (al_store_read(r->store, v->manifest, AL_LIMIT_MANIFEST, &text, &len, &e) != AL_OK) {
        report(rp, AL_FSCK_DAMAGE, "%s@%s: manifest unreadable: %s", v->model, v->manifest, e.msg);
        return;
    }
    if (al_oci_manifest_parse(text, len, &m, &e) != AL_OK) {
        report(rp, AL_FSCK_DAMAGE, "%s@%s: manifest invalid: %s", v->model, v->manifest, e.msg);
        free(text);
        return;
    }
    free(text);
    if (strcmp(m.config_digest, v->config) != 0)
        report(rp, AL_FSCK_DAMAGE, "%s@%s: manifest names config %s, the index %s", v->model, v->manifest,
               m.config_digest, v->config);
    struct al_file *files = NULL;
    size_t n = 0;
    if (al_index_list_files(r->index, v->id, &files, &n, &e) == AL_OK) {
        if (n != m.n_layers)
            report(rp, AL_FSCK_DAMAGE, "%s@%s: manifest lists %zu files, the index %zu", v->model, v->manifest,
                   m.n_layers, n);
        for (size_t i = 0; i < n && i < m.n_layers; i++)
            if (strcmp(files[i].digest, m.layers[i].digest) != 0 || strcmp(files[i].path, m.layers[i].path) != 0 ||
                files[i].size != m.layers[i].size)
                report(rp, AL_FSCK_DAMAGE, "%s@%s: file '%s' differs between manifest and index", v->model,
                       v->manifest, files[i].path);
    }
    free(files);
    al_oci_manifest_release(&m);
}

/* A version's name when it has no tag: its manifest's hex (the stored text
 * when that is not a digest, so a damaged row is still named). */
static const char *manifest_hex(const char *manifest)
{
    const char *hex = al_digest_hex(manifest);
    return hex ? hex : manifest;
}

static char *repair_detail(const char *digest, const char *why)
{
    json_t *d = json_pack("{s:s, s:s}", "quarantined", digest, "reason", why);
    char *s = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(d);
    return s;
}

enum al_rc al_repo_fsck(struct al_repo *r, bool repair, bool progress, al_fsck_report_fn *fn, void *ud,
                        struct al_fsck_result *res, struct al_err *err)
{
    memset(res, 0, sizeof *res);
    struct reporter rp = {fn, ud, res};
    bool ro = al_repo_read_only(r);
    if (repair && ro)
        return al_err_set(err, AL_ERR_DENIED, "the store at '%s' is read-only here; fsck --repair needs to write it",
                          al_store_home(r->store));
    enum al_rc rc = al_store_lock(r->store, repair ? AL_LOCK_GC_EXCLUSIVE : AL_LOCK_GC_SHARED, LOCK_TIMEOUT_MS, err);
    if (rc)
        return rc;
    /* index.json is derived from the index; bring it in step first (or, when
     * the store cannot be written, say that it is out of step). */
    if (!ro && (rc = al_repo_sync_index_json(r, err)))
        goto out;
    if (ro) {
        char *json = NULL;
        if ((rc = al_repo__build_index_json(r, &json, err)))
            goto out;
        if (!al_repo__index_json_current(r, json))
            report(&rp, AL_FSCK_INFO, "index.json is out of step with the index; not rewritten (read-only store)");
        free(json);
    }

    char(*refs)[AL_DIGEST_SIZE] = NULL;
    size_t n_refs = 0;
    if ((rc = al_index_referenced(r->index, &refs, &n_refs, err)))
        goto out;
    uint64_t total = 0;
    struct al_version *vs = NULL;
    size_t nv = 0;
    if ((rc = al_index_list_versions(r->index, NULL, &vs, &nv, err))) {
        free(refs);
        goto out;
    }
    for (size_t i = 0; i < nv; i++)
        total += vs[i].total_size;
    struct al_progress *bar = progress ? al_progress_new("checking blobs", total) : NULL;
    for (size_t i = 0; i < n_refs; i++) {
        struct al_err e = AL_ERR_INIT;
        uint64_t size = 0;
        enum al_rc v = al_store_verify(r->store, refs[i], &size, bar, &e);
        res->blobs_checked++;
        res->bytes_hashed += size;
        if (v == AL_OK)
            continue;
        /* Name every version that depends on the bad blob. */
        char users[512] = "";
        size_t used = 0;
        for (size_t j = 0; j < nv; j++) {
            struct al_file *files = NULL;
            size_t nf = 0;
            bool uses = !strcmp(vs[j].manifest, refs[i]) || !strcmp(vs[j].config, refs[i]);
            if (!uses && al_index_list_files(r->index, vs[j].id, &files, &nf, NULL) == AL_OK)
                for (size_t k = 0; k < nf && !uses; k++)
                    uses = !strcmp(files[k].digest, refs[i]);
            free(files);
            if (uses && used < sizeof users - 1) {
                int w = snprintf(users + used, sizeof users - used, "%s%s:%s", used ? ", " : "", vs[j].model,
                                 vs[j].tags[0] ? vs[j].tags : manifest_hex(vs[j].manifest));
                used += w > 0 ? (size_t)w : 0;
            }
        }
        if (used >= sizeof users)
            used = sizeof users - 1;
        report(&rp, AL_FSCK_DAMAGE, "%s (used by %s)", e.msg, users[0] ? users : "nothing");
        if (repair && v == AL_ERR_CORRUPT) {
            struct al_err qe = AL_ERR_INIT;
            if (al_store_quarantine(r->store, refs[i], &qe) == AL_OK) {
                char *detail = repair_detail(refs[i], e.msg);
                al_index_event_append(r->index, "fsck-repair", "", refs[i], detail, NULL);
                free(detail);
                res->repaired++;
                report(&rp, AL_FSCK_REPAIRED, "moved %s to quarantine/; re-add or re-ingest %s to restore it",
                       refs[i], users[0] ? users : "it");
            } else {
                report(&rp, AL_FSCK_INFO, "cannot quarantine %s: %s", refs[i], qe.msg);
            }
        }
    }
    al_progress_free(bar);
    for (size_t i = 0; i < nv; i++)
        check_version(r, &vs[i], &rp);
    res->versions_checked = nv;
    free(vs);

    struct al_err ce = AL_ERR_INIT;
    al_index_verify_events(r->index, chain_problem, &rp, &res->events_checked, &ce);

    struct orphan_scan scan = {refs, n_refs, 0, 0, r, false, false, &rp};
    al_store_each_blob(r->store, visit_blob, &scan, err);
    res->unreferenced = scan.orphans;
    if (scan.orphans)
        report(&rp, AL_FSCK_INFO, "%zu unreferenced blob%s (%" PRIu64 " bytes); 'airlock gc' removes them",
               scan.orphans, scan.orphans == 1 ? "" : "s", scan.orphan_bytes);
    free(refs);
    if (res->damaged)
        rc = al_err_set(err, AL_ERR_CORRUPT, "the store is damaged: %zu problem%s found", res->damaged,
                        res->damaged == 1 ? "" : "s");
out:
    al_store_unlock(r->store, repair ? AL_LOCK_GC_EXCLUSIVE : AL_LOCK_GC_SHARED);
    return rc;
}

/* What gc relies on: the index in step with the manifests, every referenced
 * blob present, the event log intact. Problems go to rp as damage. */
static enum al_rc check_for_gc(struct al_repo *r, struct reporter *rp, struct al_err *err)
{
    struct al_version *vs = NULL;
    size_t nv = 0;
    char(*refs)[AL_DIGEST_SIZE] = NULL;
    size_t n_refs = 0;
    /* One snapshot: a tag or rm committed between two reads is no damage. */
    enum al_rc rc = al_index_read_begin(r->index, err);
    if (rc)
        return rc;
    rc = al_index_list_versions(r->index, NULL, &vs, &nv, err);
    if (!rc)
        rc = al_index_referenced(r->index, &refs, &n_refs, err);
    for (size_t i = 0; i < nv && !rc; i++)
        check_version(r, &vs[i], rp);
    for (size_t i = 0; i < n_refs && !rc; i++)
        if (!al_store_has(r->store, refs[i]))
            report(rp, AL_FSCK_DAMAGE, "blob %s is missing", refs[i]);
    if (!rc)
        al_index_verify_events(r->index, chain_problem, rp, NULL, NULL);
    al_index_read_end(r->index);
    free(refs);
    free(vs);
    return rc;
}

enum al_rc al_repo_gc(struct al_repo *r, int keep, bool dry_run, al_fsck_report_fn *fn, void *ud,
                      struct al_gc_result *res, struct al_err *err)
{
    memset(res, 0, sizeof *res);
    struct al_fsck_result fres;
    memset(&fres, 0, sizeof fres);
    struct reporter rp = {fn, ud, &fres};
    /* Exclusive: no writer is between putting a blob in place and committing it. */
    enum al_rc rc = al_store_lock(r->store, AL_LOCK_GC_EXCLUSIVE, LOCK_TIMEOUT_MS, err);
    if (rc)
        return rc;
    if ((rc = check_for_gc(r, &rp, err)))
        goto out;
    if (fres.damaged) {
        rc = al_err_set(err, AL_ERR_CORRUPT,
                        "gc refused: the store is damaged (%zu problem%s), and an index out of step with the "
                        "manifests would make gc delete blobs still in use; nothing was removed. 'airlock fsck' "
                        "names the damage",
                        fres.damaged, fres.damaged == 1 ? "" : "s");
        goto out;
    }
    if (keep > 0) {
        struct al_version *vs = NULL;
        size_t nv = 0;
        if ((rc = al_index_list_versions(r->index, NULL, &vs, &nv, err)))
            goto out;
        /* Versions come sorted by model, oldest first: keep the last `keep` of each run. */
        bool began = false;
        for (size_t i = 0; i < nv && !rc; i++) {
            size_t end = i;
            while (end + 1 < nv && strcmp(vs[end + 1].model, vs[i].model) == 0)
                end++;
            size_t count = end - i + 1;
            for (size_t j = i; j <= end && !rc; j++) {
                if (count - (j - i) <= (size_t)keep || vs[j].active)
                    continue;
                report(&rp, AL_FSCK_INFO, "%s version %s@%s", dry_run ? "would remove" : "removing", vs[j].model,
                       vs[j].manifest);
                res->versions_removed++;
                if (dry_run)
                    continue;
                if (!began && !(rc = al_repo__begin(r, err)))
                    began = true;
                if (!rc && !(rc = al_index_remove_version(r->index, vs[j].id, err)))
                    rc = al_index_event_append(r->index, "gc-version", vs[j].model, vs[j].manifest, NULL, err);
            }
            i = end;
        }
        if (began)
            rc = al_repo__end(r, rc, err);
        free(vs);
        if (rc)
            goto out;
    }
    char(*refs)[AL_DIGEST_SIZE] = NULL;
    size_t n_refs = 0;
    if ((rc = al_index_referenced(r->index, &refs, &n_refs, err)))
        goto out;
    struct orphan_scan scan = {refs, n_refs, 0, 0, r, true, dry_run, &rp};
    rc = al_store_each_blob(r->store, visit_blob, &scan, err);
    res->blobs_removed = scan.orphans;
    res->bytes_freed = scan.orphan_bytes;
    free(refs);
    if (!rc && !dry_run && (res->blobs_removed || res->versions_removed)) {
        json_t *d = json_pack("{s:I, s:I, s:I}", "versions", (json_int_t)res->versions_removed, "blobs",
                              (json_int_t)res->blobs_removed, "bytes", (json_int_t)res->bytes_freed);
        char *detail = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(d);
        rc = al_index_event_append(r->index, "gc", "", "", detail, err);
        free(detail);
    }
out:
    al_store_unlock(r->store, AL_LOCK_GC_EXCLUSIVE);
    return rc;
}
