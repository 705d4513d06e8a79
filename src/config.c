/* config.c - the settings table, the config file parser, and -t output. */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "proxy.h"
#include "util.h"

enum setting_type { SET_STRING, SET_PATH, SET_SECONDS, SET_COUNT, SET_LISTEN, SET_LOCKS,
                    SET_UIDL_SOURCE, SET_CIDRS, SET_BOOL, SET_WORDS };

struct setting {
    const char *name;
    enum setting_type type;
    size_t offset;
    const char *default_value;   /* text, parsed like a file line */
    unsigned min, max;           /* for numbers */
};

#define FIELD(f) offsetof(struct config, f)

/*
 * Every setting, once.  The man page (mboxpop3d.conf.5) and the example
 * config (etc/mboxpop3d.conf) document exactly these names; a test checks.
 */
static const struct setting settings[] = {
    { "listen", SET_LISTEN, 0, "0.0.0.0:110 [::]:110", 0, 0 },
    { "spool_dir", SET_PATH, FIELD(spool_dir), "/var/mail", 0, 0 },
    { "passwd_file", SET_PATH, FIELD(passwd_file), "", 0, 0 },
    /* RFC 1939 section 3: an autologout timer MUST be at least 10 minutes;
     * lower values are allowed for tests and are documented as such. */
    { "idle_timeout", SET_SECONDS, FIELD(idle_timeout), "600", 1, 86400 },
    { "min_spare", SET_COUNT, FIELD(min_spare), "2", 0, 1000 },
    { "max_spare", SET_COUNT, FIELD(max_spare), "8", 1, 1000 },
    { "max_children", SET_COUNT, FIELD(max_children), "100", 1, 100000 },
    { "max_per_ip", SET_COUNT, FIELD(max_per_ip), "10", 0, 100000 },
    { "max_session_time", SET_SECONDS, FIELD(max_session_time), "7200", 0, 604800 },
    { "lock_timeout", SET_SECONDS, FIELD(lock_timeout), "30", 0, 3600 },
    { "dotlock_stale", SET_SECONDS, FIELD(dotlock_stale), "120", 10, 86400 },
    { "mbox_locks", SET_LOCKS, FIELD(mbox_locks), "fcntl dotlock", 0, 0 },
    { "uidl_source", SET_UIDL_SOURCE, FIELD(uidl_source), "popa3d", 0, 0 },
    { "preauth_user", SET_STRING, FIELD(preauth_user), "mboxpop3d", 0, 0 },
    { "empty_dir", SET_PATH, FIELD(empty_dir), "/run/mboxpop3d/empty", 0, 0 },
    { "proxy_trusted", SET_CIDRS, FIELD(proxy_trusted), "", 0, 0 },
    { "min_uid", SET_COUNT, FIELD(min_uid), "1000", 1, 4294967294u },
    { "deny_users", SET_WORDS, FIELD(deny_users), "", 0, 0 },
    { "apop_secrets", SET_PATH, FIELD(apop_secrets), "", 0, 0 },
    { "refuse_expired_passwords", SET_BOOL, FIELD(refuse_expired_passwords), "no", 0, 1 },
    { "require_valid_shell", SET_BOOL, FIELD(require_valid_shell), "no", 0, 1 },
    { "auth_fail_delay", SET_SECONDS, FIELD(auth_fail_delay), "2", 0, 60 },
    { "max_auth_failures", SET_COUNT, FIELD(max_auth_failures), "3", 1, 100 },
    { "ip_auth_failures", SET_COUNT, FIELD(ip_auth_failures), "10", 0, 100000 },
    { "ip_auth_window", SET_SECONDS, FIELD(ip_auth_window), "300", 1, 86400 },
    { "ip_auth_block", SET_SECONDS, FIELD(ip_auth_block), "600", 1, 86400 },
    { "login_delay", SET_SECONDS, FIELD(login_delay), "0", 0, 86400 },
    { "pid_file", SET_PATH, FIELD(pid_file), "/run/mboxpop3d.pid", 0, 0 },
};

#define N_SETTINGS (sizeof settings / sizeof settings[0])

const char *config_setting_name(size_t i)
{
    return i < N_SETTINGS ? settings[i].name : NULL;
}

static const struct setting *find_setting(const char *name)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strcmp(settings[i].name, name) == 0)
            return &settings[i];
    return NULL;
}

static void clear_listen(struct config *cfg)
{
    for (size_t i = 0; i < cfg->listen_count; i++)
        free(cfg->listen[i]);
    cfg->listen_count = 0;
}

/* "ADDR:PORT" or "[V6ADDR]:PORT" with a port of 1..65535. */
static int check_listen_word(const char *word, char *err, size_t errlen)
{
    const char *colon = strrchr(word, ':');
    uint64_t port;
    if (colon == NULL || colon == word || parse_uint_str(colon + 1, 65535, &port) != 0 || port == 0) {
        snprintf(err, errlen, "'%s' is not ADDRESS:PORT (e.g. 0.0.0.0:110 or [::]:110)", word);
        return -1;
    }
    if (word[0] == '[' && colon[-1] != ']') {
        snprintf(err, errlen, "'%s': an IPv6 address goes in brackets, [::1]:110", word);
        return -1;
    }
    return 0;
}

