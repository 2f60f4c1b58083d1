/* safetensors.c: the header of a safetensors file against its data. A
 * reader trusts data_offsets to slice the file; offsets past the end, sizes
 * that disagree with dtype and shape, and overlapping tensors are how a file
 * makes a loader read out of bounds or alias weights: dangerous. What only
 * looks odd (unknown dtype, bytes no tensor owns, metadata not strings) is
 * warn. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "scan/scan_int.h"

struct span {
    uint64_t begin, end;
    const char *name; /* a key of the header, alive as long as it */
};

/* Bytes per element; 0 for a dtype the scanner does not know. */
static uint64_t dtype_size(const char *t)
{
    static const struct {
        const char *name;
        uint64_t size;
    } d[] = {{"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
             {"I16", 2}, {"U16", 2}, {"F16", 2}, {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},
             {"I64", 8}, {"U64", 8}, {"F64", 8}, {"C64", 8}};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        if (strcmp(t, d[i].name) == 0)
            return d[i].size;
    return 0;
}

#define BAD(...) al_scan__add(r, AL_SCAN_DANGEROUS, NULL, AL_SCAN_NO_OFFSET, NULL, name, __VA_ARGS__)

/* One tensor entry; on success *s is its span (relative to the data). */
static int check_tensor(const char *name, json_t *t, uint64_t data_len, struct al_scan_report *r, struct span *s)
{
    json_t *dtype = json_object_get(t, "dtype"), *shape = json_object_get(t, "shape");
    json_t *offs = json_object_get(t, "data_offsets");
    if (!json_is_object(t) || !json_is_string(dtype) || !json_is_array(shape) || !json_is_array(offs) ||
        json_array_size(offs) != 2 || !json_is_integer(json_array_get(offs, 0)) ||
        !json_is_integer(json_array_get(offs, 1)))
        return BAD("the entry needs a string dtype, an array shape and two integer data_offsets"), -1;
    json_int_t b = json_integer_value(json_array_get(offs, 0)), e = json_integer_value(json_array_get(offs, 1));
    if (b < 0 || e < b)
        return BAD("data_offsets [%lld, %lld] are not an increasing pair", (long long)b, (long long)e), -1;
    if ((uint64_t)e > data_len)
        return BAD("data_offsets [%lld, %lld] run past the end of the file (the data is %llu bytes)", (long long)b,
                   (long long)e, (unsigned long long)data_len), -1;
    *s = (struct span){(uint64_t)b, (uint64_t)e, name};
    uint64_t elems = 1, size = dtype_size(json_string_value(dtype));
    int overflow = 0;
    for (size_t i = 0; i < json_array_size(shape); i++) {
        json_t *dim = json_array_get(shape, i);
        if (!json_is_integer(dim) || json_integer_value(dim) < 0)
            return BAD("dimension %zu of the shape is not a whole number", i), -1;
        overflow |= __builtin_mul_overflow(elems, (uint64_t)json_integer_value(dim), &elems);
    }
    if (!size) {
        al_scan__add(r, AL_SCAN_WARN, NULL, AL_SCAN_NO_OFFSET, NULL, name,
                     "unknown dtype '%.32s': its size is not checked", json_string_value(dtype));
        return 0;
    }
    overflow |= __builtin_mul_overflow(elems, size, &elems);
    if (overflow || elems != (uint64_t)(e - b))
        return BAD("dtype %.32s and its shape make %s%llu bytes, data_offsets give %llu", json_string_value(dtype),
                   overflow ? "over " : "", (unsigned long long)(overflow ? UINT64_MAX : elems),
                   (unsigned long long)(e - b)), -1;
    return 0;
}

static int by_begin(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

/* Overlaps are dangerous; bytes no tensor owns are a warning. */
static void check_spans(struct span *s, size_t n, uint64_t data_len, struct al_scan_report *r)
{
    qsort(s, n, sizeof *s, by_begin);
    uint64_t covered = 0;
    const char *last = NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i].begin == s[i].end)
            continue;
        if (s[i].begin < covered)
            al_scan__add(r, AL_SCAN_DANGEROUS, NULL, AL_SCAN_NO_OFFSET, NULL, s[i].name,
                         "its data [%llu, %llu) overlaps tensor '%.100s'", (unsigned long long)s[i].begin,
                         (unsigned long long)s[i].end, last ? last : "?");
        else if (s[i].begin > covered)
            al_scan__add(r, AL_SCAN_WARN, NULL, AL_SCAN_NO_OFFSET, NULL, s[i].name,
                         "data bytes [%llu, %llu) before it belong to no tensor", (unsigned long long)covered,
                         (unsigned long long)s[i].begin);
        if (s[i].end > covered)
            covered = s[i].end, last = s[i].name;
    }
    if (covered < data_len)
        al_scan__add(r, AL_SCAN_WARN, NULL, AL_SCAN_NO_OFFSET, NULL, NULL,
                     "data bytes [%llu, %llu) at the end belong to no tensor", (unsigned long long)covered,
                     (unsigned long long)data_len);
}

void al_scan_safetensors(const uint8_t *d, size_t n, struct al_scan_report *r)
{
    const char *name = NULL; /* for BAD */
    snprintf(r->kind, sizeof r->kind, "safetensors");
    if (n < 8) {
        BAD("the file is shorter than its 8-byte header length");
        return;
    }
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = h << 8 | d[i];
    if (h > AL_LIMIT_SAFETENSORS_HEADER) {
        BAD("the header length %llu is over AL_LIMIT_SAFETENSORS_HEADER (%u bytes)", (unsigned long long)h,
            AL_LIMIT_SAFETENSORS_HEADER);
        return;
    }
    if (h > n - 8) {
        BAD("the header length %llu runs past the end of the file (%zu bytes)", (unsigned long long)h, n);
        return;
    }
    json_error_t je;
    json_t *root = json_loadb((const char *)d + 8, (size_t)h, JSON_REJECT_DUPLICATES, &je);
    struct span *spans = NULL;
    size_t n_spans = 0;
    if (!root || !json_is_object(root)) {
        al_scan__add(r, AL_SCAN_DANGEROUS, NULL, root ? 8 : 8 + (uint64_t)je.position, NULL, NULL,
                     "the header is not a JSON object: %s", root ? "another JSON value" : je.text);
        goto out;
    }
    if (json_object_size(root) > AL_LIMIT_SAFETENSORS_TENSORS) {
        BAD("%zu tensors are over AL_LIMIT_SAFETENSORS_TENSORS (%u)", json_object_size(root),
            AL_LIMIT_SAFETENSORS_TENSORS);
        goto out;
    }
    spans = calloc(json_object_size(root) + 1, sizeof *spans);
    if (!spans) {
        BAD("out of memory for %zu tensors", json_object_size(root));
        goto out;
    }
    uint64_t data_len = n - 8 - h;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            const char *mk;
            json_t *mv;
            int strings = json_is_object(v);
            json_object_foreach(v, mk, mv) strings &= json_is_string(mv);
            if (!strings)
                al_scan__add(r, AL_SCAN_WARN, NULL, AL_SCAN_NO_OFFSET, NULL, NULL,
                             "__metadata__ is not an object of strings");
            continue;
        }
        if (check_tensor(key, v, data_len, r, &spans[n_spans]) == 0)
            n_spans++;
    }
    check_spans(spans, n_spans, data_len, r);
out:
    free(spans);
    json_decref(root);
}
