/* auth.c - account lookup and crypt(3) password checks; see auth.h. */
#include <crypt.h>
#include <errno.h>
#include <pwd.h>
#include <shadow.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>

#include "auth.h"
#include "md5.h"
#include "log.h"
#include "util.h"

#define PASSWD_FILE_MAX_LINE 4096

/* A looked-up account with its hash (heap copy, zeroed when freed). */
struct credentials {
    struct account acct;
    char *hash;
    char shell[256];
    long expire, last_change, max_age, inactive;  /* shadow(5) days; -1: not set */
};

int auth_valid_username(const char *name, size_t len)
{
    if (len == 0 || len > AUTH_MAX_USER || name[0] == '.' || name[0] == '-')
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static void free_credentials(struct credentials *cred)
{
    if (cred->hash) {
        secure_zero(cred->hash, strlen(cred->hash));
        free(cred->hash);
    }
    memset(cred, 0, sizeof *cred);
}

/* Splits a passwd(5) line into its 7 fields in place. */
static int split_passwd_line(char *line, char *field[7])
{
    int n = 0;
    char *p = line;
    while (n < 7) {
        field[n++] = p;
        char *colon = strchr(p, ':');
        if (colon == NULL)
            break;
        *colon = '\0';
        p = colon + 1;
    }
    return n == 7 ? 0 : -1;
}

static enum auth_result lookup_file(const char *path, const char *user, struct credentials *cred,
                                    char *why, size_t whylen)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(why, whylen, "cannot open passwd_file %s: %s", path, strerror(errno));
        return AUTH_ERROR;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    enum auth_result result = AUTH_DENIED;
    snprintf(why, whylen, "unknown user");
    while ((len = getline(&line, &cap, f)) >= 0) {
        if (len > PASSWD_FILE_MAX_LINE || line[0] == '#')
            continue;
        line[strcspn(line, "\n")] = '\0';
        char *field[7];
        if (split_passwd_line(line, field) != 0 || strcmp(field[0], user) != 0)
            continue;
        uint64_t uid, gid;
        if (parse_uint_str(field[2], (uid_t)-2, &uid) != 0 ||
            parse_uint_str(field[3], (gid_t)-2, &gid) != 0) {
            snprintf(why, whylen, "bad uid/gid for %s in %s", user, path);
            result = AUTH_ERROR;
            break;
        }
        cred->acct.uid = (uid_t)uid;
        cred->acct.gid = (gid_t)gid;
        strlcpy_checked(cred->shell, field[6], sizeof cred->shell);
        cred->hash = strdup(field[1]);
        result = cred->hash ? AUTH_OK : AUTH_ERROR;
        if (!cred->hash)
            snprintf(why, whylen, "out of memory");
        break;
    }
    if (line) {
        secure_zero(line, cap);
        free(line);
    }
    fclose(f);
    return result;
}

static enum auth_result lookup_system(const char *user, struct credentials *cred, char *why,
                                      size_t whylen)
{
    errno = 0;
    struct passwd *pw = getpwnam(user);
    if (pw == NULL) {
        if (errno != 0 && errno != ENOENT && errno != ESRCH) {
            snprintf(why, whylen, "getpwnam: %s", strerror(errno));
            return AUTH_ERROR;
        }
        snprintf(why, whylen, "unknown user");
        return AUTH_DENIED;
    }
    cred->acct.uid = pw->pw_uid;
    cred->acct.gid = pw->pw_gid;
    cred->acct.system = 1;
    strlcpy_checked(cred->shell, pw->pw_shell ? pw->pw_shell : "", sizeof cred->shell);
    const char *hash = pw->pw_passwd;
    if (strcmp(hash, "x") == 0) {
        errno = 0;
        struct spwd *sp = getspnam(user);
        if (sp == NULL) {
            snprintf(why, whylen, "no shadow entry readable for %s (%s)", user,
                     errno ? strerror(errno) : "not found");
            return errno == EACCES ? AUTH_ERROR : AUTH_DENIED;
        }
        hash = sp->sp_pwdp;
        cred->expire = sp->sp_expire;
        cred->last_change = sp->sp_lstchg;
        cred->max_age = sp->sp_max;
        cred->inactive = sp->sp_inact;
    }
    cred->hash = strdup(hash);
    if (cred->hash == NULL) {
        snprintf(why, whylen, "out of memory");
        return AUTH_ERROR;
    }
    return AUTH_OK;
}

