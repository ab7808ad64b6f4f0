"""Test rigs that run as separate processes (see :mod:`appliance.testing_rigs` for fixtures).

``rtsp_server.py`` is a script for Debian's ``/usr/bin/python3`` (it needs ``gi``); it never
imports the appliance package.
"""
