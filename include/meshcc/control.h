//  control: the local protocol between the `meshcc` CLI and its node, over
//  the ipc socket in the data directory (CONTROL_SOCKET_NAME; the data
//  directory is mode 0700, so only its owner can connect). Owns the
//  command names and field names shared by both sides; no code beyond
//  that. One request, one reply:
//
//    request:  one frame, the command ("MEMBERS" or "STATUS")
//    reply:    "OK", then one frame per record, each a zhash_pack()ed map
//              of field name -> text value (MEMBERS: one per member,
//              STATUS: one); or "ERROR" and a message frame.
//
//  Compiling (issue 3) is not on this socket: the wrapper talks to the node
//  over a plain Unix stream socket, DIR/compile.sock (COMPILE_SOCKET_NAME,
//  mode 0600 in the 0700 data directory), so that it needs neither czmq
//  nor libzmq (loading them costs more than the 1 ms a local job may add).
//  One connection per job. Every message is
//
//    u32 big-endian N, then N bytes (N <= COMPILE_REQUEST_MAX for a
//    request, CONTROL_REPLY_MAX for a reply): the fields, each a u32
//    big-endian length and that many bytes.
//
//    request:  "COMPILE", cwd, argv, envp, compiler, umask
//              argv and envp are each one field of NUL-terminated strings
//              back to back (argv[0] as the user gave it, e.g. "gcc");
//              envp is the wrapper's whole environment; compiler is the
//              absolute path of the real compiler the wrapper resolved
//              (never meshcc itself); umask is the wrapper's umask in
//              octal text ("022"), so that outputs get the modes a direct
//              run gives. cwd and compiler are absolute.
//    reply:    "LOCAL"
//              a local slot is the job's: the wrapper execs the real
//              compiler itself, exactly as a direct run, and the process
//              keeps this connection open across exec (no FD_CLOEXEC).
//              The slot is busy until the node sees end of file, i.e.
//              until the compiler and everything it started have exited.
//          or  "RESULT", status, stdout, stderr, where
//              the job ran on a peer (outputs already written atomically):
//              status is the compiler's exit status as decimal text (the
//              answer, errors included); stdout/stderr its output bytes;
//              where the executing peer's name (for MESHCC_VERBOSE).
//          or  "FALLBACK", reason
//              the mesh could not run it (no slot anywhere and the queue
//              is full, peer died, timeout, refusal, malformed request…):
//              the wrapper compiles locally itself; no output was written.
//    The reply may come much later (a queued job). A connection closed
//    before its reply cancels the job: nothing is answered or, for a job
//    already out, the answer is dropped. The node closes the connection
//    after a RESULT or FALLBACK; a wrapper that sees end of file instead of
//    a reply (the node died) compiles locally.
//
//  "STATS" returns one zhash record like STATUS, for `meshcc stats`.
//  Stats fields (all numbers; counts since the node started, times in µs):
//    jobs_local               compiled in a local slot for our wrapper
//                             (counted when the slot's connection closes)
//    jobs_remote              compiled by a peer for us (compiler errors
//                             included: they are answers)
//    jobs_executed_for_peers  run here for peers, RESULT sent
//    jobs_failed_for_peers    run here for peers, RESULT with a failure
//    jobs_refused_for_peers   REFUSED at once (full, unavailable, identity)
//    jobs_queued              jobs that waited in our queue for a slot
//    jobs_retried             placements after a refusal, loss or failure
//    refusals_received        REFUSED received from peers
//    fallbacks                FALLBACK replies to wrappers, and by reason:
//      fallback_busy              queue full ("mesh busy")
//      fallback_no_peer           no slot here, no peer offers any
//      fallback_queue_timeout     waited ORIGIN_QUEUE_TIMEOUT_MS
//      fallback_timeout           a peer did not answer / finish in time
//      fallback_refused           PLACEMENT_MAX_TRIES peers refused/failed
//      fallback_peer_lost         the peer died or left with the job
//      fallback_peer_failure      the peer could not run it (sandbox...)
//      fallback_not_distributable the command cannot run elsewhere
//      fallback_listing           the input listing failed
//      fallback_too_large         a job or output above the frame bound
//      fallback_output            outputs could not be written / unexpected
//      fallback_error             anything else (bad request, no store)
//    blobs_sent blob_bytes_sent   inputs sent to peers (raw bytes)
//    blobs_received blob_bytes_received  inputs stored here for peers
//    input_store_hits         inputs already in our blob store at listing
//    input_store_misses       inputs read and stored at listing
//    hash_cache_hits          input hashes answered by the hash cache
//    hash_cache_misses        inputs hashed from their content
//    dropped_unknown_job      job messages for ids we do not hold
//    listings_reused          listings taken from the listing cache (no -M
//                             run: no listed file changed, none shadowed)
//    listing_cache_entries listing_cache_stale listing_cache_not_kept
//                             the cache now; entries dropped because a file
//                             changed; listings not kept (files too new)
//    <phase>_us_total <phase>_count mean_<phase>_us, for each phase:
//      listing   the input listing with hashing (inputs_manifest)
//      hashing   compiler identity + storing new inputs in the blob store
//      transfer  JOB sent to RESULT received, less the peer's set-up and
//                compile (so: encoding, network, blob round trips)
//      queue     time jobs waited in our queue
//      compile   the compiler's run (local, or the peer's compile_us)
//      setup     the peer's job root and sandbox set-up (fetch + setup)
//    running_local running_for_peers queued in_flight jobs_open
//                             what is happening now
//    sent_to_<peer name>      jobs sent to that peer
//  STATUS also has: executor ("available" or "unavailable: <why>": this
//  node refuses peers' jobs), running_local, running_for_peers,
//  dropped_unknown_job, toolchains_held (archives here) and
//  toolchain_transfers ("none", or per fetch in progress "HEX16 BYTES/TOTAL
//  bytes from N holder(s)", "; " between them).
//  STATS also has: toolchains_held toolchains_packaged toolchains_fetched
//  toolchain_fetch_failures toolchain_chunks_served; and for job input
//  blobs fetched from the holders a JOB names (issue 4):
//    blobs_fetched_from_peers blob_bytes_fetched_from_peers
//                             blobs stored here after a fetch (from any
//                             holder, the origin included), raw bytes
//    blob_fetch_failures      fetches that failed (their jobs then asked
//                             the origin with NEED)
//    blob_chunks_served       FETCHes of blobs this node answered with bytes
//    blob_fetches_running blob_fetches_queued   fetches now

