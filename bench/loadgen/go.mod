module coop-loadgen

go 1.22
