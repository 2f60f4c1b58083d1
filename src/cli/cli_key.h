/* cli_key.h: secret keys and passwords for the commands that sign. */
#ifndef AL_CLI_KEY_H
#define AL_CLI_KEY_H

#include <stdbool.h>

#include "bundle/bundle.h"
#include "trust/trust.h"

/* A password from AIRLOCK_KEY_PASSWORD, else asked on the terminal (twice
 * with confirm). NULL when neither is possible. The caller wipes and frees. */
char *al_cli_password(const char *prompt, bool confirm);

/* Loads a minisign secret key file (al_trust_key_load), asking for its
 * password when encrypted; free it with al_trust_key_free. */
enum al_rc al_cli_load_secret_key(const char *path, struct al_mkey_sec **out, struct al_err *err);

/* What can be checked without the secret keys, checked before they are
 * unlocked, so a mistyped option does not cost a password and scrypt's
 * seconds: po's dates, license id, files and directories, stored refs (ref,
 * delta_base). The library checks them again. Returns an exit status, 0 when
 * all is well. */
int al_cli_pack_preflight(const char *cmd, const struct al_bundle_pack_opts *po);

#endif
