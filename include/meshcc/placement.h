//  placement: which peer runs a job, with no central scheduler. Pure: no
//  sockets, clocks or files; randomness from a seeded generator the caller
//  owns, so tests are repeatable.
//
//  Gossip is only a pre-filter (its load figures are up to a round old);
//  the origin also counts its own in-flight jobs per peer, and a full peer
//  refuses at once, so a stale view costs a refusal, never an overload.
//  Among peers with a free slot it takes two at random and keeps the
//  better score (power of two choices: good across a wide range of
//  staleness, where "the least loaded" herds).
//
//  Also owns the origin's memory of which blobs it sent to which peer
//  (placement_known_t): the affinity signal and what need not be inlined.

#ifndef MESHCC_PLACEMENT_H_INCLUDED
#define MESHCC_PLACEMENT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "meshcc/blob_store.h"
#include "meshcc/gossip.h"

typedef struct {
    uint8_t  id [MESHCC_ID_SIZE];
    uint32_t slots;                 //  gossip: slots offered
    uint32_t busy;                  //  gossip: running + queued
    uint32_t in_flight;             //  our jobs at it now (we count them)
    uint32_t speed;                 //  gossip speed figure (0 = unknown)
    uint32_t load_milli;            //  gossip 1-minute load × 1000
    double   affinity;              //  0..1: share of the job's input bytes it holds
    bool     excluded;              //  refused this job (or lost it) already
} placement_candidate_t;

//  True if a member may be offered jobs at all: alive, not us, speaking
//  our protocol version, offering slots, not leaving.
bool placement_eligible (const gossip_member_t *member);

//  Free slots as we believe them: slots − max(gossip busy, our in-flight),
//  never negative. Taking the maximum (not the sum) is deliberate: our
//  in-flight jobs are already part of what the peer gossips once the
//  gossip catches up, so adding them would count them twice.
uint32_t placement_free (const placement_candidate_t *candidate);

//  The score two sampled candidates are compared by: the free share of
//  the peer weighted by its speed relative to `mean_speed`, damped by its
//  load per slot, plus PLACEMENT_AFFINITY_WEIGHT × affinity.
double placement_score (const placement_candidate_t *candidate, double mean_speed);

//  Index of the chosen candidate, or -1 if none has a free slot (or all
//  are excluded). `rng` is a splitmix64 state advanced by the call.
int placement_choose (const placement_candidate_t *candidates, size_t count, uint64_t *rng);

//  splitmix64 step (exposed for callers that seed the same way).
uint64_t placement_random (uint64_t *rng);


//  Which blob hashes we sent to one peer. Bounded: two generations of at
//  most PLACEMENT_KNOWN_MAX hashes; when the current one fills, the older
//  one is dropped and the current one becomes the older one. A hash seen
//  in either generation is remembered (and refreshed into the current one),
//  so recently used blobs stay known and memory never exceeds 2 × MAX.
//  Forgetting only costs a needless inline; remembering wrongly (the peer
//  evicted it) costs a NEED round trip.
typedef struct _placement_known_t placement_known_t;

placement_known_t *placement_known_new (size_t max);
void               placement_known_destroy (placement_known_t **self_p);
void               placement_known_add (placement_known_t *self, const uint8_t hash [BLOB_HASH_SIZE]);
bool               placement_known_has (placement_known_t *self, const uint8_t hash [BLOB_HASH_SIZE]);
size_t             placement_known_size (placement_known_t *self);

void placement_test (bool verbose);

#endif
