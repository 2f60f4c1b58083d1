/*
 * cmd_finetune.c: airlock finetune, a new version trained from a stored one
 * on local text (engine/finetune.h), with its provenance recorded.
 *
 * A run is a job named by its inputs: the base's weight digest, the data
 * files' digests (in order) and the hyperparameters. After each epoch the
 * weights go to the store's tmp/finetune/<job>/ (written, fsync'd, renamed,
 * then state.json replaced atomically to point at them), so a run killed
 * at any point re-runs from the last finished epoch: the same command
 * finds the job's state and resumes. tmp/'s sweep removes files only, never
 * this folder. The checkpoint is loaded through the verified path, against
 * the digest its state recorded. What is not in a checkpoint: the
 * optimizer's moments (llama.cpp keeps them out of reach; finetune.h).
 */
#include <dirent.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/add_checks.h"
#include "cli/cli.h"
#include "cli/cli_util.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/limits.h"
#include "engine/engine.h"
#include "engine/finetune.h"

int al_cmd_finetune(int argc, char **argv);

static const char finetune_help[] =
    "usage: airlock finetune REF --data FILE|DIR --epochs N --lr X -o NAME[:TAG]\n"
    "                        [--full] [--ctx N] [--seed N] [--threads N]\n"
    "                        [--resume | --restart] [--no-activate] [--json]\n\n"
    "Trains the stored GGUF model REF on local text on this machine's CPU\n"
    "(llama.cpp's training API, AdamW) and adds the result as the new version\n"
    "NAME:TAG. The text never leaves the machine and is not stored: the new\n"
    "version's provenance (its add event and its manifest, so its bundles\n"
    "too; 'airlock show' prints it) records the base version and weight\n"
    "digest, each data file's name, size and sha256, the hyperparameters, the\n"
    "loss per epoch, the loss before and after, and the operator. The base's\n"
    "other files (README, license, tokenizer, templates) and card come along;\n"
    "the result is scanned and its license decided as 'airlock add' does.\n\n"
    "Full fine-tuning only: the pinned llama.cpp trains a model's own tensors\n"
    "and cannot train LoRA matrices, so every weight is trained and the result\n"
    "is a complete model (fit for small models such as stories260K).\n\n"
    "The text (a file, or the regular files of a folder in name order,\n"
    "concatenated) is tokenized whole; its last tenth (at least one window) is\n"
    "held out and never trained on. The rest is cut into windows of --ctx\n"
    "tokens, each epoch trains on all of them in an order drawn from --seed\n"
    "and the epoch, then measures the held-out loss. On a terminal a progress\n"
    "bar shows the loss, tokens/s and the time left.\n\n"
    "Checkpoints: after each epoch the weights are saved under the store's\n"
    "tmp/finetune/. Running the same job again (same base weights, data\n"
    "digests, epochs, lr, ctx, seed) after an interruption resumes from the\n"
    "last finished epoch and says so; the optimizer's moments are not saved\n"
    "(llama.cpp does not expose them), so they start afresh on resume.\n\n"
    "Refused, with the store unchanged: empty data or data too short for one\n"
    "training and one held-out window (exit status 4), a base that is not a\n"
    "GGUF model (4), an invalid NAME:TAG (2), a damaged base or checkpoint (5).\n\n"
    "  --data FILE|DIR  the training text (up to 16 MiB, UTF-8 or ASCII text)\n"
    "  --epochs N       passes over the training windows (1 to 1000)\n"
    "  --lr X           AdamW learning rate, constant (e.g. 0.001)\n"
    "  -o NAME[:TAG]    the new version (default tag: latest)\n"
    "  --full           train every weight (the default and only mode)\n"
    "  --ctx N          tokens per window, a multiple of 256 (default 256);\n"
    "                   the new model's context length is N\n"
    "  --seed N         the order of the windows in each epoch (default 42)\n"
    "  --threads N      CPU threads (default 2)\n"
    "  --resume         require a checkpoint of this job and resume from it\n"
    "  --restart        discard a checkpoint of this job and start afresh\n"
    "  --no-activate    keep the currently active version of NAME\n"
    "  --json           print the result as JSON on stdout\n\n"
    "example: airlock finetune stories --data notes.txt --epochs 3 --lr 0.001 -o stories:ft\n";

