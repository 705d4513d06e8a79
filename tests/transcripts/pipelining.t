# PIPELINING (RFC 2449): consecutive C lines go out in one write; the
# replies come in order, across the login too.
spool: simple 3

# login and transaction commands in one write
C: USER {user}
C: PASS {password}
C: STAT
C: LIST 2
C: NOOP
S: +OK send PASS
S: +OK {user}'s maildrop has 3 messages ({total} octets)
S: +OK 3 {total}
S: +OK 2 {size 2}
S: +OK

# multi-line replies, errors and deletions in one batch
C: RETR 1
C: TOP 2 0
C: RETR 9
C: UIDL 3
C: LIST
C: DELE 3
C: DELE 3
C: STAT
C: RSET
S: +OK {size 1} octets
S: {message 1}
S: +OK top of message follows
S: {top 2 0}
S: -ERR no such message, only 3 in maildrop
S: /\+OK 3 [0-9a-f]{16}/
S: +OK 3 messages ({total} octets)
S: {body}
S: +OK message 3 deleted
S: -ERR message 3 already deleted
S: +OK 2 {size 1 2}
S: +OK maildrop has 3 messages ({total} octets)

# an over-long line in a batch costs one -ERR; bare LF lines; QUIT ends
# it, what follows QUIT is not answered
C+ NOOP {300*x}\r\nSTAT\nNOOP\r\nDELE 2\r\nQUIT\r\nNOOP\r\nSTAT\r\n
S: -ERR line too long
S: +OK 3 {total}
S: +OK
S: +OK message 2 deleted
S: +OK mboxpop3d signing off (1 message deleted)
S: {closed}
spool? without 2

# a failed login in a batch, then a good one
connect
C: USER {user}
C: PASS wrong
C: STAT
C: USER {user}
C: PASS {password}
C: STAT
S: +OK send PASS
S: -ERR [AUTH] invalid user name or password
S: -ERR command not valid in this state
S: +OK send PASS
S: +OK {user}'s maildrop has 2 messages ({size 1 3} octets)
S: +OK 2 {size 1 3}

# AUTH PLAIN's continuation inside a batch
C: QUIT
S: +OK mboxpop3d signing off (0 messages deleted)
S: {closed}
connect
C: AUTH PLAIN
C: {plain}
C: STAT
C: QUIT
S: +{sp}
S: +OK {user}'s maildrop has 2 messages ({size 1 3} octets)
S: +OK 2 {size 1 3}
S: +OK mboxpop3d signing off (0 messages deleted)
S: {closed}

# a big batch: 300 commands in one write, behind the login
connect
C: USER {user}
C: PASS {password}
C*297: NOOP
C: QUIT
S: +OK send PASS
S: +OK {user}'s maildrop has 2 messages ({size 1 3} octets)
S*297: +OK
S: +OK mboxpop3d signing off (0 messages deleted)
S: {closed}
