//  serve: jobs this node runs for peers. Admission is decided at once, on
//  the loop, when the JOB arrives (a free slot and a working sandbox, else
//  REFUSED), so an origin with a stale view of us loses one round trip,
//  never a slot over our bound. The slot is held from ACCEPTED to RESULT.
//
//  On a worker: the compiler identity is compared (REFUSED "identity"),
//  inlined blobs are stored (the store checks their hashes), and what is
//  still missing is fetched from the holders the JOB names (blob_fetch.c,
//  issue 4: other peers first, then the origin, FETCH kind 'b'); what no
//  fetch brought is asked of the origin once with NEED. When every blob
//  is here, or the last BLOBS arrived, the executor runs the job in its
//  sandbox (or the job fails with "missing input") and the RESULT frame
//  is encoded there too. Replies go through the ROUTER to the origin's
//  routing id.

#include "meshcc/compile_args.h"
#include "meshcc/executor.h"
#include "meshcc/inputs.h"
#include "meshcc/node_log.h"
#include "node_private.h"

typedef struct _serve_job_t serve_job_t;

struct _serve_t {
    node_t   *node;
    zhashx_t *jobs;                 //  "routing-hex:id" -> serve_job_t
};

struct _serve_job_t {
    serve_t  *serve;
    char      key [64];
    zframe_t *routing_id;
    uint64_t  id;
    job_spec_t *spec;
    zlist_t  *incoming;             //  job_msg_t with blobs to store (JOB, BLOBS)
    job_msg_t *storing;             //  the one the worker is storing now
    bool      identity_checked;
    char     *tree;                 //  the unpacked toolchain it runs with, or NULL
    bool      fetch_toolchain;      //  refused: fetch its toolchain
    bool      forget_toolchain;     //  our archive of it is corrupt
    bool      uses_toolchain;       //  counted in toolchains_use
    bool      in_worker;
    bool      need_sent;
    bool      fetch_tried;          //  missing blobs were asked of holders
    size_t    fetch_pending;        //  fetches it waits for (blob_fetch.c)
    size_t    fetch_count, fetch_failed;    //  fetches it waited for; those that failed
    bool      recheck;              //  they ended while it was in a worker
    int64_t   inputs_since;         //  zclock_usecs when it began to wait for blobs
    bool      last_received;        //  BLOBS with "last" arrived
    bool      finished;
    //  Worker results
    char     *refusal;              //  send REFUSED with this
    uint8_t (*missing) [BLOB_HASH_SIZE];
    size_t    missing_count;
    uint8_t  *frame;                //  encoded RESULT
    size_t    frame_size;
    bool      failed;               //  the RESULT is a failure
    uint64_t  blobs_stored, bytes_stored;
    int64_t   waiting_since;        //  zclock_mono when NEED was sent
};

static void
s_job_free (serve_job_t **job_p)
{
    serve_job_t *job = *job_p;
    if (!job)
        return;
    if (job->uses_toolchain)
        toolchains_use (job->serve->node->toolchains, job->spec->toolchain, -1);
    zframe_destroy (&job->routing_id);
    job_spec_destroy (&job->spec);
    free (job->tree);
    job_msg_t *msg;
    while ((msg = (job_msg_t *) zlist_pop (job->incoming)))
        job_msg_destroy (&msg);
    zlist_destroy (&job->incoming);
    job_msg_destroy (&job->storing);
    free (job->refusal);
    free (job->missing);
    free (job->frame);
    free (job);
    *job_p = NULL;
}

static void
s_send (serve_job_t *job, job_msg_t *msg)
{
    node_t *node = job->serve->node;
    node_send_job_msg (node, node->router, job->routing_id, msg);
}

//  Ends a job and frees its slot (which may start a queued job of ours).
static void
s_finish (serve_job_t *job)
{
    serve_t *self = job->serve;
    node_t *node = self->node;
    if (node->serving)
        node->serving--;
    job->finished = true;
    zhashx_delete (self->jobs, job->key);
    if (!job->in_worker)
        s_job_free (&job);
    origin_dispatch (node->origin);
}

