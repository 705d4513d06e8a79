/*
 * Unit test: the documentation does not drift from the code.
 *
 *   - every setting of config.c's table has its entry in the SETTINGS
 *     section of man/mboxpop3d.conf.5, its commented default line in
 *     etc/mboxpop3d.conf and its row in README.md's table of settings, in
 *     the table's order, with the built-in default; and those documents
 *     name no setting that does not exist;
 *   - every option letter of main.c's getopt string has its entry in the
 *     OPTIONS section of man/mboxpop3d.8, its line in the usage text of
 *     mboxpop3d -h (with an argument exactly when getopt takes one) and
 *     its row in README.md's table of options; and none of them lists an
 *     option that does not exist.
 *
 * main.c is compiled in here (its main renamed) for its option_letters
 * and usage().  Run from the top of the tree, as make unit does.
 */
#define main mboxpop3d_main
#include "../../src/main.c"
#undef main

#include "testlib.h"

#define MAX_NAMES 100

struct names {
    size_t n;
    char name[MAX_NAMES][64];
    char value[MAX_NAMES][128];
};

static void add_name(struct names *ns, const char *name, size_t len, const char *value,
                     size_t vlen)
{
    if (ns->n == MAX_NAMES || len >= sizeof ns->name[0] || vlen >= sizeof ns->value[0])
        return;
    memcpy(ns->name[ns->n], name, len);
    ns->name[ns->n][len] = '\0';
    memcpy(ns->value[ns->n], value, vlen);
    ns->value[ns->n][vlen] = '\0';
    ns->n++;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char *text = NULL;
    size_t cap = 0;
    if (getdelim(&text, &cap, '\0', f) < 0) {
        free(text);
        text = NULL;
    }
    fclose(f);
    return text;
}

/* The next line of *p (without its newline) into line; 0 at the end. */
static int next_line(const char **p, char *line, size_t size)
{
    if (**p == '\0')
        return 0;
    const char *nl = strchr(*p, '\n');
    size_t len = nl ? (size_t)(nl - *p) : strlen(*p);
    size_t keep = len < size - 1 ? len : size - 1;
    memcpy(line, *p, keep);
    line[keep] = '\0';
    *p += len + (nl != NULL);
    return 1;
}

/* The settings as config_print shows the defaults: name and value. */
static void built_in(struct names *ns)
{
    struct config c;
    config_defaults(&c);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL)
        return;
    config_print(&c, f);
    fclose(f);
    config_free(&c);
    const char *p = text;
    char line[1100];
    while (next_line(&p, line, sizeof line)) {
        const char *eq = strstr(line, " = ");
        if (eq)
            add_name(ns, line, (size_t)(eq - line), eq + 3, strlen(eq + 3));
    }
    free(text);
}

/* Lists must hold the same names, and (if value_what) the same values;
 * if ordered, in the same order as well. */
static void compare(const char *what, const struct names *want, const struct names *got,
                    const char *value_what, int ordered)
{
    int missing = 0;
    for (size_t i = 0; i < want->n; i++) {
        size_t j = 0;
        while (j < got->n && strcmp(got->name[j], want->name[i]) != 0)
            j++;
        if (j == got->n) {
            tl_current_failed = 1;
            missing++;
            printf("  %s does not document %s\n", what, want->name[i]);
        } else if (value_what && strcmp(got->value[j], want->value[i]) != 0) {
            tl_current_failed = 1;
            printf("  %s: the %s of %s is \"%s\", but the daemon's is \"%s\"\n", what,
                   value_what, want->name[i], got->value[j], want->value[i]);
        }
    }
    for (size_t j = 0; j < got->n; j++) {
        size_t i = 0;
        while (i < want->n && strcmp(got->name[j], want->name[i]) != 0)
            i++;
        if (i == want->n) {
            tl_current_failed = 1;
            missing++;
            printf("  %s documents %s, which does not exist\n", what, got->name[j]);
        }
    }
    for (size_t i = 0; ordered && !missing && i < want->n && i < got->n; i++)
        if (strcmp(got->name[i], want->name[i]) != 0) {
            tl_current_failed = 1;
            printf("  %s: entry %zu is %s, but config.c's table has %s there\n", what, i + 1,
                   got->name[i], want->name[i]);
            break;
        }
}

