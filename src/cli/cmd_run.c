/*
 * cmd_run.c: `airlock run REF [PROMPT]`, as Ollama's `ollama run`: a one-shot
 * answer when PROMPT is given or stdin is not a terminal, else an interactive
 * chat (history, /set for sampling options, /bye). Tokens are written to
 * stdout as they come.
 *
 * Where it runs: with --server URL (or $AIRLOCK_SERVER) on that server,
 * through its Ollama API (/api/generate, /api/chat; $AIRLOCK_API_KEY is the
 * key); otherwise the model is loaded in this process with the engine's
 * verified load. A one-shot prompt is a user turn of the model's chat
 * template when it has one, else the text as written (as /api/generate does);
 * the chat uses the template (chatml when the model has none).
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/cli_util.h"
#include "cli/model_ref.h"
#include "core/buf.h"
#include "core/limits.h"
#include "engine/engine.h"
#include "loadgen/loadgen.h"

int al_cmd_run(int argc, char **argv);

/* The longest line the chat reads, and the most turns it keeps. */
#define RUN_LINE_MAX (64u << 10)
#define RUN_TURNS_MAX 64

static int usage(void)
{
    printf("usage: airlock run REF [PROMPT] [--server URL] [--temperature T] [--top-p P] [--top-k K]\n"
           "                  [--seed N] [--max-tokens N] [--system TEXT] [--ctx N] [--threads N]\n"
           "                  [--lora-scale S]\n\n"
           "Answers PROMPT with the model REF (name, name:tag, name@sha256:...), writing the\n"
           "tokens as they come. Without PROMPT it reads the prompt from stdin when stdin is\n"
           "not a terminal, and on a terminal starts a chat that keeps the conversation:\n"
           "  /set temperature T | top_p P | top_k K | seed N | max_tokens N | system TEXT\n"
           "  /show  the settings    /clear  forget the conversation    /bye  leave (or Ctrl-D)\n\n"
           "  --server URL   ask a running 'airlock serve' (its Ollama API) instead of loading\n"
           "                 the model here; default $AIRLOCK_SERVER; the key is $AIRLOCK_API_KEY\n"
           "  --temperature T (default 0.8; 0: greedy)  --top-p P (0.95)  --top-k K (40)\n"
           "  --seed N       a fixed seed for sampling (default random)\n"
           "  --max-tokens N stop after N tokens (default: until the model ends or the context is full)\n"
           "  --system TEXT  a system message first\n"
           "  --ctx N        context in tokens when loading here (default 4096, at most the model's)\n"
           "  --threads N    CPU threads when loading here (default 2)\n"
           "  --lora-scale S when REF is a LoRA adapter version ('airlock add --base'), which\n"
           "                 runs on its base with the adapter applied: the adapter's scale\n"
           "                 (default 1; 0: the base's own answers; -100..100)\n");
    return AL_EXIT_OK;
}

struct run {
    const char *ref;
    const char *server;          /* base URL, or NULL: in process */
    struct al_engine_model *m;   /* in process */
    bool has_template;
    float temperature, top_p;
    int top_k, max_tokens;
    uint32_t seed;
    char *system;                /* malloc'd, or NULL */
    /* the chat's turns: roles and texts (malloc'd) */
    const char *roles[RUN_TURNS_MAX];
    char *texts[RUN_TURNS_MAX];
    size_t n_turns;
};

/* ---- in process ---- */

struct wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    struct al_buf *answer;
    enum al_engine_finish finish;
    char error[256];
};

static bool on_token(void *ud, const char *piece, size_t len, int32_t token)
{
    struct wait *w = ud;
    (void)token;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    al_buf_add(w->answer, piece, len);
    return true;
}

