//  blob_store: content-addressed files, bounded by size, evicted LRU.
//
//  Layout under DIR:
//      blobs.db                    SQLite index (WAL): blobs, raw_copies,
//                                  totals, schema in PRAGMA user_version
//      blobs/ab/cdef...            one zstd frame per blob (content size
//                                  in the frame header), mode 0444
//      blobs-raw/ab/cdef....0444   uncompressed copy of a blob, one per
//                                  read-only mode it was materialised with;
//                                  job roots hard-link these
//      tmp/                        files being written, renamed into place
//
//  Why it is shaped like this:
//  - Files are written to DIR/tmp and renamed into place, so a reader sees
//    a whole file or none; concurrent writers of one blob write identical
//    bytes, so whichever rename wins is right. DIR/tmp rather than the
//    blob's own directory because a crashed writer's leftovers can then be
//    swept by scanning one small directory, not 512 big ones.
//  - No fsync: every read re-verifies the hash, so a file torn by a power
//    loss is found and dropped like any other corruption.
//  - The rename of a new file and the insert of its row happen inside one
//    write transaction, and eviction unlinks inside its write transaction,
//    so between processes a row and its file appear and vanish together.
//  - Sizes are summed by triggers into a one-row totals table: put checks
//    the bound on every call and must not scan the index to do it.
//  - Pins live in memory, never in SQLite: a crashed process must not pin
//    forever. They are per process, not per object: the node keeps one
//    store per worker thread (SQLite connections are not shared), and a
//    job pinning its inputs in one thread must be safe from an eviction
//    run by a put in another. Each object also remembers its own pins so
//    that destroying it releases them.
//  - Raw copies are read-only (no write bit) because a hard link shares
//    the inode: one job writing into its "input" would otherwise corrupt
//    every later job's copy. A file materialised with any write bit (or a
//    set-id bit) is therefore a private copy, never a link.

#include <assert.h>
#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include "cache_setup.h"
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>
#include "meshcc/blob_store.h"
#include "meshcc/limits.h"

#define BLOB_STORE_SCHEMA_VERSION 1

struct _blob_store_t {
    char *dir;
    char *db_path;
    uint64_t max_bytes;             //  0: unbounded
    int64_t now_ms;                 //  0: the real clock (see set_now)
    sqlite3 *db;
    sqlite3_stmt *lookup;           //  raw_size, last_used of a hash
    sqlite3_stmt *touch;            //  last_used = now
    sqlite3_stmt *insert;           //  a new blob row
    sqlite3_stmt *remove;           //  a blob row (triggers drop raw rows)
    sqlite3_stmt *totals;           //  bytes, count
    sqlite3_stmt *raw_has;          //  is there a raw copy of (hash, mode)
    sqlite3_stmt *raw_insert;       //  a raw copy row, if the blob exists
    sqlite3_stmt *raw_remove;       //  one raw copy row
    sqlite3_stmt *raw_modes;        //  modes of a blob's raw copies
    sqlite3_stmt *lru;              //  blobs oldest first, with all bytes
    zhash_t *pins;                  //  hex -> count pinned by this object
    char pin_prefix [48];           //  "dev:ino:" of DIR, for s_pins keys
    bool reading;                   //  in blob_store_read_begin's transaction
};

//  Each entry migrates the schema from version (index) to (index + 1).
//  Append, never edit: stores in the field have run the old ones.
static const char *const s_migrations [BLOB_STORE_SCHEMA_VERSION] = {
    //  0 -> 1: the index, raw copies, and totals kept by triggers.
    "CREATE TABLE blobs (hash BLOB PRIMARY KEY NOT NULL,"
    "                    raw_size INTEGER NOT NULL,"
    "                    stored_size INTEGER NOT NULL,"
    "                    last_used INTEGER NOT NULL);"
    "CREATE INDEX blobs_lru ON blobs (last_used);"
    "CREATE TABLE raw_copies (hash BLOB NOT NULL, mode INTEGER NOT NULL,"
    "                         size INTEGER NOT NULL,"
    "                         PRIMARY KEY (hash, mode)) WITHOUT ROWID;"
    "CREATE TABLE totals (id INTEGER PRIMARY KEY CHECK (id = 0),"
    "                     bytes INTEGER NOT NULL, count INTEGER NOT NULL);"
    "INSERT INTO totals VALUES (0, 0, 0);"
    "CREATE TRIGGER totals_blobs_insert AFTER INSERT ON blobs BEGIN"
    "  UPDATE totals SET bytes = bytes + NEW.stored_size, count = count + 1;"
    "END;"
    "CREATE TRIGGER totals_blobs_delete AFTER DELETE ON blobs BEGIN"
    "  DELETE FROM raw_copies WHERE hash = OLD.hash;"
    "  UPDATE totals SET bytes = bytes - OLD.stored_size, count = count - 1;"
    "END;"
    "CREATE TRIGGER totals_raw_insert AFTER INSERT ON raw_copies BEGIN"
    "  UPDATE totals SET bytes = bytes + NEW.size;"
    "END;"
    "CREATE TRIGGER totals_raw_delete AFTER DELETE ON raw_copies BEGIN"
    "  UPDATE totals SET bytes = bytes - OLD.size;"
    "END;"
};

