module coop-demo

go 1.22
