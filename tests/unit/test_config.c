/* Unit tests: built-in defaults, the config file parser, config_print
 * round trips and the list of setting names (config.h). */
#include <stdlib.h>
#include <unistd.h>

#include "testlib.h"
#include "config.h"

static char tmpdir[64];
static int file_counter;

/* Writes text to a new temp file; returns its path (static buffer per call
 * slot, good for a few at a time). */
static const char *write_conf(const char *text)
{
    static char paths[4][128];
    char *path = paths[file_counter % 4];
    snprintf(path, sizeof paths[0], "%s/c%d.conf", tmpdir, file_counter++);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return NULL;
    fputs(text, f);
    fclose(f);
    return path;
}

static int str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static void check_same_config(const struct config *a, const struct config *b, int line)
{
    int same = a->listen_count == b->listen_count && str_eq(a->spool_dir, b->spool_dir) &&
               str_eq(a->passwd_file, b->passwd_file) && a->idle_timeout == b->idle_timeout &&
               a->min_spare == b->min_spare && a->max_spare == b->max_spare &&
               a->max_children == b->max_children && a->lock_timeout == b->lock_timeout &&
               a->dotlock_stale == b->dotlock_stale && a->mbox_locks == b->mbox_locks &&
               a->uidl_source == b->uidl_source;
    for (size_t i = 0; same && i < a->listen_count; i++)
        same = str_eq(a->listen[i], b->listen[i]);
    if (!same) {
        tl_current_failed = 1;
        printf("  %s:%d: %s: configurations differ\n", __FILE__, line, tl_current);
    }
}
#define CHECK_SAME_CONFIG(a, b) check_same_config((a), (b), __LINE__)

TEST(defaults)
{
    struct config c;
    config_defaults(&c);
    CHECK_EQ(c.listen_count, 2);
    CHECK(c.listen_count == 2 && strcmp(c.listen[0], "0.0.0.0:110") == 0 &&
          strcmp(c.listen[1], "[::]:110") == 0);
    CHECK(c.spool_dir != NULL && strcmp(c.spool_dir, "/var/mail") == 0);
    CHECK(c.passwd_file == NULL);
    CHECK_EQ(c.idle_timeout, 600);     /* RFC 1939: at least 10 minutes */
    CHECK_EQ(c.min_spare, 2);
    CHECK_EQ(c.max_spare, 8);
    CHECK_EQ(c.max_children, 100);
    CHECK_EQ(c.lock_timeout, 30);
    CHECK_EQ(c.dotlock_stale, 120);
    CHECK_EQ(c.mbox_locks, LOCK_KIND_FCNTL | LOCK_KIND_DOTLOCK);
    CHECK_EQ(c.uidl_source, UIDL_SOURCE_POPA3D);
    config_free(&c);
}

TEST(load_every_setting)
{
    const char *path = write_conf(
        "# mboxpop3d test config\n"
        "\n"
        "   \t\n"
        "listen = 127.0.0.1:1110 [::1]:1110   # two of them\n"
        "spool_dir=/tmp/spool\n"
        "  passwd_file   =   /etc/pop.passwd  \n"
        "\tidle_timeout\t=\t700\n"
        "min_spare = 3\n"
        "max_spare = 9\n"
        "max_children = 50\n"
        "lock_timeout = 0\n"
        "dotlock_stale = 60\n"
        "mbox_locks = flock,fcntl\n"
        "uidl_source = x-uidl\n"
        "# the end");
    CHECK(path != NULL);
    if (path == NULL)
        return;
    struct config c;
    config_defaults(&c);
    char err[512] = "";
    int rc = config_load(&c, path, 1, err, sizeof err);
    CHECK_EQ(rc, 0);
    if (rc != 0)
        printf("  error: %s\n", err);
    CHECK_EQ(c.listen_count, 2);
    CHECK(c.listen_count == 2 && strcmp(c.listen[0], "127.0.0.1:1110") == 0 &&
          strcmp(c.listen[1], "[::1]:1110") == 0);
    CHECK(str_eq(c.spool_dir, "/tmp/spool"));
    CHECK(str_eq(c.passwd_file, "/etc/pop.passwd"));
    CHECK_EQ(c.idle_timeout, 700);
    CHECK_EQ(c.min_spare, 3);
    CHECK_EQ(c.max_spare, 9);
    CHECK_EQ(c.max_children, 50);
    CHECK_EQ(c.lock_timeout, 0);
    CHECK_EQ(c.dotlock_stale, 60);
    CHECK_EQ(c.mbox_locks, LOCK_KIND_FLOCK | LOCK_KIND_FCNTL);
    CHECK_EQ(c.uidl_source, UIDL_SOURCE_X_UIDL);
    config_free(&c);
}

