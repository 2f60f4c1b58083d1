/*
 * config.c: the serve configuration file (see config.h).
 */
#include "server/config.h"

#include <jansson.h>

#include "engine/chat.h"

void al_server_config_default(struct al_server_config *c)
{
    memset(c, 0, sizeof *c);
    al_server_opts_default(&c->server);
    al_serve_config_default(&c->models);
    snprintf(c->host, sizeof c->host, "127.0.0.1");
    c->drain_timeout_s = 30;
    al_server_config_fix(c);
}

void al_server_config_fix(struct al_server_config *c)
{
    c->server.host = c->host;
    c->server.socket_path = c->socket[0] ? c->socket : NULL;
    c->server.tls_cert = c->tls_cert[0] ? c->tls_cert : NULL;
    c->server.tls_key = c->tls_key[0] ? c->tls_key : NULL;
    c->server.tls_client_ca = c->tls_ca[0] ? c->tls_ca : NULL;
    c->models.chat_template = c->chat_template;
    c->server.cors_origins = c->cors[0] ? c->cors : NULL;
}

static enum al_rc keys_known(json_t *obj, const char *where, const char *const *known, struct al_err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool ok = false;
        for (const char *const *k = known; *k && !ok; k++)
            ok = strcmp(*k, key) == 0;
        if (!ok)
            return al_err_set(err, AL_ERR_INVALID, "config: unknown key '%s%s%s'", where, *where ? "." : "", key);
    }
    return AL_OK;
}

static enum al_rc get_int(json_t *obj, const char *key, long long lo, long long hi, int *out, struct al_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return AL_OK;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return al_err_set(err, AL_ERR_INVALID, "config: '%s' must be an integer from %lld to %lld", key, lo, hi);
    *out = (int)json_integer_value(v);
    return AL_OK;
}

static enum al_rc get_num(json_t *obj, const char *key, double *out, struct al_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return AL_OK;
    if (!json_is_number(v))
        return al_err_set(err, AL_ERR_INVALID, "config: '%s' must be a number", key);
    *out = json_number_value(v);
    return AL_OK;
}

static enum al_rc get_str(json_t *obj, const char *key, char *out, size_t size, struct al_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return AL_OK;
    if (!json_is_string(v))
        return al_err_set(err, AL_ERR_INVALID, "config: '%s' must be a string", key);
    if (json_string_length(v) >= size)
        return al_err_set(err, AL_ERR_LIMIT, "config: '%s' is longer than %zu bytes", key, size - 1);
    snprintf(out, size, "%s", json_string_value(v));
    return AL_OK;
}

static enum al_rc get_bool(json_t *obj, const char *key, int *out, struct al_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return AL_OK;
    if (!json_is_boolean(v))
        return al_err_set(err, AL_ERR_INVALID, "config: '%s' must be true or false", key);
    *out = json_is_true(v);
    return AL_OK;
}

static enum al_rc settings(json_t *obj, const char *where, struct al_serve_settings *s, struct al_err *err)
{
    static const char *const known[] = {"threads", "ctx", "ctx_per_seq", "batch", "parallel", "queue",
                                        "gpu_layers", "mmap", "mlock", NULL};
    enum al_rc rc;
    if (!json_is_object(obj))
        return al_err_set(err, AL_ERR_INVALID, "config: '%s' must be an object", where);
    if ((rc = keys_known(obj, where, known, err)) || (rc = get_int(obj, "threads", 1, 1024, &s->threads, err)) ||
        (rc = get_int(obj, "ctx", 0, 1 << 24, &s->ctx, err)) || (rc = get_int(obj, "batch", 1, 1 << 20, &s->batch, err)) ||
        (rc = get_int(obj, "ctx_per_seq", 0, 1 << 24, &s->ctx_seq, err)) ||
        (rc = get_int(obj, "parallel", 1, AL_LIMIT_SEQS, &s->n_seq, err)) ||
        (rc = get_int(obj, "queue", 1, AL_LIMIT_QUEUE, &s->queue, err)) ||
        (rc = get_int(obj, "gpu_layers", 0, 100000, &s->gpu_layers, err)) ||
        (rc = get_bool(obj, "mmap", &s->mmap, err)) || (rc = get_bool(obj, "mlock", &s->mlock, err)))
        return rc;
    return AL_OK;
}

