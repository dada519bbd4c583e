//  Unit tests of compile_args: the classification table (gcc and clang
//  command lines with their expected decision and derived file names),
//  @response files, the executor's sanitise check, path normalisation and
//  compiler names.
//
//  Every derived name in the table (default object, .d, .dwo) was checked
//  against gcc 12.2 and clang 14 on Debian 12 by running the command in a
//  scratch directory and listing the files it wrote; the rows marked
//  "gcc 12:" / "clang 14:" record the surprising ones.

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "meshcc/compile_args.h"

//  Splits a command written with single spaces into a NULL-terminated
//  vector (no argument in the table contains a space).
static char **
s_split (const char *cmd, int *argc_p)
{
    char *copy = strdup (cmd);
    char **argv = calloc (strlen (cmd) + 2, sizeof (char *));
    int argc = 0;
    for (char *save = NULL, *tok = strtok_r (copy, " ", &save); tok;
         tok = strtok_r (NULL, " ", &save))
        argv [argc++] = strdup (tok);
    free (copy);
    *argc_p = argc;
    return argv;
}

static void
s_free_argv (char **argv)
{
    for (int i = 0; argv [i]; i++)
        free (argv [i]);
    free (argv);
}

static compile_args_t *
s_parse (const char *cmd, const char *cwd)
{
    int argc;
    char **argv = s_split (cmd, &argc);
    compile_args_t *args = compile_args_parse (argc, argv, cwd);
    s_free_argv (argv);
    return args;
}

#define L_NONE  COMPILE_LANG_UNKNOWN
#define L_C     COMPILE_LANG_C
#define L_CXX   COMPILE_LANG_CXX
#define L_OBJC  COMPILE_LANG_OBJC
#define L_OBJCXX COMPILE_LANG_OBJCXX
#define L_ASM   COMPILE_LANG_ASM_CPP

//  One row: the command, then either the derived names of a distributable
//  command or (LOCAL) a substring of the reason.
typedef struct {
    const char *cmd;
    bool        dist;
    const char *reason;         //  substring of the reason when !dist
    compile_lang_t lang;
    const char *source;
    const char *output;
    const char *depfile;
    const char *dwo;
} row_t;

#define DIST(cmd, lang, src, out, dep, dwo) { cmd, true, NULL, lang, src, out, dep, dwo }
#define LOCAL(cmd, why)                     { cmd, false, why, L_NONE, NULL, NULL, NULL, NULL }

