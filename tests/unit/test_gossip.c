//  test_gossip: unit tests of the gossip state machine through its public
//  API only, plus the acceptance simulation: a thousand nodes in one
//  process, lossy and reordering delivery, convergence and failure
//  detection within computed bounds. Every random choice is seeded, so a
//  failure repeats exactly.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include <cmocka.h>
#include "meshcc/gossip.h"

typedef char endpoint_t [MESHCC_ENDPOINT_MAX + 1];

//  --------------------------------------------------------------------------
//  Helpers

static void
make_state (peer_state_t *state, uint32_t number, uint64_t incarnation, uint64_t version)
{
    memset (state, 0, sizeof (*state));
    state->id [0] = (uint8_t) (number >> 24);
    state->id [1] = (uint8_t) (number >> 16);
    state->id [2] = (uint8_t) (number >> 8);
    state->id [3] = (uint8_t) number;
    state->id [15] = 0xA5;
    state->incarnation = incarnation;
    state->version = version;
    snprintf (state->name, sizeof (state->name), "node%u", number);
    snprintf (state->endpoint, sizeof (state->endpoint), "sim://%u", number);
    state->proto = MESHCC_PROTO_VERSION;
}

static uint32_t
id_number (const uint8_t *id)
{
    return (uint32_t) id [0] << 24 | (uint32_t) id [1] << 16
         | (uint32_t) id [2] << 8 | id [3];
}

//  An ACK2 from `from` carrying one state: the simplest way to hand a
//  node a state as if it came from the mesh.
static gossip_msg_t *
ack2_with (const peer_state_t *from, const peer_state_t *state)
{
    gossip_msg_t *msg = gossip_msg_new (GOSSIP_ACK2, 0, 1);
    memcpy (msg->from, from->id, MESHCC_ID_SIZE);
    msg->states [0] = *state;
    return msg;
}

static void
deliver (gossip_t *node, gossip_msg_t *msg, int64_t now_ms)
{
    gossip_msg_t *reply = gossip_receive (node, msg, now_ms);
    gossip_msg_destroy (&reply);
    gossip_msg_destroy (&msg);
}

typedef struct {
    int events;
    int last_old;
    peer_status_t last_status;
} event_log_t;

static void
log_event (void *arg, const gossip_member_t *member, int old_status)
{
    event_log_t *log = (event_log_t *) arg;
    log->events++;
    log->last_old = old_status;
    log->last_status = member->status;
}

//  Ticks every 200 ms until `id` reaches `status` at `node`; returns the
//  time, or -1 after `limit_ms`.
static int64_t
tick_until (gossip_t *node, const uint8_t *id, peer_status_t status,
            int64_t *now_ms, int64_t limit_ms)
{
    endpoint_t targets [8];
    while (*now_ms < limit_ms) {
        *now_ms += GOSSIP_INTERVAL_MS;
        gossip_tick (node, *now_ms, targets, 8);
        const gossip_member_t *member = gossip_lookup (node, id);
        if (member && member->status == status)
            return *now_ms;
    }
    return -1;
}

//  --------------------------------------------------------------------------
//  1. Self-test

static void
test_selftest (void **state)
{
    (void) state;
    gossip_test (false);
}

//  --------------------------------------------------------------------------
//  2. Merge rules

