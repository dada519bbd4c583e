//  toolchain: packages a local gcc or clang into a deterministic,
//  content-addressed archive (DIR/toolchains/<BLAKE2b-256 hex>.tar.zst)
//  holding exactly what a compile (-c/-S) needs to run with that archive
//  unpacked as the root of a sandbox: the driver (and the symlinks from the
//  invoked path to it), cc1/cc1plus (or clang itself), collect2, lto1,
//  lto-wrapper, the LTO plugin, specs, the compiler's own header directory,
//  as and objcopy, every shared library those load (as the dynamic loader
//  resolves them), the loader, ld.so.conf(.d) and ld.so.cache; and unpacks
//  such an archive after verifying its hash. Owns the files under
//  DIR/toolchains and the directories it unpacks into; never knows about
//  peers, sockets or jobs, and never records anything in SQLite (that is
//  toolchain_db).
//
//  Thread safety: every function may be called from any thread; packaging
//  and unpacking spawn processes (the compiler, the dynamic loader) with
//  posix_spawn and never change the working directory.

#ifndef MESHCC_TOOLCHAIN_H_INCLUDED
#define MESHCC_TOOLCHAIN_H_INCLUDED

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "meshcc/blob_store.h"

//  Limits of this module. (They belong in limits.h with the others; they
//  are here until that header can be changed.)
//
//  zstd level of toolchain archives, with long-distance matching over a
//  TOOLCHAIN_ZSTD_WINDOW_LOG window: cc1, cc1plus and lto1 share most of
//  their code ~30 MB apart, which a normal window never sees. Measured on
//  Debian 12's gcc-12 (117 MB of files): level 3 without long matching
//  gives 43.6 MB, level 9 with it 27.1 MB in 2.3 s. Packaging happens
//  once per compiler per machine, in the background; every peer then
//  fetches the archive, so bytes matter more than seconds.
#define TOOLCHAIN_ZSTD_LEVEL        9
//  2^27 = 128 MiB: the largest window a zstd decoder accepts without being
//  told (ZSTD_WINDOWLOG_LIMIT_DEFAULT), so `tar --zstd -x`, `zstd -d` and
//  libarchive read the archives as they are. Unpacking needs that much
//  memory for the window.
#define TOOLCHAIN_ZSTD_WINDOW_LOG   27
//  An archive that unpacks to more than this, or has more entries, is
//  refused: a real toolchain is 100-300 MB and a few hundred entries
//  (clang's headers included), so these only stop a hostile archive that
//  a peer made to fill the disk.
#define TOOLCHAIN_UNPACKED_MAX      (4ULL * 1024 * 1024 * 1024)
#define TOOLCHAIN_ENTRIES_MAX       100000
//  How much of the compiler's files is read between two calls of a
//  packaging's pace function (toolchain_package_paced): ~5 ms of a core
//  at the level above (2.3 s for 117 MB).
#define TOOLCHAIN_PACE_BYTES        (256 * 1024)
//  Temporary files and directories (DIR/toolchains/.tmp-*, DEST.tmp-*)
//  older than this were left by a crashed packager or unpacker and are
//  removed by the next packaging in the same directory.
#define TOOLCHAIN_TMP_MAX_AGE_S     3600
//  Room for the answers of -dumpmachine and -dumpfullversion.
#define TOOLCHAIN_TEXT_MAX          128
#define TOOLCHAIN_PATH_MAX          PATH_MAX

//  The weak key of a compiler: what this machine can tell about it without
//  reading the binary. `compiler` is the path as invoked, made absolute by
//  a PATH search if it had no slash (it is in the key because the archive
//  holds the invoked path as a symlink chain to `resolved`); `resolved` is
//  its realpath; size, mtime and inode are stat's of `resolved`; target
//  and version are the compiler's -dumpmachine and -dumpfullversion
//  (-dumpversion for clang, which has no -dumpfullversion).
typedef struct {
    char     compiler [TOOLCHAIN_PATH_MAX];
    char     resolved [TOOLCHAIN_PATH_MAX];
    uint64_t size;
    int64_t  mtime_ns;
    uint64_t inode;
    char     target [TOOLCHAIN_TEXT_MAX];
    char     version [TOOLCHAIN_TEXT_MAX];
} toolchain_weak_key_t;

//  Computes the weak key of `compiler` (an absolute path, or a bare name
//  looked up in $PATH). This RUNS THE COMPILER TWICE (-dumpmachine,
//  -dumpfullversion; three times for clang, whose -dumpfullversion fails
//  before -dumpversion answers; a few ms each), so callers keep the
//  answer in memory and recompute it only when a stat of `resolved` no
//  longer matches. Returns 0, or -1 with a message in err.
//  Note what the key does not see: an upgrade of cc1, as or a library
//  without a change to the driver binary keeps the key, and so the old
//  archive (which stays a consistent toolchain, only an older one).
int toolchain_weak_key (const char *compiler, toolchain_weak_key_t *key,
                        char *err, size_t err_size);

//  What one packaging produced.
typedef struct {
    uint8_t  hash [BLOB_HASH_SIZE];     //  BLAKE2b-256 of the archive file
    char     hex [BLOB_HASH_HEX_SIZE + 1];
    char     archive [TOOLCHAIN_PATH_MAX];      //  DIR/toolchains/HEX.tar.zst
    uint64_t archive_size;              //  bytes of the archive file
    uint64_t unpacked_size;             //  bytes of its regular files
    uint64_t files;                     //  regular files
    uint64_t entries;                   //  files, directories and symlinks
    bool     clang;                     //  packaged as clang (else gcc)
    toolchain_weak_key_t key;           //  compiler, resolved, version, target...
} toolchain_info_t;

