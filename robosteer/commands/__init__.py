"""CLI command modules. Each exposes ``register(app: typer.Typer)``; :mod:`robosteer.cli` discovers them."""