static bool
s_identity_equal (const compiler_identity_t *a, const compiler_identity_t *b)
{
    return streq (a->path, b->path) && streq (a->version, b->version)
        && streq (a->target, b->target) && memcmp (a->hash, b->hash, BLOB_HASH_SIZE) == 0;
}

static void
s_encode_result (serve_job_t *job, job_result_t *result)
{
    job_msg_t *msg = job_msg_new (JOB_WIRE_RESULT, job->id);
    msg->result = result;
    job->failed = result->failure != NULL;
    if (job_wire_encode (msg, &job->frame, &job->frame_size)) {
        //  Outputs too big for a frame: tell the origin, which compiles.
        job_result_t *failure = job_result_new ();
        job_result_fail (failure, "the outputs do not fit in a frame");
        msg->result = failure;
        job->failed = true;
        if (job_wire_encode (msg, &job->frame, &job->frame_size))
            job->frame = NULL;
        job_result_destroy (&failure);
    }
    msg->result = NULL;
    job_msg_destroy (&msg);
}

//  Learning this machine's identity of the compiler a peer names runs
//  that program here, outside any sandbox (-dumpfullversion,
//  -dumpmachine). So before that, the name must be what the executor
//  would run anyway: argv[0] bare or absolute, reaching exactly that
//  binary through INPUTS_SANDBOX_PATH, named like a compiler, and not a
//  file a peer could have placed here (the blob store's 0555 raw copies,
//  job roots: all under the node's directory). NULL if it may be probed.
static const char *
s_compiler_plausible (const job_spec_t *spec, const char *node_dir)
{
    const char *path = spec->compiler.path;
    const char *argv0 = spec->argc >= 1 && spec->argv? spec->argv [0]: NULL;
    if (!argv0 || (strchr (argv0, '/') && argv0 [0] != '/') || path [0] != '/')
        return "is not a compiler path";
    const char *base = strrchr (path, '/') + 1;
    if (compile_args_family (base) < 0)
        return "is not named like a compiler";
    char found [JOB_MAX_PATH], real [PATH_MAX], dir [PATH_MAX];
    if (inputs_which (argv0, INPUTS_SANDBOX_PATH, found, sizeof found)
    ||  !realpath (found, real) || !streq (real, path))
        return "is not what the command runs";
    if (node_dir && realpath (node_dir, dir)) {
        size_t len = strlen (dir);
        if (strncmp (real, dir, len) == 0 && real [len] == '/')
            return "is in this node's directory";
    }
    return NULL;
}

static void
s_serve_fn (worker_ctx_t *ctx, void *arg)
{
    serve_job_t *job = (serve_job_t *) arg;
    if (!job->identity_checked) {
        job->identity_checked = true;
        //  Its toolchain when we hold it (issue 4): then our own compiler
        //  does not matter.
        if (job->spec->has_toolchain) {
            char tree [JOB_MAX_PATH], err [512];
            if (toolchains_tree (job->serve->node->config->dir, job->spec->toolchain,
                                 tree, sizeof tree, err, sizeof err) == 0)
                job->tree = strdup (tree);
            else
            if (errno != ENOENT) {
                //  The archive here does not unpack (its hash no longer
                //  matches): it goes, and a good copy is fetched.
                log_warn ("toolchain of job %llu: %s; fetching it again",
                          (unsigned long long) job->id, err);
                job->forget_toolchain = true;
            }
        }
        const char *implausible = job->tree ? NULL
                                : s_compiler_plausible (job->spec, job->serve->node->config->dir);
        compiler_identity_t mine;
        memset (&mine, 0, sizeof mine);
        if (!job->tree && !implausible
        &&  (compiler_identity_get (job->spec->compiler.path, &mine)
        ||   !s_identity_equal (&mine, &job->spec->compiler)))
            implausible = "is not the compiler here";
        if (implausible && job->spec->has_toolchain) {
            //  Not runnable here yet: fetch its toolchain for the next jobs.
            job->fetch_toolchain = true;
            char hex [BLOB_HASH_HEX_SIZE + 1];
            blob_hash_hex (job->spec->toolchain, hex);
            if (asprintf (&job->refusal, "toolchain: %.16s is not here yet (fetching it)", hex) < 0)
                abort ();
            return;
        }
        if (implausible) {
            if (asprintf (&job->refusal, JOB_REFUSAL_IDENTITY " %.300s %s%s%s; not run",
                          job->spec->compiler.path, job->spec->compiler.version,
                          *job->spec->compiler.version ? " " : "", implausible) < 0)
                abort ();
            return;
        }
    }
    blob_store_t *store = worker_blob_store (ctx);
    executor_t *executor = worker_executor (ctx);
    if (!store || !executor) {
        job_result_t *result = job_result_new ();
        job_result_fail (result, "unavailable: the executor cannot start here");
        s_encode_result (job, result);
        job_result_destroy (&result);
        return;
    }
    if (job->storing) {
        for (size_t i = 0; i < job->storing->blob_count; i++) {
            job_blob_t *blob = &job->storing->blobs [i];
            if (blob_store_put (store, blob->hash, blob->data, blob->size) == 0) {
                job->blobs_stored++;
                job->bytes_stored += blob->size;
            }
        }
        job_msg_destroy (&job->storing);
    }
    free (job->missing);
    job->missing = executor_missing (executor, job->spec, job->tree, &job->missing_count);
    if (job->missing_count && !job->last_received && job->missing_count <= JOB_MAX_ENTRIES)
        return;                     //  NEED, or wait for more BLOBS
    job_result_t *result = job_result_new ();
    if (job->missing_count)
        job_result_fail (result, "missing input (%zu blobs)", job->missing_count);
    else {
        //  The time the job waited for blobs (fetches, NEED) is its fetch time.
        uint64_t waited = job->inputs_since? (uint64_t) (zclock_usecs () - job->inputs_since): 0;
        executor_run (executor, job->spec, job->tree, result);
        result->fetch_us = waited;
    }
    s_encode_result (job, result);
    job_result_destroy (&result);
}

