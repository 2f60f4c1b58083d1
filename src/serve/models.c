/*
 * models.c: the model manager (see models.h).
 *
 * Invariants, all under mm->mu:
 * - entries holds every version loaded or being loaded, at most one entry per
 *   manifest digest. An entry being loaded (E_LOADING) is never evicted; other
 *   acquirers of the same version wait on mm->cv for it.
 * - refs holds every reference resolved since the last reload; an entry no
 *   reference points at is retired and freed at its last release.
 * - An entry leaves the list before its model is freed, and models are freed
 *   outside the lock (freeing joins the scheduler's worker).
 */
#include "serve/models.h"
#include "serve/models_int.h"

#include <pthread.h>
#include <time.h>

#include "core/hash.h"
#include "core/limits.h"
#include "core/log.h"
#include "gguf/gguf.h"
#include "index/index.h"
#include "repo/repo.h"

struct rref {
    char ref[336];
    char name[AL_LIMIT_NAME + 1];
    char manifest[AL_DIGEST_SIZE];
    char digest[AL_DIGEST_SIZE];       /* weight blob */
    char path[AL_LIMIT_PATH];
    char tmpl_path[AL_LIMIT_PATH];     /* the version's chat template file (*.jinja) blob, "" none */
    char tmpl_digest[AL_DIGEST_SIZE];
    /* A LoRA adapter version: digest and path above are its base's weights,
     * these its adapter's blob ("" for a model). */
    char lora_path[AL_LIMIT_PATH];
    char lora_digest[AL_DIGEST_SIZE];
    char base_ref[336];                /* its base as "name@<manifest>"; "" for a model */
    uint64_t lora_size;
    uint64_t size;
    struct al_engine_kv_shape shape;          /* from the GGUF header, for the KV estimate */
    bool pinned;
    struct rref *next;
};

enum estate { E_LOADING, E_READY };

struct al_serve_lease {
    struct al_serve_models *mm;
    char name[AL_LIMIT_NAME + 1];
    char manifest[AL_DIGEST_SIZE];
    char digest[AL_DIGEST_SIZE];
    struct al_engine_model *m;
    struct al_engine_model_info info;
    enum estate state;
    int leases;
    double last_used;
    bool pinned, retired;
    uint64_t bytes;
    /* An adapter version: a lease on its base's entry, whose model it
     * shares, and its adapter's id in that model (-1 for a model). */
    struct al_serve_lease *base;
    int lora_id;
    char lora_digest[AL_DIGEST_SIZE];
    struct al_serve_lease *next;
};


static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void al_serve_config_default(struct al_serve_config *c)
{
    memset(c, 0, sizeof *c);
    struct al_serve_settings unset = AL_SERVE_SETTINGS_UNSET;
    c->defaults = unset;
    c->keep_alive_s = 300;
    snprintf(c->chat_fallback, sizeof c->chat_fallback, "chatml");
}

static void overlay(struct al_serve_settings *dst, const struct al_serve_settings *src)
{
    if (src->threads >= 0) dst->threads = src->threads;
    if (src->ctx >= 0) dst->ctx = src->ctx;
    if (src->batch >= 0) dst->batch = src->batch;
    if (src->n_seq >= 0) dst->n_seq = src->n_seq;
    if (src->queue >= 0) dst->queue = src->queue;
    if (src->gpu_layers >= 0) dst->gpu_layers = src->gpu_layers;
    if (src->ctx_seq >= 0) dst->ctx_seq = src->ctx_seq;
    if (src->mmap >= 0) dst->mmap = src->mmap;
    if (src->mlock >= 0) dst->mlock = src->mlock;
}

