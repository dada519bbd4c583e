//  origin: the jobs started at this node, from the wrapper's COMPILE to
//  its LOCAL, RESULT or FALLBACK (control.h). Owns the jobs, the queue of
//  jobs waiting for a slot, and what it knows of each peer (our in-flight
//  jobs there, the blobs we sent it). Sockets are node.c's and intake.c's
//  (which answers LOCAL itself, without a job, while a slot is free); peer
//  choice is placement.c's; blocking work runs on the worker pool.
//
//  A job's life:
//    COMPILE, no local slot free
//       └─> PREPARING (worker: parse, list inputs, hash, store blobs)
//                    └─> place: local slot free → LOCAL to the wrapper,
//                               which runs the compiler itself (the job
//                               ends here; the slot is the connection's)
//                               a peer with a free slot → ENCODING (worker:
//                               JOB frame with the blobs the peer is not
//                               known to have) → CONNECTING → SENT
//                               none → QUEUED (bounded) or FALLBACK
//    SENT ─ ACCEPTED → RUNNING ─ NEED → BLOBS sent ─ RESULT → WRITING
//       (worker: outputs written atomically) → RESULT to the wrapper.
//    REFUSED, a RESULT failing with "missing input"/"full", a peer that
//    cannot be reached or dies: the peer is excluded for this job and the
//    job is placed again, at most PLACEMENT_MAX_TRIES peers in all. A
//    compiler error is the answer and never retried.
//
//  A job inside a worker is never freed under it: if it must end while
//  there (its peer died, say), it is marked and finished when the worker
//  hands it back.

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "meshcc/compile_args.h"
#include "meshcc/control.h"
#include "meshcc/executor.h"
#include "meshcc/inputs.h"
#include "meshcc/node_log.h"
#include "meshcc/placement.h"
#include "node_private.h"

typedef enum {
    JOB_PREPARING,
    JOB_QUEUED,
    JOB_ENCODING,
    JOB_CONNECTING,
    JOB_SENT,                       //  waiting for ACCEPTED/REFUSED/NEED
    JOB_RUNNING,                    //  accepted by the peer
    JOB_SENDING_BLOBS,              //  encoding BLOBS for a NEED
    JOB_WRITING,
    JOB_DONE
} job_state_t;

typedef struct {
    char     id_hex [MESHCC_ID_HEX_SIZE + 1];
    uint8_t  id [MESHCC_ID_SIZE];
    char     name [MESHCC_NAME_MAX + 1];
    endpoint_t endpoint;
    placement_known_t *known;
    uint32_t in_flight;
    uint64_t jobs_sent;
    //  Our jobs that ended there since the gossip state we last saw
    //  (heartbeat `seen_version`) was made: its running count still holds
    //  them, so they are taken off it. Without this a freed slot stays
    //  invisible for a gossip round and queued jobs wait for nothing.
    //  The state held when a job's slot frees is taken as seen then
    //  (s_peer_seen), not only at the next placement: a state made before
    //  the job ended, first looked at after it, would wipe the end out
    //  and keep the free slot hidden for another round.
    uint64_t seen_version;
    uint32_t ended_since;
    double   job_ms;                //  our jobs' time there, send to result, averaged (0: none yet)
    int64_t  first_sent;            //  scratch for s_candidates: our oldest job there
} origin_peer_t;

typedef struct _origin_job_t origin_job_t;

struct _origin_t {
    node_t   *node;
    uint64_t  next_id;
    zhashx_t *jobs;                 //  "id" -> origin_job_t
    zlist_t  *queue;                //  origin_job_t waiting for a slot (FIFO)
    zlist_t  *connecting;           //  origin_job_t waiting for their link
    zhashx_t *peers;                //  id hex -> origin_peer_t
    int       connect_timer;        //  zloop timer id, or -1
    listing_cache_t *listings;      //  shared by the worker threads
};

struct _origin_job_t {
    origin_t *origin;
    uint64_t  id;
    char      key [24];
    job_state_t state;
    bool      in_worker;
    bool      finished;             //  replied; free when the worker returns
    bool      cancelled;            //  the wrapper went away: answer nobody
    bool      deferred;             //  counted once in local_deferred
    bool      held;                 //  counted once in held_for_faster
    bool      slot_freed;           //  its RESULT came: counted in the peer's ended_since
    uint64_t  conn;                 //  the wrapper's connection (intake.c)
    //  The request
    char     *cwd, *compiler;
    mode_t    umask;                //  the wrapper's: outputs get its modes
    int       argc;
    char    **argv, **envp;         //  NULL-terminated
    //  Prepared by a worker
    compile_args_t *args;
    job_spec_t *spec;
    char     *error;                //  a worker failed: the fallback reason
    fallback_reason_t error_reason;
    uint64_t  hits, misses;         //  inputs already in / new to the blob store
    uint64_t  hash_hits, hash_misses;   //  hash cache lookups of the listing
    bool      listing_reused;       //  from the listing cache, no -M run
    //  Placement
    origin_peer_t *peer;            //  the peer holding it now, or NULL
    uint8_t   excluded [PLACEMENT_MAX_TRIES][MESHCC_ID_SIZE];
    int       tries;
    uint8_t (*inline_hashes) [BLOB_HASH_SIZE];
    size_t    inline_count;
    uint64_t  inline_bytes;
    uint8_t  *frame;                //  encoded JOB, until sent
    size_t    frame_size;
    uint8_t (*need) [BLOB_HASH_SIZE];
    size_t    need_count;
    zlist_t  *blob_frames;          //  encoded BLOBS (zframe_t), to send
    uint64_t  need_blobs, need_bytes;
    job_result_t *result;
    //  Times (zclock_mono ms, and µs durations)
    int64_t   received, queued_at, sent_at, deadline;
    uint64_t  listing_us, hashing_us, compile_us;
};

static const char *s_fallback_names [FALLBACK_REASON_COUNT] = {
    "busy", "no_peer", "queue_timeout", "timeout", "refused", "peer_lost",
    "peer_failure", "not_distributable", "listing", "too_large", "output", "error"
};

static void s_place (origin_job_t *job);
static void s_end (origin_job_t *job);
static void s_job_free (origin_job_t **job_p);

//  A job handed back by a worker that is finished, or by a pool being
//  destroyed (the node is stopping: the wrapper times out and compiles).
static void
s_job_drop (origin_job_t *job)
{
    if (!job->finished)
        zhashx_delete (job->origin->jobs, job->key);
    s_job_free (&job);
}

static int64_t
s_usecs (void)
{
    return zclock_usecs ();
}

//  --------------------------------------------------------------------------
//  Replies and the end of a job

//  Answers the wrapper, if it is still there.
static void
s_reply (origin_job_t *job, int count, const void *const data [], const size_t sizes [])
{
    if (job->conn && !job->cancelled)
        node_compile_reply (job->origin->node, job->conn, count, data, sizes);
    job->conn = 0;
}

//  Takes the gossip state `member` holds now as the one seen for `peer`:
//  our jobs that end from now on are not in its running count.
static void
s_peer_seen (origin_peer_t *peer, const gossip_member_t *member)
{
    if (member && member->state.version != peer->seen_version) {
        peer->seen_version = member->state.version;
        peer->ended_since = 0;
    }
}

//  The slot `job` held at its peer is free (its RESULT came, or the job
//  ends there): taken off the peer's gossiped running count, once.
//  `answered`: the peer sent the RESULT, so it had the job.
static void
s_free_peer_slot (origin_job_t *job, bool answered)
{
    origin_peer_t *peer = job->peer;
    if (!peer || job->slot_freed)
        return;
    //  A job the peer accepted held one of its slots until now.
    if (answered || job->state == JOB_RUNNING || job->state == JOB_SENDING_BLOBS) {
        s_peer_seen (peer, gossip_lookup (job->origin->node->gossip, peer->id));
        peer->ended_since++;
        job->slot_freed = true;
    }
}

