//  saturation: whether a node confined to a CPU cgroup has room for one
//  more compile in a local slot, from the kernel's CFS bandwidth counters
//  (cpu.stat nr_periods, nr_throttled and the throttled time) read once
//  per tick, and whether it has room for background work (packaging).
//  Pure arithmetic on the readings it is given: reads no file and owns no
//  clock (node.c reads cpu.stat through sysinfo and calls this).
//
//  The share of a tick is the share of its periods in which the cgroup
//  was throttled, each weighed by how long it was held back: a throttled
//  period counts fully when held back NODE_SATURATION_MATERIAL_US or more
//  on average (summed over CPUs), in proportion below. One process alone
//  reaches a one-core quota at the end of every period and is held back
//  for next to nothing: that is not a full slice. Saturated while the
//  share, averaged over NODE_SATURATION_WINDOW_MS, is at least
//  NODE_SATURATION_THROTTLED. Ticks in which our compiles alone
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
    uint64_t periods, throttled;    //  the last reading
    uint64_t throttled_us;
    bool     counted;               //  a reading is held
    double   share;                 //  weighed throttled share of periods, averaged
    int64_t  fresh;                 //  time (ms) of the last counted tick, 0: none
    bool     saturated;
} saturation_t;

//  One tick at `now_ms`: the counters read now (the throttled time in
//  µs), and the most of our compiles (local slots and peers' jobs) that
//  ran at once since the last tick, against a quota of `quota_milli`
//  thousandths of a core. Returns (and keeps in self->saturated) whether
//  the node is saturated.
bool saturation_update (saturation_t *self, int64_t now_ms, uint64_t periods,
                        uint64_t throttled, uint64_t throttled_us,
                        uint32_t compiles_peak, uint32_t quota_milli);

//  Whether background work of a node (packaging a toolchain) must wait.
//  On a node confined to a quota, whatever it runs comes out of the same
//  quota as the build's, however low its priority, and the whole cgroup
//  is then throttled: it waits until the node has had no job for
//  NODE_BACKGROUND_IDLE_MS (`idle_ms` since the last) and the other
//  processes of its cgroup want less than NODE_BACKGROUND_LOAD of a CPU
//  (`others_load`, averaged), unless the work is `needed` now (a peer
//  refused a job for want of it). A node with no quota (`quota_milli` 0)
//  never waits: the idle scheduling class keeps the work out of the way.
bool saturation_background_waits (uint32_t quota_milli, double others_load, int64_t idle_ms,
                                  bool needed);

void saturation_test (bool verbose);

#endif