TEST(load_applies_on_top_of_current_values)
{
    const char *path = write_conf("idle_timeout = 900\npasswd_file =\n");
    struct config c;
    config_defaults(&c);
    CHECK_EQ(config_set(&c, "passwd_file", "/etc/x", (char[64]){ 0 }, 64), 0);
    char err[512] = "";
    CHECK_EQ(config_load(&c, path, 1, err, sizeof err), 0);
    CHECK_EQ(c.idle_timeout, 900);
    CHECK(c.passwd_file == NULL);               /* empty value: unset */
    CHECK(str_eq(c.spool_dir, "/var/mail"));   /* untouched */
    CHECK_EQ(c.listen_count, 2);
    config_free(&c);
}

TEST(missing_file)
{
    struct config c;
    config_defaults(&c);
    char err[512] = "";
    char path[128];
    snprintf(path, sizeof path, "%s/does-not-exist.conf", tmpdir);
    CHECK_EQ(config_load(&c, path, 0, err, sizeof err), 0);
    CHECK_EQ(c.idle_timeout, 600);
    CHECK_EQ(config_load(&c, path, 1, err, sizeof err), -1);
    CHECK(strstr(err, path) != NULL);
    config_free(&c);
}

/* Loads text whose line `line` is bad; checks "PATH:LINE: " and a reason. */
static void check_error(const char *text, unsigned line, const char *reason, int lineno)
{
    const char *path = write_conf(text);
    struct config c;
    config_defaults(&c);
    char err[512] = "";
    int rc = config_load(&c, path, 1, err, sizeof err);
    char prefix[200];
    snprintf(prefix, sizeof prefix, "%s:%u: ", path, line);
    if (rc != -1 || strncmp(err, prefix, strlen(prefix)) != 0 ||
        strstr(err + strlen(prefix), reason) == NULL) {
        tl_current_failed = 1;
        printf("  %s:%d: %s: rc %d, err \"%s\", expected \"%s...%s...\"\n", __FILE__, lineno,
               tl_current, rc, err, prefix, reason);
    }
    config_free(&c);
}
#define CHECK_ERROR(text, line, reason) check_error((text), (line), (reason), __LINE__)