static struct al_engine_model_params params_for(const struct al_serve_models *mm, const char *name)
{
    struct al_serve_settings s = mm->cfg.defaults;
    for (int i = 0; i < mm->cfg.n_overrides; i++)
        if (strcmp(mm->cfg.overrides[i].name, name) == 0)
            overlay(&s, &mm->cfg.overrides[i].s);
    struct al_engine_model_params p = al_engine_model_params_default();
    if (s.threads > 0) p.threads = s.threads;
    if (s.ctx > 0) p.n_ctx = s.ctx;
    if (s.batch > 0) p.n_batch = s.batch;
    p.n_seq = s.n_seq > 0 ? s.n_seq : AL_SERVE_DEFAULT_PARALLEL;
    p.kv_unified = true; /* ctx is the whole cache, shared by the sequences */
    if (s.ctx_seq > 0) p.n_ctx_seq = s.ctx_seq;
    if (s.queue > 0) p.queue_max = s.queue;
    if (s.gpu_layers >= 0) p.n_gpu_layers = s.gpu_layers;
    if (s.mmap >= 0) p.use_mmap = s.mmap;
    if (s.mlock >= 0) p.use_mlock = s.mlock;
    p.verify_cache = mm->vcache;
    p.admit = mm->admit;
    p.admit_ud = mm->admit_ud;
    return p;
}

