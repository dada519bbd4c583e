//  node_private: what node.c (sockets, gossip, control), intake.c (the
//  wrappers' compile socket), origin.c (jobs started here) and serve.c
//  (jobs run here for peers) share. Not a public contract: only these
//  files include it.

#ifndef MESHCC_NODE_PRIVATE_H_INCLUDED
#define MESHCC_NODE_PRIVATE_H_INCLUDED

#include <czmq.h>
#include "meshcc/gossip.h"
#include "meshcc/job_wire.h"
#include "meshcc/limits.h"
#include "meshcc/meshkey.h"
#include "meshcc/node.h"
#include "meshcc/saturation.h"
#include "meshcc/sysinfo.h"
#include "meshcc/node_store.h"
#include "meshcc/fetch_wire.h"
#include "meshcc/wire.h"
#include "meshcc/worker.h"

typedef char endpoint_t [MESHCC_ENDPOINT_MAX + 1];

//  A DEALER to one remote endpoint.
typedef struct {
    struct _node_t *node;
    zsock_t *sock;
    endpoint_t endpoint;
    int64_t  last_used;             //  zclock_mono of the last send/receive
} link_t;

//  Why a job fell back to a local compile; each has a STATS counter
//  "fallback_<name>" (names in origin.c).
typedef enum {
    FALLBACK_BUSY = 0,              //  no slot anywhere and the queue is full
    FALLBACK_NO_PEER,               //  no local slot and no peer offers any
    FALLBACK_QUEUE_TIMEOUT,         //  waited ORIGIN_QUEUE_TIMEOUT_MS
    FALLBACK_TIMEOUT,               //  a peer did not answer in time
    FALLBACK_REFUSED,               //  refused by PLACEMENT_MAX_TRIES peers
    FALLBACK_PEER_LOST,             //  the peer died or left with the job
    FALLBACK_PEER_FAILURE,          //  the peer could not run it (sandbox, identity...)
    FALLBACK_NOT_DISTRIBUTABLE,     //  the command cannot run elsewhere
    FALLBACK_LISTING,               //  the input listing failed
    FALLBACK_TOO_LARGE,             //  a frame above JOB_WIRE_MAX_FRAME
    FALLBACK_OUTPUT,                //  outputs could not be written, or bad ones
    FALLBACK_ERROR,                 //  anything else (bad request, no store, ...)
    FALLBACK_REASON_COUNT
} fallback_reason_t;

//  Counters for STATS (control.h lists the field names).
typedef struct {
    uint64_t jobs_local;            //  compiled in a local slot
    uint64_t local_deferred;        //  jobs not given a free local slot: saturated
    uint64_t held_for_faster;       //  jobs held for a faster busy peer (placement_hold)
    uint64_t jobs_remote;           //  compiled by a peer for us
    uint64_t jobs_executed_for_peers;
    uint64_t jobs_refused_for_peers;
    uint64_t jobs_failed_for_peers; //  RESULT with a failure sent
    uint64_t jobs_queued;           //  jobs that waited in the queue
    uint64_t jobs_retried;          //  placements after a refusal/loss
    uint64_t refusals_received;
    uint64_t fallbacks;
    uint64_t fallback [FALLBACK_REASON_COUNT];
    uint64_t blobs_sent, blob_bytes_sent;
    uint64_t blobs_received, blob_bytes_received;
    uint64_t hash_hits, hash_misses;           //  inputs already in / new to the blob store
    uint64_t hash_cache_hits, hash_cache_misses;   //  hash cache lookups of listings
    uint64_t listings_reused;                       //  no -M run (listing_cache)
    uint64_t unknown_job;           //  job messages for ids we do not hold
    //  µs sums and counts for the means
    uint64_t listing_us, listing_n;
    uint64_t hashing_us, hashing_n;
    uint64_t transfer_us, transfer_n;
    uint64_t queue_us, queue_n;
    uint64_t compile_us, compile_n;
    uint64_t setup_us, setup_n;     //  the peer's job root and sandbox set-up
} node_job_stats_t;

typedef struct _origin_t origin_t;
typedef struct _serve_t serve_t;
typedef struct _toolchains_t toolchains_t;
typedef struct _blob_fetch_t blob_fetch_t;
typedef struct _intake_conn_t intake_conn_t;

