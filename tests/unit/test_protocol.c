/* Unit tests: the POP3 command parser (protocol.h). */
#include <stdlib.h>

#include "testlib.h"
#include "protocol.h"

#define AUTH STATE_AUTHORIZATION
#define TRANS STATE_TRANSACTION

static const struct command *last_cmd;
static struct command_args last_args;

static enum parse_result parse_n(const char *line, size_t len, enum pop_state st)
{
    return command_parse(line, len, st, &last_cmd, &last_args);
}

static enum parse_result parse(const char *line, enum pop_state st)
{
    return parse_n(line, strlen(line), st);
}

/* Checks the result and, for PARSE_OK and PARSE_BAD_STATE, the command. */
static void check_parse(const char *line, enum pop_state st, enum parse_result want,
                        int want_id, int lineno)
{
    enum parse_result got = parse(line, st);
    if (got != want) {
        tl_current_failed = 1;
        printf("  %s:%d: %s: command_parse(\"%s\", %s) = %d (%s), expected %d (%s)\n",
               __FILE__, lineno, tl_current, line, st == AUTH ? "AUTH" : "TRANS", (int)got,
               parse_result_text(got), (int)want, parse_result_text(want));
        return;
    }
    if ((want == PARSE_OK || want == PARSE_BAD_STATE) && want_id >= 0) {
        if (last_cmd == NULL || (int)last_cmd->id != want_id) {
            tl_current_failed = 1;
            printf("  %s:%d: %s: command_parse(\"%s\"): wrong command\n", __FILE__, lineno,
                   tl_current, line);
        }
    }
}
#define P(line, st, want, id) check_parse((line), (st), (want), (id), __LINE__)

TEST(table_lists_every_command)
{
    size_t n = 0;
    const struct command *t = command_table(&n);
    static const char *names[] = { "USER", "PASS", "QUIT", "CAPA", "STAT", "LIST",
                                   "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL",
                                   "AUTH", "APOP" };
    CHECK_EQ(n, sizeof names / sizeof names[0]);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int found = 0;
        for (size_t j = 0; j < n; j++)
            if (strcmp(t[j].name, names[i]) == 0)
                found = 1;
        CHECK(found);
    }
}

TEST(authorization_state_commands)
{
    P("USER alice", AUTH, PARSE_OK, CMD_USER);
    CHECK(last_args.text_len == 5 && memcmp(last_args.text, "alice", 5) == 0);
    P("PASS secret", AUTH, PARSE_OK, CMD_PASS);
    P("QUIT", AUTH, PARSE_OK, CMD_QUIT);
    P("CAPA", AUTH, PARSE_OK, CMD_CAPA);
    P("STAT", AUTH, PARSE_BAD_STATE, CMD_STAT);
    P("LIST", AUTH, PARSE_BAD_STATE, CMD_LIST);
    P("LIST 1", AUTH, PARSE_BAD_STATE, CMD_LIST);
    P("RETR 1", AUTH, PARSE_BAD_STATE, CMD_RETR);
    P("DELE 1", AUTH, PARSE_BAD_STATE, CMD_DELE);
    P("NOOP", AUTH, PARSE_BAD_STATE, CMD_NOOP);
    P("RSET", AUTH, PARSE_BAD_STATE, CMD_RSET);
    P("TOP 1 2", AUTH, PARSE_BAD_STATE, CMD_TOP);
    P("UIDL", AUTH, PARSE_BAD_STATE, CMD_UIDL);
    P("UIDL 1", AUTH, PARSE_BAD_STATE, CMD_UIDL);
}

