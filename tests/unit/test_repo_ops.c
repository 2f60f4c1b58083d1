/*
 * Unit tests of src/repo (repo.h): each operation on a real store (a
 * temporary AIRLOCK_HOME, real SQLite, the real fixture model): the happy
 * path, every refusal leaving store, index, index.json and event log exactly
 * as they were, and fsck and gc on real damage.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "tu_model.h"
#include "core/hash.h"
#include "core/limits.h"
#include "index/index.h"
#include "repo/repo_int.h" /* the store handle, for checks around the repo */
#include "store/store.h"

struct fx {
    char *home;
    struct al_repo *r;
    char card[4096], notes[4096], bad_gguf[4096];
};

static struct fx *fx_new(void)
{
    struct fx *f = calloc(1, sizeof *f);
    tu_store_new(&f->home, &f->r);
    snprintf(f->card, sizeof f->card, "%s/card.json", f->home);
    tu_write_file(f->card, "{\"license\":\"mit\"}", 17);
    snprintf(f->notes, sizeof f->notes, "%s/README.md", f->home);
    tu_write_file(f->notes, "# notes\n", 8);
    /* the GGUF magic, then nothing a reader can use */
    snprintf(f->bad_gguf, sizeof f->bad_gguf, "%s/broken.gguf", f->home);
    tu_write_file(f->bad_gguf, "GGUF\x03\x00\x00\x00\xff\xff\xff\xff", 12);
    return f;
}

static void fx_free(struct fx *f)
{
    tu_store_free(f->home, f->r);
    free(f);
}

/* Everything a change may touch, to prove a refused one touched nothing. */
struct snap {
    size_t versions, events, blobs;
    char *index_json;
};

static void snap_take(struct fx *f, struct snap *s)
{
    struct al_err err = AL_ERR_INIT;
    struct al_version *v = NULL;
    struct al_event *ev = NULL;
    assert_int_equal(al_index_list_versions(al_repo_index(f->r), NULL, &v, &s->versions, &err), AL_OK);
    free(v);
    assert_int_equal(al_index_list_events(al_repo_index(f->r), NULL, NULL, &ev, &s->events, &err), AL_OK);
    al_index_events_free(ev, s->events);
    char p[4096];
    snprintf(p, sizeof p, "%s/blobs/sha256", f->home);
    s->blobs = tu_count_files(p);
    snprintf(p, sizeof p, "%s/index.json", f->home);
    s->index_json = tu_read_file(p, NULL);
}

static void snap_same(struct fx *f, struct snap *before)
{
    struct snap now;
    snap_take(f, &now);
    assert_int_equal(now.versions, before->versions);
    assert_int_equal(now.events, before->events);
    assert_int_equal(now.blobs, before->blobs);
    if (before->index_json || now.index_json)
        assert_string_equal(now.index_json ? now.index_json : "(none)",
                            before->index_json ? before->index_json : "(none)");
    free(now.index_json);
    free(before->index_json);
    before->index_json = NULL;
}

static const char *last_event(struct fx *f)
{
    static char kind[32];
    struct al_event *ev = NULL;
    size_t n = 0;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_index_list_events(al_repo_index(f->r), NULL, NULL, &ev, &n, &err), AL_OK);
    snprintf(kind, sizeof kind, "%s", n ? ev[n - 1].kind : "");
    al_index_events_free(ev, n);
    return kind;
}

static void add(struct fx *f, const char *ref, const char *card, bool no_activate, struct al_version *v)
{
    const char *paths[] = {tu_fixture("stories260K.gguf")};
    struct al_add_opts o = {.card_path = card, .no_activate = no_activate};
    struct al_err err = AL_ERR_INIT;
    if (al_repo_add(f->r, ref, paths, 1, &o, v, NULL, &err))
        fail_msg("add %s: %s", ref, err.msg);
}

