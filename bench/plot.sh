#!/usr/bin/env bash
# bench/plot.sh [DIR] -- the plots of BENCHMARKS.md from bench/bench.py's data files.
#
# Reads DIR/scale.tsv and DIR/crashloop.tsv (default DIR: bench/results) and writes
#   DIR/memory.png     PSS of each supervisor's own processes against the number of services
#   DIR/crashloop.png  every start of a service that exits 1 at once, per supervisor
# with gnuplot (Debian's gnuplot-nox; installed with apt-get when missing).

set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=${1:-$here/results}

if ! command -v gnuplot >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gnuplot-nox >&2
fi

gnuplot <<EOF
set terminal pngcairo size 900,560 font "sans,11"
set datafile separator "\t"
set datafile missing "NaN"
set key top left
set grid
set format y "%.0f"

set output "$dir/memory.png"
set title "Memory of the supervisor's own processes (PSS, summed) against services"
set xlabel "services"
set ylabel "PSS, KiB"
set logscale xy
set xrange [0.8:1300]
plot "$dir/scale.tsv" using 1:2 skip 1 with linespoints lw 2 pt 7 title "pidvisor (1 process)", \
     "" using 1:3 skip 1 with linespoints lw 2 pt 5 title "s6 (s6-svscan + s6-supervise each)", \
     "" using 1:4 skip 1 with linespoints lw 2 pt 9 title "runit (runsvdir + runsv each)", \
     "" using 1:5 skip 1 with linespoints lw 2 pt 11 title "supervisord (1 python process)"

set output "$dir/crashloop.png"
unset logscale
set title "Crash loop: each start of a service that exits 1 at once (default restart policies)"
set xlabel "seconds since the supervisor started"
set ylabel ""
set ytics ("pidvisor" 0, "s6" 1, "runit" 2, "supervisord" 3)
set yrange [-0.6:3.6]
set xrange [0:*]
set key off
plot "$dir/crashloop.tsv" using 3:2:(\$2 + 1) skip 1 with points pt 7 ps 1.4 lc variable
EOF
echo "wrote $dir/memory.png $dir/crashloop.png" >&2
