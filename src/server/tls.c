/*
 * tls.c: TLS material and the client certificate. libmicrohttpd does the
 * TLS itself (through GnuTLS); with a trust CA it asks every client for a
 * certificate, and here the handler checks that one was given and verifies,
 * and takes its subject as the caller's identity.
 */
#include "server/http_int.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#define PEM_MAX (1u << 20)

enum al_rc al_server_tls_read_pem(const char *path, char **out, struct al_err *err)
{
    FILE *f = fopen(path, "rbe");
    if (!f)
        return al_err_sys(err, AL_ERR_IO, "cannot open '%s'", path);
    struct al_buf b;
    al_buf_init(&b, PEM_MAX);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        al_buf_add(&b, chunk, n);
    bool bad = ferror(f);
    fclose(f);
    if (bad || al_buf_failed(&b)) {
        al_buf_release(&b);
        return al_err_set(err, bad ? AL_ERR_IO : AL_ERR_LIMIT, "cannot read '%s'%s", path,
                          bad ? "" : ": over the cap of 1 MiB");
    }
    *out = al_buf_take(&b);
    return *out ? AL_OK : al_err_set(err, AL_ERR_IO, "'%s' is empty", path);
}

bool al_server_tls_client_subject(struct MHD_Connection *c, char *out, size_t size)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session)
        return false;
    gnutls_session_t s = (gnutls_session_t)ci->tls_session;
    unsigned status = 0;
    if (gnutls_certificate_verify_peers2(s, &status) != GNUTLS_E_SUCCESS || status != 0)
        return false;
    unsigned n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
    if (!certs || n == 0)
        return false;
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) != GNUTLS_E_SUCCESS)
        return false;
    bool ok = false;
    size_t len = size;
    if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == GNUTLS_E_SUCCESS &&
        gnutls_x509_crt_get_dn(crt, out, &len) == GNUTLS_E_SUCCESS)
        ok = true;
    gnutls_x509_crt_deinit(crt);
    return ok;
}
