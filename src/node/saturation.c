//  saturation: room for one more local compile, from CFS counters (see
//  saturation.h).

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include "meshcc/limits.h"
#include "meshcc/saturation.h"

bool
saturation_background_waits (uint32_t quota_milli, double others_load, int64_t idle_ms,
                             bool needed)
{
    return quota_milli && !needed
        && (idle_ms < NODE_BACKGROUND_IDLE_MS || others_load >= NODE_BACKGROUND_LOAD);
}

bool
saturation_update (saturation_t *self, int64_t now_ms, uint64_t periods, uint64_t throttled,
                   uint64_t throttled_us, uint32_t compiles_peak, uint32_t quota_milli)
{
    bool filled = (uint64_t) compiles_peak * 1000 >= quota_milli;
    if (self->counted && !filled && periods >= self->periods && throttled >= self->throttled
    &&  throttled_us >= self->throttled_us) {
        uint64_t active = periods - self->periods;
        uint64_t held = throttled - self->throttled;
        double share = active? (double) held / active: 0;
        if (held) {
            double mean_us = (double) (throttled_us - self->throttled_us) / held;
            if (mean_us < NODE_SATURATION_MATERIAL_US)
                share *= mean_us / NODE_SATURATION_MATERIAL_US;
        }
        double elapsed = self->fresh? (double) (now_ms - self->fresh): NODE_SATURATION_WINDOW_MS;
        double keep = exp (-elapsed / NODE_SATURATION_WINDOW_MS);
        self->share = self->share * keep + share * (1 - keep);
        self->fresh = now_ms;
    }
    self->periods = periods;
    self->throttled = throttled;
    self->throttled_us = throttled_us;
    self->counted = true;
    self->saturated = !self->fresh
                   || now_ms - self->fresh > NODE_SATURATION_FRESH_MS
                   || self->share >= NODE_SATURATION_THROTTLED;
    return self->saturated;
}

//  --------------------------------------------------------------------------
//  Self test: the cases test_node_sysinfo also names.

void
saturation_test (bool verbose)
{
    if (verbose)
        printf (" * saturation: ");
    saturation_t s = { 0 };
    //  No reading yet, then one: not known to be free.
    assert (saturation_update (&s, 1000, 10, 0, 0, 0, 500));
    //  Idle half-core slice: no periods wanted the CPU.
    assert (!saturation_update (&s, 1200, 10, 0, 0, 0, 500));
    //  Our one compile fills it (throttled every period, 50 ms each): not
    //  counted ...
    uint64_t p = 10, t = 0, us = 0;
    int64_t now = 1200;
    for (int i = 0; i < 3; i++)
        saturation_update (&s, now += 200, p += 2, t += 2, us += 100000, 1, 500);
    assert (s.share < 0.1 && !s.saturated);
    //  ... and once no counted tick is within the window, not known to be
    //  free until one is.
    for (int i = 0; i < 15; i++)
        saturation_update (&s, now += 200, p += 2, t += 2, us += 100000, 1, 500);
    assert (s.share < 0.1);
    assert (s.saturated);
    assert (!saturation_update (&s, now += 200, p += 2, t, us, 0, 500));
    if (verbose)
        printf ("OK\n");
}
