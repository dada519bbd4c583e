//  compile_args: what a compiler command line means, for GCC and Clang.
//  Pure logic: the only I/O is reading @response files. Owns the parsed
//  command; never spawns processes or touches sockets.
//
//  The guiding rule: when in doubt, a command is NOT distributable. A local
//  compile is always correct; a remote one that writes a file we do not
//  know about, or reads one the dependency listing does not report, is
//  silently wrong. Misparsing therefore has to fail towards "local": an
//  unknown option that takes a separate argument makes that argument look
//  like a second source file, and two sources are not distributable.
//
//  Every derived file name below was checked by experiment against gcc 12.2
//  and clang 14 on Debian 12 (see tests/unit/test_compile_args.c).

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <assert.h>
#include "meshcc/compile_args.h"

//  Response files: libiberty and LLVM both nest without a depth limit of
//  their own that we could rely on; ten levels is far more than any build
//  system writes (CMake and Ninja write one level). The file-count, size
//  and argument caps bound what a hostile or runaway set of response files
//  (a file that names itself many times) can make us read and allocate.
#define RSP_MAX_DEPTH       10
#define RSP_MAX_FILES       256
#define RSP_MAX_SIZE        (1024 * 1024)
#define ARGS_MAX            65536

//  The one reason the header promises word for word.
#define R_UNREADABLE_RSP    "unreadable response file"

static void *
s_alloc (size_t size)
{
    void *p = calloc (1, size? size: 1);
    if (!p)
        abort ();
    return p;
}

static char *
s_strdup (const char *s)
{
    char *copy = strdup (s);
    if (!copy)
        abort ();
    return copy;
}

static char *
s_strndup (const char *s, size_t n)
{
    char *copy = strndup (s, n);
    if (!copy)
        abort ();
    return copy;
}

static bool
s_starts (const char *s, const char *prefix)
{
    return strncmp (s, prefix, strlen (prefix)) == 0;
}

static bool
s_ends (const char *s, const char *suffix)
{
    size_t n = strlen (s), m = strlen (suffix);
    return n >= m && strcmp (s + n - m, suffix) == 0;
}

static const char *
s_basename (const char *path)
{
    const char *slash = strrchr (path, '/');
    return slash? slash + 1: path;
}


//  --------------------------------------------------------------------------
//  Argument vector with @file expansion

typedef struct {
    char  **items;
    int     count;
    int     room;
    int     files_read;
    const char *error;          //  first expansion failure, or NULL
} s_argv_t;

static void
s_argv_push (s_argv_t *v, char *owned)
{
    if (v->count + 1 >= v->room) {
        v->room = v->room? v->room * 2: 32;
        v->items = realloc (v->items, (size_t) v->room * sizeof (char *));
        if (!v->items)
            abort ();
    }
    v->items [v->count++] = owned;
    v->items [v->count] = NULL;
}

