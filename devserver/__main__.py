import sys

from tenrusl.cli import main

sys.exit(main(["dev", *sys.argv[1:]]))
