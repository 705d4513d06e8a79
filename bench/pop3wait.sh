# bench/pop3wait.sh - sourced by run.sh and peers.sh: is a loopback port
# taken, and wait for a POP3 server's greeting on one.

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_greeting() { # PORT: up to 10 s for +OK
    local i l
    for i in $(seq 100); do
        l=$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && head -c 3 <&3" 2>/dev/null)
        [ "$l" = "+OK" ] && return 0
        sleep 0.1
    done
    return 1
}
