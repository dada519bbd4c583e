//  test_wire: the wire codec. Round trips of every message type at the
//  sizes that matter (empty, one entry, a large compressed one), every
//  field at its extremes, the encoder's refusals, and the decoder against
//  hostile input: every truncation, 100k seeded mutations per frame kind,
//  random frames, oversized counts and sizes, zstd bombs, bad headers.
//  Decoding always reads from a heap buffer of exactly the frame's size,
//  so that under ASan any read past the end is caught, and LSan checks
//  that refused frames leak nothing.

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <zstd.h>
#include "meshcc/wire.h"

//  100k mutations of each frame the encoder sends; the plain forms of the
//  compressed frames get fewer, since every one that decodes is
//  recompressed (zstd context setup dominates the run time).
#define MUTATIONS_PER_FRAME     100000
#define MUTATIONS_PER_PLAIN     25000
#define RANDOM_FRAMES           20000

//  --------------------------------------------------------------------------
//  Helpers

//  splitmix64: tiny, seedable, good enough to drive a fuzzer repeatably.
static uint64_t
s_rand (uint64_t *seed)
{
    uint64_t z = (*seed += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static size_t
s_below (uint64_t *seed, size_t bound)
{
    return bound ? (size_t) (s_rand (seed) % bound) : 0;
}

//  Byte builder for frames written by hand.
typedef struct {
    uint8_t data [8192];
    size_t size;
} buf_t;

static void
s_put (buf_t *buf, uint64_t value, size_t bytes)
{
    assert_true (bytes <= 8);
    assert_true (buf->size + bytes <= sizeof (buf->data));
    for (size_t index = 0; index < bytes; index++)
        buf->data [buf->size++] = (uint8_t) (value >> (8 * (bytes - 1 - index)));
}

static void
s_put_bytes (buf_t *buf, const void *bytes, size_t size)
{
    assert_true (buf->size + size <= sizeof (buf->data));
    memcpy (buf->data + buf->size, bytes, size);
    buf->size += size;
}

static void
s_put_header (buf_t *buf, uint8_t type, uint8_t flags)
{
    s_put (buf, 'M', 1);
    s_put (buf, 'C', 1);
    s_put (buf, MESHCC_PROTO_VERSION, 1);
    s_put (buf, type, 1);
    s_put (buf, flags, 1);
}

//  A state in hand-built frames: name "n", endpoint "e", no toolchains,
//  and the state flags given.
static void
s_put_small_state (buf_t *buf, uint8_t flags)
{
    uint8_t id [MESHCC_ID_SIZE];
    memset (id, 0x11, sizeof (id));
    s_put_bytes (buf, id, sizeof (id));
    s_put (buf, 5, 8);                  //  incarnation
    s_put (buf, 6, 8);                  //  version
    s_put (buf, 1, 2);                  //  proto
    s_put (buf, flags, 1);
    for (int field = 0; field < 5; field++)
        s_put (buf, field, 4);
    s_put (buf, 1, 1);
    s_put (buf, 'n', 1);
    s_put (buf, 1, 1);
    s_put (buf, 'e', 1);
    s_put (buf, 0, 2);
}

//  Decodes from an exact-size heap copy (so ASan sees any over-read) and
//  checks the contract: a message on OK, NULL otherwise.
static wire_error_t
s_decode (const uint8_t *data, size_t size, gossip_msg_t **msg_p)
{
    uint8_t *copy = (uint8_t *) malloc (size ? size : 1);
    assert_non_null (copy);
    if (size)
        memcpy (copy, data, size);
    gossip_msg_t *msg = (gossip_msg_t *) (uintptr_t) 1;     //  must be overwritten
    wire_error_t error = wire_decode_gossip (copy, size, &msg);
    free (copy);
    assert_true (error >= WIRE_OK && error < WIRE_ERROR_COUNT);
    if (error == WIRE_OK)
        assert_non_null (msg);
    else
        assert_null (msg);
    if (msg_p)
        *msg_p = msg;
    else
        gossip_msg_destroy (&msg);
    return error;
}

//  Plain payload size computed independently of wire.c.
static size_t
s_raw_size (const gossip_msg_t *msg)
{
    size_t size = 16 + 4 + 32 * msg->digest_count + 4;
    for (size_t index = 0; index < msg->state_count; index++) {
        const peer_state_t *state = &msg->states [index];
        size += 16 + 8 + 8 + 2 + 1 + 20 + 1 + strlen (state->name)
              + 1 + strlen (state->endpoint) + 2 + state->toolchains_size;
    }
    return size;
}

//  A realistic state: random id, sequential names and addresses (so that
//  large messages compress as real ones do).
static void
s_fill_state (peer_state_t *state, size_t index, uint64_t *seed)
{
    memset (state, 0, sizeof (*state));
    for (size_t byte = 0; byte < MESHCC_ID_SIZE; byte++)
        state->id [byte] = (uint8_t) s_rand (seed);
    state->incarnation = 1 + s_below (seed, 10);
    state->version = s_below (seed, 100000);
    state->proto = MESHCC_PROTO_VERSION;
    state->left = s_below (seed, 10) == 0;
    state->slots = 8;
    state->running = (uint32_t) s_below (seed, 9);
    state->queued = (uint32_t) s_below (seed, 3);
    state->load_milli = (uint32_t) s_below (seed, 8000);
    state->speed = 1000;
    snprintf (state->name, sizeof (state->name), "build-%04zu.example.net", index);
    snprintf (state->endpoint, sizeof (state->endpoint), "tcp://10.1.%zu.%zu:7370",
              index / 256, index % 256);
    state->toolchains_size = (uint16_t) s_below (seed, 24);
    for (size_t byte = 0; byte < state->toolchains_size; byte++)
        state->toolchains [byte] = (uint8_t) ('a' + s_below (seed, 4));
}

static gossip_msg_t *
s_make_msg (gossip_type_t type, size_t digest_count, size_t state_count, uint64_t seed)
{
    gossip_msg_t *msg = gossip_msg_new (type, digest_count, state_count);
    for (size_t byte = 0; byte < MESHCC_ID_SIZE; byte++)
        msg->from [byte] = (uint8_t) s_rand (&seed);
    for (size_t index = 0; index < state_count; index++)
        s_fill_state (&msg->states [index], index, &seed);
    for (size_t index = 0; index < digest_count; index++) {
        gossip_digest_t *entry = &msg->digest [index];
        for (size_t byte = 0; byte < MESHCC_ID_SIZE; byte++)
            entry->id [byte] = (uint8_t) s_rand (&seed);
        entry->incarnation = s_below (&seed, 4);
        entry->version = s_below (&seed, 1 << 20);
    }
    return msg;
}

static void
s_assert_state_equal (const peer_state_t *left, const peer_state_t *right)
{
    assert_memory_equal (left->id, right->id, MESHCC_ID_SIZE);
    assert_true (left->incarnation == right->incarnation);
    assert_true (left->version == right->version);
    assert_string_equal (left->name, right->name);
    assert_string_equal (left->endpoint, right->endpoint);
    assert_int_equal (left->proto, right->proto);
    assert_int_equal (left->left, right->left);
    assert_int_equal (left->slots, right->slots);
    assert_int_equal (left->running, right->running);
    assert_int_equal (left->queued, right->queued);
    assert_int_equal (left->load_milli, right->load_milli);
    assert_int_equal (left->speed, right->speed);
    assert_int_equal (left->toolchains_size, right->toolchains_size);
    if (left->toolchains_size)
        assert_memory_equal (left->toolchains, right->toolchains, left->toolchains_size);
}

static void
s_assert_msg_equal (const gossip_msg_t *left, const gossip_msg_t *right)
{
    assert_int_equal (left->type, right->type);
    assert_memory_equal (left->from, right->from, MESHCC_ID_SIZE);
    assert_int_equal (left->digest_count, right->digest_count);
    assert_int_equal (left->state_count, right->state_count);
    for (size_t index = 0; index < left->digest_count; index++) {
        assert_memory_equal (left->digest [index].id, right->digest [index].id, MESHCC_ID_SIZE);
        assert_true (left->digest [index].incarnation == right->digest [index].incarnation);
        assert_true (left->digest [index].version == right->digest [index].version);
    }
    for (size_t index = 0; index < left->state_count; index++)
        s_assert_state_equal (&left->states [index], &right->states [index]);
}

//  Encodes, decodes, checks equality; returns the frame (caller frees).
static uint8_t *
s_round_trip (const gossip_msg_t *msg, size_t *size_p)
{
    uint8_t *data;
    size_t size;
    assert_int_equal (wire_encode_gossip (msg, &data, &size), 0);
    assert_non_null (data);
    assert_true (size <= WIRE_MAX_FRAME);
    gossip_msg_t *copy;
    assert_int_equal (s_decode (data, size, &copy), WIRE_OK);
    s_assert_msg_equal (msg, copy);
    gossip_msg_destroy (&copy);
    *size_p = size;
    return data;
}

//  Decompresses a compressed frame into the plain frame of the same
//  message: a valid plain frame larger than the encoder would ever send
//  uncompressed, to give the plain decoder more to chew on.
static uint8_t *
s_plain_frame (const uint8_t *frame, size_t size, size_t *plain_size_p)
{
    assert_true (frame [4] & WIRE_FLAG_ZSTD);
    size_t raw_size = ((size_t) frame [5] << 24) | ((size_t) frame [6] << 16)
                    | ((size_t) frame [7] << 8) | frame [8];
    uint8_t *plain = (uint8_t *) malloc (WIRE_HEADER_SIZE + raw_size);
    assert_non_null (plain);
    memcpy (plain, frame, WIRE_HEADER_SIZE);
    plain [4] = 0;
    size_t got = ZSTD_decompress (plain + WIRE_HEADER_SIZE, raw_size, frame + 9, size - 9);
    assert_int_equal (got, raw_size);
    *plain_size_p = WIRE_HEADER_SIZE + raw_size;
    return plain;
}

//  --------------------------------------------------------------------------
//  Round trips

static void
test_selftest (void **state)
{
    (void) state;
    wire_test (false);
}

static void
test_round_trip_sizes (void **state)
{
    (void) state;
    const gossip_type_t types [] = { GOSSIP_SYN, GOSSIP_ACK, GOSSIP_ACK2 };
    const size_t counts [] = { 0, 1, 1000 };
    for (size_t type = 0; type < 3; type++)
        for (size_t count = 0; count < 3; count++) {
            //  a SYN always carries its sender's state; ACK/ACK2 deltas
            size_t state_count = types [type] == GOSSIP_SYN && counts [count] == 0
                               ? 1 : counts [count];
            gossip_msg_t *msg = s_make_msg (types [type], counts [count], state_count,
                                            type * 10 + count);
            size_t raw_size = s_raw_size (msg);
            size_t size;
            uint8_t *data = s_round_trip (msg, &size);
            assert_int_equal (data [0], 'M');
            assert_int_equal (data [1], 'C');
            assert_int_equal (data [2], MESHCC_PROTO_VERSION);
            assert_int_equal (data [3], types [type]);
            if (raw_size >= WIRE_COMPRESS_MIN) {
                assert_int_equal (data [4], WIRE_FLAG_ZSTD);
                assert_true (size < WIRE_HEADER_SIZE + raw_size);
            }
            else {
                assert_int_equal (data [4], 0);
                assert_int_equal (size, WIRE_HEADER_SIZE + raw_size);
            }
            if (counts [count] == 1000)
                assert_int_equal (data [4], WIRE_FLAG_ZSTD);
            else
                assert_int_equal (data [4], 0);
            free (data);
            gossip_msg_destroy (&msg);
        }
}

static void
test_fields_preserved (void **state)
{
    (void) state;
    gossip_msg_t *msg = gossip_msg_new (GOSSIP_ACK, 2, 3);
    memset (msg->from, 0xFF, MESHCC_ID_SIZE);
    memset (msg->digest [0].id, 0x00, MESHCC_ID_SIZE);
    msg->digest [0].incarnation = 0;
    msg->digest [0].version = 0;
    memset (msg->digest [1].id, 0xFF, MESHCC_ID_SIZE);
    msg->digest [1].incarnation = UINT64_MAX;
    msg->digest [1].version = 0x0102030405060708ULL;

    //  Every field at its maximum, strings and summary full.
    peer_state_t *full = &msg->states [0];
    memset (full->id, 0xEE, MESHCC_ID_SIZE);
    full->incarnation = UINT64_MAX;
    full->version = UINT64_MAX - 1;
    full->proto = UINT16_MAX;
    full->left = true;
    full->slots = UINT32_MAX;
    full->running = UINT32_MAX - 1;
    full->queued = UINT32_MAX - 2;
    full->load_milli = UINT32_MAX - 3;
    full->speed = UINT32_MAX - 4;
    memset (full->name, 'n', MESHCC_NAME_MAX);
    memset (full->endpoint, 'e', MESHCC_ENDPOINT_MAX);
    full->name [MESHCC_NAME_MAX - 1] = (char) 0xFF;     //  any byte but NUL
    full->toolchains_size = MESHCC_TOOLCHAIN_SUMMARY_MAX;
    for (size_t byte = 0; byte < MESHCC_TOOLCHAIN_SUMMARY_MAX; byte++)
        full->toolchains [byte] = (uint8_t) (byte * 2);   //  NULs included
    //  Every field at its minimum.
    peer_state_t *empty = &msg->states [1];
    assert_false (empty->left);
    //  Distinct small values, to catch swapped fields.
    peer_state_t *mixed = &msg->states [2];
    for (size_t byte = 0; byte < MESHCC_ID_SIZE; byte++)
        mixed->id [byte] = (uint8_t) byte;
    mixed->incarnation = 1;
    mixed->version = 2;
    mixed->proto = 3;
    mixed->slots = 4;
    mixed->running = 5;
    mixed->queued = 6;
    mixed->load_milli = 7;
    mixed->speed = 8;
    strcpy (mixed->name, "a");
    strcpy (mixed->endpoint, "tcp://[::1]:7370");
    mixed->toolchains_size = 1;
    mixed->toolchains [0] = 0;

    size_t size;
    uint8_t *data = s_round_trip (msg, &size);
    free (data);
    //  A subset small enough to travel plain.
    msg->states [0].toolchains_size = 0;
    msg->state_count = 1;
    data = s_round_trip (msg, &size);
    assert_int_equal (data [4], 0);
    free (data);
    gossip_msg_destroy (&msg);
}

//  Pins the byte layout: a hand-written frame equals the encoder's output
//  and decodes to the message it was written from.
static void
test_golden_bytes (void **state)
{
    (void) state;
    gossip_msg_t *msg = gossip_msg_new (GOSSIP_ACK2, 1, 1);
    memset (msg->from, 0x22, MESHCC_ID_SIZE);
    memset (msg->digest [0].id, 0x33, MESHCC_ID_SIZE);
    msg->digest [0].incarnation = 0x0102030405060708ULL;
    msg->digest [0].version = 0x1112131415161718ULL;
    peer_state_t *peer = &msg->states [0];
    memset (peer->id, 0x11, MESHCC_ID_SIZE);
    peer->incarnation = 5;
    peer->version = 6;
    peer->proto = 1;
    peer->left = true;
    peer->slots = 0;
    peer->running = 1;
    peer->queued = 2;
    peer->load_milli = 3;
    peer->speed = 4;
    strcpy (peer->name, "n");
    strcpy (peer->endpoint, "e");

    buf_t expect = { .size = 0 };
    s_put_header (&expect, WIRE_GOSSIP_ACK2, 0);
    s_put_bytes (&expect, msg->from, MESHCC_ID_SIZE);
    s_put (&expect, 1, 4);
    s_put_bytes (&expect, msg->digest [0].id, MESHCC_ID_SIZE);
    s_put (&expect, 0x0102030405060708ULL, 8);
    s_put (&expect, 0x1112131415161718ULL, 8);
    s_put (&expect, 1, 4);
    s_put_small_state (&expect, 0x01);

    uint8_t *data;
    size_t size;
    assert_int_equal (wire_encode_gossip (msg, &data, &size), 0);
    assert_int_equal (size, expect.size);
    assert_memory_equal (data, expect.data, size);
    gossip_msg_t *copy;
    assert_int_equal (s_decode (expect.data, expect.size, &copy), WIRE_OK);
    s_assert_msg_equal (msg, copy);
    gossip_msg_destroy (&copy);
    free (data);
    gossip_msg_destroy (&msg);
}

static void
s_assert_refused (const gossip_msg_t *msg)
{
    uint8_t *data = (uint8_t *) (uintptr_t) 1;
    size_t size = 1;
    assert_int_equal (wire_encode_gossip (msg, &data, &size), -1);
    assert_null (data);
    assert_int_equal (size, 0);
}

static void
test_encoder_refuses (void **state)
{
    (void) state;
    uint8_t *data;
    size_t size;
    assert_int_equal (wire_encode_gossip (NULL, &data, &size), -1);

    //  Counts: at the limit is fine, one above is not.
    gossip_msg_t *msg = s_make_msg (GOSSIP_SYN, GOSSIP_MAX_MEMBERS, 1, 1);
    data = s_round_trip (msg, &size);
    free (data);
    gossip_msg_destroy (&msg);
    msg = gossip_msg_new (GOSSIP_SYN, GOSSIP_MAX_MEMBERS + 1, 0);
    s_assert_refused (msg);
    gossip_msg_destroy (&msg);
    msg = gossip_msg_new (GOSSIP_ACK, 0, GOSSIP_MAX_MEMBERS + 1);
    s_assert_refused (msg);
    gossip_msg_destroy (&msg);

    //  A count without its array.
    msg = gossip_msg_new (GOSSIP_ACK, 0, 0);
    msg->digest_count = 1;
    s_assert_refused (msg);
    msg->digest_count = 0;
    msg->state_count = 1;
    s_assert_refused (msg);
    msg->state_count = 0;
    //  Types outside the enum.
    msg->type = (gossip_type_t) 0;
    s_assert_refused (msg);
    msg->type = (gossip_type_t) 4;
    s_assert_refused (msg);
    gossip_msg_destroy (&msg);

    //  Strings without a terminator, summary too long.
    msg = s_make_msg (GOSSIP_ACK2, 0, 2, 2);
    memset (msg->states [1].name, 'x', sizeof (msg->states [1].name));
    s_assert_refused (msg);
    msg->states [1].name [MESHCC_NAME_MAX] = 0;
    data = s_round_trip (msg, &size);
    free (data);
    memset (msg->states [1].endpoint, 'x', sizeof (msg->states [1].endpoint));
    s_assert_refused (msg);
    msg->states [1].endpoint [MESHCC_ENDPOINT_MAX] = 0;
    msg->states [1].toolchains_size = MESHCC_TOOLCHAIN_SUMMARY_MAX + 1;
    s_assert_refused (msg);
    msg->states [1].toolchains_size = MESHCC_TOOLCHAIN_SUMMARY_MAX;
    data = s_round_trip (msg, &size);
    free (data);
    gossip_msg_destroy (&msg);

    //  A frame above WIRE_MAX_FRAME even compressed: 4096 full states of
    //  incompressible bytes (~1.2 MB).
    uint64_t seed = 3;
    msg = gossip_msg_new (GOSSIP_ACK, 0, GOSSIP_MAX_MEMBERS);
    for (size_t index = 0; index < GOSSIP_MAX_MEMBERS; index++) {
        peer_state_t *peer = &msg->states [index];
        for (size_t byte = 0; byte < MESHCC_ID_SIZE; byte++)
            peer->id [byte] = (uint8_t) s_rand (&seed);
        for (size_t byte = 0; byte < MESHCC_NAME_MAX; byte++)
            peer->name [byte] = (char) (1 + s_below (&seed, 255));
        for (size_t byte = 0; byte < MESHCC_ENDPOINT_MAX; byte++)
            peer->endpoint [byte] = (char) (1 + s_below (&seed, 255));
        peer->toolchains_size = MESHCC_TOOLCHAIN_SUMMARY_MAX;
        for (size_t byte = 0; byte < MESHCC_TOOLCHAIN_SUMMARY_MAX; byte++)
            peer->toolchains [byte] = (uint8_t) s_rand (&seed);
    }
    s_assert_refused (msg);
    gossip_msg_destroy (&msg);
}

//  --------------------------------------------------------------------------
//  Decoder against hostile input

typedef struct {
    const char *name;
    uint8_t *data;
    size_t size;
} sample_t;

#define SAMPLE_COUNT 6

//  One valid frame per type, plain and compressed. The plain ones are
//  small messages as the encoder sends them, with a left state and a
//  toolchain summary; the compressed ones carry enough states to compress.
static void
s_make_samples (sample_t samples [SAMPLE_COUNT])
{
    const gossip_type_t types [] = { GOSSIP_SYN, GOSSIP_ACK, GOSSIP_ACK2 };
    const char *names [] = { "syn", "syn+zstd", "ack", "ack+zstd", "ack2", "ack2+zstd" };
    for (size_t type = 0; type < 3; type++) {
        for (int compressed = 0; compressed < 2; compressed++) {
            sample_t *sample = &samples [type * 2 + compressed];
            gossip_msg_t *msg = compressed
                ? s_make_msg (types [type], 24, 16, 100 + type)
                : s_make_msg (types [type], 3, 2, 200 + type);
            msg->states [0].left = true;
            msg->states [0].toolchains_size = 4;
            memcpy (msg->states [0].toolchains, "\x00\x01gc", 4);
            sample->name = names [type * 2 + compressed];
            sample->data = s_round_trip (msg, &sample->size);
            assert_int_equal (sample->data [4], compressed ? WIRE_FLAG_ZSTD : 0);
            gossip_msg_destroy (&msg);
        }
    }
}

static void
s_free_samples (sample_t samples [SAMPLE_COUNT])
{
    for (size_t index = 0; index < SAMPLE_COUNT; index++)
        free (samples [index].data);
}

//  (a) Every proper prefix of a valid frame is refused. Plain frames are
//  self-delimiting, so none can be OK; compressed ones lose zstd data.
static void
test_decode_truncations (void **state)
{
    (void) state;
    sample_t samples [SAMPLE_COUNT];
    s_make_samples (samples);
    for (size_t index = 0; index < SAMPLE_COUNT; index++) {
        sample_t *sample = &samples [index];
        for (size_t length = 0; length < sample->size; length++)
            assert_int_equal (s_decode (sample->data, length, NULL), WIRE_TRUNCATED);
        //  and the plain form of the compressed one too
        if (sample->data [4] & WIRE_FLAG_ZSTD) {
            size_t plain_size;
            uint8_t *plain = s_plain_frame (sample->data, sample->size, &plain_size);
            assert_int_equal (s_decode (plain, plain_size, NULL), WIRE_OK);
            for (size_t length = 0; length < plain_size; length++) {
                assert_int_equal (s_decode (plain, length, NULL), WIRE_TRUNCATED);
            }
            free (plain);
        }
    }
    s_free_samples (samples);
}

//  One random edit: flip a bit, overwrite with 0x00/0xFF/random, insert
//  or delete a byte. Frames get a little slack so inserts always fit.
static size_t
s_mutate (uint8_t *data, size_t size, size_t capacity, uint64_t *seed)
{
    size_t at = s_below (seed, size ? size : 1);
    switch (s_below (seed, 7)) {
        case 0: if (size) data [at] ^= (uint8_t) (1u << s_below (seed, 8)); break;
        case 1: if (size) data [at] = 0xFF; break;
        case 2: if (size) data [at] = 0x00; break;
        case 3: if (size) data [at] = (uint8_t) s_rand (seed); break;
        case 4:
            if (size < capacity) {
                at = s_below (seed, size + 1);
                memmove (data + at + 1, data + at, size - at);
                data [at] = (uint8_t) s_rand (seed);
                size++;
            }
            break;
        case 5:
            if (size) {
                memmove (data + at, data + at + 1, size - at - 1);
                size--;
            }
            break;
        case 6:
            //  A length or count is most often a small value near zero;
            //  nudge one by +-1, which lands on off-by-one boundaries.
            if (size) data [at] = (uint8_t) (data [at] + (s_below (seed, 2) ? 1 : -1));
            break;
    }
    return size;
}

//  A decoded message re-encodes (it is within every bound) and decodes
//  again to the same value.
static void
s_assert_reencodes (const gossip_msg_t *msg)
{
    uint8_t *data;
    size_t size;
    assert_int_equal (wire_encode_gossip (msg, &data, &size), 0);
    gossip_msg_t *again;
    assert_int_equal (s_decode (data, size, &again), WIRE_OK);
    s_assert_msg_equal (msg, again);
    gossip_msg_destroy (&again);
    free (data);
}

static void
s_fuzz_frame (const uint8_t *frame, size_t size, size_t rounds, uint64_t seed,
              const char *name)
{
    size_t capacity = size + 8;
    uint8_t *work = (uint8_t *) malloc (capacity);
    assert_non_null (work);
    size_t counts [WIRE_ERROR_COUNT] = { 0 };
    clock_t started = clock ();
    for (size_t round = 0; round < rounds; round++) {
        memcpy (work, frame, size);
        size_t length = size;
        size_t edits = 1 + s_below (&seed, 4);
        for (size_t edit = 0; edit < edits; edit++)
            length = s_mutate (work, length, capacity, &seed);
        gossip_msg_t *msg;
        wire_error_t error = s_decode (work, length, &msg);
        counts [error]++;
        if (error == WIRE_OK) {
            s_assert_reencodes (msg);
            gossip_msg_destroy (&msg);
        }
    }
    free (work);
    if (getenv ("TEST_WIRE_VERBOSE")) {
        printf ("  %-10s %4zu bytes %5.2f s", name, size,
                (double) (clock () - started) / CLOCKS_PER_SEC);
        for (int error = 0; error < WIRE_ERROR_COUNT; error++)
            printf (" %s=%zu", wire_error_name ((wire_error_t) error), counts [error]);
        printf ("\n");
    }
}

//  (b) Seeded mutations never crash, never leak, and whatever decodes
//  re-encodes. The plain form of each compressed sample is fuzzed as well,
//  so the payload parser sees mutations of large messages, not only zstd.
static void
test_decode_mutations (void **state)
{
    (void) state;
    sample_t samples [SAMPLE_COUNT];
    s_make_samples (samples);
    for (size_t index = 0; index < SAMPLE_COUNT; index++) {
        sample_t *sample = &samples [index];
        s_fuzz_frame (sample->data, sample->size, MUTATIONS_PER_FRAME, 1000 + index,
                      sample->name);
        if (sample->data [4] & WIRE_FLAG_ZSTD) {
            size_t plain_size;
            uint8_t *plain = s_plain_frame (sample->data, sample->size, &plain_size);
            s_fuzz_frame (plain, plain_size, MUTATIONS_PER_PLAIN, 2000 + index, "(plain)");
            free (plain);
        }
    }
    s_free_samples (samples);
}

//  (c) Random bytes are refused, also behind a valid header (random type
//  and flag bit), where the payload parser or zstd must refuse them.
static void
test_decode_random (void **state)
{
    (void) state;
    uint64_t seed = 42;
    uint8_t frame [2048];
    for (size_t round = 0; round < RANDOM_FRAMES; round++) {
        size_t size = s_below (&seed, sizeof (frame) + 1);
        for (size_t byte = 0; byte < size; byte++)
            frame [byte] = (uint8_t) s_rand (&seed);
        bool with_header = round % 2 == 0;
        if (with_header && size >= WIRE_HEADER_SIZE) {
            frame [0] = 'M';
            frame [1] = 'C';
            frame [2] = MESHCC_PROTO_VERSION;
            frame [3] = (uint8_t) (1 + s_below (&seed, 3));
            frame [4] = (uint8_t) s_below (&seed, 2);
            //  half of the compressed ones announce a plausible raw size
            if (frame [4] && size >= 9 && s_below (&seed, 2)) {
                frame [5] = 0;
                frame [6] = 0;
            }
        }
        wire_error_t error = s_decode (frame, size, NULL);
        assert_int_not_equal (error, WIRE_OK);
        if (size < WIRE_HEADER_SIZE)
            assert_int_equal (error, WIRE_TRUNCATED);
    }
}

//  (d) Sizes and counts above their bounds.
static void
test_decode_oversized (void **state)
{
    (void) state;
    //  A frame of WIRE_MAX_FRAME + 1 bytes is refused unread, even if it
    //  starts well; one byte less reaches the parser (and is malformed).
    uint8_t *giant = (uint8_t *) calloc (1, WIRE_MAX_FRAME + 1);
    assert_non_null (giant);
    memcpy (giant, "MC\x01\x01\x00", WIRE_HEADER_SIZE);
    assert_int_equal (wire_decode_gossip (giant, WIRE_MAX_FRAME + 1, &(gossip_msg_t *) {NULL}),
                      WIRE_OVERSIZED);
    assert_int_equal (s_decode (giant, WIRE_MAX_FRAME + 1, NULL), WIRE_OVERSIZED);
    assert_int_equal (s_decode (giant, WIRE_MAX_FRAME, NULL), WIRE_MALFORMED);
    free (giant);

    buf_t buf;
    uint8_t from [MESHCC_ID_SIZE] = { 0 };
    //  digest_count 0xFFFFFFFF, then just above the limit
    const uint32_t huge [] = { 0xFFFFFFFF, GOSSIP_MAX_MEMBERS + 1 };
    for (size_t index = 0; index < 2; index++) {
        buf.size = 0;
        s_put_header (&buf, WIRE_GOSSIP_SYN, 0);
        s_put_bytes (&buf, from, sizeof (from));
        s_put (&buf, huge [index], 4);
        s_put (&buf, 0, 4);
        assert_int_equal (s_decode (buf.data, buf.size, NULL), WIRE_OVERSIZED);
        //  state_count
        buf.size = 0;
        s_put_header (&buf, WIRE_GOSSIP_ACK, 0);
        s_put_bytes (&buf, from, sizeof (from));
        s_put (&buf, 0, 4);
        s_put (&buf, huge [index], 4);
        assert_int_equal (s_decode (buf.data, buf.size, NULL), WIRE_OVERSIZED);
    }
    //  Within the limit but more than the bytes left can hold: refused
    //  before anything is allocated for it.
    buf.size = 0;
    s_put_header (&buf, WIRE_GOSSIP_ACK, 0);
    s_put_bytes (&buf, from, sizeof (from));
    s_put (&buf, GOSSIP_MAX_MEMBERS, 4);
    s_put (&buf, 0, 4);
    assert_int_equal (s_decode (buf.data, buf.size, NULL), WIRE_TRUNCATED);
    buf.size = 0;
    s_put_header (&buf, WIRE_GOSSIP_ACK, 0);
    s_put_bytes (&buf, from, sizeof (from));
    s_put (&buf, 0, 4);
    s_put (&buf, 2, 4);
    s_put_small_state (&buf, 0);
    assert_int_equal (s_decode (buf.data, buf.size, NULL), WIRE_TRUNCATED);

    //  Compressed raw size 0xFFFFFFFF, and just above WIRE_MAX_PAYLOAD.
    const uint32_t raw_sizes [] = { 0xFFFFFFFF, WIRE_MAX_PAYLOAD + 1 };
    for (size_t index = 0; index < 2; index++) {
        buf.size = 0;
        s_put_header (&buf, WIRE_GOSSIP_ACK2, WIRE_FLAG_ZSTD);
        s_put (&buf, raw_sizes [index], 4);
        s_put (&buf, 0xFD2FB528, 4);    //  a zstd magic number, no frame
        assert_int_equal (s_decode (buf.data, buf.size, NULL), WIRE_OVERSIZED);
    }
}

//  A compressed frame: header, then `announced` as raw size, then `frame`.
static wire_error_t
s_decode_zstd (const void *frame, size_t frame_size, uint32_t announced)
{
    size_t size = WIRE_HEADER_SIZE + 4 + frame_size;
    uint8_t *data = (uint8_t *) malloc (size);
    assert_non_null (data);
    memcpy (data, "MC\x01\x02\x01", WIRE_HEADER_SIZE);
    data [5] = (uint8_t) (announced >> 24);
    data [6] = (uint8_t) (announced >> 16);
    data [7] = (uint8_t) (announced >> 8);
    data [8] = (uint8_t) announced;
    memcpy (data + 9, frame, frame_size);
    wire_error_t error = s_decode (data, size, NULL);
    free (data);
    return error;
}

//  zstd bombs and other bad compressed payloads.
static void
test_decode_zstd (void **state)
{
    (void) state;
    //  A valid plain payload to compress: an ACK with one state.
    buf_t payload = { .size = 0 };
    uint8_t from [MESHCC_ID_SIZE] = { 0 };
    s_put_bytes (&payload, from, sizeof (from));
    s_put (&payload, 0, 4);
    s_put (&payload, 1, 4);
    s_put_small_state (&payload, 0);
    size_t bound = ZSTD_compressBound (WIRE_MAX_PAYLOAD + 1);
    uint8_t *packed = (uint8_t *) malloc (2 * bound);
    assert_non_null (packed);
    size_t packed_size = ZSTD_compress (packed, bound, payload.data, payload.size, 1);
    assert_false (ZSTD_isError (packed_size));
    uint32_t raw = (uint32_t) payload.size;

    assert_int_equal (s_decode_zstd (packed, packed_size, raw), WIRE_OK);
    //  The header's raw size differs from the frame's content size: in
    //  either direction, refused before decompressing.
    assert_int_equal (s_decode_zstd (packed, packed_size, raw - 1), WIRE_MALFORMED);
    assert_int_equal (s_decode_zstd (packed, packed_size, raw + 1), WIRE_MALFORMED);
    assert_int_equal (s_decode_zstd (packed, packed_size, WIRE_MAX_PAYLOAD), WIRE_MALFORMED);
    //  Raw size 0, zstd data missing or cut, two frames, trailing bytes.
    assert_int_equal (s_decode_zstd (packed, packed_size, 0), WIRE_MALFORMED);
    assert_int_equal (s_decode_zstd (packed, 0, raw), WIRE_TRUNCATED);
    assert_int_equal (s_decode_zstd (packed, packed_size - 1, raw), WIRE_TRUNCATED);
    memcpy (packed + packed_size, packed, packed_size);
    assert_int_equal (s_decode_zstd (packed, 2 * packed_size, raw), WIRE_MALFORMED);
    packed [packed_size] = 0;
    assert_int_equal (s_decode_zstd (packed, packed_size + 1, raw), WIRE_MALFORMED);
    //  Not zstd at all.
    assert_int_equal (s_decode_zstd (payload.data, payload.size, raw), WIRE_MALFORMED);

    //  A frame that does not declare its content size.
    ZSTD_CCtx *cctx = ZSTD_createCCtx ();
    assert_non_null (cctx);
    ZSTD_CCtx_setParameter (cctx, ZSTD_c_contentSizeFlag, 0);
    size_t unsized = ZSTD_compress2 (cctx, packed, bound, payload.data, payload.size);
    assert_false (ZSTD_isError (unsized));
    assert_int_equal (ZSTD_getFrameContentSize (packed, unsized), ZSTD_CONTENTSIZE_UNKNOWN);
    assert_int_equal (s_decode_zstd (packed, unsized, raw), WIRE_MALFORMED);
    ZSTD_freeCCtx (cctx);

    //  A skippable frame (content size 0).
    uint8_t skippable [12] = { 0x50, 0x2A, 0x4D, 0x18, 4, 0, 0, 0, 1, 2, 3, 4 };
    assert_int_equal (s_decode_zstd (skippable, sizeof (skippable), 4), WIRE_MALFORMED);

    //  Content that is itself malformed (a trailing byte after the state),
    //  truncated, or too large (0xFFFFFFFF states) after inflating.
    buf_t bad = payload;
    s_put (&bad, 0, 1);
    packed_size = ZSTD_compress (packed, bound, bad.data, bad.size, 1);
    assert_int_equal (s_decode_zstd (packed, packed_size, (uint32_t) bad.size), WIRE_MALFORMED);
    packed_size = ZSTD_compress (packed, bound, payload.data, payload.size - 1, 1);
    assert_int_equal (s_decode_zstd (packed, packed_size, raw - 1), WIRE_TRUNCATED);
    bad.size = 20;
    s_put (&bad, 0xFFFFFFFF, 4);
    packed_size = ZSTD_compress (packed, bound, bad.data, bad.size, 1);
    assert_int_equal (s_decode_zstd (packed, packed_size, (uint32_t) bad.size), WIRE_OVERSIZED);

    //  The bomb: a few hundred bytes that inflate past WIRE_MAX_PAYLOAD.
    //  Announcing its true size is oversized; announcing a small size is
    //  refused as a mismatch before a byte is inflated.
    uint8_t *zeros = (uint8_t *) calloc (1, WIRE_MAX_PAYLOAD + 1);
    assert_non_null (zeros);
    packed_size = ZSTD_compress (packed, bound, zeros, WIRE_MAX_PAYLOAD + 1, 1);
    assert_false (ZSTD_isError (packed_size));
    assert_true (packed_size < 1024);
    assert_int_equal (s_decode_zstd (packed, packed_size, WIRE_MAX_PAYLOAD + 1), WIRE_OVERSIZED);
    assert_int_equal (s_decode_zstd (packed, packed_size, 1000), WIRE_MALFORMED);
    assert_int_equal (s_decode_zstd (packed, packed_size, WIRE_MAX_PAYLOAD), WIRE_MALFORMED);
    //  Exactly WIRE_MAX_PAYLOAD of zeros is allowed to inflate, and then
    //  refused by the payload parser (count 0 ... trailing zeros).
    packed_size = ZSTD_compress (packed, bound, zeros, WIRE_MAX_PAYLOAD, 1);
    assert_int_equal (s_decode_zstd (packed, packed_size, WIRE_MAX_PAYLOAD), WIRE_MALFORMED);
    free (zeros);
    free (packed);
}

//  (e) Header errors, each with its own name.
static void
test_decode_header (void **state)
{
    (void) state;
    sample_t samples [SAMPLE_COUNT];
    s_make_samples (samples);
    for (size_t index = 0; index < SAMPLE_COUNT; index++) {
        sample_t *sample = &samples [index];
        uint8_t *frame = sample->data;
        uint8_t saved;
        for (size_t byte = 0; byte < 2; byte++) {
            saved = frame [byte];
            frame [byte] = 'X';
            assert_int_equal (s_decode (frame, sample->size, NULL), WIRE_BAD_MAGIC);
            frame [byte] = saved;
        }
        const uint8_t versions [] = { 0, MESHCC_PROTO_VERSION + 1, 0xFF };
        for (size_t version = 0; version < 3; version++) {
            frame [2] = versions [version];
            assert_int_equal (s_decode (frame, sample->size, NULL), WIRE_BAD_VERSION);
        }
        frame [2] = MESHCC_PROTO_VERSION;
        saved = frame [3];
        const uint8_t types [] = { 0, 4, 0x81, 0xFF };
        for (size_t type = 0; type < 4; type++) {
            frame [3] = types [type];
            assert_int_equal (s_decode (frame, sample->size, NULL), WIRE_BAD_TYPE);
        }
        frame [3] = saved;
        saved = frame [4];
        for (int bit = 1; bit < 8; bit++) {
            frame [4] = (uint8_t) (saved | (1u << bit));
            assert_int_equal (s_decode (frame, sample->size, NULL), WIRE_MALFORMED);
        }
        frame [4] = saved;
        //  Each known type byte decodes as its own type: the payload is
        //  the same for all three, so the type is not implied by content.
        for (uint8_t type = WIRE_GOSSIP_SYN; type <= WIRE_GOSSIP_ACK2; type++) {
            frame [3] = type;
            gossip_msg_t *msg;
            assert_int_equal (s_decode (frame, sample->size, &msg), WIRE_OK);
            assert_int_equal (msg->type, type);
            gossip_msg_destroy (&msg);
        }
        //  Checks run in order: magic before version before type.
        memcpy (frame, "XC\x09\x09\x80", WIRE_HEADER_SIZE);
        assert_int_equal (s_decode (frame, sample->size, NULL), WIRE_BAD_MAGIC);
        assert_int_equal (s_decode (frame, 4, NULL), WIRE_TRUNCATED);
        frame [0] = 'M';
        assert_int_equal (s_decode (frame, sample->size, NULL), WIRE_BAD_VERSION);
        frame [2] = MESHCC_PROTO_VERSION;
        assert_int_equal (s_decode (frame, sample->size, NULL), WIRE_BAD_TYPE);
    }
    s_free_samples (samples);

    for (int error = 0; error < WIRE_ERROR_COUNT; error++)
        assert_non_null (wire_error_name ((wire_error_t) error));
    assert_string_equal (wire_error_name (WIRE_OK), "ok");
    assert_string_equal (wire_error_name (WIRE_TRUNCATED), "truncated");
    assert_string_equal (wire_error_name (WIRE_OVERSIZED), "oversized");
    assert_string_equal (wire_error_name (WIRE_BAD_MAGIC), "bad_magic");
    assert_string_equal (wire_error_name (WIRE_BAD_VERSION), "bad_version");
    assert_string_equal (wire_error_name (WIRE_BAD_TYPE), "bad_type");
    assert_string_equal (wire_error_name (WIRE_MALFORMED), "malformed");
}

//  Content errors inside a well-framed payload.
static void
test_decode_content (void **state)
{
    (void) state;
    uint8_t from [MESHCC_ID_SIZE] = { 0 };
    buf_t buf;
    //  A payload up to the state's strings, for string tests.
    #define STATE_PREFIX(flags) do { \
        buf.size = 0; \
        s_put_header (&buf, WIRE_GOSSIP_ACK, 0); \
        s_put_bytes (&buf, from, sizeof (from)); \
        s_put (&buf, 0, 4); \
        s_put (&buf, 1, 4); \
        s_put_bytes (&buf, from, sizeof (from)); \
        s_put (&buf, 0, 8); \
        s_put (&buf, 0, 8); \
        s_put (&buf, 0, 2); \
        s_put (&buf, flags, 1); \
        for (int field = 0; field < 5; field++) \
            s_put (&buf, 0, 4); \
    } while (0)

    //  Unknown state flag bits.
    for (int bit = 1; bit < 8; bit++) {
        buf.size = 0;
        s_put_header (&buf, WIRE_GOSSIP_ACK, 0);
        s_put_bytes (&buf, from, sizeof (from));
        s_put (&buf, 0, 4);
        s_put (&buf, 1, 4);
        s_put_small_state (&buf, (uint8_t) (1u << bit));
        assert_int_equal (s_decode (buf.data, buf.size, NULL), WIRE_MALFORMED);
    }
    //  Trailing bytes.
    buf.size = 0;
    s_put_header (&buf, WIRE_GOSSIP_ACK, 0);
    s_put_bytes (&buf, from, sizeof (from));
    s_put (&buf, 0, 4);
    s_put (&buf, 1, 4);
    s_put_small_state (&buf, 1);
    assert_int_equal (s_decode (buf.data, buf.size, NULL), WIRE_OK);
    s_put (&buf, 0, 1);
    assert_int_equal (s_decode (buf.data, buf.size, NULL), WIRE_MALFORMED);

    //  Names: max length ok, one more oversized, NUL inside malformed.
    char text [256];
    memset (text, 'a', sizeof (text));
    STATE_PREFIX (0);
    s_put (&buf, MESHCC_NAME_MAX, 1);
    s_put_bytes (&buf, text, MESHCC_NAME_MAX);
    s_put (&buf, MESHCC_ENDPOINT_MAX, 1);
    s_put_bytes (&buf, text, MESHCC_ENDPOINT_MAX);
    s_put (&buf, MESHCC_TOOLCHAIN_SUMMARY_MAX, 2);
    s_put_bytes (&buf, text, MESHCC_TOOLCHAIN_SUMMARY_MAX);
    gossip_msg_t *msg;
    assert_int_equal (s_decode (buf.data, buf.size, &msg), WIRE_OK);
    assert_int_equal (strlen (msg->states [0].name), MESHCC_NAME_MAX);
    assert_int_equal (strlen (msg->states [0].endpoint), MESHCC_ENDPOINT_MAX);
    assert_int_equal (msg->states [0].toolchains_size, MESHCC_TOOLCHAIN_SUMMARY_MAX);
    gossip_msg_destroy (&msg);

    STATE_PREFIX (0);
    s_put (&buf, MESHCC_NAME_MAX + 1, 1);
    s_put_bytes (&buf, text, MESHCC_NAME_MAX + 1);
    s_put (&buf, 0, 1);
    s_put (&buf, 0, 2);
    assert_int_equal (s_decode (buf.data, buf.size, NULL), WIRE_OVERSIZED);

    STATE_PREFIX (0);
    s_put (&buf, 0, 1);
    s_put (&buf, 255, 1);
    s_put_bytes (&buf, text, 255);
    s_put (&buf, 0, 2);
    assert_int_equal (s_decode (buf.data, buf.size, NULL), WIRE_OVERSIZED);

    STATE_PREFIX (0);
    s_put (&buf, 0, 1);
    s_put (&buf, 0, 1);
    s_put (&buf, MESHCC_TOOLCHAIN_SUMMARY_MAX + 1, 2);
    s_put_bytes (&buf, text, MESHCC_TOOLCHAIN_SUMMARY_MAX + 1);
    assert_int_equal (s_decode (buf.data, buf.size, NULL), WIRE_OVERSIZED);

    STATE_PREFIX (0);
    s_put (&buf, 3, 1);
    s_put_bytes (&buf, "a\0b", 3);
    s_put (&buf, 0, 1);
    s_put (&buf, 0, 2);
    assert_int_equal (s_decode (buf.data, buf.size, NULL), WIRE_MALFORMED);

    STATE_PREFIX (0);
    s_put (&buf, 0, 1);
    s_put (&buf, 1, 1);
    s_put_bytes (&buf, "\0", 1);
    s_put (&buf, 0, 2);
    assert_int_equal (s_decode (buf.data, buf.size, NULL), WIRE_MALFORMED);

    //  A string longer than the frame.
    STATE_PREFIX (0);
    s_put (&buf, 40, 1);
    s_put_bytes (&buf, text, 10);
    assert_int_equal (s_decode (buf.data, buf.size, NULL), WIRE_TRUNCATED);
    #undef STATE_PREFIX
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_selftest),
        cmocka_unit_test (test_round_trip_sizes),
        cmocka_unit_test (test_fields_preserved),
        cmocka_unit_test (test_golden_bytes),
        cmocka_unit_test (test_encoder_refuses),
        cmocka_unit_test (test_decode_truncations),
        cmocka_unit_test (test_decode_mutations),
        cmocka_unit_test (test_decode_random),
        cmocka_unit_test (test_decode_oversized),
        cmocka_unit_test (test_decode_zstd),
        cmocka_unit_test (test_decode_header),
        cmocka_unit_test (test_decode_content),
    };
    //  TEST_WIRE_FILTER=test_decode_* runs a subset (cmocka glob)
    if (getenv ("TEST_WIRE_FILTER"))
        cmocka_set_test_filter (getenv ("TEST_WIRE_FILTER"));
    return cmocka_run_group_tests_name ("wire", tests, NULL, NULL);
}