/* "aliases" or "tags": {"REF": ["a", "b"] or "a,b"}, as serve --alias REF=a,b. */
static enum al_rc name_lists(struct al_server_config *c, json_t *obj, bool tags, struct al_err *err)
{
    const char *key = tags ? "tags" : "aliases";
    if (!json_is_object(obj))
        return al_err_set(err, AL_ERR_INVALID, "config: '%s' must be an object of model references", key);
    const char *ref;
    json_t *v;
    json_object_foreach(obj, ref, v)
    {
        char spec[AL_LIMIT_REF + 1 + AL_SERVE_ALIAS_TEXT];
        size_t used = (size_t)snprintf(spec, sizeof spec, "%s=", ref);
        size_t i;
        json_t *x;
        if (json_is_string(v)) {
            used += (size_t)snprintf(spec + used, used < sizeof spec ? sizeof spec - used : 0, "%s",
                                     json_string_value(v));
        } else if (json_is_array(v) && json_array_size(v) > 0) {
            json_array_foreach(v, i, x)
            {
                if (!json_is_string(x))
                    return al_err_set(err, AL_ERR_INVALID, "config: %s.%s[%zu] must be a string", key, ref, i);
                used += (size_t)snprintf(spec + used, used < sizeof spec ? sizeof spec - used : 0, "%s%s",
                                         i ? "," : "", json_string_value(x));
            }
        } else {
            return al_err_set(err, AL_ERR_INVALID, "config: %s.%s must be a string or an array of strings", key, ref);
        }
        if (used >= sizeof spec)
            return al_err_set(err, AL_ERR_LIMIT, "config: %s.%s is too long", key, ref);
        struct al_err e2 = AL_ERR_INIT;
        if (al_serve_alias_set(c->models.aliases, &c->models.n_aliases, spec, tags, &e2) != AL_OK)
            return al_err_set(err, AL_ERR_INVALID, "config: %s", e2.msg);
    }
    return AL_OK;
}

