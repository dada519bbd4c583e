//  fetch: the fetch state machine (see fetch.h) and the holder's answer.
//
//  Owns: the holders it was told of, the requests in flight, which chunks
//  of the object arrived, and the part file (descriptor and, unless the
//  fetch is DONE, the file itself). Never touches sockets, clocks, gossip
//  or the stores: the node sends what fetch_requests returns, hands back
//  what comes in, and renames the part file into its store when DONE.
//
//  Chunks. Once the size is known the object is cut into chunks of
//  chunk_size bytes at multiples of chunk_size; each is QUEUED, IN_FLIGHT
//  (exactly one request covers it) or DONE, and `done` counts the bytes of
//  it received, from its start. A holder may answer with fewer bytes than
//  asked (the protocol allows it); the chunk then goes back to the queue
//  and the next request asks for the rest. An empty answer where bytes
//  remain would make no progress: that holder is wrong. The queue is the
//  lowest chunk not DONE or IN_FLIGHT, so after a holder is lost its
//  chunks, the lowest missing offsets, go out first.
//
//  Credits. At most FETCH_WINDOW requests are in flight: a request leaves
//  the table when its answer is accepted, when it expires, or when its
//  holder is removed or fails, and only then may another be sent. An
//  answer is accepted only if it names a request in flight, comes from
//  the holder it was sent to, and echoes its offset, kind and hash; the
//  rest is dropped and counted, which covers late answers to requests
//  that expired (their holder has failed by then). Request ids are unique
//  within a fetch (a counter from 1); a stray answer from an earlier fetch
//  of the same object that happens to match carries that object's bytes
//  at that offset, which the hash still checks.
//
//  Holders. USABLE, GONE (removed: it died or left; adding it again makes
//  it usable) or FAILED (excluded for this fetch: not held, error, another
//  size, no answer in time, a corrupt transfer, a broken answer). Ranking:
//  load, then id; the first FETCH_HOLDERS_PARALLEL usable ones serve, each
//  request going to the one of them with the fewest requests in flight
//  (ties by rank). Suspects (below) serve only when no other holder is
//  usable.
//
//  Size. The first accepted answer gives the object's size (at most
//  FETCH_OBJECT_MAX); until then only one request is in flight. A later
//  answer with another size fails its holder. If the transfer then fails
//  the hash, the size is learned again and the holders excluded for
//  disagreeing with it are readmitted: the liar may have been the first.
//
//  Verification and retries. When every chunk is DONE the part file is
//  hashed (BLAKE2b-256, streamed with pread). A match is DONE. A mismatch
//  counts one corrupt transfer: after FETCH_MAX_ATTEMPTS the fetch fails;
//  otherwise the part file is truncated and everything is fetched again.
//  The holders that served the bad transfer become suspects (used only
//  when no other holder is left). If exactly one holder served it, it is the culprit and is
//  excluded, unless it is the only usable holder (then it is retried
//  until the attempts run out). If several served it, nobody can be
//  blamed: the fetch switches to careful mode, where one holder serves
//  each transfer (the one that already served part of this transfer stays
//  first while usable), so the next mismatch names its culprit.

#include <czmq.h>
#include <sodium.h>
#include "meshcc/fetch.h"
#include "meshcc/limits.h"

//  Room for fetch_reason: one line for a log.
#define REASON_MAX          256

typedef enum {
    HOLDER_USABLE,
    HOLDER_GONE,
    HOLDER_FAILED
} holder_state_t;

typedef enum {
    FAIL_NONE,
    FAIL_NOT_HELD,
    FAIL_ERROR,
    FAIL_TOTAL,                     //  announced another size
    FAIL_TIMEOUT,
    FAIL_CORRUPT,                   //  sole server of a transfer that failed the hash
    FAIL_WRONG,                     //  broken answer: too long, empty, too large
    FAIL_UNREACHABLE                //  the caller could not send to it
} fail_t;

typedef struct {
    uint8_t  id [MESHCC_ID_SIZE];
    uint32_t load;
    holder_state_t state;
    fail_t   why;
    bool     suspect;               //  served a transfer that failed the hash
    bool     served_transfer;       //  served bytes of the current transfer
    bool     served_ever;
    size_t   in_flight;
} holder_t;

