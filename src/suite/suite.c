/*
 * suite.c: reading suite.json and golden.json, the defaults, and a starter
 * suite. Every number read is range-checked; every list is capped.
 */
#include "suite/suite_int.h"

#include "core/fs.h"
#include "core/limits.h"

static const char *const default_bench_text =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
    "One day, she saw a big, red ball. She wanted to play with it, but it was too high. "
    "Lily asked her mom for help, and together they found a long stick to reach the ball. ";

static const struct {
    const char *id, *prompt;
    int max_tokens;
} default_golden[] = {
    {"story-once", "Once upon a time", 32},
    {"story-lily", "Lily and her mom went to the park", 32},
    {"story-dog", "The little dog was sad because", 32},
    {"story-sun", "One sunny day, Tom", 32},
};

static enum al_rc suite_new(const char *dir, struct al_suite **out, struct al_err *err)
{
    struct al_suite *s = calloc(1, sizeof *s);
    if (!s)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    s->dir = strdup(dir ? dir : "");
    s->name = strdup("default");
    s->bench_prompts = calloc(1, sizeof *s->bench_prompts);
    if (!s->dir || !s->name || !s->bench_prompts) {
        al_suite_free(s);
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    s->bench_prompts[0] = strdup(default_bench_text);
    s->n_bench_prompts = s->bench_prompts[0] ? 1 : 0;
    s->concurrency[0] = 1;
    s->concurrency[1] = 2;
    s->concurrency[2] = 4;
    s->n_concurrency = 3;
    s->prompt_lengths[0] = 16;
    s->prompt_lengths[1] = 128;
    s->prompt_lengths[2] = 512;
    s->n_prompt_lengths = 3;
    s->gen_tokens = 64;
    s->top_k = 5;
    s->tol_logprob = 0.01;
    s->tol_relative = 0.02;
    s->tol_tie = 0.05;
    s->min_overlap = 0.5;
    *out = s;
    return AL_OK;
}

enum al_rc al_suite_default(struct al_suite **out, struct al_err *err)
{
    if (!out || *out)
        return al_err_set(err, AL_ERR_USAGE, "al_suite_default: bad arguments");
    return suite_new(NULL, out, err);
}

void al_suite_free(struct al_suite *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_bench_prompts; i++)
        free(s->bench_prompts[i]);
    free(s->bench_prompts);
    for (size_t i = 0; i < s->n_golden; i++) {
        free(s->golden[i].id);
        free(s->golden[i].prompt);
    }
    free(s->golden);
    free(s->name);
    free(s->dir);
    free(s);
}

enum al_rc al_suite_parse_json(const char *label, const char *text, size_t len, json_t **out, struct al_err *err)
{
    if (len > AL_LIMIT_SUITE_FILE)
        return al_err_set(err, AL_ERR_LIMIT, "'%s' is over the cap of %u bytes (AL_LIMIT_SUITE_FILE)", label,
                          AL_LIMIT_SUITE_FILE);
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return al_err_set(err, AL_ERR_INVALID, "'%s' is not valid JSON: line %d: %s", label, je.line, je.text);
    *out = j;
    return AL_OK;
}

/* A JSON object from memory; label names it in messages. */
static enum al_rc parse_object(const char *label, const char *text, size_t len, json_t **out, struct al_err *err)
{
    json_t *j = NULL;
    enum al_rc rc = al_suite_parse_json(label, text, len, &j, err);
    if (rc)
        return rc;
    if (!json_is_object(j)) {
        json_decref(j);
        return al_err_set(err, AL_ERR_INVALID, "'%s' is not a JSON object", label);
    }
    *out = j;
    return AL_OK;
}

