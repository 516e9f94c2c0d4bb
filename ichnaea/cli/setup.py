"""Set-up commands: ``migrate`` and ``check-build``."""

from __future__ import annotations

import click

from ichnaea.cli.common import start_role


@click.command()
def migrate() -> None:
    """Create the database (and its users) if needed and upgrade it to the newest schema."""
    from ichnaea.migrate import migrate as run_migrate

    settings = start_role("migrate")
    run_migrate(settings, echo=click.echo)  # its last line names the revision


@click.command("check-build")
def check_build() -> None:
    """Check that the compiled core is built and computes a known distance."""
    from ichnaea import geo

    # Pole to pole on WGS-84 (spec locate.md 4.1): 20003931.4586 m.
    got = geo.distance_m(90.0, 0.0, -90.0, 0.0)
    if abs(got - 20003931.4586) > 1e-3:
        raise click.ClickException(f"compiled core computes {got!r}, expected 20003931.4586")
    click.echo("compiled core OK")
