//  job_wire: the codec of job messages between nodes (see job_wire.h for
//  the layout). Hostile bytes reach the decoder first, so it follows
//  wire.c's discipline: a cursor whose first error sticks, every count
//  checked against its bound (oversized) and against the bytes left at its
//  smallest entry size (truncated) before anything is allocated for it,
//  strings checked for NUL, trailing bytes refused, and a refused frame
//  frees everything it allocated.

#include <czmq.h>
#include <zstd.h>
#include <zstd_errors.h>
#include "meshcc/job_wire.h"
#include "meshcc/wire_reader.h"
#include "meshcc/limits.h"

#define RAW_SIZE_FIELD      4
#define IDENTITY_HASH_SIZE  BLOB_HASH_SIZE
//  Smallest encodings, for plausibility checks of counts.
#define STR32_MIN           4
#define ENTRY_MIN           (1 + 2 + 4)
#define BLOB_MIN            (BLOB_HASH_SIZE + 4)
#define OUTPUT_MIN          (2 + 4 + 4)
#define FLAG_LAST           0x01
#define FLAG_FAILURE        0x01

//  --------------------------------------------------------------------------
//  Values

job_msg_t *
job_msg_new (job_wire_type_t type, uint64_t job_id)
{
    job_msg_t *self = (job_msg_t *) zmalloc (sizeof (job_msg_t));
    self->type = type;
    self->job_id = job_id;
    return self;
}

void
job_msg_destroy (job_msg_t **self_p)
{
    if (self_p && *self_p) {
        job_msg_t *self = *self_p;
        job_spec_destroy (&self->spec);
        for (size_t i = 0; i < self->blob_count; i++)
            free (self->blobs [i].data);
        free (self->blobs);
        free (self->reason);
        free (self->hashes);
        job_result_destroy (&self->result);
        free (self);
        *self_p = NULL;
    }
}

void
job_msg_add_blob (job_msg_t *self, const uint8_t hash [BLOB_HASH_SIZE], uint8_t **data_p, size_t size)
{
    self->blobs = (job_blob_t *) realloc (self->blobs, (self->blob_count + 1) * sizeof (job_blob_t));
    if (!self->blobs)
        abort ();
    job_blob_t *blob = &self->blobs [self->blob_count++];
    memcpy (blob->hash, hash, BLOB_HASH_SIZE);
    blob->data = *data_p;
    blob->size = size;
    *data_p = NULL;
}

const char *
job_wire_type_name (int type)
{
    switch (type) {
        case JOB_WIRE_JOB:      return "JOB";
        case JOB_WIRE_ACCEPTED: return "ACCEPTED";
        case JOB_WIRE_REFUSED:  return "REFUSED";
        case JOB_WIRE_NEED:     return "NEED";
        case JOB_WIRE_BLOBS:    return "BLOBS";
        case JOB_WIRE_RESULT:   return "RESULT";
        default:                return "unknown";
    }
}

bool
job_wire_is_job (const uint8_t *data, size_t size)
{
    return data && size >= WIRE_HEADER_SIZE
        && data [0] == 'M' && data [1] == 'C' && data [2] == MESHCC_PROTO_VERSION
        && data [3] >= JOB_WIRE_TYPE_FIRST && data [3] <= JOB_WIRE_TYPE_LAST;
}

//  --------------------------------------------------------------------------
//  Writer: a growing buffer; the frame header is reserved at the front.

typedef struct {
    uint8_t *data;
    size_t size;                    //  bytes written
    size_t capacity;
} writer_t;

static void
s_reserve (writer_t *self, size_t bytes)
{
    if (self->capacity - self->size >= bytes)
        return;
    size_t capacity = self->capacity? self->capacity: 1024;
    while (capacity - self->size < bytes)
        capacity *= 2;
    self->data = (uint8_t *) realloc (self->data, capacity);
    if (!self->data)
        abort ();
    self->capacity = capacity;
}

static void
s_put_uint (writer_t *self, uint64_t value, size_t bytes)
{
    s_reserve (self, bytes);
    for (size_t i = 0; i < bytes; i++)
        self->data [self->size + i] = (uint8_t) (value >> (8 * (bytes - 1 - i)));
    self->size += bytes;
}

