"""``python -m doorward``."""

from doorward.cli import main

main()