static enum al_rc apply(struct al_server_config *c, json_t *root, struct al_err *err)
{
    static const char *const top[] = {"listen", "tls", "models", "defaults", "model_settings", "memory_budget_mb",
                                      "max_models", "keep_alive_s", "chat_template", "chat_template_file", "limits",
                                      "drain_timeout_s", "audit_text", "audit_fail", "stream_interval_ms", "webui",
                                      "slots", "registry", "registry_sign_key", "cors_origins", "sampling", "aliases",
                                      "tags", NULL};
    static const char *const sampling_keys[] = {"seed", "temperature", "n_predict", NULL};
    static const char *const listen_keys[] = {"host", "port", "listen_any", "socket", "socket_mode", NULL};
    static const char *const tls_keys[] = {"cert", "key", "client_ca", NULL};
    static const char *const limit_keys[] = {"body_bytes", "prompt_tokens", "max_tokens", "concurrent", "timeout_s",
                                             "receive_timeout_s", NULL};
    enum al_rc rc;
    if (!json_is_object(root))
        return al_err_set(err, AL_ERR_INVALID, "config: the file must hold a JSON object");
    if ((rc = keys_known(root, "", top, err)))
        return rc;
    json_t *v;
    if ((v = json_object_get(root, "listen"))) {
        int any = c->server.listen_any, mode = -1;
        char mode_s[16] = "";
        if ((rc = keys_known(v, "listen", listen_keys, err)) || (rc = get_str(v, "host", c->host, sizeof c->host, err)) ||
            (rc = get_int(v, "port", 0, 65535, &c->server.port, err)) || (rc = get_bool(v, "listen_any", &any, err)) ||
            (rc = get_str(v, "socket", c->socket, sizeof c->socket, err)) ||
            (rc = get_str(v, "socket_mode", mode_s, sizeof mode_s, err)))
            return rc;
        if (mode_s[0]) {
            char *end;
            long m = strtol(mode_s, &end, 8);
            if (*end || m < 0 || m > 0777)
                return al_err_set(err, AL_ERR_INVALID, "config: 'socket_mode' must be octal, like \"0660\"");
            mode = (int)m;
        }
        if (mode >= 0)
            c->server.socket_mode = mode;
        c->server.listen_any = any;
    }
    if ((v = json_object_get(root, "tls")) &&
        ((rc = keys_known(v, "tls", tls_keys, err)) || (rc = get_str(v, "cert", c->tls_cert, sizeof c->tls_cert, err)) ||
         (rc = get_str(v, "key", c->tls_key, sizeof c->tls_key, err)) ||
         (rc = get_str(v, "client_ca", c->tls_ca, sizeof c->tls_ca, err))))
        return rc;
    if ((v = json_object_get(root, "models"))) {
        size_t i;
        json_t *m;
        if (!json_is_array(v) || json_array_size(v) > AL_SERVE_MAX_PINNED)
            return al_err_set(err, AL_ERR_INVALID, "config: 'models' must be an array of at most %d refs",
                              AL_SERVE_MAX_PINNED);
        c->models.n_pinned = 0;
        json_array_foreach(v, i, m)
        {
            if (!json_is_string(m) || json_string_length(m) >= sizeof c->models.pinned[0])
                return al_err_set(err, AL_ERR_INVALID, "config: models[%zu] must be a model reference", i);
            snprintf(c->models.pinned[c->models.n_pinned++], sizeof c->models.pinned[0], "%s", json_string_value(m));
        }
    }
    if ((v = json_object_get(root, "cors_origins"))) {
        /* A string "a,b" or an array of strings, as --cors-origins. */
        size_t i;
        json_t *o;
        if (json_is_string(v)) {
            if (json_string_length(v) >= sizeof c->cors)
                return al_err_set(err, AL_ERR_LIMIT, "config: 'cors_origins' is longer than %zu bytes", sizeof c->cors - 1);
            snprintf(c->cors, sizeof c->cors, "%s", json_string_value(v));
        } else if (json_is_array(v)) {
            c->cors[0] = '\0';
            json_array_foreach(v, i, o)
            {
                size_t len = strlen(c->cors);
                if (!json_is_string(o) || strchr(json_string_value(o), ','))
                    return al_err_set(err, AL_ERR_INVALID, "config: cors_origins[%zu] must be one origin", i);
                if (len + json_string_length(o) + 2 > sizeof c->cors)
                    return al_err_set(err, AL_ERR_LIMIT, "config: 'cors_origins' is longer than %zu bytes",
                                      sizeof c->cors - 1);
                snprintf(c->cors + len, sizeof c->cors - len, "%s%s", len ? "," : "", json_string_value(o));
            }
        } else {
            return al_err_set(err, AL_ERR_INVALID, "config: 'cors_origins' must be a string or an array of strings");
        }
    }
    if ((v = json_object_get(root, "sampling"))) {
        /* The defaults of requests that do not set them, as serve --seed, --temp, --n-predict. */
        struct al_server_sampling *sd = &c->server.sampling;
        double temp = -1;
        json_t *seed = json_object_get(v, "seed");
        if ((rc = keys_known(v, "sampling", sampling_keys, err)) || (rc = get_num(v, "temperature", &temp, err)) ||
            (rc = get_int(v, "n_predict", -1, 1 << 24, &sd->n_predict, err)))
            return rc;
        if (seed && !(json_is_integer(seed) && json_integer_value(seed) >= -1 &&
                      json_integer_value(seed) < (json_int_t)UINT32_MAX))
            return al_err_set(err, AL_ERR_INVALID, "config: 'sampling.seed' must be an integer from -1 to %u",
                              UINT32_MAX - 1);
        if (seed) {
            sd->seed_set = json_integer_value(seed) >= 0;
            sd->seed = sd->seed_set ? (uint32_t)json_integer_value(seed) : 0;
        }
        if (json_object_get(v, "temperature")) {
            if (!(temp >= 0 && temp <= 2))
                return al_err_set(err, AL_ERR_INVALID, "config: 'sampling.temperature' must be from 0 to 2");
            sd->temp_set = true;
            sd->temperature = (float)temp;
        }
    }
    if ((v = json_object_get(root, "aliases")) && (rc = name_lists(c, v, false, err)))
        return rc;
    if ((v = json_object_get(root, "tags")) && (rc = name_lists(c, v, true, err)))
        return rc;
    if ((v = json_object_get(root, "defaults")) && (rc = settings(v, "defaults", &c->models.defaults, err)))
        return rc;
    if ((v = json_object_get(root, "model_settings"))) {
        const char *name;
        json_t *s;
        if (!json_is_object(v))
            return al_err_set(err, AL_ERR_INVALID, "config: 'model_settings' must be an object");
        c->models.n_overrides = 0;
        json_object_foreach(v, name, s)
        {
            if (c->models.n_overrides >= AL_SERVE_MAX_OVERRIDES || strlen(name) >= sizeof c->models.overrides[0].name)
                return al_err_set(err, AL_ERR_LIMIT, "config: too many model_settings or too long a name");
            struct al_serve_override *o = &c->models.overrides[c->models.n_overrides++];
            struct al_serve_settings unset = AL_SERVE_SETTINGS_UNSET;
            o->s = unset;
            snprintf(o->name, sizeof o->name, "%s", name);
            if ((rc = settings(s, name, &o->s, err)))
                return rc;
        }
    }
    int mb = -1, audit_text = c->server.audit_text, webui = !c->server.no_webui, slots = !c->server.no_slots,
        registry = c->server.registry;
    if ((rc = get_int(root, "memory_budget_mb", 0, 1 << 30, &mb, err)) ||
        (rc = get_int(root, "max_models", 0, 1024, &c->models.max_loaded, err)) ||
        (rc = get_num(root, "keep_alive_s", &c->models.keep_alive_s, err)) ||
        (rc = get_num(root, "drain_timeout_s", &c->drain_timeout_s, err)) ||
        (rc = get_num(root, "stream_interval_ms", &c->server.stream_interval_ms, err)) ||
        (rc = get_bool(root, "audit_text", &audit_text, err)) || (rc = get_bool(root, "webui", &webui, err)) ||
        (rc = get_bool(root, "slots", &slots, err)) ||
        (rc = get_bool(root, "registry", &registry, err)) ||
        (rc = get_str(root, "registry_sign_key", c->registry_sign, sizeof c->registry_sign, err)))
        return rc;
    c->server.registry = registry;
    json_t *ct = json_object_get(root, "chat_template"), *ctf = json_object_get(root, "chat_template_file");
    if ((ct && !json_is_string(ct)) || (ctf && !json_is_string(ctf)))
        return al_err_set(err, AL_ERR_INVALID, "config: '%s' must be a string", ct && !json_is_string(ct) ? "chat_template"
                                                                                    : "chat_template_file");
    if (ct && ctf)
        return al_err_set(err, AL_ERR_INVALID, "config: 'chat_template' and 'chat_template_file' exclude each other");
    if ((ct && (rc = al_server_config_chat_template(c, json_string_value(ct), false, err))) ||
        (ctf && (rc = al_server_config_chat_template(c, json_string_value(ctf), true, err))))
        return rc;
    char fail[16] = "";
    if ((rc = get_str(root, "audit_fail", fail, sizeof fail, err)))
        return rc;
    if (fail[0] && al_server_audit_fail_parse(fail, &c->server.audit_fail_open) != AL_OK)
        return al_err_set(err, AL_ERR_INVALID, "config: 'audit_fail' must be \"closed\" or \"open\", not '%s'", fail);
    if (mb >= 0)
        c->models.budget_bytes = (uint64_t)mb << 20;
    c->server.audit_text = audit_text;
    c->server.no_webui = !webui;
    c->server.no_slots = !slots;
    if ((v = json_object_get(root, "limits"))) {
        struct al_server_limits *l = &c->server.limits;
        int body = (int)l->body_bytes;
        if ((rc = keys_known(v, "limits", limit_keys, err)) || (rc = get_int(v, "body_bytes", 1, 1 << 30, &body, err)) ||
            (rc = get_int(v, "prompt_tokens", 1, 1 << 24, &l->prompt_tokens, err)) ||
            (rc = get_int(v, "max_tokens", 1, 1 << 24, &l->max_tokens, err)) ||
            (rc = get_int(v, "concurrent", 1, 100000, &l->concurrent, err)) ||
            (rc = get_num(v, "timeout_s", &l->timeout_s, err)) ||
            (rc = get_num(v, "receive_timeout_s", &l->receive_timeout_s, err)))
            return rc;
        if (!(l->receive_timeout_s > 0 && l->receive_timeout_s <= AL_SERVER_RECEIVE_TIMEOUT_MAX))
            return al_err_set(err, AL_ERR_INVALID, "config: 'limits.receive_timeout_s' must be above 0 and at most %d",
                              AL_SERVER_RECEIVE_TIMEOUT_MAX);
        l->body_bytes = (size_t)body;
    }
    return AL_OK;
}

