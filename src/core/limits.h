/*
 * limits.h: every cap on external input, in one place. An input over its cap
 * is refused with a message that names the cap (AL_ERR_LIMIT).
 */
#ifndef AL_CORE_LIMITS_H
#define AL_CORE_LIMITS_H

#define AL_LIMIT_PATH            4096u            /* a file system path */
#define AL_LIMIT_NAME            128u             /* a model name */
#define AL_LIMIT_TAG             128u             /* a tag */
#define AL_LIMIT_REF             (AL_LIMIT_NAME + AL_LIMIT_TAG + 80u)
#define AL_LIMIT_MANIFEST        (1u << 20)       /* an OCI manifest or config */
#define AL_LIMIT_CARD            (1u << 20)       /* a model card JSON */
#define AL_LIMIT_INDEX_JSON      (64u << 20)      /* the store's index.json */
#define AL_LIMIT_FILES_PER_MODEL 256u             /* files in one model version */
#define AL_LIMIT_FILE_NAME       255u             /* one file name inside a version */
#define AL_LIMIT_JSON_DEPTH      64u
#define AL_LIMIT_GGUF_KV         65536            /* key/value pairs in a GGUF header */
#define AL_LIMIT_GGUF_TENSORS    1000000          /* tensors in a GGUF file */
#define AL_LIMIT_EVENT_DETAIL    (256u << 10)     /* one event's JSON detail */

#endif