TEST(transaction_state_commands)
{
    P("USER alice", TRANS, PARSE_BAD_STATE, CMD_USER);
    P("PASS secret", TRANS, PARSE_BAD_STATE, CMD_PASS);
    P("QUIT", TRANS, PARSE_OK, CMD_QUIT);
    P("CAPA", TRANS, PARSE_OK, CMD_CAPA);
    P("STAT", TRANS, PARSE_OK, CMD_STAT);
    CHECK_EQ(last_args.count, 0);
    P("LIST", TRANS, PARSE_OK, CMD_LIST);
    CHECK_EQ(last_args.count, 0);
    P("LIST 3", TRANS, PARSE_OK, CMD_LIST);
    CHECK_EQ(last_args.count, 1);
    CHECK_EQ(last_args.number[0], 3);
    P("RETR 12", TRANS, PARSE_OK, CMD_RETR);
    CHECK_EQ(last_args.count, 1);
    CHECK_EQ(last_args.number[0], 12);
    P("DELE 7", TRANS, PARSE_OK, CMD_DELE);
    CHECK_EQ(last_args.number[0], 7);
    P("NOOP", TRANS, PARSE_OK, CMD_NOOP);
    P("RSET", TRANS, PARSE_OK, CMD_RSET);
    P("TOP 2 10", TRANS, PARSE_OK, CMD_TOP);
    CHECK_EQ(last_args.count, 2);
    CHECK_EQ(last_args.number[0], 2);
    CHECK_EQ(last_args.number[1], 10);
    P("UIDL", TRANS, PARSE_OK, CMD_UIDL);
    CHECK_EQ(last_args.count, 0);
    P("UIDL 5", TRANS, PARSE_OK, CMD_UIDL);
    CHECK_EQ(last_args.count, 1);
    CHECK_EQ(last_args.number[0], 5);
}

TEST(keywords_are_case_insensitive)
{
    P("user bob", AUTH, PARSE_OK, CMD_USER);
    P("UsEr bob", AUTH, PARSE_OK, CMD_USER);
    P("pass x", AUTH, PARSE_OK, CMD_PASS);
    P("quit", AUTH, PARSE_OK, CMD_QUIT);
    P("capa", TRANS, PARSE_OK, CMD_CAPA);
    P("stat", TRANS, PARSE_OK, CMD_STAT);
    P("list", TRANS, PARSE_OK, CMD_LIST);
    P("rEtR 1", TRANS, PARSE_OK, CMD_RETR);
    P("dele 1", TRANS, PARSE_OK, CMD_DELE);
    P("nOOp", TRANS, PARSE_OK, CMD_NOOP);
    P("rset", TRANS, PARSE_OK, CMD_RSET);
    P("top 1 1", TRANS, PARSE_OK, CMD_TOP);
    P("Uidl", TRANS, PARSE_OK, CMD_UIDL);
    /* arguments keep their case */
    P("user BoB", AUTH, PARSE_OK, CMD_USER);
    CHECK(last_args.text_len == 3 && memcmp(last_args.text, "BoB", 3) == 0);
}

TEST(missing_arguments)
{
    P("USER", AUTH, PARSE_MISSING_ARG, -1);
    P("USER ", AUTH, PARSE_MISSING_ARG, -1);
    P("PASS", AUTH, PARSE_MISSING_ARG, -1);
    P("PASS ", AUTH, PARSE_MISSING_ARG, -1);
    P("RETR", TRANS, PARSE_MISSING_ARG, -1);
    P("RETR ", TRANS, PARSE_MISSING_ARG, -1);
    P("DELE", TRANS, PARSE_MISSING_ARG, -1);
    P("TOP", TRANS, PARSE_MISSING_ARG, -1);
    P("TOP 1", TRANS, PARSE_MISSING_ARG, -1);
    P("TOP 1 ", TRANS, PARSE_MISSING_ARG, -1);
}