static void test_open(void **state)
{
    char *dir = tu_mkdtemp();
    char home[4096];
    snprintf(home, sizeof home, "%s/home", dir);
    struct al_repo *r = (struct al_repo *)dir; /* not NULL: the failure must clear it */
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_repo_open(home, false, &r, &err), AL_ERR_NOT_FOUND);
    assert_null(r);
    assert_true(err.msg[0] != '\0');
    assert_false(access(home, F_OK) == 0); /* nothing created */
    al_err_clear(&err);
    assert_int_equal(al_repo_open(home, true, &r, &err), AL_OK);
    assert_non_null(r->store);
    assert_non_null(al_repo_index(r));
    al_repo_free(r);
    /* opened again without create: there now */
    assert_int_equal(al_repo_open(home, false, &r, &err), AL_OK);
    al_repo_free(r);
    al_repo_free(NULL);
    tu_rmrf(dir);
    free(dir);
}

static void test_facts(void **state)
{
    struct al_model_facts facts;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_repo_facts(tu_fixture("stories260K.gguf"), &facts, &err), AL_OK);
    assert_string_equal(facts.architecture, "llama");
    assert_string_equal(facts.precision, "F32");
    assert_string_equal(facts.quantization, "F32");
    assert_int_equal(strncmp(facts.param_size, "292.", 4), 0); /* 292.xK parameters */
    assert_int_equal(facts.param_size[strlen(facts.param_size) - 1], 'K');
    struct fx *f = fx_new();
    memset(&facts, 'x', sizeof facts);
    assert_int_equal(al_repo_facts(f->notes, &facts, &err), AL_OK); /* not a GGUF: nothing to say */
    assert_string_equal(facts.architecture, "");
    assert_string_equal(facts.quantization, "");
    assert_int_equal(al_repo_facts(f->bad_gguf, &facts, &err), AL_ERR_INVALID);
    fx_free(f);
}

static void test_add(void **state)
{
    struct fx *f = fx_new();
    struct al_version v;
    bool existed = true;
    const char *paths[] = {tu_fixture("stories260K.gguf"), f->notes};
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_repo_add(f->r, "stories", paths, 2, NULL, &v, &existed, &err), AL_OK);
    assert_false(existed);
    assert_string_equal(v.model, "stories");
    assert_string_equal(v.tags, "latest"); /* no tag: "latest" */
    assert_true(v.active);
    assert_true(al_digest_valid(v.manifest));
    assert_string_equal(last_event(f), "add");
    /* the weight file is the GGUF, wherever it is in the list, and it is the fixture */
    char path[AL_LIMIT_PATH], d[AL_DIGEST_SIZE];
    assert_int_equal(al_repo_weight_path(f->r, &v, path, sizeof path, &err), AL_OK);
    assert_int_equal(al_sha256_path(path, d, NULL, NULL, &err), AL_OK);
    assert_string_equal(d, TU_FIXTURE_DIGEST);
    char tiny[8];
    al_err_clear(&err);
    assert_int_not_equal(al_repo_weight_path(f->r, &v, tiny, sizeof tiny, &err), AL_OK);
    /* index.json names it */
    char p[4096];
    snprintf(p, sizeof p, "%s/index.json", f->home);
    char *ij = tu_read_file(p, NULL);
    assert_non_null(strstr(ij, "stories:latest"));
    assert_non_null(strstr(ij, v.manifest));
    free(ij);

    /* the same files again: the same version (no timestamp in the manifest) */
    struct al_version v2;
    al_err_clear(&err);
    assert_int_equal(al_repo_add(f->r, "stories", paths, 2, NULL, &v2, &existed, &err), AL_OK);
    assert_true(existed);
    assert_int_equal(v2.id, v.id);
    assert_string_equal(v2.manifest, v.manifest);
    assert_string_equal(last_event(f), "add-existing");

    /* a card makes another version; no_activate leaves the active one */
    struct al_version v3;
    add(f, "stories:carded", f->card, true, &v3);
    assert_string_not_equal(v3.manifest, v.manifest);
    assert_false(v3.active);
    struct al_version act;
    assert_int_equal(al_index_resolve(al_repo_index(f->r), "stories", &act, &err), AL_OK);
    assert_int_equal(act.id, v.id);

    /* a version of non-GGUF files only: its first file is the weight file */
    const char *np[] = {f->notes};
    struct al_version v4;
    assert_int_equal(al_repo_add(f->r, "docs", np, 1, NULL, &v4, NULL, &err), AL_OK);
    assert_int_equal(al_repo_weight_path(f->r, &v4, path, sizeof path, &err), AL_OK);
    assert_int_equal(al_sha256_path(path, d, NULL, NULL, &err), AL_OK);
    char *notes_digest = NULL;
    size_t nl = 0;
    char *text = tu_read_file(f->notes, &nl);
    char nd[AL_DIGEST_SIZE];
    assert_int_equal(al_store_put(f->r->store, text, nl, nd, &err), AL_OK);
    assert_string_equal(d, nd);
    free(text);
    free(notes_digest);
    fx_free(f);
}

