//  wire: the byte format of gossip messages between nodes (see wire.h for
//  the contract). It owns framing, zstd compression and the codec of each
//  message type; it never touches sockets, clocks or membership state.
//  A decoder is the first thing hostile bytes reach, so every read goes
//  through a bounds-checked cursor, every count and length is checked
//  against its limits.h bound and against the bytes left before anything is
//  allocated for it, and a refused frame frees everything it allocated.
//
//  Frame (all integers big-endian):
//    0  'M' 'C'            magic
//    2  u8  version        MESHCC_PROTO_VERSION
//    3  u8  type           wire_type_t (SYN 1, ACK 2, ACK2 3; the same
//                          numbers as gossip_type_t)
//    4  u8  flags          bit 0 WIRE_FLAG_ZSTD; any other bit: malformed
//    5  payload            plain, or compressed as:
//                            u32 raw size (1 .. WIRE_MAX_PAYLOAD)
//                            exactly one zstd frame whose header declares
//                            a content size equal to the raw size
//
//  Payload (the same for SYN, ACK and ACK2):
//    from[16]
//    u32 digest_count      <= GOSSIP_MAX_MEMBERS
//    digest_count x        id[16] u64 incarnation u64 version     (32 bytes)
//    u32 state_count       <= GOSSIP_MAX_MEMBERS
//    state_count x state, each:
//      id[16] u64 incarnation u64 version u16 proto
//      u8  flags           bit 0 left; any other bit: malformed
//      u32 slots u32 running u32 queued u32 load_milli u32 speed
//      u8  name length     <= MESHCC_NAME_MAX, then the bytes (no NUL)
//      u8  endpoint length <= MESHCC_ENDPOINT_MAX, then the bytes (no NUL)
//      u16 toolchains_size <= MESHCC_TOOLCHAIN_SUMMARY_MAX, then the bytes
//    nothing after the last state (trailing bytes: malformed)
//
//  Which error a refusal gets. The header is checked in this order; after
//  it, fields are checked as they are read, and the first failure decides
//  (a count or length is checked against its bound before the bytes left):
//    frame above WIRE_MAX_FRAME                    oversized (read nothing)
//    shorter than the header                       truncated
//    magic, version, type                          bad_magic, bad_version,
//                                                  bad_type
//    unknown flag bits                             malformed
//    a count or length above its bound             oversized
//    fewer bytes than a count or length needs,
//    or a zstd frame cut short                     truncated
//    raw size 0, bad or extra zstd data, content
//    size unknown or not the raw size, NUL in a
//    string, unknown state flag, trailing bytes    malformed
//
//  The encoder compresses (level WIRE_ZSTD_LEVEL) when the plain payload
//  is at least WIRE_COMPRESS_MIN bytes and compression saves bytes; the
//  decoder accepts either form at any size.

#include <czmq.h>
#include <zstd.h>
#include <zstd_errors.h>
#include "meshcc/wire.h"
#include "meshcc/wire_reader.h"

//  Smallest encoding of a digest entry and of a state (empty strings, no
//  toolchains). A count is plausible only if that many of the smallest
//  entries fit in the bytes left, which caps what a short frame can make
//  us allocate at a small multiple of its own size.
#define DIGEST_ENTRY_SIZE   (MESHCC_ID_SIZE + 8 + 8)
#define STATE_MIN_SIZE      (MESHCC_ID_SIZE + 8 + 8 + 2 + 1 + 5 * 4 + 1 + 1 + 2)
#define PAYLOAD_MIN_SIZE    (MESHCC_ID_SIZE + 4 + 4)
#define RAW_SIZE_FIELD      4
#define STATE_FLAG_LEFT     0x01

//  --------------------------------------------------------------------------
//  Reader: wire_reader.h's cursor over bytes we do not trust, and the
//  typed reads of this format.