TEST(extra_arguments)
{
    P("USER a b", AUTH, PARSE_EXTRA_ARG, -1);
    P("QUIT now", AUTH, PARSE_EXTRA_ARG, -1);
    P("CAPA x", AUTH, PARSE_EXTRA_ARG, -1);
    P("STAT 1", TRANS, PARSE_EXTRA_ARG, -1);
    P("LIST 1 2", TRANS, PARSE_EXTRA_ARG, -1);
    P("UIDL 1 2", TRANS, PARSE_EXTRA_ARG, -1);
    P("RETR 1 2", TRANS, PARSE_EXTRA_ARG, -1);
    P("DELE 1 2", TRANS, PARSE_EXTRA_ARG, -1);
    P("NOOP x", TRANS, PARSE_EXTRA_ARG, -1);
    P("RSET x", TRANS, PARSE_EXTRA_ARG, -1);
    P("TOP 1 2 3", TRANS, PARSE_EXTRA_ARG, -1);
    P("TOP 1 2 3 4 5", TRANS, PARSE_EXTRA_ARG, -1);
    P("QUIT now", TRANS, PARSE_EXTRA_ARG, -1);
}

TEST(runs_of_spaces_between_arguments)
{
    P("RETR   4", TRANS, PARSE_OK, CMD_RETR);
    CHECK_EQ(last_args.number[0], 4);
    P("TOP  4   0  ", TRANS, PARSE_OK, CMD_TOP);
    CHECK_EQ(last_args.number[0], 4);
    CHECK_EQ(last_args.number[1], 0);
    P("STAT ", TRANS, PARSE_OK, CMD_STAT);
    P("USER  carol", AUTH, PARSE_OK, CMD_USER);
    CHECK(last_args.text_len == 5 && memcmp(last_args.text, "carol", 5) == 0);
}

TEST(pass_takes_rest_of_line_verbatim)
{
    P("PASS my secret  pass ", AUTH, PARSE_OK, CMD_PASS);
    CHECK_MEM(last_args.text, last_args.text_len, "my secret  pass ", 16);
    P("PASS  leading", AUTH, PARSE_OK, CMD_PASS);
    CHECK_MEM(last_args.text, last_args.text_len, " leading", 8);
    P("PASS x", AUTH, PARSE_OK, CMD_PASS);
    CHECK_MEM(last_args.text, last_args.text_len, "x", 1);
    P("pass \tTab\x01!", AUTH, PARSE_OK, CMD_PASS);
    CHECK_MEM(last_args.text, last_args.text_len, "\tTab\x01!", 6);
    /* a password of spaces is a password */
    P("PASS   ", AUTH, PARSE_OK, CMD_PASS);
    CHECK_MEM(last_args.text, last_args.text_len, "  ", 2);
    /* NUL inside a password is refused */
    static const char nul[] = "PASS a\0b";
    CHECK_EQ(parse_n(nul, sizeof nul - 1, AUTH), PARSE_BAD_TEXT);
}

TEST(message_numbers_are_strict)
{
    P("RETR 0", TRANS, PARSE_BAD_NUMBER, -1);
    P("DELE 0", TRANS, PARSE_BAD_NUMBER, -1);
    P("LIST 0", TRANS, PARSE_BAD_NUMBER, -1);
    P("UIDL 0", TRANS, PARSE_BAD_NUMBER, -1);
    P("TOP 0 1", TRANS, PARSE_BAD_NUMBER, -1);
    P("RETR +1", TRANS, PARSE_BAD_NUMBER, -1);
    P("RETR -1", TRANS, PARSE_BAD_NUMBER, -1);
    P("RETR 1a", TRANS, PARSE_BAD_NUMBER, -1);
    P("RETR a1", TRANS, PARSE_BAD_NUMBER, -1);
    P("RETR 0x1", TRANS, PARSE_BAD_NUMBER, -1);
    P("RETR 1.0", TRANS, PARSE_BAD_NUMBER, -1);
    P("RETR 1\t", TRANS, PARSE_BAD_NUMBER, -1);
    P("RETR 99999999999999999999999", TRANS, PARSE_BAD_NUMBER, -1);
    P("RETR 18446744073709551616", TRANS, PARSE_BAD_NUMBER, -1);
    P("LIST -0", TRANS, PARSE_BAD_NUMBER, -1);

    char line[64];
    snprintf(line, sizeof line, "RETR %llu", (unsigned long long)MAX_MESSAGE_NUMBER);
    P(line, TRANS, PARSE_OK, CMD_RETR);
    CHECK_EQ(last_args.number[0], MAX_MESSAGE_NUMBER);
    snprintf(line, sizeof line, "RETR %llu", (unsigned long long)MAX_MESSAGE_NUMBER + 1);
    P(line, TRANS, PARSE_BAD_NUMBER, -1);
    snprintf(line, sizeof line, "LIST %llu", (unsigned long long)MAX_MESSAGE_NUMBER + 1);
    P(line, TRANS, PARSE_BAD_NUMBER, -1);
    snprintf(line, sizeof line, "TOP %llu 1", (unsigned long long)MAX_MESSAGE_NUMBER + 1);
    P(line, TRANS, PARSE_BAD_NUMBER, -1);

    P("RETR 007", TRANS, PARSE_OK, CMD_RETR);
    CHECK_EQ(last_args.number[0], 7);
}