struct _node_t {
    const node_config_t *config;
    zcert_t      *cert;             //  mesh key, NULL without one
    node_store_t *store;
    gossip_t     *gossip;
    zloop_t      *loop;
    zsock_t      *router;
    zsock_t      *zap;
    zsock_t      *control;
    zactor_t     *monitor;
    zactor_t     *beacon;
    zhashx_t     *links;            //  endpoint -> link_t
    zlist_t      *closing;          //  link_t ended in the loop, freed next tick
    zlist_t      *lost_peers;       //  ids of members that died or left (tick)
    endpoint_t   *targets;          //  GOSSIP_MAX_MEMBERS, reused every tick
    char         *control_path;

    uint8_t  id [MESHCC_ID_SIZE];
    char     id_hex [MESHCC_ID_HEX_SIZE + 1];
    uint64_t incarnation;
    endpoint_t endpoint;            //  advertised, "tcp://IP:PORT"
    uint16_t advertise_port;
    uint8_t  fingerprint [MESHKEY_FINGERPRINT_SIZE];
    uint32_t speed;
    uint32_t load_milli;
    sysinfo_share_t share;          //  our cgroup's quota and directory
    double   cgroup_load;           //  others' runnable processes there, averaged
    int64_t  load_read;             //  zclock_mono of the last read
    uint32_t slots_peak;            //  most of our slots busy at once since the last tick
    saturation_t saturation;        //  .saturated: a cgroup-confined node's slice is
                                    //  full (or not known to have room): its jobs
                                    //  go to peers before its slots
    int64_t  started;               //  zclock_mono at start
    int64_t  last_save;
    bool     peers_joined;          //  a member joined since the last save

    //  Counters reported by STATUS.
    uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
    uint64_t dropped [WIRE_ERROR_COUNT];
    uint64_t refused_auth, refused_protocol;
    int64_t  refusal_logged;        //  zclock_mono of the last warn line
    uint64_t refusals_unlogged;     //  refusals since, shown at debug only

    //  Compiling (issue 3).
    worker_pool_t *workers;
    origin_t *origin;
    serve_t  *serve;
    toolchains_t *toolchains;
    blob_fetch_t *blob_fetch;
    uint32_t  local_running;        //  local slots held by wrappers' compilers
    int       compile_fd;           //  listening on DIR/compile.sock, or -1
    char     *compile_path;
    zhashx_t *conns;                //  id -> intake_conn_t, open connections
    zlist_t  *conns_closing;        //  intake_conn_t closed, freed next tick
    uint64_t  next_conn;
    uint32_t  serving;              //  jobs held for peers (slot taken)
    char     *executor_why;         //  NULL if the executor is available
    node_job_stats_t stats;
    uint64_t  rng;                  //  placement_random state
};

//  node.c
link_t *node_link (node_t *self, const char *endpoint);
//  Sends one frame without blocking (to `routing_id` when sock is the
//  ROUTER). Returns 0, or -1 if it was dropped.
int     node_send_raw (node_t *self, zsock_t *sock, zframe_t *routing_id,
                       const uint8_t *data, size_t size);
//  The member (not us) whose endpoint our `link` reaches, or NULL.
const gossip_member_t *node_link_member (node_t *self, const link_t *link);
//  Sends one frame to member `id` on our link to it. Returns 0 or -1.
int     node_send_to_member (node_t *self, const uint8_t id [MESHCC_ID_SIZE],
                             const uint8_t *data, size_t size);
//  Builds the CHUNK answering a FETCH, on a worker (`path` as given to
//  node_answer_fetch, may be NULL). Never NULL.
typedef fetch_chunk_msg_t *(node_fetch_answer_fn) (worker_ctx_t *ctx,
                                                   const fetch_request_msg_t *request,
                                                   const char *path);
//  Answers a FETCH from `routing_id` on a worker with `answer`; the CHUNK
//  goes back through the ROUTER and *served_p counts those carrying bytes.
void    node_answer_fetch (node_t *self, zframe_t *routing_id, const fetch_request_msg_t *request,
                           const char *path, node_fetch_answer_fn *answer, uint64_t *served_p);
