#!/usr/bin/env bash
# Run DVC stage items one at a time, in the order given, in a worktree at a fixed commit (a long study or
# search on 2 cores: the venv of a main checkout, the worktree's own code). Each item's output goes to
# LOGDIR/<item>.log; a file LOGDIR/STOP stops the run before the next item (pack, then resume elsewhere).
#   scripts/run_items.sh /work/search /work/main/.venv /work/search-run study/dvc.yaml:study-train@finish_b40-1 ...
set -u
worktree=$1 venv=$2 logdir=$3
shift 3
mkdir -p "$logdir"
cd "$worktree" || exit 2
export PATH="$venv/bin:$PATH" PYTHONPATH="$worktree/src" HF_HUB_OFFLINE=1 DVC_NO_ANALYTICS=1 \
  GX_ANALYTICS_ENABLED=false PREFECT_SERVER_ANALYTICS_ENABLED=false PREFECT_HOME="$worktree/.prefect"
export NLTK_DATA="${NLTK_DATA:-$(dirname "$venv")/.nltk_data}"
for item in "$@"; do
  if [ -e "$logdir/STOP" ]; then echo "$(date -u +%T) STOP file: stopping before $item"; exit 0; fi
  start=$(date +%s)
  echo "$(date -u +%T) start $item"
  dvc repro --single-item "$item" > "$logdir/$(echo "$item" | tr '/:@' '___').log" 2>&1
  rc=$?
  echo "$(date -u +%T) end $item rc=$rc $(( $(date +%s) - start )) s"
  [ $rc -eq 0 ] || exit $rc
done
