"""Builders only the tests use: a tiny real decoder policy (``toy``) and a tiny LeRobot dataset (``tiny_data``).

pytest puts ``tests/`` on ``sys.path`` (no ``__init__.py`` there), so tests import these as ``helpers.<module>``.
"""
