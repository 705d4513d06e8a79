# AUTH PLAIN (RFC 5034, RFC 4616): initial response or continuation,
# the authorization identity, cancelling, and every refusal.
spool: simple 3

# with an initial response
C: AUTH PLAIN {plain}
S: +OK {user}'s maildrop has 3 messages ({total} octets)
C: QUIT
S: +OK mboxpop3d signing off (0 messages deleted)
S: {closed}

# without one: the server asks with "+ ", the next line is the response
connect
C: AUTH PLAIN
S: +{sp}
C: {plain}
S: +OK {user}'s maildrop has 3 messages ({total} octets)
C: QUIT
S: +OK mboxpop3d signing off (0 messages deleted)
S: {closed}

# authzid equal to the user, mechanism in lower case
connect
C: AUTH plain {b64 {user}\0{user}\0{password}}
S: +OK {user}'s maildrop has 3 messages ({total} octets)
C: QUIT
S: +OK mboxpop3d signing off (0 messages deleted)
S: {closed}

# refusals; the session goes on after each
connect
C: AUTH
S: -ERR missing argument
C: AUTH PLAIN a b
S: -ERR too many arguments
C: AUTH CRAM-MD5
S: -ERR unsupported authentication mechanism (try PLAIN)
C: AUTH LOGIN
S: -ERR unsupported authentication mechanism (try PLAIN)
C: AUTH PLAIN not*base64
S: -ERR [AUTH] invalid base64 or response too long
C: AUTH PLAIN {b64 \0{user}\0wrong}
S: -ERR [AUTH] invalid user name or password
C: AUTH PLAIN {b64 \0no-such-user\0{password}}
S: -ERR [AUTH] invalid user name or password
C: AUTH PLAIN {b64 someone\0{user}\0{password}}
S: -ERR [AUTH] authorization identity must be empty or your own
C: AUTH PLAIN {b64 {user}{password}}
S: -ERR [AUTH] malformed PLAIN response
C: AUTH PLAIN {b64 \0{user}}
S: -ERR [AUTH] malformed PLAIN response
C: AUTH PLAIN {b64 \0{user}\0{password}\0}
S: -ERR [AUTH] malformed PLAIN response
C: AUTH PLAIN =
S: -ERR [AUTH] malformed PLAIN response
C: AUTH PLAIN {b64 \0{65*u}\0{password}}
S: -ERR [AUTH] invalid user name or password
C: AUTH PLAIN *
S: -ERR authentication cancelled
C: AUTH PLAIN
S: +{sp}
C: *
S: -ERR authentication cancelled
# a continuation may be 1024 octets; longer is refused, decoded or not
C: AUTH PLAIN
S: +{sp}
C: {1100*A}
S: -ERR [AUTH] response too long
C: AUTH PLAIN
S: +{sp}
C: {b64 \0{user}\0{400*p}}
S: -ERR [AUTH] invalid base64 or response too long

# AUTH forgets a USER given before it
C: USER {user}
S: +OK send PASS
C: AUTH CRAM-MD5
S: -ERR unsupported authentication mechanism (try PLAIN)
C: PASS {password}
S: -ERR USER first

# after all that, a good response still logs in
C: AUTH PLAIN {plain}
S: +OK {user}'s maildrop has 3 messages ({total} octets)
C: AUTH PLAIN {plain}
S: -ERR command not valid in this state
C: QUIT
S: +OK mboxpop3d signing off (0 messages deleted)
S: {closed}