//  Slots free here now (local compiles and peers' jobs share them).
uint32_t node_free_slots (node_t *self);
//  Notes how many of our slots are busy now (for the saturation reading);
//  called whenever one is taken.
void     node_slot_taken (node_t *self);
//  Encodes and sends a small job message (ACCEPTED, REFUSED, NEED, ...).
int     node_send_job_msg (node_t *self, zsock_t *sock, zframe_t *routing_id,
                           const job_msg_t *msg);

//  intake.c: the compile socket (control.h).
int       intake_start (node_t *self, char *err, size_t err_size);
//  Closes every connection (after origin_destroy has answered its jobs).
void      intake_destroy (node_t *self);
//  Every gossip tick: frees closed connections, closes stalled ones.
void      intake_tick (node_t *self, int64_t now);
//  Answers the connection `conn` (RESULT or FALLBACK fields) and closes it
//  once written. Returns -1 if it is gone (the wrapper died): drop the job.
int       node_compile_reply (node_t *self, uint64_t conn, int count,
                              const void *const data [], const size_t sizes []);
//  Gives `conn` a local slot: LOCAL is sent, the slot is busy until the
//  connection ends. False if the connection is gone (the slot stays free).
bool      node_compile_local (node_t *self, uint64_t conn);

//  origin.c: jobs started here.
origin_t *origin_new (node_t *node);
void      origin_destroy (origin_t **self_p);
//  A checked COMPILE request (intake.c) for connection `conn`, with no
//  local slot free. Returns the job's id, or 0 if it was answered at once.
uint64_t  origin_compile (origin_t *self, uint64_t conn, const char *cwd, size_t cwd_size,
                          const uint8_t *argv, size_t argv_size,
                          const uint8_t *envp, size_t envp_size,
                          const char *compiler, size_t compiler_size, mode_t umask);
//  The wrapper of job `id` went away: the job ends without an answer.
void      origin_cancel (origin_t *self, uint64_t id);
//  A job message from the peer at `link`.
void      origin_on_msg (origin_t *self, link_t *link, job_msg_t *msg);
//  Every gossip tick: deadlines, the queue.
void      origin_tick (origin_t *self, int64_t now);
//  A member went dead or left: its jobs go elsewhere.
void      origin_peer_lost (origin_t *self, const uint8_t id [MESHCC_ID_SIZE]);
//  Whether our own job should go to a free peer before our own free slot:
//  on a node confined to a CPU quota, when a peer has a slot free and we
//  are not clearly faster than it (placement_peer_first).
bool      origin_peer_first (origin_t *self);
//  A slot may have freed: dispatch the queue.
void      origin_dispatch (origin_t *self);
size_t    origin_queued (origin_t *self);
size_t    origin_in_flight (origin_t *self);
//  Jobs held (preparing, queued, at peers or in local slots).
size_t    origin_jobs (origin_t *self);
void      origin_stats (origin_t *self, zhash_t *record);

//  toolchains.c (issue 4)
toolchains_t *toolchains_new (node_t *node);
void      toolchains_destroy (toolchains_t **self_p);
//  Any thread: the toolchain of the job's compiler (argv[0], resolved
//  identity path) when packaged; otherwise false, and the next tick starts
//  packaging it in the background.
bool      toolchains_for_job (toolchains_t *self, const char *argv0, const char *resolved,
                              uint8_t hash [BLOB_HASH_SIZE], uint64_t *size_p);
//  Any thread: DIR/toolchains/unpacked/HEX, unpacked now from the archive
//  if needed (its hash checked first). Returns 0, or -1 (errno ENOENT when
//  the archive is not here) with err set.
int       toolchains_tree (const char *dir, const uint8_t hash [BLOB_HASH_SIZE],
                           char *tree, size_t tree_size, char *err, size_t err_size);
//  Loop thread.
bool      toolchains_held (toolchains_t *self, const uint8_t hash [BLOB_HASH_SIZE]);
void      toolchains_add_held (toolchains_t *self, const uint8_t hash [BLOB_HASH_SIZE],
                               uint64_t size);