static int set_listen(struct config *cfg, const char *value, char *err, size_t errlen)
{
    char *copy = strdup(value);
    if (copy == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char *words[CONFIG_MAX_LISTEN];
    size_t n = 0;
    int rc = 0;
    for (char *save = NULL, *w = strtok_r(copy, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save)) {
        if (n == CONFIG_MAX_LISTEN) {
            snprintf(err, errlen, "more than %d listen addresses", CONFIG_MAX_LISTEN);
            rc = -1;
            break;
        }
        if (check_listen_word(w, err, errlen) != 0) {
            rc = -1;
            break;
        }
        words[n++] = w;
    }
    if (rc == 0 && n == 0) {
        snprintf(err, errlen, "listen needs at least one ADDRESS:PORT");
        rc = -1;
    }
    if (rc == 0) {
        clear_listen(cfg);
        for (size_t i = 0; i < n && rc == 0; i++) {
            cfg->listen[i] = strdup(words[i]);
            if (cfg->listen[i] == NULL) {
                snprintf(err, errlen, "out of memory");
                rc = -1;
            } else {
                cfg->listen_count = i + 1;
            }
        }
    }
    free(copy);
    return rc;
}

static int set_locks(unsigned *out, const char *value, char *err, size_t errlen)
{
    char copy[CONFIG_MAX_LINE];
    if (strlcpy_checked(copy, value, sizeof copy) != 0) {
        snprintf(err, errlen, "value too long");
        return -1;
    }
    unsigned kinds = 0;
    for (char *save = NULL, *w = strtok_r(copy, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save)) {
        if (strcmp(w, "fcntl") == 0)
            kinds |= LOCK_KIND_FCNTL;
        else if (strcmp(w, "dotlock") == 0)
            kinds |= LOCK_KIND_DOTLOCK;
        else if (strcmp(w, "flock") == 0)
            kinds |= LOCK_KIND_FLOCK;
        else {
            snprintf(err, errlen, "unknown lock kind '%s' (use fcntl, dotlock, flock)", w);
            return -1;
        }
    }
    if (kinds == 0) {
        snprintf(err, errlen, "mbox_locks needs at least one of fcntl, dotlock, flock");
        return -1;
    }
    *out = kinds;
    return 0;
}

int config_set(struct config *cfg, const char *key, const char *value, char *err, size_t errlen)
{
    const struct setting *s = find_setting(key);
    if (s == NULL) {
        snprintf(err, errlen, "unknown setting '%s'", key);
        return -1;
    }
    char *field = (char *)cfg + s->offset;
    switch (s->type) {
    case SET_LISTEN:
        return set_listen(cfg, value, err, errlen);
    case SET_LOCKS:
        return set_locks((unsigned *)(void *)field, value, err, errlen);
    case SET_CIDRS: {
        char why[160];
        if (cidr_list_check(value, why, sizeof why) != 0) {
            snprintf(err, errlen, "%s: %s", key, why);
            return -1;
        }
        char *copy = value[0] ? strdup(value) : NULL;
        if (value[0] && copy == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        char **slot = (char **)(void *)field;
        free(*slot);
        *slot = copy;
        return 0;
    }
    case SET_BOOL:
        if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0) {
            snprintf(err, errlen, "%s is yes or no, not '%s'", key, value);
            return -1;
        }
        *(unsigned *)(void *)field = value[0] == 'y';
        return 0;
    case SET_UIDL_SOURCE:
        if (strcmp(value, "popa3d") != 0 && strcmp(value, "x-uidl") != 0) {
            snprintf(err, errlen, "uidl_source is popa3d or x-uidl, not '%s'", value);
            return -1;
        }
        *(unsigned *)(void *)field = value[0] == 'x' ? UIDL_SOURCE_X_UIDL : UIDL_SOURCE_POPA3D;
        return 0;
    case SET_STRING:
    case SET_WORDS:
    case SET_PATH: {
        if (value[0] == '\0' && s->type != SET_WORDS && s->offset != FIELD(passwd_file) &&
            s->offset != FIELD(pid_file) && s->offset != FIELD(apop_secrets)) {
            snprintf(err, errlen, "%s needs a value", key);
            return -1;
        }
        if (s->type == SET_PATH && value[0] != '\0' && value[0] != '/') {
            snprintf(err, errlen, "%s must be an absolute path, not '%s'", key, value);
            return -1;
        }
        char *copy = NULL;
        if (value[0] != '\0' && (copy = strdup(value)) == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        char **slot = (char **)(void *)field;
        free(*slot);
        *slot = copy;
        return 0;
    }
    case SET_SECONDS:
    case SET_COUNT: {
        uint64_t n;
        if (parse_uint_str(value, UINT32_MAX, &n) != 0 || n < s->min || n > s->max) {
            snprintf(err, errlen, "%s must be a whole number from %u to %u%s, not '%s'", key,
                     s->min, s->max, s->type == SET_SECONDS ? " (seconds)" : "", value);
            return -1;
        }
        *(unsigned *)(void *)field = (unsigned)n;
        return 0;
    }
    }
    snprintf(err, errlen, "internal error: setting type");
    return -1;
}

void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    char err[256];
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (config_set(cfg, settings[i].name, settings[i].default_value, err, sizeof err) != 0) {
            fprintf(stderr, "mboxpop3d: built-in default: %s\n", err);
            abort();   /* a bug in the table above, caught by every test */
        }
}

void config_free(struct config *cfg)
{
    clear_listen(cfg);
    free(cfg->spool_dir);
    free(cfg->passwd_file);
    free(cfg->preauth_user);
    free(cfg->empty_dir);
    free(cfg->proxy_trusted);
    free(cfg->deny_users);
    free(cfg->apop_secrets);
    free(cfg->pid_file);
    memset(cfg, 0, sizeof *cfg);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* One line: blank, "# comment", or "key = value" (value may be empty). */
static int parse_line(struct config *cfg, char *line, char *err, size_t errlen)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    char *text = trim(line);
    if (*text == '\0')
        return 0;
    char *eq = strchr(text, '=');
    if (eq == NULL) {
        snprintf(err, errlen, "expected 'key = value', got '%.60s'", text);
        return -1;
    }
    *eq = '\0';
    return config_set(cfg, trim(text), trim(eq + 1), err, errlen);
}

/* Reads "key = value" lines from f; errors name the file and line. */
static int load_stream(struct config *cfg, FILE *f, const char *path, char *err, size_t errlen)
{
    char *line = NULL, why[512];
    size_t cap = 0;
    unsigned lineno = 0;
    int rc = 0;
    ssize_t len;
    errno = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len > CONFIG_MAX_LINE) {
            snprintf(err, errlen, "%s:%u: line longer than %d characters", path, lineno, CONFIG_MAX_LINE);
            rc = -1;
        } else if (strlen(line) != (size_t)len) {
            snprintf(err, errlen, "%s:%u: NUL byte in line", path, lineno);
            rc = -1;
        } else if (parse_line(cfg, line, why, sizeof why) != 0) {
            snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
            rc = -1;
        }
    }
    free(line);
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
        rc = -1;
    }
    return rc;
}

