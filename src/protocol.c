/* protocol.c - the command table and the argument parser. */
#include <string.h>
#include <strings.h>

#include "protocol.h"
#include "util.h"

#define BOTH (STATE_AUTHORIZATION | STATE_TRANSACTION)

static const struct command commands[] = {
    { "USER", CMD_USER, STATE_AUTHORIZATION, ARGS_WORD },
    { "PASS", CMD_PASS, STATE_AUTHORIZATION, ARGS_REST },
    { "QUIT", CMD_QUIT, BOTH, ARGS_NONE },
    { "CAPA", CMD_CAPA, BOTH, ARGS_NONE },
    { "STAT", CMD_STAT, STATE_TRANSACTION, ARGS_NONE },
    { "LIST", CMD_LIST, STATE_TRANSACTION, ARGS_OPT_MSG },
    { "RETR", CMD_RETR, STATE_TRANSACTION, ARGS_MSG },
    { "DELE", CMD_DELE, STATE_TRANSACTION, ARGS_MSG },
    { "NOOP", CMD_NOOP, STATE_TRANSACTION, ARGS_NONE },
    { "RSET", CMD_RSET, STATE_TRANSACTION, ARGS_NONE },
    { "TOP", CMD_TOP, STATE_TRANSACTION, ARGS_MSG_LINES },
    { "UIDL", CMD_UIDL, STATE_TRANSACTION, ARGS_OPT_MSG },
    { "AUTH", CMD_AUTH, STATE_AUTHORIZATION, ARGS_WORDS_1_2 },
    { "APOP", CMD_APOP, STATE_AUTHORIZATION, ARGS_WORDS_2 },
};

const struct command *command_table(size_t *count)
{
    *count = sizeof commands / sizeof commands[0];
    return commands;
}

const char *parse_result_text(enum parse_result r)
{
    switch (r) {
    case PARSE_OK: return "ok";
    case PARSE_UNKNOWN: return "unknown command";
    case PARSE_BAD_STATE: return "command not valid in this state";
    case PARSE_MISSING_ARG: return "missing argument";
    case PARSE_EXTRA_ARG: return "too many arguments";
    case PARSE_BAD_NUMBER: return "invalid number";
    case PARSE_BAD_TEXT: return "invalid characters in argument";
    }
    return "syntax error";
}

/* Splits off the next space-separated word; returns its length (0: none). */
static size_t next_word(const char **p, const char *end, const char **word)
{
    while (*p < end && **p == ' ')
        (*p)++;
    *word = *p;
    while (*p < end && **p != ' ')
        (*p)++;
    return (size_t)(*p - *word);
}

static enum parse_result parse_number(const char *w, size_t n, uint64_t max, int nonzero,
                                      uint64_t *out)
{
    if (parse_uint(w, n, max, out) != 0 || (nonzero && *out == 0))
        return PARSE_BAD_NUMBER;
    return PARSE_OK;
}

static int has_control_bytes(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 1;
    return 0;
}

/* Checks the words after the keyword against the command's rule. */
static enum parse_result parse_args(const struct command *c, const char *p, const char *end,
                                    struct command_args *args)
{
    const char *w[3];
    size_t n[3];
    int words = 0;

    if (c->rule == ARGS_REST) {
        /* PASS: everything after the single space that ends the keyword. */
        if (p < end && *p == ' ')
            p++;
        if (p == end)
            return PARSE_MISSING_ARG;
        if (memchr(p, '\0', (size_t)(end - p)) != NULL)
            return PARSE_BAD_TEXT;
        args->text = p;
        args->text_len = (size_t)(end - p);
        return PARSE_OK;
    }
    while (words < 3 && (n[words] = next_word(&p, end, &w[words])) > 0)
        words++;

    int min = 0, max = 0;
    switch (c->rule) {
    case ARGS_NONE: break;
    case ARGS_WORD: min = max = 1; break;
    case ARGS_OPT_MSG: max = 1; break;
    case ARGS_MSG: min = max = 1; break;
    case ARGS_MSG_LINES: min = max = 2; break;
    case ARGS_WORDS_1_2: min = 1; max = 2; break;
    case ARGS_WORDS_2: min = max = 2; break;
    case ARGS_REST: break;
    }
    if (words < min)
        return PARSE_MISSING_ARG;
    if (words > max)
        return PARSE_EXTRA_ARG;
    if (c->rule == ARGS_WORD || c->rule == ARGS_WORDS_1_2 || c->rule == ARGS_WORDS_2) {
        for (int i = 0; i < words; i++)
            if (has_control_bytes(w[i], n[i]))
                return PARSE_BAD_TEXT;
        args->text = w[0];
        args->text_len = n[0];
        if (words == 2) {
            args->text2 = w[1];
            args->text2_len = n[1];
        }
        args->count = words;
        return PARSE_OK;
    }
    for (int i = 0; i < words; i++) {
        int is_line_count = c->rule == ARGS_MSG_LINES && i == 1;
        enum parse_result r = parse_number(w[i], n[i],
                                           is_line_count ? MAX_TOP_LINES : MAX_MESSAGE_NUMBER,
                                           !is_line_count, &args->number[i]);
        if (r != PARSE_OK)
            return r;
    }
    args->count = words;
    return PARSE_OK;
}

enum parse_result command_parse(const char *line, size_t len, enum pop_state state,
                                const struct command **cmd, struct command_args *args)
{
    memset(args, 0, sizeof *args);
    *cmd = NULL;
    const char *p = line, *end = line + len, *kw;
    size_t kwlen = next_word(&p, end, &kw);
    if (kwlen == 0 || kwlen > 4)
        return PARSE_UNKNOWN;
    const struct command *c = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strlen(commands[i].name) == kwlen && strncasecmp(commands[i].name, kw, kwlen) == 0)
            c = &commands[i];
    if (c == NULL)
        return PARSE_UNKNOWN;
    *cmd = c;
    if (!(c->states & state))
        return PARSE_BAD_STATE;
    return parse_args(c, p, end, args);
}