//  --------------------------------------------------------------------------
//  Hashing

void
blob_hash_buffer (const void *data, size_t size, uint8_t hash [BLOB_HASH_SIZE])
{
    crypto_generichash (hash, BLOB_HASH_SIZE, (const unsigned char *) data, size, NULL, 0);
}

int
blob_hash_fd (int fd, uint8_t hash [BLOB_HASH_SIZE])
{
    crypto_generichash_state state;
    crypto_generichash_init (&state, NULL, 0, BLOB_HASH_SIZE);
    unsigned char *buffer = (unsigned char *) malloc (BLOB_HASH_READ_SIZE);
    assert (buffer);
    int rc = 0;
    while (true) {
        ssize_t got = read (fd, buffer, BLOB_HASH_READ_SIZE);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = -1;
            break;
        }
        if (got == 0)
            break;
        crypto_generichash_update (&state, buffer, (size_t) got);
    }
    free (buffer);
    if (rc == 0)
        crypto_generichash_final (&state, hash, BLOB_HASH_SIZE);
    return rc;
}

int
blob_hash_file (const char *path, uint8_t hash [BLOB_HASH_SIZE])
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = blob_hash_fd (fd, hash);
    int saved = errno;
    close (fd);
    errno = saved;
    return rc;
}

void
blob_hash_hex (const uint8_t hash [BLOB_HASH_SIZE], char hex [BLOB_HASH_HEX_SIZE + 1])
{
    static const char digits [] = "0123456789abcdef";
    for (size_t i = 0; i < BLOB_HASH_SIZE; i++) {
        hex [2 * i] = digits [hash [i] >> 4];
        hex [2 * i + 1] = digits [hash [i] & 15];
    }
    hex [BLOB_HASH_HEX_SIZE] = 0;
}

//  --------------------------------------------------------------------------
//  Process-wide pins: "dev:ino:hex" -> count, shared by every store object
//  of this process (see the header comment for why not per object).

static pthread_mutex_t s_pins_lock = PTHREAD_MUTEX_INITIALIZER;
static zhash_t *s_pins;

static void
s_pins_add (const char *key, int delta)
{
    pthread_mutex_lock (&s_pins_lock);
    if (!s_pins) {
        s_pins = zhash_new ();
        assert (s_pins);
    }
    uintptr_t count = (uintptr_t) zhash_lookup (s_pins, key);
    count += delta;
    if (count == 0)
        zhash_delete (s_pins, key);
    else
    if (zhash_lookup (s_pins, key))
        zhash_update (s_pins, key, (void *) count);
    else
        zhash_insert (s_pins, key, (void *) count);
    //  The table is freed when the last pin goes, so a process that has
    //  stopped pinning holds no memory (and leak checkers stay quiet).
    if (zhash_size (s_pins) == 0)
        zhash_destroy (&s_pins);
    pthread_mutex_unlock (&s_pins_lock);
}

static bool
s_pins_has (const char *key)
{
    pthread_mutex_lock (&s_pins_lock);
    bool pinned = s_pins && zhash_lookup (s_pins, key);
    pthread_mutex_unlock (&s_pins_lock);
    return pinned;
}

static void
s_pin_key (blob_store_t *self, const uint8_t hash [BLOB_HASH_SIZE], char *key, size_t size)
{
    char hex [BLOB_HASH_HEX_SIZE + 1];
    blob_hash_hex (hash, hex);
    snprintf (key, size, "%s%s", self->pin_prefix, hex);
}

//  --------------------------------------------------------------------------
//  Small helpers