static void
s_leave_peer (origin_job_t *job)
{
    if (job->peer) {
        if (job->peer->in_flight)
            job->peer->in_flight--;
        s_free_peer_slot (job, false);
        job->peer = NULL;
    }
}

//  Ends a job: out of every table; freed now, or when its worker returns.
//  The caller dispatches the queue if a slot may have freed.
static void
s_end (origin_job_t *job)
{
    origin_t *self = job->origin;
    s_leave_peer (job);
    if (job->state == JOB_QUEUED)
        zlist_remove (self->queue, job);
    if (job->state == JOB_CONNECTING)
        zlist_remove (self->connecting, job);
    job->state = JOB_DONE;
    job->finished = true;
    zhashx_delete (self->jobs, job->key);
    if (!job->in_worker)
        s_job_free (&job);
}

static void
s_finish (origin_job_t *job)
{
    origin_t *self = job->origin;
    s_end (job);
    //  A slot or a place in the queue may have freed.
    origin_dispatch (self);
}

static void
s_fallback (origin_job_t *job, fallback_reason_t reason, const char *format, ...)
{
    char text [JOB_MAX_REASON];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    node_t *node = job->origin->node;
    node->stats.fallbacks++;
    node->stats.fallback [reason]++;
    log_info ("job %llu: fallback (%s): %s", (unsigned long long) job->id,
              s_fallback_names [reason], text);
    const void *data [2] = { CONTROL_FALLBACK, text };
    size_t sizes [2] = { strlen (CONTROL_FALLBACK), strlen (text) };
    s_reply (job, 2, data, sizes);
    s_finish (job);
}

static void
s_result (origin_job_t *job, int status, const uint8_t *out, size_t out_size,
          const uint8_t *err, size_t err_size, const char *where)
{
    char status_text [16];
    snprintf (status_text, sizeof status_text, "%d", status);
    const void *data [5] = { CONTROL_RESULT, status_text, out, err, where };
    size_t sizes [5] = { strlen (CONTROL_RESULT), strlen (status_text), out_size, err_size,
                         strlen (where) };
    s_reply (job, 5, data, sizes);
    s_finish (job);
}

//  --------------------------------------------------------------------------
//  Preparation: the manifest, the compiler identity, blobs in the store.

//  Environment a compile depends on (FIELD-NOTES.md): sent with the job.
static bool
s_env_relevant (const char *entry)
{
    static const char *names [] = {
        "CPATH=", "C_INCLUDE_PATH=", "CPLUS_INCLUDE_PATH=", "OBJC_INCLUDE_PATH=",
        "SOURCE_DATE_EPOCH=", "LANG=", "LANGUAGE=", "LC_", "GCC_COLORS=", "GCC_URLS=", NULL
    };
    for (int i = 0; names [i]; i++)
        if (strncmp (entry, names [i], strlen (names [i])) == 0)
            return true;
    return false;
}

//  Environment that makes a compile write files or run programs the job
//  does not describe: such a compile stays at home.
static const char *
s_env_forbidden (char **envp)
{
    static const char *names [] = {
        "DEPENDENCIES_OUTPUT=", "SUNPRO_DEPENDENCIES=", "GCC_EXEC_PREFIX=", "COMPILER_PATH=", NULL
    };
    for (char **env = envp; *env; env++)
        for (int i = 0; names [i]; i++)
            if (strncmp (*env, names [i], strlen (names [i])) == 0)
                return names [i];
    return NULL;
}

static char **
s_strings_dup (char *const *strings, int count)
{
    char **copy = (char **) zmalloc ((size_t) (count + 1) * sizeof (char *));
    for (int i = 0; i < count; i++)
        copy [i] = strdup (strings [i]);
    return copy;
}

//  Reads a whole file (at most JOB_WIRE_MAX_PAYLOAD bytes).
static uint8_t *
s_read_file (const char *path, size_t *size_p)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat (fd, &st) || !S_ISREG (st.st_mode) || st.st_size > JOB_WIRE_MAX_PAYLOAD) {
        close (fd);
        return NULL;
    }
    size_t size = (size_t) st.st_size;
    uint8_t *data = (uint8_t *) malloc (size? size: 1);
    size_t done = 0;
    while (data && done < size) {
        ssize_t got = read (fd, data + done, size - done);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            free (data);
            data = NULL;
            break;
        }
        done += (size_t) got;
    }
    close (fd);
    *size_p = size;
    return data;
}

static void
s_prepare_fn (worker_ctx_t *ctx, void *arg)
{
    origin_job_t *job = (origin_job_t *) arg;
    int64_t start = s_usecs ();
    job->args = compile_args_parse (job->argc, job->argv, job->cwd);
    if (!job->args || !job->args->distributable) {
        job->error_reason = FALLBACK_NOT_DISTRIBUTABLE;
        job->error = strdup (job->args && job->args->reason? job->args->reason: "not distributable");
        return;
    }
    const char *forbidden = s_env_forbidden (job->envp);
    if (forbidden) {
        job->error_reason = FALLBACK_NOT_DISTRIBUTABLE;
        if (asprintf (&job->error, "%.*s is set", (int) strlen (forbidden) - 1, forbidden) < 0)
            abort ();
        return;
    }
    hash_cache_t *hashes = worker_hash_cache (ctx);
    blob_store_t *store = worker_blob_store (ctx);
    if (!hashes || !store) {
        job->error_reason = FALLBACK_ERROR;
        job->error = strdup ("the blob store or hash cache cannot be opened (see the log)");
        return;
    }
    job_spec_t *spec = job_spec_new ();
    char err [512] = "";
    uint64_t hits_before, misses_before, hits_after, misses_after;
    hash_cache_counts (hashes, &hits_before, &misses_before);
    int listing_rc = inputs_manifest (job->args, job->cwd, job->envp, hashes,
                                      job->origin->listings, spec, &job->listing_reused,
                                      err, sizeof err);
    hash_cache_counts (hashes, &hits_after, &misses_after);
    job->hash_hits = hits_after - hits_before;
    job->hash_misses = misses_after - misses_before;
    if (listing_rc) {
        job_spec_destroy (&spec);
        job->error_reason = FALLBACK_LISTING;
        job->error = strdup (*err? err: "the input listing failed");
        return;
    }
    int64_t listed = s_usecs ();
    job->listing_us = (uint64_t) (listed - start);
    if (compiler_identity_get (job->compiler, &spec->compiler)) {
        job_spec_destroy (&spec);
        job->error_reason = FALLBACK_ERROR;
        if (asprintf (&job->error, "cannot identify the compiler %s", job->compiler) < 0)
            abort ();
        return;
    }
    //  Its toolchain, once packaged (in the background: until then the job
    //  goes to peers with the same compiler).
    spec->has_toolchain = toolchains_for_job (job->origin->node->toolchains, job->args->argv [0],
                                              spec->compiler.path, spec->toolchain,
                                              &spec->toolchain_size);
    //  The identical command, after @file expansion (response files are
    //  not inputs the listing reports).
    spec->argc = job->args->argc;
    spec->argv = s_strings_dup (job->args->argv, job->args->argc);
    spec->cwd = strdup (job->cwd);
    int envc = 0;
    for (char **env = job->envp; *env; env++)
        if (s_env_relevant (*env))
            envc++;
    spec->envp = (char **) zmalloc ((size_t) (envc + 1) * sizeof (char *));
    envc = 0;
    for (char **env = job->envp; *env; env++)
        if (s_env_relevant (*env))
            spec->envp [envc++] = strdup (*env);
    //  Every input into the store, so that what we send is exactly what
    //  was hashed even if the file changes while the job is out. The
    //  lookups first, in one read transaction; then the writes.
    bool *stored = (bool *) zmalloc (spec->entry_count + 1);
    blob_store_read_begin (store);
    for (size_t i = 0; i < spec->entry_count; i++)
        stored [i] = spec->entries [i].kind != MANIFEST_FILE
                  || blob_store_has (store, spec->entries [i].hash);
    blob_store_read_end (store);
    for (size_t i = 0; i < spec->entry_count; i++) {
        manifest_entry_t *entry = &spec->entries [i];
        if (stored [i]) {
            if (entry->kind == MANIFEST_FILE)
                job->hits++;
            continue;
        }
        job->misses++;
        size_t size = 0;
        uint8_t *data = s_read_file (entry->path, &size);
        if (!data || blob_store_put (store, entry->hash, data, size)) {
            free (data);
            free (stored);
            job_spec_destroy (&spec);
            job->error_reason = FALLBACK_LISTING;
            if (asprintf (&job->error, "input %s changed or is unreadable", entry->path) < 0)
                abort ();
            return;
        }
        free (data);
    }
    free (stored);
    job->hashing_us = (uint64_t) (s_usecs () - listed);
    job->spec = spec;
}