static void
s_put_bytes (writer_t *self, const void *bytes, size_t size)
{
    s_reserve (self, size);
    if (size)
        memcpy (self->data + self->size, bytes, size);
    self->size += size;
}

//  Strings are validated by the caller (s_str_ok) before encoding.
static void
s_put_str16 (writer_t *self, const char *text)
{
    size_t length = text? strlen (text): 0;
    s_put_uint (self, length, 2);
    s_put_bytes (self, text, length);
}

static void
s_put_str32 (writer_t *self, const void *bytes, size_t length)
{
    s_put_uint (self, length, 4);
    s_put_bytes (self, bytes, length);
}

static bool
s_str_ok (const char *text, size_t min, size_t max)
{
    size_t length = text? strlen (text): 0;
    return length >= min && length <= max;
}

static bool
s_spec_valid (const job_spec_t *spec)
{
    if (!spec || spec->argc < 1 || spec->argc > JOB_MAX_ARGS || !spec->argv
    ||  !s_str_ok (spec->cwd, 1, JOB_MAX_PATH) || spec->entry_count > JOB_MAX_ENTRIES
    ||  (spec->entry_count && !spec->entries))
        return false;
    for (int i = 0; i < spec->argc; i++)
        if (!spec->argv [i] || strlen (spec->argv [i]) > JOB_MAX_STRING)
            return false;
    size_t envc = 0;
    for (char **env = spec->envp; env && *env; env++, envc++)
        if (strlen (*env) > JOB_MAX_STRING)
            return false;
    if (envc > JOB_MAX_ENV || spec->holder_count > JOB_MAX_HOLDERS)
        return false;
    const compiler_identity_t *id = &spec->compiler;
    if (!memchr (id->path, 0, sizeof id->path) || !memchr (id->version, 0, sizeof id->version)
    ||  !memchr (id->target, 0, sizeof id->target))
        return false;
    for (size_t i = 0; i < spec->entry_count; i++) {
        const manifest_entry_t *entry = &spec->entries [i];
        if (!s_str_ok (entry->path, 1, JOB_MAX_PATH) || entry->mode > 07777)
            return false;
        if (entry->kind == MANIFEST_SYMLINK && !s_str_ok (entry->target, 1, JOB_MAX_PATH))
            return false;
        if (entry->kind != MANIFEST_FILE && entry->kind != MANIFEST_SYMLINK
        &&  entry->kind != MANIFEST_DIR)
            return false;
    }
    return true;
}

static bool
s_result_valid (const job_result_t *result)
{
    if (!result || result->output_count > JOB_MAX_OUTPUTS
    ||  (result->output_count && !result->outputs)
    ||  (result->failure && strlen (result->failure) > JOB_MAX_REASON)
    ||  result->out_size > UINT32_MAX || result->err_size > UINT32_MAX)
        return false;
    for (size_t i = 0; i < result->output_count; i++) {
        const job_output_t *output = &result->outputs [i];
        if (!s_str_ok (output->path, 1, JOB_MAX_PATH) || output->mode > 07777
        ||  output->size > UINT32_MAX || (output->size && !output->data))
            return false;
    }
    return true;
}

static void
s_put_blobs (writer_t *writer, const job_msg_t *msg)
{
    s_put_uint (writer, msg->blob_count, 4);
    for (size_t i = 0; i < msg->blob_count; i++) {
        s_put_bytes (writer, msg->blobs [i].hash, BLOB_HASH_SIZE);
        s_put_str32 (writer, msg->blobs [i].data, msg->blobs [i].size);
    }
}

static bool
s_blobs_valid (const job_msg_t *msg)
{
    if (msg->blob_count > JOB_MAX_ENTRIES || (msg->blob_count && !msg->blobs))
        return false;
    for (size_t i = 0; i < msg->blob_count; i++)
        if (msg->blobs [i].size > UINT32_MAX || (msg->blobs [i].size && !msg->blobs [i].data))
            return false;
    return true;
}

