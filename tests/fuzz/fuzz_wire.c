//  fuzz_wire: libFuzzer harness for the wire decoder. Whatever decodes
//  must re-encode and decode again to the same bytes (the encoder is
//  canonical for a given message), and nothing may crash or leak.
//
//    clang-14 -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -Iinclude \
//        tests/fuzz/fuzz_wire.c src/gossip/wire.c src/gossip/gossip_msg.c \
//        $(pkg-config --cflags --libs libczmq libzstd) -o /tmp/fuzz_wire
//    /tmp/fuzz_wire -max_len=4096 -max_total_time=60 CORPUS_DIR
//
//  With MESHCC_FUZZ_SEEDS=DIR set, writes one valid frame of each kind
//  into DIR (a starting corpus) and exits.

#include <czmq.h>
#include "meshcc/wire.h"

static void
s_write_seeds (const char *dir)
{
    for (int type = GOSSIP_SYN; type <= GOSSIP_ACK2; type++)
        for (size_t count = 0; count <= 40; count += 20) {
            gossip_msg_t *msg = gossip_msg_new ((gossip_type_t) type, count, count + 1);
            for (size_t index = 0; index <= count; index++) {
                peer_state_t *state = &msg->states [index];
                state->id [0] = (uint8_t) index;
                state->version = index;
                state->left = index % 3 == 0;
                snprintf (state->name, sizeof (state->name), "node-%zu", index);
                snprintf (state->endpoint, sizeof (state->endpoint), "tcp://10.0.0.%zu:7370", index);
                state->toolchains_size = 2;
                if (index < count)
                    msg->digest [index].version = index;
            }
            uint8_t *data;
            size_t size;
            if (wire_encode_gossip (msg, &data, &size) == 0) {
                char path [512];
                snprintf (path, sizeof (path), "%s/seed-%d-%zu", dir, type, count);
                FILE *file = fopen (path, "wb");
                if (file) {
                    fwrite (data, 1, size, file);
                    fclose (file);
                }
                free (data);
            }
            gossip_msg_destroy (&msg);
        }
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    const char *seeds = getenv ("MESHCC_FUZZ_SEEDS");
    if (seeds) {
        s_write_seeds (seeds);
        exit (0);
    }
    return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    gossip_msg_t *msg;
    wire_error_t error = wire_decode_gossip (data, size, &msg);
    if (error != WIRE_OK) {
        if (msg)
            abort ();
        return 0;
    }
    uint8_t *frame;
    size_t frame_size;
    if (wire_encode_gossip (msg, &frame, &frame_size) != 0)
        abort ();
    gossip_msg_t *again;
    if (wire_decode_gossip (frame, frame_size, &again) != WIRE_OK)
        abort ();
    uint8_t *frame2;
    size_t frame2_size;
    if (wire_encode_gossip (again, &frame2, &frame2_size) != 0
    ||  frame2_size != frame_size || memcmp (frame, frame2, frame_size) != 0)
        abort ();
    free (frame2);
    free (frame);
    gossip_msg_destroy (&again);
    gossip_msg_destroy (&msg);
    return 0;
}
