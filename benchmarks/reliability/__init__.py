"""Reliability measurements: decoder fuzzing over hostile ``.nvc`` files and decode memory."""