/* The text of a man page section, from ".SH NAME" to the next ".SH". */
static const char *man_section(const char *text, const char *name, size_t *len)
{
    char head[64];
    snprintf(head, sizeof head, "\n.SH %s\n", name);
    const char *start = strstr(text, head);
    if (start == NULL)
        return NULL;
    start += strlen(head);
    const char *end = strstr(start, "\n.SH ");
    *len = end ? (size_t)(end - start) : strlen(start);
    return start;
}

TEST(settings_in_man_page)
{
    struct names want = { 0 }, got = { 0 };
    built_in(&want);
    CHECK(want.n > 20);
    char *text = slurp("man/mboxpop3d.conf.5");
    CHECK(text != NULL);
    size_t len = 0;
    const char *sec = text ? man_section(text, "SETTINGS", &len) : NULL;
    CHECK(sec != NULL);
    if (sec == NULL) {
        free(text);
        return;
    }
    /* Each entry: ".TP" then ".B name". */
    char *copy = strndup(sec, len);
    const char *p = copy;
    char line[1100], prev[1100] = "";
    while (next_line(&p, line, sizeof line)) {
        if (strcmp(prev, ".TP") == 0 && strncmp(line, ".B ", 3) == 0)
            add_name(&got, line + 3, strlen(line + 3), "", 0);
        snprintf(prev, sizeof prev, "%s", line);
    }
    compare("man/mboxpop3d.conf.5 (SETTINGS)", &want, &got, NULL, 1);
    free(copy);
    free(text);
}

TEST(settings_in_example_config)
{
    struct names want = { 0 }, got = { 0 };
    built_in(&want);
    char *text = slurp("etc/mboxpop3d.conf");
    CHECK(text != NULL);
    const char *p = text ? text : "";
    char line[1100];
    /* "# name = default", a commented default, for every setting */
    while (next_line(&p, line, sizeof line)) {
        size_t n = strspn(line + 2, "abcdefghijklmnopqrstuvwxyz_");
        if (strncmp(line, "# ", 2) == 0 && n > 0 && strncmp(line + 2 + n, " =", 2) == 0) {
            const char *v = line + 2 + n + 2;
            v += *v == ' ';
            add_name(&got, line + 2, n, v, strlen(v));
        }
    }
    compare("etc/mboxpop3d.conf", &want, &got, "default", 1);
    free(text);
}

TEST(settings_in_readme)
{
    struct names want = { 0 }, got = { 0 };
    built_in(&want);
    char *text = slurp("README.md");
    CHECK(text != NULL);
    const char *table = text ? strstr(text, "\n| setting | default | what it is |\n") : NULL;
    CHECK(table != NULL);
    if (table == NULL) {
        free(text);
        return;
    }
    const char *p = table + 1;
    char line[2000];
    next_line(&p, line, sizeof line);           /* the header */
    next_line(&p, line, sizeof line);           /* |---|---|---| */
    /* | `name` | `default` or empty | ... | */
    while (next_line(&p, line, sizeof line) && line[0] == '|') {
        char *name = strchr(line, '`');
        char *name_end = name ? strchr(name + 1, '`') : NULL;
        char *cell = name_end ? strchr(name_end, '|') : NULL;
        if (cell == NULL) {
            tl_current_failed = 1;
            printf("  README.md: a settings row out of format: %s\n", line);
            continue;
        }
        cell++;
        while (*cell == ' ')
            cell++;
        const char *v = "";
        size_t vlen = 0;
        if (*cell == '`') {
            v = cell + 1;
            vlen = strcspn(v, "`");
        } else if (strncmp(cell, "empty ", 6) != 0) {
            v = cell;
            vlen = strcspn(v, " |");
        }
        add_name(&got, name + 1, (size_t)(name_end - name - 1), v, vlen);
    }
    compare("README.md (settings table)", &want, &got, "default", 1);
    free(text);
}