static void test_add_refusals(void **state)
{
    struct fx *f = fx_new();
    add(f, "stories:1.0", NULL, false, NULL);
    struct snap before;
    const char *fix = tu_fixture("stories260K.gguf");
    char missing[4096], dir_path[4096];
    snprintf(missing, sizeof missing, "%s/nope.gguf", f->home);
    snprintf(dir_path, sizeof dir_path, "%s/", f->home);
    char badcard[4096];
    snprintf(badcard, sizeof badcard, "%s/bad-card.json", f->home);
    tu_write_file(badcard, "[1,2]", 5);
    char other[4096];
    snprintf(other, sizeof other, "%s/sub", f->home);
    mkdir(other, 0755);
    snprintf(other, sizeof other, "%s/sub/README.md", f->home);
    tu_write_file(other, "x", 1);

    struct {
        const char *ref;
        const char *paths[3];
        size_t n;
        const char *card;
        enum al_rc rc;
        const char *msg;
    } bad[] = {
        {"stories@" TU_FIXTURE_DIGEST, {fix}, 1, NULL, AL_ERR_USAGE, "add takes NAME[:TAG], not a digest"},
        {"Stories", {fix}, 1, NULL, AL_ERR_INVALID, "Stories"},
        {"stories:bad tag", {fix}, 1, NULL, AL_ERR_INVALID, "bad tag"},
        {"stories:2.0", {NULL}, 0, NULL, AL_ERR_USAGE, "no files to add"},
        {"stories:2.0", {fix, f->notes, other}, 3, NULL, AL_ERR_INVALID,
         "two files are named 'README.md'; each file needs its own name"},
        {"stories:2.0", {dir_path}, 1, NULL, AL_ERR_INVALID, "is not a usable file name"},
        {"stories:2.0", {f->bad_gguf}, 1, NULL, AL_ERR_INVALID, "broken.gguf"},
        {"stories:2.0", {f->notes, missing}, 2, NULL, AL_ERR_NOT_FOUND, "nope.gguf"},
        {"stories:2.0", {fix}, 1, badcard, AL_ERR_INVALID, "is not a JSON object"},
        {"stories:2.0", {fix}, 1, missing, AL_ERR_NOT_FOUND, "nope.gguf"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snap_take(f, &before);
        struct al_version v;
        memset(&v, 0x5a, sizeof v);
        bool existed = true;
        struct al_err err = AL_ERR_INIT;
        struct al_add_opts o = {.card_path = bad[i].card};
        enum al_rc rc = al_repo_add(f->r, bad[i].ref, bad[i].paths, bad[i].n, &o, &v, &existed, &err);
        if (rc != bad[i].rc || !strstr(err.msg, bad[i].msg))
            fail_msg("case %zu: rc %d '%s', wanted %d with '%s'", i, rc, err.msg, bad[i].rc, bad[i].msg);
        assert_int_equal(v.id, 0x5a5a5a5a5a5a5a5a); /* out untouched */
        /* a refused add leaves the store as it was: every file is checked
         * before any is imported, so not even an unreferenced blob stays */
        snap_same(f, &before);
    }
    /* over the file cap, refused before anything is read */
    const char **many = calloc(AL_LIMIT_FILES_PER_MODEL + 1, sizeof *many);
    for (size_t i = 0; i <= AL_LIMIT_FILES_PER_MODEL; i++)
        many[i] = fix;
    struct al_err err = AL_ERR_INIT;
    snap_take(f, &before);
    assert_int_equal(al_repo_add(f->r, "x", many, AL_LIMIT_FILES_PER_MODEL + 1, NULL, NULL, NULL, &err),
                     AL_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "AL_LIMIT_FILES_PER_MODEL"));
    snap_same(f, &before);
    free(many);
    fx_free(f);
}