TEST(errors_name_file_line_and_reason)
{
    CHECK_ERROR("# ok\nidle_timeout = 700\nno_such_key = 1\n", 3, "no_such_key");
    CHECK_ERROR("\n\nspool_dir /var/mail\n", 3, "key = value");
    CHECK_ERROR("idle_timeout = abc\n", 1, "idle_timeout");
    CHECK_ERROR("idle_timeout = 12s\n", 1, "12s");
    CHECK_ERROR("idle_timeout = -5\n", 1, "idle_timeout");
    CHECK_ERROR("max_children = +5\n", 1, "max_children");
    CHECK_ERROR("idle_timeout = 4294967296\n", 1, "idle_timeout");
    CHECK_ERROR("idle_timeout = 99999999999999999999999\n", 1, "idle_timeout");
    CHECK_ERROR("idle_timeout =\n", 1, "idle_timeout");
    CHECK_ERROR("# range\nidle_timeout = 0\n", 2, "from 1 to 86400");
    CHECK_ERROR("idle_timeout = 86401\n", 1, "86400");
    CHECK_ERROR("dotlock_stale = 5\n", 1, "from 10");
    CHECK_ERROR("max_spare = 0\n", 1, "max_spare");
    CHECK_ERROR("lock_timeout = 3601\n", 1, "3600");
    CHECK_ERROR("spool_dir = var/mail\n", 1, "absolute");
    CHECK_ERROR("passwd_file = ./passwd\n", 1, "absolute");
    CHECK_ERROR("listen = localhost\n", 1, "localhost");
    CHECK_ERROR("listen = 0.0.0.0:0\n", 1, "0.0.0.0:0");
    CHECK_ERROR("listen = 0.0.0.0:65536\n", 1, "65536");
    CHECK_ERROR("listen = :110\n", 1, ":110");
    CHECK_ERROR("listen = 127.0.0.1:110 nonsense\n", 1, "nonsense");
    CHECK_ERROR("listen = [::1:110\n", 1, "[::1:110");
    CHECK_ERROR("listen =\n", 1, "listen");
    CHECK_ERROR("listen = a:1 a:2 a:3 a:4 a:5 a:6 a:7 a:8 a:9 a:10 a:11 a:12 a:13 a:14 a:15 "
                "a:16 a:17\n", 1, "16");
    CHECK_ERROR("mbox_locks = fcntl lockf\n", 1, "lockf");
    CHECK_ERROR("mbox_locks =\n", 1, "mbox_locks");
    CHECK_ERROR("Spool_Dir = /var/mail\n", 1, "Spool_Dir");  /* names are exact */

    char *longline = malloc(3000);
    CHECK(longline != NULL);
    if (longline) {
        strcpy(longline, "min_spare = 1\nspool_dir = /");
        size_t n = strlen(longline);
        memset(longline + n, 'x', 2000);
        strcpy(longline + n + 2000, "\n");
        CHECK_ERROR(longline, 2, "long");
        free(longline);
    }
}

/* spool_dir is documented as "an absolute path" with no empty meaning
 * (unlike passwd_file, where empty means system accounts); an empty value
 * would leave it NULL and the session would open "(null)/USER". */
TEST(empty_spool_dir_is_an_error)
{
    CHECK_ERROR("spool_dir =\n", 1, "spool_dir");
    CHECK_ERROR("spool_dir =   # nothing\n", 1, "spool_dir");
    struct config c;
    config_defaults(&c);
    char err[256] = "";
    CHECK_EQ(config_set(&c, "spool_dir", "", err, sizeof err), -1);
    CHECK(c.spool_dir != NULL);
    /* passwd_file may be empty: system accounts */
    CHECK_EQ(config_set(&c, "passwd_file", "", err, sizeof err), 0);
    CHECK(c.passwd_file == NULL);
    config_free(&c);
}

TEST(load_buffer_from_memory)
{
    struct config c;
    config_defaults(&c);
    char err[512] = "";
    static const char text[] = "# from memory\nidle_timeout = 42\nmbox_locks = flock";
    CHECK_EQ(config_load_buffer(&c, text, sizeof text - 1, "mem", err, sizeof err), 0);
    CHECK_EQ(c.idle_timeout, 42);
    CHECK_EQ(c.mbox_locks, LOCK_KIND_FLOCK);
    CHECK_EQ(config_load_buffer(&c, "", 0, "mem", err, sizeof err), 0);
    CHECK_EQ(c.idle_timeout, 42);
    /* only len bytes are read */
    CHECK_EQ(config_load_buffer(&c, "min_spare = 7bogus", 13, "mem", err, sizeof err), 0);
    CHECK_EQ(c.min_spare, 7);
    /* errors carry NAME:LINE: */
    static const char bad[] = "\nmin_spare = 1\nnope\n";
    CHECK_EQ(config_load_buffer(&c, bad, sizeof bad - 1, "mem", err, sizeof err), -1);
    CHECK(strncmp(err, "mem:3: ", 7) == 0);
    /* a NUL byte inside a line is refused, not silently cut */
    static const char nul[] = "spool_dir = /var/mail\0/x\n";
    CHECK_EQ(config_load_buffer(&c, nul, sizeof nul - 1, "mem", err, sizeof err), -1);
    CHECK(strncmp(err, "mem:1: ", 7) == 0);
    config_free(&c);
}

