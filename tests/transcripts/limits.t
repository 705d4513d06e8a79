# Limits that end a session: the idle timer (idle_timeout, 1 s here) in
# both states, and max_auth_failures (2 here).
daemon: idle_timeout=1 max_auth_failures=2
spool: simple 2

# idle in AUTHORIZATION
C: USER {user}
S: +OK send PASS
S: -ERR autologout: idle for too long
S: {closed}

# idle in TRANSACTION: no UPDATE, the deletion is forgotten
connect
login
C: DELE 1
S: +OK message 1 deleted
S: -ERR autologout: idle for too long
S: {closed}
spool? unchanged

# the second failed login of a connection ends it
connect
C: USER {user}
C: PASS wrong
S: +OK send PASS
S: -ERR [AUTH] invalid user name or password
C: AUTH PLAIN {b64 \0{user}\0wrong}
S: -ERR [AUTH] invalid user name or password; too many failures, closing
S: {closed}