static void test_pointers(void **state)
{
    struct fx *f = fx_new();
    struct al_version v1, v2, out;
    add(f, "m:1.0", NULL, false, &v1);
    add(f, "m:2.0", f->card, false, &v2);
    struct al_index *ix = al_repo_index(f->r);
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_index_resolve(ix, "m", &out, &err), AL_OK);
    assert_int_equal(out.id, v2.id);

    /* rollback: the version before the active one */
    assert_int_equal(al_repo_rollback(f->r, "m", &out, &err), AL_OK);
    assert_int_equal(out.id, v1.id);
    assert_true(out.active);
    assert_string_equal(last_event(f), "rollback");
    struct snap before;
    snap_take(f, &before);
    memset(&out, 0x5a, sizeof out);
    assert_int_equal(al_repo_rollback(f->r, "m", &out, &err), AL_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "'m' has no version older than the active one"));
    assert_int_equal(out.id, 0x5a5a5a5a5a5a5a5a);
    snap_same(f, &before);
    al_err_clear(&err);
    snap_take(f, &before);
    assert_int_equal(al_repo_rollback(f->r, "nosuch", NULL, &err), AL_ERR_NOT_FOUND);
    snap_same(f, &before);
    snap_take(f, &before);
    al_err_clear(&err);
    assert_int_equal(al_repo_rollback(f->r, "m", NULL, &err), AL_ERR_NOT_FOUND);
    snap_same(f, &before);

    /* activate by tag */
    al_err_clear(&err);
    assert_int_equal(al_repo_activate(f->r, "m:2.0", &out, &err), AL_OK);
    assert_int_equal(out.id, v2.id);
    assert_string_equal(last_event(f), "activate");
    snap_take(f, &before);
    assert_int_equal(al_repo_activate(f->r, "m:9.9", NULL, &err), AL_ERR_NOT_FOUND);
    snap_same(f, &before);

    /* tag and untag */
    al_err_clear(&err);
    assert_int_equal(al_repo_tag(f->r, "m:1.0", "stable", &err), AL_OK);
    assert_string_equal(last_event(f), "tag");
    assert_int_equal(al_index_resolve(ix, "m:stable", &out, &err), AL_OK);
    assert_int_equal(out.id, v1.id);
    char p[4096];
    snprintf(p, sizeof p, "%s/index.json", f->home);
    char *ij = tu_read_file(p, NULL);
    assert_non_null(strstr(ij, "stable"));
    free(ij);
    snap_take(f, &before);
    assert_int_equal(al_repo_tag(f->r, "m:1.0", "no good", &err), AL_ERR_INVALID);
    snap_same(f, &before);
    snap_take(f, &before);
    al_err_clear(&err);
    assert_int_equal(al_repo_tag(f->r, "nosuch:1.0", "x", &err), AL_ERR_NOT_FOUND);
    snap_same(f, &before);
    al_err_clear(&err);
    assert_int_equal(al_repo_untag(f->r, "m", "stable", &err), AL_OK);
    assert_string_equal(last_event(f), "untag");
    assert_int_equal(al_index_resolve(ix, "m:stable", &out, &err), AL_ERR_NOT_FOUND);
    snap_take(f, &before);
    al_err_clear(&err);
    assert_int_equal(al_repo_untag(f->r, "m", "stable", &err), AL_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "'m' has no tag 'stable'"));
    snap_same(f, &before);
    fx_free(f);
}