static uint8_t  s_get_u8  (wire_reader_t *self) { return (uint8_t)  wire_reader_uint (self, 1); }
static uint16_t s_get_u16 (wire_reader_t *self) { return (uint16_t) wire_reader_uint (self, 2); }
static uint32_t s_get_u32 (wire_reader_t *self) { return (uint32_t) wire_reader_uint (self, 4); }
static uint64_t s_get_u64 (wire_reader_t *self) { return wire_reader_uint (self, 8); }

static void
s_skip (wire_reader_t *self, size_t bytes)
{
    if (wire_reader_need (self, bytes))
        self->pos += bytes;
}

//  A u8-length string into a char array of max + 1. The bound is checked
//  before the bytes left (a length we would never accept is oversized even
//  in a short frame); a NUL inside would silently shorten the string on
//  the way into C, so it is malformed rather than truncated at.
static void
s_get_string (wire_reader_t *self, char *dest, size_t max)
{
    size_t length = s_get_u8 (self);
    if (self->error != WIRE_OK)
        return;
    if (length > max)
        wire_reader_fail (self, WIRE_OVERSIZED);
    else
    if (wire_reader_need (self, length)) {
        if (memchr (self->data + self->pos, 0, length))
            wire_reader_fail (self, WIRE_MALFORMED);
        else {
            memcpy (dest, self->data + self->pos, length);
            dest [length] = 0;
            self->pos += length;
        }
    }
}

//  A u32 count of entries of at least `entry_min` bytes each: above
//  GOSSIP_MAX_MEMBERS is oversized, more than the bytes left can hold is
//  truncated. Both are checked here, before the caller allocates.
static uint32_t
s_get_count (wire_reader_t *self, size_t entry_min)
{
    uint32_t count = s_get_u32 (self);
    if (self->error != WIRE_OK)
        return 0;
    if (count > GOSSIP_MAX_MEMBERS) {
        wire_reader_fail (self, WIRE_OVERSIZED);
        return 0;
    }
    //  count <= 4096, so the product cannot overflow
    if ((size_t) count * entry_min > wire_reader_left (self)) {
        wire_reader_fail (self, WIRE_TRUNCATED);
        return 0;
    }
    return count;
}

//  --------------------------------------------------------------------------
//  Writer: the encoder sizes its buffer exactly before writing, so an
//  overflow here is a bug in s_payload_size; it sticks and makes the
//  encoder fail rather than write out of bounds.

typedef struct {
    uint8_t *data;
    size_t size;
    size_t pos;
    bool overflow;
} writer_t;

static void
s_put_uint (writer_t *self, uint64_t value, size_t bytes)
{
    if (self->overflow || bytes > self->size - self->pos) {
        self->overflow = true;
        return;
    }
    for (size_t index = 0; index < bytes; index++)
        self->data [self->pos + index] = (uint8_t) (value >> (8 * (bytes - 1 - index)));
    self->pos += bytes;
}

static void s_put_u8  (writer_t *self, uint8_t value)  { s_put_uint (self, value, 1); }
static void s_put_u16 (writer_t *self, uint16_t value) { s_put_uint (self, value, 2); }
static void s_put_u32 (writer_t *self, uint32_t value) { s_put_uint (self, value, 4); }
static void s_put_u64 (writer_t *self, uint64_t value) { s_put_uint (self, value, 8); }

static void
s_put_bytes (writer_t *self, const void *source, size_t bytes)
{
    if (self->overflow || bytes > self->size - self->pos) {
        self->overflow = true;
        return;
    }
    if (bytes)
        memcpy (self->data + self->pos, source, bytes);
    self->pos += bytes;
}

//  Caller has checked the string fits its u8 length (s_state_valid).
static void
s_put_string (writer_t *self, const char *string)
{
    size_t length = strlen (string);
    s_put_u8 (self, (uint8_t) length);
    s_put_bytes (self, string, length);
}

//  --------------------------------------------------------------------------
//  Encoder