/* Under mu. Finds or resolves ref into the cache. */
static enum al_rc resolve(struct al_serve_models *mm, const char *ref, bool pinned, struct rref **out,
                          struct al_err *err)
{
    for (struct rref *r = mm->refs; r; r = r->next)
        if (strcmp(r->ref, ref) == 0) {
            r->pinned |= pinned;
            *out = r;
            return AL_OK;
        }
    if (strlen(ref) >= sizeof mm->refs->ref)
        return al_err_set(err, AL_ERR_LIMIT, "a model reference of %zu bytes is over the cap of %zu", strlen(ref),
                          sizeof mm->refs->ref - 1);
    struct al_weights w;
    struct al_adapted ad;
    enum al_rc rc = al_repo_resolve_adapted(mm->repo, ref, &w, &ad, err);
    if (rc)
        return rc;
    struct rref *r = calloc(1, sizeof *r);
    if (!r) {
        al_repo_weights_release(&w);
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    if (ad.is_adapter) { /* loaded as its base with the adapter applied */
        snprintf(r->lora_path, sizeof r->lora_path, "%s", w.path);
        snprintf(r->lora_digest, sizeof r->lora_digest, "%s", w.digest);
        snprintf(r->path, sizeof r->path, "%s", ad.base_path);
        snprintf(r->digest, sizeof r->digest, "%s", ad.binding.base);
        snprintf(r->base_ref, sizeof r->base_ref, "%s@%s", ad.base.model, ad.base.manifest);
        r->lora_size = w.version.total_size;
    } else {
        snprintf(r->path, sizeof r->path, "%s", w.path);
        snprintf(r->digest, sizeof r->digest, "%s", w.digest);
    }
    snprintf(r->ref, sizeof r->ref, "%s", ref);
    snprintf(r->name, sizeof r->name, "%s", w.version.model);
    snprintf(r->manifest, sizeof r->manifest, "%s", w.version.manifest);
    r->size = w.version.total_size + (ad.is_adapter ? ad.base.total_size : 0);
    /* A chat template file in the version (a bundle's prompt template)
     * overrides the GGUF's (engine/chat.h). */
    for (size_t i = 0; i < w.n_files; i++) {
        size_t n = strlen(w.files[i].path);
        if (n > 6 && strcasecmp(w.files[i].path + n - 6, ".jinja") == 0 &&
            al_repo_blob_path(mm->repo, w.files[i].digest, r->tmpl_path, sizeof r->tmpl_path, err) == AL_OK) {
            snprintf(r->tmpl_digest, sizeof r->tmpl_digest, "%s", w.files[i].digest);
            break;
        }
    }
    al_repo_weights_release(&w);
    /* The KV cache counts against the budget too; a header that cannot be
     * read leaves the estimate at the weights (the load will say why). */
    struct al_gguf_info gi;
    struct al_err gerr = {0};
    if (al_gguf_inspect(r->path, &gi, &gerr) == AL_OK)
        r->shape = (struct al_engine_kv_shape){gi.block_count, gi.embedding_length, gi.head_count,
                                        gi.head_count_kv ? gi.head_count_kv : gi.head_count, gi.context_length};
    r->pinned = pinned;
    r->next = mm->refs;
    mm->refs = r;
    *out = r;
    return AL_OK;
}

/* Under mu (the repo is the manager's). */
static enum al_rc check_aliases(struct al_serve_models *mm, const struct al_serve_config *cfg, struct al_err *err)
{
    return al_serve_alias_check(cfg->aliases, cfg->n_aliases, cfg->n_pinned ? cfg->pinned[0] : NULL, mm->repo, err);
}

enum al_rc al_serve_unalias(struct al_serve_models *mm, const char *name, char *out, size_t size, struct al_err *err)
{
    pthread_mutex_lock(&mm->mu);
    const char *ref = al_serve__unalias(mm, name);
    enum al_rc rc = (size_t)snprintf(out, size, "%s", ref) >= size
                        ? al_err_set(err, AL_ERR_LIMIT, "a model reference over %zu bytes", size - 1)
                        : AL_OK;
    pthread_mutex_unlock(&mm->mu);
    return rc;
}

bool al_serve_alias_of(struct al_serve_models *mm, const char *name, struct al_serve_alias *out)
{
    pthread_mutex_lock(&mm->mu);
    const struct al_serve_alias *a = al_serve_alias_for_model(mm->cfg.aliases, mm->cfg.n_aliases,
                                                              mm->cfg.n_pinned ? mm->cfg.pinned[0] : NULL, name);
    if (a)
        *out = *a;
    pthread_mutex_unlock(&mm->mu);
    return a != NULL;
}

/* Reads a chat template blob and proves its digest (it is handed to the
 * engine as text, so it is checked here as the weights are there). *out is
 * the caller's. Over AL_LIMIT_CHAT_TEMPLATE: AL_ERR_LIMIT. */
static enum al_rc read_template(const char *path, const char *digest, char **out, struct al_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return al_err_sys(err, AL_ERR_IO, "cannot open the chat template '%s'", path);
    char *buf = malloc(AL_LIMIT_CHAT_TEMPLATE + 1);
    size_t n = buf ? fread(buf, 1, AL_LIMIT_CHAT_TEMPLATE + 1, f) : 0;
    bool rerr = ferror(f);
    fclose(f);
    if (!buf)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory reading a chat template");
    enum al_rc rc = AL_OK;
    uint8_t raw[AL_SHA256_BYTES];
    char got[AL_DIGEST_SIZE];
    if (rerr)
        rc = al_err_set(err, AL_ERR_IO, "cannot read the chat template '%s'", path);
    else if (n > AL_LIMIT_CHAT_TEMPLATE)
        rc = al_err_set(err, AL_ERR_LIMIT, "the chat template '%s' is over the cap of %u bytes (AL_LIMIT_CHAT_TEMPLATE)",
                        path, AL_LIMIT_CHAT_TEMPLATE);
    if (!rc) {
        al_sha256_buf(buf, n, raw);
        al_digest_format(raw, got);
        if (strcmp(got, digest) != 0)
            rc = al_err_set(err, AL_ERR_VERIFY, "the chat template '%s' is %s, not %s", path, got, digest);
    }
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    return AL_OK;
}

static void unlink_entry(struct al_serve_models *mm, struct al_serve_lease *e)
{
    for (struct al_serve_lease **p = &mm->entries; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            e->next = NULL;
            return;
        }
}

/* Outside mu. An adapter's entry gives back its lease on the base (which its
 * model belongs to) with release_bases; al_serve_free frees every entry
 * without it. */
static void free_entries_ex(struct al_serve_lease *list, bool release_bases)
{
    while (list) {
        struct al_serve_lease *next = list->next;
        if (list->base) {
            al_info("unloading adapter %s (%s); its base stays", list->name, list->manifest);
            if (release_bases)
                al_serve_release(list->base);
        } else {
            al_info("unloading model %s (%s)", list->name, list->manifest);
            al_engine_model_free(list->m);
        }
        free(list);
        list = next;
    }
}

static void free_entries(struct al_serve_lease *list) { free_entries_ex(list, true); }

/* Under mu: marks entries that no reference points at as retired, and pinned
 * ones as pinned; moves idle retired entries to *victims. */
static void mark_entries(struct al_serve_models *mm, struct al_serve_lease **victims)
{
    for (struct al_serve_lease *e = mm->entries, *next; e; e = next) {
        next = e->next;
        bool used = false, pinned = false;
        for (struct rref *r = mm->refs; r; r = r->next)
            if (strcmp(r->manifest, e->manifest) == 0) {
                used = true;
                pinned |= r->pinned;
            }
        e->retired = !used;
        e->pinned = pinned;
        if (e->retired && e->leases == 0 && e->state == E_READY) {
            unlink_entry(mm, e);
            e->next = *victims;
            *victims = e;
        }
    }
}

/* Under mu: evicts least recently used idle models until one more of need
 * bytes fits. AL_ERR_BUSY when the models in use leave no room. */
static enum al_rc make_room(struct al_serve_models *mm, uint64_t need, struct al_serve_lease **victims,
                            struct al_err *err)
{
    for (;;) {
        int count = 0;
        uint64_t bytes = 0;
        struct al_serve_lease *lru = NULL;
        for (struct al_serve_lease *e = mm->entries; e; e = e->next) {
            count++;
            bytes += e->bytes;
            if (e->state == E_READY && e->leases == 0 && (!lru || e->last_used < lru->last_used))
                lru = e;
        }
        bool over_count = mm->cfg.max_loaded > 0 && count + 1 > mm->cfg.max_loaded;
        bool over_bytes = mm->cfg.budget_bytes > 0 && bytes + need > mm->cfg.budget_bytes;
        if (!over_count && !over_bytes)
            return AL_OK;
        if (count == 0)
            return AL_OK; /* one model always fits, whatever its size */
        if (!lru)
            return al_err_set(err, AL_ERR_BUSY,
                              "no room to load another model: %d loaded, %" PRIu64 " of %" PRIu64
                              " budget bytes, all in use",
                              count, bytes, mm->cfg.budget_bytes);
        al_info("evicting model %s (least recently used) to make room", lru->name);
        unlink_entry(mm, lru);
        lru->next = *victims;
        *victims = lru;
    }
}

/* Under mu, which it releases: the entry of the adapter version r, sharing
 * the model of its base's entry (acquired, and loaded, for it): the adapter
 * is loaded into that model (al_engine_lora_add) and counts only its own
 * bytes. Other acquirers of the adapter wait while it is E_LOADING. */
static enum al_rc acquire_adapter(struct al_serve_models *mm, struct rref *r, struct al_serve_lease **out,
                                  struct al_err *err)
{
    struct al_serve_lease *e = calloc(1, sizeof *e);
    if (!e) {
        pthread_mutex_unlock(&mm->mu);
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    e->mm = mm;
    snprintf(e->name, sizeof e->name, "%s", r->name);
    snprintf(e->manifest, sizeof e->manifest, "%s", r->manifest);
    snprintf(e->digest, sizeof e->digest, "%s", r->digest);
    snprintf(e->lora_digest, sizeof e->lora_digest, "%s", r->lora_digest);
    e->state = E_LOADING;
    e->leases = 1;
    e->lora_id = -1;
    e->bytes = r->lora_size;
    e->pinned = r->pinned;
    e->next = mm->entries;
    mm->entries = e;
    char base_ref[sizeof r->base_ref], path[AL_LIMIT_PATH];
    snprintf(base_ref, sizeof base_ref, "%s", r->base_ref);
    snprintf(path, sizeof path, "%s", r->lora_path);
    pthread_mutex_unlock(&mm->mu);

    struct al_serve_lease *base = NULL;
    int id = -1;
    enum al_rc rc = al_serve_acquire(mm, base_ref, &base, err);
    if (!rc && strcmp(base->digest, e->digest) != 0) /* the binding, checked on what is loaded */
        rc = al_err_set(err, AL_ERR_INVALID, "the adapter %s is bound to the weights %s, and '%s' has %s", e->name,
                        e->digest, base_ref, base->digest);
    if (!rc)
        rc = al_engine_lora_add(base->m, path, e->lora_digest, &id, err);
    if (!rc)
        al_info("adapter %s (%s) on the loaded base %s: LoRA id %d", e->name, e->lora_digest, base->name, id);

    pthread_mutex_lock(&mm->mu);
    if (rc) {
        unlink_entry(mm, e);
        free(e);
    } else {
        e->base = base;
        e->m = base->m;
        e->lora_id = id;
        e->info = base->info;
        e->state = E_READY;
        e->last_used = now_s();
        *out = e;
    }
    pthread_cond_broadcast(&mm->cv);
    pthread_mutex_unlock(&mm->mu);
    if (rc)
        al_serve_release(base);
    return rc;
}

enum al_rc al_serve_acquire(struct al_serve_models *mm, const char *ref, struct al_serve_lease **out,
                            struct al_err *err)
{
    struct al_serve_lease *victims = NULL, *e = NULL;
    enum al_rc rc = AL_OK;
    pthread_mutex_lock(&mm->mu);
    if (!ref || !*ref) {
        if (mm->cfg.n_pinned == 0) {
            pthread_mutex_unlock(&mm->mu);
            return al_err_set(err, AL_ERR_USAGE, "no model named and no default model");
        }
        ref = mm->cfg.pinned[0];
    }
    ref = al_serve__unalias(mm, ref);
    struct rref *r = NULL;
    rc = resolve(mm, ref, false, &r, err);
    if (rc)
        goto out_unlock;
    for (;;) {
        for (e = mm->entries; e; e = e->next)
            if (strcmp(e->manifest, r->manifest) == 0)
                break;
        if (!e || e->state == E_READY)
            break;
        pthread_cond_wait(&mm->cv, &mm->mu);
        /* A reload may have freed r meanwhile: resolve again. */
        rc = resolve(mm, ref, false, &r, err);
        if (rc)
            goto out_unlock;
    }
    if (e) {
        e->leases++;
        e->retired = false;
        e->last_used = now_s();
        *out = e;
        goto out_unlock;
    }
    if (r->lora_path[0]) {
        rc = acquire_adapter(mm, r, out, err); /* unlocks */
        return rc;
    }
    struct al_engine_model_params p = params_for(mm, r->name);
    uint64_t need = r->size + al_engine_kv_bytes(&p, &r->shape);
    rc = make_room(mm, need, &victims, err);
    if (rc)
        goto out_unlock;
    e = calloc(1, sizeof *e);
    if (!e) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out_unlock;
    }
    e->mm = mm;
    snprintf(e->name, sizeof e->name, "%s", r->name);
    snprintf(e->manifest, sizeof e->manifest, "%s", r->manifest);
    snprintf(e->digest, sizeof e->digest, "%s", r->digest);
    e->state = E_LOADING;
    e->leases = 1;
    e->lora_id = -1;
    e->bytes = need;
    e->pinned = r->pinned;
    e->next = mm->entries;
    mm->entries = e;
    char path[AL_LIMIT_PATH], tmpl_path[AL_LIMIT_PATH], tmpl_digest[AL_DIGEST_SIZE];
    snprintf(path, sizeof path, "%s", r->path);
    snprintf(tmpl_path, sizeof tmpl_path, "%s", r->tmpl_path);
    snprintf(tmpl_digest, sizeof tmpl_digest, "%s", r->tmpl_digest);
    char lora_path[AL_LIMIT_PATH], lora_digest[AL_DIGEST_SIZE];
    snprintf(lora_path, sizeof lora_path, "%s", r->lora_path);
    snprintf(lora_digest, sizeof lora_digest, "%s", r->lora_digest);
    uint64_t r_size = r->size; /* r may be freed by a reload during the load */
    /* The operator's template (serve --chat-template) goes over the version's
     * own, as llama-server's flag goes over the GGUF's. Copied: a reload may
     * replace it during the load. */
    char *server_tmpl = mm->chat_template ? strdup(mm->chat_template) : NULL;
    bool tmpl_nomem = mm->chat_template && !server_tmpl;
    pthread_mutex_unlock(&mm->mu);