static void
test_merge (void **unused)
{
    (void) unused;
    peer_state_t a_state, b_state;
    make_state (&a_state, 1, 1, 0);
    make_state (&b_state, 2, 1, 5);
    gossip_t *a = gossip_new (&a_state, NULL, 7, 0);
    assert_non_null (a);
    event_log_t log = { 0 };
    gossip_set_event_handler (a, log_event, &log);

    deliver (a, ack2_with (&b_state, &b_state), 0);
    assert_int_equal (gossip_size (a), 2);
    assert_int_equal (log.events, 1);
    assert_int_equal (log.last_old, -1);
    assert_int_equal (log.last_status, PEER_ALIVE);

    //  Newer version wins.
    peer_state_t newer = b_state;
    newer.version = 7;
    newer.slots = 4;
    deliver (a, ack2_with (&b_state, &newer), 100);
    const gossip_member_t *b = gossip_lookup (a, b_state.id);
    assert_int_equal (b->state.version, 7);
    assert_int_equal (b->state.slots, 4);
    assert_int_equal (b->last_seen_ms, 100);

    //  Stale (and equal) copies are ignored.
    uint64_t stale_before = gossip_stats (a)->states_stale;
    peer_state_t stale = b_state;
    stale.version = 6;
    stale.slots = 99;
    deliver (a, ack2_with (&b_state, &stale), 150);
    deliver (a, ack2_with (&b_state, &newer), 150);
    b = gossip_lookup (a, b_state.id);
    assert_int_equal (b->state.version, 7);
    assert_int_equal (b->state.slots, 4);
    assert_int_equal (b->last_seen_ms, 100);
    assert_int_equal (gossip_stats (a)->states_stale, stale_before + 2);

    //  Left is shown at once.
    peer_state_t c_state;
    make_state (&c_state, 3, 1, 3);
    deliver (a, ack2_with (&b_state, &c_state), 200);
    c_state.version = 4;
    c_state.left = true;
    deliver (a, ack2_with (&b_state, &c_state), 200);
    assert_int_equal (gossip_lookup (a, c_state.id)->status, PEER_LEFT);
    assert_int_equal (log.last_old, PEER_ALIVE);
    assert_int_equal (log.last_status, PEER_LEFT);
    assert_int_equal (gossip_count (a, PEER_LEFT), 1);

    //  b stops: dead after suspect_ms + confirm_min_ms (a tiny mesh has no
    //  witnesses, so K = 0). Then b restarts: higher incarnation, version
    //  counting from 1 again, replaces the old copy and is alive.
    int64_t now = 200;
    assert_true (tick_until (a, b_state.id, PEER_DEAD, &now, 10000) > 0);
    assert_true (now >= 100 + GOSSIP_SUSPECT_MS + GOSSIP_CONFIRM_MIN_MS);
    int events_before = log.events;
    peer_state_t restarted = b_state;
    restarted.incarnation = 2;
    restarted.version = 1;
    deliver (a, ack2_with (&b_state, &restarted), now);
    b = gossip_lookup (a, b_state.id);
    assert_int_equal (b->status, PEER_ALIVE);
    assert_int_equal (b->state.incarnation, 2);
    assert_int_equal (b->state.version, 1);
    assert_int_equal (log.events, events_before + 1);
    assert_int_equal (log.last_old, PEER_DEAD);
    assert_int_equal (gossip_count (a, PEER_ALIVE), 2);
    assert_int_equal (gossip_count (a, PEER_DEAD), 0);
    gossip_destroy (&a);
    assert_null (a);
}

//  --------------------------------------------------------------------------
//  3. Seeds and hints

static bool
has_target (endpoint_t *targets, size_t count, const char *endpoint)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp (targets [i], endpoint) == 0)
            return true;
    return false;
}

static void
test_seeds_hints (void **unused)
{
    (void) unused;
    peer_state_t a_state, b_state;
    make_state (&a_state, 1, 1, 0);
    make_state (&b_state, 2, 1, 1);
    gossip_t *a = gossip_new (&a_state, NULL, 7, 0);
    gossip_add_seed (a, "sim://100");
    gossip_add_seed (a, "sim://100");           //  duplicate
    gossip_add_seed (a, "sim://1");             //  ourselves
    gossip_add_hint (a, "sim://200");
    gossip_add_hint (a, "sim://1");             //  ourselves
    endpoint_t targets [8];
    size_t count = gossip_tick (a, 200, targets, 8);
    assert_int_equal (count, 2);
    assert_true (has_target (targets, count, "sim://100"));
    assert_true (has_target (targets, count, "sim://200"));
    assert_int_equal (gossip_size (a), 1);

    //  The hint was used once; the seed is retried while nobody is alive.
    count = gossip_tick (a, 400, targets, 8);
    assert_int_equal (count, 1);
    assert_string_equal (targets [0], "sim://100");
    assert_int_equal (gossip_size (a), 1);
    //  max_targets is respected.
    gossip_add_hint (a, "sim://201");
    count = gossip_tick (a, 600, targets, 1);
    assert_int_equal (count, 1);

    //  A member appears only when a message brings its state.
    gossip_msg_t *syn = gossip_msg_new (GOSSIP_SYN, 1, 1);
    memcpy (syn->from, b_state.id, MESHCC_ID_SIZE);
    syn->states [0] = b_state;
    memcpy (syn->digest [0].id, b_state.id, MESHCC_ID_SIZE);
    syn->digest [0].incarnation = 1;
    syn->digest [0].version = 1;
    deliver (a, syn, 600);
    assert_int_equal (gossip_size (a), 2);

    //  Now someone is alive: the seed waits for seed_retry_ms, and a hint
    //  for b's endpoint is skipped because b is a live member.
    gossip_add_hint (a, "sim://2");
    count = gossip_tick (a, 800, targets, 8);
    assert_int_equal (count, 1);
    assert_string_equal (targets [0], "sim://2");
    gossip_add_hint (a, "sim://2");
    gossip_add_hint (a, "sim://300");
    count = gossip_tick (a, 1000, targets, 8);
    assert_int_equal (count, 2);
    assert_true (has_target (targets, count, "sim://2"));
    assert_true (has_target (targets, count, "sim://300"));
    gossip_destroy (&a);
}

