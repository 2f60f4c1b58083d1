#include "cli/cli_util.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>

#include "cli/cli.h"
#include "core/fs.h"
#include "core/hash.h"
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
    const char *hex = al_digest_hex(digest);
    snprintf(buf, sizeof buf, "%.12s", hex ? hex : digest);
    return buf;
}

/* ---- option values ---- */

/* strtoll and strtod accept leading white space, a plus sign, and strtod
 * also hex, exponents, "inf" and "nan": the forms here are narrower, so the
 * characters are checked before converting. */

/* The whole number at the start of s (a minus sign where allowed); *end
 * after it. */
static bool lead_int(const char *s, bool sign_ok, long long *v, const char **end)
{
    const char *d = sign_ok && *s == '-' ? s + 1 : s;
    if (!isdigit((unsigned char)*d))
        return false;
    char *e = NULL;
    errno = 0;
    *v = strtoll(s, &e, 10);
    if (errno)
        return false;
    *end = e;
    return true;
}

int al_cli_opt_int(const char *cmd, const char *opt, const char *arg, long long lo, long long hi, long long *out)
{
    long long v = 0;
    const char *end = NULL;
    if (strlen(arg) > AL_CLI_OPT_ARG_MAX || !lead_int(arg, lo < 0, &v, &end) || *end || v < lo || v > hi)
        return al_cli_usage_error(cmd, "%s needs a whole number from %lld to %lld, e.g. %lld (got '%.*s')", opt, lo, hi,
                                  hi < 4 ? hi : lo > 4 ? lo : 4, AL_CLI_OPT_ARG_MAX, arg);
    *out = v;
    return 0;
}

int al_cli_opt_i(const char *cmd, const char *opt, const char *arg, int lo, int hi, int *out)
{
    long long v = 0;
    int st = al_cli_opt_int(cmd, opt, arg, lo, hi, &v);
    if (!st)
        *out = (int)v;
    return st;
}

int al_cli_opt_threads(const char *cmd, const char *arg, int *out)
{
    return al_cli_opt_i(cmd, "--threads", arg, 1, AL_CLI_THREADS_MAX, out);
}

static bool parse_size(const char *s, uint64_t *out)
{
    long long v = 0;
    const char *end = NULL;
    if (strlen(s) > AL_CLI_OPT_ARG_MAX || !lead_int(s, false, &v, &end))
        return false;
    unsigned shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; break;
    case 'm': case 'M': shift = 20; break;
    case 'g': case 'G': shift = 30; break;
    case 't': case 'T': shift = 40; break;
    default: break;
    }
    if (shift)
        end++;
    if (shift && *end == 'i')
        end += end[1] == 'B' ? 2 : 1;
    else if (*end == 'B')
        end++;
    if (*end || (uint64_t)v > UINT64_MAX >> shift)
        return false;
    *out = (uint64_t)v << shift;
    return true;
}

int al_cli_opt_size(const char *cmd, const char *opt, const char *arg, uint64_t lo, uint64_t hi, uint64_t *out)
{
    uint64_t v = 0;
    if (!parse_size(arg, &v) || v < lo || v > hi) {
        char a[32], b[32];
        al_fmt_size((int64_t)(lo > INT64_MAX ? INT64_MAX : lo), a, sizeof a);
        al_fmt_size((int64_t)(hi > INT64_MAX ? INT64_MAX : hi), b, sizeof b);
        return al_cli_usage_error(cmd, "%s needs a size from %s to %s: bytes, or a whole number with K, M, G or T, "
                                  "e.g. 512M or 4G (got '%.*s')", opt, a, b, AL_CLI_OPT_ARG_MAX, arg);
    }
    *out = v;
    return 0;
}

/* A decimal number at the start of s: digits with at most one point, a
 * minus sign where allowed; *end after it. */