//  Values are text; control_field_is_text() says which fields are text in
//  JSON output (all others are numbers).
//
//  This header is included by the wrapper, which links only libc: it must
//  stay free of czmq and libzmq.

#ifndef MESHCC_CONTROL_H_INCLUDED
#define MESHCC_CONTROL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CONTROL_COMPILE     "COMPILE"
#define CONTROL_LOCAL       "LOCAL"
#define CONTROL_RESULT      "RESULT"
#define CONTROL_FALLBACK    "FALLBACK"
#define CONTROL_STATS       "STATS"
//  TOOLCHAINS (control socket, like STATS): one record per toolchain in
//  the node's registry: hash (hex), compiler, compiler_version, target, size
//  (archive bytes), created, last_used (ms since the epoch), holders
//  (names of the members gossiping it, "self" first when this node holds
//  it, comma-separated), here ("yes"/"no": the archive is on this node).
#define CONTROL_TOOLCHAINS  "TOOLCHAINS"

//  Fields of a COMPILE request, and the most any compile message has.
#define CONTROL_COMPILE_FIELDS  6
#define CONTROL_MAX_FIELDS      8
//  A reply larger than this is malformed (the node bounds a compiler's
//  stdout and stderr far lower; this only stops a broken reply from
//  costing unbounded memory).
#define CONTROL_REPLY_MAX       (256U * 1024 * 1024)

//  The compile channel's codec (above): pure, shared by both ends.
typedef struct {
    const uint8_t *data;
    size_t size;
} control_field_t;

