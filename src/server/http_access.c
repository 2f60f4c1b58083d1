/*
 * http_access.c: who the caller is (bearer key, client certificate) and
 * whether it may use a route's scope and the model it names.
 */
#include "server/http_int.h"

#include <string.h>
#include <strings.h>

#include "access/access.h"
#include "core/log.h"

static const char *bearer_token(struct al_http_req *h)
{
    if (h->reg_key[0])
        return h->reg_key;
    const char *auth = MHD_lookup_connection_value(h->conn, MHD_HEADER_KIND, "Authorization");
    return auth && strncasecmp(auth, "Bearer ", 7) == 0 ? auth + 7 : NULL;
}

/* The key check for a scope and a model (NULL: not checked); false with
 * the refusal queued. A valid key is the caller even when refused, so its
 * 403s are audited under its name. */
static bool access_check(struct al_http_req *h, const char *scope, const char *model, enum MHD_Result *res)
{
    struct al_server *s = h->srv;
    const char *bearer = bearer_token(h);
    char identity[128] = "";
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc;
    /* A key's patterns are for the model an alias stands for (serve --alias):
     * an alias renames, it grants nothing. */
    char real[AL_LIMIT_REF + 1];
    if (model && al_serve_unalias(s->mm, model, real, sizeof real, &err) == AL_OK)
        model = real;
    al_err_clear(&err);
    if (scope && strcmp(scope, "models") == 0) {
        /* Listing models: any key that may chat or embed. */
        rc = al_access_check(s->o.access, bearer, "chat", model, identity, &err);
        if (rc == AL_ERR_DENIED) {
            al_err_clear(&err);
            rc = al_access_check(s->o.access, bearer, "embed", model, identity, &err);
        }
    } else {
        rc = al_access_check(s->o.access, bearer, scope, model, identity, &err);
    }
    /* An API key names the caller; an open server ("anonymous") keeps the
     * client certificate's subject when there is one. */
    if ((rc == AL_OK || rc == AL_ERR_DENIED) && identity[0] && !(s->tls_ca && strcmp(identity, "anonymous") == 0))
        snprintf(h->caller, sizeof h->caller, "%s", identity);
    if (rc == AL_OK)
        return true;
    /* A refused key names the model it may not use; anything else
     * (AL_ERR_AUTH: 401, a key table that cannot be read: 500) is the table's. */
    if (rc == AL_ERR_DENIED)
        *res = al_http_reply_error(h, 403, "permission_error", model ? "model" : NULL, "permission_denied", "%s",
                                   err.msg[0] ? err.msg : "this key may not do that");
    else
        *res = al_http_reply_rc(h, &err, NULL);
    return false;
}

bool al_http_access(struct al_http_req *h, const char *scope, enum MHD_Result *res)
{
    if (!h->srv->o.access)
        return true;
    return access_check(h, scope, NULL, res);
}

bool al_http_model_access(struct al_http_req *h, const char *ref, enum MHD_Result *res)
{
    if (!h->srv->o.access)
        return true;
    return access_check(h, NULL, ref, res);
}

bool al_http_model_visible(struct al_http_req *h, const char *name)
{
    if (!h->srv->o.access)
        return true;
    char identity[128];
    struct al_err err = AL_ERR_INIT;
    return al_access_check(h->srv->o.access, bearer_token(h), NULL, name, identity, &err) == AL_OK;
}

bool al_http_scope_allowed(struct al_http_req *h, const char *scope)
{
    if (!h->srv->o.access)
        return true;
    char identity[128];
    struct al_err err = AL_ERR_INIT;
    return al_access_check(h->srv->o.access, bearer_token(h), scope, NULL, identity, &err) == AL_OK;
}

/* The access hook, before the handler: the client certificate and the
 * route's scope. Models are checked where they are chosen (al_http_lease),
 * once defaults are applied; here only the one a URL names. */
bool al_http_check_access(struct al_http_req *h, enum MHD_Result *res)
{
    struct al_server *s = h->srv;
    if (s->tls_ca) {
        char subject[128];
        if (!al_server_tls_client_subject(h->conn, subject, sizeof subject)) {
            *res = al_http_reply_error(h, 401, "invalid_request_error", NULL, "client_certificate_required",
                                       "a valid client certificate is required");
            return false;
        }
        snprintf(h->caller, sizeof h->caller, "%s", subject);
    }
    if (!s->o.access || !h->scope)
        return true;
    const char *model = al_http_model_id(h->url);
    return access_check(h, h->scope, model, res);
}
