/* pickle.c: the pickle opcode walker. Nothing is executed and nothing is
 * imported: the stream is read opcode by opcode (protocols 0 to 5) while a
 * model of the unpickler's stack, marks and memo keeps, for each value, only
 * what names a global: a string's place in the stream, or the module and
 * name of an import. That is enough to name what STACK_GLOBAL imports and
 * what REDUCE, NEWOBJ and OBJ call, even through the memo. */
#include <stdlib.h>
#include <string.h>

#include "scan/scan_int.h"

enum arg { A_NONE, A_U1, A_U2, A_U4, A_U8, A_LINE, A_LINE2, A_LEN1, A_LEN4, A_LEN8 };

struct op {
    const char *name; /* NULL: not an opcode */
    enum arg arg;
};

/* Every opcode of protocols 0 to 5 (Lib/pickletools.py) and its argument. */
static const struct op ops[256] = {
    ['('] = {"MARK", A_NONE}, ['.'] = {"STOP", A_NONE}, ['0'] = {"POP", A_NONE},
    ['1'] = {"POP_MARK", A_NONE}, ['2'] = {"DUP", A_NONE}, ['F'] = {"FLOAT", A_LINE},
    ['I'] = {"INT", A_LINE}, ['J'] = {"BININT", A_U4}, ['K'] = {"BININT1", A_U1},
    ['L'] = {"LONG", A_LINE}, ['M'] = {"BININT2", A_U2}, ['N'] = {"NONE", A_NONE},
    ['P'] = {"PERSID", A_LINE}, ['Q'] = {"BINPERSID", A_NONE}, ['R'] = {"REDUCE", A_NONE},
    ['S'] = {"STRING", A_LINE}, ['T'] = {"BINSTRING", A_LEN4}, ['U'] = {"SHORT_BINSTRING", A_LEN1},
    ['V'] = {"UNICODE", A_LINE}, ['X'] = {"BINUNICODE", A_LEN4}, ['a'] = {"APPEND", A_NONE},
    ['b'] = {"BUILD", A_NONE}, ['c'] = {"GLOBAL", A_LINE2}, ['d'] = {"DICT", A_NONE},
    ['}'] = {"EMPTY_DICT", A_NONE}, ['e'] = {"APPENDS", A_NONE}, ['g'] = {"GET", A_LINE},
    ['h'] = {"BINGET", A_U1}, ['i'] = {"INST", A_LINE2}, ['j'] = {"LONG_BINGET", A_U4},
    ['l'] = {"LIST", A_NONE}, [']'] = {"EMPTY_LIST", A_NONE}, ['o'] = {"OBJ", A_NONE},
    ['p'] = {"PUT", A_LINE}, ['q'] = {"BINPUT", A_U1}, ['r'] = {"LONG_BINPUT", A_U4},
    ['s'] = {"SETITEM", A_NONE}, ['t'] = {"TUPLE", A_NONE}, [')'] = {"EMPTY_TUPLE", A_NONE},
    ['u'] = {"SETITEMS", A_NONE}, ['G'] = {"BINFLOAT", A_U8},
    [0x80] = {"PROTO", A_U1}, [0x81] = {"NEWOBJ", A_NONE}, [0x82] = {"EXT1", A_U1},
    [0x83] = {"EXT2", A_U2}, [0x84] = {"EXT4", A_U4}, [0x85] = {"TUPLE1", A_NONE},
    [0x86] = {"TUPLE2", A_NONE}, [0x87] = {"TUPLE3", A_NONE}, [0x88] = {"NEWTRUE", A_NONE},
    [0x89] = {"NEWFALSE", A_NONE}, [0x8a] = {"LONG1", A_LEN1}, [0x8b] = {"LONG4", A_LEN4},
    ['B'] = {"BINBYTES", A_LEN4}, ['C'] = {"SHORT_BINBYTES", A_LEN1},
    [0x8c] = {"SHORT_BINUNICODE", A_LEN1}, [0x8d] = {"BINUNICODE8", A_LEN8},
    [0x8e] = {"BINBYTES8", A_LEN8}, [0x8f] = {"EMPTY_SET", A_NONE}, [0x90] = {"ADDITEMS", A_NONE},
    [0x91] = {"FROZENSET", A_NONE}, [0x92] = {"NEWOBJ_EX", A_NONE}, [0x93] = {"STACK_GLOBAL", A_NONE},
    [0x94] = {"MEMOIZE", A_NONE}, [0x95] = {"FRAME", A_U8},
    [0x96] = {"BYTEARRAY8", A_LEN8}, [0x97] = {"NEXT_BUFFER", A_NONE}, [0x98] = {"READONLY_BUFFER", A_NONE},
};