static void on_done(void *ud, const struct al_engine_gen_result *res)
{
    struct wait *w = ud;
    pthread_mutex_lock(&w->mu);
    w->finish = res->finish;
    if (res->error)
        snprintf(w->error, sizeof w->error, "%s", res->error);
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static enum al_rc local_generate(struct run *r, const char *prompt, struct al_buf *answer, struct al_err *err)
{
    struct al_engine_gen_params p = al_engine_gen_params_default();
    p.temperature = r->temperature;
    p.top_p = r->top_p;
    p.top_k = r->top_k;
    p.seed = r->seed;
    p.max_tokens = r->max_tokens;
    struct wait w = {.answer = answer};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    enum al_rc rc = al_engine_submit(r->m, prompt, &p, on_token, on_done, &w, NULL, err);
    if (!rc) {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        if (w.finish == AL_ENGINE_FINISH_ERROR || w.finish == AL_ENGINE_FINISH_CANCELLED)
            rc = al_err_set(err, AL_ERR_INTERNAL, "generation failed: %s", w.error[0] ? w.error : "cancelled");
    }
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return rc;
}

/* ---- on a server: Ollama's NDJSON ---- */

struct ndjson {
    struct al_buf line;      /* a line not yet ended */
    struct al_buf *answer;
    long status;
    char error[512];
    bool done;
};

static void ndjson_line(struct ndjson *s, const char *line, size_t len)
{
    json_error_t je;
    json_t *j = json_loadb(line, len, 0, &je);
    if (!j) {
        if (s->status >= 400 && !s->error[0])
            snprintf(s->error, sizeof s->error, "%.*s", (int)(len < 300 ? len : 300), line);
        return;
    }
    const char *e = json_string_value(json_object_get(j, "error"));
    if (!e) /* an OpenAI-shaped error (a route outside /api/) */
        e = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    if (e)
        snprintf(s->error, sizeof s->error, "%s", e);
    json_t *t = json_object_get(j, "response");
    if (!t)
        t = json_object_get(json_object_get(j, "message"), "content");
    if (json_is_string(t) && s->status < 400) {
        fwrite(json_string_value(t), 1, json_string_length(t), stdout);
        fflush(stdout);
        al_buf_add(s->answer, json_string_value(t), json_string_length(t));
    }
    if (json_is_true(json_object_get(j, "done")))
        s->done = true;
    json_decref(j);
}

static bool on_data(void *ud, long status, const char *data, size_t len)
{
    struct ndjson *s = ud;
    s->status = status;
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\n') {
            al_buf_addch(&s->line, data[i]);
            continue;
        }
        if (s->line.len)
            ndjson_line(s, s->line.data, s->line.len);
        al_buf_reset(&s->line);
    }
    return !al_buf_failed(&s->line) && !al_buf_failed(s->answer);
}

static enum al_rc status_rc(long status)
{
    switch (status) {
    case 400: return AL_ERR_INVALID;
    case 401: return AL_ERR_AUTH;
    case 403: return AL_ERR_DENIED;
    case 404: return AL_ERR_NOT_FOUND;
    case 413: return AL_ERR_LIMIT;
    case 503: return AL_ERR_BUSY;
    default: return AL_ERR_IO;
    }
}

static json_t *server_options(const struct run *r)
{
    json_t *o = json_pack("{s:f, s:f, s:i}", "temperature", (double)r->temperature, "top_p", (double)r->top_p,
                          "top_k", r->top_k);
    if (o && r->seed != AL_ENGINE_SEED_RANDOM)
        json_object_set_new(o, "seed", json_integer(r->seed));
    if (o && r->max_tokens > 0)
        json_object_set_new(o, "num_predict", json_integer(r->max_tokens));
    return o;
}

/* body is stolen. */
static enum al_rc server_generate(struct run *r, const char *route, json_t *body, struct al_buf *answer,
                                  struct al_err *err)
{
    char url[AL_LIMIT_PATH];
    size_t n = strlen(r->server);
    while (n && r->server[n - 1] == '/')
        n--;
    snprintf(url, sizeof url, "%.*s%s", (int)n, r->server, route);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    struct ndjson s = {.answer = answer};
    al_buf_init(&s.line, AL_LIMIT_HTTP_RESPONSE);
    long status = 0;
    enum al_rc rc = al_http_stream(url, text, 0, on_data, &s, &status, err);
    free(text);
    if (!rc && s.line.len) /* a last line without its newline */
        ndjson_line(&s, s.line.data, s.line.len);
    al_buf_release(&s.line);
    if (rc)
        return al_err_set(err, rc, "%s: is 'airlock serve' running there? (--server, $AIRLOCK_SERVER)", err->msg);
    if (status != 200)
        return al_err_set(err, status_rc(status), "the server answered %ld: %s", status,
                          s.error[0] ? s.error : "(no message)");
    if (s.error[0])
        return al_err_set(err, AL_ERR_INTERNAL, "the server stopped the answer: %s", s.error);
    if (!s.done)
        return al_err_set(err, AL_ERR_IO, "the server's answer ended before it was done");
    return AL_OK;
}

/* ---- one-shot and chat ---- */

