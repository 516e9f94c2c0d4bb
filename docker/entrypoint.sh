#!/bin/sh
# Container entrypoint: the first argument is the role.
#   web | worker | scheduler | map | serve | process | migrate | apikey ... | check-build
#   shell               a Python shell with settings, db and redis
#   alembic ...         run alembic in /app (alembic.ini and migrations/ are there)
# Settings come from the environment (docker run --env-file ...).
set -e
role="${1:-web}"
[ "$#" -gt 0 ] && shift
case "$role" in
    alembic)
        cd /app
        exec alembic "$@"
        ;;
    web|worker|scheduler|map|serve|process|migrate|apikey|check-build|shell)
        exec ichnaea "$role" "$@"
        ;;
    *)
        echo "unknown role '$role': use web, worker, scheduler, map, serve, process," \
             "migrate, apikey, shell, check-build or alembic" >&2
        exit 64
        ;;
esac
