//  gossip: the membership state machine of one node (see gossip.h).
//
//  Owns: every member record (self included), the tombstones of forgotten
//  members, the seed and hint endpoints, and its own PRNG. Never touches
//  sockets, clocks or files: time arrives as `now_ms`, messages go in and
//  out as gossip_msg_t values. That is what lets one test process run a
//  thousand simulated nodes.
//
//  Semantics, in the order a round applies them:
//
//  Member record. The gossiped peer_state_t is owned by the member itself;
//  we only ever replace our copy by one with a strictly higher
//  (incarnation, version), compared lexicographically. Next to it we keep a
//  local view: status, last_seen_ms (our time when its (incarnation,
//  version) last increased) and status_since_ms. Self is member 0, always
//  ALIVE until gossip_leave makes it LEFT.
//
//  Tick. (1) Heartbeat: our version += 1, publishing load set since the
//  last tick. (2) Local health (Lifeguard): if the previous tick is more
//  than stall_rounds intervals ago, *we* were the slow one, so nobody is
//  accused: every last_seen_ms and suspicion timer restarts at now. (3)
//  Failure detection, with N = members neither DEAD nor LEFT (self
//  included) and scale = max(1, log10 N): no heartbeat progress for
//  suspect_ms x scale makes a member SUSPECT. A SUSPECT member becomes DEAD
//  after a Lifeguard timeout: Min = confirm_min_ms x scale, Max =
//  confirm_max_mult x Min, K = confirmations (0 when N - 2 < K, as
//  memberlist does: a small mesh cannot supply K independent witnesses),
//  C = distinct other members that confirmed since the suspicion began;
//  timeout = K == 0 ? Min : max (Min, Max - (Max - Min) log(C+1)/log(K+1)).
//  A confirmation is implicit: a SYN from Z whose digest lists the suspect
//  at a version not newer than ours, or not at all, says Z has not heard
//  from it either. Any strictly newer state makes a SUSPECT or DEAD member
//  ALIVE again; a state with `left` makes it LEFT at once. (4) DEAD and
//  LEFT members are forgotten forget_ms after their status changed; a
//  tombstone keeps their (incarnation, version) for tombstone_ms so that a
//  straggler's stale copy cannot resurrect them. (5) Targets: `fanout`
//  random ALIVE or SUSPECT members; every 10th round one random DEAD member
//  too (heals partitions, as Cassandra does); every seed while no other
//  member is ALIVE, else one random seed every seed_retry_ms; and every
//  pending hint once unless a live member already has that endpoint.
//
//  Exchange (Scuttlebutt push-pull). SYN carries the digest of everything
//  we hold (SUSPECT, DEAD and LEFT too, so they are not re-sent) and our
//  own state. The ACK carries the states we hold newer than that digest,
//  those unknown to the peer first, then the largest version gap, random
//  among equals (so that many ACKs from one node spread different states),
//  capped at max_deltas; plus requests for what the peer holds newer. The
//  ACK2 answers the requests. A state about ourselves that is newer than
//  ours (or as new but different) is someone's stale or forged copy that
//  could override us: we refute it by raising our incarnation above it.
//
//  Cost: members live in an array with an open-addressing hash index, and
//  a compact parallel array of (id, incarnation, version) that is exactly a
//  digest, so a SYN is one memcpy and a received digest is one pass of
//  O(1) lookups; the top max_deltas candidates are chosen by quickselect.
//  In a 1000-node simulation the time goes to memory traffic (every
//  exchange moves up to 2 x max_deltas states of 320 bytes), so the hot
//  loops stay on compact arrays (digest lines, statuses, marks), batch
//  their hash lookups with prefetches, and leave member records alone
//  unless a state is actually copied.

#include <czmq.h>
#include <math.h>
#include "meshcc/gossip.h"

//  Distinct confirmers remembered per suspect. Lifeguard's K is 3; more
//  than this many witnesses cannot shorten the timeout further, so K is
//  clamped to it.
#define CONFIRM_TRACK       8
//  Seeds and hints are operator input and beacon noise: bounded so that a
//  beacon storm cannot grow them or the targets of one tick without limit.
#define SEEDS_MAX           64
#define HINTS_MAX           64
//  A DEAD member is retried every this many rounds.
#define DEAD_RETRY_ROUNDS   10

typedef char endpoint_t [MESHCC_ENDPOINT_MAX + 1];

typedef struct {
    gossip_member_t pub;                        //  first: handed out as is
    //  Allocated on a first confirmation, kept until the member goes:
    //  suspects are rare, and records stay small so that more of them fit
    //  in cache when a large mesh is merged.
    size_t  confirm_count;
    uint8_t (*confirmers) [MESHCC_ID_SIZE];
} member_t;

typedef struct {
    uint8_t  id [MESHCC_ID_SIZE];
    uint64_t incarnation;
    uint64_t version;
    int64_t  expiry_ms;
} tombstone_t;

//  A state we could send: `key` orders by priority, `index` is the member.
typedef struct {
    uint64_t key;
    uint32_t index;
} candidate_t;

struct _gossip_t {
    gossip_config_t config;
    //  Members, and in parallel their digest line, a scratch mark used
    //  while walking a received digest, and their status. All four move
    //  together. Self is always index 0.
    member_t        *members;
    gossip_digest_t *keys;
    uint32_t        *marks;
    uint8_t         *statuses;          //  copy of each pub.status, compact
    size_t           size;
    size_t           capacity;
    uint32_t         epoch;             //  current mark value
    //  Hash index: slot holds member index + 1, 0 is empty.
    uint32_t        *slots;
    size_t           slot_count;        //  power of two
    size_t           counts [4];        //  members per status, self included
    tombstone_t     *tombstones;
    size_t           tombstone_count;
    size_t           tombstone_capacity;
    endpoint_t       seeds [SEEDS_MAX];
    size_t           seed_count;
    endpoint_t       hints [HINTS_MAX];
    size_t           hint_count;
    uint64_t         rng;
    int64_t          last_tick_ms;
    int64_t          last_seed_ms;
    uint64_t         rounds;
    //  Load set by gossip_set_load, published with the next heartbeat so a
    //  given (incarnation, version) always names one content.
    bool             load_pending;
    uint8_t          toolchains [MESHCC_TOOLCHAIN_SUMMARY_MAX];
    uint16_t         toolchains_size;
    bool             toolchains_pending;
    uint32_t         load [5];
    candidate_t     *candidates;
    size_t           candidate_capacity;
    gossip_digest_t *requests;
    size_t           request_capacity;
    uint32_t        *picks;
    size_t           pick_capacity;
    ssize_t         *found;             //  results of s_index_find_many
    size_t           found_capacity;
    size_t          *positions;
    size_t           position_capacity;
    gossip_event_fn *handler;
    void            *handler_arg;
    gossip_stats_t   stats;
};

