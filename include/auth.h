/*
 * auth.h - who may log in: account lookup (system accounts through
 * getpwnam/getspnam, or a passwd(5)-format file whose second field is the
 * crypt hash) and the password check with crypt(3), which knows every
 * hash libxcrypt does (yescrypt, sha512crypt, bcrypt, md5crypt, ...).
 *
 * Every refusal (unknown user, wrong password, root, locked or
 * password-less account) is the same AUTH_DENIED to the caller, so the
 * client cannot tell them apart; `why` carries the real reason for the
 * log.  Unknown users are checked against a dummy hash so that they cost
 * the same time as a wrong password.
 */
#ifndef MBOXPOP3D_AUTH_H
#define MBOXPOP3D_AUTH_H

#include <stddef.h>
#include <sys/types.h>
#include "config.h"

#define AUTH_MAX_USER 64      /* longest user name we accept */
#define AUTH_MAX_PASS 200     /* longer passwords are refused unread */

struct account {
    char name[AUTH_MAX_USER + 1];
    uid_t uid;
    gid_t gid;
    int system;               /* from the system database (initgroups) */
};

enum auth_result { AUTH_OK, AUTH_DENIED, AUTH_ERROR };

/* A name we can use as a file name in spool_dir: 1..AUTH_MAX_USER of
 * [A-Za-z0-9._-], not starting with '.' or '-'. */
int auth_valid_username(const char *name, size_t len);

enum auth_result auth_login(const struct config *cfg, const char *user, const char *password,
                            struct account *acct, char *why, size_t whylen);

/* APOP (RFC 1939 section 7): digest is the client's 32 hex digits of
 * MD5(timestamp secret), the secret from apop_secrets ("user:secret"
 * lines; refused unless the file is owned by root and not readable by
 * group or others).  Same account policy as auth_login. */
enum auth_result auth_apop(const struct config *cfg, const char *user, const char *digest,
                           const char *timestamp, struct account *acct, char *why,
                           size_t whylen);

#endif
