//  test_node_fetch: fetching an object from holders (fetch.c) and its
//  codec (fetch_wire.c). Holders are simulated in process with real
//  files: each serves through fetch_serve_chunk, and every request and
//  answer goes through the encoder and the decoder, so the codec is on
//  the path of every scenario. The simulated clock advances STEP_MS per
//  step; a holder answers a few queued requests per step, may die, fall
//  silent, lie about the size, hold nothing, answer short, or corrupt a
//  byte. Checked at every step: never more than FETCH_WINDOW requests in
//  flight, and a fetch that says DONE holds exactly the object. The
//  decoder is fuzzed (every truncation, seeded mutations, random frames,
//  oversized lengths) on heap buffers of exactly the frame's size, so ASan
//  catches a read past the end and LSan a leak of a refused frame.

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <czmq.h>
#include <sodium.h>
#include <zstd.h>
#include "meshcc/fetch.h"
#include "meshcc/fetch_wire.h"
#include "meshcc/limits.h"

//  5 MB: not a multiple of any chunk size, so the last chunk is short.
#define OBJECT_SIZE     (5 * 1000 * 1000)
#define SMALL_CHUNK     (64 * 1024)
#define STEP_MS         10
#define MAX_STEPS       20000
#define HOLDERS_MAX     4
#define MUTATIONS       20000
#define RANDOM_FRAMES   20000