//  A state we can encode so that it decodes to the same value: strings
//  terminated inside their arrays (so at most their _MAX long) and a
//  toolchain summary within its array.
static bool
s_state_valid (const peer_state_t *state)
{
    return memchr (state->name, 0, sizeof (state->name)) != NULL
        && memchr (state->endpoint, 0, sizeof (state->endpoint)) != NULL
        && state->toolchains_size <= MESHCC_TOOLCHAIN_SUMMARY_MAX;
}

static bool
s_msg_valid (const gossip_msg_t *msg)
{
    if (msg->type < GOSSIP_SYN || msg->type > GOSSIP_ACK2)
        return false;
    if (msg->digest_count > GOSSIP_MAX_MEMBERS || msg->state_count > GOSSIP_MAX_MEMBERS)
        return false;
    if ((msg->digest_count && !msg->digest) || (msg->state_count && !msg->states))
        return false;
    for (size_t index = 0; index < msg->state_count; index++)
        if (!s_state_valid (&msg->states [index]))
            return false;
    return true;
}

//  Exact plain payload size of a valid message; at most ~1.4 MB (4096
//  digests and 4096 full states), so no overflow.
static size_t
s_payload_size (const gossip_msg_t *msg)
{
    size_t size = PAYLOAD_MIN_SIZE + msg->digest_count * DIGEST_ENTRY_SIZE;
    for (size_t index = 0; index < msg->state_count; index++) {
        const peer_state_t *state = &msg->states [index];
        size += STATE_MIN_SIZE + strlen (state->name) + strlen (state->endpoint)
              + state->toolchains_size;
    }
    return size;
}

static void
s_put_state (writer_t *writer, const peer_state_t *state)
{
    s_put_bytes (writer, state->id, MESHCC_ID_SIZE);
    s_put_u64 (writer, state->incarnation);
    s_put_u64 (writer, state->version);
    s_put_u16 (writer, state->proto);
    s_put_u8  (writer, state->left ? STATE_FLAG_LEFT : 0);
    s_put_u32 (writer, state->slots);
    s_put_u32 (writer, state->running);
    s_put_u32 (writer, state->queued);
    s_put_u32 (writer, state->load_milli);
    s_put_u32 (writer, state->speed);
    s_put_string (writer, state->name);
    s_put_string (writer, state->endpoint);
    s_put_u16 (writer, state->toolchains_size);
    s_put_bytes (writer, state->toolchains, state->toolchains_size);
}

static void
s_put_header (writer_t *writer, gossip_type_t type, uint8_t flags)
{
    s_put_u8 (writer, 'M');
    s_put_u8 (writer, 'C');
    s_put_u8 (writer, MESHCC_PROTO_VERSION);
    s_put_u8 (writer, (uint8_t) type);
    s_put_u8 (writer, flags);
}

//  Compresses the plain payload of `frame` into a new frame if that saves
//  bytes; returns NULL (keep the plain one) otherwise.
static uint8_t *
s_compress (const uint8_t *frame, size_t raw_size, gossip_type_t type, size_t *size_p)
{
    size_t bound = ZSTD_compressBound (raw_size);
    size_t capacity = WIRE_HEADER_SIZE + RAW_SIZE_FIELD + bound;
    uint8_t *packed = (uint8_t *) zmalloc (capacity);
    size_t packed_size = ZSTD_compress (packed + WIRE_HEADER_SIZE + RAW_SIZE_FIELD, bound,
                                        frame + WIRE_HEADER_SIZE, raw_size, WIRE_ZSTD_LEVEL);
    //  A compressor error on valid input would be a zstd bug; sending the
    //  plain payload is still correct, so fall back rather than fail.
    if (ZSTD_isError (packed_size) || RAW_SIZE_FIELD + packed_size >= raw_size) {
        free (packed);
        return NULL;
    }
    writer_t writer = { packed, capacity, 0, false };
    s_put_header (&writer, type, WIRE_FLAG_ZSTD);
    s_put_u32 (&writer, (uint32_t) raw_size);
    assert (!writer.overflow);
    *size_p = WIRE_HEADER_SIZE + RAW_SIZE_FIELD + packed_size;
    uint8_t *shrunk = (uint8_t *) realloc (packed, *size_p);
    return shrunk ? shrunk : packed;
}