static const row_t s_rows [] = {
    //  Plain compiles and default output names (in the working directory).
    DIST ("gcc -c foo.c", L_C, "foo.c", "foo.o", NULL, NULL),
    DIST ("gcc -c src/foo.c", L_C, "src/foo.c", "foo.o", NULL, NULL),
    DIST ("gcc -S src/foo.c", L_C, "src/foo.c", "foo.s", NULL, NULL),
    DIST ("gcc -c foo.c -o obj/foo.o", L_C, "foo.c", "obj/foo.o", NULL, NULL),
    DIST ("gcc -c -oobj/foo.o foo.c", L_C, "foo.c", "obj/foo.o", NULL, NULL),
    DIST ("gcc -S foo.c -o out/x.s", L_C, "foo.c", "out/x.s", NULL, NULL),
    DIST ("gcc -c -S foo.c", L_C, "foo.c", "foo.s", NULL, NULL),          //  gcc 12: -S wins
    DIST ("gcc -c src/x.tar.c", L_C, "src/x.tar.c", "x.tar.o", NULL, NULL),
    DIST ("cc -c -pipe -O2 -g -Wall -Werror -fPIC -std=gnu11 -pthread x.c", L_C, "x.c", "x.o", NULL, NULL),
    DIST ("gcc -c x.c -Wl,-rpath,/x -lm -L/usr/lib", L_C, "x.c", "x.o", NULL, NULL),
    DIST ("x86_64-linux-gnu-gcc-12 -c x.c", L_C, "x.c", "x.o", NULL, NULL),
    DIST ("gcc -c -fdiagnostics-color=always -frecord-gcc-switches -flto x.c", L_C, "x.c", "x.o", NULL, NULL),

    //  Languages by extension.
    DIST ("g++ -c a.cc", L_CXX, "a.cc", "a.o", NULL, NULL),
    DIST ("g++ -c a.cpp -o b.o", L_CXX, "a.cpp", "b.o", NULL, NULL),
    DIST ("g++ -c a.cxx", L_CXX, "a.cxx", "a.o", NULL, NULL),
    DIST ("c++ -c a.C", L_CXX, "a.C", "a.o", NULL, NULL),
    DIST ("g++ -c a.c++", L_CXX, "a.c++", "a.o", NULL, NULL),
    DIST ("g++ -c a.cp", L_CXX, "a.cp", "a.o", NULL, NULL),
    DIST ("g++ -c a.CPP", L_CXX, "a.CPP", "a.o", NULL, NULL),
    DIST ("gcc -c a.m", L_OBJC, "a.m", "a.o", NULL, NULL),
    DIST ("gcc -c a.mm", L_OBJCXX, "a.mm", "a.o", NULL, NULL),
    DIST ("clang -c a.M", L_OBJCXX, "a.M", "a.o", NULL, NULL),
    DIST ("gcc -c a.S", L_ASM, "a.S", "a.o", NULL, NULL),
    DIST ("gcc -c a.sx", L_ASM, "a.sx", "a.o", NULL, NULL),
    LOCAL ("gcc -c a.s", "plain assembler"),
    LOCAL ("gcc -c a.i", "preprocessed"),
    LOCAL ("g++ -c a.ii", "preprocessed"),
    LOCAL ("gcc -c foo.h", "header"),
    LOCAL ("g++ -c foo.hpp -o foo.hpp.gch", "header"),
    LOCAL ("gcc -c foo.f90", "unknown type"),
    LOCAL ("gcc -c b.o", "unknown type"),

    //  -x applies to the inputs after it; "none" resets.
    DIST ("gcc -x c -c foo.h", L_C, "foo.h", "foo.o", NULL, NULL),
    DIST ("gcc -x c++ -c foo.c", L_CXX, "foo.c", "foo.o", NULL, NULL),
    DIST ("gcc -xc++ -c foo.c", L_CXX, "foo.c", "foo.o", NULL, NULL),
    DIST ("gcc --language=c++ -c foo.c", L_CXX, "foo.c", "foo.o", NULL, NULL),
    DIST ("gcc -x assembler-with-cpp -c foo.asm", L_ASM, "foo.asm", "foo.o", NULL, NULL),
    DIST ("gcc -x c -x none -c foo.cc", L_CXX, "foo.cc", "foo.o", NULL, NULL),
    DIST ("gcc -c foo.c -x c++", L_C, "foo.c", "foo.o", NULL, NULL),
    DIST ("gcc -c -x c noext", L_C, "noext", "noext.o", NULL, NULL),
    DIST ("/usr/bin/clang -c -x objective-c foo.h", L_OBJC, "foo.h", "foo.o", NULL, NULL),
    LOCAL ("gcc -x assembler -c foo.S", "-x language"),
    LOCAL ("gcc -x c-header -c foo.h", "-x language"),
    LOCAL ("gcc -x cpp-output -c foo.i", "-x language"),

    //  Not a compile of one source.
    LOCAL ("gcc foo.c", "links"),
    LOCAL ("gcc foo.c -o foo", "links"),
    LOCAL ("gcc -E foo.c", "-E"),
    LOCAL ("gcc -c -E foo.c", "-E"),
    LOCAL ("gcc -M foo.c", "-M"),
    LOCAL ("gcc -MM -c foo.c", "-M"),
    LOCAL ("gcc -c -M -MD foo.c -o foo.o", "-M"),   //  gcc 12: writes an empty foo.o
    LOCAL ("gcc -c a.c b.c", "several"),
    LOCAL ("gcc -c a.c b.o", "several"),
    LOCAL ("gcc -c", "no source"),
    LOCAL ("gcc -c -", "stdin"),
    LOCAL ("gcc -c -x c -", "stdin"),
    LOCAL ("gcc -c x.c -o -", "stdout"),
    LOCAL ("gcc -c x.c -o /dev/null", "device"),
    LOCAL ("gcc -c x.c -o a.o -o b.o", "several -o"),
    LOCAL ("gcc -c x.c -o", "without its argument"),
    LOCAL ("meshcc -c x.c", "compiler"),
    LOCAL ("gcc --version", "query"),
    LOCAL ("gcc -print-file-name=libc.so", "query"),
    LOCAL ("gcc -dumpmachine", "query"),

    //  Dependency files: -MF, else the output with its suffix replaced,
    //  else the source's base name in the working directory.
    DIST ("gcc -c -MD foo.c", L_C, "foo.c", "foo.o", "foo.d", NULL),
    DIST ("gcc -c -MD sub/x.c -o obj/y.o", L_C, "sub/x.c", "obj/y.o", "obj/y.d", NULL),
    DIST ("gcc -c -MMD sub/x.c", L_C, "sub/x.c", "x.o", "x.d", NULL),
    DIST ("gcc -c -MMD -MP sub/x.c -o obj/y.obj", L_C, "sub/x.c", "obj/y.obj", "obj/y.d", NULL),
    DIST ("gcc -c -MD -MF deps/x.dep -MT x.o sub/x.c -o obj/y.o", L_C, "sub/x.c", "obj/y.o", "deps/x.dep", NULL),
    DIST ("gcc -c -MD -MFdeps/x.dep -MQ obj/x.o sub/x.c", L_C, "sub/x.c", "x.o", "deps/x.dep", NULL),
    DIST ("gcc -c -MD -MF a.d -MF b.d x.c", L_C, "x.c", "x.o", "b.d", NULL),   //  last wins
    DIST ("gcc -c -MD sub/x.c -o obj/y.tar.gz", L_C, "sub/x.c", "obj/y.tar.gz", "obj/y.tar.d", NULL),
    DIST ("gcc -c -MD sub/x.c -o obj/.hidden", L_C, "sub/x.c", "obj/.hidden", "obj/.d", NULL),  //  gcc 12 and clang 14
    DIST ("gcc -c -MD sub/x.c -o obj.d/y", L_C, "sub/x.c", "obj.d/y", "obj.d/y.d", NULL),
    DIST ("gcc -c -MD sub/x.c -o obj/y.", L_C, "sub/x.c", "obj/y.", "obj/y.d", NULL),
    DIST ("gcc -S -MD sub/x.c", L_C, "sub/x.c", "x.s", "x.d", NULL),
    DIST ("gcc -c -MD -x c noext", L_C, "noext", "noext.o", "noext.d", NULL),
    DIST ("clang++-14 -c -MD x.cpp -o obj/y.o", L_CXX, "x.cpp", "obj/y.o", "obj/y.d", NULL),
    LOCAL ("gcc -c -MF x.d x.c", "-MF without"),
    LOCAL ("gcc -c -MD -MF - x.c", "stdout"),
    //  Linux kernel style: -Wp,-MD,FILE wins over -MD/-MF (gcc 12 and clang 14).
    DIST ("gcc -c -Wp,-MD,obj/.x.o.d x.c -o obj/x.o", L_C, "x.c", "obj/x.o", "obj/.x.o.d", NULL),
    DIST ("gcc -c -MD -MF m.d -Wp,-MMD,obj/k.d x.c -o obj/y.o", L_C, "x.c", "obj/y.o", "obj/k.d", NULL),
    DIST ("gcc -c -Wp,-D_FORTIFY_SOURCE=2 x.c", L_C, "x.c", "x.o", NULL, NULL),
    LOCAL ("gcc -c -Wp,-MF,obj/k.d x.c", "-Wp,"),
    LOCAL ("gcc -c -Wp,-MD x.c", "-Wp,"),
    LOCAL ("gcc -c -Wp,-MD,a,b x.c", "-Wp,"),
    LOCAL ("gcc -c -Xpreprocessor -MD x.c", "-Xpreprocessor"),

    //  Split DWARF. gcc 12: the .dwo goes next to the object, only with -c,
    //  even with -g0 or -flto; a leading-dot name is kept whole.
    DIST ("gcc -c -gsplit-dwarf sub/x.c -o obj/y.o", L_C, "sub/x.c", "obj/y.o", NULL, "obj/y.dwo"),
    DIST ("gcc -c -gsplit-dwarf sub/x.c", L_C, "sub/x.c", "x.o", NULL, "x.dwo"),
    DIST ("gcc -c -g -gsplit-dwarf sub/x.c -o obj/.hidden", L_C, "sub/x.c", "obj/.hidden", NULL, "obj/.hidden.dwo"),
    DIST ("gcc -c -gsplit-dwarf sub/x.c -o obj/.h.o", L_C, "sub/x.c", "obj/.h.o", NULL, "obj/.h.dwo"),
    DIST ("gcc -c -gsplit-dwarf sub/x.c -o obj/y.tar.gz", L_C, "sub/x.c", "obj/y.tar.gz", NULL, "obj/y.tar.dwo"),
    DIST ("gcc -c -gsplit-dwarf sub/x.c -o obj/y", L_C, "sub/x.c", "obj/y", NULL, "obj/y.dwo"),
    DIST ("gcc -c -gsplit-dwarf -g0 x.c", L_C, "x.c", "x.o", NULL, "x.dwo"),
    DIST ("gcc -c -gsplit-dwarf -flto x.c -o y.o", L_C, "x.c", "y.o", NULL, "y.dwo"),
    DIST ("gcc -c -gsplit-dwarf -MD x.c -o obj/y.z.o", L_C, "x.c", "obj/y.z.o", "obj/y.z.d", "obj/y.z.dwo"),
    DIST ("gcc -c -gsplit-dwarf -g a.S -o obj/a.o", L_ASM, "a.S", "obj/a.o", NULL, "obj/a.dwo"),
    DIST ("gcc -S -gsplit-dwarf x.c", L_C, "x.c", "x.s", NULL, NULL),
    DIST ("gcc -c -gsplit-dwarf -gno-split-dwarf x.c", L_C, "x.c", "x.o", NULL, NULL),
    //  clang 14: a .dwo only with debug info on and no LTO; a leading dot
    //  is a suffix like any other.
    DIST ("clang -c -gsplit-dwarf x.c -o obj/y.o", L_C, "x.c", "obj/y.o", NULL, NULL),
    DIST ("clang -c -g -gsplit-dwarf x.c -o obj/y.o", L_C, "x.c", "obj/y.o", NULL, "obj/y.dwo"),
    DIST ("clang -c -gsplit-dwarf -g x.c", L_C, "x.c", "x.o", NULL, "x.dwo"),
    DIST ("clang -c -g -gsplit-dwarf x.c -o obj/.hidden", L_C, "x.c", "obj/.hidden", NULL, "obj/.dwo"),
    DIST ("clang -c -g -gsplit-dwarf -g0 x.c", L_C, "x.c", "x.o", NULL, NULL),
    DIST ("clang -c -g -gsplit-dwarf -flto=thin x.c", L_C, "x.c", "x.o", NULL, NULL),
    DIST ("clang -c -g -gsplit-dwarf -flto=thin -fno-lto x.c", L_C, "x.c", "x.o", NULL, "x.dwo"),
    DIST ("clang -c -gdwarf64 -gsplit-dwarf x.c", L_C, "x.c", "x.o", NULL, "x.dwo"),
    DIST ("clang -c -gline-tables-only -gsplit-dwarf x.c", L_C, "x.c", "x.o", NULL, "x.dwo"),
    DIST ("clang -c -gline-directives-only -gsplit-dwarf x.c", L_C, "x.c", "x.o", NULL, NULL),
    DIST ("clang -c -g -gz -gsplit-dwarf=single x.c", L_C, "x.c", "x.o", NULL, NULL),
    DIST ("clang -c -g -gsplit-dwarf -MD x.c -o o/y.o", L_C, "x.c", "o/y.o", "o/y.d", "o/y.dwo"),
    LOCAL ("clang -S -g -gsplit-dwarf x.c", "-gsplit-dwarf"),
    LOCAL ("clang -c -gembed-source -gsplit-dwarf x.c", "-gsplit-dwarf"),
    DIST ("clang -c -gdwarf-5 -gembed-source x.c", L_C, "x.c", "x.o", NULL, NULL),   //  no split: no matter

    //  Options with separate arguments are skipped correctly.
    DIST ("gcc -c -I inc -isystem sys -iquote q -idirafter after -include pre.h -imacros m.h "
          "-D X=1 -U Y -x c foo -o out.o", L_C, "foo", "out.o", NULL, NULL),
    DIST ("gcc -c -L lib -l m -Xlinker --foo -Xassembler --noexecstack -T s.ld -u sym -z now "
          "-e entry --param max-inline-insns-single=10 --param=ssp-buffer-size=4 -A sys=linux x.c",
          L_C, "x.c", "x.o", NULL, NULL),
    DIST ("gcc -c -imultilib m32 -iprefix /p/ -iwithprefix inc -iwithprefixbefore inc2 "
          "--sysroot /sr -isysroot /sr2 x.c", L_C, "x.c", "x.o", NULL, NULL),
    DIST ("clang -c -target aarch64-linux-gnu -arch arm64 -mllvm -x86-asm-syntax=intel "
          "-resource-dir /r x.c", L_C, "x.c", "x.o", NULL, NULL),
    DIST ("gcc -c -includepre.h -imacrosm.h x.c", L_C, "x.c", "x.o", NULL, NULL),
    DIST ("gcc -c -Wa,--noexecstack -Wa,-mrelax-relocations=no x.c", L_C, "x.c", "x.o", NULL, NULL),
    DIST ("gcc -c -fopt-info-vec x.c", L_C, "x.c", "x.o", NULL, NULL),
    DIST ("gcc -c -fsanitize=address -fno-sanitize-recover=all x.c", L_C, "x.c", "x.o", NULL, NULL),
    DIST ("gcc -c -undef x.c", L_C, "x.c", "x.o", NULL, NULL),

    //  Options that make a compile local.
    LOCAL ("gcc -c -fsyntax-only x.c", "-fsyntax-only"),
    LOCAL ("gcc -c -march=native x.c", "native"),
    LOCAL ("gcc -c -mtune=native x.c", "native"),
    LOCAL ("clang -c -mcpu=native x.c", "native"),
    LOCAL ("gcc -c -fprofile-use x.c", "profil"),
    LOCAL ("gcc -c -fprofile-use=x.prof x.c", "profil"),
    LOCAL ("gcc -c -fauto-profile=x.afdo x.c", "profil"),
    LOCAL ("gcc -c -fprofile-generate x.c", "profil"),
    LOCAL ("gcc -c --coverage x.c", "coverage"),
    LOCAL ("gcc -c -ftest-coverage x.c", "coverage"),
    LOCAL ("gcc -c -fprofile-arcs x.c", "profil"),
    LOCAL ("clang -c -fprofile-sample-use=x.prof x.c", "profil"),
    LOCAL ("clang -c -fprofile-instr-use=x.profdata x.c", "profil"),
    LOCAL ("gcc -c -save-temps x.c", "-save-temps"),
    LOCAL ("gcc -c -save-temps=obj x.c", "-save-temps"),
    LOCAL ("clang -c -fsanitize=cfi -fsanitize-ignorelist=ign.txt x.c", "reads a file"),
    LOCAL ("clang -c -fsanitize-blacklist=b.txt x.c", "reads a file"),
    LOCAL ("clang -c -Xclang -emit-llvm x.c", "-Xclang"),
    LOCAL ("clang -c -fmodules x.c", "modules"),
    LOCAL ("g++ -c -fmodules-ts x.cc", "modules"),
    LOCAL ("clang++ -c -fcxx-modules x.cc", "modules"),
    LOCAL ("clang++ -c -fmodule-file=x.pcm x.cc", "modules"),
    LOCAL ("clang -c -include-pch x.pch x.c", "precompiled"),
    LOCAL ("gcc -c -fplugin=./p.so x.c", "-fplugin"),
    LOCAL ("gcc -c -fplugin-arg-p-x=y x.c", "-fplugin"),
    LOCAL ("gcc -c -specs=foo.specs x.c", "-specs"),
    LOCAL ("gcc -c -specs foo.specs x.c", "-specs"),
    LOCAL ("gcc -c -B/opt/bin x.c", "-B"),
    LOCAL ("gcc -c -B /opt/bin x.c", "-B"),
    LOCAL ("gcc -c -wrapper gdb,--args x.c", "-wrapper"),
    LOCAL ("gcc -c -v x.c", "-v"),
    LOCAL ("gcc -c -### x.c", "-v"),
    LOCAL ("gcc -c -fdump-tree-all x.c", "side file"),
    LOCAL ("gcc -c -fstack-usage x.c", "side file"),
    LOCAL ("gcc -c -fcallgraph-info x.c", "side file"),
    LOCAL ("gcc -c -fopt-info-vec=v.txt x.c", "side file"),
    LOCAL ("clang -c -ftime-trace x.c", "side file"),
    LOCAL ("gcc -c -aux-info protos.h x.c", "-aux-info"),
    LOCAL ("gcc -c -dumpdir obj/ -MD x.c", "-dumpdir"),
    LOCAL ("gcc -c -dumpbase x -gsplit-dwarf x.c", "-dumpdir"),
    LOCAL ("gcc -c -Wa,-adhln=list.txt x.c", "assembler"),
    LOCAL ("gcc -c -Wa,-Iinc x.S", "assembler"),
    LOCAL ("gcc -c -Xassembler --MD -Xassembler as.d x.S", "assembler"),
    LOCAL ("clang -c x.c -objcmt-migrate-literals", "-obj"),
    LOCAL ("clang -c -ivfsoverlay vfs.yaml x.c", "reads a file"),
};