static int64_t
s_now_ms (blob_store_t *self)
{
    if (self->now_ms)
        return self->now_ms;
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
s_exec (blob_store_t *self, const char *sql)
{
    return sqlite3_exec (self->db, sql, NULL, NULL, NULL) == SQLITE_OK? 0: -1;
}

//  Statements are reset after every use so that no read transaction stays
//  open between calls (an open one would pin an old WAL snapshot and block
//  checkpoints for every process on the store).
static void
s_done (sqlite3_stmt *stmt)
{
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
}

static void
s_bind_hash (sqlite3_stmt *stmt, int index, const uint8_t hash [BLOB_HASH_SIZE])
{
    sqlite3_bind_blob (stmt, index, hash, BLOB_HASH_SIZE, SQLITE_STATIC);
}

//  DIR/blobs/ab/cdef... or, with mode >= 0, DIR/blobs-raw/ab/cdef....MODE.
//  With subdir_only, just the ab directory.
static char *
s_path (blob_store_t *self, const uint8_t hash [BLOB_HASH_SIZE], int mode, bool subdir_only)
{
    char hex [BLOB_HASH_HEX_SIZE + 1];
    blob_hash_hex (hash, hex);
    const char *tree = mode >= 0? "blobs-raw": "blobs";
    if (subdir_only)
        return zsys_sprintf ("%s/%s/%.2s", self->dir, tree, hex);
    if (mode >= 0)
        return zsys_sprintf ("%s/%s/%.2s/%s.%04o", self->dir, tree, hex, hex + 2, mode);
    return zsys_sprintf ("%s/%s/%.2s/%s", self->dir, tree, hex, hex + 2);
}

static int
s_mkdir (const char *path)
{
    return mkdir (path, 0700) == 0 || errno == EEXIST? 0: -1;
}

static int
s_write_all (int fd, const void *data, size_t size)
{
    const uint8_t *bytes = (const uint8_t *) data;
    while (size > 0) {
        ssize_t done = write (fd, bytes, size);
        if (done < 0 && errno == EINTR)
            continue;
        if (done < 0)
            return -1;
        bytes += done;
        size -= (size_t) done;
    }
    return 0;
}

//  Writes `data` to a new file in DIR/tmp with `mode`; returns its path
//  (caller frees and renames or unlinks it) or NULL.
static char *
s_write_temp (blob_store_t *self, const void *data, size_t size, unsigned mode)
{
    char *path = zsys_sprintf ("%s/tmp/blob-XXXXXX", self->dir);
    int fd = mkostemp (path, O_CLOEXEC);
    if (fd < 0) {
        zstr_free (&path);
        return NULL;
    }
    if (s_write_all (fd, data, size) || fchmod (fd, mode) || close (fd)) {
        int saved = errno;
        close (fd);                     //  harmless EBADF if already closed
        unlink (path);
        zstr_free (&path);
        errno = saved;
        return NULL;
    }
    return path;
}

//  Looks a blob up; returns 1 (found, fills the outputs), 0 or -1.
static int
s_lookup (blob_store_t *self, const uint8_t hash [BLOB_HASH_SIZE],
          uint64_t *raw_size_p, int64_t *last_used_p)
{
    s_bind_hash (self->lookup, 1, hash);
    int rc = sqlite3_step (self->lookup);
    int found = rc == SQLITE_ROW? 1: rc == SQLITE_DONE? 0: -1;
    if (found == 1) {
        if (raw_size_p)
            *raw_size_p = (uint64_t) sqlite3_column_int64 (self->lookup, 0);
        if (last_used_p)
            *last_used_p = sqlite3_column_int64 (self->lookup, 1);
    }
    s_done (self->lookup);
    return found;
}

//  Marks a blob used, unless it was marked recently: a write per read of
//  a hot header would serialise every job on the database lock.
static void
s_touch (blob_store_t *self, const uint8_t hash [BLOB_HASH_SIZE], int64_t last_used)
{
    int64_t now = s_now_ms (self);
    if (now - last_used < BLOB_STORE_TOUCH_MS)
        return;
    s_bind_hash (self->touch, 1, hash);
    sqlite3_bind_int64 (self->touch, 2, now);
    sqlite3_step (self->touch);         //  best effort: LRU order only
    s_done (self->touch);
}

//  Removes a blob's files and row. The caller holds a write transaction,
//  so no other process can re-add the row between the unlinks and the
//  delete.
static int
s_remove (blob_store_t *self, const uint8_t hash [BLOB_HASH_SIZE])
{
    s_bind_hash (self->raw_modes, 1, hash);
    while (sqlite3_step (self->raw_modes) == SQLITE_ROW) {
        char *raw = s_path (self, hash, sqlite3_column_int (self->raw_modes, 0), false);
        unlink (raw);
        zstr_free (&raw);
    }
    s_done (self->raw_modes);
    char *path = s_path (self, hash, -1, false);
    unlink (path);
    zstr_free (&path);
    s_bind_hash (self->remove, 1, hash);
    int rc = sqlite3_step (self->remove) == SQLITE_DONE? 0: -1;
    s_done (self->remove);
    return rc;
}

//  Drops a blob found missing or corrupted, in its own transaction.
static void
s_forget (blob_store_t *self, const uint8_t hash [BLOB_HASH_SIZE])
{
    if (s_exec (self, "BEGIN IMMEDIATE"))
        return;
    if (s_remove (self, hash) || s_exec (self, "COMMIT"))
        s_exec (self, "ROLLBACK");
}

//  Reads, decompresses and verifies a blob. Returns a new buffer (at least
//  one byte allocated, so an empty blob is not NULL) or NULL; a blob whose
//  file is missing or whose bytes do not match its name is forgotten.
static uint8_t *
s_load (blob_store_t *self, const uint8_t hash [BLOB_HASH_SIZE], uint64_t raw_size)
{
    char *path = s_path (self, hash, -1, false);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    zstr_free (&path);
    if (fd < 0) {
        if (errno == ENOENT)
            s_forget (self, hash);
        return NULL;
    }
    uint8_t *frame = NULL, *data = NULL;
    bool corrupt = true;
    struct stat st;
    if (fstat (fd, &st))
        goto io_error;
    size_t frame_size = (size_t) st.st_size;
    frame = (uint8_t *) malloc (frame_size? frame_size: 1);
    assert (frame);
    size_t got = 0;
    while (got < frame_size) {
        ssize_t done = read (fd, frame + got, frame_size - got);
        if (done < 0 && errno == EINTR)
            continue;
        if (done < 0)
            goto io_error;
        if (done == 0)
            break;
        got += (size_t) done;
    }
    //  The frame states its content size; it must be the size the index
    //  recorded, which also bounds the allocation a damaged frame could ask.
    unsigned long long content = ZSTD_getFrameContentSize (frame, got);
    if (got != frame_size || content != raw_size || raw_size > SIZE_MAX - 1)
        goto done;
    data = (uint8_t *) malloc (raw_size? raw_size: 1);
    assert (data);
    size_t size = ZSTD_decompress (data, raw_size, frame, got);
    if (ZSTD_isError (size) || size != raw_size)
        goto done;
    uint8_t check [BLOB_HASH_SIZE];
    blob_hash_buffer (data, size, check);
    corrupt = sodium_memcmp (check, hash, BLOB_HASH_SIZE) != 0;
done:
    free (frame);
    close (fd);
    if (corrupt) {
        free (data);
        s_forget (self, hash);
        errno = EBADMSG;
        return NULL;
    }
    return data;

io_error:
    //  Not the blob's fault (EMFILE, EIO...): keep it.
    free (frame);
    close (fd);
    return NULL;
}

static int
s_totals (blob_store_t *self, uint64_t *bytes_p, uint64_t *count_p)
{
    int rc = -1;
    if (sqlite3_step (self->totals) == SQLITE_ROW) {
        int64_t bytes = sqlite3_column_int64 (self->totals, 0);
        int64_t count = sqlite3_column_int64 (self->totals, 1);
        *bytes_p = bytes > 0? (uint64_t) bytes: 0;
        if (count_p)
            *count_p = count > 0? (uint64_t) count: 0;
        rc = 0;
    }
    s_done (self->totals);
    return rc;
}

//  --------------------------------------------------------------------------
//  Opening

static int
s_prepare (blob_store_t *self, sqlite3_stmt **stmt_p, const char *sql)
{
    return sqlite3_prepare_v3 (self->db, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt_p, NULL)
           == SQLITE_OK? 0: -1;
}

//  Removes what crashed writers left in DIR/tmp. Only old files: a live
//  writer in another process may be between its write and its rename.
static void
s_sweep_tmp (blob_store_t *self)
{
    char *tmp = zsys_sprintf ("%s/tmp", self->dir);
    DIR *handle = opendir (tmp);
    if (handle) {
        time_t limit = time (NULL) - BLOB_STORE_TMP_STALE_S;
        struct dirent *entry;
        while ((entry = readdir (handle))) {
            struct stat st;
            if (strncmp (entry->d_name, "blob-", 5) == 0
            &&  fstatat (dirfd (handle), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0
            &&  st.st_mtime < limit)
                unlinkat (dirfd (handle), entry->d_name, 0);
        }
        closedir (handle);
    }
    zstr_free (&tmp);
}

blob_store_t *
blob_store_new (const char *dir, uint64_t max_bytes, char *err, size_t err_size)
{
    assert (dir);
    blob_store_t *self = (blob_store_t *) calloc (1, sizeof (blob_store_t));
    assert (self);
    self->dir = strdup (dir);
    assert (self->dir);
    self->max_bytes = max_bytes;
    self->pins = zhash_new ();
    assert (self->pins);
    self->db_path = zsys_sprintf ("%s/blobs.db", dir);

    const char *subdirs [] = { "", "/blobs", "/blobs-raw", "/tmp" };
    for (size_t i = 0; i < sizeof subdirs / sizeof subdirs [0]; i++) {
        char *path = zsys_sprintf ("%s%s", dir, subdirs [i]);
        int rc = s_mkdir (path);
        zstr_free (&path);
        if (rc) {
            snprintf (err, err_size, "cannot create %s%s: %s", dir, subdirs [i], strerror (errno));
            goto fail;
        }
    }
    struct stat st;
    if (stat (dir, &st)) {
        snprintf (err, err_size, "cannot stat %s: %s", dir, strerror (errno));
        goto fail;
    }
    snprintf (self->pin_prefix, sizeof self->pin_prefix, "%llu:%llu:",
              (unsigned long long) st.st_dev, (unsigned long long) st.st_ino);

    if (cache_db_open (self->db_path, s_migrations, BLOB_STORE_SCHEMA_VERSION, &self->db, err, err_size))
        goto fail;
    if (s_prepare (self, &self->lookup,
            "SELECT raw_size, last_used FROM blobs WHERE hash = ?1")
    ||  s_prepare (self, &self->touch,
            "UPDATE blobs SET last_used = ?2 WHERE hash = ?1 AND last_used < ?2")
    ||  s_prepare (self, &self->insert,
            "INSERT INTO blobs (hash, raw_size, stored_size, last_used) VALUES (?1, ?2, ?3, ?4)"
            " ON CONFLICT (hash) DO UPDATE SET last_used = max(last_used, excluded.last_used)")
    ||  s_prepare (self, &self->remove,
            "DELETE FROM blobs WHERE hash = ?1")
    ||  s_prepare (self, &self->totals,
            "SELECT bytes, count FROM totals WHERE id = 0")
    ||  s_prepare (self, &self->raw_has,
            "SELECT 1 FROM raw_copies WHERE hash = ?1 AND mode = ?2")
    ||  s_prepare (self, &self->raw_insert,
            "INSERT OR IGNORE INTO raw_copies (hash, mode, size)"
            " SELECT hash, ?2, raw_size FROM blobs WHERE hash = ?1")
    ||  s_prepare (self, &self->raw_remove,
            "DELETE FROM raw_copies WHERE hash = ?1 AND mode = ?2")
    ||  s_prepare (self, &self->raw_modes,
            "SELECT mode FROM raw_copies WHERE hash = ?1")
    ||  s_prepare (self, &self->lru,
            "SELECT hash, stored_size + (SELECT ifnull (sum (size), 0) FROM raw_copies r"
            "                            WHERE r.hash = b.hash)"
            " FROM blobs b ORDER BY last_used, rowid")) {
        snprintf (err, err_size, "cannot prepare queries on %s: %s", self->db_path,
                  sqlite3_errmsg (self->db));
        goto fail;
    }
    s_sweep_tmp (self);
    return self;

fail:
    blob_store_destroy (&self);
    return NULL;
}

void
blob_store_destroy (blob_store_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        blob_store_t *self = *self_p;
        //  Release this object's pins in the process-wide table.
        for (void *item = zhash_first (self->pins); item; item = zhash_next (self->pins)) {
            char key [sizeof self->pin_prefix + BLOB_HASH_HEX_SIZE + 1];
            snprintf (key, sizeof key, "%s%s", self->pin_prefix, zhash_cursor (self->pins));
            s_pins_add (key, - (int) (uintptr_t) item);
        }
        zhash_destroy (&self->pins);
        sqlite3_stmt *stmts [] = { self->lookup, self->touch, self->insert, self->remove,
                                   self->totals, self->raw_has, self->raw_insert,
                                   self->raw_remove, self->raw_modes, self->lru };
        for (size_t i = 0; i < sizeof stmts / sizeof stmts [0]; i++)
            sqlite3_finalize (stmts [i]);
        sqlite3_close (self->db);
        zstr_free (&self->db_path);
        free (self->dir);
        free (self);
        *self_p = NULL;
    }
}

void
blob_store_set_now (blob_store_t *self, int64_t now_ms)
{
    self->now_ms = now_ms;
}

//  --------------------------------------------------------------------------
//  Blobs

//  Evicts if a put or a new raw copy took the store over its bound,
//  sparing the blob just added: the caller is about to use it.
static void
s_enforce_bound (blob_store_t *self, const uint8_t hash [BLOB_HASH_SIZE])
{
    if (self->max_bytes && blob_store_bytes (self) > self->max_bytes) {
        blob_store_pin (self, hash);
        blob_store_evict (self);
        blob_store_unpin (self, hash);
    }
}

bool
blob_store_has (blob_store_t *self, const uint8_t hash [BLOB_HASH_SIZE])
{
    return s_lookup (self, hash, NULL, NULL) == 1;
}

void
blob_store_read_begin (blob_store_t *self)
{
    self->reading = s_exec (self, "BEGIN") == 0;
}

void
blob_store_read_end (blob_store_t *self)
{
    if (self->reading && s_exec (self, "COMMIT"))
        s_exec (self, "ROLLBACK");
    self->reading = false;
}

int
blob_store_put (blob_store_t *self, const uint8_t hash [BLOB_HASH_SIZE],
                const void *data, size_t size)
{
    uint8_t check [BLOB_HASH_SIZE];
    blob_hash_buffer (data, size, check);
    if (sodium_memcmp (check, hash, BLOB_HASH_SIZE) != 0) {
        errno = EINVAL;
        return -1;
    }
    //  Already here: only mark it used. A row whose file has gone (removed
    //  by hand, say) is dropped and the blob written again.
    int64_t last_used;
    char *path = s_path (self, hash, -1, false);
    if (s_lookup (self, hash, NULL, &last_used) == 1) {
        if (access (path, F_OK) == 0) {
            zstr_free (&path);
            s_touch (self, hash, last_used);
            return 0;
        }
        s_forget (self, hash);
    }
    size_t bound = ZSTD_compressBound (size);
    uint8_t *frame = (uint8_t *) malloc (bound? bound: 1);
    assert (frame);
    size_t frame_size = ZSTD_compress (frame, bound, data, size, BLOB_STORE_ZSTD_LEVEL);
    char *temp = NULL, *subdir = NULL;
    int rc = -1;
    if (ZSTD_isError (frame_size)) {
        errno = EINVAL;
        goto done;
    }
    //  A blob that alone exceeds the bound could only be stored by
    //  evicting everything, itself included.
    if (self->max_bytes && frame_size > self->max_bytes) {
        errno = EFBIG;
        goto done;
    }
    subdir = s_path (self, hash, -1, true);
    if (s_mkdir (subdir))
        goto done;
    temp = s_write_temp (self, frame, frame_size, 0444);
    if (!temp)
        goto done;
    if (s_exec (self, "BEGIN IMMEDIATE"))
        goto done;
    s_bind_hash (self->insert, 1, hash);
    sqlite3_bind_int64 (self->insert, 2, (sqlite3_int64) size);
    sqlite3_bind_int64 (self->insert, 3, (sqlite3_int64) frame_size);
    sqlite3_bind_int64 (self->insert, 4, s_now_ms (self));
    int step = sqlite3_step (self->insert);
    s_done (self->insert);
    if (rename (temp, path) || step != SQLITE_DONE || s_exec (self, "COMMIT")) {
        int saved = errno;
        s_exec (self, "ROLLBACK");
        errno = saved;
        goto done;
    }
    zstr_free (&temp);
    rc = 0;
done:
    if (temp)
        unlink (temp);
    zstr_free (&temp);
    zstr_free (&subdir);
    zstr_free (&path);
    free (frame);
    if (rc == 0)
        s_enforce_bound (self, hash);
    return rc;
}

uint8_t *
blob_store_get (blob_store_t *self, const uint8_t hash [BLOB_HASH_SIZE], size_t *size_p)
{
    uint64_t raw_size;
    int64_t last_used;
    if (s_lookup (self, hash, &raw_size, &last_used) != 1) {
        errno = ENOENT;
        return NULL;
    }
    uint8_t *data = s_load (self, hash, raw_size);
    if (data) {
        s_touch (self, hash, last_used);
        if (size_p)
            *size_p = (size_t) raw_size;
    }
    return data;
}

//  Makes `path` a hard link to the blob's raw copy of `mode`, creating the
//  raw copy first if needed. Returns 0, or -1 with errno (EEXIST: path
//  exists; anything else: the caller may still copy).
static int
s_link_raw (blob_store_t *self, const uint8_t hash [BLOB_HASH_SIZE], uint64_t raw_size,
            const char *path, unsigned mode)
{
    char *raw = s_path (self, hash, (int) mode, false);
    int rc = -1;
    //  Raw copies are trusted, not re-hashed: they were written from
    //  verified bytes and are read-only; hashing on every link would cost
    //  what the link saves. An existing one is linked before any query
    //  (a job links dozens: the index is only needed to make one).
    if (link (raw, path) == 0) {
        rc = 0;
        goto done;
    }
    if (errno != ENOENT || access (raw, F_OK) == 0)
        goto done;                      //  EEXIST, EXDEV, EMLINK, or no parent
    s_bind_hash (self->raw_has, 1, hash);
    sqlite3_bind_int (self->raw_has, 2, (int) mode);
    bool indexed = sqlite3_step (self->raw_has) == SQLITE_ROW;
    s_done (self->raw_has);
    if (indexed) {
        //  Indexed but gone: drop the row and make it again.
        s_bind_hash (self->raw_remove, 1, hash);
        sqlite3_bind_int (self->raw_remove, 2, (int) mode);
        sqlite3_step (self->raw_remove);
        s_done (self->raw_remove);
    }
    uint8_t *data = s_load (self, hash, raw_size);
    if (!data)
        goto done;
    char *subdir = s_path (self, hash, (int) mode, true);
    char *temp = s_mkdir (subdir) == 0? s_write_temp (self, data, raw_size, mode): NULL;
    zstr_free (&subdir);
    free (data);
    if (!temp)
        goto done;
    //  Renamed and indexed in one transaction, and only while the blob's
    //  row exists: an eviction in another process cannot slip between and
    //  leave an unaccounted raw copy behind.
    bool added = false;
    if (s_exec (self, "BEGIN IMMEDIATE") == 0) {
        s_bind_hash (self->raw_insert, 1, hash);
        sqlite3_bind_int (self->raw_insert, 2, (int) mode);
        int step = sqlite3_step (self->raw_insert);
        bool inserted = step == SQLITE_DONE && sqlite3_changes (self->db) == 1;
        s_done (self->raw_insert);
        if (step == SQLITE_DONE && (!inserted || rename (temp, raw) == 0)
        &&  s_exec (self, "COMMIT") == 0)
            added = true;
        else
            s_exec (self, "ROLLBACK");
    }
    unlink (temp);                      //  ENOENT when renamed
    zstr_free (&temp);
    if (added)
        rc = link (raw, path);
    else
        errno = EIO;
    int saved = errno;
    s_enforce_bound (self, hash);
    errno = saved;
done:
    zstr_free (&raw);
    return rc;
}

//  Writes a private copy of the blob to `path`.
static int
s_copy (blob_store_t *self, const uint8_t hash [BLOB_HASH_SIZE], uint64_t raw_size,
        const char *path, unsigned mode)
{
    uint8_t *data = s_load (self, hash, raw_size);
    if (!data)
        return -1;
    int rc = -1;
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        //  fchmod, not open's mode: the umask must not change the mode
        //  the manifest asked for.
        rc = s_write_all (fd, data, raw_size) || fchmod (fd, mode)? -1: 0;
        int saved = errno;
        if (close (fd))
            rc = -1;
        if (rc) {
            unlink (path);
            errno = saved;
        }
    }
    free (data);
    return rc;
}

