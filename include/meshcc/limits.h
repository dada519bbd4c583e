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

//  Compile channel (wrapper <-> node, a Unix stream socket in the data
//  directory; control.h). A request carries argv and the whole
//  environment: Linux bounds both together by ARG_MAX (a quarter of the
//  stack limit, 2 MiB by default), so 16 MiB leaves room for a raised
//  stack limit and still bounds what a broken client can make us buffer.
#define COMPILE_SOCKET_NAME         "compile.sock"
#define COMPILE_REQUEST_MAX         (16 * 1024 * 1024)
//  Open connections at most (jobs in slots, queued or waiting for their
//  reply): well under the default 1024 descriptors a process may hold,
//  with room for the node's own; one more is closed at once and its
//  wrapper compiles locally.
#define COMPILE_CONN_MAX            512
//  A connection that has not sent its whole request, or not read its
//  whole reply, in this long is closed (a wrapper writes its request at
//  once and reads its reply at once; only a broken one is this slow).
#define COMPILE_IO_TIMEOUT_MS       30000

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
//  The averaging window of a cgroup-confined node's load (the kernel's
//  load average uses one minute; a build changes faster).
#define NODE_LOAD_WINDOW_MS         10000
//  A cgroup-confined node is saturated while its cgroup was throttled at
//  its quota in at least this share of the CFS periods, each weighed by
//  how long it was held back (fully from MATERIAL µs on average, summed
//  over CPUs: 5 % of the default 100 ms period; one process on a one-core
//  quota is held back far less), averaged over this window, not counting
//  ticks in which our compiles alone could fill
//  the quota; or while no counted tick is this recent: a node whose slots
//  stay busy is measured again at least once per window (one tick of an
//  idle slot), a measurement is used for the compiles that start within
//  it. Its jobs then go to peers with a free slot before its own free
//  slots.
#define NODE_SATURATION_THROTTLED   0.5
#define NODE_SATURATION_MATERIAL_US 5000
#define NODE_SATURATION_WINDOW_MS   3000
#define NODE_SATURATION_FRESH_MS    NODE_SATURATION_WINDOW_MS
//  Background work of a node with a CPU quota (packaging a toolchain)
//  waits until the node has had no job for this long and the others in
//  its cgroup want less than this much of a CPU (their runnable processes
//  averaged over NODE_LOAD_WINDOW_MS); see saturation.h.
#define NODE_BACKGROUND_IDLE_MS     2000
#define NODE_BACKGROUND_LOAD        0.25
//  How often such a node reads its cgroup's processes.
#define NODE_CGROUP_READ_MS         500
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

