//  toolchains: the node's side of content-addressed toolchains (issue 4).
//  Owns DIR/toolchains (archives, named by hash, and their unpacked trees
//  under DIR/toolchains/unpacked/HEX), the registry DIR/toolchains.db
//  (through toolchain_db, opened on worker threads only), which of our
//  compilers are packaged, the summary we gossip of the archives we hold,
//  and the fetches of archives from other holders (fetch.c does the
//  chunking and checking; this file does the sockets and the scheduling).
//  Packaging and unpacking run on worker threads: a build never waits for
//  them (jobs go out without a toolchain, to peers with the same compiler,
//  until the archive exists). On a node with a CPU quota, packaging waits
//  for the node to be idle, or for a peer to refuse a job for want of the
//  compiler (saturation_background_waits), and pauses while it is busy.
//  Never decides where a job runs (origin.c) and never runs a compile
//  (executor.c).

#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sodium.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include "meshcc/fetch.h"
#include "meshcc/inputs.h"
#include "meshcc/node_log.h"
#include "meshcc/toolchain.h"
#include "meshcc/toolchain_db.h"
#include "meshcc/tree_remove.h"
#include "node_private.h"

typedef enum {
    S_WANTED,                       //  asked for by a job, not started
    S_PACKAGING,                    //  a worker packages it
    S_READY,                        //  hash known, archive here
    S_FAILED                        //  packaging failed; retried later
} s_state_t;

typedef struct {
    char      invoked [TOOLCHAIN_PATH_MAX];     //  as the sandbox reaches it: /usr/bin/gcc
    char      resolved [TOOLCHAIN_PATH_MAX];    //  the job's compiler identity path
    s_state_t state;
    bool      needed;               //  a peer refused a job for want of it
    bool      looked_up;            //  not in the registry: must be packaged
    int64_t   failed_at;
    uint8_t   hash [BLOB_HASH_SIZE];
    uint64_t  size;
} s_compiler_t;

typedef struct {
    uint8_t  hash [BLOB_HASH_SIZE];
    uint64_t size;                  //  archive bytes
    uint64_t tree_size;             //  bytes of its unpacked tree (0: none)
    int64_t  last_used;             //  zclock_mono: acquired, used or served
    uint32_t in_use;                //  jobs admitted that name it
    bool     fetched;               //  fetched here (else packaged or found)
} s_held_t;

//  A fetch of an archive we need (a peer's job named it).
typedef struct {
    fetch_t  *fetch;
    uint8_t   hash [BLOB_HASH_SIZE];
    char      hex [BLOB_HASH_HEX_SIZE + 1];
    uint64_t  size;                             //  as the job said (informative)
    compiler_identity_t compiler;               //  the job's, for the registry
    char      part [TOOLCHAIN_PATH_MAX + 128];
    int64_t   started;
    bool      had_holder;
} s_fetch_t;

struct _toolchains_t {
    node_t   *node;
    char      dir [TOOLCHAIN_PATH_MAX];         //  the node's directory
    pthread_mutex_t mutex;                      //  guards compilers (origin workers read it)
    zhashx_t *compilers;                        //  invoked path -> s_compiler_t
    zhashx_t *held;                             //  hex -> s_held_t (loop thread)
    zhashx_t *fetches;                          //  hex -> s_fetch_t (loop thread)
    bool      summary_dirty;
    uint64_t  packaged, fetched, fetch_failures, chunks_served, evicted;
    int64_t   evict_checked;                    //  zclock_mono of the last size check
    int64_t   busy_at;                          //  zclock_mono of the last job seen (mutex)
    atomic_bool hold;                           //  packagings pause (set by the tick)
    atomic_bool stopping;                       //  the node stops: packagings give up
    uint64_t  packaging_waits;                  //  ticks that held packaging back
};

//  A packaging handed to a worker.
typedef struct {
    toolchains_t *self;
    char      invoked [TOOLCHAIN_PATH_MAX];
    char      resolved [TOOLCHAIN_PATH_MAX];
    int       rc;
    int       package_rc;                       //  toolchain_package's, on the idle thread
    toolchain_info_t info;
    bool      reused;                           //  found in the registry, not packaged
    bool      lookup_only;                      //  the node is busy: no packaging
    char      err [512];
    int64_t   started;
} s_package_task_t;

static void
s_hex (const uint8_t hash [BLOB_HASH_SIZE], char hex [BLOB_HASH_HEX_SIZE + 1])
{
    blob_hash_hex (hash, hex);
}

static void
s_held_add (toolchains_t *self, const uint8_t hash [BLOB_HASH_SIZE], uint64_t size)
{
    char hex [BLOB_HASH_HEX_SIZE + 1];
    s_hex (hash, hex);
    if (zhashx_lookup (self->held, hex))
        return;
    s_held_t *held = (s_held_t *) zmalloc (sizeof (s_held_t));
    memcpy (held->hash, hash, BLOB_HASH_SIZE);
    held->size = size;
    held->last_used = zclock_mono ();
    zhashx_insert (self->held, hex, held);
    self->summary_dirty = true;
}