struct data_file {
    char name[AL_LIMIT_FILE_NAME + 1];
    char digest[AL_DIGEST_SIZE];
    size_t size;
};

struct job {
    /* inputs */
    const char *base_ref;
    struct al_weights w;
    struct data_file *files;
    size_t n_files;
    char *text;
    size_t text_len;
    int epochs, n_ctx, threads;
    double lr;
    uint32_t seed;
    bool json, tty;
    /* the checkpoint */
    char id[33];
    char dir[AL_LIMIT_PATH];
    json_t *spec;    /* what names the job */
    json_t *curve;   /* [{epoch, train, val}] */
    json_t *before;  /* {train, val}: of the base, from the first run */
    int resumed_from;
    char ckpt[AL_LIMIT_PATH];        /* the last checkpoint's weights, "" none */
    char ckpt_digest[AL_DIGEST_SIZE];
    double t_last_bar;
    const struct al_engine_ft_result *res; /* the engine's, filled as it goes (the loss before) */
};

/* ---- the data ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads one data file into j->text (after what is there), with its digest. */
static enum al_rc read_one(struct job *j, const char *path, const char *name, struct al_err *err)
{
    if (j->n_files >= AL_LIMIT_FINETUNE_FILES)
        return al_err_set(err, AL_ERR_LIMIT, "more than %d data files (AL_LIMIT_FINETUNE_FILES)",
                          AL_LIMIT_FINETUNE_FILES);
    char *data = NULL;
    size_t len = 0;
    enum al_rc rc = al_fs_read_file(path, AL_LIMIT_FINETUNE_BYTES - j->text_len, &data, &len, err);
    if (rc == AL_ERR_LIMIT)
        return al_err_set(err, AL_ERR_LIMIT, "the training data is over %u bytes (AL_LIMIT_FINETUNE_BYTES) at '%s'",
                          AL_LIMIT_FINETUNE_BYTES, path);
    if (rc)
        return rc;
    const char *nul = memchr(data, '\0', len);
    if (nul) {
        rc = al_err_set(err, AL_ERR_INVALID, "'%s' is not text (a NUL byte at offset %zu)", path,
                        (size_t)(nul - data));
        free(data);
        return rc;
    }
    struct data_file *f = &j->files[j->n_files++];
    snprintf(f->name, sizeof f->name, "%s", name);
    uint8_t raw[AL_SHA256_BYTES];
    al_sha256_buf(data, len, raw);
    al_digest_format(raw, f->digest);
    f->size = len;
    memcpy(j->text + j->text_len, data, len);
    j->text_len += len;
    j->text[j->text_len] = '\0';
    free(data);
    return AL_OK;
}

/* --data: a file, or the regular files of a folder (not its subfolders,
 * not hidden files) in name order. */
