//  listing_cache: the origin's memory of dependency listings, so that a
//  compile whose inputs have not changed since its last listing skips the
//  `-M` run (ccache calls this "direct mode"). Keyed by the compile (the
//  compiler binary, the working directory, the listing's arguments, the
//  environment that steers the preprocessor); an entry holds the listed
//  paths and is reused only while
//    - every listed file has the same size, mtime, ctime, inode and
//      device (a changed header may include different files), or, when
//      the caller gives a hash function, the same size and content (a
//      copy of the tree: a fresh checkout, `cp -a`; its new stamp is then
//      kept), and
//    - no file has appeared that would now be found before a listed one
//      (a new header shadowing an old one, which ccache does not see):
//      for every search directory (the compiler's own, from `-v`, and the
//      directory of every listed file) and every name under which a file
//      was found, the deepest existing directory on the way is stamped;
//      when its stamp changed, each such name is looked up there again;
//      a name that was already there when the listing was made (passed
//      over by the compiler: the same header name in another search
//      directory) does not count, so a copy of the tree keeps its
//      listings. A directory looked into and found clean keeps its new
//      stamp.
//  Files stamped within `racy_ms` of the listing's start are not trusted
//  (a write in progress may not show in mtime yet): such listings are not
//  kept, and such directories are always looked into.
//  Shared by the worker threads (one mutex), bounded in bytes, least
//  recently used out first. Owns only its entries; never runs the compiler
//  (inputs.c does) and reads file contents only through the caller's hash
//  function.

#ifndef MESHCC_LISTING_CACHE_H_INCLUDED
#define MESHCC_LISTING_CACHE_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#define LISTING_KEY_SIZE 32
#define LISTING_HASH_SIZE 32

//  A file's content hash (the caller's: inputs.c uses its hash cache).
//  Returns 0, or -1 if it cannot be hashed.
typedef int (listing_hash_fn) (void *arg, const char *path, const struct stat *st,
                               uint8_t hash [LISTING_HASH_SIZE]);

typedef struct _listing_cache_t listing_cache_t;

listing_cache_t *listing_cache_new (size_t max_bytes, int64_t racy_ms);
void             listing_cache_destroy (listing_cache_t **self_p);

//  The listing kept for `key`, if everything it depends on is unchanged:
//  a new list of the paths as the compiler printed them (caller destroys).
//  NULL when there is none or it is stale (a stale entry is dropped).
zlist_t *listing_cache_lookup (listing_cache_t *self, const uint8_t key [LISTING_KEY_SIZE],
                               listing_hash_fn *hash, void *hash_arg);

//  Keeps the listing `deps` (paths as printed, relative ones against
//  `cwd`) of a compile whose search directories were `search_dirs` (as
//  the compiler printed them, nonexistent ones included), listed from
//  `started_ns` (CLOCK_REALTIME) on; with `hash`, the files' content
//  hashes are kept too. Returns true if kept; false when a file is too
//  new, missing, cannot be hashed, or the entry would not fit.
bool listing_cache_store (listing_cache_t *self, const uint8_t key [LISTING_KEY_SIZE],
                          const char *cwd, zlist_t *deps, zlist_t *search_dirs,
                          int64_t started_ns, listing_hash_fn *hash, void *hash_arg);

typedef struct {
    uint64_t hits;          //  reused
    uint64_t misses;        //  no entry
    uint64_t stale;         //  an entry whose files or directories changed
    uint64_t rehashed;      //  hits on files with a new stamp, same content
    uint64_t not_kept;      //  listings not kept (too new, too big, ...)
    size_t   entries, bytes;
} listing_cache_counts_t;

void listing_cache_counts (listing_cache_t *self, listing_cache_counts_t *counts);

void listing_cache_test (bool verbose);

#endif