int
blob_store_materialize (blob_store_t *self, const uint8_t hash [BLOB_HASH_SIZE],
                        const char *path, unsigned mode)
{
    mode &= 07777;
    uint64_t raw_size;
    int64_t last_used;
    if (s_lookup (self, hash, &raw_size, &last_used) != 1) {
        errno = ENOENT;
        return -1;
    }
    int rc = -1;
    if ((mode & 07222) == 0) {
        rc = s_link_raw (self, hash, raw_size, path, mode);
        if (rc && (errno == EEXIST || !blob_store_has (self, hash)))
            return -1;                  //  exists, or the blob was corrupt
    }
    if (rc)
        rc = s_copy (self, hash, raw_size, path, mode);
    if (rc == 0)
        s_touch (self, hash, last_used);
    return rc;
}

void
blob_store_pin (blob_store_t *self, const uint8_t hash [BLOB_HASH_SIZE])
{
    char hex [BLOB_HASH_HEX_SIZE + 1];
    blob_hash_hex (hash, hex);
    uintptr_t count = (uintptr_t) zhash_lookup (self->pins, hex);
    if (count)
        zhash_update (self->pins, hex, (void *) (count + 1));
    else
        zhash_insert (self->pins, hex, (void *) (uintptr_t) 1);
    char key [sizeof self->pin_prefix + BLOB_HASH_HEX_SIZE + 1];
    s_pin_key (self, hash, key, sizeof key);
    s_pins_add (key, 1);
}

