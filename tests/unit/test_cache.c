//  Unit tests of src/cache: the blob store (round trip, verification,
//  corruption, materialising, LRU eviction with pins, sharing a directory
//  between threads) and the hash cache (hits, misses, racy files).

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "meshcc/blob_store.h"
#include "meshcc/hash_cache.h"
#include "meshcc/tree_remove.h"

//  --------------------------------------------------------------------------
//  Helpers

typedef struct {
    char dir [64];
} fixture_t;

static int
s_setup (void **state)
{
    fixture_t *fixture = calloc (1, sizeof (fixture_t));
    snprintf (fixture->dir, sizeof fixture->dir, "/tmp/test-cache-XXXXXX");
    if (!mkdtemp (fixture->dir))
        return -1;
    *state = fixture;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *fixture = *state;
    tree_remove (fixture->dir);
    free (fixture);
    return 0;
}

static blob_store_t *
s_store (fixture_t *fixture, uint64_t max_bytes)
{
    char err [256] = "";
    blob_store_t *store = blob_store_new (fixture->dir, max_bytes, err, sizeof err);
    if (!store)
        fail_msg ("blob_store_new: %s", err);
    return store;
}

//  Random bytes do not compress: a blob of `size` costs about `size`.
static uint8_t *
s_random (size_t size, uint8_t hash [BLOB_HASH_SIZE])
{
    uint8_t *data = malloc (size);
    randombytes_buf (data, size);
    blob_hash_buffer (data, size, hash);
    return data;
}

static char *
s_blob_path (fixture_t *fixture, const uint8_t hash [BLOB_HASH_SIZE])
{
    char hex [BLOB_HASH_HEX_SIZE + 1];
    blob_hash_hex (hash, hex);
    char *path = malloc (strlen (fixture->dir) + BLOB_HASH_HEX_SIZE + 16);
    sprintf (path, "%s/blobs/%.2s/%s", fixture->dir, hex, hex + 2);
    return path;
}

static void
s_write_file (const char *path, const void *data, size_t size)
{
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    assert_int_equal (fwrite (data, 1, size, file), size);
    assert_int_equal (fclose (file), 0);
}

static void
s_set_mtime (const char *path, time_t when)
{
    struct timespec times [2] = { { when, 0 }, { when, 0 } };
    assert_int_equal (utimensat (AT_FDCWD, path, times, 0), 0);
}

//  --------------------------------------------------------------------------
//  Blob store

static void
test_selftests (void **state)
{
    (void) state;
    blob_store_test (false);
    hash_cache_test (false);
}

static void
test_round_trip (void **state)
{
    fixture_t *fixture = *state;
    blob_store_t *store = s_store (fixture, 0);

    //  Compressible, empty, and larger than one hashing read.
    size_t sizes [] = { 4000, 0, 200 * 1024 + 17 };
    for (size_t i = 0; i < 3; i++) {
        uint8_t *data = malloc (sizes [i] + 1);
        for (size_t j = 0; j < sizes [i]; j++)
            data [j] = (uint8_t) (i == 1? 0: "header text "[j % 12] + (j / 4096));
        uint8_t hash [BLOB_HASH_SIZE];
        blob_hash_buffer (data, sizes [i], hash);
        assert_false (blob_store_has (store, hash));
        assert_int_equal (blob_store_put (store, hash, data, sizes [i]), 0);
        assert_true (blob_store_has (store, hash));
        //  Idempotent.
        assert_int_equal (blob_store_put (store, hash, data, sizes [i]), 0);
        size_t size = 12345;
        uint8_t *copy = blob_store_get (store, hash, &size);
        assert_non_null (copy);
        assert_int_equal (size, sizes [i]);
        assert_memory_equal (copy, data, size);
        free (copy);
        free (data);
    }
    assert_int_equal (blob_store_count (store), 3);
    //  The compressible blobs are stored smaller than they are.
    assert_true (blob_store_bytes (store) < 4000 + 200 * 1024);

    //  Stored as a zstd frame at blobs/ab/cdef..., read-only.
    uint8_t hash [BLOB_HASH_SIZE];
    blob_hash_buffer ("", 0, hash);
    char *path = s_blob_path (fixture, hash);
    struct stat st;
    assert_int_equal (stat (path, &st), 0);
    assert_int_equal (st.st_mode & 07777, 0444);
    free (path);
    blob_store_destroy (&store);
    assert_null (store);

    //  Survives reopening.
    store = s_store (fixture, 0);
    assert_int_equal (blob_store_count (store), 3);
    assert_true (blob_store_has (store, hash));
    blob_store_destroy (&store);
}

