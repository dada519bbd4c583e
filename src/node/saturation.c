//  saturation: room for one more local compile, from CFS counters (see
//  saturation.h).

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include "meshcc/limits.h"
#include "meshcc/saturation.h"

bool
saturation_update (saturation_t *self, int64_t now_ms, uint64_t throttled_us,
                   uint32_t compiles_peak, uint32_t quota_milli)
{
    bool filled = (uint64_t) compiles_peak * 1000 >= quota_milli;
    if (self->counted && !filled && quota_milli && now_ms > self->read
    &&  throttled_us >= self->throttled_us) {
        //  µs held back over (ms × thousandths of a core) = µs of quota.
        double share = (double) (throttled_us - self->throttled_us)
                     / ((double) (now_ms - self->read) * quota_milli);
        if (share > 1)
            share = 1;
        double elapsed = self->fresh? (double) (now_ms - self->fresh): NODE_SATURATION_WINDOW_MS;
        double keep = exp (-elapsed / NODE_SATURATION_WINDOW_MS);
        self->share = self->share * keep + share * (1 - keep);
        self->fresh = now_ms;
    }
    self->throttled_us = throttled_us;
    self->read = now_ms;
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
    assert (saturation_update (&s, 1000, 0, 0, 500));
    //  Idle half-core slice: never held back.
    assert (!saturation_update (&s, 1200, 0, 0, 500));
    //  Our one compile fills it (held back half of the time): not counted ...
    uint64_t t = 0;
    int64_t now = 1200;
    for (int i = 0; i < 3; i++)
        saturation_update (&s, now += 200, t += 100000, 1, 500);
    assert (s.share < 0.1 && !s.saturated);
    //  ... and once no counted tick is within the window, not known to be
    //  free until one is.
    for (int i = 0; i < 15; i++)
        saturation_update (&s, now += 200, t += 100000, 1, 500);
    assert (s.share < 0.1);
    assert (s.saturated);
    assert (!saturation_update (&s, now += 200, t, 0, 500));
    if (verbose)
        printf ("OK\n");
}