//  Compiling through the mesh (issue 3): the node side.
//  Job frames between nodes (job_wire.h) carry inputs and outputs, so
//  mesh sockets accept frames up to JOB_WIRE_MAX_FRAME (ZMQ_MAXMSGSIZE);
//  gossip frames keep their own WIRE_MAX_FRAME check in the decoder.
//  64 MiB holds a heavily templated C++ object with full debug info; a
//  bigger job is refused by the encoder and compiles locally.
#define JOB_WIRE_MAX_FRAME          (64 * 1024 * 1024)
//  A compressed job payload may expand to at most this (zstd bomb bound).
#define JOB_WIRE_MAX_PAYLOAD        (256 * 1024 * 1024)
//  Counts in one job message. Arguments: make-generated command lines
//  reach a few hundred; 8192 leaves room for huge -I lists. Manifest
//  entries: a large C++ translation unit reads ~2000 headers; 65536
//  leaves room and still bounds what a peer can make us allocate.
#define JOB_MAX_ARGS                8192
#define JOB_MAX_ENV                 1024
#define JOB_MAX_ENTRIES             65536
//  PATH_MAX: longer paths cannot be opened anyway.
#define JOB_MAX_PATH                4096
//  One argument or environment entry (ARG_MAX per string is 128 KiB).
#define JOB_MAX_STRING              (128 * 1024)
//  Outputs of one compile: object, depfile, .dwo, with room to spare.
#define JOB_MAX_OUTPUTS             16
//  A refusal or failure reason is one line for a log or a warning.
#define JOB_MAX_REASON              1024
//  Raw bytes of blobs inlined in one JOB or sent in one BLOBS message:
//  a quarter of the frame bound, so that even incompressible data plus
//  the manifest fits; the rest goes in further BLOBS messages.
#define JOB_INLINE_BUDGET           (16 * 1024 * 1024)
//  Holders named in one JOB (issue 4: nodes a peer may fetch the job's
//  missing blobs from, the origin included): a few are plenty, since
//  they are asked in order (a blob's next holder only when those before
//  cannot serve it), and the bound keeps a hostile count harmless.
#define JOB_MAX_HOLDERS             8
//  The origin gives up on a peer that has not acknowledged a job (ACCEPTED,
//  REFUSED or NEED) in this time: a live peer answers at once, since
//  admission is decided on receipt; 10 s covers a 64 MiB frame on a slow
//  link.
#define JOB_ACK_TIMEOUT_MS          10000
//  The whole job at a peer (fetching inputs, compiling, returning): far
//  above any sane compile, so only a wedged peer reaches it. The executor
//  kills the compiler itself after its own wall limit, below this.
#define JOB_TIMEOUT_MS              120000
//  A fresh link is not connected yet (DEALERs drop rather than queue); a
//  job send is retried this often for at most JOB_CONNECT_MS, after
//  which the peer counts as unavailable for the job.
#define JOB_CONNECT_RETRY_MS        10
#define JOB_CONNECT_MS              2000
//  A job tries at most this many peers (each refusal or loss counts) and
//  then waits in the queue or falls back: a mesh refusing three times in a
//  row is busy or broken, and the local compile is the safe answer.
#define PLACEMENT_MAX_TRIES         3
//  The origin's queue of jobs waiting for a slot: 8 per slot in the mesh
//  (enough for make -j far above the mesh's slots), never more than the
//  cap (each waiting job holds a manifest in memory) and at least the
//  floor so a small mesh can still absorb a burst.
#define ORIGIN_QUEUE_PER_SLOT       8
#define ORIGIN_QUEUE_MIN            8
#define ORIGIN_QUEUE_CAP            1024
//  A queued job older than this falls back to a local compile: the build
//  must not stall behind a mesh that never frees a slot.
#define ORIGIN_QUEUE_TIMEOUT_MS     60000
//  Hashes the origin remembers sending to each peer (affinity and
//  "peer is known to have it"): two generations of up to this many each,
//  so memory stays bounded and recently sent blobs are remembered.
#define PLACEMENT_KNOWN_MAX         32768
//  Score bonus for a peer holding all of a job's inputs, relative to a
//  fully free peer of average speed (1.0): enough to prefer a warm peer
//  among similar ones, not enough to overload a busy one.
#define PLACEMENT_AFFINITY_WEIGHT   0.5
//  "Clearly faster" for placement by measured job times: a candidate's
//  jobs (or a busy one's wait plus job) take this many times less, and its
//  slot's speed figure, over its load per slot, is this many times more.
//  Job times vary with the job; a margin keeps noise from moving jobs about.
#define PLACEMENT_FASTER            1.5
//  The weight of the newest job in a peer's job-time average.
#define PLACEMENT_JOB_TIME_WEIGHT   0.3
//  Worker threads for blocking work (compiles, listings, the executor):
//  one per slot plus this many for origin-side preparation, at most the
//  cap (SQLite connections and stacks are per thread).
#define NODE_WORKERS_EXTRA          4
#define NODE_WORKERS_MAX            128
//  Default bound of the blob store in DIR/cache (--cache-size).
#define NODE_CACHE_SIZE_DEFAULT     (2ULL * 1024 * 1024 * 1024)
//  DIR/toolchains: a gcc archive is ~27 MB and unpacks to ~117 MB, clang's
//  66 MB to 258 MB; 4 GiB holds a dozen or more compilers.
#define NODE_TOOLCHAIN_CACHE_SIZE_DEFAULT (4ULL * 1024 * 1024 * 1024)
//  Limits the executor applies to a compile run for a peer.
#define EXECUTOR_CPU_SECONDS        300
#define EXECUTOR_MEMORY_BYTES       (4ULL * 1024 * 1024 * 1024)
#define EXECUTOR_OUTPUT_BYTES       (256ULL * 1024 * 1024)
#define EXECUTOR_WALL_SECONDS       110
//  Executor and dependency listing (src/node/inputs.c, executor.c,
//  sandbox.c, compiler_identity.c).
//  Symlinks followed while resolving one path: the kernel's own limit.
#define INPUTS_MAX_SYMLINKS         40
//  A dependency listing larger than this is not a real compile's (161
//  headers of ~60 bytes each is 10 KiB; 16 MiB is 250 000 headers).
#define INPUTS_LISTING_MAX          (16 * 1024 * 1024)
//  PATH inside the sandbox and in every shipped environment: the
//  compiler's directory is always /usr/bin or named absolutely.
#define INPUTS_SANDBOX_PATH         "/usr/bin:/bin"
//  Compiler identities remembered per process (path, size, mtime, inode):
//  a node sees a handful of compilers; computing one costs three spawns
//  and hashing a binary, so every job must not pay it.
#define COMPILER_IDENTITY_CACHE     32
//  Output of `compiler -dumpfullversion` and friends read when probing.
#define COMPILER_PROBE_OUTPUT_MAX   (64 * 1024)
//  The probe of a compiler (version, target, program names) is killed
//  after this: a compiler that hangs on -dumpversion is not one to use.
#define COMPILER_PROBE_TIMEOUT_MS   10000
//  Toolchain bind sets (directories and libraries bound read-only into
//  the sandbox) remembered per executor, one per compiler identity.
#define EXECUTOR_TOOLCHAIN_CACHE    16
//  Job directories an executor keeps made in advance (a few mkdir calls
//  fewer on each job's critical path).
#define EXECUTOR_SPARES             4
//  Read-only binds of one toolchain: compiler dirs plus each shared
//  library of cc1/cc1plus/as; a normal gcc needs about 20.
#define EXECUTOR_MAX_BINDS          256