static void s_kick (serve_job_t *job);

//  The job's missing blobs asked of the holders its JOB names (issue 4),
//  by manifest entry (which gives each blob's size), each blob once.
//  Sets fetch_pending to the fetches the job now waits for; 0 means NEED
//  at once. Fetching pays only while a holder other than the origin (which
//  names itself last) is alive: the origin alone answers one NEED with
//  every blob, batched and compressed, where fetches would cost it one
//  request each. It stays a holder of every fetch, for what the others
//  fail to serve.
static void
s_fetch_missing (serve_job_t *job)
{
    const job_spec_t *spec = job->spec;
    node_t *node = job->serve->node;
    bool other = false;
    for (size_t i = 0; i + 1 < spec->holder_count && !other; i++)
        other = blob_fetch_holder_alive (node->blob_fetch, spec->holders [i]);
    if (!other)
        return;
    zhashx_t *missing = zhashx_new ();
    char hex [BLOB_HASH_HEX_SIZE + 1];
    for (size_t i = 0; i < job->missing_count; i++) {
        blob_hash_hex (job->missing [i], hex);
        zhashx_insert (missing, hex, (void *) 1);
    }
    for (size_t i = 0; i < spec->entry_count && zhashx_size (missing); i++) {
        const manifest_entry_t *entry = &spec->entries [i];
        if (entry->kind != MANIFEST_FILE)
            continue;
        blob_hash_hex (entry->hash, hex);
        if (!zhashx_lookup (missing, hex))
            continue;
        zhashx_delete (missing, hex);
        int rc = blob_fetch_want (node->blob_fetch, entry->hash, entry->size,
                                  (const uint8_t (*) [MESHCC_ID_SIZE]) spec->holders,
                                  spec->holder_count, job->key);
        if (rc < 0)
            break;                  //  no holder alive: the rest by NEED
        job->fetch_pending += (size_t) rc;
    }
    job->fetch_count = job->fetch_pending;
    zhashx_destroy (&missing);
    if (job->fetch_pending)
        log_debug ("job %llu: fetching %zu blobs from the holders named",
                   (unsigned long long) job->id, job->fetch_pending);
}

