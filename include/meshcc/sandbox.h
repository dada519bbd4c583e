//  sandbox: runs one program under bubblewrap with a given directory as a
//  read-only "/" (only the directories named writable are, and a private
//  /tmp), a list of host paths bound read-only at the same place, no
//  network, fresh pid/ipc/uts/cgroup (and user, where possible)
//  namespaces, no capabilities, --die-with-parent, resource limits set
//  before bwrap is executed (so every process inside inherits them) and a
//  wall-clock kill; stdout and stderr captured up to a bound. Also the
//  plain capturing spawn that compiler probes use. Owns processes and
//  pipes only: it never decides what goes into the root (the executor
//  does; it only adds the empty mount points bubblewrap needs) and never
//  reads job values.

#ifndef MESHCC_SANDBOX_H_INCLUDED
#define MESHCC_SANDBOX_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    unsigned cpu_seconds;           //  RLIMIT_CPU per process (0: none)
    uint64_t memory_bytes;          //  RLIMIT_AS (0: none)
    uint64_t file_bytes;            //  RLIMIT_FSIZE (0: none)
    uint64_t output_bytes;          //  stdout + stderr captured (0: 16 MiB)
    unsigned wall_ms;               //  killed after this (0: never)
} sandbox_limits_t;

typedef struct {
    const char *root;               //  host directory bound READ-ONLY at "/"
    const char *const *ro_binds;    //  NULL-terminated host paths bound read-only
                                    //  at the same path (files or dirs)
    const char *tree;               //  a host directory (an unpacked toolchain)
    const char *const *tree_binds;  //  NULL-terminated directories: TREE/D is
                                    //  bound read-only at D, before ro_binds
    const char *const *rw_dirs;     //  NULL-terminated directories inside the
                                    //  root (absolute, no symlink on the way)
                                    //  bound writable: the outputs' directories
    bool        private_tmp;        //  a fresh tmpfs at /tmp; what the root has
                                    //  in /tmp is bound back read-only
    const char *cwd;                //  working directory inside
    char *const *envp;              //  the whole environment inside
} sandbox_spec_t;

typedef struct {
    int      status;                //  exit status; 128+N if killed by signal N
    bool     signalled;             //  ended by a signal (any process)
    bool     wall_killed;           //  we killed it at the wall limit
    bool     output_truncated;      //  more than output_bytes of stdout+stderr
    uint64_t cpu_us;                //  user+system time of it and its children
    uint64_t wall_us;
    uint8_t *out;   size_t out_size;
    uint8_t *err;   size_t err_size;
} sandbox_result_t;

//  Runs `argv` (argv[0] absolute inside the sandbox) in the sandbox.
//  Returns 0 when the program ran (see result), or -1 with err set when
//  the sandbox could not be started. The result's buffers are the
//  caller's (sandbox_result_clear).
int sandbox_run (const sandbox_spec_t *spec, char *const argv [],
                 const sandbox_limits_t *limits, sandbox_result_t *result,
                 char *err, size_t err_size);

//  Runs `argv` (argv[0] absolute) directly with `envp`, in `cwd` (NULL:
//  ours), capturing output the same way. Returns 0 or -1 (err set).
int sandbox_spawn (char *const argv [], char *const envp [], const char *cwd,
                   const sandbox_limits_t *limits, sandbox_result_t *result,
                   char *err, size_t err_size);

void sandbox_result_clear (sandbox_result_t *result);

//  The bwrap binary ("/usr/bin/bwrap"), or NULL when not installed.
const char *sandbox_bwrap (void);

//  Whether bwrap can create the sandbox's namespaces here: probes once per
//  process (a trivial program with the same flags) and caches the answer.
//  On false, *why_p (static) says why.
bool sandbox_available (const char **why_p);

#endif