static bool
s_encode_payload (writer_t *writer, const job_msg_t *msg)
{
    s_put_uint (writer, msg->job_id, 8);
    switch (msg->type) {
        case JOB_WIRE_JOB: {
            const job_spec_t *spec = msg->spec;
            if (!s_spec_valid (spec) || !s_blobs_valid (msg))
                return false;
            s_put_uint (writer, (uint64_t) spec->argc, 4);
            for (int i = 0; i < spec->argc; i++)
                s_put_str32 (writer, spec->argv [i], strlen (spec->argv [i]));
            s_put_str16 (writer, spec->cwd);
            size_t envc = 0;
            for (char **env = spec->envp; env && *env; env++)
                envc++;
            s_put_uint (writer, envc, 4);
            for (size_t i = 0; i < envc; i++)
                s_put_str32 (writer, spec->envp [i], strlen (spec->envp [i]));
            s_put_str16 (writer, spec->compiler.path);
            s_put_str16 (writer, spec->compiler.version);
            s_put_str16 (writer, spec->compiler.target);
            s_put_bytes (writer, spec->compiler.hash, IDENTITY_HASH_SIZE);
            s_put_uint (writer, spec->has_toolchain ? 1 : 0, 1);
            if (spec->has_toolchain) {
                s_put_bytes (writer, spec->toolchain, BLOB_HASH_SIZE);
                s_put_uint (writer, spec->toolchain_size, 8);
            }
            s_put_uint (writer, spec->holder_count, 1);
            s_put_bytes (writer, spec->holders, spec->holder_count * MESHCC_ID_SIZE);
            s_put_uint (writer, spec->entry_count, 4);
            for (size_t i = 0; i < spec->entry_count; i++) {
                const manifest_entry_t *entry = &spec->entries [i];
                s_put_uint (writer, (uint8_t) entry->kind, 1);
                s_put_str16 (writer, entry->path);
                s_put_uint (writer, entry->mode, 4);
                if (entry->kind == MANIFEST_FILE) {
                    s_put_bytes (writer, entry->hash, BLOB_HASH_SIZE);
                    s_put_uint (writer, entry->size, 8);
                }
                else
                if (entry->kind == MANIFEST_SYMLINK)
                    s_put_str16 (writer, entry->target);
            }
            s_put_blobs (writer, msg);
            return true;
        }
        case JOB_WIRE_ACCEPTED:
            return true;
        case JOB_WIRE_REFUSED:
            if (!s_str_ok (msg->reason, 0, JOB_MAX_REASON))
                return false;
            s_put_str16 (writer, msg->reason);
            return true;
        case JOB_WIRE_NEED:
            if (msg->hash_count < 1 || msg->hash_count > JOB_MAX_ENTRIES || !msg->hashes)
                return false;
            s_put_uint (writer, msg->hash_count, 4);
            s_put_bytes (writer, msg->hashes, msg->hash_count * BLOB_HASH_SIZE);
            return true;
        case JOB_WIRE_BLOBS:
            if (!s_blobs_valid (msg))
                return false;
            s_put_uint (writer, msg->last? FLAG_LAST: 0, 1);
            s_put_blobs (writer, msg);
            return true;
        case JOB_WIRE_RESULT: {
            const job_result_t *result = msg->result;
            if (!s_result_valid (result))
                return false;
            s_put_uint (writer, result->failure? FLAG_FAILURE: 0, 1);
            s_put_str16 (writer, result->failure);
            s_put_uint (writer, (uint32_t) result->status, 4);
            s_put_str32 (writer, result->out, result->out_size);
            s_put_str32 (writer, result->err, result->err_size);
            s_put_uint (writer, result->output_count, 4);
            for (size_t i = 0; i < result->output_count; i++) {
                const job_output_t *output = &result->outputs [i];
                s_put_str16 (writer, output->path);
                s_put_uint (writer, output->mode, 4);
                s_put_str32 (writer, output->data, output->size);
            }
            s_put_uint (writer, result->fetch_us, 8);
            s_put_uint (writer, result->setup_us, 8);
            s_put_uint (writer, result->compile_us, 8);
            return true;
        }
    }
    return false;
}