void al_server_config_release(struct al_server_config *c)
{
    free(c->chat_template);
    c->chat_template = NULL;
    c->models.chat_template = NULL;
}

/* The text of a template file, at most AL_LIMIT_CHAT_TEMPLATE bytes. */
static enum al_rc read_template(const char *path, char **out, struct al_err *err)
{
    FILE *f = fopen(path, "rbe");
    if (!f)
        return al_err_sys(err, AL_ERR_IO, "cannot open the chat template '%s'", path);
    char *buf = malloc((size_t)AL_LIMIT_CHAT_TEMPLATE + 2);
    size_t n = buf ? fread(buf, 1, (size_t)AL_LIMIT_CHAT_TEMPLATE + 1, f) : 0;
    bool bad = buf && ferror(f);
    fclose(f);
    if (!buf)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    if (bad || n > AL_LIMIT_CHAT_TEMPLATE || memchr(buf, 0, n)) {
        free(buf);
        if (bad)
            return al_err_set(err, AL_ERR_IO, "cannot read the chat template '%s'", path);
        if (n > AL_LIMIT_CHAT_TEMPLATE)
            return al_err_set(err, AL_ERR_LIMIT, "the chat template '%s' is over the cap of %u bytes "
                              "(AL_LIMIT_CHAT_TEMPLATE)", path, AL_LIMIT_CHAT_TEMPLATE);
        return al_err_set(err, AL_ERR_INVALID, "the chat template '%s' holds a NUL byte", path);
    }
    buf[n] = '\0';
    *out = buf;
    return AL_OK;
}

