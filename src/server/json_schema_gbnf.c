/*
 * json_schema_gbnf.c: a JSON schema turned into a GBNF grammar for
 * llama.cpp's grammar sampler.
 *
 * Covered: type (one or a list), object with properties and required
 * (required properties in the schema's order, then each optional one maybe,
 * in order), array with items and minItems 0 or >= 1, string, number,
 * integer, boolean, null, enum, const, anyOf/oneOf, a one-element allOf.
 * Not covered, and refused: $ref. Ignored: formats, patterns, lengths,
 * numeric ranges, maxItems, additionalProperties (no extra properties are
 * generated). Whitespace between tokens is at most one character, so a small
 * model cannot wander off into blanks.
 *
 * Each schema node becomes one rule rN, written after its children; the
 * output is capped at AL_LIMIT_GRAMMAR bytes and the nesting at
 * AL_LIMIT_JSON_DEPTH.
 */
#include "server/http_int.h"

#include "core/limits.h"

static const char base_rules[] =
    "ws ::= | \" \" | \"\\n\"\n"
    "string ::= \"\\\"\" ( [^\"\\\\\\x7F\\x00-\\x1F] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" [0-9a-fA-F] [0-9a-fA-F] "
    "[0-9a-fA-F] [0-9a-fA-F] ) )* \"\\\"\" ws\n"
    "number ::= \"-\"? ( \"0\" | [1-9] [0-9]{0,15} ) ( \".\" [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )? ws\n"
    "integer ::= \"-\"? ( \"0\" | [1-9] [0-9]{0,15} ) ws\n"
    "boolean ::= ( \"true\" | \"false\" ) ws\n"
    "null ::= \"null\" ws\n"
    "value ::= object | array | string | number | boolean | null\n"
    "object ::= \"{\" ws ( string \":\" ws value ( \",\" ws string \":\" ws value )* )? \"}\" ws\n"
    "array ::= \"[\" ws ( value ( \",\" ws value )* )? \"]\" ws\n";

struct conv {
    struct al_buf out;
    int next;
    struct al_err *err;
    enum al_rc rc;
    const char *field;      /* the request field the schema came in, for messages */
};

static void fail(struct conv *c, enum al_rc rc, const char *what)
{
    if (!c->rc)
        c->rc = al_err_set(c->err, rc, "%s: %s", c->field, what);
}

/* s as a GBNF string literal. */
static void literal(struct al_buf *b, const char *s)
{
    al_buf_addch(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            al_buf_addf(b, "\\%c", *p);
        else if (*p == '\n')
            al_buf_addstr(b, "\\n");
        else if (*p == '\r')
            al_buf_addstr(b, "\\r");
        else if (*p == '\t')
            al_buf_addstr(b, "\\t");
        else if (*p < 0x20)
            al_buf_addf(b, "\\x%02X", *p);
        else
            al_buf_addch(b, (char)*p);
    }
    al_buf_addch(b, '"');
}

/* A JSON value as a literal followed by ws. */
static void json_literal(struct conv *c, struct al_buf *b, json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s) {
        fail(c, AL_ERR_NOMEM, "out of memory");
        return;
    }
    literal(b, s);
    al_buf_addstr(b, " ws");
    free(s);
}

static int visit(struct conv *c, json_t *schema, int depth);

/* Writes rule body as a new rule and returns its number. */
static int emit(struct conv *c, struct al_buf *body)
{
    int id = c->next++;
    al_buf_addf(&c->out, "r%d ::= %s\n", id, al_buf_str(body));
    if (al_buf_failed(body))
        fail(c, AL_ERR_LIMIT, "the grammar is over the cap (AL_LIMIT_GRAMMAR)");
    al_buf_release(body);
    return id;
}

