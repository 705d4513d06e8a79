/*
 * config.h - the daemon's settings: one table of every setting with its
 * built-in default, parsed from /etc/mboxpop3d.conf ("key = value" lines,
 * '#' comments).  No file is needed: the defaults make a working server.
 *
 * Contract: config_defaults() fills every field; config_load() applies a
 * file on top and reports the first bad line as "FILE:LINE: reason" in
 * err (the caller refuses to start).  config_set() is the single place a
 * value is checked, used by the file parser and by the command line.
 * The setting names are the documented interface (man page, example
 * config): tests compare config_setting_name() with both.
 */
#ifndef MBOXPOP3D_CONFIG_H
#define MBOXPOP3D_CONFIG_H

#include <stdio.h>
#include <stddef.h>

#define CONFIG_DEFAULT_PATH "/etc/mboxpop3d.conf"
#define CONFIG_MAX_LISTEN 16
#define CONFIG_MAX_LINE 1024

/* Lock kinds for mbox_locks (a bit set). */
enum {
    LOCK_KIND_FCNTL = 1 << 0,
    LOCK_KIND_DOTLOCK = 1 << 1,
    LOCK_KIND_FLOCK = 1 << 2,
};

enum { UIDL_SOURCE_POPA3D = 0, UIDL_SOURCE_X_UIDL = 1 };

struct config {
    char *listen[CONFIG_MAX_LISTEN];  /* "ADDR:PORT", "[V6]:PORT" */
    size_t listen_count;
    char *spool_dir;                  /* the mailbox is spool_dir/USER */
    char *passwd_file;                /* NULL: system accounts */
    unsigned idle_timeout;            /* seconds, both states */
    unsigned min_spare;               /* idle pre-forked workers kept */
    unsigned max_spare;               /* idle workers above this retire */
    unsigned max_children;            /* workers in all */
    unsigned max_per_ip;              /* connections per address (/64), 0: any */
    unsigned max_session_time;        /* seconds from connect, 0: no cap */
    unsigned min_uid;                 /* lower uids may not log in */
    char *deny_users;                 /* names that may not log in */
    char *apop_secrets;               /* APOP "user:secret" file; NULL: no APOP */
    unsigned refuse_expired_passwords;/* bool */
    unsigned require_valid_shell;     /* bool: shell listed in /etc/shells */
    unsigned auth_fail_delay;         /* seconds before a failed login's -ERR */
    unsigned max_auth_failures;       /* per connection, then disconnect */
    unsigned ip_auth_failures;        /* per address in ip_auth_window, 0: off */
    unsigned ip_auth_window;          /* seconds */
    unsigned ip_auth_block;           /* seconds an address is refused */
    unsigned login_delay;             /* seconds between one account's logins */
    unsigned lock_timeout;            /* seconds to wait for spool locks */
    unsigned dotlock_stale;           /* seconds before a dotlock is stale */
    unsigned mbox_locks;              /* LOCK_KIND_* set */
    unsigned uidl_source;             /* UIDL_SOURCE_* */
    char *preauth_user;               /* runs the pre-auth child and keeper */
    char *empty_dir;                  /* the pre-auth child's chroot */
    char *proxy_trusted;              /* CIDRs that may send PROXY headers */
    char *pid_file;                   /* written when daemonized */
};

void config_defaults(struct config *cfg);
void config_free(struct config *cfg);

/* Applies one setting; on error returns -1 with a reason in err. */
int config_set(struct config *cfg, const char *key, const char *value,
               char *err, size_t errlen);

/* Reads path on top of the current values.  A missing file is an error
 * only if must_exist.  On error returns -1 and err says FILE:LINE: why. */
int config_load(struct config *cfg, const char *path, int must_exist,
                char *err, size_t errlen);

/* The same, from memory (tests, fuzzing); name is used in messages. */
int config_load_buffer(struct config *cfg, const char *text, size_t len, const char *name,
                       char *err, size_t errlen);

/* Prints every setting as it is in effect, in config-file syntax. */
void config_print(const struct config *cfg, FILE *out);

/* The i-th setting's name, or NULL past the end (for docs checks). */
const char *config_setting_name(size_t i);

#endif