//  Splits response file text the way GCC's libiberty buildargv does (and
//  LLVM's GNU tokenizer, which clang uses, agrees on everything but empty
//  quoted arguments): whitespace separates; single and double quotes group;
//  a backslash escapes the next character everywhere, even inside quotes.
//  Pushes each argument onto `out`.
static void
s_tokenize (const char *text, size_t size, s_argv_t *out)
{
    char *arg = s_alloc (size + 1);
    size_t i = 0;
    while (i < size) {
        while (i < size && (text [i] == ' ' || text [i] == '\t' || text [i] == '\n'
                         || text [i] == '\r' || text [i] == '\f' || text [i] == '\v'))
            i++;
        if (i >= size)
            break;
        size_t len = 0;
        bool squote = false, dquote = false;
        for (; i < size; i++) {
            char c = text [i];
            if (!squote && !dquote
            &&  (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'))
                break;
            if (c == '\\' && i + 1 < size)
                arg [len++] = text [++i];
            else
            if (squote) {
                if (c == '\'')
                    squote = false;
                else
                    arg [len++] = c;
            }
            else
            if (dquote) {
                if (c == '"')
                    dquote = false;
                else
                    arg [len++] = c;
            }
            else
            if (c == '\'')
                squote = true;
            else
            if (c == '"')
                dquote = true;
            else
                arg [len++] = c;
        }
        s_argv_push (out, s_strndup (arg, len));
    }
    free (arg);
}

//  Reads a whole response file, relative to `cwd` (both GCC and clang 14
//  resolve nested response files against the working directory too, not
//  against the including file: checked by experiment). NULL on any failure.
static char *
s_read_file (const char *cwd, const char *name, size_t *size_p, bool *too_big)
{
    char *path = NULL;
    if (name [0] != '/' && cwd) {
        if (asprintf (&path, "%s/%s", cwd, name) < 0)
            abort ();
    }
    else
        path = s_strdup (name);
    char *text = NULL;
    //  O_NONBLOCK: "@fifo" must fail the regular-file check, not hang.
    int fd = open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    free (path);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat (fd, &st) || !S_ISREG (st.st_mode))
        goto done;
    if (st.st_size > RSP_MAX_SIZE) {
        *too_big = true;
        goto done;
    }
    text = s_alloc ((size_t) st.st_size + 1);
    size_t got = 0;
    while (got < (size_t) st.st_size) {
        ssize_t n = read (fd, text + got, (size_t) st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t) n;
    }
    *size_p = got;
done:
    close (fd);
    return text;
}

//  Appends `arg` to `out`, expanding it if it names a response file. Stops
//  expanding at the first failure (and keeps the remaining arguments as
//  they are), so a failure costs at most RSP_MAX_DEPTH reads.
static void
s_expand (s_argv_t *out, const char *arg, const char *cwd, int depth, bool read_files)
{
    if (!read_files && arg [0] == '@' && !out->error)
        out->error = "response file in a received command";
    if (out->error || arg [0] != '@') {
        s_argv_push (out, s_strdup (arg));
        return;
    }
    if (depth >= RSP_MAX_DEPTH) {
        out->error = "response files nested too deep";
        s_argv_push (out, s_strdup (arg));
        return;
    }
    if (out->files_read + 1 > RSP_MAX_FILES) {
        out->error = "too many response files";
        s_argv_push (out, s_strdup (arg));
        return;
    }
    size_t size = 0;
    bool too_big = false;
    char *text = s_read_file (cwd, arg + 1, &size, &too_big);
    if (!text) {
        out->error = too_big? "response file too large": R_UNREADABLE_RSP;
        s_argv_push (out, s_strdup (arg));
        return;
    }
    out->files_read++;
    s_argv_t tokens = { 0 };
    s_tokenize (text, size, &tokens);
    free (text);
    if (out->count + tokens.count > ARGS_MAX) {
        out->error = "too many arguments";
        s_argv_push (out, s_strdup (arg));
        for (int i = 0; i < tokens.count; i++)
            free (tokens.items [i]);
        free (tokens.items);
        return;
    }
    for (int i = 0; i < tokens.count; i++) {
        s_expand (out, tokens.items [i], cwd, depth + 1, true);
        free (tokens.items [i]);
    }
    free (tokens.items);
}


//  --------------------------------------------------------------------------
//  Compiler names

//  Strips an optional target prefix ("x86_64-linux-gnu-") and version
//  suffix ("-12", "-14.0") and returns the family of what remains. The bare
//  name must be preceded by '-' or nothing, so "meshcc", "distcc", "tcc",
//  "clang-cl", "gcc-ar" and "c++filt" are not compilers.
int
compile_args_family (const char *compiler)
{
    if (!compiler)
        return -1;
    const char *base = s_basename (compiler);
    size_t len = strlen (base);
    //  Version suffix: "-" followed by digits and dots, ending in a digit.
    const char *dash = strrchr (base, '-');
    if (dash && dash [1]) {
        const char *p = dash + 1;
        bool version = true;
        for (; *p; p++)
            if (!((*p >= '0' && *p <= '9') || *p == '.'))
                version = false;
        if (version && dash [1] >= '0' && dash [1] <= '9' && p [-1] != '.')
            len = (size_t) (dash - base);
    }
    static const struct {
        const char *name;
        int family;
    } names [] = {
        { "clang++", COMPILE_FAMILY_CLANG }, { "clang", COMPILE_FAMILY_CLANG },
        { "gcc", COMPILE_FAMILY_GCC }, { "g++", COMPILE_FAMILY_GCC },
        //  "cc" and "c++" may be clang through alternatives; the family only
        //  decides the -gsplit-dwarf rules, and gcc is Debian's default.
        { "cc", COMPILE_FAMILY_GCC }, { "c++", COMPILE_FAMILY_GCC },
    };
    for (size_t i = 0; i < sizeof names / sizeof names [0]; i++) {
        size_t n = strlen (names [i].name);
        if (len < n || memcmp (base + len - n, names [i].name, n))
            continue;
        if (len == n || base [len - n - 1] == '-')
            return names [i].family;
    }
    return -1;
}

bool
compile_args_is_compiler_name (const char *name)
{
    return compile_args_family (name) >= 0;
}


//  --------------------------------------------------------------------------
//  Languages

//  Returns the language of a source by its extension, or UNKNOWN and a
//  reason in *why for inputs we recognise but keep local.
static compile_lang_t
s_lang_by_extension (const char *path, const char **why)
{
    const char *base = s_basename (path);
    const char *dot = strrchr (base, '.');
    *why = "input file of unknown type";
    if (!dot)
        return COMPILE_LANG_UNKNOWN;
    const char *ext = dot + 1;
    static const struct {
        const char *ext;
        compile_lang_t lang;
        const char *why;
    } table [] = {
        { "c", COMPILE_LANG_C, NULL },
        { "cc", COMPILE_LANG_CXX, NULL }, { "cp", COMPILE_LANG_CXX, NULL },
        { "cxx", COMPILE_LANG_CXX, NULL }, { "cpp", COMPILE_LANG_CXX, NULL },
        { "CPP", COMPILE_LANG_CXX, NULL }, { "c++", COMPILE_LANG_CXX, NULL },
        { "C", COMPILE_LANG_CXX, NULL },
        { "m", COMPILE_LANG_OBJC, NULL },
        { "mm", COMPILE_LANG_OBJCXX, NULL }, { "M", COMPILE_LANG_OBJCXX, NULL },
        { "S", COMPILE_LANG_ASM_CPP, NULL }, { "sx", COMPILE_LANG_ASM_CPP, NULL },
        //  Nothing to preprocess and cheap to assemble: not worth a trip.
        { "s", COMPILE_LANG_UNKNOWN, "plain assembler input" },
        //  Already preprocessed: rare, and the listing would report nothing.
        { "i", COMPILE_LANG_UNKNOWN, "preprocessed input" },
        { "ii", COMPILE_LANG_UNKNOWN, "preprocessed input" },
        { "mi", COMPILE_LANG_UNKNOWN, "preprocessed input" },
        { "mii", COMPILE_LANG_UNKNOWN, "preprocessed input" },
        //  A header as the source makes a precompiled header (.gch/.pch).
        { "h", COMPILE_LANG_UNKNOWN, "header as source (precompiled header)" },
        { "hh", COMPILE_LANG_UNKNOWN, "header as source (precompiled header)" },
        { "H", COMPILE_LANG_UNKNOWN, "header as source (precompiled header)" },
        { "hp", COMPILE_LANG_UNKNOWN, "header as source (precompiled header)" },
        { "hxx", COMPILE_LANG_UNKNOWN, "header as source (precompiled header)" },
        { "hpp", COMPILE_LANG_UNKNOWN, "header as source (precompiled header)" },
        { "HPP", COMPILE_LANG_UNKNOWN, "header as source (precompiled header)" },
        { "h++", COMPILE_LANG_UNKNOWN, "header as source (precompiled header)" },
        { "tcc", COMPILE_LANG_UNKNOWN, "header as source (precompiled header)" },
        { "gch", COMPILE_LANG_UNKNOWN, "precompiled header input" },
        { "pch", COMPILE_LANG_UNKNOWN, "precompiled header input" },
    };
    for (size_t i = 0; i < sizeof table / sizeof table [0]; i++)
        if (strcmp (ext, table [i].ext) == 0) {
            *why = table [i].why;
            return table [i].lang;
        }
    return COMPILE_LANG_UNKNOWN;
}

//  -x LANG. Returns the language, COMPILE_LANG_UNKNOWN for "none" (which
//  resets to "by extension"), or -1 for a language we do not distribute.
static int
s_lang_by_name (const char *name)
{
    if (strcmp (name, "none") == 0)
        return COMPILE_LANG_UNKNOWN;
    if (strcmp (name, "c") == 0)
        return COMPILE_LANG_C;
    if (strcmp (name, "c++") == 0)
        return COMPILE_LANG_CXX;
    if (strcmp (name, "objective-c") == 0)
        return COMPILE_LANG_OBJC;
    if (strcmp (name, "objective-c++") == 0)
        return COMPILE_LANG_OBJCXX;
    if (strcmp (name, "assembler-with-cpp") == 0)
        return COMPILE_LANG_ASM_CPP;
    return -1;
}


//  --------------------------------------------------------------------------
//  Options

//  What an option means to us. Options not in the table are flags that
//  neither take a separate argument nor matter to distribution, or are
//  caught by the prefix rules in s_flag.
typedef enum {
    OPT_SKIP,                   //  takes an argument we do not need
    OPT_OUTPUT,                 //  -o
    OPT_LANG,                   //  -x
    OPT_INCLUDE_DIR,            //  -I, -isystem, -iquote, -idirafter
    OPT_IPREFIX,                //  -iprefix
    OPT_IWITHPREFIX,            //  -iwithprefix, -iwithprefixbefore
    OPT_MF, OPT_MT,             //  -MF; -MT and -MQ
    OPT_SYSROOT,                //  --sysroot, -isysroot
    OPT_XPREPROCESSOR,          //  -Xpreprocessor
    OPT_XASSEMBLER,             //  -Xassembler
    OPT_LOCAL                   //  never distributable (reason in table)
} s_opt_kind_t;

#define SEP     1               //  "-o FILE"
#define JOIN    2               //  "-oFILE"
#define EQ      4               //  "--sysroot=DIR" (name given without '=')

typedef struct {
    const char *name;
    int         forms;
    s_opt_kind_t kind;
    const char *reason;         //  for OPT_LOCAL
} s_opt_t;

static const s_opt_t s_opts [] = {
    { "-o",                 SEP | JOIN, OPT_OUTPUT, NULL },
    { "--output",           SEP | EQ,   OPT_OUTPUT, NULL },
    { "-x",                 SEP | JOIN, OPT_LANG, NULL },
    { "--language",         SEP | EQ,   OPT_LANG, NULL },
    { "-I",                 SEP | JOIN, OPT_INCLUDE_DIR, NULL },
    { "--include-directory", SEP | EQ,  OPT_INCLUDE_DIR, NULL },
    { "-isystem",           SEP | JOIN, OPT_INCLUDE_DIR, NULL },
    { "-cxx-isystem",       SEP | JOIN, OPT_INCLUDE_DIR, NULL },
    { "-iquote",            SEP | JOIN, OPT_INCLUDE_DIR, NULL },
    { "-idirafter",         SEP | JOIN, OPT_INCLUDE_DIR, NULL },
    { "-iprefix",           SEP | JOIN, OPT_IPREFIX, NULL },
    { "-iwithprefix",       SEP | JOIN, OPT_IWITHPREFIX, NULL },
    { "-iwithprefixbefore", SEP | JOIN, OPT_IWITHPREFIX, NULL },
    { "-imultilib",         SEP | JOIN, OPT_SKIP, NULL },
    { "-imultiarch",        SEP | JOIN, OPT_SKIP, NULL },
    { "-iwithsysroot",      SEP | JOIN, OPT_SKIP, NULL },
    { "-iframework",        SEP | JOIN, OPT_SKIP, NULL },
    { "-include",           SEP | JOIN, OPT_SKIP, NULL },
    { "--include",          SEP | EQ,   OPT_SKIP, NULL },
    { "-imacros",           SEP | JOIN, OPT_SKIP, NULL },
    { "--imacros",          SEP | EQ,   OPT_SKIP, NULL },
    { "-MF",                SEP | JOIN, OPT_MF, NULL },
    { "-MT",                SEP | JOIN, OPT_MT, NULL },
    { "-MQ",                SEP | JOIN, OPT_MT, NULL },
    { "-D",                 SEP | JOIN, OPT_SKIP, NULL },
    { "--define-macro",     SEP | EQ,   OPT_SKIP, NULL },
    { "-U",                 SEP | JOIN, OPT_SKIP, NULL },
    { "--undefine-macro",   SEP | EQ,   OPT_SKIP, NULL },
    { "-A",                 SEP | JOIN, OPT_SKIP, NULL },
    { "-L",                 SEP | JOIN, OPT_SKIP, NULL },
    { "-l",                 SEP | JOIN, OPT_SKIP, NULL },
    { "-T",                 SEP | JOIN, OPT_SKIP, NULL },
    { "-u",                 SEP | JOIN, OPT_SKIP, NULL },
    { "-z",                 SEP,        OPT_SKIP, NULL },
    { "-e",                 SEP,        OPT_SKIP, NULL },
    { "-Xlinker",           SEP,        OPT_SKIP, NULL },
    { "-Xpreprocessor",     SEP,        OPT_XPREPROCESSOR, NULL },
    { "-Xassembler",        SEP,        OPT_XASSEMBLER, NULL },
    { "--param",            SEP | EQ,   OPT_SKIP, NULL },
    { "-arch",              SEP,        OPT_SKIP, NULL },
    { "-target",            SEP,        OPT_SKIP, NULL },
    { "-mllvm",             SEP,        OPT_SKIP, NULL },
    { "-resource-dir",      SEP | EQ,   OPT_SKIP, NULL },
    { "--sysroot",          SEP | EQ,   OPT_SYSROOT, NULL },
    { "-isysroot",          SEP | JOIN, OPT_SYSROOT, NULL },
    { "-Xclang",            SEP,        OPT_LOCAL,
      "-Xclang (options of the compiler proper)" },
    { "-include-pch",       SEP,        OPT_LOCAL, "precompiled header (-include-pch)" },
    { "-aux-info",          SEP,        OPT_LOCAL, "-aux-info writes a side file" },
    //  gcc 11+ names every auxiliary output (.d, .dwo, dumps) after these.
    { "-dumpbase",          SEP,        OPT_LOCAL, "-dumpbase/-dumpdir move side outputs" },
    { "-dumpbase-ext",      SEP,        OPT_LOCAL, "-dumpbase/-dumpdir move side outputs" },
    { "-dumpdir",           SEP,        OPT_LOCAL, "-dumpbase/-dumpdir move side outputs" },
    { "-wrapper",           SEP,        OPT_LOCAL, "-wrapper runs another program" },
    { "-B",                 SEP | JOIN, OPT_LOCAL, "-B changes where the compiler finds its parts" },
    { "-specs",             SEP | EQ,   OPT_LOCAL, "-specs changes the compiler's behaviour" },
    { "--specs",            SEP | EQ,   OPT_LOCAL, "-specs changes the compiler's behaviour" },
    { "-MJ",                SEP | JOIN, OPT_LOCAL, "-MJ writes a side file" },
    { "--serialize-diagnostics", SEP,   OPT_LOCAL, "--serialize-diagnostics writes a side file" },
    { "-ivfsoverlay",       SEP | JOIN, OPT_LOCAL, "option reads a file the dependency listing does not report" },
    { "--config",           SEP | EQ,   OPT_LOCAL, "option reads a file the dependency listing does not report" },
};

//  Finds the table entry for `arg`. An exact name wins (so "-include-pch"
//  is not "-include" + "-pch"); otherwise the longest joined or "=" form.
//  Sets *value to the joined value, or NULL when the value is the next
//  argument.
static const s_opt_t *
s_opt_find (const char *arg, const char **value)
{
    const size_t count = sizeof s_opts / sizeof s_opts [0];
    for (size_t i = 0; i < count; i++)
        if ((s_opts [i].forms & SEP) && strcmp (arg, s_opts [i].name) == 0) {
            *value = NULL;
            return &s_opts [i];
        }
    const s_opt_t *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < count; i++) {
        size_t n = strlen (s_opts [i].name);
        if (n <= best_len || strncmp (arg, s_opts [i].name, n))
            continue;
        if ((s_opts [i].forms & JOIN) && arg [n]) {
            best = &s_opts [i];
            best_len = n;
            *value = arg + n;
        }
        else
        if ((s_opts [i].forms & EQ) && arg [n] == '=') {
            best = &s_opts [i];
            best_len = n;
            *value = arg + n + 1;
        }
    }
    return best;
}

