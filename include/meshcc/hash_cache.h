//  hash_cache: remembers the content hash of local files keyed by (path,
//  size, mtime in ns, inode, device), in SQLite (DIR/hashes.db), so that an
//  unchanged header is hashed once, not once per compile; each object also
//  keeps the rows it met in memory, so a hot header costs no query. Owns
//  that table only; never reads blob contents into the store (the caller
//  decides).

#ifndef MESHCC_HASH_CACHE_H_INCLUDED
#define MESHCC_HASH_CACHE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include "meshcc/blob_store.h"

typedef struct _hash_cache_t hash_cache_t;

hash_cache_t *hash_cache_new (const char *dir, char *err, size_t err_size);
void          hash_cache_destroy (hash_cache_t **self_p);

//  The hash of the file at `path` (stat'ed by the caller into `st`):
//  from the cache if size/mtime/inode/device match, else computed and
//  remembered. *hit_p says which. Returns 0, or -1 if unreadable.
//  A file modified within the last 2 s is hashed but not cached (its
//  mtime may not yet reflect a write in progress).
int hash_cache_get (hash_cache_t *self, const char *path, const struct stat *st,
                    uint8_t hash [BLOB_HASH_SIZE], bool *hit_p);

//  Lookups since this object was made: answered from the table (hits), or
//  hashed from the file (misses, unreadable files included).
void hash_cache_counts (hash_cache_t *self, uint64_t *hits_p, uint64_t *misses_p);

void hash_cache_test (bool verbose);

#endif
