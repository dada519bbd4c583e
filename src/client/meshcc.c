//  meshcc: the compiler wrapper and the command-line entry point. Called
//  as a compiler (a masquerade link named gcc, cc, g++, ... or `meshcc gcc
//  ...`, `meshcc /usr/bin/cc ...`) it hands over to wrapper_main and
//  behaves as the compiler does. Anything else (members, status, stats,
//  keygen, help, --version, bad usage) is meshcc-ctl's: this program execs
//  it with the same arguments.
//
//  Must link only libc (and the libc-only compile_args, datadir, usage and
//  wrapper): every compile of a build starts this program, and loading
//  libczmq/libzmq with their dependencies alone would cost more than the
//  1 ms a local job may add (issue 3). `ldd build/bin/meshcc` shows it.

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "meshcc/compile_args.h"
#include "meshcc/usage.h"
#include "meshcc/wrapper.h"

#ifndef MESHCC_PREFIX
#   define MESHCC_PREFIX "/usr/local"
#endif
#define CTL_NAME "meshcc-ctl"

static bool
s_is_command (const char *word)
{
    static const char *commands [] = { "keygen", "members", "status", "stats", "toolchains",
                                       "help", NULL };
    for (int i = 0; commands [i]; i++)
        if (strcmp (word, commands [i]) == 0)
            return true;
    return false;
}

//  meshcc-ctl next to this binary (the build tree, or an install that put
//  both in one directory), else PREFIX/lib/meshcc/ (make install).
static noreturn void
s_exec_ctl (char *argv [])
{
    char self [PATH_MAX], path [PATH_MAX + sizeof CTL_NAME];
    ssize_t size = readlink ("/proc/self/exe", self, sizeof self - 1);
    if (size > 0) {
        self [size] = 0;
        char *slash = strrchr (self, '/');
        if (slash) {
            snprintf (path, sizeof path, "%.*s/%s", (int) (slash - self), self, CTL_NAME);
            execv (path, argv);
        }
    }
    snprintf (path, sizeof path, "%s/lib/meshcc/%s", MESHCC_PREFIX, CTL_NAME);
    execv (path, argv);
    die ("cannot run %s (looked next to meshcc and in %s/lib/meshcc): %s", CTL_NAME,
         MESHCC_PREFIX, strerror (errno));
}

int
main (int argc, char *argv [])
{
    usage_set_program ("meshcc");
    //  As a compiler: through a link named like one, or with the compiler
    //  (a name or any path) as the first argument.
    const char *slash = strrchr (argv [0], '/');
    if (compile_args_is_compiler_name (slash? slash + 1: argv [0]))
        wrapper_main (argc, argv, true);
    if (argc > 1 && argv [1][0] != '-' && !s_is_command (argv [1])
    &&  (strchr (argv [1], '/') || compile_args_is_compiler_name (argv [1])))
        wrapper_main (argc - 1, argv + 1, false);
    s_exec_ctl (argv);
}
