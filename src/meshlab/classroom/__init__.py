"""Workshops: one host serving a room of students (a JupyterHub), and what an instructor needs around it.

    preflight   summarises the students' ``meshlab doctor --json`` reports: what the room can run
"""
