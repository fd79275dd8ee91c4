"""Tests of the server processes (:mod:`aiokes.server`)."""
