#!/usr/bin/with-contenv sh
# A main command (docker run IMAGE /app/main.sh): waits for the app, then reports.
s6-svwait -u -t 5000 /var/run/s6/services/app || exit 1
s6-svstat /var/run/s6/services/app
echo "main: ${APP_INSTANCE} is up"
