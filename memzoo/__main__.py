"""``python -m memzoo`` is the ``memzoo`` command."""

from memzoo.cli.main import main

main()