int
job_wire_encode (const job_msg_t *msg, uint8_t **data_p, size_t *size_p)
{
    assert (data_p && size_p);
    *data_p = NULL;
    *size_p = 0;
    if (!msg || msg->type < JOB_WIRE_TYPE_FIRST || msg->type > JOB_WIRE_TYPE_LAST)
        return -1;
    writer_t writer = { NULL, 0, 0 };
    s_put_uint (&writer, 'M', 1);
    s_put_uint (&writer, 'C', 1);
    s_put_uint (&writer, MESHCC_PROTO_VERSION, 1);
    s_put_uint (&writer, (uint8_t) msg->type, 1);
    s_put_uint (&writer, 0, 1);
    if (!s_encode_payload (&writer, msg)) {
        free (writer.data);
        return -1;
    }
    size_t raw_size = writer.size - WIRE_HEADER_SIZE;
    if (raw_size > JOB_WIRE_MAX_PAYLOAD) {
        free (writer.data);
        return -1;
    }
    uint8_t *frame = writer.data;
    size_t size = writer.size;
    if (raw_size >= WIRE_COMPRESS_MIN) {
        size_t bound = ZSTD_compressBound (raw_size);
        uint8_t *packed = (uint8_t *) malloc (WIRE_HEADER_SIZE + RAW_SIZE_FIELD + bound);
        if (!packed)
            abort ();
        size_t packed_size = ZSTD_compress (packed + WIRE_HEADER_SIZE + RAW_SIZE_FIELD, bound,
                                            frame + WIRE_HEADER_SIZE, raw_size, WIRE_ZSTD_LEVEL);
        if (!ZSTD_isError (packed_size) && RAW_SIZE_FIELD + packed_size < raw_size) {
            memcpy (packed, frame, WIRE_HEADER_SIZE);
            packed [4] = WIRE_FLAG_ZSTD;
            for (int i = 0; i < 4; i++)
                packed [WIRE_HEADER_SIZE + i] = (uint8_t) (raw_size >> (8 * (3 - i)));
            free (frame);
            frame = packed;
            size = WIRE_HEADER_SIZE + RAW_SIZE_FIELD + packed_size;
        }
        else
            free (packed);
    }
    if (size > JOB_WIRE_MAX_FRAME) {
        free (frame);
        return -1;
    }
    *data_p = frame;
    *size_p = size;
    return 0;
}

//  --------------------------------------------------------------------------
//  Reader (wire_reader.h) and the typed reads of job messages

//  A string of `length_bytes` length (2 or 4) between min and max bytes,
//  as a new NUL-terminated copy (NULL on error). A NUL inside would
//  silently shorten it on the way into C: malformed.
static char *
s_get_string (wire_reader_t *self, size_t length_bytes, size_t min, size_t max)
{
    size_t length = (size_t) wire_reader_uint (self, length_bytes);
    if (self->error != WIRE_OK)
        return NULL;
    if (length > max) {
        wire_reader_fail (self, WIRE_OVERSIZED);
        return NULL;
    }
    if (!wire_reader_need (self, length))
        return NULL;
    if (length < min || memchr (self->data + self->pos, 0, length)) {
        wire_reader_fail (self, WIRE_MALFORMED);
        return NULL;
    }
    char *text = (char *) malloc (length + 1);
    if (!text)
        abort ();
    memcpy (text, self->data + self->pos, length);
    text [length] = 0;
    self->pos += length;
    return text;
}

//  A string into a fixed array of `capacity` bytes (so < capacity long).
static void
s_get_fixed (wire_reader_t *self, char *dest, size_t capacity)
{
    char *text = s_get_string (self, 2, 0, capacity - 1);
    if (text) {
        memcpy (dest, text, strlen (text) + 1);
        free (text);
    }
}