static void
s_serve_done (void *arg, bool cancelled)
{
    serve_job_t *job = (serve_job_t *) arg;
    job->in_worker = false;
    if (cancelled || job->finished) {
        if (!job->finished)
            zhashx_delete (job->serve->jobs, job->key);
        s_job_free (&job);
        return;
    }
    node_t *node = job->serve->node;
    node->stats.blobs_received += job->blobs_stored;
    node->stats.blob_bytes_received += job->bytes_stored;
    job->blobs_stored = job->bytes_stored = 0;
    if (job->forget_toolchain) {
        job->forget_toolchain = false;
        toolchains_forget (node->toolchains, job->spec->toolchain);
    }
    if (job->fetch_toolchain) {
        job->fetch_toolchain = false;
        toolchains_fetch (node->toolchains, job->spec->toolchain, job->spec->toolchain_size,
                          &job->spec->compiler);
    }
    if (job->refusal) {
        job_msg_t *msg = job_msg_new (JOB_WIRE_REFUSED, job->id);
        msg->reason = job->refusal;
        job->refusal = NULL;
        log_info ("refused job %llu: %s", (unsigned long long) job->id, msg->reason);
        s_send (job, msg);
        job_msg_destroy (&msg);
        node->stats.jobs_refused_for_peers++;
        s_finish (job);
        return;
    }
    if (job->frame) {
        if (node_send_raw (node, node->router, job->routing_id, job->frame, job->frame_size))
            log_warn ("the result of job %llu could not be sent back", (unsigned long long) job->id);
        if (job->failed)
            node->stats.jobs_failed_for_peers++;
        else
            node->stats.jobs_executed_for_peers++;
        s_finish (job);
        return;
    }
    if (job->missing_count && !job->need_sent && job->recheck) {
        //  Its fetches ended while this worker looked: look again.
        job->recheck = false;
        s_kick (job);
        return;
    }
    if (job->missing_count && !job->need_sent && !job->fetch_pending) {
        if (!job->inputs_since)
            job->inputs_since = zclock_usecs ();
        if (!job->fetch_tried) {
            job->fetch_tried = true;
            s_fetch_missing (job);
        }
    }
    if (job->missing_count && !job->need_sent && !job->fetch_pending) {
        job_msg_t *msg = job_msg_new (JOB_WIRE_NEED, job->id);
        msg->hashes = job->missing;
        msg->hash_count = job->missing_count;
        job->missing = NULL;
        job->missing_count = 0;
        s_send (job, msg);
        job_msg_destroy (&msg);
        job->need_sent = true;
        job->waiting_since = zclock_mono ();
    }
    if (zlist_size (job->incoming))
        s_kick (job);
    //  Last: a fetch that fails at once tells this job now (serve_on_blob).
    if (job->fetch_pending)
        blob_fetch_start (node->blob_fetch);
}

//  Hands the next incoming blobs (if any) to a worker.
static void
s_kick (serve_job_t *job)
{
    if (job->in_worker)
        return;
    job->storing = (job_msg_t *) zlist_pop (job->incoming);
    if (job->storing && job->storing->type == JOB_WIRE_BLOBS && job->storing->last)
        job->last_received = true;
    job->in_worker = true;
    worker_pool_submit (job->serve->node->workers, s_serve_fn, s_serve_done, job);
}

static void
s_refuse (serve_t *self, zframe_t *routing_id, uint64_t id, const char *reason)
{
    node_t *node = self->node;
    job_msg_t *msg = job_msg_new (JOB_WIRE_REFUSED, id);
    msg->reason = strdup (reason);
    node_send_job_msg (node, node->router, routing_id, msg);
    job_msg_destroy (&msg);
    node->stats.jobs_refused_for_peers++;
    log_debug ("refused job %llu: %s", (unsigned long long) id, reason);
}

