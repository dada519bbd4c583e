//  blob_fetch: job input blobs between nodes (issue 4), both sides.
//
//  Fetching. A job admitted here that lacks blobs (serve.c) asks for each
//  of them here, naming the holders its origin put in the JOB (the origin
//  among them). One fetch per blob, however many jobs here need it; at
//  most BLOB_FETCH_MAX run at once, the rest wait in order. A fetch is
//  fetch.c's state machine (chunks, credits, several holders, hash-checked,
//  holders failing) with the holders asked in the origin's order; its part
//  file is DIR/blob-parts/HEX. A DONE fetch is put into the blob store on a
//  worker (the store checks the hash again) and its part file removed.
//  Every job waiting for a blob is told when its fetch ends, stored or not
//  (serve_on_blob): a job whose blobs did not all arrive asks its origin
//  (NEED) for what is still missing, so a fetch can only save the origin
//  work, never make a job fail that would have worked before.
//
//  Links. A FETCH goes out on our DEALER to the holder, which a fresh link
//  may not have connected yet (DEALERs drop rather than queue): such a
//  request is retried every JOB_CONNECT_RETRY_MS, and a holder that stays
//  unreachable for BLOB_FETCH_CONNECT_MS is given up for that blob, so a
//  dead holder that gossip still calls alive costs seconds, not the whole
//  FETCH_TIMEOUT_MS.
//
//  Serving. A FETCH of kind 'b' is answered on a worker from the blob
//  store: the blob's raw bytes (the fetcher hashes those), one CHUNK per
//  FETCH. Any member may fetch any blob it can name by hash: knowing the
//  hash of content is the capability, as for toolchains; members are
//  trusted with job inputs anyway (they run the jobs).
//
//  Owns the fetches, their part files and DIR/blob-parts. Never decides
//  what a job needs (serve.c, executor.c), where a job runs (origin.c) or
//  which nodes hold what (the origin names them).

#include <dirent.h>
#include <sys/stat.h>
#include "meshcc/fetch.h"
#include "meshcc/node_log.h"
#include "node_private.h"

typedef struct {
    uint8_t  hash [BLOB_HASH_SIZE];
    char     hex [BLOB_HASH_HEX_SIZE + 1];
    uint64_t size;                              //  as the manifest says
    uint8_t  holders [JOB_MAX_HOLDERS][MESHCC_ID_SIZE];
    size_t   holder_count;                      //  in the order to ask them
    zlist_t *waiters;                           //  keys of the jobs (serve.c)
    fetch_t *fetch;                             //  NULL while queued or storing
    bool     storing;                           //  a worker puts it in the store
    char    *part;
    int64_t  started;                           //  zclock_mono
} s_blob_t;

//  A FETCH that could not be sent yet (its link is not connected).
typedef struct {
    char     hex [BLOB_HASH_HEX_SIZE + 1];      //  the blob it is for
    uint8_t  holder [MESHCC_ID_SIZE];
    uint8_t *frame;
    size_t   size;
    int64_t  since;                             //  zclock_mono of the first try
} s_unsent_t;

struct _blob_fetch_t {
    node_t   *node;
    char     *parts;                            //  DIR/blob-parts
    zhashx_t *blobs;                            //  hex -> s_blob_t (queued, running, storing)
    zlist_t  *queue;                            //  s_blob_t waiting for room (FIFO)
    size_t    active;                           //  running or storing
    zlist_t  *unsent;                           //  s_unsent_t
    int       retry_timer;                      //  zloop timer id, or -1
    uint64_t  fetched, fetched_bytes, failures, chunks_served;
};

//  A fetched blob handed to a worker to store.
typedef struct {
    blob_fetch_t *self;
    char     hex [BLOB_HASH_HEX_SIZE + 1];
    uint8_t  hash [BLOB_HASH_SIZE];
    char    *part;
    bool     stored;
    size_t   size;
} s_store_task_t;

static void s_start_queued (blob_fetch_t *self);

//  --------------------------------------------------------------------------
//  Lifecycle

//  Part files left by a node that died: nothing refers to them now.
static void
s_sweep_parts (const char *dir)
{
    DIR *handle = opendir (dir);
    if (!handle)
        return;
    struct dirent *entry;
    while ((entry = readdir (handle)))
        if (entry->d_name [0] != '.')
            unlinkat (dirfd (handle), entry->d_name, 0);
    closedir (handle);
}

