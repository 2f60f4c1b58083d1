/*
 * scrub.c: PII scrubbing of captured prompts and responses with POSIX
 * extended regular expressions, each built-in paired with a check that
 * keeps ordinary text alone (Luhn for card numbers, inet_pton for
 * addresses, digit counts for phone numbers, SSN area/group rules).
 *
 * Rules run one after another over the whole text, in order; a replaced
 * span becomes "[LABEL]", which no later rule matches. Extra rules from the
 * patterns file run first, so an organisation's own identifiers are
 * replaced whole before the built-ins could take them apart.
 */
#include "audit/audit_int.h"

#include <arpa/inet.h>
#include <ctype.h>

#include "core/buf.h"
#include "core/fs.h"

struct builtin {
    const char *label, *re;
    enum al_scrub_check check;
    bool boundary, skip_run;
};

static const struct builtin builtins[] = {
    {"SECRET", "(al|sk)-[A-Za-z0-9_-]{16,}", SCRUB_PLAIN, true, true},
    {"EMAIL", "[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}", SCRUB_PLAIN, false, true},
    {"SECRET", "[0-9A-Fa-f]{32,}", SCRUB_PLAIN, true, true},
    {"SECRET", "[A-Za-z0-9+/_-]{32,}={0,2}", SCRUB_MIXED, true, true},
    {"CARD", "[0-9]([ -]?[0-9]){12,18}", SCRUB_LUHN, true, false},
    {"SSN", "[0-9]{3}-[0-9]{2}-[0-9]{4}", SCRUB_SSN, true, false},
    {"PHONE",
     "(\\+[0-9]{1,3}[ .-]?)?(\\([0-9]{1,4}\\)[ .-]?|[0-9]{1,4}[ .-]?)[0-9]{2,4}[ .-]?[0-9]{3,4}([ .-]?[0-9]{2,4})?",
     SCRUB_PHONE, true, false},
    {"IPV6", "[0-9A-Fa-f]{0,4}(:[0-9A-Fa-f]{0,4}){2,7}(:[0-9]{1,3}(\\.[0-9]{1,3}){3})?", SCRUB_IPV6, true, false},
    {"IPV4", "[0-9]{1,3}(\\.[0-9]{1,3}){3}", SCRUB_IPV4, true, false},
};

static enum al_rc add_rule(struct al_audit *a, const char *label, const char *re, enum al_scrub_check check,
                           bool boundary, bool skip_run, struct al_err *err, const char *where)
{
    struct al_scrub_rule *r = &a->rules[a->n_rules];
    memset(r, 0, sizeof *r);
    snprintf(r->label, sizeof r->label, "%s", label);
    int rc = regcomp(&r->re, re, REG_EXTENDED);
    if (rc != 0) {
        char msg[128];
        regerror(rc, &r->re, msg, sizeof msg);
        return al_err_set(err, AL_ERR_INVALID, "%s: bad pattern '%s': %s", where, re, msg);
    }
    r->check = check;
    r->boundary = boundary;
    r->skip_run = skip_run;
    a->n_rules++;
    return AL_OK;
}

static bool label_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 31)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isupper((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '_')
            return false;
    return true;
}

static enum al_rc load_extra(struct al_audit *a, const char *path, struct al_err *err)
{
    char *text = NULL;
    size_t len = 0;
    enum al_rc rc = al_fs_read_file(path, AL_LIMIT_SCRUB_FILE, &text, &len, err);
    if (rc)
        return rc;
    size_t lineno = 0, count = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && !rc; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        while (isspace((unsigned char)*line))
            line++;
        size_t n = strlen(line);
        while (n && isspace((unsigned char)line[n - 1]))
            line[--n] = '\0';
        if (*line == '\0' || *line == '#')
            continue;
        char where[AL_LIMIT_PATH + 32];
        snprintf(where, sizeof where, "%s:%zu", path, lineno);
        char *sp = line + strcspn(line, " \t");
        if (*sp == '\0') {
            rc = al_err_set(err, AL_ERR_INVALID, "%s: expected 'LABEL REGEX'", where);
            break;
        }
        *sp++ = '\0';
        while (isspace((unsigned char)*sp))
            sp++;
        if (!label_ok(line)) {
            rc = al_err_set(err, AL_ERR_INVALID, "%s: label '%s' must be A-Z, 0-9 or '_', at most 31", where, line);
            break;
        }
        if (++count > AL_LIMIT_SCRUB_PATTERNS) {
            rc = al_err_set(err, AL_ERR_LIMIT, "%s: more than %d patterns (AL_LIMIT_SCRUB_PATTERNS)", path,
                            AL_LIMIT_SCRUB_PATTERNS);
            break;
        }
        rc = add_rule(a, line, sp, SCRUB_PLAIN, false, false, err, where);
    }
    free(text);
    return rc;
}

