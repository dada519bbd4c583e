//  test_node_placement: choosing a peer (placement.c). Free-slot accounting
//  from gossip and our own in-flight counts, never more jobs than slots,
//  power of two choices weighted by speed, affinity for peers holding the
//  inputs, refused peers excluded, slots 0, and the bounded memory of
//  blobs sent to a peer. Deterministic: seeded generator.

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "meshcc/limits.h"
#include "meshcc/placement.h"

static placement_candidate_t
s_peer (uint8_t tag, uint32_t slots, uint32_t busy, uint32_t in_flight, uint32_t speed)
{
    placement_candidate_t candidate;
    memset (&candidate, 0, sizeof candidate);
    memset (candidate.id, tag, MESHCC_ID_SIZE);
    candidate.slots = slots;
    candidate.busy = busy;
    candidate.in_flight = in_flight;
    candidate.speed = speed;
    return candidate;
}

static void
test_selftest (void **state)
{
    (void) state;
    placement_test (false);
}

static void
test_free_slots (void **state)
{
    (void) state;
    placement_candidate_t c = s_peer (1, 4, 0, 0, 100);
    assert_int_equal (placement_free (&c), 4);
    c.busy = 1;
    c.in_flight = 3;
    //  max, not sum: our jobs are part of what it gossips once gossip catches up
    assert_int_equal (placement_free (&c), 1);
    c.busy = 3;
    c.in_flight = 1;
    assert_int_equal (placement_free (&c), 1);
    c.busy = 9;                 //  never negative
    assert_int_equal (placement_free (&c), 0);
    c = s_peer (2, 0, 0, 0, 100);
    assert_int_equal (placement_free (&c), 0);
    assert_true (placement_score (&c, 100) == 0);
}

//  Sending jobs one after another, counting each as in flight, never puts
//  more of ours on a peer than its slots, and stops when every peer is
//  full by our count. The gossip figure may already include our jobs, so
//  it is a floor, not an addend (the peer's admission control is the
//  guard against another origin's jobs).
static void
test_never_exceeds_slots (void **state)
{
    (void) state;
    uint64_t rng = 42;
    placement_candidate_t peers [4] = {
        s_peer (1, 2, 0, 0, 100), s_peer (2, 3, 1, 0, 300), s_peer (3, 1, 0, 0, 50),
        s_peer (4, 4, 4, 0, 900)
    };
    uint32_t placed = 0;
    int choice;
    while ((choice = placement_choose (peers, 4, &rng)) >= 0) {
        peers [choice].in_flight++;
        placed++;
        assert_true (peers [choice].in_flight <= peers [choice].slots);
        assert_true (placed <= 2 + 3 + 1);
    }
    assert_int_equal (placed, 2 + 3 + 1);
    assert_int_equal (peers [3].in_flight, 0);      //  full by gossip: never chosen
    for (int i = 0; i < 4; i++)
        assert_int_equal (placement_free (&peers [i]), 0);
}

//  Two of three peers sampled, the better kept: the fast one wins more
//  often than a third of the time, the slow one less.
static void
test_speed_weighting (void **state)
{
    (void) state;
    uint64_t rng = 7;
    int wins [3] = { 0, 0, 0 };
    for (int round = 0; round < 30000; round++) {
        placement_candidate_t peers [3] = {
            s_peer (1, 4, 0, 0, 100), s_peer (2, 4, 0, 0, 300), s_peer (3, 4, 0, 0, 30)
        };
        int choice = placement_choose (peers, 3, &rng);
        assert_true (choice >= 0 && choice < 3);
        wins [choice]++;
    }
    //  Power of two of three: the best wins when sampled (2/3), the worst
    //  only never (0), the middle 1/3.
    assert_true (wins [1] > 19000 && wins [1] < 21000);
    assert_true (wins [0] > 9000 && wins [0] < 11000);
    assert_int_equal (wins [2], 0);
}

