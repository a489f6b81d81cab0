"""Allow ``python -m crmsync``."""

from crmsync.cli import main

if __name__ == "__main__":
    main()
