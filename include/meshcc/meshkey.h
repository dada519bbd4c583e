//  meshkey: the shared CURVE key that defines a mesh. Every member holds
//  the same keypair: it is each node's server key and client key, and the
//  only client key a node accepts, so that holding the key file is what
//  membership means. Owns creating (mode 0600, never overwriting), loading
//  and checking key files (zcert secret format) and the public fingerprint
//  used to tell meshes apart in beacons. Never touches sockets.

#ifndef MESHCC_MESHKEY_H_INCLUDED
#define MESHCC_MESHKEY_H_INCLUDED

#include <czmq.h>

#define MESHKEY_FINGERPRINT_SIZE 8

//  Writes a new key to `path` (mode 0600). Fails if the file exists.
//  Returns 0, or -1 with a message in `err` (size `err_size`).
int meshkey_generate (const char *path, char *err, size_t err_size);

//  Loads a key file. Refuses files that are not a complete zcert secret
//  file or that group or others can read. Returns a certificate (caller
//  destroys) or NULL with a message in `err`.
zcert_t *meshkey_load (const char *path, char *err, size_t err_size);

//  First bytes of BLAKE2b(public key): the same for every member.
void meshkey_fingerprint (zcert_t *cert, uint8_t fingerprint [MESHKEY_FINGERPRINT_SIZE]);

void meshkey_test (bool verbose);

#endif
