/*
 * hooks.h: the server's calls into the access (API keys) and audit modules,
 * declared here until src/access and src/audit are merged; the signatures
 * are the agreed ones. They are weak so that the server links without those
 * modules: the server only calls them with a non-NULL struct al_access /
 * struct al_audit, which only those modules can make. When they are merged,
 * their headers replace these declarations.
 */
#ifndef AL_SERVER_HOOKS_H
#define AL_SERVER_HOOKS_H

#include "core/err.h"

struct al_access;
struct al_audit;

struct al_audit_record {
    const char *request_id, *caller, *model_digest, *route;
    int status;
    int tokens_in, tokens_out;
    double latency_ms;
    const char *prompt, *response; /* NULL unless text capture is on */
};

/* AL_OK, AL_ERR_DENIED (403) or AL_ERR_VERIFY (401). scope: "chat", "embed",
 * "admin"; model may be NULL. identity gets the caller's name. */
__attribute__((weak)) enum al_rc al_access_check(struct al_access *a, const char *bearer_token, const char *scope,
                                                 const char *model, char identity[128], struct al_err *err);

__attribute__((weak)) enum al_rc al_audit_append(struct al_audit *a, const struct al_audit_record *rec,
                                                 struct al_err *err);

#endif
