//  fetch: getting one content-addressed object (a toolchain archive, or a
//  blob) from whichever nodes hold it, in chunks, with credit-based flow
//  control, into a part file, verified by its BLAKE2b-256 before anyone may
//  use it. A pure state machine like gossip: no sockets, threads or clock
//  of its own (time arrives as `now_ms`, requests go out and answers come
//  in as fetch_wire.h values); its only I/O is the part file it owns
//  (pwrite of each chunk, one streaming hash at the end). Holders are
//  opaque node ids: it never knows endpoints, gossip or the stores. Also
//  holds the holder side's helpers, fetch_serve_chunk and
//  fetch_serve_buffer, which answer a FETCH from a file or from memory.
//  See fetch.c for the rules in detail.
//
//  Protocol, in short. The fetcher holds FETCH_WINDOW credits; each FETCH
//  (a request for one chunk: FETCH_CHUNK bytes at a multiple of
//  FETCH_CHUNK, or the rest of it after a short answer) spends one;
//  its CHUNK, its timeout, or the loss of its holder returns it. A holder
//  is stateless: it answers every FETCH with exactly one CHUNK and never
//  sends unasked, so what a fetcher makes it read and queue is bounded by
//  the window. The first request (offset 0) goes alone: its answer gives
//  the object's size, and the rest is then requested in parallel.
//
//  Holder choice. Usable holders are ranked by load (lowest first, ties by
//  id); the best FETCH_HOLDERS_PARALLEL of them serve together, each new
//  request going to the one with the fewest requests in flight, so a fast
//  holder, returning credits sooner, gets more of the object. A holder that
//  answers "not held" or "error", reports another size than the first
//  answer, answers nothing for FETCH_TIMEOUT_MS, or is removed
//  (fetch_remove_holder: it died or left) stops being used, and its
//  requests go back to the queue: the fetch continues from the others at
//  the offsets still missing. When the whole object has arrived and does
//  not hash to its name, the fetch starts again from zero; the holders
//  that served it are suspects, used only when no other holder is, and
//  from then on
//  one holder serves each attempt so that the next mismatch names the
//  culprit, which is then excluded if any other holder remains. After
//  FETCH_MAX_ATTEMPTS mismatches, or with no usable holder left, the
//  fetch fails.

#ifndef MESHCC_FETCH_H_INCLUDED
#define MESHCC_FETCH_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "meshcc/blob_store.h"
#include "meshcc/fetch_wire.h"
#include "meshcc/limits.h"

//  Limits of this module. (They belong in limits.h with the others; they
//  are here until that header can be changed.)
//
//  Bytes asked for by one request. 1 MiB: a toolchain archive (~27 MB for
//  gcc-12) is a few dozen requests, so per-request costs (a frame, an open
//  and pread at the holder, a pwrite here) are noise, while one chunk is
//  small next to the 64 MiB job frame bound and quick to re-send when its
//  holder is lost.
#define FETCH_CHUNK                 (1024 * 1024)
//  The most one FETCH may ask for and one CHUNK may carry: the decoder's
//  bound and what one request can make a holder read into memory. Four
//  times FETCH_CHUNK, so a later build may use bigger chunks and still
//  talk to this one.
#define FETCH_CHUNK_MAX             (4 * 1024 * 1024)
//  The smallest chunk fetch_set_chunk_size accepts: bounds the chunk table
//  of a FETCH_OBJECT_MAX object to 65536 entries.
#define FETCH_CHUNK_MIN             (64 * 1024)
//  A FETCH or CHUNK frame: the chunk plus its fixed fields, with room.
#define FETCH_WIRE_MAX_FRAME        (FETCH_CHUNK_MAX + 1024)
//  Requests in flight per fetch (the credits). 8 MiB in flight covers the
//  bandwidth-delay product of a 10 Gbit/s link at ~6 ms, far above a LAN's,
//  while bounding what one fetcher queues at its holders.
#define FETCH_WINDOW                8
//  Holders serving one fetch at once: spreads the upload over a few
//  lightly loaded nodes (8 nodes fetching a new toolchain do not all draw
//  from the origin) without scattering one object over the whole mesh.
#define FETCH_HOLDERS_PARALLEL      3
//  A request unanswered this long marks its holder failed for the fetch.
//  With the whole window queued at one holder, 10 s is ~6 Mbit/s: only a
//  dead, wedged or hopelessly overloaded holder is that slow on a LAN.
#define FETCH_TIMEOUT_MS            10000
//  Whole transfers that may fail the hash before the fetch gives up: one
//  with several sources, one naming a corrupt holder, one more from a good
//  holder. Each costs the whole object's bytes.
#define FETCH_MAX_ATTEMPTS          3
//  Largest object a holder may announce (a bigger one is that holder
//  being wrong): toolchain archives are 30-100 MB; this only stops a
//  hostile holder from making us write a huge file.
#define FETCH_OBJECT_MAX            (4ULL * 1024 * 1024 * 1024)
//  Holders one fetch remembers: at most a mesh's worth.
#define FETCH_HOLDERS_MAX           GOSSIP_MAX_MEMBERS

typedef struct _fetch_t fetch_t;

typedef enum {
    FETCH_RUNNING,
    FETCH_DONE,                     //  every byte arrived and the hash matched
    FETCH_FAILED                    //  see fetch_reason
} fetch_state_t;

//  One request to send: encode `request` with fetch_wire_encode_request
//  and send it to node `holder`.
typedef struct {
    uint8_t holder [MESHCC_ID_SIZE];
    fetch_request_msg_t request;
} fetch_send_t;