//  Archives already here (from an earlier run): their names are their
//  hashes, and only a packaging or a verified fetch puts one in place.
static void
s_scan (toolchains_t *self)
{
    char path [TOOLCHAIN_PATH_MAX + 32];
    snprintf (path, sizeof path, "%s/toolchains", self->dir);
    DIR *dir = opendir (path);
    if (!dir)
        return;
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        const char *name = entry->d_name;
        size_t len = strlen (name);
        if (len != BLOB_HASH_HEX_SIZE + 8 || strcmp (name + BLOB_HASH_HEX_SIZE, ".tar.zst"))
            continue;
        uint8_t hash [BLOB_HASH_SIZE];
        char hex [BLOB_HASH_HEX_SIZE + 1];
        memcpy (hex, name, BLOB_HASH_HEX_SIZE);
        hex [BLOB_HASH_HEX_SIZE] = 0;
        size_t bin_len = 0;
        if (sodium_hex2bin (hash, sizeof hash, hex, BLOB_HASH_HEX_SIZE, NULL, &bin_len, NULL)
        ||  bin_len != BLOB_HASH_SIZE)
            continue;
        char file [TOOLCHAIN_PATH_MAX * 2];
        snprintf (file, sizeof file, "%s/%s", path, name);
        struct stat st;
        if (stat (file, &st) == 0 && S_ISREG (st.st_mode) && st.st_size > 0)
            s_held_add (self, hash, (uint64_t) st.st_size);
    }
    closedir (dir);
}

toolchains_t *
toolchains_new (node_t *node)
{
    toolchains_t *self = (toolchains_t *) zmalloc (sizeof (toolchains_t));
    self->node = node;
    snprintf (self->dir, sizeof self->dir, "%s", node->config->dir);
    pthread_mutex_init (&self->mutex, NULL);
    self->compilers = zhashx_new ();
    self->held = zhashx_new ();
    self->fetches = zhashx_new ();
    s_scan (self);
    return self;
}