typedef enum {
    CHUNK_QUEUED,
    CHUNK_IN_FLIGHT,
    CHUNK_DONE
} chunk_state_t;

typedef struct {
    uint64_t id;
    size_t   holder;                //  index in holders
    size_t   chunk;                 //  index in chunks (0 for the first request)
    uint64_t offset;
    uint32_t length;
    int64_t  sent_ms;
} request_t;

struct _fetch_t {
    char     kind;
    uint8_t  hash [BLOB_HASH_SIZE];
    char    *part_path;
    int      fd;
    uint32_t chunk_size;
    uint64_t max_total;             //  largest size a holder may announce
    bool     started;               //  fetch_requests was called
    fetch_state_t state;
    char     reason [REASON_MAX];
    int64_t  now_ms;                //  latest time the caller told us

    holder_t *holders;
    size_t   holder_count;
    request_t requests [FETCH_WINDOW];
    size_t   request_count;
    uint64_t next_request_id;

    bool     total_known;
    uint64_t total;
    size_t   chunk_count;
    uint8_t *chunk_state;           //  chunk_state_t per chunk
    uint32_t *chunk_done;           //  bytes received per chunk
    size_t   chunks_done;
    uint64_t bytes;                 //  of the current transfer

    bool     careful;               //  one holder per transfer
    size_t   corrupt_transfers;
    fetch_stats_t stats;
};

//  --------------------------------------------------------------------------
//  Lifecycle