//  Raw bytes with a u32 length (NUL allowed) as a new buffer; `max` bounds
//  it (the payload bound does too).
static uint8_t *
s_get_blob (wire_reader_t *self, size_t *size_p, size_t max)
{
    *size_p = 0;
    size_t length = (size_t) wire_reader_uint (self, 4);
    if (self->error != WIRE_OK)
        return NULL;
    if (length > max) {
        wire_reader_fail (self, WIRE_OVERSIZED);
        return NULL;
    }
    if (!wire_reader_need (self, length))
        return NULL;
    uint8_t *data = (uint8_t *) malloc (length? length: 1);
    if (!data)
        abort ();
    if (length)
        memcpy (data, self->data + self->pos, length);
    self->pos += length;
    *size_p = length;
    return data;
}

//  A u32 count up to `max` of entries of at least `entry_min` bytes.
static size_t
s_get_count (wire_reader_t *self, size_t max, size_t entry_min)
{
    uint64_t count = wire_reader_uint (self, 4);
    if (self->error != WIRE_OK)
        return 0;
    if (count > max) {
        wire_reader_fail (self, WIRE_OVERSIZED);
        return 0;
    }
    if (count * entry_min > wire_reader_left (self)) {
        wire_reader_fail (self, WIRE_TRUNCATED);
        return 0;
    }
    return (size_t) count;
}

static void
s_get_blobs (wire_reader_t *reader, job_msg_t *msg)
{
    size_t count = s_get_count (reader, JOB_MAX_ENTRIES, BLOB_MIN);
    if (reader->error != WIRE_OK || count == 0)
        return;
    msg->blobs = (job_blob_t *) zmalloc (count * sizeof (job_blob_t));
    for (size_t i = 0; i < count && reader->error == WIRE_OK; i++) {
        job_blob_t *blob = &msg->blobs [i];
        wire_reader_bytes (reader, blob->hash, BLOB_HASH_SIZE);
        blob->data = s_get_blob (reader, &blob->size, JOB_WIRE_MAX_PAYLOAD);
        if (blob->data)
            msg->blob_count = i + 1;
    }
}

static void
s_get_spec (wire_reader_t *reader, job_msg_t *msg)
{
    job_spec_t *spec = job_spec_new ();
    msg->spec = spec;
    size_t argc = s_get_count (reader, JOB_MAX_ARGS, STR32_MIN);
    if (reader->error == WIRE_OK && argc == 0)
        wire_reader_fail (reader, WIRE_MALFORMED);
    if (reader->error != WIRE_OK)
        return;
    spec->argv = (char **) zmalloc ((argc + 1) * sizeof (char *));
    for (size_t i = 0; i < argc && reader->error == WIRE_OK; i++) {
        spec->argv [i] = s_get_string (reader, 4, 0, JOB_MAX_STRING);
        if (spec->argv [i])
            spec->argc = (int) i + 1;
    }
    spec->cwd = s_get_string (reader, 2, 1, JOB_MAX_PATH);
    size_t envc = s_get_count (reader, JOB_MAX_ENV, STR32_MIN);
    if (reader->error != WIRE_OK)
        return;
    spec->envp = (char **) zmalloc ((envc + 1) * sizeof (char *));
    for (size_t i = 0; i < envc && reader->error == WIRE_OK; i++)
        spec->envp [i] = s_get_string (reader, 4, 0, JOB_MAX_STRING);
    s_get_fixed (reader, spec->compiler.path, sizeof spec->compiler.path);
    s_get_fixed (reader, spec->compiler.version, sizeof spec->compiler.version);
    s_get_fixed (reader, spec->compiler.target, sizeof spec->compiler.target);
    wire_reader_bytes (reader, spec->compiler.hash, IDENTITY_HASH_SIZE);
    uint8_t has_toolchain = (uint8_t) wire_reader_uint (reader, 1);
    if (has_toolchain > 1 && reader->error == WIRE_OK)
        reader->error = WIRE_MALFORMED;
    if (has_toolchain) {
        spec->has_toolchain = true;
        wire_reader_bytes (reader, spec->toolchain, BLOB_HASH_SIZE);
        spec->toolchain_size = wire_reader_uint (reader, 8);
        if (spec->toolchain_size == 0 && reader->error == WIRE_OK)
            reader->error = WIRE_MALFORMED;
    }
    size_t holders = (size_t) wire_reader_uint (reader, 1);
    if (holders > JOB_MAX_HOLDERS && reader->error == WIRE_OK)
        wire_reader_fail (reader, WIRE_OVERSIZED);
    if (reader->error == WIRE_OK) {
        wire_reader_bytes (reader, spec->holders, holders * MESHCC_ID_SIZE);
        if (reader->error == WIRE_OK)
            spec->holder_count = holders;
    }
    size_t entries = s_get_count (reader, JOB_MAX_ENTRIES, ENTRY_MIN);
    if (reader->error != WIRE_OK || entries == 0)
        return;
    spec->entries = (manifest_entry_t *) zmalloc (entries * sizeof (manifest_entry_t));
    for (size_t i = 0; i < entries && reader->error == WIRE_OK; i++) {
        manifest_entry_t *entry = &spec->entries [i];
        spec->entry_count = i + 1;      //  so a failure frees what was read
        uint8_t kind = (uint8_t) wire_reader_uint (reader, 1);
        entry->kind = (manifest_kind_t) kind;
        entry->path = s_get_string (reader, 2, 1, JOB_MAX_PATH);
        entry->mode = (uint32_t) wire_reader_uint (reader, 4);
        if (reader->error != WIRE_OK)
            break;
        if (entry->mode > 07777)
            wire_reader_fail (reader, WIRE_MALFORMED);
        if (kind == MANIFEST_FILE) {
            wire_reader_bytes (reader, entry->hash, BLOB_HASH_SIZE);
            entry->size = wire_reader_uint (reader, 8);
        }
        else
        if (kind == MANIFEST_SYMLINK)
            entry->target = s_get_string (reader, 2, 1, JOB_MAX_PATH);
        else
        if (kind != MANIFEST_DIR)
            wire_reader_fail (reader, WIRE_MALFORMED);
    }
}