//  The state of one parse.
typedef struct {
    compile_args_t *self;
    const char *reason;         //  first reason found while walking
    bool has_c, has_S, has_E, has_M, has_MD;
    bool split_dwarf;
    bool clang_debug;           //  clang: the last -g level writes DWARF
    bool clang_debug_unknown;   //  clang: a -g option we cannot classify
    bool clang_lto;
    const char *mf;             //  last -MF
    const char *wp_depfile;     //  -Wp,-MD,FILE
    const char *output;         //  last -o
    int output_count;
    int x_lang;                 //  current -x (COMPILE_LANG_UNKNOWN: none)
    int sources;
    int other_inputs;
    const char *source_why;     //  why the (last) input is not a source
    const char *sysroot;
    const char *iprefix;
} s_parse_t;

static void
s_local (s_parse_t *p, const char *reason)
{
    if (!p->reason)
        p->reason = reason;
}

static void
s_add_include_dir (compile_args_t *self, const char *dir)
{
    if (!*dir || strcmp (dir, "-") == 0)
        return;                 //  "-I-" is a separator, not a directory
    self->include_dirs = realloc (self->include_dirs,
                                  (self->include_dir_count + 1) * sizeof (char *));
    if (!self->include_dirs)
        abort ();
    self->include_dirs [self->include_dir_count++] = s_strdup (dir);
}