static void alternatives(struct conv *c, struct al_buf *b, json_t *list, int depth)
{
    size_t i;
    json_t *v;
    if (!json_is_array(list) || json_array_size(list) == 0) {
        fail(c, AL_ERR_INVALID, "anyOf/oneOf must be a non-empty array");
        return;
    }
    json_array_foreach(list, i, v)
    {
        int r = visit(c, v, depth + 1);
        al_buf_addf(b, "%sr%d", i ? " | " : "", r);
    }
}

static void object_rule(struct conv *c, struct al_buf *b, json_t *schema, int depth)
{
    json_t *props = json_object_get(schema, "properties");
    json_t *req = json_object_get(schema, "required");
    if (!json_is_object(props) || json_object_size(props) == 0) {
        al_buf_addstr(b, "object");
        return;
    }
    /* kv[i]: the rule text of property i, required ones first. */
    size_t n = json_object_size(props), nreq = 0, k = 0;
    struct al_buf *kv = calloc(n, sizeof *kv);
    bool *isreq = calloc(n, sizeof *isreq);
    if (!kv || !isreq) {
        free(kv);
        free(isreq);
        fail(c, AL_ERR_NOMEM, "out of memory");
        return;
    }
    for (int pass = 0; pass < 2; pass++) {
        const char *key;
        json_t *sub;
        json_object_foreach(props, key, sub)
        {
            bool r = false;
            size_t i;
            json_t *rv;
            json_array_foreach(req, i, rv) if (json_is_string(rv) && strcmp(json_string_value(rv), key) == 0) r = true;
            if (r != (pass == 0))
                continue;
            int sr = visit(c, sub, depth + 1);
            al_buf_init(&kv[k], AL_LIMIT_GRAMMAR);
            json_t *jk = json_string(key);
            json_literal(c, &kv[k], jk);
            json_decref(jk);
            al_buf_addf(&kv[k], " \":\" ws r%d", sr);
            isreq[k] = r;
            nreq += r;
            k++;
        }
    }
    al_buf_addstr(b, "\"{\" ws ");
    if (nreq > 0) {
        for (size_t i = 0; i < n; i++) {
            if (isreq[i])
                al_buf_addf(b, "%s%s ", i ? "\",\" ws " : "", al_buf_str(&kv[i]));
            else
                al_buf_addf(b, "( \",\" ws %s )? ", al_buf_str(&kv[i]));
        }
    } else {
        /* No required property: whichever optional one comes first has no comma. */
        al_buf_addstr(b, "( ");
        for (size_t first = 0; first < n; first++) {
            al_buf_addf(b, "%s%s", first ? " | " : "", al_buf_str(&kv[first]));
            for (size_t j = first + 1; j < n; j++)
                al_buf_addf(b, " ( \",\" ws %s )?", al_buf_str(&kv[j]));
        }
        al_buf_addstr(b, " )? ");
    }
    al_buf_addstr(b, "\"}\" ws");
    for (size_t i = 0; i < n; i++)
        al_buf_release(&kv[i]);
    free(kv);
    free(isreq);
}

static void type_rule(struct conv *c, struct al_buf *b, const char *type, json_t *schema, int depth)
{
    if (strcmp(type, "string") == 0 || strcmp(type, "number") == 0 || strcmp(type, "integer") == 0 ||
        strcmp(type, "boolean") == 0 || strcmp(type, "null") == 0) {
        al_buf_addstr(b, type);
    } else if (strcmp(type, "object") == 0) {
        object_rule(c, b, schema, depth);
    } else if (strcmp(type, "array") == 0) {
        json_t *items = json_object_get(schema, "items");
        json_t *min = json_object_get(schema, "minItems");
        bool nonempty = json_is_integer(min) && json_integer_value(min) > 0;
        if (!items) {
            al_buf_addstr(b, nonempty ? "\"[\" ws value ( \",\" ws value )* \"]\" ws" : "array");
            return;
        }
        int ir = visit(c, items, depth + 1);
        al_buf_addf(b, nonempty ? "\"[\" ws r%d ( \",\" ws r%d )* \"]\" ws" : "\"[\" ws ( r%d ( \",\" ws r%d )* )? \"]\" ws",
                    ir, ir);
    } else {
        fail(c, AL_ERR_INVALID, "unknown schema type");
    }
}