TEST(top_line_count_may_be_zero)
{
    P("TOP 1 0", TRANS, PARSE_OK, CMD_TOP);
    CHECK_EQ(last_args.count, 2);
    CHECK_EQ(last_args.number[0], 1);
    CHECK_EQ(last_args.number[1], 0);
    P("TOP 1 -1", TRANS, PARSE_BAD_NUMBER, -1);
    P("TOP 1 +1", TRANS, PARSE_BAD_NUMBER, -1);
    P("TOP 1 1a", TRANS, PARSE_BAD_NUMBER, -1);
    P("TOP 1 18446744073709551616", TRANS, PARSE_BAD_NUMBER, -1);

    char line[64];
    snprintf(line, sizeof line, "TOP 1 %llu", (unsigned long long)MAX_TOP_LINES);
    P(line, TRANS, PARSE_OK, CMD_TOP);
    CHECK_EQ(last_args.number[1], MAX_TOP_LINES);
    snprintf(line, sizeof line, "TOP 1 %llu", (unsigned long long)MAX_TOP_LINES + 1);
    P(line, TRANS, PARSE_BAD_NUMBER, -1);
    /* larger than a message number is fine for a line count */
    snprintf(line, sizeof line, "TOP 1 %llu", (unsigned long long)MAX_MESSAGE_NUMBER + 1);
    P(line, TRANS, PARSE_OK, CMD_TOP);
}

TEST(auth_and_apop_arguments)
{
    P("AUTH PLAIN", AUTH, PARSE_OK, CMD_AUTH);
    P("auth plain dGVzdA==", AUTH, PARSE_OK, CMD_AUTH);
    P("AUTH", AUTH, PARSE_MISSING_ARG, CMD_AUTH);
    P("AUTH PLAIN a b", AUTH, PARSE_EXTRA_ARG, CMD_AUTH);
    P("AUTH PLAIN", TRANS, PARSE_BAD_STATE, CMD_AUTH);
    P("APOP bob 0123456789abcdef0123456789abcdef", AUTH, PARSE_OK, CMD_APOP);
    P("APOP bob", AUTH, PARSE_MISSING_ARG, CMD_APOP);
    P("APOP bob x y", AUTH, PARSE_EXTRA_ARG, CMD_APOP);
    P("APOP bob x", TRANS, PARSE_BAD_STATE, CMD_APOP);
    struct command_args a;
    const struct command *c;
    CHECK_EQ(command_parse("AUTH PLAIN abc=", 15, STATE_AUTHORIZATION, &c, &a), PARSE_OK);
    CHECK(a.text2 != NULL && a.text2_len == 4 && memcmp(a.text2, "abc=", 4) == 0);
}