/* What the model keeps of a value. Offsets fit: the stream is capped at
 * AL_LIMIT_PICKLE_STREAM (1 GiB). */
enum vkind { V_OTHER, V_STR, V_GLOBAL };
struct val {
    uint8_t kind;
    uint8_t unsafe;           /* V_GLOBAL: not on the safe list */
    uint32_t a_off, a_len;    /* V_STR: the text; V_GLOBAL: the module */
    uint32_t b_off, b_len;    /* V_GLOBAL: the name */
};

struct walker {
    const uint8_t *d;
    size_t len;
    const char *member;
    struct al_scan_report *r;
    struct val *stack;
    size_t n, cap;
    size_t *marks;
    size_t n_marks, cap_marks;
    struct val *memo;
    size_t memo_cap;
    uint8_t *memo_set;
    size_t memo_next; /* MEMOIZE's next index: the memo's size */
    int failed;       /* a malformed stream: stop */
    int quiet;        /* past the first pickle: a malformed stream is not a finding */
};

/* ---- the safe list and the known dangers ---- */

/* Imports that rebuild tensors, storages and arrays and nothing else; what
 * torch.load(weights_only=True) and numpy's array pickles need. */
static const char *const safe_globals[] = {
    "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
    "torch._utils._rebuild_qtensor", "torch._utils._rebuild_sparse_tensor",
    "torch._utils._rebuild_meta_tensor_no_storage", "torch._tensor._rebuild_from_type_v2",
    "torch.FloatStorage", "torch.DoubleStorage", "torch.HalfStorage", "torch.BFloat16Storage",
    "torch.LongStorage", "torch.IntStorage", "torch.ShortStorage", "torch.CharStorage", "torch.ByteStorage",
    "torch.BoolStorage", "torch.ComplexFloatStorage", "torch.ComplexDoubleStorage", "torch.QInt8Storage",
    "torch.QUInt8Storage", "torch.QInt32Storage", "torch.QUInt4x2Storage", "torch.QUInt2x4Storage",
    "torch.storage.UntypedStorage", "torch.storage.TypedStorage", "torch.Size", "torch.device",
    "torch.float32", "torch.float16", "torch.bfloat16", "torch.float64", "torch.int64", "torch.int32",
    "torch.int16", "torch.int8", "torch.uint8", "torch.bool",
    "collections.OrderedDict",
    "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.dtype", "numpy.ndarray",
    "_codecs.encode", "builtins.set", "builtins.frozenset", "builtins.bytearray", "builtins.slice",
    "builtins.complex", "__builtin__.set", "__builtin__.frozenset",
};

/* Modules known to run code, reach the system or the network, or load more
 * code; a module or any submodule of it. */
