//  datadir: where a node keeps its state, shared by meshccd and meshcc so
//  both agree on it: --dir DIR, else $MESHCC_DIR, else ~/.meshcc. Owns
//  path resolution and creation (mode 0700) and the single-instance lock;
//  not the contents of the files, which belong to their modules.

#ifndef MESHCC_DATADIR_H_INCLUDED
#define MESHCC_DATADIR_H_INCLUDED

#include <stdbool.h>
#include <sys/types.h>

//  Resolves the data directory to an absolute path. `option` is the --dir
//  value or NULL. Returns a new string (caller frees) or NULL with errno
//  set when no home directory can be found.
char *datadir_resolve (const char *option);

//  Creates the directory (and parents) with mode 0700 if missing.
//  Returns 0 or -1 with errno set.
int datadir_create (const char *dir);

//  Returns a new string "DIR/NAME" (caller frees).
char *datadir_path (const char *dir, const char *name);

//  Takes the node lock (an OFD lock on DIR/meshccd.lock, which holds our
//  pid; the lock survives fork, so a daemon can lock before detaching).
//  Returns the open descriptor (keep it for the node's lifetime), or -1:
//  with *holder_pid set to the pid in the file when another process holds
//  the lock, or 0 on another error (errno set).
int datadir_lock (const char *dir, pid_t *holder_pid);

//  Rewrites the pid in the lock file (after a daemon has forked).
int datadir_lock_set_pid (int fd);

//  True when some process holds the node lock of `dir`.
bool datadir_locked (const char *dir);

#endif