static void test_rm(void **state)
{
    struct fx *f = fx_new();
    struct al_version v1, v2, v3, out;
    add(f, "m:1.0", NULL, false, &v1);
    add(f, "m:2.0", f->card, false, &v2);
    const char *np[] = {f->notes};
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_repo_add(f->r, "m:3.0", np, 1, NULL, &v3, NULL, &err), AL_OK);
    add(f, "other", NULL, false, NULL);
    struct al_index *ix = al_repo_index(f->r);

    /* removing the active version: the newest remaining becomes active */
    size_t removed = 99;
    assert_int_equal(al_repo_rm(f->r, "m:3.0", &removed, &err), AL_OK);
    assert_int_equal(removed, 1);
    assert_string_equal(last_event(f), "activate");
    assert_int_equal(al_index_resolve(ix, "m", &out, &err), AL_OK);
    assert_int_equal(out.id, v2.id);
    /* an inactive one by digest: the active one stays */
    char ref[300];
    snprintf(ref, sizeof ref, "m@%s", v1.manifest);
    assert_int_equal(al_repo_rm(f->r, ref, &removed, &err), AL_OK);
    assert_string_equal(last_event(f), "rm");
    assert_int_equal(al_index_resolve(ix, "m", &out, &err), AL_OK);
    assert_int_equal(out.id, v2.id);

    /* unknown: refused with a suggestion, nothing removed */
    struct snap before;
    snap_take(f, &before);
    removed = 99;
    assert_int_equal(al_repo_rm(f->r, "n", &removed, &err), AL_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "no model named 'n'; did you mean: m"));
    assert_int_equal(removed, 0);
    snap_same(f, &before);
    snap_take(f, &before);
    al_err_clear(&err);
    assert_int_equal(al_repo_rm(f->r, "m:9.9", &removed, &err), AL_ERR_NOT_FOUND);
    snap_same(f, &before);
    snap_take(f, &before);
    al_err_clear(&err);
    assert_int_equal(al_repo_rm(f->r, "../m", &removed, &err), AL_ERR_INVALID);
    snap_same(f, &before);

    /* a bare name: every version; blobs stay until gc */
    al_err_clear(&err);
    add(f, "m:4.0", NULL, false, NULL);
    assert_int_equal(al_repo_rm(f->r, "m", &removed, &err), AL_OK);
    assert_int_equal(removed, 2);
    assert_int_equal(al_index_resolve(ix, "m", &out, &err), AL_ERR_NOT_FOUND);
    al_err_clear(&err);
    assert_int_equal(al_index_resolve(ix, "other", &out, &err), AL_OK);
    char p[4096];
    snprintf(p, sizeof p, "%s/index.json", f->home);
    char *ij = tu_read_file(p, NULL);
    assert_null(strstr(ij, "\"m:"));
    free(ij);
    fx_free(f);
}

static void test_commit_version(void **state)
{
    struct fx *f = fx_new();
    struct al_version v;
    add(f, "m:1.0", NULL, false, &v);
    struct al_file *files = NULL;
    size_t nf = 0;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_index_list_files(al_repo_index(f->r), v.id, &files, &nf, &err), AL_OK);
    /* the same blobs as another model, through the one commit path */
    struct al_version_commit c = {.name = "copy", .tag = "7", .manifest = v.manifest,
                                  .manifest_size = v.manifest_size, .config = v.config, .seq = 7,
                                  .files = files, .n_files = nf, .event_kind = "ingest",
                                  .event_detail = "{\"bundle\":\"x\"}"};
    struct al_version out;
    bool existed = true;
    assert_int_equal(al_repo_commit_version(f->r, &c, &out, &existed, &err), AL_OK);
    assert_false(existed);
    assert_string_equal(out.model, "copy");
    assert_int_equal(out.seq, 7);
    assert_true(out.active);
    assert_string_equal(last_event(f), "ingest");
    assert_int_equal(al_repo_commit_version(f->r, &c, &out, &existed, &err), AL_OK);
    assert_true(existed);
    assert_string_equal(last_event(f), "ingest-existing");
    /* a step that fails rolls the whole transaction back */
    struct snap before;
    snap_take(f, &before);
    c.name = "third";
    c.tag = "not a tag";
    memset(&out, 0x5a, sizeof out);
    assert_int_equal(al_repo_commit_version(f->r, &c, &out, &existed, &err), AL_ERR_INVALID);
    assert_int_equal(out.id, 0x5a5a5a5a5a5a5a5a);
    snap_same(f, &before);
    assert_int_equal(al_index_resolve(al_repo_index(f->r), "third", &out, NULL), AL_ERR_NOT_FOUND);
    free(files);
    fx_free(f);
}