//  A job admitted here names `hash` (delta 1) / is over (-1): a toolchain
//  in use is never evicted.
void      toolchains_use (toolchains_t *self, const uint8_t hash [BLOB_HASH_SIZE], int delta);
//  Our archive of `hash` is corrupt or evicted: removed with its tree, no
//  longer gossiped.
void      toolchains_forget (toolchains_t *self, const uint8_t hash [BLOB_HASH_SIZE]);
bool      toolchains_member_holds (const gossip_member_t *member,
                                   const uint8_t hash [BLOB_HASH_SIZE]);
//  Loop thread: fetch the archive `hash` from the members that gossip it
//  (a peer's job needs it); at most one fetch per archive.
void      toolchains_fetch (toolchains_t *self, const uint8_t hash [BLOB_HASH_SIZE], uint64_t size,
                            const compiler_identity_t *compiler);
//  Loop thread: one record per toolchain of the registry (control.h,
//  TOOLCHAINS), holders from gossip (also recorded in the registry).
zlist_t  *toolchains_list (toolchains_t *self);
//  A FETCH from a peer (answered on a worker), a CHUNK on our link to a holder.
void      toolchains_on_fetch (toolchains_t *self, zframe_t *routing_id,
                               const fetch_request_msg_t *request);
void      toolchains_on_chunk (toolchains_t *self, link_t *link, fetch_chunk_msg_t *chunk);
//  A peer refused a job of the compiler at `resolved` (its identity
//  path) for want of it: package it now, however busy we are.
void      toolchains_needed (toolchains_t *self, const char *resolved);
//  The node stops: a packaging in progress gives up (before the workers
//  are joined).
void      toolchains_stop (toolchains_t *self);
void      toolchains_tick (toolchains_t *self, int64_t now);
void      toolchains_stats (toolchains_t *self, zhash_t *record);
void      toolchains_status (toolchains_t *self, zhash_t *record);

//  serve.c: jobs run here for peers.
serve_t  *serve_new (node_t *node);
void      serve_destroy (serve_t **self_p);
void      serve_on_msg (serve_t *self, zframe_t *routing_id, job_msg_t *msg);
void      serve_tick (serve_t *self, int64_t now);
//  The fetch of a blob the job `key` waited for ended (blob_fetch.c):
//  `stored` if the blob is in the store now.
void      serve_on_blob (serve_t *self, const char *key, bool stored);

//  blob_fetch.c (issue 4): job input blobs from holders other than the
//  origin, and answering other nodes' FETCHes of blobs. Loop thread.
blob_fetch_t *blob_fetch_new (node_t *node);
//  After the worker pool is gone.
void      blob_fetch_destroy (blob_fetch_t **self_p);
//  Job `job_key` lacks blob `hash` (`size` bytes by its manifest); the
//  holders are node ids in the order to ask them (the job's). Joins the
//  fetch of that blob under way or queues one. Returns 1 if the job will
//  be told when it ends (serve_on_blob), 0 if it already was to be, -1 if
//  no holder is alive (ask the origin). Starts nothing itself: call
//  blob_fetch_start after the wants, so that a fetch failing at once
//  tells its jobs only after they counted it.
int       blob_fetch_want (blob_fetch_t *self, const uint8_t hash [BLOB_HASH_SIZE], uint64_t size,
                           const uint8_t (*holders) [MESHCC_ID_SIZE], size_t holder_count,
                           const char *job_key);
void      blob_fetch_start (blob_fetch_t *self);
//  Whether node `id` may serve a fetch now: alive in gossip, not us.
bool      blob_fetch_holder_alive (blob_fetch_t *self, const uint8_t id [MESHCC_ID_SIZE]);
//  A FETCH of kind 'b' from a peer (answered on a worker), a CHUNK of
//  kind 'b' on our link to a holder.
void      blob_fetch_on_fetch (blob_fetch_t *self, zframe_t *routing_id,
                               const fetch_request_msg_t *request);
void      blob_fetch_on_chunk (blob_fetch_t *self, link_t *link, fetch_chunk_msg_t *chunk);
void      blob_fetch_tick (blob_fetch_t *self, int64_t now);
void      blob_fetch_stats (blob_fetch_t *self, zhash_t *record);

#endif