/* getopt's letters, each marked ':' when it takes an argument. */
static void option_names(struct names *ns)
{
    for (const char *o = option_letters; *o; o++) {
        if (*o == ':')
            continue;
        add_name(ns, o, 1, o[1] == ':' ? ":" : "", o[1] == ':');
    }
}

TEST(options_in_man_page)
{
    struct names want = { 0 }, got = { 0 };
    option_names(&want);
    CHECK(want.n >= 9);
    char *text = slurp("man/mboxpop3d.8");
    CHECK(text != NULL);
    size_t len = 0;
    const char *sec = text ? man_section(text, "OPTIONS", &len) : NULL;
    CHECK(sec != NULL);
    if (sec == NULL) {
        free(text);
        return;
    }
    /* ".TP", then ".B \-X" or ".BI \-X " arg" for one that takes an argument */
    char *copy = strndup(sec, len);
    const char *p = copy;
    char line[1100], prev[1100] = "";
    while (next_line(&p, line, sizeof line)) {
        if (strcmp(prev, ".TP") == 0) {
            if (strncmp(line, ".B \\-", 5) == 0 && line[6] == '\0')
                add_name(&got, line + 5, 1, "", 0);
            else if (strncmp(line, ".BI \\-", 6) == 0 && line[7] == ' ')
                add_name(&got, line + 6, 1, ":", 1);
            else if (strncmp(line, ".B", 2) == 0 && strstr(line, "\\-")) {
                tl_current_failed = 1;
                printf("  man/mboxpop3d.8: an OPTIONS entry out of format: %s\n", line);
            }
        }
        snprintf(prev, sizeof prev, "%s", line);
    }
    compare("man/mboxpop3d.8 (OPTIONS)", &want, &got, "argument (\":\": takes one)", 0);
    free(copy);
    free(text);
}

TEST(options_in_usage)
{
    struct names want = { 0 }, got = { 0 };
    option_names(&want);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(f != NULL);
    if (f == NULL)
        return;
    usage(f);
    fclose(f);
    CHECK(strncmp(text, "usage: mboxpop3d ", 17) == 0);
    /* "  -X            text" or "  -X WORD       text" */
    const char *p = text;
    char line[1100];
    while (next_line(&p, line, sizeof line))
        if (strncmp(line, "  -", 3) == 0 && line[3] != '\0') {
            int arg = line[4] == ' ' && line[5] >= 'A' && line[5] <= 'Z';
            add_name(&got, line + 3, 1, arg ? ":" : "", arg);
        }
    compare("mboxpop3d -h", &want, &got, "argument (\":\": takes one)", 0);
    free(text);
}

TEST(options_in_readme)
{
    struct names want = { 0 }, got = { 0 };
    option_names(&want);
    char *text = slurp("README.md");
    CHECK(text != NULL);
    const char *table = text ? strstr(text, "\n| option | |\n") : NULL;
    CHECK(table != NULL);
    if (table == NULL) {
        free(text);
        return;
    }
    const char *p = table + 1;
    char line[2000];
    next_line(&p, line, sizeof line);
    next_line(&p, line, sizeof line);
    /* | `-X` | ..., | `-X WORD` | ..., | `-X` / `-Y` | ... */
    while (next_line(&p, line, sizeof line) && line[0] == '|') {
        char *end = strchr(line + 1, '|');
        if (end)
            *end = '\0';
        for (char *q = strstr(line, "`-"); q; q = strstr(q + 2, "`-")) {
            int arg = q[3] == ' ';
            add_name(&got, q + 2, 1, arg ? ":" : "", arg);
        }
    }
    compare("README.md (options table)", &want, &got, "argument (\":\": takes one)", 0);
    free(text);
}

int main(void)
{
    RUN(settings_in_man_page);
    RUN(settings_in_example_config);
    RUN(settings_in_readme);
    RUN(options_in_man_page);
    RUN(options_in_usage);
    RUN(options_in_readme);
    return test_report();
}