static const struct {
    const char *module, *why;
} bad_modules[] = {
    {"os", "runs commands and touches files"}, {"posix", "runs commands and touches files"},
    {"nt", "runs commands and touches files"}, {"subprocess", "runs commands"}, {"pty", "runs commands"},
    {"commands", "runs commands"}, {"popen2", "runs commands"}, {"runpy", "runs Python modules"},
    {"webbrowser", "opens URLs and runs a browser"}, {"socket", "opens network connections"},
    {"shutil", "copies and removes files"}, {"sys", "reaches the interpreter"},
    {"importlib", "imports any module"}, {"pickle", "loads more pickles"}, {"_pickle", "loads more pickles"},
    {"cPickle", "loads more pickles"}, {"marshal", "loads code objects"}, {"code", "runs Python code"},
    {"codeop", "compiles Python code"}, {"ctypes", "calls native code"},
    {"multiprocessing", "starts processes"}, {"asyncio", "starts processes and connections"},
    {"urllib", "opens URLs"}, {"requests", "opens URLs"}, {"http", "opens network connections"},
    {"ftplib", "opens network connections"}, {"telnetlib", "opens network connections"},
    {"smtplib", "opens network connections"}, {"pydoc", "imports any module"}, {"timeit", "runs Python code"},
    {"pdb", "runs Python code"}, {"bdb", "runs Python code"}, {"operator", "reaches any attribute"},
    {"functools", "builds calls of other functions"}, {"types", "builds code and functions"},
    {"dill", "loads more pickles"}, {"shelve", "loads more pickles"}, {"torch.hub", "downloads and runs code"},
    {"torch.storage._load_from_bytes", "loads another checkpoint"},
};

/* builtins that evaluate code or reach any object. */
static const char *const bad_builtins[] = {
    "eval", "exec", "execfile", "compile", "open", "__import__", "getattr", "setattr", "delattr",
    "globals", "locals", "vars", "input", "breakpoint", "apply", "memoryview",
};

static int module_is(const char *mod, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(mod, prefix, n) == 0 && (mod[n] == '\0' || mod[n] == '.');
}

/* NULL when module.name is safe; else why it is dangerous. */
static const char *judge(const char *mod, const char *name, const char *full)
{
    for (size_t i = 0; i < sizeof safe_globals / sizeof safe_globals[0]; i++)
        if (strcmp(full, safe_globals[i]) == 0)
            return NULL;
    if (strcmp(mod, "builtins") == 0 || strcmp(mod, "__builtin__") == 0)
        for (size_t i = 0; i < sizeof bad_builtins / sizeof bad_builtins[0]; i++)
            if (strcmp(name, bad_builtins[i]) == 0)
                return "evaluates code or reaches any object";
    for (size_t i = 0; i < sizeof bad_modules / sizeof bad_modules[0]; i++)
        if (module_is(mod, bad_modules[i].module) || module_is(full, bad_modules[i].module))
            return bad_modules[i].why;
    return "not on the safe list";
}

/* module.name of a V_GLOBAL, printable, into full; mod and name too. */
static void global_name(const struct walker *w, const struct val *v, char *mod, char *name, char *full,
                        size_t size)
{
    al_scan__printable(mod, size / 2, w->d + v->a_off, v->a_len);
    al_scan__printable(name, size / 2, w->d + v->b_off, v->b_len);
    snprintf(full, size, "%s.%s", mod, name);
}

/* ---- the model of the unpickler ---- */

static void malformed(struct walker *w, size_t at, const char *opname, const char *why)
{
    if (!w->failed && !w->quiet)
        al_scan__add(w->r, AL_SCAN_DANGEROUS, w->member, at, opname, NULL, "malformed pickle: %s", why);
    w->failed = 1;
}

static void push(struct walker *w, struct val v, size_t at, const char *opname)
{
    if (w->n + w->n_marks >= AL_LIMIT_PICKLE_STACK) {
        char why[128];
        snprintf(why, sizeof why, "over AL_LIMIT_PICKLE_STACK (%u values)", AL_LIMIT_PICKLE_STACK);
        malformed(w, at, opname, why);
        return;
    }
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        struct val *s = realloc(w->stack, cap * sizeof *s);
        if (!s) {
            malformed(w, at, opname, "out of memory for the stack");
            return;
        }
        w->stack = s, w->cap = cap;
    }
    w->stack[w->n++] = v;
}

