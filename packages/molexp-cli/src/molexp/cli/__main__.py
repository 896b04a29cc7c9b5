"""``python -m molexp.cli``: the ``molexp`` command (how ``molexp run --jobs N`` starts workers)."""

from molexp.cli._app import main

if __name__ == "__main__":
    main(prog_name="molexp")
