"""Helpers the tests share: generated lecture speech and a media server on 127.0.0.1."""
