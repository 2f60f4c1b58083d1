/* Unit tests of src/sign/minisign: round trips, interoperability with the
 * real minisign binary both ways, and forged or malformed input. */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "core/err.h"
#include "core/limits.h"
#include "sign/blake2b_int.h"
#include "sign/minisign.h"

/* A cheap scrypt cost for keys made only to be loaded again by the tests. */
#define CHEAP_OPS 32768u
#define CHEAP_MEM (1u << 24)

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        fail_msg("out of memory");
    va_end(ap);
    return s;
}

static void put(const char *dir, const char *name, const char *text)
{
    char *p = xasprintf("%s/%s", dir, name);
    tu_write_file(p, text, strlen(text));
    free(p);
}

static char *get(const char *dir, const char *name)
{
    char *p = xasprintf("%s/%s", dir, name);
    char *s = tu_read_file(p, NULL);
    if (s == NULL)
        fail_msg("cannot read %s", p);
    free(p);
    return s;
}

static int have_minisign(void) { return tu_system("command -v minisign >/dev/null 2>&1") == 0; }

/* Line n (0-based) of text, malloc'd, without its LF. */
static char *line_of(const char *text, int n)
{
    const char *p = text;
    for (int i = 0; i < n; i++) {
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    return strndup(p, strcspn(p, "\n"));
}

/* text with line n replaced by repl. */
static char *with_line(const char *text, int n, const char *repl)
{
    const char *p = text;
    for (int i = 0; i < n; i++)
        p = strchr(p, '\n') + 1;
    const char *end = p + strcspn(p, "\n");
    return xasprintf("%.*s%s%s", (int)(p - text), text, repl, end);
}

/* Decodes base64 line n of text into out; returns the byte count. */
static size_t line_decode(const char *text, int n, uint8_t *out)
{
    char *l = line_of(text, n);
    size_t len = strlen(l);
    int got = EVP_DecodeBlock(out, (unsigned char *)l, (int)len);
    assert_true(got > 0);
    size_t pad = (len && l[len - 1] == '=') + (len > 1 && l[len - 2] == '=');
    free(l);
    return (size_t)got - pad;
}

/* text with base64 line n replaced by the encoding of bin. */
static char *line_encode(const char *text, int n, const uint8_t *bin, size_t len)
{
    char b64[512];
    EVP_EncodeBlock((unsigned char *)b64, bin, (int)len);
    return with_line(text, n, b64);
}

static char *keyid(const struct al_mkey_pub *pub)
{
    char hex[AL_MINISIGN_KEYID_HEX];
    al_minisign_keyid_hex(pub->id, hex);
    return strdup(hex);
}

static void make_key(const char *password, struct al_mkey_pub *pub, struct al_mkey_sec **sec,
                     char **pub_text, char **sec_text)
{
    struct al_err err = AL_ERR_INIT;
    char *p = NULL, *s = NULL;
    assert_int_equal(al_minisign_keygen_kdf(password, CHEAP_OPS, CHEAP_MEM, &p, &s, &err), AL_OK);
    assert_int_equal(al_minisign_pub_parse(p, pub, &err), AL_OK);
    if (sec)
        assert_int_equal(al_minisign_sec_load(s, password, sec, &err), AL_OK);
    if (pub_text)
        *pub_text = p;
    else
        free(p);
    if (sec_text)
        *sec_text = s;
    else
        free(s);
}

static void test_blake2b(void **state)
{
    uint8_t out[64], ref[64];
    char hex[129];
    al_blake2b(out, 32, "abc", 3);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", out[i]);
    assert_string_equal(hex, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
    static const size_t sizes[] = {0, 1, 3, 127, 128, 129, 255, 256, 257, 1000};
    uint8_t data[1000];
    assert_int_equal(RAND_bytes(data, sizeof data), 1);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned n = 0;
        al_blake2b(out, 64, data, sizes[i]);
        assert_int_equal(EVP_Digest(data, sizes[i], ref, &n, EVP_blake2b512(), NULL), 1);
        assert_memory_equal(out, ref, 64);
    }
}

static void test_roundtrip(void **state)
{
    struct al_err err = AL_ERR_INIT;
    char *pub_text = NULL, *sec_text = NULL, *sig = NULL, *tc = NULL, *again = NULL;
    struct al_mkey_pub pub, bare, half;
    struct al_mkey_sec *sec = NULL;
    bool enc = true;

    assert_int_equal(al_minisign_keygen(NULL, &pub_text, &sec_text, &err), AL_OK);
    assert_int_equal(al_minisign_pub_parse(pub_text, &pub, &err), AL_OK);
    /* minisign prints the id with PRIX64: no leading zeros */
    char *id = keyid(&pub), *short_id = id;
    while (short_id[0] == '0' && short_id[1] != '\0')
        short_id++;
    char *want = xasprintf("untrusted comment: minisign public key %s\n", short_id);
    assert_int_equal(strncmp(pub_text, want, strlen(want)), 0);
    assert_int_equal(al_minisign_pub_format(&pub, &again, &err), AL_OK);
    assert_string_equal(again, pub_text);
    char *b64 = line_of(pub_text, 1);
    assert_int_equal(al_minisign_pub_parse(b64, &bare, &err), AL_OK);
    assert_memory_equal(&bare, &pub, sizeof pub);

    assert_int_equal(al_minisign_sec_encrypted(sec_text, &enc, &err), AL_OK);
    assert_false(enc);
    assert_int_equal(al_minisign_sec_load(sec_text, NULL, &sec, &err), AL_OK);
    al_minisign_sec_pub(sec, &half);
    assert_memory_equal(&half, &pub, sizeof pub);

    const char msg[] = "sha256 checksums\n";
    assert_int_equal(al_minisign_sign(sec, msg, strlen(msg), "bundle:demo\tversion:1", NULL, &sig, &err),
                     AL_OK);
    assert_int_equal(al_minisign_verify(&pub, msg, strlen(msg), sig, &tc, &err), AL_OK);
    assert_string_equal(tc, "bundle:demo\tversion:1");
    uint8_t sid[8];
    assert_int_equal(al_minisign_sig_keyid(sig, sid, &err), AL_OK);
    assert_memory_equal(sid, pub.id, 8);
    free(sig);
    free(tc);

    /* Default comments, and an empty message. */
    assert_int_equal(al_minisign_sign(sec, "", 0, NULL, NULL, &sig, &err), AL_OK);
    assert_int_equal(al_minisign_verify(&pub, "", 0, sig, &tc, &err), AL_OK);
    assert_int_equal(strncmp(tc, "timestamp:", 10), 0);
    assert_int_equal(strncmp(sig, "untrusted comment: signature from airlock secret key\n", 53), 0);
    assert_int_equal(err.rc, AL_OK);

    free(sig);
    free(tc);
    free(b64);
    free(id);
    free(want);
    free(again);
    free(pub_text);
    free(sec_text);
    al_minisign_sec_free(sec);
    al_minisign_sec_free(NULL);
}

static void test_encrypted_key(void **state)
{
    struct al_err err = AL_ERR_INIT;
    char *pub_text = NULL, *sec_text = NULL, *sig = NULL;
    struct al_mkey_pub pub;
    struct al_mkey_sec *sec = NULL;
    bool enc = false;

    make_key("s3cret", &pub, NULL, &pub_text, &sec_text);
    assert_int_equal(al_minisign_sec_encrypted(sec_text, &enc, &err), AL_OK);
    assert_true(enc);
    assert_int_equal(al_minisign_sec_load(sec_text, NULL, &sec, &err), AL_ERR_USAGE);
    assert_null(sec);
    al_err_clear(&err);
    assert_int_equal(al_minisign_sec_load(sec_text, "s3cret!", &sec, &err), AL_ERR_VERIFY);
    assert_string_equal(err.msg, "wrong password for the minisign secret key");
    assert_null(sec);
    al_err_clear(&err);
    assert_int_equal(al_minisign_sec_load(sec_text, "s3cret", &sec, &err), AL_OK);
    assert_int_equal(al_minisign_sign(sec, "x", 1, "t", "u", &sig, &err), AL_OK);
    assert_int_equal(al_minisign_verify(&pub, "x", 1, sig, NULL, &err), AL_OK);

    /* The password length cap and the cost range of keygen. */
    char *longpw = malloc(AL_LIMIT_MINISIGN_PASSWORD + 2);
    memset(longpw, 'p', AL_LIMIT_MINISIGN_PASSWORD + 1);
    longpw[AL_LIMIT_MINISIGN_PASSWORD + 1] = '\0';
    struct al_mkey_sec *none = NULL;
    assert_int_equal(al_minisign_sec_load(sec_text, longpw, &none, &err), AL_ERR_LIMIT);
    al_err_clear(&err);
    char *p2 = NULL, *s2 = NULL;
    assert_int_equal(al_minisign_keygen_kdf("pw", 1ull << 26, CHEAP_MEM, &p2, &s2, &err), AL_ERR_USAGE);
    assert_null(p2);
    assert_null(s2);

    free(longpw);
    free(sig);
    free(pub_text);
    free(sec_text);
    al_minisign_sec_free(sec);
}

/* airlock signs; the minisign binary verifies. Also: minisign signs with a
 * secret key that airlock encrypted, and recreates airlock's public key. */
static void test_interop_airlock_signs(void **state)
{
    if (!have_minisign())
        tu_skip("minisign missing (scripts/bootstrap.sh installs it)");
    struct al_err err = AL_ERR_INIT;
    char *dir = tu_mkdtemp();
    char *pub_text = NULL, *sig = NULL, *epub_text = NULL, *esec_text = NULL, *tc = NULL;
    struct al_mkey_pub pub, epub;
    struct al_mkey_sec *sec = NULL;

    make_key(NULL, &pub, &sec, &pub_text, NULL);
    const char msg[] = "0123abcd  model.gguf\n";
    assert_int_equal(al_minisign_sign(sec, msg, strlen(msg), "bundle:demo version:7", "airlock test", &sig,
                                      &err),
                     AL_OK);
    put(dir, "key.pub", pub_text);
    put(dir, "checksums.txt", msg);
    put(dir, "checksums.txt.minisig", sig);
    put(dir, "other.sig", sig);
    assert_int_equal(tu_system("cd '%s' && minisign -Vm checksums.txt -p key.pub -q", dir), 0);
    assert_int_equal(tu_system("cd '%s' && minisign -Vm checksums.txt -p key.pub -x other.sig -q", dir), 0);
    assert_int_equal(tu_system("cd '%s' && minisign -H -Vm checksums.txt -p key.pub -q", dir), 0);
    char *b64 = line_of(pub_text, 1);
    assert_int_equal(tu_system("cd '%s' && minisign -Vm checksums.txt -P '%s' -q", dir, b64), 0);
    assert_int_equal(tu_system("cd '%s' && minisign -Vm checksums.txt -p key.pub -Q > tc.out", dir), 0);
    char *out = get(dir, "tc.out");
    assert_string_equal(out, "bundle:demo version:7\n");
    /* minisign, too, refuses the file once changed. */
    put(dir, "checksums.txt", "0123abce  model.gguf\n");
    assert_int_not_equal(tu_system("cd '%s' && minisign -Vm checksums.txt -p key.pub -q 2>/dev/null", dir), 0);

    /* A secret key airlock encrypted works in minisign: it signs with it and
     * recreates the same public key from it (password on stdin). */
    make_key("pass word", &epub, NULL, &epub_text, &esec_text);
    put(dir, "enc.key", esec_text);
    put(dir, "data", "hello\n");
    assert_int_equal(tu_system("cd '%s' && printf 'pass word\\n' | minisign -S -s enc.key -m data "
                               "-t 'from minisign' >/dev/null 2>&1",
                               dir),
                     0);
    char *msig = get(dir, "data.minisig");
    assert_int_equal(al_minisign_verify(&epub, "hello\n", 6, msig, &tc, &err), AL_OK);
    assert_string_equal(tc, "from minisign");
    assert_int_equal(
        tu_system("cd '%s' && printf 'pass word\\n' | minisign -R -s enc.key -p re.pub >/dev/null 2>&1", dir),
        0);
    char *re = get(dir, "re.pub");
    assert_string_equal(re, epub_text);

    free(re);
    free(msig);
    free(tc);
    free(out);
    free(b64);
    free(sig);
    free(pub_text);
    free(epub_text);
    free(esec_text);
    al_minisign_sec_free(sec);
    tu_rmrf(dir);
    free(dir);
}

/* minisign makes an unencrypted key and signs, prehashed and legacy; airlock
 * verifies, and signs with minisign's key for minisign to verify. */
static void test_interop_minisign_signs(void **state)
{
    if (!have_minisign())
        tu_skip("minisign missing (scripts/bootstrap.sh installs it)");
    struct al_err err = AL_ERR_INIT;
    char *dir = tu_mkdtemp();
    struct al_mkey_pub pub;
    struct al_mkey_sec *sec = NULL;
    char *tc = NULL, *sig = NULL;

    assert_int_equal(tu_system("cd '%s' && minisign -G -W -p m.pub -s m.key >/dev/null", dir), 0);
    put(dir, "data", "payload to sign\n");
    assert_int_equal(tu_system("cd '%s' && minisign -S -s m.key -m data -t 'prehashed one' >/dev/null", dir), 0);
    assert_int_equal(
        tu_system("cd '%s' && minisign -S -l -s m.key -m data -x data.legacy -t 'legacy one' >/dev/null", dir),
        0);
    char *pub_text = get(dir, "m.pub"), *sec_text = get(dir, "m.key");
    char *ed = get(dir, "data.minisig"), *legacy = get(dir, "data.legacy");
    assert_int_equal(al_minisign_pub_parse(pub_text, &pub, &err), AL_OK);

    uint8_t bin[128];
    assert_int_equal(line_decode(ed, 1, bin), 74);
    assert_memory_equal(bin, "ED", 2);
    assert_int_equal(line_decode(legacy, 1, bin), 74);
    assert_memory_equal(bin, "Ed", 2);

    const char *msg = "payload to sign\n";
    assert_int_equal(al_minisign_verify(&pub, msg, strlen(msg), ed, &tc, &err), AL_OK);
    assert_string_equal(tc, "prehashed one");
    free(tc);
    assert_int_equal(al_minisign_verify(&pub, msg, strlen(msg), legacy, &tc, &err), AL_OK);
    assert_string_equal(tc, "legacy one");
    free(tc);
    char *path = xasprintf("%s/data", dir);
    assert_int_equal(al_minisign_verify_file(&pub, path, ed, NULL, &err), AL_OK);
    assert_int_equal(al_minisign_verify_file(&pub, path, legacy, &tc, &err), AL_OK);
    assert_string_equal(tc, "legacy one");
    free(tc);
    assert_int_equal(al_minisign_verify(&pub, "payload to sign.", 16, legacy, NULL, &err), AL_ERR_VERIFY);
    al_err_clear(&err);

    /* minisign's unencrypted key (zero checksum) loads here and signs. */
    bool enc = true;
    assert_int_equal(al_minisign_sec_encrypted(sec_text, &enc, &err), AL_OK);
    assert_false(enc);
    assert_int_equal(al_minisign_sec_load(sec_text, NULL, &sec, &err), AL_OK);
    assert_int_equal(al_minisign_sign(sec, msg, strlen(msg), "from airlock", NULL, &sig, &err), AL_OK);
    put(dir, "data.minisig", sig);
    assert_int_equal(tu_system("cd '%s' && minisign -Vm data -p m.pub -Q > tc.out", dir), 0);
    char *out = get(dir, "tc.out");
    assert_string_equal(out, "from airlock\n");

    free(out);
    free(sig);
    free(path);
    free(pub_text);
    free(sec_text);
    free(ed);
    free(legacy);
    al_minisign_sec_free(sec);
    tu_rmrf(dir);
    free(dir);
}

/* A key minisign encrypted (its default scrypt cost: about 1 GiB and a few
 * seconds per derivation, so done once) loads here with the password. */
static void test_interop_minisign_encrypted(void **state)
{
    if (!have_minisign())
        tu_skip("minisign missing (scripts/bootstrap.sh installs it)");
    struct al_err err = AL_ERR_INIT;
    char *dir = tu_mkdtemp();
    struct al_mkey_pub pub, half;
    struct al_mkey_sec *sec = NULL;
    char *sig = NULL;

    assert_int_equal(tu_system("cd '%s' && printf 'hunter2\\nhunter2\\n' | minisign -G -p e.pub -s e.key "
                               ">/dev/null 2>&1",
                               dir),
                     0);
    char *pub_text = get(dir, "e.pub"), *sec_text = get(dir, "e.key");
    bool enc = false;
    assert_int_equal(al_minisign_sec_encrypted(sec_text, &enc, &err), AL_OK);
    assert_true(enc);
    assert_int_equal(al_minisign_pub_parse(pub_text, &pub, &err), AL_OK);
    assert_int_equal(al_minisign_sec_load(sec_text, "hunter2", &sec, &err), AL_OK);
    al_minisign_sec_pub(sec, &half);
    assert_memory_equal(&half, &pub, sizeof pub);
    put(dir, "data", "x");
    assert_int_equal(al_minisign_sign(sec, "x", 1, "ok", NULL, &sig, &err), AL_OK);
    put(dir, "data.minisig", sig);
    assert_int_equal(tu_system("cd '%s' && minisign -Vm data -p e.pub -q", dir), 0);

    free(sig);
    free(pub_text);
    free(sec_text);
    al_minisign_sec_free(sec);
    tu_rmrf(dir);
    free(dir);
}

static void expect(enum al_rc want, enum al_rc got, struct al_err *err, const char *needle)
{
    assert_int_equal(got, want);
    if (strstr(err->msg, needle) == NULL)
        fail_msg("error '%s' lacks '%s'", err->msg, needle);
    al_err_clear(err);
}

static void test_forgeries(void **state)
{
    struct al_err err = AL_ERR_INIT;
    struct al_mkey_pub pub, other, mixed;
    struct al_mkey_sec *sec = NULL;
    char *sig = NULL, *t = NULL;
    make_key(NULL, &pub, &sec, NULL, NULL);
    make_key(NULL, &other, NULL, NULL, NULL);
    const char msg[] = "aaaa  weights.gguf\n";
    size_t len = strlen(msg);
    assert_int_equal(al_minisign_sign(sec, msg, len, "trusted text", NULL, &sig, &err), AL_OK);

    /* A flipped byte in the message. */
    char bad[sizeof msg];
    memcpy(bad, msg, sizeof msg);
    bad[3] ^= 1;
    expect(AL_ERR_VERIFY, al_minisign_verify(&pub, bad, len, sig, NULL, &err), &err, "bad minisign signature");

    /* A changed byte in the signature itself (base64 char 60 is in the
     * Ed25519 signature, away from the last group). */
    char *l = line_of(sig, 1);
    l[60] = l[60] == 'A' ? 'B' : 'A';
    t = with_line(sig, 1, l);
    expect(AL_ERR_VERIFY, al_minisign_verify(&pub, msg, len, t, NULL, &err), &err, "bad minisign signature");
    free(t);
    free(l);

    /* A changed trusted comment, and a changed global signature. */
    t = with_line(sig, 2, "trusted comment: trusted texT");
    expect(AL_ERR_VERIFY, al_minisign_verify(&pub, msg, len, t, NULL, &err), &err, "trusted comment was altered");
    free(t);
    l = line_of(sig, 3);
    l[10] = l[10] == 'A' ? 'B' : 'A';
    t = with_line(sig, 3, l);
    expect(AL_ERR_VERIFY, al_minisign_verify(&pub, msg, len, t, NULL, &err), &err, "bad global");
    free(t);
    free(l);

    /* Another trusted key, and a public key with the right id but another key. */
    char *a = keyid(&pub), *b = keyid(&other);
    char *want = xasprintf("signed by minisign key %s, not by trusted key %s", a, b);
    expect(AL_ERR_DENIED, al_minisign_verify(&other, msg, len, sig, NULL, &err), &err, want);
    mixed = other;
    memcpy(mixed.id, pub.id, sizeof mixed.id);
    expect(AL_ERR_VERIFY, al_minisign_verify(&mixed, msg, len, sig, NULL, &err), &err, "bad minisign signature");

    /* A signature of the same message by another key under our key id. */
    uint8_t bin[128];
    struct al_mkey_sec *osec = NULL;
    char *osig = NULL;
    make_key(NULL, &other, &osec, NULL, NULL);
    assert_int_equal(al_minisign_sign(osec, msg, len, "trusted text", NULL, &osig, &err), AL_OK);
    assert_int_equal(line_decode(osig, 1, bin), 74);
    memcpy(bin + 2, pub.id, 8);
    t = line_encode(osig, 1, bin, 74);
    expect(AL_ERR_VERIFY, al_minisign_verify(&pub, msg, len, t, NULL, &err), &err, "bad minisign signature");
    free(t);

    /* An unknown algorithm. */
    assert_int_equal(line_decode(sig, 1, bin), 74);
    memcpy(bin, "Xd", 2);
    t = line_encode(sig, 1, bin, 74);
    expect(AL_ERR_INVALID, al_minisign_verify(&pub, msg, len, t, NULL, &err), &err,
           "unsupported signature algorithm 'Xd'");
    free(t);

    assert_int_equal(al_minisign_verify(&pub, msg, len, sig, NULL, &err), AL_OK);
    free(want);
    free(a);
    free(b);
    free(osig);
    free(sig);
    al_minisign_sec_free(osec);
    al_minisign_sec_free(sec);
}

static void test_malformed(void **state)
{
    struct al_err err = AL_ERR_INIT;
    struct al_mkey_pub pub;
    struct al_mkey_sec *sec = NULL;
    char *sig = NULL, *t = NULL;
    make_key(NULL, &pub, &sec, NULL, NULL);
    assert_int_equal(al_minisign_sign(sec, "m", 1, "tc", NULL, &sig, &err), AL_OK);

    const char *bads[] = {"", "hello", "untrusted comment: x\n", "untrusted comment: x\nRWQ=\n",
                          "trusted comment: x\n"};
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++)
        expect(AL_ERR_INVALID, al_minisign_verify(&pub, "m", 1, bads[i], NULL, &err), &err, "malformed");

    /* Truncated after two lines, then after three. */
    for (int keep = 2; keep <= 3; keep++) {
        char *cut = strdup(sig), *p = cut;
        for (int i = 0; i < keep; i++)
            p = strchr(p, '\n') + 1;
        *p = '\0';
        expect(AL_ERR_INVALID, al_minisign_verify(&pub, "m", 1, cut, NULL, &err), &err,
               keep == 2 ? "third line" : "fourth line");
        free(cut);
    }

    /* Bad base64: a foreign character, a missing one, non-canonical bits. */
    char *l = line_of(sig, 1);
    l[20] = '*';
    t = with_line(sig, 1, l);
    expect(AL_ERR_INVALID, al_minisign_verify(&pub, "m", 1, t, NULL, &err), &err, "second line");
    free(t);
    t = with_line(sig, 1, l + 1);
    expect(AL_ERR_INVALID, al_minisign_verify(&pub, "m", 1, t, NULL, &err), &err, "second line");
    free(t);
    free(l);
    l = line_of(sig, 3); /* 64 bytes: "...X==", X carries 4 unused bits */
    size_t n = strlen(l);
    assert_int_equal(l[n - 1], '=');
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    l[n - 3] = abc[(strchr(abc, l[n - 3]) - abc) ^ 1];
    t = with_line(sig, 3, l);
    expect(AL_ERR_INVALID, al_minisign_verify(&pub, "m", 1, t, NULL, &err), &err, "fourth line");
    free(t);
    free(l);

    /* Trailing data; trailing blank lines and CR LF line ends are fine. */
    t = xasprintf("%sextra\n", sig);
    expect(AL_ERR_INVALID, al_minisign_verify(&pub, "m", 1, t, NULL, &err), &err, "unexpected data");
    free(t);
    t = xasprintf("%s\n\n", sig);
    assert_int_equal(al_minisign_verify(&pub, "m", 1, t, NULL, &err), AL_OK);
    free(t);
    char *crlf = calloc(1, 2 * strlen(sig) + 1), *w = crlf;
    for (const char *p = sig; *p; p++) {
        if (*p == '\n')
            *w++ = '\r';
        *w++ = *p;
    }
    assert_int_equal(al_minisign_verify(&pub, "m", 1, crlf, NULL, &err), AL_OK);
    free(crlf);

    /* Caps: the signature file, the comments (minisign's own limits). */
    char *huge = malloc(AL_LIMIT_MINISIGN_SIG_FILE + 2);
    memset(huge, 'a', AL_LIMIT_MINISIGN_SIG_FILE + 1);
    huge[AL_LIMIT_MINISIGN_SIG_FILE + 1] = '\0';
    expect(AL_ERR_LIMIT, al_minisign_verify(&pub, "m", 1, huge, NULL, &err), &err, "AL_LIMIT_MINISIGN_SIG_FILE");
    memset(huge, 'c', AL_LIMIT_MINISIGN_TRUSTED + 1);
    huge[AL_LIMIT_MINISIGN_TRUSTED + 1] = '\0';
    expect(AL_ERR_LIMIT, al_minisign_sign(sec, "m", 1, huge, NULL, &t, &err), &err, "AL_LIMIT_MINISIGN_TRUSTED");
    char *tl = xasprintf("trusted comment: %s", huge);
    t = with_line(sig, 2, tl);
    expect(AL_ERR_LIMIT, al_minisign_verify(&pub, "m", 1, t, NULL, &err), &err, "AL_LIMIT_MINISIGN_TRUSTED");
    free(t);
    free(tl);
    huge[AL_LIMIT_MINISIGN_TRUSTED] = '\0'; /* exactly at the cap */
    char *maxsig = NULL, *tc = NULL;
    assert_int_equal(al_minisign_sign(sec, "m", 1, huge, NULL, &maxsig, &err), AL_OK);
    assert_int_equal(al_minisign_verify(&pub, "m", 1, maxsig, &tc, &err), AL_OK);
    assert_int_equal(strlen(tc), AL_LIMIT_MINISIGN_TRUSTED);
    free(tc);
    free(maxsig);
    huge[AL_LIMIT_MINISIGN_COMMENT + 1] = '\0';
    expect(AL_ERR_LIMIT, al_minisign_sign(sec, "m", 1, "t", huge, &t, &err), &err, "AL_LIMIT_MINISIGN_COMMENT");
    tl = xasprintf("untrusted comment: %s", huge);
    t = with_line(sig, 0, tl);
    expect(AL_ERR_LIMIT, al_minisign_verify(&pub, "m", 1, t, NULL, &err), &err, "AL_LIMIT_MINISIGN_COMMENT");
    free(t);
    free(tl);
    huge[AL_LIMIT_MINISIGN_COMMENT] = '\0';
    assert_int_equal(al_minisign_sign(sec, "m", 1, "t", huge, &maxsig, &err), AL_OK);
    assert_int_equal(al_minisign_verify(&pub, "m", 1, maxsig, NULL, &err), AL_OK);
    free(maxsig);
    free(huge);
    expect(AL_ERR_USAGE, al_minisign_sign(sec, "m", 1, "two\nlines", NULL, &t, &err), &err, "line break");
    assert_null(t);

    free(sig);
    al_minisign_sec_free(sec);
}