TEST(error_stops_at_first_bad_line)
{
    const char *path = write_conf("idle_timeout = 700\nbogus = 1\nmin_spare = 5\nworse\n");
    struct config c;
    config_defaults(&c);
    char err[512] = "";
    CHECK_EQ(config_load(&c, path, 1, err, sizeof err), -1);
    char prefix[200];
    snprintf(prefix, sizeof prefix, "%s:2: ", path);
    CHECK(strncmp(err, prefix, strlen(prefix)) == 0);
    config_free(&c);
}

static char *print_to_string(const struct config *c, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    if (f == NULL)
        return NULL;
    config_print(c, f);
    fclose(f);
    return text;
}

static void check_round_trip(const struct config *c, int lineno)
{
    size_t len = 0;
    char *text = print_to_string(c, &len);
    if (text == NULL) {
        tl_current_failed = 1;
        return;
    }
    const char *path = write_conf(text);
    struct config back;
    config_defaults(&back);
    /* start from different values, so the reload must set everything */
    char err[512] = "";
    config_set(&back, "idle_timeout", "1", err, sizeof err);
    config_set(&back, "spool_dir", "/elsewhere", err, sizeof err);
    config_set(&back, "passwd_file", "/some/file", err, sizeof err);
    config_set(&back, "mbox_locks", "flock", err, sizeof err);
    config_set(&back, "listen", "1.2.3.4:5", err, sizeof err);
    config_set(&back, "uidl_source", c->uidl_source == UIDL_SOURCE_X_UIDL ? "popa3d" : "x-uidl",
               err, sizeof err);
    int rc = config_load(&back, path, 1, err, sizeof err);
    if (rc != 0) {
        tl_current_failed = 1;
        printf("  %s:%d: %s: reload failed: %s\n  text:\n%s", __FILE__, lineno, tl_current, err,
               text);
    }
    check_same_config(c, &back, lineno);
    config_free(&back);
    free(text);
}

TEST(print_reloads_to_same_values)
{
    struct config c;
    config_defaults(&c);
    check_round_trip(&c, __LINE__);

    char err[512] = "";
    CHECK_EQ(config_set(&c, "listen", "127.0.0.1:2110, [::1]:2110 10.0.0.1:110", err, sizeof err),
             0);
    CHECK_EQ(config_set(&c, "spool_dir", "/srv/mail", err, sizeof err), 0);
    CHECK_EQ(config_set(&c, "passwd_file", "/etc/mboxpop3d.passwd", err, sizeof err), 0);
    CHECK_EQ(config_set(&c, "idle_timeout", "1200", err, sizeof err), 0);
    CHECK_EQ(config_set(&c, "min_spare", "0", err, sizeof err), 0);
    CHECK_EQ(config_set(&c, "max_spare", "1000", err, sizeof err), 0);
    CHECK_EQ(config_set(&c, "max_children", "100000", err, sizeof err), 0);
    CHECK_EQ(config_set(&c, "lock_timeout", "3600", err, sizeof err), 0);
    CHECK_EQ(config_set(&c, "dotlock_stale", "10", err, sizeof err), 0);
    CHECK_EQ(config_set(&c, "mbox_locks", "dotlock flock fcntl", err, sizeof err), 0);
    CHECK_EQ(c.listen_count, 3);
    check_round_trip(&c, __LINE__);

    CHECK_EQ(config_set(&c, "mbox_locks", "dotlock", err, sizeof err), 0);
    check_round_trip(&c, __LINE__);
    config_free(&c);
}

TEST(print_names_every_setting)
{
    struct config c;
    config_defaults(&c);
    size_t len = 0;
    char *text = print_to_string(&c, &len);
    CHECK(text != NULL);
    for (size_t i = 0; text && config_setting_name(i) != NULL; i++) {
        char want[100];
        snprintf(want, sizeof want, "%s = ", config_setting_name(i));
        int at_line_start = strncmp(text, want, strlen(want)) == 0;
        char nl_want[102];
        snprintf(nl_want, sizeof nl_want, "\n%s", want);
        CHECK(at_line_start || strstr(text, nl_want) != NULL);
    }
    free(text);
    config_free(&c);
}