TEST(unknown_commands)
{
    P("", AUTH, PARSE_UNKNOWN, -1);
    P("", TRANS, PARSE_UNKNOWN, -1);
    P("   ", TRANS, PARSE_UNKNOWN, -1);
    P("HELO", AUTH, PARSE_UNKNOWN, -1);
    P("XYZ", TRANS, PARSE_UNKNOWN, -1);
    P("RETRX 1", TRANS, PARSE_UNKNOWN, -1);   /* keyword longer than 4 */
    P("USERNAME bob", AUTH, PARSE_UNKNOWN, -1);
    P("QUITQUITQUIT", AUTH, PARSE_UNKNOWN, -1);
    P("RET 1", TRANS, PARSE_UNKNOWN, -1);
    P("TO 1 1", TRANS, PARSE_UNKNOWN, -1);
    P("Q", AUTH, PARSE_UNKNOWN, -1);
    P("STLS", AUTH, PARSE_UNKNOWN, -1);
    P("NOOP\t", TRANS, PARSE_UNKNOWN, -1);
    P("\x01NOOP", TRANS, PARSE_UNKNOWN, -1);
    static const char nul[] = "NO\0P";
    CHECK_EQ(parse_n(nul, sizeof nul - 1, TRANS), PARSE_UNKNOWN);
    CHECK(last_cmd == NULL);
    /* a very long keyword does not overrun anything */
    char big[600];
    memset(big, 'A', sizeof big);
    CHECK_EQ(parse_n(big, sizeof big, TRANS), PARSE_UNKNOWN);
}

TEST(user_with_control_bytes_is_bad_text)
{
    P("USER a\x01" "b", AUTH, PARSE_BAD_TEXT, -1);
    P("USER al\tice", AUTH, PARSE_BAD_TEXT, -1);
    P("USER bob\x7f", AUTH, PARSE_BAD_TEXT, -1);
    P("USER \x1b[31m", AUTH, PARSE_BAD_TEXT, -1);
    P("USER bob\r", AUTH, PARSE_BAD_TEXT, -1);
    static const char nul[] = "USER bo\0b";
    CHECK_EQ(parse_n(nul, sizeof nul - 1, AUTH), PARSE_BAD_TEXT);
    /* 8-bit bytes are not control bytes */
    P("USER j\xc3\xbcrgen", AUTH, PARSE_OK, CMD_USER);
}

TEST(parse_clears_outputs)
{
    struct command_args a;
    const struct command *c = (const struct command *)&a;
    memset(&a, 0x5a, sizeof a);
    CHECK_EQ(command_parse("BOGUS", 5, TRANS, &c, &a), PARSE_UNKNOWN);
    CHECK(c == NULL);
    CHECK_EQ(a.count, 0);
    CHECK_EQ(command_parse("STAT", 4, TRANS, &c, &a), PARSE_OK);
    CHECK(c != NULL && c->id == CMD_STAT);
    CHECK_EQ(a.count, 0);
    CHECK(a.text == NULL);
    /* the length is honoured: bytes after len are not parsed */
    CHECK_EQ(command_parse("RETR 12", 6, TRANS, &c, &a), PARSE_OK);
    CHECK_EQ(a.number[0], 1);
    CHECK_EQ(command_parse("STAT 1", 4, TRANS, &c, &a), PARSE_OK);
}

TEST(parse_result_texts_exist)
{
    for (int r = PARSE_OK; r <= PARSE_BAD_TEXT; r++) {
        const char *t = parse_result_text((enum parse_result)r);
        CHECK(t != NULL && t[0] != '\0');
    }
}

int main(void)
{
    RUN(table_lists_every_command);
    RUN(authorization_state_commands);
    RUN(transaction_state_commands);
    RUN(keywords_are_case_insensitive);
    RUN(missing_arguments);
    RUN(extra_arguments);
    RUN(runs_of_spaces_between_arguments);
    RUN(pass_takes_rest_of_line_verbatim);
    RUN(message_numbers_are_strict);
    RUN(top_line_count_may_be_zero);
    RUN(auth_and_apop_arguments);
    RUN(unknown_commands);
    RUN(user_with_control_bytes_is_bad_text);
    RUN(parse_clears_outputs);
    RUN(parse_result_texts_exist);
    return test_report();
}
