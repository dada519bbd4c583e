//  meshkey: the shared CURVE keypair that defines a mesh. Owns creating key
//  files (zcert's secret format, mode 0600 from the first byte, never
//  overwriting), loading and checking them (complete, consistent, private),
//  and the public fingerprint that beacons carry. Never touches sockets and
//  never logs: callers get a message to print.

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "meshcc/meshkey.h"

int
meshkey_generate (const char *path, char *err, size_t err_size)
{
    //  Create the file first, exclusively and private, so the secret is
    //  never readable by others, not even for an instant, and an existing
    //  key (a whole mesh's identity) is never overwritten by mistake.
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf (err, err_size, "cannot create key file %s: %s", path,
                  errno == EEXIST? "it already exists (refusing to overwrite a mesh key)"
                                 : strerror (errno));
        return -1;
    }
    close (fd);
    zcert_t *cert = zcert_new ();
    zcert_set_meta (cert, "purpose", "meshcc mesh key: every node holding it is a member");
    int rc = zcert_save_secret (cert, path);
    zcert_destroy (&cert);
    if (rc || chmod (path, 0600)) {
        snprintf (err, err_size, "cannot write key file %s: %s", path, strerror (errno));
        unlink (path);
        return -1;
    }
    return 0;
}

//  Decodes one Z85 key of 40 characters into 32 bytes.
static bool
s_decode_key (const char *text, uint8_t key [32])
{
    return text && strlen (text) == 40 && zmq_z85_decode (key, text) != NULL;
}

zcert_t *
meshkey_load (const char *path, char *err, size_t err_size)
{
    struct stat st;
    if (stat (path, &st)) {
        snprintf (err, err_size, "cannot read mesh key %s: %s", path, strerror (errno));
        return NULL;
    }
    if (!S_ISREG (st.st_mode)) {
        snprintf (err, err_size, "mesh key %s is not a regular file", path);
        return NULL;
    }
    if (st.st_mode & 077) {
        snprintf (err, err_size, "mesh key %s is readable by others (mode %04o): run 'chmod 600 %s'",
                  path, (unsigned) (st.st_mode & 07777), path);
        return NULL;
    }
    if (access (path, R_OK)) {
        snprintf (err, err_size, "cannot read mesh key %s: %s", path, strerror (errno));
        return NULL;
    }
    //  Read the file ourselves and parse from memory: czmq 4.2.1's
    //  zconfig_load leaks on a malformed file. A key file is ~400 bytes;
    //  anything beyond 64 KiB is not one.
    char text [65536];
    FILE *file = fopen (path, "r");
    size_t size = file? fread (text, 1, sizeof text - 1, file): 0;
    bool complete = file && feof (file) && !ferror (file);
    if (file)
        fclose (file);
    text [size] = 0;
    zconfig_t *root = complete && size && !memchr (text, 0, size)? zconfig_str_load (text): NULL;
    sodium_memzero (text, sizeof text);
    if (!root) {
        snprintf (err, err_size, "mesh key %s is not a key file (make one with 'meshcc keygen FILE')", path);
        return NULL;
    }
    uint8_t public_key [32], secret_key [32], derived [32];
    bool ok = s_decode_key (zconfig_get (root, "curve/public-key", NULL), public_key)
           && s_decode_key (zconfig_get (root, "curve/secret-key", NULL), secret_key);
    zconfig_destroy (&root);
    if (!ok) {
        snprintf (err, err_size, "mesh key %s lacks a valid curve public-key and secret-key "
                  "(make one with 'meshcc keygen FILE')", path);
        return NULL;
    }
    //  A key file edited by hand could pair a secret with the wrong public
    //  key; CURVE would then fail in confusing ways at every handshake.
    if (crypto_scalarmult_base (derived, secret_key) || memcmp (derived, public_key, 32)) {
        snprintf (err, err_size, "mesh key %s is inconsistent: its public key does not match its secret key", path);
        sodium_memzero (secret_key, sizeof secret_key);
        return NULL;
    }
    zcert_t *cert = zcert_new_from (public_key, secret_key);
    sodium_memzero (secret_key, sizeof secret_key);
    return cert;
}

void
meshkey_fingerprint (zcert_t *cert, uint8_t fingerprint [MESHKEY_FINGERPRINT_SIZE])
{
    crypto_generichash (fingerprint, MESHKEY_FINGERPRINT_SIZE,
                        zcert_public_key (cert), 32, NULL, 0);
}

void
meshkey_test (bool verbose)
{
    if (verbose)
        printf (" * meshkey: ");
    char dir [] = "/tmp/meshkey-test-XXXXXX";
    assert (mkdtemp (dir));
    char path [64], err [256];
    snprintf (path, sizeof path, "%s/key", dir);

    assert (meshkey_generate (path, err, sizeof err) == 0);
    struct stat st;
    assert (stat (path, &st) == 0 && (st.st_mode & 0777) == 0600);
    //  Never overwrites.
    assert (meshkey_generate (path, err, sizeof err) == -1);
    assert (strstr (err, "already exists"));

    zcert_t *cert = meshkey_load (path, err, sizeof err);
    assert (cert);
    uint8_t print_a [MESHKEY_FINGERPRINT_SIZE], print_b [MESHKEY_FINGERPRINT_SIZE];
    meshkey_fingerprint (cert, print_a);
    zcert_t *again = meshkey_load (path, err, sizeof err);
    assert (again);
    meshkey_fingerprint (again, print_b);
    assert (memcmp (print_a, print_b, sizeof print_a) == 0);
    assert (zcert_eq (cert, again));
    zcert_destroy (&again);
    zcert_destroy (&cert);

    //  Readable by others: refused.
    assert (chmod (path, 0644) == 0);
    assert (meshkey_load (path, err, sizeof err) == NULL);
    assert (strstr (err, "chmod 600"));

    //  Not a key file: refused.
    char other [64];
    snprintf (other, sizeof other, "%s/other", dir);
    FILE *file = fopen (other, "w");
    assert (file);
    fputs ("curve\n    public-key = \"short\"\n", file);
    fclose (file);
    assert (chmod (other, 0600) == 0);
    assert (meshkey_load (other, err, sizeof err) == NULL);
    assert (meshkey_load ("/nonexistent/key", err, sizeof err) == NULL);

    unlink (path);
    unlink (other);
    rmdir (dir);
    if (verbose)
        printf ("OK\n");
}