int
wire_encode_gossip (const gossip_msg_t *msg, uint8_t **data_p, size_t *size_p)
{
    assert (data_p);
    assert (size_p);
    *data_p = NULL;
    *size_p = 0;
    if (!msg || !s_msg_valid (msg))
        return -1;

    size_t raw_size = s_payload_size (msg);
    size_t size = WIRE_HEADER_SIZE + raw_size;
    uint8_t *frame = (uint8_t *) zmalloc (size);
    writer_t writer = { frame, size, 0, false };
    s_put_header (&writer, msg->type, 0);
    s_put_bytes (&writer, msg->from, MESHCC_ID_SIZE);
    s_put_u32 (&writer, (uint32_t) msg->digest_count);
    for (size_t index = 0; index < msg->digest_count; index++) {
        const gossip_digest_t *entry = &msg->digest [index];
        s_put_bytes (&writer, entry->id, MESHCC_ID_SIZE);
        s_put_u64 (&writer, entry->incarnation);
        s_put_u64 (&writer, entry->version);
    }
    s_put_u32 (&writer, (uint32_t) msg->state_count);
    for (size_t index = 0; index < msg->state_count; index++)
        s_put_state (&writer, &msg->states [index]);
    if (writer.overflow || writer.pos != size) {
        assert (false);         //  s_payload_size disagrees with s_put_state
        free (frame);
        return -1;
    }
    if (raw_size >= WIRE_COMPRESS_MIN) {
        size_t packed_size;
        uint8_t *packed = s_compress (frame, raw_size, msg->type, &packed_size);
        if (packed) {
            free (frame);
            frame = packed;
            size = packed_size;
        }
    }
    //  Peers drop bigger frames unread (ZMQ_MAXMSGSIZE), so sending one
    //  would only waste the link; the caller must send fewer states.
    if (size > WIRE_MAX_FRAME) {
        free (frame);
        return -1;
    }
    *data_p = frame;
    *size_p = size;
    return 0;
}

//  --------------------------------------------------------------------------
//  Decoder

static void
s_get_state (wire_reader_t *reader, peer_state_t *state)
{
    wire_reader_bytes (reader, state->id, MESHCC_ID_SIZE);
    state->incarnation = s_get_u64 (reader);
    state->version = s_get_u64 (reader);
    state->proto = s_get_u16 (reader);
    uint8_t flags = s_get_u8 (reader);
    if (flags & ~STATE_FLAG_LEFT)
        wire_reader_fail (reader, WIRE_MALFORMED);
    state->left = (flags & STATE_FLAG_LEFT) != 0;
    state->slots = s_get_u32 (reader);
    state->running = s_get_u32 (reader);
    state->queued = s_get_u32 (reader);
    state->load_milli = s_get_u32 (reader);
    state->speed = s_get_u32 (reader);
    s_get_string (reader, state->name, MESHCC_NAME_MAX);
    s_get_string (reader, state->endpoint, MESHCC_ENDPOINT_MAX);
    uint16_t toolchains_size = s_get_u16 (reader);
    if (toolchains_size > MESHCC_TOOLCHAIN_SUMMARY_MAX)
        wire_reader_fail (reader, WIRE_OVERSIZED);
    wire_reader_bytes (reader, state->toolchains, toolchains_size);
    if (reader->error == WIRE_OK)
        state->toolchains_size = toolchains_size;
}