static void push_other(struct walker *w, size_t at, const char *opname)
{
    push(w, (struct val){.kind = V_OTHER}, at, opname);
}

/* The floor the stack may not be popped below: the last mark. */
static size_t floor_of(const struct walker *w)
{
    return w->n_marks ? w->marks[w->n_marks - 1] : 0;
}

/* Pops k values; *out (when not NULL) gets the deepest of them. */
static int pop(struct walker *w, size_t k, struct val *deepest, size_t at, const char *opname)
{
    if (w->n < k || w->n - k < floor_of(w)) {
        malformed(w, at, opname, "stack underflow");
        return -1;
    }
    if (deepest && k)
        *deepest = w->stack[w->n - k];
    w->n -= k;
    return 0;
}

/* Pops to the last mark and the mark; *first gets the first value above it. */
static int pop_mark(struct walker *w, struct val *first, size_t at, const char *opname)
{
    if (!w->n_marks) {
        malformed(w, at, opname, "no MARK to pop to");
        return -1;
    }
    size_t m = w->marks[--w->n_marks];
    if (first)
        *first = m < w->n ? w->stack[m] : (struct val){.kind = V_OTHER};
    w->n = m;
    return 0;
}

static void mark(struct walker *w, size_t at)
{
    if (w->n + w->n_marks >= AL_LIMIT_PICKLE_STACK) {
        malformed(w, at, "MARK", "over AL_LIMIT_PICKLE_STACK");
        return;
    }
    if (w->n_marks == w->cap_marks) {
        size_t cap = w->cap_marks ? w->cap_marks * 2 : 16;
        size_t *m = realloc(w->marks, cap * sizeof *m);
        if (!m) {
            malformed(w, at, "MARK", "out of memory for the marks");
            return;
        }
        w->marks = m, w->cap_marks = cap;
    }
    w->marks[w->n_marks++] = w->n;
}

static void memo_put(struct walker *w, uint64_t idx, size_t at, const char *opname)
{
    if (w->n <= floor_of(w)) {
        malformed(w, at, opname, "nothing on the stack to memoize");
        return;
    }
    if (idx >= AL_LIMIT_PICKLE_MEMO) {
        char why[128];
        snprintf(why, sizeof why, "memo index %llu is over AL_LIMIT_PICKLE_MEMO (%u)", (unsigned long long)idx,
                 AL_LIMIT_PICKLE_MEMO);
        malformed(w, at, opname, why);
        return;
    }
    if (idx >= w->memo_cap) {
        size_t cap = w->memo_cap ? w->memo_cap : 64;
        while (cap <= idx)
            cap *= 2;
        struct val *m = realloc(w->memo, cap * sizeof *m);
        uint8_t *g = m ? realloc(w->memo_set, cap) : NULL;
        if (m)
            w->memo = m;
        if (!g) {
            malformed(w, at, opname, "out of memory for the memo");
            return;
        }
        memset(g + w->memo_cap, 0, cap - w->memo_cap);
        w->memo_set = g, w->memo_cap = cap;
    }
    w->memo[idx] = w->stack[w->n - 1];
    w->memo_set[idx] = 1;
    if (idx >= w->memo_next)
        w->memo_next = idx + 1;
}

static void memo_get(struct walker *w, uint64_t idx, size_t at, const char *opname)
{
    if (idx >= w->memo_cap || !w->memo_set[idx]) {
        char why[96];
        snprintf(why, sizeof why, "memo index %llu was never set", (unsigned long long)idx);
        malformed(w, at, opname, why);
        return;
    }
    push(w, w->memo[idx], at, opname);
}

/* An import: a finding unless it is on the safe list; pushes the global. */
static void import(struct walker *w, struct val g, size_t at, const char *opname)
{
    char mod[256], name[256], full[512];
    global_name(w, &g, mod, name, full, sizeof full);
    const char *why = judge(mod, name, full);
    if (why) {
        g.unsafe = 1;
        al_scan__add(w->r, AL_SCAN_DANGEROUS, w->member, at, opname, NULL, "imports %s: %s", full, why);
    }
    push(w, g, at, opname);
}

