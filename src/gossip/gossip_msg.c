//  gossip_msg: construction and destruction of gossip_msg_t values, shared
//  by the gossip state machine (which fills them) and the wire codec (which
//  encodes and decodes them). Owns nothing else.

#include <czmq.h>
#include "meshcc/gossip.h"

gossip_msg_t *
gossip_msg_new (gossip_type_t type, size_t digest_count, size_t state_count)
{
    gossip_msg_t *self = (gossip_msg_t *) zmalloc (sizeof (gossip_msg_t));
    self->type = type;
    self->digest_count = digest_count;
    self->state_count = state_count;
    if (digest_count)
        self->digest = (gossip_digest_t *) zmalloc (digest_count * sizeof (gossip_digest_t));
    if (state_count)
        self->states = (peer_state_t *) zmalloc (state_count * sizeof (peer_state_t));
    return self;
}

void
gossip_msg_destroy (gossip_msg_t **self_p)
{
    if (self_p && *self_p) {
        gossip_msg_t *self = *self_p;
        free (self->digest);
        free (self->states);
        free (self);
        *self_p = NULL;
    }
}
