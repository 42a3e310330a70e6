"""Runs optrs.benchmarks.adam (the same as `optrs bench adam`); arguments pass through."""

import sys

from optrs.benchmarks.adam import main

if __name__ == "__main__":
    sys.exit(main())
