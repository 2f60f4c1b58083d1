/* index_int.h: private to src/index: the handle's layout, shared by its files. */
#ifndef AL_INDEX_INDEX_INT_H
#define AL_INDEX_INDEX_INT_H

#include <sqlite3.h>

#include "core/time.h"
#include "index/index.h"

struct al_index {
    sqlite3 *db;
    char path[AL_LIMIT_PATH];
    int depth; /* open transactions started through al_index_begin */
    bool read_only;
};

enum al_rc al_index__sqlerr(struct al_index *ix, struct al_err *err, const char *what);
/* Copies column i as text into out[size] ("" for NULL). */
void al_index__col(sqlite3_stmt *st, int i, char *out, size_t size);

#endif
