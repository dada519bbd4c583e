//  compiler_identity: who a compiler is on this machine (executor.h).
//
//  Identity = resolved path + version + target + BLAKE2b of the binary.
//  Computing it costs three spawns and hashing a ~1 MB driver, so results
//  are remembered per process keyed by the name asked for and the
//  resolved binary's (size, mtime, inode): an upgrade of the compiler
//  changes the key and is noticed at the next job.

#include <czmq.h>
#include <pthread.h>
#include <sys/stat.h>
#include "meshcc/executor.h"
#include "meshcc/inputs.h"
#include "meshcc/limits.h"
#include "meshcc/sandbox.h"

typedef struct {
    char     name [1024];           //  as asked
    dev_t    dev;
    ino_t    ino;
    off_t    size;
    struct timespec mtime;
    compiler_identity_t identity;
    bool     used;
} s_identity_slot_t;

static pthread_mutex_t s_mutex = PTHREAD_MUTEX_INITIALIZER;
static s_identity_slot_t s_cache [COMPILER_IDENTITY_CACHE];
static size_t s_cache_next;

//  Runs `program arg` and copies the first line of its stdout into out.
//  Returns 0 if it exited 0 with a non-empty line.
static int
s_probe_line (const char *program, const char *arg, char *out, size_t out_size)
{
    char *argv [] = { (char *) program, (char *) arg, NULL };
    char *envp [] = { "PATH=" INPUTS_SANDBOX_PATH, "LC_ALL=C", NULL };
    sandbox_limits_t limits = {
        .wall_ms = COMPILER_PROBE_TIMEOUT_MS,
        .output_bytes = COMPILER_PROBE_OUTPUT_MAX
    };
    sandbox_result_t result;
    char err [256];
    if (sandbox_spawn (argv, envp, NULL, &limits, &result, err, sizeof (err)))
        return -1;
    int rc = -1;
    if (result.status == 0 && result.out_size > 0) {
        size_t len = 0;
        while (len < result.out_size && result.out [len] != '\n' && result.out [len] != '\r')
            len++;
        if (len > 0 && len < out_size) {
            memcpy (out, result.out, len);
            out [len] = 0;
            rc = 0;
        }
    }
    sandbox_result_clear (&result);
    return rc;
}

int
compiler_identity_program (const char *compiler, const char *prog_name,
                           char *out, size_t out_size)
{
    char arg [256];
    snprintf (arg, sizeof (arg), "-print-prog-name=%s", prog_name);
    char line [1024];
    if (s_probe_line (compiler, arg, line, sizeof (line)))
        return -1;
    char found [1024];
    //  gcc answers the bare name when it would search PATH
    if (inputs_which (line, INPUTS_SANDBOX_PATH, found, sizeof (found)))
        return -1;
    char resolved [PATH_MAX];
    if (!realpath (found, resolved) || strlen (resolved) >= out_size)
        return -1;
    strcpy (out, resolved);
    return 0;
}

static int
s_compute (const char *resolved, compiler_identity_t *identity)
{
    memset (identity, 0, sizeof (*identity));
    size_t len = strlen (resolved);
    if (len >= sizeof (identity->path))
        return -1;
    memcpy (identity->path, resolved, len + 1);
    const char *base = strrchr (resolved, '/');
    base = base ? base + 1 : resolved;
    bool clang = strstr (base, "clang") != NULL;
    if (clang) {
        if (s_probe_line (resolved, "--version", identity->version, sizeof (identity->version)))
            return -1;
    }
    else
    if (s_probe_line (resolved, "-dumpfullversion", identity->version, sizeof (identity->version))
    &&  s_probe_line (resolved, "-dumpversion", identity->version, sizeof (identity->version)))
        return -1;
    if (s_probe_line (resolved, "-dumpmachine", identity->target, sizeof (identity->target)))
        return -1;
    if (blob_hash_file (resolved, identity->hash))
        return -1;
    return 0;
}

int
compiler_identity_get (const char *path, compiler_identity_t *identity)
{
    if (!path || !*path || strlen (path) >= sizeof (s_cache [0].name))
        return -1;
    char found [1024];
    if (inputs_which (path, strchr (path, '/') ? NULL : getenv ("PATH"), found, sizeof (found)))
        return -1;
    char resolved [PATH_MAX];
    if (!realpath (found, resolved) || strlen (resolved) >= sizeof (identity->path))
        return -1;
    struct stat st;
    if (stat (resolved, &st) || !S_ISREG (st.st_mode))
        return -1;

    pthread_mutex_lock (&s_mutex);
    for (size_t i = 0; i < COMPILER_IDENTITY_CACHE; i++) {
        s_identity_slot_t *slot = &s_cache [i];
        if (slot->used && streq (slot->name, path)
        &&  slot->dev == st.st_dev && slot->ino == st.st_ino && slot->size == st.st_size
        &&  slot->mtime.tv_sec == st.st_mtim.tv_sec && slot->mtime.tv_nsec == st.st_mtim.tv_nsec
        &&  streq (slot->identity.path, resolved)) {
            *identity = slot->identity;
            pthread_mutex_unlock (&s_mutex);
            return 0;
        }
    }
    pthread_mutex_unlock (&s_mutex);

    //  Computed outside the lock: two threads may both compute the same
    //  identity once, which is cheaper than serialising every probe.
    compiler_identity_t fresh;
    if (s_compute (resolved, &fresh))
        return -1;
    pthread_mutex_lock (&s_mutex);
    s_identity_slot_t *slot = &s_cache [s_cache_next];
    s_cache_next = (s_cache_next + 1) % COMPILER_IDENTITY_CACHE;
    snprintf (slot->name, sizeof (slot->name), "%s", path);
    slot->dev = st.st_dev;
    slot->ino = st.st_ino;
    slot->size = st.st_size;
    slot->mtime = st.st_mtim;
    slot->identity = fresh;
    slot->used = true;
    pthread_mutex_unlock (&s_mutex);
    *identity = fresh;
    return 0;
}

bool
compiler_identity_equal (const compiler_identity_t *a, const compiler_identity_t *b)
{
    return streq (a->path, b->path) && streq (a->version, b->version)
        && streq (a->target, b->target)
        && memcmp (a->hash, b->hash, BLOB_HASH_SIZE) == 0;
}

//  Says in one line how `theirs` differs from `ours`.
void
compiler_identity_diff (const compiler_identity_t *theirs, const compiler_identity_t *ours,
                        char *out, size_t out_size)
{
    if (!streq (theirs->path, ours->path))
        snprintf (out, out_size, "path %.200s here is %.200s", theirs->path, ours->path);
    else
    if (!streq (theirs->version, ours->version))
        snprintf (out, out_size, "%.200s version %.100s here is %.100s",
                  ours->path, theirs->version, ours->version);
    else
    if (!streq (theirs->target, ours->target))
        snprintf (out, out_size, "%.200s target %.100s here is %.100s",
                  ours->path, theirs->target, ours->target);
    else
        snprintf (out, out_size, "%.200s binary differs (hash)", ours->path);
}
