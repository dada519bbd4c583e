//  hash_cache: content hashes of local files, keyed by what stat says.
//
//  A row is trusted when size, mtime (ns), inode and device all match the
//  caller's stat: the same test git's index and ccache use. Two cases make
//  it unsafe and are never cached:
//  - a file modified within HASH_CACHE_RACY_MS: a write may still be in
//    progress, or land within the file system's mtime granularity, so a
//    later change could leave the stat unchanged;
//  - a file whose stat changed while it was hashed: the hash belongs to
//    neither the old nor (surely) the new content.
//  Database errors on write are ignored: the cache is an optimisation and
//  the hash returned is right either way. In front of the table, each
//  object keeps the rows it read or wrote in memory (HASH_CACHE_MEMO_MAX,
//  then emptied), under the same test: a job lists the same headers as the
//  one before it, and a SQLite read transaction per header (locks, a page
//  lookup) was about 6 % of an origin's CPU per job.

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include "cache_setup.h"
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "meshcc/hash_cache.h"
#include "meshcc/limits.h"

#define HASH_CACHE_SCHEMA_VERSION 1
#define HASH_CACHE_MEMO_MAX 4096            //  ~200 bytes each: under 1 MB a worker

typedef struct {
    int64_t  size, mtime_ns;
    uint64_t ino, dev;
    uint8_t  hash [BLOB_HASH_SIZE];
} s_row_t;

struct _hash_cache_t {
    char *db_path;
    sqlite3 *db;
    sqlite3_stmt *lookup;
    sqlite3_stmt *upsert;
    zhashx_t *memo;                 //  path -> s_row_t: rows read or written
    uint64_t hits, misses;          //  lookups answered from / not from the table
};

//  Each entry migrates the schema from version (index) to (index + 1).
//  Append, never edit: caches in the field have run the old ones.
static const char *const s_migrations [HASH_CACHE_SCHEMA_VERSION] = {
    //  0 -> 1: one row per path.
    "CREATE TABLE files (path TEXT PRIMARY KEY NOT NULL, size INTEGER NOT NULL,"
    "                    mtime_ns INTEGER NOT NULL, ino INTEGER NOT NULL,"
    "                    dev INTEGER NOT NULL, hash BLOB NOT NULL) WITHOUT ROWID;"
};

static void
s_row_free (void **item)
{
    free (*item);
    *item = NULL;
}

hash_cache_t *
hash_cache_new (const char *dir, char *err, size_t err_size)
{
    assert (dir);
    hash_cache_t *self = (hash_cache_t *) calloc (1, sizeof (hash_cache_t));
    assert (self);
    self->db_path = zsys_sprintf ("%s/hashes.db", dir);
    self->memo = zhashx_new ();
    zhashx_set_destructor (self->memo, s_row_free);
    if (mkdir (dir, 0700) && errno != EEXIST) {
        snprintf (err, err_size, "cannot create %s: %s", dir, strerror (errno));
        goto fail;
    }
    if (cache_db_open (self->db_path, s_migrations, HASH_CACHE_SCHEMA_VERSION, &self->db, err, err_size))
        goto fail;
    if (sqlite3_prepare_v3 (self->db,
            "SELECT size, mtime_ns, ino, dev, hash FROM files WHERE path = ?1",
            -1, SQLITE_PREPARE_PERSISTENT, &self->lookup, NULL) != SQLITE_OK
    ||  sqlite3_prepare_v3 (self->db,
            "INSERT INTO files (path, size, mtime_ns, ino, dev, hash)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (path) DO UPDATE SET"
            " size = excluded.size, mtime_ns = excluded.mtime_ns, ino = excluded.ino,"
            " dev = excluded.dev, hash = excluded.hash",
            -1, SQLITE_PREPARE_PERSISTENT, &self->upsert, NULL) != SQLITE_OK) {
        snprintf (err, err_size, "cannot prepare queries on %s: %s", self->db_path,
                  sqlite3_errmsg (self->db));
        goto fail;
    }
    return self;

fail:
    hash_cache_destroy (&self);
    return NULL;
}

void
hash_cache_destroy (hash_cache_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        hash_cache_t *self = *self_p;
        sqlite3_finalize (self->lookup);
        sqlite3_finalize (self->upsert);
        sqlite3_close (self->db);
        zhashx_destroy (&self->memo);
        zstr_free (&self->db_path);
        free (self);
        *self_p = NULL;
    }
}

