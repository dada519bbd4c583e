//  toolchain_db: the registry of toolchains (see toolchain_db.h).
//
//  Why it is shaped like this:
//  - The database is opened with cache_db_open (set-up lock, WAL,
//    synchronous=NORMAL, schema_migrate), like blobs.db and hashes.db: a
//    power cut may lose the last rows, which are only recomputed (a weak
//    key, a packaging) or heard again (holders), never corrupt the file.
//  - A weak key maps to one hash; its primary key is the whole key, so a
//    compiler upgraded in place (new size, mtime or inode) gets a new row
//    and the old row simply stops matching. Rows of deleted toolchains go
//    with them (a trigger), so a lookup never names an archive that was
//    evicted; the lookup also joins toolchains for the same reason.
//  - Holders are not tied to toolchains rows: a node learns of archives
//    other nodes hold long before (or without ever) holding them itself.
//  - Hashes and peer ids are stored as blobs (32 and 16 bytes), as in
//    blobs.db.

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "cache_setup.h"
#include "meshcc/toolchain_db.h"

struct _toolchain_db_t {
    char *db_path;
    sqlite3 *db;
    int64_t now_ms;                 //  0: the real clock
    sqlite3_stmt *insert;           //  a toolchain row (upsert)
    sqlite3_stmt *insert_key;       //  a weak key (upsert)
    sqlite3_stmt *lookup;           //  hash of a weak key
    sqlite3_stmt *get;              //  one toolchain row
    sqlite3_stmt *touch;            //  last_used = now
    sqlite3_stmt *list;             //  every toolchain row
    sqlite3_stmt *remove;           //  a toolchain row (trigger: its keys)
    sqlite3_stmt *holder_insert;    //  (hash, peer, seen) upsert
    sqlite3_stmt *holder_remove;    //  one (hash, peer)
    sqlite3_stmt *holder_remove_peer;
    sqlite3_stmt *holders;          //  holders of a hash
};

//  Each entry migrates the schema from version (index) to (index + 1).
//  Append, never edit: registries in the field have run the old ones.
static const char *const s_migrations [TOOLCHAIN_DB_SCHEMA_VERSION] = {
    //  0 -> 1: toolchains, weak keys, holders.
    "CREATE TABLE toolchains (hash BLOB PRIMARY KEY NOT NULL,"
    "                         compiler TEXT NOT NULL, version TEXT NOT NULL,"
    "                         target TEXT NOT NULL, size INTEGER NOT NULL,"
    "                         files INTEGER NOT NULL, created INTEGER NOT NULL,"
    "                         last_used INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX toolchains_lru ON toolchains (last_used);"
    "CREATE TABLE weak_keys (compiler TEXT NOT NULL, resolved TEXT NOT NULL,"
    "                        size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
    "                        inode INTEGER NOT NULL, target TEXT NOT NULL,"
    "                        version TEXT NOT NULL, hash BLOB NOT NULL,"
    "                        PRIMARY KEY (compiler, resolved, size, mtime_ns, inode,"
    "                                     target, version)) WITHOUT ROWID;"
    "CREATE INDEX weak_keys_hash ON weak_keys (hash);"
    "CREATE TABLE holders (hash BLOB NOT NULL, peer BLOB NOT NULL, seen INTEGER NOT NULL,"
    "                      PRIMARY KEY (hash, peer)) WITHOUT ROWID;"
    "CREATE INDEX holders_peer ON holders (peer);"
    "CREATE TRIGGER toolchains_delete AFTER DELETE ON toolchains BEGIN"
    "  DELETE FROM weak_keys WHERE hash = OLD.hash;"
    "END;"
};

#define S_TOOLCHAIN_COLUMNS "hash, compiler, version, target, size, files, created, last_used"