static bool lead_num(const char *s, bool sign_ok, double *v, const char **end)
{
    const char *p = sign_ok && *s == '-' ? s + 1 : s;
    size_t digits = 0, points = 0;
    for (; isdigit((unsigned char)*p) || *p == '.'; p++) {
        if (*p == '.')
            points++;
        else
            digits++;
    }
    size_t n = (size_t)(p - s);
    if (digits == 0 || points > 1 || n > AL_CLI_OPT_ARG_MAX)
        return false;
    char num[AL_CLI_OPT_ARG_MAX + 1];
    memcpy(num, s, n);
    num[n] = 0;
    char *e = NULL;
    errno = 0;
    *v = strtod(num, &e);
    if (errno || *e || !isfinite(*v))
        return false;
    *end = p;
    return true;
}

int al_cli_opt_seconds(const char *cmd, const char *opt, const char *arg, double lo, double hi, double *out)
{
    static const struct {
        const char *unit;
        double seconds;
    } units[] = {{"", 1}, {"ms", 1e-3}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}};
    double v = 0;
    const char *end = NULL;
    bool ok = strlen(arg) <= AL_CLI_OPT_ARG_MAX && lead_num(arg, lo < 0, &v, &end);
    size_t i = 0;
    while (ok && i < sizeof units / sizeof units[0] && strcmp(end, units[i].unit) != 0)
        i++;
    ok = ok && i < sizeof units / sizeof units[0];
    if (ok)
        v *= units[i].seconds;
    if (!ok || v < lo || v > hi)
        return al_cli_usage_error(cmd, "%s needs a duration from %g to %g seconds: seconds, or a number with ms, s, m, "
                                  "h or d, e.g. 30s or 5m (got '%.*s')", opt, lo, hi, AL_CLI_OPT_ARG_MAX, arg);
    *out = v;
    return 0;
}

int al_cli_opt_num(const char *cmd, const char *opt, const char *arg, double lo, double hi, double *out)
{
    double v = 0;
    const char *end = NULL;
    if (strlen(arg) > AL_CLI_OPT_ARG_MAX || !lead_num(arg, lo < 0, &v, &end) || *end || v < lo || v > hi)
        return al_cli_usage_error(cmd, "%s needs a number from %g to %g, e.g. %g (got '%.*s')", opt, lo, hi,
                                  hi < 5 ? hi : lo > 5 ? lo : 5, AL_CLI_OPT_ARG_MAX, arg);
    *out = v;
    return 0;
}

int al_cli_opt_list(const char *cmd, const char *opt, const char *arg, int lo, int hi, int *out, int max, int *n)
{
    int count = 0;
    const char *s = arg;
    bool ok = strlen(arg) <= AL_CLI_OPT_ARG_MAX * (size_t)max;
    while (ok && *s) {
        long long v = 0;
        const char *end = NULL;
        ok = count < max && lead_int(s, lo < 0, &v, &end) && v >= lo && v <= hi && (*end == ',' || !*end) &&
             !(*end == ',' && !end[1]);
        if (ok) {
            out[count++] = (int)v;
            s = *end ? end + 1 : end;
        }
    }
    if (!ok || count == 0)
        return al_cli_usage_error(cmd, "%s needs a list of up to %d whole numbers from %d to %d, separated by commas, "
                                  "e.g. 1,2,4 (got '%.*s')", opt, max, lo, hi, AL_CLI_OPT_ARG_MAX, arg);
    *n = count;
    return 0;
}

int al_cli_opt_mode(const char *cmd, const char *opt, const char *arg, int *out)
{
    size_t len = strlen(arg);
    bool ok = len > 0 && len <= 4 && strspn(arg, "01234567") == len;
    long v = ok ? strtol(arg, NULL, 8) : -1;
    if (!ok || v < 0 || v > 0777)
        return al_cli_usage_error(cmd, "%s needs file permissions in octal from 0 to 0777, e.g. 660 (got '%.*s')", opt,
                                  AL_CLI_OPT_ARG_MAX, arg);
    *out = (int)v;
    return 0;
}