static void
s_get_result (wire_reader_t *reader, job_msg_t *msg)
{
    job_result_t *result = job_result_new ();
    msg->result = result;
    uint8_t flags = (uint8_t) wire_reader_uint (reader, 1);
    if (flags & ~FLAG_FAILURE)
        wire_reader_fail (reader, WIRE_MALFORMED);
    char *failure = s_get_string (reader, 2, 0, JOB_MAX_REASON);
    if (reader->error != WIRE_OK) {
        free (failure);
        return;
    }
    if (flags & FLAG_FAILURE) {
        if (!*failure) {
            wire_reader_fail (reader, WIRE_MALFORMED);
            free (failure);
            return;
        }
        result->failure = failure;
    }
    else {
        if (*failure)
            wire_reader_fail (reader, WIRE_MALFORMED);
        free (failure);
    }
    result->status = (int) (uint32_t) wire_reader_uint (reader, 4);
    result->out = s_get_blob (reader, &result->out_size, JOB_WIRE_MAX_PAYLOAD);
    result->err = s_get_blob (reader, &result->err_size, JOB_WIRE_MAX_PAYLOAD);
    size_t outputs = s_get_count (reader, JOB_MAX_OUTPUTS, OUTPUT_MIN);
    if (reader->error == WIRE_OK && outputs) {
        result->outputs = (job_output_t *) zmalloc (outputs * sizeof (job_output_t));
        for (size_t i = 0; i < outputs && reader->error == WIRE_OK; i++) {
            job_output_t *output = &result->outputs [i];
            result->output_count = i + 1;
            output->path = s_get_string (reader, 2, 1, JOB_MAX_PATH);
            output->mode = (uint32_t) wire_reader_uint (reader, 4);
            if (reader->error == WIRE_OK && output->mode > 07777)
                wire_reader_fail (reader, WIRE_MALFORMED);
            output->data = s_get_blob (reader, &output->size, JOB_WIRE_MAX_PAYLOAD);
        }
    }
    result->fetch_us = wire_reader_uint (reader, 8);
    result->setup_us = wire_reader_uint (reader, 8);
    result->compile_us = wire_reader_uint (reader, 8);
}

