/* Unit tests of src/oci: canonical manifests, defensive parsing. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "oci/oci.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static void test_paths_and_types(void **state)
{
    assert_true(al_oci_path_safe("model.gguf"));
    assert_true(al_oci_path_safe("bench/prompts.jsonl"));
    const char *bad[] = {"", "/etc/passwd", "../x", "a/../b", "a/./b", "a//b", "a/", "a\\b", "a\nb", "..", "."};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(al_oci_path_safe(bad[i]));
    assert_string_equal(al_oci_media_type_for("x.gguf"), AL_MT_WEIGHT);
    assert_string_equal(al_oci_media_type_for("tokenizer.json"), AL_MT_WEIGHT_CONFIG);
    assert_string_equal(al_oci_media_type_for("LICENSE"), AL_MT_DOC);
}

static void test_roundtrip_and_determinism(void **state)
{
    struct al_oci_layer layers[2] = {
        {"m.gguf", D1, 10, AL_MT_WEIGHT},
        {"card.json", D2, 5, AL_MT_DOC},
    };
    struct al_oci_model m = {.name = "m", .version = "1.0", .architecture = "llama", .format = "gguf",
                             .layers = layers, .n_layers = 2, .card_json = "{\"licenses\":[\"MIT\"]}"};
    struct al_err err = AL_ERR_INIT;
    char *c1 = NULL, *c2 = NULL, *m1 = NULL;
    assert_int_equal(al_oci_config_build(&m, &c1, &err), AL_OK);
    assert_int_equal(al_oci_config_build(&m, &c2, &err), AL_OK);
    assert_string_equal(c1, c2);
    assert_non_null(strstr(c1, "\"licenses\":[\"MIT\"]"));
    assert_int_equal(al_oci_manifest_build(&m, D2, strlen(c1), &m1, &err), AL_OK);
    struct al_oci_manifest pm;
    assert_int_equal(al_oci_manifest_parse(m1, strlen(m1), &pm, &err), AL_OK);
    assert_int_equal(pm.n_layers, 2);
    assert_string_equal(pm.layers[1].path, "card.json");
    assert_string_equal(pm.config_digest, D2);
    /* The card whole is the manifest's annotation; the config has no other keys than ModelPack's. */
    assert_string_equal(pm.card, "{\"licenses\":[\"MIT\"]}");
    assert_null(strstr(c1, AL_ANN_CARD));
    al_oci_manifest_release(&pm);
    assert_null(pm.card);
    free(m1);
    m1 = NULL;
    /* Card fields in other names and forms map onto the descriptor. */
    m.card_json = "{\"license\":\"MIT\",\"author\":\"Ann\",\"origin\":\"https://x\",\"date\":\"2026-01-02\","
                  "\"title\":7,\"extra\":{\"a\":1}}";
    free(c2);
    c2 = NULL;
    assert_int_equal(al_oci_config_build(&m, &c2, &err), AL_OK);
    assert_non_null(strstr(c2, "\"authors\":[\"Ann\"]"));
    assert_non_null(strstr(c2, "\"licenses\":[\"MIT\"]"));
    assert_non_null(strstr(c2, "\"sourceURL\":\"https://x\""));
    assert_non_null(strstr(c2, "\"createdAt\":\"2026-01-02T00:00:00Z\""));
    assert_null(strstr(c2, "title")); /* not a string: left to the annotation */
    assert_null(strstr(c2, "extra"));
    free(c2);
    c2 = NULL;
    /* A card annotation that is not a JSON object is not returned. */
    const char *odd = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" AL_MT_MODEL_CONFIG "\",\"digest\":\"" D1
                      "\",\"size\":1},\"layers\":[],\"annotations\":{\"" AL_ANN_CARD "\":\"[1]\"}}";
    assert_int_equal(al_oci_manifest_parse(odd, strlen(odd), &pm, &err), AL_OK);
    assert_null(pm.card);
    al_oci_manifest_release(&pm);
    m.card_json = "[1]";
    assert_int_equal(al_oci_config_build(&m, &c2 /* untouched on error */, &err), AL_ERR_INVALID);
    free(c1);
    free(c2);
    free(m1);
}

