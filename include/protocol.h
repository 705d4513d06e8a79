/*
 * protocol.h - the POP3 command language as data: which commands exist,
 * in which states, and what arguments each takes.  Parsing a line into a
 * command and checked arguments is pure (no I/O), so it is unit-tested and
 * fuzzed on its own; session.c maps each command to its handler.
 *
 * RFC 1939 section 3: a keyword of 3-4 characters, case-insensitive,
 * followed by arguments separated by single spaces (we accept runs of
 * spaces).  Every argument rule is checked here, so a handler only ever
 * sees the argument count it declared; PASS takes the rest of the line
 * verbatim so passwords may contain spaces.
 */
#ifndef MBOXPOP3D_PROTOCOL_H
#define MBOXPOP3D_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

enum pop_state { STATE_AUTHORIZATION = 1 << 0, STATE_TRANSACTION = 1 << 1 };

enum command_id {
    CMD_USER, CMD_PASS, CMD_QUIT, CMD_CAPA, CMD_STAT, CMD_LIST, CMD_RETR,
    CMD_DELE, CMD_NOOP, CMD_RSET, CMD_TOP, CMD_UIDL, CMD_AUTH, CMD_APOP,
};

enum arg_rule {
    ARGS_NONE,          /* no argument */
    ARGS_WORD,          /* exactly one word (USER) */
    ARGS_REST,          /* the rest of the line, non-empty (PASS) */
    ARGS_OPT_MSG,       /* an optional message number (LIST, UIDL) */
    ARGS_MSG,           /* one message number (RETR, DELE) */
    ARGS_MSG_LINES,     /* message number and line count (TOP) */
    ARGS_WORDS_1_2,     /* one or two words (AUTH mechanism [initial-response]) */
    ARGS_WORDS_2,       /* exactly two words (APOP name digest) */
};

#define MAX_MESSAGE_NUMBER 0x7fffffffULL   /* larger is never a message */
#define MAX_TOP_LINES 0x7fffffffffffffffULL

struct command {
    const char *name;
    enum command_id id;
    unsigned states;    /* STATE_* where it is valid */
    enum arg_rule rule;
};

struct command_args {
    int count;              /* numbers parsed (0..2) */
    uint64_t number[2];
    const char *text;       /* ARGS_WORD/ARGS_REST/first word: into the line */
    size_t text_len;
    const char *text2;      /* second word (AUTH, APOP), or NULL */
    size_t text2_len;
};

enum parse_result {
    PARSE_OK,
    PARSE_UNKNOWN,      /* no such command */
    PARSE_BAD_STATE,    /* exists, but not in this state */
    PARSE_MISSING_ARG,
    PARSE_EXTRA_ARG,
    PARSE_BAD_NUMBER,   /* not digits, signed, overflowing, or 0 */
    PARSE_BAD_TEXT,     /* NUL or control byte in a word */
};

/* Parses line[0..len) (without CRLF) for a session in `state`. */
enum parse_result command_parse(const char *line, size_t len, enum pop_state state,
                                const struct command **cmd, struct command_args *args);

/* Text for the -ERR reply of a failed parse. */
const char *parse_result_text(enum parse_result r);

/* The command table (for CAPA and for tests). */
const struct command *command_table(size_t *count);

#endif