static enum al_rc one_shot(struct run *r, const char *text, struct al_err *err)
{
    struct al_buf answer;
    al_buf_init(&answer, AL_LIMIT_PROMPT_BYTES);
    enum al_rc rc;
    if (r->server) {
        json_t *body = json_pack("{s:s, s:s, s:b, s:o}", "model", r->ref, "prompt", text, "stream", 1, "options",
                                 server_options(r));
        if (body && r->system)
            json_object_set_new(body, "system", json_string(r->system));
        rc = server_generate(r, "/api/generate", body, &answer, err);
    } else {
        char *prompt = NULL;
        if (r->has_template) {
            struct al_engine_chat_msg cm[2] = {{"system", r->system}, {"user", text}};
            rc = al_engine_chat_format(r->m, r->system ? cm : cm + 1, r->system ? 2 : 1, true, NULL, &prompt, err);
        } else {
            struct al_buf b;
            al_buf_init(&b, AL_LIMIT_PROMPT_BYTES);
            if (r->system)
                al_buf_addf(&b, "%s\n\n", r->system);
            al_buf_addstr(&b, text);
            rc = al_buf_failed(&b) ? al_err_set(err, AL_ERR_LIMIT, "the prompt is over the cap of %u bytes",
                                                AL_LIMIT_PROMPT_BYTES)
                                   : AL_OK;
            prompt = rc ? NULL : al_buf_take(&b);
            al_buf_release(&b);
        }
        if (!rc)
            rc = local_generate(r, prompt, &answer, err);
        free(prompt);
    }
    if (!rc && (answer.len == 0 || answer.data[answer.len - 1] != '\n'))
        putchar('\n');
    al_buf_release(&answer);
    return rc;
}

static void forget(struct run *r)
{
    for (size_t i = 0; i < r->n_turns; i++)
        free(r->texts[i]);
    r->n_turns = 0;
}

/* Adds a turn, dropping the oldest exchange when the history is full. */
static bool remember(struct run *r, const char *role, const char *text)
{
    if (r->n_turns == RUN_TURNS_MAX) {
        free(r->texts[0]);
        free(r->texts[1]);
        memmove(r->roles, r->roles + 2, (RUN_TURNS_MAX - 2) * sizeof r->roles[0]);
        memmove(r->texts, r->texts + 2, (RUN_TURNS_MAX - 2) * sizeof r->texts[0]);
        r->n_turns -= 2;
    }
    char *copy = strdup(text);
    if (!copy)
        return false;
    r->roles[r->n_turns] = role;
    r->texts[r->n_turns++] = copy;
    return true;
}

static enum al_rc chat_turn(struct run *r, struct al_err *err)
{
    struct al_engine_chat_msg cm[RUN_TURNS_MAX + 1];
    size_t n = 0;
    if (r->system)
        cm[n++] = (struct al_engine_chat_msg){"system", r->system};
    for (size_t i = 0; i < r->n_turns; i++)
        cm[n++] = (struct al_engine_chat_msg){r->roles[i], r->texts[i]};
    struct al_buf answer;
    al_buf_init(&answer, AL_LIMIT_PROMPT_BYTES);
    enum al_rc rc;
    if (r->server) {
        json_t *msgs = json_array();
        for (size_t i = 0; msgs && i < n; i++)
            json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", cm[i].role, "content", cm[i].content));
        rc = server_generate(r, "/api/chat",
                             json_pack("{s:s, s:o, s:b, s:o}", "model", r->ref, "messages", msgs, "stream", 1,
                                       "options", server_options(r)),
                             &answer, err);
    } else {
        char *prompt = NULL;
        rc = al_engine_chat_format(r->m, cm, n, true, NULL, &prompt, err);
        if (!rc)
            rc = local_generate(r, prompt, &answer, err);
        free(prompt);
    }
    printf("\n\n");
    if (!rc && !remember(r, "assistant", al_buf_str(&answer)))
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    al_buf_release(&answer);
    return rc;
}

static void show(const struct run *r)
{
    printf("model %s (%s)\n  temperature %g  top_p %g  top_k %d  seed %s  max_tokens %d\n  system %s\n"
           "  %zu turn%s remembered\n",
           r->ref, r->server ? r->server : "in process", (double)r->temperature, (double)r->top_p, r->top_k,
           r->seed == AL_ENGINE_SEED_RANDOM ? "random" : "fixed", r->max_tokens, r->system ? r->system : "(none)",
           r->n_turns, r->n_turns == 1 ? "" : "s");
}