//  The common start of every worker completion: the job is back on the
//  loop. Returns the job, or NULL when it is over already (cancelled,
//  answered meanwhile, or the worker failed and it fell back).
static origin_job_t *
s_worker_returned (void *arg, bool cancelled)
{
    origin_job_t *job = (origin_job_t *) arg;
    job->in_worker = false;
    if (cancelled || job->finished) {
        s_job_drop (job);
        return NULL;
    }
    if (job->error) {
        s_fallback (job, job->error_reason, "%s", job->error);
        return NULL;
    }
    return job;
}

static void
s_prepare_done (void *arg, bool cancelled)
{
    origin_job_t *job = s_worker_returned (arg, cancelled);
    if (!job)
        return;
    node_t *node = job->origin->node;
    node->stats.listing_us += job->listing_us;
    node->stats.listing_n++;
    if (job->listing_reused)
        node->stats.listings_reused++;
    node->stats.hashing_us += job->hashing_us;
    node->stats.hashing_n++;
    node->stats.hash_hits += job->hits;
    node->stats.hash_misses += job->misses;
    node->stats.hash_cache_hits += job->hash_hits;
    node->stats.hash_cache_misses += job->hash_misses;
    s_place (job);
}

//  --------------------------------------------------------------------------
//  Sending to a peer

static origin_peer_t *
s_peer (origin_t *self, const gossip_member_t *member)
{
    char hex [MESHCC_ID_HEX_SIZE + 1];
    for (size_t i = 0; i < MESHCC_ID_SIZE; i++)
        sprintf (hex + 2 * i, "%02x", member->state.id [i]);
    origin_peer_t *peer = (origin_peer_t *) zhashx_lookup (self->peers, hex);
    if (!peer) {
        peer = (origin_peer_t *) zmalloc (sizeof (origin_peer_t));
        memcpy (peer->id_hex, hex, sizeof hex);
        memcpy (peer->id, member->state.id, MESHCC_ID_SIZE);
        peer->known = placement_known_new (PLACEMENT_KNOWN_MAX);
        zhashx_insert (self->peers, hex, peer);
    }
    //  A restarted peer may come back on another endpoint or name.
    snprintf (peer->name, sizeof peer->name, "%s", member->state.name);
    snprintf (peer->endpoint, sizeof peer->endpoint, "%s", member->state.endpoint);
    return peer;
}

static bool
s_excluded (origin_job_t *job, const uint8_t *id)
{
    for (int i = 0; i < job->tries && i < PLACEMENT_MAX_TRIES; i++)
        if (memcmp (job->excluded [i], id, MESHCC_ID_SIZE) == 0)
            return true;
    return false;
}

//  Excludes the job's current peer and counts a try.
static void
s_exclude_peer (origin_job_t *job)
{
    if (job->peer && job->tries < PLACEMENT_MAX_TRIES)
        memcpy (job->excluded [job->tries], job->peer->id, MESHCC_ID_SIZE);
    job->tries++;
    s_leave_peer (job);
}

static void
s_encode_job_fn (worker_ctx_t *ctx, void *arg)
{
    origin_job_t *job = (origin_job_t *) arg;
    blob_store_t *store = worker_blob_store (ctx);
    job_msg_t *msg = job_msg_new (JOB_WIRE_JOB, job->id);
    msg->spec = job->spec;
    size_t kept = 0;
    job->inline_bytes = 0;
    for (size_t i = 0; store && i < job->inline_count; i++) {
        size_t size = 0;
        uint8_t *data = blob_store_get (store, job->inline_hashes [i], &size);
        if (!data)
            continue;               //  the peer will ask for it
        job_msg_add_blob (msg, job->inline_hashes [i], &data, size);
        memmove (job->inline_hashes [kept++], job->inline_hashes [i], BLOB_HASH_SIZE);
        job->inline_bytes += size;
    }
    job->inline_count = kept;
    int rc = job_wire_encode (msg, &job->frame, &job->frame_size);
    if (rc && msg->blob_count) {
        //  Too big with the blobs inlined: send none, the peer asks.
        for (size_t i = 0; i < msg->blob_count; i++)
            free (msg->blobs [i].data);
        msg->blob_count = 0;
        job->inline_count = 0;
        job->inline_bytes = 0;
        rc = job_wire_encode (msg, &job->frame, &job->frame_size);
    }
    msg->spec = NULL;               //  the job's own
    job_msg_destroy (&msg);
    if (rc) {
        job->error_reason = FALLBACK_TOO_LARGE;
        job->error = strdup ("the job description does not fit in a frame");
    }
}

static void s_connect_arm (origin_t *self);

//  Tries to put the encoded JOB on the wire. Returns true once sent.
static bool
s_try_send (origin_job_t *job)
{
    node_t *node = job->origin->node;
    link_t *link = job->peer? node_link (node, job->peer->endpoint): NULL;
    if (!link || node_send_raw (node, link->sock, NULL, job->frame, job->frame_size))
        return false;
    int64_t now = zclock_mono ();
    link->last_used = now;
    free (job->frame);
    job->frame = NULL;
    for (size_t i = 0; i < job->inline_count; i++)
        placement_known_add (job->peer->known, job->inline_hashes [i]);
    node->stats.blobs_sent += job->inline_count;
    node->stats.blob_bytes_sent += job->inline_bytes;
    job->peer->jobs_sent++;
    job->state = JOB_SENT;
    job->sent_at = now;
    job->deadline = now + JOB_ACK_TIMEOUT_MS;
    log_debug ("job %llu sent to %s (%zu bytes, %zu blobs inlined)", (unsigned long long) job->id,
               job->peer->name, job->frame_size, job->inline_count);
    return true;
}

static void
s_encode_job_done (void *arg, bool cancelled)
{
    origin_job_t *job = s_worker_returned (arg, cancelled);
    if (!job)
        return;
    if (!job->peer) {
        //  The peer was lost while we encoded: place again.
        free (job->frame);
        job->frame = NULL;
        s_place (job);
        return;
    }
    if (s_try_send (job))
        return;
    job->state = JOB_CONNECTING;
    job->deadline = zclock_mono () + JOB_CONNECT_MS;
    zlist_append (job->origin->connecting, job);
    s_connect_arm (job->origin);
}

static int
s_connect_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    origin_t *self = (origin_t *) arg;
    int64_t now = zclock_mono ();
    zlist_t *retry = zlist_new ();
    origin_job_t *job = (origin_job_t *) zlist_first (self->connecting);
    while (job) {
        origin_job_t *next = (origin_job_t *) zlist_next (self->connecting);
        if (s_try_send (job))
            zlist_remove (self->connecting, job);
        else
        if (now >= job->deadline) {
            zlist_remove (self->connecting, job);
            zlist_append (retry, job);
        }
        job = next;
    }
    while ((job = (origin_job_t *) zlist_pop (retry))) {
        log_info ("job %llu: %s cannot be reached; trying elsewhere", (unsigned long long) job->id,
                  job->peer? job->peer->name: "the peer");
        free (job->frame);
        job->frame = NULL;
        s_exclude_peer (job);
        self->node->stats.jobs_retried++;
        s_place (job);
    }
    zlist_destroy (&retry);
    if (zlist_size (self->connecting) == 0) {
        zloop_timer_end (self->node->loop, self->connect_timer);
        self->connect_timer = -1;
    }
    return 0;
}

