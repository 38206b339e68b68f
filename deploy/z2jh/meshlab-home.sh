#!/bin/sh
# meshlab-home: the postStart hook of a student's server (deploy/z2jh/values.yaml). The home is the
# student's own volume, empty the first time: it gets the book (every chapter it does not have yet, so
# a newer image adds chapters and never overwrites a student's edits) and the labs as nbgrader released
# them (once: after that ~/labs holds the student's work). Kubernetes keeps the container from Running
# until this returns, so JupyterLab never opens the first chapter before it is there.
set -eu
mkdir -p "$HOME/book"
for chapter in /opt/meshlab/book/*; do
    [ -e "$HOME/book/${chapter##*/}" ] || cp -p "$chapter" "$HOME/book/"
done
[ -e "$HOME/labs" ] || cp -rp /opt/meshlab/labs "$HOME/labs"