static int visit(struct conv *c, json_t *schema, int depth)
{
    struct al_buf b;
    al_buf_init(&b, AL_LIMIT_GRAMMAR);
    if (depth > (int)AL_LIMIT_JSON_DEPTH) {
        fail(c, AL_ERR_LIMIT, "the schema nests deeper than AL_LIMIT_JSON_DEPTH");
        al_buf_addstr(&b, "value");
        return emit(c, &b);
    }
    json_t *v;
    if (!json_is_object(schema)) {
        al_buf_addstr(&b, "value"); /* true, or anything else: any value */
    } else if (json_object_get(schema, "$ref")) {
        fail(c, AL_ERR_INVALID, "$ref is not supported in schemas");
    } else if ((v = json_object_get(schema, "const"))) {
        json_literal(c, &b, v);
    } else if ((v = json_object_get(schema, "enum"))) {
        size_t i;
        json_t *e;
        if (!json_is_array(v) || json_array_size(v) == 0)
            fail(c, AL_ERR_INVALID, "enum must be a non-empty array");
        json_array_foreach(v, i, e)
        {
            if (i)
                al_buf_addstr(&b, " | ");
            json_literal(c, &b, e);
        }
    } else if ((v = json_object_get(schema, "anyOf")) || (v = json_object_get(schema, "oneOf"))) {
        alternatives(c, &b, v, depth);
    } else if ((v = json_object_get(schema, "allOf"))) {
        if (json_array_size(v) != 1)
            fail(c, AL_ERR_INVALID, "allOf is supported with one schema only");
        else
            al_buf_addf(&b, "r%d", visit(c, json_array_get(v, 0), depth + 1));
    } else if ((v = json_object_get(schema, "type"))) {
        if (json_is_string(v)) {
            type_rule(c, &b, json_string_value(v), schema, depth);
        } else if (json_is_array(v) && json_array_size(v) > 0) {
            size_t i;
            json_t *t;
            json_array_foreach(v, i, t)
            {
                if (!json_is_string(t)) {
                    fail(c, AL_ERR_INVALID, "type must be a string or an array of strings");
                    break;
                }
                struct al_buf one;
                al_buf_init(&one, AL_LIMIT_GRAMMAR);
                type_rule(c, &one, json_string_value(t), schema, depth);
                al_buf_addf(&b, "%sr%d", i ? " | " : "", emit(c, &one));
            }
        } else {
            fail(c, AL_ERR_INVALID, "type must be a string or an array of strings");
        }
    } else if (json_object_get(schema, "properties")) {
        object_rule(c, &b, schema, depth);
    } else {
        al_buf_addstr(&b, "value");
    }
    if (b.len == 0)
        al_buf_addstr(&b, "value");
    return emit(c, &b);
}

enum al_rc al_server_json_schema_to_gbnf(json_t *schema, const char *field, char **out, struct al_err *err)
{
    struct conv c = {.err = err, .field = field};
    al_buf_init(&c.out, AL_LIMIT_GRAMMAR);
    al_buf_addstr(&c.out, base_rules);
    if (!schema) {
        al_buf_addstr(&c.out, "root ::= object\n");
    } else {
        int r = visit(&c, schema, 0);
        al_buf_addf(&c.out, "root ::= r%d\n", r);
    }
    if (!c.rc && al_buf_failed(&c.out))
        c.rc = al_err_set(err, AL_ERR_LIMIT, "%s: the grammar is over the cap of %u bytes (AL_LIMIT_GRAMMAR)",
                          field, AL_LIMIT_GRAMMAR);
    if (c.rc) {
        al_buf_release(&c.out);
        return c.rc;
    }
    *out = al_buf_take(&c.out);
    return *out ? AL_OK : al_err_set(err, AL_ERR_NOMEM, "out of memory");
}