//  --------------------------------------------------------------------------
//  Small helpers

const char *
peer_status_name (peer_status_t status)
{
    switch (status) {
        case PEER_ALIVE:   return "alive";
        case PEER_SUSPECT: return "suspect";
        case PEER_DEAD:    return "dead";
        case PEER_LEFT:    return "left";
    }
    return "unknown";
}

//  splitmix64: tiny, good enough for peer choice, and seedable so that
//  simulations repeat exactly.
static uint64_t
s_rand (gossip_t *self)
{
    uint64_t z = (self->rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static size_t
s_rand_below (gossip_t *self, size_t n)
{
    return n? (size_t) (s_rand (self) % n): 0;
}

static bool
s_newer (uint64_t inc_a, uint64_t ver_a, uint64_t inc_b, uint64_t ver_b)
{
    return inc_a > inc_b || (inc_a == inc_b && ver_a > ver_b);
}

static bool
s_id_zero (const uint8_t *id)
{
    uint64_t a, b;
    memcpy (&a, id, 8);
    memcpy (&b, id + 8, 8);
    return (a | b) == 0;
}

static bool
s_id_eq (const uint8_t *a, const uint8_t *b)
{
    //  Two word compares, not memcmp: this runs millions of times in a
    //  large simulation and a library call (intercepted under ASan) costs.
    uint64_t a0, a1, b0, b1;
    memcpy (&a0, a, 8);
    memcpy (&a1, a + 8, 8);
    memcpy (&b0, b, 8);
    memcpy (&b1, b + 8, 8);
    return a0 == b0 && a1 == b1;
}

//  Ids are random in production but small integers in tests, so every
//  byte is mixed in.
static uint64_t
s_id_hash (const uint8_t *id)
{
    uint64_t a, b;
    memcpy (&a, id, 8);
    memcpy (&b, id + 8, 8);
    uint64_t z = a * 0x9E3779B97F4A7C15ULL ^ (b + 0x632BE59BD9B4E019ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

//  Same policy as zmalloc: running out of memory is fatal, so callers
//  never check.
static void *
s_realloc (void *array, size_t size)
{
    array = realloc (array, size);
    if (!array) {
        fprintf (stderr, "gossip: out of memory\n");
        abort ();
    }
    return array;
}

static void *
s_grow (void *array, size_t *capacity, size_t needed, size_t item_size)
{
    if (needed <= *capacity)
        return array;
    size_t new_capacity = *capacity? *capacity: 16;
    while (new_capacity < needed)
        new_capacity *= 2;
    *capacity = new_capacity;
    return s_realloc (array, new_capacity * item_size);
}

//  --------------------------------------------------------------------------
//  Hash index over member ids

static void
s_index_insert (gossip_t *self, size_t index)
{
    size_t mask = self->slot_count - 1;
    size_t slot = (size_t) s_id_hash (self->keys [index].id) & mask;
    while (self->slots [slot])
        slot = (slot + 1) & mask;
    self->slots [slot] = (uint32_t) index + 1;
}

//  Rebuilt from scratch after a removal (rare: forgetting) or when the
//  table passes half full; linear probing stays short below that.
static void
s_index_rebuild (gossip_t *self)
{
    size_t wanted = 16;
    while (wanted < self->capacity * 2)
        wanted *= 2;
    if (wanted != self->slot_count) {
        free (self->slots);
        self->slots = (uint32_t *) zmalloc (wanted * sizeof (uint32_t));
        self->slot_count = wanted;
    }
    else
        memset (self->slots, 0, wanted * sizeof (uint32_t));
    for (size_t index = 0; index < self->size; index++)
        s_index_insert (self, index);
}

static ssize_t
s_index_find (gossip_t *self, const uint8_t *id)
{
    size_t mask = self->slot_count - 1;
    size_t slot = (size_t) s_id_hash (id) & mask;
    while (self->slots [slot]) {
        size_t index = self->slots [slot] - 1;
        if (s_id_eq (self->keys [index].id, id))
            return (ssize_t) index;
        slot = (slot + 1) & mask;
    }
    return -1;
}

//  Looks up `count` ids lying `stride` bytes apart (digest lines or
//  states), writing member indices or -1 into self->found. One lookup is
//  two dependent cache misses (slot, then digest line) and a large mesh
//  spends most of its time in them, so the work is pipelined: the slot of
//  id i + 2D and the line of id i + D are prefetched while id i is probed,
//  and the misses overlap instead of queueing.
#define PREFETCH_DISTANCE 24
static void
s_index_find_many (gossip_t *self, const uint8_t *first_id, size_t stride, size_t count)
{
    self->found = (ssize_t *) s_grow (self->found, &self->found_capacity, count,
                                      sizeof (ssize_t));
    self->positions = (size_t *) s_grow (self->positions, &self->position_capacity, count,
                                         sizeof (size_t));
    size_t mask = self->slot_count - 1;
    //  For a long list, most of the table and of the digest lines will be
    //  touched anyway: stream them in first, which the hardware does far
    //  faster than as scattered misses.
    if (count * 4 >= self->size) {
        for (size_t slot = 0; slot < self->slot_count; slot += 16)
            __builtin_prefetch (&self->slots [slot]);
        for (size_t index = 0; index < self->size; index += 2)
            __builtin_prefetch (&self->keys [index]);
    }
    for (size_t step = 0; step < count + 2 * PREFETCH_DISTANCE; step++) {
        if (step < count) {
            size_t slot = (size_t) s_id_hash (first_id + step * stride) & mask;
            self->positions [step] = slot;
            __builtin_prefetch (&self->slots [slot]);
        }
        if (step >= PREFETCH_DISTANCE && step - PREFETCH_DISTANCE < count) {
            uint32_t entry = self->slots [self->positions [step - PREFETCH_DISTANCE]];
            if (entry)
                __builtin_prefetch (&self->keys [entry - 1]);
        }
        if (step >= 2 * PREFETCH_DISTANCE) {
            size_t item = step - 2 * PREFETCH_DISTANCE;
            const uint8_t *id = first_id + item * stride;
            size_t slot = self->positions [item];
            self->found [item] = -1;
            while (self->slots [slot]) {
                size_t index = self->slots [slot] - 1;
                if (s_id_eq (self->keys [index].id, id)) {
                    self->found [item] = (ssize_t) index;
                    break;
                }
                slot = (slot + 1) & mask;
            }
        }
    }
}

//  A member record spans several cache lines; fetch them all ahead of use.
static void
s_prefetch_member (gossip_t *self, ssize_t index)
{
    if (index >= 0) {
        const char *record = (const char *) &self->members [index];
        for (size_t offset = 0; offset < sizeof (member_t); offset += 64)
            __builtin_prefetch (record + offset);
    }
}

//  --------------------------------------------------------------------------
//  Member changes

static void
s_set_status (gossip_t *self, size_t index, peer_status_t status, int64_t now_ms)
{
    //  The compact copy answers the common "no change" without touching
    //  the record.
    if (self->statuses [index] == status)
        return;
    member_t *member = &self->members [index];
    peer_status_t old = member->pub.status;
    self->counts [old]--;
    self->counts [status]++;
    member->pub.status = status;
    self->statuses [index] = (uint8_t) status;
    member->pub.status_since_ms = now_ms;
    member->confirm_count = 0;
    if (self->handler)
        self->handler (self->handler_arg, &member->pub, (int) old);
}

//  Keeps the state and its digest line in step.
static void
s_store_state (gossip_t *self, size_t index, const peer_state_t *state)
{
    member_t *member = &self->members [index];
    member->pub.state = *state;
    //  A peer's strings are checked on receipt; ours are forced here too,
    //  so nothing we hand out can be unterminated.
    member->pub.state.name [MESHCC_NAME_MAX] = 0;
    member->pub.state.endpoint [MESHCC_ENDPOINT_MAX] = 0;
    memcpy (self->keys [index].id, state->id, MESHCC_ID_SIZE);
    self->keys [index].incarnation = state->incarnation;
    self->keys [index].version = state->version;
}

static size_t
s_add_member (gossip_t *self, const peer_state_t *state, peer_status_t status, int64_t now_ms)
{
    size_t index = self->size;
    bool grown = false;
    if (index == self->capacity) {
        //  The three parallel arrays always share one capacity.
        size_t capacity = self->capacity? self->capacity * 2: 16;
        self->members = (member_t *) s_realloc (self->members, capacity * sizeof (member_t));
        self->keys = (gossip_digest_t *) s_realloc (self->keys,
                                                    capacity * sizeof (gossip_digest_t));
        self->marks = (uint32_t *) s_realloc (self->marks, capacity * sizeof (uint32_t));
        self->statuses = (uint8_t *) s_realloc (self->statuses, capacity);
        self->capacity = capacity;
        grown = true;
    }

    member_t *member = &self->members [index];
    memset (member, 0, sizeof (*member));
    self->marks [index] = 0;
    s_store_state (self, index, state);
    member->pub.status = status;
    self->statuses [index] = (uint8_t) status;
    member->pub.is_self = index == 0;
    member->pub.last_seen_ms = now_ms;
    member->pub.status_since_ms = now_ms;
    self->size++;
    self->counts [status]++;
    if (grown || self->slot_count < self->capacity * 2)
        s_index_rebuild (self);
    else
        s_index_insert (self, index);
    return index;
}

static tombstone_t *
s_tombstone_find (gossip_t *self, const uint8_t *id)
{
    for (size_t i = 0; i < self->tombstone_count; i++)
        if (s_id_eq (self->tombstones [i].id, id))
            return &self->tombstones [i];
    return NULL;
}

static void
s_tombstone_remove (gossip_t *self, tombstone_t *tombstone)
{
    *tombstone = self->tombstones [--self->tombstone_count];
}

//  Our incarnation goes above whatever copy of us is out there; since
//  (incarnation, version) orders lexicographically, our next state then
//  beats that copy everywhere.
static void
s_refute (gossip_t *self, uint64_t their_incarnation)
{
    peer_state_t state = self->members [0].pub.state;
    uint64_t incarnation = state.incarnation > their_incarnation?
                           state.incarnation: their_incarnation;
    state.incarnation = incarnation + 1;
    s_store_state (self, 0, &state);
    self->stats.refutations++;
}

//  `found` is the member index of state->id, or -1 if it was not known
//  when looked up.
static void
s_merge_state (gossip_t *self, const peer_state_t *state, ssize_t found, int64_t now_ms)
{
    const peer_state_t *ours = &self->members [0].pub.state;
    if (s_id_eq (state->id, ours->id)) {
        //  Never adopt a copy of ourselves. An identical copy is just ours
        //  coming back; a newer one, or an equal one with other content
        //  (a previous life of ours with the same incarnation), must lose.
        bool newer = s_newer (state->incarnation, state->version,
                              ours->incarnation, ours->version);
        bool differs = state->incarnation == ours->incarnation
                    && state->version == ours->version
                    && (state->left != ours->left
                        || strcmp (state->endpoint, ours->endpoint) != 0
                        || strcmp (state->name, ours->name) != 0);
        if (newer || differs)
            s_refute (self, state->incarnation);
        else
            self->stats.states_stale++;
        return;
    }
    peer_status_t status = state->left? PEER_LEFT: PEER_ALIVE;
    if (found < 0) {
        tombstone_t *tombstone = s_tombstone_find (self, state->id);
        if (tombstone) {
            if (!s_newer (state->incarnation, state->version,
                          tombstone->incarnation, tombstone->version)) {
                self->stats.states_stale++;
                return;
            }
            s_tombstone_remove (self, tombstone);
        }
        if (self->size >= GOSSIP_MAX_MEMBERS) {
            self->stats.states_stale++;
            return;
        }
        size_t index = s_add_member (self, state, status, now_ms);
        self->stats.states_merged++;
        if (self->handler)
            self->handler (self->handler_arg, &self->members [index].pub, -1);
        return;
    }
    size_t index = (size_t) found;
    const gossip_digest_t *key = &self->keys [index];
    if (!s_newer (state->incarnation, state->version, key->incarnation, key->version)) {
        self->stats.states_stale++;
        return;
    }
    s_store_state (self, index, state);
    self->members [index].pub.last_seen_ms = now_ms;
    self->stats.states_merged++;
    s_set_status (self, index, status, now_ms);
}

static void
s_merge_states (gossip_t *self, const peer_state_t *states, size_t count, int64_t now_ms)
{
    if (count == 0)
        return;
    s_index_find_many (self, states [0].id, sizeof (peer_state_t), count);
    for (size_t i = 0; i < count; i++) {
        if (i + 4 < count)
            s_prefetch_member (self, self->found [i + 4]);
        ssize_t found = self->found [i];
        if (found < 0)
            //  It may have been added by an earlier state of this message.
            found = s_index_find (self, states [i].id);
        s_merge_state (self, &states [i], found, now_ms);
    }
}

//  --------------------------------------------------------------------------
//  Construction

void
gossip_config_defaults (gossip_config_t *config)
{
    config->interval_ms = GOSSIP_INTERVAL_MS;
    config->fanout = GOSSIP_FANOUT;
    config->suspect_ms = GOSSIP_SUSPECT_MS;
    config->confirm_min_ms = GOSSIP_CONFIRM_MIN_MS;
    config->confirm_max_mult = GOSSIP_CONFIRM_MAX_MULT;
    config->confirmations = GOSSIP_CONFIRMATIONS;
    config->forget_ms = GOSSIP_FORGET_MS;
    config->tombstone_ms = GOSSIP_TOMBSTONE_MS;
    config->seed_retry_ms = GOSSIP_SEED_RETRY_MS;
    config->max_deltas = GOSSIP_MAX_DELTAS;
    config->stall_rounds = GOSSIP_STALL_ROUNDS;
}

gossip_t *
gossip_new (const peer_state_t *self_state, const gossip_config_t *config,
            uint64_t rng_seed, int64_t now_ms)
{
    if (!self_state || s_id_zero (self_state->id))
        return NULL;
    gossip_t *self = (gossip_t *) zmalloc (sizeof (gossip_t));
    if (config)
        self->config = *config;
    else
        gossip_config_defaults (&self->config);
    //  A zero here would divide or never fire; fall back to the default.
    if (!self->config.max_deltas)
        self->config.max_deltas = GOSSIP_MAX_DELTAS;
    if (!self->config.confirm_max_mult)
        self->config.confirm_max_mult = 1;
    self->rng = rng_seed;
    self->last_tick_ms = now_ms;
    self->last_seed_ms = now_ms;
    self->epoch = 1;

    peer_state_t state = *self_state;
    state.proto = state.proto? state.proto: MESHCC_PROTO_VERSION;
    if (state.toolchains_size > MESHCC_TOOLCHAIN_SUMMARY_MAX)
        state.toolchains_size = MESHCC_TOOLCHAIN_SUMMARY_MAX;
    s_add_member (self, &state, state.left? PEER_LEFT: PEER_ALIVE, now_ms);
    return self;
}

void
gossip_destroy (gossip_t **self_p)
{
    if (self_p && *self_p) {
        gossip_t *self = *self_p;
        for (size_t index = 0; index < self->size; index++)
            free (self->members [index].confirmers);
        free (self->members);
        free (self->keys);
        free (self->marks);
        free (self->statuses);
        free (self->slots);
        free (self->tombstones);
        free (self->candidates);
        free (self->requests);
        free (self->picks);
        free (self->found);
        free (self->positions);
        free (self);
        *self_p = NULL;
    }
}

void
gossip_set_event_handler (gossip_t *self, gossip_event_fn *handler, void *arg)
{
    self->handler = handler;
    self->handler_arg = arg;
}

const peer_state_t *
gossip_self (gossip_t *self)
{
    return &self->members [0].pub.state;
}

void
gossip_set_load (gossip_t *self, uint32_t slots, uint32_t running, uint32_t queued,
                 uint32_t load_milli, uint32_t speed)
{
    self->load [0] = slots;
    self->load [1] = running;
    self->load [2] = queued;
    self->load [3] = load_milli;
    self->load [4] = speed;
    self->load_pending = true;
}

void
gossip_set_toolchains (gossip_t *self, const uint8_t *summary, size_t size)
{
    if (size > MESHCC_TOOLCHAIN_SUMMARY_MAX)
        size = MESHCC_TOOLCHAIN_SUMMARY_MAX;
    if (size)
        memcpy (self->toolchains, summary, size);
    self->toolchains_size = (uint16_t) size;
    self->toolchains_pending = true;
}

static void
s_endpoint_add (gossip_t *self, endpoint_t *list, size_t *count, size_t max,
                const char *endpoint)
{
    if (!endpoint || !*endpoint || strlen (endpoint) > MESHCC_ENDPOINT_MAX)
        return;
    if (streq (endpoint, self->members [0].pub.state.endpoint))
        return;
    for (size_t i = 0; i < *count; i++)
        if (streq (list [i], endpoint))
            return;
    if (*count >= max)
        return;
    snprintf (list [*count], sizeof (endpoint_t), "%s", endpoint);
    (*count)++;
}

void
gossip_add_seed (gossip_t *self, const char *endpoint)
{
    s_endpoint_add (self, self->seeds, &self->seed_count, SEEDS_MAX, endpoint);
}

void
gossip_add_hint (gossip_t *self, const char *endpoint)
{
    s_endpoint_add (self, self->hints, &self->hint_count, HINTS_MAX, endpoint);
}

//  --------------------------------------------------------------------------
//  Tick

static double
s_scale (gossip_t *self)
{
    size_t live = self->counts [PEER_ALIVE] + self->counts [PEER_SUSPECT];
    double scale = live > 1? log10 ((double) live): 0;
    return scale > 1? scale: 1;
}

//  Lifeguard's dynamic suspicion timeout: long when nobody else has
//  noticed (we might be the one with the bad link), down to Min once K
//  others agree.
static int64_t
s_suspicion_timeout (gossip_t *self, const member_t *member, double scale)
{
    size_t live = self->counts [PEER_ALIVE] + self->counts [PEER_SUSPECT];
    double min = self->config.confirm_min_ms * scale;
    double max = self->config.confirm_max_mult * min;
    size_t k = self->config.confirmations;
    if (k > CONFIRM_TRACK)
        k = CONFIRM_TRACK;
    if (live < k + 2)
        k = 0;
    if (k == 0)
        return (int64_t) min;
    size_t c = member->confirm_count < k? member->confirm_count: k;
    double timeout = max - (max - min) * log ((double) c + 1) / log ((double) k + 1);
    return (int64_t) (timeout > min? timeout: min);
}

static void
s_confirm (member_t *member, const uint8_t *from)
{
    for (size_t i = 0; i < member->confirm_count; i++)
        if (s_id_eq (member->confirmers [i], from))
            return;
    if (!member->confirmers)
        member->confirmers = (uint8_t (*) [MESHCC_ID_SIZE])
                             zmalloc (CONFIRM_TRACK * MESHCC_ID_SIZE);
    if (member->confirm_count < CONFIRM_TRACK)
        memcpy (member->confirmers [member->confirm_count++], from, MESHCC_ID_SIZE);
}

static void
s_detect_failures (gossip_t *self, int64_t now_ms)
{
    double scale = s_scale (self);
    int64_t suspect_after = (int64_t) (self->config.suspect_ms * scale);
    for (size_t index = 1; index < self->size; index++) {
        member_t *member = &self->members [index];
        if (member->pub.status == PEER_ALIVE) {
            if (now_ms - member->pub.last_seen_ms >= suspect_after)
                s_set_status (self, index, PEER_SUSPECT, now_ms);
        }
        else
        if (member->pub.status == PEER_SUSPECT) {
            if (now_ms - member->pub.status_since_ms
                >= s_suspicion_timeout (self, member, scale))
                s_set_status (self, index, PEER_DEAD, now_ms);
        }
    }
}

//  Removes DEAD and LEFT members past forget_ms, remembering tombstones.
//  Walks downward so that the last member, moved into a freed slot, has
//  already been looked at.
static void
s_forget (gossip_t *self, int64_t now_ms)
{
    for (size_t i = 0; i < self->tombstone_count; )
        if (self->tombstones [i].expiry_ms <= now_ms)
            s_tombstone_remove (self, &self->tombstones [i]);
        else
            i++;

    bool removed = false;
    for (size_t index = self->size - 1; index >= 1; index--) {
        if (self->statuses [index] != PEER_DEAD && self->statuses [index] != PEER_LEFT)
            continue;
        member_t *member = &self->members [index];
        if (now_ms - member->pub.status_since_ms < (int64_t) self->config.forget_ms)
            continue;
        self->tombstones = (tombstone_t *) s_grow (self->tombstones,
            &self->tombstone_capacity, self->tombstone_count + 1, sizeof (tombstone_t));
        tombstone_t *tombstone = &self->tombstones [self->tombstone_count++];
        memcpy (tombstone->id, member->pub.state.id, MESHCC_ID_SIZE);
        tombstone->incarnation = member->pub.state.incarnation;
        tombstone->version = member->pub.state.version;
        tombstone->expiry_ms = now_ms + self->config.tombstone_ms;
        self->counts [member->pub.status]--;
        free (member->confirmers);
        size_t last = self->size - 1;
        if (index != last) {
            self->members [index] = self->members [last];
            self->keys [index] = self->keys [last];
            self->marks [index] = self->marks [last];
            self->statuses [index] = self->statuses [last];
        }
        self->size--;
        removed = true;
    }
    if (removed)
        s_index_rebuild (self);
}

static void
s_target_add (gossip_t *self, char targets [][MESHCC_ENDPOINT_MAX + 1], size_t *count,
              size_t max_targets, const char *endpoint)
{
    if (*count >= max_targets || !*endpoint
    ||  streq (endpoint, self->members [0].pub.state.endpoint))
        return;
    for (size_t i = 0; i < *count; i++)
        if (streq (targets [i], endpoint))
            return;
    snprintf (targets [*count], MESHCC_ENDPOINT_MAX + 1, "%s", endpoint);
    (*count)++;
}

//  Puts up to `wanted` distinct random members in the given statuses into
//  targets: a partial Fisher-Yates over the eligible indices.
static void
s_target_members (gossip_t *self, bool alive_or_suspect, size_t wanted,
                  char targets [][MESHCC_ENDPOINT_MAX + 1], size_t *count, size_t max_targets)
{
    size_t eligible = 0;
    self->picks = (uint32_t *) s_grow (self->picks, &self->pick_capacity, self->size,
                                       sizeof (uint32_t));
    for (size_t index = 1; index < self->size; index++) {
        peer_status_t status = (peer_status_t) self->statuses [index];
        if (alive_or_suspect? (status == PEER_ALIVE || status == PEER_SUSPECT)
                            : status == PEER_DEAD)
            self->picks [eligible++] = (uint32_t) index;
    }
    for (size_t i = 0; i < eligible && wanted > 0 && *count < max_targets; i++) {
        size_t j = i + s_rand_below (self, eligible - i);
        uint32_t pick = self->picks [j];
        self->picks [j] = self->picks [i];
        self->picks [i] = pick;
        size_t before = *count;
        s_target_add (self, targets, count, max_targets,
                      self->members [pick].pub.state.endpoint);
        if (*count > before)
            wanted--;
    }
}

static bool
s_endpoint_alive (gossip_t *self, const char *endpoint)
{
    for (size_t index = 1; index < self->size; index++)
        if (self->members [index].pub.status == PEER_ALIVE
        &&  streq (self->members [index].pub.state.endpoint, endpoint))
            return true;
    return false;
}

size_t
gossip_tick (gossip_t *self, int64_t now_ms,
             char targets [][MESHCC_ENDPOINT_MAX + 1], size_t max_targets)
{
    //  (1) Heartbeat.
    peer_state_t state = self->members [0].pub.state;
    state.version++;
    if (self->load_pending) {
        state.slots = self->load [0];
        state.running = self->load [1];
        state.queued = self->load [2];
        state.load_milli = self->load [3];
        state.speed = self->load [4];
        self->load_pending = false;
    }
    if (self->toolchains_pending) {
        memcpy (state.toolchains, self->toolchains, self->toolchains_size);
        state.toolchains_size = self->toolchains_size;
        self->toolchains_pending = false;
    }
    s_store_state (self, 0, &state);
    self->members [0].pub.last_seen_ms = now_ms;

    //  (2) Local health: a late tick means we did not hear anyone because
    //  we were not running, not because they died.
    int64_t stall_ms = (int64_t) self->config.stall_rounds * self->config.interval_ms;
    if (now_ms - self->last_tick_ms > stall_ms) {
        self->stats.stalls++;
        for (size_t index = 1; index < self->size; index++) {
            member_t *member = &self->members [index];
            member->pub.last_seen_ms = now_ms;
            if (member->pub.status == PEER_SUSPECT) {
                member->pub.status_since_ms = now_ms;
                member->confirm_count = 0;
            }
        }
    }
    else
        //  (3) Failure detection.
        s_detect_failures (self, now_ms);
    self->last_tick_ms = now_ms;

    //  (4) Forgetting.
    s_forget (self, now_ms);

    //  (5) Targets.
    size_t count = 0;
    self->rounds++;
    s_target_members (self, true, self->config.fanout, targets, &count, max_targets);
    if (self->rounds % DEAD_RETRY_ROUNDS == 0 && self->counts [PEER_DEAD] > 0)
        s_target_members (self, false, 1, targets, &count, max_targets);

    size_t others_alive = self->counts [PEER_ALIVE]
                        - (self->members [0].pub.status == PEER_ALIVE? 1: 0);
    if (self->seed_count > 0) {
        if (others_alive == 0) {
            for (size_t i = 0; i < self->seed_count; i++)
                s_target_add (self, targets, &count, max_targets, self->seeds [i]);
            self->last_seed_ms = now_ms;
        }
        else
        if (now_ms - self->last_seed_ms >= (int64_t) self->config.seed_retry_ms) {
            s_target_add (self, targets, &count, max_targets,
                          self->seeds [s_rand_below (self, self->seed_count)]);
            self->last_seed_ms = now_ms;
        }
    }
    for (size_t i = 0; i < self->hint_count; i++)
        if (!s_endpoint_alive (self, self->hints [i]))
            s_target_add (self, targets, &count, max_targets, self->hints [i]);
    self->hint_count = 0;
    return count;
}

//  --------------------------------------------------------------------------
//  Messages

gossip_msg_t *
gossip_syn (gossip_t *self)
{
    gossip_msg_t *msg = gossip_msg_new (GOSSIP_SYN, self->size, 1);
    memcpy (msg->from, self->keys [0].id, MESHCC_ID_SIZE);
    //  The digest array is kept in exactly this shape for this memcpy.
    memcpy (msg->digest, self->keys, self->size * sizeof (gossip_digest_t));
    msg->states [0] = self->members [0].pub.state;
    return msg;
}

static bool
s_string_ok (const char *string, size_t size)
{
    //  Arrays are NUL-padded in practice: the last byte settles it.
    return string [size - 1] == 0 || memchr (string, 0, size) != NULL;
}

//  Everything a peer could get wrong is checked before anything changes,
//  so a rejected message leaves no trace but the counter.
static bool
s_msg_valid (gossip_t *self, const gossip_msg_t *msg)
{
    if (msg->type != GOSSIP_SYN && msg->type != GOSSIP_ACK && msg->type != GOSSIP_ACK2)
        return false;
    if (msg->digest_count > GOSSIP_MAX_MEMBERS || msg->state_count > GOSSIP_MAX_MEMBERS)
        return false;
    if ((msg->digest_count && !msg->digest) || (msg->state_count && !msg->states))
        return false;
    if (s_id_zero (msg->from) || s_id_eq (msg->from, self->keys [0].id))
        return false;
    if (msg->type == GOSSIP_SYN
    && (msg->state_count < 1 || !s_id_eq (msg->states [0].id, msg->from)))
        return false;
    for (size_t i = 0; i < msg->digest_count; i++)
        if (s_id_zero (msg->digest [i].id))
            return false;
    for (size_t i = 0; i < msg->state_count; i++) {
        const peer_state_t *state = &msg->states [i];
        if (s_id_zero (state->id)
        ||  !s_string_ok (state->name, sizeof (state->name))
        ||  !s_string_ok (state->endpoint, sizeof (state->endpoint))
        ||  state->toolchains_size > MESHCC_TOOLCHAIN_SUMMARY_MAX)
            return false;
    }
    return true;
}

//  Priority of a candidate state: unknown to the peer first, then the
//  largest version gap (a new incarnation counts as nearly unknown); the
//  low 24 bits are random, so equal candidates are spread differently in
//  each reply instead of every reply carrying the same first max_deltas.
#define GAP_BITS    39
#define GAP_UNKNOWN ((1ULL << GAP_BITS) - 1)
static uint64_t
s_candidate_key (gossip_t *self, size_t index, bool known,
                 uint64_t their_incarnation, uint64_t their_version)
{
    uint64_t gap;
    if (!known)
        gap = GAP_UNKNOWN;
    else
    if (self->keys [index].incarnation != their_incarnation)
        gap = GAP_UNKNOWN - 1;
    else {
        gap = self->keys [index].version - their_version;
        if (gap > GAP_UNKNOWN - 2)
            gap = GAP_UNKNOWN - 2;
    }
    return gap << 24 | (s_rand (self) & 0xFFFFFF);
}

static void
s_candidate_add (gossip_t *self, size_t *count, size_t index, uint64_t key)
{
    self->candidates = (candidate_t *) s_grow (self->candidates, &self->candidate_capacity,
                                               *count + 1, sizeof (candidate_t));
    self->candidates [*count].index = (uint32_t) index;
    self->candidates [*count].key = key;
    (*count)++;
}

//  Moves the k highest keys to the front (in no particular order):
//  quickselect, O(n) on average, instead of sorting every member for every
//  reply.
static void
s_select_top (candidate_t *items, size_t count, size_t k)
{
    if (k >= count)
        return;
    size_t lo = 0, hi = count - 1;
    while (lo < hi) {
        uint64_t pivot = items [lo + (hi - lo) / 2].key;
        size_t i = lo, j = hi;
        while (i <= j) {
            while (items [i].key > pivot)
                i++;
            while (items [j].key < pivot)
                j--;
            if (i <= j) {
                candidate_t swap = items [i];
                items [i] = items [j];
                items [j] = swap;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        //  Now [lo..j] >= pivot >= [i..hi]; keep the side holding index k.
        if (k <= j)
            hi = j;
        else
        if (k >= i)
            lo = i;
        else
            return;
    }
}

static gossip_msg_t *
s_reply (gossip_t *self, gossip_type_t type, size_t candidate_count,
         const gossip_digest_t *requests, size_t request_count)
{
    size_t state_count = candidate_count < self->config.max_deltas?
                         candidate_count: self->config.max_deltas;
    if (state_count == 0 && request_count == 0)
        return NULL;
    s_select_top (self->candidates, candidate_count, state_count);
    gossip_msg_t *reply = gossip_msg_new (type, request_count, state_count);
    memcpy (reply->from, self->keys [0].id, MESHCC_ID_SIZE);
    if (request_count)
        memcpy (reply->digest, requests, request_count * sizeof (gossip_digest_t));
    for (size_t i = 0; i < state_count; i++) {
        if (i + 4 < state_count)
            s_prefetch_member (self, (ssize_t) self->candidates [i + 4].index);
        reply->states [i] = self->members [self->candidates [i].index].pub.state;
    }
    return reply;
}

static void
s_next_epoch (gossip_t *self)
{
    if (++self->epoch == 0) {
        memset (self->marks, 0, self->size * sizeof (uint32_t));
        self->epoch = 1;
    }
}

//  SYN: one pass over their digest (O(1) lookups) and one over our
//  members, collecting what they lack, what we lack, and confirmations of
//  our suspicions.
static gossip_msg_t *
s_receive_syn (gossip_t *self, const gossip_msg_t *msg, int64_t now_ms)
{
    s_merge_states (self, msg->states, msg->state_count, now_ms);

    s_next_epoch (self);
    size_t candidate_count = 0;
    size_t request_count = 0;
    //  Suspects are rare; checking the count and the compact status array
    //  keeps this loop off the member records (a cache miss each, most of
    //  the cost of a SYN in a large mesh).
    bool suspects = self->counts [PEER_SUSPECT] > 0;
    self->requests = (gossip_digest_t *) s_grow (self->requests, &self->request_capacity,
                                                 msg->digest_count + 1,
                                                 sizeof (gossip_digest_t));
    if (msg->digest_count)
        s_index_find_many (self, msg->digest [0].id, sizeof (gossip_digest_t),
                           msg->digest_count);
    for (size_t i = 0; i < msg->digest_count; i++) {
        const gossip_digest_t *entry = &msg->digest [i];
        ssize_t found = self->found [i];
        if (found < 0) {
            tombstone_t *tombstone = s_tombstone_find (self, entry->id);
            if (tombstone && !s_newer (entry->incarnation, entry->version,
                                       tombstone->incarnation, tombstone->version))
                continue;
            gossip_digest_t *request = &self->requests [request_count++];
            memcpy (request->id, entry->id, MESHCC_ID_SIZE);
            request->incarnation = 0;
            request->version = 0;
            continue;
        }
        size_t index = (size_t) found;
        if (self->marks [index] == self->epoch)
            continue;               //  listed twice: the first line counts
        self->marks [index] = self->epoch;
        const gossip_digest_t *ours = &self->keys [index];
        bool ours_newer = s_newer (ours->incarnation, ours->version,
                                   entry->incarnation, entry->version);
        bool theirs_newer = s_newer (entry->incarnation, entry->version,
                                     ours->incarnation, ours->version);
        if (ours_newer)
            s_candidate_add (self, &candidate_count, index,
                s_candidate_key (self, index, true, entry->incarnation, entry->version));
        if (index == 0) {
            //  They hold a newer copy of us than we are: refute it now,
            //  rather than fetch it only to refute it later.
            if (theirs_newer)
                s_refute (self, entry->incarnation);
            continue;
        }
        if (theirs_newer) {
            self->requests [request_count++] = *ours;
        }
        else
        if (suspects
        &&  self->statuses [index] == PEER_SUSPECT
        &&  !s_id_eq (ours->id, msg->from))
            s_confirm (&self->members [index], msg->from);
    }
    for (size_t index = 0; index < self->size; index++) {
        if (self->marks [index] == self->epoch)
            continue;
        s_candidate_add (self, &candidate_count, index,
                         s_candidate_key (self, index, false, 0, 0));
        if (suspects
        &&  self->statuses [index] == PEER_SUSPECT
        &&  !s_id_eq (self->keys [index].id, msg->from))
            s_confirm (&self->members [index], msg->from);
    }
    return s_reply (self, GOSSIP_ACK, candidate_count, self->requests, request_count);
}

//  ACK: merge, then answer their requests with what we hold newer.
static gossip_msg_t *
s_receive_ack (gossip_t *self, const gossip_msg_t *msg, int64_t now_ms)
{
    s_merge_states (self, msg->states, msg->state_count, now_ms);

    s_next_epoch (self);
    size_t candidate_count = 0;
    if (msg->digest_count)
        s_index_find_many (self, msg->digest [0].id, sizeof (gossip_digest_t),
                           msg->digest_count);
    for (size_t i = 0; i < msg->digest_count; i++) {
        const gossip_digest_t *request = &msg->digest [i];
        ssize_t found = self->found [i];
        if (found < 0 || self->marks [found] == self->epoch)
            continue;
        size_t index = (size_t) found;
        self->marks [index] = self->epoch;
        const gossip_digest_t *ours = &self->keys [index];
        if (s_newer (ours->incarnation, ours->version, request->incarnation, request->version)) {
            bool known = request->incarnation || request->version;
            s_candidate_add (self, &candidate_count, index,
                s_candidate_key (self, index, known, request->incarnation, request->version));
        }
    }
    return s_reply (self, GOSSIP_ACK2, candidate_count, NULL, 0);
}

gossip_msg_t *
gossip_receive (gossip_t *self, const gossip_msg_t *msg, int64_t now_ms)
{
    self->stats.received++;
    if (!msg || !s_msg_valid (self, msg)) {
        self->stats.rejected++;
        return NULL;
    }
    switch (msg->type) {
        case GOSSIP_SYN:
            return s_receive_syn (self, msg, now_ms);
        case GOSSIP_ACK:
            return s_receive_ack (self, msg, now_ms);
        case GOSSIP_ACK2:
            s_merge_states (self, msg->states, msg->state_count, now_ms);
            return NULL;
    }
    return NULL;
}

size_t
gossip_leave (gossip_t *self, char targets [][MESHCC_ENDPOINT_MAX + 1], size_t max_targets)
{
    peer_state_t state = self->members [0].pub.state;
    state.left = true;
    state.version++;
    s_store_state (self, 0, &state);
    s_set_status (self, 0, PEER_LEFT, self->last_tick_ms);
    size_t count = 0;
    s_target_members (self, true, max_targets, targets, &count, max_targets);
    return count;
}

//  --------------------------------------------------------------------------
//  Queries

size_t
gossip_size (gossip_t *self)
{
    return self->size;
}

const gossip_member_t *
gossip_member (gossip_t *self, size_t index)
{
    return index < self->size? &self->members [index].pub: NULL;
}

const gossip_member_t *
gossip_lookup (gossip_t *self, const uint8_t *id)
{
    ssize_t found = s_index_find (self, id);
    return found < 0? NULL: &self->members [found].pub;
}

size_t
gossip_count (gossip_t *self, peer_status_t status)
{
    return (unsigned) status < 4? self->counts [status]: 0;
}

const gossip_stats_t *
gossip_stats (gossip_t *self)
{
    return &self->stats;
}

//  --------------------------------------------------------------------------
//  Self-test: three nodes exchanging messages by hand.

static void
s_test_state (peer_state_t *state, uint8_t id, const char *endpoint)
{
    memset (state, 0, sizeof (*state));
    state->id [0] = id;
    state->incarnation = 1;
    snprintf (state->name, sizeof (state->name), "node%d", id);
    snprintf (state->endpoint, sizeof (state->endpoint), "%s", endpoint);
    state->proto = MESHCC_PROTO_VERSION;
}

//  Full push-pull from `from` to `to`; returns how many messages flowed.
static int
s_test_exchange (gossip_t *from, gossip_t *to, int64_t now_ms)
{
    int messages = 1;
    gossip_msg_t *syn = gossip_syn (from);
    gossip_msg_t *ack = gossip_receive (to, syn, now_ms);
    gossip_msg_destroy (&syn);
    if (ack) {
        messages++;
        gossip_msg_t *ack2 = gossip_receive (from, ack, now_ms);
        gossip_msg_destroy (&ack);
        if (ack2) {
            messages++;
            gossip_msg_t *none = gossip_receive (to, ack2, now_ms);
            assert (none == NULL);
            gossip_msg_destroy (&ack2);
        }
    }
    return messages;
}

static void
s_test_count_events (void *arg, const gossip_member_t *member, int old_status)
{
    (void) member;
    (void) old_status;
    (*(int *) arg)++;
}

void
gossip_test (bool verbose)
{
    if (verbose)
        printf (" * gossip: ");

    peer_state_t state;
    s_test_state (&state, 1, "tcp://10.0.0.1:7370");
    gossip_t *a = gossip_new (&state, NULL, 1, 0);
    s_test_state (&state, 2, "tcp://10.0.0.2:7370");
    gossip_t *b = gossip_new (&state, NULL, 2, 0);
    s_test_state (&state, 3, "tcp://10.0.0.3:7370");
    gossip_t *c = gossip_new (&state, NULL, 3, 0);
    assert (a && b && c);
    assert (gossip_size (a) == 1);
    assert (gossip_count (a, PEER_ALIVE) == 1);
    assert (gossip_member (a, 0)->is_self);
    int events = 0;
    gossip_set_event_handler (a, s_test_count_events, &events);

    //  a knows b as a seed only: the seed is a target, not a member.
    endpoint_t targets [8];
    gossip_add_seed (a, "tcp://10.0.0.2:7370");
    gossip_add_seed (a, "tcp://10.0.0.1:7370");          //  ourselves: ignored
    size_t count = gossip_tick (a, 200, targets, 8);
    assert (count == 1);
    assert (streq (targets [0], "tcp://10.0.0.2:7370"));
    assert (gossip_size (a) == 1);

    //  SYN a -> b registers a at b; the ACK brings b to a and asks for
    //  nothing more (b already has a's state from states[0]).
    assert (s_test_exchange (a, b, 200) == 2);
    assert (gossip_size (a) == 2 && gossip_size (b) == 2);
    assert (events == 1);
    uint8_t id_b [MESHCC_ID_SIZE] = { 2 };
    uint8_t id_c [MESHCC_ID_SIZE] = { 3 };
    assert (gossip_lookup (a, id_b)->status == PEER_ALIVE);

    //  c joins through b; a learns of c from b, and b of newer a.
    s_test_exchange (c, b, 200);
    assert (gossip_size (b) == 3);
    gossip_tick (a, 400, targets, 8);
    s_test_exchange (b, a, 400);
    assert (gossip_size (a) == 3);
    assert (gossip_lookup (b, gossip_self (a)->id)->state.version
            == gossip_self (a)->version);

    //  Newer wins, stale is ignored.
    gossip_tick (c, 400, targets, 8);
    gossip_set_load (c, 8, 1, 0, 500, 1000);
    gossip_tick (c, 600, targets, 8);
    uint64_t c_version = gossip_self (c)->version;
    assert (gossip_self (c)->slots == 8);
    s_test_exchange (c, a, 600);
    const gossip_member_t *member = gossip_lookup (a, id_c);
    assert (member->state.version == c_version && member->state.slots == 8);
    peer_state_t stale = member->state;
    stale.version--;
    stale.slots = 1;
    gossip_msg_t *ack2 = gossip_msg_new (GOSSIP_ACK2, 0, 1);
    ack2->from [0] = 3;
    ack2->states [0] = stale;
    gossip_receive (a, ack2, 600);
    assert (gossip_lookup (a, id_c)->state.slots == 8);
    assert (gossip_stats (a)->states_stale >= 1);

    //  A leaving node is LEFT at once wherever its state arrives.
    endpoint_t leave_targets [4];
    size_t leave_count = gossip_leave (c, leave_targets, 4);
    assert (leave_count == 2);
    assert (gossip_count (c, PEER_LEFT) == 1);
    s_test_exchange (c, a, 600);
    assert (gossip_lookup (a, id_c)->status == PEER_LEFT);

    //  Failure detection: b stops; a (small mesh, K = 0) suspects it after
    //  suspect_ms and declares it dead confirm_min_ms later.
    int64_t now = 600;
    while (gossip_lookup (a, id_b)->status == PEER_ALIVE && now < 5000) {
        now += 200;
        gossip_tick (a, now, targets, 8);
    }
    assert (gossip_lookup (a, id_b)->status == PEER_SUSPECT);
    assert (now >= 200 + GOSSIP_SUSPECT_MS);
    int64_t suspected = now;
    while (gossip_lookup (a, id_b)->status == PEER_SUSPECT && now < 10000) {
        now += 200;
        gossip_tick (a, now, targets, 8);
    }
    assert (gossip_lookup (a, id_b)->status == PEER_DEAD);
    assert (now - suspected >= GOSSIP_CONFIRM_MIN_MS);

    //  b comes back with news: alive again.
    gossip_tick (b, now, targets, 8);
    s_test_exchange (b, a, now);
    assert (gossip_lookup (a, id_b)->status == PEER_ALIVE);
    assert (gossip_stats (a)->rejected == 0);

    gossip_msg_destroy (&ack2);
    gossip_destroy (&a);
    gossip_destroy (&b);
    gossip_destroy (&c);
    assert (a == NULL);
    if (verbose)
        printf ("OK\n");
}