    free_entries(victims);
    victims = NULL;
    al_info("loading model %s (%s) threads=%d ctx=%d (shared) batch=%d parallel=%d, about %.1f MiB with its KV "
            "cache", e->name, e->manifest, p.threads, p.n_ctx, p.n_batch, p.n_seq, (double)need / (1 << 20));
    struct al_engine_model *m = NULL;
    char *tmpl = NULL;
    if (tmpl_nomem)
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    else if (server_tmpl)
        al_info("model %s: the server's chat template (--chat-template) over its own", e->name);
    else
        rc = tmpl_path[0] ? read_template(tmpl_path, tmpl_digest, &tmpl, err) : AL_OK;
    p.chat_template = server_tmpl ? server_tmpl : tmpl;
    struct al_engine_lora lora = {.path = lora_path, .digest = lora_digest, .scale = 1.0f};
    if (lora_path[0]) {
        p.loras = &lora;
        p.n_loras = 1;
    }
    if (!rc)
        rc = al_engine_model_load(path, e->digest, &p, &m, err);
    free(tmpl);
    free(server_tmpl);

    pthread_mutex_lock(&mm->mu);
    if (rc) {
        unlink_entry(mm, e);
        free(e);
        e = NULL;
    } else {
        e->m = m;
        al_engine_set_admit(m, mm->admit, mm->admit_ud); /* al_serve_set_admit may have run meanwhile */
        al_engine_model_info(m, &e->info);
        /* What it holds now: its tensors (or the files, if larger) and KV cache. */
        e->bytes = (e->info.size_bytes > r_size ? e->info.size_bytes : r_size) + e->info.kv_bytes;
        e->state = E_READY;
        e->last_used = now_s();
        *out = e;
    }
    pthread_cond_broadcast(&mm->cv);
out_unlock:
    pthread_mutex_unlock(&mm->mu);
    free_entries(victims);
    return rc;
}

void al_serve_release(struct al_serve_lease *e)
{
    if (!e)
        return;
    struct al_serve_models *mm = e->mm;
    bool drop = false;
    pthread_mutex_lock(&mm->mu);
    e->leases--;
    e->last_used = now_s();
    if (e->leases == 0 && e->retired) {
        unlink_entry(mm, e);
        drop = true;
    }
    pthread_mutex_unlock(&mm->mu);
    if (drop)
        free_entries(e);
}

void al_serve_set_admit(struct al_serve_models *mm, al_engine_admit_fn *admit, void *admit_ud)
{
    pthread_mutex_lock(&mm->mu);
    mm->admit = admit;
    mm->admit_ud = admit_ud;
    for (struct al_serve_lease *e = mm->entries; e; e = e->next)
        if (e->state == E_READY)
            al_engine_set_admit(e->m, admit, admit_ud);
    pthread_mutex_unlock(&mm->mu);
}

struct al_engine_model *al_serve_lease_engine(const struct al_serve_lease *l) { return l->m; }
int al_serve_lease_lora_id(const struct al_serve_lease *l) { return l->lora_id; }
const char *al_serve_lease_lora_digest(const struct al_serve_lease *l) { return l->lora_digest; }

enum al_rc al_serve_adapters(struct al_serve_models *mm, const char *digest, struct al_serve_adapter **rows,
                             size_t *n, struct al_err *err)
{
    *rows = NULL;
    *n = 0;
    struct al_version *vs = NULL;
    size_t nv = 0;
    pthread_mutex_lock(&mm->mu);
    enum al_rc rc = al_repo_list_adapters(mm->repo, digest, &vs, &nv, err);
    struct al_serve_adapter *out = rc || nv == 0 ? NULL : calloc(nv, sizeof *out);
    if (!rc && nv && !out)
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; out && i < nv && !rc; i++) {
        struct al_serve_adapter *a = &out[i];
        snprintf(a->name, sizeof a->name, "%s", vs[i].model);
        snprintf(a->tags, sizeof a->tags, "%s", vs[i].tags);
        snprintf(a->manifest, sizeof a->manifest, "%s", vs[i].manifest);
        snprintf(a->base, sizeof a->base, "%s", digest);
        rc = al_repo_weight_path(mm->repo, &vs[i], a->path, sizeof a->path, err);
        const char *slash = strrchr(a->path, '/'); /* a blob is named by its digest: blobs/sha256/<hex> */
        if (!rc)
            snprintf(a->digest, sizeof a->digest, "sha256:%.64s", slash ? slash + 1 : a->path);
    }
    pthread_mutex_unlock(&mm->mu);
    free(vs);
    if (rc) {
        free(out);
        return rc;
    }
    *rows = out;
    *n = out ? nv : 0;
    return AL_OK;
}