//  "-I=dir" and "-I$SYSROOT/dir" are relative to the sysroot, wherever
//  --sysroot appears on the line, so they are resolved after the walk.
static void
s_resolve_sysroot_dirs (compile_args_t *self, const char *sysroot)
{
    for (size_t i = 0; i < self->include_dir_count; i++) {
        char *dir = self->include_dirs [i];
        const char *rest = NULL;
        if (dir [0] == '=')
            rest = dir + 1;
        else
        if (s_starts (dir, "$SYSROOT"))
            rest = dir + strlen ("$SYSROOT");
        if (!rest)
            continue;
        char *resolved;
        if (asprintf (&resolved, "%s%s", sysroot? sysroot: "", rest) < 0)
            abort ();
        free (dir);
        self->include_dirs [i] = resolved;
    }
}

//  Assembler options (-Wa, parts and -Xassembler) that read or write files
//  `-M` does not see: listings (-a...=file), as's own dependency file
//  (--MD), its include path for .include (-I) and its response files.
static bool
s_assembler_option_is_local (const char *opt)
{
    return s_starts (opt, "-a") || s_starts (opt, "--MD") || s_starts (opt, "-MD")
        || s_starts (opt, "-I") || opt [0] == '@';
}

//  -Wp,OPTS: the Linux kernel passes -Wp,-MD,FILE (or -MMD) to name the
//  dependency file; gcc 12 and clang 14 both let it win over -MD/-MF. We
//  accept exactly that shape and keep every other preprocessor-level
//  dependency option local.
static void
s_wp (s_parse_t *p, const char *arg)
{
    const char *list = arg + 4;
    const char *comma = strchr (list, ',');
    if ((s_starts (list, "-MD,") || s_starts (list, "-MMD,"))
    &&  comma && comma [1] && !strchr (comma + 1, ',')) {
        p->wp_depfile = comma + 1;
        return;
    }
    for (const char *part = list; part; part = strchr (part, ',')) {
        if (*part == ',')
            part++;
        if (s_starts (part, "-M"))
            s_local (p, "-Wp, with dependency options other than -MD,FILE");
        if (s_starts (part, "-E"))
            s_local (p, "-E (preprocess only)");
    }
}

static void
s_wa (s_parse_t *p, const char *arg)
{
    const char *list = arg + 4;
    for (const char *part = list; part; part = strchr (part, ',')) {
        if (*part == ',')
            part++;
        if (s_assembler_option_is_local (part))
            s_local (p, "assembler option that reads or writes a file");
    }
}