static void
s_connect_arm (origin_t *self)
{
    if (self->connect_timer < 0)
        self->connect_timer = zloop_timer (self->node->loop, JOB_CONNECT_RETRY_MS, 0,
                                           s_connect_timer, self);
}

//  The holders a JOB to `target` names (issue 4): where the peer fetches
//  the blobs it lacks (those we did not inline because we believed it had
//  them, or beyond the inline budget) before it asks us. Live peers we
//  sent most of the job's inputs to, judged on a sample of its manifest
//  (ORIGIN_HOLDER_SAMPLE files: the loop's cost per job stays bounded),
//  best first; then ourselves, who hold every one of them. Peers come
//  first so that an origin feeding a large mesh does not upload every
//  input itself; one that evicted a blob answers "not held", which costs
//  the fetcher one round trip before the next holder.
static void
s_name_holders (origin_job_t *job, origin_peer_t *target)
{
    origin_t *self = job->origin;
    node_t *node = self->node;
    job_spec_t *spec = job->spec;
    size_t files = 0;
    for (size_t i = 0; i < spec->entry_count; i++)
        files += spec->entries [i].kind == MANIFEST_FILE;
    size_t stride = files > ORIGIN_HOLDER_SAMPLE? files / ORIGIN_HOLDER_SAMPLE: 1;
    origin_peer_t *best [JOB_MAX_HOLDERS - 1];
    size_t score [JOB_MAX_HOLDERS - 1];
    size_t count = 0;
    for (origin_peer_t *peer = (origin_peer_t *) zhashx_first (self->peers); peer && files;
         peer = (origin_peer_t *) zhashx_next (self->peers)) {
        if (peer == target || placement_known_size (peer->known) == 0)
            continue;
        const gossip_member_t *member = gossip_lookup (node->gossip, peer->id);
        if (!member || member->status != PEER_ALIVE || member->state.left)
            continue;
        size_t held = 0, file = 0;
        for (size_t i = 0; i < spec->entry_count; i++) {
            const manifest_entry_t *entry = &spec->entries [i];
            if (entry->kind != MANIFEST_FILE || file++ % stride)
                continue;
            held += placement_known_has (peer->known, entry->hash);
        }
        if (held == 0)
            continue;
        //  Insertion into the few best, most blobs first.
        size_t at = count;
        while (at > 0 && score [at - 1] < held)
            at--;
        if (at >= JOB_MAX_HOLDERS - 1)
            continue;
        if (count < JOB_MAX_HOLDERS - 1)
            count++;
        memmove (best + at + 1, best + at, (count - 1 - at) * sizeof best [0]);
        memmove (score + at + 1, score + at, (count - 1 - at) * sizeof score [0]);
        best [at] = peer;
        score [at] = held;
    }
    spec->holder_count = 0;
    for (size_t i = 0; i < count; i++)
        memcpy (spec->holders [spec->holder_count++], best [i]->id, MESHCC_ID_SIZE);
    memcpy (spec->holders [spec->holder_count++], node->id, MESHCC_ID_SIZE);
}

//  Chooses the blobs to inline for `peer` (those it is not known to have,
//  within JOB_INLINE_BUDGET), names the holders of the rest, and hands the
//  encoding to a worker.
static void
s_send_to (origin_job_t *job, origin_peer_t *peer)
{
    node_t *node = job->origin->node;
    job->peer = peer;
    job->slot_freed = false;
    peer->in_flight++;
    free (job->inline_hashes);
    job->inline_hashes = (uint8_t (*) [BLOB_HASH_SIZE])
        zmalloc ((job->spec->entry_count + 1) * BLOB_HASH_SIZE);
    job->inline_count = 0;
    uint64_t budget = 0;
    for (size_t i = 0; i < job->spec->entry_count; i++) {
        manifest_entry_t *entry = &job->spec->entries [i];
        if (entry->kind != MANIFEST_FILE || placement_known_has (peer->known, entry->hash))
            continue;
        if (budget + entry->size > JOB_INLINE_BUDGET)
            continue;
        //  The same content at two paths is sent once.
        bool dup = false;
        for (size_t j = 0; j < job->inline_count && !dup; j++)
            dup = memcmp (job->inline_hashes [j], entry->hash, BLOB_HASH_SIZE) == 0;
        if (dup)
            continue;
        budget += entry->size;
        memcpy (job->inline_hashes [job->inline_count++], entry->hash, BLOB_HASH_SIZE);
    }
    s_name_holders (job, peer);
    job->state = JOB_ENCODING;
    job->in_worker = true;
    worker_pool_submit (node->workers, s_encode_job_fn, s_encode_job_done, job);
}

//  --------------------------------------------------------------------------
//  Placement and the queue

//  Candidates for `job` (NULL: any job of ours) from gossip; fills `peers`
//  in parallel. Returns the count, and the slots the mesh offers us in
//  *capacity_p (ours and every eligible peer's, excluded ones aside).
static size_t
s_candidates (origin_t *self, origin_job_t *job, placement_candidate_t *candidates,
              origin_peer_t **peers, size_t max, uint32_t *capacity_p)
{
    node_t *node = self->node;
    uint32_t capacity = node->config->slots;
    size_t count = 0;
    uint64_t total_bytes = 0;
    if (job && job->spec)
        for (size_t i = 0; i < job->spec->entry_count; i++)
            if (job->spec->entries [i].kind == MANIFEST_FILE)
                total_bytes += job->spec->entries [i].size + 1;
    for (size_t i = 0; i < gossip_size (node->gossip) && count < max; i++) {
        const gossip_member_t *member = gossip_member (node->gossip, i);
        if (!placement_eligible (member) || (job && s_excluded (job, member->state.id)))
            continue;
        capacity += member->state.slots;
        origin_peer_t *peer = s_peer (self, member);
        placement_candidate_t *candidate = &candidates [count];
        memset (candidate, 0, sizeof *candidate);
        memcpy (candidate->id, member->state.id, MESHCC_ID_SIZE);
        candidate->slots = member->state.slots;
        s_peer_seen (peer, member);
        uint32_t running = member->state.running > peer->ended_since
                         ? member->state.running - peer->ended_since: 0;
        candidate->busy = running + member->state.queued;
        candidate->in_flight = peer->in_flight;
        candidate->speed = member->state.speed;
        candidate->load_milli = member->state.load_milli;
        if (total_bytes && placement_known_size (peer->known)) {
            uint64_t held = 0;
            for (size_t e = 0; e < job->spec->entry_count; e++) {
                manifest_entry_t *entry = &job->spec->entries [e];
                if (entry->kind == MANIFEST_FILE && placement_known_has (peer->known, entry->hash))
                    held += entry->size + 1;
            }
            candidate->affinity = (double) held / (double) total_bytes;
        }
        candidate->job_ms = peer->job_ms;
        candidate->frees_in_ms = -1;
        peer->first_sent = 0;
        peers [count++] = peer;
    }
    //  When our first job at each busy peer should end, by its job time;
    //  unknown where others' jobs take slots there too.
    int64_t now = zclock_mono ();
    for (origin_job_t *other = (origin_job_t *) zhashx_first (self->jobs); other;
         other = (origin_job_t *) zhashx_next (self->jobs))
        if (other->peer && other != job && other->state != JOB_WRITING) {
            int64_t sent = other->sent_at? other->sent_at: now;
            if (!other->peer->first_sent || sent < other->peer->first_sent)
                other->peer->first_sent = sent;
        }
    for (size_t i = 0; i < count; i++) {
        placement_candidate_t *candidate = &candidates [i];
        if (peers [i]->first_sent && peers [i]->job_ms > 0
        &&  candidate->busy <= candidate->in_flight) {
            double left = peers [i]->first_sent + peers [i]->job_ms - (double) now;
            candidate->frees_in_ms = left > 0? left: 0;
        }
    }
    *capacity_p = capacity;
    return count;
}