static int64_t
s_now (toolchain_db_t *self)
{
    if (self->now_ms)
        return self->now_ms;
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static int
s_prepare (toolchain_db_t *self, const char *sql, sqlite3_stmt **stmt_p)
{
    return sqlite3_prepare_v3 (self->db, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt_p, NULL)
           == SQLITE_OK ? 0 : -1;
}

toolchain_db_t *
toolchain_db_new (const char *dir, char *err, size_t err_size)
{
    assert (dir && err);
    toolchain_db_t *self = (toolchain_db_t *) zmalloc (sizeof (toolchain_db_t));
    self->db_path = zsys_sprintf ("%s/toolchains.db", dir);
    if (mkdir (dir, 0700) && errno != EEXIST) {
        snprintf (err, err_size, "cannot create %s: %s", dir, strerror (errno));
        goto fail;
    }
    if (cache_db_open (self->db_path, s_migrations, TOOLCHAIN_DB_SCHEMA_VERSION,
                       &self->db, err, err_size))
        goto fail;
    if (s_prepare (self,
            "INSERT INTO toolchains (" S_TOOLCHAIN_COLUMNS ")"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) ON CONFLICT (hash) DO UPDATE SET"
            " compiler = excluded.compiler, version = excluded.version,"
            " target = excluded.target, size = excluded.size, files = excluded.files,"
            " last_used = excluded.last_used", &self->insert)
    ||  s_prepare (self,
            "INSERT INTO weak_keys (compiler, resolved, size, mtime_ns, inode, target,"
            " version, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            " ON CONFLICT (compiler, resolved, size, mtime_ns, inode, target, version)"
            " DO UPDATE SET hash = excluded.hash", &self->insert_key)
    ||  s_prepare (self,
            "SELECT k.hash FROM weak_keys k JOIN toolchains t ON t.hash = k.hash"
            " WHERE k.compiler = ?1 AND k.resolved = ?2 AND k.size = ?3"
            " AND k.mtime_ns = ?4 AND k.inode = ?5 AND k.target = ?6 AND k.version = ?7",
            &self->lookup)
    ||  s_prepare (self, "SELECT " S_TOOLCHAIN_COLUMNS " FROM toolchains WHERE hash = ?1",
                   &self->get)
    ||  s_prepare (self, "UPDATE toolchains SET last_used = ?2 WHERE hash = ?1", &self->touch)
    ||  s_prepare (self, "SELECT " S_TOOLCHAIN_COLUMNS " FROM toolchains"
                         " ORDER BY last_used DESC, hash", &self->list)
    ||  s_prepare (self, "DELETE FROM toolchains WHERE hash = ?1", &self->remove)
    ||  s_prepare (self,
            "INSERT INTO holders (hash, peer, seen) VALUES (?1, ?2, ?3)"
            " ON CONFLICT (hash, peer) DO UPDATE SET seen = excluded.seen",
            &self->holder_insert)
    ||  s_prepare (self, "DELETE FROM holders WHERE hash = ?1 AND peer = ?2",
                   &self->holder_remove)
    ||  s_prepare (self, "DELETE FROM holders WHERE peer = ?1", &self->holder_remove_peer)
    ||  s_prepare (self, "SELECT peer, seen FROM holders WHERE hash = ?1"
                         " ORDER BY seen DESC, peer", &self->holders)) {
        snprintf (err, err_size, "cannot prepare queries on %s: %s", self->db_path,
                  sqlite3_errmsg (self->db));
        goto fail;
    }
    return self;

fail:
    toolchain_db_destroy (&self);
    return NULL;
}

void
toolchain_db_destroy (toolchain_db_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        toolchain_db_t *self = *self_p;
        sqlite3_stmt *stmts [] = {
            self->insert, self->insert_key, self->lookup, self->get, self->touch,
            self->list, self->remove, self->holder_insert, self->holder_remove,
            self->holder_remove_peer, self->holders
        };
        for (size_t i = 0; i < sizeof stmts / sizeof stmts [0]; i++)
            sqlite3_finalize (stmts [i]);
        sqlite3_close (self->db);
        zstr_free (&self->db_path);
        free (self);
        *self_p = NULL;
    }
}