//  clang's -g options: which ones make it write DWARF (and so a .dwo with
//  -gsplit-dwarf), which turn it off, and which change neither (checked
//  one by one against clang 14). Anything else under -gsplit-dwarf keeps
//  the compile local rather than guess whether a .dwo appears.
static void
s_clang_g (s_parse_t *p, const char *arg)
{
    static const char *enable [] = {
        "-g", "-g1", "-g2", "-g3", "-ggdb", "-ggdb1", "-ggdb2", "-ggdb3", "-glldb",
        "-gsce", "-gdwarf", "-gdwarf-2", "-gdwarf-3", "-gdwarf-4", "-gdwarf-5",
        "-gdwarf32", "-gdwarf64", "-gline-tables-only", "-gfull", "-gused",
        "-gno-inline-line-tables", "-gmodules", NULL
    };
    static const char *disable [] = { "-g0", "-ggdb0", "-gline-directives-only", NULL };
    static const char *neutral [] = {
        "-gz", "-gcolumn-info", "-gno-column-info", "-gpubnames", "-gno-pubnames",
        "-ggnu-pubnames", "-gno-gnu-pubnames", "-gstrict-dwarf", "-gno-strict-dwarf",
        "-grecord-gcc-switches", "-gno-record-gcc-switches", "-gdwarf-aranges",
        "-gsplit-dwarf", "-gno-split-dwarf", NULL
    };
    for (int i = 0; enable [i]; i++)
        if (strcmp (arg, enable [i]) == 0) {
            p->clang_debug = true;
            return;
        }
    for (int i = 0; disable [i]; i++)
        if (strcmp (arg, disable [i]) == 0) {
            p->clang_debug = false;
            return;
        }
    for (int i = 0; neutral [i]; i++)
        if (strcmp (arg, neutral [i]) == 0)
            return;
    if (s_starts (arg, "-gz=") || s_starts (arg, "-gsplit-dwarf="))
        return;
    p->clang_debug_unknown = true;
}

//  Options that need no argument of their own. Prefix rules catch whole
//  families (-fprofile-*, -fdump-*, ...) so that new variants stay local.
static void
s_flag (s_parse_t *p, const char *arg)
{
    if (strcmp (arg, "-c") == 0)
        p->has_c = true;
    else
    if (strcmp (arg, "-S") == 0)
        p->has_S = true;
    else
    if (strcmp (arg, "-E") == 0)
        p->has_E = true;
    //  -M/-MM imply -E even next to -MD: gcc 12 then writes the listing
    //  into the "object" (an empty file with -MD). Always local.
    else
    if (strcmp (arg, "-M") == 0 || strcmp (arg, "-MM") == 0)
        p->has_M = true;
    else
    if (strcmp (arg, "-MD") == 0 || strcmp (arg, "-MMD") == 0)
        p->has_MD = true;
    else
    if (strcmp (arg, "-fsyntax-only") == 0)
        s_local (p, "-fsyntax-only");
    else
    if (s_starts (arg, "-m") && s_ends (arg, "=native"))
        s_local (p, "-march/-mtune/-mcpu=native depends on the machine");
    else
    if (s_starts (arg, "-fprofile-") || s_starts (arg, "-fauto-profile")
    ||  s_starts (arg, "-fcs-profile-") || strcmp (arg, "--coverage") == 0
    ||  strcmp (arg, "-ftest-coverage") == 0 || strcmp (arg, "-fbranch-probabilities") == 0)
        s_local (p, "profiling or coverage option");
    else
    if (s_starts (arg, "-save-temps") || s_starts (arg, "--save-temps"))
        s_local (p, "-save-temps writes side files");
    else
    if (s_starts (arg, "-fsanitize-ignorelist") || s_starts (arg, "-fsanitize-blacklist")
    ||  s_starts (arg, "-fsanitize-system-ignorelist")
    ||  s_starts (arg, "-fsanitize-coverage-allowlist")
    ||  s_starts (arg, "-fsanitize-coverage-ignorelist")
    ||  s_starts (arg, "-fsanitize-coverage-whitelist")
    ||  s_starts (arg, "-fsanitize-coverage-blacklist")
    ||  s_starts (arg, "-fxray-attr-list") || s_starts (arg, "-fxray-always-instrument=")
    ||  s_starts (arg, "-fxray-never-instrument="))
        s_local (p, "option reads a file the dependency listing does not report");
    else
    if (s_starts (arg, "-fmodule") || s_starts (arg, "-fcxx-modules")
    ||  s_starts (arg, "-fprebuilt-module"))
        s_local (p, "modules");
    else
    if (s_starts (arg, "-fplugin"))
        s_local (p, "-fplugin loads code into the compiler");
    else
    if (strcmp (arg, "-v") == 0 || strcmp (arg, "-###") == 0 || strcmp (arg, "--verbose") == 0)
        s_local (p, "-v/-###");
    else
    if (s_starts (arg, "-fdump-") || strcmp (arg, "-fstack-usage") == 0
    ||  s_starts (arg, "-fcallgraph-info") || (s_starts (arg, "-fopt-info") && strchr (arg, '='))
    ||  s_starts (arg, "-fcompare-debug") || s_starts (arg, "-ftime-trace")
    ||  s_starts (arg, "-fsave-optimization-record") || s_starts (arg, "-foptimization-record-file")
    ||  s_starts (arg, "-fproc-stat-report") || strcmp (arg, "-frepo") == 0
    ||  strcmp (arg, "-fdiagnostics-format=sarif-file") == 0
    ||  strcmp (arg, "-fdiagnostics-format=json-file") == 0)
        s_local (p, "option writes a side file");
    else
    if (s_starts (arg, "-print-") || s_starts (arg, "--print-") || s_starts (arg, "-dump")
    ||  strcmp (arg, "--version") == 0 || strcmp (arg, "--help") == 0
    ||  strcmp (arg, "-help") == 0 || s_starts (arg, "--target-help"))
        s_local (p, "query of the compiler");
    else
    if (s_starts (arg, "-Wp,"))
        s_wp (p, arg);
    else
    if (s_starts (arg, "-Wa,"))
        s_wa (p, arg);
    else
    if (s_starts (arg, "-X"))
        s_local (p, "unsupported -X option");
    else
    if (strcmp (arg, "-gsplit-dwarf") == 0 || strcmp (arg, "-gsplit-dwarf=split") == 0)
        p->split_dwarf = true;
    else
    if (strcmp (arg, "-gno-split-dwarf") == 0 || strcmp (arg, "-gsplit-dwarf=single") == 0)
        p->split_dwarf = false;
    else
    if (s_starts (arg, "-flto"))
        p->clang_lto = true;
    else
    if (strcmp (arg, "-fno-lto") == 0)
        p->clang_lto = false;

    if (p->self->family == COMPILE_FAMILY_CLANG && s_starts (arg, "-g"))
        s_clang_g (p, arg);
}

