/*
 * lora.c: LoRA adapters per request, as llama-server offers them.
 *
 *   GET  /lora-adapters   the adapters of the served base (?model=REF, else
 *                         the default model): the adapter versions of the
 *                         store bound to its weights, oldest first; the index
 *                         is the id; each with its name (llama-server's
 *                         "path"), digest and default scale
 *   POST /lora-adapters   [{"id": N, "scale": S}, ...]: the default scales of
 *                         that model (requests that name no adapters), the
 *                         others 0, as llama-server sets them
 *   "lora": [{"id": N, "scale": S}, ...] in a chat, completion or /completion
 *                         request: the adapters of that request, the others 0
 *
 * An id names an adapter version of the store, not a file: it is loaded into
 * the base's model on first use (al_serve_adapter_load; its digest checked
 * first) and kept with it. llama-server ignores an unknown id; we answer 400,
 * as a request meant for an adapter must not silently run on the base.
 */
#include "server/http_int.h"

#include <math.h>

#include "serve/models.h"
#include "server/metrics.h"

/* Adds "name@digest*scale" to h->lora (for the audit log and /metrics). */
static void note(struct al_http_req *h, const char *name, const char *digest, float scale)
{
    size_t n = strlen(h->lora);
    snprintf(h->lora + n, sizeof h->lora - n, "%s%s@%s*%g", n ? "," : "", name, digest, (double)scale);
}

void al_server_lora_count(struct al_http_req *h)
{
    char buf[sizeof h->lora];
    snprintf(buf, sizeof buf, "%s", h->lora);
    /* Names and digests hold no ',', '@' or '*' (AL_LIMIT_NAME's alphabet). */
    for (char *p = buf, *end; *p; p = end) {
        end = strchr(p, ',');
        end = end ? (*end = '\0', end + 1) : p + strlen(p);
        char *at = strchr(p, '@'), *star = at ? strchr(at, '*') : NULL;
        if (!at || !star)
            continue;
        *at = '\0';
        *star = '\0';
        al_server_metrics_lora(h->srv->metrics, p, at + 1);
    }
}

void al_server_lora_lease(struct al_http_req *h)
{
    h->lora[0] = '\0';
    h->n_lora_use = 0;
    int id = al_serve_lease_lora_id(h->lease);
    if (id < 0)
        return;
    h->lora_use[0] = (struct al_engine_lora_use){id, 1.0f};
    h->n_lora_use = 1;
    note(h, al_serve_lease_name(h->lease), al_serve_lease_lora_digest(h->lease), 1.0f);
}

/* Reads a list of {"id", "scale"} into ids/scales (n entries); false with the
 * 400 in *res. */
static bool read_list(struct al_http_req *h, json_t *list, const char *param, int *ids, float *scales, int *n,
                      enum MHD_Result *res)
{
    if (!json_is_array(list)) {
        *res = al_http_reply_error(h, 400, "invalid_request_error", param, NULL,
                                   "'%s' must be an array of objects with 'id' and 'scale'", param);
        return false;
    }
    if (json_array_size(list) > AL_LIMIT_LORAS) {
        *res = al_http_reply_error(h, 400, "invalid_request_error", param, "limit",
                                   "'%s' names %zu adapters, over the cap of %d (AL_LIMIT_LORAS)", param,
                                   json_array_size(list), AL_LIMIT_LORAS);
        return false;
    }
    *n = 0;
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        json_t *jid = json_object_get(e, "id"), *js = json_object_get(e, "scale");
        double sc = js ? json_number_value(js) : 0.0; /* llama-server: scale defaults to 0 */
        if (!json_is_integer(jid) || (js && !json_is_number(js)) || !(sc >= -100.0 && sc <= 100.0)) {
            *res = al_http_reply_error(h, 400, "invalid_request_error", param, NULL,
                                       "'%s'[%zu] needs an integer 'id' and a 'scale' from -100 to 100", param, i);
            return false;
        }
        json_int_t id = json_integer_value(jid);
        ids[*n] = id < 0 || id > INT32_MAX ? -1 : (int)id;
        scales[*n] = (float)sc;
        (*n)++;
    }
    return true;
}

/* Loads the adapters ids[0..n) of the lease's base into its model: engine
 * ids into eids. Notes each (audit, metrics) when note_them. */
