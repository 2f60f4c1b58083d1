/*
 * Unit tests of src/serve (models.h), the model manager behind `airlock
 * serve`, on a real store with real models loaded by the real llama.cpp:
 * the fixture and a tiny generated one. Leases and sharing, the count and
 * memory caps (eviction of idle models, refusal when all are in use), the
 * pinned default, reload with retirement of a version in use, a load that
 * fails leaving nothing behind, and the keep-alive reaper.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "testutil.h"
#include "tu_model.h"
#include "serve/models.h"

static char *g_dir, *g_base, g_gen[4096];

static char *store(const char *name);

static int setup(void **state)
{
    g_dir = tu_mkdtemp();
    snprintf(g_gen, sizeof g_gen, "%s/gen.gguf", g_dir);
    tu_gen_model(g_gen, 7);
    g_base = store("base"); /* for the tests that change no store */
    return 0;
}

static int teardown(void **state)
{
    tu_rmrf(g_dir);
    free(g_dir);
    free(g_base);
    return 0;
}

/* A fresh store under g_dir: the fixture as "stories:1.0", the generated
 * model as "gen:1.0". */
static char *store(const char *name)
{
    char *home = NULL;
    if (asprintf(&home, "%s/%s", g_dir, name) < 0)
        fail_msg("out of memory");
    tu_store_with_fixture(home, "stories:1.0");
    struct al_repo *r = NULL;
    struct al_err err = AL_ERR_INIT;
    const char *paths[] = {g_gen};
    if (al_repo_open(home, false, &r, &err) || al_repo_add(r, "gen:1.0", paths, 1, NULL, NULL, NULL, &err))
        fail_msg("add: %s", err.msg);
    al_repo_free(r);
    return home;
}

static struct al_serve_config config(void)
{
    struct al_serve_config c;
    al_serve_config_default(&c);
    c.defaults.threads = 2;
    c.defaults.ctx = 128;
    return c;
}

struct seen {
    int n;
    char names[8][64];
    char manifests[8][80];
    int leases[8];
    bool pinned[8], retired[8];
    uint64_t mem[8];
};

static void collect(void *ud, const struct al_serve_loaded *m)
{
    struct seen *s = ud;
    if (s->n < 8) {
        snprintf(s->names[s->n], sizeof s->names[0], "%s", m->name);
        snprintf(s->manifests[s->n], sizeof s->manifests[0], "%s", m->manifest);
        s->leases[s->n] = m->leases;
        s->pinned[s->n] = m->pinned;
        s->retired[s->n] = m->retired;
        s->mem[s->n] = m->mem_bytes;
    }
    s->n++;
}

static struct seen loaded(struct al_serve_models *mm)
{
    struct seen s;
    memset(&s, 0, sizeof s);
    al_serve_foreach_loaded(mm, collect, &s);
    return s;
}

static void test_config_default(void **state)
{
    struct al_serve_config c;
    memset(&c, 0x5a, sizeof c);
    al_serve_config_default(&c);
    assert_int_equal(c.defaults.threads, -1);
    assert_int_equal(c.defaults.mlock, -1);
    assert_int_equal(c.n_overrides, 0);
    assert_int_equal(c.n_pinned, 0);
    assert_int_equal(c.budget_bytes, 0);
    assert_int_equal(c.max_loaded, 0);
    assert_true(c.keep_alive_s == 300);
    assert_string_equal(c.chat_fallback, "chatml");
}

static void test_new_needs_a_store(void **state)
{
    char home[4200];
    snprintf(home, sizeof home, "%s/nothing-here", g_dir);
    struct al_serve_config c = config();
    struct al_serve_models *mm = NULL;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_serve_new(home, &c, &mm, &err), AL_ERR_NOT_FOUND);
    assert_null(mm);
    struct stat st;
    assert_int_not_equal(stat(home, &st), 0); /* not created */
    al_serve_free(NULL);
    al_serve_release(NULL);
    al_serve_names_free(NULL, 0);
}

