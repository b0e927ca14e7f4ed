"""Helpers for tests/test_browser.py: a JupyterLab server for one test, and its notebooks."""