static size_t
s_queue_max (uint32_t capacity)
{
    size_t max = (size_t) capacity * ORIGIN_QUEUE_PER_SLOT;
    if (max < ORIGIN_QUEUE_MIN)
        max = ORIGIN_QUEUE_MIN;
    return max > ORIGIN_QUEUE_CAP? ORIGIN_QUEUE_CAP: max;
}

//  This node as a placement candidate, for comparing speeds with peers:
//  its own load is left out (see placement_peer_first).
static placement_candidate_t
s_us (node_t *node)
{
    return (placement_candidate_t) { .slots = node->config->slots, .speed = node->speed };
}

bool
origin_peer_first (origin_t *self)
{
    node_t *node = self->node;
    if (!node->share.quota_milli)
        return false;
    size_t max = gossip_size (node->gossip) + 1;
    placement_candidate_t *candidates = (placement_candidate_t *) zmalloc (max * sizeof *candidates);
    origin_peer_t **peers = (origin_peer_t **) zmalloc (max * sizeof *peers);
    uint32_t capacity;
    size_t count = s_candidates (self, NULL, candidates, peers, max, &capacity);
    placement_candidate_t us = s_us (node);
    bool first = placement_peer_first (&us, candidates, count);
    free (candidates);
    free (peers);
    return first;
}

//  Gives `job` a local slot: the wrapper runs the compiler itself, holding
//  the slot; the job ends here (if the wrapper is gone, so is the job).
static void
s_start_local (origin_job_t *job)
{
    if (!job->cancelled)
        node_compile_local (job->origin->node, job->conn);
    job->conn = 0;
    s_end (job);
}

//  Tries to start `job` now (a local slot, or a peer). Returns true if it
//  started; otherwise fills *capacity_p for the caller's queue decision.
static bool
s_try_start (origin_job_t *job, uint32_t *capacity_p)
{
    node_t *node = job->origin->node;
    bool local = node_free_slots (node) > 0;
    //  Our own slot is free and our slice has room: it is the job's,
    //  unless (on a node with a quota) a peer as fast has a slot free.
    bool own = local && !node->saturation.saturated;
    if (own && !node->share.quota_milli) {
        s_start_local (job);
        return true;
    }
    size_t max = gossip_size (node->gossip) + 1;
    placement_candidate_t *candidates = (placement_candidate_t *) zmalloc (max * sizeof *candidates);
    origin_peer_t **peers = (origin_peer_t **) zmalloc (max * sizeof *peers);
    size_t count = s_candidates (job->origin, job, candidates, peers, max, capacity_p);
    if (own) {
        //  As origin_peer_first, on the candidates for this job; then only
        //  a peer as fast as our own free slot may have it.
        placement_candidate_t us = s_us (node);
        if (!placement_peer_first (&us, candidates, count)) {
            free (candidates);
            free (peers);
            s_start_local (job);
            return true;
        }
        for (size_t i = 0; i < count; i++)
            if (placement_faster (&us, &candidates [i]))
                candidates [i].excluded = true;
    }
    int choice = placement_choose (candidates, count, &node->rng);
    origin_peer_t *peer = choice >= 0? peers [choice]: NULL;
    //  At the end of a build (no job waits behind this one), for at most
    //  half the chosen peer's job time: a faster busy peer may end it sooner.
    //  (Not with our own slot free: that is sooner still.)
    int64_t held_for = job->queued_at? zclock_mono () - job->queued_at: 0;
    if (peer && !own && zlist_size (job->origin->queue) == 0 && held_for < peer->job_ms / 2
    &&  placement_hold (candidates, count, choice)) {
        peer = NULL;
        if (!job->held) {
            job->held = true;
            node->stats.held_for_faster++;
        }
        if (*capacity_p == 0)
            *capacity_p = 1;
        free (candidates);
        free (peers);
        return false;
    }
    free (candidates);
    free (peers);
    if (!peer) {
        //  Saturated here: the job waits for a peer's slot, unless no peer
        //  offers any (then our own slot after all; *capacity_p counts
        //  our own slots too). With our own slot free and room for it, the
        //  peer as fast went meanwhile (or refused this job): ours.
        if (local && (own || *capacity_p <= node->config->slots)) {
            s_start_local (job);
            return true;
        }
        if (local && !job->deferred) {
            job->deferred = true;
            node->stats.local_deferred++;
        }
        return false;
    }
    if (job->tries)
        node->stats.jobs_retried++;
    s_send_to (job, peer);
    return true;
}

static void
s_place (origin_job_t *job)
{
    origin_t *self = job->origin;
    node_t *node = self->node;
    if (job->cancelled) {
        s_finish (job);
        return;
    }
    if (job->tries >= PLACEMENT_MAX_TRIES) {
        s_fallback (job, FALLBACK_REFUSED, "%d peers refused or failed the job", job->tries);
        return;
    }
    uint32_t capacity = 0;
    if (s_try_start (job, &capacity))
        return;
    if (capacity == 0) {
        s_fallback (job, job->tries? FALLBACK_REFUSED: FALLBACK_NO_PEER,
                    job->tries? "no other peer can take the job": "no slot here and no peer offers any");
        return;
    }
    if (zlist_size (self->queue) >= s_queue_max (capacity)) {
        s_fallback (job, FALLBACK_BUSY, "mesh busy");
        return;
    }
    job->state = JOB_QUEUED;
    if (!job->queued_at) {
        job->queued_at = zclock_mono ();
        node->stats.jobs_queued++;
    }
    zlist_append (self->queue, job);
}

void
origin_dispatch (origin_t *self)
{
    origin_job_t *job;
    while ((job = (origin_job_t *) zlist_first (self->queue))) {
        zlist_remove (self->queue, job);
        uint32_t capacity = 0;
        job->state = JOB_PREPARING;
        //  A job given a local slot ends (and is freed) in s_try_start.
        int64_t queued_at = job->queued_at;
        if (s_try_start (job, &capacity)) {
            uint64_t waited = (uint64_t) (zclock_mono () - queued_at) * 1000;
            self->node->stats.queue_us += waited;
            self->node->stats.queue_n++;
            continue;
        }
        //  Still no slot: back at the head, in order.
        job->state = JOB_QUEUED;
        zlist_push (self->queue, job);
        break;
    }
}

//  --------------------------------------------------------------------------
//  Messages from peers

static bool
s_in_manifest (origin_job_t *job, const uint8_t *hash, const char **path_p)
{
    for (size_t i = 0; i < job->spec->entry_count; i++) {
        manifest_entry_t *entry = &job->spec->entries [i];
        if (entry->kind == MANIFEST_FILE && memcmp (entry->hash, hash, BLOB_HASH_SIZE) == 0) {
            if (path_p)
                *path_p = entry->path;
            return true;
        }
    }
    return false;
}

static void
s_encode_blobs_fn (worker_ctx_t *ctx, void *arg)
{
    origin_job_t *job = (origin_job_t *) arg;
    blob_store_t *store = worker_blob_store (ctx);
    job->blob_frames = zlist_new ();
    job->need_blobs = job->need_bytes = 0;
    job_msg_t *msg = job_msg_new (JOB_WIRE_BLOBS, job->id);
    size_t bytes = 0;
    for (size_t i = 0; i <= job->need_count; i++) {
        bool last = i == job->need_count;
        if (!last) {
            size_t size = 0;
            uint8_t *data = store? blob_store_get (store, job->need [i], &size): NULL;
            if (!data)
                continue;           //  evicted: the peer reports it missing
            job_msg_add_blob (msg, job->need [i], &data, size);
            bytes += size;
            job->need_blobs++;
            job->need_bytes += size;
            if (bytes < JOB_INLINE_BUDGET)
                continue;
        }
        msg->last = last;
        uint8_t *frame;
        size_t size;
        if (job_wire_encode (msg, &frame, &size)) {
            job->error_reason = FALLBACK_TOO_LARGE;
            job->error = strdup ("an input does not fit in a frame");
            break;
        }
        zframe_t *zframe = zframe_new (frame, size);
        free (frame);
        zlist_append (job->blob_frames, zframe);
        job_msg_destroy (&msg);
        msg = job_msg_new (JOB_WIRE_BLOBS, job->id);
        bytes = 0;
    }
    job_msg_destroy (&msg);
}