//  --------------------------------------------------------------------------
//  4. Malformed messages

static gossip_msg_t *
valid_syn (const peer_state_t *from)
{
    gossip_msg_t *msg = gossip_msg_new (GOSSIP_SYN, 1, 1);
    memcpy (msg->from, from->id, MESHCC_ID_SIZE);
    msg->states [0] = *from;
    memcpy (msg->digest [0].id, from->id, MESHCC_ID_SIZE);
    msg->digest [0].incarnation = from->incarnation;
    msg->digest [0].version = from->version;
    return msg;
}

static void
test_malformed (void **unused)
{
    (void) unused;
    peer_state_t a_state, b_state, c_state;
    make_state (&a_state, 1, 1, 0);
    make_state (&b_state, 2, 1, 1);
    make_state (&c_state, 3, 1, 1);
    gossip_t *a = gossip_new (&a_state, NULL, 7, 0);
    event_log_t log = { 0 };
    gossip_set_event_handler (a, log_event, &log);

    gossip_msg_t *bad [16];
    size_t count = 0;
    gossip_msg_t *msg;

    msg = valid_syn (&b_state);                 //  zero sender
    memset (msg->from, 0, MESHCC_ID_SIZE);
    bad [count++] = msg;
    msg = valid_syn (&b_state);                 //  states[0] is not the sender
    msg->states [0] = c_state;
    bad [count++] = msg;
    msg = gossip_msg_new (GOSSIP_SYN, 0, 0);    //  SYN without a state
    memcpy (msg->from, b_state.id, MESHCC_ID_SIZE);
    bad [count++] = msg;
    msg = valid_syn (&b_state);                 //  unterminated name
    memset (msg->states [0].name, 'x', sizeof (msg->states [0].name));
    bad [count++] = msg;
    msg = valid_syn (&b_state);                 //  unterminated endpoint
    memset (msg->states [0].endpoint, 'x', sizeof (msg->states [0].endpoint));
    bad [count++] = msg;
    msg = valid_syn (&b_state);                 //  toolchains too big
    msg->states [0].toolchains_size = MESHCC_TOOLCHAIN_SUMMARY_MAX + 1;
    bad [count++] = msg;
    msg = gossip_msg_new (GOSSIP_SYN, GOSSIP_MAX_MEMBERS + 1, 1);   //  huge digest
    memcpy (msg->from, b_state.id, MESHCC_ID_SIZE);
    msg->states [0] = b_state;
    for (size_t i = 0; i < msg->digest_count; i++)
        msg->digest [i].id [15] = 1;
    bad [count++] = msg;
    msg = ack2_with (&b_state, &c_state);       //  claims more states than it has
    msg->state_count = (size_t) 1 << 40;
    bad [count++] = msg;
    msg = ack2_with (&b_state, &c_state);       //  a state with a zero id
    memset (msg->states [0].id, 0, MESHCC_ID_SIZE);
    bad [count++] = msg;
    msg = ack2_with (&b_state, &c_state);       //  count without an array
    msg->digest_count = 3;
    bad [count++] = msg;
    msg = gossip_msg_new (GOSSIP_ACK, 1, 0);    //  a digest line with a zero id
    memcpy (msg->from, b_state.id, MESHCC_ID_SIZE);
    bad [count++] = msg;
    msg = ack2_with (&b_state, &c_state);       //  unknown type
    msg->type = (gossip_type_t) 9;
    bad [count++] = msg;
    msg = ack2_with (&b_state, &c_state);       //  no type at all
    msg->type = (gossip_type_t) 0;
    bad [count++] = msg;

    for (size_t i = 0; i < count; i++) {
        gossip_msg_t *reply = gossip_receive (a, bad [i], 100);
        assert_null (reply);
        assert_int_equal (gossip_stats (a)->rejected, i + 1);
        assert_int_equal (gossip_stats (a)->received, i + 1);
        assert_int_equal (gossip_size (a), 1);
        //  Restore the lie before freeing, so free() sees the real sizes.
        if (bad [i]->state_count == (size_t) 1 << 40)
            bad [i]->state_count = 1;
        if (bad [i]->digest_count == 3 && !bad [i]->digest)
            bad [i]->digest_count = 0;
        gossip_msg_destroy (&bad [i]);
    }
    gossip_msg_destroy (NULL);
    assert_null (gossip_receive (a, NULL, 100));
    const peer_state_t *self = gossip_self (a);
    assert_int_equal (self->incarnation, 1);
    assert_int_equal (self->version, 0);
    assert_int_equal (log.events, 0);
    assert_int_equal (gossip_stats (a)->states_merged, 0);

    //  And the well-formed SYN is accepted.
    msg = valid_syn (&b_state);
    gossip_msg_t *reply = gossip_receive (a, msg, 100);
    assert_non_null (reply);
    assert_int_equal (reply->type, GOSSIP_ACK);
    assert_int_equal (gossip_size (a), 2);
    gossip_msg_destroy (&reply);
    gossip_msg_destroy (&msg);
    gossip_destroy (&a);
}