//  An option that takes a value (separate or joined).
static void
s_option (s_parse_t *p, const s_opt_t *opt, const char *value)
{
    switch (opt->kind) {
        case OPT_OUTPUT:
            p->output = value;
            p->output_count++;
            break;
        case OPT_LANG: {
            int lang = s_lang_by_name (value);
            if (lang < 0)
                s_local (p, "unsupported -x language");
            else
                p->x_lang = lang;
            break;
        }
        case OPT_INCLUDE_DIR:
            s_add_include_dir (p->self, value);
            break;
        case OPT_IPREFIX:
            p->iprefix = value;
            break;
        case OPT_IWITHPREFIX:
            //  Without -iprefix the prefix is gcc's own, which we cannot
            //  know here; those directories exist on the peer anyway.
            if (p->iprefix) {
                char *dir;
                if (asprintf (&dir, "%s%s", p->iprefix, value) < 0)
                    abort ();
                s_add_include_dir (p->self, dir);
                free (dir);
            }
            break;
        case OPT_MF:
            p->mf = value;
            break;
        case OPT_SYSROOT:
            p->sysroot = value;
            break;
        case OPT_XPREPROCESSOR:
            if (s_starts (value, "-M"))
                s_local (p, "-Xpreprocessor with dependency options");
            break;
        case OPT_XASSEMBLER:
            if (s_assembler_option_is_local (value))
                s_local (p, "assembler option that reads or writes a file");
            break;
        case OPT_LOCAL:
            s_local (p, opt->reason);
            break;
        case OPT_MT:
        case OPT_SKIP:
            break;
    }
}

//  A non-option argument: a source file or some other input.
static void
s_input (s_parse_t *p, int index, const char *arg)
{
    compile_args_t *self = p->self;
    if (strcmp (arg, "-") == 0) {
        s_local (p, "source from stdin");
        return;
    }
    compile_lang_t lang;
    const char *why = NULL;
    if (p->x_lang != COMPILE_LANG_UNKNOWN)
        lang = (compile_lang_t) p->x_lang;
    else
        lang = s_lang_by_extension (arg, &why);
    if (lang == COMPILE_LANG_UNKNOWN) {
        p->other_inputs++;
        p->source_why = why;
        return;
    }
    p->sources++;
    self->source_index = index;
    self->source = arg;
    self->lang = lang;
}

//  "dir/name.ext" -> "dir/name" + new_suffix. gcc and clang strip the last
//  suffix of the base name for the dependency file even when the dot is the
//  first character (-o obj/.hidden -> obj/.d: gcc 12 and clang 14 agree);
//  gcc's .dwo keeps a leading-dot name whole (obj/.hidden.dwo).
static char *
s_replace_suffix (const char *path, const char *new_suffix, bool keep_leading_dot)
{
    const char *base = s_basename (path);
    const char *dot = strrchr (base, '.');
    size_t keep = strlen (path);
    if (dot && !(keep_leading_dot && dot == base))
        keep = (size_t) (dot - path);
    char *result;
    if (asprintf (&result, "%.*s%s", (int) keep, path, new_suffix) < 0)
        abort ();
    return result;
}

//  Names every file the compile writes. Called once the command is known
//  to compile exactly one source with -c or -S.
static const char *
s_derive_outputs (s_parse_t *p)
{
    compile_args_t *self = p->self;
    bool clang = self->family == COMPILE_FAMILY_CLANG;
    if (p->output) {
        if (strcmp (p->output, "-") == 0)
            return "output to stdout (-o -)";
        //  The origin replaces outputs atomically (rename): never a device.
        if (s_starts (p->output, "/dev/") || s_starts (p->output, "/proc/"))
            return "output to a device";
        self->output = s_strdup (p->output);
    }
    else {
        //  gcc and clang write the object or assembly of dir/foo.c into
        //  the working directory: ./foo.o, ./foo.s.
        self->output = s_replace_suffix (s_basename (self->source),
                                         self->stop_at_assembly? ".s": ".o", false);
    }
    if (p->wp_depfile)
        self->depfile = s_strdup (p->wp_depfile);
    else
    if (p->has_MD) {
        if (p->mf)
            self->depfile = s_strdup (p->mf);
        else
        if (p->output)
            self->depfile = s_replace_suffix (p->output, ".d", false);
        else
            self->depfile = s_replace_suffix (s_basename (self->source), ".d", false);
        if (strcmp (self->depfile, "-") == 0)
            return "dependency file to stdout (-MF -)";
    }
    else
    if (p->mf)
        return "-MF without -MD or -MMD";   //  an error in gcc: let it say so
    if (p->split_dwarf) {
        if (!clang) {
            //  gcc 12 writes the .dwo only when it assembles (-c), even
            //  with -g0 or -flto, next to the object.
            if (!self->stop_at_assembly)
                self->dwo = s_replace_suffix (self->output, ".dwo", true);
        }
        else
        if (p->clang_debug_unknown)
            return "clang -gsplit-dwarf with a -g option of unknown effect";
        else
        if (p->clang_debug && !p->clang_lto) {
            //  clang 14 -S -gsplit-dwarf writes an empty .dwo named after
            //  the source in the working directory: too odd to mirror.
            if (self->stop_at_assembly)
                return "clang -S with -gsplit-dwarf";
            self->dwo = s_replace_suffix (self->output, ".dwo", false);
        }
    }
    return NULL;
}

