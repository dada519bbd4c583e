//  gossip: the membership state machine of one node. It owns the versioned
//  state of every node this node knows, merges gossip (Scuttlebutt-style
//  digest/delta push-pull), runs failure detection (heartbeat progress with
//  Lifeguard-style suspicion confirmation) and chooses whom to gossip with.
//  It is pure: it never touches sockets, clocks, files or randomness other
//  than its own seeded generator; time comes in as `now_ms` arguments and
//  messages go in and out as gossip_msg_t values, so that tests can run
//  thousands of simulated nodes in one process. Encoding is wire.h's job.

#ifndef MESHCC_GOSSIP_H_INCLUDED
#define MESHCC_GOSSIP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "meshcc/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

//  A member's status as this node sees it. ALIVE and LEFT come from the
//  member itself (gossiped); SUSPECT and DEAD are this node's conclusion.
typedef enum {
    PEER_ALIVE = 0,
    PEER_SUSPECT = 1,
    PEER_DEAD = 2,
    PEER_LEFT = 3
} peer_status_t;

//  "alive", "suspect", "dead", "left"
const char *peer_status_name (peer_status_t status);

//  What a node says about itself. Gossiped verbatim; a copy with a higher
//  (incarnation, version) always replaces a lower one.
typedef struct {
    uint8_t  id [MESHCC_ID_SIZE];
    uint64_t incarnation;           //  bumped on every start of the node
    uint64_t version;               //  heartbeat, bumped every round
    char     name [MESHCC_NAME_MAX + 1];
    char     endpoint [MESHCC_ENDPOINT_MAX + 1];    //  "tcp://IP:PORT"
    uint16_t proto;                 //  MESHCC_PROTO_VERSION of the node
    bool     left;                  //  the node left the mesh gracefully
    uint32_t slots;                 //  compile slots it offers
    uint32_t running;               //  jobs running now
    uint32_t queued;                //  jobs waiting at it
    uint32_t load_milli;            //  1-minute load average × 1000
    uint32_t speed;                 //  single-core speed figure
    uint16_t toolchains_size;       //  bytes used in toolchains
    uint8_t  toolchains [MESHCC_TOOLCHAIN_SUMMARY_MAX];
} peer_state_t;

//  One line of a digest: which version of a node's state the sender holds.
typedef struct {
    uint8_t  id [MESHCC_ID_SIZE];
    uint64_t incarnation;
    uint64_t version;
} gossip_digest_t;

//  Push-pull exchange, three messages:
//    SYN   initiator -> peer: digest of everything it knows, and its own
//          state (states[0]) so that a first contact registers at once.
//    ACK   peer -> initiator: states newer than the initiator's digest
//          (or unknown to it), and in `digest` the entries the peer wants
//          (the version it holds, 0/0 if none).
//    ACK2  initiator -> peer: the states the peer asked for.
typedef enum {
    GOSSIP_SYN = 1,
    GOSSIP_ACK = 2,
    GOSSIP_ACK2 = 3
} gossip_type_t;

typedef struct {
    gossip_type_t    type;
    uint8_t          from [MESHCC_ID_SIZE];
    size_t           digest_count;
    gossip_digest_t *digest;
    size_t           state_count;
    peer_state_t    *states;
} gossip_msg_t;

//  Allocates a message with zeroed arrays of the given lengths.
gossip_msg_t *gossip_msg_new (gossip_type_t type, size_t digest_count, size_t state_count);
void          gossip_msg_destroy (gossip_msg_t **self_p);

//  This node's view of one member.
typedef struct {
    peer_state_t  state;
    peer_status_t status;
    bool          is_self;
    int64_t       last_seen_ms;     //  local time its heartbeat last advanced
    int64_t       status_since_ms;  //  local time status last changed
} gossip_member_t;

typedef struct {
    uint32_t interval_ms;           //  GOSSIP_INTERVAL_MS
    uint32_t fanout;                //  GOSSIP_FANOUT
    uint32_t suspect_ms;            //  GOSSIP_SUSPECT_MS
    uint32_t confirm_min_ms;        //  GOSSIP_CONFIRM_MIN_MS
    uint32_t confirm_max_mult;      //  GOSSIP_CONFIRM_MAX_MULT
    uint32_t confirmations;         //  GOSSIP_CONFIRMATIONS
    uint32_t forget_ms;             //  GOSSIP_FORGET_MS
    uint32_t tombstone_ms;          //  GOSSIP_TOMBSTONE_MS
    uint32_t seed_retry_ms;         //  GOSSIP_SEED_RETRY_MS
    uint32_t max_deltas;            //  GOSSIP_MAX_DELTAS
    uint32_t stall_rounds;          //  GOSSIP_STALL_ROUNDS
} gossip_config_t;