static enum auth_result lookup(const struct config *cfg, const char *user,
                               struct credentials *cred, char *why, size_t whylen)
{
    memset(cred, 0, sizeof *cred);
    cred->expire = cred->last_change = cred->max_age = cred->inactive = -1;
    if (!auth_valid_username(user, strlen(user))) {
        snprintf(why, whylen, "invalid user name");
        return AUTH_DENIED;
    }
    strlcpy_checked(cred->acct.name, user, sizeof cred->acct.name);
    if (cfg->passwd_file)
        return lookup_file(cfg->passwd_file, user, cred, why, whylen);
    return lookup_system(user, cred, why, whylen);
}

/*
 * What an unknown user's password is checked against, so that it costs
 * the same time as a real account's: the setting (method, cost and salt:
 * crypt(3) reads them from a whole hash) of the first real hash of the same
 * source - the passwd_file, or the shadow database - so the method and
 * cost are the ones this system actually uses.  The library's default
 * method is the fallback.
 */
static int setting_of(const char *hash, char *out, size_t size)
{
    /* crypt(3) takes a whole hash as its setting (method, cost, salt),
     * whatever the method's layout (bcrypt's salt has no '$' after it). */
    if (hash[0] != '$' || strchr(hash + 1, '$') == NULL)
        return -1;
    return strlcpy_checked(out, hash, size);
}

static int setting_from_file(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    int rc = -1;
    while (rc != 0 && getline(&line, &cap, f) >= 0) {
        char *field[7];
        line[strcspn(line, "\n")] = '\0';
        if (split_passwd_line(line, field) == 0)
            rc = setting_of(field[1], out, size);
    }
    if (line) {
        secure_zero(line, cap);
        free(line);
    }
    fclose(f);
    return rc;
}

static int setting_from_shadow(char *out, size_t size)
{
    int rc = -1;
    setspent();
    struct spwd *sp;
    while (rc != 0 && (sp = getspent()) != NULL)
        rc = setting_of(sp->sp_pwdp, out, size);
    endspent();
    return rc;
}

static const char *dummy_setting(const struct config *cfg)
{
    static char setting[CRYPT_OUTPUT_SIZE];
    if (setting[0] != '\0')
        return setting;
    int rc = cfg->passwd_file ? setting_from_file(cfg->passwd_file, setting, sizeof setting)
                              : setting_from_shadow(setting, sizeof setting);
    if (rc != 0 && crypt_gensalt_rn(NULL, 0, NULL, 0, setting, sizeof setting) == NULL)
        strlcpy_checked(setting, "$6$mboxpop3d$", sizeof setting);
    return setting;
}

/* crypt(3) the password with the hash's own method and salt and compare
 * in constant time.  Returns 1 on a match. */
static int password_matches(const char *password, const char *hash)
{
    struct crypt_data *data = calloc(1, sizeof *data);
    if (data == NULL)
        return 0;
    const char *out = crypt_r(password, hash, data);
    int ok = out != NULL && out[0] != '*' &&
             consttime_equal(out, strlen(out), hash, strlen(hash));
    secure_zero(data, sizeof *data);
    free(data);
    return ok;
}

static int hash_is_locked(const char *hash)
{
    return hash[0] == '\0' || hash[0] == '!' || hash[0] == '*';
}

static int listed(const char *list, const char *name)
{
    if (list == NULL)
        return 0;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        p += strspn(p, " \t,");
        size_t w = strcspn(p, " \t,");
        if (w == n && strncmp(p, name, n) == 0)
            return 1;
        p += w;
    }
    return 0;
}

static int shell_is_valid(const char *shell)
{
    int ok = 0;
    setusershell();
    for (const char *s; !ok && (s = getusershell()) != NULL;)
        ok = strcmp(s, shell) == 0;
    endusershell();
    return ok;
}

/*
 * shadow(5), field 7: once a password has been expired for longer than
 * the inactivity period, "no login is possible for the user" - whether
 * or not expired passwords are accepted otherwise (pam_unix counts it
 * the same way: days since the change, less the maximum age, more than
 * the period).  A last change of 0 has no date to count from.
 */
static int password_inactive(const struct credentials *c, long today)
{
    return c->last_change > 0 && c->max_age >= 0 && c->inactive >= 0 &&
           today - c->last_change - c->max_age > c->inactive;
}

