# CAPA (RFC 2449): the same list in both states, in this order; no
# argument.  LOGIN-DELAY appears only when configured (capa_login_delay.t).
spool: simple 1

C: CAPA
S: +OK Capability list follows
S: TOP
S: UIDL
S: USER
S: SASL PLAIN
S: RESP-CODES
S: AUTH-RESP-CODE
S: PIPELINING
S: /IMPLEMENTATION mboxpop3d-\d+\.\d+\.\d+\S*/
S: .
C: CAPA x
S: -ERR too many arguments

# after USER and after a failed PASS: still there, lower case too
C: USER {user}
S: +OK send PASS
C: capa
S: +OK Capability list follows
S: {body}
C: PASS wrong
S: -ERR [AUTH] invalid user name or password
C: Capa
S: +OK Capability list follows
S: {body}

# TRANSACTION: the same list
login
C: CAPA
S: +OK Capability list follows
S: TOP
S: UIDL
S: USER
S: SASL PLAIN
S: RESP-CODES
S: AUTH-RESP-CODE
S: PIPELINING
S: IMPLEMENTATION mboxpop3d-{any}
S: .
C: CAPA TOP
S: -ERR too many arguments
C: QUIT
S: +OK mboxpop3d signing off (0 messages deleted)
S: {closed}