/* A call of callee (REDUCE, NEWOBJ, OBJ, INST): named when callee is unsafe. */
static void call(struct walker *w, const struct val *callee, size_t at, const char *opname)
{
    if (callee->kind != V_GLOBAL || !callee->unsafe)
        return;
    char mod[256], name[256], full[512];
    global_name(w, callee, mod, name, full, sizeof full);
    al_scan__add(w->r, AL_SCAN_DANGEROUS, w->member, at, opname, NULL, "calls %s", full);
}

/* ---- reading the stream ---- */

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* The line at pos (without its '\n'); false when no newline follows. */
static int line(const struct walker *w, size_t pos, size_t *end)
{
    const uint8_t *nl = memchr(w->d + pos, '\n', w->len - pos);
    if (!nl)
        return 0;
    *end = (size_t)(nl - w->d);
    return 1;
}

/* A string value at [off, off+n), proto 0's quotes stripped. */
static struct val str(const struct walker *w, size_t off, size_t n, int quoted)
{
    if (quoted && n >= 2 && (w->d[off] == '\'' || w->d[off] == '"') && w->d[off + n - 1] == w->d[off])
        off++, n -= 2;
    return (struct val){.kind = V_STR, .a_off = (uint32_t)off, .a_len = (uint32_t)n};
}

/* Reads op's argument at pos (just past the opcode). Sets *arg (the number,
 * or the length of the data), *data (where the data or line starts) and
 * *next; returns -1 at a truncated stream. */
static int read_arg(struct walker *w, const struct op *o, size_t pos, uint64_t *arg, size_t *data, size_t *next)
{
    static const int width[] = {[A_U1] = 1, [A_U2] = 2, [A_U4] = 4, [A_U8] = 8,
                                [A_LEN1] = 1, [A_LEN4] = 4, [A_LEN8] = 8};
    size_t left = w->len - pos, end, end2;
    *data = pos;
    switch (o->arg) {
    case A_NONE:
        *next = pos;
        return 0;
    case A_LINE:
        if (!line(w, pos, &end))
            return -1;
        *arg = end - pos, *next = end + 1;
        return 0;
    case A_LINE2:
        if (!line(w, pos, &end) || !line(w, end + 1, &end2))
            return -1;
        *arg = end - pos, *next = end2 + 1;
        return 0;
    default:
        break;
    }
    int k = width[o->arg];
    if (left < (size_t)k)
        return -1;
    *arg = le(w->d + pos, k);
    *next = pos + k;
    if (o->arg == A_LEN1 || o->arg == A_LEN4 || o->arg == A_LEN8) {
        if (*arg > w->len - *next)
            return -1;
        *data = *next;
        *next += (size_t)*arg;
    }
    return 0;
}

/* A decimal memo index on a PUT or GET line. */
static int decimal(const struct walker *w, size_t off, uint64_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 19)
        return -1;
    for (uint64_t i = 0; i < n; i++) {
        uint8_t c = w->d[off + i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (uint64_t)(c - '0');
    }
    *out = v;
    return 0;
}