/* An adapter version's binding: in the config and the manifest's
 * annotations, read back; a model has none; a malformed base is dropped. */
static void test_adapter_binding(void **state)
{
    struct al_oci_layer layers[1] = {{"lora.gguf", D1, 10, AL_MT_WEIGHT}};
    struct al_oci_model m = {.name = "m", .version = "1", .layers = layers, .n_layers = 1,
                             .adapter_type = "lora", .adapter_base = D2};
    struct al_err err = AL_ERR_INIT;
    char *c = NULL, *man = NULL;
    assert_int_equal(al_oci_config_build(&m, &c, &err), AL_OK);
    assert_non_null(strstr(c, "\"io.airlock.adapter\":{\"baseWeights\":\"" D2 "\",\"type\":\"lora\"}"));
    assert_int_equal(al_oci_manifest_build(&m, D1, strlen(c), &man, &err), AL_OK);
    assert_non_null(strstr(man, "\"" AL_ANN_ADAPTER_BASE "\":\"" D2 "\""));
    struct al_oci_manifest pm;
    assert_int_equal(al_oci_manifest_parse(man, strlen(man), &pm, &err), AL_OK);
    assert_string_equal(pm.adapter_type, "lora");
    assert_string_equal(pm.adapter_base, D2);
    al_oci_manifest_release(&pm);
    free(man);
    man = NULL;
    m.adapter_base = "sha256:not-a-digest";
    assert_int_equal(al_oci_manifest_build(&m, D1, strlen(c), &man, &err), AL_OK);
    assert_int_equal(al_oci_manifest_parse(man, strlen(man), &pm, &err), AL_OK);
    assert_string_equal(pm.adapter_base, "");
    al_oci_manifest_release(&pm);
    free(man);
    man = NULL;
    m.adapter_base = NULL;
    assert_int_equal(al_oci_manifest_build(&m, D1, strlen(c), &man, &err), AL_OK);
    assert_null(strstr(man, "io.airlock.adapter"));
    free(man);
    free(c);
}

static void test_hostile_manifests(void **state)
{
    const char *bad[] = {
        "", "{", "[]", "{\"schemaVersion\":1}",
        "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"" D1 "\",\"size\":1},\"layers\":[]}",
        "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" AL_MT_MODEL_CONFIG "\",\"digest\":\"sha256:zz\",\"size\":1},\"layers\":[]}",
        "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" AL_MT_MODEL_CONFIG "\",\"digest\":\"" D1 "\",\"size\":1},"
        "\"layers\":[{\"mediaType\":\"x\",\"digest\":\"" D1 "\",\"size\":1,\"annotations\":{\"org.cncf.model.filepath\":\"../x\"}}]}",
        "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" AL_MT_MODEL_CONFIG "\",\"digest\":\"" D1 "\",\"size\":1},"
        "\"layers\":[{\"mediaType\":\"x\",\"digest\":\"" D1 "\",\"size\":1,\"annotations\":{\"org.cncf.model.filepath\":\"a\"}},"
        "{\"mediaType\":\"x\",\"digest\":\"" D1 "\",\"size\":1,\"annotations\":{\"org.cncf.model.filepath\":\"a\"}}]}",
        "{\"schemaVersion\":2,\"schemaVersion\":2}",
        "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" AL_MT_MODEL_CONFIG "\",\"digest\":\"" D1 "\",\"size\":-1},\"layers\":[]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct al_oci_manifest pm;
        struct al_err err = AL_ERR_INIT;
        assert_int_not_equal(al_oci_manifest_parse(bad[i], strlen(bad[i]), &pm, &err), AL_OK);
        assert_true(err.msg[0] != '\0');
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths_and_types),
        cmocka_unit_test(test_roundtrip_and_determinism),
        cmocka_unit_test(test_hostile_manifests),
        cmocka_unit_test(test_adapter_binding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
