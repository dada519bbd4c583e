//  saturation: whether a node confined to a CPU cgroup has room for one
//  more compile in a local slot, from the kernel's CFS bandwidth counter
//  (cpu.stat throttled time) read once per tick. Pure arithmetic on the
//  readings it is given: reads no file and owns no clock (node.c reads
//  cpu.stat through sysinfo and calls this).
//
//  The share of a tick is the time the cgroup was held back at its quota
//  (summed over CPUs, so D - Q core-seconds per second when it wants D
//  cores of a quota Q) over the quota, at most 1: the demand beyond the
//  quota, as a share of it. Saturated while that share, averaged over
//  NODE_SATURATION_WINDOW_MS, is at least NODE_SATURATION_THROTTLED (the
//  work there wants 1.5 quotas or more). Ticks in which our compiles alone
//  could fill the quota (one compile on less than a core is held back
//  every period) say nothing about the rest and are not counted; and
//  until a counted tick is at most NODE_SATURATION_FRESH_MS old, it counts
//  as saturated (a node whose slots stay busy is measured again once per
//  window, at the cost of one tick of an idle slot).

#ifndef MESHCC_SATURATION_H_INCLUDED
#define MESHCC_SATURATION_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    uint64_t throttled_us;          //  the last reading
    int64_t  read;                  //  time (ms) of the last reading
    bool     counted;               //  a reading is held
    double   share;                 //  demand beyond the quota / the quota, averaged
    int64_t  fresh;                 //  time (ms) of the last counted tick, 0: none
    bool     saturated;
} saturation_t;

//  One tick at `now_ms`: the throttled time (µs) read now, and the most
//  of our compiles (local slots and peers' jobs) that ran at once since
//  the last tick, against a quota of `quota_milli` thousandths of a core.
//  Returns (and keeps in self->saturated) whether the node is saturated.
bool saturation_update (saturation_t *self, int64_t now_ms, uint64_t throttled_us,
                        uint32_t compiles_peak, uint32_t quota_milli);

void saturation_test (bool verbose);

#endif