/* The ops that take values off the stack and maybe call something. */
static void step_build(struct walker *w, uint8_t c, size_t at, const char *name)
{
    struct val v = {.kind = V_OTHER};
    switch (c) {
    case 'R': /* REDUCE: callable, args */
    case 0x81: /* NEWOBJ: cls, args */
        if (pop(w, 2, &v, at, name) == 0)
            call(w, &v, at, name), push_other(w, at, name);
        break;
    case 0x92: /* NEWOBJ_EX: cls, args, kwargs */
        if (pop(w, 3, &v, at, name) == 0)
            call(w, &v, at, name), push_other(w, at, name);
        break;
    case 'o': /* OBJ: MARK cls args... */
        if (pop_mark(w, &v, at, name) == 0)
            call(w, &v, at, name), push_other(w, at, name);
        break;
    case 'Q': /* BINPERSID */
        if (pop(w, 1, NULL, at, name) == 0)
            push_other(w, at, name);
        break;
    case 'a': case 'b':
        pop(w, 1, NULL, at, name);
        break;
    case 's':
        pop(w, 2, NULL, at, name);
        break;
    case 'e': case 'u': case 0x90:
        pop_mark(w, NULL, at, name);
        break;
    case 'd': case 'l': case 't': case 0x91:
        if (pop_mark(w, NULL, at, name) == 0)
            push_other(w, at, name);
        break;
    case 0x85: case 0x86: case 0x87:
        if (pop(w, (size_t)(c - 0x84), NULL, at, name) == 0)
            push_other(w, at, name);
        break;
    case '.':
        pop(w, 1, NULL, at, name);
        break;
    case '0': /* POP: a value above the mark, else the mark */
        if (w->n > floor_of(w))
            w->n--;
        else if (w->n_marks)
            w->n_marks--;
        else
            malformed(w, at, name, "stack underflow");
        break;
    case '1':
        pop_mark(w, NULL, at, name);
        break;
    case '2':
        if (w->n > floor_of(w))
            push(w, w->stack[w->n - 1], at, name);
        else
            malformed(w, at, name, "stack underflow");
        break;
    default:
        push_other(w, at, name);
        break;
    }
}

/* The ops that name globals, strings and memo slots. Returns 1 when c is
 * not one of them. */
static int step_names(struct walker *w, uint8_t c, size_t at, const char *name, uint64_t arg, size_t data,
                      size_t next)
{
    struct val m, n;
    uint64_t idx;
    switch (c) {
    case 'c': /* GLOBAL module\nname\n */
    case 'i': /* INST module\nname\n, then MARK args... */
        m = str(w, data, (size_t)arg, 0);
        n = str(w, data + (size_t)arg + 1, next - 1 - (data + (size_t)arg + 1), 0);
        import(w, (struct val){.kind = V_GLOBAL, .a_off = m.a_off, .a_len = m.a_len, .b_off = n.a_off,
                               .b_len = n.a_len}, at, name);
        if (c == 'i' && !w->failed) {
            struct val g = w->stack[--w->n];
            if (pop_mark(w, NULL, at, name) == 0)
                call(w, &g, at, name), push_other(w, at, name);
        }
        return 0;
    case 0x93: /* STACK_GLOBAL: module, name */
        if (pop(w, 2, &m, at, name))
            return 0;
        n = w->stack[w->n + 1];
        if (m.kind == V_STR && n.kind == V_STR) {
            import(w, (struct val){.kind = V_GLOBAL, .a_off = m.a_off, .a_len = m.a_len, .b_off = n.a_off,
                                   .b_len = n.a_len}, at, name);
        } else {
            al_scan__add(w->r, AL_SCAN_DANGEROUS, w->member, at, name, NULL,
                         "imports a global whose module or name is not a string the scanner can follow");
            push(w, (struct val){.kind = V_OTHER}, at, name);
        }
        return 0;
    case 'S':
        push(w, str(w, data, (size_t)arg, 1), at, name);
        return 0;
    case 'V': case 'T': case 'U': case 'X': case 0x8c: case 0x8d:
        push(w, str(w, data, (size_t)arg, 0), at, name);
        return 0;
    case 'g': case 'p':
        if (decimal(w, data, arg, &idx)) {
            malformed(w, at, name, "the memo index is not a decimal number");
            return 0;
        }
        if (c == 'g')
            memo_get(w, idx, at, name);
        else
            memo_put(w, idx, at, name);
        return 0;
    case 'h': case 'j':
        memo_get(w, arg, at, name);
        return 0;
    case 'q': case 'r':
        memo_put(w, arg, at, name);
        return 0;
    case 0x94:
        memo_put(w, w->memo_next, at, name);
        return 0;
    case 0x80:
        if (arg > 5) {
            char why[64];
            snprintf(why, sizeof why, "unsupported protocol %u", (unsigned)arg);
            malformed(w, at, name, why);
        }
        return 0;
    case 0x95:
        if (arg > w->len - next)
            malformed(w, at, name, "truncated: the frame runs past the end of the stream");
        return 0;
    case '(':
        mark(w, at);
        return 0;
    case 0x98:
        return 0;
    case 0x82: case 0x83: case 0x84:
        al_scan__add(w->r, AL_SCAN_WARN, w->member, at, name, NULL,
                     "extension code %llu: a global from the copyreg registry, which the scanner cannot see",
                     (unsigned long long)arg);
        push_other(w, at, name);
        return 0;
    default:
        return 1;
    }
}

