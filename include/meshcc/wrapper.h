//  wrapper: meshcc as a compiler. Finds the real compiler (never meshcc
//  itself), classifies the command (compile_args), and either runs the
//  real compiler at once with exec (not distributable: the fast path,
//  which touches no socket) or hands the job to the node of the data
//  directory (control.h: COMPILE over DIR/compile.sock -> LOCAL, and the
//  wrapper execs the compiler holding the connection, | RESULT, replayed
//  with the compiler's output and exit status, | FALLBACK). Any failure
//  of the mesh becomes a local compile, announced by at most one warning
//  line per build (per process group).
//
//  Owns: compiler resolution, the COMPILE request and the reading of its
//  reply, the warn-once marker. Must not: link czmq or libzmq (it talks
//  to the node over a plain Unix socket, so it loads nothing but libc,
//  installs no signal handlers and make's Ctrl-C kills it as it would
//  kill gcc), write any output file itself (the compiler or the node
//  does), or retry a compile that the compiler answered (errors included).
//
//  Environment read: PATH, MESHCC_DIR (else ~/.meshcc), MESHCC_QUIET=1
//  (no warning), MESHCC_STRICT=1 (a mesh failure is an error, exit 1,
//  instead of a local compile), MESHCC_VERBOSE=1 (one line per job saying
//  where it ran), TMPDIR (for the warn-once marker).

#ifndef MESHCC_WRAPPER_H_INCLUDED
#define MESHCC_WRAPPER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdnoreturn.h>
#include <sys/types.h>

//  How long sending the request may take (SO_SNDTIMEO): a node holding its
//  lock reads requests at once, so this only bounds a wedged node.
#define WRAPPER_SEND_TIMEOUT_MS     2000

//  Predicate for the PATH walk: true if `candidate` (an existing
//  executable) is meshcc itself and must be skipped.
typedef bool (wrapper_is_self_fn) (const char *candidate, void *arg);

//  Walks `path_env` (PATH syntax: ':'-separated, an empty entry is ".")
//  for an executable regular file called `name`, skipping candidates for
//  which `is_self` is true and every entry whose directory is `skip_dir`
//  (compared by device and inode; NULL for none). Writes the candidate as
//  found (directory + "/" + name, not resolved through symlinks, so the
//  compiler's own argv[0] logic sees the name it expects) into `out`.
//  Returns 0, or -1 when there is none.
int wrapper_path_search (const char *name, const char *path_env, const char *skip_dir,
                         wrapper_is_self_fn *is_self, void *arg,
                         char *out, size_t out_size);

//  The is-self predicate for real use: `arg` is ignored. A candidate is
//  meshcc when it is the same file as /proc/self/exe (device and inode,
//  which catches hard links), when its realpath equals ours, or when its
//  realpath's basename is "meshcc" (another build or install of meshcc:
//  two meshcc binaries masquerading in front of each other would
//  otherwise call each other forever).
bool wrapper_is_self (const char *candidate, void *arg);

//  Resolves the compiler the user named. `name` with a slash is a path:
//  it must be an executable file that is not meshcc (made absolute against
//  the current directory, not resolved through symlinks). Without a
//  slash it is looked up on $PATH with wrapper_is_self, skipping
//  `skip_dir` (the masquerade directory when known). Returns 0, or -1 with
//  a message in `err`.
int wrapper_resolve_compiler (const char *name, const char *skip_dir,
                              char *out, size_t out_size, char *err, size_t err_size);

//  Packs a NULL-terminated string vector as control.h wants it: every
//  string with its terminating NUL, back to back. Returns a new buffer
//  (caller frees; never NULL, even for an empty vector) and its size.
char *wrapper_pack_strings (char *const strings [], size_t *size_p);

//  The inverse, for tests and the node's reading: a new NULL-terminated
//  vector of new strings (free with wrapper_strings_free), or NULL if
//  `data` does not end with a NUL (size 0 is the empty vector).
char **wrapper_unpack_strings (const char *data, size_t size);
void   wrapper_strings_free (char ***strings_p);

//  Claims the right to print this build's one fallback warning: creates
//  TMPDIR/meshcc-UID-warned-PGID-STAMP with O_EXCL, where STAMP tells this
//  process group from an older one that had the same id (the start time
//  of the group's leader; pids are reused, and a leftover marker must not
//  silence a later build). True only for the process that created it. If
//  the marker cannot be created for another reason (TMPDIR not writable)
//  it answers true: a warning too many beats a silent fallback.
bool wrapper_warn_claim (const char *tmpdir, uid_t uid, pid_t pgid, const char *stamp);

//  The stamp of process group `pgid` for wrapper_warn_claim (the group
//  leader's start time in clock ticks, "0" if it is gone), into `out`.
void wrapper_group_stamp (pid_t pgid, char *out, size_t out_size);

//  Runs `argv` (argv[0] = the compiler as the user gave it: "gcc",
//  "/usr/bin/cc", ...) as a compile through the mesh. `masquerade`: meshcc
//  was called through a link named like the compiler, so the compiler is
//  the next one of that basename on PATH (never the link's own directory).
//  Never returns: it execs the real compiler or exits with the compiler's
//  status (or 1 in strict mode, 128 when no compiler is found).
noreturn void wrapper_main (int argc, char *argv [], bool masquerade);

void wrapper_test (bool verbose);

#endif