enum al_rc al_serve_adapter_load(struct al_serve_lease *l, const struct al_serve_adapter *a, int *id,
                                 struct al_err *err)
{
    if (strcmp(a->base, l->digest) != 0)
        return al_err_set(err, AL_ERR_INVALID, "the adapter %s is bound to the weights %s, not to %s's (%s)", a->name,
                          a->base, l->name, l->digest);
    return al_engine_lora_add(l->m, a->path, a->digest, id, err);
}
const char *al_serve_lease_name(const struct al_serve_lease *l) { return l->name; }
const char *al_serve_lease_digest(const struct al_serve_lease *l) { return l->digest; }
const char *al_serve_lease_chat_fallback(const struct al_serve_lease *l)
{
    return l->mm->cfg.chat_fallback[0] ? l->mm->cfg.chat_fallback : NULL;
}

static void *reaper_main(void *arg)
{
    struct al_serve_models *mm = arg;
    pthread_mutex_lock(&mm->mu);
    while (!mm->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&mm->cv, &mm->mu, &ts);
        if (mm->stop)
            break;
        struct al_serve_lease *victims = NULL;
        double now = now_s();
        for (struct al_serve_lease *e = mm->entries, *next; e; e = next) {
            next = e->next;
            if (e->state != E_READY || e->leases > 0)
                continue;
            bool idle = !e->pinned && mm->cfg.keep_alive_s >= 0 && now - e->last_used > mm->cfg.keep_alive_s;
            if (e->retired || idle) {
                if (idle)
                    al_info("model %s idle for %.0f s (keep-alive)", e->name, now - e->last_used);
                unlink_entry(mm, e);
                e->next = victims;
                victims = e;
            }
        }
        if (victims) {
            pthread_mutex_unlock(&mm->mu);
            free_entries(victims);
            pthread_mutex_lock(&mm->mu);
        }
    }
    pthread_mutex_unlock(&mm->mu);
    return NULL;
}