typedef struct {
    uint64_t received;              //  messages handed to gossip_receive
    uint64_t rejected;              //  messages refused as inconsistent
    uint64_t states_merged;         //  states that replaced an older copy
    uint64_t states_stale;          //  states not newer than ours
    uint64_t refutations;           //  times we outbid a copy of ourselves
    uint64_t stalls;                //  ticks late enough to reset timers
} gossip_stats_t;

typedef struct _gossip_t gossip_t;

//  Called on every status change of a member (joined counts as a change
//  from `old_status` = -1). Must not call back into gossip.
typedef void (gossip_event_fn) (void *arg, const gossip_member_t *member, int old_status);

void gossip_config_defaults (gossip_config_t *config);

//  Creates the state machine for the node described by `self_state` (its
//  id, incarnation, name, endpoint, capacity). `config` may be NULL for
//  defaults. `rng_seed` seeds peer choice, so simulations are repeatable.
gossip_t *gossip_new (const peer_state_t *self_state, const gossip_config_t *config,
                      uint64_t rng_seed, int64_t now_ms);
void      gossip_destroy (gossip_t **self_p);

void      gossip_set_event_handler (gossip_t *self, gossip_event_fn *handler, void *arg);

//  Our own state as currently gossiped.
const peer_state_t *gossip_self (gossip_t *self);

//  Updates our capacity fields; published with the next heartbeat.
void gossip_set_load (gossip_t *self, uint32_t slots, uint32_t running, uint32_t queued,
                      uint32_t load_milli, uint32_t speed);

//  Sets the summary of the toolchains we hold (toolchains.c: 8-byte hash
//  prefixes, at most MESHCC_TOOLCHAIN_SUMMARY_MAX bytes); published with
//  the next heartbeat.
void gossip_set_toolchains (gossip_t *self, const uint8_t *summary, size_t size);
//  Seeds (from --join, or remembered peers) are contacted every round
//  until a member is known, then every seed_retry_ms. A hint (a discovery
//  beacon) is contacted once, at the next tick, unless a live member
//  already has that endpoint. Neither ever becomes a member by itself:
//  only a state received in a message does.
void gossip_add_seed (gossip_t *self, const char *endpoint);
void gossip_add_hint (gossip_t *self, const char *endpoint);

//  One round: bump our heartbeat, run failure detection, forget old dead
//  and left members, and return in `targets` (at most `max_targets`) the
//  endpoints to send a SYN to this round. Returns the number of targets.
size_t gossip_tick (gossip_t *self, int64_t now_ms,
                    char targets [][MESHCC_ENDPOINT_MAX + 1], size_t max_targets);

//  A SYN carrying our digest and state. Caller owns the result.
gossip_msg_t *gossip_syn (gossip_t *self);

//  Merges a received message. Returns the reply to send back on the same
//  path (ACK for SYN, ACK2 for ACK; NULL for ACK2 or when nothing is owed),
//  which the caller owns. A malformed message changes nothing and is
//  counted in stats.rejected.
gossip_msg_t *gossip_receive (gossip_t *self, const gossip_msg_t *msg, int64_t now_ms);

//  Leaves gracefully: marks our state left and bumps its version. Returns
//  in `targets` the endpoints of live members to push our final SYN to.
size_t gossip_leave (gossip_t *self,
                     char targets [][MESHCC_ENDPOINT_MAX + 1], size_t max_targets);

//  Members known (self included), indexable 0 .. size-1; the order is
//  stable until the next call that changes membership.
size_t                 gossip_size (gossip_t *self);
const gossip_member_t *gossip_member (gossip_t *self, size_t index);
const gossip_member_t *gossip_lookup (gossip_t *self, const uint8_t *id);
//  Number of members in a given status (self counts as alive).
size_t                 gossip_count (gossip_t *self, peer_status_t status);

const gossip_stats_t  *gossip_stats (gossip_t *self);

void gossip_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