TEST(setting_names_enumerate_all)
{
    static const char *want[] = { "listen", "spool_dir", "passwd_file", "idle_timeout",
                                  "min_spare", "max_spare", "max_children", "lock_timeout",
                                  "dotlock_stale", "mbox_locks", "uidl_source" };
    size_t n = 0;
    while (config_setting_name(n) != NULL && n < 1000)
        n++;
    CHECK(n >= sizeof want / sizeof want[0]);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int found = 0;
        for (size_t j = 0; j < n; j++)
            found += strcmp(config_setting_name(j), want[i]) == 0;
        if (found != 1)
            printf("  %s found %d times\n", want[i], found);
        CHECK_EQ(found, 1);
    }
    /* no name twice */
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            CHECK(strcmp(config_setting_name(i), config_setting_name(j)) != 0);
    CHECK(config_setting_name(n) == NULL);
    CHECK(config_setting_name(n + 1) == NULL);
    CHECK(config_setting_name((size_t)-1) == NULL);
    /* every name is accepted by config_set */
    struct config c;
    config_defaults(&c);
    for (size_t j = 0; j < n; j++) {
        char err[256] = "";
        config_set(&c, config_setting_name(j), "", err, sizeof err);
        CHECK(strstr(err, "unknown setting") == NULL);
    }
    config_free(&c);
}

TEST(uidl_source_setting)
{
    struct config c;
    config_defaults(&c);
    CHECK_EQ(c.uidl_source, UIDL_SOURCE_POPA3D);
    char err[256] = "";
    CHECK_EQ(config_set(&c, "uidl_source", "x-uidl", err, sizeof err), 0);
    CHECK_EQ(c.uidl_source, UIDL_SOURCE_X_UIDL);
    check_round_trip(&c, __LINE__);
    CHECK_EQ(config_set(&c, "uidl_source", "popa3d", err, sizeof err), 0);
    CHECK_EQ(c.uidl_source, UIDL_SOURCE_POPA3D);
    CHECK_EQ(config_set(&c, "uidl_source", "X-UIDL", err, sizeof err), -1);
    CHECK_EQ(config_set(&c, "uidl_source", "", err, sizeof err), -1);
    CHECK_EQ(c.uidl_source, UIDL_SOURCE_POPA3D);
    config_free(&c);
    CHECK_ERROR("uidl_source = md5\n", 1, "md5");
}

/* The documented interface: every name appears in the man page and the
 * example config (config.h), when those are present in the tree. */
TEST(setting_names_are_documented)
{
    static const char *docs[] = { "man/mboxpop3d.conf.5", "etc/mboxpop3d.conf" };
    int checked = 0;
    for (size_t d = 0; d < 2; d++) {
        FILE *f = fopen(docs[d], "r");
        if (f == NULL)
            continue;
        checked++;
        char *text = NULL;
        size_t cap = 0;
        ssize_t n = getdelim(&text, &cap, '\0', f);
        fclose(f);
        for (size_t i = 0; n > 0 && config_setting_name(i) != NULL; i++) {
            const char *name = config_setting_name(i);
            if (strstr(text, name) == NULL) {
                tl_current_failed = 1;
                printf("  %s does not mention %s\n", docs[d], name);
            }
        }
        free(text);
    }
    if (checked == 0)
        SKIP("man/mboxpop3d.conf.5 and etc/mboxpop3d.conf not in the tree yet");
}

int main(void)
{
    if (tl_make_tmpdir(tmpdir, "config") != 0)
        return 1;
    RUN(defaults);
    RUN(load_every_setting);
    RUN(load_applies_on_top_of_current_values);
    RUN(missing_file);
    RUN(errors_name_file_line_and_reason);
    RUN(empty_spool_dir_is_an_error);
    RUN(load_buffer_from_memory);
    RUN(error_stops_at_first_bad_line);
    RUN(print_reloads_to_same_values);
    RUN(print_names_every_setting);
    RUN(setting_names_enumerate_all);
    RUN(uidl_source_setting);
    RUN(setting_names_are_documented);
    tl_remove_tmpdir(tmpdir);
    return test_report();
}