/* A /set line: "NAME VALUE". Prints what it did or why not. */
static void set(struct run *r, const char *arg)
{
    char name[32];
    int used = 0;
    if (sscanf(arg, "%31s %n", name, &used) != 1 || !arg[used]) {
        printf("usage: /set temperature T | top_p P | top_k K | seed N | max_tokens N | system TEXT\n");
        return;
    }
    const char *v = arg + used;
    char *end = NULL;
    double d = strtod(v, &end);
    bool num = end != v && *end == '\0';
    if (strcmp(name, "system") == 0) {
        char *s = strdup(v);
        if (s) {
            free(r->system);
            r->system = s;
        }
    } else if (strcmp(name, "temperature") == 0 && num && d >= 0 && d <= 2) {
        r->temperature = (float)d;
    } else if ((strcmp(name, "top_p") == 0) && num && d >= 0 && d <= 1) {
        r->top_p = (float)d;
    } else if (strcmp(name, "top_k") == 0 && num && d >= 0 && d <= 1e6) {
        r->top_k = (int)d;
    } else if (strcmp(name, "seed") == 0 && num && d >= 0 && d < 4294967295.0) {
        r->seed = (uint32_t)d;
    } else if ((strcmp(name, "max_tokens") == 0 || strcmp(name, "num_predict") == 0) && num && d >= -1 &&
               d <= 1 << 24 && d != 0) {
        r->max_tokens = (int)d;
    } else {
        printf("cannot set '%s' to '%s': try /set with temperature 0..2, top_p 0..1, top_k, seed, "
               "max_tokens (-1: no limit) or system\n", name, v);
        return;
    }
    printf("set %s to %s\n", name, v);
}

static int chat(struct run *r)
{
    printf("chatting with %s; /? for help, /bye to leave\n", r->ref);
    char *line = NULL;
    size_t cap = 0;
    int st = AL_EXIT_OK;
    for (;;) {
        printf(">>> ");
        fflush(stdout);
        ssize_t len = getline(&line, &cap, stdin);
        if (len < 0) {
            putchar('\n');
            break;
        }
        if ((size_t)len > RUN_LINE_MAX) {
            printf("that line is over %u bytes: send less at once\n", RUN_LINE_MAX);
            continue;
        }
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        if (strcmp(line, "/bye") == 0 || strcmp(line, "/exit") == 0)
            break;
        if (strcmp(line, "/?") == 0 || strcmp(line, "/help") == 0) {
            printf("  /set temperature T | top_p P | top_k K | seed N | max_tokens N | system TEXT\n"
                   "  /show  the settings    /clear  forget the conversation    /bye  leave\n");
            continue;
        }
        if (strcmp(line, "/show") == 0) {
            show(r);
            continue;
        }
        if (strcmp(line, "/clear") == 0) {
            forget(r);
            printf("the conversation is forgotten\n");
            continue;
        }
        if (strncmp(line, "/set", 4) == 0 && (line[4] == ' ' || line[4] == '\0')) {
            set(r, line + 4 + (line[4] == ' '));
            continue;
        }
        if (line[0] == '/') {
            printf("unknown command '%s': /? lists them\n", line);
            continue;
        }
        struct al_err err = AL_ERR_INIT;
        if (!remember(r, "user", line)) {
            st = AL_EXIT_INTERNAL;
            break;
        }
        if (chat_turn(r, &err) != AL_OK) {
            al_cli_fail(&err);
            free(r->texts[--r->n_turns]); /* the question that got no answer */
        }
    }
    free(line);
    return st;
}

enum { O_SERVER = 256, O_TEMP, O_TOP_P, O_TOP_K, O_SEED, O_MAX, O_SYSTEM, O_CTX, O_THREADS, O_LORA_SCALE };

