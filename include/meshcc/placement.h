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
//  Where the origin has measured how long its jobs take at the peers, it
//  also weighs them by that, between peers whose gossiped figures say
//  they differ (placement_faster): a free peer whose jobs take clearly
//  less than the sampled one's is taken instead, and at the end of a
//  build (no job waiting behind) a job is held for a faster busy peer
//  whose first job of ours should end soon, rather than sent to a slow
//  free one where it would finish later (on a mesh of unequal hosts the
//  last compiles on the slowest ones make the tail of the build).
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
    double   job_ms;                //  our recent jobs' time there, send to result (0 = unknown)
    double   frees_in_ms;           //  when our first job there should end by that
                                    //  (-1 = unknown, or others' jobs hold its slots)
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

//  Whether `fast` runs a compile clearly faster than `slow` by their
//  gossiped figures: both speeds known, and `fast`'s speed over its load
//  per slot (as in placement_score) is PLACEMENT_FASTER times `slow`'s.
//  A slot's speed carries its share of a quota (a quarter-core slice, a
//  quarter of the core's); the load, a colleague's work. Job times alone
//  cannot say so: they depend on which files a peer happened to compile,
//  and between equal peers they differed by more than that margin (most
//  queued jobs held while an equal peer's slot was free; BENCHMARKS.md).
bool placement_faster (const placement_candidate_t *fast, const placement_candidate_t *slow);

//  Whether a job of an origin confined to a CPU quota goes to a peer
//  before the origin's own free slot: some candidate has a free slot and
//  `self` (the origin as a candidate: its slots and speed; its own load,
//  mostly the build it feeds, is not counted) is not clearly faster than
//  it (placement_faster, the peer's load counted). A compile in the origin's
//  own slot takes the same slice as the build's driver (make, libtool,
//  the node); a job sent away costs it a few milliseconds. On 8 equal
//  quarter-core hosts, an origin that never took its own slot built Open
//  vSwitch in 113-118 s against 124-127 s (BENCHMARKS.md); an origin
//  clearly faster than every free peer still compiles at home.
bool placement_peer_first (const placement_candidate_t *self,
                           const placement_candidate_t *candidates, size_t count);

//  Index of the chosen candidate, or -1 if none has a free slot (or all
//  are excluded). `rng` is a splitmix64 state advanced by the call. The
//  free candidate with the shortest known job time is taken instead of
//  the sampled one when that one's is PLACEMENT_FASTER times longer and
//  it is clearly faster (placement_faster).
int placement_choose (const placement_candidate_t *candidates, size_t count, uint64_t *rng);

//  Whether a job chosen for `candidates [chosen]` is better held for a
//  busy candidate where it would end sooner: a clearly faster one
//  (placement_faster) where our first job ends, plus its job time,
//  PLACEMENT_FASTER times sooner than the chosen one's job time. The
//  caller asks only when no job waits behind this one (while jobs wait,
//  every free slot is worth its work) and for at most half the chosen
//  one's job time.
bool placement_hold (const placement_candidate_t *candidates, size_t count, int chosen);

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
