/*
 * tu_model.h: real models for the unit tests: the trained fixture
 * ($AL_FIXTURES/stories260K.gguf) and tiny random ones written by
 * airlock-ggufgen ($AL_BUILD). A missing fixture or tool fails the test
 * (it never skips). Header-only (static inline), like tu_httpd.h.
 */
#ifndef AL_TU_MODEL_H
#define AL_TU_MODEL_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "testutil.h"
#include "repo/repo.h"
#include "serve/models.h"
#include "server/server.h"

#define TU_FIXTURE_DIGEST "sha256:270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d"

/* Writes a tiny llama-architecture model (about 4 MB, 32000-token vocabulary)
 * with seeded random weights to path. */
static inline void tu_gen_model(const char *path, int seed)
{
    const char *build = getenv("AL_BUILD"), *vocab = getenv("AL_VOCAB_DIR");
    if (!build || !vocab)
        fail_msg("AL_BUILD and AL_VOCAB_DIR must be set: run through ctest");
    int rc = tu_system("'%s/airlock-ggufgen' --out '%s' --layers 1 --embd 16 --ff 32 --heads 1 --ctx 128 "
                       "--seed %d --vocab '%s/ggml-vocab-llama-spm.gguf' >/dev/null 2>&1",
                       build, path, seed, vocab);
    if (rc != 0)
        fail_msg("airlock-ggufgen failed (%d) writing '%s'", rc, path);
}

/* A store at home (created) holding the fixture as ref ("stories:1.0"). */
static inline void tu_store_with_fixture(const char *home, const char *ref)
{
    struct al_repo *repo = NULL;
    struct al_err err = AL_ERR_INIT;
    const char *paths[] = {tu_fixture("stories260K.gguf")};
    if (al_repo_open(home, true, &repo, &err) || al_repo_add(repo, ref, paths, 1, NULL, NULL, NULL, &err))
        fail_msg("cannot add the fixture to '%s': %s", home, err.msg);
    al_repo_free(repo);
}

/* airlock's own server, in this process, on 127.0.0.1 and a free port,
 * serving the store at home with pinned (a ref) as the default model.
 * url gets "http://127.0.0.1:PORT". */
static inline void tu_serve(const char *home, const char *pinned, struct al_serve_models **mm, struct al_server **srv,
                            char url[64])
{
    struct al_serve_config cfg;
    al_serve_config_default(&cfg);
    cfg.defaults.threads = 2;
    cfg.defaults.ctx = 256;
    snprintf(cfg.pinned[0], sizeof cfg.pinned[0], "%s", pinned);
    cfg.n_pinned = 1;
    struct al_err err = AL_ERR_INIT;
    if (al_serve_new(home, &cfg, mm, &err))
        fail_msg("models: %s", err.msg);
    struct al_server_opts so;
    al_server_opts_default(&so);
    so.port = 0;
    if (al_server_start(&so, *mm, srv, &err))
        fail_msg("server: %s", err.msg);
    snprintf(url, 64, "http://127.0.0.1:%d", al_server_port(*srv));
}

#endif
