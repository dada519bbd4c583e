//  fetch_wire: the byte format of the two messages that move a toolchain
//  archive or a blob between nodes in chunks (fetch.h is the state machine
//  that uses them). Same framing as job_wire.h (magic 'M''C', protocol
//  version, type, flags bit 0 = zstd payload with its u32 raw size in
//  front), with types 22 and 23 so one router can dispatch a frame by its
//  type byte; the decoder opens frames with wire_open_frame and reads them
//  through wire_reader.h, so it checks every length before it reads and
//  refuses trailing bytes. Bounds are FETCH_* in fetch.h. Owns only the
//  message values; never touches sockets, files or fetch state, and does
//  not verify hashes (the fetch verifies the whole object).
//
//  Messages (payload, all integers big-endian; like every job message the
//  payload starts with a u64 id, here the fetcher's request id):
//    FETCH (22) fetcher -> holder: "send me these bytes of that object"
//              u64 request id, u8 kind ('t' toolchain archive, 'b' blob),
//              hash[32] (BLAKE2b-256 of the whole object), u64 offset,
//              u32 length (1..FETCH_CHUNK_MAX; offset + length must not
//              overflow a u64)
//    CHUNK (23) holder -> fetcher: the answer to one FETCH
//              u64 request id, u8 kind, hash[32], u64 offset (all three
//              echo the request), u64 total (size of the whole object),
//              u8 status (0 ok, 1 not held, 2 error), u32 length + bytes
//              (length <= FETCH_CHUNK_MAX and at most the requested
//              length; offset + length <= total; when status is not ok,
//              total and length are 0)
//  The encoder never compresses: FETCH is tiny and CHUNK carries zstd
//  archives already. The decoder still accepts a compressed frame, as
//  every meshcc decoder does (payload at most FETCH_WIRE_MAX_FRAME).

#ifndef MESHCC_FETCH_WIRE_H_INCLUDED
#define MESHCC_FETCH_WIRE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "meshcc/blob_store.h"
#include "meshcc/wire.h"

typedef enum {
    FETCH_WIRE_FETCH = 22,
    FETCH_WIRE_CHUNK = 23
} fetch_wire_type_t;

#define FETCH_WIRE_TYPE_FIRST   FETCH_WIRE_FETCH
#define FETCH_WIRE_TYPE_LAST    FETCH_WIRE_CHUNK

//  What is fetched: both are named by the BLAKE2b-256 of their bytes.
#define FETCH_KIND_TOOLCHAIN    't'
#define FETCH_KIND_BLOB         'b'

typedef enum {
    FETCH_STATUS_OK = 0,
    FETCH_STATUS_NOT_HELD = 1,      //  the holder does not have the object
    FETCH_STATUS_ERROR = 2          //  it has, but cannot serve this range
} fetch_status_t;

//  FETCH: a plain value (no pointers).
typedef struct {
    uint64_t request_id;
    char     kind;                  //  FETCH_KIND_*
    uint8_t  hash [BLOB_HASH_SIZE];
    uint64_t offset;
    uint32_t length;
} fetch_request_msg_t;

//  CHUNK: owns its data.
typedef struct {
    uint64_t request_id;
    char     kind;
    uint8_t  hash [BLOB_HASH_SIZE];
    uint64_t offset;
    uint64_t total;
    fetch_status_t status;
    uint32_t length;
    uint8_t *data;                  //  owned; NULL when length is 0
} fetch_chunk_msg_t;

void fetch_request_msg_destroy (fetch_request_msg_t **self_p);
void fetch_chunk_msg_destroy (fetch_chunk_msg_t **self_p);

//  FETCH_WIRE_FETCH or FETCH_WIRE_CHUNK if the frame's header says it is
//  one (magic, version, type), else 0: the router's test.
int fetch_wire_type (const uint8_t *data, size_t size);

//  Encode into a new buffer (caller frees with free()). Return 0, or -1 if
//  the message breaks a rule above (bad kind or status, a length out of
//  bounds, data with a non-ok status, offset + length past total).
int fetch_wire_encode_request (const fetch_request_msg_t *msg, uint8_t **data_p, size_t *size_p);
int fetch_wire_encode_chunk (const fetch_chunk_msg_t *msg, uint8_t **data_p, size_t *size_p);

//  Decode one frame of that type; on WIRE_OK *msg_p is a new message
//  (free with its destroy), otherwise it is NULL and nothing stays
//  allocated. A frame of the other fetch type is WIRE_BAD_TYPE.
wire_error_t fetch_wire_decode_request (const uint8_t *data, size_t size,
                                        fetch_request_msg_t **msg_p);
wire_error_t fetch_wire_decode_chunk (const uint8_t *data, size_t size,
                                      fetch_chunk_msg_t **msg_p);

//  "FETCH", "CHUNK" for logs.
const char *fetch_wire_type_name (int type);

void fetch_wire_test (bool verbose);

#endif
