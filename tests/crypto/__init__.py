"""Known-answer and property tests of ``aiokes.crypto``; ``vectors`` holds the KES test data."""