void
toolchain_db_set_now (toolchain_db_t *self, int64_t now_ms)
{
    self->now_ms = now_ms;
}

//  Runs a statement that returns no rows, then resets it. Returns the
//  number of rows changed, or -1.
static int
s_step_done (toolchain_db_t *self, sqlite3_stmt *stmt)
{
    int rc = sqlite3_step (stmt);
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return rc == SQLITE_DONE ? sqlite3_changes (self->db) : -1;
}

static int
s_exec (toolchain_db_t *self, const char *sql)
{
    return sqlite3_exec (self->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static void
s_bind_key (sqlite3_stmt *stmt, const toolchain_weak_key_t *key)
{
    sqlite3_bind_text (stmt, 1, key->compiler, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 2, key->resolved, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (stmt, 3, (sqlite3_int64) key->size);
    sqlite3_bind_int64 (stmt, 4, key->mtime_ns);
    sqlite3_bind_int64 (stmt, 5, (sqlite3_int64) key->inode);
    sqlite3_bind_text (stmt, 6, key->target, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 7, key->version, -1, SQLITE_STATIC);
}

int
toolchain_db_record (toolchain_db_t *self, const uint8_t hash [BLOB_HASH_SIZE],
                     const char *compiler, const char *version, const char *target,
                     uint64_t size, uint64_t files, const toolchain_weak_key_t *key)
{
    assert (self && hash && compiler && version && target);
    if (s_exec (self, "BEGIN IMMEDIATE"))
        return -1;
    sqlite3_stmt *stmt = self->insert;
    sqlite3_bind_blob (stmt, 1, hash, BLOB_HASH_SIZE, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 2, compiler, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 3, version, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 4, target, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (stmt, 5, (sqlite3_int64) size);
    sqlite3_bind_int64 (stmt, 6, (sqlite3_int64) files);
    sqlite3_bind_int64 (stmt, 7, s_now (self));
    int rc = s_step_done (self, stmt) < 0 ? -1 : 0;
    if (rc == 0 && key) {
        stmt = self->insert_key;
        s_bind_key (stmt, key);
        sqlite3_bind_blob (stmt, 8, hash, BLOB_HASH_SIZE, SQLITE_STATIC);
        rc = s_step_done (self, stmt) < 0 ? -1 : 0;
    }
    if (rc == 0 && s_exec (self, "COMMIT") == 0)
        return 0;
    s_exec (self, "ROLLBACK");
    return -1;
}

int
toolchain_db_record_info (toolchain_db_t *self, const toolchain_info_t *info)
{
    assert (info);
    return toolchain_db_record (self, info->hash, info->key.compiler, info->key.version,
                                info->key.target, info->archive_size, info->files, &info->key);
}

bool
toolchain_db_lookup (toolchain_db_t *self, const toolchain_weak_key_t *key,
                     uint8_t hash [BLOB_HASH_SIZE])
{
    assert (self && key && hash);
    sqlite3_stmt *stmt = self->lookup;
    s_bind_key (stmt, key);
    bool found = false;
    if (sqlite3_step (stmt) == SQLITE_ROW && sqlite3_column_bytes (stmt, 0) == BLOB_HASH_SIZE) {
        memcpy (hash, sqlite3_column_blob (stmt, 0), BLOB_HASH_SIZE);
        found = true;
    }
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return found;
}

static void
s_copy_text (char *out, size_t out_size, const unsigned char *text)
{
    snprintf (out, out_size, "%s", text ? (const char *) text : "");
}

//  The current row of a S_TOOLCHAIN_COLUMNS query into *record.
static bool
s_read_record (sqlite3_stmt *stmt, toolchain_record_t *record)
{
    if (sqlite3_column_bytes (stmt, 0) != BLOB_HASH_SIZE)
        return false;
    memset (record, 0, sizeof *record);
    memcpy (record->hash, sqlite3_column_blob (stmt, 0), BLOB_HASH_SIZE);
    s_copy_text (record->compiler, sizeof record->compiler, sqlite3_column_text (stmt, 1));
    s_copy_text (record->version, sizeof record->version, sqlite3_column_text (stmt, 2));
    s_copy_text (record->target, sizeof record->target, sqlite3_column_text (stmt, 3));
    record->size = (uint64_t) sqlite3_column_int64 (stmt, 4);
    record->files = (uint64_t) sqlite3_column_int64 (stmt, 5);
    record->created = sqlite3_column_int64 (stmt, 6);
    record->last_used = sqlite3_column_int64 (stmt, 7);
    return true;
}

bool
toolchain_db_get (toolchain_db_t *self, const uint8_t hash [BLOB_HASH_SIZE],
                  toolchain_record_t *record)
{
    assert (self && hash && record);
    sqlite3_stmt *stmt = self->get;
    sqlite3_bind_blob (stmt, 1, hash, BLOB_HASH_SIZE, SQLITE_STATIC);
    bool found = sqlite3_step (stmt) == SQLITE_ROW && s_read_record (stmt, record);
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return found;
}

int
toolchain_db_touch (toolchain_db_t *self, const uint8_t hash [BLOB_HASH_SIZE])
{
    assert (self && hash);
    sqlite3_bind_blob (self->touch, 1, hash, BLOB_HASH_SIZE, SQLITE_STATIC);
    sqlite3_bind_int64 (self->touch, 2, s_now (self));
    return s_step_done (self, self->touch) == 1 ? 0 : -1;
}

toolchain_record_t *
toolchain_db_list (toolchain_db_t *self, size_t *count_p)
{
    assert (self && count_p);
    toolchain_record_t *records = NULL;
    size_t count = 0, cap = 0;
    sqlite3_stmt *stmt = self->list;
    while (sqlite3_step (stmt) == SQLITE_ROW) {
        if (count == cap) {
            cap = cap ? cap * 2 : 8;
            records = (toolchain_record_t *) realloc (records, cap * sizeof *records);
            assert (records);
        }
        if (s_read_record (stmt, &records [count]))
            count++;
    }
    sqlite3_reset (stmt);
    *count_p = count;
    if (count == 0) {
        free (records);
        records = NULL;
    }
    return records;
}

int
toolchain_db_delete (toolchain_db_t *self, const uint8_t hash [BLOB_HASH_SIZE])
{
    assert (self && hash);
    sqlite3_bind_blob (self->remove, 1, hash, BLOB_HASH_SIZE, SQLITE_STATIC);
    return s_step_done (self, self->remove) >= 1 ? 0 : -1;
}

int
toolchain_db_holder_record (toolchain_db_t *self, const uint8_t hash [BLOB_HASH_SIZE],
                            const uint8_t peer [MESHCC_ID_SIZE])
{
    assert (self && hash && peer);
    sqlite3_stmt *stmt = self->holder_insert;
    sqlite3_bind_blob (stmt, 1, hash, BLOB_HASH_SIZE, SQLITE_STATIC);
    sqlite3_bind_blob (stmt, 2, peer, MESHCC_ID_SIZE, SQLITE_STATIC);
    sqlite3_bind_int64 (stmt, 3, s_now (self));
    return s_step_done (self, stmt) == 1 ? 0 : -1;
}

int
toolchain_db_holder_forget (toolchain_db_t *self, const uint8_t hash [BLOB_HASH_SIZE],
                            const uint8_t peer [MESHCC_ID_SIZE])
{
    assert (self && hash && peer);
    sqlite3_stmt *stmt = self->holder_remove;
    sqlite3_bind_blob (stmt, 1, hash, BLOB_HASH_SIZE, SQLITE_STATIC);
    sqlite3_bind_blob (stmt, 2, peer, MESHCC_ID_SIZE, SQLITE_STATIC);
    return s_step_done (self, stmt) == 1 ? 0 : -1;
}

size_t
toolchain_db_holder_forget_peer (toolchain_db_t *self, const uint8_t peer [MESHCC_ID_SIZE])
{
    assert (self && peer);
    sqlite3_bind_blob (self->holder_remove_peer, 1, peer, MESHCC_ID_SIZE, SQLITE_STATIC);
    int changed = s_step_done (self, self->holder_remove_peer);
    return changed > 0 ? (size_t) changed : 0;
}

toolchain_holder_t *
toolchain_db_holders (toolchain_db_t *self, const uint8_t hash [BLOB_HASH_SIZE], size_t *count_p)
{
    assert (self && hash && count_p);
    toolchain_holder_t *holders = NULL;
    size_t count = 0, cap = 0;
    sqlite3_stmt *stmt = self->holders;
    sqlite3_bind_blob (stmt, 1, hash, BLOB_HASH_SIZE, SQLITE_STATIC);
    while (sqlite3_step (stmt) == SQLITE_ROW) {
        if (sqlite3_column_bytes (stmt, 0) != MESHCC_ID_SIZE)
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 8;
            holders = (toolchain_holder_t *) realloc (holders, cap * sizeof *holders);
            assert (holders);
        }
        memcpy (holders [count].peer, sqlite3_column_blob (stmt, 0), MESHCC_ID_SIZE);
        holders [count].seen = sqlite3_column_int64 (stmt, 1);
        count++;
    }
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    *count_p = count;
    return holders;
}

//  --------------------------------------------------------------------------
//  Self-test: record, look up by weak key, holders, delete.

void
toolchain_db_test (bool verbose)
{
    if (verbose)
        printf (" * toolchain_db: ");
    char dir [] = "/tmp/toolchain-db-test-XXXXXX";
    assert (mkdtemp (dir));
    char err [256];
    toolchain_db_t *db = toolchain_db_new (dir, err, sizeof err);
    assert (db);
    toolchain_db_set_now (db, 1000);
    toolchain_weak_key_t key = {
        .compiler = "/usr/bin/cc", .resolved = "/usr/bin/cc-1", .size = 10,
        .mtime_ns = 20, .inode = 30, .target = "x86_64-linux-gnu", .version = "1.0"
    };
    uint8_t hash [BLOB_HASH_SIZE], found [BLOB_HASH_SIZE];
    blob_hash_buffer ("toolchain", 9, hash);
    assert (!toolchain_db_lookup (db, &key, found));
    assert (toolchain_db_record (db, hash, key.compiler, key.version, key.target, 5, 2, &key) == 0);
    assert (toolchain_db_lookup (db, &key, found));
    assert (memcmp (found, hash, sizeof hash) == 0);
    key.mtime_ns++;
    assert (!toolchain_db_lookup (db, &key, found));

    uint8_t peer [MESHCC_ID_SIZE] = { 1 };
    assert (toolchain_db_holder_record (db, hash, peer) == 0);
    size_t count;
    toolchain_holder_t *holders = toolchain_db_holders (db, hash, &count);
    assert (count == 1 && holders [0].seen == 1000);
    free (holders);
    assert (toolchain_db_delete (db, hash) == 0);
    key.mtime_ns--;
    assert (!toolchain_db_lookup (db, &key, found));
    holders = toolchain_db_holders (db, hash, &count);
    assert (count == 1);            //  holders outlive the local row
    free (holders);
    toolchain_db_destroy (&db);
    assert (db == NULL);

    char *command = zsys_sprintf ("rm -rf '%s'", dir);
    assert (system (command) == 0);
    zstr_free (&command);
    if (verbose)
        printf ("OK\n");
}