void
toolchains_destroy (toolchains_t **self_p)
{
    toolchains_t *self = *self_p;
    if (!self)
        return;
    s_compiler_t *c;
    for (c = (s_compiler_t *) zhashx_first (self->compilers); c;
         c = (s_compiler_t *) zhashx_next (self->compilers))
        free (c);
    zhashx_destroy (&self->compilers);
    s_held_t *h;
    for (h = (s_held_t *) zhashx_first (self->held); h; h = (s_held_t *) zhashx_next (self->held))
        free (h);
    zhashx_destroy (&self->held);
    s_fetch_t *f;
    for (f = (s_fetch_t *) zhashx_first (self->fetches); f;
         f = (s_fetch_t *) zhashx_next (self->fetches)) {
        fetch_destroy (&f->fetch);
        free (f);
    }
    zhashx_destroy (&self->fetches);
    pthread_mutex_destroy (&self->mutex);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Origin side

bool
toolchains_for_job (toolchains_t *self, const char *argv0, const char *resolved,
                    uint8_t hash [BLOB_HASH_SIZE], uint64_t *size_p)
{
    //  The path the sandbox will run: argv[0] through its PATH. If that
    //  is not the job's compiler, the job carries no toolchain (a peer
    //  would refuse it anyway).
    char invoked [TOOLCHAIN_PATH_MAX], real [PATH_MAX];
    if ((strchr (argv0, '/') && argv0 [0] != '/')
    ||  inputs_which (argv0, INPUTS_SANDBOX_PATH, invoked, sizeof invoked)
    ||  !realpath (invoked, real) || !streq (real, resolved))
        return false;
    bool ready = false;
    pthread_mutex_lock (&self->mutex);
    self->busy_at = zclock_mono ();
    s_compiler_t *c = (s_compiler_t *) zhashx_lookup (self->compilers, invoked);
    if (!c) {
        c = (s_compiler_t *) zmalloc (sizeof (s_compiler_t));
        snprintf (c->invoked, sizeof c->invoked, "%s", invoked);
        snprintf (c->resolved, sizeof c->resolved, "%s", resolved);
        c->state = S_WANTED;
        zhashx_insert (self->compilers, invoked, c);
    }
    else
    if (c->state == S_READY && streq (c->resolved, resolved)) {
        memcpy (hash, c->hash, BLOB_HASH_SIZE);
        *size_p = c->size;
        ready = true;
    }
    pthread_mutex_unlock (&self->mutex);
    return ready;
}

//  Packaging is background work (a 27 MB gcc takes ~9 s of a core at
//  level 9): on its own thread, at the idle scheduling class (or nice 19
//  where that is refused), so that it takes only CPU the build leaves. On
//  a quarter-core origin it took ~38 s of the slice, competing with make
//  and the listings. (The worker thread cannot lower its own priority and
//  raise it back unprivileged; it waits on this one instead.) Inside a
//  cgroup with a CPU quota the idle class does not keep it out of the
//  build's way: what it runs is taken from the same quota, and the whole
//  cgroup is then throttled (docs/BENCHMARKS.md, the n8 profile).
//  So on such a node it also pauses (at TOOLCHAIN_PACE_BYTES steps) while
//  the tick says the node is busy, and gives up when the node stops.
static int
s_pace (void *arg)
{
    toolchains_t *self = (toolchains_t *) arg;
    while (atomic_load (&self->hold) && !atomic_load (&self->stopping))
        zclock_sleep (TOOLCHAINS_PAUSE_MS);
    return atomic_load (&self->stopping) ? -1 : 0;
}

static void *
s_package_idle (void *arg)
{
    s_package_task_t *task = (s_package_task_t *) arg;
    struct sched_param param = { .sched_priority = 0 };
    if (pthread_setschedparam (pthread_self (), SCHED_IDLE, &param))
        setpriority (PRIO_PROCESS, (id_t) syscall (SYS_gettid), 19);
    task->package_rc = toolchain_package_paced (task->invoked, task->self->dir, s_pace, task->self,
                                                &task->info, task->err, sizeof task->err);
    return NULL;
}

static int
s_package_in_background (s_package_task_t *task)
{
    pthread_t thread;
    if (pthread_create (&thread, NULL, s_package_idle, task) == 0) {
        pthread_join (thread, NULL);
        return task->package_rc;
    }
    //  No thread: here, at the worker's own priority (lowering it would
    //  slow every later job on this worker).
    return toolchain_package_paced (task->invoked, task->self->dir, s_pace, task->self,
                                    &task->info, task->err, sizeof task->err);
}

//  Worker: the registry may know this compiler (same weak key, archive
//  still here) from an earlier run; else it is packaged now.
static void
s_package_fn (worker_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_package_task_t *task = (s_package_task_t *) arg;
    task->rc = -1;
    toolchain_db_t *db = toolchain_db_new (task->self->dir, task->err, sizeof task->err);
    if (!db)
        return;
    toolchain_weak_key_t key;
    uint8_t hash [BLOB_HASH_SIZE];
    char archive [TOOLCHAIN_PATH_MAX];
    struct stat st;
    if (toolchain_weak_key (task->invoked, &key, task->err, sizeof task->err) == 0
    &&  streq (key.resolved, task->resolved)
    &&  toolchain_db_lookup (db, &key, hash)
    &&  toolchain_archive_path (task->self->dir, hash, archive, sizeof archive) == 0
    &&  stat (archive, &st) == 0 && st.st_size > 0) {
        memcpy (task->info.hash, hash, BLOB_HASH_SIZE);
        task->info.archive_size = (uint64_t) st.st_size;
        task->reused = true;
        task->rc = 0;
    }
    else
    if (task->lookup_only)
        task->rc = 1;               //  packaged once the node is idle
    else
    if (s_package_in_background (task) == 0) {
        if (!streq (task->info.key.resolved, task->resolved))
            snprintf (task->err, sizeof task->err, "%.300s changed while it was packaged",
                      task->invoked);
        else
        if (toolchain_db_record_info (db, &task->info))
            snprintf (task->err, sizeof task->err, "cannot record it in toolchains.db");
        else
            task->rc = 0;
    }
    toolchain_db_destroy (&db);
}

static void
s_package_done (void *arg, bool cancelled)
{
    s_package_task_t *task = (s_package_task_t *) arg;
    toolchains_t *self = task->self;
    if (!cancelled) {
        pthread_mutex_lock (&self->mutex);
        s_compiler_t *c = (s_compiler_t *) zhashx_lookup (self->compilers, task->invoked);
        if (c) {
            if (task->rc == 0) {
                c->state = S_READY;
                c->needed = false;
                memcpy (c->hash, task->info.hash, BLOB_HASH_SIZE);
                c->size = task->info.archive_size;
            }
            else
            if (task->rc == 1) {
                c->state = S_WANTED;
                c->looked_up = true;
            }
            else {
                c->state = S_FAILED;
                c->failed_at = zclock_mono ();
            }
        }
        pthread_mutex_unlock (&self->mutex);
        char hex [BLOB_HASH_HEX_SIZE + 1];
        s_hex (task->info.hash, hex);
        if (task->rc == 0) {
            s_held_add (self, task->info.hash, task->info.archive_size);
            if (!task->reused)
                self->packaged++;
            log_info ("toolchain %.16s for %s: %s (%llu bytes, %lld ms)", hex, task->invoked,
                      task->reused ? "known from an earlier run" : "packaged",
                      (unsigned long long) task->info.archive_size,
                      (long long) (zclock_mono () - task->started));
        }
        else
        if (task->rc < 0)
            log_warn ("cannot package %s as a toolchain: %s (jobs go to peers with the "
                      "same compiler; retried in %d s)", task->invoked, task->err,
                      TOOLCHAINS_RETRY_MS / 1000);
    }
    free (task);
}

//  --------------------------------------------------------------------------
//  Peer side (worker threads)

int
toolchains_tree (const char *dir, const uint8_t hash [BLOB_HASH_SIZE],
                 char *tree, size_t tree_size, char *err, size_t err_size)
{
    char hex [BLOB_HASH_HEX_SIZE + 1], archive [TOOLCHAIN_PATH_MAX];
    s_hex (hash, hex);
    if ((size_t) snprintf (tree, tree_size, "%s/toolchains/unpacked/%s", dir, hex) >= tree_size
    ||  toolchain_archive_path (dir, hash, archive, sizeof archive)) {
        snprintf (err, err_size, "path too long");
        return -1;
    }
    struct stat st;
    if (stat (tree, &st) == 0 && S_ISDIR (st.st_mode))
        return 0;
    if (stat (archive, &st)) {
        snprintf (err, err_size, "toolchain %.16s is not here", hex);
        errno = ENOENT;
        return -1;
    }
    char parent [TOOLCHAIN_PATH_MAX + 64];
    snprintf (parent, sizeof parent, "%s/toolchains/unpacked", dir);
    mkdir (parent, 0700);
    //  toolchain_unpack checks the archive's hash first and makes the tree
    //  appear whole (a rename), so two workers may race here harmlessly.
    if (toolchain_unpack (archive, hash, tree, err, err_size)) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Loop

bool
toolchains_held (toolchains_t *self, const uint8_t hash [BLOB_HASH_SIZE])
{
    char hex [BLOB_HASH_HEX_SIZE + 1];
    s_hex (hash, hex);
    return zhashx_lookup (self->held, hex) != NULL;
}

void
toolchains_add_held (toolchains_t *self, const uint8_t hash [BLOB_HASH_SIZE], uint64_t size)
{
    s_held_add (self, hash, size);
}

//  The gossiped summary: the first TOOLCHAINS_PREFIX bytes of each held
//  hash, as many as fit.
//  MESHCC_BENCH_NO_RESHARE=1 (scripts/bench-toolchain-spread only): this
//  node does not offer archives it fetched, so every fetch of a new
//  toolchain draws from the node that packaged it: the baseline that the
//  fetch-from-any-holder design is measured against.
static void
s_publish (toolchains_t *self)
{
    uint8_t summary [MESHCC_TOOLCHAIN_SUMMARY_MAX];
    size_t size = 0;
    const char *no_reshare = getenv ("MESHCC_BENCH_NO_RESHARE");
    bool reshare = !(no_reshare && streq (no_reshare, "1"));
    for (s_held_t *h = (s_held_t *) zhashx_first (self->held); h;
         h = (s_held_t *) zhashx_next (self->held)) {
        if (h->fetched && !reshare)
            continue;
        if (size + TOOLCHAINS_PREFIX > sizeof summary)
            break;
        memcpy (summary + size, h->hash, TOOLCHAINS_PREFIX);
        size += TOOLCHAINS_PREFIX;
    }
    gossip_set_toolchains (self->node->gossip, summary, size);
    self->summary_dirty = false;
}

//  Removes a dropped tree (a worker's task).
static void
s_remove_fn (worker_ctx_t *ctx, void *arg)
{
    (void) ctx;
    tree_remove ((const char *) arg);
}

static void
s_remove_done (void *arg, bool cancelled)
{
    (void) cancelled;
    free (arg);
}

//  The unpacked tree of `hex` out of the way at once (a rename: a job
//  starting now unpacks it afresh), removed on a worker. Job roots made
//  from it keep their own hard links.
static void
s_drop_tree (toolchains_t *self, const char *hex)
{
    static uint64_t serial;
    char tree [TOOLCHAIN_PATH_MAX + 128], *trash = NULL;
    snprintf (tree, sizeof tree, "%.4000s/toolchains/unpacked/%s", self->dir, hex);
    if (asprintf (&trash, "%.4000s/toolchains/.trash-%s-%d-%llu", self->dir, hex, getpid (),
                  (unsigned long long) ++serial) < 0)
        abort ();
    if (rename (tree, trash) == 0)
        worker_pool_submit (self->node->workers, s_remove_fn, s_remove_done, trash);
    else
        free (trash);
}

void
toolchains_forget (toolchains_t *self, const uint8_t hash [BLOB_HASH_SIZE])
{
    char hex [BLOB_HASH_HEX_SIZE + 1], archive [TOOLCHAIN_PATH_MAX];
    s_hex (hash, hex);
    s_drop_tree (self, hex);
    s_held_t *held = (s_held_t *) zhashx_lookup (self->held, hex);
    if (held) {
        zhashx_delete (self->held, hex);
        free (held);
        self->summary_dirty = true;
    }
    if (toolchain_archive_path (self->dir, hash, archive, sizeof archive) == 0)
        unlink (archive);
    pthread_mutex_lock (&self->mutex);
    for (s_compiler_t *c = (s_compiler_t *) zhashx_first (self->compilers); c;
         c = (s_compiler_t *) zhashx_next (self->compilers))
        if (c->state == S_READY && memcmp (c->hash, hash, BLOB_HASH_SIZE) == 0)
            c->state = S_WANTED;            //  package it again
    pthread_mutex_unlock (&self->mutex);
}

bool
toolchains_member_holds (const gossip_member_t *member, const uint8_t hash [BLOB_HASH_SIZE])
{
    const peer_state_t *state = &member->state;
    for (size_t at = 0; at + TOOLCHAINS_PREFIX <= state->toolchains_size; at += TOOLCHAINS_PREFIX)
        if (memcmp (state->toolchains + at, hash, TOOLCHAINS_PREFIX) == 0)
            return true;
    return false;
}

//  --------------------------------------------------------------------------
//  Fetching (loop thread; fetch.c does the chunks, credits and checking)

void
toolchains_fetch (toolchains_t *self, const uint8_t hash [BLOB_HASH_SIZE], uint64_t size,
                  const compiler_identity_t *compiler)
{
    s_fetch_t probe;
    s_hex (hash, probe.hex);
    if (zhashx_lookup (self->held, probe.hex) || zhashx_lookup (self->fetches, probe.hex))
        return;
    s_fetch_t *f = (s_fetch_t *) zmalloc (sizeof (s_fetch_t));
    memcpy (f->hash, hash, BLOB_HASH_SIZE);
    snprintf (f->hex, sizeof f->hex, "%s", probe.hex);
    f->size = size;
    if (compiler)
        f->compiler = *compiler;
    f->started = zclock_mono ();
    char dir [TOOLCHAIN_PATH_MAX + 32];
    snprintf (dir, sizeof dir, "%.4000s/toolchains", self->dir);
    mkdir (dir, 0700);
    snprintf (f->part, sizeof f->part, "%.4050s/.part-%s", dir, f->hex);
    f->fetch = fetch_new (FETCH_KIND_TOOLCHAIN, hash, f->part, zclock_time ());
    if (!f->fetch) {
        log_warn ("cannot fetch toolchain %.16s: %s: %s", f->hex, f->part, strerror (errno));
        free (f);
        return;
    }
    zhashx_insert (self->fetches, f->hex, f);
    log_info ("fetching toolchain %.16s (%llu bytes)", f->hex, (unsigned long long) size);
}

//  A fetched archive goes into the registry with the compiler the job
//  that needed it named (an archive's own contents are not read here).
static void
s_record (toolchains_t *self, const uint8_t hash [BLOB_HASH_SIZE],
          const compiler_identity_t *compiler, uint64_t size)
{
    char err [256];
    toolchain_db_t *db = toolchain_db_new (self->dir, err, sizeof err);
    if (!db) {
        log_warn ("toolchains.db: %s", err);
        return;
    }
    if (toolchain_db_record (db, hash, compiler->path, compiler->version, compiler->target,
                             size, 0, NULL))
        log_warn ("cannot record a fetched toolchain in toolchains.db");
    toolchain_db_destroy (&db);
}

//  A member's load for holder choice: jobs per slot, × 1000.
static uint32_t
s_member_load (const gossip_member_t *member)
{
    const peer_state_t *state = &member->state;
    uint32_t slots = state->slots ? state->slots : 1;
    return (state->running + state->queued) * 1000 / slots;
}

//  Holders from gossip: alive members whose summary names the archive.
static void
s_refresh_holders (toolchains_t *self, s_fetch_t *f)
{
    gossip_t *gossip = self->node->gossip;
    for (size_t i = 0; i < gossip_size (gossip); i++) {
        const gossip_member_t *m = gossip_member (gossip, i);
        if (m->is_self || !toolchains_member_holds (m, f->hash))
            continue;
        if (m->status == PEER_ALIVE) {
            fetch_add_holder (f->fetch, m->state.id, s_member_load (m));
            f->had_holder = true;
        }
        else
            fetch_remove_holder (f->fetch, m->state.id);
    }
}

//  Sends what the credit allows.
static void
s_pump (toolchains_t *self, s_fetch_t *f, int64_t now)
{
    fetch_send_t sends [FETCH_WINDOW];
    size_t count = fetch_requests (f->fetch, now, sends, FETCH_WINDOW);
    for (size_t i = 0; i < count; i++) {
        uint8_t *data = NULL;
        size_t size = 0;
        if (fetch_wire_encode_request (&sends [i].request, &data, &size) == 0)
            node_send_to_member (self->node, sends [i].holder, data, size);
        free (data);                //  an unsent request times out
    }
}

//  A fetch that ended: DONE puts the archive in place (its hash was
//  checked by fetch.c; toolchain_unpack checks it again before use).
static void
s_fetch_end (toolchains_t *self, s_fetch_t *f)
{
    fetch_stats_t stats;
    fetch_stats (f->fetch, &stats);
    if (fetch_state (f->fetch) == FETCH_DONE) {
        char archive [TOOLCHAIN_PATH_MAX];
        struct stat st;
        if (toolchain_archive_path (self->dir, f->hash, archive, sizeof archive) == 0
        &&  rename (f->part, archive) == 0 && chmod (archive, 0444) == 0
        &&  stat (archive, &st) == 0) {
            s_held_add (self, f->hash, (uint64_t) st.st_size);
            char hex [BLOB_HASH_HEX_SIZE + 1];
            s_hex (f->hash, hex);
            ((s_held_t *) zhashx_lookup (self->held, hex))->fetched = true;
            self->summary_dirty = true;
            self->fetched++;
            s_record (self, f->hash, &f->compiler, (uint64_t) st.st_size);
            log_info ("fetched toolchain %.16s: %llu bytes from %zu holder(s) in %lld ms",
                      f->hex, (unsigned long long) st.st_size, fetch_source_count (f->fetch),
                      (long long) (zclock_mono () - f->started));
        }
        else {
            self->fetch_failures++;
            log_warn ("fetched toolchain %.16s but cannot store it: %s", f->hex, strerror (errno));
        }
    }
    else {
        self->fetch_failures++;
        log_warn ("cannot fetch toolchain %.16s: %s", f->hex,
                  fetch_state (f->fetch) == FETCH_FAILED ? fetch_reason (f->fetch)
                                                         : "no node holds it");
    }
    zhashx_delete (self->fetches, f->hex);
    fetch_destroy (&f->fetch);      //  removes the part file unless renamed
    free (f);
}

static void
s_fetch_step (toolchains_t *self, s_fetch_t *f, int64_t now_mono)
{
    int64_t now = zclock_time ();
    s_refresh_holders (self, f);
    fetch_tick (f->fetch, now);
    if (fetch_state (f->fetch) == FETCH_RUNNING && !f->had_holder) {
        //  Gossip may not have told us of a holder yet.
        if (now_mono - f->started > TOOLCHAINS_HOLDER_WAIT_MS)
            s_fetch_end (self, f);
        return;
    }
    if (fetch_state (f->fetch) == FETCH_RUNNING)
        s_pump (self, f, now);
    if (fetch_state (f->fetch) != FETCH_RUNNING)
        s_fetch_end (self, f);
}

void
toolchains_on_chunk (toolchains_t *self, link_t *link, fetch_chunk_msg_t *chunk)
{
    char hex [BLOB_HASH_HEX_SIZE + 1];
    s_hex (chunk->hash, hex);
    s_fetch_t *f = (s_fetch_t *) zhashx_lookup (self->fetches, hex);
    if (!f || chunk->kind != FETCH_KIND_TOOLCHAIN)
        return;
    //  The holder is the member behind this link.
    const gossip_member_t *holder = node_link_member (self->node, link);
    if (!holder)
        return;
    fetch_on_chunk (f->fetch, holder->state.id, chunk, zclock_time ());
    if (fetch_state (f->fetch) == FETCH_RUNNING)
        s_pump (self, f, zclock_time ());
    else
        s_fetch_end (self, f);
}

//  The holder side: a FETCH answered from the archive on a worker (one
//  file read), the CHUNK sent back through the ROUTER.
static fetch_chunk_msg_t *
s_answer (worker_ctx_t *ctx, const fetch_request_msg_t *request, const char *path)
{
    (void) ctx;
    return fetch_serve_chunk (path, request);
}

void
toolchains_on_fetch (toolchains_t *self, zframe_t *routing_id, const fetch_request_msg_t *request)
{
    char path [TOOLCHAIN_PATH_MAX] = "";
    if (request->kind == FETCH_KIND_TOOLCHAIN && toolchains_held (self, request->hash)) {
        toolchain_archive_path (self->dir, request->hash, path, sizeof path);
        char hex [BLOB_HASH_HEX_SIZE + 1];
        s_hex (request->hash, hex);
        ((s_held_t *) zhashx_lookup (self->held, hex))->last_used = zclock_mono ();
    }
    node_answer_fetch (self->node, routing_id, request, *path ? path : NULL, s_answer,
                       &self->chunks_served);
}

void
toolchains_use (toolchains_t *self, const uint8_t hash [BLOB_HASH_SIZE], int delta)
{
    char hex [BLOB_HASH_HEX_SIZE + 1];
    s_hex (hash, hex);
    s_held_t *held = (s_held_t *) zhashx_lookup (self->held, hex);
    if (!held)
        return;
    if (delta > 0)
        held->in_use++;
    else
    if (held->in_use > 0)
        held->in_use--;
    held->last_used = zclock_mono ();
}

static uint64_t s_tree_bytes;

static int
s_add_size (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) path; (void) ftw;
    if (flag == FTW_F)
        s_tree_bytes += (uint64_t) st->st_size;
    return 0;
}

//  Keeps DIR/toolchains (archives and trees) under --toolchain-cache-size:
//  least recently used out, never one a job admitted here names, and
//  never the most recently used one (the one the next job needs; a bound
//  below one toolchain then holds exactly that one).
static void
s_evict (toolchains_t *self)
{
    uint64_t total = 0;
    s_held_t *newest = NULL;
    for (s_held_t *h = (s_held_t *) zhashx_first (self->held); h;
         h = (s_held_t *) zhashx_next (self->held)) {
        //  A tree appears whole (a rename) and leaves only with its held
        //  entry (toolchains_forget): measured once, when first seen.
        if (h->tree_size == 0) {
            char hex [BLOB_HASH_HEX_SIZE + 1], tree [TOOLCHAIN_PATH_MAX + 128];
            s_hex (h->hash, hex);
            snprintf (tree, sizeof tree, "%.4000s/toolchains/unpacked/%s", self->dir, hex);
            s_tree_bytes = 0;           //  loop thread only
            nftw (tree, s_add_size, 16, FTW_PHYS | FTW_MOUNT);
            h->tree_size = s_tree_bytes;
        }
        total += h->size + h->tree_size;
        if (!newest || h->last_used > newest->last_used)
            newest = h;
    }
    while (total > self->node->config->toolchain_cache_size) {
        s_held_t *oldest = NULL;
        for (s_held_t *h = (s_held_t *) zhashx_first (self->held); h;
             h = (s_held_t *) zhashx_next (self->held))
            if (h != newest && h->in_use == 0 && (!oldest || h->last_used < oldest->last_used))
                oldest = h;
        if (!oldest)
            break;
        char hex [BLOB_HASH_HEX_SIZE + 1];
        s_hex (oldest->hash, hex);
        uint64_t freed = oldest->size + oldest->tree_size;
        log_info ("toolchain %.16s evicted (%llu bytes; DIR/toolchains over %llu)", hex,
                  (unsigned long long) freed,
                  (unsigned long long) self->node->config->toolchain_cache_size);
        total -= freed;
        self->evicted++;
        uint8_t hash [BLOB_HASH_SIZE];
        memcpy (hash, oldest->hash, BLOB_HASH_SIZE);
        toolchains_forget (self, hash);         //  frees `oldest`
    }
}

void
toolchains_tick (toolchains_t *self, int64_t now)
{
    if (now - self->evict_checked >= TOOLCHAINS_EVICT_CHECK_MS) {
        self->evict_checked = now;
        s_evict (self);
    }
    zlistx_t *running = zhashx_values (self->fetches);
    for (s_fetch_t *f = (s_fetch_t *) zlistx_first (running); f;
         f = (s_fetch_t *) zlistx_next (running))
        s_fetch_step (self, f, now);
    zlistx_destroy (&running);

    //  Packagings wanted by jobs, and failed ones due for a retry: on a
    //  node with a quota, once it is idle or a peer needs the compiler.
    node_t *node = self->node;
    zlist_t *start = zlist_new ();
    pthread_mutex_lock (&self->mutex);
    if (node->local_running || node->serving || origin_jobs (node->origin))
        self->busy_at = now;
    bool needed = false;
    for (s_compiler_t *c = (s_compiler_t *) zhashx_first (self->compilers); c;
         c = (s_compiler_t *) zhashx_next (self->compilers))
        if (c->needed && (c->state == S_WANTED || c->state == S_PACKAGING))
            needed = true;
    bool wait = saturation_background_waits (node->share.quota_milli, node->cgroup_load,
                                             now - self->busy_at, needed);
    atomic_store (&self->hold, wait);
    for (s_compiler_t *c = (s_compiler_t *) zhashx_first (self->compilers); c;
         c = (s_compiler_t *) zhashx_next (self->compilers)) {
        bool due = c->state == S_WANTED
                || (c->state == S_FAILED && now - c->failed_at > TOOLCHAINS_RETRY_MS);
        //  Busy: only a look in the registry (an archive from an earlier
        //  run costs nothing to use), once.
        if (due && wait && c->looked_up)
            self->packaging_waits++;
        else
        if (due) {
            c->state = S_PACKAGING;
            zlist_append (start, c);
        }
    }
    pthread_mutex_unlock (&self->mutex);
    for (s_compiler_t *c = (s_compiler_t *) zlist_first (start); c;
         c = (s_compiler_t *) zlist_next (start)) {
        s_package_task_t *task = (s_package_task_t *) zmalloc (sizeof (s_package_task_t));
        task->self = self;
        task->lookup_only = wait;
        snprintf (task->invoked, sizeof task->invoked, "%s", c->invoked);
        snprintf (task->resolved, sizeof task->resolved, "%s", c->resolved);
        task->started = now;
        worker_pool_submit (self->node->workers, s_package_fn, s_package_done, task);
    }
    zlist_destroy (&start);
    if (self->summary_dirty)
        s_publish (self);
}

//  Appends to `text` (`size` bytes, `*len` of them used) as snprintf
//  would. False once it no longer fits: what fitted stays, truncated.
static bool __attribute__ ((format (printf, 4, 5)))
s_append (char *text, size_t size, size_t *len, const char *format, ...)
{
    if (*len >= size)
        return false;
    va_list args;
    va_start (args, format);
    int n = vsnprintf (text + *len, size - *len, format, args);
    va_end (args);
    if (n < 0 || (size_t) n >= size - *len) {
        *len = size;
        return false;
    }
    *len += (size_t) n;
    return true;
}

//  The names of the members that gossip `hash`, "self" first if we hold
//  it; and (with db) the holders recorded.
static void
s_holders (toolchains_t *self, const uint8_t hash [BLOB_HASH_SIZE], char *text, size_t size,
           toolchain_db_t *db)
{
    size_t len = 0;
    text [0] = 0;
    if (toolchains_held (self, hash))
        s_append (text, size, &len, "self");
    gossip_t *gossip = self->node->gossip;
    for (size_t i = 0; i < gossip_size (gossip) && len < size; i++) {
        const gossip_member_t *m = gossip_member (gossip, i);
        if (m->is_self || m->status != PEER_ALIVE || !toolchains_member_holds (m, hash))
            continue;
        if (db)
            toolchain_db_holder_record (db, hash, m->state.id);
        s_append (text, size, &len, "%s%s", len ? "," : "", m->state.name);
    }
}

zlist_t *
toolchains_list (toolchains_t *self)
{
    zlist_t *records = zlist_new ();
    char err [256];
    toolchain_db_t *db = toolchain_db_new (self->dir, err, sizeof err);
    if (!db)
        return records;
    size_t count = 0;
    toolchain_record_t *rows = toolchain_db_list (db, &count);
    for (size_t i = 0; i < count; i++) {
        const toolchain_record_t *row = &rows [i];
        zhash_t *record = zhash_new ();
        zhash_autofree (record);
        char value [1024];
        s_hex (row->hash, value);
        zhash_update (record, "hash", value);
        zhash_update (record, "compiler", (void *) row->compiler);
        zhash_update (record, "compiler_version", (void *) row->version);
        zhash_update (record, "target", (void *) row->target);
        snprintf (value, sizeof value, "%llu", (unsigned long long) row->size);
        zhash_update (record, "size", value);
        snprintf (value, sizeof value, "%lld", (long long) row->created);
        zhash_update (record, "created", value);
        snprintf (value, sizeof value, "%lld", (long long) row->last_used);
        zhash_update (record, "last_used", value);
        s_holders (self, row->hash, value, sizeof value, db);
        zhash_update (record, "holders", value);
        zhash_update (record, "here", toolchains_held (self, row->hash) ? "yes" : "no");
        zlist_append (records, record);
    }
    free (rows);
    toolchain_db_destroy (&db);
    return records;
}

void
toolchains_needed (toolchains_t *self, const char *resolved)
{
    pthread_mutex_lock (&self->mutex);
    for (s_compiler_t *c = (s_compiler_t *) zhashx_first (self->compilers); c;
         c = (s_compiler_t *) zhashx_next (self->compilers))
        if (streq (c->resolved, resolved) && c->state != S_READY && !c->needed) {
            c->needed = true;
            log_info ("a peer lacks %s: packaging it now", c->invoked);
        }
    pthread_mutex_unlock (&self->mutex);
}

void
toolchains_stop (toolchains_t *self)
{
    if (self)
        atomic_store (&self->stopping, true);
}

void
toolchains_stats (toolchains_t *self, zhash_t *record)
{
    char value [64];
    snprintf (value, sizeof value, "%llu", (unsigned long long) self->packaging_waits);
    zhash_update (record, "toolchain_packaging_waits", value);
    snprintf (value, sizeof value, "%zu", zhashx_size (self->held));
    zhash_update (record, "toolchains_held", value);
    snprintf (value, sizeof value, "%llu", (unsigned long long) self->packaged);
    zhash_update (record, "toolchains_packaged", value);
    snprintf (value, sizeof value, "%llu", (unsigned long long) self->fetched);
    zhash_update (record, "toolchains_fetched", value);
    snprintf (value, sizeof value, "%llu", (unsigned long long) self->fetch_failures);
    zhash_update (record, "toolchain_fetch_failures", value);
    snprintf (value, sizeof value, "%llu", (unsigned long long) self->chunks_served);
    zhash_update (record, "toolchain_chunks_served", value);
    snprintf (value, sizeof value, "%llu", (unsigned long long) self->evicted);
    zhash_update (record, "toolchains_evicted", value);
    uint64_t bytes = 0;
    for (s_held_t *h = (s_held_t *) zhashx_first (self->held); h;
         h = (s_held_t *) zhashx_next (self->held))
        bytes += h->size + h->tree_size;
    snprintf (value, sizeof value, "%llu", (unsigned long long) bytes);
    zhash_update (record, "toolchain_store_bytes", value);
}

void
toolchains_status (toolchains_t *self, zhash_t *record)
{
    //  Transfers in progress: "HEX16 BYTES/TOTAL from N holders; ..."
    char text [1024] = "none";
    size_t len = 0;
    for (s_fetch_t *f = (s_fetch_t *) zhashx_first (self->fetches); f;
         f = (s_fetch_t *) zhashx_next (self->fetches)) {
        uint64_t bytes = 0, total = 0;
        bool known = false;
        fetch_progress (f->fetch, &bytes, &total, &known);
        if (!s_append (text, sizeof text, &len, "%s%.16s %llu/%llu bytes from %zu holder(s)",
                       len ? "; " : "", f->hex, (unsigned long long) bytes,
                       (unsigned long long) (known ? total : f->size),
                       fetch_source_count (f->fetch)))
            break;
    }
    zhash_update (record, "toolchain_transfers", text);
    //  Our compilers not packaged yet: "PATH wanted|packaging|paused|failed
    //  [needed]; ..."
    len = 0;
    snprintf (text, sizeof text, "none");
    bool hold = atomic_load (&self->hold);
    pthread_mutex_lock (&self->mutex);
    for (s_compiler_t *c = (s_compiler_t *) zhashx_first (self->compilers); c;
         c = (s_compiler_t *) zhashx_next (self->compilers)) {
        if (c->state == S_READY)
            continue;
        const char *state = c->state == S_WANTED ? (hold ? "waiting for an idle node" : "wanted")
                          : c->state == S_PACKAGING ? (hold ? "paused" : "packaging")
                          : "failed";
        if (!s_append (text, sizeof text, &len, "%s%.300s %s%s", len ? "; " : "",
                       c->invoked, state, c->needed ? " (needed by a peer)" : ""))
            break;
    }
    pthread_mutex_unlock (&self->mutex);
    zhash_update (record, "toolchain_packaging", text);
    char value [32];
    snprintf (value, sizeof value, "%zu", zhashx_size (self->held));
    zhash_update (record, "toolchains_held", value);
}