//  Decodes a plain payload. A first pass reads only the two counts (each
//  checked against its bound and the bytes left), so the one allocation
//  is sized by counts the payload can actually hold; the second pass fills
//  the message.
static wire_error_t
s_decode_payload (gossip_type_t type, const uint8_t *data, size_t size, gossip_msg_t **msg_p)
{
    wire_reader_t reader = { data, size, 0, WIRE_OK };
    s_skip (&reader, MESHCC_ID_SIZE);
    uint32_t digest_count = s_get_count (&reader, DIGEST_ENTRY_SIZE);
    s_skip (&reader, (size_t) digest_count * DIGEST_ENTRY_SIZE);
    uint32_t state_count = s_get_count (&reader, STATE_MIN_SIZE);
    if (reader.error != WIRE_OK)
        return reader.error;

    gossip_msg_t *msg = gossip_msg_new (type, digest_count, state_count);
    reader.pos = 0;
    wire_reader_bytes (&reader, msg->from, MESHCC_ID_SIZE);
    s_skip (&reader, 4);                //  digest_count, checked above
    for (size_t index = 0; index < digest_count && reader.error == WIRE_OK; index++) {
        gossip_digest_t *entry = &msg->digest [index];
        wire_reader_bytes (&reader, entry->id, MESHCC_ID_SIZE);
        entry->incarnation = s_get_u64 (&reader);
        entry->version = s_get_u64 (&reader);
    }
    s_skip (&reader, 4);                //  state_count, checked above
    for (size_t index = 0; index < state_count && reader.error == WIRE_OK; index++)
        s_get_state (&reader, &msg->states [index]);
    if (reader.error == WIRE_OK && wire_reader_left (&reader) != 0)
        wire_reader_fail (&reader, WIRE_MALFORMED);

    if (reader.error != WIRE_OK) {
        gossip_msg_destroy (&msg);
        return reader.error;
    }
    *msg_p = msg;
    return WIRE_OK;
}

//  Inflates a compressed payload into a new buffer of exactly the raw size
//  it announces. The announced size is bounded before anything else, and
//  must equal the content size in the zstd frame header before we allocate
//  it; decompression into a buffer of exactly that size then cannot write
//  more, so a "bomb" costs us at most WIRE_MAX_PAYLOAD.
wire_error_t
wire_decompress (const uint8_t *data, size_t size, size_t max_raw,
                 uint8_t **raw_p, size_t *raw_size_p)
{
    wire_reader_t reader = { data, size, 0, WIRE_OK };
    uint32_t raw_size = s_get_u32 (&reader);
    if (reader.error != WIRE_OK)
        return reader.error;
    if (raw_size > max_raw)
        return WIRE_OVERSIZED;
    if (raw_size == 0)
        return WIRE_MALFORMED;

    const uint8_t *source = data + reader.pos;
    size_t source_size = wire_reader_left (&reader);
    //  Exactly one frame: a second frame or trailing bytes would be data
    //  we silently ignore, so they are refused like trailing payload bytes.
    size_t frame_size = ZSTD_findFrameCompressedSize (source, source_size);
    if (ZSTD_isError (frame_size))
        return ZSTD_getErrorCode (frame_size) == ZSTD_error_srcSize_wrong
               ? WIRE_TRUNCATED: WIRE_MALFORMED;
    if (frame_size != source_size)
        return WIRE_MALFORMED;
    //  Skippable frames report a content size of 0, which never matches.
    unsigned long long content_size = ZSTD_getFrameContentSize (source, source_size);
    if (content_size == ZSTD_CONTENTSIZE_UNKNOWN
    ||  content_size == ZSTD_CONTENTSIZE_ERROR
    ||  content_size != raw_size)
        return WIRE_MALFORMED;

    uint8_t *raw = (uint8_t *) malloc (raw_size);
    if (!raw)
        return WIRE_OVERSIZED;      //  cannot happen below 4 MB in practice
    size_t inflated = ZSTD_decompress (raw, raw_size, source, source_size);
    if (ZSTD_isError (inflated) || inflated != raw_size) {
        free (raw);
        return WIRE_MALFORMED;
    }
    *raw_p = raw;
    *raw_size_p = raw_size;
    return WIRE_OK;
}