static void
s_encode_blobs_done (void *arg, bool cancelled)
{
    origin_job_t *job = s_worker_returned (arg, cancelled);
    if (!job)
        return;
    zframe_t *frame;
    job->state = JOB_RUNNING;
    if (!job->peer) {               //  lost meanwhile
        s_place (job);
        return;
    }
    node_t *node = job->origin->node;
    link_t *link = node_link (node, job->peer->endpoint);
    bool sent = link != NULL;
    while ((frame = (zframe_t *) zlist_pop (job->blob_frames))) {
        if (sent && node_send_raw (node, link->sock, NULL, zframe_data (frame), zframe_size (frame)))
            sent = false;
        zframe_destroy (&frame);
    }
    zlist_destroy (&job->blob_frames);
    if (!sent) {
        s_exclude_peer (job);
        s_place (job);
        return;
    }
    link->last_used = zclock_mono ();
    for (size_t i = 0; i < job->need_count; i++)
        placement_known_add (job->peer->known, job->need [i]);
    node->stats.blobs_sent += job->need_blobs;
    node->stats.blob_bytes_sent += job->need_bytes;
}

static void
s_write_fn (worker_ctx_t *ctx, void *arg);

static void
s_write_done (void *arg, bool cancelled)
{
    origin_job_t *job = s_worker_returned (arg, cancelled);
    if (!job)
        return;
    node_t *node = job->origin->node;
    job_result_t *result = job->result;
    node->stats.jobs_remote++;
    node->stats.compile_us += result->compile_us;
    node->stats.compile_n++;
    node->stats.setup_us += result->setup_us + result->fetch_us;
    node->stats.setup_n++;
    //  Transfer: from sending the JOB to having the RESULT, less what the
    //  peer spent setting up and compiling.
    uint64_t total = (uint64_t) (zclock_mono () - job->sent_at) * 1000;
    uint64_t busy = result->compile_us + result->setup_us + result->fetch_us;
    if (job->peer) {
        double ms = total / 1000.0;
        job->peer->job_ms = job->peer->job_ms > 0
            ? job->peer->job_ms * (1 - PLACEMENT_JOB_TIME_WEIGHT) + ms * PLACEMENT_JOB_TIME_WEIGHT
            : ms;
    }
    node->stats.transfer_us += total > busy? total - busy: 0;
    node->stats.transfer_n++;
    char where [MESHCC_NAME_MAX + 1];
    snprintf (where, sizeof where, "%s", job->peer? job->peer->name: "peer");
    s_result (job, result->status, result->out, result->out_size, result->err,
              result->err_size, where);
}

static origin_job_t *
s_lookup (origin_t *self, uint64_t id)
{
    char key [24];
    snprintf (key, sizeof key, "%llu", (unsigned long long) id);
    return (origin_job_t *) zhashx_lookup (self->jobs, key);
}

void
origin_on_msg (origin_t *self, link_t *link, job_msg_t *msg)
{
    node_t *node = self->node;
    origin_job_t *job = s_lookup (self, msg->job_id);
    //  Only the peer holding the job may speak for it, and only in the
    //  states where it has the job.
    if (!job || job->in_worker || !job->peer || !streq (job->peer->endpoint, link->endpoint)
    ||  (job->state != JOB_SENT && job->state != JOB_RUNNING)
    ||  msg->type == JOB_WIRE_JOB || msg->type == JOB_WIRE_BLOBS) {
        node->stats.unknown_job++;
        log_debug ("ignored %s for job %llu from %s", job_wire_type_name (msg->type),
                   (unsigned long long) msg->job_id, link->endpoint);
        return;
    }
    int64_t now = zclock_mono ();
    switch (msg->type) {
        case JOB_WIRE_ACCEPTED:
            job->state = JOB_RUNNING;
            job->deadline = job->sent_at + JOB_TIMEOUT_MS;
            break;
        case JOB_WIRE_REFUSED:
            node->stats.refusals_received++;
            log_info ("job %llu refused by %s: %s", (unsigned long long) job->id,
                      job->peer->name, msg->reason);
            //  A peer without our compiler: the toolchain cannot wait
            //  for an idle moment any more.
            if (!job->spec->has_toolchain && msg->reason
            &&  strncmp (msg->reason, JOB_REFUSAL_IDENTITY, strlen (JOB_REFUSAL_IDENTITY)) == 0)
                toolchains_needed (node->toolchains, job->spec->compiler.path);
            s_exclude_peer (job);
            s_place (job);
            break;
        case JOB_WIRE_NEED: {
            job->state = JOB_RUNNING;
            job->deadline = job->sent_at + JOB_TIMEOUT_MS;
            free (job->need);
            job->need = (uint8_t (*) [BLOB_HASH_SIZE]) zmalloc (msg->hash_count * BLOB_HASH_SIZE);
            job->need_count = 0;
            //  Only blobs of this job's manifest: a peer cannot read our
            //  store through NEED.
            for (size_t i = 0; i < msg->hash_count; i++)
                if (s_in_manifest (job, msg->hashes [i], NULL))
                    memcpy (job->need [job->need_count++], msg->hashes [i], BLOB_HASH_SIZE);
            job->state = JOB_SENDING_BLOBS;
            job->in_worker = true;
            worker_pool_submit (node->workers, s_encode_blobs_fn, s_encode_blobs_done, job);
            break;
        }
        case JOB_WIRE_RESULT: {
            //  Its slot there is free now, though in_flight holds the
            //  peer busy for us until the outputs are written.
            s_free_peer_slot (job, true);
            if (job->cancelled) {
                //  Nobody waits for it: no output is written.
                s_finish (job);
                break;
            }
            job_result_t *result = msg->result;
            msg->result = NULL;
            (void) now;
            if (result->failure) {
                bool retry = strncmp (result->failure, "missing input", 13) == 0
                          || strncmp (result->failure, "full", 4) == 0;
                log_info ("job %llu failed at %s: %s", (unsigned long long) job->id,
                          job->peer->name, result->failure);
                if (retry) {
                    job_result_destroy (&result);
                    s_exclude_peer (job);
                    s_place (job);
                }
                else {
                    s_fallback (job, FALLBACK_PEER_FAILURE, "%s: %s", job->peer->name,
                                result->failure);
                    job_result_destroy (&result);
                }
                break;
            }
            job_result_destroy (&job->result);
            job->result = result;
            job->state = JOB_WRITING;
            job->in_worker = true;
            worker_pool_submit (node->workers, s_write_fn, s_write_done, job);
            break;
        }
        default:
            break;
    }
}

//  --------------------------------------------------------------------------
//  Writing outputs: each into a temporary file beside its target, then all
//  renamed; any failure removes every temporary file, so a failed job
//  leaves no partial output. Only the files the command names (-o, the
//  depfile, the .dwo) may be written: a peer cannot write elsewhere.

static bool
s_output_expected (origin_job_t *job, const char *path)
{
    const char *names [3] = { job->args->output, job->args->depfile, job->args->dwo };
    char normal [JOB_MAX_PATH + 1];
    for (int i = 0; i < 3; i++)
        if (names [i]
        &&  compile_args_normalise (job->cwd, names [i], normal, sizeof normal) == 0
        &&  streq (normal, path))
            return true;
    return false;
}