fetch_t *
fetch_new (char kind, const uint8_t hash [BLOB_HASH_SIZE], const char *part_path, int64_t now_ms)
{
    if ((kind != FETCH_KIND_TOOLCHAIN && kind != FETCH_KIND_BLOB) || !hash || !part_path) {
        errno = EINVAL;
        return NULL;
    }
    int fd = open (part_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return NULL;
    fetch_t *self = (fetch_t *) zmalloc (sizeof (fetch_t));
    self->kind = kind;
    memcpy (self->hash, hash, BLOB_HASH_SIZE);
    self->part_path = strdup (part_path);
    if (!self->part_path)
        abort ();
    self->fd = fd;
    self->chunk_size = FETCH_CHUNK;
    self->max_total = FETCH_OBJECT_MAX;
    self->state = FETCH_RUNNING;
    self->now_ms = now_ms;
    self->next_request_id = 1;
    self->stats.started_ms = now_ms;
    return self;
}

static void
s_free_chunks (fetch_t *self)
{
    free (self->chunk_state);
    free (self->chunk_done);
    self->chunk_state = NULL;
    self->chunk_done = NULL;
    self->chunk_count = 0;
    self->chunks_done = 0;
}

void
fetch_destroy (fetch_t **self_p)
{
    if (self_p && *self_p) {
        fetch_t *self = *self_p;
        close (self->fd);
        if (self->state != FETCH_DONE)
            unlink (self->part_path);
        free (self->part_path);
        free (self->holders);
        s_free_chunks (self);
        free (self);
        *self_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Internals

static void
s_fail (fetch_t *self, const char *format, ...)
{
    if (self->state != FETCH_RUNNING)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (self->reason, sizeof self->reason, format, args);
    va_end (args);
    self->state = FETCH_FAILED;
    self->stats.finished_ms = self->now_ms;
}

static holder_t *
s_holder_find (fetch_t *self, const uint8_t id [MESHCC_ID_SIZE])
{
    for (size_t i = 0; i < self->holder_count; i++)
        if (memcmp (self->holders [i].id, id, MESHCC_ID_SIZE) == 0)
            return &self->holders [i];
    return NULL;
}

static bool
s_any_usable (fetch_t *self, const holder_t *besides)
{
    for (size_t i = 0; i < self->holder_count; i++)
        if (self->holders [i].state == HOLDER_USABLE && &self->holders [i] != besides)
            return true;
    return false;
}

//  Bytes of chunk `index` (the last one may be short).
static uint32_t
s_chunk_length (fetch_t *self, size_t index)
{
    uint64_t start = (uint64_t) index * self->chunk_size;
    uint64_t left = self->total - start;
    return (uint32_t) (left < self->chunk_size? left: self->chunk_size);
}

//  Removes request `index` from the table (its credit returns); its chunk,
//  unless the caller marks it DONE, is queued again.
static void
s_request_forget (fetch_t *self, size_t index)
{
    request_t *request = &self->requests [index];
    holder_t *holder = &self->holders [request->holder];
    assert (holder->in_flight > 0);
    holder->in_flight--;
    if (self->total_known && request->chunk < self->chunk_count
    &&  self->chunk_state [request->chunk] == CHUNK_IN_FLIGHT)
        self->chunk_state [request->chunk] = CHUNK_QUEUED;
    self->requests [index] = self->requests [--self->request_count];
}

static void
s_requeue_holder (fetch_t *self, size_t holder)
{
    for (size_t i = self->request_count; i-- > 0; )
        if (self->requests [i].holder == holder)
            s_request_forget (self, i);
}

static void
s_check_alive (fetch_t *self)
{
    if (self->state == FETCH_RUNNING && !s_any_usable (self, NULL))
        s_fail (self, "no holder left");
}

static void
s_fail_holder (fetch_t *self, size_t index, fail_t why)
{
    holder_t *holder = &self->holders [index];
    if (holder->state != HOLDER_FAILED)
        self->stats.holder_failures++;
    holder->state = HOLDER_FAILED;
    holder->why = why;
    s_requeue_holder (self, index);
    s_check_alive (self);
}

//  <0 if holder a is preferred to b.
static int
s_rank (fetch_t *self, const holder_t *a, const holder_t *b)
{
    if (self->careful) {
        bool a_sticky = a->served_transfer || a->in_flight;
        bool b_sticky = b->served_transfer || b->in_flight;
        if (a_sticky != b_sticky)
            return a_sticky? -1: 1;
    }
    if (a->suspect != b->suspect)
        return a->suspect? 1: -1;
    if (a->load != b->load)
        return a->load < b->load? -1: 1;
    return memcmp (a->id, b->id, MESHCC_ID_SIZE);
}

//  The holder for the next request: among the best `serving` usable
//  holders by rank (suspects only if no other holder is usable), the one
//  with the fewest requests in flight. Selecting
//  the best few by repeated scans is O(serving × holders), and holders
//  are a few dozen at most in practice. Returns SIZE_MAX if none.
static size_t
s_pick (fetch_t *self)
{
    size_t serving = self->careful? 1: FETCH_HOLDERS_PARALLEL;
    //  Suspects serve only when nobody else can.
    bool clean = false;
    for (size_t i = 0; i < self->holder_count; i++)
        clean |= self->holders [i].state == HOLDER_USABLE && !self->holders [i].suspect;
    size_t chosen [FETCH_HOLDERS_PARALLEL];
    size_t chosen_count = 0;
    while (chosen_count < serving) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < self->holder_count; i++) {
            if (self->holders [i].state != HOLDER_USABLE || (clean && self->holders [i].suspect))
                continue;
            bool taken = false;
            for (size_t c = 0; c < chosen_count; c++)
                taken |= chosen [c] == i;
            if (taken)
                continue;
            if (best == SIZE_MAX
            ||  s_rank (self, &self->holders [i], &self->holders [best]) < 0)
                best = i;
        }
        if (best == SIZE_MAX)
            break;
        chosen [chosen_count++] = best;
    }
    size_t pick = SIZE_MAX;
    for (size_t c = 0; c < chosen_count; c++)       //  in rank order: ties keep the better
        if (pick == SIZE_MAX || self->holders [chosen [c]].in_flight < self->holders [pick].in_flight)
            pick = chosen [c];
    return pick;
}

static void
s_learn_total (fetch_t *self, uint64_t total)
{
    self->total_known = true;
    self->total = total;
    self->chunk_count = (size_t) ((total + self->chunk_size - 1) / self->chunk_size);
    self->chunk_state = (uint8_t *) zmalloc (self->chunk_count + 1);
    self->chunk_done = (uint32_t *) zmalloc ((self->chunk_count + 1) * sizeof (uint32_t));
    self->chunks_done = 0;
    //  zmalloc zeroes: every chunk is CHUNK_QUEUED with nothing received.
}

static int
s_write (int fd, const uint8_t *data, size_t size, uint64_t offset)
{
    while (size) {
        ssize_t written = pwrite (fd, data, size, (off_t) offset);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0)
            return -1;
        data += written;
        size -= (size_t) written;
        offset += (uint64_t) written;
    }
    return 0;
}