enum al_rc al_serve_new(const char *home, const struct al_serve_config *cfg, struct al_serve_models **out,
                         struct al_err *err)
{
    struct al_serve_models *mm = calloc(1, sizeof *mm);
    if (!mm)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&mm->mu, NULL);
    pthread_cond_init(&mm->cv, NULL);
    mm->cfg = *cfg;
    mm->cfg.chat_template = NULL;
    enum al_rc rc = AL_OK;
    if (cfg->chat_template && !(mm->chat_template = strdup(cfg->chat_template))) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    rc = al_repo_open(home, false, &mm->repo, err);
    if (rc || (rc = check_aliases(mm, cfg, err)))
        goto fail;
    mm->vcache = al_engine_verify_cache_new();
    if (!mm->vcache) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (pthread_create(&mm->reaper, NULL, reaper_main, mm) != 0) {
        rc = al_err_set(err, AL_ERR_INTERNAL, "cannot start the model reaper thread");
        goto fail;
    }
    mm->reaper_started = true;
    *out = mm;
    return AL_OK;
fail:
    al_serve_free(mm);
    return rc;
}

void al_serve_free(struct al_serve_models *mm)
{
    if (!mm)
        return;
    pthread_mutex_lock(&mm->mu);
    mm->stop = true;
    pthread_cond_broadcast(&mm->cv);
    pthread_mutex_unlock(&mm->mu);
    if (mm->reaper_started)
        pthread_join(mm->reaper, NULL);
    free_entries_ex(mm->entries, false);
    for (struct rref *r = mm->refs, *next; r; r = next) {
        next = r->next;
        free(r);
    }
    al_engine_verify_cache_free(mm->vcache);
    al_repo_free(mm->repo);
    free(mm->chat_template);
    pthread_cond_destroy(&mm->cv);
    pthread_mutex_destroy(&mm->mu);
    free(mm);
}