/* The account policy (mboxpop3d.conf(5)): 1 and the reason if refused. */
static int refused_by_policy(const struct config *cfg, const struct credentials *c, char *why,
                             size_t whylen)
{
    long today = (long)(time(NULL) / 86400);
    if (c->acct.uid == 0)
        snprintf(why, whylen, "root may not log in");
    else if (c->acct.uid < cfg->min_uid)
        snprintf(why, whylen, "uid %u is below min_uid %u", (unsigned)c->acct.uid, cfg->min_uid);
    else if (listed(cfg->deny_users, c->acct.name))
        snprintf(why, whylen, "listed in deny_users");
    else if (hash_is_locked(c->hash))
        snprintf(why, whylen, "account locked or without password");
    else if (c->expire >= 0 && today >= c->expire)
        snprintf(why, whylen, "account expired (shadow expire date passed)");
    else if (password_inactive(c, today))
        snprintf(why, whylen, "password inactive (expired longer than the inactivity period)");
    else if (cfg->refuse_expired_passwords && c->last_change == 0)
        snprintf(why, whylen, "password must be changed (last change 0, as passwd -e sets)");
    else if (cfg->refuse_expired_passwords && c->last_change > 0 && c->max_age >= 0 &&
             today > c->last_change + c->max_age)
        snprintf(why, whylen, "password expired (last change + max age passed)");
    else if (cfg->require_valid_shell && !shell_is_valid(c->shell))
        snprintf(why, whylen, "shell %s is not listed in /etc/shells", c->shell);
    else
        return 0;
    return 1;
}

enum auth_result auth_login(const struct config *cfg, const char *user, const char *password,
                            struct account *acct, char *why, size_t whylen)
{
    struct credentials cred;
    enum auth_result r = lookup(cfg, user, &cred, why, whylen);
    if (r != AUTH_OK) {
        password_matches(password, dummy_setting(cfg));   /* same cost as a real check */
        free_credentials(&cred);
        return r;
    }
    if (refused_by_policy(cfg, &cred, why, whylen))
        r = AUTH_DENIED;
    if (r != AUTH_OK)
        password_matches(password, dummy_setting(cfg));
    else if (!password_matches(password, cred.hash)) {
        snprintf(why, whylen, "wrong password");
        r = AUTH_DENIED;
    }
    if (r == AUTH_OK)
        *acct = cred.acct;
    free_credentials(&cred);
    return r;
}

/* The user's APOP secret from the secrets file, which must be private. */
static int apop_secret(const char *path, const char *user, char *out, size_t size, char *why,
                       size_t whylen)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(why, whylen, "apop_secrets %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 ||
        (st.st_mode & 077)) {
        snprintf(why, whylen, "apop_secrets %s must be a root-owned file readable by root "
                              "only (chmod 600): refusing to use it", path);
        fclose(f);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0, n = strlen(user);
    int rc = 1;                      /* no such user */
    while (rc == 1 && getline(&line, &cap, f) >= 0) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, user, n) == 0 && line[n] == ':')
            rc = strlcpy_checked(out, line + n + 1, size) == 0 ? 0 : 1;
    }
    if (line) {
        secure_zero(line, cap);
        free(line);
    }
    fclose(f);
    return rc;
}

enum auth_result auth_apop(const struct config *cfg, const char *user, const char *digest,
                           const char *timestamp, struct account *acct, char *why,
                           size_t whylen)
{
    char secret[256];
    int found = cfg->apop_secrets ? apop_secret(cfg->apop_secrets, user, secret, sizeof secret,
                                                why, whylen)
                                  : 1;
    if (found < 0)
        return AUTH_ERROR;
    struct md5_ctx ctx;
    unsigned char d[16];
    md5_init(&ctx);
    md5_update(&ctx, timestamp, strlen(timestamp));
    if (found == 0)
        md5_update(&ctx, secret, strlen(secret));
    md5_final(&ctx, d);
    secure_zero(secret, sizeof secret);
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    int match = consttime_equal(hex, 32, digest, strlen(digest));
    if (found != 0) {
        snprintf(why, whylen, "no APOP secret for this user");
        return AUTH_DENIED;
    }
    if (!match) {
        snprintf(why, whylen, "wrong APOP digest");
        return AUTH_DENIED;
    }
    struct credentials cred;
    enum auth_result r = lookup(cfg, user, &cred, why, whylen);
    if (r == AUTH_OK && refused_by_policy(cfg, &cred, why, whylen))
        r = AUTH_DENIED;
    if (r == AUTH_OK)
        *acct = cred.acct;
    free_credentials(&cred);
    return r;
}
