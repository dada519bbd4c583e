//  datadir: resolution, creation and locking of a node's data directory,
//  shared by meshccd and meshcc so that both agree where a node lives.
//  Owns paths and the lock file; never reads or writes the other files.

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "meshcc/datadir.h"
#include "meshcc/limits.h"

char *
datadir_path (const char *dir, const char *name)
{
    char *path = NULL;
    if (asprintf (&path, "%s/%s", dir, name) < 0)
        abort ();
    return path;
}

//  Makes `path` absolute against the current directory, without touching
//  the file system (the directory may not exist yet).
static char *
s_absolute (const char *path)
{
    if (path [0] == '/')
        return strdup (path);
    char cwd [PATH_MAX];
    if (!getcwd (cwd, sizeof cwd))
        return NULL;
    return datadir_path (cwd, path);
}

char *
datadir_resolve (const char *option)
{
    if (option && *option)
        return s_absolute (option);
    const char *env = getenv ("MESHCC_DIR");
    if (env && *env)
        return s_absolute (env);
    const char *home = getenv ("HOME");
    if (!home || !*home) {
        struct passwd *pw = getpwuid (getuid ());
        home = pw? pw->pw_dir: NULL;
    }
    if (!home || !*home) {
        errno = ENOENT;
        return NULL;
    }
    return datadir_path (home, DATADIR_DEFAULT);
}

int
datadir_create (const char *dir)
{
    char *copy = strdup (dir);
    //  Create every missing parent, then the directory itself.
    for (char *slash = strchr (copy + 1, '/'); slash; slash = strchr (slash + 1, '/')) {
        *slash = 0;
        if (mkdir (copy, 0755) && errno != EEXIST) {
            free (copy);
            return -1;
        }
        *slash = '/';
    }
    free (copy);
    if (mkdir (dir, 0700) && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat (dir, &st))
        return -1;
    if (!S_ISDIR (st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

static pid_t
s_read_pid (int fd)
{
    char buffer [32] = "";
    ssize_t size = pread (fd, buffer, sizeof buffer - 1, 0);
    if (size <= 0)
        return 0;
    buffer [size] = 0;
    return (pid_t) atol (buffer);
}

//  The lock is an open-file-description lock (F_OFD_SETLK) on the whole
//  file: unlike flock it can be tested without being taken (F_OFD_GETLK),
//  so `meshcc` polling a node can never make a starting node think the
//  directory is busy; unlike POSIX record locks it survives fork (meshccd
//  locks before it daemonizes). The kernel drops it whenever the holder
//  dies, kill -9 included.
static struct flock
s_whole_file (short type)
{
    struct flock lock = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
    return lock;
}

int
datadir_lock (const char *dir, pid_t *holder_pid)
{
    *holder_pid = 0;
    char *path = datadir_path (dir, DATADIR_LOCK_NAME);
    int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free (path);
    if (fd < 0)
        return -1;
    struct flock lock = s_whole_file (F_WRLCK);
    if (fcntl (fd, F_OFD_SETLK, &lock)) {
        int saved = errno;
        if (saved == EAGAIN || saved == EACCES)
            *holder_pid = s_read_pid (fd);
        close (fd);
        errno = saved;
        return -1;
    }
    if (datadir_lock_set_pid (fd)) {
        close (fd);
        return -1;
    }
    return fd;
}

int
datadir_lock_set_pid (int fd)
{
    //  The pid is informational (for messages); the lock is the truth.
    char buffer [32];
    int length = snprintf (buffer, sizeof buffer, "%ld\n", (long) getpid ());
    if (ftruncate (fd, 0) || pwrite (fd, buffer, length, 0) != length)
        return -1;
    return 0;
}

bool
datadir_locked (const char *dir)
{
    char *path = datadir_path (dir, DATADIR_LOCK_NAME);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    free (path);
    if (fd < 0)
        return false;
    struct flock lock = s_whole_file (F_WRLCK);
    bool locked = fcntl (fd, F_OFD_GETLK, &lock) == 0 && lock.l_type != F_UNLCK;
    close (fd);
    return locked;
}