enum al_rc al_serve_preload(struct al_serve_models *mm, struct al_err *err)
{
    enum al_rc rc = AL_OK;
    pthread_mutex_lock(&mm->mu);
    for (int i = 0; i < mm->cfg.n_pinned && !rc; i++) {
        struct rref *r = NULL;
        rc = resolve(mm, mm->cfg.pinned[i], true, &r, err);
    }
    struct al_serve_lease *victims = NULL;
    mark_entries(mm, &victims);
    int n = mm->cfg.n_pinned;
    char (*pins)[336] = rc ? NULL : calloc((size_t)n + 1, sizeof *pins);
    if (!rc && !pins)
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    if (pins)
        memcpy(pins, mm->cfg.pinned, (size_t)n * sizeof *pins);
    pthread_mutex_unlock(&mm->mu);
    free_entries(victims);
    for (int i = 0; i < n && !rc && pins; i++) {
        struct al_serve_lease *l = NULL;
        rc = al_serve_acquire(mm, pins[i], &l, err);
        al_serve_release(l);
    }
    free(pins);
    pthread_mutex_lock(&mm->mu);
    mm->preload_done = true;
    pthread_mutex_unlock(&mm->mu);
    return rc;
}

bool al_serve_loading(struct al_serve_models *mm)
{
    pthread_mutex_lock(&mm->mu);
    bool loading = !mm->preload_done;
    for (struct al_serve_lease *e = mm->entries; e; e = e->next)
        if (e->state == E_LOADING && e->pinned)
            loading = true;
    pthread_mutex_unlock(&mm->mu);
    return loading;
}