//  Lookups in one read transaction see one snapshot: a blob another
//  connection adds meanwhile shows only after the end, and writing works
//  again after it.
static void
test_read_transaction (void **state)
{
    fixture_t *fixture = *state;
    blob_store_t *store = s_store (fixture, 0);
    blob_store_t *other = s_store (fixture, 0);
    uint8_t a [BLOB_HASH_SIZE], b [BLOB_HASH_SIZE], c [BLOB_HASH_SIZE];
    blob_hash_buffer ("a", 1, a);
    blob_hash_buffer ("b", 1, b);
    blob_hash_buffer ("c", 1, c);
    assert_int_equal (blob_store_put (store, a, "a", 1), 0);

    blob_store_read_begin (store);
    assert_true (blob_store_has (store, a));
    assert_false (blob_store_has (store, b));
    assert_int_equal (blob_store_put (other, b, "b", 1), 0);
    assert_false (blob_store_has (store, b));       //  the snapshot
    blob_store_read_end (store);
    assert_true (blob_store_has (store, b));

    assert_int_equal (blob_store_put (store, c, "c", 1), 0);
    assert_true (blob_store_has (other, c));
    blob_store_destroy (&other);
    blob_store_destroy (&store);
}

static void
test_hash_mismatch (void **state)
{
    fixture_t *fixture = *state;
    blob_store_t *store = s_store (fixture, 0);
    const char *text = "int x;\n";
    uint8_t hash [BLOB_HASH_SIZE];
    blob_hash_buffer ("int y;\n", 7, hash);
    assert_int_equal (blob_store_put (store, hash, text, strlen (text)), -1);
    assert_false (blob_store_has (store, hash));
    assert_int_equal (blob_store_count (store), 0);
    assert_int_equal (blob_store_bytes (store), 0);
    size_t size;
    assert_null (blob_store_get (store, hash, &size));
    assert_int_equal (blob_store_materialize (store, hash, "/nonexistent/x", 0444), -1);
    blob_store_destroy (&store);
}

static void
test_corrupted_blob (void **state)
{
    fixture_t *fixture = *state;
    blob_store_t *store = s_store (fixture, 0);
    uint8_t hash [BLOB_HASH_SIZE];
    uint8_t *data = s_random (5000, hash);
    assert_int_equal (blob_store_put (store, hash, data, 5000), 0);

    //  Flip one byte in the middle of the stored frame.
    char *path = s_blob_path (fixture, hash);
    assert_int_equal (chmod (path, 0644), 0);
    int fd = open (path, O_RDWR);
    assert_true (fd >= 0);
    uint8_t byte;
    assert_int_equal (pread (fd, &byte, 1, 2500), 1);
    byte ^= 0x40;
    assert_int_equal (pwrite (fd, &byte, 1, 2500), 1);
    close (fd);

    size_t size;
    assert_null (blob_store_get (store, hash, &size));
    assert_false (blob_store_has (store, hash));
    assert_int_equal (access (path, F_OK), -1);
    assert_int_equal (blob_store_count (store), 0);
    assert_int_equal (blob_store_bytes (store), 0);

    //  Stored again, it is whole again. A file removed by hand is noticed
    //  the same way, by get and by put.
    assert_int_equal (blob_store_put (store, hash, data, 5000), 0);
    uint8_t *copy = blob_store_get (store, hash, &size);
    assert_non_null (copy);
    free (copy);
    assert_int_equal (unlink (path), 0);
    assert_int_equal (blob_store_put (store, hash, data, 5000), 0);
    assert_int_equal (access (path, F_OK), 0);
    assert_int_equal (unlink (path), 0);
    assert_null (blob_store_get (store, hash, &size));
    assert_false (blob_store_has (store, hash));
    free (path);
    free (data);
    blob_store_destroy (&store);
}