static uint64_t
s_rand (uint64_t *seed)
{
    uint64_t z = (*seed += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

//  --------------------------------------------------------------------------
//  Fixture: the object (random bytes, in memory and in a file), a file
//  that is the object with 1000 bytes more (a holder that has something
//  else under that name), and a path where nothing is.

static struct {
    char dir [64];
    char object_path [128];
    char longer_path [128];
    char absent_path [128];
    char empty_path [128];
    uint8_t *object;
    uint8_t hash [BLOB_HASH_SIZE];
    uint8_t empty_hash [BLOB_HASH_SIZE];
} s_fx;

static void
s_write_file (const char *path, const uint8_t *data, size_t size)
{
    FILE *file = fopen (path, "wb");
    assert_non_null (file);
    assert_int_equal (fwrite (data, 1, size, file), size);
    assert_int_equal (fclose (file), 0);
}

static int
s_group_setup (void **state)
{
    (void) state;
    if (sodium_init () < 0)
        return -1;
    snprintf (s_fx.dir, sizeof s_fx.dir, "/tmp/meshcc-fetch-XXXXXX");
    if (!mkdtemp (s_fx.dir))
        return -1;
    snprintf (s_fx.object_path, sizeof s_fx.object_path, "%s/object", s_fx.dir);
    snprintf (s_fx.longer_path, sizeof s_fx.longer_path, "%s/longer", s_fx.dir);
    snprintf (s_fx.absent_path, sizeof s_fx.absent_path, "%s/absent", s_fx.dir);
    snprintf (s_fx.empty_path, sizeof s_fx.empty_path, "%s/empty", s_fx.dir);
    s_fx.object = (uint8_t *) malloc (OBJECT_SIZE + 1000);
    uint64_t seed = 42;
    for (size_t i = 0; i < OBJECT_SIZE + 1000; i++)
        s_fx.object [i] = (uint8_t) s_rand (&seed);
    crypto_generichash (s_fx.hash, BLOB_HASH_SIZE, s_fx.object, OBJECT_SIZE, NULL, 0);
    crypto_generichash (s_fx.empty_hash, BLOB_HASH_SIZE, NULL, 0, NULL, 0);
    s_write_file (s_fx.object_path, s_fx.object, OBJECT_SIZE);
    s_write_file (s_fx.longer_path, s_fx.object, OBJECT_SIZE + 1000);
    s_write_file (s_fx.empty_path, s_fx.object, 0);
    return 0;
}

static int
s_group_teardown (void **state)
{
    (void) state;
    unlink (s_fx.object_path);
    unlink (s_fx.longer_path);
    unlink (s_fx.empty_path);
    rmdir (s_fx.dir);
    free (s_fx.object);
    return 0;
}

//  --------------------------------------------------------------------------
//  Simulation

typedef struct {
    uint8_t  id [MESHCC_ID_SIZE];
    uint32_t load;
    const char *path;               //  what it serves (absent: "not held")
    size_t   per_step;              //  answers per step
    bool     silent;                //  swallows requests (queues them, never answers)
    bool     dead;                  //  removed: its requests vanish
    int64_t  corrupt_at;            //  byte flipped in every answer covering it (-1: none)
    uint32_t answer_max;            //  answers at most this many bytes (0: all asked)
    fetch_request_msg_t *queue [64];
    size_t   queued;
    size_t   requests;              //  received
    size_t   answered;
    uint64_t bytes_served;
} sim_holder_t;

typedef struct {
    fetch_t *fetch;
    char     part [160];
    sim_holder_t holders [HOLDERS_MAX];
    size_t   holder_count;
    int64_t  now;
    size_t   steps;
    uint64_t size;                  //  of the object fetched
    const uint8_t *hash;
    uint8_t *received;              //  per byte: 1 once an accepted answer covered it
    bool     check_fresh;           //  every request must ask for bytes not received
    bool     check_queues;          //  in flight == requests queued at holders
    size_t   max_in_flight;
    size_t   fresh_violations;
} sim_t;

static sim_t *
s_sim_new (uint32_t chunk_size)
{
    sim_t *sim = (sim_t *) calloc (1, sizeof (sim_t));
    snprintf (sim->part, sizeof sim->part, "%s/part", s_fx.dir);
    sim->size = OBJECT_SIZE;
    sim->hash = s_fx.hash;
    sim->now = 1000;
    sim->fetch = fetch_new (FETCH_KIND_TOOLCHAIN, sim->hash, sim->part, sim->now);
    assert_non_null (sim->fetch);
    if (chunk_size)
        assert_int_equal (fetch_set_chunk_size (sim->fetch, chunk_size), 0);
    sim->received = (uint8_t *) calloc (1, OBJECT_SIZE + 1000);
    return sim;
}

static sim_holder_t *
s_sim_holder (sim_t *sim, uint32_t load, const char *path)
{
    assert_true (sim->holder_count < HOLDERS_MAX);
    sim_holder_t *holder = &sim->holders [sim->holder_count];
    memset (holder, 0, sizeof *holder);
    memset (holder->id, (int) (0xA0 + sim->holder_count), MESHCC_ID_SIZE);
    holder->load = load;
    holder->path = path;
    holder->per_step = 2;
    holder->corrupt_at = -1;
    sim->holder_count++;
    assert_int_equal (fetch_add_holder (sim->fetch, holder->id, load), 0);
    return holder;
}

static sim_holder_t *
s_sim_find (sim_t *sim, const uint8_t id [MESHCC_ID_SIZE])
{
    for (size_t i = 0; i < sim->holder_count; i++)
        if (memcmp (sim->holders [i].id, id, MESHCC_ID_SIZE) == 0)
            return &sim->holders [i];
    fail_msg ("request to an unknown holder");
    return NULL;
}

static void
s_holder_clear (sim_holder_t *holder)
{
    for (size_t i = 0; i < holder->queued; i++)
        fetch_request_msg_destroy (&holder->queue [i]);
    holder->queued = 0;
}

static void
s_sim_destroy (sim_t **sim_p)
{
    sim_t *sim = *sim_p;
    for (size_t i = 0; i < sim->holder_count; i++)
        s_holder_clear (&sim->holders [i]);
    fetch_destroy (&sim->fetch);
    unlink (sim->part);
    free (sim->received);
    free (sim);
    *sim_p = NULL;
}

//  Decodes a copy of exactly `size` bytes (ASan sees any overread).
static wire_error_t
s_decode_request (const uint8_t *data, size_t size, fetch_request_msg_t **msg_p)
{
    uint8_t *copy = (uint8_t *) malloc (size? size: 1);
    if (size)
        memcpy (copy, data, size);
    wire_error_t error = fetch_wire_decode_request (copy, size, msg_p);
    free (copy);
    return error;
}

static wire_error_t
s_decode_chunk (const uint8_t *data, size_t size, fetch_chunk_msg_t **msg_p)
{
    uint8_t *copy = (uint8_t *) malloc (size? size: 1);
    if (size)
        memcpy (copy, data, size);
    wire_error_t error = fetch_wire_decode_chunk (copy, size, msg_p);
    free (copy);
    return error;
}

//  The answer to `request` as the holder makes it, through the codec.
static fetch_chunk_msg_t *
s_answer (sim_holder_t *holder, const fetch_request_msg_t *request)
{
    fetch_chunk_msg_t *chunk = fetch_serve_chunk (holder->path, request);
    if (chunk->status == FETCH_STATUS_OK) {
        if (holder->answer_max && chunk->length > holder->answer_max)
            chunk->length = holder->answer_max;
        if (holder->corrupt_at >= 0 && (uint64_t) holder->corrupt_at >= chunk->offset
        &&  (uint64_t) holder->corrupt_at < chunk->offset + chunk->length)
            chunk->data [holder->corrupt_at - (int64_t) chunk->offset] ^= 0x5A;
        holder->bytes_served += chunk->length;
    }
    uint8_t *frame;
    size_t size;
    assert_int_equal (fetch_wire_encode_chunk (chunk, &frame, &size), 0);
    fetch_chunk_msg_destroy (&chunk);
    assert_int_equal (s_decode_chunk (frame, size, &chunk), WIRE_OK);
    free (frame);
    return chunk;
}

//  Delivers one answer of `holder` to the fetch; returns fetch_on_chunk's.
static int
s_deliver (sim_t *sim, sim_holder_t *holder, const fetch_request_msg_t *request)
{
    fetch_chunk_msg_t *chunk = s_answer (holder, request);
    int rc = fetch_on_chunk (sim->fetch, holder->id, chunk, sim->now);
    if (rc == 0 && chunk->status == FETCH_STATUS_OK && fetch_state (sim->fetch) == FETCH_RUNNING)
        memset (sim->received + chunk->offset, 1, chunk->length);
    holder->answered++;
    fetch_chunk_msg_destroy (&chunk);
    return rc;
}

static size_t
s_queued_at_live (sim_t *sim)
{
    size_t queued = 0;
    for (size_t i = 0; i < sim->holder_count; i++)
        queued += sim->holders [i].queued;
    return queued;
}

//  One step: time passes, expired requests are given up, new requests
//  go out (through the codec) and every live holder answers a few.
static void
s_sim_step (sim_t *sim)
{
    sim->now += STEP_MS;
    sim->steps++;
    fetch_tick (sim->fetch, sim->now);
    fetch_send_t sends [FETCH_WINDOW + 4];
    size_t count = fetch_requests (sim->fetch, sim->now, sends, FETCH_WINDOW + 4);
    assert_true (count <= FETCH_WINDOW);
    for (size_t i = 0; i < count; i++) {
        uint8_t *frame;
        size_t size;
        assert_int_equal (fetch_wire_encode_request (&sends [i].request, &frame, &size), 0);
        fetch_request_msg_t *request = NULL;
        assert_int_equal (s_decode_request (frame, size, &request), WIRE_OK);
        free (frame);
        assert_int_equal (request->kind, fetch_kind (sim->fetch));
        assert_memory_equal (request->hash, sim->hash, BLOB_HASH_SIZE);
        assert_true (request->length >= 1 && request->length <= FETCH_CHUNK_MAX);
        if (sim->check_fresh && request->offset < sim->size
        &&  (sim->received [request->offset]
             || sim->received [request->offset + request->length - 1]))
            sim->fresh_violations++;
        sim_holder_t *holder = s_sim_find (sim, sends [i].holder);
        holder->requests++;
        if (holder->dead) {
            fetch_request_msg_destroy (&request);
            continue;
        }
        assert_true (holder->queued < 64);
        holder->queue [holder->queued++] = request;
    }
    size_t in_flight = fetch_in_flight (sim->fetch);
    assert_true (in_flight <= FETCH_WINDOW);
    if (in_flight > sim->max_in_flight)
        sim->max_in_flight = in_flight;
    if (sim->check_queues)
        assert_int_equal (s_queued_at_live (sim), in_flight);

    for (size_t h = 0; h < sim->holder_count; h++) {
        sim_holder_t *holder = &sim->holders [h];
        if (holder->silent || holder->dead)
            continue;
        for (size_t n = 0; n < holder->per_step && holder->queued; n++) {
            fetch_request_msg_t *request = holder->queue [0];
            memmove (holder->queue, holder->queue + 1, --holder->queued * sizeof (holder->queue [0]));
            s_deliver (sim, holder, request);
            fetch_request_msg_destroy (&request);
            assert_true (fetch_in_flight (sim->fetch) <= FETCH_WINDOW);
        }
    }
}

//  The part file holds exactly the object.
static void
s_check_part (sim_t *sim)
{
    FILE *file = fopen (sim->part, "rb");
    assert_non_null (file);
    uint8_t *bytes = (uint8_t *) malloc (sim->size + 1);
    size_t got = fread (bytes, 1, sim->size + 1, file);
    fclose (file);
    assert_int_equal (got, sim->size);
    if (sim->size)
        assert_memory_equal (bytes, s_fx.object, sim->size);
    free (bytes);
}

//  Steps until the fetch is no longer running (or `until` says stop);
//  a DONE fetch must hold exactly the object.
static fetch_state_t
s_sim_run (sim_t *sim, bool (*until) (sim_t *sim, void *arg), void *arg)
{
    while (fetch_state (sim->fetch) == FETCH_RUNNING && sim->steps < MAX_STEPS) {
        if (until && until (sim, arg))
            break;
        s_sim_step (sim);
    }
    if (fetch_state (sim->fetch) == FETCH_DONE)
        s_check_part (sim);
    return fetch_state (sim->fetch);
}

static bool
s_until_bytes (sim_t *sim, void *arg)
{
    uint64_t bytes;
    fetch_progress (sim->fetch, &bytes, NULL, NULL);
    return bytes >= *(uint64_t *) arg;
}

//  --------------------------------------------------------------------------
//  Tests: the state machine

static void
test_selftest (void **state)
{
    (void) state;
    fetch_wire_test (false);
    fetch_test (false);
}

//  One holder, real chunk size: done, exact bytes, one request per chunk.
static void
test_single_holder (void **state)
{
    (void) state;
    sim_t *sim = s_sim_new (0);
    sim->check_queues = true;
    s_sim_holder (sim, 0, s_fx.object_path);
    assert_int_equal (s_sim_run (sim, NULL, NULL), FETCH_DONE);
    assert_string_equal (fetch_reason (sim->fetch), "");
    fetch_stats_t stats;
    fetch_stats (sim->fetch, &stats);
    size_t chunks = (OBJECT_SIZE + FETCH_CHUNK - 1) / FETCH_CHUNK;
    assert_int_equal (stats.requests, chunks);
    assert_int_equal (stats.answers, chunks);
    assert_int_equal (stats.dropped, 0);
    assert_int_equal (stats.corrupt, 0);
    assert_int_equal (stats.bytes_received, OBJECT_SIZE);
    assert_int_equal (fetch_source_count (sim->fetch), 1);
    uint64_t bytes, total;
    bool known;
    fetch_progress (sim->fetch, &bytes, &total, &known);
    assert_true (known);
    assert_int_equal (bytes, OBJECT_SIZE);
    assert_int_equal (total, OBJECT_SIZE);
    assert_true (stats.finished_ms > stats.started_ms);
    s_sim_destroy (&sim);
}

//  The credit, step by step: the first request goes alone; then exactly
//  FETCH_WINDOW; none while the window is full; one per answer.
static void
test_credit (void **state)
{
    (void) state;
    sim_t *sim = s_sim_new (SMALL_CHUNK);
    sim_holder_t *holder = s_sim_holder (sim, 0, s_fx.object_path);
    fetch_send_t sends [3 * FETCH_WINDOW];
    assert_int_equal (fetch_requests (sim->fetch, sim->now, sends, 3 * FETCH_WINDOW), 1);
    assert_int_equal (fetch_requests (sim->fetch, sim->now, sends + 1, 3 * FETCH_WINDOW), 0);
    assert_int_equal (sends [0].request.offset, 0);
    assert_int_equal (s_deliver (sim, holder, &sends [0].request), 0);
    assert_int_equal (fetch_in_flight (sim->fetch), 0);
    //  The size is known: the window opens, and only the window.
    size_t count = fetch_requests (sim->fetch, sim->now, sends, 3 * FETCH_WINDOW);
    assert_int_equal (count, FETCH_WINDOW);
    assert_int_equal (fetch_in_flight (sim->fetch), FETCH_WINDOW);
    for (size_t i = 0; i < count; i++)
        assert_int_equal (sends [i].request.offset, (i + 1) * SMALL_CHUNK);
    fetch_send_t more [FETCH_WINDOW];
    assert_int_equal (fetch_requests (sim->fetch, sim->now, more, FETCH_WINDOW), 0);
    //  `max` is respected too.
    assert_int_equal (s_deliver (sim, holder, &sends [3].request), 0);
    assert_int_equal (s_deliver (sim, holder, &sends [5].request), 0);
    assert_int_equal (fetch_requests (sim->fetch, sim->now, more, 1), 1);
    assert_int_equal (fetch_requests (sim->fetch, sim->now, more + 1, FETCH_WINDOW), 1);
    assert_int_equal (fetch_requests (sim->fetch, sim->now, more + 2, FETCH_WINDOW), 0);
    assert_int_equal (more [0].request.offset, (FETCH_WINDOW + 1) * SMALL_CHUNK);
    assert_int_equal (more [1].request.offset, (FETCH_WINDOW + 2) * SMALL_CHUNK);
    //  An answer twice: the second is dropped and returns no credit.
    assert_int_equal (s_deliver (sim, holder, &sends [3].request), -1);
    assert_int_equal (fetch_requests (sim->fetch, sim->now, more, FETCH_WINDOW), 0);
    //  Deadline: the oldest request in flight.
    assert_int_equal (fetch_deadline (sim->fetch), sim->now + FETCH_TIMEOUT_MS);
    s_sim_destroy (&sim);
}

//  Three holders of equal load share the object; a fourth, more loaded,
//  is not used; the window is never exceeded and is actually filled.
static void
test_parallel_holders (void **state)
{
    (void) state;
    sim_t *sim = s_sim_new (SMALL_CHUNK);
    sim->check_queues = true;
    sim_holder_t *a = s_sim_holder (sim, 10, s_fx.object_path);
    sim_holder_t *b = s_sim_holder (sim, 10, s_fx.object_path);
    sim_holder_t *c = s_sim_holder (sim, 10, s_fx.object_path);
    sim_holder_t *d = s_sim_holder (sim, 500, s_fx.object_path);
    a->per_step = b->per_step = c->per_step = 1;
    assert_int_equal (s_sim_run (sim, NULL, NULL), FETCH_DONE);
    assert_int_equal (sim->max_in_flight, FETCH_WINDOW);
    assert_true (a->answered > 10 && b->answered > 10 && c->answered > 10);
    assert_int_equal (d->requests, 0);
    assert_int_equal (fetch_source_count (sim->fetch), 3);
    fetch_stats_t stats;
    fetch_stats (sim->fetch, &stats);
    assert_int_equal (stats.bytes_received, OBJECT_SIZE);
    s_sim_destroy (&sim);
}

//  A faster holder returns credits sooner and so gets more of the object.
static void
test_fast_holder_gets_more (void **state)
{
    (void) state;
    sim_t *sim = s_sim_new (SMALL_CHUNK);
    sim_holder_t *slow = s_sim_holder (sim, 0, s_fx.object_path);
    sim_holder_t *fast = s_sim_holder (sim, 1, s_fx.object_path);
    slow->per_step = 1;
    fast->per_step = 4;
    assert_int_equal (s_sim_run (sim, NULL, NULL), FETCH_DONE);
    assert_true (fast->bytes_served > 2 * slow->bytes_served);
    s_sim_destroy (&sim);
}

//  The preferred holder dies halfway: the other finishes, asking only for
//  bytes not received yet (no restart), with no byte fetched twice.
static void
test_holder_dies (void **state)
{
    (void) state;
    sim_t *sim = s_sim_new (SMALL_CHUNK);
    sim_holder_t *a = s_sim_holder (sim, 1, s_fx.object_path);
    sim_holder_t *b = s_sim_holder (sim, 2, s_fx.object_path);
    b->per_step = 1;
    uint64_t half = OBJECT_SIZE / 2;
    assert_int_equal (s_sim_run (sim, s_until_bytes, &half), FETCH_RUNNING);
    assert_true (a->answered > 0 && b->answered > 0);
    assert_true (fetch_in_flight (sim->fetch) > 0);
    //  Dies with requests in flight: they vanish with it.
    a->dead = true;
    s_holder_clear (a);
    fetch_remove_holder (sim->fetch, a->id);
    size_t a_requests = a->requests;
    sim->check_fresh = true;
    assert_int_equal (s_sim_run (sim, NULL, NULL), FETCH_DONE);
    assert_int_equal (a->requests, a_requests);
    assert_int_equal (sim->fresh_violations, 0);
    fetch_stats_t stats;
    fetch_stats (sim->fetch, &stats);
    assert_int_equal (stats.corrupt, 0);
    assert_int_equal (stats.bytes_received, OBJECT_SIZE);
    assert_int_equal (a->bytes_served + b->bytes_served, OBJECT_SIZE);
    assert_int_equal (fetch_source_count (sim->fetch), 2);
    s_sim_destroy (&sim);
}

//  The only holder dies: the fetch fails, and its part file goes with it.
static void
test_last_holder_dies (void **state)
{
    (void) state;
    sim_t *sim = s_sim_new (SMALL_CHUNK);
    sim_holder_t *a = s_sim_holder (sim, 1, s_fx.object_path);
    uint64_t some = OBJECT_SIZE / 4;
    assert_int_equal (s_sim_run (sim, s_until_bytes, &some), FETCH_RUNNING);
    a->dead = true;
    fetch_remove_holder (sim->fetch, a->id);
    assert_int_equal (fetch_state (sim->fetch), FETCH_FAILED);
    assert_string_equal (fetch_reason (sim->fetch), "no holder left");
    assert_int_equal (fetch_in_flight (sim->fetch), 0);
    fetch_send_t sends [FETCH_WINDOW];
    assert_int_equal (fetch_requests (sim->fetch, sim->now, sends, FETCH_WINDOW), 0);
    //  Adding it back does not revive a failed fetch.
    assert_int_equal (fetch_add_holder (sim->fetch, a->id, 0), 0);
    assert_int_equal (fetch_state (sim->fetch), FETCH_FAILED);
    assert_int_equal (access (sim->part, F_OK), 0);
    fetch_destroy (&sim->fetch);
    assert_int_not_equal (access (sim->part, F_OK), 0);
    s_sim_destroy (&sim);
}

static void
test_no_holder (void **state)
{
    (void) state;
    sim_t *sim = s_sim_new (0);
    fetch_send_t sends [FETCH_WINDOW];
    assert_int_equal (fetch_requests (sim->fetch, sim->now, sends, FETCH_WINDOW), 0);
    assert_int_equal (fetch_state (sim->fetch), FETCH_FAILED);
    assert_string_equal (fetch_reason (sim->fetch), "no holder left");
    assert_int_equal (fetch_deadline (sim->fetch), -1);
    s_sim_destroy (&sim);
}

//  The preferred holder stops answering: after FETCH_TIMEOUT_MS its
//  requests go to the other, and its late answers are dropped.
static void
test_timeout (void **state)
{
    (void) state;
    sim_t *sim = s_sim_new (SMALL_CHUNK);
    sim_holder_t *a = s_sim_holder (sim, 1, s_fx.object_path);
    sim_holder_t *b = s_sim_holder (sim, 2, s_fx.object_path);
    uint64_t some = OBJECT_SIZE / 5;
    assert_int_equal (s_sim_run (sim, s_until_bytes, &some), FETCH_RUNNING);
    a->silent = true;
    int64_t silent_since = sim->now;
    fetch_stats_t stats;
    while (true) {
        s_sim_step (sim);
        fetch_stats (sim->fetch, &stats);
        if (stats.timeouts || fetch_state (sim->fetch) != FETCH_RUNNING)
            break;
    }
    assert_int_equal (fetch_state (sim->fetch), FETCH_RUNNING);
    //  Its oldest request may predate the silence by a few steps.
    assert_true (sim->now - silent_since >= FETCH_TIMEOUT_MS - 10 * STEP_MS);
    assert_true (sim->now - silent_since <= FETCH_TIMEOUT_MS + STEP_MS);
    assert_true (a->queued > 0);
    //  It wakes up: every late answer is dropped and counted.
    size_t late = a->queued;
    for (size_t i = 0; i < a->queued; i++)
        assert_int_equal (s_deliver (sim, a, a->queue [i]), -1);
    s_holder_clear (a);
    fetch_stats (sim->fetch, &stats);
    assert_int_equal (stats.dropped, late);
    size_t a_requests = a->requests;
    a->silent = false;
    assert_int_equal (s_sim_run (sim, NULL, NULL), FETCH_DONE);
    assert_int_equal (a->requests, a_requests);      //  failed for this fetch
    fetch_stats (sim->fetch, &stats);
    assert_int_equal (stats.holder_failures, 1);
    assert_int_equal (stats.corrupt, 0);
    assert_true (b->answered > 0);
    s_sim_destroy (&sim);
}

//  The only holder stops answering: the fetch fails after the timeout.
static void
test_timeout_only_holder (void **state)
{
    (void) state;
    sim_t *sim = s_sim_new (SMALL_CHUNK);
    sim_holder_t *a = s_sim_holder (sim, 1, s_fx.object_path);
    a->silent = true;
    int64_t start = sim->now;
    assert_int_equal (s_sim_run (sim, NULL, NULL), FETCH_FAILED);
    assert_string_equal (fetch_reason (sim->fetch), "no holder left");
    assert_true (sim->now - start >= FETCH_TIMEOUT_MS);
    s_sim_destroy (&sim);
}

//  The preferred holder corrupts one byte of its copy. The first transfer
//  (both holders serving) fails the hash; nobody can be blamed yet, so one
//  holder serves each transfer: the corrupt one (least loaded) fails again
//  and is excluded; the good one finishes. Never DONE with wrong bytes
//  (s_sim_run checks the part file whenever the fetch says DONE).
static void
test_corrupt_holder (void **state)
{
    (void) state;
    sim_t *sim = s_sim_new (SMALL_CHUNK);
    sim_holder_t *bad = s_sim_holder (sim, 1, s_fx.object_path);
    sim_holder_t *good = s_sim_holder (sim, 2, s_fx.object_path);
    bad->corrupt_at = 5;            //  in the first chunk: the first request goes to it
    assert_int_equal (s_sim_run (sim, NULL, NULL), FETCH_DONE);
    fetch_stats_t stats;
    fetch_stats (sim->fetch, &stats);
    assert_int_equal (stats.corrupt, 2);
    assert_int_equal (stats.holder_failures, 1);
    //  Transfer 1 from both, transfer 2 from the bad one alone, transfer
    //  3 from the good one alone.
    assert_int_equal (bad->bytes_served + good->bytes_served, 3ULL * OBJECT_SIZE);
    assert_true (bad->bytes_served > OBJECT_SIZE && good->bytes_served > OBJECT_SIZE);
    assert_int_equal (fetch_source_count (sim->fetch), 2);
    s_sim_destroy (&sim);
}

//  The corrupt holder alone serves a transfer: it is named at once and
//  excluded; the other holder, though more loaded, finishes.
static void
test_corrupt_sole_server (void **state)
{
    (void) state;
    sim_t *sim = s_sim_new (SMALL_CHUNK);
    sim_holder_t *bad = s_sim_holder (sim, 1, s_fx.object_path);
    sim_holder_t *good = s_sim_holder (sim, 2, s_fx.object_path);
    bad->corrupt_at = OBJECT_SIZE - 1;
    //  The good one is gone during the first transfer, back after it.
    good->dead = true;
    fetch_remove_holder (sim->fetch, good->id);
    while (fetch_state (sim->fetch) == FETCH_RUNNING) {
        s_sim_step (sim);
        fetch_stats_t stats;
        fetch_stats (sim->fetch, &stats);
        if (stats.corrupt)
            break;
    }
    //  Sole holder: retried, not excluded.
    assert_int_equal (fetch_state (sim->fetch), FETCH_RUNNING);
    good->dead = false;
    assert_int_equal (fetch_add_holder (sim->fetch, good->id, good->load), 0);
    size_t bad_requests = bad->requests;
    assert_int_equal (s_sim_run (sim, NULL, NULL), FETCH_DONE);
    //  The suspect is ranked after the good one despite its lower load.
    assert_int_equal (bad->requests, bad_requests);
    assert_int_equal (good->bytes_served, OBJECT_SIZE);
    fetch_stats_t stats;
    fetch_stats (sim->fetch, &stats);
    assert_int_equal (stats.corrupt, 1);
    s_sim_destroy (&sim);
}

//  Only a corrupt holder: FAILED after FETCH_MAX_ATTEMPTS transfers, and
//  the part file is removed when the fetch is destroyed.
static void
test_corrupt_only_holder (void **state)
{
    (void) state;
    sim_t *sim = s_sim_new (SMALL_CHUNK);
    sim_holder_t *bad = s_sim_holder (sim, 1, s_fx.object_path);
    bad->corrupt_at = 3 * SMALL_CHUNK + 17;
    assert_int_equal (s_sim_run (sim, NULL, NULL), FETCH_FAILED);
    assert_non_null (strstr (fetch_reason (sim->fetch), "hash mismatch"));
    fetch_stats_t stats;
    fetch_stats (sim->fetch, &stats);
    assert_int_equal (stats.corrupt, FETCH_MAX_ATTEMPTS);
    assert_int_equal (bad->bytes_served, (uint64_t) FETCH_MAX_ATTEMPTS * OBJECT_SIZE);
    assert_int_equal (stats.bytes_received, (uint64_t) FETCH_MAX_ATTEMPTS * OBJECT_SIZE);
    fetch_destroy (&sim->fetch);
    assert_int_not_equal (access (sim->part, F_OK), 0);
    s_sim_destroy (&sim);
}

//  "Not held" from the preferred holder: it is not asked again.
static void
test_not_held (void **state)
{
    (void) state;
    sim_t *sim = s_sim_new (SMALL_CHUNK);
    sim_holder_t *empty = s_sim_holder (sim, 1, s_fx.absent_path);
    sim_holder_t *good = s_sim_holder (sim, 2, s_fx.object_path);
    assert_int_equal (s_sim_run (sim, NULL, NULL), FETCH_DONE);
    assert_int_equal (empty->requests, 1);
    assert_int_equal (good->bytes_served, OBJECT_SIZE);
    assert_int_equal (fetch_source_count (sim->fetch), 1);
    fetch_stats_t stats;
    fetch_stats (sim->fetch, &stats);
    assert_int_equal (stats.holder_failures, 1);
    s_sim_destroy (&sim);
}

//  A holder with another object of that name (1000 bytes longer) after
//  the size is known: excluded at its first answer.
static void
test_wrong_size_holder (void **state)
{
    (void) state;
    sim_t *sim = s_sim_new (SMALL_CHUNK);
    sim_holder_t *good = s_sim_holder (sim, 1, s_fx.object_path);
    sim_holder_t *liar = s_sim_holder (sim, 2, s_fx.longer_path);
    assert_int_equal (s_sim_run (sim, NULL, NULL), FETCH_DONE);
    //  Its share of the first window, and nothing after its first answer:
    //  the rest of its answers were dropped.
    assert_true (liar->requests >= 1 && liar->requests <= FETCH_WINDOW);
    assert_int_equal (good->bytes_served, OBJECT_SIZE);
    fetch_stats_t stats;
    fetch_stats (sim->fetch, &stats);
    assert_int_equal (stats.corrupt, 0);
    assert_int_equal (stats.holder_failures, 1);
    assert_int_equal (stats.dropped, liar->answered - 1);
    s_sim_destroy (&sim);
}

//  The liar answers first, so its size is learned and the honest holder
//  is excluded for disagreeing; the transfer fails the hash, the liar (sole
//  server) is excluded, the honest holder is readmitted and finishes.
static void
test_wrong_size_first (void **state)
{
    (void) state;
    sim_t *sim = s_sim_new (SMALL_CHUNK);
    sim_holder_t *liar = s_sim_holder (sim, 1, s_fx.longer_path);
    sim_holder_t *good = s_sim_holder (sim, 2, s_fx.object_path);
    assert_int_equal (s_sim_run (sim, NULL, NULL), FETCH_DONE);
    fetch_stats_t stats;
    fetch_stats (sim->fetch, &stats);
    assert_int_equal (stats.corrupt, 1);
    assert_int_equal (liar->bytes_served, OBJECT_SIZE + 1000);
    assert_true (good->bytes_served >= OBJECT_SIZE);
    s_sim_destroy (&sim);
}

//  Holders may answer with less than asked: the rest is asked again.
static void
test_short_answers (void **state)
{
    (void) state;
    sim_t *sim = s_sim_new (SMALL_CHUNK);
    sim->check_queues = true;
    sim_holder_t *a = s_sim_holder (sim, 1, s_fx.object_path);
    a->answer_max = SMALL_CHUNK / 3 + 1;
    assert_int_equal (s_sim_run (sim, NULL, NULL), FETCH_DONE);
    fetch_stats_t stats;
    fetch_stats (sim->fetch, &stats);
    assert_int_equal (stats.bytes_received, OBJECT_SIZE);
    assert_true (stats.requests >= 3 * (OBJECT_SIZE / SMALL_CHUNK));
    s_sim_destroy (&sim);
}

//  An empty answer where bytes remain makes no progress: that holder is
//  wrong. Built by hand (the decoder accepts it: 0 bytes within total).
static void
test_empty_answer_refused (void **state)
{
    (void) state;
    sim_t *sim = s_sim_new (SMALL_CHUNK);
    sim_holder_t *a = s_sim_holder (sim, 1, s_fx.object_path);
    sim_holder_t *b = s_sim_holder (sim, 2, s_fx.object_path);
    fetch_send_t sends [FETCH_WINDOW];
    assert_int_equal (fetch_requests (sim->fetch, sim->now, sends, FETCH_WINDOW), 1);
    assert_memory_equal (sends [0].holder, a->id, MESHCC_ID_SIZE);
    fetch_chunk_msg_t *chunk = fetch_serve_chunk (a->path, &sends [0].request);
    chunk->length = 0;
    assert_int_equal (fetch_on_chunk (sim->fetch, a->id, chunk, sim->now), 0);
    fetch_chunk_msg_destroy (&chunk);
    assert_int_equal (fetch_requests (sim->fetch, sim->now, sends, FETCH_WINDOW), 1);
    assert_memory_equal (sends [0].holder, b->id, MESHCC_ID_SIZE);
    assert_int_equal (s_deliver (sim, b, &sends [0].request), 0);
    assert_int_equal (s_sim_run (sim, NULL, NULL), FETCH_DONE);
    assert_int_equal (a->requests, 0);      //  (s_sim_step counts; none went to it)
    s_sim_destroy (&sim);
}

//  Answers that match no request in flight are dropped and counted, and
//  change nothing: unknown id, another holder, another offset, another
//  hash or kind; a right answer afterwards is still accepted.
static void
test_dropped_answers (void **state)
{
    (void) state;
    sim_t *sim = s_sim_new (SMALL_CHUNK);
    sim_holder_t *a = s_sim_holder (sim, 1, s_fx.object_path);
    sim_holder_t *b = s_sim_holder (sim, 2, s_fx.object_path);
    fetch_send_t sends [FETCH_WINDOW];
    assert_int_equal (fetch_requests (sim->fetch, sim->now, sends, FETCH_WINDOW), 1);
    fetch_request_msg_t request = sends [0].request;
    assert_memory_equal (sends [0].holder, a->id, MESHCC_ID_SIZE);

    fetch_request_msg_t bad = request;
    bad.request_id += 1000;                         //  unknown id
    assert_int_equal (s_deliver (sim, a, &bad), -1);
    assert_int_equal (s_deliver (sim, b, &request), -1);    //  not the holder asked
    bad = request;
    bad.offset += SMALL_CHUNK;                      //  another offset
    assert_int_equal (s_deliver (sim, a, &bad), -1);
    bad = request;
    bad.hash [0] ^= 1;                              //  another object
    assert_int_equal (s_deliver (sim, a, &bad), -1);
    bad = request;
    bad.kind = FETCH_KIND_BLOB;                     //  another kind
    assert_int_equal (s_deliver (sim, a, &bad), -1);
    assert_int_equal (fetch_on_chunk (sim->fetch, a->id, NULL, sim->now), -1);
    fetch_stats_t stats;
    fetch_stats (sim->fetch, &stats);
    assert_int_equal (stats.dropped, 6);
    assert_int_equal (stats.answers, 0);
    assert_int_equal (stats.holder_failures, 0);
    assert_int_equal (fetch_in_flight (sim->fetch), 1);
    uint64_t bytes;
    bool known;
    fetch_progress (sim->fetch, &bytes, NULL, &known);
    assert_false (known);
    assert_int_equal (bytes, 0);

    assert_int_equal (s_deliver (sim, a, &request), 0);
    assert_int_equal (s_deliver (sim, a, &request), -1);    //  twice
    assert_int_equal (s_sim_run (sim, NULL, NULL), FETCH_DONE);
    fetch_stats (sim->fetch, &stats);
    assert_int_equal (stats.dropped, 7);
    //  After DONE every answer is dropped.
    assert_int_equal (s_deliver (sim, a, &request), -1);
    s_sim_destroy (&sim);
}

//  A removed holder is forgotten mid-transfer, added back, and used again.
static void
test_holder_comes_back (void **state)
{
    (void) state;
    sim_t *sim = s_sim_new (SMALL_CHUNK);
    sim_holder_t *a = s_sim_holder (sim, 1, s_fx.object_path);
    sim_holder_t *b = s_sim_holder (sim, 2, s_fx.object_path);
    uint64_t some = OBJECT_SIZE / 4;
    assert_int_equal (s_sim_run (sim, s_until_bytes, &some), FETCH_RUNNING);
    s_holder_clear (a);
    fetch_remove_holder (sim->fetch, a->id);
    fetch_remove_holder (sim->fetch, a->id);        //  twice: harmless
    uint8_t stranger [MESHCC_ID_SIZE] = { 0x77 };
    fetch_remove_holder (sim->fetch, stranger);     //  unknown: ignored
    for (int i = 0; i < 5; i++)
        s_sim_step (sim);
    size_t a_requests = a->requests;
    assert_int_equal (fetch_add_holder (sim->fetch, a->id, 1), 0);
    assert_int_equal (s_sim_run (sim, NULL, NULL), FETCH_DONE);
    assert_true (a->requests > a_requests);
    assert_true (b->answered > 0);
    s_sim_destroy (&sim);
}

//  Load changes are honoured: a holder that becomes the lightest joins
//  the serving set, the heaviest leaves it.
static void
test_load_update (void **state)
{
    (void) state;
    sim_t *sim = s_sim_new (SMALL_CHUNK);
    sim_holder_t *h [4];
    for (int i = 0; i < 4; i++)
        h [i] = s_sim_holder (sim, (uint32_t) (10 * (i + 1)), s_fx.object_path);
    uint64_t some = OBJECT_SIZE / 3;
    assert_int_equal (s_sim_run (sim, s_until_bytes, &some), FETCH_RUNNING);
    assert_int_equal (h [3]->requests, 0);
    assert_int_equal (fetch_add_holder (sim->fetch, h [3]->id, 1), 0);
    assert_int_equal (fetch_add_holder (sim->fetch, h [0]->id, 1000), 0);
    size_t first = h [0]->requests;
    for (int i = 0; i < 20; i++)
        s_sim_step (sim);
    assert_int_equal (h [0]->requests, first);
    assert_true (h [3]->requests > 0);
    assert_int_equal (s_sim_run (sim, NULL, NULL), FETCH_DONE);
    s_sim_destroy (&sim);
}

static void
test_empty_object (void **state)
{
    (void) state;
    sim_t *sim = s_sim_new (0);
    fetch_destroy (&sim->fetch);
    sim->fetch = fetch_new (FETCH_KIND_BLOB, s_fx.empty_hash, sim->part, 0);
    sim->hash = s_fx.empty_hash;
    sim->size = 0;
    s_sim_holder (sim, 0, s_fx.empty_path);
    assert_int_equal (s_sim_run (sim, NULL, NULL), FETCH_DONE);
    fetch_stats_t stats;
    fetch_stats (sim->fetch, &stats);
    assert_int_equal (stats.requests, 1);
    s_sim_destroy (&sim);
}

static void
test_api_edges (void **state)
{
    (void) state;
    char part [160];
    snprintf (part, sizeof part, "%s/edge.part", s_fx.dir);
    assert_null (fetch_new ('x', s_fx.hash, part, 0));
    char bad_path [200];
    snprintf (bad_path, sizeof bad_path, "%s/no/such/dir/part", s_fx.dir);
    assert_null (fetch_new (FETCH_KIND_TOOLCHAIN, s_fx.hash, bad_path, 0));
    fetch_t *fetch = fetch_new (FETCH_KIND_TOOLCHAIN, s_fx.hash, part, 0);
    assert_non_null (fetch);
    assert_int_equal (fetch_kind (fetch), FETCH_KIND_TOOLCHAIN);
    assert_memory_equal (fetch_hash (fetch), s_fx.hash, BLOB_HASH_SIZE);
    assert_int_equal (fetch_set_chunk_size (fetch, 100), -1);
    assert_int_equal (fetch_set_chunk_size (fetch, FETCH_CHUNK_MAX + 1), -1);
    assert_int_equal (fetch_set_chunk_size (fetch, FETCH_CHUNK_MAX), 0);
    uint8_t id [MESHCC_ID_SIZE] = { 1 };
    assert_int_equal (fetch_add_holder (fetch, id, 0), 0);
    fetch_send_t send;
    assert_int_equal (fetch_requests (fetch, 0, &send, 1), 1);
    assert_int_equal (send.request.length, FETCH_CHUNK_MAX);
    assert_int_equal (fetch_set_chunk_size (fetch, SMALL_CHUNK), -1);   //  too late
    assert_int_equal (fetch_state (fetch), FETCH_RUNNING);
    assert_int_equal (fetch_source_count (fetch), 0);
    fetch_destroy (&fetch);
    assert_null (fetch);
    fetch_destroy (&fetch);
    assert_int_not_equal (access (part, F_OK), 0);
}

//  The caller cannot reach a holder (issue 4: its link never connects):
//  fetch_fail_holder excludes it for good, its requests go to the other,
//  and with no other the fetch fails.
static void
test_fail_holder (void **state)
{
    (void) state;
    sim_t *sim = s_sim_new (SMALL_CHUNK);
    sim_holder_t *a = s_sim_holder (sim, 1, s_fx.object_path);
    sim_holder_t *b = s_sim_holder (sim, 2, s_fx.object_path);
    uint64_t half = OBJECT_SIZE / 2;
    assert_int_equal (s_sim_run (sim, s_until_bytes, &half), FETCH_RUNNING);
    assert_true (a->answered > 0);
    uint8_t unknown [MESHCC_ID_SIZE] = { 7 };
    fetch_fail_holder (sim->fetch, unknown);            //  ignored
    a->dead = true;                                     //  what it holds vanishes
    s_holder_clear (a);
    fetch_fail_holder (sim->fetch, a->id);
    size_t a_requests = a->requests;
    //  Adding it again does not readmit it (unlike a removed holder).
    assert_int_equal (fetch_add_holder (sim->fetch, a->id, 0), 0);
    sim->check_fresh = true;
    assert_int_equal (s_sim_run (sim, NULL, NULL), FETCH_DONE);
    assert_int_equal (a->requests, a_requests);
    assert_int_equal (sim->fresh_violations, 0);
    assert_true (b->bytes_served > 0);
    fetch_stats_t stats;
    fetch_stats (sim->fetch, &stats);
    assert_int_equal (stats.holder_failures, 1);
    assert_int_equal (stats.bytes_received, OBJECT_SIZE);
    s_sim_destroy (&sim);

    sim = s_sim_new (SMALL_CHUNK);
    a = s_sim_holder (sim, 1, s_fx.object_path);
    fetch_send_t sends [FETCH_WINDOW];
    assert_int_equal (fetch_requests (sim->fetch, sim->now, sends, FETCH_WINDOW), 1);
    fetch_fail_holder (sim->fetch, a->id);
    assert_int_equal (fetch_state (sim->fetch), FETCH_FAILED);
    assert_string_equal (fetch_reason (sim->fetch), "no holder left");
    assert_int_equal (fetch_in_flight (sim->fetch), 0);
    fetch_fail_holder (sim->fetch, a->id);              //  harmless when over
    s_sim_destroy (&sim);
}

//  A known size (a blob's, from the job's manifest): a holder announcing
//  more is excluded at its first answer, even when it answers first, so
//  no transfer of the wrong object is ever made.
static void
test_max_size (void **state)
{
    (void) state;
    sim_t *sim = s_sim_new (SMALL_CHUNK);
    assert_int_equal (fetch_set_max_size (sim->fetch, FETCH_OBJECT_MAX + 1), -1);
    assert_int_equal (fetch_set_max_size (sim->fetch, OBJECT_SIZE), 0);
    sim_holder_t *liar = s_sim_holder (sim, 1, s_fx.longer_path);
    sim_holder_t *good = s_sim_holder (sim, 2, s_fx.object_path);
    assert_int_equal (s_sim_run (sim, NULL, NULL), FETCH_DONE);
    assert_int_equal (liar->requests, 1);
    assert_int_equal (liar->bytes_served, SMALL_CHUNK);
    assert_int_equal (good->bytes_served, OBJECT_SIZE);
    fetch_stats_t stats;
    fetch_stats (sim->fetch, &stats);
    assert_int_equal (stats.corrupt, 0);
    assert_int_equal (stats.holder_failures, 1);
    assert_int_equal (fetch_set_max_size (sim->fetch, OBJECT_SIZE), -1);   //  too late
    s_sim_destroy (&sim);

    //  Below the real size: every holder is wrong, the fetch fails.
    sim = s_sim_new (SMALL_CHUNK);
    assert_int_equal (fetch_set_max_size (sim->fetch, OBJECT_SIZE - 1), 0);
    s_sim_holder (sim, 1, s_fx.object_path);
    assert_int_equal (s_sim_run (sim, NULL, NULL), FETCH_FAILED);
    s_sim_destroy (&sim);

    //  The empty object with a bound of 0.
    sim = s_sim_new (0);
    sim->size = 0;
    sim->hash = s_fx.empty_hash;
    fetch_destroy (&sim->fetch);
    sim->fetch = fetch_new (FETCH_KIND_BLOB, s_fx.empty_hash, sim->part, sim->now);
    assert_int_equal (fetch_set_max_size (sim->fetch, 0), 0);
    s_sim_holder (sim, 1, s_fx.empty_path);
    assert_int_equal (s_sim_run (sim, NULL, NULL), FETCH_DONE);
    s_sim_destroy (&sim);
}

//  fetch_serve_buffer answers exactly as fetch_serve_chunk does for the
//  same bytes in a file; NULL is "not held".
static void
test_serve_buffer (void **state)
{
    (void) state;
    fetch_request_msg_t request;
    memset (&request, 0, sizeof request);
    request.request_id = 7;
    request.kind = FETCH_KIND_BLOB;
    memcpy (request.hash, s_fx.hash, BLOB_HASH_SIZE);
    uint64_t offsets [] = { 0, 1000, OBJECT_SIZE - 10, OBJECT_SIZE, OBJECT_SIZE + 1, 0, 0 };
    uint32_t lengths [] = { 5000, 1, 5000, 10, 10, 0, FETCH_CHUNK_MAX + 100 };
    for (size_t i = 0; i < sizeof offsets / sizeof offsets [0]; i++) {
        request.offset = offsets [i];
        request.length = lengths [i];
        fetch_chunk_msg_t *a = fetch_serve_chunk (s_fx.object_path, &request);
        fetch_chunk_msg_t *b = fetch_serve_buffer (s_fx.object, OBJECT_SIZE, &request);
        assert_int_equal (a->status, b->status);
        assert_int_equal (a->request_id, b->request_id);
        assert_int_equal (a->kind, b->kind);
        assert_memory_equal (a->hash, b->hash, BLOB_HASH_SIZE);
        assert_int_equal (a->offset, b->offset);
        assert_int_equal (a->total, b->total);
        assert_int_equal (a->length, b->length);
        if (a->length)
            assert_memory_equal (a->data, b->data, a->length);
        else
            assert_null (b->data);
        uint8_t *frame;
        size_t size;
        assert_int_equal (fetch_wire_encode_chunk (b, &frame, &size), 0);
        free (frame);
        fetch_chunk_msg_destroy (&a);
        fetch_chunk_msg_destroy (&b);
    }
    request.offset = 0;
    request.length = 10;
    fetch_chunk_msg_t *chunk = fetch_serve_buffer (NULL, 0, &request);
    assert_int_equal (chunk->status, FETCH_STATUS_NOT_HELD);
    assert_int_equal (chunk->length + chunk->total, 0);
    fetch_chunk_msg_destroy (&chunk);
    uint8_t none = 0;
    chunk = fetch_serve_buffer (&none, 0, &request);      //  the empty blob
    assert_int_equal (chunk->status, FETCH_STATUS_OK);
    assert_int_equal (chunk->total, 0);
    assert_int_equal (chunk->length, 0);
    fetch_chunk_msg_destroy (&chunk);
}

//  fetch_serve_chunk on its own: every status, and its bounds.
static void
test_serve_chunk (void **state)
{
    (void) state;
    fetch_request_msg_t request;
    memset (&request, 0, sizeof request);
    request.request_id = 99;
    request.kind = FETCH_KIND_BLOB;
    memcpy (request.hash, s_fx.hash, BLOB_HASH_SIZE);
    request.offset = 1000;
    request.length = 5000;
    fetch_chunk_msg_t *chunk = fetch_serve_chunk (s_fx.object_path, &request);
    assert_int_equal (chunk->status, FETCH_STATUS_OK);
    assert_int_equal (chunk->request_id, 99);
    assert_int_equal (chunk->kind, FETCH_KIND_BLOB);
    assert_memory_equal (chunk->hash, s_fx.hash, BLOB_HASH_SIZE);
    assert_int_equal (chunk->offset, 1000);
    assert_int_equal (chunk->total, OBJECT_SIZE);
    assert_int_equal (chunk->length, 5000);
    assert_memory_equal (chunk->data, s_fx.object + 1000, 5000);
    fetch_chunk_msg_destroy (&chunk);
    assert_null (chunk);

    request.offset = OBJECT_SIZE - 10;              //  the end: short
    chunk = fetch_serve_chunk (s_fx.object_path, &request);
    assert_int_equal (chunk->status, FETCH_STATUS_OK);
    assert_int_equal (chunk->length, 10);
    fetch_chunk_msg_destroy (&chunk);
    request.offset = OBJECT_SIZE;                   //  exactly the end: empty
    chunk = fetch_serve_chunk (s_fx.object_path, &request);
    assert_int_equal (chunk->status, FETCH_STATUS_OK);
    assert_int_equal (chunk->length, 0);
    assert_null (chunk->data);
    fetch_chunk_msg_destroy (&chunk);
    request.offset = OBJECT_SIZE + 1;               //  past it
    chunk = fetch_serve_chunk (s_fx.object_path, &request);
    assert_int_equal (chunk->status, FETCH_STATUS_ERROR);
    assert_int_equal (chunk->length + chunk->total, 0);
    fetch_chunk_msg_destroy (&chunk);
    request.offset = 0;                             //  above the bound
    request.length = FETCH_CHUNK_MAX + 100;
    chunk = fetch_serve_chunk (s_fx.object_path, &request);
    assert_int_equal (chunk->status, FETCH_STATUS_OK);
    assert_int_equal (chunk->length, FETCH_CHUNK_MAX);
    fetch_chunk_msg_destroy (&chunk);
    request.length = 10;
    chunk = fetch_serve_chunk (s_fx.absent_path, &request);
    assert_int_equal (chunk->status, FETCH_STATUS_NOT_HELD);
    fetch_chunk_msg_destroy (&chunk);
    chunk = fetch_serve_chunk (NULL, &request);
    assert_int_equal (chunk->status, FETCH_STATUS_NOT_HELD);
    fetch_chunk_msg_destroy (&chunk);
    chunk = fetch_serve_chunk (s_fx.dir, &request);     //  a directory
    assert_int_equal (chunk->status, FETCH_STATUS_ERROR);
    fetch_chunk_msg_destroy (&chunk);
    //  Every answer encodes.
    uint8_t *frame;
    size_t size;
    chunk = fetch_serve_chunk (s_fx.dir, &request);
    assert_int_equal (fetch_wire_encode_chunk (chunk, &frame, &size), 0);
    free (frame);
    fetch_chunk_msg_destroy (&chunk);
}

//  --------------------------------------------------------------------------
//  Tests: the codec

static fetch_request_msg_t
s_request (void)
{
    fetch_request_msg_t msg;
    memset (&msg, 0, sizeof msg);
    msg.request_id = 0x0102030405060708ULL;
    msg.kind = FETCH_KIND_TOOLCHAIN;
    for (int i = 0; i < BLOB_HASH_SIZE; i++)
        msg.hash [i] = (uint8_t) (0xC0 + i);
    msg.offset = 3 * FETCH_CHUNK;
    msg.length = FETCH_CHUNK;
    return msg;
}

static fetch_chunk_msg_t
s_chunk (uint8_t *data, uint32_t length)
{
    fetch_chunk_msg_t msg;
    memset (&msg, 0, sizeof msg);
    msg.request_id = 77;
    msg.kind = FETCH_KIND_BLOB;
    for (int i = 0; i < BLOB_HASH_SIZE; i++)
        msg.hash [i] = (uint8_t) (0x11 * i);
    msg.offset = 1000;
    msg.total = 1000 + (uint64_t) length + 5;
    msg.status = FETCH_STATUS_OK;
    msg.length = length;
    msg.data = data;
    return msg;
}

static void
test_wire_round_trip (void **state)
{
    (void) state;
    fetch_request_msg_t request = s_request ();
    uint8_t *frame;
    size_t size;
    assert_int_equal (fetch_wire_encode_request (&request, &frame, &size), 0);
    assert_int_equal (size, WIRE_HEADER_SIZE + 8 + 1 + 32 + 8 + 4);
    assert_int_equal (frame [3], FETCH_WIRE_FETCH);
    assert_int_equal (frame [4], 0);
    assert_int_equal (fetch_wire_type (frame, size), FETCH_WIRE_FETCH);
    fetch_request_msg_t *request_copy = NULL;
    assert_int_equal (s_decode_request (frame, size, &request_copy), WIRE_OK);
    assert_memory_equal (request_copy, &request, sizeof request);
    fetch_request_msg_destroy (&request_copy);
    assert_null (request_copy);
    fetch_chunk_msg_t *chunk_copy = NULL;
    assert_int_equal (s_decode_chunk (frame, size, &chunk_copy), WIRE_BAD_TYPE);
    assert_null (chunk_copy);
    free (frame);

    //  A full-size chunk, and the smallest frames of each status.
    uint8_t *data = (uint8_t *) malloc (FETCH_CHUNK_MAX);
    for (size_t i = 0; i < FETCH_CHUNK_MAX; i++)
        data [i] = (uint8_t) (i * 13);
    uint32_t lengths [] = { FETCH_CHUNK_MAX, 1, 0 };
    for (size_t l = 0; l < 3; l++) {
        fetch_chunk_msg_t chunk = s_chunk (lengths [l]? data: NULL, lengths [l]);
        assert_int_equal (fetch_wire_encode_chunk (&chunk, &frame, &size), 0);
        assert_int_equal (size, WIRE_HEADER_SIZE + 8 + 1 + 32 + 8 + 8 + 1 + 4 + lengths [l]);
        assert_true (size <= FETCH_WIRE_MAX_FRAME);
        assert_int_equal (frame [4], 0);                //  never compressed
        assert_int_equal (fetch_wire_type (frame, size), FETCH_WIRE_CHUNK);
        assert_int_equal (s_decode_chunk (frame, size, &chunk_copy), WIRE_OK);
        assert_int_equal (chunk_copy->request_id, 77);
        assert_int_equal (chunk_copy->kind, FETCH_KIND_BLOB);
        assert_memory_equal (chunk_copy->hash, chunk.hash, BLOB_HASH_SIZE);
        assert_int_equal (chunk_copy->offset, 1000);
        assert_int_equal (chunk_copy->total, chunk.total);
        assert_int_equal (chunk_copy->status, FETCH_STATUS_OK);
        assert_int_equal (chunk_copy->length, lengths [l]);
        if (lengths [l])
            assert_memory_equal (chunk_copy->data, data, lengths [l]);
        else
            assert_null (chunk_copy->data);
        fetch_chunk_msg_destroy (&chunk_copy);
        assert_int_equal (s_decode_request (frame, size, &request_copy), WIRE_BAD_TYPE);
        free (frame);
    }
    fetch_status_t statuses [] = { FETCH_STATUS_NOT_HELD, FETCH_STATUS_ERROR };
    for (size_t s = 0; s < 2; s++) {
        fetch_chunk_msg_t chunk = s_chunk (NULL, 0);
        chunk.status = statuses [s];
        chunk.total = 0;
        assert_int_equal (fetch_wire_encode_chunk (&chunk, &frame, &size), 0);
        assert_int_equal (s_decode_chunk (frame, size, &chunk_copy), WIRE_OK);
        assert_int_equal (chunk_copy->status, statuses [s]);
        fetch_chunk_msg_destroy (&chunk_copy);
        free (frame);
    }
    //  The router's test.
    assert_int_equal (fetch_wire_type (NULL, 0), 0);
    uint8_t header [5] = { 'M', 'C', MESHCC_PROTO_VERSION, 21, 0 };
    assert_int_equal (fetch_wire_type (header, 5), 0);
    header [3] = 24;
    assert_int_equal (fetch_wire_type (header, 5), 0);
    header [3] = 22;
    assert_int_equal (fetch_wire_type (header, 4), 0);
    header [2] = MESHCC_PROTO_VERSION + 1;
    assert_int_equal (fetch_wire_type (header, 5), 0);
    assert_string_equal (fetch_wire_type_name (FETCH_WIRE_FETCH), "FETCH");
    assert_string_equal (fetch_wire_type_name (FETCH_WIRE_CHUNK), "CHUNK");
    assert_string_equal (fetch_wire_type_name (1), "unknown");
    free (data);
}

static void
test_wire_encoder_refusals (void **state)
{
    (void) state;
    uint8_t *frame = (uint8_t *) 1;
    size_t size = 1;
    fetch_request_msg_t request = s_request ();
    request.length = 0;
    assert_int_equal (fetch_wire_encode_request (&request, &frame, &size), -1);
    assert_null (frame);
    assert_int_equal (size, 0);
    request.length = FETCH_CHUNK_MAX + 1;
    assert_int_equal (fetch_wire_encode_request (&request, &frame, &size), -1);
    request = s_request ();
    request.kind = 'x';
    assert_int_equal (fetch_wire_encode_request (&request, &frame, &size), -1);
    request = s_request ();
    request.offset = UINT64_MAX - 5;                //  offset + length overflows
    assert_int_equal (fetch_wire_encode_request (&request, &frame, &size), -1);
    assert_int_equal (fetch_wire_encode_request (NULL, &frame, &size), -1);

    uint8_t bytes [16] = { 0 };
    fetch_chunk_msg_t chunk = s_chunk (bytes, 16);
    chunk.total = chunk.offset + 15;                //  past the total
    assert_int_equal (fetch_wire_encode_chunk (&chunk, &frame, &size), -1);
    chunk = s_chunk (bytes, 16);
    chunk.status = FETCH_STATUS_NOT_HELD;           //  data with a failure
    chunk.total = 0;
    assert_int_equal (fetch_wire_encode_chunk (&chunk, &frame, &size), -1);
    chunk = s_chunk (NULL, 0);
    chunk.status = FETCH_STATUS_ERROR;              //  total with a failure
    assert_int_equal (fetch_wire_encode_chunk (&chunk, &frame, &size), -1);
    chunk = s_chunk (NULL, 0);
    chunk.status = (fetch_status_t) 3;
    assert_int_equal (fetch_wire_encode_chunk (&chunk, &frame, &size), -1);
    chunk = s_chunk (NULL, 0);
    chunk.kind = 0;
    assert_int_equal (fetch_wire_encode_chunk (&chunk, &frame, &size), -1);
    chunk = s_chunk (NULL, 16);                     //  length without data
    assert_int_equal (fetch_wire_encode_chunk (&chunk, &frame, &size), -1);
    chunk = s_chunk (bytes, 16);
    chunk.length = FETCH_CHUNK_MAX + 1;
    chunk.total = UINT64_MAX;
    assert_int_equal (fetch_wire_encode_chunk (&chunk, &frame, &size), -1);
    assert_int_equal (fetch_wire_encode_chunk (NULL, &frame, &size), -1);
    assert_null (frame);
}

//  Writes a big-endian field into a frame.
static void
s_patch (uint8_t *frame, size_t at, uint64_t value, size_t bytes)
{
    for (size_t i = 0; i < bytes; i++)
        frame [at + i] = (uint8_t) (value >> (8 * (bytes - 1 - i)));
}

//  Payload offsets (after the 5-byte header).
#define AT_KIND         (WIRE_HEADER_SIZE + 8)
#define AT_OFFSET       (AT_KIND + 1 + BLOB_HASH_SIZE)
#define AT_REQ_LENGTH   (AT_OFFSET + 8)
#define AT_TOTAL        (AT_OFFSET + 8)
#define AT_STATUS       (AT_TOTAL + 8)
#define AT_CHUNK_LENGTH (AT_STATUS + 1)

static void
test_wire_bad_frames (void **state)
{
    (void) state;
    fetch_request_msg_t request = s_request ();
    uint8_t *good;
    size_t size;
    assert_int_equal (fetch_wire_encode_request (&request, &good, &size), 0);
    uint8_t frame [128];
    fetch_request_msg_t *request_copy = NULL;
    struct { size_t at; uint64_t value; size_t bytes; wire_error_t error; } request_cases [] = {
        { 0, 'X', 1, WIRE_BAD_MAGIC },
        { 2, MESHCC_PROTO_VERSION + 1, 1, WIRE_BAD_VERSION },
        { 3, 16, 1, WIRE_BAD_TYPE },
        { 3, 24, 1, WIRE_BAD_TYPE },
        { 4, 0x02, 1, WIRE_MALFORMED },                 //  unknown flag
        { 4, 0x01, 1, WIRE_OVERSIZED },                 //  "compressed": raw size 0x01020304
        { AT_KIND, 'x', 1, WIRE_MALFORMED },
        { AT_REQ_LENGTH, 0, 4, WIRE_MALFORMED },
        { AT_REQ_LENGTH, FETCH_CHUNK_MAX + 1, 4, WIRE_OVERSIZED },
        { AT_REQ_LENGTH, UINT32_MAX, 4, WIRE_OVERSIZED },
        { AT_OFFSET, UINT64_MAX, 8, WIRE_MALFORMED },   //  offset + length overflows
    };
    for (size_t i = 0; i < sizeof request_cases / sizeof request_cases [0]; i++) {
        memcpy (frame, good, size);
        s_patch (frame, request_cases [i].at, request_cases [i].value, request_cases [i].bytes);
        wire_error_t error = s_decode_request (frame, size, &request_copy);
        if (error != request_cases [i].error)
            fail_msg ("request case %zu: %s", i, wire_error_name (error));
        assert_null (request_copy);
    }
    //  Trailing byte; the largest offset that does not overflow is fine.
    memcpy (frame, good, size);
    frame [size] = 0;
    assert_int_equal (s_decode_request (frame, size + 1, &request_copy), WIRE_MALFORMED);
    s_patch (frame, AT_OFFSET, UINT64_MAX - FETCH_CHUNK, 8);
    assert_int_equal (s_decode_request (frame, size, &request_copy), WIRE_OK);
    fetch_request_msg_destroy (&request_copy);
    free (good);

    uint8_t bytes [16];
    memset (bytes, 0xEE, sizeof bytes);
    fetch_chunk_msg_t chunk = s_chunk (bytes, 16);
    assert_int_equal (fetch_wire_encode_chunk (&chunk, &good, &size), 0);
    assert_true (size + 1 <= sizeof frame);
    fetch_chunk_msg_t *chunk_copy = NULL;
    struct { size_t at; uint64_t value; size_t bytes; wire_error_t error; } chunk_cases [] = {
        { AT_KIND, 't' + 1, 1, WIRE_MALFORMED },
        { AT_STATUS, 3, 1, WIRE_MALFORMED },
        { AT_STATUS, FETCH_STATUS_NOT_HELD, 1, WIRE_MALFORMED },    //  with data
        { AT_TOTAL, 1000 + 15, 8, WIRE_MALFORMED },                 //  past total
        { AT_TOTAL, 0, 8, WIRE_MALFORMED },
        { AT_OFFSET, UINT64_MAX - 3, 8, WIRE_MALFORMED },           //  overflow
        { AT_CHUNK_LENGTH, 17, 4, WIRE_TRUNCATED },
        { AT_CHUNK_LENGTH, 15, 4, WIRE_MALFORMED },                 //  trailing byte
        { AT_CHUNK_LENGTH, FETCH_CHUNK_MAX + 1, 4, WIRE_OVERSIZED },
        { AT_CHUNK_LENGTH, UINT32_MAX, 4, WIRE_OVERSIZED },
    };
    for (size_t i = 0; i < sizeof chunk_cases / sizeof chunk_cases [0]; i++) {
        memcpy (frame, good, size);
        s_patch (frame, chunk_cases [i].at, chunk_cases [i].value, chunk_cases [i].bytes);
        wire_error_t error = s_decode_chunk (frame, size, &chunk_copy);
        if (error != chunk_cases [i].error)
            fail_msg ("chunk case %zu: %s", i, wire_error_name (error));
        assert_null (chunk_copy);
    }
    //  A failure status with a total; a failure with neither is fine.
    memcpy (frame, good, size);
    s_patch (frame, AT_STATUS, FETCH_STATUS_ERROR, 1);
    s_patch (frame, AT_CHUNK_LENGTH, 0, 4);
    size_t bare = AT_CHUNK_LENGTH + 4;
    assert_int_equal (s_decode_chunk (frame, bare, &chunk_copy), WIRE_MALFORMED);
    s_patch (frame, AT_TOTAL, 0, 8);
    assert_int_equal (s_decode_chunk (frame, bare, &chunk_copy), WIRE_OK);
    assert_int_equal (chunk_copy->status, FETCH_STATUS_ERROR);
    fetch_chunk_msg_destroy (&chunk_copy);
    free (good);

    //  A frame over the bound is refused before it is looked at.
    size_t huge = FETCH_WIRE_MAX_FRAME + 1;
    uint8_t *big = (uint8_t *) calloc (1, huge);
    memcpy (big, "MC", 2);
    big [2] = MESHCC_PROTO_VERSION;
    big [3] = FETCH_WIRE_CHUNK;
    assert_int_equal (fetch_wire_decode_chunk (big, huge, &chunk_copy), WIRE_OVERSIZED);
    big [3] = FETCH_WIRE_FETCH;
    assert_int_equal (fetch_wire_decode_request (big, huge, &request_copy), WIRE_OVERSIZED);
    free (big);
    assert_int_equal (fetch_wire_decode_chunk (NULL, 0, &chunk_copy), WIRE_TRUNCATED);
}

//  A CHUNK frame compressed by hand (the encoder never compresses; the
//  decoder accepts it like every meshcc decoder), raw size declared.
static uint8_t *
s_compressed_chunk (size_t *size_p, uint32_t declared_extra)
{
    uint8_t *data = (uint8_t *) calloc (1, 2000);
    fetch_chunk_msg_t chunk = s_chunk (data, 2000);
    uint8_t *plain;
    size_t plain_size;
    assert_int_equal (fetch_wire_encode_chunk (&chunk, &plain, &plain_size), 0);
    free (data);
    size_t raw = plain_size - WIRE_HEADER_SIZE;
    size_t bound = ZSTD_compressBound (raw);
    uint8_t *frame = (uint8_t *) malloc (WIRE_HEADER_SIZE + 4 + bound);
    size_t packed = ZSTD_compress (frame + WIRE_HEADER_SIZE + 4, bound,
                                   plain + WIRE_HEADER_SIZE, raw, 1);
    assert_false (ZSTD_isError (packed));
    memcpy (frame, plain, WIRE_HEADER_SIZE);
    frame [4] = WIRE_FLAG_ZSTD;
    s_patch (frame, WIRE_HEADER_SIZE, raw + declared_extra, 4);
    free (plain);
    *size_p = WIRE_HEADER_SIZE + 4 + packed;
    return frame;
}

static void
test_wire_compressed (void **state)
{
    (void) state;
    size_t size;
    uint8_t *frame = s_compressed_chunk (&size, 0);
    fetch_chunk_msg_t *chunk = NULL;
    assert_int_equal (s_decode_chunk (frame, size, &chunk), WIRE_OK);
    assert_int_equal (chunk->length, 2000);
    fetch_chunk_msg_destroy (&chunk);
    free (frame);
    frame = s_compressed_chunk (&size, 1);          //  declared size is wrong
    assert_int_not_equal (s_decode_chunk (frame, size, &chunk), WIRE_OK);
    assert_null (chunk);
    free (frame);
    frame = s_compressed_chunk (&size, FETCH_WIRE_MAX_FRAME);  //  a bomb
    assert_int_equal (s_decode_chunk (frame, size, &chunk), WIRE_OVERSIZED);
    free (frame);
}

//  Every truncation, seeded mutations and random frames: never a crash,
//  a leak, or an OK that does not re-encode to the same bytes.
static void
test_wire_fuzz (void **state)
{
    (void) state;
    uint8_t *samples [5];
    size_t sizes [5];
    bool is_chunk [5] = { false, true, true, true, true };
    fetch_request_msg_t request = s_request ();
    assert_int_equal (fetch_wire_encode_request (&request, &samples [0], &sizes [0]), 0);
    uint8_t bytes [300];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes [i] = (uint8_t) i;
    fetch_chunk_msg_t chunk = s_chunk (bytes, sizeof bytes);
    assert_int_equal (fetch_wire_encode_chunk (&chunk, &samples [1], &sizes [1]), 0);
    chunk = s_chunk (NULL, 0);
    assert_int_equal (fetch_wire_encode_chunk (&chunk, &samples [2], &sizes [2]), 0);
    chunk.status = FETCH_STATUS_NOT_HELD;
    chunk.total = 0;
    assert_int_equal (fetch_wire_encode_chunk (&chunk, &samples [3], &sizes [3]), 0);
    samples [4] = s_compressed_chunk (&sizes [4], 0);

    uint64_t seed = 2024;
    size_t decoded = 0;
    for (int s = 0; s < 5; s++) {
        for (size_t length = 0; length < sizes [s]; length++) {
            fetch_request_msg_t *request_copy = NULL;
            fetch_chunk_msg_t *chunk_copy = NULL;
            assert_int_not_equal (s_decode_request (samples [s], length, &request_copy), WIRE_OK);
            assert_int_not_equal (s_decode_chunk (samples [s], length, &chunk_copy), WIRE_OK);
            assert_null (request_copy);
            assert_null (chunk_copy);
        }
        uint8_t *work = (uint8_t *) malloc (sizes [s]);
        for (int round = 0; round < MUTATIONS; round++) {
            memcpy (work, samples [s], sizes [s]);
            size_t length = sizes [s];
            int edits = 1 + (int) (s_rand (&seed) % 4);
            for (int e = 0; e < edits; e++) {
                size_t at = (size_t) (s_rand (&seed) % length);
                switch (s_rand (&seed) % 4) {
                    case 0: work [at] = (uint8_t) s_rand (&seed); break;
                    case 1: work [at] ^= (uint8_t) (1u << (s_rand (&seed) % 8)); break;
                    case 2: length = at + 1; break;
                    //  Mostly the fields: lengths, statuses, offsets.
                    case 3: work [WIRE_HEADER_SIZE + s_rand (&seed) % (length > 70? 65: 1)]
                                = (uint8_t) s_rand (&seed); break;
                }
                if (length > sizes [s])
                    length = sizes [s];
            }
            uint8_t *frame;
            size_t frame_size;
            if (is_chunk [s]) {
                fetch_chunk_msg_t *copy = NULL;
                if (s_decode_chunk (work, length, &copy) == WIRE_OK) {
                    decoded++;
                    assert_non_null (copy);
                    assert_true (copy->length <= FETCH_CHUNK_MAX);
                    assert_int_equal (fetch_wire_encode_chunk (copy, &frame, &frame_size), 0);
                    if (work [4] == 0) {
                        assert_int_equal (frame_size, length);
                        assert_memory_equal (frame, work, length);
                    }
                    free (frame);
                    fetch_chunk_msg_destroy (&copy);
                }
                else
                    assert_null (copy);
            }
            else {
                fetch_request_msg_t *copy = NULL;
                if (s_decode_request (work, length, &copy) == WIRE_OK) {
                    decoded++;
                    assert_int_equal (fetch_wire_encode_request (copy, &frame, &frame_size), 0);
                    if (work [4] == 0) {
                        assert_int_equal (frame_size, length);
                        assert_memory_equal (frame, work, length);
                    }
                    free (frame);
                    fetch_request_msg_destroy (&copy);
                }
                else
                    assert_null (copy);
            }
        }
        free (work);
        free (samples [s]);
    }
    assert_true (decoded > 0);
    for (int round = 0; round < RANDOM_FRAMES; round++) {
        uint8_t frame [128];
        size_t length = (size_t) (s_rand (&seed) % sizeof frame);
        for (size_t i = 0; i < length; i++)
            frame [i] = (uint8_t) s_rand (&seed);
        if (length >= WIRE_HEADER_SIZE && round % 2) {
            frame [0] = 'M';
            frame [1] = 'C';
            frame [2] = MESHCC_PROTO_VERSION;
            frame [3] = (uint8_t) (FETCH_WIRE_TYPE_FIRST + s_rand (&seed) % 2);
            frame [4] = (uint8_t) (s_rand (&seed) % 2);
        }
        fetch_request_msg_t *request_copy = NULL;
        fetch_chunk_msg_t *chunk_copy = NULL;
        if (s_decode_request (frame, length, &request_copy) == WIRE_OK)
            fetch_request_msg_destroy (&request_copy);
        if (s_decode_chunk (frame, length, &chunk_copy) == WIRE_OK)
            fetch_chunk_msg_destroy (&chunk_copy);
        assert_null (request_copy);
        assert_null (chunk_copy);
    }
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_selftest),
        cmocka_unit_test (test_single_holder),
        cmocka_unit_test (test_credit),
        cmocka_unit_test (test_parallel_holders),
        cmocka_unit_test (test_fast_holder_gets_more),
        cmocka_unit_test (test_holder_dies),
        cmocka_unit_test (test_last_holder_dies),
        cmocka_unit_test (test_no_holder),
        cmocka_unit_test (test_timeout),
        cmocka_unit_test (test_timeout_only_holder),
        cmocka_unit_test (test_corrupt_holder),
        cmocka_unit_test (test_corrupt_sole_server),
        cmocka_unit_test (test_corrupt_only_holder),
        cmocka_unit_test (test_not_held),
        cmocka_unit_test (test_wrong_size_holder),
        cmocka_unit_test (test_wrong_size_first),
        cmocka_unit_test (test_short_answers),
        cmocka_unit_test (test_empty_answer_refused),
        cmocka_unit_test (test_dropped_answers),
        cmocka_unit_test (test_holder_comes_back),
        cmocka_unit_test (test_load_update),
        cmocka_unit_test (test_empty_object),
        cmocka_unit_test (test_api_edges),
        cmocka_unit_test (test_serve_chunk),
        cmocka_unit_test (test_fail_holder),
        cmocka_unit_test (test_max_size),
        cmocka_unit_test (test_serve_buffer),
        cmocka_unit_test (test_wire_round_trip),
        cmocka_unit_test (test_wire_encoder_refusals),
        cmocka_unit_test (test_wire_bad_frames),
        cmocka_unit_test (test_wire_compressed),
        cmocka_unit_test (test_wire_fuzz),
    };
    return cmocka_run_group_tests (tests, s_group_setup, s_group_teardown);
}
