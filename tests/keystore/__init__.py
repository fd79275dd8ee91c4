"""Tests of the keystore backends; ``contract`` holds the suite every backend must pass."""