enum al_rc al_suite_read_json(const char *path, bool optional, json_t **out, struct al_err *err)
{
    char *data = NULL;
    size_t len = 0;
    if (!al_fs_exists(path))
        return optional ? AL_ERR_NOT_FOUND : al_err_set(err, AL_ERR_NOT_FOUND, "'%s' does not exist", path);
    enum al_rc rc = al_fs_read_file(path, AL_LIMIT_SUITE_FILE, &data, &len, err);
    if (!rc)
        rc = parse_object(path, data, len, out, err);
    free(data);
    return rc;
}

/* An optional number in [lo, hi]; absent leaves *v alone. */
static enum al_rc get_num(json_t *obj, const char *key, double lo, double hi, double *v, const char *file,
                          struct al_err *err)
{
    json_t *x = json_object_get(obj, key);
    if (!x || json_is_null(x))
        return AL_OK;
    if (!json_is_number(x) || json_number_value(x) < lo || json_number_value(x) > hi)
        return al_err_set(err, AL_ERR_INVALID, "'%s': \"%s\" must be a number in [%g, %g]", file, key, lo, hi);
    *v = json_number_value(x);
    return AL_OK;
}

static enum al_rc get_int(json_t *obj, const char *key, int lo, int hi, int *v, const char *file,
                          struct al_err *err)
{
    double d = *v;
    enum al_rc rc = get_num(obj, key, lo, hi, &d, file, err);
    if (!rc && d != (double)(int)d)
        return al_err_set(err, AL_ERR_INVALID, "'%s': \"%s\" must be a whole number", file, key);
    *v = (int)d;
    return rc;
}

static enum al_rc get_levels(json_t *obj, const char *key, int hi, int *out, int *n, const char *file,
                             struct al_err *err)
{
    json_t *a = json_object_get(obj, key);
    if (!a)
        return AL_OK;
    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > AL_SUITE_LEVELS_MAX)
        return al_err_set(err, AL_ERR_INVALID, "'%s': \"%s\" must be a list of 1 to %d numbers", file, key,
                          AL_SUITE_LEVELS_MAX);
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *x = json_array_get(a, i);
        if (!json_is_integer(x) || json_integer_value(x) < 1 || json_integer_value(x) > hi)
            return al_err_set(err, AL_ERR_INVALID, "'%s': \"%s\" entries must be whole numbers in [1, %d]", file,
                              key, hi);
        out[i] = (int)json_integer_value(x);
    }
    *n = (int)json_array_size(a);
    return AL_OK;
}