static void
test_materialize (void **state)
{
    fixture_t *fixture = *state;
    blob_store_t *store = s_store (fixture, 0);
    const char *text = "#pragma once\nint f (void);\n";
    size_t size = strlen (text);
    uint8_t hash [BLOB_HASH_SIZE];
    blob_hash_buffer (text, size, hash);
    assert_int_equal (blob_store_put (store, hash, text, size), 0);
    uint64_t stored = blob_store_bytes (store);

    char a [128], b [128], c [128], d [128], e [128];
    snprintf (a, sizeof a, "%s/a.h", fixture->dir);
    snprintf (b, sizeof b, "%s/b.h", fixture->dir);
    snprintf (c, sizeof c, "%s/c.h", fixture->dir);
    snprintf (d, sizeof d, "%s/d.h", fixture->dir);
    snprintf (e, sizeof e, "%s/e.sh", fixture->dir);

    //  The first one creates the raw copy, which counts against the bound.
    assert_int_equal (blob_store_materialize (store, hash, a, 0444), 0);
    assert_int_equal (blob_store_bytes (store), stored + size);
    struct stat st_a, st_b, st_c, st_d, st_e;
    assert_int_equal (stat (a, &st_a), 0);
    assert_int_equal (st_a.st_mode & 07777, 0444);
    assert_int_equal (st_a.st_size, size);
    char buffer [128];
    FILE *file = fopen (a, "r");
    assert_non_null (file);
    assert_int_equal (fread (buffer, 1, sizeof buffer, file), size);
    fclose (file);
    assert_memory_equal (buffer, text, size);

    //  The second is a link to the same inode and costs nothing.
    assert_int_equal (blob_store_materialize (store, hash, b, 0444), 0);
    assert_int_equal (stat (b, &st_b), 0);
    assert_int_equal (st_a.st_ino, st_b.st_ino);
    assert_true (st_b.st_nlink >= 3);           //  raw copy, a, b
    assert_int_equal (blob_store_bytes (store), stored + size);

    //  Never replaces anything.
    assert_int_equal (blob_store_materialize (store, hash, b, 0444), -1);
    assert_int_equal (errno, EEXIST);
    s_write_file (c, "mine", 4);
    assert_int_equal (blob_store_materialize (store, hash, c, 0644), -1);
    assert_int_equal (errno, EEXIST);
    assert_int_equal (stat (c, &st_c), 0);
    assert_int_equal (st_c.st_size, 4);

    //  A writable mode is a private copy with exactly that mode, whatever
    //  the umask.
    mode_t umask_was = umask (077);
    assert_int_equal (blob_store_materialize (store, hash, d, 0666), 0);
    umask (umask_was);
    assert_int_equal (stat (d, &st_d), 0);
    assert_int_equal (st_d.st_mode & 07777, 0666);
    assert_int_equal (st_d.st_nlink, 1);
    assert_true (st_d.st_ino != st_a.st_ino);

    //  Another read-only mode has its own raw copy.
    assert_int_equal (blob_store_materialize (store, hash, e, 0555), 0);
    assert_int_equal (stat (e, &st_e), 0);
    assert_int_equal (st_e.st_mode & 07777, 0555);
    assert_true (st_e.st_ino != st_a.st_ino);
    assert_int_equal (blob_store_bytes (store), stored + 2 * size);

    //  A missing parent directory is an error, not a crash.
    snprintf (buffer, sizeof buffer, "%s/no/such/dir.h", fixture->dir);
    assert_int_equal (blob_store_materialize (store, hash, buffer, 0444), -1);

    //  Eviction removes the raw copies too; links already made stay.
    blob_store_destroy (&store);
    store = s_store (fixture, 1);
    assert_int_equal (blob_store_evict (store), 1);
    assert_int_equal (blob_store_bytes (store), 0);
    assert_int_equal (stat (a, &st_a), 0);
    assert_int_equal (st_a.st_nlink, 2);        //  a and b only
    blob_store_destroy (&store);
}

