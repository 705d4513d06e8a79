# The UPDATE state (RFC 1939 section 6): deletions happen at QUIT and only
# there; the spool file afterwards holds exactly the other messages.
spool: simple 3

# delete two, QUIT: the count in the reply, the spool without them
login
C: DELE 1
S: +OK message 1 deleted
C: DELE 3
S: +OK message 3 deleted
C: QUIT
S: +OK mboxpop3d signing off (2 messages deleted)
S: {closed}
spool? without 1 3
# the next session sees what is left, numbered from 1
connect
C: USER {user}
C: PASS {password}
S: +OK send PASS
S: +OK {user}'s maildrop has 1 message ({size 2} octets)
C: RETR 1
S: +OK {size 2} octets
S: {message 2}
C: DELE 1
S: +OK message 1 deleted
C: QUIT
S: +OK mboxpop3d signing off (1 message deleted)
S: {closed}
spool? without 1 2 3

# no QUIT, no UPDATE: a client that just goes away deletes nothing
spool: simple 3
connect
login
C: DELE 2
S: +OK message 2 deleted
eof
S: {closed}
spool? unchanged

# RSET before QUIT: nothing deleted
connect
login
C: DELE 1
S: +OK message 1 deleted
C: RSET
S: +OK maildrop has 3 messages ({total} octets)
C: QUIT
S: +OK mboxpop3d signing off (0 messages deleted)
S: {closed}
spool? unchanged

# QUIT in AUTHORIZATION is no UPDATE either
connect
C: USER {user}
S: +OK send PASS
C: PASS wrong
S: -ERR [AUTH] invalid user name or password
C: QUIT
S: +OK mboxpop3d signing off
S: {closed}
spool? unchanged

# mail delivered during the session is not seen by it and survives UPDATE
connect
login
append: arrived during the session
C: STAT
S: +OK 3 {total}
C: DELE 2
S: +OK message 2 deleted
C: QUIT
S: +OK mboxpop3d signing off (1 message deleted)
S: {closed}
spool? without 2
connect
C: USER {user}
C: PASS {password}
S: +OK send PASS
S: /\+OK \S+'s maildrop has 3 messages \(\d+ octets\)/
C: TOP 3 0
S: +OK top of message follows
S: {any}
S: From: Sender <sender@example.org>
S: To: rcpt@example.org
S: Subject: arrived during the session
S:
S: .
C: QUIT
S: +OK mboxpop3d signing off (0 messages deleted)
S: {closed}

# ... also when every message the session saw is deleted
spool: simple 2
connect
login
append: new while all go
C: DELE 1
S: +OK message 1 deleted
C: DELE 2
S: +OK message 2 deleted
C: QUIT
S: +OK mboxpop3d signing off (2 messages deleted)
S: {closed}
spool? without 1 2

# spools without a final newline, and with CRLF line ends
spool: unterminated_last
connect
login
C: DELE 2
S: +OK message 2 deleted
C: QUIT
S: +OK mboxpop3d signing off (1 message deleted)
S: {closed}
spool? without 2
spool: unterminated_last
connect
login
C: DELE 1
S: +OK message 1 deleted
C: QUIT
S: +OK mboxpop3d signing off (1 message deleted)
S: {closed}
spool? without 1
spool: crlf_spool
connect
login
C: DELE 2
S: +OK message 2 deleted
C: QUIT
S: +OK mboxpop3d signing off (1 message deleted)
S: {closed}
spool? without 2

# ... nor one that drops the connection (RST) (last: the dropped session
# may still be ending when the next login would come)
spool: simple 3
connect
login
C: DELE 1
S: +OK message 1 deleted
drop
spool? unchanged
