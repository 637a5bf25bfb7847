#!/bin/bash
# Exit 0 when the API in this container answers 200 on /readyz. The image has no HTTP client,
# so bash's /dev/tcp sends the request; the address comes from GOODGO_API_ADDR.
addr=${GOODGO_API_ADDR:-0.0.0.0:8080}
host=${addr%:*}
port=${addr##*:}
case $host in 0.0.0.0 | "" | "[::]") host=127.0.0.1 ;; esac
host=${host#[}
host=${host%]}
exec 3<>"/dev/tcp/$host/$port" || exit 1
printf 'GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
read -r -t 3 _ status _ <&3 || exit 1
[ "$status" = 200 ]
