#include "cli/cli_util.h"

#include <stdio.h>

#include "cli/cli.h"
#include "core/fs.h"
#include "core/limits.h"

int al_cli_open_repo(bool create, struct al_repo **out)
{
    char home[AL_LIMIT_PATH];
    struct al_err err = AL_ERR_INIT;
    al_cli_home(home, sizeof home);
    if (al_repo_open(home, create, out, &err) != AL_OK)
        return al_cli_fail(&err);
    return AL_EXIT_OK;
}

int al_cli_open_repo_read(struct al_repo **out)
{
    char home[AL_LIMIT_PATH];
    struct al_err err = AL_ERR_INIT;
    al_cli_home(home, sizeof home);
    if (al_repo_open_read(home, out, &err) != AL_OK)
        return al_cli_fail(&err);
    if (al_repo_read_only(*out))
        fprintf(stderr, "airlock: note: the store at '%s' cannot be written here; it is opened read-only\n", home);
    return AL_EXIT_OK;
}

bool al_cli_help(int argc, char **argv, const char *help)
{
    if (!al_cli_wants_help(argc, argv))
        return false;
    fputs(help, stdout);
    return true;
}

int al_cli_start(const char *cmd, const char *usage_error, bool create, struct al_repo **out)
{
    if (usage_error)
        return al_cli_usage_error(cmd, "%s", usage_error);
    return al_cli_open_repo(create, out);
}

int al_cli_start_read(const char *cmd, const char *usage_error, struct al_repo **out)
{
    if (usage_error)
        return al_cli_usage_error(cmd, "%s", usage_error);
    return al_cli_open_repo_read(out);
}

void al_cli_human_size(int64_t bytes, char *out, size_t size)
{
    al_fmt_size(bytes, out, size);
}

const char *al_cli_short(const char *digest)
{
    static _Thread_local char buf[20];
    snprintf(buf, sizeof buf, "%.12s", strncmp(digest, "sha256:", 7) == 0 ? digest + 7 : digest);
    return buf;
}
