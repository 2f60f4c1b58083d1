/*
 * key.c: signing key files, the build host's side of trust: making a key
 * pair, loading a secret key, showing a key's public half. Secrets are wiped
 * before they are freed (explicit_bzero, as the server does: OpenSSL stays
 * with sign/); a key file is never overwritten.
 */
#include "trust/trust.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/limits.h"

static void wipe_free(char *s, size_t len)
{
    if (s) {
        explicit_bzero(s, len);
        free(s);
    }
}

/* Creates path (which must not exist) holding text, synced; removes it
 * again when the write fails. */
static enum al_rc write_new(const char *path, const char *text, mode_t mode, struct al_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return al_err_sys(err, errno == EEXIST ? AL_ERR_EXISTS : AL_ERR_IO, "cannot create '%s'%s", path,
                          errno == EEXIST ? " (it exists; airlock never overwrites a key)" : "");
    enum al_rc rc = al_fs_write_all(fd, text, strlen(text), err);
    if (!rc && fsync(fd) != 0)
        rc = al_err_sys(err, AL_ERR_IO, "cannot fsync '%s'", path);
    close(fd);
    if (rc)
        unlink(path);
    return rc;
}

enum al_rc al_trust_keygen(const char *pub_path, const char *sec_path, const char *password,
                           char id[AL_MINISIGN_KEYID_HEX], struct al_err *err)
{
    char *pub = NULL, *sec = NULL;
    enum al_rc rc = al_minisign_keygen(password, &pub, &sec, err);
    if (rc)
        return rc;
    rc = write_new(sec_path, sec, 0600, err);
    if (!rc)
        rc = write_new(pub_path, pub, 0644, err);
    wipe_free(sec, strlen(sec));
    struct al_mkey_pub k;
    if (!rc)
        rc = al_minisign_pub_parse(pub, &k, err);
    if (!rc)
        al_minisign_keyid_hex(k.id, id);
    free(pub);
    return rc;
}

enum al_rc al_trust_key_load(const char *path, al_trust_password_fn *ask, void *ud, struct al_mkey_sec **out,
                             struct al_err *err)
{
    char *text = NULL;
    size_t len = 0;
    enum al_rc rc = al_fs_read_file(path, AL_LIMIT_MINISIGN_KEY_FILE, &text, &len, err);
    if (rc)
        return rc;
    bool enc = false;
    char *pw = NULL;
    rc = al_minisign_sec_encrypted(text, &enc, err);
    if (!rc && enc)
        rc = ask(ud, path, &pw, err);
    if (!rc)
        rc = al_minisign_sec_load(text, pw, out, err);
    wipe_free(pw, pw ? strlen(pw) : 0);
    wipe_free(text, len);
    return rc;
}

void al_trust_key_free(struct al_mkey_sec *sec) { al_minisign_sec_free(sec); }

enum al_rc al_trust_key_public(const char *path, al_trust_password_fn *ask, void *ud,
                               char id[AL_MINISIGN_KEYID_HEX], char **pub_text, struct al_err *err)
{
    char *text = NULL;
    size_t len = 0;
    struct al_mkey_pub k;
    enum al_rc rc = al_fs_read_file(path, AL_LIMIT_MINISIGN_KEY_FILE, &text, &len, err);
    if (rc)
        return rc;
    bool is_pub = al_minisign_pub_parse(text, &k, NULL) == AL_OK;
    wipe_free(text, len);
    if (!is_pub) {
        struct al_mkey_sec *sec = NULL;
        rc = al_trust_key_load(path, ask, ud, &sec, err);
        if (rc)
            return rc;
        al_minisign_sec_pub(sec, &k);
        al_minisign_sec_free(sec);
    }
    al_minisign_keyid_hex(k.id, id);
    return al_minisign_pub_format(&k, pub_text, err);
}
