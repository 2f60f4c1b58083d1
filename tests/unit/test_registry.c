/* Unit tests of src/registry: references, credentials from auth.json, the
 * Bearer-token challenge flow (a token service on loopback), and a blob
 * longer than its descriptor. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "tu_httpd.h"
#include "registry/registry.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"

static void test_refs(void **state)
{
    (void)state;
    struct al_reg_ref r;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_reg_ref_parse("reg.site:5000/models/demo:1.0", &r, &err), AL_OK);
    assert_string_equal(r.host, "reg.site:5000");
    assert_string_equal(r.repo, "models/demo");
    assert_string_equal(r.tag, "1.0");
    assert_string_equal(r.digest, "");
    assert_int_equal(al_reg_ref_parse("docker://127.0.0.1:1/a/b_c__d/e-f", &r, &err), AL_OK);
    assert_string_equal(r.repo, "a/b_c__d/e-f");
    assert_string_equal(r.tag, "latest");
    assert_int_equal(al_reg_ref_parse("h/m@" D1, &r, &err), AL_OK);
    assert_string_equal(r.digest, D1);
    assert_string_equal(r.tag, "");
    const char *bad[] = {"", "noslash", "/repo", "h/Repo", "h/a//b", "h/-a", "h/a-", "h/a:", "h/a:-x", "h/a@sha256:12",
                         "h/a/", "h\x01/a", "h/a b", "h/a@" D1 "x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct al_err e = AL_ERR_INIT;
        assert_int_not_equal(al_reg_ref_parse(bad[i], &r, &e), AL_OK);
        assert_true(e.msg[0] != '\0');
    }
    char tag[AL_REG_TAG_MAX + 1];
    al_reg_referrers_tag(D1, tag);
    assert_string_equal(tag, "sha256-1111111111111111111111111111111111111111111111111111111111111111");
}

static void test_auth_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/al-regtest.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/auth.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    /* alice:pw */
    fputs("{\"auths\":{\"other:1\":{\"auth\":\"Ym9iOng=\"},\"reg.site:5000\":{\"auth\":\"YWxpY2U6cHc=\"}}}", f);
    fclose(f);
    struct al_reg_ref r;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_reg_ref_parse("reg.site:5000/m:1", &r, &err), AL_OK);
    struct al_reg_opts o = {.auth_file = path};
    struct al_reg *reg = NULL;
    assert_int_equal(al_reg_open(&r, &o, &reg, &err), AL_OK);
    assert_string_equal(al_reg_cred_source(reg), path);
    al_reg_free(reg);
    assert_int_equal(al_reg_ref_parse("unknown:1/m:1", &r, &err), AL_OK);
    assert_int_equal(al_reg_open(&r, &o, &reg, &err), AL_OK);
    assert_string_equal(al_reg_cred_source(reg), "none");
    al_reg_free(reg);
    unlink(path);
    rmdir(dir);
}

/* A registry behind a token service: /v2/ wants "Bearer tok-alice"; /token
 * gives it for Basic alice:pw only; blob D1 is 16 bytes long. */
struct srv {
    char realm[128];
    int token_calls;
};

static void handler(void *ud, const struct tu_req *rq, struct tu_reply *rp)
{
    struct srv *s = ud;
    if (strncmp(rq->url, "/token", 6) == 0) {
        s->token_calls++;
        if (rq->auth && strcmp(rq->auth, "Basic YWxpY2U6cHc=") == 0) {
            rp->body = tu_strdup("{\"token\":\"tok-alice\"}");
            rp->content_type = "application/json";
        } else {
            rp->status = 401;
            rp->body = tu_strdup("{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"bad credentials\"}]}");
        }
        rp->len = strlen(rp->body);
        return;
    }
    if (!rq->auth || strcmp(rq->auth, "Bearer tok-alice") != 0) {
        rp->status = 401;
        rp->www_auth = s->realm;
        rp->body = tu_strdup("{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}");
        rp->len = strlen(rp->body);
        return;
    }
    if (strcmp(rq->url, "/v2/m/blobs/" D1) == 0) {
        rp->body = tu_strdup("0123456789abcdef");
        rp->len = 16;
        return;
    }
    rp->body = tu_strdup("{}");
    rp->len = 2;
}

static enum al_rc count_sink(void *ud, const void *data, size_t len, struct al_err *err)
{
    (void)data, (void)err;
    *(size_t *)ud += len;
    return AL_OK;
}

static void test_bearer(void **state)
{
    (void)state;
    struct srv s = {.token_calls = 0};
    struct tu_httpd *h = tu_httpd_start(handler, &s);
    assert_non_null(h);
    snprintf(s.realm, sizeof s.realm, "Bearer realm=\"%s/token\",service=\"test\",scope=\"repository:m:pull\"",
             h->url);
    char ref[96];
    snprintf(ref, sizeof ref, "127.0.0.1:%d/m:1", h->port);
    struct al_reg_ref r;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_reg_ref_parse(ref, &r, &err), AL_OK);
    /* Right credentials: the challenge is answered with a token. */
    struct al_reg_opts o = {.plain_http = true, .user = "alice", .password = "pw"};
    struct al_reg *reg = NULL;
    assert_int_equal(al_reg_open(&r, &o, &reg, &err), AL_OK);
    assert_int_equal(al_reg_ping(reg, &err), AL_OK);
    assert_int_equal(s.token_calls, 1);
    /* The token is kept: no second token request. */
    size_t n = 0;
    assert_int_equal(al_reg_blob_get(reg, D1, 16, count_sink, &n, &err), AL_OK);
    assert_int_equal(n, 16);
    assert_int_equal(s.token_calls, 1);
    /* A blob longer than its descriptor says is refused. */
    n = 0;
    struct al_err e2 = AL_ERR_INIT;
    assert_int_equal(al_reg_blob_get(reg, D1, 8, count_sink, &n, &e2), AL_ERR_VERIFY);
    assert_non_null(strstr(e2.msg, "more than"));
    al_reg_free(reg);
    /* Wrong credentials: AL_ERR_AUTH with the registry's own words. */
    struct al_reg_opts bad = {.plain_http = true, .user = "alice", .password = "nope"};
    struct al_err e3 = AL_ERR_INIT;
    assert_int_equal(al_reg_open(&r, &bad, &reg, &e3), AL_OK);
    assert_int_equal(al_reg_ping(reg, &e3), AL_ERR_AUTH);
    assert_non_null(strstr(e3.msg, "bad credentials"));
    al_reg_free(reg);
    tu_httpd_stop(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refs),
        cmocka_unit_test(test_auth_file),
        cmocka_unit_test(test_bearer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