int config_load(struct config *cfg, const char *path, int must_exist, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        if (errno == ENOENT && !must_exist)
            return 0;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    int rc = load_stream(cfg, f, path, err, errlen);
    fclose(f);
    return rc;
}

int config_load_buffer(struct config *cfg, const char *text, size_t len, const char *name,
                       char *err, size_t errlen)
{
    if (len == 0)
        return 0;
    FILE *f = fmemopen((void *)text, len, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", name, strerror(errno));
        return -1;
    }
    int rc = load_stream(cfg, f, name, err, errlen);
    fclose(f);
    return rc;
}

static void print_locks(unsigned kinds, FILE *out)
{
    const char *sep = "";
    if (kinds & LOCK_KIND_FCNTL) {
        fprintf(out, "%sfcntl", sep);
        sep = " ";
    }
    if (kinds & LOCK_KIND_DOTLOCK) {
        fprintf(out, "%sdotlock", sep);
        sep = " ";
    }
    if (kinds & LOCK_KIND_FLOCK)
        fprintf(out, "%sflock", sep);
}

void config_print(const struct config *cfg, FILE *out)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const struct setting *s = &settings[i];
        const char *field = (const char *)cfg + s->offset;
        fprintf(out, "%s = ", s->name);
        switch (s->type) {
        case SET_LISTEN:
            for (size_t j = 0; j < cfg->listen_count; j++)
                fprintf(out, "%s%s", j ? " " : "", cfg->listen[j]);
            break;
        case SET_LOCKS:
            print_locks(*(const unsigned *)(const void *)field, out);
            break;
        case SET_UIDL_SOURCE:
            fputs(*(const unsigned *)(const void *)field == UIDL_SOURCE_X_UIDL ? "x-uidl" : "popa3d",
                  out);
            break;
        case SET_STRING:
        case SET_CIDRS:
        case SET_WORDS:
        case SET_PATH: {
            const char *v = *(char *const *)(const void *)field;
            fputs(v ? v : "", out);
            break;
        }
        case SET_SECONDS:
        case SET_COUNT:
            fprintf(out, "%u", *(const unsigned *)(const void *)field);
            break;
        case SET_BOOL:
            fputs(*(const unsigned *)(const void *)field ? "yes" : "no", out);
            break;
        }
        fputc('\n', out);
    }
}