//  8 KiB random blobs under a 64 KiB bound, with a fake clock a minute per
//  step so that each use is a distinct LRU time.
static void
test_eviction (void **state)
{
    fixture_t *fixture = *state;
    const uint64_t bound = 64 * 1024;
    const size_t blob_size = 8 * 1024;
    enum { BLOBS = 20 };
    blob_store_t *store = s_store (fixture, bound);
    uint8_t hashes [BLOBS][BLOB_HASH_SIZE];
    int64_t now = 1700000000000;

    //  0 is pinned, 1 is kept hot by reads, 2.. are used once each.
    for (size_t i = 0; i < BLOBS; i++) {
        blob_store_set_now (store, now += 60000);
        uint8_t *data = s_random (blob_size, hashes [i]);
        assert_int_equal (blob_store_put (store, hashes [i], data, blob_size), 0);
        free (data);
        if (i == 0)
            blob_store_pin (store, hashes [0]);
        if (i > 1) {
            blob_store_set_now (store, now += 60000);
            size_t size;
            uint8_t *copy = blob_store_get (store, hashes [1], &size);
            assert_non_null (copy);
            free (copy);
        }
        assert_true (blob_store_bytes (store) <= bound);
        //  The one just put is always there.
        assert_true (blob_store_has (store, hashes [i]));
    }
    assert_true (blob_store_pinned (store, hashes [0]));
    assert_true (blob_store_has (store, hashes [0]));
    assert_true (blob_store_has (store, hashes [1]));
    //  Least recently used went first: the early ones are gone, the last
    //  ones are all here.
    assert_false (blob_store_has (store, hashes [2]));
    assert_false (blob_store_has (store, hashes [3]));
    for (size_t i = BLOBS - 4; i < BLOBS; i++)
        assert_true (blob_store_has (store, hashes [i]));
    size_t count = blob_store_count (store);
    assert_true (count >= 6 && count < 8);
    //  Within bound already: nothing to evict.
    assert_int_equal (blob_store_evict (store), 0);

    //  Unpinned, the oldest blob goes at the next eviction.
    blob_store_unpin (store, hashes [0]);
    blob_store_unpin (store, hashes [0]);       //  one too many: no effect
    assert_false (blob_store_pinned (store, hashes [0]));
    blob_store_destroy (&store);
    store = s_store (fixture, bound - blob_size);
    assert_true (blob_store_evict (store) >= 1);
    assert_false (blob_store_has (store, hashes [0]));
    assert_true (blob_store_has (store, hashes [BLOBS - 1]));
    assert_true (blob_store_bytes (store) <= bound - blob_size);

    //  A blob bigger than the whole bound is refused, not stored and lost.
    uint8_t big_hash [BLOB_HASH_SIZE];
    uint8_t *big = s_random (bound, big_hash);
    assert_int_equal (blob_store_put (store, big_hash, big, bound), -1);
    assert_int_equal (errno, EFBIG);
    assert_false (blob_store_has (store, big_hash));
    free (big);
    blob_store_destroy (&store);
}

//  A raw copy made by materialize counts too: making one that takes the
//  store over its bound evicts older blobs, never the one materialised.
static void
test_materialize_evicts (void **state)
{
    fixture_t *fixture = *state;
    blob_store_t *store = s_store (fixture, 20 * 1024);
    uint8_t old [BLOB_HASH_SIZE], hot [BLOB_HASH_SIZE];
    uint8_t *data_old = s_random (8 * 1024, old);
    uint8_t *data_hot = s_random (8 * 1024, hot);
    blob_store_set_now (store, 1700000000000);
    assert_int_equal (blob_store_put (store, old, data_old, 8 * 1024), 0);
    blob_store_set_now (store, 1700000060000);
    assert_int_equal (blob_store_put (store, hot, data_hot, 8 * 1024), 0);
    assert_int_equal (blob_store_count (store), 2);
    char path [128];
    snprintf (path, sizeof path, "%s/hot.h", fixture->dir);
    assert_int_equal (blob_store_materialize (store, hot, path, 0444), 0);
    assert_false (blob_store_has (store, old));
    assert_true (blob_store_has (store, hot));
    assert_true (blob_store_bytes (store) <= 20 * 1024);
    blob_store_destroy (&store);
    free (data_old);
    free (data_hot);
}

