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
//  Compiling (issue 3). The wrapper sends one request and waits for one
//  reply; the node runs the job in a local slot (spawning the compiler
//  itself, so the compiler writes its outputs directly) or on a peer
//  (writing the returned outputs atomically), or queues it:
//
//    request:  "COMPILE", cwd, argv, envp, compiler, umask
//              argv and envp are each one frame of NUL-terminated strings
//              back to back (argv[0] as the user gave it, e.g. "gcc");
//              envp is the wrapper's whole environment (a local run must
//              see exactly what a direct run would); compiler is the
//              absolute path of the real compiler the wrapper resolved
//              (never meshcc itself), which is what gets executed;
//              umask is the wrapper's umask in octal text ("022"), so that
//              outputs get the modes a direct run gives.
//    reply:    "RESULT", status, stdout, stderr, where
//              status is the compiler's exit status as text (the answer,
//              errors included); stdout/stderr its output bytes; where is
//              "local" or the executing peer's name (for MESHCC_VERBOSE).
//          or  "FALLBACK", reason
//              the mesh could not run it (no slot anywhere and the queue
//              is full, peer died, timeout, refusal, protocol error…): the
//              wrapper compiles locally itself, and no output was written.
//
//  "STATS" returns one zhash record like STATUS, for `meshcc stats`.
//  Stats fields (all numbers; counts since the node started, times in µs):
//    jobs_local               compiled in a local slot for our wrapper
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
//    dropped_unknown_job      job messages for ids we do not hold
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
//  dropped_unknown_job.

#define CONTROL_COMPILE     "COMPILE"
#define CONTROL_RESULT      "RESULT"
#define CONTROL_FALLBACK    "FALLBACK"
#define CONTROL_STATS       "STATS"

//  Values are text; control_field_is_text() says which fields are text in
//  JSON output (all others are numbers).

#ifndef MESHCC_CONTROL_H_INCLUDED
#define MESHCC_CONTROL_H_INCLUDED

#include <stdbool.h>
#include <string.h>

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
        "id", "name", "addr", "state", "dir", "security", "discovery", "executor", NULL
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
