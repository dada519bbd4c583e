//  toolchain_db: the registry of toolchains in SQLite (DIR/toolchains.db,
//  WAL, schema version in PRAGMA user_version, migrated by schema_migrate
//  through cache_db_open): which archives this machine packaged or
//  fetched (hash, compiler, version, target, size, files, created, last
//  used), the weak keys that name them (toolchain_weak_key_t -> hash, so
//  a compiler is packaged once), and which nodes hold which hash. Owns
//  those three tables only: it never reads or writes archives (that is
//  toolchain), and a holder is an opaque MESHCC_ID_SIZE-byte id that it
//  records and lists, never contacts.
//
//  Times are milliseconds since the epoch. Thread safety: one object per
//  thread (SQLite connections are not shared); several objects and
//  processes may open the same directory at once.

#ifndef MESHCC_TOOLCHAIN_DB_H_INCLUDED
#define MESHCC_TOOLCHAIN_DB_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "meshcc/blob_store.h"
#include "meshcc/limits.h"
#include "meshcc/toolchain.h"

#define TOOLCHAIN_DB_SCHEMA_VERSION 1

typedef struct _toolchain_db_t toolchain_db_t;

//  One row of `toolchains`.
typedef struct {
    uint8_t  hash [BLOB_HASH_SIZE];
    char     compiler [TOOLCHAIN_PATH_MAX];     //  as invoked, absolute
    char     version [TOOLCHAIN_TEXT_MAX];
    char     target [TOOLCHAIN_TEXT_MAX];
    uint64_t size;                              //  archive bytes
    uint64_t files;                             //  regular files in it
    int64_t  created;
    int64_t  last_used;
} toolchain_record_t;

//  One node holding a toolchain, and when that was last heard.
typedef struct {
    uint8_t  peer [MESHCC_ID_SIZE];
    int64_t  seen;
} toolchain_holder_t;

//  Opens (creating, migrating) DIR/toolchains.db; DIR is created (0700)
//  if missing. Returns NULL with a message in err.
toolchain_db_t *toolchain_db_new (const char *dir, char *err, size_t err_size);
void            toolchain_db_destroy (toolchain_db_t **self_p);

//  Records a packaged (or fetched and verified) toolchain: its row
//  (created and last_used = now; an existing row keeps its created time
//  and gets the new last_used) and, if `key` is not NULL, key -> hash (a
//  key that named another hash now names this one). For a packaging,
//  pass &info->key. One transaction. Returns 0 or -1.
int toolchain_db_record (toolchain_db_t *self, const uint8_t hash [BLOB_HASH_SIZE],
                         const char *compiler, const char *version, const char *target,
                         uint64_t size, uint64_t files, const toolchain_weak_key_t *key);
//  The same from what toolchain_package returned.
int toolchain_db_record_info (toolchain_db_t *self, const toolchain_info_t *info);

//  The hash the weak key `key` names (every field must match), if its
//  toolchain is recorded. Compute the key with toolchain_weak_key (which
//  runs the compiler; keep it in memory). Returns true with hash filled.
bool toolchain_db_lookup (toolchain_db_t *self, const toolchain_weak_key_t *key,
                          uint8_t hash [BLOB_HASH_SIZE]);

//  The row of `hash` into *record. Returns true if there is one.
bool toolchain_db_get (toolchain_db_t *self, const uint8_t hash [BLOB_HASH_SIZE],
                       toolchain_record_t *record);

//  last_used = now. Returns 0, or -1 if there is no such toolchain.
int toolchain_db_touch (toolchain_db_t *self, const uint8_t hash [BLOB_HASH_SIZE]);

//  Every toolchain, most recently used first, as a new array of *count_p
//  records (caller frees with free; NULL when there are none).
toolchain_record_t *toolchain_db_list (toolchain_db_t *self, size_t *count_p);

//  Removes a toolchain's row and the weak keys that name it (its holders
//  stay: other nodes still hold it). Returns 0, or -1 if there was none.
int toolchain_db_delete (toolchain_db_t *self, const uint8_t hash [BLOB_HASH_SIZE]);

//  Holders: `peer` holds `hash`, seen now (again). Returns 0 or -1.
int toolchain_db_holder_record (toolchain_db_t *self, const uint8_t hash [BLOB_HASH_SIZE],
                                const uint8_t peer [MESHCC_ID_SIZE]);
//  `peer` no longer holds `hash`. Returns 0, or -1 if it was not recorded.
int toolchain_db_holder_forget (toolchain_db_t *self, const uint8_t hash [BLOB_HASH_SIZE],
                                const uint8_t peer [MESHCC_ID_SIZE]);
//  `peer` holds nothing (it left the mesh). Returns the rows removed.
size_t toolchain_db_holder_forget_peer (toolchain_db_t *self, const uint8_t peer [MESHCC_ID_SIZE]);
//  The holders of `hash`, most recently seen first, as a new array of
//  *count_p entries (caller frees with free; NULL when there are none).
toolchain_holder_t *toolchain_db_holders (toolchain_db_t *self, const uint8_t hash [BLOB_HASH_SIZE],
                                          size_t *count_p);

//  Tests: a fixed "now" in ms since the epoch (0 = the real clock).
void toolchain_db_set_now (toolchain_db_t *self, int64_t now_ms);

void toolchain_db_test (bool verbose);

#endif
