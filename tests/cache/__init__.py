"""Tests of the master-key cache (:mod:`aiokes.cache`); ``fakes`` holds the shared doubles."""
