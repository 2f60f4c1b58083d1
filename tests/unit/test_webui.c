/* Unit tests of src/webui: the embedded files and the one lookup by path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "webui/webui.h"

/* The embedded bytes are the source files', byte for byte. */
static void expect_source(const struct al_webui_file *f)
{
    const char *src = getenv("AL_SRC");
    if (!src)
        skip();
    char path[4096];
    snprintf(path, sizeof path, "%s/src/webui/%s", src, f->name);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        fail_msg("cannot open '%s'", path);
    unsigned char *buf = malloc(f->len + 1);
    assert_non_null(buf);
    size_t n = fread(buf, 1, f->len + 1, fp);
    fclose(fp);
    assert_int_equal(n, f->len);
    assert_memory_equal(buf, f->data, f->len);
    free(buf);
}

static void test_files(void **state)
{
    assert_int_equal(al_webui_n_files, 3);
    const char *names[] = {"index.html", "app.js", "app.css"};
    const char *types[] = {"text/html; charset=utf-8", "text/javascript; charset=utf-8", "text/css; charset=utf-8"};
    for (size_t i = 0; i < 3; i++) {
        char path[64];
        snprintf(path, sizeof path, "/%s", names[i]);
        const struct al_webui_file *f = al_webui_find(path);
        assert_non_null(f);
        assert_string_equal(f->name, names[i]);
        assert_string_equal(f->ctype, types[i]);
        assert_true(f->len > 100);
        expect_source(f);
    }
    assert_ptr_equal(al_webui_find("/"), al_webui_find("/index.html"));
}

static void test_other_paths(void **state)
{
    const char *no[] = {"", "app.js", "//app.js", "/./app.js", "/../app.js", "/app.js/", "/APP.JS", "/app.js?x",
                        "/webui.h", "/webui.c", "/embed.cmake", "/index", "/app", "/app.js\n", " /"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (al_webui_find(no[i]))
            fail_msg("'%s' found a file", no[i]);
    assert_null(al_webui_find(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_other_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