//  --------------------------------------------------------------------------
//  5. Refutation

static void
test_refutation (void **unused)
{
    (void) unused;
    peer_state_t a_state, b_state;
    make_state (&a_state, 1, 1, 0);
    make_state (&b_state, 2, 1, 1);
    gossip_t *a = gossip_new (&a_state, NULL, 7, 0);

    //  A copy of a with a higher incarnation (say a forged "left", or a
    //  previous life persisted elsewhere) must lose to a's next state.
    peer_state_t copy = *gossip_self (a);
    copy.incarnation = 5;
    copy.left = true;
    deliver (a, ack2_with (&b_state, &copy), 100);
    assert_true (gossip_self (a)->incarnation > 5);
    assert_false (gossip_self (a)->left);
    assert_int_equal (gossip_count (a, PEER_ALIVE), 1);     //  self only
    assert_int_equal (gossip_stats (a)->refutations, 1);
    assert_int_equal (gossip_lookup (a, a_state.id)->status, PEER_ALIVE);

    //  A SYN whose digest lists us newer than we are is refuted too.
    uint64_t incarnation = gossip_self (a)->incarnation;
    gossip_msg_t *syn = gossip_msg_new (GOSSIP_SYN, 1, 1);
    memcpy (syn->from, b_state.id, MESHCC_ID_SIZE);
    syn->states [0] = b_state;
    memcpy (syn->digest [0].id, a_state.id, MESHCC_ID_SIZE);
    syn->digest [0].incarnation = incarnation + 10;
    deliver (a, syn, 200);
    assert_true (gossip_self (a)->incarnation > incarnation + 10);
    assert_int_equal (gossip_stats (a)->refutations, 2);

    //  Our own current state coming back is not a reason to refute.
    deliver (a, ack2_with (&b_state, gossip_self (a)), 300);
    assert_int_equal (gossip_stats (a)->refutations, 2);
    gossip_destroy (&a);
}

//  --------------------------------------------------------------------------
//  6. Forgetting and tombstones

static void
test_forget_tombstone (void **unused)
{
    (void) unused;
    peer_state_t a_state, b_state;
    make_state (&a_state, 1, 1, 0);
    make_state (&b_state, 2, 1, 9);
    gossip_t *a = gossip_new (&a_state, NULL, 7, 0);
    event_log_t log = { 0 };
    gossip_set_event_handler (a, log_event, &log);
    deliver (a, ack2_with (&b_state, &b_state), 0);

    int64_t now = 0;
    int64_t dead_at = tick_until (a, b_state.id, PEER_DEAD, &now, 10000);
    assert_true (dead_at > 0);
    int events_at_death = log.events;

    //  Still there just before forget_ms, gone after; forgetting is silent.
    endpoint_t targets [8];
    while (now < dead_at + GOSSIP_FORGET_MS - GOSSIP_INTERVAL_MS) {
        now += GOSSIP_INTERVAL_MS;
        gossip_tick (a, now, targets, 8);
    }
    assert_non_null (gossip_lookup (a, b_state.id));
    now += GOSSIP_INTERVAL_MS;
    gossip_tick (a, now, targets, 8);
    assert_null (gossip_lookup (a, b_state.id));
    assert_int_equal (gossip_size (a), 1);
    assert_int_equal (gossip_count (a, PEER_DEAD), 0);
    assert_int_equal (log.events, events_at_death);

    //  A straggler's stale copy does not bring it back, not as a state...
    deliver (a, ack2_with (&b_state, &b_state), now);
    assert_int_equal (gossip_size (a), 1);
    //  ...nor by making us ask for it.
    gossip_msg_t *syn = valid_syn (&a_state);
    make_state (&syn->states [0], 3, 1, 1);
    memcpy (syn->from, syn->states [0].id, MESHCC_ID_SIZE);
    memcpy (syn->digest [0].id, b_state.id, MESHCC_ID_SIZE);
    syn->digest [0].incarnation = 1;
    syn->digest [0].version = 9;
    gossip_msg_t *ack = gossip_receive (a, syn, now);
    assert_non_null (ack);
    assert_int_equal (ack->digest_count, 0);
    gossip_msg_destroy (&ack);
    gossip_msg_destroy (&syn);
    assert_int_equal (gossip_size (a), 2);          //  self and node 3

    //  A newer incarnation does.
    peer_state_t restarted = b_state;
    restarted.incarnation = 2;
    restarted.version = 1;
    deliver (a, ack2_with (&b_state, &restarted), now);
    const gossip_member_t *b = gossip_lookup (a, b_state.id);
    assert_non_null (b);
    assert_int_equal (b->status, PEER_ALIVE);
    assert_int_equal (b->state.incarnation, 2);
    gossip_destroy (&a);
}