static void
s_write_fn (worker_ctx_t *ctx, void *arg)
{
    (void) ctx;
    origin_job_t *job = (origin_job_t *) arg;
    job_result_t *result = job->result;
    char **temps = (char **) zmalloc ((result->output_count + 1) * sizeof (char *));
    size_t i;
    for (i = 0; i < result->output_count; i++) {
        job_output_t *output = &result->outputs [i];
        if (!s_output_expected (job, output->path)) {
            if (asprintf (&job->error, "the peer returned an unexpected output %s", output->path) < 0)
                abort ();
            break;
        }
        const char *slash = strrchr (output->path, '/');
        if (asprintf (&temps [i], "%.*s/.%s.meshcc-XXXXXX", (int) (slash - output->path),
                      output->path, slash + 1) < 0)
            abort ();
        int fd = mkostemp (temps [i], O_CLOEXEC);
        if (fd < 0) {
            if (asprintf (&job->error, "cannot write %s: %s", output->path, strerror (errno)) < 0)
                abort ();
            free (temps [i]);
            temps [i] = NULL;
            break;
        }
        size_t done = 0;
        while (done < output->size) {
            ssize_t wrote = write (fd, output->data + done, output->size - done);
            if (wrote < 0 && errno == EINTR)
                continue;
            if (wrote <= 0)
                break;
            done += (size_t) wrote;
        }
        //  The mode a direct run gives: a compiler creates its outputs
        //  0666 under the wrapper's umask; execute bits are kept from the
        //  peer's copy.
        int rc = done == output->size? fchmod (fd, (0666 | (output->mode & 0111)) & ~job->umask & 07777): -1;
        if (close (fd) || rc) {
            if (asprintf (&job->error, "cannot write %s: %s", output->path, strerror (errno)) < 0)
                abort ();
            break;
        }
    }
    if (!job->error)
        for (i = 0; i < result->output_count; i++)
            if (rename (temps [i], result->outputs [i].path)) {
                if (asprintf (&job->error, "cannot write %s: %s", result->outputs [i].path,
                              strerror (errno)) < 0)
                    abort ();
                break;
            }
    for (i = 0; i < result->output_count; i++) {
        if (temps [i] && job->error)
            unlink (temps [i]);
        free (temps [i]);
    }
    free (temps);
    if (job->error)
        job->error_reason = FALLBACK_OUTPUT;
}

//  --------------------------------------------------------------------------
//  Life cycle of jobs and of the origin

static void
s_job_free (origin_job_t **job_p)
{
    origin_job_t *job = *job_p;
    if (!job)
        return;
    free (job->cwd);
    free (job->compiler);
    for (char **s = job->argv; s && *s; s++)
        free (*s);
    free (job->argv);
    for (char **s = job->envp; s && *s; s++)
        free (*s);
    free (job->envp);
    compile_args_destroy (&job->args);
    job_spec_destroy (&job->spec);
    free (job->error);
    free (job->inline_hashes);
    free (job->frame);
    free (job->need);
    if (job->blob_frames) {
        zframe_t *frame;
        while ((frame = (zframe_t *) zlist_pop (job->blob_frames)))
            zframe_destroy (&frame);
        zlist_destroy (&job->blob_frames);
    }
    job_result_destroy (&job->result);
    free (job);
    *job_p = NULL;
}

//  NUL-terminated strings back to back (checked by intake.c) into a new
//  NULL-terminated array.
static char **
s_split (const uint8_t *bytes, size_t size, int *count_p)
{
    const char *data = (const char *) bytes;
    int count = 0;
    for (size_t i = 0; i < size; i++)
        if (data [i] == 0)
            count++;
    char **strings = (char **) zmalloc ((size_t) (count + 1) * sizeof (char *));
    int index = 0;
    for (size_t pos = 0; pos < size; pos += strlen (data + pos) + 1)
        strings [index++] = strdup (data + pos);
    if (count_p)
        *count_p = count;
    return strings;
}

uint64_t
origin_compile (origin_t *self, uint64_t conn, const char *cwd, size_t cwd_size,
                const uint8_t *argv, size_t argv_size, const uint8_t *envp, size_t envp_size,
                const char *compiler, size_t compiler_size, mode_t umask)
{
    node_t *node = self->node;
    origin_job_t *job = (origin_job_t *) zmalloc (sizeof (origin_job_t));
    job->origin = self;
    job->id = ++self->next_id;
    snprintf (job->key, sizeof job->key, "%llu", (unsigned long long) job->id);
    job->conn = conn;
    job->received = zclock_mono ();
    job->state = JOB_PREPARING;
    job->cwd = strndup (cwd, cwd_size);
    job->compiler = strndup (compiler, compiler_size);
    job->umask = umask;
    job->argv = s_split (argv, argv_size, &job->argc);
    job->envp = s_split (envp, envp_size, NULL);
    zhashx_insert (self->jobs, job->key, job);
    job->in_worker = true;
    worker_pool_submit (node->workers, s_prepare_fn, s_prepare_done, job);
    return job->id;
}

void
origin_cancel (origin_t *self, uint64_t id)
{
    origin_job_t *job = s_lookup (self, id);
    if (!job)
        return;
    log_info ("job %llu: its wrapper went away; cancelled", (unsigned long long) job->id);
    job->cancelled = true;
    job->conn = 0;
    //  A queued job ends now; one in a worker or at a peer ends when that
    //  comes back (s_place, RESULT), or at its deadline.
    if (job->state == JOB_QUEUED)
        s_finish (job);
}

//  A job at a peer that is gone: placed again elsewhere (it never ran to
//  completion there, and compiles are idempotent).
static void
s_job_lost (origin_job_t *job, const char *why)
{
    origin_t *self = job->origin;
    log_info ("job %llu: %s %s; placing it again", (unsigned long long) job->id,
              job->peer? job->peer->name: "peer", why);
    if (job->state == JOB_CONNECTING) {
        zlist_remove (self->connecting, job);
        free (job->frame);
        job->frame = NULL;
    }
    s_exclude_peer (job);
    if (job->tries >= PLACEMENT_MAX_TRIES) {
        s_fallback (job, FALLBACK_PEER_LOST, "the peer running the job %s", why);
        return;
    }
    s_place (job);
}

void
origin_peer_lost (origin_t *self, const uint8_t id [MESHCC_ID_SIZE])
{
    zlist_t *lost = zlist_new ();
    for (origin_job_t *job = (origin_job_t *) zhashx_first (self->jobs); job;
         job = (origin_job_t *) zhashx_next (self->jobs))
        if (job->peer && memcmp (job->peer->id, id, MESHCC_ID_SIZE) == 0)
            zlist_append (lost, job);
    origin_job_t *job;
    while ((job = (origin_job_t *) zlist_pop (lost))) {
        if (job->in_worker)
            //  Encoding or writing: the worker's done sees peer == NULL
            //  (encoding: placed again) or finishes (writing: the result
            //  is here already).
            s_leave_peer (job);
        else
            s_job_lost (job, "left the mesh or died");
    }
    zlist_destroy (&lost);
}

void
origin_tick (origin_t *self, int64_t now)
{
    node_t *node = self->node;
    zlist_t *expired = zlist_new ();
    for (origin_job_t *job = (origin_job_t *) zhashx_first (self->jobs); job;
         job = (origin_job_t *) zhashx_next (self->jobs)) {
        if (job->in_worker)
            continue;
        if ((job->state == JOB_QUEUED && now - job->queued_at >= ORIGIN_QUEUE_TIMEOUT_MS)
        ||  ((job->state == JOB_SENT || job->state == JOB_RUNNING) && now >= job->deadline))
            zlist_append (expired, job);
        else
        if ((job->state == JOB_SENT || job->state == JOB_RUNNING) && job->peer) {
            //  Keep the link open while a job is out: the result comes
            //  back on it, and an idle close would lose it.
            link_t *link = (link_t *) zhashx_lookup (node->links, job->peer->endpoint);
            if (link)
                link->last_used = now;
        }
    }
    origin_job_t *job;
    while ((job = (origin_job_t *) zlist_pop (expired))) {
        if (job->state == JOB_QUEUED)
            s_fallback (job, FALLBACK_QUEUE_TIMEOUT, "no slot in %d s", ORIGIN_QUEUE_TIMEOUT_MS / 1000);
        else
        if (job->state == JOB_SENT)
            s_fallback (job, FALLBACK_TIMEOUT, "%s did not answer in %d ms",
                        job->peer? job->peer->name: "the peer", JOB_ACK_TIMEOUT_MS);
        else
            s_fallback (job, FALLBACK_TIMEOUT, "%s did not finish in %d s",
                        job->peer? job->peer->name: "the peer", JOB_TIMEOUT_MS / 1000);
    }
    zlist_destroy (&expired);
    origin_dispatch (self);
}