static void
test_table (void **state)
{
    (void) state;
    size_t rows = sizeof s_rows / sizeof s_rows [0];
    assert_true (rows >= 60);
    size_t gcc_rows = 0, clang_rows = 0;
    for (size_t i = 0; i < rows; i++) {
        const row_t *row = &s_rows [i];
        compile_args_t *args = s_parse (row->cmd, "/home/u/p");
        assert_non_null (args);
        if (args->distributable != row->dist)
            fail_msg ("%s: distributable=%d, reason %s", row->cmd, args->distributable,
                      args->reason? args->reason: "(none)");
        if (strstr (row->cmd, "clang"))
            clang_rows++;
        else
            gcc_rows++;
        if (!row->dist) {
            assert_non_null (args->reason);
            if (row->reason && !strstr (args->reason, row->reason))
                fail_msg ("%s: reason \"%s\" lacks \"%s\"", row->cmd, args->reason, row->reason);
            assert_null (args->output);
            assert_null (args->depfile);
            assert_null (args->dwo);
            compile_args_destroy (&args);
            continue;
        }
        assert_null (args->reason);
        if (args->lang != row->lang)
            fail_msg ("%s: lang %d, expected %d", row->cmd, args->lang, row->lang);
        assert_string_equal (args->source, row->source);
        assert_true (args->source_index > 0);
        assert_string_equal (args->argv [args->source_index], row->source);
        assert_string_equal (args->output, row->output);
        if (row->depfile) {
            if (!args->depfile)
                fail_msg ("%s: no depfile, expected %s", row->cmd, row->depfile);
            assert_string_equal (args->depfile, row->depfile);
        }
        else
        if (args->depfile)
            fail_msg ("%s: depfile %s, expected none", row->cmd, args->depfile);
        if (row->dwo) {
            if (!args->dwo)
                fail_msg ("%s: no dwo, expected %s", row->cmd, row->dwo);
            assert_string_equal (args->dwo, row->dwo);
        }
        else
        if (args->dwo)
            fail_msg ("%s: dwo %s, expected none", row->cmd, args->dwo);
        assert_int_equal (args->stop_at_assembly, strstr (row->output, ".s") != NULL
                          && strstr (row->cmd, "-S") != NULL);
        compile_args_destroy (&args);
        assert_null (args);
    }
    //  Both families are well represented (the issue asks for gcc and clang).
    assert_true (gcc_rows >= 60);
    assert_true (clang_rows >= 20);
}

