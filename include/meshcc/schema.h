//  schema: versioned migrations of an SQLite database (PRAGMA user_version),
//  shared by every database of meshcc (node state, blob index, hash cache).
//  Owns the migration procedure only; each module owns its list of steps.

#ifndef MESHCC_SCHEMA_H_INCLUDED
#define MESHCC_SCHEMA_H_INCLUDED

#include <sqlite3.h>
#include <stddef.h>

//  Brings `db` to schema version `target` by running migrations[v] for
//  every version v from the current one up (migrations[v] takes the
//  schema from v to v + 1; append, never edit). The version is read inside
//  the write transaction, so two processes opening a fresh database at once
//  do not both create it, and the whole migration commits with the version
//  bump. A database newer than `target` is refused. Returns 0, or -1 with a
//  message naming `db_path` in err.
int schema_migrate (sqlite3 *db, const char *db_path, const char *const migrations [],
                    int target, char *err, size_t err_size);

#endif
