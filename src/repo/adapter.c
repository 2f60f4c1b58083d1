/*
 * adapter.c: LoRA adapters as versions. An adapter version is bound to the
 * digest of its base's weight file: the binding is in its manifest's
 * annotations (io.airlock.adapter.*), its config ("io.airlock.adapter") and
 * its add event. Before an adapter is added, its GGUF is checked against the
 * base's tensor table with the rules llama.cpp's llama-adapter.cpp applies at
 * load, so a misfit is refused at the door, not found at the first run.
 */
#include "repo/repo_int.h"

#include <fcntl.h>
#include <unistd.h>

#include "core/fs.h"
#include "oci/oci.h"

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct al_gguf_tensor *)a)->name, ((const struct al_gguf_tensor *)b)->name);
}

static bool ends_with(const char *s, const char *suffix, size_t *stem)
{
    size_t n = strlen(s), k = strlen(suffix);
    if (n < k || strcmp(s + n - k, suffix) != 0)
        return false;
    *stem = n - k;
    return true;
}

static const struct al_gguf_tensor *find(const struct al_gguf_table *t, const char *name)
{
    struct al_gguf_tensor key;
    snprintf(key.name, sizeof key.name, "%s", name);
    return bsearch(&key, t->t, t->n, sizeof *t->t, by_name);
}

static enum al_rc open_table(const char *path, const char *name, struct al_gguf_info *info,
                             struct al_gguf_table *table, struct al_err *err)
{
    int fd = -1;
    enum al_rc rc = al_fs_open_regular(path, &fd, err);
    if (rc)
        return rc;
    if (!(rc = al_gguf_inspect_fd(fd, name, info, err)))
        rc = al_gguf_table_fd(fd, name, table, err);
    close(fd);
    if (!rc)
        qsort(table->t, table->n, sizeof *table->t, by_name);
    return rc;
}

/* The shape rule of llama-adapter.cpp for one pair against its base tensor. */
static bool pair_fits(const struct al_gguf_tensor *w, const struct al_gguf_tensor *a, const struct al_gguf_tensor *b,
                      bool token_embd)
{
    for (int d = 2; d < 4; d++)
        if (a->ne[d] != 1 || b->ne[d] != 1)
            return false;
    if (token_embd) /* B not transposed, A and B flipped (llm_build_inp_embd) */
        return w->ne[0] == b->ne[1] && w->ne[1] == a->ne[1];
    return w->ne[0] == a->ne[0] && w->ne[1] == b->ne[1] && a->ne[1] == b->ne[0];
}

enum al_rc al_repo_adapter_fits(const char *path, const char *name, const char *base_path, const char *base_ref,
                                struct al_adapter_fit *out, struct al_err *err)
{
    memset(out, 0, sizeof *out);
    struct al_gguf_info ai, bi;
    struct al_gguf_table at = {0}, bt = {0};
    enum al_rc rc = open_table(path, name, &ai, &at, err);
    if (rc)
        return rc;
    if (strcmp(ai.general_type, "adapter") != 0 || strcmp(ai.adapter_type, "lora") != 0) {
        rc = al_err_set(err, AL_ERR_INVALID,
                        "'%s' is not a LoRA adapter: its general.type is '%s' and its adapter.type '%s' "
                        "(an adapter says 'adapter' and 'lora')",
                        name, ai.general_type[0] ? ai.general_type : "none",
                        ai.adapter_type[0] ? ai.adapter_type : "none");
        goto out;
    }
    if ((rc = open_table(base_path, base_ref, &bi, &bt, err)))
        goto out;
    if (strcmp(bi.general_type, "adapter") == 0) {
        rc = al_err_set(err, AL_ERR_INVALID, "the base '%s' is itself an adapter; an adapter's base is a model",
                        base_ref);
        goto out;
    }
    if (strcmp(ai.arch, bi.arch) != 0) {
        rc = al_err_set(err, AL_ERR_INVALID, "'%s' is an adapter for the architecture '%s', and the base '%s' is '%s'",
                        name, ai.arch, base_ref, bi.arch);
        goto out;
    }
    for (size_t i = 0; i < at.n; i++) {
        const struct al_gguf_tensor *a = &at.t[i];
        size_t stem = 0;
        if (ends_with(a->name, "_norm.weight", &stem))
            continue; /* llama.cpp skips these */
        if (ends_with(a->name, ".lora_b", &stem)) {
            char want[sizeof a->name];
            snprintf(want, sizeof want, "%.*s.lora_a", (int)stem, a->name);
            if (!find(&at, want)) {
                rc = al_err_set(err, AL_ERR_INVALID, "'%s' does not fit '%s': '%s' has no '%s'", name, base_ref,
                                a->name, want);
                goto out;
            }
            continue;
        }
        if (!ends_with(a->name, ".lora_a", &stem)) {
            rc = al_err_set(err, AL_ERR_INVALID,
                            "'%s' is not a LoRA adapter llama.cpp loads: tensor '%s' ends in neither .lora_a "
                            "nor .lora_b",
                            name, a->name);
            goto out;
        }
        char wname[sizeof a->name], bname[sizeof a->name];
        snprintf(wname, sizeof wname, "%.*s", (int)stem, a->name);
        snprintf(bname, sizeof bname, "%.*s.lora_b", (int)stem, a->name);
        const struct al_gguf_tensor *b = find(&at, bname), *w = find(&bt, wname);
        if (!b) {
            rc = al_err_set(err, AL_ERR_INVALID, "'%s' does not fit '%s': '%s' has no '%s'", name, base_ref, a->name,
                            bname);
            goto out;
        }
        if (!w) {
            rc = al_err_set(err, AL_ERR_INVALID, "'%s' does not fit '%s': the base has no tensor '%s'", name,
                            base_ref, wname);
            goto out;
        }
        size_t te = 0;
        bool embd = ends_with(wname, "token_embd.weight", &te);
        if (!pair_fits(w, a, b, embd)) {
            rc = al_err_set(err, AL_ERR_INVALID,
                            "'%s' does not fit '%s': '%s' is [%" PRId64 ", %" PRId64 "] in the base, and the "
                            "adapter's A [%" PRId64 ", %" PRId64 "] and B [%" PRId64 ", %" PRId64 "] do not "
                            "make that shape",
                            name, base_ref, wname, w->ne[0], w->ne[1], a->ne[0], a->ne[1], b->ne[0], b->ne[1]);
            goto out;
        }
        out->pairs++;
        if (out->rank == 0)
            out->rank = embd ? a->ne[0] : a->ne[1];
    }
    if (out->pairs == 0) {
        rc = al_err_set(err, AL_ERR_INVALID, "'%s' holds no .lora_a/.lora_b tensor pair", name);
        goto out;
    }
    out->alpha = ai.lora_alpha;
out:
    al_gguf_table_release(&at);
    al_gguf_table_release(&bt);
    return rc;
}