static void test_key_files(void **state)
{
    struct al_err err = AL_ERR_INIT;
    struct al_mkey_pub pub;
    struct al_mkey_sec *sec = NULL;
    char *pub_text = NULL, *sec_text = NULL, *t = NULL;
    uint8_t bin[256];

    expect(AL_ERR_INVALID, al_minisign_pub_parse("garbage", &pub, &err), &err, "malformed minisign public key");
    expect(AL_ERR_INVALID, al_minisign_pub_parse("", &pub, &err), &err, "malformed minisign public key");
    make_key(NULL, &pub, NULL, &pub_text, &sec_text);
    assert_int_equal(line_decode(pub_text, 1, bin), 42);
    bin[1] = 'D';
    t = line_encode(pub_text, 1, bin, 42);
    expect(AL_ERR_INVALID, al_minisign_pub_parse(t, &pub, &err), &err, "unsupported public key algorithm 'ED'");
    free(t);

    /* Unencrypted secret key: checksum, halves, algorithms. */
    assert_int_equal(line_decode(sec_text, 1, bin), 158);
    uint8_t orig[158];
    memcpy(orig, bin, sizeof orig);
    bin[157] ^= 1;
    t = line_encode(sec_text, 1, bin, 158);
    expect(AL_ERR_CORRUPT, al_minisign_sec_load(t, NULL, &sec, &err), &err, "checksum");
    free(t);
    memset(bin + 126, 0, 32); /* zero checksum, as minisign -G -W writes */
    t = line_encode(sec_text, 1, bin, 158);
    assert_int_equal(al_minisign_sec_load(t, NULL, &sec, &err), AL_OK);
    al_minisign_sec_free(sec);
    sec = NULL;
    free(t);
    bin[100] ^= 1; /* the public half */
    t = line_encode(sec_text, 1, bin, 158);
    expect(AL_ERR_CORRUPT, al_minisign_sec_load(t, NULL, &sec, &err), &err, "does not match its seed");
    free(t);
    memcpy(bin, orig, sizeof orig);
    memcpy(bin + 2, "Xx", 2);
    t = line_encode(sec_text, 1, bin, 158);
    expect(AL_ERR_INVALID, al_minisign_sec_load(t, NULL, &sec, &err), &err, "unsupported secret key encryption 'Xx'");
    free(t);
    free(pub_text);
    free(sec_text);

    /* An encrypted key asking for more scrypt memory than the cap. */
    make_key("pw", &pub, NULL, NULL, &sec_text);
    assert_int_equal(line_decode(sec_text, 1, bin), 158);
    bin[46 + 4] = 0x80; /* memlimit (bytes 46..53, little-endian) gains bit 39 */
    t = line_encode(sec_text, 1, bin, 158);
    expect(AL_ERR_LIMIT, al_minisign_sec_load(t, "pw", &sec, &err), &err, "AL_LIMIT_MINISIGN_KDF");
    assert_null(sec);
    free(t);
    t = xasprintf("%sjunk\n", sec_text);
    expect(AL_ERR_INVALID, al_minisign_sec_load(t, "pw", &sec, &err), &err, "unexpected data");
    free(t);
    free(sec_text);
}

