//  blob_store: content-addressed storage of files (job inputs now,
//  toolchain archives later). A blob is named by its BLAKE2b-256 hash
//  (libsodium crypto_generichash, 32 bytes); its bytes live zstd-compressed
//  in DIR/blobs/ab/cdef... and an SQLite index (DIR/blobs.db, WAL, schema
//  version) records hash, raw size, stored size, last use. The store is
//  bounded by size and evicts least-recently-used blobs that are not
//  pinned. It never knows about peers, sockets or jobs.
//
//  Thread safety: one blob_store_t per thread (SQLite connections are not
//  shared); several stores may open the same directory at once.

#ifndef MESHCC_BLOB_STORE_H_INCLUDED
#define MESHCC_BLOB_STORE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BLOB_HASH_SIZE      32
#define BLOB_HASH_HEX_SIZE  (BLOB_HASH_SIZE * 2)

typedef struct _blob_store_t blob_store_t;

//  Opens (creating) the store in `dir` with a bound of `max_bytes` of
//  stored (compressed) data. Returns NULL with a message in err.
blob_store_t *blob_store_new (const char *dir, uint64_t max_bytes, char *err, size_t err_size);
void          blob_store_destroy (blob_store_t **self_p);

//  BLAKE2b-256 of a buffer / of a file's content (streamed).
void blob_hash_buffer (const void *data, size_t size, uint8_t hash [BLOB_HASH_SIZE]);
int  blob_hash_file (const char *path, uint8_t hash [BLOB_HASH_SIZE]);
void blob_hash_hex (const uint8_t hash [BLOB_HASH_SIZE], char hex [BLOB_HASH_HEX_SIZE + 1]);
//  The same as blob_hash_file for an open descriptor, read from its
//  current offset to the end. Returns 0 or -1 (errno from read).
int  blob_hash_fd (int fd, uint8_t hash [BLOB_HASH_SIZE]);

bool blob_store_has (blob_store_t *self, const uint8_t hash [BLOB_HASH_SIZE]);

//  Between these two, blob_store_has lookups share one read transaction
//  (one snapshot, one round of locks) instead of one each: for a job's
//  hundred-odd inputs. Nothing may be written in between. If the
//  transaction cannot begin, the lookups simply run on their own.
void blob_store_read_begin (blob_store_t *self);
void blob_store_read_end (blob_store_t *self);

//  Stores `size` bytes after checking they hash to `hash` (a mismatch is
//  refused: -1). Idempotent. Returns 0 or -1.
int blob_store_put (blob_store_t *self, const uint8_t hash [BLOB_HASH_SIZE],
                    const void *data, size_t size);

//  Reads a blob into a new buffer (caller frees) and marks it used.
//  Returns NULL if absent or corrupted (a corrupted blob is removed).
uint8_t *blob_store_get (blob_store_t *self, const uint8_t hash [BLOB_HASH_SIZE], size_t *size_p);

//  Writes the blob's raw bytes to `path` (created with `mode`, replacing
//  nothing: fails if it exists). Uses a hard link from an uncompressed
//  cache copy when possible so that many jobs share one copy. Returns 0/-1.
//  Links are made only for read-only modes (no write or set-id bit, e.g.
//  0444, 0555), one cache copy per such mode: a link shares the inode, so
//  a writable one would let a job corrupt the copy of every later job.
//  Any other mode gets a private copy. Pass mode & ~0222 to share.
//  errno EEXIST when `path` exists, ENOENT when the blob is absent.
int blob_store_materialize (blob_store_t *self, const uint8_t hash [BLOB_HASH_SIZE],
                            const char *path, unsigned mode);

//  Pinned blobs are never evicted (a job in progress uses them).
void blob_store_pin (blob_store_t *self, const uint8_t hash [BLOB_HASH_SIZE]);
void blob_store_unpin (blob_store_t *self, const uint8_t hash [BLOB_HASH_SIZE]);
//  Pins are counted and shared by every store object of this process on
//  the same directory (one per worker thread): a blob pinned in one thread
//  is safe from an eviction run by another. They are never persisted, so
//  a crashed process pins nothing. Destroying a store releases its pins;
//  unpin of a hash this object did not pin does nothing.
bool blob_store_pinned (blob_store_t *self, const uint8_t hash [BLOB_HASH_SIZE]);

//  Evicts least-recently-used unpinned blobs until the store is within
//  its bound. Returns the number evicted.
size_t blob_store_evict (blob_store_t *self);

//  Bytes now counted against the bound: compressed blobs plus their
//  uncompressed copies kept for hard-linking (see materialize).
uint64_t blob_store_bytes (blob_store_t *self);
size_t   blob_store_count (blob_store_t *self);

//  Tests: a fixed "now" in ms since the epoch for last_used (0 = the real
//  clock), so that LRU order can be tested without sleeping.
void blob_store_set_now (blob_store_t *self, int64_t now_ms);

void blob_store_test (bool verbose);

#endif
