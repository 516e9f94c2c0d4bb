#!/bin/sh
# Container entrypoint: the first argument is the role.
#   alembic ...   run alembic in /app (alembic.ini and migrations/ are there)
#   anything else an `ichnaea` subcommand with its arguments: web (the default),
#                 worker, scheduler, migrate, status, export, import, shell, ...
#                 (`docker run IMAGE --help` lists them); the CLI refuses
#                 unknown ones
# Settings come from the environment (docker run --env-file ichnaea.env ...).
set -e
role="${1:-web}"
[ "$#" -gt 0 ] && shift
case "$role" in
    alembic)
        cd /app
        exec alembic "$@"
        ;;
    *)
        exec ichnaea "$role" "$@"
        ;;
esac
