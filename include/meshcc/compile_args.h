//  compile_args: what a compiler command line means, for GCC and Clang.
//  Pure logic, no I/O except reading @response files: it classifies a
//  command as distributable or not (and why), names the source, language
//  and every output file the compile writes, and checks a command received
//  from a peer before an executor may run it (sanitise). Used by the
//  wrapper (src/client), the origin node and the executor (src/node); it
//  never spawns processes or touches sockets.

#ifndef MESHCC_COMPILE_ARGS_H_INCLUDED
#define MESHCC_COMPILE_ARGS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    COMPILE_LANG_UNKNOWN = 0,
    COMPILE_LANG_C,
    COMPILE_LANG_CXX,
    COMPILE_LANG_OBJC,
    COMPILE_LANG_OBJCXX,
    COMPILE_LANG_ASM_CPP            //  .S / -x assembler-with-cpp
} compile_lang_t;

typedef enum {
    COMPILE_FAMILY_GCC = 0,         //  gcc, g++, cc, c++, x86_64-linux-gnu-gcc-12, ...
    COMPILE_FAMILY_CLANG            //  clang, clang++, clang-14, ...
} compile_family_t;

//  A parsed command. All strings are owned by the object.
typedef struct {
    //  The command after @file expansion: argv[0] is the compiler as given.
    int     argc;
    char  **argv;                   //  NULL-terminated

    bool        distributable;
    const char *reason;             //  why not (static text), NULL if distributable

    compile_family_t family;
    compile_lang_t   lang;
    int         source_index;       //  argv index of the one source, or -1
    const char *source;             //  argv[source_index] or NULL
    bool        stop_at_assembly;   //  -S (else -c)

    //  Every file the compile writes, as given or as the compiler derives
    //  it (relative paths are relative to the working directory):
    const char *output;             //  -o value, or the default (foo.o / foo.s)
    const char *depfile;            //  -MD/-MMD output (-MF or derived), or NULL
    const char *dwo;                //  -gsplit-dwarf: the .dwo, or NULL
    //  Directories named by -I, -iquote, -isystem, -idirafter, -iprefix…
    //  (as given), which the executor must create even when empty.
    size_t      include_dir_count;
    char      **include_dirs;

    //  How many @response files were read to build argv. A command received
    //  from a peer must have none (sanitise refuses it): reading a file the
    //  peer names would show its contents to the peer through the
    //  compiler's error messages.
    int         response_files;
} compile_args_t;

//  Parses a command (argv[0] = the compiler). Expands @file response files
//  (relative to `cwd`; nested up to a fixed depth; an unreadable one makes
//  the command non-distributable, reason "unreadable response file").
//  Never fails: a command it does not understand is simply not
//  distributable. Caller destroys.
compile_args_t *compile_args_parse (int argc, char *const argv [], const char *cwd);

//  The same for a command received from a peer (the executor's side): it
//  reads no file at all, and an @argument makes the command not
//  distributable (the origin sends the expanded argv, which has none).
compile_args_t *compile_args_parse_received (int argc, char *const argv [], const char *cwd);
void            compile_args_destroy (compile_args_t **self_p);

//  The family of a compiler from its name (basename, versions and target
//  prefixes allowed), or -1 if the name is not a known C/C++ compiler.
int compile_args_family (const char *compiler);

//  True if `name` (a basename) is one of the masquerade names meshcc
//  answers to: gcc, cc, g++, c++, clang, clang++ (and versioned/target-
//  prefixed forms like gcc-12, x86_64-linux-gnu-g++).
bool compile_args_is_compiler_name (const char *name);

//  The executor's check of a command received from a peer, after it was
//  parsed with compile_args_parse: returns NULL if the command may run, or
//  a static reason. Refuses: anything not distributable; -fplugin*,
//  -specs*, -B*, -wrapper, --sysroot/-isysroot (unless the directory is
//  in `input_dirs`, NULL-terminated, or NULL for none), -fprofile-*/
//  -fauto-profile, -fdump-*, -save-temps, -fstack-usage style side
//  outputs it cannot return, output or depfile paths that after lexical
//  normalisation (against `cwd`) are not absolute-under-root or that
//  climb with ".." above "/", and environment-changing options like
//  -Xlinker/-Wl (no link happens) are tolerated but unused.
const char *compile_args_sanitise (const compile_args_t *self, const char *cwd,
                                   char *const input_dirs []);

//  Lexically normalises `path` against `cwd` ("a/../b" -> "b", "." and
//  "//" removed), writing an absolute path into `out`. Returns 0, or -1 if
//  the result would climb above "/" or does not fit.
int compile_args_normalise (const char *cwd, const char *path, char *out, size_t out_size);

void compile_args_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