//  BLAKE2b-256 of the part file, which must hold exactly `total` bytes.
static int
s_hash_part (int fd, uint64_t total, uint8_t hash [BLOB_HASH_SIZE])
{
    crypto_generichash_state state;
    crypto_generichash_init (&state, NULL, 0, BLOB_HASH_SIZE);
    uint8_t *buffer = (uint8_t *) malloc (BLOB_HASH_READ_SIZE);
    if (!buffer)
        abort ();
    uint64_t offset = 0;
    int rc = 0;
    while (true) {
        ssize_t got = pread (fd, buffer, BLOB_HASH_READ_SIZE, (off_t) offset);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = -1;
            break;
        }
        if (got == 0)
            break;
        crypto_generichash_update (&state, buffer, (size_t) got);
        offset += (uint64_t) got;
    }
    free (buffer);
    if (rc == 0 && offset != total) {
        errno = EIO;                //  someone else wrote to our part file
        rc = -1;
    }
    if (rc == 0)
        crypto_generichash_final (&state, hash, BLOB_HASH_SIZE);
    return rc;
}

//  The transfer failed the hash: blame, then start again (see the header).
static void
s_corrupt (fetch_t *self)
{
    self->stats.corrupt++;
    self->corrupt_transfers++;
    if (self->corrupt_transfers >= FETCH_MAX_ATTEMPTS) {
        s_fail (self, "hash mismatch after %zu transfers", self->corrupt_transfers);
        return;
    }
    size_t servers = 0;
    holder_t *server = NULL;
    for (size_t i = 0; i < self->holder_count; i++) {
        holder_t *holder = &self->holders [i];
        if (holder->state == HOLDER_FAILED && holder->why == FAIL_TOTAL) {
            holder->state = HOLDER_USABLE;
            holder->why = FAIL_NONE;
        }
        if (holder->served_transfer) {
            holder->suspect = true;
            server = holder;
            servers++;
        }
    }
    if (servers == 1) {
        if (server->state == HOLDER_USABLE && s_any_usable (self, server)) {
            server->state = HOLDER_FAILED;
            server->why = FAIL_CORRUPT;
            self->stats.holder_failures++;
        }
    }
    else
        self->careful = true;
    //  Every chunk was DONE, so nothing is in flight; clear the table anyway.
    while (self->request_count)
        s_request_forget (self, self->request_count - 1);
    for (size_t i = 0; i < self->holder_count; i++)
        self->holders [i].served_transfer = false;
    s_free_chunks (self);
    self->total_known = false;
    self->total = 0;
    self->bytes = 0;
    if (ftruncate (self->fd, 0) != 0) {
        s_fail (self, "truncate %s: %s", self->part_path, strerror (errno));
        return;
    }
    s_check_alive (self);
}

static void
s_verify (fetch_t *self)
{
    uint8_t hash [BLOB_HASH_SIZE];
    if (s_hash_part (self->fd, self->total, hash) != 0) {
        s_fail (self, "read %s: %s", self->part_path, strerror (errno));
        return;
    }
    if (memcmp (hash, self->hash, BLOB_HASH_SIZE) == 0) {
        self->state = FETCH_DONE;
        self->stats.finished_ms = self->now_ms;
    }
    else
        s_corrupt (self);
}

//  --------------------------------------------------------------------------
//  Holders

