# Errors and limits in both states: commands in the wrong state, unknown
# commands, missing and extra arguments, bad message numbers, deleted
# messages, over-long lines.  After each -ERR the session goes on.
spool: simple 3

# --- AUTHORIZATION: transaction commands are refused, arguments or not
C: STAT
S: -ERR command not valid in this state
C: LIST
S: -ERR command not valid in this state
C: LIST 1
S: -ERR command not valid in this state
C: RETR 1
S: -ERR command not valid in this state
C: RETR
S: -ERR command not valid in this state
C: DELE 1
S: -ERR command not valid in this state
C: NOOP
S: -ERR command not valid in this state
C: RSET
S: -ERR command not valid in this state
C: TOP 1 0
S: -ERR command not valid in this state
C: UIDL
S: -ERR command not valid in this state
C: UIDL 1
S: -ERR command not valid in this state
# ... also after USER
C: USER {user}
S: +OK send PASS
C: STAT
S: -ERR command not valid in this state

# unknown commands: not a keyword, too long, empty, NUL, tab
C: HELO
S: -ERR unknown command
C: XTND XMIT
S: -ERR unknown command
C: STATS
S: -ERR unknown command
C: LAST
S: -ERR unknown command
C:
S: -ERR unknown command
C+ NO\x00OP\r\n
S: -ERR unknown command
C+ QUIT\t\r\n
S: -ERR unknown command

# QUIT and CAPA take no argument
C: QUIT now
S: -ERR too many arguments
C: CAPA TOP
S: -ERR too many arguments

# line limit (RFC 2449): 255 octets with the CRLF are fine, 256 are not
C: USER {248*a}
S: +OK send PASS
C: USER {249*a}
S: -ERR line too long
C: NOOP {100000*x}
S: -ERR line too long
# a bare LF counts as CRLF: 253 octets of text are fine, 254 are not
C+ USER {248*c}\n
S: +OK send PASS
C+ USER {249*c}\n
S: -ERR line too long
# the rest of an over-long line is dropped, the next line is served
C+ USER {300*b} PASS x\r\nCAPA\r\n
S: -ERR line too long
S: +OK Capability list follows
S: {body}

# --- TRANSACTION
login
C: USER {user}
S: -ERR command not valid in this state
C: PASS {password}
S: -ERR command not valid in this state
C: AUTH PLAIN
S: -ERR command not valid in this state
C: APOP {user} {32*0}
S: -ERR command not valid in this state
C: HELO
S: -ERR unknown command
C:
S: -ERR unknown command

# missing arguments
C: RETR
S: -ERR missing argument
C: DELE
S: -ERR missing argument
C: TOP
S: -ERR missing argument
C: TOP 1
S: -ERR missing argument

# extra arguments
C: STAT 1
S: -ERR too many arguments
C: LIST 1 2
S: -ERR too many arguments
C: UIDL 1 2
S: -ERR too many arguments
C: RETR 1 2
S: -ERR too many arguments
C: DELE 1 1
S: -ERR too many arguments
C: TOP 1 2 3
S: -ERR too many arguments
C: NOOP x
S: -ERR too many arguments
C: RSET x
S: -ERR too many arguments
C: QUIT x
S: -ERR too many arguments

# not a message number: zero, signs, letters, overflow
C: RETR 0
S: -ERR invalid number
C: RETR -1
S: -ERR invalid number
C: RETR +1
S: -ERR invalid number
C: RETR 1a
S: -ERR invalid number
C: RETR one
S: -ERR invalid number
C: RETR 2147483648
S: -ERR invalid number
C: RETR 99999999999999999999999
S: -ERR invalid number
C: LIST 0
S: -ERR invalid number
C: UIDL 0
S: -ERR invalid number
C: DELE 0
S: -ERR invalid number
C: TOP 0 1
S: -ERR invalid number
C: TOP 1 -1
S: -ERR invalid number
C: TOP 1 x
S: -ERR invalid number
C: TOP 1 9223372036854775808
S: -ERR invalid number

# numbers past the end
C: RETR 4
S: -ERR no such message, only 3 in maildrop
C: RETR 2147483647
S: -ERR no such message, only 3 in maildrop
C: LIST 4
S: -ERR no such message, only 3 in maildrop
C: UIDL 4
S: -ERR no such message, only 3 in maildrop
C: DELE 4
S: -ERR no such message, only 3 in maildrop
C: TOP 4 0
S: -ERR no such message, only 3 in maildrop

# a deleted message is gone for every command (the count still has it)
C: DELE 1
S: +OK message 1 deleted
C: DELE 1
S: -ERR message 1 already deleted
C: RETR 1
S: -ERR message 1 already deleted
C: TOP 1 0
S: -ERR message 1 already deleted
C: LIST 1
S: -ERR message 1 already deleted
C: UIDL 1
S: -ERR message 1 already deleted
C: RETR 4
S: -ERR no such message, only 3 in maildrop

# the limit in TRANSACTION: 253 octets of text, then CRLF
C: LIST {247*0}2
S: +OK 2 {size 2}
C: LIST {248*0}2
S: -ERR line too long

# over-long lines in TRANSACTION; the session and its deletions go on
C: DELE 2 {300*2}
S: -ERR line too long
C+ NOOP {5000*x}\r\nSTAT\r\n
S: -ERR line too long
S: +OK 2 {size 2 3}
# lines may end in a bare LF
C+ STAT\n
S: +OK 2 {size 2 3}
C: RSET
S: +OK maildrop has 3 messages ({total} octets)
C: QUIT
S: +OK mboxpop3d signing off (0 messages deleted)
S: {closed}
spool? unchanged
