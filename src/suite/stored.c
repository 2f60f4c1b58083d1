/*
 * stored.c: the suite a version carries in the store (bench/suite.json,
 * bench/golden.json, bench/recording.json, as `airlock pack --bench DIR
 * [--record-golden]` put them in the bundle), read through the repo so each
 * file is checked against its digest before it is parsed.
 */
#include "suite/suite_int.h"

#include "core/limits.h"
#include "repo/repo.h"

enum al_rc al_suite_load_stored(struct al_repo *r, const struct al_version *v, const char *ref,
                                struct al_suite **s, struct al_golden_run **rec, struct al_err *err)
{
    static const char *const names[3] = {"bench/suite.json", "bench/golden.json", "bench/recording.json"};
    char *text[3] = {NULL, NULL, NULL};
    size_t len[3] = {0, 0, 0};
    enum al_rc rc = AL_OK;
    char label[AL_LIMIT_PATH];
    snprintf(label, sizeof label, "%s@%.19s bench", v->model, v->manifest);
    /* golden.json is optional; recording.json only wanted with rec. */
    for (int i = 0; i < (rec ? 3 : 2) && !rc; i++) {
        struct al_err e = AL_ERR_INIT;
        rc = al_repo_read_file(r, v, names[i], AL_LIMIT_SUITE_FILE, &text[i], &len[i], &e);
        if (rc == AL_ERR_NOT_FOUND && i == 0)
            al_err_set(err, AL_ERR_NOT_FOUND,
                       "'%s' (%s@%.19s) has no suite: it was packed without --bench; give --suite DIR", ref,
                       v->model, v->manifest);
        else if (rc == AL_ERR_NOT_FOUND && i == 2)
            al_err_set(err, AL_ERR_NOT_FOUND,
                       "'%s' (%s@%.19s) has a suite but no recording: it was packed without --record-golden; "
                       "give --suite DIR holding a recording.json",
                       ref, v->model, v->manifest);
        else if (rc == AL_ERR_NOT_FOUND)
            rc = AL_OK;
        else if (rc)
            al_err_set(err, rc, "%s", e.msg);
    }
    if (!rc)
        rc = al_suite_parse(label, text[0], len[0], text[1], len[1], s, err);
    if (!rc && rec) {
        char rlabel[AL_LIMIT_PATH + 32];
        snprintf(rlabel, sizeof rlabel, "%s/recording.json", label);
        rc = al_golden_parse(rlabel, text[2], len[2], rec, err);
        if (rc) {
            al_suite_free(*s);
            *s = NULL;
        }
    }
    for (int i = 0; i < 3; i++)
        free(text[i]);
    return rc;
}
