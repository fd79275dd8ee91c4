"""Tests of the key keeper (:mod:`aiokes.keeper`)."""
