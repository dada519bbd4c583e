//  placement: choosing a peer for a job (see placement.h). Pure logic.

#include <czmq.h>
#include "meshcc/limits.h"
#include "meshcc/placement.h"

bool
placement_eligible (const gossip_member_t *member)
{
    return member
        && !member->is_self
        && member->status == PEER_ALIVE
        && !member->state.left
        && member->state.proto == MESHCC_PROTO_VERSION
        && member->state.slots > 0;
}

uint32_t
placement_free (const placement_candidate_t *candidate)
{
    uint32_t used = candidate->busy > candidate->in_flight? candidate->busy: candidate->in_flight;
    return used >= candidate->slots? 0: candidate->slots - used;
}

//  `speed` slowed by the candidate's load per slot: other work on the
//  machine (not ours) slows our jobs. (No slots: counted as one.)
static double
s_paced (const placement_candidate_t *candidate, double speed)
{
    double slots = candidate->slots? candidate->slots: 1;
    return speed / (1.0 + candidate->load_milli / 1000.0 / slots);
}

double
placement_score (const placement_candidate_t *candidate, double mean_speed)
{
    if (candidate->slots == 0)
        return 0;
    double free_share = (double) placement_free (candidate) / candidate->slots;
    //  An unknown speed counts as average: neither preferred nor avoided.
    double speed = candidate->speed? candidate->speed: mean_speed;
    double relative = mean_speed > 0? speed / mean_speed: 1.0;
    double affinity = candidate->affinity < 0? 0: candidate->affinity > 1? 1: candidate->affinity;
    return free_share * s_paced (candidate, relative) + PLACEMENT_AFFINITY_WEIGHT * affinity;
}

