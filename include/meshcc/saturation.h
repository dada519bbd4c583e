//  saturation: whether a node confined to a CPU cgroup has room for one
//  more compile in a local slot, from the kernel's CFS bandwidth counters
//  (cpu.stat nr_periods, nr_throttled) read once per tick. Pure
//  arithmetic on the readings it is given: reads no file and owns no
//  clock (node.c reads cpu.stat through sysinfo and calls this).
//
//  Saturated while the cgroup was throttled in at least
//  NODE_SATURATION_THROTTLED of its periods, averaged over
//  NODE_SATURATION_WINDOW_MS; ticks in which our compiles alone could fill
//  the quota (one compile on less than a core is throttled every period)
//  say nothing about the rest and are not counted; and until a counted
//  tick is at most NODE_SATURATION_FRESH_MS old, it counts as saturated
//  (a node whose slots stay busy is measured again once per window, at
//  the cost of one tick of an idle slot).

#ifndef MESHCC_SATURATION_H_INCLUDED
#define MESHCC_SATURATION_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    uint64_t periods, throttled;    //  the last reading
    bool     counted;               //  a reading is held
    double   share;                 //  throttled share of periods, averaged
    int64_t  fresh;                 //  time (ms) of the last counted tick, 0: none
    bool     saturated;
} saturation_t;

//  One tick at `now_ms`: the counters read now, and the most of our
//  compiles (local slots and peers' jobs) that ran at once since the last
//  tick, against a quota of `quota_milli` thousandths of a core. Returns
//  (and keeps in self->saturated) whether the node is saturated.
bool saturation_update (saturation_t *self, int64_t now_ms, uint64_t periods,
                        uint64_t throttled, uint32_t compiles_peak, uint32_t quota_milli);

void saturation_test (bool verbose);

#endif