static enum al_rc read_data(struct job *j, const char *arg, struct al_err *err)
{
    j->files = calloc(AL_LIMIT_FINETUNE_FILES, sizeof *j->files);
    j->text = malloc(AL_LIMIT_FINETUNE_BYTES + 1);
    if (!j->files || !j->text)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    j->text[0] = '\0';
    struct stat st;
    if (stat(arg, &st) != 0)
        return al_err_sys(err, AL_ERR_NOT_FOUND, "cannot read the data '%s'", arg);
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
        return al_err_set(err, AL_ERR_INVALID, "the data '%s' is neither a file nor a folder", arg);
    enum al_rc rc = AL_OK;
    if (!S_ISDIR(st.st_mode)) {
        const char *base = strrchr(arg, '/');
        rc = read_one(j, arg, base ? base + 1 : arg, err);
    } else {
        DIR *d = opendir(arg);
        if (!d)
            return al_err_sys(err, AL_ERR_IO, "cannot read the folder '%s'", arg);
        char **names = NULL;
        size_t n = 0;
        struct dirent *e;
        while (!rc && (e = readdir(d)) != NULL) {
            char p[AL_LIMIT_PATH];
            struct stat es;
            if (e->d_name[0] == '.')
                continue;
            if ((rc = al_path_fmt(p, sizeof p, err, "%s/%s", arg, e->d_name)))
                break;
            if (stat(p, &es) != 0 || !S_ISREG(es.st_mode))
                continue;
            if (n >= AL_LIMIT_FINETUNE_FILES) {
                rc = al_err_set(err, AL_ERR_LIMIT, "more than %d files in '%s' (AL_LIMIT_FINETUNE_FILES)",
                                AL_LIMIT_FINETUNE_FILES, arg);
                break;
            }
            char **nn = realloc(names, (n + 1) * sizeof *names);
            if (!nn || !(nn[n] = strdup(e->d_name))) {
                names = nn ? nn : names;
                rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
                break;
            }
            names = nn;
            n++;
        }
        closedir(d);
        if (names)
            qsort(names, n, sizeof *names, cmp_str);
        for (size_t i = 0; i < n; i++) {
            char p[AL_LIMIT_PATH];
            if (!rc && !(rc = al_path_fmt(p, sizeof p, err, "%s/%s", arg, names[i])))
                rc = read_one(j, p, names[i], err);
            free(names[i]);
        }
        free(names);
    }
    if (!rc && j->text_len == 0)
        rc = al_err_set(err, AL_ERR_INVALID, "the data '%s' is empty: there is nothing to train on", arg);
    return rc;
}

/* ---- the job and its checkpoint ---- */