uint64_t
placement_random (uint64_t *rng)
{
    uint64_t z = (*rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

int
placement_choose (const placement_candidate_t *candidates, size_t count, uint64_t *rng)
{
    //  The open candidates, and the mean speed of the mesh we can use.
    size_t open = 0;
    double speed_sum = 0;
    size_t speed_count = 0;
    for (size_t i = 0; i < count; i++) {
        if (candidates [i].excluded || placement_free (&candidates [i]) == 0)
            continue;
        open++;
        if (candidates [i].speed) {
            speed_sum += candidates [i].speed;
            speed_count++;
        }
    }
    if (open == 0)
        return -1;
    double mean_speed = speed_count? speed_sum / speed_count: 0;
    //  Two distinct open candidates at random, by rank among the open ones.
    size_t first = (size_t) (placement_random (rng) % open);
    size_t second = first;
    if (open > 1) {
        second = (size_t) (placement_random (rng) % (open - 1));
        if (second >= first)
            second++;
    }
    int first_index = -1, second_index = -1;
    size_t rank = 0;
    for (size_t i = 0; i < count; i++) {
        if (candidates [i].excluded || placement_free (&candidates [i]) == 0)
            continue;
        if (rank == first)
            first_index = (int) i;
        if (rank == second)
            second_index = (int) i;
        rank++;
    }
    int chosen = first_index;
    if (first_index != second_index
    &&  placement_score (&candidates [second_index], mean_speed)
        > placement_score (&candidates [first_index], mean_speed))
        chosen = second_index;
    //  Measured job times, where known, overrule the sample, between
    //  peers whose gossiped figures differ clearly (placement_faster).
    if (candidates [chosen].job_ms > 0) {
        int fastest = chosen;
        for (size_t i = 0; i < count; i++)
            if (!candidates [i].excluded && placement_free (&candidates [i]) > 0
            &&  candidates [i].job_ms > 0 && candidates [i].job_ms < candidates [fastest].job_ms
            &&  placement_faster (&candidates [i], &candidates [chosen]))
                fastest = (int) i;
        if (candidates [fastest].job_ms * PLACEMENT_FASTER < candidates [chosen].job_ms)
            chosen = fastest;
    }
    return chosen;
}

bool
placement_faster (const placement_candidate_t *fast, const placement_candidate_t *slow)
{
    return fast->speed && slow->speed
        && s_paced (fast, fast->speed) >= PLACEMENT_FASTER * s_paced (slow, slow->speed);
}

bool
placement_peer_first (const placement_candidate_t *self,
                      const placement_candidate_t *candidates, size_t count)
{
    //  Our own load is mostly the build we feed (make, libtool): the
    //  saturation rule weighs it; it does not make our slot slower than
    //  a peer's, so our speed is taken as it is.
    placement_candidate_t bare = *self;
    bare.load_milli = 0;
    for (size_t i = 0; i < count; i++)
        if (!candidates [i].excluded && placement_free (&candidates [i]) > 0
        &&  !placement_faster (&bare, &candidates [i]))
            return true;
    return false;
}

bool
placement_hold (const placement_candidate_t *candidates, size_t count, int chosen)
{
    if (chosen < 0 || (size_t) chosen >= count || candidates [chosen].job_ms <= 0)
        return false;
    for (size_t i = 0; i < count; i++) {
        const placement_candidate_t *c = &candidates [i];
        if ((int) i == chosen || c->excluded || placement_free (c) > 0
        ||  c->job_ms <= 0 || c->frees_in_ms < 0 || !placement_faster (c, &candidates [chosen]))
            continue;
        if ((c->frees_in_ms + c->job_ms) * PLACEMENT_FASTER < candidates [chosen].job_ms)
            return true;
    }
    return false;
}


//  --------------------------------------------------------------------------
//  Known blobs per peer

struct _placement_known_t {
    zhashx_t *current;              //  binary hash -> non-NULL marker
    zhashx_t *older;
    size_t    max;
};

//  Keys are the raw hashes, not hex: the origin asks this for every input
//  of every job, per peer, and a BLAKE2b hash is already uniform.
static size_t
s_key_hash (const void *key)
{
    size_t value;
    memcpy (&value, key, sizeof value);
    return value;
}

static int
s_key_compare (const void *a, const void *b)
{
    return memcmp (a, b, BLOB_HASH_SIZE);
}

static void *
s_key_copy (const void *key)
{
    void *copy = malloc (BLOB_HASH_SIZE);
    assert (copy);
    memcpy (copy, key, BLOB_HASH_SIZE);
    return copy;
}

static void
s_key_free (void **key)
{
    free (*key);
    *key = NULL;
}

static zhashx_t *
s_set_new (void)
{
    zhashx_t *set = zhashx_new ();
    zhashx_set_key_hasher (set, s_key_hash);
    zhashx_set_key_comparator (set, s_key_compare);
    zhashx_set_key_duplicator (set, s_key_copy);
    zhashx_set_key_destructor (set, s_key_free);
    //  Values are a static marker: nothing to free.
    return set;
}

placement_known_t *
placement_known_new (size_t max)
{
    placement_known_t *self = (placement_known_t *) zmalloc (sizeof (placement_known_t));
    self->current = s_set_new ();
    self->older = s_set_new ();
    self->max = max? max: 1;
    return self;
}

void
placement_known_destroy (placement_known_t **self_p)
{
    if (self_p && *self_p) {
        placement_known_t *self = *self_p;
        zhashx_destroy (&self->current);
        zhashx_destroy (&self->older);
        free (self);
        *self_p = NULL;
    }
}

static char s_marker = 1;

static void
s_insert_current (placement_known_t *self, const uint8_t hash [BLOB_HASH_SIZE])
{
    if (zhashx_size (self->current) >= self->max) {
        zhashx_destroy (&self->older);
        self->older = self->current;
        self->current = s_set_new ();
    }
    zhashx_insert (self->current, hash, &s_marker);
}

void
placement_known_add (placement_known_t *self, const uint8_t hash [BLOB_HASH_SIZE])
{
    if (!zhashx_lookup (self->current, hash))
        s_insert_current (self, hash);
}

bool
placement_known_has (placement_known_t *self, const uint8_t hash [BLOB_HASH_SIZE])
{
    if (zhashx_lookup (self->current, hash))
        return true;
    if (zhashx_lookup (self->older, hash)) {
        s_insert_current (self, hash);
        return true;
    }
    return false;
}

size_t
placement_known_size (placement_known_t *self)
{
    return zhashx_size (self->current) + zhashx_size (self->older);
}


//  --------------------------------------------------------------------------
//  Self test (the thorough checks are in tests/unit/test_node_placement.c)

void
placement_test (bool verbose)
{
    if (verbose)
        printf (" * placement: ");
    placement_candidate_t candidates [2];
    memset (candidates, 0, sizeof candidates);
    candidates [0].slots = 2;
    candidates [0].busy = 2;
    candidates [1].slots = 4;
    candidates [1].in_flight = 1;
    uint64_t rng = 1;
    assert (placement_free (&candidates [0]) == 0);
    assert (placement_free (&candidates [1]) == 3);
    assert (placement_choose (candidates, 2, &rng) == 1);
    candidates [1].excluded = true;
    assert (placement_choose (candidates, 2, &rng) == -1);

    placement_known_t *known = placement_known_new (2);
    uint8_t hash [BLOB_HASH_SIZE];
    memset (hash, 0, sizeof hash);
    placement_known_add (known, hash);
    assert (placement_known_has (known, hash));
    hash [0] = 1;
    assert (!placement_known_has (known, hash));
    placement_known_destroy (&known);
    assert (!known);
    if (verbose)
        printf ("OK\n");
}