/* Applies the opcode at `at`; *pos gets the next one. Returns 1 at STOP, 0 to
 * go on, -1 when the stream is malformed (reported). */
static int step(struct walker *w, size_t at, size_t *pos, size_t full_len)
{
    uint8_t c = w->d[at];
    const struct op *o = &ops[c];
    if (!o->name) {
        char why[64];
        snprintf(why, sizeof why, "unknown opcode 0x%02x", c);
        malformed(w, at, NULL, why);
        return -1;
    }
    uint64_t arg = 0;
    size_t data = 0, next = 0;
    if (read_arg(w, o, at + 1, &arg, &data, &next)) {
        malformed(w, at, o->name,
                  full_len > w->len ? "the stream is over AL_LIMIT_PICKLE_STREAM (1 GiB): not read past it"
                                    : "truncated: the stream ends inside the opcode's argument");
        return -1;
    }
    *pos = next;
    if (step_names(w, c, at, o->name, arg, data, next))
        step_build(w, c, at, o->name);
    if (w->failed)
        return -1;
    return c == '.' ? 1 : 0;
}

void al_scan_pickle(const uint8_t *data, size_t len, const char *member, struct al_scan_report *r)
{
    if (strcmp(r->kind, "data") == 0)
        snprintf(r->kind, sizeof r->kind, "pickle");
    struct walker w = {.d = data, .len = len > AL_LIMIT_PICKLE_STREAM ? AL_LIMIT_PICKLE_STREAM : len,
                       .member = member, .r = r};
    if (w.len == 0 || !ops[data[0]].name) {
        /* The unpickler stops at the first byte: nothing runs. */
        if (w.len)
            al_scan__add(r, AL_SCAN_WARN, member, 0, NULL, NULL,
                         "not a pickle stream: the first byte 0x%02x is not an opcode", data[0]);
        else
            al_scan__add(r, AL_SCAN_WARN, member, 0, NULL, NULL, "not a pickle stream: it is empty");
        return;
    }
    size_t pos = 0;
    int n_pickles = 0;
    /* torch's legacy format is several pickles in a row, then raw tensor
     * data: every pickle is walked; after the first, a stream that stops
     * parsing is taken as that data, not reported (its imports still are). */
    while (pos < w.len && !w.failed) {
        if (n_pickles > 0 && !ops[data[pos]].name)
            break;
        /* The memo is kept: one Unpickler's load() called again keeps its
         * memo, so a later pickle may name strings memoized by an earlier
         * one. Where each pickle has its own, the unpickler fails at such a
         * GET before the import runs; naming the import anyway errs safe. */
        w.n = 0, w.n_marks = 0, w.quiet = n_pickles > 0;
        int st = 0;
        while (st == 0 && pos < w.len)
            st = step(&w, pos, &pos, len);
        if (st == 0 && n_pickles == 0)
            malformed(&w, pos, NULL,
                      len > w.len ? "the stream is over AL_LIMIT_PICKLE_STREAM (1 GiB): not read past it"
                                  : "truncated: the stream ends before STOP");
        if (st != 1)
            break;
        n_pickles++;
    }
    free(w.stack);
    free(w.marks);
    free(w.memo);
    free(w.memo_set);
}