static void
test_parse_details (void **state)
{
    (void) state;
    compile_args_t *args = s_parse ("clang -c x.c", "/");
    assert_int_equal (args->family, COMPILE_FAMILY_CLANG);
    assert_int_equal (args->argc, 3);
    assert_null (args->argv [3]);
    compile_args_destroy (&args);

    args = s_parse ("x86_64-linux-gnu-g++-12 -c x.cc", "/");
    assert_int_equal (args->family, COMPILE_FAMILY_GCC);
    compile_args_destroy (&args);

    //  Include directories, in both forms, relative to the sysroot with '='
    //  (wherever --sysroot appears), with -iprefix; "-I-" is not one.
    args = s_parse ("gcc -c -I inc -Iinc2 -isystem sys -isystemsys2 -iquote q -iquoteq2 "
                    "-idirafter a -idiraftera2 -I- -I=/usr/x -iprefix /p/ -iwithprefix w "
                    "--include-directory=long -include h.h x.c --sysroot=/sr", "/");
    assert_true (args->distributable);
    const char *expected [] = { "inc", "inc2", "sys", "sys2", "q", "q2", "a", "a2",
                                "/sr/usr/x", "/p/w", "long" };
    assert_int_equal (args->include_dir_count, sizeof expected / sizeof expected [0]);
    for (size_t i = 0; i < args->include_dir_count; i++)
        assert_string_equal (args->include_dirs [i], expected [i]);
    compile_args_destroy (&args);

    //  Directories are collected even when the command stays local.
    args = s_parse ("gcc -I inc foo.c", "/");
    assert_false (args->distributable);
    assert_int_equal (args->include_dir_count, 1);
    compile_args_destroy (&args);

    //  argc 0 and a NULL destroy are harmless.
    char *const none [] = { NULL };
    args = compile_args_parse (0, none, "/");
    assert_false (args->distributable);
    assert_int_equal (args->argc, 0);
    assert_null (args->argv [0]);
    compile_args_destroy (&args);
    compile_args_destroy (&args);

    //  An empty argument is an input gcc cannot open: local.
    char *const empty [] = { "gcc", "-c", "", "x.c", NULL };
    args = compile_args_parse (4, empty, "/");
    assert_false (args->distributable);
    compile_args_destroy (&args);

    compile_args_test (false);
}


