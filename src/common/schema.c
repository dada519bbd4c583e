//  schema: versioned SQLite migrations (see schema.h).

#include <stdio.h>
#include "meshcc/schema.h"

static int
s_exec (sqlite3 *db, const char *sql)
{
    return sqlite3_exec (db, sql, NULL, NULL, NULL) == SQLITE_OK? 0: -1;
}

int
schema_migrate (sqlite3 *db, const char *db_path, const char *const migrations [],
                int target, char *err, size_t err_size)
{
    if (s_exec (db, "BEGIN IMMEDIATE")) {
        snprintf (err, err_size, "cannot lock %s: %s", db_path, sqlite3_errmsg (db));
        return -1;
    }
    sqlite3_stmt *stmt;
    int version = -1;
    if (sqlite3_prepare_v2 (db, "PRAGMA user_version", -1, &stmt, NULL) == SQLITE_OK) {
        if (sqlite3_step (stmt) == SQLITE_ROW)
            version = sqlite3_column_int (stmt, 0);
        sqlite3_finalize (stmt);
    }
    if (version < 0 || version > target) {
        if (version < 0)
            snprintf (err, err_size, "cannot read schema version of %s: %s",
                      db_path, sqlite3_errmsg (db));
        else
            snprintf (err, err_size, "%s has schema version %d, newer than this meshcc's (%d)",
                      db_path, version, target);
        s_exec (db, "ROLLBACK");
        return -1;
    }
    for (; version < target; version++) {
        char bump [64];
        snprintf (bump, sizeof bump, "PRAGMA user_version = %d;", version + 1);
        if (s_exec (db, migrations [version]) || s_exec (db, bump)) {
            snprintf (err, err_size, "cannot migrate %s to schema version %d: %s",
                      db_path, version + 1, sqlite3_errmsg (db));
            s_exec (db, "ROLLBACK");
            return -1;
        }
    }
    if (s_exec (db, "COMMIT")) {
        snprintf (err, err_size, "cannot commit %s: %s", db_path, sqlite3_errmsg (db));
        s_exec (db, "ROLLBACK");
        return -1;
    }
    return 0;
}