void
serve_on_msg (serve_t *self, zframe_t *routing_id, job_msg_t *msg)
{
    node_t *node = self->node;
    char key [64];
    char *hex = zframe_strhex (routing_id);
    snprintf (key, sizeof key, "%.40s:%llu", hex, (unsigned long long) msg->job_id);
    free (hex);
    serve_job_t *job = (serve_job_t *) zhashx_lookup (self->jobs, key);
    if (msg->type == JOB_WIRE_JOB) {
        if (job) {
            node->stats.unknown_job++;      //  a duplicate id
            return;
        }
        if (node->executor_why) {
            char reason [JOB_MAX_REASON];
            snprintf (reason, sizeof reason, "unavailable: %s", node->executor_why);
            s_refuse (self, routing_id, msg->job_id, reason);
            return;
        }
        if (node_free_slots (node) == 0) {
            s_refuse (self, routing_id, msg->job_id, "full");
            return;
        }
        node->serving++;
        node_slot_taken (node);
        job = (serve_job_t *) zmalloc (sizeof (serve_job_t));
        job->serve = self;
        snprintf (job->key, sizeof job->key, "%s", key);
        job->routing_id = zframe_dup (routing_id);
        job->id = msg->job_id;
        job->spec = msg->spec;
        msg->spec = NULL;
        if (job->spec->has_toolchain) {
            toolchains_use (node->toolchains, job->spec->toolchain, 1);
            job->uses_toolchain = true;
        }
        job->incoming = zlist_new ();
        zhashx_insert (self->jobs, job->key, job);
        job_msg_t *accepted = job_msg_new (JOB_WIRE_ACCEPTED, job->id);
        s_send (job, accepted);
        job_msg_destroy (&accepted);
        //  The JOB message itself carries the inlined blobs.
        job_msg_t *blobs = job_msg_new (JOB_WIRE_BLOBS, job->id);
        blobs->blobs = msg->blobs;
        blobs->blob_count = msg->blob_count;
        msg->blobs = NULL;
        msg->blob_count = 0;
        zlist_append (job->incoming, blobs);
        s_kick (job);
        return;
    }
    if (msg->type != JOB_WIRE_BLOBS || !job || job->last_received) {
        node->stats.unknown_job++;
        log_debug ("ignored %s for job %llu", job_wire_type_name (msg->type),
                   (unsigned long long) msg->job_id);
        return;
    }
    job_msg_t *copy = job_msg_new (JOB_WIRE_BLOBS, msg->job_id);
    copy->blobs = msg->blobs;
    copy->blob_count = msg->blob_count;
    copy->last = msg->last;
    msg->blobs = NULL;
    msg->blob_count = 0;
    zlist_append (job->incoming, copy);
    if (msg->last)
        job->last_received = true;
    s_kick (job);
}

void
serve_on_blob (serve_t *self, const char *key, bool stored)
{
    serve_job_t *job = (serve_job_t *) zhashx_lookup (self->jobs, key);
    if (!job || !job->fetch_pending)
        return;
    if (!stored)
        job->fetch_failed++;
    if (--job->fetch_pending)
        return;
    if (job->fetch_failed)
        log_info ("job %llu: %zu of %zu blobs could not be fetched from the holders named; "
                  "asking the origin", (unsigned long long) job->id, job->fetch_failed,
                  job->fetch_count);
    //  All its fetches ended: a worker looks at what is still missing;
    //  the job runs, or asks its origin for the rest (s_serve_done).
    if (job->in_worker)
        job->recheck = true;
    else
        s_kick (job);
}

//  A job waiting for BLOBS that do not come (the origin died) gives its
//  slot back after JOB_ACK_TIMEOUT_MS.
void
serve_tick (serve_t *self, int64_t now)
{
    zlist_t *stale = zlist_new ();
    for (serve_job_t *job = (serve_job_t *) zhashx_first (self->jobs); job;
         job = (serve_job_t *) zhashx_next (self->jobs))
        if (!job->in_worker && job->need_sent && now - job->waiting_since >= JOB_ACK_TIMEOUT_MS)
            zlist_append (stale, job);
    serve_job_t *job;
    while ((job = (serve_job_t *) zlist_pop (stale))) {
        log_info ("job %llu: no inputs came from the origin; dropped", (unsigned long long) job->id);
        s_finish (job);
    }
    zlist_destroy (&stale);
}

serve_t *
serve_new (node_t *node)
{
    serve_t *self = (serve_t *) zmalloc (sizeof (serve_t));
    self->node = node;
    self->jobs = zhashx_new ();
    return self;
}

//  After the worker pool is gone.
void
serve_destroy (serve_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    serve_t *self = *self_p;
    serve_job_t *job;
    while ((job = (serve_job_t *) zhashx_first (self->jobs))) {
        zhashx_delete (self->jobs, job->key);
        s_job_free (&job);
    }
    zhashx_destroy (&self->jobs);
    free (self);
    *self_p = NULL;
}
