# APOP (RFC 1939 section 7) with apop_secrets set: the greeting's
# timestamp, the digest, refusals.  (Without apop_secrets: authorization.t.)
daemon: apop
spool: simple 2

S: /\+OK mboxpop3d ready <\d+\.\d+\.\d+@[^>]+>/
C: APOP {user} {apop}
S: +OK {user}'s maildrop has 2 messages ({total} octets)
C: APOP {user} {apop}
S: -ERR command not valid in this state
C: QUIT
S: +OK mboxpop3d signing off (0 messages deleted)
S: {closed}

# refusals
connect
C: APOP {user} {32*0}
S: -ERR [AUTH] invalid user name or password
C: APOP {user} {apop}0
S: -ERR [AUTH] invalid user name or password
C: APOP {user} abc
S: -ERR [AUTH] invalid user name or password
C: APOP no-such-user {apop}
S: -ERR [AUTH] invalid user name or password
C: APOP {user}
S: -ERR missing argument
C: APOP
S: -ERR missing argument
C: APOP {user} {apop} x
S: -ERR too many arguments
# APOP forgets a USER given before it
C: USER {user}
S: +OK send PASS
C: APOP {user} {32*0}
S: -ERR [AUTH] invalid user name or password
C: PASS {password}
S: -ERR USER first
# USER/PASS still work here
C: USER {user}
S: +OK send PASS
C: PASS {password}
S: +OK {user}'s maildrop has 2 messages ({total} octets)
C: QUIT
S: +OK mboxpop3d signing off (0 messages deleted)
S: {closed}