//  Pins are shared by every store object of the process on a directory,
//  and released when the object that made them goes.
static void
test_pins_shared (void **state)
{
    fixture_t *fixture = *state;
    blob_store_t *mine = s_store (fixture, 0);
    blob_store_t *other = s_store (fixture, 1);
    uint8_t hash [BLOB_HASH_SIZE];
    uint8_t *data = s_random (1000, hash);
    assert_int_equal (blob_store_put (mine, hash, data, 1000), 0);
    blob_store_pin (mine, hash);
    blob_store_pin (mine, hash);
    assert_true (blob_store_pinned (other, hash));
    assert_int_equal (blob_store_evict (other), 0);
    assert_true (blob_store_has (other, hash));
    //  Unpinning in another object does not release mine.
    blob_store_unpin (other, hash);
    assert_true (blob_store_pinned (other, hash));
    blob_store_unpin (mine, hash);
    assert_true (blob_store_pinned (other, hash));
    blob_store_destroy (&mine);
    assert_false (blob_store_pinned (other, hash));
    assert_int_equal (blob_store_evict (other), 1);
    assert_false (blob_store_has (other, hash));
    blob_store_destroy (&other);
    free (data);
}

typedef struct {
    const char *dir;
    int index;
    uint8_t (*hashes) [BLOB_HASH_SIZE];
    uint8_t **data;
    size_t count;
    int failures;
} worker_t;

//  Each thread opens its own store on the shared directory at the same
//  time as the other (a fresh one: both race to create the schema) and
//  puts every blob (the same ones, so both write each file), then checks
//  it can read them all.
static void *
s_worker (void *arg)
{
    worker_t *worker = arg;
    char err [256];
    blob_store_t *store = blob_store_new (worker->dir, 0, err, sizeof err);
    if (!store) {
        worker->failures++;
        return NULL;
    }
    for (size_t j = 0; j < worker->count; j++) {
        size_t i = (j + worker->index * worker->count / 2) % worker->count;
        if (blob_store_put (store, worker->hashes [i], worker->data [i], 2000))
            worker->failures++;
    }
    for (size_t i = 0; i < worker->count; i++) {
        size_t size;
        uint8_t *copy = blob_store_get (store, worker->hashes [i], &size);
        if (!copy || size != 2000 || memcmp (copy, worker->data [i], size))
            worker->failures++;
        free (copy);
    }
    blob_store_destroy (&store);
    return NULL;
}

static void
test_two_threads (void **state)
{
    fixture_t *fixture = *state;
    enum { COUNT = 40 };
    uint8_t hashes [COUNT][BLOB_HASH_SIZE];
    uint8_t *data [COUNT];
    for (size_t i = 0; i < COUNT; i++)
        data [i] = s_random (2000, hashes [i]);
    worker_t workers [2];
    pthread_t threads [2];
    for (int t = 0; t < 2; t++) {
        workers [t] = (worker_t) { fixture->dir, t, hashes, data, COUNT, 0 };
        assert_int_equal (pthread_create (&threads [t], NULL, s_worker, &workers [t]), 0);
    }
    for (int t = 0; t < 2; t++) {
        pthread_join (threads [t], NULL);
        assert_int_equal (workers [t].failures, 0);
    }
    //  And a third object sees what both wrote, counted once.
    blob_store_t *store = s_store (fixture, 0);
    assert_int_equal (blob_store_count (store), COUNT);
    for (size_t i = 0; i < COUNT; i++) {
        assert_true (blob_store_has (store, hashes [i]));
        free (data [i]);
    }
    blob_store_destroy (&store);

    //  Threads each with their own store, one putting, one reading what
    //  the other put after it was put.
    blob_store_t *a = s_store (fixture, 0);
    blob_store_t *b = s_store (fixture, 0);
    uint8_t hash [BLOB_HASH_SIZE];
    uint8_t *blob = s_random (300, hash);
    assert_false (blob_store_has (b, hash));
    assert_int_equal (blob_store_put (a, hash, blob, 300), 0);
    assert_true (blob_store_has (b, hash));
    free (blob);
    blob_store_destroy (&a);
    blob_store_destroy (&b);
}

