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
#define AL_LIMIT_CARRIED_FILE    (64u << 20)      /* a source version's file that quantize carries over */
#define AL_LIMIT_JSON_DEPTH      64u
#define AL_LIMIT_GGUF_KV         4096             /* key/value pairs in a GGUF header (ggml checks duplicates pairwise) */
#define AL_LIMIT_GGUF_TENSORS    16384            /* tensors in a GGUF file (likewise quadratic in ggml) */
#define AL_LIMIT_EVENT_DETAIL    (256u << 10)     /* one event's JSON detail */
#define AL_LIMIT_TIME_TEXT       39u              /* an ISO 8601 date or time (a manifest field holds 39) */

/* minisign signatures and keys (src/sign/minisign.h). The comment caps are
 * minisign's own (COMMENTMAXBYTES, TRUSTEDCOMMENTMAXBYTES less the prefixes),
 * so what airlock writes minisign reads and the reverse. The scrypt caps are
 * minisign's defaults (libsodium's "sensitive" cost): a key file asking for
 * more could make loading it take unbounded memory and time. */
#define AL_LIMIT_MINISIGN_SIG_FILE   (16u << 10)      /* a .minisig file */
#define AL_LIMIT_MINISIGN_KEY_FILE   (4u << 10)       /* a minisign public or secret key file */
#define AL_LIMIT_MINISIGN_COMMENT    1003u            /* an untrusted comment */
#define AL_LIMIT_MINISIGN_TRUSTED    8173u            /* a trusted comment */
#define AL_LIMIT_MINISIGN_PASSWORD   1023u            /* a secret key's password */
#define AL_LIMIT_MINISIGN_KDF_OPS    (1ull << 25)     /* scrypt opslimit in a secret key */
#define AL_LIMIT_MINISIGN_KDF_MEM    (1ull << 30)     /* scrypt memlimit in a secret key */
#define AL_LIMIT_MINISIGN_LEGACY_MSG (64u << 20)      /* a file checked against a legacy "Ed" signature */
#define AL_LIMIT_PGP_SIG             (64u << 10)      /* an OpenPGP detached signature */
#define AL_LIMIT_PGP_KEY             (1u << 20)       /* an OpenPGP public key file to import */

/* inference (src/engine) */
#define AL_LIMIT_PROMPT_BYTES    (16u << 20)      /* one prompt or text to tokenize */
#define AL_LIMIT_PROMPT_TOKENS   262144           /* one tokenized prompt */
#define AL_LIMIT_SEQS            64               /* parallel sequences of one model */
#define AL_LIMIT_QUEUE           4096             /* requests waiting for a sequence */
#define AL_LIMIT_LORAS           8                /* LoRA adapters applied to one loaded model */
#define AL_LIMIT_FINETUNE_BYTES  (16u << 20)      /* training text of one 'airlock finetune', all files */
#define AL_LIMIT_FINETUNE_FILES  1000             /* files of its --data folder */
#define AL_LIMIT_FINETUNE_EPOCHS 1000             /* epochs of one run */
#define AL_LIMIT_FINETUNE_CTX    4096             /* tokens of one training window */
#define AL_LIMIT_STOP_STRINGS    16               /* stop strings of one request */
#define AL_LIMIT_STOP_LEN        256u             /* bytes of one stop string */
#define AL_LIMIT_GRAMMAR         (256u << 10)     /* a GBNF grammar */
#define AL_LIMIT_EMBED_INPUTS    2048             /* texts in one embeddings call or request (OpenAI's cap too) */
#define AL_LIMIT_RERANK_DOCS     1000             /* documents in one rerank call or request (Cohere's cap too) */
#define AL_LIMIT_RERANK_DOC_BYTES (64u << 10)     /* bytes of one document (or the query) of a rerank request */
#define AL_LIMIT_CHAT_MSGS       4096             /* messages in one conversation */
#define AL_LIMIT_TOOLS           128              /* tools (functions) offered in one request */
#define AL_LIMIT_TOOLS_BYTES     (256u << 10)     /* those tools, as JSON text */
#define AL_LIMIT_TOOL_NAME       64               /* a function's name (OpenAI's: [A-Za-z0-9_-]{1,64}) */
#define AL_LIMIT_TOP_PROBS       20               /* top log-probabilities reported per token */
#define AL_LIMIT_CHOICES         8                /* choices one completion may ask for ('n') */
#define AL_LIMIT_LOGIT_BIAS      1024             /* logit_bias entries of one request, and the tokens they bias */
#define AL_LIMIT_PROMPTS         16               /* prompts of one llama-server /completion request */
#define AL_LIMIT_INFILL_EXTRA    256              /* input_extra chunks (files) of one /infill request */
#define AL_LIMIT_INFILL_FILENAME 1024u            /* bytes of one input_extra chunk's filename */

