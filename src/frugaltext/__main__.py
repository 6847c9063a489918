"""``python -m frugaltext`` (and ``torchrun -m frugaltext``) run the command line."""

from frugaltext.cli.app import main

if __name__ == "__main__":
    main()