//  --------------------------------------------------------------------------
//  7. Local health

static void
test_local_health (void **unused)
{
    (void) unused;
    peer_state_t a_state, b_state;
    make_state (&a_state, 1, 1, 0);
    make_state (&b_state, 2, 1, 1);
    gossip_t *a = gossip_new (&a_state, NULL, 7, 0);
    deliver (a, ack2_with (&b_state, &b_state), 0);
    endpoint_t targets [8];
    gossip_tick (a, 200, targets, 8);

    //  We were stopped for a minute: b's silence is our fault, not b's.
    int64_t now = 60200;
    gossip_tick (a, now, targets, 8);
    assert_int_equal (gossip_stats (a)->stalls, 1);
    assert_int_equal (gossip_lookup (a, b_state.id)->status, PEER_ALIVE);
    assert_int_equal (gossip_lookup (a, b_state.id)->last_seen_ms, now);

    //  Timers restarted: suspicion comes suspect_ms after waking, not before.
    int64_t suspected = tick_until (a, b_state.id, PEER_SUSPECT, &now, now + 10000);
    assert_int_equal (suspected, 60200 + GOSSIP_SUSPECT_MS);
    assert_int_equal (gossip_stats (a)->stalls, 1);
    gossip_destroy (&a);
}

//  --------------------------------------------------------------------------
//  Lifeguard confirmations: independent witnesses shorten the suspicion
//  from Max to Min.

static void
test_confirmations (void **unused)
{
    (void) unused;
    //  Six members, so K = 3 applies (N - 2 >= K) and scale = 1.
    peer_state_t states [6];
    for (uint32_t i = 0; i < 6; i++)
        make_state (&states [i], i + 1, 1, 1);
    for (int witnesses = 0; witnesses <= 3; witnesses += 3) {
        gossip_t *a = gossip_new (&states [0], NULL, 7, 0);
        for (int i = 1; i < 6; i++)
            deliver (a, ack2_with (&states [1], &states [i]), 0);
        //  Everyone but node 2 keeps heartbeating.
        endpoint_t targets [8];
        int64_t now = 0;
        int64_t suspected = -1, dead = -1;
        for (uint64_t round = 1; round < 100 && dead < 0; round++) {
            now += GOSSIP_INTERVAL_MS;
            for (int i = 2; i < 6; i++) {
                peer_state_t beat = states [i];
                beat.version = 1 + round;
                deliver (a, ack2_with (&states [i], &beat), now);
            }
            gossip_tick (a, now, targets, 8);
            const gossip_member_t *b = gossip_lookup (a, states [1].id);
            if (b->status == PEER_SUSPECT && suspected < 0) {
                suspected = now;
                //  Witnesses: SYNs whose digests do not list node 2.
                for (int i = 2; i < 2 + witnesses; i++) {
                    gossip_msg_t *syn = valid_syn (&states [i]);
                    syn->states [0].version = 1 + round;
                    syn->digest [0].version = 1 + round;
                    deliver (a, syn, now);
                }
            }
            if (b->status == PEER_DEAD)
                dead = now;
        }
        assert_int_equal (suspected, GOSSIP_SUSPECT_MS);
        int64_t expected = witnesses == 3? GOSSIP_CONFIRM_MIN_MS
                         : GOSSIP_CONFIRM_MIN_MS * GOSSIP_CONFIRM_MAX_MULT;
        assert_int_equal (dead - suspected, expected);
        for (int i = 2; i < 6; i++)
            assert_int_equal (gossip_lookup (a, states [i].id)->status, PEER_ALIVE);
        gossip_destroy (&a);
    }
}

//  --------------------------------------------------------------------------
//  8. Simulation
//
//  N nodes, endpoints "sim://<i>", all knowing only node 0 as a seed. Each
//  round (one interval of simulated time), in random order, every running
//  node ticks and sends a SYN to each target. Every message (SYN, ACK,
//  ACK2) is lost with 5% probability, else delivered in the same round or
//  the next; replies go back to whoever sent what they answer.

#define SIM_LOSS_PERCENT 5

