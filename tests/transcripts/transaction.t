# TRANSACTION state (RFC 1939 section 5): STAT LIST RETR TOP UIDL NOOP
# DELE RSET with good arguments, and how a deleted message disappears.
spool: simple 3
login

C: STAT
S: +OK 3 {total}
C: LIST
S: +OK 3 messages ({total} octets)
S: 1 {size 1}
S: 2 {size 2}
S: 3 {size 3}
S: .
C: LIST 2
S: +OK 2 {size 2}
C: NOOP
S: +OK

# RETR: the size in the status line, the exact message after it
C: RETR 1
S: +OK {size 1} octets
S: {message 1}
C: retr 3
S: +OK {size 3} octets
S: Received: from mx.example.org by mail.example.org id {any}; Mon, 1 Jan 2024 10:00:00 +0000
S: From: Sender <sender@example.org>
S: To: rcpt@example.org
S: Subject: message 3
S:
S: body of message 3
S: more
S: more
S: .

# TOP n k: the header, the blank line, k body lines (all if fewer)
C: TOP 3 0
S: +OK top of message follows
S: {top 3 0}
C: TOP 3 1
S: +OK top of message follows
S: {any}
S: {any}
S: {any}
S: Subject: message 3
S:
S: body of message 3
S: .
C: TOP 3 99
S: +OK top of message follows
S: {message 3}
C: TOP 2 9223372036854775807
S: +OK top of message follows
S: {message 2}

# UIDL: popa3d-style 16 hex digits
C: UIDL
S: +OK unique-id listing follows
S: /1 [0-9a-f]{16}/
S: /2 [0-9a-f]{16}/
S: /3 [0-9a-f]{16}/
S: .
C: UIDL 3
S: /\+OK 3 [0-9a-f]{16}/

# DELE hides a message from everything; the numbers of the others stay
C: DELE 2
S: +OK message 2 deleted
C: STAT
S: +OK 2 {size 1 3}
C: LIST
S: +OK 2 messages ({size 1 3} octets)
S: 1 {size 1}
S: 3 {size 3}
S: .
C: UIDL
S: +OK unique-id listing follows
S: /1 [0-9a-f]{16}/
S: /3 [0-9a-f]{16}/
S: .
C: RETR 3
S: +OK {size 3} octets
S: {message 3}

# RSET undeletes
C: RSET
S: +OK maildrop has 3 messages ({total} octets)
C: LIST 2
S: +OK 2 {size 2}
C: DELE 1
S: +OK message 1 deleted
C: DELE 3
S: +OK message 3 deleted
C: STAT
S: +OK 1 {size 2}
C: RSET
S: +OK maildrop has 3 messages ({total} octets)
C: QUIT
S: +OK mboxpop3d signing off (0 messages deleted)
S: {closed}
spool? unchanged

# dot-stuffing (RFC 1939 section 3): every line that starts with "." gets
# another one; "." alone ends the reply
spool: dots
connect
login
C: RETR 1
S: +OK {size 1} octets
S: Received: {any}
S: From: Sender <sender@example.org>
S: To: rcpt@example.org
S: Subject: dots
S:
S: ..
S: ...
S: ..leading dot
S: .. space
S: normal
S: ....
S: end.
S: ..
S: .
C: RETR 2
S: +OK {size 2} octets
S: {message 2}
C: TOP 2 5
S: +OK top of message follows
S: {any}
S: {any}
S: {any}
S: Subject: dot at end
S:
S: a
S: ..
S: .
C: QUIT
S: +OK mboxpop3d signing off (0 messages deleted)
S: {closed}

# one message: singular
spool: simple 1
connect
login
C: LIST
S: +OK 1 message ({size 1} octets)
S: 1 {size 1}
S: .
C: QUIT
S: +OK mboxpop3d signing off (0 messages deleted)
