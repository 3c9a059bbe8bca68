module trellis/gobatch

go 1.19