static void
test_schema_version (void **state)
{
    fixture_t *fixture = *state;
    blob_store_t *store = s_store (fixture, 0);
    blob_store_destroy (&store);
    char path [128], err [256];
    snprintf (path, sizeof path, "%s/blobs.db", fixture->dir);
    sqlite3 *db;
    assert_int_equal (sqlite3_open (path, &db), SQLITE_OK);
    sqlite3_stmt *stmt;
    assert_int_equal (sqlite3_prepare_v2 (db, "PRAGMA user_version", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal (sqlite3_step (stmt), SQLITE_ROW);
    assert_int_equal (sqlite3_column_int (stmt, 0), 1);
    sqlite3_finalize (stmt);
    //  No pins column: pins never reach the disk.
    assert_int_not_equal (sqlite3_exec (db, "SELECT pins FROM blobs", NULL, NULL, NULL),
                          SQLITE_OK);
    assert_int_equal (sqlite3_exec (db, "PRAGMA user_version = 99", NULL, NULL, NULL),
                      SQLITE_OK);
    sqlite3_close (db);
    assert_null (blob_store_new (fixture->dir, 0, err, sizeof err));
    assert_non_null (strstr (err, "newer"));

    //  Stale temporary files are swept on open; fresh ones are left to
    //  the writer that may be about to rename them.
    assert_int_equal (sqlite3_open (path, &db), SQLITE_OK);
    sqlite3_exec (db, "PRAGMA user_version = 1", NULL, NULL, NULL);
    sqlite3_close (db);
    char stale [128], fresh [128];
    snprintf (stale, sizeof stale, "%s/tmp/blob-stale1", fixture->dir);
    snprintf (fresh, sizeof fresh, "%s/tmp/blob-fresh1", fixture->dir);
    s_write_file (stale, "x", 1);
    s_write_file (fresh, "x", 1);
    s_set_mtime (stale, time (NULL) - 7200);
    store = s_store (fixture, 0);
    assert_int_equal (access (stale, F_OK), -1);
    assert_int_equal (access (fresh, F_OK), 0);
    blob_store_destroy (&store);
}

//  --------------------------------------------------------------------------
//  Hashing and the hash cache

static void
test_hash_file (void **state)
{
    fixture_t *fixture = *state;
    char path [128];
    snprintf (path, sizeof path, "%s/big.bin", fixture->dir);
    //  Sizes around the 64 KiB read size, and empty.
    size_t sizes [] = { 0, 1, 65535, 65536, 65537, 300000 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes [0]; i++) {
        uint8_t expected [BLOB_HASH_SIZE], hash [BLOB_HASH_SIZE];
        uint8_t *data = s_random (sizes [i], expected);
        s_write_file (path, data, sizes [i]);
        assert_int_equal (blob_hash_file (path, hash), 0);
        assert_memory_equal (hash, expected, BLOB_HASH_SIZE);
        free (data);
    }
    //  Known answer: BLAKE2b-256 of "abc" (RFC 7693 parameters, 32 bytes).
    uint8_t hash [BLOB_HASH_SIZE];
    char hex [BLOB_HASH_HEX_SIZE + 1];
    blob_hash_buffer ("abc", 3, hash);
    blob_hash_hex (hash, hex);
    assert_string_equal (hex, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
    assert_int_equal (blob_hash_file ("/nonexistent/file", hash), -1);
}

static void
test_hash_cache (void **state)
{
    fixture_t *fixture = *state;
    char err [256], path [128];
    hash_cache_t *cache = hash_cache_new (fixture->dir, err, sizeof err);
    assert_non_null (cache);
    snprintf (path, sizeof path, "%s/x.h", fixture->dir);
    time_t old = time (NULL) - 3600;
    s_write_file (path, "int a;\n", 7);
    s_set_mtime (path, old);

    uint8_t hash [BLOB_HASH_SIZE], expected [BLOB_HASH_SIZE];
    blob_hash_buffer ("int a;\n", 7, expected);
    struct stat st;
    bool hit = true;
    assert_int_equal (stat (path, &st), 0);
    assert_int_equal (hash_cache_get (cache, path, &st, hash, &hit), 0);
    assert_false (hit);
    assert_memory_equal (hash, expected, BLOB_HASH_SIZE);
    assert_int_equal (hash_cache_get (cache, path, &st, hash, &hit), 0);
    assert_true (hit);
    assert_memory_equal (hash, expected, BLOB_HASH_SIZE);

    //  The second answer came from memory: with the table emptied behind
    //  its back, this object still knows the row; a new one does not.
    char db_path [160];
    snprintf (db_path, sizeof db_path, "%s/hashes.db", fixture->dir);
    sqlite3 *db = NULL;
    assert_int_equal (sqlite3_open (db_path, &db), SQLITE_OK);
    sqlite3_busy_timeout (db, 5000);
    assert_int_equal (sqlite3_exec (db, "DELETE FROM files", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal (hash_cache_get (cache, path, &st, hash, &hit), 0);
    assert_true (hit);
    assert_memory_equal (hash, expected, BLOB_HASH_SIZE);
    hash_cache_t *fresh = hash_cache_new (fixture->dir, err, sizeof err);
    assert_non_null (fresh);
    assert_int_equal (hash_cache_get (fresh, path, &st, hash, &hit), 0);
    assert_false (hit);
    assert_memory_equal (hash, expected, BLOB_HASH_SIZE);
    hash_cache_destroy (&fresh);
    sqlite3_close (db);

    //  Remembered across objects (and processes).
    hash_cache_destroy (&cache);
    assert_null (cache);
    cache = hash_cache_new (fixture->dir, err, sizeof err);
    assert_non_null (cache);
    assert_int_equal (hash_cache_get (cache, path, &st, hash, &hit), 0);
    assert_true (hit);

    //  Same size, new content, another (old) mtime: a miss with the new
    //  hash, then a hit.
    s_write_file (path, "int b;\n", 7);
    s_set_mtime (path, old + 10);
    blob_hash_buffer ("int b;\n", 7, expected);
    assert_int_equal (stat (path, &st), 0);
    assert_int_equal (hash_cache_get (cache, path, &st, hash, &hit), 0);
    assert_false (hit);
    assert_memory_equal (hash, expected, BLOB_HASH_SIZE);
    assert_int_equal (hash_cache_get (cache, path, &st, hash, &hit), 0);
    assert_true (hit);

    //  Only the mtime moves (touch): a miss, same hash.
    s_set_mtime (path, old + 20);
    assert_int_equal (stat (path, &st), 0);
    assert_int_equal (hash_cache_get (cache, path, &st, hash, &hit), 0);
    assert_false (hit);
    assert_memory_equal (hash, expected, BLOB_HASH_SIZE);

    //  Replaced by another file (new inode), same size and mtime: a miss.
    char other [128];
    snprintf (other, sizeof other, "%s/y.h", fixture->dir);
    s_write_file (other, "int c;\n", 7);
    s_set_mtime (other, old + 20);
    assert_int_equal (rename (other, path), 0);
    assert_int_equal (stat (path, &st), 0);
    assert_int_equal (hash_cache_get (cache, path, &st, hash, &hit), 0);
    assert_false (hit);
    blob_hash_buffer ("int c;\n", 7, expected);
    assert_memory_equal (hash, expected, BLOB_HASH_SIZE);

    //  Just modified: hashed, never cached.
    s_write_file (path, "int d;\n", 7);
    blob_hash_buffer ("int d;\n", 7, expected);
    assert_int_equal (stat (path, &st), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal (hash_cache_get (cache, path, &st, hash, &hit), 0);
        assert_false (hit);
        assert_memory_equal (hash, expected, BLOB_HASH_SIZE);
    }
    //  A stat the file no longer matches (changed after the caller's
    //  stat) is not cached under the caller's key either.
    struct stat stale = st;
    stale.st_mtim.tv_sec = old + 30;
    assert_int_equal (hash_cache_get (cache, path, &stale, hash, &hit), 0);
    assert_false (hit);
    assert_int_equal (hash_cache_get (cache, path, &stale, hash, &hit), 0);
    assert_false (hit);

    //  Unreadable: -1.
    snprintf (other, sizeof other, "%s/missing.h", fixture->dir);
    assert_int_equal (hash_cache_get (cache, other, &st, hash, &hit), -1);
    hash_cache_destroy (&cache);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_selftests, NULL, NULL),
        cmocka_unit_test_setup_teardown (test_round_trip, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_read_transaction, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_hash_mismatch, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_corrupted_blob, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_materialize, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_eviction, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_materialize_evicts, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_pins_shared, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_two_threads, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_schema_version, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_hash_file, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_hash_cache, s_setup, s_teardown),
    };
    if (sodium_init () < 0)
        return 1;
    return cmocka_run_group_tests_name ("cache", tests, NULL, NULL);
}