typedef struct _sim_t sim_t;

typedef struct {
    sim_t   *sim;
    uint32_t index;
} sim_node_t;

typedef struct {
    uint32_t from;
    uint32_t to;
    gossip_msg_t *msg;
} sim_msg_t;

typedef struct {
    sim_msg_t *items;
    size_t     head, count, capacity;
} sim_queue_t;

struct _sim_t {
    uint32_t     size;
    gossip_t   **nodes;
    sim_node_t  *contexts;
    bool        *stopped;           //  no ticks, nothing delivered to it
    bool        *cut;               //  nothing delivered from it either
    sim_queue_t  now_queue;
    sim_queue_t  next_queue;
    uint64_t     rng;
    int64_t      now_ms;
    uint64_t     messages;
    uint64_t     lost;
    //  What the event handlers saw.
    uint64_t     wrong_dead;        //  a running node declared DEAD
    uint64_t     wrong_suspect;     //  a running node suspected (allowed)
    uint64_t     wrong_left;
};

static uint64_t
sim_rand (sim_t *sim)
{
    uint64_t z = (sim->rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void
sim_event (void *arg, const gossip_member_t *member, int old_status)
{
    (void) old_status;
    sim_node_t *context = (sim_node_t *) arg;
    sim_t *sim = context->sim;
    uint32_t subject = id_number (member->state.id) - 1;
    if (subject >= sim->size || sim->stopped [subject] || member->is_self)
        return;
    if (member->status == PEER_DEAD)
        sim->wrong_dead++;
    else
    if (member->status == PEER_SUSPECT)
        sim->wrong_suspect++;
    else
    if (member->status == PEER_LEFT)
        sim->wrong_left++;
}

static sim_t *
sim_new (uint32_t size, uint64_t seed)
{
    sim_t *sim = (sim_t *) calloc (1, sizeof (sim_t));
    sim->size = size;
    sim->rng = seed;
    sim->nodes = (gossip_t **) calloc (size, sizeof (gossip_t *));
    sim->contexts = (sim_node_t *) calloc (size, sizeof (sim_node_t));
    sim->stopped = (bool *) calloc (size, sizeof (bool));
    sim->cut = (bool *) calloc (size, sizeof (bool));
    for (uint32_t i = 0; i < size; i++) {
        peer_state_t state;
        make_state (&state, i + 1, 1, 0);
        snprintf (state.endpoint, sizeof (state.endpoint), "sim://%u", i);
        sim->nodes [i] = gossip_new (&state, NULL, seed * 1000003 + i, 0);
        sim->contexts [i].sim = sim;
        sim->contexts [i].index = i;
        gossip_set_event_handler (sim->nodes [i], sim_event, &sim->contexts [i]);
        gossip_add_seed (sim->nodes [i], "sim://0");
    }
    return sim;
}

static void
sim_queue_push (sim_queue_t *queue, uint32_t from, uint32_t to, gossip_msg_t *msg)
{
    if (queue->head + queue->count == queue->capacity) {
        if (queue->head > 0) {
            memmove (queue->items, queue->items + queue->head,
                     queue->count * sizeof (sim_msg_t));
            queue->head = 0;
        }
        else {
            queue->capacity = queue->capacity? queue->capacity * 2: 1024;
            queue->items = (sim_msg_t *) realloc (queue->items,
                                                  queue->capacity * sizeof (sim_msg_t));
            assert_non_null (queue->items);
        }
    }
    sim_msg_t *item = &queue->items [queue->head + queue->count++];
    item->from = from;
    item->to = to;
    item->msg = msg;
}

static void
sim_send (sim_t *sim, uint32_t from, uint32_t to, gossip_msg_t *msg)
{
    sim->messages++;
    uint64_t draw = sim_rand (sim);
    if (draw % 100 < SIM_LOSS_PERCENT) {
        sim->lost++;
        gossip_msg_destroy (&msg);
        return;
    }
    sim_queue_push ((draw >> 32) & 1? &sim->next_queue: &sim->now_queue, from, to, msg);
}

//  Delivers everything due now, including replies that are themselves due
//  now.
static void
sim_drain (sim_t *sim)
{
    sim_queue_t *queue = &sim->now_queue;
    while (queue->count > 0) {
        sim_msg_t item = queue->items [queue->head++];
        queue->count--;
        if (queue->count == 0)
            queue->head = 0;
        if (sim->stopped [item.to] || sim->cut [item.from]) {
            gossip_msg_destroy (&item.msg);
            continue;
        }
        gossip_msg_t *reply = gossip_receive (sim->nodes [item.to], item.msg, sim->now_ms);
        gossip_msg_destroy (&item.msg);
        if (reply)
            sim_send (sim, item.to, item.from, reply);
    }
}

static uint32_t
sim_endpoint_index (const char *endpoint)
{
    assert_true (strncmp (endpoint, "sim://", 6) == 0);
    return (uint32_t) strtoul (endpoint + 6, NULL, 10);
}

static void
sim_round (sim_t *sim, uint32_t round, uint32_t *order)
{
    sim->now_ms = (int64_t) round * GOSSIP_INTERVAL_MS;
    //  Last round's late messages arrive first.
    sim_queue_t late = sim->next_queue;
    sim->next_queue = sim->now_queue;
    sim->now_queue = late;
    sim_drain (sim);

    for (uint32_t i = sim->size - 1; i > 0; i--) {
        uint32_t j = (uint32_t) (sim_rand (sim) % (i + 1));
        uint32_t swap = order [i];
        order [i] = order [j];
        order [j] = swap;
    }
    endpoint_t targets [16];
    for (uint32_t i = 0; i < sim->size; i++) {
        uint32_t node = order [i];
        if (sim->stopped [node])
            continue;
        size_t count = gossip_tick (sim->nodes [node], sim->now_ms, targets, 16);
        for (size_t t = 0; t < count; t++) {
            uint32_t to = sim_endpoint_index (targets [t]);
            assert_true (to < sim->size && to != node);
            sim_send (sim, node, to, gossip_syn (sim->nodes [node]));
        }
        sim_drain (sim);
    }
}

static void
sim_destroy (sim_t **sim_p)
{
    sim_t *sim = *sim_p;
    sim_queue_t *queues [] = { &sim->now_queue, &sim->next_queue };
    for (int q = 0; q < 2; q++) {
        for (size_t i = 0; i < queues [q]->count; i++)
            gossip_msg_destroy (&queues [q]->items [queues [q]->head + i].msg);
        free (queues [q]->items);
    }
    for (uint32_t i = 0; i < sim->size; i++)
        gossip_destroy (&sim->nodes [i]);
    free (sim->nodes);
    free (sim->contexts);
    free (sim->stopped);
    free (sim->cut);
    free (sim);
    *sim_p = NULL;
}

static bool
sim_converged (sim_t *sim)
{
    for (uint32_t i = 0; i < sim->size; i++)
        if (!sim->stopped [i] && gossip_count (sim->nodes [i], PEER_ALIVE) != sim->size)
            return false;
    return true;
}

//  How many running nodes see `subject` in `status`.
static uint32_t
sim_seen_as (sim_t *sim, uint32_t subject, peer_status_t status)
{
    peer_state_t state;
    make_state (&state, subject + 1, 1, 0);
    uint32_t count = 0;
    for (uint32_t i = 0; i < sim->size; i++) {
        if (sim->stopped [i])
            continue;
        const gossip_member_t *member = gossip_lookup (sim->nodes [i], state.id);
        if (member && member->status == status)
            count++;
    }
    return count;
}

//  Convergence bound of the brief: 2 log2 N + 5 rounds, counted from the
//  start, when every node begins knowing only node 0.
static uint32_t
sim_convergence_bound (uint32_t size)
{
    return (uint32_t) (2 * log2 ((double) size) + 5);
}

static uint32_t
sim_converge (sim_t *sim, uint32_t *order)
{
    uint32_t bound = sim_convergence_bound (sim->size);
    for (uint32_t round = 1; round <= bound; round++) {
        sim_round (sim, round, order);
        if (sim_converged (sim))
            return round;
    }
    return 0;
}

static void
test_simulation_1000 (void **unused)
{
    (void) unused;
    const uint32_t size = 1000;
    sim_t *sim = sim_new (size, 42);
    uint32_t *order = (uint32_t *) calloc (size, sizeof (uint32_t));
    for (uint32_t i = 0; i < size; i++)
        order [i] = i;

    clock_t started = clock ();
    uint32_t converged = sim_converge (sim, order);
    assert_true (converged > 0);
    assert_true (converged <= sim_convergence_bound (size));

    //  Kill one node: it stops ticking, nothing reaches it or leaves it.
    //
    //  Bound on detection, from the parameters. With N = 1000 alive,
    //  scale = log10 N = 3. Each observer last saw the victim's heartbeat
    //  advance at most P rounds after the kill (its latest state still
    //  spreading); it suspects suspect_ms x 3 = 6000 ms = 30 rounds later
    //  and declares it dead at most Max = 6 x confirm_min_ms x 3 = 18000 ms
    //  = 90 rounds after that (no confirmation at all; with K = 3 witnesses
    //  it is Min = 15 rounds, which is what gossip gives in practice). P is
    //  bounded by the convergence time, 24 rounds; one more round because
    //  detection runs at ticks. Bound: 24 + 30 + 90 + 1 = 145 rounds.
    const uint32_t victim = 123;
    double scale = log10 ((double) size);
    uint32_t suspect_rounds = (uint32_t) ceil (GOSSIP_SUSPECT_MS * scale / GOSSIP_INTERVAL_MS);
    uint32_t max_rounds = (uint32_t) ceil (GOSSIP_CONFIRM_MIN_MS * scale
                                           * GOSSIP_CONFIRM_MAX_MULT / GOSSIP_INTERVAL_MS);
    uint32_t dead_bound = sim_convergence_bound (size) + suspect_rounds + max_rounds + 1;
    sim->stopped [victim] = true;
    sim->cut [victim] = true;
    uint32_t round = converged;
    uint32_t killed = round;
    uint32_t first_dead = 0, all_dead = 0;
    while (round < killed + dead_bound) {
        round++;
        sim_round (sim, round, order);
        uint32_t dead = sim_seen_as (sim, victim, PEER_DEAD);
        if (dead > 0 && !first_dead)
            first_dead = round;
        if (dead == size - 1) {
            all_dead = round;
            break;
        }
    }
    assert_true (all_dead > 0);
    assert_int_equal (sim->wrong_dead, 0);
    assert_int_equal (sim->wrong_left, 0);
    //  And nobody lost track of anyone else.
    for (uint32_t i = 0; i < size; i++)
        if (i != victim)
            assert_int_equal (gossip_count (sim->nodes [i], PEER_ALIVE), size - 1);
    double seconds = (double) (clock () - started) / CLOCKS_PER_SEC;
    print_message ("gossip sim N=%u: converged at round %u (bound %u); "
                   "victim dead first at +%u, everywhere at +%u rounds (bound %u); "
                   "false suspicions %lu, false deaths %lu; %lu messages, %lu lost; %.1f s\n",
                   size, converged, sim_convergence_bound (size),
                   first_dead - killed, all_dead - killed, dead_bound,
                   (unsigned long) sim->wrong_suspect, (unsigned long) sim->wrong_dead,
                   (unsigned long) sim->messages, (unsigned long) sim->lost, seconds);
    free (order);
    sim_destroy (&sim);
}

static void
test_simulation_leave (void **unused)
{
    (void) unused;
    const uint32_t size = 50;
    sim_t *sim = sim_new (size, 7);
    uint32_t *order = (uint32_t *) calloc (size, sizeof (uint32_t));
    for (uint32_t i = 0; i < size; i++)
        order [i] = i;
    uint32_t converged = sim_converge (sim, order);
    assert_true (converged > 0);

    //  Node 17 leaves: its final SYN goes to the targets gossip_leave gives
    //  (already in flight, so delivered even though it then stops), and
    //  gossip spreads the rest. log2 50 ~ 6 rounds; allow 10.
    const uint32_t leaver = 17;
    endpoint_t targets [GOSSIP_FANOUT];
    size_t count = gossip_leave (sim->nodes [leaver], targets, GOSSIP_FANOUT);
    assert_int_equal (count, GOSSIP_FANOUT);
    assert_int_equal (gossip_count (sim->nodes [leaver], PEER_LEFT), 1);
    for (size_t t = 0; t < count; t++)
        sim_send (sim, leaver, sim_endpoint_index (targets [t]),
                  gossip_syn (sim->nodes [leaver]));
    sim->stopped [leaver] = true;
    uint32_t round = converged, left_everywhere = 0;
    while (round < converged + 10) {
        round++;
        sim_round (sim, round, order);
        if (sim_seen_as (sim, leaver, PEER_LEFT) == size - 1) {
            left_everywhere = round;
            break;
        }
    }
    assert_true (left_everywhere > 0);
    assert_int_equal (sim->wrong_dead, 0);
    assert_int_equal (sim_seen_as (sim, leaver, PEER_DEAD), 0);
    print_message ("gossip sim N=%u: converged at round %u; left seen everywhere after %u rounds\n",
                   size, converged, left_everywhere - converged);
    free (order);
    sim_destroy (&sim);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_selftest),
        cmocka_unit_test (test_merge),
        cmocka_unit_test (test_seeds_hints),
        cmocka_unit_test (test_malformed),
        cmocka_unit_test (test_refutation),
        cmocka_unit_test (test_forget_tombstone),
        cmocka_unit_test (test_local_health),
        cmocka_unit_test (test_confirmations),
        cmocka_unit_test (test_simulation_leave),
        cmocka_unit_test (test_simulation_1000),
    };
    return cmocka_run_group_tests_name ("gossip", tests, NULL, NULL);
}