int
fetch_add_holder (fetch_t *self, const uint8_t id [MESHCC_ID_SIZE], uint32_t load)
{
    assert (self && id);
    holder_t *holder = s_holder_find (self, id);
    if (holder) {
        holder->load = load;
        if (holder->state == HOLDER_GONE)
            holder->state = HOLDER_USABLE;
        return 0;
    }
    if (self->holder_count >= FETCH_HOLDERS_MAX)
        return -1;
    self->holders = (holder_t *) realloc (self->holders,
                                          (self->holder_count + 1) * sizeof (holder_t));
    if (!self->holders)
        abort ();
    holder = &self->holders [self->holder_count++];
    memset (holder, 0, sizeof *holder);
    memcpy (holder->id, id, MESHCC_ID_SIZE);
    holder->load = load;
    holder->state = HOLDER_USABLE;
    return 0;
}

void
fetch_remove_holder (fetch_t *self, const uint8_t id [MESHCC_ID_SIZE])
{
    assert (self && id);
    holder_t *holder = s_holder_find (self, id);
    if (!holder)
        return;
    if (holder->state == HOLDER_USABLE)
        holder->state = HOLDER_GONE;
    s_requeue_holder (self, (size_t) (holder - self->holders));
    s_check_alive (self);
}

void
fetch_fail_holder (fetch_t *self, const uint8_t id [MESHCC_ID_SIZE])
{
    assert (self && id);
    holder_t *holder = s_holder_find (self, id);
    if (holder && self->state == FETCH_RUNNING)
        s_fail_holder (self, (size_t) (holder - self->holders), FAIL_UNREACHABLE);
}

//  --------------------------------------------------------------------------
//  Requests, answers, time

size_t
fetch_requests (fetch_t *self, int64_t now_ms, fetch_send_t *out, size_t max)
{
    assert (self && (out || max == 0));
    self->now_ms = now_ms;
    self->started = true;
    s_check_alive (self);
    size_t count = 0;
    while (self->state == FETCH_RUNNING && count < max && self->request_count < FETCH_WINDOW) {
        size_t chunk = 0;
        uint64_t offset = 0;
        uint32_t length = self->chunk_size;
        if (!self->total_known) {
            //  The first request goes alone: its answer gives the size.
            if (self->request_count > 0)
                break;
        }
        else {
            while (chunk < self->chunk_count && self->chunk_state [chunk] != CHUNK_QUEUED)
                chunk++;
            if (chunk == self->chunk_count)
                break;
            offset = (uint64_t) chunk * self->chunk_size + self->chunk_done [chunk];
            length = s_chunk_length (self, chunk) - self->chunk_done [chunk];
            self->chunk_state [chunk] = CHUNK_IN_FLIGHT;
        }
        size_t holder = s_pick (self);
        assert (holder != SIZE_MAX);    //  s_check_alive saw a usable one
        request_t *request = &self->requests [self->request_count++];
        request->id = self->next_request_id++;
        request->holder = holder;
        request->chunk = chunk;
        request->offset = offset;
        request->length = length;
        request->sent_ms = now_ms;
        self->holders [holder].in_flight++;
        self->stats.requests++;

        fetch_send_t *send = &out [count++];
        memset (send, 0, sizeof *send);
        memcpy (send->holder, self->holders [holder].id, MESHCC_ID_SIZE);
        send->request.request_id = request->id;
        send->request.kind = self->kind;
        memcpy (send->request.hash, self->hash, BLOB_HASH_SIZE);
        send->request.offset = offset;
        send->request.length = length;
    }
    return count;
}