enum al_rc al_repo_version_adapter(struct al_repo *r, const struct al_version *v, struct al_adapter_binding *out,
                                   struct al_err *err)
{
    memset(out, 0, sizeof *out);
    char *json = NULL;
    size_t len = 0;
    enum al_rc rc = al_store_read(r->store, v->manifest, AL_LIMIT_MANIFEST, &json, &len, err);
    if (rc)
        return rc;
    struct al_oci_manifest m;
    memset(&m, 0, sizeof m);
    rc = al_oci_manifest_parse(json, len, &m, err);
    free(json);
    if (rc)
        return rc;
    if (m.adapter_base[0]) {
        snprintf(out->type, sizeof out->type, "%s", m.adapter_type[0] ? m.adapter_type : "lora");
        snprintf(out->base, sizeof out->base, "%s", m.adapter_base);
    }
    al_oci_manifest_release(&m);
    return AL_OK;
}

/* The weight file's digest of v ("" when it has no files). */
static enum al_rc weights_digest(struct al_repo *r, const struct al_version *v, char out[AL_DIGEST_SIZE],
                                 struct al_err *err)
{
    struct al_file *files = NULL;
    size_t n = 0;
    out[0] = '\0';
    enum al_rc rc = al_index_list_files(r->index, v->id, &files, &n, err);
    const struct al_file *pick = rc ? NULL : al_repo_pick_weights(files, n);
    if (pick)
        snprintf(out, AL_DIGEST_SIZE, "%s", pick->digest);
    free(files);
    return rc;
}

enum al_rc al_repo_find_base(struct al_repo *r, const char *digest, struct al_version *out, bool *found,
                             struct al_err *err)
{
    *found = false;
    struct al_version *vs = NULL;
    size_t n = 0;
    enum al_rc rc = al_index_list_versions(r->index, NULL, &vs, &n, err);
    /* Newest first; an active version wins over a newer inactive one. */
    for (int pass = 0; pass < 2 && !rc && !*found; pass++)
        for (size_t i = n; i-- > 0 && !rc && !*found;) {
            if (pass == 0 && !vs[i].active)
                continue;
            char d[AL_DIGEST_SIZE];
            if (!(rc = weights_digest(r, &vs[i], d, err)) && strcmp(d, digest) == 0) {
                *out = vs[i];
                *found = true;
            }
        }
    free(vs);
    return rc;
}

enum al_rc al_repo_list_adapters(struct al_repo *r, const char *digest, struct al_version **rows, size_t *n_rows,
                                 struct al_err *err)
{
    *rows = NULL;
    *n_rows = 0;
    struct al_version *vs = NULL;
    size_t n = 0, k = 0;
    enum al_rc rc = al_index_list_versions(r->index, NULL, &vs, &n, err);
    for (size_t i = 0; i < n && !rc; i++) {
        struct al_adapter_binding b;
        if (!(rc = al_repo_version_adapter(r, &vs[i], &b, err)) && strcmp(b.base, digest) == 0)
            vs[k++] = vs[i];
    }
    if (rc || k == 0) {
        free(vs);
        return rc;
    }
    *rows = vs;
    *n_rows = k;
    return AL_OK;
}

enum al_rc al_repo_resolve_adapted(struct al_repo *r, const char *ref, struct al_weights *w,
                                   struct al_adapted *out, struct al_err *err)
{
    memset(out, 0, sizeof *out);
    enum al_rc rc = al_repo_resolve_weights(r, ref, w, err);
    if (rc)
        return rc;
    struct al_adapter_binding b;
    if ((rc = al_repo_version_adapter(r, &w->version, &b, err)))
        goto fail;
    if (!b.base[0])
        return AL_OK;
    out->is_adapter = true;
    out->binding = b;
    bool found = false;
    if ((rc = al_repo_find_base(r, b.base, &out->base, &found, err)))
        goto fail;
    if (!found) {
        rc = al_err_set(err, AL_ERR_NOT_FOUND,
                        "'%s' is a LoRA adapter for the weights %s, and no version in the store has them "
                        "(removed?); add its base again",
                        ref, b.base);
        goto fail;
    }
    if ((rc = al_store_blob_path(r->store, b.base, out->base_path, sizeof out->base_path, err)))
        goto fail;
    return AL_OK;
fail:
    al_repo_weights_release(w);
    memset(out, 0, sizeof *out);
    return rc;
}