static void test_leases(void **state)
{
    const char *home = g_base;
    struct al_serve_config c = config();
    struct al_serve_models *mm = NULL;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_serve_new(home, &c, &mm, &err), AL_OK);
    assert_int_equal(loaded(mm).n, 0); /* nothing loaded until asked */

    struct al_serve_lease *a = NULL, *b = NULL;
    assert_int_equal(al_serve_acquire(mm, "stories", &a, &err), AL_OK);
    assert_string_equal(al_serve_lease_name(a), "stories");
    assert_string_equal(al_serve_lease_digest(a), TU_FIXTURE_DIGEST);
    assert_true(strncmp(loaded(mm).manifests[0], "sha256:", 7) == 0); /* the version's manifest */
    assert_string_equal(al_serve_lease_chat_fallback(a), "chatml");
    struct al_engine_model_info info;
    al_engine_model_info(al_serve_lease_engine(a), &info);
    assert_string_equal(info.digest, TU_FIXTURE_DIGEST);
    assert_int_equal(info.n_ctx, 128); /* the configured settings */
    /* another spelling of the same version: the same loaded model */
    assert_int_equal(al_serve_acquire(mm, "stories:1.0", &b, &err), AL_OK);
    assert_ptr_equal(a, b);
    struct seen s = loaded(mm);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.leases[0], 2);
    assert_false(s.pinned[0]);
    assert_true(s.mem[0] >= info.kv_bytes + 1000000); /* weights and KV cache count */
    al_serve_release(b);
    al_serve_release(a);
    s = loaded(mm);
    assert_int_equal(s.n, 1); /* idle, still loaded (keep-alive) */
    assert_int_equal(s.leases[0], 0);

    /* refusals: *out stays NULL */
    struct al_serve_lease *l = NULL;
    assert_int_equal(al_serve_acquire(mm, "storeis", &l, &err), AL_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "stories")); /* did you mean */
    assert_null(l);
    al_err_clear(&err);
    assert_int_equal(al_serve_acquire(mm, NULL, &l, &err), AL_ERR_USAGE);
    assert_non_null(strstr(err.msg, "no default model"));
    al_err_clear(&err);
    assert_int_equal(al_serve_acquire(mm, "", &l, &err), AL_ERR_USAGE);
    assert_null(l);
    char longref[400];
    memset(longref, 'a', sizeof longref - 1);
    longref[sizeof longref - 1] = '\0';
    al_err_clear(&err);
    assert_int_equal(al_serve_acquire(mm, longref, &l, &err), AL_ERR_LIMIT);
    assert_null(l);
    al_err_clear(&err);
    assert_int_equal(al_serve_exists(mm, "gen:1.0", &err), AL_OK);
    assert_int_equal(al_serve_exists(mm, "gen:2.0", &err), AL_ERR_NOT_FOUND);
    assert_int_equal(loaded(mm).n, 1); /* exists loads nothing */

    char **names = NULL;
    size_t n = 0;
    assert_int_equal(al_serve_names(mm, &names, &n, &err), AL_OK);
    assert_int_equal(n, 2);
    assert_true((!strcmp(names[0], "gen") && !strcmp(names[1], "stories")) ||
                (!strcmp(names[0], "stories") && !strcmp(names[1], "gen")));
    al_serve_names_free(names, n);
    al_serve_free(mm);
}

