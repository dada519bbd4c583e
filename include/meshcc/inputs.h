//  inputs: at the origin, asks the compiler which files a compile reads
//  (the same command with its outputs removed and "-M -MF FILE" added; the
//  compiler lists the source and every header, system headers included)
//  and turns the listing into a job manifest: every path made absolute
//  against the working directory and resolved component by component as
//  the kernel does (".." taken after symlinks, physically), every symlink
//  on the way recorded as a symlink entry, every file hashed (through the
//  hash cache), every -I/-isystem/-iquote directory and the working
//  directory recorded as directory entries. Owns the listing command and
//  the make-rule parser; never talks to peers.

#ifndef MESHCC_INPUTS_H_INCLUDED
#define MESHCC_INPUTS_H_INCLUDED

#include "meshcc/compile_args.h"
#include "meshcc/hash_cache.h"
#include "meshcc/job.h"
#include "meshcc/listing_cache.h"

//  Fills job->entries for the compile `args` run in `cwd` with `envp`.
//  With `listings` (may be NULL), a listing kept there whose inputs have
//  not changed is reused instead of running the compiler (*reused_p says
//  so), and a new listing is kept there.
//  Returns 0, or -1 with a message in err (the listing failed: the caller
//  compiles locally, which reports any real error exactly).
int inputs_manifest (const compile_args_t *args, const char *cwd, char *const envp [],
                     hash_cache_t *hashes, listing_cache_t *listings, job_spec_t *job,
                     bool *reused_p, char *err, size_t err_size);

//  The search directories in a compiler's `-v` output (stderr of gcc or
//  clang): the quote and angle lists and every "ignoring nonexistent
//  directory" (creating one would change the search). Empty when the
//  text has no complete list. Caller destroys.
zlist_t *inputs_parse_search (const char *text);

//  Parses a make rule as written by gcc/clang -M ("target: dep dep \\\n
//  dep", with backslash-escaped spaces and "$$") into a list of paths
//  (caller destroys with zlist_destroy; items are freed with it).
//  Returns NULL if the text is not a rule.
#include <czmq.h>
zlist_t *inputs_parse_rule (const char *text);

//  The subset of `envp` shipped with a job (NULL-terminated, new strings;
//  caller frees each and the array): CPATH, C/CPLUS/OBJC(PLUS)_INCLUDE_PATH,
//  SOURCE_DATE_EPOCH, LANG, LANGUAGE, LC_*, GCC_* except GCC_EXEC_PREFIX
//  (it changes which cc1/as the driver runs), then always
//  "PATH=" INPUTS_SANDBOX_PATH. PWD is the executor's to set (job->cwd).
char **inputs_relevant_env (char *const envp []);

//  Called for every symlink met while resolving: `link` is its absolute
//  path (inside the root), `target` what readlink gives.
typedef void (inputs_symlink_fn) (const char *link, const char *target, void *arg);

//  Resolves the absolute `path` component by component as the kernel
//  does (symlinks followed, ".." taken physically after them, at most
//  INPUTS_MAX_SYMLINKS links), inside `root` (a host directory taken as
//  "/": absolute targets restart at it and ".." never climbs above it;
//  NULL or "" for this machine's "/"). Writes the resolved path, relative
//  to root, into `resolved`; components that do not exist resolve
//  lexically. Returns 0, or -1 on a loop or a too-long path.
int inputs_resolve (const char *root, const char *path,
                    inputs_symlink_fn *on_symlink, void *arg,
                    char *resolved, size_t resolved_size);

//  inputs_resolve on this machine's "/" for many paths in one pass (one
//  job's inputs): `known` (a zhashx set, keys copied) holds the resolved
//  directories already looked up in this pass, which are then not looked
//  up again, and gains those looked up now. Start each pass with an empty
//  set: a directory replaced by a symlink after it was added is not seen.
//  When the last component was looked up and is not a symlink, *st_p is
//  its stat and *st_valid_p true (false otherwise: stat it yourself).
int inputs_resolve_known (zhashx_t *known, const char *path,
                          inputs_symlink_fn *on_symlink, void *arg,
                          char *resolved, size_t resolved_size,
                          struct stat *st_p, bool *st_valid_p);

//  Finds program `name` as execvp would in `search_path` (a PATH value;
//  NULL for INPUTS_SANDBOX_PATH; empty entries are skipped, never "."),
//  or takes it as is when it has a slash. Returns 0 or -1.
int inputs_which (const char *name, const char *search_path, char *out, size_t out_size);

void inputs_test (bool verbose);

#endif
