//  fetch_wire: the codec of FETCH and CHUNK (see fetch_wire.h for the
//  layout). Hostile bytes reach the decoder first, so it follows wire.c and
//  job_wire.c: the frame is opened by wire_open_frame (size, magic,
//  version, type, flags, bounded inflation), the payload is read through a
//  wire_reader whose first error sticks, every length is checked against
//  its bound (oversized) and the bytes left (truncated) before anything is
//  allocated, rules between fields (status and length, offset + length
//  within total) are malformed, and so are trailing bytes. Both messages
//  are a fixed layout, so the encoder writes into one exact buffer.

#include <czmq.h>
#include "meshcc/fetch.h"
#include "meshcc/fetch_wire.h"
#include "meshcc/wire_reader.h"
#include "meshcc/limits.h"

//  Payload sizes without the chunk's bytes.
#define REQUEST_PAYLOAD     (8 + 1 + BLOB_HASH_SIZE + 8 + 4)
#define CHUNK_PAYLOAD_FIXED (8 + 1 + BLOB_HASH_SIZE + 8 + 8 + 1 + 4)

void
fetch_request_msg_destroy (fetch_request_msg_t **self_p)
{
    if (self_p && *self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

void
fetch_chunk_msg_destroy (fetch_chunk_msg_t **self_p)
{
    if (self_p && *self_p) {
        free ((*self_p)->data);
        free (*self_p);
        *self_p = NULL;
    }
}

const char *
fetch_wire_type_name (int type)
{
    switch (type) {
        case FETCH_WIRE_FETCH:  return "FETCH";
        case FETCH_WIRE_CHUNK:  return "CHUNK";
        default:                return "unknown";
    }
}

int
fetch_wire_type (const uint8_t *data, size_t size)
{
    if (data && size >= WIRE_HEADER_SIZE
    &&  data [0] == 'M' && data [1] == 'C' && data [2] == MESHCC_PROTO_VERSION
    &&  data [3] >= FETCH_WIRE_TYPE_FIRST && data [3] <= FETCH_WIRE_TYPE_LAST)
        return data [3];
    return 0;
}

static bool
s_kind_ok (char kind)
{
    return kind == FETCH_KIND_TOOLCHAIN || kind == FETCH_KIND_BLOB;
}

//  offset + length <= limit without overflow.
static bool
s_within (uint64_t offset, uint64_t length, uint64_t limit)
{
    return length <= limit && offset <= limit - length;
}

//  --------------------------------------------------------------------------
//  Encoder

static uint8_t *
s_put_uint (uint8_t *at, uint64_t value, size_t bytes)
{
    for (size_t i = 0; i < bytes; i++)
        at [i] = (uint8_t) (value >> (8 * (bytes - 1 - i)));
    return at + bytes;
}

static uint8_t *
s_put_bytes (uint8_t *at, const void *bytes, size_t size)
{
    if (size)
        memcpy (at, bytes, size);
    return at + size;
}

static uint8_t *
s_put_header (uint8_t *at, fetch_wire_type_t type)
{
    at = s_put_uint (at, 'M', 1);
    at = s_put_uint (at, 'C', 1);
    at = s_put_uint (at, MESHCC_PROTO_VERSION, 1);
    at = s_put_uint (at, (uint8_t) type, 1);
    return s_put_uint (at, 0, 1);       //  flags: never compressed
}

//  The frame header and the fields both messages start with.
static uint8_t *
s_put_head (uint8_t *frame, fetch_wire_type_t type, uint64_t request_id, char kind,
            const uint8_t hash [BLOB_HASH_SIZE], uint64_t offset)
{
    uint8_t *at = s_put_header (frame, type);
    at = s_put_uint (at, request_id, 8);
    at = s_put_uint (at, (uint8_t) kind, 1);
    at = s_put_bytes (at, hash, BLOB_HASH_SIZE);
    return s_put_uint (at, offset, 8);
}

int
fetch_wire_encode_request (const fetch_request_msg_t *msg, uint8_t **data_p, size_t *size_p)
{
    assert (data_p && size_p);
    *data_p = NULL;
    *size_p = 0;
    if (!msg || !s_kind_ok (msg->kind) || msg->length < 1 || msg->length > FETCH_CHUNK_MAX
    ||  !s_within (msg->offset, msg->length, UINT64_MAX))
        return -1;
    size_t size = WIRE_HEADER_SIZE + REQUEST_PAYLOAD;
    uint8_t *frame = (uint8_t *) zmalloc (size);
    uint8_t *at = s_put_head (frame, FETCH_WIRE_FETCH, msg->request_id, msg->kind, msg->hash,
                              msg->offset);
    at = s_put_uint (at, msg->length, 4);
    assert (at == frame + size);
    *data_p = frame;
    *size_p = size;
    return 0;
}

int
fetch_wire_encode_chunk (const fetch_chunk_msg_t *msg, uint8_t **data_p, size_t *size_p)
{
    assert (data_p && size_p);
    *data_p = NULL;
    *size_p = 0;
    if (!msg || !s_kind_ok (msg->kind) || msg->length > FETCH_CHUNK_MAX
    ||  (msg->length && !msg->data))
        return -1;
    if (msg->status == FETCH_STATUS_OK) {
        if (!s_within (msg->offset, msg->length, msg->total))
            return -1;
    }
    else
    if (msg->status == FETCH_STATUS_NOT_HELD || msg->status == FETCH_STATUS_ERROR) {
        if (msg->length || msg->total)
            return -1;
    }
    else
        return -1;
    size_t size = WIRE_HEADER_SIZE + CHUNK_PAYLOAD_FIXED + msg->length;
    uint8_t *frame = (uint8_t *) zmalloc (size);
    uint8_t *at = s_put_head (frame, FETCH_WIRE_CHUNK, msg->request_id, msg->kind, msg->hash,
                              msg->offset);
    at = s_put_uint (at, msg->total, 8);
    at = s_put_uint (at, (uint8_t) msg->status, 1);
    at = s_put_uint (at, msg->length, 4);
    at = s_put_bytes (at, msg->data, msg->length);
    assert (at == frame + size);
    *data_p = frame;
    *size_p = size;
    return 0;
}

//  --------------------------------------------------------------------------
//  Decoder

//  Opens a frame of exactly `type`: the shared header checks, bounded
//  inflation, then the type (a frame of the other fetch type is bad_type,
//  as a gossip decoder says of a job frame).
static wire_error_t
s_open (const uint8_t *data, size_t size, fetch_wire_type_t type,
        const uint8_t **payload_p, size_t *payload_size_p, uint8_t **raw_p)
{
    uint8_t found;
    wire_error_t error = wire_open_frame (data, size, FETCH_WIRE_MAX_FRAME, FETCH_WIRE_MAX_FRAME,
                                          (uint8_t) type, (uint8_t) type, &found,
                                          payload_p, payload_size_p, raw_p);
    if (error != WIRE_OK) {
        free (*raw_p);
        *raw_p = NULL;
    }
    return error;
}

//  Fails the reader with `error` if the read so far succeeded and `bad`.
static void
s_check (wire_reader_t *reader, bool bad, wire_error_t error)
{
    if (reader->error == WIRE_OK && bad)
        wire_reader_fail (reader, error);
}

static char
s_get_kind (wire_reader_t *reader)
{
    char kind = (char) wire_reader_uint (reader, 1);
    s_check (reader, !s_kind_ok (kind), WIRE_MALFORMED);
    return kind;
}

//  The fields both messages start with: request id, kind, hash, offset.
static void
s_get_head (wire_reader_t *reader, uint64_t *request_id, char *kind,
            uint8_t hash [BLOB_HASH_SIZE], uint64_t *offset)
{
    *request_id = wire_reader_uint (reader, 8);
    *kind = s_get_kind (reader);
    wire_reader_bytes (reader, hash, BLOB_HASH_SIZE);
    *offset = wire_reader_uint (reader, 8);
}

wire_error_t
fetch_wire_decode_request (const uint8_t *data, size_t size, fetch_request_msg_t **msg_p)
{
    assert (msg_p);
    assert (data || size == 0);
    *msg_p = NULL;
    const uint8_t *payload;
    size_t payload_size;
    uint8_t *raw;
    wire_error_t error = s_open (data, size, FETCH_WIRE_FETCH, &payload, &payload_size, &raw);
    if (error != WIRE_OK)
        return error;
    fetch_request_msg_t msg;
    memset (&msg, 0, sizeof msg);
    wire_reader_t reader = { payload, payload_size, 0, WIRE_OK };
    s_get_head (&reader, &msg.request_id, &msg.kind, msg.hash, &msg.offset);
    msg.length = (uint32_t) wire_reader_uint (&reader, 4);
    s_check (&reader, msg.length > FETCH_CHUNK_MAX, WIRE_OVERSIZED);
    s_check (&reader, msg.length == 0 || !s_within (msg.offset, msg.length, UINT64_MAX),
             WIRE_MALFORMED);
    s_check (&reader, wire_reader_left (&reader) != 0, WIRE_MALFORMED);
    free (raw);
    if (reader.error != WIRE_OK)
        return reader.error;
    fetch_request_msg_t *copy = (fetch_request_msg_t *) zmalloc (sizeof msg);
    *copy = msg;
    *msg_p = copy;
    return WIRE_OK;
}

wire_error_t
fetch_wire_decode_chunk (const uint8_t *data, size_t size, fetch_chunk_msg_t **msg_p)
{
    assert (msg_p);
    assert (data || size == 0);
    *msg_p = NULL;
    const uint8_t *payload;
    size_t payload_size;
    uint8_t *raw;
    wire_error_t error = s_open (data, size, FETCH_WIRE_CHUNK, &payload, &payload_size, &raw);
    if (error != WIRE_OK)
        return error;
    fetch_chunk_msg_t msg;
    memset (&msg, 0, sizeof msg);
    wire_reader_t reader = { payload, payload_size, 0, WIRE_OK };
    s_get_head (&reader, &msg.request_id, &msg.kind, msg.hash, &msg.offset);
    msg.total = wire_reader_uint (&reader, 8);
    uint8_t status = (uint8_t) wire_reader_uint (&reader, 1);
    s_check (&reader, status > FETCH_STATUS_ERROR, WIRE_MALFORMED);
    msg.status = (fetch_status_t) status;
    msg.length = (uint32_t) wire_reader_uint (&reader, 4);
    s_check (&reader, msg.length > FETCH_CHUNK_MAX, WIRE_OVERSIZED);
    wire_reader_need (&reader, msg.length);
    if (status == FETCH_STATUS_OK)
        s_check (&reader, !s_within (msg.offset, msg.length, msg.total), WIRE_MALFORMED);
    else
        s_check (&reader, msg.length != 0 || msg.total != 0, WIRE_MALFORMED);
    s_check (&reader, wire_reader_left (&reader) != msg.length, WIRE_MALFORMED);
    if (reader.error == WIRE_OK && msg.length) {
        msg.data = (uint8_t *) malloc (msg.length);
        if (!msg.data)
            abort ();
        wire_reader_bytes (&reader, msg.data, msg.length);
    }
    free (raw);
    if (reader.error != WIRE_OK) {
        free (msg.data);
        return reader.error;
    }
    fetch_chunk_msg_t *copy = (fetch_chunk_msg_t *) zmalloc (sizeof msg);
    *copy = msg;
    *msg_p = copy;
    return WIRE_OK;
}

//  --------------------------------------------------------------------------
//  Self test: a round trip of each type and every truncation; the
//  exhaustive tests are in tests/unit/test_node_fetch.c.

void
fetch_wire_test (bool verbose)
{
    if (verbose)
        printf (" * fetch_wire: ");
    fetch_request_msg_t request;
    memset (&request, 0, sizeof request);      //  padding too: compared with memcmp
    request.request_id = 7;
    request.kind = FETCH_KIND_TOOLCHAIN;
    request.hash [0] = 1;
    request.offset = 4096;
    request.length = 100;
    uint8_t *data;
    size_t size;
    assert (fetch_wire_encode_request (&request, &data, &size) == 0);
    assert (fetch_wire_type (data, size) == FETCH_WIRE_FETCH);
    fetch_request_msg_t *request_copy = NULL;
    assert (fetch_wire_decode_request (data, size, &request_copy) == WIRE_OK);
    assert (memcmp (request_copy, &request, sizeof request) == 0);
    fetch_request_msg_destroy (&request_copy);
    for (size_t length = 0; length < size; length++)
        assert (fetch_wire_decode_request (data, length, &request_copy) != WIRE_OK
                && !request_copy);
    free (data);

    uint8_t bytes [3] = { 'a', 0, 'c' };
    fetch_chunk_msg_t chunk = { 7, FETCH_KIND_BLOB, { 9 }, 10, 13, FETCH_STATUS_OK, 3, bytes };
    assert (fetch_wire_encode_chunk (&chunk, &data, &size) == 0);
    assert (fetch_wire_type (data, size) == FETCH_WIRE_CHUNK);
    fetch_chunk_msg_t *chunk_copy = NULL;
    assert (fetch_wire_decode_chunk (data, size, &chunk_copy) == WIRE_OK);
    assert (chunk_copy->length == 3 && memcmp (chunk_copy->data, bytes, 3) == 0);
    assert (chunk_copy->total == 13 && chunk_copy->offset == 10);
    fetch_chunk_msg_destroy (&chunk_copy);
    assert (fetch_wire_decode_request (data, size, &request_copy) == WIRE_BAD_TYPE);
    for (size_t length = 0; length < size; length++)
        assert (fetch_wire_decode_chunk (data, length, &chunk_copy) != WIRE_OK && !chunk_copy);
    free (data);
    if (verbose)
        printf ("OK\n");
}
