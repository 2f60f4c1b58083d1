/*
 * airlock-llcheck: llama.cpp's own tensor check (--check-tensors) on a GGUF,
 * with its log written synchronously.
 *
 *   airlock-llcheck MODEL
 *
 * Exit 0 when llama.cpp loads the model with check_tensors on, 1 when it
 * refuses it, 2 on usage errors. Every llama.cpp log line goes to stderr
 * before the call that made it returns. llama-completion cannot be used for
 * this in tests: its logger is an asynchronous thread that is never joined
 * (common/log.cpp leaks it on purpose), so the line naming the bad tensor is
 * sometimes lost when the process exits right after the failed load.
 */
#include <stdio.h>
#include <string.h>

#include "llama.h"

static void log_now(enum ggml_log_level level, const char *text, void *ud)
{
    (void)level;
    (void)ud;
    fputs(text, stderr);
}

int main(int argc, char **argv)
{
    if (argc != 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fprintf(argc == 2 ? stdout : stderr,
                "usage: airlock-llcheck MODEL\n"
                "Loads MODEL with llama.cpp's tensor check on (as --check-tensors does).\n"
                "Exit 0: accepted; 1: refused (the log names the tensor); 2: usage.\n");
        return argc == 2 ? 0 : 2;
    }
    llama_log_set(log_now, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.check_tensors = true;
    mp.n_gpu_layers = 0;
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    int rc = model ? 0 : 1;
    if (model)
        llama_model_free(model);
    llama_backend_free();
    fflush(stderr);
    return rc;
}
