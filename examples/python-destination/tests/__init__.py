"""Unit tests of the Python kit, under plain CPython: `./build.sh test`."""
