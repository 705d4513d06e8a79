# CAPA with login_delay set: LOGIN-DELAY comes first (RFC 2449 section 6.8)
daemon: login_delay=2
spool: simple 1

C: CAPA
S: +OK Capability list follows
S: LOGIN-DELAY 2
S: TOP
S: UIDL
S: USER
S: SASL PLAIN
S: RESP-CODES
S: AUTH-RESP-CODE
S: PIPELINING
S: IMPLEMENTATION mboxpop3d-{any}
S: .

# a second login within the delay is refused, and the session ends
login
C: QUIT
S: +OK mboxpop3d signing off (0 messages deleted)
S: {closed}
connect
C: USER {user}
C: PASS {password}
S: +OK send PASS
S: -ERR [LOGIN-DELAY] wait 2 seconds between logins
S: {closed}