static int64_t
s_mtime_ns (const struct stat *st)
{
    return (int64_t) st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static bool
s_same_file (const struct stat *a, const struct stat *b)
{
    return a->st_size == b->st_size && s_mtime_ns (a) == s_mtime_ns (b)
        && a->st_ino == b->st_ino && a->st_dev == b->st_dev;
}

//  Modified within HASH_CACHE_RACY_MS of now, or in the future (a clock
//  step back, or a file from a machine whose clock is ahead).
static bool
s_racy (const struct stat *st)
{
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    int64_t now_ns = (int64_t) now.tv_sec * 1000000000 + now.tv_nsec;
    return now_ns - s_mtime_ns (st) < (int64_t) HASH_CACHE_RACY_MS * 1000000;
}

static bool
s_row_matches (const s_row_t *row, const struct stat *st)
{
    return row->size == (int64_t) st->st_size && row->mtime_ns == s_mtime_ns (st)
        && row->ino == (uint64_t) st->st_ino && row->dev == (uint64_t) st->st_dev;
}

//  Keeps the row for `path` (stat `st`, content `hash`) in memory.
static void
s_remember (hash_cache_t *self, const char *path, const struct stat *st,
            const uint8_t hash [BLOB_HASH_SIZE])
{
    if (zhashx_size (self->memo) >= HASH_CACHE_MEMO_MAX)
        zhashx_purge (self->memo);
    s_row_t *row = (s_row_t *) malloc (sizeof (s_row_t));
    assert (row);
    *row = (s_row_t) { .size = (int64_t) st->st_size, .mtime_ns = s_mtime_ns (st),
                       .ino = (uint64_t) st->st_ino, .dev = (uint64_t) st->st_dev };
    memcpy (row->hash, hash, BLOB_HASH_SIZE);
    zhashx_update (self->memo, path, row);
}

int
hash_cache_get (hash_cache_t *self, const char *path, const struct stat *st,
                uint8_t hash [BLOB_HASH_SIZE], bool *hit_p)
{
    assert (self && path && st && hash);
    const s_row_t *row = (const s_row_t *) zhashx_lookup (self->memo, path);
    bool hit = row && s_row_matches (row, st);
    if (hit)
        memcpy (hash, row->hash, BLOB_HASH_SIZE);
    else {
        sqlite3_bind_text (self->lookup, 1, path, -1, SQLITE_STATIC);
        if (sqlite3_step (self->lookup) == SQLITE_ROW
        &&  sqlite3_column_bytes (self->lookup, 4) == BLOB_HASH_SIZE) {
            s_row_t stored = {
                .size = sqlite3_column_int64 (self->lookup, 0),
                .mtime_ns = sqlite3_column_int64 (self->lookup, 1),
                .ino = (uint64_t) sqlite3_column_int64 (self->lookup, 2),
                .dev = (uint64_t) sqlite3_column_int64 (self->lookup, 3) };
            hit = s_row_matches (&stored, st);
            if (hit)
                memcpy (hash, sqlite3_column_blob (self->lookup, 4), BLOB_HASH_SIZE);
        }
        sqlite3_reset (self->lookup);
        sqlite3_clear_bindings (self->lookup);
        if (hit)
            s_remember (self, path, st, hash);
    }
    if (hit_p)
        *hit_p = hit;
    if (hit) {
        self->hits++;
        return 0;
    }
    self->misses++;

    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat before, after;
    int rc = fstat (fd, &before) || blob_hash_fd (fd, hash) || fstat (fd, &after)? -1: 0;
    int saved = errno;
    close (fd);
    if (rc) {
        errno = saved;
        return -1;
    }
    if (s_same_file (&before, st) && s_same_file (&after, st) && !s_racy (st)) {
        sqlite3_stmt *stmt = self->upsert;
        sqlite3_bind_text (stmt, 1, path, -1, SQLITE_STATIC);
        sqlite3_bind_int64 (stmt, 2, (sqlite3_int64) st->st_size);
        sqlite3_bind_int64 (stmt, 3, s_mtime_ns (st));
        sqlite3_bind_int64 (stmt, 4, (sqlite3_int64) st->st_ino);
        sqlite3_bind_int64 (stmt, 5, (sqlite3_int64) st->st_dev);
        sqlite3_bind_blob (stmt, 6, hash, BLOB_HASH_SIZE, SQLITE_STATIC);
        sqlite3_step (stmt);            //  best effort, see the top
        sqlite3_reset (stmt);
        sqlite3_clear_bindings (stmt);
        s_remember (self, path, st, hash);
    }
    return 0;
}

//  Self-test: miss then hit on an old file; a recent file is never cached.
void
hash_cache_counts (hash_cache_t *self, uint64_t *hits_p, uint64_t *misses_p)
{
    *hits_p = self->hits;
    *misses_p = self->misses;
}

void
hash_cache_test (bool verbose)
{
    if (verbose)
        printf (" * hash_cache: ");
    char dir [] = "/tmp/hash-cache-test-XXXXXX";
    assert (mkdtemp (dir));
    char err [256], path [64];
    hash_cache_t *cache = hash_cache_new (dir, err, sizeof err);
    assert (cache);
    snprintf (path, sizeof path, "%s/file.h", dir);
    FILE *file = fopen (path, "w");
    assert (file);
    fputs ("#define X 1\n", file);
    fclose (file);
    uint8_t expected [BLOB_HASH_SIZE], hash [BLOB_HASH_SIZE];
    blob_hash_buffer ("#define X 1\n", 12, expected);

    struct stat st;
    bool hit;
    assert (stat (path, &st) == 0);
    assert (hash_cache_get (cache, path, &st, hash, &hit) == 0 && !hit);
    assert (hash_cache_get (cache, path, &st, hash, &hit) == 0 && !hit);
    assert (memcmp (hash, expected, sizeof hash) == 0);

    struct timespec times [2] = { { time (NULL) - 60, 0 }, { time (NULL) - 60, 0 } };
    assert (utimensat (AT_FDCWD, path, times, 0) == 0);
    assert (stat (path, &st) == 0);
    assert (hash_cache_get (cache, path, &st, hash, &hit) == 0 && !hit);
    assert (hash_cache_get (cache, path, &st, hash, &hit) == 0 && hit);
    assert (memcmp (hash, expected, sizeof hash) == 0);
    hash_cache_destroy (&cache);
    assert (cache == NULL);

    char *command = zsys_sprintf ("rm -rf '%s'", dir);
    assert (system (command) == 0);
    zstr_free (&command);
    if (verbose)
        printf ("OK\n");
}