//  Free share counts: a half-full peer loses to an idle one of equal speed;
//  load per slot damps the score.
static void
test_free_share_and_load (void **state)
{
    (void) state;
    placement_candidate_t idle = s_peer (1, 4, 0, 0, 100);
    placement_candidate_t half = s_peer (2, 4, 2, 0, 100);
    assert_true (placement_score (&idle, 100) > placement_score (&half, 100));
    placement_candidate_t loaded = idle;
    loaded.load_milli = 8000;
    assert_true (placement_score (&idle, 100) > placement_score (&loaded, 100));
    uint64_t rng = 3;
    placement_candidate_t pair [2] = { half, idle };
    for (int i = 0; i < 100; i++)
        assert_int_equal (placement_choose (pair, 2, &rng), 1);
}

//  A peer holding the job's inputs is preferred among similar ones.
static void
test_affinity (void **state)
{
    (void) state;
    uint64_t rng = 11;
    int warm = 0;
    for (int round = 0; round < 10000; round++) {
        placement_candidate_t peers [4] = {
            s_peer (1, 4, 0, 0, 100), s_peer (2, 4, 0, 0, 100), s_peer (3, 4, 0, 0, 100),
            s_peer (4, 4, 0, 0, 100)
        };
        peers [2].affinity = 1.0;
        if (placement_choose (peers, 4, &rng) == 2)
            warm++;
    }
    //  Sampled in half of the pairs, and then it always wins.
    assert_true (warm > 4600 && warm < 5400);
    //  With two peers both are always sampled: the warm one always wins
    //  unless it is much busier.
    placement_candidate_t pair [2] = { s_peer (1, 4, 0, 0, 100), s_peer (2, 4, 1, 0, 100) };
    pair [1].affinity = 1.0;
    assert_int_equal (placement_choose (pair, 2, &rng), 1);
    pair [1].busy = 3;          //  1/4 free + 0.5 < 1
    assert_int_equal (placement_choose (pair, 2, &rng), 0);
}

static void
test_refused_excluded (void **state)
{
    (void) state;
    uint64_t rng = 5;
    placement_candidate_t peers [3] = {
        s_peer (1, 4, 0, 0, 100), s_peer (2, 4, 0, 0, 100), s_peer (3, 4, 0, 0, 100)
    };
    peers [0].excluded = true;
    peers [2].excluded = true;
    for (int i = 0; i < 100; i++)
        assert_int_equal (placement_choose (peers, 3, &rng), 1);
    peers [1].excluded = true;
    assert_int_equal (placement_choose (peers, 3, &rng), -1);
    assert_int_equal (placement_choose (peers, 0, &rng), -1);
    assert_int_equal (placement_choose (NULL, 0, &rng), -1);
}

//  Same seed, same choices.
static void
test_deterministic (void **state)
{
    (void) state;
    placement_candidate_t peers [5];
    for (int i = 0; i < 5; i++)
        peers [i] = s_peer ((uint8_t) i, 2, 0, 0, (uint32_t) (100 + i));
    uint64_t a = 99, b = 99;
    for (int i = 0; i < 1000; i++)
        assert_int_equal (placement_choose (peers, 5, &a), placement_choose (peers, 5, &b));
}

static void
test_eligible (void **state)
{
    (void) state;
    gossip_member_t member;
    memset (&member, 0, sizeof member);
    member.status = PEER_ALIVE;
    member.state.proto = MESHCC_PROTO_VERSION;
    member.state.slots = 2;
    assert_true (placement_eligible (&member));
    member.state.slots = 0;             //  a --slots 0 laptop
    assert_false (placement_eligible (&member));
    member.state.slots = 2;
    member.is_self = true;
    assert_false (placement_eligible (&member));
    member.is_self = false;
    member.status = PEER_SUSPECT;
    assert_false (placement_eligible (&member));
    member.status = PEER_ALIVE;
    member.state.proto = MESHCC_PROTO_VERSION + 1;
    assert_false (placement_eligible (&member));
    member.state.proto = MESHCC_PROTO_VERSION;
    member.state.left = true;
    assert_false (placement_eligible (&member));
    assert_false (placement_eligible (NULL));
}