blob_fetch_t *
blob_fetch_new (node_t *node)
{
    blob_fetch_t *self = (blob_fetch_t *) zmalloc (sizeof (blob_fetch_t));
    self->node = node;
    if (asprintf (&self->parts, "%s/blob-parts", node->config->dir) < 0)
        abort ();
    if (mkdir (self->parts, 0700) && errno != EEXIST)
        log_warn ("cannot create %s: %s (blobs will come from the origin only)", self->parts,
                  strerror (errno));
    s_sweep_parts (self->parts);
    self->blobs = zhashx_new ();
    self->queue = zlist_new ();
    self->unsent = zlist_new ();
    self->retry_timer = -1;
    return self;
}

static void
s_unsent_free (s_unsent_t **unsent_p)
{
    if (*unsent_p) {
        free ((*unsent_p)->frame);
        free (*unsent_p);
        *unsent_p = NULL;
    }
}

static void
s_blob_free (s_blob_t **blob_p)
{
    s_blob_t *blob = *blob_p;
    if (!blob)
        return;
    fetch_destroy (&blob->fetch);               //  removes the part file
    zlist_destroy (&blob->waiters);
    free (blob->part);
    free (blob);
    *blob_p = NULL;
}

//  After the worker pool is gone (no store task is running).
void
blob_fetch_destroy (blob_fetch_t **self_p)
{
    blob_fetch_t *self = *self_p;
    if (!self)
        return;
    if (self->retry_timer >= 0 && self->node->loop)
        zloop_timer_end (self->node->loop, self->retry_timer);
    s_unsent_t *unsent;
    while ((unsent = (s_unsent_t *) zlist_pop (self->unsent)))
        s_unsent_free (&unsent);
    zlist_destroy (&self->unsent);
    zlist_destroy (&self->queue);
    s_blob_t *blob;
    while ((blob = (s_blob_t *) zhashx_first (self->blobs))) {
        zhashx_delete (self->blobs, blob->hex);
        if (blob->storing && blob->part)
            unlink (blob->part);
        s_blob_free (&blob);
    }
    zhashx_destroy (&self->blobs);
    free (self->parts);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Holders and links

static bool
s_alive (blob_fetch_t *self, const uint8_t id [MESHCC_ID_SIZE])
{
    if (memcmp (id, self->node->id, MESHCC_ID_SIZE) == 0)
        return false;                           //  we lack it ourselves
    const gossip_member_t *member = gossip_lookup (self->node->gossip, id);
    return member && member->status == PEER_ALIVE && !member->state.left;
}

bool
blob_fetch_holder_alive (blob_fetch_t *self, const uint8_t id [MESHCC_ID_SIZE])
{
    return s_alive (self, id);
}

//  Gossip's word on each named holder: alive ones are (again) usable, the
//  others are removed. The load given to fetch.c is the holder's place
//  in the origin's list, so holders are asked in that order.
static void
s_refresh_holders (blob_fetch_t *self, s_blob_t *blob)
{
    for (size_t i = 0; i < blob->holder_count; i++) {
        if (memcmp (blob->holders [i], self->node->id, MESHCC_ID_SIZE) == 0)
            continue;
        if (s_alive (self, blob->holders [i]))
            fetch_add_holder (blob->fetch, blob->holders [i], (uint32_t) i);
        else
            fetch_remove_holder (blob->fetch, blob->holders [i]);
    }
}

static int s_retry_timer (zloop_t *loop, int timer_id, void *arg);

//  Sends what the credit allows; requests that cannot go yet wait for
//  their link (s_retry).
static void
s_pump (blob_fetch_t *self, s_blob_t *blob)
{
    fetch_send_t sends [FETCH_WINDOW];
    size_t count = fetch_requests (blob->fetch, zclock_time (), sends, FETCH_WINDOW);
    for (size_t i = 0; i < count; i++) {
        uint8_t *frame = NULL;
        size_t size = 0;
        if (fetch_wire_encode_request (&sends [i].request, &frame, &size))
            continue;                           //  cannot happen; it would time out
        if (node_send_to_member (self->node, sends [i].holder, frame, size) == 0) {
            free (frame);
            continue;
        }
        s_unsent_t *unsent = (s_unsent_t *) zmalloc (sizeof (s_unsent_t));
        memcpy (unsent->hex, blob->hex, sizeof unsent->hex);
        memcpy (unsent->holder, sends [i].holder, MESHCC_ID_SIZE);
        unsent->frame = frame;
        unsent->size = size;
        unsent->since = zclock_mono ();
        zlist_append (self->unsent, unsent);
        if (self->retry_timer < 0)
            self->retry_timer = zloop_timer (self->node->loop, JOB_CONNECT_RETRY_MS, 0,
                                             s_retry_timer, self);
    }
}

//  --------------------------------------------------------------------------
//  The end of a fetch

//  Out of the table; every waiting job is told.
static void
s_finish (blob_fetch_t *self, s_blob_t *blob, bool stored)
{
    zhashx_delete (self->blobs, blob->hex);
    if (self->active)
        self->active--;
    char *key;
    while ((key = (char *) zlist_pop (blob->waiters))) {
        serve_on_blob (self->node->serve, key, stored);
        free (key);
    }
    s_blob_free (&blob);
}

//  Worker: the part file into the blob store (its hash checked there),
//  then removed.
static void
s_store_fn (worker_ctx_t *ctx, void *arg)
{
    s_store_task_t *task = (s_store_task_t *) arg;
    blob_store_t *store = worker_blob_store (ctx);
    int fd = open (task->part, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (store && fd >= 0 && fstat (fd, &st) == 0 && S_ISREG (st.st_mode)
    &&  (uint64_t) st.st_size <= JOB_WIRE_MAX_PAYLOAD) {
        size_t size = (size_t) st.st_size, done = 0;
        uint8_t *data = (uint8_t *) malloc (size? size: 1);
        if (!data)
            abort ();
        while (done < size) {
            ssize_t got = read (fd, data + done, size - done);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0)
                break;
            done += (size_t) got;
        }
        if (done == size && blob_store_put (store, task->hash, data, size) == 0) {
            task->stored = true;
            task->size = size;
        }
        free (data);
    }
    if (fd >= 0)
        close (fd);
    unlink (task->part);
}

static void
s_store_done (void *arg, bool cancelled)
{
    s_store_task_t *task = (s_store_task_t *) arg;
    blob_fetch_t *self = task->self;
    s_blob_t *blob = cancelled? NULL: (s_blob_t *) zhashx_lookup (self->blobs, task->hex);
    if (blob && blob->storing) {
        if (task->stored) {
            self->fetched++;
            self->fetched_bytes += task->size;
            log_debug ("blob %.16s: %zu bytes fetched in %lld ms", task->hex, task->size,
                       (long long) (zclock_mono () - blob->started));
        }
        else {
            self->failures++;
            log_debug ("blob %.16s was fetched but cannot be stored", task->hex);
        }
        s_finish (self, blob, task->stored);
        s_start_queued (self);
    }
    free (task->part);
    free (task);
}

//  A fetch that ended: DONE is stored on a worker (the part file stays
//  for it); FAILED ends now.
static void
s_end (blob_fetch_t *self, s_blob_t *blob)
{
    if (fetch_state (blob->fetch) == FETCH_DONE) {
        fetch_destroy (&blob->fetch);           //  keeps the part file
        blob->storing = true;
        s_store_task_t *task = (s_store_task_t *) zmalloc (sizeof (s_store_task_t));
        task->self = self;
        memcpy (task->hex, blob->hex, sizeof task->hex);
        memcpy (task->hash, blob->hash, BLOB_HASH_SIZE);
        task->part = strdup (blob->part);
        worker_pool_submit (self->node->workers, s_store_fn, s_store_done, task);
        return;
    }
    //  One line per blob would flood the log (a job may lack thousands);
    //  serve.c logs one per job.
    self->failures++;
    log_debug ("cannot fetch blob %.16s from the holders named: %s", blob->hex,
               fetch_reason (blob->fetch));
    s_finish (self, blob, false);
}

//  After anything happened to a running fetch: more requests, or its end.
static void
s_step (blob_fetch_t *self, s_blob_t *blob)
{
    if (fetch_state (blob->fetch) == FETCH_RUNNING)
        s_pump (self, blob);
    if (fetch_state (blob->fetch) != FETCH_RUNNING)
        s_end (self, blob);
}

static void
s_start (blob_fetch_t *self, s_blob_t *blob)
{
    self->active++;
    blob->started = zclock_mono ();
    if (asprintf (&blob->part, "%s/%s", self->parts, blob->hex) < 0)
        abort ();
    blob->fetch = fetch_new (FETCH_KIND_BLOB, blob->hash, blob->part, zclock_time ());
    if (!blob->fetch) {
        self->failures++;
        log_debug ("cannot fetch blob %.16s: %s: %s", blob->hex, blob->part, strerror (errno));
        s_finish (self, blob, false);
        return;
    }
    //  The manifest gives the size: a holder announcing more is wrong (and
    //  no input is above the frame payload bound: the origin reads none).
    fetch_set_max_size (blob->fetch, blob->size < JOB_WIRE_MAX_PAYLOAD
                                     ? blob->size: JOB_WIRE_MAX_PAYLOAD);
    //  A holder reads the whole blob from its store for each request, so
    //  the biggest chunks: one request for any blob up to 4 MiB.
    fetch_set_chunk_size (blob->fetch, FETCH_CHUNK_MAX);
    s_refresh_holders (self, blob);
    s_step (self, blob);
}

//  Starts queued fetches while there is room. A loop, not a recursion: a
//  fetch failing at once (s_finish) only frees room for the next turn.
static void
s_start_queued (blob_fetch_t *self)
{
    while (self->active < BLOB_FETCH_MAX && zlist_size (self->queue))
        s_start (self, (s_blob_t *) zlist_pop (self->queue));
}

//  --------------------------------------------------------------------------
//  Loop thread: requests for blobs, answers, time

int
blob_fetch_want (blob_fetch_t *self, const uint8_t hash [BLOB_HASH_SIZE], uint64_t size,
                 const uint8_t (*holders) [MESHCC_ID_SIZE], size_t holder_count,
                 const char *job_key)
{
    char hex [BLOB_HASH_HEX_SIZE + 1];
    blob_hash_hex (hash, hex);
    s_blob_t *blob = (s_blob_t *) zhashx_lookup (self->blobs, hex);
    if (!blob) {
        if (holder_count > JOB_MAX_HOLDERS)
            holder_count = JOB_MAX_HOLDERS;
        bool any = false;
        for (size_t i = 0; i < holder_count && !any; i++)
            any = s_alive (self, holders [i]);
        if (!any)
            return -1;
        blob = (s_blob_t *) zmalloc (sizeof (s_blob_t));
        memcpy (blob->hash, hash, BLOB_HASH_SIZE);
        memcpy (blob->hex, hex, sizeof blob->hex);
        blob->size = size;
        memcpy (blob->holders, holders, holder_count * MESHCC_ID_SIZE);
        blob->holder_count = holder_count;
        blob->waiters = zlist_new ();
        zlist_autofree (blob->waiters);
        zhashx_insert (self->blobs, hex, blob);
        zlist_append (self->queue, blob);
    }
    for (const char *key = (const char *) zlist_first (blob->waiters); key;
         key = (const char *) zlist_next (blob->waiters))
        if (streq (key, job_key))
            return 0;
    zlist_append (blob->waiters, (void *) job_key);     //  autofree: copied
    return 1;
}

void
blob_fetch_start (blob_fetch_t *self)
{
    s_start_queued (self);
}

void
blob_fetch_on_chunk (blob_fetch_t *self, link_t *link, fetch_chunk_msg_t *chunk)
{
    char hex [BLOB_HASH_HEX_SIZE + 1];
    blob_hash_hex (chunk->hash, hex);
    s_blob_t *blob = (s_blob_t *) zhashx_lookup (self->blobs, hex);
    if (!blob || !blob->fetch)
        return;
    //  The holder is the member behind this link.
    const gossip_member_t *holder = node_link_member (self->node, link);
    if (!holder)
        return;
    fetch_on_chunk (blob->fetch, holder->state.id, chunk, zclock_time ());
    s_step (self, blob);
    s_start_queued (self);
}

//  Requests waiting for their links: sent once connected; a holder still
//  unreachable after BLOB_FETCH_CONNECT_MS is given up for that blob.
static void
s_retry (blob_fetch_t *self, int64_t now)
{
    zlist_t *given_up = zlist_new ();
    s_unsent_t *unsent = (s_unsent_t *) zlist_first (self->unsent);
    while (unsent) {
        s_unsent_t *next = (s_unsent_t *) zlist_next (self->unsent);
        s_blob_t *blob = (s_blob_t *) zhashx_lookup (self->blobs, unsent->hex);
        if (!blob || !blob->fetch
        ||  node_send_to_member (self->node, unsent->holder, unsent->frame, unsent->size) == 0) {
            zlist_remove (self->unsent, unsent);
            s_unsent_free (&unsent);
        }
        else
        if (now - unsent->since >= BLOB_FETCH_CONNECT_MS) {
            zlist_remove (self->unsent, unsent);
            zlist_append (given_up, unsent);
        }
        unsent = next;
    }
    while ((unsent = (s_unsent_t *) zlist_pop (given_up))) {
        s_blob_t *blob = (s_blob_t *) zhashx_lookup (self->blobs, unsent->hex);
        if (blob && blob->fetch) {
            log_debug ("blob %.16s: a holder cannot be reached; trying the others", blob->hex);
            fetch_fail_holder (blob->fetch, unsent->holder);
            s_step (self, blob);
        }
        s_unsent_free (&unsent);
    }
    zlist_destroy (&given_up);
    s_start_queued (self);
}

static int
s_retry_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    blob_fetch_t *self = (blob_fetch_t *) arg;
    s_retry (self, zclock_mono ());
    if (zlist_size (self->unsent) == 0 && self->retry_timer >= 0) {
        zloop_timer_end (self->node->loop, self->retry_timer);
        self->retry_timer = -1;
    }
    return 0;
}

