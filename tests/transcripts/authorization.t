# AUTHORIZATION state (RFC 1939 section 4): the greeting, USER, PASS and
# QUIT before login, and what the PASS reply says about the maildrop.
spool: simple 3

# the greeting, then a login; USER does not tell which names exist
S: +OK mboxpop3d ready
C: USER {user}
S: +OK send PASS
C: PASS {password}
S: +OK {user}'s maildrop has 3 messages ({total} octets)
C: QUIT
S: +OK mboxpop3d signing off (0 messages deleted)
S: {closed}

# PASS needs a USER first; a failed PASS forgets the USER
connect
C: PASS {password}
S: -ERR USER first
C: USER {user}
S: +OK send PASS
C: PASS wrong
S: -ERR [AUTH] invalid user name or password
C: PASS {password}
S: -ERR USER first

# an unknown user gets the same answers as a wrong password
C: USER no-such-user
S: +OK send PASS
C: PASS {password}
S: -ERR [AUTH] invalid user name or password

# a user name longer than 64 octets is no user at all
C: USER {65*u}
S: +OK send PASS
C: PASS {password}
S: -ERR [AUTH] invalid user name or password

# a password longer than 200 octets fails without being checked
C: USER {user}
S: +OK send PASS
C: PASS {201*p}
S: -ERR [AUTH] invalid user name or password

# argument rules: USER takes one word, PASS the rest of the line
C: USER
S: -ERR missing argument
C: USER {user} extra
S: -ERR too many arguments
C+ USER a\x01b\r\n
S: -ERR invalid characters in argument
C: PASS
S: -ERR missing argument
C+ PASS a\x00b\r\n
S: -ERR invalid characters in argument

# the last USER counts; keywords are case-insensitive
C: USER no-such-user
S: +OK send PASS
C: user {user}
S: +OK send PASS
C: pAsS {password}
S: +OK {user}'s maildrop has 3 messages ({total} octets)
C: quit
S: +OK mboxpop3d signing off (0 messages deleted)
S: {closed}

# QUIT before PASS: no UPDATE, the server closes
connect
C: USER {user}
S: +OK send PASS
C: QUIT
S: +OK mboxpop3d signing off
S: {closed}

# a mailbox open in one session is refused to a second one ([IN-USE])
connect
login
C2: USER {user}
S2: +OK send PASS
C2: PASS {password}
S2: -ERR [IN-USE] your mailbox is open in another session
S2: {closed}
C: STAT
S: +OK 3 {total}
C: QUIT
S: +OK mboxpop3d signing off (0 messages deleted)
S: {closed}

# right after QUIT the mailbox is free again
connect 2
C2: USER {user}
S2: +OK send PASS
C2: PASS {password}
S2: +OK {user}'s maildrop has 3 messages ({total} octets)
C2: QUIT
S2: +OK mboxpop3d signing off (0 messages deleted)
S2: {closed}

# one message: singular; an empty spool file and no spool file: 0 messages
spool: simple 1
connect
C: USER {user}
C: PASS {password}
S: +OK send PASS
S: +OK {user}'s maildrop has 1 message ({size 1} octets)
C: QUIT
S: +OK mboxpop3d signing off (0 messages deleted)
S: {closed}
spool: simple 0
connect
C: USER {user}
C: PASS {password}
S: +OK send PASS
S: +OK {user}'s maildrop has 0 messages (0 octets)
C: QUIT
S: +OK mboxpop3d signing off (0 messages deleted)
S: {closed}
spool: none
connect
C: USER {user}
C: PASS {password}
S: +OK send PASS
S: +OK {user}'s maildrop has 0 messages (0 octets)
C: QUIT
S: +OK mboxpop3d signing off (0 messages deleted)
S: {closed}

# APOP without apop_secrets (the default): off, the greeting has no
# timestamp (apop.t has it on)
spool: simple 1
connect
S: +OK mboxpop3d ready
C: APOP {user} {32*0}
S: -ERR APOP is not enabled here
C: APOP {user}
S: -ERR missing argument
C: QUIT
S: +OK mboxpop3d signing off
S: {closed}