/* benchmark and validation suites (src/suite, src/bench, src/loadgen) */
#define AL_LIMIT_SUITE_FILE      (16u << 20)      /* a suite, golden, recording or bench report JSON */
#define AL_LIMIT_SUITE_PROMPTS   1024             /* golden or bench prompts in a suite */
#define AL_LIMIT_GOLDEN_TOKENS   4096             /* tokens generated for one golden prompt */
#define AL_LIMIT_BENCH_REQUESTS  100000           /* requests in one benchmark run */
#define AL_LIMIT_HTTP_RESPONSE   (16u << 20)      /* one HTTP response body read by a client */

/* access and audit (src/access, src/audit) */
#define AL_LIMIT_APIKEYS         10000            /* API keys on record, revoked ones included */
#define AL_LIMIT_APIKEY_NAME     64u              /* an API key's name */
#define AL_LIMIT_APIKEY_LIST     512u             /* its scopes or model patterns, comma-separated */
#define AL_LIMIT_AUDIT_FIELD     256u             /* one string field of an audit record (longer: cut) */
#define AL_LIMIT_AUDIT_LORA      2048u            /* an audit record's lora field: AL_LIMIT_LORAS x name@digest*scale */
#define AL_LIMIT_AUDIT_TEXT      (64u << 10)      /* a captured prompt or response (longer: cut) */
#define AL_LIMIT_AUDIT_LINE      (1u << 20)       /* one line of an audit file, when read back */
#define AL_LIMIT_SCRUB_PATTERNS  64               /* extra PII patterns in the patterns file */
#define AL_LIMIT_SCRUB_FILE      (64u << 10)      /* the extra patterns file */

/* retrieval (src/rag) */
#define AL_LIMIT_RAG_NAME        64u              /* a collection name */
#define AL_LIMIT_RAG_DOC_BYTES   (64u << 20)      /* one document file */
#define AL_LIMIT_RAG_PDF_PAGES   20000            /* pages of one PDF */
#define AL_LIMIT_RAG_FILES       1000000u         /* files in one 'rag add' */
#define AL_LIMIT_RAG_DEPTH       64               /* directory depth walked by 'rag add' */
#define AL_LIMIT_RAG_CHUNK_TOKENS 8192            /* the chunk token budget */
#define AL_LIMIT_RAG_DOC_CHUNKS  65536            /* chunks of one document (held in memory with their vectors) */
#define AL_LIMIT_RAG_QUERY_BYTES (16u << 10)      /* one question */
#define AL_LIMIT_RAG_K           1000             /* hits asked for */
#define AL_LIMIT_RAG_TEMPLATE    (64u << 10)      /* a prompt template */
#define AL_LIMIT_RAG_TABLE_BYTES (1u << 30)       /* a chunk table to attach */

/* scanning artifacts for known dangers (src/scan) */
#define AL_LIMIT_PICKLE_STREAM   (1ull << 30)     /* bytes of one pickle stream walked (a plain file, mapped) */
#define AL_LIMIT_PICKLE_MEMBER   (256u << 20)     /* a .pkl member of a zip checkpoint, read into memory */
#define AL_LIMIT_PICKLE_STACK    (1u << 20)       /* values on the walker's stack, marks included */
#define AL_LIMIT_PICKLE_MEMO     (1u << 20)       /* memo slots (the highest index a PUT may name, plus one) */
#define AL_LIMIT_SCAN_FINDINGS   64u              /* findings kept per file (the rest are counted) */
#define AL_LIMIT_SCAN_ZIP_ENTRIES 65536u          /* members of a zip checkpoint looked at */
#define AL_LIMIT_CHAT_TEMPLATE   (64u << 10)      /* a GGUF chat template over this is a scan warning */
#define AL_LIMIT_SAFETENSORS_HEADER (100u << 20)  /* a safetensors JSON header (the format's own cap) */
#define AL_LIMIT_SAFETENSORS_TENSORS 262144u      /* tensors in one safetensors header */

#endif
