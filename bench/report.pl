#!/usr/bin/perl
# report.pl META SAMPLES N INIT... -- prints bench/core.sh's results as Markdown.
#
# META holds one value per init and key (binary size, linking, ...), SAMPLES one line per
# measurement ("metric<TAB>init<TAB>value", "NA" for a failed run), both tab-separated.
# Prints one table of medians, metrics as rows and inits as columns, where each peer's
# cell also shows the ratio pidvisor/peer, then every raw sample in run order.
# The first INIT is pidvisor, the one the ratios are taken for.

use strict;
use warnings;
use utf8;
binmode(STDOUT, ':encoding(UTF-8)');

my ($meta_file, $samples_file, $n, @inits) = @ARGV;
my $self = $inits[0];

my (%meta, %samples);
for ([$meta_file, \%meta], [$samples_file, \%samples]) {
    my ($file, $into) = @$_;
    open(my $f, '<', $file) or die "report.pl: $file: $!";
    while (<$f>) {
        chomp;
        my ($a, $b, $v) = split /\t/, $_, 3;
        if ($into == \%meta) { $meta{$a}{$b} = $v }
        else                 { push @{ $samples{$a}{$b} }, $v }
    }
}

sub median {
    my @v = sort { $a <=> $b } grep { defined && $_ ne 'NA' } @_;
    return undef unless @v;
    my $m = int(@v / 2);
    return @v % 2 ? $v[$m] : ($v[$m - 1] + $v[$m]) / 2;
}

sub thousands {
    my $s = shift;
    1 while $s =~ s/^(\d+)(\d{3})/$1,$2/;
    return $s;
}

sub ratio {
    my ($mine, $theirs) = @_;
    return '' unless defined $mine && defined $theirs;
    return ' (=)' if $mine == 0 && $theirs == 0;
    return ' (∞)' if $theirs == 0;
    my $r = $mine / $theirs;
    return ' (0×)' if $r == 0;
    return sprintf(' (%s×)', $r >= 10 ? sprintf('%.0f', $r) : sprintf('%.2f', $r));
}

# Rows: label, where the value comes from, how to print it.
my $kib = sub { sprintf '%.1f', $_[0] / 1024 };
my $int = sub { thousands(sprintf '%.0f', $_[0]) };
my $ms1 = sub { sprintf '%.1f', $_[0] };
my $N   = thousands($n);
my @rows = (
    ['Binary size, bytes',                       meta   => 'size_bytes',     $int],
    ['Binary size, KiB',                         meta   => 'size_bytes',     $kib],
    ['Linking',                                  text   => 'linking'],
    ['Size incl. shared libs (ldd), KiB',        meta   => 'size_with_libs', $kib],
    ['Idle RSS (VmRSS), KiB',                    sample => 'rss_kib',        $int],
    ['Idle PSS (smaps_rollup), KiB',             sample => 'pss_kib',        $int],
    ["Reap $N orphans: wall time, ms",           sample => 'reap_ms',        $ms1],
    ["Reap $N orphans: PID 1 CPU ms, utime+stime", sample => 'reap_cpu_ms',  $int],
    ["Reap $N orphans: PID 1 CPU ms, schedstat", sample => 'reap_sched_ms',  $ms1],
    ["Reap $N orphans: PID 1 context switches",  sample => 'reap_switches',  $int],
    ['Idle wake-ups in 5 s, ctxt switches',      sample => 'wakeups',        $int],
);

sub runs_of { my ($metric) = @_; my $s = $samples{$metric}{$self} || []; scalar @$s }

print "| Metric (median) | ", join(' | ', @inits), " |\n";
print "|---|", join('|', map { '---:' } @inits), "|\n";
for my $row (@rows) {
    my ($label, $kind, $key, $fmt) = @$row;
    my %value;
    my @cells;
    if ($kind eq 'text') {
        @cells = map { $meta{$_}{$key} // '?' } @inits;
    } else {
        for my $init (@inits) {
            $value{$init} = $kind eq 'meta' ? $meta{$init}{$key}
                                            : median(@{ $samples{$key}{$init} || [] });
        }
        for my $init (@inits) {
            my $v = $value{$init};
            my $cell = defined $v ? $fmt->($v) : 'n/a';
            if ($kind eq 'sample') {
                my $failed = grep { $_ eq 'NA' } @{ $samples{$key}{$init} || [] };
                $cell .= " [$failed failed]" if $failed;
            }
            $cell .= ratio($value{$self}, $v) if $init ne $self;
            push @cells, $cell;
        }
        $label .= sprintf(' (n=%d)', runs_of($key)) if $kind eq 'sample';
    }
    print "| $label | ", join(' | ', @cells), " |\n";
}

print "\n(x×) = pidvisor / that peer: below 1 pidvisor is smaller/faster/quieter.\n";

# Flag the metrics whose samples scatter so much that a median of a few runs can rank the
# inits either way (the reaping cost does: see bench/reap.pl).
for my $row (@rows) {
    my ($label, $kind, $key) = @$row;
    next unless $kind eq 'sample';
    my @spread;
    for my $init (@inits) {
        my @v = sort { $a <=> $b } grep { $_ ne 'NA' } @{ $samples{$key}{$init} || [] };
        push @spread, "$init $v[0]–$v[-1]" if @v > 1 && $v[0] > 0 && $v[-1] / $v[0] > 3;
    }
    print "Noisy: $label varies more than 3× between runs (min–max: ", join(', ', @spread),
        "); its ratios are not significant.\n" if @spread;
}
my @dyn = grep { ($meta{$_}{linking} // '') eq 'dynamic' } @inits;
for my $init (@dyn) {
    print "$init is dynamically linked and also loads: $meta{$init}{libs}.\n";
}

print "\n## Raw samples (in run order)\n\n";
for my $row (@rows) {
    my ($label, $kind, $key) = @$row;
    next unless $kind eq 'sample';
    print "- $label:\n";
    for my $init (@inits) {
        printf "  - %s: %s\n", $init, join(' ', @{ $samples{$key}{$init} || [] });
    }
}
my @errors = map { my $i = $_; map { "$i: $_" } @{ $samples{reap_error}{$i} || [] } } @inits;
print "\nReap errors: ", join('; ', @errors), "\n" if @errors;