static compile_args_t *
s_parse_command (int argc, char *const argv [], const char *cwd, bool read_files)
{
    compile_args_t *self = s_alloc (sizeof (compile_args_t));
    self->source_index = -1;

    s_argv_t expanded = { 0 };
    for (int i = 0; i < argc && argv [i]; i++) {
        if (i == 0)
            s_argv_push (&expanded, s_strdup (argv [0]));
        else
            s_expand (&expanded, argv [i], cwd, 0, read_files);
    }
    self->response_files = expanded.files_read;
    if (!expanded.items)
        expanded.items = s_alloc (sizeof (char *));     //  argv [0] = NULL
    self->argc = expanded.count;
    self->argv = expanded.items;

    s_parse_t p = { .self = self, .x_lang = COMPILE_LANG_UNKNOWN };
    if (expanded.error)
        s_local (&p, expanded.error);
    int family = self->argc > 0? compile_args_family (self->argv [0]): -1;
    if (family < 0)
        s_local (&p, "not a known C/C++ compiler");
    else
        self->family = (compile_family_t) family;

    for (int i = 1; i < self->argc; i++) {
        const char *arg = self->argv [i];
        if (arg [0] == 0) {
            s_local (&p, "empty argument");
            continue;
        }
        if (arg [0] != '-' || arg [1] == 0) {
            s_input (&p, i, arg);
            continue;
        }
        //  clang's -objcmt-* and -object are not "-o bjcmt-...".
        if (s_starts (arg, "-obj")) {
            s_local (&p, "unsupported -obj option");
            continue;
        }
        const char *value = NULL;
        const s_opt_t *opt = s_opt_find (arg, &value);
        if (opt) {
            if (!value) {
                if (i + 1 >= self->argc) {
                    s_local (&p, "option without its argument");
                    break;
                }
                value = self->argv [++i];
            }
            s_option (&p, opt, value);
        }
        else
            s_flag (&p, arg);
    }

    s_resolve_sysroot_dirs (self, p.sysroot);
    const char *reason = p.reason;
    self->stop_at_assembly = p.has_S;
    if (!reason && p.has_E)
        reason = "-E (preprocess only)";
    if (!reason && p.has_M)
        reason = "-M/-MM (dependency listing only)";
    if (!reason && !p.has_c && !p.has_S)
        reason = "links (no -c or -S)";
    if (!reason && p.sources + p.other_inputs == 0)
        reason = "no source file";
    if (!reason && p.sources + p.other_inputs > 1)
        reason = "several input files";
    if (!reason && p.other_inputs)
        reason = p.source_why;
    if (!reason && p.output_count > 1)
        reason = "several -o options";
    if (p.sources != 1) {
        self->source_index = -1;
        self->source = NULL;
        self->lang = COMPILE_LANG_UNKNOWN;
    }
    if (!reason)
        reason = s_derive_outputs (&p);
    if (reason) {
        //  Outputs are only promised for distributable commands.
        free ((char *) self->output);
        free ((char *) self->depfile);
        free ((char *) self->dwo);
        self->output = self->depfile = self->dwo = NULL;
    }
    self->reason = reason;
    self->distributable = reason == NULL;
    return self;
}

compile_args_t *
compile_args_parse (int argc, char *const argv [], const char *cwd)
{
    return s_parse_command (argc, argv, cwd, true);
}

//  The executor must never open a file a peer names: see the header.
compile_args_t *
compile_args_parse_received (int argc, char *const argv [], const char *cwd)
{
    return s_parse_command (argc, argv, cwd, false);
}

void
compile_args_destroy (compile_args_t **self_p)
{
    assert (self_p);
    compile_args_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < self->argc; i++)
        free (self->argv [i]);
    free (self->argv);
    for (size_t i = 0; i < self->include_dir_count; i++)
        free (self->include_dirs [i]);
    free (self->include_dirs);
    free ((char *) self->output);
    free ((char *) self->depfile);
    free ((char *) self->dwo);
    free (self);
    *self_p = NULL;
}


//  --------------------------------------------------------------------------
//  Paths and the executor's check

//  Purely lexical, like the kernel would resolve it if nothing were a
//  symlink: the executor's job root has no symlinks it did not create, and
//  the manifest refuses symlinks pointing out. Climbing above "/" is an
//  error here rather than clamped (as the kernel would) because no honest
//  command line does it, while an attack does.
int
compile_args_normalise (const char *cwd, const char *path, char *out, size_t out_size)
{
    if (!path || !out || out_size < 2)
        return -1;
    if (path [0] != '/' && (!cwd || cwd [0] != '/'))
        return -1;
    size_t len = 0;
    out [len] = 0;
    const char *parts [2] = { path [0] == '/'? NULL: cwd, path };
    for (int k = 0; k < 2; k++) {
        const char *s = parts [k];
        if (!s)
            continue;
        while (*s) {
            while (*s == '/')
                s++;
            const char *end = strchrnul (s, '/');
            size_t n = (size_t) (end - s);
            if (n == 0 || (n == 1 && s [0] == '.'))
                ;
            else
            if (n == 2 && s [0] == '.' && s [1] == '.') {
                if (len == 0)
                    return -1;
                while (len > 0 && out [len - 1] != '/')
                    len--;
                len--;          //  drop the '/' too
                out [len] = 0;
            }
            else {
                if (len + 1 + n + 1 > out_size)
                    return -1;
                out [len++] = '/';
                memcpy (out + len, s, n);
                len += n;
                out [len] = 0;
            }
            s = end;
        }
    }
    if (len == 0) {
        out [0] = '/';
        out [1] = 0;
    }
    return 0;
}

static bool
s_under (const char *path, const char *dir)
{
    size_t n = strlen (dir);
    if (n == 1 && dir [0] == '/')
        return true;
    return strncmp (path, dir, n) == 0 && (path [n] == 0 || path [n] == '/');
}

//  Where the compiler and the system live: an executor never writes there,
//  even inside a job root, so that a bug in the job root's construction
//  cannot turn a compile into an overwrite of the compiler it runs.
static bool
s_in_system_dir (const char *path)
{
    static const char *dirs [] = {
        "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libx32",
        "/usr/libexec", "/usr/include", "/usr/local/bin", "/usr/local/lib",
        "/usr/local/libexec", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
        "/etc", "/proc", "/sys", "/dev", NULL
    };
    if (strcmp (path, "/") == 0)
        return true;
    for (int i = 0; dirs [i]; i++)
        if (s_under (path, dirs [i]))
            return true;
    return false;
}