int
fetch_on_chunk (fetch_t *self, const uint8_t holder_id [MESHCC_ID_SIZE],
                const fetch_chunk_msg_t *chunk, int64_t now_ms)
{
    assert (self && holder_id);
    self->now_ms = now_ms;
    size_t index = 0;
    while (index < self->request_count
    &&     (!chunk || self->requests [index].id != chunk->request_id))
        index++;
    if (self->state != FETCH_RUNNING || !chunk || index == self->request_count
    ||  chunk->kind != self->kind || memcmp (chunk->hash, self->hash, BLOB_HASH_SIZE) != 0
    ||  memcmp (self->holders [self->requests [index].holder].id, holder_id, MESHCC_ID_SIZE) != 0
    ||  chunk->offset != self->requests [index].offset) {
        self->stats.dropped++;
        return -1;
    }
    //  It answers request `index`: the credit returns whatever it says.
    request_t request = self->requests [index];
    s_request_forget (self, index);
    self->stats.answers++;
    if (chunk->status != FETCH_STATUS_OK) {
        s_fail_holder (self, request.holder,
                       chunk->status == FETCH_STATUS_NOT_HELD? FAIL_NOT_HELD: FAIL_ERROR);
        return 0;
    }
    //  The decoder guarantees these for wire input; the checks keep a
    //  hand-made message from corrupting the state.
    if (chunk->length > request.length || (chunk->length && !chunk->data)
    ||  chunk->length > chunk->total || chunk->offset > chunk->total - chunk->length) {
        s_fail_holder (self, request.holder, FAIL_WRONG);
        return 0;
    }
    //  The size: learned from the first accepted answer, then checked.
    if (self->total_known? chunk->total != self->total: chunk->total > self->max_total) {
        s_fail_holder (self, request.holder, self->total_known? FAIL_TOTAL: FAIL_WRONG);
        return 0;
    }
    //  An empty answer where bytes remain (request.length may exceed the
    //  first chunk when the size was not known yet) makes no progress.
    uint64_t want = chunk->total - request.offset;
    if (want > request.length)
        want = request.length;
    if (chunk->length == 0 && want > 0) {
        s_fail_holder (self, request.holder, FAIL_WRONG);
        return 0;
    }
    //  Accepted.
    if (!self->total_known)
        s_learn_total (self, chunk->total);
    holder_t *holder = &self->holders [request.holder];
    holder->served_transfer = true;
    holder->served_ever = true;
    if (self->chunk_count == 0) {       //  the empty object: its size was all
        s_verify (self);
        return 0;
    }
    if (s_write (self->fd, chunk->data, chunk->length, chunk->offset) != 0) {
        s_fail (self, "write %s: %s", self->part_path, strerror (errno));
        return 0;
    }
    self->chunk_done [request.chunk] += chunk->length;
    if (self->chunk_done [request.chunk] == s_chunk_length (self, request.chunk)) {
        self->chunk_state [request.chunk] = CHUNK_DONE;
        self->chunks_done++;
    }
    self->bytes += chunk->length;
    self->stats.bytes_received += chunk->length;
    if (self->chunks_done == self->chunk_count)
        s_verify (self);
    return 0;
}

size_t
fetch_tick (fetch_t *self, int64_t now_ms)
{
    assert (self);
    self->now_ms = now_ms;
    if (self->state != FETCH_RUNNING)
        return 0;
    size_t expired = 0;
    //  Count first, then fail: failing a holder rearranges the table.
    bool late [FETCH_WINDOW];
    for (size_t i = 0; i < self->request_count; i++) {
        late [i] = now_ms - self->requests [i].sent_ms >= FETCH_TIMEOUT_MS;
        expired += late [i];
    }
    self->stats.timeouts += expired;
    size_t slow [FETCH_WINDOW];
    size_t slow_count = 0;
    for (size_t i = 0; i < self->request_count; i++)
        if (late [i])
            slow [slow_count++] = self->requests [i].holder;
    for (size_t i = 0; i < slow_count; i++)
        if (self->holders [slow [i]].state != HOLDER_FAILED)
            s_fail_holder (self, slow [i], FAIL_TIMEOUT);
    return expired;
}

int64_t
fetch_deadline (fetch_t *self)
{
    assert (self);
    int64_t deadline = -1;
    for (size_t i = 0; i < self->request_count; i++) {
        int64_t expires = self->requests [i].sent_ms + FETCH_TIMEOUT_MS;
        if (deadline < 0 || expires < deadline)
            deadline = expires;
    }
    return deadline;
}

//  --------------------------------------------------------------------------
//  Accessors

fetch_state_t
fetch_state (fetch_t *self)
{
    assert (self);
    return self->state;
}

const char *
fetch_reason (fetch_t *self)
{
    assert (self);
    return self->state == FETCH_FAILED? self->reason: "";
}

