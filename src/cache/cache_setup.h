//  cache_setup: serialises the set-up of one SQLite database (open, WAL
//  switch, migrations) across the threads and processes that open it at
//  once. SQLite does not wait on its busy handler while a fresh database
//  is switched to WAL, so two stores opened together on a new directory
//  could fail with "database is locked" or "disk I/O error". A flock on
//  DB_PATH.setup held for the few milliseconds of set-up removes the race;
//  after set-up the busy timeout covers everything. Private to src/cache.

#ifndef MESHCC_CACHE_SETUP_H_INCLUDED
#define MESHCC_CACHE_SETUP_H_INCLUDED

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

//  Returns a descriptor holding the set-up lock of `db_path` (release with
//  cache_setup_unlock), or -1 if the lock file cannot be opened (set-up
//  then proceeds unserialised, as before).
static inline int
cache_setup_lock (const char *db_path)
{
    char path [4096];
    if (snprintf (path, sizeof path, "%s.setup", db_path) >= (int) sizeof path)
        return -1;
    int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        while (flock (fd, LOCK_EX) && errno == EINTR)
            ;
    return fd;
}

static inline void
cache_setup_unlock (int *fd_p)
{
    if (*fd_p >= 0)
        close (*fd_p);      //  closing releases the flock
    *fd_p = -1;
}

#endif