static wire_error_t
s_decode_payload (job_wire_type_t type, const uint8_t *data, size_t size, job_msg_t **msg_p)
{
    wire_reader_t reader = { data, size, 0, WIRE_OK };
    job_msg_t *msg = job_msg_new (type, 0);
    msg->job_id = wire_reader_uint (&reader, 8);
    switch (type) {
        case JOB_WIRE_JOB:
            s_get_spec (&reader, msg);
            s_get_blobs (&reader, msg);
            break;
        case JOB_WIRE_ACCEPTED:
            break;
        case JOB_WIRE_REFUSED:
            msg->reason = s_get_string (&reader, 2, 0, JOB_MAX_REASON);
            break;
        case JOB_WIRE_NEED: {
            size_t count = s_get_count (&reader, JOB_MAX_ENTRIES, BLOB_HASH_SIZE);
            if (reader.error == WIRE_OK && count == 0)
                wire_reader_fail (&reader, WIRE_MALFORMED);
            if (reader.error == WIRE_OK) {
                msg->hashes = (uint8_t (*) [BLOB_HASH_SIZE]) malloc (count * BLOB_HASH_SIZE);
                if (!msg->hashes)
                    abort ();
                wire_reader_bytes (&reader, msg->hashes, count * BLOB_HASH_SIZE);
                msg->hash_count = count;
            }
            break;
        }
        case JOB_WIRE_BLOBS: {
            uint8_t flags = (uint8_t) wire_reader_uint (&reader, 1);
            if (flags & ~FLAG_LAST)
                wire_reader_fail (&reader, WIRE_MALFORMED);
            msg->last = (flags & FLAG_LAST) != 0;
            s_get_blobs (&reader, msg);
            break;
        }
        case JOB_WIRE_RESULT:
            s_get_result (&reader, msg);
            break;
    }
    if (reader.error == WIRE_OK && wire_reader_left (&reader) != 0)
        wire_reader_fail (&reader, WIRE_MALFORMED);
    if (reader.error != WIRE_OK) {
        job_msg_destroy (&msg);
        return reader.error;
    }
    *msg_p = msg;
    return WIRE_OK;
}

wire_error_t
job_wire_decode (const uint8_t *data, size_t size, job_msg_t **msg_p)
{
    assert (msg_p);
    assert (data || size == 0);
    *msg_p = NULL;
    uint8_t type;
    const uint8_t *payload;
    size_t payload_size;
    uint8_t *raw;
    wire_error_t error = wire_open_frame (data, size, JOB_WIRE_MAX_FRAME, JOB_WIRE_MAX_PAYLOAD,
                                          JOB_WIRE_TYPE_FIRST, JOB_WIRE_TYPE_LAST, &type,
                                          &payload, &payload_size, &raw);
    if (error == WIRE_OK)
        error = s_decode_payload ((job_wire_type_t) type, payload, payload_size, msg_p);
    free (raw);
    return error;
}

//  --------------------------------------------------------------------------
//  Self test: one round trip; the exhaustive tests are in
//  tests/unit/test_node_job_wire.c.

void
job_wire_test (bool verbose)
{
    if (verbose)
        printf (" * job_wire: ");
    job_msg_t *msg = job_msg_new (JOB_WIRE_REFUSED, 42);
    msg->reason = strdup ("full");
    uint8_t *data;
    size_t size;
    assert (job_wire_encode (msg, &data, &size) == 0);
    assert (job_wire_is_job (data, size));
    job_msg_t *copy = NULL;
    assert (job_wire_decode (data, size, &copy) == WIRE_OK);
    assert (copy->type == JOB_WIRE_REFUSED && copy->job_id == 42 && streq (copy->reason, "full"));
    for (size_t length = 0; length < size; length++) {
        job_msg_t *none = NULL;
        assert (job_wire_decode (data, length, &none) != WIRE_OK && !none);
    }
    job_msg_destroy (&copy);
    job_msg_destroy (&msg);
    free (data);
    if (verbose)
        printf ("OK\n");
}
