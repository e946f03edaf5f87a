#!/usr/bin/env bash
# Run HERE (a machine with pip access) before a lent-GPU session: fetches pty-chi and the
# packages it needs that the GPU image lacks, as CPython 3.12 x86-64 wheels, into .whl/
# (git-ignored), for `benchmarks/gpu_session.sh` to install there with --no-index.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl \
    ptychi==2.2.0 pydantic==2.12.5 pydantic-core==2.41.5 annotated-types==0.7.0 \
    typing-inspection==0.4.2
ls -l .whl