static void test_verify_file(void **state)
{
    struct al_err err = AL_ERR_INIT;
    char *dir = tu_mkdtemp(), *path = xasprintf("%s/big.bin", dir), *sig = NULL;
    struct al_mkey_pub pub;
    struct al_mkey_sec *sec = NULL;
    make_key(NULL, &pub, &sec, NULL, NULL);
    size_t n = (3u << 20) + 12345;
    uint8_t *data = malloc(n);
    assert_int_equal(RAND_bytes(data, (int)n), 1);
    tu_write_file(path, data, n);
    assert_int_equal(al_minisign_sign(sec, data, n, "big", NULL, &sig, &err), AL_OK);
    char *tc = NULL;
    assert_int_equal(al_minisign_verify_file(&pub, path, sig, &tc, &err), AL_OK);
    assert_string_equal(tc, "big");
    free(tc);
    data[n - 1] ^= 0x80;
    tu_write_file(path, data, n);
    expect(AL_ERR_VERIFY, al_minisign_verify_file(&pub, path, sig, &tc, &err), &err, "bad minisign signature");
    assert_null(tc);
    char *missing = xasprintf("%s/missing", dir);
    expect(AL_ERR_NOT_FOUND, al_minisign_verify_file(&pub, missing, sig, NULL, &err), &err, "cannot open");
    expect(AL_ERR_INVALID, al_minisign_verify_file(&pub, dir, sig, NULL, &err), &err, "not a regular file");

    free(missing);
    free(data);
    free(sig);
    free(path);
    al_minisign_sec_free(sec);
    tu_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blake2b),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_encrypted_key),
        cmocka_unit_test(test_forgeries),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_key_files),
        cmocka_unit_test(test_verify_file),
        cmocka_unit_test(test_interop_airlock_signs),
        cmocka_unit_test(test_interop_minisign_signs),
        cmocka_unit_test(test_interop_minisign_encrypted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