static void test_caps(void **state)
{
    const char *home = g_base;
    struct al_serve_config c = config();
    c.max_loaded = 1;
    struct al_serve_models *mm = NULL;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_serve_new(home, &c, &mm, &err), AL_OK);
    struct al_serve_lease *a = NULL, *b = NULL;
    assert_int_equal(al_serve_acquire(mm, "stories", &a, &err), AL_OK);
    /* the one slot is in use: refused, nothing evicted */
    assert_int_equal(al_serve_acquire(mm, "gen", &b, &err), AL_ERR_BUSY);
    assert_non_null(strstr(err.msg, "no room to load another model"));
    assert_null(b);
    assert_int_equal(loaded(mm).n, 1);
    /* idle now: evicted for the other */
    al_serve_release(a);
    al_err_clear(&err);
    assert_int_equal(al_serve_acquire(mm, "gen", &b, &err), AL_OK);
    struct seen s = loaded(mm);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.names[0], "gen");
    al_serve_release(b);
    al_serve_free(mm);

    /* a byte budget: one model always fits, a second only in an idle one's place */
    c = config();
    c.budget_bytes = 1;
    assert_int_equal(al_serve_new(home, &c, &mm, &err), AL_OK);
    a = b = NULL;
    assert_int_equal(al_serve_acquire(mm, "stories", &a, &err), AL_OK);
    assert_int_equal(al_serve_acquire(mm, "gen", &b, &err), AL_ERR_BUSY);
    assert_non_null(strstr(err.msg, "budget bytes, all in use"));
    al_serve_release(a);
    al_err_clear(&err);
    assert_int_equal(al_serve_acquire(mm, "gen", &b, &err), AL_OK);
    assert_int_equal(loaded(mm).n, 1);
    al_serve_release(b);
    al_serve_free(mm);
}

static void test_pinned_preload(void **state)
{
    const char *home = g_base;
    struct al_serve_config c = config();
    snprintf(c.pinned[0], sizeof c.pinned[0], "gen");
    c.n_pinned = 1;
    struct al_serve_models *mm = NULL;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_serve_new(home, &c, &mm, &err), AL_OK);
    assert_true(al_serve_loading(mm)); /* not loaded yet */
    assert_int_equal(al_serve_preload(mm, &err), AL_OK);
    assert_false(al_serve_loading(mm));
    struct seen s = loaded(mm);
    assert_int_equal(s.n, 1);
    assert_true(s.pinned[0]);
    /* no ref: the first pinned one */
    struct al_serve_lease *l = NULL;
    assert_int_equal(al_serve_acquire(mm, NULL, &l, &err), AL_OK);
    assert_string_equal(al_serve_lease_name(l), "gen");
    al_serve_release(l);
    al_serve_free(mm);

    /* an unknown pinned ref: preload says so */
    snprintf(c.pinned[0], sizeof c.pinned[0], "nosuch");
    assert_int_equal(al_serve_new(home, &c, &mm, &err), AL_OK);
    assert_int_equal(al_serve_preload(mm, &err), AL_ERR_NOT_FOUND);
    assert_false(al_serve_loading(mm));
    assert_int_equal(loaded(mm).n, 0);
    al_serve_free(mm);
}