static void test_sync_index_json(void **state)
{
    struct fx *f = fx_new();
    add(f, "m:1.0", NULL, false, NULL);
    char p[4096];
    snprintf(p, sizeof p, "%s/index.json", f->home);
    char *want = tu_read_file(p, NULL);
    unlink(p);
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_repo_sync_index_json(f->r, &err), AL_OK);
    char *got = tu_read_file(p, NULL);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
    tu_write_file(p, "garbage", 7);
    assert_int_equal(al_repo_sync_index_json(f->r, &err), AL_OK);
    got = tu_read_file(p, NULL);
    assert_string_equal(got, want);
    free(got);
    free(want);
    fx_free(f);
}

struct reports {
    int damage, repaired, info;
    char first[1024];
};

static void on_report(void *ud, enum al_fsck_kind kind, const char *msg)
{
    struct reports *r = ud;
    if (kind == AL_FSCK_DAMAGE && r->damage++ == 0)
        snprintf(r->first, sizeof r->first, "%s", msg);
    r->repaired += kind == AL_FSCK_REPAIRED;
    r->info += kind == AL_FSCK_INFO;
}

static void test_fsck(void **state)
{
    struct fx *f = fx_new();
    struct al_version v;
    add(f, "m:1.0", NULL, false, &v);
    struct al_err err = AL_ERR_INIT;
    struct al_fsck_result res;
    struct reports rep = {0};
    assert_int_equal(al_repo_fsck(f->r, false, false, on_report, &rep, &res, &err), AL_OK);
    assert_int_equal(res.blobs_checked, 3); /* weights, config, manifest */
    assert_int_equal(res.versions_checked, 1);
    assert_int_equal(res.events_checked, 1);
    assert_int_equal(res.damaged, 0);
    assert_int_equal(res.unreferenced, 0);
    assert_true(res.bytes_hashed > 1000000);
    assert_int_equal(rep.damage, 0);

    /* an unreferenced blob is a note, not damage */
    char d[AL_DIGEST_SIZE];
    assert_int_equal(al_store_put(f->r->store, "orphan", 6, d, &err), AL_OK);
    memset(&rep, 0, sizeof rep);
    assert_int_equal(al_repo_fsck(f->r, false, false, on_report, &rep, &res, &err), AL_OK);
    assert_int_equal(res.unreferenced, 1);
    assert_int_equal(rep.info, 1);

    /* one byte of the weights changed: damage, naming the version */
    char path[AL_LIMIT_PATH];
    assert_int_equal(al_repo_weight_path(f->r, &v, path, sizeof path, &err), AL_OK);
    chmod(path, 0644);
    size_t len = 0;
    char *data = tu_read_file(path, &len);
    data[len / 2] ^= 1;
    tu_write_file(path, data, len);
    free(data);
    memset(&rep, 0, sizeof rep);
    assert_int_equal(al_repo_fsck(f->r, false, false, on_report, &rep, &res, &err), AL_ERR_CORRUPT);
    assert_non_null(strstr(err.msg, "the store is damaged: 1 problem found"));
    assert_int_equal(res.damaged, 1);
    assert_non_null(strstr(rep.first, "(used by m:1.0)"));
    assert_true(access(path, F_OK) == 0); /* without repair, left in place */
    /* with repair: quarantined and recorded */
    al_err_clear(&err);
    memset(&rep, 0, sizeof rep);
    assert_int_equal(al_repo_fsck(f->r, true, false, on_report, &rep, &res, &err), AL_ERR_CORRUPT);
    assert_int_equal(res.repaired, 1);
    assert_int_equal(rep.repaired, 1);
    assert_false(access(path, F_OK) == 0);
    char q[4096];
    snprintf(q, sizeof q, "%s/quarantine", f->home);
    assert_int_equal(tu_count_files(q), 1);
    struct al_event *ev = NULL;
    size_t n = 0;
    assert_int_equal(al_index_list_events(al_repo_index(f->r), NULL, NULL, &ev, &n, &err), AL_OK);
    assert_string_equal(ev[n - 1].kind, "fsck-repair");
    assert_string_equal(ev[n - 1].digest, TU_FIXTURE_DIGEST);
    al_index_events_free(ev, n);
    /* re-adding the file restores it */
    add(f, "m:1.0", NULL, false, NULL);
    al_err_clear(&err);
    assert_int_equal(al_repo_fsck(f->r, false, false, NULL, NULL, &res, &err), AL_OK);
    fx_free(f);
}