//  --------------------------------------------------------------------------
//  Response files

static char s_dir [64];

static void
s_write (const char *name, const char *text)
{
    char path [256];
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
}

static int
s_setup_dir (void **state)
{
    (void) state;
    strcpy (s_dir, "/tmp/compile-args-test-XXXXXX");
    if (!mkdtemp (s_dir))
        return -1;
    char path [128];
    snprintf (path, sizeof path, "%s/sub", s_dir);
    return mkdir (path, 0755);
}

static int
s_teardown_dir (void **state)
{
    (void) state;
    char cmd [128];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    return system (cmd) == 0? 0: -1;
}

static void
test_response_files (void **state)
{
    assert_int_equal (s_setup_dir (state), 0);
    //  Quoting as libiberty's buildargv does it: quotes group, a backslash
    //  escapes anything (inside single quotes too); nested files are named
    //  relative to the working directory, not to the including file.
    s_write ("a.rsp", "-c 'sp ace.c'\n  \"-DX=\\\"q\\\"\" -DY=a\\ b\t'-DZ=it\\'s' @sub/b.rsp");
    s_write ("sub/b.rsp", "-o obj/out.o @c.rsp");
    s_write ("c.rsp", "-MD\n");
    s_write ("sub/c.rsp", "-DWRONG");
    char *const argv [] = { "gcc", "@a.rsp", "-O2", NULL };
    compile_args_t *args = compile_args_parse (3, argv, s_dir);
    const char *expected [] = { "gcc", "-c", "sp ace.c", "-DX=\"q\"", "-DY=a b", "-DZ=it's",
                                "-o", "obj/out.o", "-MD", "-O2" };
    assert_int_equal (args->argc, 10);
    for (int i = 0; i < args->argc; i++)
        assert_string_equal (args->argv [i], expected [i]);
    assert_null (args->argv [args->argc]);
    assert_true (args->distributable);
    assert_string_equal (args->source, "sp ace.c");
    assert_int_equal (args->source_index, 2);
    assert_string_equal (args->output, "obj/out.o");
    assert_string_equal (args->depfile, "obj/out.d");
    assert_int_equal (args->response_files, 3);
    //  Fine at the origin, but never as a command to execute for a peer.
    assert_non_null (strstr (compile_args_sanitise (args, s_dir, NULL), "response file"));
    compile_args_destroy (&args);

    //  The executor's parse reads nothing: a peer naming a file of ours
    //  (whose contents would come back in the compiler's error messages)
    //  gets a refusal, and the file is not opened.
    char *const hostile [] = { "gcc", "-c", "x.c", "@a.rsp", NULL };
    args = compile_args_parse_received (4, hostile, s_dir);
    assert_false (args->distributable);
    assert_non_null (strstr (args->reason, "response file"));
    assert_int_equal (args->response_files, 0);
    assert_int_equal (args->argc, 4);
    assert_string_equal (args->argv [3], "@a.rsp");
    assert_non_null (compile_args_sanitise (args, s_dir, NULL));
    compile_args_destroy (&args);
    char *const plain [] = { "gcc", "-c", "x.c", "-o", "obj/x.o", NULL };
    args = compile_args_parse_received (5, plain, s_dir);
    assert_true (args->distributable);
    assert_null (compile_args_sanitise (args, s_dir, NULL));
    compile_args_destroy (&args);

    //  An absolute path; an empty file contributes nothing.
    s_write ("empty.rsp", " \n\t");
    char abs [256];
    snprintf (abs, sizeof abs, "@%s/c.rsp", s_dir);
    char *const argv2 [] = { "gcc", "-c", abs, "@empty.rsp", "x.c", NULL };
    args = compile_args_parse (5, argv2, "/nonexistent");
    assert_false (args->distributable);     //  @empty.rsp is relative to /nonexistent
    assert_string_equal (args->reason, "unreadable response file");
    compile_args_destroy (&args);
    args = compile_args_parse (5, argv2, s_dir);
    assert_true (args->distributable);
    assert_int_equal (args->argc, 4);
    assert_string_equal (args->argv [2], "-MD");
    compile_args_destroy (&args);

    //  Unreadable: missing, a directory, a FIFO (without hanging), "@"
    //  alone. The argument stays.
    char fifo [128];
    snprintf (fifo, sizeof fifo, "%s/fifo", s_dir);
    assert_int_equal (mkfifo (fifo, 0600), 0);
    const char *bad [] = { "@missing.rsp", "@sub", "@fifo", "@" };
    for (int i = 0; i < 4; i++) {
        char *const argv3 [] = { "gcc", "-c", "x.c", (char *) bad [i], NULL };
        args = compile_args_parse (4, argv3, s_dir);
        assert_false (args->distributable);
        assert_string_equal (args->reason, "unreadable response file");
        assert_int_equal (args->argc, 4);
        assert_string_equal (args->argv [3], bad [i]);
        compile_args_destroy (&args);
    }
    //  Nested: unreadable inside a readable one.
    s_write ("outer.rsp", "-c @missing.rsp");
    char *const argv4 [] = { "gcc", "@outer.rsp", "x.c", NULL };
    args = compile_args_parse (3, argv4, s_dir);
    assert_false (args->distributable);
    assert_string_equal (args->reason, "unreadable response file");
    compile_args_destroy (&args);

    //  A file naming itself stops at the depth limit; so does a fan-out.
    s_write ("loop.rsp", "-c @loop.rsp");
    s_write ("fan.rsp", "@fan.rsp @fan.rsp @fan.rsp @fan.rsp");
    const char *loops [] = { "@loop.rsp", "@fan.rsp" };
    for (int i = 0; i < 2; i++) {
        char *const argv5 [] = { "gcc", (char *) loops [i], "x.c", NULL };
        args = compile_args_parse (3, argv5, s_dir);
        assert_false (args->distributable);
        assert_non_null (strstr (args->reason, "nested too deep"));
        compile_args_destroy (&args);
    }
    //  Nine levels are fine.
    for (int level = 1; level <= 9; level++) {
        char name [32], text [32] = "-c";
        snprintf (name, sizeof name, "n%d.rsp", level);
        if (level < 9)
            snprintf (text, sizeof text, "@n%d.rsp", level + 1);
        s_write (name, text);
    }
    char *const argv6 [] = { "gcc", "@n1.rsp", "x.c", NULL };
    args = compile_args_parse (3, argv6, s_dir);
    assert_true (args->distributable);
    assert_int_equal (args->argc, 3);
    compile_args_destroy (&args);

    //  Too large.
    char path [256];
    snprintf (path, sizeof path, "%s/big.rsp", s_dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    for (int i = 0; i < 1024 * 1024 / 8 + 1; i++)
        fputs ("-DXXXXX ", file);
    fclose (file);
    char *const argv7 [] = { "gcc", "-c", "@big.rsp", "x.c", NULL };
    args = compile_args_parse (4, argv7, s_dir);
    assert_false (args->distributable);
    assert_non_null (strstr (args->reason, "too large"));
    compile_args_destroy (&args);

    //  An empty quoted argument (gcc keeps it): local.
    s_write ("q.rsp", "-c '' x.c");
    char *const argv8 [] = { "gcc", "@q.rsp", NULL };
    args = compile_args_parse (2, argv8, s_dir);
    assert_int_equal (args->argc, 4);
    assert_string_equal (args->argv [2], "");
    assert_false (args->distributable);
    compile_args_destroy (&args);
    assert_int_equal (s_teardown_dir (state), 0);
}


//  --------------------------------------------------------------------------
//  Sanitise

static const char *
s_sanitise (const char *cmd, const char *cwd, char *const input_dirs [])
{
    compile_args_t *args = s_parse (cmd, cwd);
    const char *reason = compile_args_sanitise (args, cwd, input_dirs);
    compile_args_destroy (&args);
    return reason;
}

static void
test_sanitise (void **state)
{
    (void) state;
    const char *cwd = "/home/u/p";
    assert_null (s_sanitise ("gcc -c -MD -gsplit-dwarf x.c -o obj/x.o -Iinc", cwd, NULL));
    assert_null (s_sanitise ("gcc -c x.c -o /tmp/x.o -Wl,-rpath,/x -Xlinker -z", cwd, NULL));
    assert_null (s_sanitise ("gcc -c /home/u/p/x.c -o ../q/x.o", cwd, NULL));
    assert_null (s_sanitise ("gcc -c x.c -o /usr/libfoo/x.o", cwd, NULL));   //  not /usr/lib
    assert_null (s_sanitise ("gcc -c x.c", "/", NULL));

    //  Not distributable: refused with the parse's reason.
    const char *local [] = {
        "gcc x.c", "gcc -c -fplugin=/tmp/evil.so x.c", "gcc -c -specs=/tmp/s x.c",
        "gcc -c -B/tmp/evil x.c", "gcc -c -wrapper /bin/sh x.c", "gcc -c -fprofile-use x.c",
        "gcc -c -fauto-profile x.c", "gcc -c -fdump-tree-all x.c", "gcc -c -save-temps x.c",
        "clang -c -Xclang -load -Xclang /tmp/p.so x.c", "gcc -c -fstack-usage x.c",
    };
    for (size_t i = 0; i < sizeof local / sizeof local [0]; i++)
        if (!s_sanitise (local [i], cwd, NULL))
            fail_msg ("%s: accepted", local [i]);

    //  Defence in depth: a command marked distributable by someone else
    //  (a hostile peer cannot, but a parser bug could) is still checked
    //  option by option.
    const char *refused [] = {
        "-fplugin=/tmp/evil.so", "-fplugin-arg-x-y=z", "-specs=/tmp/s", "--specs=/tmp/s",
        "-B/tmp/evil", "-wrapper", "-fprofile-use=x", "-fprofile-generate", "-fauto-profile",
        "--coverage", "-fdump-rtl-all", "-save-temps", "-Xclang", "-fstack-usage",
        "-fcallgraph-info", "-aux-info", "--sysroot=/", "-isysroot/sdk", "--sysroot",
        "@/etc/shadow", "@rsp",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused [0]; i++) {
        char *argv [] = { "gcc", "-c", "x.c", (char *) refused [i], NULL };
        compile_args_t fake = {
            .argc = 4, .argv = argv, .distributable = true,
            .source_index = 2, .source = "x.c", .lang = COMPILE_LANG_C, .output = "x.o"
        };
        if (!compile_args_sanitise (&fake, cwd, NULL))
            fail_msg ("%s: accepted", refused [i]);
    }
    assert_non_null (compile_args_sanitise (NULL, cwd, NULL));

    //  Sysroots: only one that holds (or is) an input directory.
    char *const inputs [] = { "/sr/usr/include", "/home/u/p/rel/usr/include", NULL };
    assert_non_null (s_sanitise ("gcc -c --sysroot=/sr x.c", cwd, NULL));
    assert_null (s_sanitise ("gcc -c --sysroot=/sr x.c", cwd, inputs));
    assert_null (s_sanitise ("gcc -c --sysroot /sr x.c", cwd, inputs));
    assert_null (s_sanitise ("clang -c -isysroot /sr x.c", cwd, inputs));
    assert_null (s_sanitise ("clang -c -isysroot/sr/ x.c", cwd, inputs));
    assert_null (s_sanitise ("gcc -c --sysroot=rel x.c", cwd, inputs));
    assert_null (s_sanitise ("gcc -c --sysroot=/sr/usr/include x.c", cwd, inputs));
    assert_non_null (s_sanitise ("gcc -c --sysroot=/other x.c", cwd, inputs));
    assert_non_null (s_sanitise ("gcc -c --sysroot=/sr/usr/include/x x.c", cwd, inputs));
    assert_non_null (s_sanitise ("gcc -c --sysroot=/s x.c", cwd, inputs));     //  not a prefix
    assert_non_null (s_sanitise ("gcc -c --sysroot=../../../../.. x.c", cwd, inputs));

    //  Outputs that escape or land on the system.
    const char *escapes [] = {
        "gcc -c x.c -o ../../../etc/x",             //  /etc/x
        "gcc -c x.c -o ../../../../etc/x",          //  climbs above /
        "gcc -c x.c -o /tmp/../../x",
        "gcc -c x.c -o /usr/bin/gcc",
        "gcc -c x.c -o /usr/lib/gcc/x86_64-linux-gnu/12/cc1",
        "gcc -c x.c -o /usr/libexec/x.o",
        "gcc -c x.c -o /lib64/ld.so",
        "gcc -c x.c -o /bin/sh",
        "gcc -c x.c -o /sbin/init",
        "gcc -c x.c -o /usr/sbin/x",
        "gcc -c x.c -o /sys/x",
        "gcc -c x.c -o /etc/passwd",
        "gcc -c x.c -o /",
        "gcc -c x.c -o /tmp/../usr/./bin//cc",
        "gcc -c -MD -MF /etc/cron.d/x x.c",
        "gcc -c -MD -MF ../../../../../../x.d x.c",
        "gcc -c -Wp,-MD,/etc/x.d x.c",
        "gcc -c -gsplit-dwarf x.c -o /usr/lib/x.o",
        "gcc -c ../../../../../x.c",
        "gcc -c -I../../../../../../inc x.c",
    };
    for (size_t i = 0; i < sizeof escapes / sizeof escapes [0]; i++)
        if (!s_sanitise (escapes [i], cwd, NULL))
            fail_msg ("%s: accepted", escapes [i]);
    //  /proc and /dev outputs never get this far: parse keeps them local.
    assert_non_null (s_sanitise ("gcc -c x.c -o /proc/self/mem", cwd, NULL));

    //  The working directory itself.
    assert_non_null (s_sanitise ("gcc -c x.c", "home/u/p", NULL));
    assert_non_null (s_sanitise ("gcc -c x.c", NULL, NULL));
    assert_non_null (s_sanitise ("gcc -c x.c", "/a/../../b", NULL));
    assert_non_null (s_sanitise ("gcc -c x.c", "/etc", NULL));      //  output /etc/x.o
}


//  --------------------------------------------------------------------------
//  Normalise

static void
test_normalise (void **state)
{
    (void) state;
    static const struct {
        const char *cwd, *path, *expected;  //  expected NULL: -1
    } cases [] = {
        { "/a/b", "c", "/a/b/c" },
        { "/a/b", "../c", "/a/c" },
        { "/a/b", "./c/../d", "/a/b/d" },
        { "/a/b/", "c//d/", "/a/b/c/d" },
        { "/a/b", "/x/./y//z/", "/x/y/z" },
        { "/a/b", "", "/a/b" },
        { "/", ".", "/" },
        { "/", "", "/" },
        { "/a", "..", "/" },
        { "//a//b", "c", "/a/b/c" },
        { "/a/../b", "c", "/b/c" },
        { "/home/u/p", "../../../etc/x", "/etc/x" },
        { "/home/u/p", "../../../../etc/x", NULL },
        { "/a", "../..", NULL },
        { "/a/b", "../../..", NULL },
        { "/", "..", NULL },
        { "/tmp", "/tmp/../../x", NULL },
        { "/a/..", "..", NULL },
        { "/../a", "b", NULL },
        { "relative", "x", NULL },
        { NULL, "x", NULL },
        { NULL, "/x/../y", "/y" },
        { "/a", "...", "/a/..." },
        { "/a", "..x/.y", "/a/..x/.y" },
    };
    char out [64];
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        int rc = compile_args_normalise (cases [i].cwd, cases [i].path, out, sizeof out);
        if (cases [i].expected) {
            if (rc != 0)
                fail_msg ("%s + %s: failed", cases [i].cwd, cases [i].path);
            assert_string_equal (out, cases [i].expected);
        }
        else
        if (rc != -1)
            fail_msg ("%s + %s: %s, expected failure", cases [i].cwd, cases [i].path, out);
    }
    //  Does not fit.
    char small [8];
    assert_int_equal (compile_args_normalise ("/", "abcdefgh", small, sizeof small), -1);
    assert_int_equal (compile_args_normalise ("/", "abcdef", small, sizeof small), 0);
    assert_string_equal (small, "/abcdef");
    assert_int_equal (compile_args_normalise ("/", "x", small, 1), -1);
    assert_int_equal (compile_args_normalise ("/", NULL, small, sizeof small), -1);
}