typedef struct {
    uint64_t requests;              //  FETCHes issued
    uint64_t answers;               //  CHUNKs accepted (any status)
    uint64_t dropped;               //  CHUNKs matching no request in flight:
                                    //  unknown or expired id, another holder,
                                    //  offset, kind or hash, or not running
    uint64_t timeouts;              //  requests that expired
    uint64_t holder_failures;       //  holders excluded (any reason)
    uint64_t corrupt;               //  transfers that failed the hash
    uint64_t bytes_received;        //  chunk bytes written, over all attempts
    int64_t  started_ms;
    int64_t  finished_ms;           //  when DONE or FAILED, else 0
} fetch_stats_t;

//  A fetch of the object of `kind` (FETCH_KIND_*) named `hash` into
//  `part_path` (created or truncated, mode 0600; the caller renames it
//  once the fetch is DONE). Returns NULL (errno set) if the file cannot be
//  opened or kind is unknown.
fetch_t *fetch_new (char kind, const uint8_t hash [BLOB_HASH_SIZE], const char *part_path,
                    int64_t now_ms);
//  Closes the part file, and removes it unless the fetch is DONE.
void     fetch_destroy (fetch_t **self_p);

//  Adds a holder known to have the object, or updates its load (lower is
//  better: the caller's measure, e.g. gossiped jobs per slot × 1000).
//  A removed holder becomes usable again; one that failed this fetch
//  stays excluded. Returns 0, or -1 beyond FETCH_HOLDERS_MAX.
int      fetch_add_holder (fetch_t *self, const uint8_t id [MESHCC_ID_SIZE], uint32_t load);
//  The holder died or left: its requests go back to the queue. Unknown
//  ids are ignored. With no usable holder left the fetch fails.
void     fetch_remove_holder (fetch_t *self, const uint8_t id [MESHCC_ID_SIZE]);
//  The caller could not reach the holder (its requests could not be
//  sent): it is excluded for this fetch like one that timed out, and its
//  requests go back to the queue. Unknown ids are ignored. With no usable
//  holder left the fetch fails.
void     fetch_fail_holder (fetch_t *self, const uint8_t id [MESHCC_ID_SIZE]);

//  Fills `out` with at most `max` requests to send now, as many as the
//  credit allows (never more than FETCH_WINDOW in flight), and returns
//  how many. Fails the fetch if it has no usable holder (so add holders
//  first).
size_t   fetch_requests (fetch_t *self, int64_t now_ms, fetch_send_t *out, size_t max);

//  An answer from node `holder`. Returns 0 if it answered a request in
//  flight (whatever its status), -1 if it was dropped (and counted). May
//  finish the fetch: when the last byte arrives it hashes the part file
//  (streaming, about 1 GB/s of BLAKE2b: tens of ms for a toolchain), then
//  is DONE or starts again. A write error fails the fetch.
int      fetch_on_chunk (fetch_t *self, const uint8_t holder [MESHCC_ID_SIZE],
                         const fetch_chunk_msg_t *chunk, int64_t now_ms);

//  Expires requests older than FETCH_TIMEOUT_MS, failing their holders;
//  returns how many expired. Call it at least every second or so, or at
//  fetch_deadline.
size_t   fetch_tick (fetch_t *self, int64_t now_ms);
//  When the oldest request in flight expires, or -1 if none is in flight.
int64_t  fetch_deadline (fetch_t *self);

fetch_state_t fetch_state (fetch_t *self);
//  Why the fetch failed ("no holder left", "hash mismatch after 3
//  transfers", "write ...: No space left on device"), else "".
const char   *fetch_reason (fetch_t *self);
//  Bytes of the current transfer received so far, and the object's size
//  (0 until the first answer says it: check *total_known).
void          fetch_progress (fetch_t *self, uint64_t *bytes, uint64_t *total, bool *total_known);
//  Distinct holders that served bytes to this fetch (over all transfers).
size_t        fetch_source_count (fetch_t *self);
//  Requests in flight now (the credits spent).
size_t        fetch_in_flight (fetch_t *self);
void          fetch_stats (fetch_t *self, fetch_stats_t *stats);
char          fetch_kind (fetch_t *self);
const uint8_t *fetch_hash (fetch_t *self);

//  Tuning and tests: bytes per chunk (FETCH_CHUNK_MIN..FETCH_CHUNK_MAX)
//  instead of FETCH_CHUNK. Only before the first fetch_requests; returns
//  0 or -1.
int           fetch_set_chunk_size (fetch_t *self, uint32_t size);
//  The largest size a holder may announce for this object, when the
//  caller knows it (a job's manifest gives each blob's size): an answer
//  announcing more fails its holder, as one above FETCH_OBJECT_MAX does.
//  Only before the first fetch_requests; returns 0 or -1.
int           fetch_set_max_size (fetch_t *self, uint64_t max);

//  The holder side: the CHUNK answering `request` from the file at `path`
//  (NULL or absent: "not held"; not a regular file or unreadable:
//  "error"; offset past the end: "error"), with at most the requested
//  length and FETCH_CHUNK_MAX bytes, read with pread. Never NULL. Blocks
//  on one file read: a node calls it from a worker thread.
fetch_chunk_msg_t *fetch_serve_chunk (const char *path, const fetch_request_msg_t *request);
//  The same from an object in memory (a blob the caller read from its
//  store): `data` NULL is "not held"; the same range rules as above.
fetch_chunk_msg_t *fetch_serve_buffer (const uint8_t *data, size_t size,
                                       const fetch_request_msg_t *request);

void fetch_test (bool verbose);

#endif
