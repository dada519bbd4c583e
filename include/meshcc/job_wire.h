//  job_wire: the byte format of job messages between nodes, in the same
//  framing as wire.h (magic 'M''C', protocol version, type, flags bit 0 =
//  zstd payload with its u32 raw size in front), with types from 16 up so
//  one decoder can route a frame by its type byte. Like wire.c it checks
//  every length before it reads, bounds every count and size by limits.h
//  (JOB_*), refuses trailing bytes, and never touches sockets or state.
//  Blob hashes are not verified here: the blob store refuses data that
//  does not hash to its name.
//
//  Messages (payload, all integers big-endian; "str16" is a u16 length
//  and bytes without NUL, "str32" a u32 length; every payload starts with
//  u64 job id, unique at the origin):
//    JOB       origin -> peer: the spec and inlined blobs
//              u32 argc (1..JOB_MAX_ARGS), argc × str32 (<= JOB_MAX_STRING)
//              str16 cwd (1..JOB_MAX_PATH)
//              u32 envc (<= JOB_MAX_ENV), envc × str32
//              compiler identity: str16 path (< 1024), str16 version
//              (< 128), str16 target (< 128), hash[32]
//              u8 toolchain (0 or 1); 1: hash[32] of the toolchain archive,
//              u64 its size (> 0)
//              u8 holders (<= JOB_MAX_HOLDERS), holders × id[16]: nodes
//              that likely hold the job's input blobs, in the order to
//              ask them (FETCH kind 'b', fetch_wire.h) before NEED; the
//              origin names itself last
//              u32 entries (<= JOB_MAX_ENTRIES), each: u8 kind ('f' 'l'
//              'd'), str16 path (1..JOB_MAX_PATH), u32 mode (<= 07777);
//              'f': hash[32] u64 size; 'l': str16 target
//              then blobs as in BLOBS (without the flags byte)
//    ACCEPTED  peer -> origin: admitted (a slot is held for it)
//    REFUSED   peer -> origin: str16 reason (<= JOB_MAX_REASON): "full",
//              "identity", "unavailable: <why>", ...
//    NEED      peer -> origin: u32 count (1..JOB_MAX_ENTRIES), count × hash[32]
//    BLOBS     origin -> peer: u8 flags (bit 0: last, nothing follows),
//              u32 count (<= JOB_MAX_ENTRIES), each: hash[32], u32 size, bytes
//    RESULT    peer -> origin: u8 flags (bit 0: failure), str16 failure,
//              u32 status, str32 stdout, str32 stderr (bytes, NUL allowed),
//              u32 outputs (<= JOB_MAX_OUTPUTS), each: str16 path, u32 mode,
//              u32 size + bytes; u64 fetch_us setup_us compile_us

#ifndef MESHCC_JOB_WIRE_H_INCLUDED
#define MESHCC_JOB_WIRE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "meshcc/job.h"
#include "meshcc/wire.h"

typedef enum {
    JOB_WIRE_JOB = 16,
    JOB_WIRE_ACCEPTED = 17,
    JOB_WIRE_REFUSED = 18,
    JOB_WIRE_NEED = 19,
    JOB_WIRE_BLOBS = 20,
    JOB_WIRE_RESULT = 21
} job_wire_type_t;

#define JOB_WIRE_TYPE_FIRST     JOB_WIRE_JOB
#define JOB_WIRE_TYPE_LAST      JOB_WIRE_RESULT

//  How a REFUSED reason starts when the peer does not have the job's
//  compiler (and the job carried no toolchain).
#define JOB_REFUSAL_IDENTITY    "identity:"

typedef struct {
    uint8_t  hash [BLOB_HASH_SIZE];
    uint8_t *data;                  //  owned
    size_t   size;
} job_blob_t;

typedef struct {
    job_wire_type_t type;
    uint64_t      job_id;
    job_spec_t   *spec;             //  JOB (owned)
    size_t        blob_count;       //  JOB, BLOBS
    job_blob_t   *blobs;            //  owned, with their data
    bool          last;             //  BLOBS
    char         *reason;           //  REFUSED (owned)
    size_t        hash_count;       //  NEED
    uint8_t     (*hashes) [BLOB_HASH_SIZE];
    job_result_t *result;           //  RESULT (owned)
} job_msg_t;

job_msg_t *job_msg_new (job_wire_type_t type, uint64_t job_id);
void       job_msg_destroy (job_msg_t **self_p);
//  Appends a blob, taking ownership of *data_p (set to NULL).
void       job_msg_add_blob (job_msg_t *self, const uint8_t hash [BLOB_HASH_SIZE],
                             uint8_t **data_p, size_t size);

//  True if the frame's header says it is a job message (magic, version
//  and a type in JOB_WIRE_TYPE_FIRST..LAST); anything else goes to the
//  gossip decoder, which refuses it with the right reason.
bool job_wire_is_job (const uint8_t *data, size_t size);

//  Encodes into a new buffer (caller frees). Returns 0, or -1 if the
//  message is out of bounds or the frame would exceed JOB_WIRE_MAX_FRAME
//  (the caller inlines fewer blobs, or gives the job up).
int job_wire_encode (const job_msg_t *msg, uint8_t **data_p, size_t *size_p);

//  Decodes one frame; on WIRE_OK *msg_p is a new message, otherwise it is
//  NULL and nothing stays allocated.
wire_error_t job_wire_decode (const uint8_t *data, size_t size, job_msg_t **msg_p);

//  "JOB", "ACCEPTED", ... for logs.
const char *job_wire_type_name (int type);

void job_wire_test (bool verbose);

#endif
