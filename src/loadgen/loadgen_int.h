/* loadgen_int.h: shared by the files of src/loadgen only (the one includer of curl.h). */
#ifndef AL_LOADGEN_INT_H
#define AL_LOADGEN_INT_H

#include <curl/curl.h>
#include <pthread.h>

#include "loadgen/loadgen.h"

/* curl_global_init, once per process. */
void al_loadgen_curl_init(void);

#endif