int al_cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"server", required_argument, NULL, O_SERVER}, {"temperature", required_argument, NULL, O_TEMP},
        {"top-p", required_argument, NULL, O_TOP_P}, {"top-k", required_argument, NULL, O_TOP_K},
        {"seed", required_argument, NULL, O_SEED}, {"max-tokens", required_argument, NULL, O_MAX},
        {"system", required_argument, NULL, O_SYSTEM}, {"ctx", required_argument, NULL, O_CTX},
        {"threads", required_argument, NULL, O_THREADS}, {"lora-scale", required_argument, NULL, O_LORA_SCALE},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    if (al_cli_wants_help(argc, argv))
        return usage();
    struct al_engine_gen_params dp = al_engine_gen_params_default();
    struct run r = {.temperature = dp.temperature, .top_p = dp.top_p, .top_k = dp.top_k, .max_tokens = -1,
                    .seed = AL_ENGINE_SEED_RANDOM};
    const char *env = getenv("AIRLOCK_SERVER");
    r.server = env && *env ? env : NULL;
    int threads = 2, ctx = 4096, ch;
    long long seed = 0;
    double d = 0, lora_scale = 1;
    bool lora_scale_set = false;
    const char *system = NULL;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int st = 0;
        switch (ch) {
        case O_SERVER: r.server = optarg; break;
        case O_TEMP:
            st = al_cli_opt_num("run", "--temperature", optarg, 0, 2, &d);
            r.temperature = (float)d;
            break;
        case O_TOP_P:
            st = al_cli_opt_num("run", "--top-p", optarg, 0, 1, &d);
            r.top_p = (float)d;
            break;
        case O_TOP_K: st = al_cli_opt_i("run", "--top-k", optarg, 0, 1000000, &r.top_k); break;
        case O_SEED:
            st = al_cli_opt_int("run", "--seed", optarg, 0, 4294967294LL, &seed);
            r.seed = (uint32_t)seed;
            break;
        case O_MAX: st = al_cli_opt_i("run", "--max-tokens", optarg, 1, 1 << 24, &r.max_tokens); break;
        case O_SYSTEM: system = optarg; break;
        case O_CTX: st = al_cli_opt_i("run", "--ctx", optarg, 16, 1 << 24, &ctx); break;
        case O_THREADS: st = al_cli_opt_threads("run", optarg, &threads); break;
        case O_LORA_SCALE:
            st = al_cli_opt_num("run", "--lora-scale", optarg, -100, 100, &lora_scale);
            lora_scale_set = true;
            break;
        default: return al_cli_usage_error("run", "unknown option");
        }
        if (st)
            return st;
    }
    int rest = argc - optind;
    if (rest < 1 || rest > 2)
        return al_cli_usage_error("run", "needs REF and at most one PROMPT (quote it)");
    r.ref = argv[optind];
    if (lora_scale_set && r.server)
        return al_cli_usage_error("run", "--lora-scale applies to a model loaded here, not with --server");
    if (system && !(r.system = strdup(system)))
        return AL_EXIT_INTERNAL;
    /* The prompt: the argument, else stdin when it is not a terminal. */
    char *piped = NULL;
    const char *prompt = rest == 2 ? argv[optind + 1] : NULL;
    struct al_err err = AL_ERR_INIT;
    int st = AL_EXIT_OK;
    if (!prompt && !isatty(STDIN_FILENO)) {
        struct al_buf in;
        al_buf_init(&in, AL_LIMIT_PROMPT_BYTES);
        char chunk[8192];
        size_t got;
        while ((got = fread(chunk, 1, sizeof chunk, stdin)) > 0)
            al_buf_add(&in, chunk, got);
        if (al_buf_failed(&in)) {
            al_buf_release(&in);
            free(r.system);
            fprintf(stderr, "airlock: error: the prompt on stdin is over the cap of %u bytes\n", AL_LIMIT_PROMPT_BYTES);
            return AL_EXIT_INVALID;
        }
        while (in.len && (in.data[in.len - 1] == '\n' || in.data[in.len - 1] == '\r'))
            in.len--;
        al_buf_addch(&in, '\0');
        prompt = piped = al_buf_take(&in);
        al_buf_release(&in);
        if (!piped) {
            free(r.system);
            return AL_EXIT_INTERNAL;
        }
    }
    if (!r.server) {
        struct al_model_ref mr;
        if ((st = al_cli_model_ref(r.ref, &mr)))
            goto out;
        if (lora_scale_set && !mr.lora) {
            fprintf(stderr, "airlock: error: '%s' is not a LoRA adapter version; --lora-scale applies to one\n",
                    r.ref);
            st = AL_EXIT_USAGE;
            goto out;
        }
        mr.lora_scale = (float)lora_scale;
        if ((st = al_cli_model_load(&mr, threads, 1, ctx, &r.m)))
            goto out;
        struct al_engine_model_info info;
        al_engine_model_info(r.m, &info);
        r.has_template = info.has_chat_template;
    }
    if (prompt) {
        if (one_shot(&r, prompt, &err) != AL_OK)
            st = al_cli_fail(&err);
    } else {
        st = chat(&r);
    }
out:
    forget(&r);
    al_engine_model_free(r.m);
    free(r.system);
    free(piped);
    return st;
}