static void test_gc(void **state)
{
    struct fx *f = fx_new();
    struct al_version v1, v2, v3;
    add(f, "m:1.0", NULL, false, &v1);
    add(f, "m:2.0", f->card, false, &v2);
    const char *np[] = {f->notes};
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_repo_add(f->r, "m:3.0", np, 1, NULL, &v3, NULL, &err), AL_OK);
    /* the oldest is the active one: never removed */
    assert_int_equal(al_repo_activate(f->r, "m:1.0", NULL, &err), AL_OK);

    struct snap before;
    snap_take(f, &before);
    struct al_gc_result g;
    struct reports rep = {0};
    assert_int_equal(al_repo_gc(f->r, 1, true, on_report, &rep, &g, &err), AL_OK); /* dry run */
    assert_int_equal(g.versions_removed, 1);
    assert_true(rep.info >= 1);
    snap_same(f, &before);

    assert_int_equal(al_repo_gc(f->r, 1, false, NULL, NULL, &g, &err), AL_OK);
    assert_int_equal(g.versions_removed, 1); /* 2.0: neither the newest nor active */
    assert_int_equal(g.blobs_removed, 2);    /* its config and manifest; the weights are shared */
    assert_true(g.bytes_freed > 0);
    assert_string_equal(last_event(f), "gc");
    struct al_version out;
    assert_int_equal(al_index_resolve(al_repo_index(f->r), "m:2.0", &out, &err), AL_ERR_NOT_FOUND);
    al_err_clear(&err);
    assert_int_equal(al_index_resolve(al_repo_index(f->r), "m", &out, &err), AL_OK);
    assert_int_equal(out.id, v1.id);
    assert_int_equal(al_index_resolve(al_repo_index(f->r), "m:3.0", &out, &err), AL_OK);
    /* nothing left to collect: no change, no event */
    snap_take(f, &before);
    assert_int_equal(al_repo_gc(f->r, 0, false, NULL, NULL, &g, &err), AL_OK);
    assert_int_equal(g.blobs_removed + g.versions_removed, 0);
    snap_same(f, &before);
    assert_int_equal(al_repo_fsck(f->r, false, false, NULL, NULL, &(struct al_fsck_result){0}, &err), AL_OK);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open),
        cmocka_unit_test(test_facts),
        cmocka_unit_test(test_add),
        cmocka_unit_test(test_add_refusals),
        cmocka_unit_test(test_pointers),
        cmocka_unit_test(test_rm),
        cmocka_unit_test(test_commit_version),
        cmocka_unit_test(test_sync_index_json),
        cmocka_unit_test(test_fsck),
        cmocka_unit_test(test_gc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
