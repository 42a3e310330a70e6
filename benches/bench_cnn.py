"""Runs optrs.benchmarks.cnn (the same as `optrs bench cnn`); arguments pass through."""

import sys

from optrs.benchmarks.cnn import main

if __name__ == "__main__":
    sys.exit(main())