size_t
origin_queued (origin_t *self)
{
    return zlist_size (self->queue);
}

size_t
origin_jobs (origin_t *self)
{
    return zhashx_size (self->jobs);
}

size_t
origin_in_flight (origin_t *self)
{
    size_t count = 0;
    for (origin_peer_t *peer = (origin_peer_t *) zhashx_first (self->peers); peer;
         peer = (origin_peer_t *) zhashx_next (self->peers))
        count += peer->in_flight;
    return count;
}

static void
s_set (zhash_t *record, const char *key, const char *format, ...)
{
    char value [256];
    va_list args;
    va_start (args, format);
    vsnprintf (value, sizeof value, format, args);
    va_end (args);
    zhash_update (record, key, value);
}

static void
s_set_mean (zhash_t *record, const char *name, uint64_t sum, uint64_t count)
{
    char key [64];
    snprintf (key, sizeof key, "%s_us_total", name);
    s_set (record, key, "%llu", (unsigned long long) sum);
    snprintf (key, sizeof key, "%s_count", name);
    s_set (record, key, "%llu", (unsigned long long) count);
    snprintf (key, sizeof key, "mean_%s_us", name);
    s_set (record, key, "%llu", (unsigned long long) (count? sum / count: 0));
}

void
origin_stats (origin_t *self, zhash_t *record)
{
    node_t *node = self->node;
    const node_job_stats_t *stats = &node->stats;
    s_set (record, "jobs_local", "%llu", (unsigned long long) stats->jobs_local);
    s_set (record, "local_deferred", "%llu", (unsigned long long) stats->local_deferred);
    s_set (record, "held_for_faster", "%llu", (unsigned long long) stats->held_for_faster);
    s_set (record, "jobs_remote", "%llu", (unsigned long long) stats->jobs_remote);
    s_set (record, "jobs_executed_for_peers", "%llu", (unsigned long long) stats->jobs_executed_for_peers);
    s_set (record, "jobs_refused_for_peers", "%llu", (unsigned long long) stats->jobs_refused_for_peers);
    s_set (record, "jobs_failed_for_peers", "%llu", (unsigned long long) stats->jobs_failed_for_peers);
    s_set (record, "jobs_queued", "%llu", (unsigned long long) stats->jobs_queued);
    s_set (record, "jobs_retried", "%llu", (unsigned long long) stats->jobs_retried);
    s_set (record, "refusals_received", "%llu", (unsigned long long) stats->refusals_received);
    s_set (record, "fallbacks", "%llu", (unsigned long long) stats->fallbacks);
    for (int i = 0; i < FALLBACK_REASON_COUNT; i++) {
        char key [64];
        snprintf (key, sizeof key, "fallback_%s", s_fallback_names [i]);
        s_set (record, key, "%llu", (unsigned long long) stats->fallback [i]);
    }
    s_set (record, "blobs_sent", "%llu", (unsigned long long) stats->blobs_sent);
    s_set (record, "blob_bytes_sent", "%llu", (unsigned long long) stats->blob_bytes_sent);
    s_set (record, "blobs_received", "%llu", (unsigned long long) stats->blobs_received);
    s_set (record, "blob_bytes_received", "%llu", (unsigned long long) stats->blob_bytes_received);
    //  Inputs already in the blob store / read and stored by the origin.
    s_set (record, "input_store_hits", "%llu", (unsigned long long) stats->hash_hits);
    s_set (record, "input_store_misses", "%llu", (unsigned long long) stats->hash_misses);
    s_set (record, "hash_cache_hits", "%llu", (unsigned long long) stats->hash_cache_hits);
    s_set (record, "hash_cache_misses", "%llu", (unsigned long long) stats->hash_cache_misses);
    s_set (record, "dropped_unknown_job", "%llu", (unsigned long long) stats->unknown_job);
    //  Listings reused from the listing cache (no -M run), and the cache.
    listing_cache_counts_t listings;
    listing_cache_counts (self->listings, &listings);
    s_set (record, "listings_reused", "%llu", (unsigned long long) stats->listings_reused);
    s_set (record, "listing_cache_entries", "%zu", listings.entries);
    s_set (record, "listing_cache_stale", "%llu", (unsigned long long) listings.stale);
    s_set (record, "listing_cache_rehashed", "%llu", (unsigned long long) listings.rehashed);
    s_set (record, "listing_cache_not_kept", "%llu", (unsigned long long) listings.not_kept);
    s_set_mean (record, "listing", stats->listing_us, stats->listing_n);
    s_set_mean (record, "hashing", stats->hashing_us, stats->hashing_n);
    s_set_mean (record, "transfer", stats->transfer_us, stats->transfer_n);
    s_set_mean (record, "queue", stats->queue_us, stats->queue_n);
    s_set_mean (record, "compile", stats->compile_us, stats->compile_n);
    s_set_mean (record, "setup", stats->setup_us, stats->setup_n);
    s_set (record, "running_local", "%u", node->local_running);
    s_set (record, "running_for_peers", "%u", node->serving);
    s_set (record, "queued", "%zu", origin_queued (self));
    s_set (record, "in_flight", "%zu", origin_in_flight (self));
    s_set (record, "jobs_open", "%zu", zhashx_size (self->jobs));
    //  Jobs sent to each peer: "sent_to_<name>".
    for (origin_peer_t *peer = (origin_peer_t *) zhashx_first (self->peers); peer;
         peer = (origin_peer_t *) zhashx_next (self->peers)) {
        char key [MESHCC_NAME_MAX + 16];
        snprintf (key, sizeof key, "sent_to_%s", peer->name);
        s_set (record, key, "%llu", (unsigned long long) peer->jobs_sent);
    }
}

static void
s_peer_destroy (void **item_p)
{
    origin_peer_t *peer = (origin_peer_t *) *item_p;
    if (peer) {
        placement_known_destroy (&peer->known);
        free (peer);
        *item_p = NULL;
    }
}

origin_t *
origin_new (node_t *node)
{
    origin_t *self = (origin_t *) zmalloc (sizeof (origin_t));
    self->node = node;
    self->jobs = zhashx_new ();
    self->queue = zlist_new ();
    self->connecting = zlist_new ();
    self->peers = zhashx_new ();
    zhashx_set_destructor (self->peers, s_peer_destroy);
    self->connect_timer = -1;
    self->listings = listing_cache_new (LISTING_CACHE_BYTES, LISTING_RACY_MS);
    return self;
}

//  Called after the worker pool is gone (so no job is inside a worker):
//  every open job is answered FALLBACK so its wrapper compiles at once.
void
origin_destroy (origin_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    origin_t *self = *self_p;
    zlist_t *open = zlist_new ();
    for (origin_job_t *job = (origin_job_t *) zhashx_first (self->jobs); job;
         job = (origin_job_t *) zhashx_next (self->jobs))
        zlist_append (open, job);
    origin_job_t *job;
    while ((job = (origin_job_t *) zlist_pop (open))) {
        const char *text = "the node is stopping";
        const void *data [2] = { CONTROL_FALLBACK, text };
        size_t sizes [2] = { strlen (CONTROL_FALLBACK), strlen (text) };
        s_reply (job, 2, data, sizes);
        job->in_worker = false;
        zhashx_delete (self->jobs, job->key);
        s_job_free (&job);
    }
    zlist_destroy (&open);
    zhashx_destroy (&self->jobs);
    zlist_destroy (&self->queue);
    zlist_destroy (&self->connecting);
    zhashx_destroy (&self->peers);
    listing_cache_destroy (&self->listings);
    free (self);
    *self_p = NULL;
}
