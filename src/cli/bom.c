/*
 * bom.c: a version as a CycloneDX 1.6 ML-BOM (`airlock show REF --bom`), so a
 * site's existing SBOM tooling can read what entered the gap: the model (a
 * machine-learning-model component with its manifest digest, purl, license
 * and model card facts), its files (file components with SHA-256 hashes and
 * media types), who signed it, and what the scan said. Built only from what
 * show already read (index rows, events, the GGUF facts); no I/O here.
 *
 * The document validates against the CycloneDX 1.6 JSON schema
 * (tests/schemas/cyclonedx, checked by integration/test_bom). airlock's own
 * facts that the schema has no field for are properties named "airlock:...",
 * as CycloneDX's property taxonomy asks.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/bom.h"
#include "core/hash.h"
#include "core/version.h"
#include "policy/policy.h"

/* Normalized ids (policy's al_license_normalize) that are SPDX license
 * identifiers, with SPDX's spelling. Only these go out as license.id (the
 * schema holds id to SPDX's list); every other license, model licenses such
 * as llama3.1 included, goes out as license.name. */
static const struct {
    const char *id, *spdx;
} spdx_ids[] = {
    {"apache-2.0", "Apache-2.0"},       {"mit", "MIT"},
    {"bsd-2-clause", "BSD-2-Clause"},   {"bsd-3-clause", "BSD-3-Clause"},
    {"cc0-1.0", "CC0-1.0"},             {"cc-by-4.0", "CC-BY-4.0"},
    {"cc-by-sa-4.0", "CC-BY-SA-4.0"},   {"cc-by-nc-4.0", "CC-BY-NC-4.0"},
    {"cc-by-nc-sa-4.0", "CC-BY-NC-SA-4.0"}, {"cc-by-nc-nd-4.0", "CC-BY-NC-ND-4.0"},
    {"gpl-2.0", "GPL-2.0-only"},        {"gpl-3.0", "GPL-3.0-only"},
    {"lgpl-3.0", "LGPL-3.0-only"},      {"agpl-3.0", "AGPL-3.0-only"},
    {"mpl-2.0", "MPL-2.0"},             {"unlicense", "Unlicense"},
    {"openrail", "OpenRAIL"},           {"isc", "ISC"},
};

static void add_prop(json_t *props, const char *name, const char *value)
{
    if (value && value[0])
        json_array_append_new(props, json_pack("{s:s, s:s}", "name", name, "value", value));
}

static json_t *sha256_hashes(const char *digest)
{
    const char *hex = al_digest_hex(digest);
    json_t *a = json_array();
    if (hex)
        json_array_append_new(a, json_pack("{s:s, s:s}", "alg", "SHA-256", "content", hex));
    return a;
}

/* The license the GGUF declares, as CycloneDX's licenses array; NULL when
 * it declares none. A declaration the policy module cannot normalize is
 * kept as its name, as written. */
static json_t *licenses(const char *declared)
{
    if (!declared || !declared[0])
        return NULL;
    char id[AL_LICENSE_ID_MAX + 1];
    struct al_err err = AL_ERR_INIT;
    json_t *lic = NULL;
    if (al_license_normalize(declared, id, &err) == AL_OK) {
        for (size_t i = 0; i < sizeof spdx_ids / sizeof spdx_ids[0] && !lic; i++)
            if (strcmp(id, spdx_ids[i].id) == 0)
                lic = json_pack("{s:s}", "id", spdx_ids[i].spdx);
        if (!lic)
            lic = json_pack("{s:s}", "name", id);
    } else {
        lic = json_pack("{s:s}", "name", declared);
    }
    return json_pack("[{s:o}]", "license", lic);
}

/* "pkg:oci/<name>@sha256%3A<hex>": purl's type for OCI artifacts; the name
 * is percent-encoded outside purl's unreserved characters. */
static void purl(const char *model, const char *manifest, char *out, size_t size)
{
    size_t o = (size_t)snprintf(out, size, "pkg:oci/");
    for (const unsigned char *p = (const unsigned char *)model; *p && o + 4 < size; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_')
            out[o++] = (char)*p;
        else if (*p >= 'A' && *p <= 'Z')
            out[o++] = (char)(*p - 'A' + 'a');
        else
            o += (size_t)snprintf(out + o, size - o, "%%%02X", *p);
    }
    out[o < size ? o : size - 1] = '\0';
    const char *hex = al_digest_hex(manifest);
    if (hex && o < size)
        snprintf(out + o, size - o, "@sha256%%3A%s", hex);
}

/* urn:uuid from the manifest digest, in RFC 4122's name-based shape
 * (version 5 nibble, variant bits): the same version always gets the same
 * serial number, so two BOMs of one version are recognisably one subject. */