//  --------------------------------------------------------------------------
//  Compiler names

static void
test_family (void **state)
{
    (void) state;
    static const struct {
        const char *name;
        int family;
    } cases [] = {
        { "gcc", COMPILE_FAMILY_GCC }, { "cc", COMPILE_FAMILY_GCC },
        { "g++", COMPILE_FAMILY_GCC }, { "c++", COMPILE_FAMILY_GCC },
        { "clang", COMPILE_FAMILY_CLANG }, { "clang++", COMPILE_FAMILY_CLANG },
        { "gcc-12", COMPILE_FAMILY_GCC }, { "g++-12", COMPILE_FAMILY_GCC },
        { "gcc-12.2", COMPILE_FAMILY_GCC }, { "clang-14", COMPILE_FAMILY_CLANG },
        { "clang++-14", COMPILE_FAMILY_CLANG },
        { "x86_64-linux-gnu-gcc-12", COMPILE_FAMILY_GCC },
        { "x86_64-linux-gnu-g++", COMPILE_FAMILY_GCC },
        { "arm-none-eabi-gcc", COMPILE_FAMILY_GCC },
        { "aarch64-linux-gnu-clang++", COMPILE_FAMILY_CLANG },
        { "/usr/bin/cc", COMPILE_FAMILY_GCC }, { "/usr/lib/ccache/gcc", COMPILE_FAMILY_GCC },
        { "/usr/lib/llvm-14/bin/clang", COMPILE_FAMILY_CLANG },
        { "meshcc", -1 }, { "distcc", -1 }, { "ccache", -1 }, { "tcc", -1 },
        { "icc", -1 }, { "xgcc", -1 }, { "clang-cl", -1 }, { "clang-cpp", -1 },
        { "gcc-ar", -1 }, { "gcc-nm-12", -1 }, { "c++filt", -1 }, { "cpp", -1 },
        { "ld", -1 }, { "", -1 }, { "gcc-", -1 }, { "gcc-12.", -1 }, { "gcc-x12", -1 },
        { "/usr/bin/", -1 }, { "gcc/", -1 }, { NULL, -1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        int family = compile_args_family (cases [i].name);
        if (family != cases [i].family)
            fail_msg ("%s: family %d, expected %d", cases [i].name? cases [i].name: "(null)",
                      family, cases [i].family);
        if (cases [i].name)
            assert_int_equal (compile_args_is_compiler_name (cases [i].name),
                              cases [i].family >= 0);
    }
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_table),
        cmocka_unit_test (test_parse_details),
        cmocka_unit_test (test_response_files),
        cmocka_unit_test (test_sanitise),
        cmocka_unit_test (test_normalise),
        cmocka_unit_test (test_family),
    };
    return cmocka_run_group_tests_name ("compile_args", tests, NULL, NULL);
}