static void test_reload_retires(void **state)
{
    char *home = store("reload");
    struct al_repo *r = NULL;
    struct al_err err = AL_ERR_INIT;
    const char *paths[] = {g_gen};
    assert_int_equal(al_repo_open(home, false, &r, &err), AL_OK);
    assert_int_equal(al_repo_add(r, "stories:2.0", paths, 1, NULL, NULL, NULL, &err), AL_OK);
    struct al_serve_config c = config();
    struct al_serve_models *mm = NULL;
    assert_int_equal(al_serve_new(home, &c, &mm, &err), AL_OK);
    struct al_serve_lease *old = NULL, *l = NULL;
    assert_int_equal(al_serve_acquire(mm, "stories", &old, &err), AL_OK);
    char old_manifest[80];
    snprintf(old_manifest, sizeof old_manifest, "%s", loaded(mm).manifests[0]); /* the one loaded */
    assert_string_not_equal(al_serve_lease_digest(old), TU_FIXTURE_DIGEST); /* 2.0: the generated model */

    /* activated since: served only after a reload (references are remembered) */
    assert_int_equal(al_repo_activate(r, "stories:1.0", NULL, &err), AL_OK);
    assert_int_equal(al_serve_acquire(mm, "stories", &l, &err), AL_OK);
    assert_ptr_equal(l, old);
    al_serve_release(l);
    l = NULL;
    assert_int_equal(al_serve_reload(mm, &c, &err), AL_OK);
    assert_int_equal(al_serve_acquire(mm, "stories", &l, &err), AL_OK);
    assert_string_equal(al_serve_lease_digest(l), TU_FIXTURE_DIGEST);
    /* the old version: retired, still usable by its holder */
    struct seen s = loaded(mm);
    assert_int_equal(s.n, 2);
    int ri = s.retired[0] ? 0 : 1;
    assert_true(s.retired[ri]);
    assert_false(s.retired[1 - ri]);
    assert_int_equal(s.leases[ri], 1);
    assert_string_equal(s.manifests[ri], old_manifest);
    struct al_engine_model_info info;
    al_engine_model_info(al_serve_lease_engine(old), &info);
    assert_true(info.n_vocab == 32000);
    /* its last release frees it */
    al_serve_release(old);
    s = loaded(mm);
    assert_int_equal(s.n, 1);
    assert_false(s.retired[0]);
    al_serve_release(l);
    al_serve_free(mm);
    al_repo_free(r);
    free(home);
}

static void test_failed_load_leaves_nothing(void **state)
{
    char *home = store("damaged");
    /* one byte of the fixture's blob changed behind the store's back */
    char blob[4300];
    snprintf(blob, sizeof blob, "%s/blobs/sha256/%s", home, al_digest_hex(TU_FIXTURE_DIGEST));
    chmod(blob, 0644);
    size_t len = 0;
    char *data = tu_read_file(blob, &len);
    assert_non_null(data);
    data[len - 1] ^= 1;
    tu_write_file(blob, data, len);
    free(data);
    struct al_serve_config c = config();
    struct al_serve_models *mm = NULL;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_serve_new(home, &c, &mm, &err), AL_OK);
    for (int i = 0; i < 2; i++) { /* twice: no entry left half-loaded to wait for */
        struct al_serve_lease *l = NULL;
        al_err_clear(&err);
        assert_int_equal(al_serve_acquire(mm, "stories", &l, &err), AL_ERR_VERIFY);
        assert_non_null(strstr(err.msg, "does not match its digest"));
        assert_null(l);
        assert_int_equal(loaded(mm).n, 0);
    }
    /* the other model still loads */
    struct al_serve_lease *g = NULL;
    assert_int_equal(al_serve_acquire(mm, "gen", &g, &err), AL_OK);
    al_serve_release(g);
    al_serve_free(mm);
    free(home);
}

static void test_keep_alive(void **state)
{
    const char *home = g_base;
    struct al_serve_config c = config();
    c.keep_alive_s = 0;
    struct al_serve_models *mm = NULL;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_serve_new(home, &c, &mm, &err), AL_OK);
    struct al_serve_lease *l = NULL;
    assert_int_equal(al_serve_acquire(mm, "gen", &l, &err), AL_OK);
    al_serve_release(l);
    /* the reaper unloads it; poll for that (the deadline only bounds a hang) */
    struct timespec t0, now, nap = {0, 20 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (loaded(mm).n != 0) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 60)
            fail_msg("an idle model with keep_alive 0 was not unloaded");
        nanosleep(&nap, NULL);
    }
    /* and loads again when asked */
    l = NULL;
    assert_int_equal(al_serve_acquire(mm, "gen", &l, &err), AL_OK);
    al_serve_release(l);
    al_serve_free(mm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_default),
        cmocka_unit_test(test_new_needs_a_store),
        cmocka_unit_test(test_leases),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_pinned_preload),
        cmocka_unit_test(test_reload_retires),
        cmocka_unit_test(test_failed_load_leaves_nothing),
        cmocka_unit_test(test_keep_alive),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