//  Bounded: never more than two generations; recently used hashes stay.
static void
test_known_bounded (void **state)
{
    (void) state;
    placement_known_t *known = placement_known_new (100);
    uint8_t hash [BLOB_HASH_SIZE];
    memset (hash, 0, sizeof hash);
    uint8_t keep [BLOB_HASH_SIZE];
    memset (keep, 0xEE, sizeof keep);
    placement_known_add (known, keep);
    for (uint32_t i = 0; i < 1000; i++) {
        memcpy (hash, &i, sizeof i);
        placement_known_add (known, hash);
        assert_true (placement_known_size (known) <= 200);
        if (i % 50 == 0)
            assert_true (placement_known_has (known, keep));   //  refreshed
    }
    uint32_t old = 0;
    memcpy (hash, &old, sizeof old);
    assert_false (placement_known_has (known, hash));          //  long gone
    uint32_t recent = 999;
    memcpy (hash, &recent, sizeof recent);
    assert_true (placement_known_has (known, hash));
    placement_known_destroy (&known);
    assert_null (known);
}

//  How often each of 3 candidates is chosen over 200 seeds.
static void
s_choices (const placement_candidate_t c [3], int chosen [3])
{
    memset (chosen, 0, 3 * sizeof chosen [0]);
    for (uint64_t seed = 1; seed <= 200; seed++) {
        uint64_t rng = seed;
        chosen [placement_choose (c, 3, &rng)]++;
    }
}

//  Measured job times: a free peer whose jobs take clearly less than the
//  sampled one's, and whose figures say it is clearly faster, is taken
//  instead; an unknown time changes nothing.
static void
test_job_times (void **state)
{
    (void) state;
    //  Host 1 holds the job's inputs, so the sample prefers it over the
    //  two others (two slots each, one busy).
    placement_candidate_t c [3] = {
        s_peer (1, 1, 0, 0, 50), s_peer (2, 2, 1, 0, 100), s_peer (3, 2, 1, 0, 100)
    };
    c [0].affinity = 1.0;
    c [0].job_ms = 3000;                //  a slow host: an eighth-core slice
    c [1].job_ms = 1000;                //  quarter-core ones
    int chosen [3];
    s_choices (c, chosen);
    assert_int_equal (chosen [0], 0);
    assert_true (chosen [1] > 0);
    //  Within the margin: it keeps its jobs.
    c [0].job_ms = 1400;
    s_choices (c, chosen);
    assert_true (chosen [0] > 0);
    //  Equal slices whose job times differ by the files they got: it keeps
    //  its jobs too.
    c [0].job_ms = 3000;
    c [0].speed = 100;
    s_choices (c, chosen);
    assert_true (chosen [0] > 0);
    //  A busy colleague there: taken for the faster again.
    c [0].load_milli = 1000;
    s_choices (c, chosen);
    assert_int_equal (chosen [0], 0);
}

//  "Clearly faster" by the gossiped figures: a slot's speed over its load
//  per slot, 1.5 times or more; never with a speed unknown.
static void
test_faster (void **state)
{
    (void) state;
    placement_candidate_t quarter = s_peer (1, 1, 0, 0, 250), other = s_peer (2, 1, 0, 0, 240);
    placement_candidate_t eighth = s_peer (3, 1, 0, 0, 125), half = s_peer (4, 1, 0, 0, 500);
    assert_false (placement_faster (&quarter, &other));     //  equal slices
    assert_false (placement_faster (&other, &quarter));
    assert_true (placement_faster (&quarter, &eighth));
    assert_false (placement_faster (&eighth, &quarter));
    assert_true (placement_faster (&half, &quarter));
    //  A busy loop in the half-core slice: a quarter core's worth left
    half.load_milli = 1000;
    assert_false (placement_faster (&half, &quarter));
    assert_false (placement_faster (&quarter, &half));
    assert_true (placement_faster (&half, &eighth));
    half.speed = 0;
    assert_false (placement_faster (&half, &eighth));
    assert_false (placement_faster (&eighth, &half));
}

