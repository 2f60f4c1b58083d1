/*
 * devices.c: the compute devices this build of llama.cpp offers (the CPU, and
 * a GPU where the build has a GPU backend and the machine a device), and
 * where a loaded model's layers run: for serve's log, bench's report and the
 * device-memory gauges of /metrics.
 */
#include <stdio.h>
#include <string.h>

#include <ggml-backend.h>

#include "engine/engine_int.h"

static const char *type_name(enum ggml_backend_dev_type t)
{
    switch (t) {
    case GGML_BACKEND_DEVICE_TYPE_CPU: return "cpu";
    case GGML_BACKEND_DEVICE_TYPE_GPU: return "gpu";
    case GGML_BACKEND_DEVICE_TYPE_IGPU: return "igpu";
    case GGML_BACKEND_DEVICE_TYPE_ACCEL: return "accel";
    default: return "other";
    }
}

int al_engine_devices(struct al_engine_device *out, int max)
{
    size_t n = ggml_backend_dev_count();
    int k = 0;
    for (size_t i = 0; i < n && k < max; i++) {
        ggml_backend_dev_t d = ggml_backend_dev_get(i);
        enum ggml_backend_dev_type t = ggml_backend_dev_type(d);
        struct al_engine_device *o = &out[k++];
        memset(o, 0, sizeof *o);
        snprintf(o->name, sizeof o->name, "%.*s", (int)sizeof o->name - 1, ggml_backend_dev_name(d));
        snprintf(o->description, sizeof o->description, "%.*s", (int)sizeof o->description - 1,
                 ggml_backend_dev_description(d));
        snprintf(o->type, sizeof o->type, "%s", type_name(t));
        /* llama.cpp offloads layers to GPU-type devices (llama_model_load) */
        o->offload = t == GGML_BACKEND_DEVICE_TYPE_GPU || t == GGML_BACKEND_DEVICE_TYPE_IGPU;
        size_t mem_free = 0, mem_total = 0;
        ggml_backend_dev_memory(d, &mem_free, &mem_total);
        o->mem_free = mem_free;
        o->mem_total = mem_total;
    }
    return k;
}

bool al_engine_model_on_vulkan(const struct al_engine_model *m)
{
    char line[256];
    return al_engine_model_placement(m, line, sizeof line) > 0 && strncmp(line, "Vulkan", 6) == 0;
}

int al_engine_model_placement(const struct al_engine_model *m, char *buf, size_t n)
{
    struct al_engine_device devs[8];
    int nd = al_engine_devices(devs, 8), first = -1, n_gpu = 0;
    for (int i = 0; i < nd; i++)
        if (devs[i].offload) {
            if (first < 0)
                first = i;
            n_gpu++;
        }
    int n_layer = llama_model_n_layer(m->model);
    /* llama.cpp puts the last n_gpu_layers repeating layers on the devices,
     * and the output layer too when n_gpu_layers exceeds their count. */
    int want = m->params.n_gpu_layers;
    int on_dev = want < 0 || want > n_layer ? n_layer : want;
    if (first < 0 || on_dev == 0) {
        snprintf(buf, n, "CPU: all %d layers%s", n_layer,
                 first < 0 ? "" : " (--gpu-layers 0)");
        return 0;
    }
    snprintf(buf, n, "%s (%s): %d of %d layers%s%s", devs[first].name, devs[first].description, on_dev, n_layer,
             want < 0 || want > n_layer ? " and the output"
             : want == n_layer          ? ", the output layer on the CPU"
                                        : ", the rest on the CPU",
             n_gpu > 1 ? ", split over every GPU device" : "");
    return on_dev;
}
