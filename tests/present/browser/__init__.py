"""Helpers for tests/present/test_browser.py: a JupyterLab server for one test and its
notebooks."""