static json_t *num(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

/* The job's identity: base weights, data digests, hyperparameters. */
static enum al_rc job_spec(struct job *j, struct al_err *err)
{
    json_t *data = json_array();
    for (size_t i = 0; i < j->n_files; i++)
        json_array_append_new(data, json_pack("{s:s, s:s, s:I}", "file", j->files[i].name, "sha256",
                                              j->files[i].digest, "bytes", (json_int_t)j->files[i].size));
    j->spec = json_pack("{s:s, s:o, s:{s:s, s:i, s:f, s:i, s:I, s:s}}", "base_weights", j->w.digest, "data", data,
                        "hyperparameters", "mode", "full", "epochs", j->epochs, "lr", j->lr, "ctx", j->n_ctx,
                        "seed", (json_int_t)j->seed, "optimizer", "adamw");
    char *text = j->spec ? json_dumps(j->spec, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (!text)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    uint8_t raw[AL_SHA256_BYTES];
    al_sha256_buf(text, strlen(text), raw);
    free(text);
    al_hex(raw, 16, j->id);
    return AL_OK;
}

static enum al_rc state_write(struct job *j, int epoch, struct al_err *err)
{
    char path[AL_LIMIT_PATH];
    const char *base = strrchr(j->ckpt, '/');
    json_t *s = json_pack("{s:s, s:O, s:i, s:s, s:s, s:O, s:O}", "job", j->id, "spec", j->spec, "epochs_done",
                          epoch, "weights", base ? base + 1 : j->ckpt, "weights_digest", j->ckpt_digest, "before",
                          j->before, "curve", j->curve);
    char *text = s ? json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(s);
    enum al_rc rc = text ? al_path_fmt(path, sizeof path, err, "%s/state.json", j->dir)
                         : al_err_set(err, AL_ERR_NOMEM, "out of memory");
    if (!rc)
        rc = al_fs_write_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}

/* Reads the job's state, if any: the epochs done, the checkpoint's weights
 * and digest, the curve so far and the loss before. A state of another job
 * (a hash collision of 64 bits, or a hand-edited file) or one that does not
 * parse is an error: --restart discards it. */
static enum al_rc state_read(struct job *j, bool *found, struct al_err *err)
{
    char path[AL_LIMIT_PATH];
    *found = false;
    enum al_rc rc = al_path_fmt(path, sizeof path, err, "%s/state.json", j->dir);
    if (rc || !al_fs_exists(path))
        return rc;
    char *text = NULL;
    size_t len = 0;
    if ((rc = al_fs_read_file(path, AL_LIMIT_MANIFEST, &text, &len, err)))
        return rc;
    json_t *s = json_loadb(text, len, 0, NULL);
    free(text);
    const char *wname = json_string_value(json_object_get(s, "weights"));
    const char *wd = json_string_value(json_object_get(s, "weights_digest"));
    json_int_t done = json_integer_value(json_object_get(s, "epochs_done"));
    if (!json_is_object(s) || !json_equal(json_object_get(s, "spec"), j->spec) || !wname || strchr(wname, '/') ||
        wname[0] == '.' || !wd || !al_digest_valid(wd) || done < 1 || done > j->epochs ||
        !json_is_array(json_object_get(s, "curve")) || !json_is_object(json_object_get(s, "before"))) {
        json_decref(s);
        return al_err_set(err, AL_ERR_CORRUPT, "the checkpoint '%s' is not of this job or is damaged; run again with "
                          "--restart to discard it", path);
    }
    if ((rc = al_path_fmt(j->ckpt, sizeof j->ckpt, err, "%s/%s", j->dir, wname))) {
        json_decref(s);
        return rc;
    }
    snprintf(j->ckpt_digest, sizeof j->ckpt_digest, "%s", wd);
    json_decref(j->curve);
    json_decref(j->before);
    j->curve = json_incref(json_object_get(s, "curve"));
    j->before = json_incref(json_object_get(s, "before"));
    j->resumed_from = (int)done;
    json_decref(s);
    *found = true;
    return AL_OK;
}

/* Removes a folder's files and the folder. */
static void dir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    rmdir(dir);
}

/* Removes the job's folder: its state, its checkpoint weights, its partial
 * files, and files/ (the result and the base's files carried with it). */
static void job_dir_remove(const char *dir)
{
    char sub[AL_LIMIT_PATH];
    if (snprintf(sub, sizeof sub, "%s/files", dir) < (int)sizeof sub)
        dir_remove(sub);
    dir_remove(dir);
}

/* After epoch e: the weights into the job's folder (written to a .part,
 * hashed, fsync'd, renamed, the folder fsync'd), then the state pointing at
 * them replaced atomically, then the previous epoch's weights removed. A
 * kill at any point leaves a state whose weights are whole. */
static enum al_rc checkpoint(struct job *j, struct al_engine_ft *ft, int e, struct al_err *err)
{
    char part[AL_LIMIT_PATH], final[AL_LIMIT_PATH], digest[AL_DIGEST_SIZE];
    enum al_rc rc = al_fs_mkdirs(j->dir, 0700, err);
    if (rc || (rc = al_path_fmt(final, sizeof final, err, "%s/epoch-%d.gguf", j->dir, e)) ||
        (rc = al_path_fmt(part, sizeof part, err, "%s.part", final)) || (rc = al_engine_ft_save(ft, part, err)))
        return rc;
    int fd = -1;
    if ((rc = al_fs_open_regular(part, &fd, err)))
        goto out;
    if (fsync(fd) != 0)
        rc = al_err_sys(err, AL_ERR_IO, "cannot fsync '%s'", part);
    if (!rc)
        rc = al_sha256_fd(fd, digest, NULL, NULL, err);
    close(fd);
    if (rc)
        goto out;
    if (rename(part, final) != 0) {
        rc = al_err_sys(err, AL_ERR_IO, "cannot rename '%s'", part);
        goto out;
    }
    if ((rc = al_fs_fsync_dir(j->dir, err)))
        goto out;
    char prev[AL_LIMIT_PATH];
    snprintf(prev, sizeof prev, "%s", j->ckpt);
    snprintf(j->ckpt, sizeof j->ckpt, "%s", final);
    snprintf(j->ckpt_digest, sizeof j->ckpt_digest, "%s", digest);
    if ((rc = state_write(j, e, err)))
        goto out;
    if (prev[0] && strcmp(prev, final) != 0)
        unlink(prev);
out:
    unlink(part);
    return rc;
}

/* ---- progress ---- */

static void fmt_eta(double s, char *out, size_t size)
{
    if (s < 0)
        snprintf(out, size, "?");
    else if (s < 3600)
        snprintf(out, size, "%d:%02d", (int)s / 60, (int)s % 60);
    else
        snprintf(out, size, "%dh%02d", (int)(s / 3600), ((int)s % 3600) / 60);
}

static void on_progress(void *ud, const struct al_engine_ft_progress *p)
{
    struct job *j = ud;
    /* Tests: stop in the middle of epoch N so that a kill lands there. */
    const char *stall = getenv("AIRLOCK_FINETUNE_TEST_STALL");
    if (stall && p->train && p->epoch == (int)strtol(stall, NULL, 10) && p->step == 1) {
        fprintf(stderr, "finetune: stalled in epoch %d (AIRLOCK_FINETUNE_TEST_STALL)\n", p->epoch);
        fflush(stderr);
        for (;;)
            pause();
    }
    if (!j->tty)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    if (p->step != p->steps && now - j->t_last_bar < 0.1)
        return;
    j->t_last_bar = now;
    char eta[32];
    fmt_eta(p->eta_s, eta, sizeof eta);
    int width = 20, fill = p->steps ? (int)(width * p->step / p->steps) : 0;
    char bar[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r%s %d/%d [%s] %lld/%lld  loss %.4f  %.0f tok/s  %s left   ",
            p->train ? "epoch" : p->epoch ? "check" : "measure", p->epoch ? p->epoch : 0, p->epochs, bar,
            (long long)p->step, (long long)p->steps, p->loss, p->tokens_per_s, eta);
}

static enum al_rc on_epoch(void *ud, struct al_engine_ft *ft, int e, double tl, double vl, struct al_err *err)
{
    struct job *j = ud;
    if (j->tty)
        fprintf(stderr, "\r\033[K");
    if (!j->before)
        j->before = json_pack("{s:o, s:o}", "train", num(j->res->train_before), "val", num(j->res->val_before));
    fprintf(stderr, "epoch %d/%d: train loss %.4f, held-out loss %.4f\n", e, j->epochs, tl, vl);
    json_array_append_new(j->curve, json_pack("{s:i, s:o, s:o}", "epoch", e, "train", num(tl), "val", num(vl)));
    return checkpoint(j, ft, e, err);
}

/* ---- the command ---- */

/* The base must be a GGUF model: not an adapter, not other files. */
static enum al_rc base_ok(struct al_repo *r, struct job *j, struct al_err *err)
{
    struct al_adapter_binding ab;
    enum al_rc rc = al_repo_version_adapter(r, &j->w.version, &ab, err);
    if (rc)
        return rc;
    if (ab.base[0])
        return al_err_set(err, AL_ERR_INVALID, "'%s' is a LoRA adapter, not a model; finetune takes a model",
                          j->base_ref);
    const struct al_file *wf = al_repo_pick_weights(j->w.files, j->w.n_files);
    if (!wf || !al_repo_weights_named(wf->path))
        return al_err_set(err, AL_ERR_INVALID, "'%s' is not a GGUF model (its weights are '%s'); finetune takes a "
                          "GGUF model", j->base_ref, wf ? wf->path : "");
    struct al_gguf_info gi;
    if ((rc = al_repo_weights_info(j->w.path, &gi, err)))
        return rc;
    if (gi.general_type[0] && strcmp(gi.general_type, "model") != 0)
        return al_err_set(err, AL_ERR_INVALID, "'%s' is a%s %s, not a GGUF model; finetune takes a model",
                          j->base_ref, strcmp(gi.general_type, "adapter") == 0 ? "n" : "", gi.general_type);
    return AL_OK;
}

static char *provenance(const struct job *j, const struct al_engine_ft_result *res)
{
    char bref[AL_LIMIT_REF + 80], op[128];
    snprintf(bref, sizeof bref, "%s@%s", j->w.version.model, j->w.version.manifest);
    al_index_operator(op, sizeof op);
    json_t *p = json_deep_copy(j->spec);
    json_object_set_new(p, "base", json_string(bref));
    json_object_set_new(p, "base_ref", json_string(j->base_ref));
    json_object_set_new(p, "operator", json_string(op));
    json_object_set_new(p, "llama_cpp", json_string(al_engine_llama_commit()));
    /* Not part of the job (a resumed run may use another count), but the
     * bytes depend on it: the same job at the same count gives the same file. */
    json_object_set_new(p, "threads", json_integer(j->threads));
    json_object_set_new(p, "tokens", json_pack("{s:I, s:I, s:I, s:I}", "total", (json_int_t)res->n_tokens,
                                               "train_windows", (json_int_t)res->n_train_windows, "val_windows",
                                               (json_int_t)res->n_val_windows, "val_tokens",
                                               (json_int_t)res->n_val_tokens));
    json_object_set_new(p, "loss", json_pack("{s:O, s:{s:o, s:o}, s:O}", "before", j->before, "after", "train",
                                             num(res->train_after), "val", num(res->val_after), "epochs", j->curve));
    if (j->resumed_from)
        json_object_set_new(p, "resumed_after_epoch", json_integer(j->resumed_from));
    char *text = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(p);
    return text;
}

static int parse_args(int argc, char **argv, struct job *j, const char **data, const char **out_ref, bool *resume,
                      bool *restart, bool *no_activate)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},  {"epochs", required_argument, NULL, 'e'},
        {"lr", required_argument, NULL, 'l'},    {"ctx", required_argument, NULL, 'c'},
        {"seed", required_argument, NULL, 's'},  {"threads", required_argument, NULL, 'j'},
        {"output", required_argument, NULL, 'o'}, {"full", no_argument, NULL, 'F'},
        {"resume", no_argument, NULL, 'R'},      {"restart", no_argument, NULL, 'X'},
        {"no-activate", no_argument, NULL, 'n'}, {"json", no_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    const char *cmd = "finetune";
    long long seed = 42;
    int c, st = 0;
    optind = 0;
    while (!st && (c = getopt_long(argc, argv, "d:e:l:c:s:j:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': *data = optarg; break;
        case 'e': st = al_cli_opt_i(cmd, "--epochs", optarg, 1, AL_LIMIT_FINETUNE_EPOCHS, &j->epochs); break;
        case 'l': st = al_cli_opt_num(cmd, "--lr", optarg, 1e-9, 0.5, &j->lr); break;
        case 'c':
            st = al_cli_opt_i(cmd, "--ctx", optarg, 256, AL_LIMIT_FINETUNE_CTX, &j->n_ctx);
            if (!st && j->n_ctx % 256)
                st = al_cli_usage_error(cmd, "--ctx must be a multiple of 256 (llama.cpp pads contexts to 256), "
                                        "not %d", j->n_ctx);
            break;
        case 's': st = al_cli_opt_int(cmd, "--seed", optarg, 0, UINT32_MAX, &seed); break;
        case 'j': st = al_cli_opt_threads(cmd, optarg, &j->threads); break;
        case 'o': *out_ref = optarg; break;
        case 'F': break;
        case 'R': *resume = true; break;
        case 'X': *restart = true; break;
        case 'n': *no_activate = true; break;
        case 'J': j->json = true; break;
        case 'h': fputs(finetune_help, stdout); return -1;
        default: return al_cli_usage_error(cmd, "unknown option");
        }
    }
    j->seed = (uint32_t)seed;
    if (st)
        return st;
    if (argc - optind != 1)
        return al_cli_usage_error(cmd, "needs exactly one REF (the model to start from)");
    j->base_ref = argv[optind];
    if (!*data)
        return al_cli_usage_error(cmd, "needs --data FILE|DIR");
    if (!j->epochs)
        return al_cli_usage_error(cmd, "needs --epochs N");
    if (!(j->lr > 0))
        return al_cli_usage_error(cmd, "needs --lr X");
    if (!*out_ref)
        return al_cli_usage_error(cmd, "needs -o NAME[:TAG] (the new version)");
    if (*resume && *restart)
        return al_cli_usage_error(cmd, "--resume and --restart exclude each other");
    struct al_ref ref;
    struct al_err err = AL_ERR_INIT;
    if (al_index_ref_parse(*out_ref, &ref, &err) || ref.digest[0])
        return al_cli_usage_error(cmd, "-o needs NAME[:TAG], not '%s'%s%s", *out_ref, err.msg[0] ? ": " : "",
                                  err.msg);
    return 0;
}

int al_cmd_finetune(int argc, char **argv)
{
    struct job j = {.n_ctx = 256, .threads = 2, .tty = isatty(STDERR_FILENO) && !getenv("AIRLOCK_NO_PROGRESS")};
    const char *data = NULL, *out_ref = NULL;
    bool resume = false, restart = false, existed = false;
    struct al_cli_add_checks scan = {0};
    struct al_add_opts ao = {.show_progress = false, .check = al_cli_add_check_file,
                             .record = al_cli_add_check_record, .check_ud = &scan};
    struct al_policy pol;
    bool pol_loaded = false;
    char *paths[AL_LIMIT_FILES_PER_MODEL];
    size_t np = 0;
    char files_dir[AL_LIMIT_PATH] = "", card[AL_LIMIT_PATH] = "";
    int st = parse_args(argc, argv, &j, &data, &out_ref, &resume, &restart, &ao.no_activate);
    if (st)
        return st < 0 ? AL_EXIT_OK : st;
    struct al_repo *r = NULL;
    if ((st = al_cli_start("finetune", NULL, false, &r)))
        return st;
    struct al_err err = AL_ERR_INIT;
    struct al_engine_ft_result res;
    struct al_version v;
    char out[AL_LIMIT_PATH] = "";
    char *prov = NULL;
    bool found = false;
    j.curve = json_array();
    enum al_rc rc = al_repo_resolve_weights(r, j.base_ref, &j.w, &err);
    if (!rc && !(rc = base_ok(r, &j, &err)) && !(rc = read_data(&j, data, &err)) && !(rc = job_spec(&j, &err)))
        rc = al_path_fmt(j.dir, sizeof j.dir, &err, "%s/tmp/finetune/%s", al_repo_home(r), j.id);
    char ppath[AL_LIMIT_PATH];
    if (!rc && !(rc = al_policy_path(al_repo_home(r), ppath, sizeof ppath, &err)) &&
        !(rc = al_policy_load(ppath, &pol, &err))) {
        pol_loaded = true;
        scan.policy = &pol;
        struct stat pst;
        scan.enforce = stat(ppath, &pst) == 0;
    }
    if (rc)
        goto out;
    if (restart)
        job_dir_remove(j.dir);
    else if ((rc = state_read(&j, &found, &err)))
        goto out;
    /* The engine proves the checkpoint again as it loads it; this check is
     * for the message: a damaged checkpoint is no damaged store. */
    char got[AL_DIGEST_SIZE];
    if (found && (al_sha256_path(j.ckpt, got, NULL, NULL, &err) || strcmp(got, j.ckpt_digest) != 0)) {
        al_err_clear(&err);
        rc = al_err_set(&err, AL_ERR_VERIFY, "the checkpoint '%s' does not match the digest its state recorded (%s); "
                        "run again with --restart to discard it", j.ckpt, j.ckpt_digest);
        goto out;
    }
    if (resume && !found) {
        rc = al_err_set(&err, AL_ERR_NOT_FOUND, "--resume: no checkpoint of this job (base %s, %zu data files, these "
                        "hyperparameters) in '%s'", j.w.digest, j.n_files, j.dir);
        goto out;
    }
    /* The result goes beside the checkpoints, in files/ (apart from the
     * state, whatever the base's files are called; removed with the job's
     * folder), named after the new version: the name its manifest records. */
    struct al_ref oref;
    if ((rc = al_index_ref_parse(out_ref, &oref, &err)) ||
        (rc = al_path_fmt(files_dir, sizeof files_dir, &err, "%s/files", j.dir)) ||
        (rc = al_fs_mkdirs(files_dir, 0700, &err)) ||
        (rc = al_path_fmt(out, sizeof out, &err, "%s/%s.gguf", files_dir, oref.name))) {
        out[0] = '\0';
        goto out;
    }
    if (found)
        fprintf(stderr, "resuming from the checkpoint after epoch %d/%d (weights %s; the optimizer state starts "
                "afresh)\n", j.resumed_from, j.epochs, j.ckpt_digest);
    else
        fprintf(stderr, "fine-tuning %s (%s) on %zu bytes in %zu file%s: %d epochs, lr %g, ctx %d, seed %u\n",
                j.base_ref, j.w.digest, j.text_len, j.n_files, j.n_files == 1 ? "" : "s", j.epochs, j.lr, j.n_ctx,
                j.seed);
    struct al_engine_ft_params fp = {
        .model_path = found ? j.ckpt : j.w.path, .model_digest = found ? j.ckpt_digest : j.w.digest,
        .text = j.text, .text_len = j.text_len, .n_ctx = j.n_ctx, .epochs = j.epochs,
        .start_epoch = found ? j.resumed_from : 0, .lr = (float)j.lr, .seed = j.seed, .threads = j.threads,
        .progress = on_progress, .on_epoch = on_epoch, .ud = &j,
    };
    /* The loss before the first epoch: measured by the engine, kept in the
     * checkpoint for a resumed run (which measures its checkpoint instead). */
    j.res = &res;
    rc = al_engine_finetune(&fp, out, &res, &err);
    if (j.tty)
        fprintf(stderr, "\r\033[K");
    if (rc)
        goto out;
    if (!j.before)
        j.before = json_pack("{s:o, s:o}", "train", num(res.train_before), "val", num(res.val_before));
    fprintf(stderr, "loss on the training windows: %.4f before, %.4f after; held out: %.4f before, %.4f after\n",
            json_real_value(json_object_get(j.before, "train")), res.train_after,
            json_real_value(json_object_get(j.before, "val")), res.val_after);
    if (!(prov = provenance(&j, &res))) {
        rc = al_err_set(&err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    ao.finetuned_json = prov;
    /* The base's other files (README card, license, tokenizer, templates)
     * and card come along, as quantize's do: the license decides again. */
    if (!(paths[0] = strdup(out))) {
        rc = al_err_set(&err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    np = 1;
    if ((rc = al_cli_carry_files(r, &j.w, files_dir, paths, &np, card, sizeof card, &err)))
        goto out;
    if (card[0])
        ao.card_path = card;
    rc = al_repo_add(r, out_ref, (const char *const *)paths, np, &ao, &v, &existed, &err);
    if (rc)
        (void)al_cli_add_checks_refused(r, out_ref, &scan, &rc, &err);
out:
    if (out[0])
        unlink(out);
    for (size_t i = 0; i < np; i++) {
        unlink(paths[i]);
        free(paths[i]);
    }
    if (card[0])
        unlink(card);
    free(scan.license);
    if (pol_loaded)
        al_policy_release(&pol);
    for (size_t i = 0; i < scan.n; i++)
        al_scan_report_free(scan.reports[i]);
    /* A refused or failed run that left no checkpoint leaves no folder. */
    char sp[AL_LIMIT_PATH];
    if (j.dir[0] && (rc == AL_OK || (snprintf(sp, sizeof sp, "%s/state.json", j.dir) < (int)sizeof sp &&
                                     !al_fs_exists(sp))))
        job_dir_remove(j.dir);
    al_repo_weights_release(&j.w);
    al_repo_free(r);
    int status = rc ? al_cli_fail(&err) : AL_EXIT_OK;
    if (!rc && j.json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:o}", "model", v.model, "manifest", v.manifest, "tags", v.tags,
                              "already_present", existed, "provenance", json_loads(prov, 0, NULL));
        char *t = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
        if (t)
            printf("%s\n", t);
        free(t);
        json_decref(o);
    } else if (!rc) {
        printf("%s %s:%s  %s%s\n", existed ? "already present:" : "finetuned", v.model,
               v.tags[0] ? v.tags : "-", v.manifest, v.active ? "  (active)" : "");
    }
    free(prov);
    free(j.text);
    free(j.files);
    json_decref(j.spec);
    json_decref(j.curve);
    json_decref(j.before);
    return status;
}