static inline void
control_put_u32 (uint8_t *at, uint32_t value)
{
    at [0] = (uint8_t) (value >> 24);
    at [1] = (uint8_t) (value >> 16);
    at [2] = (uint8_t) (value >> 8);
    at [3] = (uint8_t) value;
}

static inline uint32_t
control_get_u32 (const uint8_t *at)
{
    return (uint32_t) at [0] << 24 | (uint32_t) at [1] << 16
         | (uint32_t) at [2] << 8 | (uint32_t) at [3];
}

//  A whole message (length prefix included) of `count` fields, in a new
//  buffer (caller frees); its size in *size_p. NULL if it would not fit
//  the u32 prefix.
static inline uint8_t *
control_message_new (int count, const void *const data [], const size_t sizes [],
                     size_t *size_p)
{
    size_t body = 0;
    for (int i = 0; i < count; i++) {
        if (sizes [i] > UINT32_MAX - 4 || body > UINT32_MAX - 4 - sizes [i])
            return NULL;
        body += 4 + sizes [i];
    }
    uint8_t *message = (uint8_t *) malloc (4 + body);
    if (!message)
        abort ();
    control_put_u32 (message, (uint32_t) body);
    uint8_t *at = message + 4;
    for (int i = 0; i < count; i++) {
        control_put_u32 (at, (uint32_t) sizes [i]);
        if (sizes [i])
            memcpy (at + 4, data [i], sizes [i]);
        at += 4 + sizes [i];
    }
    *size_p = 4 + body;
    return message;
}

//  Splits a message body (after the length prefix) into at most `max`
//  fields pointing into it. Returns the count, or -1 if the lengths do not
//  add up exactly or there are more than `max` fields.
static inline int
control_fields_parse (const uint8_t *body, size_t size, control_field_t *fields, int max)
{
    int count = 0;
    size_t at = 0;
    while (at < size) {
        if (count >= max || size - at < 4)
            return -1;
        uint32_t length = control_get_u32 (body + at);
        at += 4;
        if (length > size - at)
            return -1;
        fields [count].data = body + at;
        fields [count].size = length;
        count++;
        at += length;
    }
    return count;
}

static inline bool
control_field_is (const control_field_t *field, const char *text)
{
    size_t length = strlen (text);
    return field->size == length && memcmp (field->data, text, length) == 0;
}

#define CONTROL_MEMBERS     "MEMBERS"
#define CONTROL_STATUS      "STATUS"
#define CONTROL_OK          "OK"
#define CONTROL_ERROR       "ERROR"

//  Member fields (MEMBERS), in display order:
//    id            32 hex digits
//    name          node name
//    addr          IP:PORT
//    state         alive | suspect | dead | left
//    slots running queued
//    load          1-minute load average, e.g. 0.42
//    last_seen_ms  ms since its heartbeat last advanced (0 for self)
//    version       protocol version
//    incarnation   start count of the node
//    heartbeat     its heartbeat version
//    speed         speed figure
//    self          true for this node
//
//  Status fields (STATUS): id name addr dir pid uptime_ms incarnation
//  security (curve | loopback | insecure) discovery (on | off) slots
//  running queued load speed members_alive members_suspect members_dead
//  members_left msgs_in msgs_out bytes_in bytes_out dropped
//  dropped_<wire_error_name> dropped_rejected refused refused_auth
//  refused_protocol

static inline bool
control_field_is_text (const char *field)
{
    static const char *text_fields [] = {
        "id", "name", "addr", "state", "dir", "security", "discovery", "executor",
        "toolchain_transfers", "hash", "compiler", "compiler_version", "target", "holders",
        "here", NULL
    };
    for (int i = 0; text_fields [i]; i++)
        if (strcmp (field, text_fields [i]) == 0)
            return true;
    return false;
}

//  "self" is a JSON boolean.
static inline bool
control_field_is_bool (const char *field)
{
    return strcmp (field, "self") == 0;
}

#endif