enum al_rc al_server_config_chat_template(struct al_server_config *c, const char *value, bool is_file,
                                          struct al_err *err)
{
    if (!is_file && al_engine_chat_builtin(value)) {
        /* A builtin name: the format of models without a template, as before. */
        snprintf(c->models.chat_fallback, sizeof c->models.chat_fallback, "%s", value);
        return AL_OK;
    }
    char *text = NULL;
    enum al_rc rc = is_file ? read_template(value, &text, err) : AL_OK;
    if (!rc && !is_file && !(text = strdup(value)))
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    if (!rc)
        rc = al_engine_chat_template_check(text, err);
    if (rc) {
        free(text);
        return rc;
    }
    free(c->chat_template);
    c->chat_template = text;
    c->models.chat_template = text;
    return AL_OK;
}

enum al_rc al_server_audit_fail_parse(const char *s, bool *open)
{
    if (strcmp(s, "closed") == 0)
        *open = false;
    else if (strcmp(s, "open") == 0)
        *open = true;
    else
        return AL_ERR_INVALID;
    return AL_OK;
}

enum al_rc al_server_config_load(struct al_server_config *c, const char *path, struct al_err *err)
{
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return al_err_set(err, AL_ERR_INVALID, "cannot read config '%s': %s (line %d)", path, je.text, je.line);
    enum al_rc rc = apply(c, root, err);
    json_decref(root);
    al_server_config_fix(c);
    return rc;
}
