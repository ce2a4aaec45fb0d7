#!/usr/bin/env bash
# Prepare a machine to run nasty and its tests: dataset, venv, dependencies.
# Safe to run again: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

data_dir=/usr/share/datasets/fashion-mnist
data_files=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz
            t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)

have_dataset() {
    local f
    for f in "${data_files[@]}"; do
        [[ -f "$data_dir/$f" ]] || return 1
    done
}

if ! have_dataset; then
    # The tests train on real Fashion-MNIST; Debian packages it, so no download code is needed.
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y dataset-fashion-mnist
fi

if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi

# pip already skips satisfied requirements, but resolving and rebuilding the editable
# install still costs several seconds; a stamp of pyproject.toml makes a re-run instant
# and still reinstalls whenever the dependencies change.
stamp=.venv/.nasty-setup-stamp
wanted=$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$wanted" ]]; then
    # torch first and exact: this pair is the build the project is tested with, and
    # pinning it here keeps pip from pulling a different torch for '.[test]'.
    .venv/bin/pip install -q torch==2.14.1 torchvision==0.29.1
    # The distribution was renamed nasty -> nasty-nas (PyPI's "nasty" is another project):
    # drop this toolkit's install under the old name, so one distribution owns `nasty`.
    # (pip's output captured first: with pipefail, `pip show | grep -q` fails when grep exits early)
    old_install=$(.venv/bin/pip show nasty 2>/dev/null || true)
    if grep -q '^Summary: Neural architecture search' <<<"$old_install"; then
        .venv/bin/pip uninstall -q -y nasty
    fi
    .venv/bin/pip install -q -e '.[test]'
    echo "$wanted" > "$stamp"
fi