wire_error_t
wire_open_frame (const uint8_t *data, size_t size, size_t max_frame, size_t max_payload,
                 uint8_t type_first, uint8_t type_last, uint8_t *type_p,
                 const uint8_t **payload_p, size_t *payload_size_p, uint8_t **raw_p)
{
    *raw_p = NULL;
    //  Size first: a giant frame is refused without looking at it.
    if (size > max_frame)
        return WIRE_OVERSIZED;
    if (size < WIRE_HEADER_SIZE)
        return WIRE_TRUNCATED;
    if (data [0] != 'M' || data [1] != 'C')
        return WIRE_BAD_MAGIC;
    if (data [2] != MESHCC_PROTO_VERSION)
        return WIRE_BAD_VERSION;
    uint8_t type = data [3];
    if (type < type_first || type > type_last)
        return WIRE_BAD_TYPE;
    uint8_t flags = data [4];
    if (flags & ~WIRE_FLAG_ZSTD)
        return WIRE_MALFORMED;

    *type_p = type;
    *payload_p = data + WIRE_HEADER_SIZE;
    *payload_size_p = size - WIRE_HEADER_SIZE;
    if (flags & WIRE_FLAG_ZSTD) {
        wire_error_t error = wire_decompress (*payload_p, *payload_size_p, max_payload,
                                              raw_p, payload_size_p);
        if (error != WIRE_OK)
            return error;
        *payload_p = *raw_p;
    }
    return WIRE_OK;
}

wire_error_t
wire_decode_gossip (const uint8_t *data, size_t size, gossip_msg_t **msg_p)
{
    assert (msg_p);
    assert (data || size == 0);
    *msg_p = NULL;
    uint8_t type;
    const uint8_t *payload;
    size_t payload_size;
    uint8_t *raw;
    wire_error_t error = wire_open_frame (data, size, WIRE_MAX_FRAME, WIRE_MAX_PAYLOAD,
                                          WIRE_GOSSIP_SYN, WIRE_GOSSIP_ACK2, &type,
                                          &payload, &payload_size, &raw);
    if (error == WIRE_OK)
        //  wire_type_t and gossip_type_t share their numbers by design.
        error = s_decode_payload ((gossip_type_t) type, payload, payload_size, msg_p);
    free (raw);
    return error;
}

const char *
wire_error_name (wire_error_t error)
{
    switch (error) {
        case WIRE_OK:           return "ok";
        case WIRE_TRUNCATED:    return "truncated";
        case WIRE_OVERSIZED:    return "oversized";
        case WIRE_BAD_MAGIC:    return "bad_magic";
        case WIRE_BAD_VERSION:  return "bad_version";
        case WIRE_BAD_TYPE:     return "bad_type";
        case WIRE_MALFORMED:    return "malformed";
        default:                return "unknown";
    }
}

//  --------------------------------------------------------------------------
//  Self test: a round trip of each type, one compressed, one truncated.
//  The exhaustive decoder tests live in tests/unit/test_wire.c.

static void
s_test_fill_state (peer_state_t *state, size_t index)
{
    memset (state, 0, sizeof (*state));
    for (size_t byte = 0; byte < MESHCC_ID_SIZE; byte++)
        state->id [byte] = (uint8_t) (index * 31 + byte);
    state->incarnation = 1000 + index;
    state->version = 7 * index;
    state->proto = MESHCC_PROTO_VERSION;
    state->left = index % 5 == 0;
    state->slots = 4;
    state->running = (uint32_t) index % 4;
    state->load_milli = 1500;
    state->speed = 100;
    snprintf (state->name, sizeof (state->name), "node-%zu", index);
    snprintf (state->endpoint, sizeof (state->endpoint), "tcp://10.0.%zu.%zu:7370",
              index / 256, index % 256);
    state->toolchains_size = 3;
    memcpy (state->toolchains, "gcc", 3);
}