void
fetch_progress (fetch_t *self, uint64_t *bytes, uint64_t *total, bool *total_known)
{
    assert (self);
    if (bytes)
        *bytes = self->bytes;
    if (total)
        *total = self->total;
    if (total_known)
        *total_known = self->total_known;
}

size_t
fetch_source_count (fetch_t *self)
{
    assert (self);
    size_t count = 0;
    for (size_t i = 0; i < self->holder_count; i++)
        count += self->holders [i].served_ever;
    return count;
}

size_t
fetch_in_flight (fetch_t *self)
{
    assert (self);
    return self->request_count;
}

void
fetch_stats (fetch_t *self, fetch_stats_t *stats)
{
    assert (self && stats);
    *stats = self->stats;
}

char
fetch_kind (fetch_t *self)
{
    assert (self);
    return self->kind;
}

const uint8_t *
fetch_hash (fetch_t *self)
{
    assert (self);
    return self->hash;
}

int
fetch_set_chunk_size (fetch_t *self, uint32_t size)
{
    assert (self);
    if (self->started || size < FETCH_CHUNK_MIN || size > FETCH_CHUNK_MAX)
        return -1;
    self->chunk_size = size;
    return 0;
}

int
fetch_set_max_size (fetch_t *self, uint64_t max)
{
    assert (self);
    if (self->started || max > FETCH_OBJECT_MAX)
        return -1;
    self->max_total = max;
    return 0;
}

//  --------------------------------------------------------------------------
//  Holder side

//  A CHUNK echoing `request`, with `status` and nothing else.
static fetch_chunk_msg_t *
s_chunk_new (const fetch_request_msg_t *request, fetch_status_t status)
{
    fetch_chunk_msg_t *chunk = (fetch_chunk_msg_t *) zmalloc (sizeof (fetch_chunk_msg_t));
    chunk->request_id = request->request_id;
    chunk->kind = request->kind;
    memcpy (chunk->hash, request->hash, BLOB_HASH_SIZE);
    chunk->offset = request->offset;
    chunk->status = status;
    return chunk;
}

//  Bytes to answer `request` with from an object of `total` bytes, or -1
//  if the range is not one to serve (an error answer).
static int64_t
s_serve_length (const fetch_request_msg_t *request, uint64_t total)
{
    if (request->length == 0 || request->offset > total)
        return -1;
    uint64_t length = total - request->offset;
    if (length > request->length)
        length = request->length;
    if (length > FETCH_CHUNK_MAX)
        length = FETCH_CHUNK_MAX;
    return (int64_t) length;
}

fetch_chunk_msg_t *
fetch_serve_buffer (const uint8_t *data, size_t size, const fetch_request_msg_t *request)
{
    assert (request);
    if (!data)
        return s_chunk_new (request, FETCH_STATUS_NOT_HELD);
    int64_t length = s_serve_length (request, size);
    if (length < 0)
        return s_chunk_new (request, FETCH_STATUS_ERROR);
    fetch_chunk_msg_t *chunk = s_chunk_new (request, FETCH_STATUS_OK);
    chunk->total = size;
    chunk->length = (uint32_t) length;
    if (length) {
        chunk->data = (uint8_t *) malloc ((size_t) length);
        if (!chunk->data)
            abort ();
        memcpy (chunk->data, data + request->offset, (size_t) length);
    }
    return chunk;
}