/* golden.json's object j (NULL: there is none); path names it in messages. */
static enum al_rc load_golden(struct al_suite *s, const char *path, json_t *j, struct al_err *err)
{
    enum al_rc rc = AL_OK;
    if (!j)
        return AL_OK;
    json_t *a = json_object_get(j, "prompts");
    size_t n = json_array_size(a);
    if (!json_is_array(a)) {
        rc = al_err_set(err, AL_ERR_INVALID, "'%s': \"prompts\" must be a list", path);
        goto out;
    }
    if (n > AL_LIMIT_SUITE_PROMPTS) {
        rc = al_err_set(err, AL_ERR_LIMIT, "'%s': %zu prompts is over the cap of %d (AL_LIMIT_SUITE_PROMPTS)", path,
                        n, AL_LIMIT_SUITE_PROMPTS);
        goto out;
    }
    s->golden = calloc(n ? n : 1, sizeof *s->golden);
    if (!s->golden) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_array_get(a, i);
        const char *id = json_string_value(json_object_get(p, "id"));
        const char *text = json_string_value(json_object_get(p, "prompt"));
        int max_tokens = 32;
        if (!id || !*id || !text || !*text) {
            rc = al_err_set(err, AL_ERR_INVALID, "'%s': prompt %zu needs a non-empty \"id\" and \"prompt\"", path, i);
            goto out;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(s->golden[k].id, id) == 0) {
                rc = al_err_set(err, AL_ERR_INVALID, "'%s': prompt id '%s' appears twice", path, id);
                goto out;
            }
        rc = get_int(p, "max_tokens", 1, AL_LIMIT_GOLDEN_TOKENS, &max_tokens, path, err);
        if (rc)
            goto out;
        s->golden[i].id = strdup(id);
        s->golden[i].prompt = strdup(text);
        s->golden[i].max_tokens = max_tokens;
        s->n_golden = i + 1;
        if (!s->golden[i].id || !s->golden[i].prompt) {
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
out:
    return rc;
}

/* Parses suite.json's object j (and golden.json's, gj, NULL when there is
 * none) into a suite labelled dir; path and gpath name the files in messages. */
static enum al_rc suite_parse(const char *dir, const char *path, json_t *j, const char *gpath, json_t *gj,
                              struct al_suite **out, struct al_err *err)
{
    struct al_suite *s = NULL;
    enum al_rc rc = suite_new(dir, &s, err);
    if (rc)
        goto out;
    const char *fmt = json_string_value(json_object_get(j, "format"));
    if (!fmt || strcmp(fmt, AL_SUITE_FORMAT) != 0) {
        rc = al_err_set(err, AL_ERR_INVALID, "'%s': \"format\" must be \"%s\" (found %s%s%s)", path, AL_SUITE_FORMAT,
                        fmt ? "\"" : "", fmt ? fmt : "none", fmt ? "\"" : "");
        goto out;
    }
    const char *name = json_string_value(json_object_get(j, "name"));
    if (name) {
        free(s->name);
        s->name = strdup(name);
        if (!s->name) {
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    json_t *b = json_object_get(j, "bench");
    if (b) {
        json_t *pr = json_object_get(b, "prompts");
        if (pr) {
            size_t n = json_array_size(pr);
            if (!json_is_array(pr) || n == 0 || n > AL_LIMIT_SUITE_PROMPTS) {
                rc = al_err_set(err, AL_ERR_INVALID, "'%s': bench \"prompts\" must be a list of 1 to %d texts", path,
                                AL_LIMIT_SUITE_PROMPTS);
                goto out;
            }
            char **list = calloc(n, sizeof *list);
            if (!list) {
                rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
                goto out;
            }
            for (size_t i = 0; i < s->n_bench_prompts; i++)
                free(s->bench_prompts[i]);
            free(s->bench_prompts);
            s->bench_prompts = list;
            s->n_bench_prompts = 0;
            for (size_t i = 0; i < n; i++) {
                const char *t = json_string_value(json_array_get(pr, i));
                if (!t || !*t) {
                    rc = al_err_set(err, AL_ERR_INVALID, "'%s': bench prompt %zu is not a non-empty text", path, i);
                    goto out;
                }
                list[i] = strdup(t);
                s->n_bench_prompts = i + 1;
                if (!list[i]) {
                    rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
                    goto out;
                }
            }
        }
        if ((rc = get_levels(b, "concurrency", AL_LIMIT_SEQS, s->concurrency, &s->n_concurrency, path, err)) ||
            (rc = get_levels(b, "prompt_lengths", AL_LIMIT_PROMPT_TOKENS, s->prompt_lengths, &s->n_prompt_lengths,
                             path, err)) ||
            (rc = get_int(b, "gen_tokens", 1, AL_LIMIT_GOLDEN_TOKENS, &s->gen_tokens, path, err)) ||
            (rc = get_int(b, "requests", 0, AL_LIMIT_BENCH_REQUESTS, &s->requests, path, err)))
            goto out;
    }
    json_t *t = json_object_get(j, "targets");
    if (t && ((rc = get_num(t, "min_decode_tps", 0, 1e9, &s->targets.min_decode_tps, path, err)) ||
              (rc = get_num(t, "max_ttft_p95_ms", 0, 1e9, &s->targets.max_ttft_p95_ms, path, err)) ||
              (rc = get_num(t, "max_rss_mb", 0, 1e9, &s->targets.max_rss_mb, path, err))))
        goto out;
    json_t *g = json_object_get(j, "golden");
    if (g) {
        json_t *tol = json_object_get(g, "tolerance");
        if ((rc = get_int(g, "top_k", 1, AL_LIMIT_TOP_PROBS, &s->top_k, path, err)))
            goto out;
        if (tol && ((rc = get_num(tol, "logprob", 0, 100, &s->tol_logprob, path, err)) ||
                    (rc = get_num(tol, "relative", 0, 100, &s->tol_relative, path, err)) ||
                    (rc = get_num(tol, "tie", 0, 100, &s->tol_tie, path, err)) ||
                    (rc = get_num(tol, "min_overlap", 0, 1, &s->min_overlap, path, err))))
            goto out;
    }
    rc = load_golden(s, gpath, gj, err);
out:
    if (rc) {
        al_suite_free(s);
        return rc;
    }
    *out = s;
    return AL_OK;
}

enum al_rc al_suite_load(const char *dir, struct al_suite **out, struct al_err *err)
{
    if (!dir || !out || *out)
        return al_err_set(err, AL_ERR_USAGE, "al_suite_load: bad arguments");
    char path[AL_LIMIT_PATH], gpath[AL_LIMIT_PATH];
    json_t *j = NULL, *gj = NULL;
    enum al_rc rc = al_path_fmt(path, sizeof path, err, "%s/suite.json", dir);
    if (!rc)
        rc = al_path_fmt(gpath, sizeof gpath, err, "%s/golden.json", dir);
    if (!rc)
        rc = al_suite_read_json(path, false, &j, err);
    if (!rc) {
        rc = al_suite_read_json(gpath, true, &gj, err);
        if (rc == AL_ERR_NOT_FOUND)
            rc = AL_OK;
    }
    if (!rc)
        rc = suite_parse(dir, path, j, gpath, gj, out, err);
    json_decref(j);
    json_decref(gj);
    return rc;
}

enum al_rc al_suite_parse(const char *label, const char *suite_text, size_t suite_len, const char *golden_text,
                          size_t golden_len, struct al_suite **out, struct al_err *err)
{
    if (!label || !suite_text || !out || *out)
        return al_err_set(err, AL_ERR_USAGE, "al_suite_parse: bad arguments");
    char path[AL_LIMIT_PATH], gpath[AL_LIMIT_PATH];
    snprintf(path, sizeof path, "%s/suite.json", label);
    snprintf(gpath, sizeof gpath, "%s/golden.json", label);
    json_t *j = NULL, *gj = NULL;
    enum al_rc rc = parse_object(path, suite_text, suite_len, &j, err);
    if (!rc && golden_text)
        rc = parse_object(gpath, golden_text, golden_len, &gj, err);
    if (!rc)
        rc = suite_parse(label, path, j, gpath, gj, out, err);
    json_decref(j);
    json_decref(gj);
    return rc;
}

static enum al_rc write_json(const char *dir, const char *file, json_t *j, struct al_err *err)
{
    char path[AL_LIMIT_PATH];
    enum al_rc rc = al_path_fmt(path, sizeof path, err, "%s/%s", dir, file);
    if (rc)
        return rc;
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!text)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory writing '%s'", path);
    size_t len = strlen(text);
    char *nl = realloc(text, len + 2);
    if (!nl) {
        free(text);
        return al_err_set(err, AL_ERR_NOMEM, "out of memory writing '%s'", path);
    }
    nl[len] = '\n';
    nl[len + 1] = '\0';
    rc = al_fs_write_atomic(path, nl, len + 1, err);
    free(nl);
    return rc;
}

enum al_rc al_suite_write_json(const char *dir, const char *file, json_t *j, struct al_err *err)
{
    return write_json(dir, file, j, err);
}

enum al_rc al_suite_model_load(const char *path, const char *digest, const struct al_engine_lora *loras, int n_loras,
                               int n_ctx_train, int threads, int gpu_layers, int n_seq, int n_ctx,
                               struct al_engine_model **out, struct al_err *err)
{
    struct al_engine_model_params mp = al_engine_model_params_default();
    mp.loras = loras;
    mp.n_loras = n_loras;
    mp.threads = threads;
    mp.n_gpu_layers = gpu_layers;
    mp.n_seq = n_seq;
    mp.queue_max = n_seq * 4 + 64;
    mp.n_ctx = n_ctx_train > 0 && n_ctx_train < n_ctx ? n_ctx_train : n_ctx;
    return al_engine_model_load(path, digest, &mp, out, err);
}

enum al_rc al_suite_init_dir(const char *dir, struct al_err *err)
{
    char path[AL_LIMIT_PATH];
    enum al_rc rc = al_path_fmt(path, sizeof path, err, "%s/suite.json", dir);
    if (rc)
        return rc;
    if (al_fs_exists(path))
        return al_err_set(err, AL_ERR_EXISTS, "'%s' exists already", path);
    rc = al_fs_mkdirs(dir, 0755, err);
    if (rc)
        return rc;
    json_t *suite = json_pack(
        "{s:s, s:s, s:{s:[s], s:[i,i,i], s:[i,i,i], s:i, s:i}, s:{s:f, s:f, s:f}, s:{s:i, s:{s:f, s:f, s:f, s:f}}}",
        "format", AL_SUITE_FORMAT, "name", "starter", "bench", "prompts", default_bench_text, "concurrency", 1, 2, 4,
        "prompt_lengths", 16, 128, 512, "gen_tokens", 64, "requests", 0, "targets", "min_decode_tps", 0.0,
        "max_ttft_p95_ms", 0.0, "max_rss_mb", 0.0, "golden", "top_k", 5, "tolerance", "logprob", 0.01, "relative", 0.02, "tie", 0.05,
        "min_overlap", 0.5);
    json_t *golden = json_pack("{s:[]}", "prompts");
    if (!suite || !golden) {
        json_decref(suite);
        json_decref(golden);
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    json_t *list = json_object_get(golden, "prompts");
    for (size_t i = 0; i < sizeof default_golden / sizeof default_golden[0]; i++)
        json_array_append_new(list, json_pack("{s:s, s:s, s:i}", "id", default_golden[i].id, "prompt",
                                              default_golden[i].prompt, "max_tokens", default_golden[i].max_tokens));
    rc = write_json(dir, "golden.json", golden, err);
    if (!rc)
        rc = write_json(dir, "suite.json", suite, err);
    json_decref(suite);
    json_decref(golden);
    return rc;
}

static void check_one(struct al_target_check *c, const char *name, double target, double measured, bool is_min,
                      const char *unit)
{
    c->name = name;
    c->target = target;
    c->measured = measured;
    c->met = measured < 0 || (is_min ? measured >= target : measured <= target);
    if (measured < 0)
        snprintf(c->line, sizeof c->line, "%s %g: not measured here (skipped)", name, target);
    else
        snprintf(c->line, sizeof c->line, "%s %g: measured %.2f %s: %s", name, target, measured, unit,
                 c->met ? "met" : "MISSED");
}

int al_targets_check(const struct al_targets *t, double decode_tps, double ttft_p95_ms, double rss_mb,
                     struct al_target_check out[3])
{
    int n = 0;
    if (t->min_decode_tps > 0)
        check_one(&out[n++], "min_decode_tps", t->min_decode_tps, decode_tps, true, "tokens/s");
    if (t->max_ttft_p95_ms > 0)
        check_one(&out[n++], "max_ttft_p95_ms", t->max_ttft_p95_ms, ttft_p95_ms, false, "ms");
    if (t->max_rss_mb > 0)
        check_one(&out[n++], "max_rss_mb", t->max_rss_mb, rss_mb, false, "MiB");
    return n;
}