void
blob_store_unpin (blob_store_t *self, const uint8_t hash [BLOB_HASH_SIZE])
{
    char hex [BLOB_HASH_HEX_SIZE + 1];
    blob_hash_hex (hash, hex);
    uintptr_t count = (uintptr_t) zhash_lookup (self->pins, hex);
    if (count == 0)
        return;                         //  not pinned by this object
    if (count == 1)
        zhash_delete (self->pins, hex);
    else
        zhash_update (self->pins, hex, (void *) (count - 1));
    char key [sizeof self->pin_prefix + BLOB_HASH_HEX_SIZE + 1];
    s_pin_key (self, hash, key, sizeof key);
    s_pins_add (key, -1);
}

bool
blob_store_pinned (blob_store_t *self, const uint8_t hash [BLOB_HASH_SIZE])
{
    char key [sizeof self->pin_prefix + BLOB_HASH_HEX_SIZE + 1];
    s_pin_key (self, hash, key, sizeof key);
    return s_pins_has (key);
}

//  Victims are chosen first and removed after, because deleting rows under
//  a running SELECT on the same connection has undefined visiting order.
//  All of it happens in one write transaction so that two evicting
//  processes do not both count the same bytes as freed.
size_t
blob_store_evict (blob_store_t *self)
{
    uint64_t bytes;
    if (!self->max_bytes || s_totals (self, &bytes, NULL) || bytes <= self->max_bytes)
        return 0;
    if (s_exec (self, "BEGIN IMMEDIATE"))
        return 0;
    size_t count = 0, room = 0;
    uint8_t (*victims) [BLOB_HASH_SIZE] = NULL;
    if (s_totals (self, &bytes, NULL))
        goto fail;
    while (bytes > self->max_bytes && sqlite3_step (self->lru) == SQLITE_ROW) {
        const void *hash = sqlite3_column_blob (self->lru, 0);
        if (sqlite3_column_bytes (self->lru, 0) != BLOB_HASH_SIZE
        ||  blob_store_pinned (self, (const uint8_t *) hash))
            continue;
        if (count == room) {
            room = room? room * 2: 16;
            victims = realloc (victims, room * BLOB_HASH_SIZE);
            assert (victims);
        }
        memcpy (victims [count++], hash, BLOB_HASH_SIZE);
        uint64_t size = (uint64_t) sqlite3_column_int64 (self->lru, 1);
        bytes = size < bytes? bytes - size: 0;
    }
    s_done (self->lru);
    for (size_t i = 0; i < count; i++)
        if (s_remove (self, victims [i]))
            goto fail;
    if (s_exec (self, "COMMIT"))
        goto fail;
    free (victims);
    return count;

fail:
    s_done (self->lru);
    s_exec (self, "ROLLBACK");
    free (victims);
    return 0;
}

