//  executor: runs one job received from a peer. Owns the job root (a fresh
//  directory under the node's work dir holding every input at its original
//  absolute path, hard-linked from the blob store, plus the working
//  directory, include directories and output directories), the checks
//  before running (compiler identity equal to the requester's, arguments
//  sanitised with compile_args_sanitise, manifest paths and symlinks that
//  stay inside the root), the bubblewrap sandbox (job root as /, the
//  compiler's own directories bound read-only from this machine, no
//  network, private /tmp, fresh pid/ipc/uts namespaces, --die-with-parent,
//  CPU-time, memory and output-size limits), and collecting the outputs.
//  It never talks to peers: missing blobs are reported, not fetched.

#ifndef MESHCC_EXECUTOR_H_INCLUDED
#define MESHCC_EXECUTOR_H_INCLUDED

#include <stdbool.h>
#include "meshcc/blob_store.h"
#include "meshcc/job.h"

typedef struct _executor_t executor_t;

typedef struct {
    unsigned cpu_seconds;           //  RLIMIT_CPU of the compiler
    uint64_t memory_bytes;          //  RLIMIT_AS
    uint64_t output_bytes;          //  RLIMIT_FSIZE and the total returned
    unsigned wall_seconds;          //  killed after this
} executor_limits_t;

//  `work_dir` holds job roots (created 0700). `store` must outlive the
//  executor and belong to the calling thread.
executor_t *executor_new (blob_store_t *store, const char *work_dir,
                          const executor_limits_t *limits, char *err, size_t err_size);
void        executor_destroy (executor_t **self_p);

//  Job roots are removed by a thread of the executor after executor_run
//  returns (off the job's critical path); this waits until none is left.
//  The executor's directory is WORK/exec-PID-XXXXXX; an executor sweeps
//  those of processes that no longer run when it starts.
void executor_wait_idle (executor_t *self);

//  Whether bubblewrap can make a sandbox here (checked once, cached);
//  if not, `why` says why and the node accepts no remote jobs.
bool executor_available (executor_t *self, const char **why);

//  Hashes of the manifest's files absent from the store, as a new array
//  (caller frees) of *count_p entries. `tree` as for executor_run.
uint8_t (*executor_missing (executor_t *self, const job_spec_t *job, const char *tree,
                            size_t *count_p)) [BLOB_HASH_SIZE];

//  Runs the job: fills `result` (never NULL). Failures of the mesh side go
//  into result->failure; a compiler error is a normal result. With `tree`
//  (an unpacked toolchain, issue 4) the compiler and its libraries come
//  from it, hard-linked into the job root, and this machine's own compiler
//  is neither needed nor used; without, this machine's compiler must be
//  identical to the job's and its directories are bound read-only.
void executor_run (executor_t *self, const job_spec_t *job, const char *tree,
                   job_result_t *result);

//  This machine's identity of the compiler `path` (resolved through PATH
//  when it has no slash). Returns 0 or -1. Cached by (path, size, mtime,
//  inode).
int compiler_identity_get (const char *path, compiler_identity_t *identity);

//  Whether two identities are the same compiler; and one line saying how
//  `theirs` differs from `ours` (for the failure message).
bool compiler_identity_equal (const compiler_identity_t *a, const compiler_identity_t *b);
void compiler_identity_diff (const compiler_identity_t *theirs, const compiler_identity_t *ours,
                             char *out, size_t out_size);

//  The program `compiler -print-prog-name=NAME` names (cc1, cc1plus, as),
//  found in INPUTS_SANDBOX_PATH when the compiler answers a bare name,
//  resolved with realpath. Returns 0, or -1 if there is none.
int compiler_identity_program (const char *compiler, const char *prog_name,
                               char *out, size_t out_size);

//  The limits a node applies by default (limits.h EXECUTOR_*).
void executor_limits_default (executor_limits_t *limits);

//  The read-only host paths the sandbox of compiler `identity` binds and
//  the symlinks it recreates in each job root ("path", "target" pairs),
//  as found by probing the compiler (its directory, /usr/lib/gcc, an
//  llvm prefix, the shared libraries of the driver, cc1, cc1plus and as
//  with the dynamic loader, /etc/ld.so.cache). For tests and `meshcc`
//  diagnostics; returns a NULL-terminated list of new strings per kind
//  via the out parameters (caller frees with executor_strings_free).
int  executor_toolchain (executor_t *self, const compiler_identity_t *identity,
                         char ***binds_p, char ***symlinks_p);
void executor_strings_free (char ***strings_p);

void executor_test (bool verbose);

#endif