static bool load_ids(struct al_http_req *h, const char *param, const int *ids, const float *scales, int n, int *eids,
                     bool note_them, enum MHD_Result *res)
{
    struct al_serve_adapter *rows = NULL;
    size_t nrows = 0;
    struct al_err err = AL_ERR_INIT;
    if (al_serve_adapters(h->srv->mm, al_serve_lease_digest(h->lease), &rows, &nrows, &err) != AL_OK) {
        *res = al_http_reply_rc(h, &err, param);
        return false;
    }
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= nrows) {
            *res = al_http_reply_error(h, 400, "invalid_request_error", param, NULL,
                                       "no LoRA adapter %d: the weights of '%s' have %zu (GET /lora-adapters)",
                                       ids[i], al_serve_lease_name(h->lease), nrows);
            ok = false;
        } else if (al_serve_adapter_load(h->lease, &rows[ids[i]], &eids[i], &err) != AL_OK) {
            *res = al_http_reply_rc(h, &err, param);
            ok = false;
        } else if (note_them) {
            note(h, rows[ids[i]].name, rows[ids[i]].digest, scales[i]);
        }
    }
    free(rows);
    return ok;
}

bool al_server_lora_request(struct al_http_req *h, json_t *body, enum MHD_Result *res)
{
    json_t *list = json_object_get(body, "lora");
    if (!list || json_is_null(list))
        return true;
    int ids[AL_LIMIT_LORAS], eids[AL_LIMIT_LORAS], n = 0;
    float scales[AL_LIMIT_LORAS];
    if (!read_list(h, list, "lora", ids, scales, &n, res))
        return false;
    if (n == 0)
        return true; /* llama-server: an empty list is the defaults */
    h->lora[0] = '\0'; /* the request's list replaces the adapter of a model name */
    if (!load_ids(h, "lora", ids, scales, n, eids, true, res))
        return false;
    for (int i = 0; i < n; i++)
        h->lora_use[i] = (struct al_engine_lora_use){eids[i], scales[i]};
    h->n_lora_use = n;
    return true;
}

/* ?model=REF of a GET, else the body's "model" (or the default model). */
static bool lease_for(struct al_http_req *h, json_t *body, enum MHD_Result *res)
{
    const char *q = MHD_lookup_connection_value(h->conn, MHD_GET_ARGUMENT_KIND, "model");
    if (!q)
        return al_http_lease(h, body, res);
    json_t *b = json_pack("{s:s}", "model", q);
    if (!b) {
        *res = al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
        return false;
    }
    bool ok = al_http_lease(h, b, res);
    json_decref(b);
    return ok;
}

enum MHD_Result al_server_route_lora_list(struct al_http_req *h, json_t *body)
{
    enum MHD_Result res;
    if (!lease_for(h, body, &res))
        return res;
    struct al_serve_adapter *rows = NULL;
    size_t n = 0;
    struct al_err err = AL_ERR_INIT;
    if (al_serve_adapters(h->srv->mm, al_serve_lease_digest(h->lease), &rows, &n, &err) != AL_OK)
        return al_http_reply_rc(h, &err, NULL);
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        char ref[sizeof rows[i].name + sizeof rows[i].manifest + 1];
        snprintf(ref, sizeof ref, "%s@%s", rows[i].name, rows[i].manifest);
        float sc = 0.0f;
        al_engine_lora_default(al_serve_lease_engine(h->lease), rows[i].digest, &sc);
        json_array_append_new(arr, json_pack("{s:I, s:s, s:f, s:s, s:s, s:s, s:s}", "id", (json_int_t)i, "path", ref,
                                             "scale", (double)sc, "task_name", "", "prompt_prefix", "", "digest",
                                             rows[i].digest, "tags", rows[i].tags));
    }
    free(rows);
    return arr ? al_http_reply_json(h, 200, arr)
               : al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
}

enum MHD_Result al_server_route_lora_set(struct al_http_req *h, json_t *body)
{
    enum MHD_Result res;
    if (!json_is_array(body))
        return al_http_reply_error(h, 400, "invalid_request_error", NULL, NULL, "Request body must be an array");
    if (!lease_for(h, NULL, &res))
        return res;
    int ids[AL_LIMIT_LORAS], eids[AL_LIMIT_LORAS], n = 0;
    float scales[AL_LIMIT_LORAS];
    if (!read_list(h, body, "body", ids, scales, &n, &res) || !load_ids(h, "body", ids, scales, n, eids, false, &res))
        return res;
    /* As llama-server: the adapters not listed go to 0. */
    struct al_engine_model *m = al_serve_lease_engine(h->lease);
    struct al_err err = AL_ERR_INIT;
    for (int id = 0; id < AL_LIMIT_LORAS; id++)
        al_engine_lora_set_default(m, id, 0.0f, &err); /* ids past the loaded ones: ignored */
    for (int i = 0; i < n; i++)
        if (al_engine_lora_set_default(m, eids[i], scales[i], &err) != AL_OK)
            return al_http_reply_rc(h, &err, NULL);
    return al_http_reply_json(h, 200, json_pack("{s:b}", "success", 1));
}