enum al_rc al_audit__rules_load(struct al_audit *a, const char *extra_file, struct al_err *err)
{
    size_t nb = sizeof builtins / sizeof builtins[0];
    a->rules = calloc(AL_LIMIT_SCRUB_PATTERNS + nb, sizeof *a->rules);
    if (a->rules == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    enum al_rc rc = extra_file ? load_extra(a, extra_file, err) : AL_OK;
    for (size_t i = 0; i < nb && !rc; i++)
        rc = add_rule(a, builtins[i].label, builtins[i].re, builtins[i].check, builtins[i].boundary,
                      builtins[i].skip_run, err, "built-in");
    return rc;
}

void al_audit__rules_free(struct al_audit *a)
{
    for (size_t i = 0; i < a->n_rules; i++)
        regfree(&a->rules[i].re);
    free(a->rules);
    a->rules = NULL;
    a->n_rules = 0;
}

static bool luhn(const char *digits, size_t n)
{
    int sum = 0;
    for (size_t i = 0; i < n; i++) {
        int d = digits[n - 1 - i] - '0';
        if (i % 2 == 1 && (d *= 2) > 9)
            d -= 9;
        sum += d;
    }
    return sum % 10 == 0;
}

/* The longest Luhn-valid run of 13 to 19 digits from ms that ends before a
 * non-digit; its end, or 0. */
static size_t card_end(const char *s, size_t len, size_t ms, size_t me)
{
    char digits[24];
    size_t ends[24], n = 0;
    for (size_t i = ms; i < me && n < 19; i++)
        if (isdigit((unsigned char)s[i])) {
            digits[n] = s[i];
            ends[n++] = i + 1;
        }
    if (n == 0 || digits[0] == '0')
        return 0; /* no card number starts with 0 */
    for (size_t k = n; k >= 13; k--) {
        size_t e = ends[k - 1];
        if (e < len && isalnum((unsigned char)s[e]))
            continue;
        /* One kind of separator throughout, as cards are written. */
        char sep = 0;
        bool mixed_sep = false;
        for (size_t i = ms; i < e; i++)
            if (!isdigit((unsigned char)s[i])) {
                mixed_sep |= sep && s[i] != sep;
                sep = s[i];
            }
        if (!mixed_sep && luhn(digits, k))
            return e;
    }
    return 0;
}

/* A match that continues a longer run of digit groups ("4111 1111 1111
 * 1112" without its first group) is part of something else. */
static bool inside_digit_groups(const char *s, size_t len, size_t ms, size_t me)
{
    return (ms >= 2 && strchr(" .-", s[ms - 1]) && isdigit((unsigned char)s[ms - 2])) ||
           (me + 1 < len && strchr(" .-", s[me]) && isdigit((unsigned char)s[me + 1]));
}

static bool ssn_ok(const char *s)
{
    int area = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    return area != 0 && area != 666 && area < 900 && !(s[4] == '0' && s[5] == '0') && strncmp(s + 7, "0000", 4) != 0;
}

static bool phone_ok(const char *s, size_t n)
{
    size_t digits = 0;
    bool sep = false;
    for (size_t i = 0; i < n; i++) {
        if (isdigit((unsigned char)s[i]))
            digits++;
        else
            sep = true;
    }
    size_t min = s[0] == '+' ? 8 : 10;
    return sep && digits >= min && digits <= 15;
}

static bool addr_ok(int af, const char *s, size_t n, size_t min_colons)
{
    char tmp[64];
    unsigned char bin[16];
    if (n >= sizeof tmp)
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    size_t colons = 0;
    for (size_t i = 0; i < n; i++)
        colons += tmp[i] == ':';
    return colons >= min_colons && inet_pton(af, tmp, bin) == 1;
}

static bool mixed(const char *s, size_t n)
{
    bool d = false, u = false, l = false;
    for (size_t i = 0; i < n; i++) {
        d |= isdigit((unsigned char)s[i]) != 0;
        u |= isupper((unsigned char)s[i]) != 0;
        l |= islower((unsigned char)s[i]) != 0;
    }
    return d && u && l;
}

/* Whether the match [ms, me) is PII under rule r: its end (maybe shorter
 * than me), or 0 to reject it. */
static size_t accept_match(const struct al_scrub_rule *r, const char *s, size_t len, size_t ms, size_t me)
{
    if (r->boundary && ms > 0 && isalnum((unsigned char)s[ms - 1]))
        return 0;
    if (r->check == SCRUB_LUHN)
        return card_end(s, len, ms, me);
    if (r->boundary && me < len && isalnum((unsigned char)s[me]))
        return 0;
    size_t n = me - ms;
    switch (r->check) {
    case SCRUB_SSN:
        return ssn_ok(s + ms) ? me : 0;
    case SCRUB_PHONE:
        return phone_ok(s + ms, n) && !inside_digit_groups(s, len, ms, me) ? me : 0;
    case SCRUB_IPV4:
        if ((ms >= 2 && s[ms - 1] == '.' && isdigit((unsigned char)s[ms - 2])) ||
            (me + 1 < len && s[me] == '.' && isdigit((unsigned char)s[me + 1])))
            return 0;
        return addr_ok(AF_INET, s + ms, n, 0) ? me : 0;
    case SCRUB_IPV6:
        return addr_ok(AF_INET6, s + ms, n, 2) && n >= 6 ? me : 0;
    case SCRUB_MIXED:
        return mixed(s + ms, n) ? me : 0;
    default:
        return me;
    }
}

static void apply(const struct al_scrub_rule *r, const char *s, size_t len, struct al_buf *out)
{
    size_t pos = 0;
    regmatch_t m;
    while (pos < len && !al_buf_failed(out)) {
        if (regexec(&r->re, s + pos, 1, &m, pos ? REG_NOTBOL : 0) != 0)
            break;
        size_t ms = pos + (size_t)m.rm_so, me = pos + (size_t)m.rm_eo;
        if (ms >= len)
            break;
        size_t end = me > ms ? accept_match(r, s, len, ms, me) : 0;
        if (end == 0) {
            size_t next = (r->skip_run && me > ms) ? me : ms + 1;
            al_buf_add(out, s + pos, next - pos);
            pos = next;
            continue;
        }
        al_buf_add(out, s + pos, ms - pos);
        al_buf_addf(out, "[%s]", r->label);
        pos = end;
    }
    if (pos < len)
        al_buf_add(out, s + pos, len - pos);
}

size_t al_audit_scrub(const struct al_audit *a, const char *in, char *out, size_t out_size)
{
    size_t len = strlen(in);
    /* A label is at most 33 bytes and replaces at least 2: the text can grow
     * at most 17-fold. */
    size_t max = len * 17 + 64;
    struct al_buf b[2];
    al_buf_init(&b[0], max);
    al_buf_init(&b[1], max);
    al_buf_add(&b[0], in, len);
    int cur = 0;
    bool failed = al_buf_failed(&b[0]);
    for (size_t i = 0; i < a->n_rules && !failed; i++) {
        al_buf_reset(&b[1 - cur]);
        apply(&a->rules[i], al_buf_str(&b[cur]), b[cur].len, &b[1 - cur]);
        cur = 1 - cur;
        failed = al_buf_failed(&b[cur]);
    }
    size_t n = 0;
    if (failed) {
        if (out_size)
            out[0] = '\0';
    } else {
        n = b[cur].len;
        if (out_size) {
            size_t k = n < out_size - 1 ? n : out_size - 1;
            memcpy(out, al_buf_str(&b[cur]), k);
            out[k] = '\0';
        }
    }
    al_buf_release(&b[0]);
    al_buf_release(&b[1]);
    return n;
}