uint64_t
blob_store_bytes (blob_store_t *self)
{
    uint64_t bytes = 0;
    s_totals (self, &bytes, NULL);
    return bytes;
}

size_t
blob_store_count (blob_store_t *self)
{
    uint64_t bytes, count = 0;
    s_totals (self, &bytes, &count);
    return (size_t) count;
}

//  --------------------------------------------------------------------------
//  Self-test: the round trip, refusal of a wrong hash, materialising by
//  link, and the bound. tests/unit/test_cache.c covers the rest.

void
blob_store_test (bool verbose)
{
    if (verbose)
        printf (" * blob_store: ");
    char dir [] = "/tmp/blob-store-test-XXXXXX";
    assert (mkdtemp (dir));
    char err [256];
    blob_store_t *store = blob_store_new (dir, 0, err, sizeof err);
    assert (store);

    const char *text = "int main (void) { return 0; }\n";
    uint8_t hash [BLOB_HASH_SIZE], other [BLOB_HASH_SIZE];
    blob_hash_buffer (text, strlen (text), hash);
    assert (!blob_store_has (store, hash));
    assert (blob_store_put (store, hash, text, strlen (text)) == 0);
    assert (blob_store_put (store, hash, text, strlen (text)) == 0);
    assert (blob_store_has (store, hash));
    assert (blob_store_count (store) == 1);
    size_t size;
    uint8_t *data = blob_store_get (store, hash, &size);
    assert (data && size == strlen (text) && memcmp (data, text, size) == 0);
    free (data);

    memcpy (other, hash, sizeof other);
    other [0] ^= 1;
    assert (blob_store_put (store, other, text, strlen (text)) == -1);
    assert (!blob_store_has (store, other));
    assert (blob_store_get (store, other, &size) == NULL);

    char path_a [64], path_b [64];
    snprintf (path_a, sizeof path_a, "%s/a.c", dir);
    snprintf (path_b, sizeof path_b, "%s/b.c", dir);
    assert (blob_store_materialize (store, hash, path_a, 0444) == 0);
    assert (blob_store_materialize (store, hash, path_b, 0444) == 0);
    assert (blob_store_materialize (store, hash, path_b, 0444) == -1 && errno == EEXIST);
    struct stat st_a, st_b;
    assert (stat (path_a, &st_a) == 0 && stat (path_b, &st_b) == 0);
    assert (st_a.st_ino == st_b.st_ino && (st_a.st_mode & 07777) == 0444);
    blob_store_destroy (&store);
    assert (store == NULL);

    //  Reopened with a bound smaller than what is stored: evicts all.
    store = blob_store_new (dir, 1, err, sizeof err);
    assert (store);
    assert (blob_store_evict (store) == 1);
    assert (blob_store_count (store) == 0 && blob_store_bytes (store) == 0);
    blob_store_destroy (&store);

    char *command = zsys_sprintf ("rm -rf '%s'", dir);
    assert (system (command) == 0);
    zstr_free (&command);
    if (verbose)
        printf ("OK\n");
}
