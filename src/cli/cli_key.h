/* cli_key.h: secret keys and passwords for the commands that sign. */
#ifndef AL_CLI_KEY_H
#define AL_CLI_KEY_H

#include <stdbool.h>

#include "trust/trust.h"

/* A password from AIRLOCK_KEY_PASSWORD, else asked on the terminal (twice
 * with confirm). NULL when neither is possible. The caller wipes and frees. */
char *al_cli_password(const char *prompt, bool confirm);

/* Loads a minisign secret key file (al_trust_key_load), asking for its
 * password when encrypted; free it with al_trust_key_free. */
enum al_rc al_cli_load_secret_key(const char *path, struct al_mkey_sec **out, struct al_err *err);

#endif
