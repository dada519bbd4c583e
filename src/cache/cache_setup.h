//  cache_setup: opens a cache database, serialising its set-up (open, WAL
//  switch, migrations) across the threads and processes that open it at
//  once. SQLite does not wait on its busy handler while a fresh database
//  is switched to WAL, so two stores opened together on a new directory
//  could fail with "database is locked" or "disk I/O error". A flock on
//  DB_PATH.setup held for the few milliseconds of set-up removes the race;
//  after set-up the busy timeout covers everything. Private to src/cache.

#ifndef MESHCC_CACHE_SETUP_H_INCLUDED
#define MESHCC_CACHE_SETUP_H_INCLUDED

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>
#include "meshcc/limits.h"
#include "meshcc/schema.h"

//  Returns a descriptor holding the set-up lock of `db_path`, or -1 if the
//  lock file cannot be opened (set-up then proceeds unserialised).
static inline int
cache_setup_lock (const char *db_path)
{
    char path [4096];
    if (snprintf (path, sizeof path, "%s.setup", db_path) >= (int) sizeof path)
        return -1;
    int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        while (flock (fd, LOCK_EX) && errno == EINTR)
            ;
    return fd;
}

//  Opens a cache database shared by threads and processes: under the
//  set-up lock, opens it, waits CACHE_DB_BUSY_MS for writers rather than
//  failing, switches to WAL with synchronous=NORMAL (a power cut may lose
//  the last rows, which are only recomputed or refetched, never corrupt
//  the file) and migrates it to `version`. Returns 0 with *db_p set, or -1
//  with a message in err (and *db_p to close with sqlite3_close, or NULL).
static inline int
cache_db_open (const char *db_path, const char *const migrations [], int version,
               sqlite3 **db_p, char *err, size_t err_size)
{
    int lock = cache_setup_lock (db_path);
    int rc = -1;
    if (sqlite3_open_v2 (db_path, db_p,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL)
        != SQLITE_OK)
        snprintf (err, err_size, "cannot open %s: %s", db_path,
                  *db_p? sqlite3_errmsg (*db_p): "out of memory");
    else {
        sqlite3_busy_timeout (*db_p, CACHE_DB_BUSY_MS);
        if (sqlite3_exec (*db_p, "PRAGMA journal_mode = WAL", NULL, NULL, NULL) != SQLITE_OK
        ||  sqlite3_exec (*db_p, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) != SQLITE_OK)
            snprintf (err, err_size, "cannot set up %s: %s", db_path, sqlite3_errmsg (*db_p));
        else
            rc = schema_migrate (*db_p, db_path, migrations, version, err, err_size);
    }
    if (lock >= 0)
        close (lock);       //  closing releases the flock
    return rc;
}

#endif