//  --------------------------------------------------------------------------
//  The file set of a compiler

typedef enum {
    TOOLCHAIN_ENTRY_DIR = 1,
    TOOLCHAIN_ENTRY_FILE,
    TOOLCHAIN_ENTRY_SYMLINK
} toolchain_entry_type_t;

typedef struct {
    const char *name;               //  relative entry name: "usr/bin/gcc-12"
    toolchain_entry_type_t type;
    unsigned mode;                  //  permission bits (st_mode & 0777)
    uint64_t size;                  //  regular files
    const char *target;             //  symlinks: the link's text, verbatim
} toolchain_entry_t;

typedef struct _toolchain_files_t toolchain_files_t;

//  Finds every file the archive of `compiler` (absolute, or a bare name
//  looked up in $PATH) holds, by asking the compiler and the dynamic
//  loader (see toolchain.c for each rule). Entries are sorted by name;
//  every file lies at its resolved path, every symlink met on the way is
//  an entry of its own, and every parent directory is an entry. Runs the
//  compiler about ten times and the loader once per ELF file. Returns
//  NULL with a message in err.
toolchain_files_t *toolchain_files_new (const char *compiler, char *err, size_t err_size);
void               toolchain_files_destroy (toolchain_files_t **self_p);
size_t             toolchain_files_size (toolchain_files_t *self);
//  Entry `index` (0 .. size - 1); valid until the object is destroyed.
const toolchain_entry_t *toolchain_files_get (toolchain_files_t *self, size_t index);
//  The entry named `name` ("usr/bin/gcc-12", no leading slash), or NULL.
const toolchain_entry_t *toolchain_files_find (toolchain_files_t *self, const char *name);
//  The weak key measured when the set was collected.
const toolchain_weak_key_t *toolchain_files_key (toolchain_files_t *self);
bool               toolchain_files_clang (toolchain_files_t *self);

//  --------------------------------------------------------------------------
//  Packaging and unpacking

//  Packages `compiler` into DIR/toolchains/HEX.tar.zst (DIR and
//  DIR/toolchains are created, mode 0700; the archive is written to a
//  temporary file and renamed into place, mode 0444) and fills `info`.
//  Deterministic: the same compiler on the same machine always gives the
//  same bytes (entries sorted, pax restricted format, mtime 0, uid/gid 0,
//  no user or group names, permission bits only, zstd at a fixed level
//  and window, single-threaded). Another version of libarchive or libzstd
//  may give other bytes, hence another hash, for the same files. Fails if
//  the driver changes while it is packaged. Takes about as long as reading
//  and compressing ~120 MB (a few seconds); meant for a worker thread.
//  Returns 0, or -1 with a message in err.
int toolchain_package (const char *compiler, const char *dir, toolchain_info_t *info,
                       char *err, size_t err_size);

//  Called on the packaging thread before each read of at most
//  TOOLCHAIN_PACE_BYTES of the compiler's files: it may sleep while the
//  caller wants the CPU for other work, and a nonzero return stops the
//  packaging (nothing is left behind).
typedef int (toolchain_pace_fn) (void *arg);

//  toolchain_package, asking `pace` (NULL: never) as it goes. The archive
//  is the same whatever `pace` does, unless it stops it.
int toolchain_package_paced (const char *compiler, const char *dir,
                             toolchain_pace_fn *pace, void *pace_arg,
                             toolchain_info_t *info, char *err, size_t err_size);

//  DIR/toolchains/HEX.tar.zst for `hash` into out. Returns 0, or -1 if it
//  does not fit.
int toolchain_archive_path (const char *dir, const uint8_t hash [BLOB_HASH_SIZE],
                            char *out, size_t out_size);

//  Unpacks the archive at `archive_path` into the new directory `dest_dir`
//  after checking that the file's BLAKE2b-256 is `expected_hash` (on a
//  mismatch nothing is extracted). Extracts into a temporary directory
//  next to `dest_dir` and renames it into place, so `dest_dir` appears
//  whole or not at all; if `dest_dir` already exists it is taken to be an
//  earlier unpacking (only this function creates it) and 0 is returned.
//  Refuses (and removes everything it extracted) an archive holding an
//  absolute name, a ".." component, an entry below a symlink, a hard link,
//  a device, FIFO or socket, entries out of order or twice, or more than
//  TOOLCHAIN_ENTRIES_MAX / TOOLCHAIN_UNPACKED_MAX. Symlinks are made as
//  symlinks and never followed; their targets are not checked (they are
//  meant to resolve inside a sandbox whose root is `dest_dir`, and may
//  point anywhere on this machine outside it). Modes are the entries'
//  permission bits; owners, times, ACLs and xattrs are not restored.
//  Returns 0, or -1 with a message in err.
int toolchain_unpack (const char *archive_path, const uint8_t expected_hash [BLOB_HASH_SIZE],
                      const char *dest_dir, char *err, size_t err_size);

//  Runs `compiler arg` (with PATH=INPUTS_SANDBOX_PATH, LC_ALL=C, no other
//  environment, stdin from /dev/null, killed after
//  COMPILER_PROBE_TIMEOUT_MS) and copies the first line of its standard
//  output into out. Returns 0 if it exited 0 with a non-empty line.
int toolchain_probe (const char *compiler, const char *arg, char *out, size_t out_size);

void toolchain_test (bool verbose);

#endif