//  Content-addressed cache (src/cache: blob_store, hash_cache).
//  Files are hashed in reads of this size: large enough that syscalls do
//  not dominate, small enough to stay in L2 while BLAKE2b runs over it.
#define BLOB_HASH_READ_SIZE         (64 * 1024)
//  zstd level of stored blobs: put is on a job's critical path, and level
//  1 compresses headers nearly as well as 3 at about twice the speed.
#define BLOB_STORE_ZSTD_LEVEL       1
//  SQLite busy timeout of blobs.db and hashes.db: write transactions hold
//  the lock for one row or one eviction batch (milliseconds), so waiting
//  this long means another process is wedged, not busy.
#define CACHE_DB_BUSY_MS            5000
//  last_used of a blob is rewritten only when older than this, so that a
//  hot header read by every job costs no write; LRU at 5 s resolution is
//  plenty when eviction horizons are hours.
#define BLOB_STORE_TOUCH_MS         5000
//  Temporary files under DIR/tmp older than this were left by a writer
//  that crashed (a live one renames within a second) and are removed
//  when a store opens.
#define BLOB_STORE_TMP_STALE_S      3600
//  hash_cache: a file modified less than this ago is hashed but not
//  remembered: a write in progress may not have moved mtime yet, and
//  coarse-mtime file systems tick at 1 s (ext3, some network mounts).
#define HASH_CACHE_RACY_MS          2000
//  listing_cache: listings kept in memory at the origin (an entry is a few
//  KB for a file with ~150 headers: thousands of files fit), and the same
//  racy window as the hash cache for the files and directories it stamps.
//  toolchains: a failed packaging of a compiler is tried again after this;
//  a node gossips the first TOOLCHAINS_PREFIX bytes of each archive hash
//  it holds (MESHCC_TOOLCHAIN_SUMMARY_MAX / 8 = 16 toolchains).
#define TOOLCHAINS_RETRY_MS         300000
#define TOOLCHAINS_PREFIX           8
//  A fetch whose archive no member gossips yet waits this long for one.
#define TOOLCHAINS_HOLDER_WAIT_MS   10000
//  How often DIR/toolchains is measured against --toolchain-cache-size.
#define TOOLCHAINS_EVICT_CHECK_MS   1000
//  A paused packaging (a node with a CPU quota, busy) looks again this often.
#define TOOLCHAINS_PAUSE_MS         50
//  The origin's listings kept in memory. An entry is ~100 KB for a file of
//  Open vSwitch (~200 headers, its search paths and guards), so 32 MiB
//  held 299 of OVS's 317 compiles: a build cycling through more entries
//  than fit gets no hit at all from LRU. 128 MiB holds ~1200 such.
#define LISTING_CACHE_BYTES         (128 * 1024 * 1024)
#define LISTING_RACY_MS             HASH_CACHE_RACY_MS
//  Job input blobs fetched from holders (issue 4, blob_fetch.c): fetches
//  running at once per node (a job missing 2000 headers queues the rest;
//  each running fetch holds a part file and up to FETCH_WINDOW requests,
//  so this bounds what one node asks of its holders at a time); and how
//  long a request waits for its link to a holder to connect before that
//  holder is given up for the blob (the job's own send retries as long).
#define BLOB_FETCH_MAX              64
#define BLOB_FETCH_CONNECT_MS       JOB_CONNECT_MS
//  Manifest files the origin samples per peer when it ranks the holders
//  it names in a JOB: enough to tell a warm peer from a cold one, while
//  keeping the loop's work per job independent of the manifest's size.
#define ORIGIN_HOLDER_SAMPLE        64

#endif
