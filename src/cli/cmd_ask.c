/*
 * cmd_ask.c: `airlock ask COLLECTION QUESTION --model REF`: retrieval, a
 * prompt with numbered passages, a local answer, and its citations.
 */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "cli/cli_util.h"
#include "core/fs.h"
#include "core/limits.h"
#include "rag/rag.h"

int al_cmd_ask(int argc, char **argv);

static int usage(void)
{
    printf("usage: airlock ask COLLECTION QUESTION --model REF [-k N] [--mode hybrid|vector|bm25]\n"
           "                  [--template FILE] [--max-tokens N] [--temperature T] [--json]\n"
           "                  [--rerank REF [--rerank-candidates N]]\n\n"
           "Retrieves the K best passages of COLLECTION (default 5, hybrid), numbers them in a\n"
           "prompt (template '%s' unless --template names a file with {{passages}} and\n"
           "{{question}}; a line '---' separates the system part), generates an answer with\n"
           "the model REF (greedy unless --temperature) and prints it with the passages it cites.\n"
           "--rerank REF: a reranker (a cross-encoder with rank pooling) rescores the first N\n"
           "fused passages (default max(20, 2k)) against the question and the K best are used.\n",
           AL_RAG_TEMPLATE_VERSION);
    return AL_EXIT_OK;
}

static void print_sources(const struct al_rag_answer *a)
{
    bool any = false;
    for (size_t i = 0; i < a->hits.n; i++)
        any = any || a->cited[i];
    printf("\nsources%s:\n", any ? "" : " (retrieved; the answer cites none)");
    for (size_t i = 0; i < a->hits.n; i++) {
        if (any && !a->cited[i])
            continue;
        const struct al_rag_hit *x = &a->hits.v[i];
        printf("  [%zu] %s", i + 1, x->doc);
        if (x->page)
            printf(", page %d", x->page);
        if (x->heading[0])
            printf(", %s", x->heading);
        printf("  (chunk %.12s, bytes %" PRIu64 "-%" PRIu64 ")\n", x->chunk_id, x->start, x->end);
    }
}

static int print_json(const struct al_rag_answer *a)
{
    json_t *j = al_rag_hits_json(&a->hits, true);
    json_t *cited = json_array();
    if (!j || !cited) {
        json_decref(j);
        json_decref(cited);
        return AL_EXIT_INTERNAL;
    }
    for (size_t i = 0; i < a->hits.n; i++)
        if (a->cited[i])
            json_array_append_new(cited, json_integer((json_int_t)i + 1));
    json_object_set_new(j, "answer", json_string(a->text));
    json_object_set_new(j, "cited", cited);
    json_object_set_new(j, "template", json_string(a->template_version));
    json_object_set_new(j, "finish", json_string(al_engine_finish_name(a->gen.finish)));
    char *s = json_dumps(j, JSON_INDENT(2));
    printf("%s\n", s ? s : "{}");
    free(s);
    json_decref(j);
    return AL_EXIT_OK;
}

int al_cmd_ask(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'M'}, {"mode", required_argument, NULL, 'm'},
        {"template", required_argument, NULL, 'T'}, {"max-tokens", required_argument, NULL, 'n'},
        {"temperature", required_argument, NULL, 'p'}, {"json", no_argument, NULL, 'j'},
        {"threads", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
        {"rerank", required_argument, NULL, 'R'}, {"rerank-candidates", required_argument, NULL, 'C'},
        {NULL, 0, NULL, 0},
    };
    struct al_rag_ask_opts ao = {.query = {.k = 5}};
    const char *model = NULL, *tmpl_path = NULL, *rerank = NULL;
    bool json = false;
    int c, threads = 2;
    struct al_err err = AL_ERR_INIT;
    optind = 0;
    while ((c = getopt_long(argc, argv, "M:m:k:T:n:p:jt:h", opts, NULL)) != -1) {
        int st = 0;
        double temp = 0;
        switch (c) {
        case 'M': model = optarg; break;
        case 'm':
            if (al_rag_mode_parse(optarg, &ao.query.mode, &err))
                return al_cli_usage_error("ask", "%s", err.msg);
            break;
        case 'k': st = al_cli_opt_i("ask", "-k", optarg, 1, 64, &ao.query.k); break;
        case 'T': tmpl_path = optarg; break;
        case 'R': rerank = optarg; break;
        case 'C':
            st = al_cli_opt_i("ask", "--rerank-candidates", optarg, 1, AL_LIMIT_RERANK_DOCS,
                              &ao.query.rerank_candidates);
            break;
        case 'n': st = al_cli_opt_i("ask", "--max-tokens", optarg, 0, 1 << 24, &ao.max_tokens); break;
        case 'p':
            st = al_cli_opt_num("ask", "--temperature", optarg, 0, 100, &temp);
            ao.temperature = (float)temp;
            break;
        case 'j': json = true; break;
        case 't': st = al_cli_opt_threads("ask", optarg, &threads); break;
        case 'h': return usage();
        default: return al_cli_usage_error("ask", "unknown option");
        }
        if (st)
            return st;
    }
    if (argc - optind != 2 || !model)
        return al_cli_usage_error("ask", "needs COLLECTION, QUESTION and --model REF");
    char *tmpl = NULL;
    size_t tlen = 0;
    if (tmpl_path && al_fs_read_file(tmpl_path, AL_LIMIT_RAG_TEMPLATE, &tmpl, &tlen, &err))
        return al_cli_fail(&err);
    ao.template_text = tmpl;
    char home[AL_LIMIT_PATH];
    al_cli_home(home, sizeof home);
    struct al_repo *repo = NULL;
    struct al_rag *r = NULL;
    struct al_engine_model *em = NULL, *gm = NULL;
    struct al_rag_model gmodel;
    struct al_rag_answer a = {0};
    struct al_engine_model_params gp = al_engine_model_params_default();
    gp.threads = threads;
    int st = al_cli_open_repo(false, &repo);
    if (st)
        goto out;
    enum al_rc rc = al_rag_open(home, argv[optind], false, &r, &err);
    if (!rc && ao.query.mode != AL_RAG_BM25)
        rc = al_rag_load_embedder(r, repo, threads, &em, &err);
    if (!rc && rerank)
        rc = al_rag_load_reranker(repo, rerank, threads, &ao.query.reranker, &err);
    if (!rc)
        rc = al_rag_resolve_model(repo, model, &gmodel, &err);
    if (!rc)
        rc = al_engine_model_load(gmodel.path, gmodel.digest, &gp, &gm, &err);
    if (!rc)
        rc = al_rag_ask(r, em, gm, argv[optind + 1], &ao, &a, &err);
    if (rc) {
        st = al_cli_fail(&err);
        goto out;
    }
    if (json) {
        st = print_json(&a);
    } else {
        printf("%s\n", a.text);
        print_sources(&a);
    }
out:
    al_rag_answer_release(&a);
    al_engine_model_free(gm);
    al_engine_model_free(ao.query.reranker);
    al_engine_model_free(em);
    al_rag_free(r);
    al_repo_free(repo);
    free(tmpl);
    return st;
}