//  A sysroot is allowed when it is one of the input directories or holds
//  one of them (the headers of a sysroot live in its subdirectories): then
//  the compiler reads only what the origin shipped.
static bool
s_sysroot_allowed (const char *cwd, const char *sysroot, char *const input_dirs [])
{
    char root [4096], dir [4096];
    if (!input_dirs || compile_args_normalise (cwd, sysroot, root, sizeof root))
        return false;
    for (int i = 0; input_dirs [i]; i++)
        if (compile_args_normalise (cwd, input_dirs [i], dir, sizeof dir) == 0
        &&  s_under (dir, root))
            return true;
    return false;
}

const char *
compile_args_sanitise (const compile_args_t *self, const char *cwd,
                       char *const input_dirs [])
{
    if (!self)
        return "no command";
    if (!self->distributable)
        return self->reason? self->reason: "not distributable";
    if (self->response_files > 0)
        return "refused: command built from response files";
    if (!cwd || cwd [0] != '/')
        return "working directory is not absolute";
    char norm [4096];
    if (compile_args_normalise ("/", cwd, norm, sizeof norm))
        return "working directory climbs above /";

    //  Defence in depth: parse already keeps all of these local, but the
    //  executor must not depend on the parser's option table being right,
    //  so every argument is checked on its own, option value or not.
    for (int i = 1; i < self->argc; i++) {
        const char *arg = self->argv [i];
        //  gcc and clang would expand it themselves, reading a file the
        //  peer chose.
        if (arg [0] == '@')
            return "refused: @response file argument";
        if (s_starts (arg, "-fplugin"))
            return "refused: -fplugin";
        if (s_starts (arg, "-specs") || s_starts (arg, "--specs"))
            return "refused: -specs";
        if (s_starts (arg, "-B"))
            return "refused: -B";
        if (strcmp (arg, "-wrapper") == 0)
            return "refused: -wrapper";
        if (s_starts (arg, "-fprofile-") || s_starts (arg, "-fauto-profile")
        ||  strcmp (arg, "--coverage") == 0 || strcmp (arg, "-ftest-coverage") == 0)
            return "refused: profiling option";
        if (s_starts (arg, "-fdump-"))
            return "refused: -fdump-*";
        if (s_starts (arg, "-save-temps") || s_starts (arg, "--save-temps"))
            return "refused: -save-temps";
        if (strcmp (arg, "-Xclang") == 0)
            return "refused: -Xclang";
        if (strcmp (arg, "-fstack-usage") == 0 || s_starts (arg, "-fcallgraph-info")
        ||  strcmp (arg, "-aux-info") == 0)
            return "refused: option writes a side file";
        const char *sysroot = NULL;
        if (s_starts (arg, "--sysroot="))
            sysroot = arg + strlen ("--sysroot=");
        else
        if (s_starts (arg, "-isysroot") && arg [strlen ("-isysroot")])
            sysroot = arg + strlen ("-isysroot");
        else
        if ((strcmp (arg, "--sysroot") == 0 || strcmp (arg, "-isysroot") == 0)) {
            if (i + 1 >= self->argc)
                return "refused: sysroot without a directory";
            sysroot = self->argv [++i];
        }
        if (sysroot && !s_sysroot_allowed (cwd, sysroot, input_dirs))
            return "refused: sysroot outside the inputs";
    }

    const char *outputs [3] = { self->output, self->depfile, self->dwo };
    for (int k = 0; k < 3; k++) {
        if (!outputs [k])
            continue;
        if (compile_args_normalise (cwd, outputs [k], norm, sizeof norm))
            return "refused: output path climbs above /";
        if (s_in_system_dir (norm))
            return "refused: output in a system directory";
    }
    if (!self->output)
        return "refused: no output";
    if (self->source && compile_args_normalise (cwd, self->source, norm, sizeof norm))
        return "refused: source path climbs above /";
    for (size_t i = 0; i < self->include_dir_count; i++)
        if (compile_args_normalise (cwd, self->include_dirs [i], norm, sizeof norm))
            return "refused: include directory climbs above /";
    return NULL;
}


//  --------------------------------------------------------------------------
//  Self test

void
compile_args_test (bool verbose)
{
    if (verbose)
        printf (" * compile_args: ");

    char *const cmd [] = { "gcc", "-c", "-MD", "-gsplit-dwarf", "src/foo.c",
                           "-o", "obj/foo.o", "-Iinc", NULL };
    compile_args_t *args = compile_args_parse (8, cmd, "/home/u/p");
    assert (args);
    assert (args->distributable);
    assert (args->lang == COMPILE_LANG_C);
    assert (strcmp (args->source, "src/foo.c") == 0);
    assert (strcmp (args->output, "obj/foo.o") == 0);
    assert (strcmp (args->depfile, "obj/foo.d") == 0);
    assert (strcmp (args->dwo, "obj/foo.dwo") == 0);
    assert (args->include_dir_count == 1);
    assert (compile_args_sanitise (args, "/home/u/p", NULL) == NULL);
    compile_args_destroy (&args);
    assert (args == NULL);

    char *const link [] = { "cc", "foo.c", "-o", "foo", NULL };
    args = compile_args_parse (4, link, "/tmp");
    assert (!args->distributable && args->reason);
    compile_args_destroy (&args);

    char *const escape [] = { "gcc", "-c", "x.c", "-o", "../../../../etc/x", NULL };
    args = compile_args_parse (5, escape, "/home/u/p");
    assert (args->distributable);
    assert (compile_args_sanitise (args, "/home/u/p", NULL) != NULL);
    compile_args_destroy (&args);

    char out [64];
    assert (compile_args_normalise ("/a/b", "../c/./d//e", out, sizeof out) == 0);
    assert (strcmp (out, "/a/c/d/e") == 0);
    assert (compile_args_normalise ("/", "../x", out, sizeof out) == -1);

    assert (compile_args_family ("x86_64-linux-gnu-g++-12") == COMPILE_FAMILY_GCC);
    assert (compile_args_family ("/usr/bin/clang-14") == COMPILE_FAMILY_CLANG);
    assert (!compile_args_is_compiler_name ("meshcc"));

    if (verbose)
        printf ("OK\n");
}
