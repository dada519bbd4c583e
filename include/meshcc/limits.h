//  limits: every bound, timeout and default of meshcc in one place, each
//  with the reason for its value. Owns constants only; no code, no state.
//  A module that needs a new limit adds it here rather than a literal.

#ifndef MESHCC_LIMITS_H_INCLUDED
#define MESHCC_LIMITS_H_INCLUDED

//  Wire protocol version spoken by this build. Nodes drop messages with
//  another version (counted as "bad_version") rather than guess.
#define MESHCC_PROTO_VERSION        1

//  Node id: 16 random bytes (a UUID's worth), shown as 32 hex digits and
//  8 in short form. Collisions at mesh sizes we target are negligible.
#define MESHCC_ID_SIZE              16
#define MESHCC_ID_HEX_SIZE          (MESHCC_ID_SIZE * 2)
#define MESHCC_SHORT_ID_SIZE        8

//  Node names are hostnames (HOST_NAME_MAX is 64 on Linux).
#define MESHCC_NAME_MAX             63
//  "tcp://" + an IPv6 literal in brackets + ":" + port fits in 63.
#define MESHCC_ENDPOINT_MAX         63
//  Room in every node's gossiped state for a compact summary of the
//  toolchains it holds (filled by the toolchain issue; opaque until then).
#define MESHCC_TOOLCHAIN_SUMMARY_MAX 128

//  Default TCP port of a node and UDP port of its discovery beacon.
#define MESHCC_DEFAULT_PORT         7370
#define MESHCC_DEFAULT_BEACON_PORT  7371
//  How often a node beacons: a hint only, so once a second is plenty.
#define MESHCC_BEACON_INTERVAL_MS   1000

//  Gossip timing (see docs/ARCHITECTURE.md, "Membership"). A round every
//  200 ms to 3 peers is memberlist's LAN default; every round also bumps
//  the node's heartbeat version, so load fields are at most one round old
//  at the sender.
#define GOSSIP_INTERVAL_MS          200
#define GOSSIP_FANOUT               3
//  No heartbeat progress for this long (× max(1, log10 N)) makes a node
//  suspect: 10 rounds, far above the few rounds gossip needs on a LAN.
#define GOSSIP_SUSPECT_MS           2000
//  Lifeguard suspicion timeout after a node became suspect: from
//  CONFIRM_MAX_MULT × CONFIRM_MIN_MS with no confirmation down to
//  CONFIRM_MIN_MS with GOSSIP_CONFIRMATIONS independent ones (both
//  × max(1, log10 N)). Lifeguard's defaults are alpha = 5, beta = 6, K = 3.
#define GOSSIP_CONFIRM_MIN_MS       1000
#define GOSSIP_CONFIRM_MAX_MULT     6
#define GOSSIP_CONFIRMATIONS        3
//  Dead and left nodes are forgotten after this long; their (incarnation,
//  version) is kept as a tombstone twice as long so that a straggler's
//  stale copy cannot bring them back.
#define GOSSIP_FORGET_MS            60000
#define GOSSIP_TOMBSTONE_MS         120000
//  Seeds (--join and beacon hints) are retried every round until a member
//  is known, then this often, to heal partitions.
#define GOSSIP_SEED_RETRY_MS        10000
//  At most this many full states in one ACK/ACK2, unknown nodes first:
//  bounds a message to ~64 KiB even in a large mesh.
#define GOSSIP_MAX_DELTAS           256
//  A mesh larger than this is out of scope; digests are bounded by it.
#define GOSSIP_MAX_MEMBERS          4096
//  A node that stalls (stopped process, swapped out) for longer than this
//  many gossip intervals does not accuse anyone on waking: Lifeguard's
//  local health awareness. All timers restart instead.
#define GOSSIP_STALL_ROUNDS         5

//  Wire: one ZeroMQ frame per message. Bigger frames are dropped unread
//  (ZMQ_MAXMSGSIZE) so a peer cannot make us allocate without bound; a
//  compressed payload may expand to at most WIRE_MAX_PAYLOAD.
#define WIRE_MAX_FRAME              (1024 * 1024)
#define WIRE_MAX_PAYLOAD            (4 * 1024 * 1024)
//  Payloads at least this large are zstd-compressed (level 1: gossip is
//  latency-bound, not bandwidth-bound).
#define WIRE_COMPRESS_MIN           512
#define WIRE_ZSTD_LEVEL             1

//  Outgoing mesh sockets: queue at most this many messages per peer and
//  never queue to a peer that is not connected (ZMQ_IMMEDIATE); gossip is
//  periodic, so a lost message is replaced by the next round's.
#define MESH_SNDHWM                 64
//  How long a leaving node waits for its "left" state to be sent.
#define MESH_LEAVE_LINGER_MS        500
//  A peer connection unused for this long is closed.
#define MESH_IDLE_CLOSE_MS          30000

//  Control socket (CLI <-> node, ipc in the data directory).
#define CONTROL_SOCKET_NAME         "control.sock"
#define CONTROL_TIMEOUT_MS          2000

//  Files in the data directory.
#define DATADIR_DB_NAME             "meshcc.db"
#define DATADIR_LOCK_NAME           "meshccd.lock"
#define DATADIR_LOG_NAME            "meshccd.log"
#define DATADIR_KEY_NAME            "mesh.key"
#define DATADIR_DEFAULT             ".meshcc"

//  How often a node rereads its load average and capacity.
#define NODE_LOAD_REFRESH_MS        GOSSIP_INTERVAL_MS

//  Node persistence (node_store). Live members are written to the peers
//  table this often and at exit: often enough that a node killed with -9
//  remembers a mesh it joined seconds before, rare enough that SQLite
//  writes stay negligible.
#define NODE_PEERS_SAVE_MS          10000
//  On start, the endpoints of this many most recently seen peers become
//  seeds: one live peer suffices to rejoin, a few cover peers that left.
#define NODE_RESTART_SEEDS          8
//  Rows kept in the peers table; older ones are pruned so a long-lived
//  node in a churning mesh does not grow its database without bound.
#define NODE_PEERS_KEEP             256
//  The speed figure: BLAKE2b over a buffer of this size, repeated for
//  this long at start. 50 ms is long enough to be stable to a few percent
//  and short enough not to delay start-up noticeably.
#define NODE_SPEED_BUFFER_SIZE      (1024 * 1024)
#define NODE_SPEED_SAMPLE_MS        50
//  While leaving, sends that found no connection yet are retried this
//  often until MESH_LEAVE_LINGER_MS has passed.
#define NODE_LEAVE_RETRY_MS         20
//  Refused connections are logged at warn level at most once per this
//  interval (with a count of those not shown; each is logged at debug):
//  a peer with the wrong key reconnects every 100 ms and would otherwise
//  fill the disk.
#define NODE_REFUSAL_LOG_MS         10000
//  Longest log line; longer messages are truncated, never split.
#define NODE_LOG_LINE_MAX           1024

#endif