//  An origin with a quota sends its job to a free peer before its own
//  slot unless it is clearly faster than every free one.
static void
test_peer_first (void **state)
{
    (void) state;
    placement_candidate_t us = s_peer (9, 1, 0, 0, 250);
    placement_candidate_t peers [3] = { s_peer (1, 1, 1, 0, 250), s_peer (2, 1, 0, 1, 240),
                                        s_peer (3, 1, 0, 0, 125) };
    //  Equal peers, all busy (gossiped or in flight): our own slot
    assert_false (placement_peer_first (&us, peers, 2));
    //  One free, as fast: that one first
    peers [1].in_flight = 0;
    assert_true (placement_peer_first (&us, peers, 2));
    //  Excluded (it refused this job): our own slot
    peers [1].excluded = true;
    assert_false (placement_peer_first (&us, peers, 2));
    //  Only an eighth core free: we are twice as fast, our own slot
    assert_false (placement_peer_first (&us, peers, 3));
    //  ... also when our own slice is busy: that load is mostly the
    //  build we feed (make), which does not slow our slot's compile
    us.load_milli = 1000;
    assert_false (placement_peer_first (&us, peers, 3));
    //  A free peer as fast as we are, but busy with a colleague's work:
    //  clearly slower, our own slot
    peers [1].excluded = false;
    peers [1].load_milli = 1000;
    assert_false (placement_peer_first (&us, peers, 3));
    peers [1].load_milli = 0;
    assert_true (placement_peer_first (&us, peers, 3));
    //  Speeds not known yet: a free peer first
    us.speed = 0;
    assert_true (placement_peer_first (&us, peers, 3));
    assert_false (placement_peer_first (&us, peers, 0));
}

//  Holding a job for a faster busy peer: only when it ends there clearly
//  sooner, counting the wait for our job there.
static void
test_hold (void **state)
{
    (void) state;
    placement_candidate_t c [2] = { s_peer (1, 1, 0, 0, 100), s_peer (2, 1, 1, 1, 400) };
    c [0].job_ms = 3000;                //  free, slow: a quarter of the speed
    c [0].speed = 100;
    c [0].frees_in_ms = -1;
    c [1].job_ms = 800;                 //  busy with our job, ends in 400 ms
    c [1].frees_in_ms = 400;
    assert_true (placement_hold (c, 2, 0));
    //  Equal peers whose job times differ by the files they got: no hold,
    //  the free slot takes the job.
    c [0].speed = 400;
    assert_false (placement_hold (c, 2, 0));
    c [0].speed = 0;                    //  unknown
    assert_false (placement_hold (c, 2, 0));
    c [0].speed = 100;
    c [1].frees_in_ms = 1500;           //  2300 ms there: not clearly sooner
    assert_false (placement_hold (c, 2, 0));
    c [1].frees_in_ms = -1;             //  others' jobs there: unknown
    assert_false (placement_hold (c, 2, 0));
    c [1].frees_in_ms = 400;
    c [1].excluded = true;              //  it refused this job
    assert_false (placement_hold (c, 2, 0));
    c [1].excluded = false;
    c [0].job_ms = 0;                   //  nothing measured at the chosen one
    assert_false (placement_hold (c, 2, 0));
    c [0].job_ms = 3000;
    c [1].busy = c [1].in_flight = 0;   //  free: choose takes it, nothing to hold for
    assert_false (placement_hold (c, 2, 0));
    assert_false (placement_hold (c, 2, -1));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_selftest),
        cmocka_unit_test (test_free_slots),
        cmocka_unit_test (test_never_exceeds_slots),
        cmocka_unit_test (test_speed_weighting),
        cmocka_unit_test (test_free_share_and_load),
        cmocka_unit_test (test_affinity),
        cmocka_unit_test (test_refused_excluded),
        cmocka_unit_test (test_deterministic),
        cmocka_unit_test (test_eligible),
        cmocka_unit_test (test_known_bounded),
        cmocka_unit_test (test_job_times),
        cmocka_unit_test (test_faster),
        cmocka_unit_test (test_peer_first),
        cmocka_unit_test (test_hold),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