static void serial(const char *manifest, char *out, size_t size)
{
    const char *hex = al_digest_hex(manifest);
    char h[33];
    snprintf(h, sizeof h, "%.32s", hex ? hex : "00000000000000000000000000000000");
    h[12] = '5';
    h[16] = "89ab"[(h[16] >= 'a' ? h[16] - 'a' + 10 : h[16] - '0') & 3];
    snprintf(out, size, "urn:uuid:%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
}

/* Signers and the bundle, from the version's ingest event: one property
 * each ("airlock:signer" = "minisign RWQ... ok"). */
static void provenance(json_t *props, const struct al_event *ev, size_t n, const char *manifest)
{
    for (size_t i = n; i-- > 0;) {
        if (strcmp(ev[i].digest, manifest) != 0 ||
            (strcmp(ev[i].kind, "ingest") && strcmp(ev[i].kind, "add") && strcmp(ev[i].kind, "import")))
            continue;
        json_t *d = json_loads(ev[i].detail, 0, NULL);
        add_prop(props, "airlock:entered", ev[i].kind);
        add_prop(props, "airlock:entered-by", ev[i].actor);
        add_prop(props, "airlock:entered-at", ev[i].time);
        add_prop(props, "airlock:bundle", json_string_value(json_object_get(d, "bundle")));
        size_t k;
        json_t *s;
        json_array_foreach(json_object_get(d, "signers"), k, s) {
            const char *id = json_string_value(json_object_get(s, "key_id"));
            if (!id)
                id = json_string_value(json_object_get(s, "fingerprint"));
            char text[256];
            snprintf(text, sizeof text, "%s %s %s", json_string_value(json_object_get(s, "kind")) ?: "?", id ?: "?",
                     json_string_value(json_object_get(s, "status")) ?: "?");
            add_prop(props, "airlock:signer", text);
        }
        json_decref(d);
        return;
    }
}

json_t *al_cli_bom(const struct al_bom_input *in)
{
    const struct al_version *v = in->version;
    char ref[64], p[512], sn[64], now[32];
    snprintf(ref, sizeof ref, "model-%.12s", al_digest_hex(v->manifest) ?: "unknown");
    purl(v->model, v->manifest, p, sizeof p);
    serial(v->manifest, sn, sizeof sn);
    time_t t = time(NULL);
    struct tm tm;
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));

    json_t *props = json_array();
    add_prop(props, "airlock:manifest", v->manifest);
    add_prop(props, "airlock:config", v->config);
    add_prop(props, "airlock:created", v->created);
    add_prop(props, "airlock:tags", v->tags);
    char seq[32];
    snprintf(seq, sizeof seq, "%lld", (long long)v->seq);
    add_prop(props, "airlock:sequence", v->seq ? seq : NULL);
    add_prop(props, "airlock:active", v->active ? "true" : "false");
    provenance(props, in->events, in->n_events, v->manifest);
    if (in->scan) {
        add_prop(props, "airlock:scan:verdict", json_string_value(json_object_get(in->scan, "verdict")));
        char rules[32];
        snprintf(rules, sizeof rules, "%lld", (long long)json_integer_value(json_object_get(in->scan, "rules")));
        add_prop(props, "airlock:scan:rules", rules);
        add_prop(props, "airlock:scan:scanner", json_string_value(json_object_get(in->scan, "scanner")));
    } else {
        add_prop(props, "airlock:scan:verdict", "not-scanned");
    }
    if (in->license) {
        add_prop(props, "airlock:license:decision", json_string_value(json_object_get(in->license, "decision")));
        add_prop(props, "airlock:license:rule", json_string_value(json_object_get(in->license, "rule")));
        add_prop(props, "airlock:license:acked-by", json_string_value(json_object_get(in->license, "acked_by")));
    }

    json_t *model = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "type", "machine-learning-model", "bom-ref", ref,
                              "name", v->model, "version", v->tags[0] ? v->tags : v->manifest, "purl", p, "hashes",
                              sha256_hashes(v->manifest), "properties", props);
    const struct al_gguf_info *g = in->gguf;
    if (g) {
        /* The license decided at the boundary (card and GGUF), else the GGUF's. */
        const char *decided = in->license ? json_string_value(json_object_get(in->license, "license")) : NULL;
        json_t *lic = licenses(decided && decided[0] && strcmp(decided, "none") != 0 ? decided : g->license);
        if (lic)
            json_object_set_new(model, "licenses", lic);
        json_t *params = json_object();
        if (g->arch[0])
            json_object_set_new(params, "architectureFamily", json_string(g->arch));
        if (g->name[0])
            json_object_set_new(params, "modelArchitecture", json_string(g->name));
        json_t *mprops = json_array();
        char num[32];
        snprintf(num, sizeof num, "%llu", (unsigned long long)g->n_params);
        add_prop(mprops, "airlock:gguf:parameters", num);
        snprintf(num, sizeof num, "%u", g->context_length);
        add_prop(mprops, "airlock:gguf:context-length", num);
        add_prop(mprops, "airlock:gguf:file-type", g->file_type);
        add_prop(mprops, "airlock:gguf:chat-template", g->has_chat_template ? "true" : "false");
        json_object_set_new(model, "modelCard",
                            json_pack("{s:o, s:o}", "modelParameters", params, "properties", mprops));
    }

    json_t *files = json_array(), *deps = json_array();
    for (size_t i = 0; i < in->n_files; i++) {
        const struct al_file *f = &in->files[i];
        char fref[96], size[32];
        snprintf(fref, sizeof fref, "file-%.12s-%zu", al_digest_hex(f->digest) ?: "unknown", i);
        snprintf(size, sizeof size, "%llu", (unsigned long long)f->size);
        json_t *fp = json_array();
        add_prop(fp, "airlock:media-type", f->media_type);
        add_prop(fp, "airlock:size", size);
        json_array_append_new(files, json_pack("{s:s, s:s, s:s, s:o, s:o}", "type", "file", "bom-ref", fref, "name",
                                               f->path, "hashes", sha256_hashes(f->digest), "properties", fp));
        json_array_append_new(deps, json_string(fref));
    }
    json_t *tool = json_pack("{s:s, s:s, s:s}", "type", "application", "name", "airlock", "version", AIRLOCK_VERSION);
    json_t *meta = json_pack("{s:s, s:{s:[o]}, s:o}", "timestamp", now, "tools", "components", tool, "component", model);
    return json_pack("{s:s, s:s, s:s, s:i, s:o, s:o, s:[{s:s, s:o}]}", "bomFormat", "CycloneDX", "specVersion", "1.6",
                     "serialNumber", sn, "version", 1, "metadata", meta, "components", files, "dependencies", "ref",
                     ref, "dependsOn", deps);
}