fetch_chunk_msg_t *
fetch_serve_chunk (const char *path, const fetch_request_msg_t *request)
{
    assert (request);
    if (!path)
        return s_chunk_new (request, FETCH_STATUS_NOT_HELD);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return s_chunk_new (request, errno == ENOENT || errno == ENOTDIR
                                     ? FETCH_STATUS_NOT_HELD: FETCH_STATUS_ERROR);
    struct stat info;
    int64_t length = -1;
    if (fstat (fd, &info) == 0 && S_ISREG (info.st_mode))
        length = s_serve_length (request, (uint64_t) info.st_size);
    if (length < 0) {
        close (fd);
        return s_chunk_new (request, FETCH_STATUS_ERROR);
    }
    uint8_t *data = length? (uint8_t *) malloc ((size_t) length): NULL;
    if (length && !data)
        abort ();
    size_t got = 0;
    while (got < (size_t) length) {
        ssize_t bytes = pread (fd, data + got, (size_t) length - got,
                               (off_t) (request->offset + got));
        if (bytes < 0 && errno == EINTR)
            continue;
        if (bytes <= 0)
            break;                  //  error, or the file shrank under us
        got += (size_t) bytes;
    }
    close (fd);
    if (got < (size_t) length) {
        free (data);
        return s_chunk_new (request, FETCH_STATUS_ERROR);
    }
    fetch_chunk_msg_t *chunk = s_chunk_new (request, FETCH_STATUS_OK);
    chunk->total = (uint64_t) info.st_size;
    chunk->length = (uint32_t) length;
    chunk->data = data;
    return chunk;
}

//  --------------------------------------------------------------------------
//  Self test: one holder serving a small object through the codec. The
//  scenarios (several holders, deaths, timeouts, corruption, credit) are in
//  tests/unit/test_node_fetch.c.

void
fetch_test (bool verbose)
{
    if (verbose)
        printf (" * fetch: ");
    char object [] = "/tmp/meshcc-fetch-test-XXXXXX";
    int fd = mkstemp (object);
    assert (fd >= 0);
    size_t size = 300 * 1000;
    uint8_t *bytes = (uint8_t *) malloc (size);
    assert (bytes);
    for (size_t i = 0; i < size; i++)
        bytes [i] = (uint8_t) (i * 7 + i / 251);
    assert (write (fd, bytes, size) == (ssize_t) size);
    close (fd);
    uint8_t hash [BLOB_HASH_SIZE];
    crypto_generichash (hash, BLOB_HASH_SIZE, bytes, size, NULL, 0);
    char part [sizeof object + 8];
    snprintf (part, sizeof part, "%s.part", object);

    fetch_t *fetch = fetch_new (FETCH_KIND_TOOLCHAIN, hash, part, 0);
    assert (fetch);
    assert (fetch_set_chunk_size (fetch, 64 * 1024) == 0);
    uint8_t holder [MESHCC_ID_SIZE] = { 1 };
    assert (fetch_add_holder (fetch, holder, 0) == 0);
    int64_t now = 0;
    while (fetch_state (fetch) == FETCH_RUNNING && now < 1000) {
        fetch_send_t sends [FETCH_WINDOW];
        size_t count = fetch_requests (fetch, now, sends, FETCH_WINDOW);
        assert (fetch_in_flight (fetch) <= FETCH_WINDOW);
        for (size_t i = 0; i < count; i++) {
            uint8_t *frame;
            size_t frame_size;
            assert (fetch_wire_encode_request (&sends [i].request, &frame, &frame_size) == 0);
            fetch_request_msg_t *request = NULL;
            assert (fetch_wire_decode_request (frame, frame_size, &request) == WIRE_OK);
            free (frame);
            fetch_chunk_msg_t *answer = fetch_serve_chunk (object, request);
            fetch_request_msg_destroy (&request);
            assert (fetch_wire_encode_chunk (answer, &frame, &frame_size) == 0);
            fetch_chunk_msg_destroy (&answer);
            assert (fetch_wire_decode_chunk (frame, frame_size, &answer) == WIRE_OK);
            free (frame);
            assert (fetch_on_chunk (fetch, sends [i].holder, answer, now) == 0);
            fetch_chunk_msg_destroy (&answer);
        }
        now++;
    }
    assert (fetch_state (fetch) == FETCH_DONE);
    assert (fetch_source_count (fetch) == 1);
    uint8_t copy [BLOB_HASH_SIZE];
    assert (blob_hash_file (part, copy) == 0 && memcmp (copy, hash, BLOB_HASH_SIZE) == 0);
    fetch_destroy (&fetch);
    assert (access (part, F_OK) == 0);      //  DONE: the caller's to rename
    unlink (part);
    unlink (object);
    free (bytes);
    if (verbose)
        printf ("OK\n");
}