static void
s_test_round_trip (gossip_type_t type, size_t count, bool compressed, bool verbose)
{
    gossip_msg_t *msg = gossip_msg_new (type, count, count);
    memset (msg->from, 0xA5, MESHCC_ID_SIZE);
    for (size_t index = 0; index < count; index++) {
        s_test_fill_state (&msg->states [index], index);
        memcpy (msg->digest [index].id, msg->states [index].id, MESHCC_ID_SIZE);
        msg->digest [index].incarnation = index;
        msg->digest [index].version = UINT64_MAX - index;
    }
    uint8_t *data;
    size_t size;
    int rc = wire_encode_gossip (msg, &data, &size);
    assert (rc == 0);
    assert (((data [4] & WIRE_FLAG_ZSTD) != 0) == compressed);
    assert (compressed || size == WIRE_HEADER_SIZE + s_payload_size (msg));

    gossip_msg_t *copy;
    wire_error_t error = wire_decode_gossip (data, size, &copy);
    assert (error == WIRE_OK);
    assert (copy->type == type);
    assert (memcmp (copy->from, msg->from, MESHCC_ID_SIZE) == 0);
    assert (copy->digest_count == count && copy->state_count == count);
    for (size_t index = 0; index < count; index++) {
        const peer_state_t *left = &msg->states [index];
        const peer_state_t *right = &copy->states [index];
        assert (memcmp (&msg->digest [index], &copy->digest [index], sizeof (gossip_digest_t)) == 0);
        assert (memcmp (left->id, right->id, MESHCC_ID_SIZE) == 0);
        assert (left->incarnation == right->incarnation && left->version == right->version);
        assert (left->left == right->left && left->running == right->running);
        assert (streq (left->name, right->name) && streq (left->endpoint, right->endpoint));
        assert (left->toolchains_size == right->toolchains_size);
        assert (memcmp (left->toolchains, right->toolchains, left->toolchains_size) == 0);
    }
    if (verbose)
        printf (" * wire: type %d, %zu entries: %zu bytes%s\n",
                type, count, size, compressed ? " (zstd)" : "");
    gossip_msg_destroy (&copy);

    //  Every prefix is refused and allocates nothing.
    if (!compressed) {
        for (size_t length = 0; length < size; length++) {
            error = wire_decode_gossip (data, length, &copy);
            assert (error != WIRE_OK);
            assert (copy == NULL);
        }
    }
    free (data);
    gossip_msg_destroy (&msg);
}

void
wire_test (bool verbose)
{
    s_test_round_trip (GOSSIP_SYN, 1, false, verbose);
    s_test_round_trip (GOSSIP_ACK, 2, false, verbose);
    s_test_round_trip (GOSSIP_ACK2, 0, false, verbose);
    s_test_round_trip (GOSSIP_ACK, 100, true, verbose);

    //  A truncated compressed frame is refused too.
    gossip_msg_t *msg = gossip_msg_new (GOSSIP_ACK2, 0, 50);
    for (size_t index = 0; index < 50; index++)
        s_test_fill_state (&msg->states [index], index);
    uint8_t *data;
    size_t size;
    int rc = wire_encode_gossip (msg, &data, &size);
    assert (rc == 0);
    assert (data [4] & WIRE_FLAG_ZSTD);
    gossip_msg_t *copy;
    wire_error_t error = wire_decode_gossip (data, size - 1, &copy);
    assert (error == WIRE_TRUNCATED);
    assert (copy == NULL);
    error = wire_decode_gossip (data, size, &copy);
    assert (error == WIRE_OK);
    assert (copy && copy->state_count == 50);
    gossip_msg_destroy (&copy);
    free (data);
    gossip_msg_destroy (&msg);

    assert (streq (wire_error_name (WIRE_MALFORMED), "malformed"));
    if (verbose)
        printf (" * wire: OK\n");
}