enum al_rc al_serve_reload(struct al_serve_models *mm, const struct al_serve_config *cfg, struct al_err *err)
{
    char *tmpl = cfg->chat_template ? strdup(cfg->chat_template) : NULL;
    if (cfg->chat_template && !tmpl)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&mm->mu);
    enum al_rc crc = check_aliases(mm, cfg, err);
    if (crc) { /* the configuration stays as it was */
        pthread_mutex_unlock(&mm->mu);
        free(tmpl);
        return crc;
    }
    mm->cfg = *cfg;
    mm->cfg.chat_template = NULL;
    free(mm->chat_template); /* models loaded from now on get the new one */
    mm->chat_template = tmpl;
    struct rref *old = mm->refs;
    mm->refs = NULL;
    /* Resolve again every reference seen so far: a name now points at its
     * newly active version; a reference that no longer resolves is dropped. */
    for (struct rref *r = old; r; r = r->next) {
        struct rref *nr = NULL;
        struct al_err e2 = AL_ERR_INIT;
        if (resolve(mm, r->ref, false, &nr, &e2) != AL_OK)
            al_warn("reload: '%s' no longer resolves: %s", r->ref, e2.msg);
        else if (strcmp(nr->manifest, r->manifest) != 0)
            al_info("reload: '%s' now resolves to %s (was %s)", r->ref, nr->manifest, r->manifest);
    }
    for (struct rref *r = old, *next; r; r = next) {
        next = r->next;
        free(r);
    }
    pthread_mutex_unlock(&mm->mu);
    /* Pinned references are resolved (and flagged) by preload, which also
     * marks retired entries and loads the new versions. */
    return al_serve_preload(mm, err);
}

void al_serve_foreach_loaded(struct al_serve_models *mm, al_serve_loaded_fn *fn, void *ud)
{
    pthread_mutex_lock(&mm->mu);
    double now = now_s();
    for (struct al_serve_lease *e = mm->entries; e; e = e->next) {
        if (e->state != E_READY)
            continue;
        struct al_serve_loaded lm = {e->name, e->manifest, e->digest, &e->info, e->m,
                                     e->leases, e->pinned, e->retired, now - e->last_used, e->bytes,
                                     mm->cfg.keep_alive_s, e->base ? e->base->name : NULL};
        fn(ud, &lm);
    }
    pthread_mutex_unlock(&mm->mu);
}

enum al_rc al_serve_default_ref(struct al_serve_models *mm, char *out, size_t size, struct al_err *err)
{
    pthread_mutex_lock(&mm->mu);
    enum al_rc rc = AL_OK;
    if (mm->cfg.n_pinned == 0)
        rc = al_err_set(err, AL_ERR_USAGE, "no model named and no default model");
    else if ((size_t)snprintf(out, size, "%s", mm->cfg.pinned[0]) >= size)
        rc = al_err_set(err, AL_ERR_LIMIT, "the default model's reference is over %zu bytes", size - 1);
    pthread_mutex_unlock(&mm->mu);
    return rc;
}

enum al_rc al_serve_exists(struct al_serve_models *mm, const char *ref, struct al_err *err)
{
    pthread_mutex_lock(&mm->mu);
    struct rref *r = NULL;
    enum al_rc rc = resolve(mm, al_serve__unalias(mm, ref), false, &r, err);
    pthread_mutex_unlock(&mm->mu);
    return rc;
}