void
blob_fetch_tick (blob_fetch_t *self, int64_t now)
{
    (void) now;
    //  Keys first (copies), each looked up again: a step may end a fetch,
    //  and the table must not change under a walk.
    zlist_t *running = zlist_new ();
    zlist_autofree (running);
    for (s_blob_t *blob = (s_blob_t *) zhashx_first (self->blobs); blob;
         blob = (s_blob_t *) zhashx_next (self->blobs))
        if (blob->fetch)
            zlist_append (running, blob->hex);
    for (char *hex = (char *) zlist_first (running); hex; hex = (char *) zlist_next (running)) {
        s_blob_t *blob = (s_blob_t *) zhashx_lookup (self->blobs, hex);
        if (!blob || !blob->fetch)
            continue;
        s_refresh_holders (self, blob);
        fetch_tick (blob->fetch, zclock_time ());
        s_step (self, blob);
    }
    zlist_destroy (&running);
    s_start_queued (self);
}

//  --------------------------------------------------------------------------
//  Holder side

//  A FETCH answered from the worker's blob store (raw bytes).
static fetch_chunk_msg_t *
s_answer (worker_ctx_t *ctx, const fetch_request_msg_t *request, const char *path)
{
    (void) path;
    blob_store_t *store = worker_blob_store (ctx);
    size_t size = 0;
    uint8_t *data = store? blob_store_get (store, request->hash, &size): NULL;
    fetch_chunk_msg_t *chunk = fetch_serve_buffer (data, size, request);
    free (data);
    return chunk;
}

void
blob_fetch_on_fetch (blob_fetch_t *self, zframe_t *routing_id, const fetch_request_msg_t *request)
{
    node_answer_fetch (self->node, routing_id, request, NULL, s_answer, &self->chunks_served);
}

void
blob_fetch_stats (blob_fetch_t *self, zhash_t *record)
{
    char value [32];
    snprintf (value, sizeof value, "%llu", (unsigned long long) self->fetched);
    zhash_update (record, "blobs_fetched_from_peers", value);
    snprintf (value, sizeof value, "%llu", (unsigned long long) self->fetched_bytes);
    zhash_update (record, "blob_bytes_fetched_from_peers", value);
    snprintf (value, sizeof value, "%llu", (unsigned long long) self->failures);
    zhash_update (record, "blob_fetch_failures", value);
    snprintf (value, sizeof value, "%llu", (unsigned long long) self->chunks_served);
    zhash_update (record, "blob_chunks_served", value);
    snprintf (value, sizeof value, "%zu", self->active);
    zhash_update (record, "blob_fetches_running", value);
    snprintf (value, sizeof value, "%zu", zlist_size (self->queue));
    zhash_update (record, "blob_fetches_queued", value);
}
